#!/bin/sh
# samples/rust/rust_dma.rs on QEMU's pci-testdev: probe (a coherent buffer
# filled by the CPU, a scatter-gather table mapped for the device), unbind
# (it checks the buffer and prints the table's DMA addresses; a wrong value
# panics, which ends the run as an oops), bind again, unload.
set -e
. "$LKMLAB_HELPERS/pci.sh"
addr=$(pci_find 0x1b36 0x0005)
probes=$(log_count "Probe DMA test driver.")
unloads=$(log_count "Unload DMA test driver.")

insmod "$LKMLAB_MODULES/rust_dma.ko"
expect_bound "$addr" rust_dma
expect_log_count "Probe DMA test driver." $((probes + 1))

echo "$addr" > /sys/bus/pci/drivers/rust_dma/unbind
expect_bound "$addr" ""
expect_log_count "Unload DMA test driver." $((unloads + 1))
if ! dmesg | grep -q "rust_dma $addr: Entry\[0\]: DMA address: 0x"; then
    echo "unbind printed no DMA address of the scatter-gather table:"
    dmesg | tail -n 20
    exit 1
fi

echo "$addr" > /sys/bus/pci/drivers/rust_dma/bind
expect_bound "$addr" rust_dma
expect_log_count "Probe DMA test driver." $((probes + 2))

rmmod rust_dma
expect_bound "$addr" ""
expect_log_count "Unload DMA test driver." $((unloads + 2))
