//! Boot the kernel in QEMU with the test initramfs and collect what the
//! guest reports: KTAP on a virtio serial port, the kernel log on the serial
//! console. What differs between architectures comes from [`Arch`].

use crate::config::arch::Arch;
use crate::lock::Lock;
use crate::process::{self, Waited};
use crate::vm::accel::Accel;
use crate::vm::devices::{self, Checked};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lkmlab_protocol::{CONTROL_PORT, KTAP_PORT, KUNIT_FILTER_NONE, WATCHDOG_SIGNAL};

pub struct VmTest<'a> {
    pub arch: Arch,
    /// The kernel image (`bzImage`, `Image`).
    pub image: &'a Path,
    pub initramfs: &'a Path,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// Receives console.log and results.ktap.
    pub out: &'a Path,
    /// The lock on `out`, which QEMU holds too: a QEMU that outlived lkmlab
    /// would keep the next run out of the folder it still writes.
    pub out_lock: &'a Lock,
    /// Kernel parameters after [`CMDLINE`], the architecture's and the KUnit filter (e.g.
    /// `kasan_multi_shot` for a KASAN kernel).
    pub cmdline_extra: &'a [&'a str],
    /// When (since QEMU started) to signal the runner's per-case watchdog
    /// ([`lkmlab_protocol::watchdog_at`]); none, never.
    pub watchdog_at: Option<Duration>,
    /// Declared devices (checked against this QEMU): they choose the
    /// machine ([`devices::machine`]) and follow lkmlab's own devices.
    pub devices: &'a [Checked],
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

/// The kernel command line every test boot has: reboot (not hang) on panic
/// — the reboot that `-no-reboot` turns into QEMU exiting — and the runner
/// as PID 1. [`cmdline`] adds the serial console and the parameters of the
/// architecture ([`Arch::cmdline`]), and a KUnit filter that matches no suite
/// ([`KUNIT_FILTER_NONE`]), so the kernel's own built-in suites do not run at
/// boot; the guest runner lets every suite run before it loads modules (the
/// modules' `#[kunit_tests]` run at insmod).
///
/// `rcupdate.rcu_expedited=1`: every `synchronize_rcu()` waits for an
/// expedited grace period (the other CPUs are asked at once) instead of a
/// normal one (a few ticks of each CPU at HZ=250). Loading and unloading a
/// module waits for grace periods, so on two vCPUs a load/unload cycle took
/// 23 ms instead of 12 ms on one; with this option 12 ms again (scull's 200
/// cycles: 4.6 s → 2.4 s). The RCU guarantees a module relies on are the
/// same; only the wait is shorter.
///
/// `oops=panic`: an oops ends the run. Once the kernel has oopsed, the task
/// it killed may have held locks, reference counts or a half-built module
/// that nothing will release, so what runs after it hangs or fails for that
/// reason (issue 20: a fault-injection sweep's oops, then guest tests that
/// hung until the timeout, each reported as a failure of its own). The
/// guest runner could look for the `D` taint after each case instead, but
/// only after the case's process ended — a case whose oops hit a kernel
/// thread, a timer or a lock the runner itself needs would never get there —
/// and it would run in the very kernel whose state it cannot trust. The
/// kernel stopping itself at the oops is immediate and the same wherever
/// the oops happens; the host quotes the oops, fails the case that was
/// running and names the planned cases that did not run (the runner's
/// `# planned:` line; [`crate::judge::report::evaluate`]). Only an oops
/// panics: a `WARN()` does not (no `panic_on_warn`), nor do the reports of
/// KASAN, kmemleak, lockdep or a `BUG: sleeping function called from
/// invalid context`, which print and go on, as before. A Rust panic does:
/// its handler calls `BUG()`, an oops.
pub const CMDLINE: &str = "panic=-1 oops=panic rdinit=/init rcupdate.rcu_expedited=1";

/// The whole kernel command line of a test boot on `arch`.
pub fn cmdline(arch: Arch, extra: &[&str]) -> String {
    let console = format!("console={}", arch.console());
    let kunit = format!("kunit.filter_glob={KUNIT_FILTER_NONE}");
    [console.as_str(), CMDLINE]
        .into_iter()
        .chain(arch.cmdline().iter().copied())
        .chain(std::iter::once(kunit.as_str()))
        .chain(extra.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// QEMU for a test boot: the architecture's machine for the declared devices
/// ([`Arch::machine_args`]), the console into a file, the KTAP channel (a
/// virtio serial port, on virtio-mmio or PCI as the machine has:
/// [`Arch::virtio_serial`]), the control channel to the runner (a second
/// port, on the FIFO `control`, when there is one), the declared devices,
/// the kernel and the initramfs.
pub fn qemu_command(t: &VmTest, console: &Path, ktap: &Path, control: Option<&Path>) -> Command {
    let machine = devices::machine(t.devices);
    let mut cmd = Command::new(t.arch.qemu_binary());
    cmd.args(t.arch.machine_args(t.accel, machine))
        .args(["-accel", t.accel.qemu_name()])
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
        .args(["-device", t.arch.virtio_serial(machine), "-chardev"])
        .arg(format!("file,id=ktap,path={}", ktap.display()))
        .args([
            "-device",
            &format!("virtserialport,chardev=ktap,name={KTAP_PORT}"),
        ]);
    if let Some(fifo) = control {
        // A `pipe` chardev on one FIFO, which QEMU opens for reading and
        // writing: what the host writes into it reaches the guest's port.
        cmd.arg("-chardev")
            .arg(format!("pipe,id=control,path={}", fifo.display()))
            .args([
                "-device",
                &format!("virtserialport,chardev=control,name={CONTROL_PORT}"),
            ]);
    }
    cmd.args(devices::qemu_args(t.devices));
    cmd.arg("-kernel")
        .arg(t.image)
        .arg("-initrd")
        .arg(t.initramfs)
        .arg("-append")
        .arg(cmdline(t.arch, t.cmdline_extra));
    cmd
}

pub fn run(t: &VmTest) -> Result<VmRun> {
    std::fs::create_dir_all(t.out).with_context(|| format!("creating {}", t.out.display()))?;
    let console = t.out.join("console.log");
    let ktap = t.out.join("results.ktap");
    let fifo = t.out.join("control.fifo");
    for f in [&console, &ktap, &fifo] {
        let _ = std::fs::remove_file(f);
    }
    // Without a FIFO (a filesystem that has none) there is no watchdog.
    let control = t.watchdog_at.is_some()
        && nix::unistd::mkfifo(
            &fifo,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .is_ok();
    let started = Instant::now();
    let mut cmd = qemu_command(t, &console, &ktap, control.then_some(fifo.as_path()));
    // QEMU dies with lkmlab, and holds the results folder's lock.
    let mut qemu = process::spawn_holding(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        t.arch.qemu_binary(),
        t.out_lock,
    )?;
    // Drain stderr on a thread so a chatty QEMU cannot block on a full pipe.
    let stderr = qemu.child().stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut progress = KtapProgress::new(&ktap, started);
    let mut watchdog_at = t.watchdog_at.filter(|_| control);
    let ending = match qemu.wait(Some(t.timeout), || {
        progress.poll();
        if watchdog_at.is_some_and(|at| started.elapsed() >= at) {
            watchdog_at = None;
            signal_watchdog(&fifo);
        }
    })? {
        Waited::Exited(status) => Ending::Exited {
            status,
            stderr: reader.join().unwrap_or_default(),
        },
        Waited::TimedOut => Ending::TimedOut,
    };
    progress.poll();
    let _ = std::fs::remove_file(&fifo);
    Ok(VmRun {
        ending,
        elapsed: started.elapsed(),
        first_ktap: progress.first,
        done: progress.done,
        console,
        ktap,
    })
}

/// Tells the runner's watchdog that the VM's time is nearly up. QEMU holds
/// the FIFO open for reading, so opening it without blocking succeeds; a
/// QEMU that is gone already has nothing to tell.
fn signal_watchdog(fifo: &Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(fifo);
    if let Ok(mut f) = opened {
        let _ = f.write_all(WATCHDOG_SIGNAL);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each option is there for a measured reason (see [`CMDLINE`]); losing
    /// one brings back a boot panic under load or a slower suite.
    #[test]
    fn the_test_kernel_gets_its_options() {
        let line = cmdline(Arch::X86_64, &["kasan_multi_shot"]);
        let words: Vec<&str> = line.split(' ').collect();
        for option in [
            "console=ttyS0",
            "panic=-1",
            "oops=panic",
            "reboot=t",
            "rdinit=/init",
            "no_timer_check",
            "rcupdate.rcu_expedited=1",
            "kunit.filter_glob=lkmlab_no_kunit_suite",
        ] {
            assert!(words.contains(&option), "{option} missing from {line}");
        }
        assert_eq!(words.last(), Some(&"kasan_multi_shot"));
        let arm = cmdline(Arch::Arm64, &[]);
        assert!(arm.starts_with("console=ttyAMA0 panic=-1 "), "{arm}");
        assert!(!arm.contains("no_timer_check"), "{arm}");
    }
}
