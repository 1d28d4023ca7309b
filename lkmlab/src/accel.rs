//! Choosing the accelerator: KVM only after a probe shows it really works.
//!
//! `/dev/kvm` opening proves little: under nested virtualization it can open
//! while guests crawl. The probe boots a 512-byte boot sector that writes to
//! QEMU's isa-debug-exit port; KVM counts as usable only if that finishes
//! within [`PROBE_DEADLINE`] (TCG itself does it in about 0.2 s).

use crate::paths::Paths;
use anyhow::{bail, Result};
use std::fmt;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

pub const PROBE_DEADLINE: Duration = Duration::from_secs(2);
/// What the boot sector writes to port 0xf4; QEMU exits with (v << 1) | 1.
const PROBE_EXIT: i32 = (0x21 << 1) | 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    Auto,
    Kvm,
    Tcg,
}

impl FromStr for AccelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(AccelChoice::Auto),
            "kvm" => Ok(AccelChoice::Kvm),
            "tcg" => Ok(AccelChoice::Tcg),
            other => Err(format!(
                "unknown accelerator {other:?}: use auto, kvm or tcg"
            )),
        }
    }
}

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

/// Does KVM work well enough to run tests? `Err` says why not.
pub fn probe_kvm(paths: &Paths) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm: {e}"))?;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let cache = paths.kvm_probe();
    if let Ok(saved) = std::fs::read_to_string(&cache) {
        if let Some((id, verdict)) = saved.split_once('\n') {
            if id == boot_id.trim() {
                return if verdict == "ok" {
                    Ok(())
                } else {
                    Err(format!(
                        "{verdict} (probed earlier this boot; delete {} to probe again)",
                        cache.display()
                    ))
                };
            }
        }
    }
    let verdict = run_probe();
    let _ = std::fs::create_dir_all(&paths.cache);
    let text = match &verdict {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let _ = std::fs::write(&cache, format!("{}\n{text}", boot_id.trim()));
    verdict
}

fn run_probe() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("lkmlab-kvm-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let img = dir.join("probe.img");
    std::fs::write(&img, boot_sector()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new("qemu-system-x86_64")
        .args([
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
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!("cannot run qemu-system-x86_64: {e}"));
        }
    };
    let result = loop {
        match child.try_wait() {
            Ok(Some(status)) if status.code() == Some(PROBE_EXIT) => break Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                break Err(format!("QEMU with KVM failed ({status}): {}", err.trim()));
            }
            Ok(None) if started.elapsed() > PROBE_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "/dev/kvm opens but a boot-sector probe did not finish within {}s \
                     (nested virtualization too slow?)",
                    PROBE_DEADLINE.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(e.to_string()),
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Resolve the user's choice to an accelerator, telling them loudly when
/// tests run under TCG.
pub fn choose(choice: AccelChoice, paths: &Paths) -> Result<Accel> {
    match choice {
        AccelChoice::Tcg => {
            eprintln!("lkmlab: NOTICE: running under TCG (software emulation), as requested");
            Ok(Accel::Tcg)
        }
        AccelChoice::Kvm => match probe_kvm(paths) {
            Ok(()) => Ok(Accel::Kvm),
            Err(why) => bail!(
                "--accel kvm: KVM is not usable: {why}. Fix KVM access (load kvm_intel/kvm_amd, \
                 add yourself to the kvm group) or run with --accel tcg"
            ),
        },
        AccelChoice::Auto => match probe_kvm(paths) {
            Ok(()) => {
                eprintln!("lkmlab: using KVM (probe passed)");
                Ok(Accel::Kvm)
            }
            Err(why) => {
                eprintln!(
                    "lkmlab: NOTICE: KVM is not usable ({why}); running under TCG \
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

    #[test]
    fn the_boot_sector_is_bootable() {
        let s = boot_sector();
        assert_eq!(s.len(), 512);
        assert_eq!(&s[510..], &[0x55, 0xAA]);
    }

    #[test]
    fn accel_choices_parse_and_reject_garbage() {
        assert_eq!("auto".parse::<AccelChoice>().unwrap(), AccelChoice::Auto);
        assert_eq!("tcg".parse::<AccelChoice>().unwrap(), AccelChoice::Tcg);
        assert!("hvf"
            .parse::<AccelChoice>()
            .unwrap_err()
            .contains("auto, kvm or tcg"));
    }
}
