#!/usr/bin/env bash
# Reproduce the figures in docs/benchmarks.md (TCG unless KVM passes the probe).
#   scripts/bench.sh [runs]        # default 7 runs per VM figure; prints medians
# Needs a built kernel (`lkmlab kernel`), lkmlab and busybox (static) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
lkmlab=${LKMLAB:-lkmlab}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

kdir=$("$lkmlab" kernel 2>/dev/null)
bz="$kdir/arch/x86/boot/bzImage"

# 1. No-op kernel rebuild.
for _ in $(seq "$runs"); do t=$(now); "$lkmlab" kernel >/dev/null 2>&1; elapsed "$t"; done | median >"$work/noop"
echo "no-op \`lkmlab kernel\`: $(cat "$work/noop") s"

# 2. Module build: from clean, then after a one-line change to module/hello.rs.
mkdir -p "$work/hello"
cp module/hello.rs module/Makefile "$work/hello/"
echo 'obj-m := hello.o' >"$work/hello/Kbuild"
# The output folder's name carries a hash of the module's path: ask lkmlab.
ko=$("$lkmlab" module --module "$work/hello" 2>/dev/null | grep '/hello\.ko$')
[ -n "$ko" ] || { echo "bench: \`lkmlab module\` built no hello.ko" >&2; exit 1; }
for i in $(seq "$runs"); do
  rm -rf "$(dirname "$ko")"
  t=$(now); "$lkmlab" module --module "$work/hello" >/dev/null 2>&1; elapsed "$t"
done | median >"$work/mod_clean"
echo "module build from clean (hello): $(cat "$work/mod_clean") s"
for i in $(seq "$runs"); do
  sed -i "s/Goodbye from Rust!.*(greeted/Goodbye from Rust! run $i (greeted/" "$work/hello/hello.rs"
  t=$(now); "$lkmlab" module --module "$work/hello" >/dev/null 2>&1; elapsed "$t"
done | median >"$work/mod_edit"
echo "module rebuild after a one-line change (hello): $(cat "$work/mod_edit") s"

# 3. lkmlab test on hello: QEMU start to exit as lkmlab reports it, and the
#    whole command (runner build check, initramfs, VM, verdict).
cp module/hello.rs "$work/hello/"
for _ in $(seq "$runs"); do
  t=$(now)
  "$lkmlab" test --module "$work/hello" --accel tcg --out "$work/t" 2>"$work/err" >/dev/null
  elapsed "$t" >>"$work/test_wall"
  sed -n 's/.*VM finished in \([0-9.]*\)s.*/\1/p' "$work/err" >>"$work/test_vm"
done
echo "lkmlab test, hello, QEMU start to exit: $(median <"$work/test_vm") s"
echo "lkmlab test, hello, whole command: $(median <"$work/test_wall") s"

# 4. Baseline: busybox initramfs that only does insmod, rmmod, reboot.
mkdir -p "$work/bb/bin" "$work/bb/dev" "$work/bb/proc"
cp "$(command -v busybox)" "$work/bb/bin/busybox"
for a in sh insmod rmmod reboot mount; do ln -sf busybox "$work/bb/bin/$a"; done
cp "$ko" "$work/bb/hello.ko"
printf '#!/bin/sh\ninsmod /hello.ko greeting_count=3\nrmmod hello\nreboot -f\n' >"$work/bb/init"
chmod +x "$work/bb/init"
(cd "$work/bb" && find . | cpio -o -H newc --quiet) >"$work/bb.cpio"
for _ in $(seq "$runs"); do
  t=$(now)
  timeout 60 qemu-system-x86_64 -M microvm,acpi=off -accel tcg -m 256 -smp 1 -nodefaults \
    -no-user-config -display none -no-reboot -serial "file:$work/bb.log" \
    -kernel "$bz" -initrd "$work/bb.cpio" -append "console=ttyS0 panic=-1 reboot=t rdinit=/init"
  elapsed "$t"
done | median >"$work/bb_time"
grep -q "Goodbye from Rust" "$work/bb.log" || { echo "busybox baseline did not run the module"; exit 1; }
echo "busybox baseline (insmod/rmmod/reboot), QEMU start to exit: $(cat "$work/bb_time") s"

# 5. The full suite of module/ (hello + scull + guest tests).
for _ in $(seq 3); do
  "$lkmlab" test --accel tcg --out "$work/full" 2>"$work/err" >/dev/null
  sed -n 's/.*VM finished in \([0-9.]*\)s.*/\1/p' "$work/err"
done | median >"$work/full_vm"
echo "lkmlab test, module/ (hello + scull + guest tests), QEMU start to exit: $(cat "$work/full_vm") s"
