//! Choosing the accelerator: KVM only after a probe shows it really works.
//!
//! `/dev/kvm` opening proves little: under nested virtualization it can open
//! while guests crawl. The probe boots a 512-byte boot sector that writes to
//! QEMU's isa-debug-exit port; KVM counts as usable only if that finishes
//! within [`PROBE_DEADLINE`] (TCG itself does it in about 0.2 s).

use crate::config::arch::{Arch, KvmProbe};
use crate::config::paths::Paths;
use crate::config::pin::AccelChoice;
use crate::process::Waited;
use anyhow::{bail, Result};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub const PROBE_DEADLINE: Duration = Duration::from_secs(2);
/// The architecture whose code the probe's boot sector is
/// ([`KvmProbe::BootSector`]).
const PROBE_ARCH: Arch = Arch::X86_64;
/// What the boot sector writes to port 0xf4; QEMU exits with (v << 1) | 1.
const PROBE_EXIT: i32 = (0x21 << 1) | 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG (software emulation)",
        })
    }
}

/// The boot sector: `mov al, 0x21; out 0xf4, al; hlt; jmp $-1`, then the signature.
fn boot_sector() -> Vec<u8> {
    let mut s = vec![0xB0, 0x21, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD];
    s.resize(510, 0);
    s.extend([0x55, 0xAA]);
    s
}

/// Why the KVM probe failed: each cause has its own fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// `/dev/kvm` could not be opened.
    Device {
        kind: std::io::ErrorKind,
        message: String,
    },
    /// QEMU could not be started.
    NoQemu(String),
    /// QEMU with `-accel kvm` exited without finishing the probe (the
    /// message says how, with QEMU's own words).
    QemuFailed(String),
    /// The probe did not finish within [`PROBE_DEADLINE`].
    TooSlow,
    /// Anything else (a temporary file, waiting for QEMU).
    Other(String),
    /// A verdict remembered from an earlier probe this boot.
    Remembered {
        failure: Box<ProbeFailure>,
        cache: PathBuf,
    },
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::Device { message, .. } => write!(f, "/dev/kvm: {message}"),
            ProbeFailure::NoQemu(e) => write!(f, "cannot run {}: {e}", PROBE_ARCH.qemu_binary()),
            ProbeFailure::QemuFailed(e) => f.write_str(e),
            ProbeFailure::TooSlow => write!(
                f,
                "/dev/kvm opens but a boot-sector probe did not finish within {}s \
                 (nested virtualization too slow, or the host too busy?)",
                PROBE_DEADLINE.as_secs()
            ),
            ProbeFailure::Other(e) => f.write_str(e),
            ProbeFailure::Remembered { failure, cache } => write!(
                f,
                "{failure} (probed earlier this boot; delete {} to probe again)",
                cache.display()
            ),
        }
    }
}

impl ProbeFailure {
    /// What to do about it, for `--accel kvm`: whole sentences, each ending
    /// in a full stop.
    pub fn advice(&self) -> String {
        use std::io::ErrorKind;
        match self {
            ProbeFailure::Device {
                kind: ErrorKind::NotFound,
                ..
            } => "Load the KVM module (sudo modprobe kvm_intel, or kvm_amd) and check that \
                  virtualization is enabled in the firmware or the host VM, or run with \
                  --accel tcg."
                .into(),
            ProbeFailure::Device {
                kind: ErrorKind::PermissionDenied,
                ..
            } => "Join the kvm group (sudo usermod -aG kvm $USER, then log in again), or run \
                  with --accel tcg."
                .into(),
            ProbeFailure::Device { .. } => {
                "Check /dev/kvm (`ls -l /dev/kvm`, `dmesg | grep -i kvm`), or run with --accel tcg."
                    .into()
            }
            ProbeFailure::NoQemu(_) => format!(
                "Install QEMU (sudo apt-get install {}; `lkmlab doctor` checks it).",
                PROBE_ARCH.qemu_package()
            ),
            ProbeFailure::QemuFailed(_) => "QEMU's message says why KVM does not work here; \
                 fix that, or run with --accel tcg."
                .into(),
            ProbeFailure::TooSlow => "KVM is there but too slow to run tests (typical of \
                 nested virtualization): run with --accel tcg, or --accel auto, which falls \
                 back to TCG."
                .into(),
            ProbeFailure::Other(_) => "Run with --accel tcg.".into(),
            ProbeFailure::Remembered { failure, cache } => match **failure {
                ProbeFailure::TooSlow => format!(
                    "{} If the host was only busy then, delete {} to probe again.",
                    failure.advice(),
                    cache.display()
                ),
                _ => failure.advice(),
            },
        }
    }

    /// The verdict as remembered in the cache: a kind, a newline, the details.
    fn to_saved(&self) -> String {
        match self {
            ProbeFailure::NoQemu(e) => format!("no-qemu\n{e}"),
            ProbeFailure::QemuFailed(e) => format!("qemu-failed\n{e}"),
            ProbeFailure::TooSlow => "too-slow\n".into(),
            ProbeFailure::Other(e) => format!("other\n{e}"),
            ProbeFailure::Remembered { failure, .. } => failure.to_saved(),
            // Not remembered: /dev/kvm is opened before every probe.
            ProbeFailure::Device { message, .. } => format!("other\n/dev/kvm: {message}"),
        }
    }

    /// A verdict read back; `None` for one in an unknown (older) form.
    fn from_saved(text: &str) -> Option<ProbeFailure> {
        let (kind, details) = text.split_once('\n')?;
        let details = details.to_string();
        Some(match kind {
            "no-qemu" => ProbeFailure::NoQemu(details),
            "qemu-failed" => ProbeFailure::QemuFailed(details),
            "too-slow" => ProbeFailure::TooSlow,
            "other" => ProbeFailure::Other(details),
            _ => return None,
        })
    }
}

/// Does KVM work well enough to run tests? `Err` says why not.
pub fn probe_kvm(paths: &Paths) -> Result<(), ProbeFailure> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| ProbeFailure::Device {
            kind: e.kind(),
            message: e.to_string(),
        })?;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let cache = paths.kvm_probe();
    if let Some(verdict) = remembered(&cache, boot_id.trim()) {
        return verdict;
    }
    let verdict = run_probe();
    let _ = std::fs::create_dir_all(&paths.cache);
    let text = match &verdict {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_saved(),
    };
    let _ = std::fs::write(&cache, format!("{}\n{text}", boot_id.trim()));
    verdict
}

/// The verdict saved in `cache` during this boot (`boot_id`), if any.
fn remembered(cache: &Path, boot_id: &str) -> Option<Result<(), ProbeFailure>> {
    let saved = std::fs::read_to_string(cache).ok()?;
    let (id, verdict) = saved.split_once('\n')?;
    if id != boot_id {
        return None;
    }
    if verdict == "ok" {
        return Some(Ok(()));
    }
    let failure = ProbeFailure::from_saved(verdict)?;
    Some(Err(ProbeFailure::Remembered {
        failure: Box::new(failure),
        cache: cache.to_path_buf(),
    }))
}

fn run_probe() -> Result<(), ProbeFailure> {
    let dir =
        crate::util::temp_dir("kvm-probe").map_err(|e| ProbeFailure::Other(format!("{e:#}")))?;
    let img = dir.path().join("probe.img");
    std::fs::write(&img, boot_sector())
        .map_err(|e| ProbeFailure::Other(format!("writing {}: {e}", img.display())))?;
    let mut cmd = Command::new(PROBE_ARCH.qemu_binary());
    cmd.args([
        "-M",
        "pc",
        "-accel",
        "kvm",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
    ])
    .args([
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-drive",
    ])
    .arg(format!("file={},format=raw,if=ide", img.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut qemu = crate::process::spawn(&mut cmd, PROBE_ARCH.qemu_binary())
        .map_err(|e| ProbeFailure::NoQemu(format!("{e:#}")))?;
    let waited = qemu
        .wait(Some(PROBE_DEADLINE), || {})
        .map_err(|e| ProbeFailure::Other(format!("{e:#}")))?;
    match waited {
        Waited::Exited(status) if status.code() == Some(PROBE_EXIT) => Ok(()),
        Waited::Exited(status) => {
            let mut err = String::new();
            if let Some(mut e) = qemu.child().stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            Err(ProbeFailure::QemuFailed(crate::process::saying(
                &format!("QEMU with KVM failed ({status})"),
                err.trim(),
                " ",
            )))
        }
        Waited::TimedOut => Err(ProbeFailure::TooSlow),
    }
}

/// The error of `--accel kvm` when the probe failed: why, and the fix that fits.
fn kvm_refused(why: &ProbeFailure) -> String {
    format!("--accel kvm: KVM is not usable: {why}. {}", why.advice())
}

/// Refuse, before any build, an accelerator that cannot run a guest of
/// `arch` here (KVM for another architecture than the host's).
pub fn check_possible(choice: AccelChoice, arch: Arch) -> Result<()> {
    if choice == AccelChoice::Kvm && arch.kvm_probe() == KvmProbe::Impossible {
        bail!(
            "--accel kvm (or [vm] accel = \"kvm\"): KVM cannot run an {arch} guest on this host \
             ({}): only the host's own architecture can. Use --accel tcg (or auto).",
            std::env::consts::ARCH
        );
    }
    Ok(())
}

/// Resolve the user's choice to an accelerator for a guest of `arch`,
/// telling them loudly when tests run under TCG.
pub fn choose(choice: AccelChoice, paths: &Paths, arch: Arch) -> Result<Accel> {
    match (arch.kvm_probe(), choice) {
        (_, AccelChoice::Tcg) => {}
        (KvmProbe::BootSector, _) => {}
        (KvmProbe::Impossible, AccelChoice::Kvm) => check_possible(choice, arch)?,
        (KvmProbe::Impossible, AccelChoice::Auto) => {
            crate::notice!(
                "NOTICE: an {arch} guest on this {} host runs under TCG (software emulation \
                 of another architecture): several times slower than the host's own, the \
                 same kernel and tests",
                std::env::consts::ARCH
            );
            return Ok(Accel::Tcg);
        }
        (KvmProbe::None, AccelChoice::Kvm) => {
            crate::notice!("using KVM for {arch} as asked (lkmlab has no KVM probe for it)");
            return Ok(Accel::Kvm);
        }
        (KvmProbe::None, AccelChoice::Auto) => {
            crate::notice!(
                "NOTICE: lkmlab cannot probe KVM for {arch} guests yet: running under TCG \
                 (software emulation); pass --accel kvm to use KVM unprobed"
            );
            return Ok(Accel::Tcg);
        }
    }
    match choice {
        AccelChoice::Tcg => {
            crate::notice!("NOTICE: running under TCG (software emulation), as requested");
            Ok(Accel::Tcg)
        }
        AccelChoice::Kvm => match probe_kvm(paths) {
            Ok(()) => Ok(Accel::Kvm),
            Err(why) => bail!(kvm_refused(&why)),
        },
        AccelChoice::Auto => match probe_kvm(paths) {
            Ok(()) => {
                crate::status!("using KVM (probe passed)");
                Ok(Accel::Kvm)
            }
            Err(why) => {
                crate::notice!(
                    "NOTICE: KVM is not usable ({why}); running under TCG \
                     (software emulation): slower, but the same kernel and tests"
                );
                Ok(Accel::Tcg)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the probe's 512 bytes do when the BIOS runs them: write the
    /// probe's value to isa-debug-exit's port and halt (QEMU then exits with
    /// `PROBE_EXIT`); the BIOS boots them because of the signature.
    #[test]
    fn the_boot_sector_writes_the_probe_value_to_the_exit_port_and_halts() {
        let s = boot_sector();
        assert_eq!(s.len(), 512);
        assert_eq!(&s[510..], &[0x55, 0xAA], "boot signature");
        let value = 0x21;
        assert_eq!(PROBE_EXIT, (value << 1) | 1, "QEMU's exit status for it");
        assert_eq!(
            &s[..7],
            &[
                0xB0,
                value as u8, // mov al, 0x21
                0xE6,
                0xF4, // out 0xf4, al (iobase=0xf4 in the probe's QEMU)
                0xF4, // hlt
                0xEB,
                0xFD, // jmp back to the hlt
            ]
        );
        assert!(s[7..510].iter().all(|&b| b == 0));
    }

    #[test]
    fn accel_choices_parse_and_reject_garbage() {
        use clap::ValueEnum;
        assert_eq!(AccelChoice::from_str("auto", false), Ok(AccelChoice::Auto));
        assert_eq!(AccelChoice::from_str("tcg", false), Ok(AccelChoice::Tcg));
        assert!(AccelChoice::from_str("hvf", false).is_err());
    }

    #[test]
    fn a_probe_that_timed_out_is_not_told_to_load_modules_or_join_groups() {
        let text = kvm_refused(&ProbeFailure::TooSlow);
        assert!(text.contains("did not finish within 2s"), "{text}");
        assert!(text.contains("--accel tcg"), "{text}");
        assert!(
            !text.contains("kvm_intel") && !text.contains("kvm group"),
            "{text}"
        );
        let remembered = ProbeFailure::Remembered {
            failure: Box::new(ProbeFailure::TooSlow),
            cache: PathBuf::from("/c/kvm-probe"),
        };
        let text = kvm_refused(&remembered);
        assert!(
            text.contains("delete /c/kvm-probe to probe again"),
            "{text}"
        );
        assert!(!text.contains("kvm_intel"), "{text}");
    }

    /// `--accel kvm: KVM is not usable: WHY. ADVICE`: the advice is whole
    /// sentences, so the message ends in a full stop, and the remembered
    /// timeout's second sentence does not run on from the first.
    #[test]
    fn the_advice_is_whole_sentences() {
        use std::io::ErrorKind;
        let device = |kind| ProbeFailure::Device {
            kind,
            message: "x".into(),
        };
        let remembered = ProbeFailure::Remembered {
            failure: Box::new(ProbeFailure::TooSlow),
            cache: PathBuf::from("/c/kvm-probe"),
        };
        for failure in [
            device(ErrorKind::NotFound),
            device(ErrorKind::PermissionDenied),
            device(ErrorKind::Other),
            ProbeFailure::NoQemu("x".into()),
            ProbeFailure::QemuFailed("x".into()),
            ProbeFailure::TooSlow,
            ProbeFailure::Other("x".into()),
            remembered,
        ] {
            let text = kvm_refused(&failure);
            assert!(text.ends_with('.'), "{text}");
            assert!(!text.contains("TCG If"), "{text}");
        }
        let arm = check_possible(AccelChoice::Kvm, Arch::Arm64);
        if let Err(e) = arm {
            assert!(e.to_string().ends_with('.'), "{e}");
        }
    }

    #[test]
    fn each_device_error_gets_its_own_fix() {
        let device = |kind| ProbeFailure::Device {
            kind,
            message: "x".into(),
        };
        let missing = device(std::io::ErrorKind::NotFound).advice();
        assert!(missing.contains("modprobe kvm_intel"), "{missing}");
        assert!(!missing.contains("kvm group"), "{missing}");
        let denied = device(std::io::ErrorKind::PermissionDenied).advice();
        assert!(denied.contains("kvm group"), "{denied}");
        assert!(!denied.contains("modprobe"), "{denied}");
        let qemu = ProbeFailure::QemuFailed("QEMU with KVM failed (exit status: 1): no KVM".into())
            .advice();
        assert!(
            !qemu.contains("kvm group") && !qemu.contains("modprobe"),
            "{qemu}"
        );
    }

    #[test]
    fn a_remembered_verdict_keeps_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("kvm-probe");
        for failure in [
            ProbeFailure::TooSlow,
            ProbeFailure::NoQemu("No such file".into()),
            ProbeFailure::QemuFailed("QEMU with KVM failed (exit status: 1): boom".into()),
        ] {
            std::fs::write(&cache, format!("boot-1\n{}", failure.to_saved())).unwrap();
            let Some(Err(ProbeFailure::Remembered { failure: got, .. })) =
                remembered(&cache, "boot-1")
            else {
                panic!("no remembered failure for {failure:?}");
            };
            assert_eq!(*got, failure);
            assert!(remembered(&cache, "boot-2").is_none(), "another boot");
        }
        std::fs::write(&cache, "boot-1\nok").unwrap();
        assert_eq!(remembered(&cache, "boot-1"), Some(Ok(())));
        // A verdict in the old form (the text alone) is probed again.
        std::fs::write(&cache, "boot-1\n/dev/kvm opens but …").unwrap();
        assert!(remembered(&cache, "boot-1").is_none());
    }
}
