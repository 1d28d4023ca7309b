#!/bin/sh
# Interrupts and DMA: each "irq V" written to /dev/edu makes the device
# interrupt (the handler counts it, /proc/interrupts too); each "dma" sends a
# pattern to the device's buffer and back, each transfer ending in an
# interrupt, and the data must come back equal. Then two writers at once.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
proc_before=$(edu_irq_total)
for value in 1 2 4096; do
    echo "irq $value" > "$EDU_DEV" || fail "irq $value failed"
done
edu_expect interrupts 3
proc_after=$(edu_irq_total)
[ "$proc_after" -ge $((proc_before + 3)) ] || fail "/proc/interrupts counts $proc_before then $proc_after on rust_edu's line, expected 3 more"

for round in 1 2 3; do
    echo dma > "$EDU_DEV" || fail "DMA round trip $round failed"
    edu_expect dma "$round"
done
# Two transfers a round trip, each ending in an interrupt.
edu_expect interrupts 9

# Two writers at once: the commands take turns on the device.
(for _ in 1 2 3; do echo dma > "$EDU_DEV" || exit 1; done) &
dma_writer=$!
(for _ in 1 2 3; do echo "irq 1" > "$EDU_DEV" && echo 12 > "$EDU_DEV" || exit 1; done) &
other_writer=$!
wait "$dma_writer" || fail "a DMA round trip failed beside another writer"
wait "$other_writer" || fail "an interrupt or a factorial failed beside a DMA writer"
edu_expect dma 6
edu_expect interrupts 18
edu_expect factorial 479001600
edu_unload
