#!/bin/sh
# scull's write(2) error path: fail each allocation of one write in turn with
# the guest's fail-nth helper (a kernel with fault injection: the debug
# flavor; elsewhere this test skips). A write whose allocation failed must
# report the error and leave the device empty, or, where the failure was
# handled, store everything; with no allocation left to fail, the write must
# succeed. See docs/guest-tests.md.
# One load for the whole sweep: a write that failed must leave the device
# empty, so it is emptied (reloaded) only after a write that stored data.
# On a kernel scull does not build for (6.12: its `kernel` crate is older),
# lkmlab reports scull skipped, and this test skips with it.
if [ ! -e "$LKMLAB_MODULES/scull.ko" ]; then
    echo "scull.ko was not built for this kernel"
    exit 77
fi
insmod "$LKMLAB_MODULES/scull.ko" || exit 1
n=1
while :; do
  fail-nth "$n" write sh -c 'printf hello >/dev/scull' 2>/tmp/fail-nth.log
  status=$?
  got=$(cat /dev/scull)
  case $status in
  125) break ;;
  126) cat /tmp/fail-nth.log; rmmod scull; exit 77 ;;
  0) expect=hello ;;
  *) expect= ;;
  esac
  if [ "$got" != "$expect" ]; then
    cat /tmp/fail-nth.log
    echo "allocation $n failed, the write exited with $status, and /dev/scull holds '$got'"
    rmmod scull
    exit 1
  fi
  if [ -n "$got" ]; then
    { rmmod scull && insmod "$LKMLAB_MODULES/scull.ko"; } || exit 1
  fi
  n=$((n + 1))
done
rmmod scull || exit 1
if [ "$got" != hello ]; then
  echo "with no allocation failing, /dev/scull holds '$got', expected 'hello'"
  exit 1
fi
echo "a 5-byte write to /dev/scull makes $((n - 1)) allocation(s) from module code; each failed cleanly"
