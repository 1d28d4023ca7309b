#!/usr/bin/env bash
# The interactive lab, driven as a user drives it: `lkmlab vm` runs in a real
# terminal (tmux), and the test types into the guest shell and reads the
# screen. It waits for the prompt, checks $LKMLAB_MODULES, loads scull, writes
# and reads /dev/scull, rebuilds the module on the host and reloads it in the
# guest (refused while /dev/scull is open), unloads it, exits the shell and
# checks lkmlab's exit status. Every wait is bounded and says what it waited
# for. Ends with `N passed, N failed`.
#
#   tests/e2e/vm-terminal.sh [GLOBAL-OPTION...]   # e.g. --project DIR
#
# lkmlab comes from $LKMLAB, else PATH; vng from PATH or ~/.local/bin. Run it
# after `lkmlab kernel` (a first build takes minutes). Needs tmux.
# Guest commands are in single quotes on purpose: they expand in the guest.
# shellcheck disable=SC2016
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
lkmlab=${LKMLAB:-lkmlab}
. tests/e2e/lib.sh

if ! command -v tmux >/dev/null; then
  fail "tmux" "tmux is not installed: sudo apt-get install tmux"
  finish
fi
lkmlab=$(command -v "$lkmlab") || { fail "lkmlab" "not found: set LKMLAB or put lkmlab on PATH"; finish; }

session=lkmlab-vm-e2e-$$
work=$(mktemp -d)
# The lab module is a copy, so that the test can change and rebuild it; its
# directory name keeps its build apart from module/'s (target/…/modules/lab-module).
lab=$work/lab-module
trap 'tmux kill-session -t "$session" 2>/dev/null; rm -rf "$work"' EXIT
cp -r module "$lab"

screen() { tmux capture-pane -p -J -S - -t "$session" 2>/dev/null; }

# wait_for SECONDS WHAT REGEX: poll the terminal until REGEX (grep -E) shows.
wait_for() {
  local secs=$1 what=$2 regex=$3 deadline=$((SECONDS + $1))
  while [ "$SECONDS" -lt "$deadline" ]; do
    screen | grep -qE -- "$regex" && return 0
    [ -f "$work/exit" ] && break
    sleep 0.5
  done
  fail "$what" "no /$regex/ on the terminal within ${secs}s; the terminal shows:
$(screen | grep -v '^$' | tail -n 25)"
  return 1
}

# guest NAME SECONDS COMMAND: type COMMAND into the guest shell and wait for
# its exit status, printed after a marker the typed line itself cannot match
# (it shows `$?`, not digits).
status=""
step=0
guest() {
  local name=$1 secs=$2 cmd=$3
  step=$((step + 1))
  status=""
  tmux send-keys -t "$session" -l -- "$cmd; echo \"@@step$step=\$?\""
  tmux send-keys -t "$session" Enter
  wait_for "$secs" "$name" "^@@step$step=[0-9]+" || return 1
  status=$(screen | sed -n "s/^@@step$step=\([0-9]*\).*/\1/p" | tail -n 1)
}

# expect NAME SECONDS STATUS COMMAND [REGEX]: COMMAND exits with STATUS in the
# guest, and REGEX shows on the terminal.
expect() {
  local name=$1 secs=$2 want=$3 cmd=$4 regex=${5:-}
  guest "$name" "$secs" "$cmd" || return 1
  if [ "$status" != "$want" ]; then
    fail "$name" "\`$cmd\` exited $status in the guest, expected $want:
$(screen | grep -v '^$' | tail -n 15)"
  elif [ -n "$regex" ] && ! screen | grep -qE -- "$regex"; then
    fail "$name" "\`$cmd\` printed no /$regex/:
$(screen | grep -v '^$' | tail -n 15)"
  else
    ok "$name"
  fi
}

# The VM in a terminal of its own; lkmlab's exit status lands in a file.
tmux new-session -d -s "$session" -x 200 -y 50 \
  "$(printf '%q ' "$lkmlab" "$@" vm --module "$lab"); echo \$? > $(printf '%q' "$work/exit")"
tmux set-option -t "$session" remain-on-exit on >/dev/null

if wait_for 300 "boot to a shell" '^root@lkmlab:'; then
  ok "boot to a shell (lkmlab vm in tmux)"
else
  finish
fi
if screen | grep -qE 'modules: +/.*/lab-module-[0-9a-f]+ = \$LKMLAB_MODULES'; then
  ok "the banner names \$LKMLAB_MODULES"
else
  fail "the banner names \$LKMLAB_MODULES" "$(screen | grep '^lkmlab:')"
fi
project=$(screen | sed -n 's/^lkmlab: *guest shell: root in \(.*\), the host filesystem.*/\1/p' | head -n 1)

expect "shell has a terminal" 20 0 'test -t 0 && test -t 1'
expect "shell starts in the project" 20 0 "test \"\$PWD\" = $(printf '%q' "$project")"
expect "LKMLAB_MODULES holds scull.ko" 20 0 'ls "$LKMLAB_MODULES/scull.ko"'
expect "insmod scull" 60 0 'insmod "$LKMLAB_MODULES/scull.ko" && test -c /dev/scull'
expect "write and read /dev/scull" 20 0 \
  'printf "hello from tmux" > /dev/scull && echo "read:$(cat /dev/scull)"' '^read:hello from tmux$'
expect "reload refused while /dev/scull is open" 30 1 \
  'exec 3</dev/scull; $LKMLAB_RELOAD scull; s=$?; exec 3<&-; (exit $s)' 'scull is in use'

# The loop: a one-line change rebuilt on the host is what the guest loads.
if grep -q '/dev/scull ready, capacity' "$lab/scull.rs"; then
  sed -i 's|/dev/scull ready, capacity|/dev/scull ready (rebuilt by e2e), capacity|' "$lab/scull.rs"
  if out=$("$lkmlab" "$@" module --module "$lab" 2>&1); then
    ok "lkmlab module on the host rebuilds the changed module"
    expect "reload in the guest loads the rebuilt .ko" 60 0 \
      '$LKMLAB_RELOAD scull && dmesg | grep "scull: /dev/scull ready"' 'ready \(rebuilt by e2e\)'
  else
    fail "lkmlab module on the host rebuilds the changed module" "$out"
  fi
else
  fail "one-line change to scull.rs" "module/scull.rs has no '/dev/scull ready, capacity' message to change"
fi

expect "rmmod scull" 30 0 'rmmod scull && test ! -e /sys/module/scull'

tmux send-keys -t "$session" -l -- "exit"
tmux send-keys -t "$session" Enter
deadline=$((SECONDS + 60))
while [ ! -f "$work/exit" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
if [ ! -f "$work/exit" ]; then
  fail "exit powers the VM off" "lkmlab vm still running 60s after \`exit\` (a kernel without
CONFIG_ACPI halts instead of powering off: see docs/lab.md). The terminal shows:
$(screen | grep -v '^$' | tail -n 10)"
elif [ "$(cat "$work/exit")" = 0 ]; then
  ok "exit powers the VM off; lkmlab vm exits 0"
else
  fail "exit powers the VM off; lkmlab vm exits 0" "lkmlab vm exited $(cat "$work/exit"):
$(screen | grep -v '^$' | tail -n 10)"
fi
finish
