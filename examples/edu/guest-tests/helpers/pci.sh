#!/bin/sh
# Shared by the guest tests of this directory (sourced): find a PCI device,
# bind and unbind it through sysfs, look for kernel log lines. The same file
# is in every examples/*/guest-tests/helpers/ (each example directory is
# whole, to copy out); tests/e2e/drivers.sh keeps the copies equal.

# pci_find VENDOR DEVICE: the address (0000:00:03.0) of the first such device.
pci_find() {
    for dev in /sys/bus/pci/devices/*; do
        [ -e "$dev/vendor" ] || continue
        if [ "$(cat "$dev/vendor")" = "$1" ] && [ "$(cat "$dev/device")" = "$2" ]; then
            basename "$dev"
            return 0
        fi
    done
    # To stderr: stdout is the caller's $(...).
    echo "no PCI device $1:$2 in the VM (is it declared in devices.toml?)" >&2
    return 1
}

# bound_to ADDR: the driver ADDR is bound to, or nothing.
bound_to() {
    if [ -e "/sys/bus/pci/devices/$1/driver" ]; then
        basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
    fi
}

# expect_bound ADDR DRIVER
expect_bound() {
    got=$(bound_to "$1")
    if [ "$got" != "$2" ]; then
        echo "$1 is bound to '${got:-nothing}', expected $2"
        exit 1
    fi
}

# log_count TEXT: how many kernel log lines hold TEXT.
log_count() {
    dmesg | grep -cF -- "$1" || true
}

# expect_log_count TEXT N
expect_log_count() {
    n=$(log_count "$1")
    if [ "$n" != "$2" ]; then
        echo "the kernel log has $n line(s) with '$1', expected $2:"
        dmesg | tail -n 20
        exit 1
    fi
}
