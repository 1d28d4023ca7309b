#!/usr/bin/env bash
# A SIGKILL of `lkmlab test` runs no handler of lkmlab's, yet its QEMU must
# die with it and the results folder must be free for the next run. A guest
# test that sleeps for ten minutes keeps the VM busy; lkmlab is killed once
# QEMU runs; QEMU must be gone within two seconds, and a new run into the same
# --out folder must go ahead and pass. About 30 s on the cached kernel. Ends
# with `N passed, N failed`.
#
#   tests/e2e/killed-run.sh            # needs lkmlab on PATH (or $LKMLAB)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
lkmlab=${LKMLAB:-lkmlab}
. tests/e2e/lib.sh

# A module that passes (the guest-helpers fixture's greeter) with a guest
# test that sleeps, at a fixed place so that its build is cached between
# runs of this test.
module=target/e2e/killed-run/module
rm -rf "$module"
mkdir -p "$module/guest-tests"
cp -p tests/fixtures/guest-helpers/Kbuild tests/fixtures/guest-helpers/greeter.rs "$module/"
printf '#!/bin/sh\nsleep 600\n' >"$module/guest-tests/sleeps.sh"
chmod +x "$module/guest-tests/sleeps.sh"
# A folder of its own: its path names this run's QEMU among all processes.
work=$(mktemp -d)
out="$work/out"
run=""

# The pids of the QEMU writing into $out (its console chardev names it).
qemu_of_run() {
  local cmdline arg
  for cmdline in /proc/[0-9]*/cmdline; do
    while IFS= read -r -d '' arg; do
      if [ "$arg" = "file,id=console,path=$out/console.log" ]; then
        cmdline=${cmdline#/proc/}
        echo "${cmdline%/cmdline}"
        break
      fi
    done 2>/dev/null <"$cmdline"
  done
}

# Whatever this test started and left running, by pid.
cleanup() {
  [ -z "$run" ] || kill -KILL "$run" 2>/dev/null
  local pid
  for pid in $(qemu_of_run); do kill -KILL "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

"$lkmlab" test --module "$module" --out "$out" >"$work/first.log" 2>&1 &
run=$!
# Up to five minutes for the module's first build, then the boot.
qemu=""
for _ in $(seq 3000); do
  qemu=$(qemu_of_run)
  [ -z "$qemu" ] && kill -0 "$run" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$qemu" ]; then
  fail "lkmlab test started QEMU" "$(cat "$work/first.log")"
  finish
fi
ok "lkmlab test started QEMU ($qemu)"

# QEMU holds the results folder's lock itself: were it ever left behind, the
# folder would stay locked while it lived.
holds_lock=no
for fd in /proc/"$qemu"/fd/*; do
  [ "$(readlink "$fd")" = "$out/.lkmlab-lock" ] && holds_lock=yes
done
if [ "$holds_lock" = yes ]; then
  ok "QEMU holds $out/.lkmlab-lock"
else
  fail "QEMU holds $out/.lkmlab-lock" "$(ls -l /proc/"$qemu"/fd/)"
fi

# Once the guest runs its sleeping test, kill lkmlab outright.
for _ in $(seq 600); do
  grep -qs '^# running guest_tests.sleeps$' "$out/results.ktap" && break
  sleep 0.1
done
if grep -qs '^# running guest_tests.sleeps$' "$out/results.ktap"; then
  ok "the guest runs its sleeping test"
else
  fail "the guest runs its sleeping test" "$(cat "$out/results.ktap" "$work/first.log" 2>&1)"
fi
# (Quietly: bash would report the job it killed.)
{
  kill -KILL "$run"
  wait "$run"
} 2>/dev/null
run=""
survivor=$qemu
for _ in $(seq 20); do
  survivor=$(qemu_of_run)
  [ -n "$survivor" ] || break
  sleep 0.1
done
if [ -z "$survivor" ]; then
  ok "QEMU died with lkmlab"
else
  fail "QEMU died with lkmlab" "QEMU $survivor still runs 2 s after lkmlab was killed: $(ps -o pid,ppid,stat,etime,args -p "$survivor" 2>&1)"
fi

# The next run into the same folder, without the sleeping test: it must not
# wait for anything and must pass.
rm "$module/guest-tests/sleeps.sh"
if timeout 300 "$lkmlab" test --module "$module" --out "$out" >"$work/second.log" 2>&1 &&
  grep -qE '^[0-9]+ passed, 0 failed' "$work/second.log" &&
  ! grep -q 'waiting for it' "$work/second.log"; then
  ok "a new run into the same --out folder goes ahead and passes"
else
  fail "a new run into the same --out folder goes ahead and passes" "$(cat "$work/second.log")"
fi

finish
