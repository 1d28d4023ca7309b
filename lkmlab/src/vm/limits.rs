//! The numbers a VM is started with — `[vm] memory_mib`, `cpus`,
//! `timeout_secs` and `--timeout` — checked before any work against what the
//! target's kernel can boot with, so that a value no run can succeed with
//! is refused at once, naming its key and the range, instead of failing
//! after the build (QEMU refusing `-smp 999`) or as a puzzle (an empty
//! console at 16 MiB, a time-out at 0 s).
//!
//! The range comes from the Kconfig fragments the target's kernel is built
//! from (`CONFIG_NR_CPUS`, `CONFIG_KASAN`), read as `lkmlab show kconfig`
//! reads them: no kernel has to be built to know it.

use crate::build::kconfig::{Entry, Value};
use crate::build::kernel::requested_options;
use crate::config::arch::Arch;
use crate::config::pin::{Vm, PIN_FILE};
use crate::config::project::Project;
use crate::config::target::Target;
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// The least guest memory of a kernel without KASAN: the default flavor's
/// kernel takes 8.4 MiB (text, data and bss of its vmlinux), the test
/// initramfs about 3.5 MiB twice (the archive, then its unpacked files),
/// and the kernel's own allocations the rest; at 32 MiB it was seen to
/// panic at boot, at 16 MiB to print nothing at all. 64 MiB is twice that,
/// with room for the modules under test; the pins lkmlab ships use 256.
pub const MIN_MEMORY_MIB: u32 = 64;

/// The least guest memory of a kernel with KASAN (the debug flavor): its
/// kernel takes 58 MiB (the instrumented code, lockdep's and kmemleak's
/// tables), KASAN's shadow an eighth of all memory, and every allocation
/// carries SLUB debugging's red zones and KASAN's quarantine; twice the
/// floor without KASAN.
pub const MIN_MEMORY_MIB_KASAN: u32 = 128;

/// The shortest time a test run may be given: at `0` QEMU is killed at once.
/// A timeout too short for the kernel to boot (the debug kernel alone takes
/// about 5 s) is reported by the run itself, as a time-out.
pub const MIN_TIMEOUT_SECS: u64 = 1;

/// What one kernel can boot with, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Which kernel, for messages: `the x86_64-debug kernel`.
    kernel: String,
    pub min_memory_mib: u32,
    memory_why: String,
    /// None: not known (a kernel given on the command line).
    pub max_cpus: Option<u32>,
    cpus_why: String,
}

impl Limits {
    /// The limits of `target`'s kernel, from the options its fragments
    /// request.
    pub fn of(project: &Project, target: &Target) -> Result<Limits> {
        Limits::from_options(
            &format!("the {} kernel", target.name()),
            target.arch,
            &requested_options(project, target)?,
        )
    }

    /// The limits of a kernel whose configuration lkmlab does not know (an
    /// image given with `--kernel`): only what no kernel boots with.
    pub fn unknown() -> Limits {
        Limits {
            kernel: "a kernel given with --kernel".into(),
            min_memory_mib: MIN_MEMORY_MIB,
            memory_why: "the least of any kernel, with the test initramfs".into(),
            max_cpus: None,
            cpus_why: String::new(),
        }
    }

    /// The limits of `kernel` (its name in messages) for `arch`, built from
    /// the merged fragment `options`.
    pub fn from_options(
        kernel: &str,
        arch: Arch,
        options: &BTreeMap<String, Entry>,
    ) -> Result<Limits> {
        let yes = |name: &str| options.get(name).filter(|e| e.value == Value::Yes);
        let (min_memory_mib, memory_why) = match yes("CONFIG_KASAN") {
            Some(kasan) => (
                MIN_MEMORY_MIB_KASAN,
                format!(
                    "it has KASAN ({}), whose shadow takes an eighth of the memory, and a \
                     kernel several times larger",
                    kasan.origin
                ),
            ),
            None => (
                MIN_MEMORY_MIB,
                "for the kernel, the test initramfs and its unpacked files".into(),
            ),
        };
        let (max_cpus, cpus_why) = match options.get("CONFIG_NR_CPUS") {
            Some(entry) => {
                let raw = entry.value.to_dotconfig_rhs();
                let Some(n) = raw.parse::<u32>().ok().filter(|&n| n > 0) else {
                    bail!(
                        "CONFIG_NR_CPUS={raw} in {}: the number of CPUs must be a positive \
                         decimal number",
                        entry.origin
                    );
                };
                (n, format!("CONFIG_NR_CPUS={n} in {}", entry.origin))
            }
            None => {
                let smp = yes("CONFIG_SMP").is_some();
                let n = arch.default_nr_cpus(smp);
                let why = match (arch, smp) {
                    (Arch::X86_64, false) => {
                        "no CONFIG_SMP=y in its fragments: one CPU; add CONFIG_SMP=y and \
                         CONFIG_NR_CPUS=N for more"
                            .to_string()
                    }
                    _ => format!(
                        "no CONFIG_NR_CPUS in its fragments: the kernel's default for {arch}, {n}"
                    ),
                };
                (n, why)
            }
        };
        Ok(Limits {
            kernel: kernel.to_string(),
            min_memory_mib,
            memory_why,
            max_cpus: Some(max_cpus),
            cpus_why,
        })
    }

    /// Refuse `[vm] memory_mib` and `[vm] cpus` outside what the kernel can
    /// boot with, naming the key, the range and why.
    pub fn check(&self, vm: &Vm) -> Result<()> {
        let kernel = &self.kernel;
        if vm.memory_mib < self.min_memory_mib {
            bail!(
                "{PIN_FILE} [vm] memory_mib = {}: {kernel} needs at least {} MiB ({}); set \
                 memory_mib to {} or more",
                vm.memory_mib,
                self.min_memory_mib,
                self.memory_why,
                self.min_memory_mib
            );
        }
        match self.max_cpus {
            Some(max) if !(1..=max).contains(&vm.cpus) => bail!(
                "{PIN_FILE} [vm] cpus = {}: {kernel} runs on 1 to {max} CPUs ({}); set cpus in \
                 that range",
                vm.cpus,
                self.cpus_why
            ),
            None if vm.cpus == 0 => bail!(
                "{PIN_FILE} [vm] cpus = 0: a VM needs at least one CPU; set cpus to 1 or more"
            ),
            _ => Ok(()),
        }
    }
}

/// Refuse a test run's time limit below [`MIN_TIMEOUT_SECS`]: `--timeout`
/// when it is given (`flag`), else `[vm] timeout_secs`.
pub fn check_timeout(vm: &Vm, flag: Option<u64>) -> Result<()> {
    let (key, secs) = match flag {
        Some(secs) => (format!("--timeout {secs}"), secs),
        None => (
            format!("{PIN_FILE} [vm] timeout_secs = {}", vm.timeout_secs),
            vm.timeout_secs,
        ),
    };
    if secs < MIN_TIMEOUT_SECS {
        bail!(
            "{key}: the VM would be killed as soon as it started; a run's time limit is \
             {MIN_TIMEOUT_SECS} s or more: give the seconds the whole run may take (the debug \
             kernel alone boots in about 5 s; lkmlab's pins give 120)"
        );
    }
    Ok(())
}

/// Refuse, before any work, the `[vm]` values that `target`'s kernel (None:
/// an image given with `--kernel`) cannot boot with.
pub fn check(project: &Project, target: Option<&Target>) -> Result<()> {
    let limits = match target {
        Some(t) => Limits::of(project, t)?,
        None => Limits::unknown(),
    };
    limits.check(&project.pin.vm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::kconfig::{merge, parse_fragment};
    use crate::config::pin::AccelChoice;

    fn options(fragments: &[(&str, &str)]) -> BTreeMap<String, Entry> {
        let parsed: Vec<_> = fragments
            .iter()
            .map(|(file, text)| parse_fragment(text, file).unwrap())
            .collect();
        merge(&parsed)
    }

    fn vm(memory_mib: u32, cpus: u32, timeout_secs: u64) -> Vm {
        Vm {
            memory_mib,
            cpus,
            timeout_secs,
            accel: AccelChoice::Auto,
            devices: Vec::new(),
        }
    }

    fn repo_fragment(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../kernel-config")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_repository_fragments_allow_8_cpus_and_the_debug_flavor_needs_more_memory() {
        let base = repo_fragment("base.config");
        let debug = repo_fragment("debug.config");
        let default = Limits::from_options(
            "the x86_64 kernel",
            Arch::X86_64,
            &options(&[("kernel-config/base.config", &base)]),
        )
        .unwrap();
        assert_eq!(
            (default.min_memory_mib, default.max_cpus),
            (MIN_MEMORY_MIB, Some(8))
        );
        let with_debug = Limits::from_options(
            "the x86_64-debug kernel",
            Arch::X86_64,
            &options(&[
                ("kernel-config/base.config", &base),
                ("kernel-config/debug.config", &debug),
            ]),
        )
        .unwrap();
        assert_eq!(
            (with_debug.min_memory_mib, with_debug.max_cpus),
            (MIN_MEMORY_MIB_KASAN, Some(8))
        );
        // The pins lkmlab ships fit both.
        default.check(&vm(256, 2, 120)).unwrap();
        with_debug.check(&vm(256, 2, 120)).unwrap();

        let err = with_debug.check(&vm(64, 2, 120)).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "lkmlab.toml [vm] memory_mib = 64: the x86_64-debug kernel needs at least \
                 128 MiB (it has KASAN (kernel-config/debug.config:"
            ) && err.ends_with("set memory_mib to 128 or more"),
            "{err}"
        );
        default.check(&vm(64, 2, 120)).unwrap();
        for cpus in [0, 9, 999] {
            let err = default.check(&vm(256, cpus, 120)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(
                    "lkmlab.toml [vm] cpus = {cpus}: the x86_64 kernel runs on 1 to 8 CPUs \
                     (CONFIG_NR_CPUS=8 in kernel-config/base.config:"
                )) && err.ends_with("set cpus in that range"),
                "{err}"
            );
        }
        default.check(&vm(256, 8, 120)).unwrap();
        default.check(&vm(256, 1, 120)).unwrap();
    }

    #[test]
    fn without_nr_cpus_the_kernels_default_is_the_ceiling() {
        let limit = |arch, text: &str| {
            Limits::from_options("k", arch, &options(&[("f", text)]))
                .unwrap()
                .max_cpus
        };
        assert_eq!(limit(Arch::X86_64, "CONFIG_SMP=y\n"), Some(64));
        assert_eq!(limit(Arch::X86_64, ""), Some(1));
        assert_eq!(limit(Arch::X86_64, "# CONFIG_SMP is not set\n"), Some(1));
        assert_eq!(limit(Arch::Arm64, ""), Some(512));
        let err = Limits::from_options("k", Arch::X86_64, &options(&[("f", "")]))
            .unwrap()
            .check(&vm(256, 2, 120))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 to 1 CPUs (no CONFIG_SMP=y"), "{err}");
        let err = Limits::from_options(
            "k",
            Arch::X86_64,
            &options(&[("f.config", "CONFIG_NR_CPUS=\"many\"\n")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("CONFIG_NR_CPUS=\"many\" in f.config:1"),
            "{err}"
        );
    }

    #[test]
    fn a_kernel_given_on_the_command_line_is_held_to_what_no_kernel_boots_with() {
        let given = Limits::unknown();
        given.check(&vm(64, 64, 120)).unwrap();
        let err = given.check(&vm(256, 0, 120)).unwrap_err().to_string();
        assert!(
            err.contains("[vm] cpus = 0: a VM needs at least one CPU"),
            "{err}"
        );
        assert!(given.check(&vm(32, 1, 120)).is_err());
    }

    #[test]
    fn a_timeout_of_zero_is_refused_from_the_pin_or_the_command_line() {
        check_timeout(&vm(256, 2, 120), None).unwrap();
        check_timeout(&vm(256, 2, 0), Some(5)).unwrap();
        let err = check_timeout(&vm(256, 2, 0), None).unwrap_err().to_string();
        assert!(
            err.starts_with("lkmlab.toml [vm] timeout_secs = 0: the VM would be killed")
                && err.contains("1 s or more"),
            "{err}"
        );
        let err = check_timeout(&vm(256, 2, 120), Some(0))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--timeout 0: "), "{err}");
    }
}
