#!/bin/sh
# A file of /dev/edu open across unbind: its commands fail with ENODEV from
# then on (the device's state it holds is closed, the BAR and DMA buffer are
# gone with the binding), it keeps the module loaded, and the next binding's
# /dev/edu works beside it. Then an unbind while a DMA round trip runs.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
exec 3<> "$EDU_DEV" || fail "cannot open $EDU_DEV"
echo 4 >&3 || fail "a command through the open file failed"
edu_expect factorial 24

echo "$EDU_ADDR" > /sys/bus/pci/drivers/rust_edu/unbind || fail "unbind failed"
edu_expect_released
if echo 5 >&3 2>/dev/null; then
    fail "a command through a file opened before unbind succeeded after it"
fi
if rmmod rust_edu 2>/dev/null; then
    fail "rmmod succeeded while a file of /dev/edu is open"
fi

echo "$EDU_ADDR" > /sys/bus/pci/drivers/rust_edu/bind || fail "bind failed"
edu_expect_bound
echo 5 > "$EDU_DEV" || fail "a command on the new binding failed"
edu_expect factorial 120
if echo 6 >&3 2>/dev/null; then
    fail "a command through the old binding's file succeeded"
fi
exec 3>&-

# Unbind while a round trip runs (about 200 ms): unbind waits for it, or
# the round trip starts too late and fails; either way nothing is left.
(echo dma > "$EDU_DEV") 2>/dev/null &
round_trip=$!
usleep 50000
echo "$EDU_ADDR" > /sys/bus/pci/drivers/rust_edu/unbind || fail "unbind during a DMA round trip failed"
wait "$round_trip" || echo "the round trip failed (it started after unbind had begun)"
edu_expect_released
echo "$EDU_ADDR" > /sys/bus/pci/drivers/rust_edu/bind || fail "bind after an interrupted round trip failed"
echo dma > "$EDU_DEV" || fail "a DMA round trip after rebinding failed"
edu_unload
