#!/usr/bin/env bash
# The figures of docs/benchmarks.md, as ratios of medians against a baseline
# measured in the same call, A and B in turn (A B A B ...), so a figure means
# the same on a slow machine and a fast one, and background load hits both.
#
#   scripts/bench.sh [RUNS] [ROW...]    # RUNS per side (default 7); rows:
#                                       # loop edit watch smp flavors sweep vm kunit timings arm64 6.12 devices
#                                       # after-unload
#
# Needs the default and debug kernels built (`lkmlab kernel`, `lkmlab kernel
# --flavor debug`; the arm64 row `lkmlab kernel --arch arm64`, the 6.12 row
# `lkmlab kernel --kernel-name 6.12`), lkmlab (or $LKMLAB) and a static busybox on PATH (the vm
# row also vng and tmux). Runs under TCG (as CI does) unless BENCH_ACCEL says
# otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
shift || true
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(loop edit watch smp flavors sweep vm kunit timings arm64 6.12 devices after-unload)
lkmlab=$(command -v "${LKMLAB:-lkmlab}")
accel=${BENCH_ACCEL:-tcg}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) exit 1; m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
# vm_time ERR: the "VM finished in" figure lkmlab printed (QEMU start to exit).
vm_time() { sed -n 's/.*VM finished in \([0-9.]*\)s.*/\1/p' "$1"; }

tree=$("$lkmlab" kernel 2>/dev/null)
bz="$tree/arch/x86/boot/bzImage"

# A copy of hello alone, as a module author's own directory would be.
hello=$work/hello
mkdir -p "$hello"
cp module/hello.rs module/Makefile "$hello/"
echo 'obj-m := hello.o' >"$hello/Kbuild"
hello_test() { "$lkmlab" test --module "$hello" --accel "$accel" --out "$work/t" "$@"; }
hello_test >/dev/null 2>&1 || { echo "lkmlab test on hello fails: fix that first"; exit 1; }
ko=$(ls "$PWD"/target/lkmlab/default/modules/hello*/hello.ko | head -n 1)

# The baseline: the same kernel and module with a busybox initramfs that only
# loads, unloads and reboots, booted as lkmlab boots.
mkdir -p "$work/bb/bin" "$work/bb/dev" "$work/bb/proc"
cp "$(command -v busybox)" "$work/bb/bin/busybox"
for a in sh insmod rmmod reboot mount; do ln -sf busybox "$work/bb/bin/$a"; done
printf '#!/bin/sh\ninsmod /hello.ko greeting_count=3\nrmmod hello\nreboot -f\n' >"$work/bb/init"
chmod +x "$work/bb/init"
# bare_boot [CMDLINE_TAIL]: the KUnit filter by default (the kunit row passes "").
# shellcheck disable=SC2120 # called with an argument through pair's eval
bare_boot() {
  cp "$ko" "$work/bb/hello.ko"
  (cd "$work/bb" && find . | cpio -o -H newc --quiet) >"$work/bb.cpio"
  timeout 120 qemu-system-x86_64 -M microvm,acpi=off -accel "$accel" -m 256 -smp 2 -nodefaults \
    -no-user-config -display none -no-reboot -serial "file:$work/bb.log" \
    -kernel "$bz" -initrd "$work/bb.cpio" \
    -append "console=ttyS0 panic=-1 reboot=t rdinit=/init no_timer_check rcupdate.rcu_expedited=1 ${1-kunit.filter_glob=lkmlab_no_kunit_suite}"
  grep -q "Goodbye from Rust" "$work/bb.log" || { echo "busybox baseline did not run the module" >&2; exit 1; }
}

# pair NAME A-CMD B-CMD: runs A and B in turn RUNS times (wall time each),
# prints both medians and A/B.
pair() {
  local name=$1 a=$2 b=$3 t
  : >"$work/a" ; : >"$work/b"
  for _ in $(seq "$runs"); do
    t=$(now); eval "$a" >/dev/null 2>&1; since "$t" >>"$work/a"
    t=$(now); eval "$b" >/dev/null 2>&1; since "$t" >>"$work/b"
  done
  local ma mb
  ma=$(median <"$work/a"); mb=$(median <"$work/b")
  printf '%-58s %7.2f s vs %7.2f s  ratio %s\n' "$name" "$ma" "$mb" "$(ratio "$ma" "$mb")"
}

# vm_pair NAME A-CMD B-CMD: like pair, but each side's figure is the
# "VM finished in" time lkmlab printed (QEMU start to exit).
vm_pair() {
  local name=$1 a=$2 b=$3
  : >"$work/a" ; : >"$work/b"
  for _ in $(seq "$runs"); do
    eval "$a" 2>"$work/err" >/dev/null; vm_time "$work/err" >>"$work/a"
    eval "$b" 2>"$work/err" >/dev/null; vm_time "$work/err" >>"$work/b"
  done
  local ma mb
  ma=$(median <"$work/a"); mb=$(median <"$work/b")
  printf '%-58s %7.2f s vs %7.2f s  ratio %s\n' "$name" "$ma" "$mb" "$(ratio "$ma" "$mb")"
}

for row in "${rows[@]}"; do
  case $row in
  arm64)
    # hello on the arm64 target (cross-built; TCG emulating another
    # architecture) against the x86_64 one (TCG), the whole lkmlab test with
    # nothing changed; then QEMU start to exit; then where one run's time
    # goes on each (--timings).
    # shellcheck disable=SC2120 # called with --timings through "${side}_test"
    arm64_test() { "$lkmlab" test --arch arm64 --module "$hello" --accel tcg --out "$work/ta" "$@"; }
    # shellcheck disable=SC2120 # likewise
    x86_test() { "$lkmlab" test --arch x86_64 --module "$hello" --accel tcg --out "$work/tx" "$@"; }
    arm64_test >/dev/null 2>&1 || { echo "lkmlab test --arch arm64 on hello fails: fix that first"; exit 1; }
    pair "hello, nothing changed: lkmlab test arm64 / x86_64 (TCG)" arm64_test x86_test
    vm_pair "hello, QEMU start to exit: arm64 / x86_64 (TCG)" arm64_test x86_test
    for side in arm64 x86; do
      printf '  %s: %s\n' "$side" "$("${side}_test" --timings 2>&1 >/dev/null | sed -n 's/^lkmlab: timings: //p')"
    done
    ;;
  6.12)
    # hello on the second kernel of the pin (6.12, x86_64) against 7.3 (TCG
    # both), the whole lkmlab test with nothing changed, then QEMU start to
    # exit. hello's copy takes module/Kbuild's version test (6.12's module!
    # has no params).
    mkdir -p "$work/hello612"
    cp module/hello.rs "$work/hello612/"
    sed 's/^obj-m := .*/obj-m := hello.o/' module/Kbuild >"$work/hello612/Kbuild"
    k612_test() { "$lkmlab" test --kernel-name 6.12 --module "$work/hello612" --accel tcg --out "$work/t612"; }
    k73_test() { "$lkmlab" test --module "$work/hello612" --accel tcg --out "$work/t73"; }
    k612_test >/dev/null 2>&1 || { echo "lkmlab test --kernel-name 6.12 on hello fails: fix that first"; exit 1; }
    pair "hello, nothing changed: lkmlab test 6.12 / 7.3 (x86_64, TCG)" k612_test k73_test
    vm_pair "hello, QEMU start to exit: 6.12 / 7.3 (x86_64, TCG)" k612_test k73_test
    ;;
  after-unload)
    # The wait after the last unload: a clean module that can schedule
    # callbacks (work-after-unload's module, which queues nothing unless
    # asked, without its guest test) against a module that cannot
    # (leaves-loaded's, without its test): both get the generic suite.
    mkdir -p "$work/defers" "$work/plain"
    cp tests/fixtures/work-after-unload/{Kbuild,work_after_unload.rs} "$work/defers/"
    cp tests/fixtures/leaves-loaded/{Kbuild,leaves_loaded.rs} "$work/plain/"
    defers_test() { "$lkmlab" test --module "$work/defers" --accel "$accel" --out "$work/td"; }
    plain_test() { "$lkmlab" test --module "$work/plain" --accel "$accel" --out "$work/tp"; }
    defers_test >/dev/null 2>&1 && plain_test >/dev/null 2>&1 || { echo "after-unload row: a module fails"; exit 1; }
    pair "a module that can schedule callbacks (waited for) / one that cannot" defers_test plain_test
    ;;
  devices)
    # The PCI machine's cost: hello with a PCI device declared (q35, the
    # channels on virtio-serial-pci) against hello without (microvm), the
    # whole lkmlab test and QEMU start to exit; then the kernel's PCI
    # samples (examples/pci-samples: two drivers bound, unbound, rebound)
    # against hello without devices, QEMU start to exit.
    mkdir -p "$work/hellopci"
    cp "$hello"/* "$work/hellopci/"
    printf '[[devices]]\ndevice = "pci-testdev"\n' >"$work/hellopci/devices.toml"
    pci_test() { "$lkmlab" test --module "$work/hellopci" --accel "$accel" --out "$work/tp"; }
    samples_test() { "$lkmlab" test --module examples/pci-samples --accel "$accel" --out "$work/ts"; }
    pci_test >/dev/null 2>&1 || { echo "lkmlab test on hello with a PCI device fails: fix that first"; exit 1; }
    samples_test >/dev/null 2>&1 || { echo "lkmlab test on examples/pci-samples fails: fix that first"; exit 1; }
    pair "hello, nothing changed: PCI device (q35) / none (microvm)" pci_test hello_test
    vm_pair "hello, QEMU start to exit: PCI device (q35) / none (microvm)" pci_test hello_test
    vm_pair "QEMU start to exit: pci-samples suite / hello (microvm)" samples_test hello_test
    ;;
  loop)
    # lkmlab test on hello with nothing changed, against the bare boot.
    pair "hello, nothing changed: lkmlab test / bare boot" hello_test bare_boot
    ;;
  edit)
    # After a one-line change: lkmlab test (rebuild + VM) against plain
    # Kbuild's rebuild plus the bare boot.
    n=0
    edit() { n=$((n + 1)); sed -i "s/Goodbye from Rust!.*(greeted/Goodbye from Rust! run $n (greeted/" "$hello/hello.rs"; }
    plain_rebuild() {
      edit
      make -s -C "$tree" M="$hello" MO="$work/plain" LLVM= -j"$(nproc)" modules >/dev/null 2>&1
      bare_boot
    }
    mkdir -p "$work/plain"
    pair "hello, one-line change: lkmlab test / (Kbuild + bare boot)" 'edit; hello_test' plain_rebuild
    ;;
  watch)
    # lkmlab watch on hello: from a one-line edit to the next result line it
    # prints, against plain Kbuild's rebuild plus the bare boot.
    n=100
    "$lkmlab" watch --module "$hello" --accel "$accel" --out "$work/w" >"$work/watch.log" 2>&1 &
    watcher=$!
    results() { grep -c ' passed, ' "$work/watch.log" || true; }
    until [ "$(results)" -ge 1 ]; do sleep 0.05; done
    mkdir -p "$work/plain"
    cp -r "$hello" "$work/hello-plain"
    : >"$work/a" ; : >"$work/b"
    for _ in $(seq "$runs"); do
      before=$(results); n=$((n + 1))
      t=$(now)
      sed -i "s/Goodbye from Rust!.*(greeted/Goodbye from Rust! run $n (greeted/" "$hello/hello.rs"
      until [ "$(results)" -gt "$before" ]; do sleep 0.01; done
      since "$t" >>"$work/a"
      # The baseline edits a copy the watcher does not see.
      n=$((n + 1))
      t=$(now)
      sed -i "s/Goodbye from Rust!.*(greeted/Goodbye from Rust! run $n (greeted/" "$work/hello-plain/hello.rs"
      make -s -C "$tree" M="$work/hello-plain" MO="$work/plain" LLVM= -j"$(nproc)" modules >/dev/null 2>&1
      bare_boot >/dev/null 2>&1
      since "$t" >>"$work/b"
    done
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    ma=$(median <"$work/a"); mb=$(median <"$work/b")
    printf '%-58s %7.2f s vs %7.2f s  ratio %s\n' "hello, save to verdict: lkmlab watch / (Kbuild + bare boot)" "$ma" "$mb" "$(ratio "$ma" "$mb")"
    ;;
  smp)
    # Two vCPUs against one, QEMU start to exit, same kernel and module.
    one=$work/one-cpu
    mkdir -p "$one"
    cp -r lkmlab.toml kernel-config "$one/"
    sed -i 's/^cpus = .*/cpus = 1/' "$one/lkmlab.toml"
    : >"$work/a" ; : >"$work/b"
    for _ in $(seq "$runs"); do
      hello_test 2>"$work/err" >/dev/null; vm_time "$work/err" >>"$work/a"
      "$lkmlab" --project "$one" test --module "$hello" --accel "$accel" --out "$work/t1" 2>"$work/err" >/dev/null
      vm_time "$work/err" >>"$work/b"
    done
    ma=$(median <"$work/a"); mb=$(median <"$work/b")
    printf '%-58s %7.2f s vs %7.2f s  ratio %s\n' "hello, QEMU start to exit: 2 vCPUs / 1 vCPU" "$ma" "$mb" "$(ratio "$ma" "$mb")"
    # The full suite (module/: hello, scull, the guest tests) the same way.
    cp -r module "$one/"
    : >"$work/a" ; : >"$work/b"
    for _ in $(seq "$runs"); do
      "$lkmlab" test --accel "$accel" --out "$work/t2" 2>"$work/err" >/dev/null || true
      vm_time "$work/err" >>"$work/a"
      "$lkmlab" --project "$one" test --accel "$accel" --out "$work/t1" 2>"$work/err" >/dev/null || true
      vm_time "$work/err" >>"$work/b"
    done
    ma=$(median <"$work/a"); mb=$(median <"$work/b")
    printf '%-58s %7.2f s vs %7.2f s  ratio %s\n' "module/, QEMU start to exit: 2 vCPUs / 1 vCPU" "$ma" "$mb" "$(ratio "$ma" "$mb")"
    ;;
  flavors)
    # module/ (hello, scull, guest tests) on the debug kernel against the
    # default one, QEMU start to exit.
    : >"$work/a" ; : >"$work/b"
    for _ in $(seq "$runs"); do
      "$lkmlab" test --flavor debug --accel "$accel" --out "$work/td" 2>"$work/err" >/dev/null || true
      vm_time "$work/err" >>"$work/a"
      "$lkmlab" test --accel "$accel" --out "$work/t0" 2>"$work/err" >/dev/null || true
      vm_time "$work/err" >>"$work/b"
    done
    ma=$(median <"$work/a"); mb=$(median <"$work/b")
    printf '%-58s %7.2f s vs %7.2f s  ratio %s\n' "module/, QEMU start to exit: debug / default flavor" "$ma" "$mb" "$(ratio "$ma" "$mb")"
    ;;
  sweep)
    # The fault-injection sweep of scull's init, as the guest times it.
    scull=$work/scull
    mkdir -p "$scull"
    cp module/scull.rs module/scull.h "$scull/"
    echo 'obj-m := scull.o' >"$scull/Kbuild"
    : >"$work/a"
    for _ in $(seq "$runs"); do
      "$lkmlab" test --flavor debug --fault-injection --module "$scull" --accel "$accel" --out "$work/ts" >/dev/null 2>&1 || true
      sed -n 's/^# fault injection: \([0-9]*\) load(s) in \([0-9.]*\) s$/\2/p' "$work/ts/results.ktap" >>"$work/a"
    done
    loads=$(sed -n 's/^# fault injection: \([0-9]*\) load(s) in .*/\1/p' "$work/ts/results.ktap")
    printf '%-58s %7.2f s (%s loads)\n' "fault-injection sweep of scull's init (in the guest)" "$(median <"$work/a")" "$loads"
    ;;
  vm)
    # lkmlab vm against vng run by hand on the same kernel with the options
    # lkmlab's own virtme-ng command line starts from (what is left is
    # lkmlab's part: the kernel and module checks, the accelerator choice,
    # the reload helper): --exec true, and the interactive VM from its start
    # to the shell prompt in a terminal (tmux), then `exit`.
    cp -r "$hello" "$work/lab"
    "$lkmlab" module --module "$work/lab" >/dev/null 2>&1
    vng_base=(vng --run "$bz" --name lkmlab --user root --skip-modules --force-9p --memory 256M --cpus 2 --append root=/dev/root)
    [ "$accel" = tcg ] && vng_base+=(--disable-kvm)
    pair "vm --exec true: lkmlab vm / vng" \
      '"$lkmlab" vm --module "$work/lab" --accel "$accel" --exec true' '"${vng_base[@]}" --exec true'
    # to_prompt CMD...: seconds from starting CMD in tmux to the prompt.
    to_prompt() {
      local t s=lkmlab-bench-$$
      t=$(now)
      tmux new-session -d -s "$s" -x 200 -y 50 "$(printf '%q ' "$@")"
      until tmux capture-pane -p -t "$s" 2>/dev/null | grep -q '^root@lkmlab'; do sleep 0.02; done
      since "$t"
      tmux send-keys -t "$s" 'exit' Enter
      while tmux has-session -t "$s" 2>/dev/null; do sleep 0.1; done
    }
    : >"$work/a" ; : >"$work/b"
    for _ in $(seq "$runs"); do
      to_prompt "$lkmlab" vm --module "$work/lab" --accel "$accel" >>"$work/a"
      to_prompt "${vng_base[@]}" >>"$work/b"
    done
    ma=$(median <"$work/a"); mb=$(median <"$work/b")
    printf '%-58s %7.2f s vs %7.2f s  ratio %s\n' "vm to the shell prompt: lkmlab vm / vng" "$ma" "$mb" "$(ratio "$ma" "$mb")"
    ;;
  kunit)
    # The kernel crate's built-in KUnit suites at boot: the bare boot with
    # lkmlab's filter (no suite runs) against the same boot without it.
    pair "bare boot: KUnit filter on / off (built-in suites run)" bare_boot 'bare_boot ""'
    ;;
  timings)
    # Where the time goes, once each (lkmlab's --timings line).
    hello_test --timings 2>&1 >/dev/null | grep 'timings:' | sed 's/^lkmlab: timings:/hello:   /'
    "$lkmlab" test --accel "$accel" --out "$work/t0" --timings 2>&1 >/dev/null | grep 'timings:' | sed 's/^lkmlab: timings:/module\/:/'
    ;;
  *) echo "unknown row $row (rows: loop edit watch smp flavors sweep vm kunit timings arm64 6.12 devices)"; exit 2 ;;
  esac
done
