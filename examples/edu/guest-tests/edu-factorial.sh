#!/bin/sh
# The factorial unit through debugfs: write n, read n! back, for known values;
# n > 12 (its factorial does not fit the 32-bit register) and what is not a
# number are refused.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
for pair in 0:1 1:1 2:2 5:120 7:5040 10:3628800 12:479001600 3:6; do
    n=${pair%%:*}
    expected=${pair#*:}
    echo "$n" > "$EDU_DEBUGFS/factorial" || fail "writing $n to factorial failed"
    got=$(cat "$EDU_DEBUGFS/factorial")
    [ "$got" = "$expected" ] || fail "$n! read back as '$got', expected $expected"
done
for bad in 13 4294967295 abc -1 ""; do
    if echo "$bad" > "$EDU_DEBUGFS/factorial" 2>/dev/null; then
        fail "writing '$bad' to factorial succeeded"
    fi
done
# A refused write leaves the last result.
[ "$(cat "$EDU_DEBUGFS/factorial")" = 6 ] || fail "factorial reads '$(cat "$EDU_DEBUGFS/factorial")' after refused writes, expected 6"
edu_unload
