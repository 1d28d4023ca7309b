#!/bin/sh
# Interrupts and DMA: each write to raise_irq makes the device interrupt
# (the handler counts it, /proc/interrupts too); each write to dma sends a
# pattern to the device's buffer and back, each transfer ending in an
# interrupt, and the data must come back equal.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
before=$(cat "$EDU_DEBUGFS/interrupts")
proc_before=$(edu_irq_total)
for value in 1 2 4096; do
    echo "$value" > "$EDU_DEBUGFS/raise_irq" || fail "raise_irq $value failed"
done
after=$(cat "$EDU_DEBUGFS/interrupts")
[ "$after" = $((before + 3)) ] || fail "interrupts went from $before to $after after 3 raised, expected $((before + 3))"
proc_after=$(edu_irq_total)
[ "$proc_after" -ge $((proc_before + 3)) ] || fail "/proc/interrupts counts $proc_before then $proc_after on rust_edu's line, expected 3 more"
if echo 0 > "$EDU_DEBUGFS/raise_irq" 2>/dev/null; then
    fail "raise_irq accepted 0 (no status bit)"
fi

for round in 1 2 3; do
    echo 1 > "$EDU_DEBUGFS/dma" || fail "DMA round trip $round failed"
    [ "$(cat "$EDU_DEBUGFS/dma")" = "$round" ] || fail "dma reads '$(cat "$EDU_DEBUGFS/dma")' after $round round trips"
done
# Two transfers a round trip, each ending in an interrupt.
dma_after=$(cat "$EDU_DEBUGFS/interrupts")
[ "$dma_after" = $((after + 6)) ] || fail "interrupts went from $after to $dma_after over 3 DMA round trips, expected $((after + 6))"
edu_unload
