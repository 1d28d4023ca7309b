//! Checks shared by the suites: modules, sysfs and the kernel log.

use crate::case::{Env, Outcome, Verdict};
use crate::ensure;
use crate::sys;
use lkmlab_protocol::kernel_log::{
    self, is_alloc_failure, is_probe_failure, INJECTED_LINES, INJECTION_NOTICE,
};
use lkmlab_protocol::{KUNIT_FILTER_ALL, KUNIT_FILTER_NONE};
use std::collections::BTreeSet;
use std::io;
use std::path::Path;

/// Lines in the kernel log that mean something went wrong. The host scans the
/// whole console log more thoroughly; this is the guest's own view.
const TROUBLE: &[&str] = &[
    "WARNING:",
    "BUG:",
    "kernel BUG",
    "Oops",
    "Call Trace",
    "UBSAN:",
    "KASAN:",
    "unreferenced object",
    "suspected memory leak",
    "possible circular locking",
    "possible recursive locking",
];

pub fn sysfs_module(module: &str) -> String {
    format!("/sys/module/{module}")
}

/// How many of the kernel's own lines about a module a failed load quotes.
const WHY_LINES: usize = 5;

/// The kernel's last lines naming `module` (the reason behind an errno such
/// as "Exec format error"), as text to append to a failure message.
fn kernel_says(module: &str) -> String {
    let lines = log_lines_with(&format!("{module}:")).unwrap_or_default();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(WHY_LINES)..];
    format!("\nthe kernel says:\n{}", tail.join("\n"))
}

/// `insmod PATH PARAMS` as a shell would show it.
fn insmod_command(ko: &Path, params: &str) -> String {
    if params.is_empty() {
        format!("insmod {}", ko.display())
    } else {
        format!("insmod {} {params}", ko.display())
    }
}

pub fn insmod(env: &Env, module: &str, params: &str) -> Verdict {
    let ko = env.ko(module)?;
    sys::insmod(ko, params)
        .map_err(|e| format!("{}: {e}{}", insmod_command(ko, params), kernel_says(module)))?;
    ensure!(
        Path::new(&sysfs_module(module)).exists(),
        "insmod succeeded but {} does not exist",
        sysfs_module(module)
    );
    record_load(module);
    Ok(Outcome::Pass)
}

/// Writes where the module was loaded into the kernel log
/// ([`kernel_log::module_loaded`]): after it is unloaded, a fault at an
/// address in that memory is still the module's. Nothing is written if
/// `/proc/modules` does not say (a kernel that hides addresses).
pub fn record_load(module: &str) {
    let text = read_proc_modules().unwrap_or_default();
    if let Some(at) = loaded_at(&text, module) {
        sys::log_to_kernel(&kernel_log::module_loaded(module, at));
    }
}

const PROC_MODULES: &str = "/proc/modules";

fn read_proc_modules() -> Result<String, String> {
    std::fs::read_to_string(PROC_MODULES).map_err(|e| format!("reading {PROC_MODULES}: {e}"))
}

/// The fields of each line of `/proc/modules` text: `NAME SIZE REFS DEPS
/// STATE ADDRESS [TAINTS]`.
fn proc_modules_entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| !fields.is_empty())
}

/// `module`'s place in `/proc/modules` text.
fn loaded_at(proc_modules: &str, module: &str) -> Option<kernel_log::LoadedAt> {
    let fields = proc_modules_entries(proc_modules).find(|f| f[0] == module)?;
    let size = fields.get(1)?.parse().ok()?;
    let base = u64::from_str_radix(fields.get(5)?.strip_prefix("0x")?, 16).ok()?;
    (base != 0).then_some(kernel_log::LoadedAt { base, size })
}

/// The `rmmod` case of a suite: skipped when the module is not loaded (its
/// `insmod` case has already failed and said why), else [`rmmod`].
pub fn unload(module: &str) -> Verdict {
    if !Path::new(&sysfs_module(module)).exists() {
        return Ok(Outcome::Skip(format!("{module} is not loaded")));
    }
    rmmod(module)
}

pub fn rmmod(module: &str) -> Verdict {
    sys::rmmod(module).map_err(|e| format!("rmmod {module}: {e}"))?;
    ensure!(
        !Path::new(&sysfs_module(module)).exists(),
        "rmmod succeeded but {} still exists",
        sysfs_module(module)
    );
    Ok(Outcome::Pass)
}

/// The names of the modules loaded now (`/proc/modules`).
pub fn loaded_modules() -> Result<BTreeSet<String>, String> {
    Ok(module_names(&read_proc_modules()?))
}

/// The name of each module in `/proc/modules` text.
fn module_names(proc_modules: &str) -> BTreeSet<String> {
    proc_modules_entries(proc_modules)
        .map(|fields| fields[0].to_string())
        .collect()
}

/// Loading must fail with exactly `errno` and leave nothing loaded.
pub fn insmod_refused(env: &Env, module: &str, params: &str, errno: i32) -> Verdict {
    let ko = env.ko(module)?;
    match sys::insmod(ko, params) {
        Ok(()) => {
            let _ = sys::rmmod(module);
            Err(format!(
                "{} succeeded; expected {}",
                insmod_command(ko, params),
                io::Error::from_raw_os_error(errno)
            ))
        }
        Err(e) if e.raw_os_error() == Some(errno) => {
            ensure!(
                !Path::new(&sysfs_module(module)).exists(),
                "insmod failed as expected but {} exists",
                sysfs_module(module)
            );
            Ok(Outcome::Pass)
        }
        Err(e) => Err(format!(
            "{}: {e}; expected {}",
            insmod_command(ko, params),
            io::Error::from_raw_os_error(errno)
        )),
    }
}

/// The kernel log lines that contain `needle`.
pub fn log_lines_with(needle: &str) -> Result<Vec<String>, String> {
    let log = sys::kernel_log().map_err(|e| format!("reading /dev/kmsg: {e}"))?;
    Ok(log.into_iter().filter(|l| l.contains(needle)).collect())
}

/// The kernel log holds `needle` (at least `times` times).
pub fn logged(needle: &str, times: usize) -> Verdict {
    let found = log_lines_with(needle)?.len();
    ensure!(
        found >= times,
        "kernel log: expected {times} line(s) containing {needle:?}, found {found}"
    );
    Ok(Outcome::Pass)
}

/// No warning, oops or leak report anywhere in the kernel log.
pub fn log_clean() -> Verdict {
    let bad = log_trouble()?;
    ensure!(
        bad.is_empty(),
        "kernel log reports trouble:\n{}",
        bad.join("\n")
    );
    Ok(Outcome::Pass)
}

/// Fails unless `module` is loaded: for cases that need an earlier case's
/// `insmod` (so that they do not fail confusingly when it did not happen).
pub fn require_loaded(module: &str) -> Result<(), String> {
    ensure!(
        Path::new(&sysfs_module(module)).exists(),
        "{module} not loaded (an earlier case failed?)"
    );
    Ok(())
}

/// How many references pin `module` (`/sys/module/<module>/refcnt`), e.g. its
/// open files.
pub fn module_refcnt(module: &str) -> Result<u64, String> {
    let path = format!("{}/refcnt", sysfs_module(module));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.trim()
        .parse()
        .map_err(|e| format!("{path}: {text:?} is not a count: {e}"))
}

/// Which KUnit suites run when a module loads: `kunit.filter_glob`, read at
/// each insmod. The test boot starts with a glob that matches nothing (the
/// kernel's built-in suites are not the module's tests); the runner sets
/// [`KUNIT_FILTER_ALL`] (no trailing newline: the kernel keeps the value
/// verbatim) before the suites run.
pub const KUNIT_FILTER: &str = "/sys/module/kunit/parameters/filter_glob";

/// Sets `kunit.filter_glob`; a kernel without KUnit has nothing to set.
pub fn set_kunit_filter(glob: &str) -> Result<(), String> {
    if !Path::new(KUNIT_FILTER).exists() {
        return Ok(());
    }
    std::fs::write(KUNIT_FILTER, glob)
        .map_err(|e| format!("writing {glob:?} to {KUNIT_FILTER}: {e}"))
}

/// No KUnit suite runs at insmod while this lives (e.g. during scull's
/// load/unload cycles); every suite does again afterwards.
pub struct KunitPaused;

impl KunitPaused {
    pub fn new() -> Result<Self, String> {
        set_kunit_filter(KUNIT_FILTER_NONE)?;
        Ok(KunitPaused)
    }
}

impl Drop for KunitPaused {
    fn drop(&mut self) {
        let _ = set_kunit_filter(KUNIT_FILTER_ALL);
    }
}

/// The KUnit suite `suite` (e.g. a module's `#[kunit_tests(suite)]`, run at
/// load) passed: its results in debugfs are printed as nested KTAP (so they
/// appear under the case's result), and the case fails when the file is
/// missing or the suite's own result line is not a plain `ok`.
pub fn kunit_suite_passed(suite: &str) -> Verdict {
    let path = format!("/sys/kernel/debug/kunit/{suite}/results");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e} (did the KUnit suite {suite} run?)"))?;
    for line in text.lines() {
        println!("{}{line}", crate::case::SUBTEST_PREFIX);
    }
    suite_verdict(&text, suite, &path)
}

/// The verdict on a KUnit suite's debugfs `results` text (read from `path`).
fn suite_verdict(text: &str, suite: &str, path: &str) -> Verdict {
    // The suite's result is the one unindented result line naming it.
    let result = text.lines().find(|l| {
        (l.starts_with("ok ") || l.starts_with("not ok "))
            && l.split_whitespace()
                .nth(if l.starts_with("ok ") { 2 } else { 3 })
                == Some(suite)
    });
    match result {
        None => Err(format!("{path}: no result line for the suite {suite}")),
        Some(line) if line.starts_with("not ok") => Err(format!("KUnit suite failed: {line}")),
        Some(line) if line.contains("# SKIP") => Err(format!("KUnit suite skipped: {line}")),
        Some(_) => Ok(Outcome::Pass),
    }
}

/// The kernel log lines that `log_clean` would report (warnings, oopses,
/// leaks).
pub fn log_trouble() -> Result<Vec<String>, String> {
    let records = sys::kernel_records().map_err(|e| format!("reading /dev/kmsg: {e}"))?;
    Ok(trouble_in(records, &mut Reading::default()))
}

/// Where a reading of the kernel log stands between records: inside the
/// runner's own watchdog dump (its stacks and `sysrq` reports are no
/// module's trouble), or inside the allocator's report of a failure that
/// fault injection forced (its `Call Trace` is what was asked for; the
/// host's log scan leaves it out too: `logscan::injected_before`).
#[derive(Debug, Default)]
struct Reading {
    in_dump: bool,
    /// Lines left in which an allocation failure report is the injected
    /// one's (`FAULT_INJECTION: forcing a failure.` and its `name …` line
    /// come first).
    injected_lines: usize,
    in_injected_report: bool,
    /// Whether fault injection has forced a failure since the runner's
    /// last case or fault-injection load began: a probe that fails then
    /// failed because of it.
    injected_in_step: bool,
}

/// The trouble lines among `records`, leaving out what [`Reading`] says is
/// no module's; `at` says where the records start, and is left saying
/// where they end.
fn trouble_in(records: Vec<(u64, String)>, at: &mut Reading) -> Vec<String> {
    let mut trouble = Vec::new();
    for (_, line) in records {
        if line.starts_with(lkmlab_protocol::WATCHDOG_LOG_START) {
            at.in_dump = true;
        } else if line.starts_with(lkmlab_protocol::WATCHDOG_LOG_END) {
            at.in_dump = false;
        } else if at.in_injected_report {
            // The report ends with its stack trace.
            at.in_injected_report = line.trim() != "</TASK>";
        } else if line.starts_with(INJECTION_NOTICE) {
            at.injected_lines = INJECTED_LINES;
            at.injected_in_step = true;
            continue;
        } else if kernel_log::starts_step(&line) {
            at.injected_in_step = false;
        } else if at.injected_in_step && is_probe_failure(&line) {
            // What the injected failure made of the probe.
        } else if at.injected_lines > 0 && is_alloc_failure(&line) {
            at.in_injected_report = true;
        } else if !at.in_dump && is_trouble(&line) {
            trouble.push(line);
        }
        at.injected_lines = at.injected_lines.saturating_sub(1);
    }
    trouble
}

/// The trouble lines (see [`log_trouble`]) logged after a point: made
/// before an action, it blames only what the action caused. It reads
/// /dev/kmsg from where it was made, so the whole buffer is not read again.
pub struct LogWatch {
    kmsg: std::fs::File,
    at: Reading,
}

impl LogWatch {
    pub fn start() -> Result<LogWatch, String> {
        sys::open_kmsg_at_end()
            .map(|kmsg| LogWatch {
                kmsg,
                at: Reading::default(),
            })
            .map_err(|e| format!("opening /dev/kmsg: {e}"))
    }

    /// The trouble lines logged since [`LogWatch::start`] (or the last call).
    pub fn trouble(&mut self) -> Result<Vec<String>, String> {
        let records =
            sys::read_records(&mut self.kmsg).map_err(|e| format!("reading /dev/kmsg: {e}"))?;
        Ok(trouble_in(records, &mut self.at))
    }
}

/// A line of [`TROUBLE`], or a driver's failed probe (drivers/base/dd.c;
/// ENODEV and ENXIO, a device the driver rejects, are logged at debug level
/// only): only that line's exact form, as other `failed with error` lines
/// (the firmware loader's, say) are no module's trouble.
fn is_trouble(line: &str) -> bool {
    TROUBLE.iter().any(|t| line.contains(t)) || is_probe_failure(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_is_recorded_from_proc_modules_unless_the_address_is_hidden() {
        let text = "scull 16384 0 - Live 0xffffffffc0000000 (O)\n\
                    hidden 12288 0 - Live 0x0000000000000000 (O)\n";
        assert_eq!(
            loaded_at(text, "scull"),
            Some(kernel_log::LoadedAt {
                base: 0xffff_ffff_c000_0000,
                size: 16384
            })
        );
        assert_eq!(loaded_at(text, "hidden"), None);
        assert_eq!(loaded_at(text, "scul"), None);
    }

    #[test]
    fn module_names_are_the_first_word_of_each_line() {
        let text = "scull 16384 0 - Live 0xffffffffc0000000 (O)\n\
                    hello 12288 1 scull, Live 0xffffffffc0008000 (O)\n";
        assert_eq!(
            module_names(text).into_iter().collect::<Vec<_>>(),
            ["hello", "scull"]
        );
    }

    #[test]
    fn the_watchdogs_dump_is_no_trouble() {
        let records = |lines: &[&str]| -> Vec<(u64, String)> {
            lines.iter().map(|l| (0, l.to_string())).collect()
        };
        let start = lkmlab_protocol::watchdog_log_start("m.a", 97);
        let mut at = Reading::default();
        let found = trouble_in(
            records(&["WARNING: before", &start, "Call Trace:"]),
            &mut at,
        );
        assert_eq!(found, ["WARNING: before"]);
        assert!(at.in_dump);
        let end = lkmlab_protocol::WATCHDOG_LOG_END;
        let found = trouble_in(records(&["Call Trace:", end, "BUG: after"]), &mut at);
        assert_eq!(found, ["BUG: after"]);
        assert!(!at.in_dump);
    }

    /// The allocator's report of a failure that fault injection forced is
    /// no trouble (the kernel's rust_dma sample: a vmalloc without
    /// `__GFP_NOWARN`), even read in two parts; the same report on its
    /// own is, and so is what follows the injected one.
    #[test]
    fn an_injected_allocation_failure_is_no_trouble() {
        let records = |lines: &[&str]| -> Vec<(u64, String)> {
            lines.iter().map(|l| (0, l.to_string())).collect()
        };
        let report = [
            "exe: vmalloc error: size 16384, align 0x1, vm_struct allocation failed",
            "CPU: 0 UID: 0 PID: 87 Comm: exe Tainted: G O 7.3.4 #1",
            "Call Trace:",
            " <TASK>",
            " warn_alloc+0x100/0x110",
            " </TASK>",
            "Mem-Info:",
        ];
        let notice = [
            "FAULT_INJECTION: forcing a failure.",
            "name failslab, interval 1, probability 0, space 0, times 0",
        ];
        let mut at = Reading::default();
        let first: Vec<&str> = notice.iter().chain(&report[..3]).copied().collect();
        assert!(trouble_in(records(&first), &mut at).is_empty());
        let rest: Vec<&str> = report[3..]
            .iter()
            .copied()
            .chain(["WARNING: after"])
            .collect();
        assert_eq!(trouble_in(records(&rest), &mut at), ["WARNING: after"]);
        let alone = trouble_in(records(&report), &mut Reading::default());
        assert_eq!(alone, ["Call Trace:"]);
    }

    /// A failed probe is trouble, unless fault injection forced a failure
    /// in the same step; the next step starts clean.
    #[test]
    fn a_failed_probe_is_trouble_unless_injected() {
        let records = |lines: &[&str]| -> Vec<(u64, String)> {
            lines.iter().map(|l| (0, l.to_string())).collect()
        };
        let failed =
            "probe_fails 0000:00:02.0: probe with driver probe_fails failed with error -22";
        let found = trouble_in(records(&[failed]), &mut Reading::default());
        assert_eq!(found, [failed]);
        let dma = "rust_dma 0000:00:02.0: probe with driver rust_dma failed with error -12";
        let sweep = [
            "lkmlab: fault injection: loading rust_dma with allocation 8 failing",
            "FAULT_INJECTION: forcing a failure.",
            "name failslab, interval 1, probability 0, space 0, times 0",
            dma,
            "lkmlab: fault injection: loading rust_dma with allocation 9 failing",
            dma,
        ];
        let found = trouble_in(records(&sweep), &mut Reading::default());
        assert_eq!(found, [dma]);
    }

    const RESULTS: &str = "KTAP version 1\n1..2\n    ok 1 one\n    ok 2 two\nok 1 scull_kunit\n";

    #[test]
    fn a_suite_passes_only_on_its_own_plain_ok_line() {
        let path = "/sys/kernel/debug/kunit/scull_kunit/results";
        assert!(matches!(
            suite_verdict(RESULTS, "scull_kunit", path),
            Ok(Outcome::Pass)
        ));
        // A case's indented result or another suite's line is not the suite's.
        let err = suite_verdict(RESULTS, "one", path).unwrap_err();
        assert_eq!(err, format!("{path}: no result line for the suite one"));
        // A suite whose name is a prefix of another's is not that one.
        let err = suite_verdict(RESULTS, "scull", path).unwrap_err();
        assert_eq!(err, format!("{path}: no result line for the suite scull"));
        let failed = "    not ok 1 one\nnot ok 1 scull_kunit\n";
        assert_eq!(
            suite_verdict(failed, "scull_kunit", path).unwrap_err(),
            "KUnit suite failed: not ok 1 scull_kunit"
        );
        let skipped = "ok 1 scull_kunit # SKIP no hardware\n";
        assert!(suite_verdict(skipped, "scull_kunit", path)
            .unwrap_err()
            .starts_with("KUnit suite skipped: "));
    }

    #[test]
    fn trouble_is_what_the_log_check_fails_on() {
        assert!(is_trouble("WARNING: CPU: 0 PID: 1 at mm/slub.c:1 f"));
        assert!(is_trouble(
            "unreferenced object 0xffff888004a3c000 (size 64):"
        ));
        assert!(!is_trouble("scull: loaded, 4 devices"));
        assert!(is_trouble(
            "probe_fails 0000:00:02.0: probe with driver probe_fails failed with error -22"
        ));
        assert!(!is_trouble(
            "platform x: Direct firmware load for y.bin failed with error -2"
        ));
    }

    #[test]
    fn insmod_is_shown_as_a_shell_would_run_it() {
        let ko = Path::new("/lib/modules/m.ko");
        assert_eq!(insmod_command(ko, ""), "insmod /lib/modules/m.ko");
        assert_eq!(insmod_command(ko, "n=1"), "insmod /lib/modules/m.ko n=1");
    }
}
