//! Boot the kernel in QEMU with the test initramfs and collect what the
//! guest reports: KTAP on a virtio serial port, the kernel log on ttyS0.

use crate::accel::Accel;
use crate::util::spawn_error;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lkmlab_protocol::{KTAP_PORT, KUNIT_FILTER_NONE};

pub struct VmTest<'a> {
    pub bzimage: &'a Path,
    pub initramfs: &'a Path,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// Receives console.log and results.ktap.
    pub out: &'a Path,
    /// Kernel parameters after [`CMDLINE`] and the KUnit filter (e.g. `kasan_multi_shot` for a
    /// KASAN kernel).
    pub cmdline_extra: &'a [&'a str],
}

/// How the VM ended.
#[derive(Debug)]
pub enum Ending {
    /// QEMU exited by itself (the guest rebooted, or QEMU failed).
    Exited { status: ExitStatus, stderr: String },
    /// The host killed QEMU at the deadline.
    TimedOut,
    /// Results read back from saved files (`lkmlab report`): how the VM
    /// ended is not known, so only the KTAP and the log are judged.
    Saved,
}

pub struct VmRun {
    pub ending: Ending,
    pub elapsed: Duration,
    pub console: PathBuf,
    pub ktap: PathBuf,
    /// When (since QEMU started) the guest's first KTAP byte arrived: the
    /// boot, up to the runner's start.
    pub first_ktap: Option<Duration>,
    /// When the runner's closing marker arrived: the tests are over, the
    /// rest is shutdown.
    pub done: Option<Duration>,
}

/// The kernel command line: serial console, reboot (not hang) on panic, and a
/// triple-fault reboot that `-no-reboot` turns into QEMU exiting. [`cmdline`]
/// adds a KUnit filter that matches no suite ([`KUNIT_FILTER_NONE`]), so the
/// kernel's own built-in suites do not run at boot; the guest runner lets
/// every suite run before it loads modules (the modules' `#[kunit_tests]` run
/// at insmod).
///
/// `no_timer_check`: at boot the kernel checks that the PIT's interrupt
/// arrives through the IO-APIC by counting ticks during a busy wait
/// (`timer_irq_works()`); on microvm that check takes a chain of fallbacks
/// every boot, and under TCG a vCPU starved by the host sees too few ticks
/// in every one of them and panics: "IO-APIC + timer doesn't work!"
/// (measured: 8 of 8 boots with QEMU sharing a core with three busy loops;
/// 0 of 8 with this option, which takes the first route as working, as the
/// kernel does itself under KVM).
pub const CMDLINE: &str = "console=ttyS0 panic=-1 reboot=t rdinit=/init no_timer_check";

/// The whole kernel command line of a test boot.
pub fn cmdline(extra: &[&str]) -> String {
    let kunit = format!("kunit.filter_glob={KUNIT_FILTER_NONE}");
    std::iter::once(CMDLINE)
        .chain(std::iter::once(kunit.as_str()))
        .chain(extra.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn qemu_command(t: &VmTest, console: &Path, ktap: &Path) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    // microvm: no PCI, no firmware tables to walk; ACPI off so QEMU announces
    // the virtio-mmio devices on the kernel command line.
    cmd.args(["-M", "microvm,acpi=off", "-accel", t.accel.qemu_name()])
        .args(["-m", &t.memory_mib.to_string(), "-smp", &t.cpus.to_string()])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-chardev")
        .arg(format!("file,id=console,path={}", console.display()))
        .args(["-serial", "chardev:console"])
        .args(["-device", "virtio-serial-device", "-chardev"])
        .arg(format!("file,id=ktap,path={}", ktap.display()))
        .args([
            "-device",
            &format!("virtserialport,chardev=ktap,name={KTAP_PORT}"),
        ])
        .arg("-kernel")
        .arg(t.bzimage)
        .arg("-initrd")
        .arg(t.initramfs)
        .arg("-append")
        .arg(cmdline(t.cmdline_extra));
    cmd
}

pub fn run(t: &VmTest) -> Result<VmRun> {
    std::fs::create_dir_all(t.out)?;
    let console = t.out.join("console.log");
    let ktap = t.out.join("results.ktap");
    for f in [&console, &ktap] {
        let _ = std::fs::remove_file(f);
    }
    let started = Instant::now();
    let mut child = qemu_command(t, &console, &ktap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error("qemu-system-x86_64", e))?;
    let mut progress = KtapProgress::new(&ktap, started);
    let ending = wait_with_deadline(&mut child, t.timeout, || progress.poll())?;
    progress.poll();
    Ok(VmRun {
        ending,
        elapsed: started.elapsed(),
        first_ktap: progress.first,
        done: progress.done,
        console,
        ktap,
    })
}

/// Watches the KTAP file QEMU writes, for the times of its first byte and
/// of the runner's closing marker.
struct KtapProgress<'a> {
    path: &'a Path,
    started: Instant,
    seen: u64,
    first: Option<Duration>,
    done: Option<Duration>,
}

impl<'a> KtapProgress<'a> {
    fn new(path: &'a Path, started: Instant) -> Self {
        KtapProgress {
            path,
            started,
            seen: 0,
            first: None,
            done: None,
        }
    }

    /// One look at the file: cheap (a stat) unless it grew.
    fn poll(&mut self) {
        if self.done.is_some() {
            return;
        }
        let len = std::fs::metadata(self.path).map_or(0, |m| m.len());
        if len == self.seen {
            return;
        }
        self.seen = len;
        let now = self.started.elapsed();
        self.first.get_or_insert(now);
        let tail = std::fs::read(self.path).unwrap_or_default();
        let start = tail.len().saturating_sub(256);
        if lkmlab_protocol::finished(&String::from_utf8_lossy(&tail[start..])) {
            self.done = Some(now);
        }
    }
}

/// Wait for a child, killing it at the deadline; `tick` runs at every poll.
pub fn wait_with_deadline(
    child: &mut std::process::Child,
    timeout: Duration,
    mut tick: impl FnMut(),
) -> Result<Ending> {
    let started = Instant::now();
    // Drain stderr on a thread so a chatty child cannot block on a full pipe.
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            let stderr = reader.join().unwrap_or_default();
            return Ok(Ending::Exited { status, stderr });
        }
        tick();
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            return Ok(Ending::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_child_is_killed_at_the_deadline() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let ending = wait_with_deadline(&mut child, Duration::from_millis(200), || {}).unwrap();
        assert!(matches!(ending, Ending::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn an_exiting_child_reports_status_and_stderr() {
        let mut child = Command::new("sh")
            .args(["-c", "echo boom >&2; exit 3"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        match wait_with_deadline(&mut child, Duration::from_secs(10), || {}).unwrap() {
            Ending::Exited { status, stderr } => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr.trim(), "boom");
            }
            other => panic!("expected an exit, got {other:?}"),
        }
    }
}
