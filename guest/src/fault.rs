//! The kernel's fault injection, as the runner uses it: fail the N-th
//! allocation (fault point) of one task, from its next syscall on
//! (`/proc/<task>/fail-nth`, Documentation/fault-injection/).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

const FAILSLAB: &str = "/sys/kernel/debug/failslab";
const FAIL_PAGE_ALLOC: &str = "/sys/kernel/debug/fail_page_alloc";

/// What the kernel needs for fault injection, for messages.
pub const NEEDS: &str = "a kernel with CONFIG_FAULT_INJECTION, CONFIG_FAILSLAB, \
     CONFIG_FAIL_PAGE_ALLOC and CONFIG_FAULT_INJECTION_DEBUG_FS (lkmlab's debug flavor: \
     --flavor debug)";

/// Makes the slab and page allocations made by module code fault points
/// that `fail-nth` can fail. The defaults skip what most code allocates
/// with: GFP_KERNEL allocations (`ignore-gfp-wait` is Y) and single pages
/// (`min-order` is 1). The stacktrace filter (`require-start`/`-end`) lets
/// only allocations with a frame of module code on the stack count: those
/// of a module's init, of the kernel functions it calls, of its file
/// operations; not the module loader's own, nor a user program's.
/// `verbose` 1 logs one line per injected failure, without the stack dump
/// that level 2 (the default) adds.
pub fn enable() -> Result<(), String> {
    if !Path::new(FAILSLAB).is_dir() || !Path::new(FAIL_PAGE_ALLOC).is_dir() {
        return Err(format!(
            "this kernel has no fault injection ({FAILSLAB} or {FAIL_PAGE_ALLOC} is missing): \
             it needs {NEEDS}"
        ));
    }
    if !Path::new(&format!("{FAILSLAB}/require-start")).exists() {
        return Err(format!(
            "this kernel's fault injection has no stacktrace filter ({FAILSLAB}/require-start \
             is missing): it needs CONFIG_FAULT_INJECTION_STACKTRACE_FILTER, as lkmlab's debug \
             flavor has"
        ));
    }
    let kallsyms = Kallsyms::read()?;
    let text_end = kallsyms
        .address("_etext")
        .ok_or("/proc/kallsyms has no _etext")?;
    let modules_from = format!("{text_end:#x}");
    // kmemleak records every allocation in an object of its own, allocated
    // on the way (kmemleak's __alloc_object); when that fails it falls back
    // to a reserve and the allocation succeeds anyway. Failing it would test
    // kmemleak, not the module: stacks through it are rejected.
    let (reject_start, reject_end) = kallsyms
        .function("__alloc_object")
        .map(|(s, e)| (format!("{s:#x}"), format!("{e:#x}")))
        .unwrap_or_else(|| ("0".into(), "0".into()));
    for dir in [FAILSLAB, FAIL_PAGE_ALLOC] {
        for (knob, value) in [
            ("require-start", modules_from.as_str()),
            ("require-end", "0xffffffffffffffff"),
            ("reject-start", reject_start.as_str()),
            ("reject-end", reject_end.as_str()),
            // The deepest stack the filter walks: allocator internals, the
            // Rust allocation API and the module's frames fit well within.
            ("stacktrace-depth", "32"),
        ] {
            let path = format!("{dir}/{knob}");
            std::fs::write(&path, value).map_err(|e| format!("writing {value} to {path}: {e}"))?;
        }
    }
    for (dir, knob, value) in [
        (FAILSLAB, "ignore-gfp-wait", "N"),
        (FAILSLAB, "verbose", "1"),
        (FAIL_PAGE_ALLOC, "ignore-gfp-wait", "N"),
        (FAIL_PAGE_ALLOC, "ignore-gfp-highmem", "N"),
        (FAIL_PAGE_ALLOC, "min-order", "0"),
        (FAIL_PAGE_ALLOC, "verbose", "1"),
    ] {
        let path = format!("{dir}/{knob}");
        std::fs::write(&path, value).map_err(|e| format!("writing {value} to {path}: {e}"))?;
    }
    Ok(())
}

/// Addresses of the kernel's text, from `/proc/kallsyms`.
struct Kallsyms {
    /// (address, name), sorted by address.
    symbols: Vec<(u64, String)>,
}

impl Kallsyms {
    fn read() -> Result<Kallsyms, String> {
        const KALLSYMS: &str = "/proc/kallsyms";
        let text = std::fs::read_to_string(KALLSYMS).map_err(|e| format!("{KALLSYMS}: {e}"))?;
        let mut symbols: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let addr = u64::from_str_radix(words.next()?, 16).ok()?;
                let _kind = words.next()?;
                Some((addr, words.next()?.to_string()))
            })
            .collect();
        if symbols.iter().all(|(addr, _)| *addr == 0) {
            return Err(format!(
                "{KALLSYMS} hides addresses (kptr_restrict): cannot tell module code apart"
            ));
        }
        symbols.sort();
        Ok(Kallsyms { symbols })
    }

    fn address(&self, name: &str) -> Option<u64> {
        self.symbols
            .iter()
            .find(|(_, n)| n == name)
            .map(|(a, _)| *a)
    }

    /// `[start, end)` of function `name`: up to the next symbol.
    fn function(&self, name: &str) -> Option<(u64, u64)> {
        let start = self.address(name)?;
        let end = self.symbols.iter().map(|(a, _)| *a).find(|a| *a > start)?;
        Some((start, end))
    }
}

/// A task's `fail-nth` file, opened before it is armed: opening it
/// allocates, and so would count.
pub struct FailNth(File);

impl FailNth {
    /// The calling thread's own.
    pub fn this_thread() -> io::Result<FailNth> {
        Self::open("/proc/thread-self/fail-nth")
    }

    /// Task `tid`'s (a tracee's).
    pub fn of_task(tid: libc::pid_t) -> io::Result<FailNth> {
        Self::open(&format!("/proc/{tid}/fail-nth"))
    }

    fn open(path: &str) -> io::Result<FailNth> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(FailNth)
            .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
    }

    /// Fails the task's `n`-th fault point from now on (0 disarms).
    pub fn arm(&mut self, n: u32) -> io::Result<()> {
        self.0.write_all(n.to_string().as_bytes())
    }

    /// Fault points left before the failure: 0 once it was injected.
    pub fn remaining(&self) -> io::Result<u32> {
        let mut buf = [0u8; 16];
        let len = self.0.read_at(&mut buf, 0)?;
        String::from_utf8_lossy(&buf[..len])
            .trim()
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("fail-nth: {e}")))
    }
}
