//! `module/scull.rs`: the shared buffer behind `/dev/scull`, its ioctls
//! (`module/scull.h`), the debugfs counters, the `capacity` parameter, module
//! pinning by open files, concurrency, load/unload cycles and the in-module
//! KUnit suite.
//!
//! The cases run in order and share the kernel's state: the first loads the
//! module with the default capacity, the device cases use it, `rmmod_after_close`
//! unloads it; `insmod_capacity_1mib` loads it again for the concurrency case,
//! and every case after `rmmod` expects it unloaded, which the last cases
//! leave it.

use crate::case::{Case, Env, Outcome, Suite, Verdict};
use crate::checks::{self, sysfs_module};
use crate::ensure;
use crate::sys;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

const MODULE: &str = "scull";
const DEV: &str = "/dev/scull";
const DEBUGFS_STATS: &str = "/sys/kernel/debug/scull/stats";
const KUNIT_SUITE: &str = "scull_buffer";
const DEFAULT_CAPACITY: u64 = 4096;
const MAX_CAPACITY: u64 = 1 << 20;
/// What the module logs when `capacity` is out of range (after `capacity=N`).
const RANGE_MSG: &str = "is out of range: allowed 1..=1048576 bytes";

// The ioctl numbers of module/scull.h: _IO/_IOR('x', nr[, type]).
const IOC_READ: u32 = 2;
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((b'x' as u32) << 8) | nr
}
const SCULL_IOC_CLEAR: u32 = ioc(0, 0x01, 0);
const SCULL_IOC_GET_SIZE: u32 = ioc(IOC_READ, 0x02, 8);
const SCULL_IOC_GET_CAPACITY: u32 = ioc(IOC_READ, 0x03, 8);
const SCULL_IOC_GET_STATS: u32 = ioc(IOC_READ, 0x04, std::mem::size_of::<Stats>());

/// `struct scull_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Stats {
    opens: u64,
    reads: u64,
    writes: u64,
    bytes_read: u64,
    bytes_written: u64,
}

impl Stats {
    /// The counts of what happened between `before` and `self`.
    fn since(&self, before: &Stats) -> Stats {
        Stats {
            opens: self.opens - before.opens,
            reads: self.reads - before.reads,
            writes: self.writes - before.writes,
            bytes_read: self.bytes_read - before.bytes_read,
            bytes_written: self.bytes_written - before.bytes_written,
        }
    }
}

// Concurrency: THREADS threads each write ROUNDS fixed-size records.
const THREADS: usize = 4;
const ROUNDS: usize = 10_000;
const RECORD: usize = 16;

pub fn suite() -> Suite {
    Suite {
        name: MODULE.into(),
        cases: vec![
            Case::new("insmod_defaults", insmod_defaults),
            Case::new("kunit_buffer_tests_passed", |_| {
                checks::require_loaded(MODULE)?;
                checks::kunit_suite_passed(KUNIT_SUITE)
            }),
            Case::new("write_read_round_trip", write_read_round_trip),
            Case::new("partial_writes", partial_writes),
            Case::new("partial_reads", partial_reads),
            Case::new("read_at_end_returns_0", read_at_end_returns_0),
            Case::new("write_at_offset", write_at_offset),
            Case::new("clear_ioctl", clear_ioctl),
            Case::new("write_past_capacity_enospc", write_past_capacity_enospc),
            Case::new("stats_count_calls", stats_count_calls),
            Case::new("unknown_ioctl_enotty", unknown_ioctl_enotty),
            Case::new("unmapped_user_buffer_efault", unmapped_user_buffer_efault),
            Case::new("rmmod_refused_while_open", rmmod_refused_while_open),
            Case::new("rmmod_after_close", rmmod_after_close),
            Case::new("insmod_capacity_1mib", insmod_capacity_1mib),
            Case::new("concurrent_4x10000", concurrent),
            Case::new("rmmod", |_| {
                checks::require_loaded(MODULE)?;
                checks::rmmod(MODULE)
            }),
            Case::new("capacity_0_refused", |env| out_of_range_refused(env, 0)),
            Case::new("capacity_too_large_refused", |env| {
                out_of_range_refused(env, MAX_CAPACITY + 1)
            }),
            Case::new(
                "capacity_not_a_number_refused",
                capacity_not_a_number_refused,
            ),
            Case::new("load_unload_cycles", load_unload_cycles),
            Case::new("left_unloaded", |_| {
                if Path::new(&sysfs_module(MODULE)).exists() {
                    let unloaded = sys::rmmod(MODULE);
                    return Err(format!(
                        "scull was still loaded at the end of the suite (rmmod now: {unloaded:?})"
                    ));
                }
                Ok(Outcome::Pass)
            }),
            Case::new("kernel_log_clean", |_| checks::log_clean()),
        ],
    }
}

// ---- helpers ----

fn os_err(what: &str, e: io::Error) -> String {
    format!("{what}: {e}")
}

/// Opens `/dev/scull` for reading and writing.
fn open() -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(DEV)
        .map_err(|e| os_err(&format!("open {DEV}"), e))
}

/// The loaded module's device, opened; fails clearly when scull is not loaded.
fn open_loaded() -> Result<File, String> {
    checks::require_loaded(MODULE)?;
    open()
}

/// `ioctl(fd, cmd, arg)`, with the errno as an `io::Error`.
fn ioctl(file: &File, cmd: u32, arg: *mut libc::c_void) -> io::Result<()> {
    // SAFETY: `arg` is null or points to memory of the size encoded in `cmd`
    // (or deliberately to unmapped memory, which the kernel must reject).
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), cmd as _, arg) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn ioctl_u64(file: &File, cmd: u32, name: &str) -> Result<u64, String> {
    let mut value = u64::MAX;
    ioctl(file, cmd, (&mut value as *mut u64).cast())
        .map_err(|e| os_err(&format!("ioctl {name}"), e))?;
    Ok(value)
}

fn size(file: &File) -> Result<u64, String> {
    ioctl_u64(file, SCULL_IOC_GET_SIZE, "SCULL_IOC_GET_SIZE")
}

fn capacity(file: &File) -> Result<u64, String> {
    ioctl_u64(file, SCULL_IOC_GET_CAPACITY, "SCULL_IOC_GET_CAPACITY")
}

fn clear(file: &File) -> Result<(), String> {
    ioctl(file, SCULL_IOC_CLEAR, std::ptr::null_mut())
        .map_err(|e| os_err("ioctl SCULL_IOC_CLEAR", e))
}

fn stats(file: &File) -> Result<Stats, String> {
    let mut stats = Stats::default();
    ioctl(file, SCULL_IOC_GET_STATS, (&mut stats as *mut Stats).cast())
        .map_err(|e| os_err("ioctl SCULL_IOC_GET_STATS", e))?;
    Ok(stats)
}

/// One `write(2)` of `bytes` at the file position; the count it returned.
fn write(mut file: &File, bytes: &[u8]) -> Result<usize, String> {
    file.write(bytes)
        .map_err(|e| os_err(&format!("write of {} bytes", bytes.len()), e))
}

/// One `read(2)` of up to `len` bytes from the file position.
fn read(mut file: &File, len: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0; len];
    let n = file
        .read(&mut buf)
        .map_err(|e| os_err(&format!("read of {len} bytes"), e))?;
    buf.truncate(n);
    Ok(buf)
}

/// One `pread(2)` of up to `len` bytes at `offset`.
fn pread(file: &File, len: usize, offset: u64) -> Result<Vec<u8>, String> {
    let mut buf = vec![0; len];
    let n = file
        .read_at(&mut buf, offset)
        .map_err(|e| os_err(&format!("pread of {len} bytes at {offset}"), e))?;
    buf.truncate(n);
    Ok(buf)
}

/// One `pwrite(2)` of `bytes` at `offset`; the count it returned.
fn pwrite(file: &File, bytes: &[u8], offset: u64) -> Result<usize, String> {
    file.write_at(bytes, offset)
        .map_err(|e| os_err(&format!("pwrite of {} bytes at {offset}", bytes.len()), e))
}

/// The whole content, read with `pread`s from offset 0.
fn content(file: &File) -> Result<Vec<u8>, String> {
    let mut all = Vec::new();
    loop {
        let chunk = pread(file, 64 * 1024, all.len() as u64)?;
        if chunk.is_empty() {
            return Ok(all);
        }
        all.extend_from_slice(&chunk);
    }
}

/// `len` bytes of a pattern that shows misplaced bytes.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

/// An empty buffer and an fd on it.
fn cleared() -> Result<File, String> {
    let file = open_loaded()?;
    clear(&file)?;
    ensure!(size(&file)? == 0, "size is not 0 after SCULL_IOC_CLEAR");
    Ok(file)
}

fn expect_errno(result: io::Result<usize>, errno: i32, what: &str) -> Result<(), String> {
    let want = io::Error::from_raw_os_error(errno);
    match result {
        Ok(n) => Err(format!("{what} returned {n}; expected {want}")),
        Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
        Err(e) => Err(format!("{what}: {e}; expected {want}")),
    }
}

// ---- cases ----

fn insmod_defaults(env: &Env) -> Verdict {
    checks::insmod(env, MODULE, "")?;
    ensure!(Path::new(DEV).exists(), "{DEV} does not exist after insmod");
    let file = open()?;
    let cap = capacity(&file)?;
    ensure!(
        cap == DEFAULT_CAPACITY,
        "SCULL_IOC_GET_CAPACITY = {cap}; the default is {DEFAULT_CAPACITY}"
    );
    ensure!(size(&file)? == 0, "a new device is not empty");
    checks::logged("scull: /dev/scull ready, capacity 4096 bytes", 1)
}

fn write_read_round_trip(_: &Env) -> Verdict {
    let writer = cleared()?;
    let data = b"hello from the scull suite";
    let n = write(&writer, data)?;
    ensure!(n == data.len(), "write returned {n} of {}", data.len());
    ensure!(
        size(&writer)? == data.len() as u64,
        "size differs from what was written"
    );
    // Another open file (at position 0) sees the same, shared buffer.
    let reader = open()?;
    let got = read(&reader, 4096)?;
    ensure!(
        got == data,
        "read back {:?}, wrote {:?}",
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(data)
    );
    Ok(Outcome::Pass)
}

fn partial_writes(_: &Env) -> Verdict {
    let file = cleared()?;
    let data = pattern(1000, 1);
    // Consecutive small writes advance the file position and append.
    for chunk in data.chunks(13) {
        let n = write(&file, chunk)?;
        ensure!(n == chunk.len(), "write returned {n} of {}", chunk.len());
    }
    ensure!(
        size(&file)? == 1000,
        "size {} after 1000 bytes in 13-byte writes",
        size(&file)?
    );
    ensure!(
        content(&file)? == data,
        "content differs from the 13-byte writes"
    );
    Ok(Outcome::Pass)
}

fn partial_reads(_: &Env) -> Verdict {
    let writer = cleared()?;
    let data = pattern(1000, 2);
    ensure!(write(&writer, &data)? == 1000, "short write of 1000 bytes");
    // Small reads advance the file position until 0 says "end".
    let reader = open()?;
    let mut got = Vec::new();
    let mut calls = 0;
    loop {
        let chunk = read(&reader, 7)?;
        calls += 1;
        if chunk.is_empty() {
            break;
        }
        ensure!(
            chunk.len() == 7 || got.len() + chunk.len() == 1000,
            "read returned {} bytes mid-content",
            chunk.len()
        );
        got.extend_from_slice(&chunk);
        ensure!(calls <= 200, "reads do not reach the end of 1000 bytes");
    }
    ensure!(
        got == data,
        "content read 7 bytes at a time differs from what was written"
    );
    ensure!(
        calls == 1000_usize.div_ceil(7) + 1,
        "{calls} reads of 7 bytes for 1000 bytes"
    );
    // The device cannot seek: positions come from pread/pwrite.
    // SAFETY: lseek takes no pointers.
    let ret = unsafe { libc::lseek(reader.as_raw_fd(), 0, libc::SEEK_SET) };
    expect_errno(syscall_result(ret as isize), libc::ESPIPE, "lseek")?;
    // A read that crosses the end returns what is left.
    let tail = pread(&reader, 64, 990)?;
    ensure!(
        tail == data[990..],
        "pread of 64 at 990 returned {} bytes, expected 10",
        tail.len()
    );
    Ok(Outcome::Pass)
}

fn read_at_end_returns_0(_: &Env) -> Verdict {
    let file = cleared()?;
    ensure!(
        read(&file, 16)?.is_empty(),
        "read of an empty device returned bytes"
    );
    ensure!(write(&file, b"0123456789")? == 10, "short write");
    // The position is now at the end.
    ensure!(
        read(&file, 16)?.is_empty(),
        "read at the end (after a write) returned bytes"
    );
    ensure!(
        pread(&file, 16, 10)?.is_empty(),
        "pread at the end returned bytes"
    );
    ensure!(
        pread(&file, 16, 5000)?.is_empty(),
        "pread past the end returned bytes"
    );
    Ok(Outcome::Pass)
}

fn write_at_offset(_: &Env) -> Verdict {
    let file = cleared()?;
    ensure!(write(&file, b"abcdef")? == 6, "short write");
    // Overwrite in the middle: the size stays.
    ensure!(pwrite(&file, b"XY", 2)? == 2, "short pwrite");
    ensure!(
        content(&file)? == b"abXYef",
        "overwrite at offset 2: {:?}",
        content(&file)?
    );
    // Past the end: the gap reads as zeros.
    ensure!(pwrite(&file, b"z", 9)? == 1, "short pwrite");
    let got = content(&file)?;
    ensure!(got == b"abXYef\0\0\0z", "write past the end: {got:?}");
    Ok(Outcome::Pass)
}

fn clear_ioctl(_: &Env) -> Verdict {
    let file = open_loaded()?;
    ensure!(write(&file, b"something")? == 9, "short write");
    ensure!(size(&file)? > 0, "size is 0 after a write");
    clear(&file)?;
    ensure!(
        size(&file)? == 0,
        "size {} after SCULL_IOC_CLEAR",
        size(&file)?
    );
    ensure!(
        pread(&file, 16, 0)?.is_empty(),
        "read after SCULL_IOC_CLEAR returned bytes"
    );
    Ok(Outcome::Pass)
}

fn write_past_capacity_enospc(_: &Env) -> Verdict {
    let file = cleared()?;
    let cap = capacity(&file)?;
    let data = pattern(cap as usize + 100, 3);
    // Starts below the capacity: stores what fits, returns the short count.
    let n = write(&file, &data)?;
    ensure!(
        n as u64 == cap,
        "write of {} bytes returned {n}; capacity is {cap}",
        data.len()
    );
    // Now at the capacity: nothing fits.
    expect_errno(
        (&file).write(b"more"),
        libc::ENOSPC,
        "write at the capacity",
    )?;
    expect_errno(
        file.write_at(b"x", cap + 10),
        libc::ENOSPC,
        "pwrite past the capacity",
    )?;
    ensure!(
        size(&file)? == cap,
        "size {} != capacity {cap}",
        size(&file)?
    );
    // A write that straddles the limit is cut at it.
    ensure!(
        pwrite(&file, b"0123456789", cap - 6)? == 6,
        "straddling pwrite not cut at capacity"
    );
    let got = content(&file)?;
    ensure!(
        got.len() as u64 == cap,
        "{} bytes readable; capacity is {cap}",
        got.len()
    );
    ensure!(
        got[..cap as usize - 6] == data[..cap as usize - 6],
        "content before the limit changed"
    );
    ensure!(
        &got[cap as usize - 6..] == b"012345",
        "the straddling write stored {:?}",
        &got[cap as usize - 6..]
    );
    Ok(Outcome::Pass)
}

/// Parses `/sys/kernel/debug/scull/stats`.
fn debugfs_stats() -> Result<Stats, String> {
    let text = std::fs::read_to_string(DEBUGFS_STATS).map_err(|e| os_err(DEBUGFS_STATS, e))?;
    let mut stats = Stats::default();
    let mut seen = Vec::new();
    for line in text.lines() {
        let (name, value) = line
            .split_once(' ')
            .ok_or_else(|| format!("{DEBUGFS_STATS}: cannot read line {line:?}"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("{DEBUGFS_STATS}: {line:?} has no number"))?;
        let field = match name {
            "opens" => &mut stats.opens,
            "reads" => &mut stats.reads,
            "writes" => &mut stats.writes,
            "bytes_read" => &mut stats.bytes_read,
            "bytes_written" => &mut stats.bytes_written,
            _ => return Err(format!("{DEBUGFS_STATS}: unknown line {line:?}")),
        };
        *field = value;
        seen.push(name.to_string());
    }
    ensure!(
        seen.len() == 5,
        "{DEBUGFS_STATS} has {} counters, not 5:\n{text}",
        seen.len()
    );
    Ok(stats)
}

fn stats_count_calls(_: &Env) -> Verdict {
    let f0 = cleared()?;
    let before = stats(&f0)?;
    // Exactly: 2 opens, 3 writes of 9 bytes, 3 reads of 17 bytes.
    let f1 = open()?;
    let f2 = open()?;
    ensure!(write(&f1, b"abc")? == 3, "short write");
    ensure!(write(&f1, b"defg")? == 4, "short write");
    ensure!(pwrite(&f2, b"XY", 100)? == 2, "short pwrite");
    ensure!(read(&f2, 10)?.len() == 10, "read of 10 was short");
    ensure!(
        pread(&f2, 10, 102)?.is_empty(),
        "read at the end returned bytes"
    );
    ensure!(
        pread(&f2, 100, 95)?.len() == 7,
        "read across the end did not return 7"
    );
    // Failed calls do not count.
    let cap = capacity(&f0)?;
    expect_errno(
        f1.write_at(b"x", cap),
        libc::ENOSPC,
        "pwrite at the capacity",
    )?;
    ensure!(size(&f0)? == 102, "size {} != 102", size(&f0)?);
    let after = stats(&f0)?;
    let want = Stats {
        opens: 2,
        reads: 3,
        writes: 3,
        bytes_read: 17,
        bytes_written: 9,
    };
    let got = after.since(&before);
    ensure!(got == want, "counted {got:?}\nexpected {want:?}");
    // The debugfs file shows the same counters, and is read-only.
    let mode = std::fs::metadata(DEBUGFS_STATS)
        .map_err(|e| os_err(DEBUGFS_STATS, e))?
        .permissions()
        .mode();
    ensure!(
        mode & 0o222 == 0,
        "{DEBUGFS_STATS} is writable (mode {mode:o})"
    );
    let text = debugfs_stats()?;
    ensure!(
        text == after,
        "{DEBUGFS_STATS} shows {text:?}\nioctl says {after:?}"
    );
    Ok(Outcome::Pass)
}

fn unknown_ioctl_enotty(_: &Env) -> Verdict {
    let file = open_loaded()?;
    let mut arg = 0u64;
    let argp = (&mut arg as *mut u64).cast();
    for (cmd, what) in [
        (ioc(0, 0x1f, 0), "_IO('x', 0x1f)"),
        (
            ioc(IOC_READ, 0x02, 4),
            "_IOR('x', 2, u32) (GET_SIZE with the wrong size)",
        ),
        (
            ioc(0, 0x01, 0) ^ 0x100,
            "_IO('y', 1) (CLEAR with another type)",
        ),
        (libc::TCGETS as u32, "TCGETS"),
    ] {
        match ioctl(&file, cmd, argp) {
            Ok(()) => {
                return Err(format!(
                    "ioctl {what} ({cmd:#x}) succeeded; expected ENOTTY"
                ))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => {}
            Err(e) => return Err(format!("ioctl {what} ({cmd:#x}): {e}; expected ENOTTY")),
        }
    }
    Ok(Outcome::Pass)
}

/// An address with nothing mapped at it: a page mapped and unmapped again.
fn unmapped_address() -> Result<*mut libc::c_void, String> {
    // SAFETY: an anonymous private mapping of one page, unmapped right away;
    // the address is only handed to the kernel, never dereferenced here.
    unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if page == libc::MAP_FAILED {
            return Err(os_err("mmap", io::Error::last_os_error()));
        }
        if libc::munmap(page, 4096) != 0 {
            return Err(os_err("munmap", io::Error::last_os_error()));
        }
        Ok(page)
    }
}

fn syscall_result(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

fn unmapped_user_buffer_efault(_: &Env) -> Verdict {
    let mut log = checks::LogWatch::start()?;
    let file = cleared()?;
    ensure!(write(&file, b"some content")? == 12, "short write");
    let bad = unmapped_address()?;
    let fd = file.as_raw_fd();
    // SAFETY: the kernel must reject the unmapped buffer; nothing is read here.
    let ret = unsafe { libc::pread(fd, bad, 12, 0) };
    expect_errno(
        syscall_result(ret),
        libc::EFAULT,
        "read into an unmapped buffer",
    )?;
    // SAFETY: as above, for a write from it (past the end: no gap may stay).
    let ret = unsafe { libc::pwrite(fd, bad, 12, 20) };
    expect_errno(
        syscall_result(ret),
        libc::EFAULT,
        "write from an unmapped buffer",
    )?;
    ensure!(
        size(&file)? == 12,
        "a failed write changed the size to {}",
        size(&file)?
    );
    let got = ioctl(&file, SCULL_IOC_GET_STATS, bad);
    expect_errno(
        got.map(|()| 0),
        libc::EFAULT,
        "SCULL_IOC_GET_STATS to an unmapped buffer",
    )?;
    // The device still works and the kernel did not complain.
    ensure!(pread(&file, 64, 0)? == b"some content", "content changed");
    let new = log.trouble()?;
    ensure!(
        new.is_empty(),
        "the kernel log reports trouble:\n{}",
        new.join("\n")
    );
    Ok(Outcome::Pass)
}

fn expect_refcnt(want: u64, when: &str) -> Result<(), String> {
    let got = checks::module_refcnt(MODULE)?;
    ensure!(got == want, "refcnt is {got} {when}; expected {want}");
    Ok(())
}

fn expect_rmmod_refused(when: &str) -> Result<(), String> {
    match sys::rmmod(MODULE) {
        Ok(()) => Err(format!("rmmod scull succeeded {when}")),
        // delete_module(2) with O_NONBLOCK on a module in use: EWOULDBLOCK (= EAGAIN).
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
            ensure!(
                Path::new(&sysfs_module(MODULE)).exists(),
                "rmmod failed but {} is gone",
                sysfs_module(MODULE)
            );
            Ok(())
        }
        Err(e) => Err(format!("rmmod scull {when}: {e}; expected EWOULDBLOCK")),
    }
}

fn rmmod_refused_while_open(_: &Env) -> Verdict {
    checks::require_loaded(MODULE)?;
    expect_refcnt(0, "with /dev/scull closed")?;
    let first = open()?;
    expect_refcnt(1, "with /dev/scull open once")?;
    expect_rmmod_refused("with /dev/scull open")?;
    let second = open()?;
    expect_refcnt(2, "with /dev/scull open twice")?;
    expect_rmmod_refused("with /dev/scull open twice")?;
    // The refused rmmod left the device working.
    ensure!(
        pwrite(&first, b"still here", 0)? == 10,
        "short write after refused rmmod"
    );
    ensure!(
        pread(&second, 10, 0)? == b"still here",
        "content lost after refused rmmod"
    );
    drop(second);
    expect_refcnt(1, "after closing one of two")?;
    expect_rmmod_refused("with /dev/scull still open once")?;
    drop(first);
    expect_refcnt(0, "after closing both")?;
    Ok(Outcome::Pass)
}

fn rmmod_after_close(_: &Env) -> Verdict {
    checks::require_loaded(MODULE)?;
    checks::rmmod(MODULE)?;
    for gone in [
        DEV,
        "/sys/kernel/debug/scull",
        "/sys/kernel/debug/kunit/scull_buffer",
    ] {
        ensure!(!Path::new(gone).exists(), "{gone} still exists after rmmod");
    }
    checks::logged("scull: unloaded", 1)
}

fn insmod_capacity_1mib(env: &Env) -> Verdict {
    ensure!(
        !Path::new(&sysfs_module(MODULE)).exists(),
        "scull is still loaded (an earlier case failed?)"
    );
    checks::insmod(env, MODULE, &format!("capacity={MAX_CAPACITY}"))?;
    let cap = capacity(&open()?)?;
    ensure!(
        cap == MAX_CAPACITY,
        "loaded with capacity={MAX_CAPACITY}, the ioctl says {cap}"
    );
    Ok(Outcome::Pass)
}

/// Record `i` of thread `t`: 16 bytes, e.g. `t2:000000001234\n`.
fn record(t: usize, i: usize) -> Vec<u8> {
    format!("t{t}:{i:012}\n").into_bytes()
}

/// Slot `s` (offset `s * RECORD`) belongs to thread `s % THREADS`, round `s / THREADS`.
fn slot_record(slot: usize) -> Vec<u8> {
    record(slot % THREADS, slot / THREADS)
}

/// One thread of the concurrency case: writes its records interleaved with the
/// other threads' (slot `i * THREADS + t`), growing the buffer as they do, and
/// after each write reads its record and the next slot with one `pread`. The
/// module makes each read and write atomic: its own record must read back
/// intact, and the next slot (another thread's) must be either not yet
/// written (past the end, or zeros from a later slot's write) or that
/// thread's complete record, never a torn one. Returns the bytes read.
fn hammer(t: usize, cpu: usize) -> Result<u64, String> {
    sys::pin_to_cpu(cpu).map_err(|e| format!("thread {t}: pinning it to CPU {cpu}: {e}"))?;
    let file = open()?;
    let mut bytes_read = 0;
    for i in 0..ROUNDS {
        let slot = i * THREADS + t;
        let offset = (slot * RECORD) as u64;
        let mine = record(t, i);
        let n = pwrite(&file, &mine, offset)?;
        ensure!(n == RECORD, "thread {t}: pwrite of record {i} returned {n}");
        let got = pread(&file, 2 * RECORD, offset)?;
        bytes_read += got.len() as u64;
        ensure!(
            got.len() == RECORD || got.len() == 2 * RECORD,
            "thread {t}: pread of 32 bytes at {offset} returned {} (content not in whole records)",
            got.len()
        );
        ensure!(
            got[..RECORD] == mine[..],
            "thread {t}: record {i} reads back as {:?}",
            String::from_utf8_lossy(&got[..RECORD])
        );
        let next = &got[RECORD..];
        ensure!(
            next.is_empty() || next == [0; RECORD] || next == slot_record(slot + 1),
            "thread {t}: the slot after record {i} holds a torn record {:?}",
            String::from_utf8_lossy(next)
        );
    }
    // SAFETY: sched_getcpu takes no arguments.
    let ran_on = unsafe { libc::sched_getcpu() };
    ensure!(
        usize::try_from(ran_on) == Ok(cpu),
        "thread {t} was pinned to CPU {cpu} but ran on CPU {ran_on}"
    );
    Ok(bytes_read)
}

fn concurrent(_: &Env) -> Verdict {
    let file = cleared()?;
    let total = (THREADS * ROUNDS * RECORD) as u64;
    let cap = capacity(&file)?;
    ensure!(
        cap >= total,
        "needs capacity >= {total}, loaded with {cap} (insmod_capacity_1mib failed?)"
    );
    // Real concurrency needs more than one CPU: each thread is pinned to one,
    // round robin, and checks at the end that it ran there.
    let cpus = sys::online_cpus()?;
    ensure!(
        cpus.len() >= 2,
        "the VM has {} CPU(s) online; this case needs 2 or more for its threads to run \
         at the same time (lkmlab.toml [vm] cpus, a kernel with CONFIG_SMP)",
        cpus.len()
    );
    let before = stats(&file)?;
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let cpu = cpus[t % cpus.len()];
            std::thread::spawn(move || hammer(t, cpu))
        })
        .collect();
    let mut bytes_read = 0;
    let mut errors = Vec::new();
    for (t, handle) in threads.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(n)) => bytes_read += n,
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push(format!("thread {t} panicked")),
        }
    }
    println!(
        "{THREADS} threads x {ROUNDS} pwrite+pread of {RECORD}-byte records on CPUs {:?}: {:.1} s",
        (0..THREADS)
            .map(|t| cpus[t % cpus.len()])
            .collect::<Vec<_>>(),
        start.elapsed().as_secs_f64()
    );
    ensure!(errors.is_empty(), "{}", errors.join("\n"));
    // Every call counted exactly once.
    let got = stats(&file)?.since(&before);
    let calls = (THREADS * ROUNDS) as u64;
    let want = Stats {
        opens: THREADS as u64,
        reads: calls,
        writes: calls,
        bytes_read,
        bytes_written: total,
    };
    ensure!(got == want, "counted {got:?}\nexpected {want:?}");
    // The content is every record in its slot, nothing else.
    let size = size(&file)?;
    ensure!(
        size == total,
        "size {size} after {calls} records of {RECORD} bytes; expected {total}"
    );
    let all = content(&file)?;
    ensure!(
        all.len() as u64 == total,
        "{} bytes readable, expected {total}",
        all.len()
    );
    for (slot, chunk) in all.chunks(RECORD).enumerate() {
        ensure!(
            chunk == slot_record(slot),
            "slot {slot} holds {:?}, expected {:?}",
            String::from_utf8_lossy(chunk),
            String::from_utf8_lossy(&slot_record(slot))
        );
    }
    Ok(Outcome::Pass)
}

fn out_of_range_refused(env: &Env, capacity: u64) -> Verdict {
    let param = format!("capacity={capacity}");
    checks::insmod_refused(env, MODULE, &param, libc::EINVAL)?;
    ensure!(
        !Path::new(DEV).exists(),
        "{DEV} exists after a refused load"
    );
    let msg = format!("{param} {RANGE_MSG}");
    let lines = checks::log_lines_with(&msg)?;
    ensure!(!lines.is_empty(), "the kernel log does not say {msg:?}");
    Ok(Outcome::Pass)
}

fn capacity_not_a_number_refused(env: &Env) -> Verdict {
    checks::insmod_refused(env, MODULE, "capacity=abc", libc::EINVAL)?;
    ensure!(
        !Path::new(DEV).exists(),
        "{DEV} exists after a refused load"
    );
    // The kernel's parameter parser refuses it before the module's init runs.
    checks::logged("`abc' invalid for parameter `capacity'", 1)?;
    let init_ran = checks::log_lines_with(&format!("capacity=abc {RANGE_MSG}"))?;
    ensure!(
        init_ran.is_empty(),
        "scull's init ran with capacity=abc: {init_ran:?}"
    );
    Ok(Outcome::Pass)
}

/// Load/unload cycles on an ordinary kernel: enough for a refcount or state
/// that drifts by one per load to show.
const CYCLES: usize = 200;
/// On a kernel with the bug detectors (kmemleak marks it: the debug
/// flavor), where a cycle costs about ten times as much (0.22 s under TCG)
/// and KASAN, SLUB debugging and lockdep see a bad free, a corruption or a
/// lock imbalance the first time it happens: each capacity a few times.
const CYCLES_DEBUG: usize = 12;

fn cycles() -> usize {
    if Path::new("/sys/kernel/debug/kmemleak").exists() {
        CYCLES_DEBUG
    } else {
        CYCLES
    }
}

/// One cycle: load with `capacity`, check it through the device, unload.
fn cycle(env: &Env, capacity: u64) -> Result<(), String> {
    checks::insmod(env, MODULE, &format!("capacity={capacity}"))?;
    let file = open()?;
    let got = self::capacity(&file)?;
    ensure!(
        got == capacity,
        "loaded with capacity={capacity}, the ioctl says {got}"
    );
    ensure!(write(&file, b"x")? == 1, "write failed");
    drop(file);
    checks::rmmod(MODULE)?;
    Ok(())
}

fn load_unload_cycles(env: &Env) -> Verdict {
    ensure!(
        !Path::new(&sysfs_module(MODULE)).exists(),
        "scull is still loaded (an earlier case failed?)"
    );
    let start = Instant::now();
    let capacities = [1, DEFAULT_CAPACITY, 12345, MAX_CAPACITY];
    // The KUnit suite ran (and was checked) at the first load; running it
    // again at each of these loads would test nothing new.
    let _quiet = checks::KunitPaused::new()?;
    let cycles = cycles();
    for n in 0..cycles {
        if let Err(e) = cycle(env, capacities[n % capacities.len()]) {
            let _ = sys::rmmod(MODULE);
            return Err(format!("cycle {} of {cycles}: {e}", n + 1));
        }
    }
    println!(
        "{cycles} load/unload cycles: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(Outcome::Pass)
}
