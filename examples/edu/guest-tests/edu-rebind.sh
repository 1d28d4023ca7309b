#!/bin/sh
# Unbind and bind again through sysfs: unbind frees the interrupt, the
# debugfs files and BAR 0; the new binding works (a factorial, an interrupt,
# a DMA round trip) and starts its counters afresh.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
echo 1 > "$EDU_DEBUGFS/raise_irq" || fail "raise_irq failed"
echo 1 > "$EDU_DEBUGFS/dma" || fail "DMA round trip failed"

for round in 1 2; do
    echo "$EDU_ADDR" > /sys/bus/pci/drivers/rust_edu/unbind || fail "unbind $round failed"
    [ -z "$(bound_to "$EDU_ADDR")" ] || fail "$EDU_ADDR still bound to $(bound_to "$EDU_ADDR") after unbind"
    edu_expect_released

    echo "$EDU_ADDR" > /sys/bus/pci/drivers/rust_edu/bind || fail "bind $round failed"
    [ "$(bound_to "$EDU_ADDR")" = rust_edu ] || fail "$EDU_ADDR is bound to '$(bound_to "$EDU_ADDR")' after bind"
    [ "$(edu_irq_lines)" = 1 ] || fail "/proc/interrupts has $(edu_irq_lines) rust_edu lines after bind, expected 1"
    [ "$(cat "$EDU_DEBUGFS/interrupts")" = 0 ] || fail "interrupts reads '$(cat "$EDU_DEBUGFS/interrupts")' after bind, expected 0"
    echo 12 > "$EDU_DEBUGFS/factorial" || fail "factorial after bind $round failed"
    [ "$(cat "$EDU_DEBUGFS/factorial")" = 479001600 ] || fail "12! after bind $round reads '$(cat "$EDU_DEBUGFS/factorial")'"
    echo 1 > "$EDU_DEBUGFS/raise_irq" || fail "raise_irq after bind $round failed"
    echo 1 > "$EDU_DEBUGFS/dma" || fail "DMA round trip after bind $round failed"
    [ "$(cat "$EDU_DEBUGFS/interrupts")" = 3 ] || fail "interrupts reads '$(cat "$EDU_DEBUGFS/interrupts")' after bind $round, expected 3"
done
[ "$(lkmlab-log | grep -c "rust_edu $EDU_ADDR: edu 1\.0")" = 3 ] || fail "expected 3 probe lines (insmod and two binds)"
edu_unload
