#!/bin/sh
# A read of /dev/edu allocates its report: fail each allocation of a read in
# turn (fail-nth, debug kernel only; skipped elsewhere). The read fails, or
# the failure hit an allocation outside the driver that the read survives
# (seen: a page-table page for the page fault on the reader's buffer during
# the copy, counted because the driver is on the stack) and the report is
# whole. Nothing fails after: the next read and a command work.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
n=1
while :; do
    fail-nth "$n" read cat "$EDU_DEV" >/tmp/edu-report 2>/tmp/fail-nth.log
    status=$?
    case $status in
    125) break ;;                                  # no allocation n: the read just worked
    126) cat /tmp/fail-nth.log; rmmod rust_edu; exit 77 ;;
    0) grep -q '^version 1\.0$' /tmp/edu-report || fail "allocation $n of a read failed and the read returned: $(cat /tmp/edu-report)" ;;
    esac
    edu_expect version 1.0
    n=$((n + 1))
done
[ "$n" -gt 1 ] || fail "a read of $EDU_DEV made no allocation to fail"
echo 3 > "$EDU_DEV" || fail "a command after the failed reads failed"
edu_expect factorial 6
edu_unload
