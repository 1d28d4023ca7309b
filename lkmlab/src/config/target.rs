//! A target: what one kernel build and one test run are for — a kernel of
//! the pin, an architecture and a flavor — resolved from the pin once and
//! passed down, so that nothing below looks a kernel or a flavor up by name
//! again.

use crate::config::arch::Arch;
use crate::config::pin::{Compiler, Flavor, Minimums, PinnedFile, Tarball, TargetCfg, PIN_FILE};
use crate::config::project::Project;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The flavor every project has, listed in the pin or not.
pub const DEFAULT_FLAVOR: &str = "default";

/// One kernel of the pin: `[kernel]` (the default) or a `[kernels.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPin {
    /// `[kernels.NAME]`'s NAME, or the default kernel's series (`7.3`).
    pub name: String,
    /// Whether it is `[kernel]`.
    pub is_default: bool,
    /// `make kernelrelease` of its source.
    pub version: String,
    pub deb: PinnedFile,
    pub tarball: Tarball,
    pub minimums: Minimums,
    /// Its own Kconfig fragments (none for the default kernel).
    pub fragments: Vec<String>,
}

impl KernelPin {
    /// The table of the pin it comes from, for messages.
    pub fn table(&self) -> String {
        if self.is_default {
            "[kernel]".to_string()
        } else {
            format!("[kernels.\"{}\"]", self.name)
        }
    }
}

/// The series of a kernel release: `7.3.4` → `7.3`.
fn series(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// One (kernel, architecture, flavor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kernel: KernelPin,
    pub arch: Arch,
    /// The flavor's name (`default`, or a key of `[kconfig.flavors]`).
    pub flavor_name: String,
    pub flavor: Flavor,
}

impl Target {
    /// Its name on the command line (`--target`) and in the matrix: the
    /// kernel unless it is the default one, the architecture, then the
    /// flavor unless it is the default one (`x86_64`, `arm64`,
    /// `x86_64-debug`, `6.12-x86_64`).
    pub fn name(&self) -> String {
        let mut name = String::new();
        if !self.kernel.is_default {
            name.push_str(&self.kernel.name);
            name.push('-');
        }
        name.push_str(self.arch.name());
        if self.flavor_name != DEFAULT_FLAVOR {
            name.push('-');
            name.push_str(&self.flavor_name);
        }
        name
    }

    /// The folder name of its results (`target/lkmlab/<label>/`) and the
    /// prefix of its kernel tree in the cache: the flavor alone on x86-64
    /// (where lkmlab put them before it had other architectures, so that an
    /// x86-only project's paths stay as they were), else
    /// `<arch>-<flavor>`; a kernel other than the default one comes first
    /// (`6.12-x86_64-default`).
    pub fn label(&self) -> String {
        match (self.kernel.is_default, self.arch) {
            (true, Arch::X86_64) => self.flavor_name.clone(),
            (true, arch) => format!("{arch}-{}", self.flavor_name),
            (false, arch) => format!("{}-{arch}-{}", self.kernel.name, self.flavor_name),
        }
    }

    /// The JUnit suite (and class) its results are named in: `lkmlab` on
    /// x86-64, as before lkmlab had other architectures (so an x86-only
    /// project's CI keeps its test IDs), `lkmlab.<label>` on another, so
    /// that a CI system merging several targets' files keeps them apart.
    pub fn junit_suite(&self) -> String {
        match (self.kernel.is_default, self.arch) {
            (true, Arch::X86_64) => "lkmlab".to_string(),
            _ => format!("lkmlab.{}", self.label()),
        }
    }

    /// The compiler the kernel and its modules are built with: the flavor's
    /// on the host's own architecture; clang/LLVM for another, which it
    /// cross-compiles to without a GNU cross toolchain.
    pub fn compiler(&self) -> Compiler {
        if self.arch.is_foreign() {
            Compiler::Llvm
        } else {
            self.flavor.compiler
        }
    }
}

#[cfg(test)]
impl Target {
    /// The default flavor of lkmlab's own pin's default kernel on `arch`,
    /// for tests that need a target but no project.
    pub fn example(arch: Arch) -> Target {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join(PIN_FILE)).expect("lkmlab's own pin");
        let project = Project {
            root,
            pin: crate::config::pin::parse_pin(&text).expect("lkmlab's own pin parses"),
        };
        Target {
            kernel: project.default_kernel(),
            arch,
            flavor_name: DEFAULT_FLAVOR.into(),
            flavor: Flavor::default(),
        }
    }
}

/// What the command line asks for: a declared target by name, or a
/// kernel, an architecture and a flavor (each defaulting to the default
/// target's).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub target: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<Arch>,
    pub flavor: Option<String>,
}

impl Project {
    /// The default kernel, `[kernel]`, named by its series.
    pub fn default_kernel(&self) -> KernelPin {
        let k = &self.pin.kernel;
        let tc = &self.pin.toolchain;
        KernelPin {
            name: series(&k.version),
            is_default: true,
            version: k.version.clone(),
            deb: k.deb.clone(),
            tarball: k.tarball.clone(),
            minimums: Minimums {
                rustc_min: tc.rustc_min.clone(),
                bindgen_min: tc.bindgen_min.clone(),
                libclang_min: tc.libclang_min.clone(),
                llvm_min: tc.llvm_min.clone(),
            },
            fragments: Vec::new(),
        }
    }

    /// Every kernel of the pin: the default one first, then `[kernels]`.
    pub fn kernels(&self) -> Result<Vec<KernelPin>> {
        let default = self.default_kernel();
        let mut all = vec![default.clone()];
        for (name, k) in &self.pin.kernels {
            if name == &default.name {
                bail!(
                    "{PIN_FILE} [kernels.\"{name}\"]: {name} is already the name of [kernel] \
                     (its series); give the other kernel another name"
                );
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'))
            {
                bail!(
                    "{PIN_FILE} [kernels.\"{name}\"]: a kernel's name is letters, digits, `.` \
                     and `_` (it names targets and folders), such as \"6.12\""
                );
            }
            all.push(KernelPin {
                name: name.clone(),
                is_default: false,
                version: k.version.clone(),
                deb: k.deb.clone(),
                tarball: k.tarball.clone(),
                minimums: k.toolchain.clone(),
                fragments: k.fragments.clone(),
            });
        }
        Ok(all)
    }

    /// A kernel by name: a `[kernels.NAME]`, or `[kernel]`'s series.
    pub fn kernel(&self, name: &str) -> Result<KernelPin> {
        let all = self.kernels()?;
        match all.iter().find(|k| k.name == name) {
            Some(k) => Ok(k.clone()),
            None => bail!(
                "unknown kernel {name:?}; {PIN_FILE} pins: {} ([kernel] by its series, \
                 then [kernels.NAME])",
                all.iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The highest minimums of the kernels of `targets` (the default
    /// kernel's without any): what one toolchain building all of them must
    /// meet.
    pub fn minimums(&self, targets: &[Target]) -> Minimums {
        let mut kernels = targets.iter().map(|t| &t.kernel.minimums);
        let Some(first) = kernels.next() else {
            return self.default_kernel().minimums;
        };
        let mut min = first.clone();
        for m in kernels {
            for (have, want) in [
                (&mut min.rustc_min, &m.rustc_min),
                (&mut min.bindgen_min, &m.bindgen_min),
                (&mut min.libclang_min, &m.libclang_min),
                (&mut min.llvm_min, &m.llvm_min),
            ] {
                if want > have {
                    *have = want.clone();
                }
            }
        }
        min
    }

    /// A flavor by name; `default` exists even when the pin does not list it.
    pub fn flavor(&self, flavor: &str) -> Result<Flavor> {
        match self.pin.kconfig.flavors.get(flavor) {
            Some(f) => Ok(f.clone()),
            None if flavor == DEFAULT_FLAVOR => Ok(Flavor::default()),
            None => bail!(
                "unknown flavor {flavor:?}; {PIN_FILE} [kconfig.flavors] defines: {}",
                self.pin
                    .kconfig
                    .flavors
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The target of a kernel, an architecture and a flavor.
    pub fn target_of(&self, kernel: KernelPin, arch: Arch, flavor: &str) -> Result<Target> {
        Ok(Target {
            kernel,
            arch,
            flavor_name: flavor.to_string(),
            flavor: self.flavor(flavor)?,
        })
    }

    /// The targets `[[targets]]` declares, in order; without any, the one
    /// every project has: x86-64, default flavor.
    pub fn targets(&self) -> Result<Vec<Target>> {
        let declared: Vec<TargetCfg> = if self.pin.targets.is_empty() {
            vec![TargetCfg::default()]
        } else {
            self.pin.targets.clone()
        };
        let mut targets: Vec<Target> = Vec::new();
        for cfg in &declared {
            let target = match &cfg.kernel {
                Some(name) => self.kernel(name),
                None => Ok(self.default_kernel()),
            }
            .and_then(|kernel| self.target_of(kernel, cfg.arch, &cfg.flavor))
            .with_context(|| format!("{PIN_FILE} [[targets]] arch = \"{}\"", cfg.arch))?;
            if targets.iter().any(|t| t.name() == target.name()) {
                bail!(
                    "{PIN_FILE} [[targets]] lists {} twice; each kernel, architecture and \
                     flavor once",
                    target.name()
                );
            }
            targets.push(target);
        }
        Ok(targets)
    }

    /// The default target: the first declared.
    pub fn default_target(&self) -> Result<Target> {
        let mut all = self.targets()?;
        Ok(all.remove(0))
    }

    /// The one target a command line selects: `--target NAME` (declared),
    /// else `--kernel-name`/`--arch`/`--flavor` over the default target's.
    pub fn select(&self, sel: &Selection) -> Result<Target> {
        if let Some(name) = &sel.target {
            let all = self.targets()?;
            return match all.iter().find(|t| &t.name() == name) {
                Some(t) => Ok(t.clone()),
                None => bail!(
                    "no target {name:?} in {PIN_FILE}; its targets: {} (or give \
                     --kernel-name, --arch and --flavor for any kernel, architecture and flavor)",
                    all.iter().map(Target::name).collect::<Vec<_>>().join(", ")
                ),
            };
        }
        let default = self.default_target()?;
        let kernel = match &sel.kernel {
            Some(name) => self.kernel(name)?,
            None => default.kernel,
        };
        let arch = sel.arch.unwrap_or(default.arch);
        let flavor = sel.flavor.as_deref().unwrap_or(&default.flavor_name);
        self.target_of(kernel, arch, flavor)
    }

    /// What `lkmlab check` runs: every declared target, unless the command
    /// line selects one.
    pub fn check_targets(&self, sel: &Selection) -> Result<Vec<Target>> {
        if sel.target.is_none()
            && sel.kernel.is_none()
            && sel.arch.is_none()
            && sel.flavor.is_none()
        {
            self.targets()
        } else {
            Ok(vec![self.select(sel)?])
        }
    }

    /// The fragment files of a target, in the order they apply: `[kconfig]
    /// fragments`, then its architecture's (`[kconfig.arch.<arch>]`), its
    /// kernel's (`[kernels.NAME] fragments`), then its flavor's.
    pub fn fragments(&self, target: &Target) -> Result<Vec<PathBuf>> {
        let kconfig = &self.pin.kconfig;
        let arch = match kconfig.arch.get(&target.arch) {
            Some(a) => a.fragments.as_slice(),
            // Pins from before architectures had fragments of their own
            // hold x86-64's options in the shared fragments.
            None if target.arch == Arch::X86_64 => &[],
            None => bail!(
                "{PIN_FILE} has no [kconfig.arch.{arch}]: a kernel for {arch} needs \
                 architecture options of its own (its serial console, its image). Add\n\n\
                 [kconfig.arch.{arch}]\nfragments = [\"kernel-config/{arch}.config\"]\n\n\
                 with that file copied from lkmlab's templates/default/kernel-config/{arch}.config, \
                 and move the x86-only options out of your shared fragments (KERNEL_LZ4, \
                 KERNEL_XZ, EARLY_PRINTK, SERIAL_8250, SERIAL_8250_CONSOLE, HYPERVISOR_GUEST, \
                 PARAVIRT, KVM_GUEST in base.config; ACPI in virtme.config) into \
                 kernel-config/x86_64.config under [kconfig.arch.x86_64] (`lkmlab init` in an \
                 empty directory shows the layout)",
                arch = target.arch
            ),
        };
        Ok(kconfig
            .fragments
            .iter()
            .chain(arch)
            .chain(&target.kernel.fragments)
            .chain(&target.flavor.fragments)
            .map(|f| self.root.join(f))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pin::parse_pin;

    /// lkmlab's own pin without its `[[targets]]` (the last tables in
    /// the file), and `extra` after it.
    fn project(extra: &str) -> Project {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut text = std::fs::read_to_string(root.join(PIN_FILE)).unwrap();
        if let Some(at) = text.find("\n[[targets]]") {
            text.truncate(at + 1);
        }
        text.push_str(extra);
        Project {
            root,
            pin: parse_pin(&text).unwrap(),
        }
    }

    #[test]
    fn a_pin_without_targets_has_the_x86_default_one() {
        let p = project("");
        let all = p.targets().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].arch, all[0].name()),
            (Arch::X86_64, "x86_64".into())
        );
        assert_eq!(all[0].label(), "default");
    }

    #[test]
    fn targets_are_declared_in_order_and_selected_by_name_or_parts() {
        let p = project(
            "\n[[targets]]\narch = \"x86_64\"\n\n[[targets]]\narch = \"arm64\"\n\n\
             [[targets]]\narch = \"x86_64\"\nflavor = \"debug\"\n",
        );
        let names: Vec<String> = p.targets().unwrap().iter().map(Target::name).collect();
        assert_eq!(names, ["x86_64", "arm64", "x86_64-debug"]);
        let by_name = p
            .select(&Selection {
                target: Some("arm64".into()),
                ..Selection::default()
            })
            .unwrap();
        assert_eq!(
            (by_name.arch, by_name.label()),
            (Arch::Arm64, "arm64-default".into())
        );
        let by_parts = p
            .select(&Selection {
                flavor: Some("debug".into()),
                ..Selection::default()
            })
            .unwrap();
        assert_eq!(by_parts.name(), "x86_64-debug");
        assert_eq!(by_parts.compiler(), Compiler::Llvm);
        assert_eq!(p.check_targets(&Selection::default()).unwrap().len(), 3);
        let err = p
            .select(&Selection {
                target: Some("riscv".into()),
                ..Selection::default()
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no target \"riscv\"") && err.contains("x86_64, arm64, x86_64-debug"),
            "{err}"
        );
    }

    #[test]
    fn a_target_listed_twice_is_refused() {
        let p = project("\n[[targets]]\narch = \"arm64\"\n\n[[targets]]\narch = \"arm64\"\n");
        let err = p.targets().unwrap_err().to_string();
        assert!(err.contains("lists arm64 twice"), "{err}");
    }

    #[test]
    fn an_architecture_without_fragments_of_its_own_is_refused_with_the_fix() {
        let mut p = project("");
        p.pin.kconfig.arch.clear();
        let x86 = p
            .target_of(p.default_kernel(), Arch::X86_64, DEFAULT_FLAVOR)
            .unwrap();
        assert_eq!(p.fragments(&x86).unwrap().len(), 2);
        let arm = p
            .target_of(p.default_kernel(), Arch::Arm64, DEFAULT_FLAVOR)
            .unwrap();
        let err = p.fragments(&arm).unwrap_err().to_string();
        assert!(
            err.contains("no [kconfig.arch.arm64]")
                && err.contains("fragments = [\"kernel-config/arm64.config\"]"),
            "{err}"
        );
    }

    #[test]
    fn a_target_names_a_kernel_of_the_pin() {
        let p = project(
            "\n[[targets]]\narch = \"x86_64\"\n\n[[targets]]\narch = \"x86_64\"\n\
             kernel = \"6.12\"\n\n[[targets]]\narch = \"arm64\"\nkernel = \"7.3\"\n",
        );
        let all = p.targets().unwrap();
        let names: Vec<String> = all.iter().map(Target::name).collect();
        assert_eq!(names, ["x86_64", "6.12-x86_64", "arm64"]);
        let labels: Vec<String> = all.iter().map(Target::label).collect();
        assert_eq!(labels, ["default", "6.12-x86_64-default", "arm64-default"]);
        assert_eq!(all[1].junit_suite(), "lkmlab.6.12-x86_64-default");
        assert_eq!(all[1].kernel.version, "6.12.117");
        assert_eq!(all[1].kernel.table(), "[kernels.\"6.12\"]");
        // One toolchain builds both: the highest minimums of the two.
        let min = p.minimums(&all);
        assert_eq!(min, p.default_kernel().minimums);
        let only_612 = p.minimums(&all[1..2]);
        assert_eq!(only_612.rustc_min.to_string(), "1.78.0");
        let by_parts = p
            .select(&Selection {
                kernel: Some("6.12".into()),
                flavor: Some("debug".into()),
                ..Selection::default()
            })
            .unwrap();
        assert_eq!(by_parts.name(), "6.12-x86_64-debug");
        let err = p
            .select(&Selection {
                kernel: Some("5.15".into()),
                ..Selection::default()
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown kernel \"5.15\"") && err.contains("pins: 7.3, 6.12"),
            "{err}"
        );
    }

    #[test]
    fn a_named_kernel_may_not_take_the_default_kernels_name_or_a_dash() {
        let mut p = project("");
        let other = p.pin.kernels["6.12"].clone();
        p.pin.kernels.insert("7.3".into(), other.clone());
        let err = p.kernels().unwrap_err().to_string();
        assert!(err.contains("already the name of [kernel]"), "{err}");
        p.pin.kernels.remove("7.3");
        p.pin.kernels.insert("lts-6".into(), other);
        let err = p.kernels().unwrap_err().to_string();
        assert!(err.contains("letters, digits, `.` and `_`"), "{err}");
    }
}
