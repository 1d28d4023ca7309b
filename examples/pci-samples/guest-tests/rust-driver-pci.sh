#!/bin/sh
# samples/rust/rust_driver_pci.rs on QEMU's pci-testdev: probe (it maps BAR
# 0, runs the device's first test and reads its config space), unbind and
# bind again through sysfs (so unbind and the driver data's drop run), unload.
set -e
. "$LKMLAB_HELPERS/pci.sh"
addr=$(pci_find 0x1b36 0x0005)
before=$(log_count "pci-testdev data-match count:")

insmod "$LKMLAB_MODULES/rust_driver_pci.ko"
expect_bound "$addr" rust_driver_pci
expect_log_count "pci-testdev data-match count:" $((before + 1))
expect_log_count "pci-testdev config space read16 vendor ID: 1b36" $((before + 1))
expect_log_count "pci-testdev config space read8 rev ID: 0" $((before + 1))

echo "$addr" > /sys/bus/pci/drivers/rust_driver_pci/unbind
expect_bound "$addr" ""
echo "$addr" > /sys/bus/pci/drivers/rust_driver_pci/bind
expect_bound "$addr" rust_driver_pci
expect_log_count "pci-testdev data-match count:" $((before + 2))

rmmod rust_driver_pci
expect_bound "$addr" ""
if [ -e /sys/module/rust_driver_pci ]; then
    echo "rust_driver_pci is still loaded after rmmod"
    exit 1
fi
