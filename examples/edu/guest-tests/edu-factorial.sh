#!/bin/sh
# The factorial unit through /dev/edu: write n, read n! back, for known
# values; n > 12 (its factorial does not fit the 32-bit register) and what
# is not a command are refused.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
for pair in 0:1 1:1 2:2 5:120 7:5040 10:3628800 12:479001600 3:6; do
    n=${pair%%:*}
    echo "$n" > "$EDU_DEV" || fail "writing $n to $EDU_DEV failed"
    edu_expect factorial "${pair#*:}"
done
for bad in 13 4294967295 abc -1 "" "irq 0" "dma 1" "1 2"; do
    if echo "$bad" > "$EDU_DEV" 2>/dev/null; then
        fail "writing '$bad' to $EDU_DEV succeeded"
    fi
done
# A refused write leaves the last result.
edu_expect factorial 6
edu_unload
