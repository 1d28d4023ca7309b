//! Everything that differs between the architectures lkmlab builds and boots
//! kernels for, in one record (as kunit.py's `qemu_configs/*.py` and
//! virtme-ng's `architectures.py` do): Kbuild's `ARCH`, the kernel image,
//! QEMU's binary, machine and CPU, the console, whether KVM can be probed,
//! the Rust target of the guest runner and the ELF machine of what runs in
//! the guest. Nothing outside this file names an architecture.

use crate::vm::accel::Accel;
use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// What the test VM's machine must have: nothing beyond lkmlab's own
/// channels, or a PCI bus for declared PCI devices
/// ([`crate::vm::devices::machine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    Minimal,
    Pci,
}

/// An architecture a target's kernel is built for and booted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

/// x86-64's CPU under TCG: QEMU's default model plus SMEP and SMAP (the
/// kernel may not execute, nor read or write, user memory), which TCG
/// emulates. Not `max`: that also turns on 5-level paging and a TSC clock
/// source, a different guest from the one measured everywhere else.
const X86_64_TCG_CPU: &str = "qemu64,+smep,+smap";

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// Its name in `lkmlab.toml`, on the command line and in reports (the
    /// kernel's name for it).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The architecture lkmlab itself runs on, if it is one it knows.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// Whether a kernel for it is built on another architecture: then it is
    /// cross-built with clang/LLVM, which targets every architecture without
    /// a GNU cross toolchain (Kbuild derives clang's `--target` from `ARCH`).
    pub fn is_foreign(self) -> bool {
        Arch::host() != Some(self)
    }

    /// Kbuild's `ARCH=`.
    pub fn kbuild(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The make target that builds the bootable image.
    pub fn image_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "bzImage",
            // Uncompressed: QEMU's -kernel boots it directly, and under TCG
            // a decompressor is the slowest part of a boot.
            Arch::Arm64 => "Image",
        }
    }

    /// The bootable image in a build tree.
    pub fn image_path(self) -> &'static str {
        match self {
            Arch::X86_64 => "arch/x86/boot/bzImage",
            Arch::Arm64 => "arch/arm64/boot/Image",
        }
    }

    /// The QEMU system emulator, and the Debian package that has it.
    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }

    pub fn qemu_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Arm64 => "qemu-system-arm",
        }
    }

    /// The serial console the kernel log goes to.
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }

    /// The QEMU machine and CPU, up to (not including) the devices.
    ///
    /// x86-64, [`Machine::Minimal`]: `microvm` — no PCI, no firmware tables
    /// to walk; ACPI off so QEMU announces the virtio-mmio devices on the
    /// kernel command line. [`Machine::Pci`]: `q35`, the PC with PCI
    /// Express (and ACPI, through which the kernel finds its PCI bus and
    /// routes legacy interrupts). `microvm,pcie=on` was measured first
    /// (QEMU 7.2, TCG): it needs ACPI, with ACPI the test kernel hung at
    /// "Calibrating delay loop" in 3 of 3 boots, and QEMU then no longer
    /// passes virtio-mmio devices on the command line.
    ///
    /// The CPU on x86-64: under TCG QEMU's default `qemu64` with SMEP and
    /// SMAP ([`X86_64_TCG_CPU`]; without SMAP a module that dereferences a
    /// user-space pointer directly works in the VM and faults on a real
    /// CPU), the host's under KVM.
    ///
    /// arm64: `virt` for both, whose device tree lists its virtio-mmio slots
    /// and a PCI Express host bridge (the kernel's generic ECAM driver,
    /// `CONFIG_PCI_HOST_GENERIC`). Under TCG the `max` CPU with
    /// `pauth-impdef=on`: QEMU's default (QARMA) pointer-authentication
    /// emulation is several times slower, and every function of a kernel
    /// built with pointer authentication uses it.
    pub fn machine_args(self, accel: Accel, machine: Machine) -> Vec<&'static str> {
        match (self, accel, machine) {
            (Arch::X86_64, Accel::Tcg, Machine::Minimal) => {
                vec!["-M", "microvm,acpi=off", "-cpu", X86_64_TCG_CPU]
            }
            (Arch::X86_64, Accel::Tcg, Machine::Pci) => vec!["-M", "q35", "-cpu", X86_64_TCG_CPU],
            (Arch::X86_64, Accel::Kvm, Machine::Minimal) => {
                vec!["-M", "microvm,acpi=off", "-cpu", "host"]
            }
            (Arch::X86_64, Accel::Kvm, Machine::Pci) => vec!["-M", "q35", "-cpu", "host"],
            (Arch::Arm64, Accel::Tcg, _) => vec!["-M", "virt", "-cpu", "max,pauth-impdef=on"],
            (Arch::Arm64, Accel::Kvm, _) => vec!["-M", "virt", "-cpu", "host"],
        }
    }

    /// Whether the machine has virtio-mmio slots (virtio `-device`s such as
    /// `virtio-rng-device` need them): not q35.
    pub fn has_virtio_mmio(self, machine: Machine) -> bool {
        !matches!((self, machine), (Arch::X86_64, Machine::Pci))
    }

    /// The virtio serial controller of lkmlab's channels (KTAP, control)
    /// on that machine: on virtio-mmio where the machine has it, on PCI
    /// where it has only PCI (q35).
    pub fn virtio_serial(self, machine: Machine) -> &'static str {
        if self.has_virtio_mmio(machine) {
            "virtio-serial-device"
        } else {
            "virtio-serial-pci"
        }
    }

    /// Kernel parameters this architecture's test boots need.
    ///
    /// x86-64: `reboot=t` (a triple-fault reboot, which `-no-reboot` turns
    /// into QEMU exiting) and `no_timer_check`: at boot the kernel checks
    /// that the PIT's interrupt arrives through the IO-APIC by counting ticks
    /// during a busy wait (`timer_irq_works()`); on microvm that check takes
    /// a chain of fallbacks every boot, and under TCG a vCPU starved by the
    /// host sees too few ticks in every one of them and panics: "IO-APIC +
    /// timer doesn't work!" (measured: 8 of 8 boots with QEMU sharing a core
    /// with three busy loops; 0 of 8 with this option, which takes the first
    /// route as working, as the kernel does itself under KVM).
    ///
    /// arm64 reboots through PSCI, which `-no-reboot` also turns into QEMU
    /// exiting; its timer is the architected one, with nothing to check.
    pub fn cmdline(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["reboot=t", "no_timer_check"],
            Arch::Arm64 => &[],
        }
    }

    /// Whether lkmlab can probe KVM for this guest here: only the host's own
    /// architecture can use KVM at all, and the probe (a boot sector that
    /// writes to an I/O port) is x86 code.
    pub fn kvm_probe(self) -> KvmProbe {
        match (self, Arch::host()) {
            (Arch::X86_64, Some(Arch::X86_64)) => KvmProbe::BootSector,
            (arch, Some(host)) if arch == host => KvmProbe::None,
            _ => KvmProbe::Impossible,
        }
    }

    /// The Rust target the guest runner and other guest programs are built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The GNU triplet Debian's cross packages use (`libc6-dev-arm64-cross`
    /// installs under `/usr/<triplet>`).
    pub fn gnu_triplet(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
        }
    }

    /// Debian's name for it (`dpkg --print-architecture`, `.deb` names).
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// `CONFIG_NR_CPUS` when the fragments do not set it: the kernel's
    /// default (7.3's `arch/x86/Kconfig`, `arch/arm64/Kconfig`). On x86-64 a
    /// kernel without `CONFIG_SMP=y` (tinyconfig leaves it off) has one CPU.
    pub fn default_nr_cpus(self, smp: bool) -> u32 {
        match self {
            Arch::X86_64 if smp => 64,
            Arch::X86_64 => 1,
            Arch::Arm64 => 512,
        }
    }

    /// `e_machine` of its ELF files (the runner, busybox, guest test
    /// programs, modules).
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Arm64 => 183,
        }
    }

    /// The architecture of an ELF `e_machine`, for messages.
    pub fn of_elf_machine(machine: u16) -> Option<Arch> {
        Self::ALL.into_iter().find(|a| a.elf_machine() == machine)
    }
}

impl Arch {
    /// The kernel release an image given on the command line (`--kernel
    /// FILE`) was built as, so that modules for another release are refused
    /// before the boot.
    ///
    /// x86-64's `bzImage`: the 16-bit field at 0x20E of its boot header
    /// points (relative to 0x200) at the version string, whose first word is
    /// the release (boot protocol 2.00+). arm64's `Image` is uncompressed:
    /// its `Linux version RELEASE …` banner is in it as is.
    pub fn image_release(self, image: &Path) -> Result<String> {
        let bytes = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
        let not_image = || {
            anyhow!(
                "{} is not a kernel image for {self} ({} expected)",
                image.display(),
                self.image_target()
            )
        };
        let text = match self {
            Arch::X86_64 => {
                if bytes.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
                    return Err(not_image());
                }
                let field = bytes.get(0x20E..0x210).ok_or_else(not_image)?;
                let offset = usize::from(u16::from_le_bytes([field[0], field[1]])) + 0x200;
                bytes.get(offset..).ok_or_else(not_image)?
            }
            Arch::Arm64 => {
                // The arm64 image header's magic, "ARM\x64", at 0x38.
                if bytes.get(0x38..0x3c) != Some(b"ARM\x64".as_slice()) {
                    return Err(not_image());
                }
                const BANNER: &[u8] = b"Linux version ";
                let at = bytes
                    .windows(BANNER.len())
                    .position(|w| w == BANNER)
                    .ok_or_else(not_image)?;
                &bytes[at + BANNER.len()..]
            }
        };
        let end = text
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(text.len())
            .min(256);
        String::from_utf8_lossy(&text[..end])
            .split_whitespace()
            .next()
            .map(str::to_string)
            .ok_or_else(not_image)
    }
}

/// How KVM's use for a guest can be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmProbe {
    /// Boot a boot sector under KVM and time it ([`crate::vm::accel`]).
    BootSector,
    /// The host's own architecture, but lkmlab has no probe for it: KVM only
    /// when asked for (`--accel kvm`).
    None,
    /// Another architecture than the host's: KVM cannot run it.
    Impossible,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for arch in Arch::ALL {
            assert_eq!(Arch::from_name(arch.name()), Some(arch));
            assert_eq!(Arch::of_elf_machine(arch.elf_machine()), Some(arch));
        }
        assert_eq!(Arch::from_name("aarch64"), None);
    }

    /// The host this is tested on is x86-64 (CI's): arm64 is foreign and
    /// cannot use KVM there.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn on_an_x86_host_arm64_is_cross_built_and_emulated() {
        assert!(!Arch::X86_64.is_foreign());
        assert!(Arch::Arm64.is_foreign());
        assert_eq!(Arch::X86_64.kvm_probe(), KvmProbe::BootSector);
        assert_eq!(Arch::Arm64.kvm_probe(), KvmProbe::Impossible);
    }

    #[test]
    fn an_image_names_its_release_and_other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bzImage");
        let mut image = vec![0u8; 0x400];
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let version = b"7.3.4 (root@vm) #1 PREEMPT\0";
        image[0x300..0x300 + version.len()].copy_from_slice(version);
        std::fs::write(&path, &image).unwrap();
        assert_eq!(Arch::X86_64.image_release(&path).unwrap(), "7.3.4");
        let err = Arch::Arm64.image_release(&path).unwrap_err().to_string();
        assert!(
            err.contains("not a kernel image for arm64 (Image expected)"),
            "{err}"
        );

        let mut image = vec![0u8; 0x400];
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let banner = b"Linux version 7.3.4 (lkmlab@lkmlab) #1 SMP\0";
        image[0x200..0x200 + banner.len()].copy_from_slice(banner);
        std::fs::write(&path, &image).unwrap();
        assert_eq!(Arch::Arm64.image_release(&path).unwrap(), "7.3.4");

        std::fs::write(&path, b"not a kernel").unwrap();
        assert!(Arch::X86_64
            .image_release(&path)
            .unwrap_err()
            .to_string()
            .contains("not a kernel image for x86_64 (bzImage expected)"));
    }

    #[test]
    fn each_machine_has_its_own_console_and_cpu() {
        assert_eq!(
            Arch::X86_64.machine_args(Accel::Tcg, Machine::Minimal),
            ["-M", "microvm,acpi=off", "-cpu", "qemu64,+smep,+smap"]
        );
        assert_eq!(
            Arch::X86_64.machine_args(Accel::Kvm, Machine::Minimal),
            ["-M", "microvm,acpi=off", "-cpu", "host"]
        );
        assert_eq!(
            Arch::Arm64.machine_args(Accel::Tcg, Machine::Minimal),
            ["-M", "virt", "-cpu", "max,pauth-impdef=on"]
        );
        assert_eq!(Arch::Arm64.console(), "ttyAMA0");
        assert_eq!(Arch::Arm64.image_path(), "arch/arm64/boot/Image");
    }

    /// A PCI device needs a PCI bus: q35 on x86-64, with the channels on
    /// PCI; arm64's virt has both buses.
    #[test]
    fn a_pci_machine_where_devices_need_one() {
        assert_eq!(
            Arch::X86_64.machine_args(Accel::Tcg, Machine::Pci),
            ["-M", "q35", "-cpu", "qemu64,+smep,+smap"]
        );
        assert_eq!(
            Arch::X86_64.virtio_serial(Machine::Pci),
            "virtio-serial-pci"
        );
        assert_eq!(
            Arch::X86_64.virtio_serial(Machine::Minimal),
            "virtio-serial-device"
        );
        assert_eq!(
            Arch::Arm64.machine_args(Accel::Tcg, Machine::Pci),
            Arch::Arm64.machine_args(Accel::Tcg, Machine::Minimal)
        );
        assert_eq!(
            Arch::Arm64.virtio_serial(Machine::Pci),
            "virtio-serial-device"
        );
    }
}
