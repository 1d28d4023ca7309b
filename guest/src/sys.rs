//! Thin, checked wrappers around the system calls the runner needs.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in string"))
}

fn check(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `mount(2)` a pseudo filesystem with `options` (its own, as `mount -o`
/// takes them; empty for none), creating the mount point; an already
/// mounted target is fine.
pub fn mount(fstype: &str, target: &str, options: &str) -> io::Result<()> {
    std::fs::create_dir_all(target)?;
    let src = cstring(fstype)?;
    let tgt = cstring(target)?;
    let data = cstring(options)?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let ret = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            src.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    match check(ret.into()) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
        other => other,
    }
}

/// Load a module from a file with `finit_module(2)`, like `insmod PATH PARAMS`.
pub fn insmod(path: &Path, params: &str) -> io::Result<()> {
    let file = File::open(path)?;
    let params = cstring(params)?;
    // SAFETY: the fd is open for the duration of the call and params is a valid C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            0 as libc::c_int,
        )
    };
    check(ret)
}

/// Unload a module with `delete_module(2)`, like `rmmod NAME` (never waits).
pub fn rmmod(name: &str) -> io::Result<()> {
    let name = cstring(name)?;
    // SAFETY: name is a valid C string; O_NONBLOCK makes a busy module fail with EWOULDBLOCK.
    let ret = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    check(ret)
}

/// Flush filesystems and restart; QEMU runs with `-no-reboot`, so it exits.
pub fn reboot() -> ! {
    // SAFETY: sync and reboot take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    // reboot(2) only returns on error (e.g. not PID 1): there is nothing left to do.
    std::process::exit(1)
}

/// The running kernel's release (`uname -r`), from procfs.
pub fn kernel_release() -> Result<String, String> {
    let path = "/proc/sys/kernel/osrelease";
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("reading {path}: {e}"))
}

/// The text of every record currently in the kernel's log buffer (`/dev/kmsg`),
/// one message per line, without the record headers.
pub fn kernel_log() -> io::Result<Vec<String>> {
    Ok(kernel_records()?.into_iter().map(|(_, msg)| msg).collect())
}

/// Every record currently in the kernel's log buffer as (sequence number,
/// first line of the message).
pub fn kernel_records() -> io::Result<Vec<(u64, String)>> {
    read_records(&mut open_kmsg()?)
}

/// `/dev/kmsg`, opened for reading without blocking: each read returns one
/// record, from the oldest still in the buffer.
pub fn open_kmsg() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
}

/// `/dev/kmsg`, positioned after its newest record: reads return only what
/// is logged from now on.
pub fn open_kmsg_at_end() -> io::Result<File> {
    use std::io::{Seek, SeekFrom};
    let mut kmsg = open_kmsg()?;
    kmsg.seek(SeekFrom::End(0))?;
    Ok(kmsg)
}

/// The records readable from `kmsg` now, as (sequence number, first line).
pub fn read_records(kmsg: &mut File) -> io::Result<Vec<(u64, String)>> {
    use std::io::Read;
    let mut records = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match kmsg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let record = String::from_utf8_lossy(&buf[..n]);
                // "prio,seq,usec,flags;message\n" followed by optional " KEY=value" lines.
                if let Some((header, msg)) = record.split_once(';') {
                    let seq = header
                        .split(',')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let msg = msg.lines().next().unwrap_or_default();
                    records.push((seq, msg.to_string()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // A record overwritten while we read: continue from the next one.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(records)
}

/// Writes one line to the kernel log (`/dev/kmsg`, level notice), so that
/// console.log shows what the runner was doing around the kernel's messages.
pub fn log_to_kernel(line: &str) {
    let _ = std::fs::write("/dev/kmsg", format!("<5>{line}\n"));
}

/// Load a module from memory with `init_module(2)`.
pub fn init_module(image: &[u8], params: &str) -> io::Result<()> {
    let params = cstring(params)?;
    // SAFETY: image and params are valid for the duration of the call; the
    // kernel copies both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len() as libc::c_ulong,
            params.as_ptr(),
        )
    };
    check(ret)
}

/// Restricts the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t and `cpu` is below CPU_SETSIZE.
    unsafe {
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
    }
    // SAFETY: `set` is valid for the size given; 0 means the calling thread.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPUs the kernel has online (`/sys/devices/system/cpu/online`, e.g. `0-1`).
pub fn online_cpus() -> Result<Vec<usize>, String> {
    const ONLINE: &str = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(ONLINE).map_err(|e| format!("{ONLINE}: {e}"))?;
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.parse::<usize>()
                .map_err(|e| format!("{ONLINE}: {text:?}: {e}"))
        };
        cpus.extend(parse(first)?..=parse(last)?);
    }
    Ok(cpus)
}

/// Time since boot (`CLOCK_BOOTTIME`): the guest's uptime, which the host's
/// deadline is measured against ([`lkmlab_protocol::watchdog_at`]).
pub fn uptime() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or_default(),
        u32::try_from(ts.tv_nsec).unwrap_or_default(),
    )
}

/// Something to do once while waiting for a forked child, if something
/// arrives on `port` (the host's control port) before the child is done:
/// `fire` gets the child's PID. What arrived is read and dropped.
pub struct Alarm<'a> {
    pub port: &'a File,
    pub fire: &'a mut dyn FnMut(libc::pid_t),
}

/// Runs `f` in a forked child with stdin on /dev/null and stdout and stderr
/// on one pipe; its output and how it ended, as `Command::output` gives them
/// (stderr empty: it went with stdout, in order). If the `alarm`'s port
/// speaks while the child's output is still open, its `fire` runs once, and
/// the wait goes on. The caller must be single-threaded, as PID 1 of the runner is.
pub fn run_forked(
    f: impl FnOnce() -> u8,
    mut alarm: Option<Alarm>,
) -> io::Result<std::process::Output> {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;
    let mut fds = [0; 2];
    // SAFETY: `fds` is valid for two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the process is single-threaded (see above), so the child may
    // go on running Rust code until it exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        drop(read_end);
        let null = File::open("/dev/null");
        // SAFETY: dup2 onto the standard descriptors; the sources are open.
        unsafe {
            if let Ok(null) = &null {
                libc::dup2(null.as_raw_fd(), 0);
            }
            libc::dup2(write_end.as_raw_fd(), 1);
            libc::dup2(write_end.as_raw_fd(), 2);
        }
        drop(write_end);
        let code = f();
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(i32::from(code)) };
    }
    drop(write_end);
    let mut out = Vec::new();
    let mut file = File::from(read_end);
    let mut buf = [0u8; 4096];
    let read = loop {
        let pollfd = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // The alarm's port, when there is one, is polled second; -1 is
        // ignored by poll(2).
        let mut pfds = [
            pollfd(file.as_raw_fd()),
            pollfd(alarm.as_ref().map_or(-1, |a| a.port.as_raw_fd())),
        ];
        // SAFETY: `pfds` is two valid pollfds.
        let ready = unsafe { libc::poll(pfds.as_mut_ptr(), 2, -1) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break Err(e);
        }
        let port_events = pfds[1].revents;
        if port_events != 0 {
            if let Some(a) = alarm.take() {
                if port_events & libc::POLLIN != 0 {
                    let mut signal = [0u8; 64];
                    while matches!((&*a.port).read(&mut signal), Ok(n) if n > 0) {}
                    (a.fire)(pid);
                }
                // Else the port hung up or failed: no alarm any more.
            }
        }
        if pfds[0].revents == 0 {
            continue;
        }
        match file.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is valid.
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    read?;
    Ok(std::process::Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out,
        stderr: Vec::new(),
    })
}
