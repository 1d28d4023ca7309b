//! `lkmlab doctor`: is every tool the pipeline needs here, new enough, and
//! how to fix it when not.

use crate::build::toolchain::{self, LibSrc};
use crate::config::arch::{Arch, KvmProbe};
use crate::config::paths::Paths;
use crate::config::pin::Compiler;
use crate::config::pin::Version;
use crate::config::project::Project;
use crate::config::target::Target;
use crate::lab::vng;
use crate::vm::accel;
use std::path::Path;

#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but worth knowing (e.g. no KVM: tests run under TCG).
    Note,
    /// The pipeline cannot run until this is fixed.
    Fail,
}

pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check {
        name: name.to_string(),
        status,
        detail: detail.into(),
        fix,
    }
}

fn on_path(program: &str) -> bool {
    crate::util::which(program).is_some()
}

fn apt(pkg: &str) -> Option<String> {
    Some(format!("sudo apt-get install {pkg}"))
}

fn versioned(name: &str, found: anyhow::Result<Version>, min: &Version, fix: String) -> Check {
    match found {
        Ok(v) if v >= *min => check(name, Status::Ok, format!("{v} (>= {min})"), None),
        Ok(v) => check(
            name,
            Status::Fail,
            format!("{v} is older than the kernel's minimum {min}"),
            Some(fix),
        ),
        Err(e) => check(name, Status::Fail, format!("{e:#}"), Some(fix)),
    }
}

/// Run every check the pipeline for `targets` needs.
pub fn run(project: &Project, paths: &Paths, targets: &[Target]) -> Vec<Check> {
    let tc = &project.pin.toolchain;
    // One toolchain builds every target's kernel: it must meet the highest
    // of their minimums.
    let min = project.minimums(targets);
    let mut checks = vec![versioned(
        "rustc",
        toolchain::rustc_version(),
        &min.rustc_min,
        "install Rust: https://rustup.rs (then `rustup default stable`)".into(),
    )];
    checks.push(match toolchain::lib_src_source() {
        LibSrc::Env(p) if p.join("core/src/lib.rs").is_file() => check(
            "rust library source",
            Status::Ok,
            format!("RUST_LIB_SRC={}", p.display()),
            None,
        ),
        LibSrc::Env(p) => check(
            "rust library source",
            Status::Fail,
            format!("RUST_LIB_SRC={} has no core/src/lib.rs", p.display()),
            Some("unset RUST_LIB_SRC or point it at a Rust `library` directory".into()),
        ),
        LibSrc::Sysroot(p) => check(
            "rust library source",
            Status::Ok,
            format!("rustc sysroot: {}", p.display()),
            None,
        ),
        LibSrc::Pinned => check(
            "rust library source",
            Status::Note,
            format!(
                "not in the rustc sysroot; `lkmlab fetch` provides the pinned {}",
                tc.rust_src.deb.file
            ),
            None,
        ),
    });
    checks.push(versioned(
        "bindgen",
        toolchain::bindgen_version(),
        &min.bindgen_min,
        format!(
            "cargo install bindgen-cli --locked --version {}",
            tc.bindgen_cli
        ),
    ));
    let libclang_path = toolchain::libclang_path(project);
    checks.push(if on_path("bindgen") {
        let mut c = versioned(
            "libclang",
            toolchain::libclang_version(libclang_path.as_deref()),
            &min.libclang_min,
            format!(
                "sudo apt-get install libclang-19-dev (and LIBCLANG_PATH={} if bindgen picks an older one)",
                tc.libclang_path
            ),
        );
        if let Some(p) = &libclang_path {
            c.detail.push_str(&format!(" from {}", p.display()));
        }
        c
    } else {
        check("libclang", Status::Fail, "cannot check without bindgen", apt("libclang-19-dev"))
    });
    for (program, pkg) in [
        ("make", "make"),
        ("gcc", "gcc"),
        ("ld", "binutils"),
        ("flex", "flex"),
        ("bison", "bison"),
        ("bc", "bc"),
        ("perl", "perl"),
        ("cpio", "cpio"),
        ("tar", "tar"),
        ("xz", "xz-utils"),
        ("curl", "curl"),
        ("cargo", "rustup's cargo"),
    ] {
        checks.push(if on_path(program) {
            check(program, Status::Ok, "found", None)
        } else {
            check(
                program,
                Status::Fail,
                "not found on PATH",
                if pkg.contains(' ') {
                    Some(format!("install {pkg}"))
                } else {
                    apt(pkg)
                },
            )
        });
    }
    let arches: std::collections::BTreeSet<Arch> = targets.iter().map(|t| t.arch).collect();
    for arch in &arches {
        let qemu = arch.qemu_binary();
        checks.push(if on_path(qemu) {
            check(qemu, Status::Ok, "found", None)
        } else {
            check(
                qemu,
                Status::Fail,
                "not found on PATH",
                apt(arch.qemu_package()),
            )
        });
    }
    for (name, header, pkg) in [
        ("libelf headers", "/usr/include/libelf.h", "libelf-dev"),
        (
            "openssl headers",
            "/usr/include/openssl/ssl.h",
            "libssl-dev",
        ),
    ] {
        checks.push(if Path::new(header).is_file() {
            check(name, Status::Ok, header, None)
        } else {
            check(name, Status::Fail, format!("{header} missing"), apt(pkg))
        });
    }
    checks.push(if on_path("busybox") {
        check(
            "busybox",
            Status::Ok,
            "found (shell for guest test scripts)",
            None,
        )
    } else {
        check(
            "busybox",
            Status::Note,
            "not found: modules whose guest-tests/ holds scripts cannot be tested",
            apt("busybox-static"),
        )
    });
    checks.extend(llvm_check(project, targets));
    for arch in arches.iter().filter(|a| a.is_foreign()) {
        checks.extend(crate::vm::cross::doctor_checks(*arch, project));
    }
    checks.extend(lab_checks(project));
    let probed = arches
        .iter()
        .find(|a| a.kvm_probe() == KvmProbe::BootSector);
    // An architecture KVM cannot run here (or lkmlab cannot probe): its
    // tests run under TCG, said once.
    for arch in arches
        .iter()
        .filter(|a| a.kvm_probe() != KvmProbe::BootSector)
    {
        checks.push(check(
            &format!("KVM ({arch})"),
            Status::Note,
            match arch.kvm_probe() {
                KvmProbe::Impossible => "another architecture than the host's: its tests run \
                                         under TCG (several times slower)"
                    .to_string(),
                _ => "no KVM probe for it: tests run under TCG unless --accel kvm".to_string(),
            },
            None,
        ));
    }
    if probed.is_some_and(|a| on_path(a.qemu_binary())) {
        checks.push(match accel::probe_kvm(paths) {
            Ok(()) => check("KVM", Status::Ok, "usable (boot-sector probe passed)", None),
            Err(why) => check(
                "KVM",
                Status::Note,
                format!("not usable: {why}; tests run under TCG (slower, same results)"),
                None,
            ),
        });
    }
    checks
}

/// clang, lld and the LLVM binutils, when a flavor is built with them or a
/// target is cross-built. A note, not a failure, unless a target at hand
/// needs them.
fn llvm_check(project: &Project, targets: &[Target]) -> Option<Check> {
    let mut users: Vec<String> = project
        .pin
        .kconfig
        .flavors
        .iter()
        .filter(|(_, f)| f.compiler == crate::config::pin::Compiler::Llvm)
        .map(|(name, _)| format!("flavor {name}"))
        .collect();
    users.extend(
        targets
            .iter()
            .filter(|t| t.arch.is_foreign())
            .map(|t| format!("target {}", t.name())),
    );
    if users.is_empty() {
        return None;
    }
    let needed = targets.iter().any(|t| t.compiler() == Compiler::Llvm);
    let name = format!("LLVM ({})", users.join(", "));
    let tc = &project.pin.toolchain;
    let min = project.minimums(targets).llvm_min;
    Some(match toolchain::check_llvm(project, &min) {
        Ok(v) => check(
            &name,
            Status::Ok,
            format!(
                "{} {v} (>= {}), ld.lld and llvm-* found (LLVM={})",
                toolchain::llvm_tool(tc.llvm.as_str(), "clang"),
                min,
                tc.llvm.as_str()
            ),
            None,
        ),
        Err(e) => {
            let text = format!("{e:#}");
            let (detail, fix) = match text.split_once("; fix: ") {
                Some((d, f)) => (d.to_string(), Some(f.to_string())),
                None => (text, None),
            };
            check(
                &name,
                if needed { Status::Fail } else { Status::Note },
                format!("{detail}: those cannot be built"),
                fix,
            )
        }
    })
}

/// What the interactive lab needs (`lkmlab vm`, `lint`, `rust-analyzer`):
/// notes, not failures, since `lkmlab check` runs without them.
fn lab_checks(project: &Project) -> Vec<Check> {
    let mut checks = vec![match vng::find_vng() {
        Ok(vng) => match vng::vng_version(&vng) {
            Ok(v) if v == vng::VNG_TESTED => check(
                "virtme-ng (lkmlab vm)",
                Status::Ok,
                format!("vng {v} at {}", vng.display()),
                None,
            ),
            Ok(v) => check(
                "virtme-ng (lkmlab vm)",
                Status::Note,
                format!("vng {v} at {}; lkmlab is tested with {}", vng.display(), vng::VNG_TESTED),
                Some(format!("pipx install --force virtme-ng=={}", vng::VNG_TESTED)),
            ),
            Err(e) => check(
                "virtme-ng (lkmlab vm)",
                Status::Note,
                format!("{} does not run: {e:#}", vng.display()),
                Some(format!("pipx install --force virtme-ng=={}", vng::VNG_TESTED)),
            ),
        },
        Err(_) => check(
            "virtme-ng (lkmlab vm)",
            Status::Note,
            "vng not found: `lkmlab vm` cannot run",
            Some(format!(
                "sudo apt-get install pipx && pipx install virtme-ng=={} (puts vng in ~/.local/bin)",
                vng::VNG_TESTED
            )),
        ),
    }];
    // The guest runs the host's userland: its udevd and its insmod.
    checks.push(match vng::find_udevd() {
        Some(p) => check(
            "udev (lkmlab vm --exec)",
            Status::Ok,
            p.display().to_string(),
            None,
        ),
        None => check(
            "udev (lkmlab vm --exec)",
            Status::Note,
            "no systemd-udevd: the guest cannot find the ports that carry --exec's output",
            apt("udev"),
        ),
    });
    let insmod = ["/usr/sbin/insmod", "/sbin/insmod"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    checks.push(match insmod {
        Some(p) => check("kmod (insmod in lkmlab vm)", Status::Ok, p, None),
        None => check(
            "kmod (insmod in lkmlab vm)",
            Status::Note,
            "no insmod/rmmod: the guest shell cannot load modules",
            apt("kmod"),
        ),
    });
    for (program, why) in [
        ("rustfmt", "lkmlab lint"),
        ("clippy-driver", "lkmlab lint"),
        ("python3", "rust-analyzer, vng"),
    ] {
        let name = format!("{program} ({why})");
        checks.push(if on_path(program) {
            check(&name, Status::Ok, "found", None)
        } else {
            check(
                &name,
                Status::Note,
                "not found on PATH",
                Some(if program == "python3" {
                    "sudo apt-get install python3".into()
                } else {
                    "rustup component add rustfmt clippy".into()
                }),
            )
        });
    }
    // Optional: only `lkmlab rust-analyzer --check` needs it.
    let name = "rust-analyzer (--check)";
    checks.push(match crate::lab::rust_analyzer::diagnostics::locate(None) {
        Ok(p) => check(name, Status::Ok, p.display().to_string(), None),
        Err(e) => check(
            name,
            Status::Note,
            format!("optional, none that runs: {e}"),
            Some(crate::lab::rust_analyzer::diagnostics::install_hint(
                &project.pin.toolchain.rust_analyzer.to_string(),
            )),
        ),
    });
    checks
}

/// Print the checks; true when the pipeline can run.
pub fn print(checks: &[Check]) -> anyhow::Result<bool> {
    let width = checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    for c in checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Note => "note",
            Status::Fail => "FAIL",
        };
        crate::outln!("{tag} {:<width$} {}", c.name, c.detail)?;
        if let Some(fix) = &c.fix {
            crate::outln!("     {:<width$} fix: {fix}", "")?;
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed == 0 {
        crate::outln!("lkmlab doctor: the pipeline can run")?;
    } else {
        crate::outln!("lkmlab doctor: {failed} problem(s) stop the pipeline; fix them and run `lkmlab doctor` again")?;
    }
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::arch::Arch;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn a_version_passes_at_or_above_the_minimum_and_fails_below_with_the_fix() {
        let ok = versioned("rustc", Ok(v("1.95.0")), &v("1.85.0"), "FIX".into());
        assert_eq!(
            (ok.status, ok.detail.as_str()),
            (Status::Ok, "1.95.0 (>= 1.85.0)")
        );
        assert!(ok.fix.is_none());
        let old = versioned("rustc", Ok(v("1.80")), &v("1.85.0"), "FIX".into());
        assert_eq!(old.status, Status::Fail);
        assert!(old
            .detail
            .contains("older than the kernel's minimum 1.85.0"));
        assert_eq!(old.fix.as_deref(), Some("FIX"));
        let missing = versioned(
            "bindgen",
            Err(anyhow::anyhow!("bindgen is not installed")),
            &v("0.71.1"),
            "FIX".into(),
        );
        assert_eq!(missing.status, Status::Fail);
        assert_eq!(missing.detail, "bindgen is not installed");
    }

    /// lkmlab's own pin with an LLVM that is not there.
    fn project_without_llvm() -> Project {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("lkmlab.toml"))
            .unwrap()
            .replace("llvm = \"-19\"", "llvm = \"/nonexistent-llvm/\"");
        Project {
            root,
            pin: crate::config::pin::parse_pin(&text).unwrap(),
        }
    }

    /// Missing LLVM is a note while only an unused flavor needs it, and a
    /// failure when a target at hand does (a cross-built architecture).
    #[test]
    fn missing_llvm_fails_only_a_target_that_needs_it() {
        let p = project_without_llvm();
        let x86 = p
            .target_of(p.default_kernel(), Arch::X86_64, "default")
            .unwrap();
        let only_x86 = llvm_check(&p, std::slice::from_ref(&x86)).unwrap();
        assert_eq!(only_x86.status, Status::Note, "{}", only_x86.detail);
        assert!(only_x86.name.contains("flavor debug"), "{}", only_x86.name);

        let arm = p
            .target_of(p.default_kernel(), Arch::Arm64, "default")
            .unwrap();
        if arm.arch.is_foreign() {
            let with_arm = llvm_check(&p, &[x86, arm]).unwrap();
            assert_eq!(with_arm.status, Status::Fail, "{}", with_arm.detail);
            assert!(with_arm.name.contains("target arm64"), "{}", with_arm.name);
        }
    }

    /// A cross-built architecture needs the cross C library for its runner;
    /// without a pinned busybox its script tests cannot run, which is a note.
    #[test]
    fn another_architecture_is_checked_for_its_runner_and_busybox() {
        let mut p = project_without_llvm();
        let checks = crate::vm::cross::doctor_checks(Arch::Arm64, &p);
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert!(
            names.contains(&"libc6-dev-arm64-cross (runner for arm64)")
                && names.contains(&"libgcc-12-dev-arm64-cross (runner for arm64)"),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.starts_with("busybox")), "{names:?}");
        p.pin.toolchain.busybox.clear();
        let checks = crate::vm::cross::doctor_checks(Arch::Arm64, &p);
        let busybox = checks.iter().find(|c| c.name == "busybox (arm64)").unwrap();
        assert_eq!(busybox.status, Status::Note);
    }
}
