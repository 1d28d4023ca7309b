#!/usr/bin/env bash
# The driver lab (docs/drivers.md): modules that bind to devices the VM
# gets from devices.toml. The kernel's own PCI samples are still the pinned
# tree's, and bind, unbind, rebind and unload clean on the debug kernel,
# with fault injection
# (docs/drivers.md runs them on the default one through tests/e2e/docs.sh);
# the edu driver (examples/edu) passes on both, the debug one with fault
# injection (a device QEMU refuses: failure-modes.sh). Needs the default and debug
# kernels built (`lkmlab kernel`, `lkmlab kernel --flavor debug`). Ends with
# `N passed, N failed`.
#
#   tests/e2e/drivers.sh            # needs lkmlab on PATH (or $LKMLAB)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
lkmlab=${LKMLAB:-lkmlab}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. tests/e2e/lib.sh

samples=examples/pci-samples

# The copies are the pinned tree's files, byte for byte.
source_dir=$("$lkmlab" show build-env | python3 -c 'import json, sys; print(json.load(sys.stdin)["source"])')
for sample in rust_driver_pci.rs rust_dma.rs; do
  if cmp -s "$samples/$sample" "$source_dir/samples/rust/$sample"; then
    ok "$sample is the pinned tree's samples/rust/$sample"
  else
    fail "$sample differs from $source_dir/samples/rust/$sample (copy it again)"
  fi
done

# The examples' shared guest-test helper is one file in several copies.
first=""
for helper in examples/*/guest-tests/helpers/pci.sh; do
  if [ -z "$first" ]; then
    first=$helper
  elif cmp -s "$first" "$helper"; then
    ok "$helper is $first"
  else
    fail "$helper differs from $first (keep the copies equal)"
  fi
done

# run NAME -- COMMAND...: COMMAND must pass; its report is kept.
run() {
  local name=$1 out="$work/$1.out"
  shift 2
  if "$@" >"$out" 2>&1; then
    ok "$name"
  else
    fail "$name" "$(cat "$out")"
  fi
}

# With fault injection: each allocation of init (and so of probe) failed in
# turn, and no false alarm from what the kernel prints about it (rust_dma's
# vmalloc error report, its probe failing with -12).
run pci-samples-debug -- "$lkmlab" test --flavor debug --fault-injection --module "$samples" --out "$work/debug"
# Both drivers bound, each at its insmod and again through sysfs.
for line in "rust_driver_pci 0000:[0-9a-f:.]+: pci-testdev data-match count: 1" \
  "rust_dma 0000:[0-9a-f:.]+: Unload DMA test driver."; do
  n=$(grep -cE -- "$line" "$work/debug/console.log")
  if [ "$n" -ge 2 ]; then
    ok "debug kernel log: '$line' ($n times)"
  else
    fail "debug kernel log: '$line' $n times, expected at least 2" "$(tail -n 40 "$work/debug/console.log")"
  fi
done

# The edu driver (examples/edu): probe, factorial, interrupts, DMA, /dev/edu,
# unbind and rebind, a file held open across unbind; on the default kernel,
# then the debug kernel with every allocation of init (probe) failed in turn.
run edu-default -- "$lkmlab" test --module examples/edu --out "$work/edu"
run edu-debug -- "$lkmlab" test --flavor debug --fault-injection --module examples/edu --out "$work/edu-debug"
if grep -qE "rust_edu 0000:[0-9a-f:.]+: edu 1\.0, irq [0-9]+" "$work/edu-debug/console.log"; then
  ok "debug kernel log: rust_edu bound to edu 1.0"
else
  fail "debug kernel log: no 'rust_edu …: edu 1.0, irq N' line" "$(tail -n 40 "$work/edu-debug/console.log")"
fi

finish
