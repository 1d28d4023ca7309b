#!/bin/sh
# Unbind and bind again through sysfs: unbind frees the interrupt, /dev/edu
# and BAR 0; the new binding works (a factorial, an interrupt, a DMA round
# trip) and starts its counters afresh.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
echo "irq 1" > "$EDU_DEV" || fail "irq failed"
echo dma > "$EDU_DEV" || fail "DMA round trip failed"

for round in 1 2; do
    echo "$EDU_ADDR" > /sys/bus/pci/drivers/rust_edu/unbind || fail "unbind $round failed"
    [ -z "$(bound_to "$EDU_ADDR")" ] || fail "$EDU_ADDR still bound to $(bound_to "$EDU_ADDR") after unbind"
    edu_expect_released

    echo "$EDU_ADDR" > /sys/bus/pci/drivers/rust_edu/bind || fail "bind $round failed"
    edu_expect_bound
    [ "$(edu_irq_lines)" = 1 ] || fail "/proc/interrupts has $(edu_irq_lines) rust_edu lines after bind, expected 1"
    edu_expect interrupts 0
    edu_expect dma 0
    echo 12 > "$EDU_DEV" || fail "factorial after bind $round failed"
    edu_expect factorial 479001600
    echo "irq 1" > "$EDU_DEV" || fail "irq after bind $round failed"
    echo dma > "$EDU_DEV" || fail "DMA round trip after bind $round failed"
    edu_expect interrupts 3
    edu_expect dma 1
done
[ "$(lkmlab-log | grep -c "rust_edu $EDU_ADDR: edu 1\.0")" = 3 ] || fail "expected 3 probe lines (insmod and two binds)"
edu_unload
