//! Finds kernel trouble in a console log: BUGs, warnings, oopses, panics,
//! sanitizer reports (KASAN, UBSAN, kmemleak, lockdep), hangs, and taint
//! flags that say something went wrong.
//!
//! # How a finding is delimited
//!
//! A leading printk timestamp (`[   12.345678] `, optionally followed by a
//! caller id such as `[    T1] `) is removed from every line. A *trigger*
//! line (see [`scan`]) starts a finding; its excerpt is the trigger line plus
//! the lines that follow it, at most [`MAX_EXCERPT`] in all:
//!
//! 1. If an end marker appears before anything that clearly starts another
//!    message, the excerpt runs through it. End markers are `---[ end ...`
//!    lines (`---[ end trace ... ]---`, `---[ end Kernel panic ...`) and, for
//!    KASAN and UBSAN reports, the closing `=====...` rule.
//! 2. Otherwise the excerpt stops before the first line that clearly starts
//!    another message — another trigger (except an `Oops` line right after a
//!    `BUG:` line, which is the same report), a `cut here` line, a `=====`
//!    rule, or a KTAP line (`ok`/`not ok`/`# ...`/version/plan) — and is cut
//!    shorter still after the first `</TASK>` line, before the first line
//!    shaped like an ordinary `subsystem: message` log line (lowercase
//!    subsystem, other than the ones reports print themselves, such as
//!    `preempt_count:`; not in a Rust panic's message, the lines before the
//!    `[ cut here ]` of the `BUG()` that follows it, which can read
//!    `word: text`), and, for kmemleak object reports, before the first
//!    unindented line.
//!
//! An OOM killer's report (`... invoked oom-killer:`) is quoted through its
//! stack; its verdict (`Out of memory: Killed process ...`), printed after
//! the memory and task dumps, is added after a `…` line and starts no
//! finding of its own.
//!
//! Lines inside an excerpt never start a finding of their own, except taint
//! lines that reveal more than the finding already implies (see
//! [`FindingKind::Taint`]).
//!
//! The guest runner's watchdog dump (from its
//! [`lkmlab_protocol::watchdog_log_start`] line to
//! [`lkmlab_protocol::WATCHDOG_LOG_END`], or the log's end) is no finding:
//! its stacks and `sysrq` reports are what lkmlab asked the kernel for, and
//! the verdict quotes them as the hung case's ([`watchdog_dump`]).

use crate::judge::after_unload;
use lkmlab_protocol::kernel_log::{
    self, is_alloc_failure, is_probe_failure, INJECTED_LINES, INJECTION_NOTICE,
};
use std::fmt;

/// The most lines an excerpt holds, trigger line included (see
/// [`FindingKind::max_excerpt`] for the longer reports).
pub const MAX_EXCERPT: usize = 40;
/// The most lines of a KASAN, KFENCE or lockdep excerpt: those reports
/// carry two or three stack traces (access, allocation, free; or both lock
/// chains) and are only useful whole.
pub const MAX_LONG_EXCERPT: usize = 100;

/// What kind of trouble a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// `BUG: ...` or `kernel BUG at ...`.
    Bug,
    /// `WARNING: ...` (`WARN()` and friends), or a call trace that is not part
    /// of any other report.
    Warning,
    /// `Oops: ...` (including general protection faults).
    Oops,
    /// `Kernel panic - not syncing: ...`.
    Panic,
    /// `BUG: KASAN: ...`.
    Kasan,
    /// `BUG: KFENCE: ...`.
    Kfence,
    /// SLUB's own consistency reports: `BUG kmalloc-64 (...): Object already free`.
    Slab,
    /// `BUG: ... stack guard page was hit` and other stack overflow reports.
    StackOverflow,
    /// `UBSAN: ...`.
    Ubsan,
    /// A panic in Rust code (`rust_kernel: panicked at FILE:LINE:COL:` and
    /// its message: an overflow, a failed `unsafe` precondition, an
    /// `unwrap`), with the `BUG()` oops the kernel's panic handler raises.
    RustPanic,
    /// kmemleak's `unreferenced object` reports or its summary line.
    Kmemleak,
    /// Lockdep's `WARNING: possible circular locking dependency detected` and
    /// the like.
    Lockdep,
    /// Hung tasks, soft and hard lockups, RCU stalls, workqueue lockups.
    Hung,
    /// Memory ran out: the OOM killer's report (`init invoked oom-killer:
    /// gfp_mask=…, order=…`, quoted with the stack that allocated and the
    /// verdict after the memory dump, `Out of memory: Killed process …` or
    /// `Out of memory and no killable processes...`), a verdict line on its
    /// own, or an allocation failure (`insmod: page allocation failure:
    /// order:…`).
    OutOfMemory,
    /// Code of an unloaded module ran: a fault at an instruction in the
    /// freed memory of a module that had been unloaded — a timer, work item,
    /// RCU callback or thread the module did not cancel in its exit path
    /// ([`crate::judge::after_unload`]; [`Finding::unloaded`] says whose).
    AfterUnload,
    /// A driver's probe failed (drivers/base/dd.c: `rust_dma 0000:00:02.0:
    /// probe with driver rust_dma failed with error -22`): the device was
    /// left without a driver, though the module loaded. A probe that rejects
    /// the device with `ENODEV` or `ENXIO` is silent (the kernel logs it at
    /// debug level only), and so not seen here. A failure while fault
    /// injection had just forced one is what was asked for, not a finding.
    ProbeFailed,
    /// The kernel was tainted by something other than an out-of-tree (`O`),
    /// unsigned (`E`) or test (`N`, set by KUnit) module; holds the taint
    /// letters, e.g. `"P"` or `"BL"`. Reported once per new letter, never for
    /// `W` or `D` on a taint line inside another finding's excerpt (those
    /// reports imply them), and not for letters an earlier finding explains
    /// (`W` after a warning, `D` after a BUG or oops, `L` after a lockup, `B`
    /// after KASAN).
    Taint(String),
}

impl FindingKind {
    /// Every kind but [`FindingKind::Taint`], which carries its letters
    /// (a new kind must be added here: [`FindingKind::id`]'s match lists them
    /// all, and a test pins every ID).
    pub const ALL_BUT_TAINT: [FindingKind; 16] = [
        FindingKind::Bug,
        FindingKind::Warning,
        FindingKind::Oops,
        FindingKind::Panic,
        FindingKind::Kasan,
        FindingKind::Kfence,
        FindingKind::Slab,
        FindingKind::StackOverflow,
        FindingKind::Ubsan,
        FindingKind::RustPanic,
        FindingKind::Kmemleak,
        FindingKind::Lockdep,
        FindingKind::Hung,
        FindingKind::OutOfMemory,
        FindingKind::AfterUnload,
        FindingKind::ProbeFailed,
    ];

    /// The stable part of the failure ID (`kernel_log.<this>`): fixed per
    /// kind, whatever the label ([`fmt::Display`]) says.
    pub fn id(&self) -> std::borrow::Cow<'static, str> {
        match self {
            FindingKind::Bug => "kernel_BUG".into(),
            FindingKind::Warning => "kernel_warning".into(),
            FindingKind::Oops => "kernel_oops".into(),
            FindingKind::Panic => "kernel_panic".into(),
            FindingKind::Kasan => "memory_error_(KASAN)".into(),
            FindingKind::Kfence => "memory_error_(KFENCE)".into(),
            FindingKind::Slab => "heap_corruption_(SLUB)".into(),
            FindingKind::StackOverflow => "stack_overflow".into(),
            FindingKind::Ubsan => "undefined_behaviour_(UBSAN)".into(),
            FindingKind::RustPanic => "Rust_panic".into(),
            FindingKind::Kmemleak => "memory_leak_(kmemleak)".into(),
            FindingKind::Lockdep => "locking_problem_(lockdep)".into(),
            FindingKind::Hung => "hang_or_stall".into(),
            FindingKind::OutOfMemory => "out_of_memory".into(),
            FindingKind::AfterUnload => "code_ran_after_unload".into(),
            FindingKind::ProbeFailed => "driver_probe_failed".into(),
            FindingKind::Taint(flags) => format!("kernel_tainted_({flags})").into(),
        }
    }

    /// The most lines an excerpt of this kind holds.
    pub fn max_excerpt(&self) -> usize {
        match self {
            FindingKind::Kasan | FindingKind::Kfence | FindingKind::Lockdep => MAX_LONG_EXCERPT,
            // The kernel's one line says it all.
            FindingKind::ProbeFailed => 1,
            _ => MAX_EXCERPT,
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindingKind::Bug => f.write_str("kernel BUG"),
            FindingKind::Warning => f.write_str("kernel warning"),
            FindingKind::Oops => f.write_str("kernel oops"),
            FindingKind::Panic => f.write_str("kernel panic"),
            FindingKind::Kasan => f.write_str("memory error (KASAN)"),
            FindingKind::Kfence => f.write_str("memory error (KFENCE)"),
            FindingKind::Slab => f.write_str("heap corruption (SLUB)"),
            FindingKind::StackOverflow => f.write_str("stack overflow"),
            FindingKind::Ubsan => f.write_str("undefined behaviour (UBSAN)"),
            FindingKind::RustPanic => f.write_str("Rust panic"),
            FindingKind::Kmemleak => f.write_str("memory leak (kmemleak)"),
            FindingKind::Lockdep => f.write_str("locking problem (lockdep)"),
            FindingKind::Hung => f.write_str("hang or stall"),
            FindingKind::OutOfMemory => f.write_str("out of memory"),
            FindingKind::AfterUnload => f.write_str("code ran after its module was unloaded"),
            FindingKind::ProbeFailed => f.write_str("driver probe failed"),
            FindingKind::Taint(flags) => write!(f, "kernel tainted ({flags})"),
        }
    }
}

/// One problem found in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub kind: FindingKind,
    /// The 1-based line number of the trigger line in the log.
    pub line: usize,
    /// The trigger line and the report lines after it, without timestamps.
    pub excerpt: Vec<String>,
    /// For [`FindingKind::AfterUnload`]: whose code, run from what.
    pub unloaded: Option<after_unload::Unloaded>,
}

impl Finding {
    /// The first function of a loadable module that the report names, as
    /// `function [module]` with Rust symbols demangled: the report's header
    /// (`BUG: KASAN: … in f+0x8c/0x120 [scull]`), `RIP:` line, lock sites
    /// or stack frames, whichever comes first. Unreliable frames (`? f+…`)
    /// are skipped, except in a Rust panic without any other: after its
    /// `BUG()` the unwinder marks every frame so, and the panicking function
    /// is among them.
    pub fn culprit(&self) -> Option<String> {
        if let Some(u) = &self.unloaded {
            return Some(format!("{} of {} (unloaded)", u.what(), u.module));
        }
        let reliable = |line: &&String| !line.trim_start().starts_with("? ");
        let found = (self.excerpt.iter().filter(reliable)).find_map(|line| module_function(line));
        match self.kind {
            FindingKind::RustPanic => found.or_else(|| {
                self.excerpt
                    .iter()
                    .find_map(|line| module_function(line.trim_start().trim_start_matches("? ")))
            }),
            _ => found,
        }
    }
}

/// `function [module]` for the first `symbol+0xOFF/0xLEN [module]` on a line.
fn module_function(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(2).find_map(|pair| {
        let module = pair[1].strip_prefix('[')?.strip_suffix(']')?;
        if module.is_empty() || !module.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let (symbol, offsets) = pair[0].rsplit_once('+')?;
        if !offsets.starts_with("0x") || !offsets.contains("/0x") {
            return None;
        }
        let symbol = symbol.rsplit(':').next().unwrap_or(symbol);
        (!symbol.is_empty()).then(|| format!("{} [{module}]", demangle(symbol)))
    })
}

/// `line` with every Rust symbol (v0 mangling, `_R…`, as the kernel prints
/// them in stack traces) demangled, without crate hashes.
pub fn demangle(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(pos) = rest.find("_R") {
        let starts_word =
            pos == 0 || !rest[..pos].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let end = rest[pos..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(rest.len(), |e| pos + e);
        out.push_str(&rest[..pos]);
        let symbol = &rest[pos..end];
        match rustc_demangle::try_demangle(symbol) {
            Ok(d) if starts_word => out.push_str(&format!("{d:#}")),
            _ => out.push_str(symbol),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Taint letters that are expected in this lab: out-of-tree (`O`), unsigned
/// (`E`) and test (`N`) modules.
const EXPECTED_TAINTS: &[char] = &['O', 'E', 'N'];

/// Scans a console log. Findings are in log order.
///
/// Triggers (after the timestamp is removed, at the start of the line):
/// `BUG:` (`BUG: KASAN:` is [`FindingKind::Kasan`], `BUG: workqueue lockup`
/// is [`FindingKind::Hung`]), `kernel BUG at`, arm64's `Unable to handle
/// kernel …` (a [`FindingKind::Bug`] whose oops follows), `WARNING:` (lockdep's
/// `WARNING: possible ... locking ...`, `... lock ...` and `suspicious RCU
/// usage` reports are [`FindingKind::Lockdep`]), `Oops:` / `Oops -` /
/// `Internal error: Oops` / `general protection fault`, `Kernel panic - not
/// syncing`, `UBSAN:`, `unreferenced object 0x...`, `kmemleak: N new
/// suspected memory leaks`, `INFO: task ... blocked for more than`,
/// `watchdog: BUG: soft lockup` / `watchdog: Watchdog detected hard LOCKUP`,
/// RCU stall reports (`rcu: INFO: ... stall ...`), the OOM killer's `...
/// invoked oom-killer:` and its verdicts (`Out of memory...`), `...: page
/// allocation failure:`, and a `Call Trace:` that is not part of another
/// finding (reported as a [`FindingKind::Warning`]).
/// Taint lines (`... Tainted: G        W  O  7.3.4 #1` or `Tainted: [W]=WARN,
/// [O]=OOT_MODULE`) give [`FindingKind::Taint`] findings as described there.
pub fn scan(log: &str) -> Vec<Finding> {
    let lines: Vec<&str> = log.lines().map(strip_timestamp).collect();
    let mut findings = Vec::new();
    let mut taints = TaintState::default();
    // The verdict of an OOM killer's report, quoted with the report.
    let mut verdict_of_report = None;
    // Whether fault injection has forced a failure in the current step
    // (since the runner's last case or fault-injection load began).
    let mut injected = false;
    // Where the runner loaded each module so far.
    let mut loads: Vec<(String, kernel_log::LoadedAt)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some((module, at)) = kernel_log::parse_module_loaded(lines[i]) {
            loads.push((module.to_string(), at));
        }
        if lines[i].starts_with(INJECTION_NOTICE) {
            injected = true;
        } else if kernel_log::starts_step(lines[i]) {
            injected = false;
        }
        if verdict_of_report == Some(i) {
            i += 1;
            continue;
        }
        if let Some(end) = watchdog_dump_end(&lines, i) {
            i = end;
            continue;
        }
        let Some(kind) = trigger(lines[i]) else {
            if let Some(flags) = taint_flags(lines[i]) {
                taints.check(&flags, &[], i, lines[i], &mut findings);
            }
            i += 1;
            continue;
        };
        let end = excerpt_end(&lines, i, &kind);
        let forced = is_alloc_failure(lines[i]) && injected_before(&lines, i)
            || kind.finding == FindingKind::ProbeFailed && injected;
        if forced {
            // The allocator reporting a failure that fault injection made
            // (`--fault-injection`), or a probe that failed because of it:
            // what was asked for, not a finding. The module's handling of
            // it is judged by the runner's case.
            i = end;
            continue;
        }
        taints.explain(kind.implied_taints());
        // A WARN()'s own message (`refcount_t: underflow; use-after-free.`)
        // is printed between `[ cut here ]` and the `WARNING:` line: it is
        // the most specific line of the report, so the excerpt starts there.
        let first = if i >= 2
            && lines[i - 2].contains("[ cut here ]")
            && !lines[i - 1].trim().is_empty()
            && trigger(lines[i - 1]).is_none()
        {
            i - 1
        } else {
            i
        };
        let mut excerpt: Vec<String> = lines[first..end]
            .iter()
            .map(|l| l.trim_end().to_string())
            .collect();
        if lines[i].contains(" invoked oom-killer: ") {
            verdict_of_report = oom_verdict_after(&lines, end);
            if let Some(v) = verdict_of_report {
                excerpt.push("…".to_string());
                excerpt.push(lines[v].trim_end().to_string());
            }
        }
        let unloaded = can_be_after_unload(&kind.finding)
            .then(|| after_unload::classify(&whole_report(&lines, first), &loads))
            .flatten();
        // The same module's code again (the oops after lockdep's warning):
        // a consequence of the first report, which says it all.
        let follow_on = unloaded.as_ref().is_some_and(|u| {
            findings
                .iter()
                .any(|f| f.unloaded.as_ref().is_some_and(|g| g.module == u.module))
        });
        if follow_on {
            i = end;
            continue;
        }
        findings.push(Finding {
            kind: match unloaded {
                Some(_) => FindingKind::AfterUnload,
                None => kind.finding.clone(),
            },
            line: first + 1,
            excerpt,
            unloaded,
        });
        for (j, line) in lines.iter().enumerate().take(end).skip(i + 1) {
            if let Some(flags) = taint_flags(line) {
                // W and D come with the reports themselves.
                taints.check(&flags, &['W', 'D'], j, line, &mut findings);
            }
        }
        i = end;
    }
    findings
}

/// The most lines of a report [`whole_report`] reads.
const MAX_REPORT: usize = 300;

/// A report from its first line through the kernel's `---[ end trace … ]---`
/// (at most [`MAX_REPORT`] lines): its excerpt may end before the lines
/// after the call trace, such as x86-64's `Modules linked in:`. It ends
/// earlier at the start of another report (`[ cut here ]`, a warning, a
/// sanitizer's or lockdep's or kmemleak's report, a hang) or at the
/// runner's next step: an oops that follows a `BUG:` line is the same
/// report, and goes on.
fn whole_report(lines: &[&str], first: usize) -> Vec<String> {
    let mut report = Vec::new();
    for (n, line) in lines[first..].iter().take(MAX_REPORT).enumerate() {
        let starts_another = n > 1
            && (line.contains("[ cut here ]")
                || kernel_log::starts_step(line)
                || trigger(line).is_some_and(|t| {
                    !matches!(t.finding, FindingKind::Oops | FindingKind::Panic) && !t.bare_trace
                }));
        if starts_another {
            break;
        }
        report.push(line.trim_end().to_string());
        if line.starts_with("---[ end trace") {
            break;
        }
    }
    report
}

/// The reports a fault in an unloaded module's code starts as: a page fault
/// (`BUG: unable to handle page fault`), an oops or general protection
/// fault, a KASAN report of the access, or (debug flavor) a warning of
/// lockdep's about a lock class that lived in the module.
fn can_be_after_unload(kind: &FindingKind) -> bool {
    matches!(
        kind,
        FindingKind::Bug
            | FindingKind::Oops
            | FindingKind::Kasan
            | FindingKind::Kfence
            | FindingKind::Warning
            | FindingKind::Lockdep
    )
}

/// If a watchdog dump starts at `lines[start]`, the index after its end
/// line (or the log's end).
fn watchdog_dump_end(lines: &[&str], start: usize) -> Option<usize> {
    let line = lines[start].trim_start();
    if !line.starts_with(lkmlab_protocol::WATCHDOG_LOG_START) {
        return None;
    }
    let after = lines[start + 1..]
        .iter()
        .position(|l| {
            l.trim_start()
                .starts_with(lkmlab_protocol::WATCHDOG_LOG_END)
        })
        .map_or(lines.len(), |j| start + 1 + j + 1);
    Some(after)
}

/// The most lines of a watchdog dump the verdict quotes.
pub const MAX_WATCHDOG_QUOTE: usize = 80;

/// The last watchdog dump in a console log: its first line's number
/// (1-based), its last line's, and its lines without timestamps, at most
/// [`MAX_WATCHDOG_QUOTE`] of them (the case's own tasks first, then the
/// blocked tasks, then the CPUs: the most telling part comes first).
pub fn watchdog_dump(log: &str) -> Option<(usize, usize, Vec<String>)> {
    let lines: Vec<&str> = log.lines().map(strip_timestamp).collect();
    let start = (0..lines.len())
        .rev()
        .find(|&i| watchdog_dump_end(&lines, i).is_some())?;
    let end = watchdog_dump_end(&lines, start)?;
    let quoted = lines[start..end]
        .iter()
        .take(MAX_WATCHDOG_QUOTE)
        .map(|l| l.trim_end().to_string())
        .collect();
    Some((start + 1, end, quoted))
}

/// Removes leading `[...]` groups (timestamp, caller id) and the space after
/// them.
fn strip_timestamp(line: &str) -> &str {
    let mut rest = line;
    let mut stripped = false;
    while let Some(after) = rest.strip_prefix('[') {
        let Some(end) = after.find(']') else { break };
        let inner = &after[..end];
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ' ' || c == 'T' || c == 'C')
        {
            break;
        }
        rest = &after[end + 1..];
        stripped = true;
    }
    if stripped {
        rest.strip_prefix(' ').unwrap_or(rest)
    } else {
        line
    }
}

/// A trigger line's meaning.
struct Trigger {
    finding: FindingKind,
    /// A `BUG:` line that an `Oops` line may follow within the same report.
    may_oops: bool,
    /// A `Call Trace:` outside any report.
    bare_trace: bool,
    /// A kmemleak object report, whose body is indented.
    indented_body: bool,
    /// A report that goes on through the `[ cut here ]`, `kernel BUG at`
    /// and oops that follow it, to the trace's end (a Rust panic: its
    /// handler calls `BUG()`).
    through_bug: bool,
    /// The subsystem prefix of the trigger (`rcu`, `watchdog`, ...), whose
    /// further lines belong to the report.
    subsystem: Option<String>,
}

impl Trigger {
    fn new(finding: FindingKind) -> Self {
        Trigger {
            finding,
            may_oops: false,
            bare_trace: false,
            indented_body: false,
            through_bug: false,
            subsystem: None,
        }
    }

    fn implied_taints(&self) -> &'static [char] {
        match self.finding {
            FindingKind::Warning | FindingKind::Lockdep => &['W'],
            FindingKind::Bug | FindingKind::Oops | FindingKind::Panic | FindingKind::RustPanic => {
                &['D']
            }
            FindingKind::Hung => &['L'],
            FindingKind::Kasan | FindingKind::Kfence => &['B'],
            FindingKind::Slab => &['B', 'W'],
            FindingKind::StackOverflow => &['D'],
            _ => &[],
        }
    }
}

fn trigger(line: &str) -> Option<Trigger> {
    use FindingKind::*;
    // Reports start at the line's beginning, but a message may carry its own
    // leading whitespace (`\tKernel panic`): match after it.
    let line = line.trim_start();
    let subsystem = subsystem_prefix(line).map(str::to_string);
    let mut t = if line.starts_with("rust_kernel: panicked at ") {
        Trigger {
            through_bug: true,
            ..Trigger::new(RustPanic)
        }
    } else if line.starts_with("BUG: KASAN:") {
        Trigger::new(Kasan)
    } else if line.starts_with("BUG: KFENCE:") {
        Trigger::new(Kfence)
    } else if is_slab_report(line) {
        Trigger::new(Slab)
    } else if line.contains("stack guard page was hit")
        || line.starts_with("Thread overran stack")
        || line.starts_with("PANIC: double fault")
    {
        Trigger {
            may_oops: true,
            ..Trigger::new(StackOverflow)
        }
    } else if line.starts_with("BUG: workqueue lockup") {
        Trigger::new(Hung)
    } else if line.starts_with("BUG:")
        || line.starts_with("kernel BUG at ")
        || line.starts_with("Unable to handle kernel ")
    {
        Trigger {
            may_oops: true,
            ..Trigger::new(Bug)
        }
    } else if let Some(what) = line.strip_prefix("WARNING:") {
        let what = what.trim_start();
        let lockdep = !what.starts_with("CPU:")
            && !what.starts_with("at ")
            && (what.contains("lock") || what.contains("LOCK") || what.contains("RCU usage"));
        Trigger::new(if lockdep { Lockdep } else { Warning })
    } else if line.starts_with("Oops:")
        || line.starts_with("Oops -")
        || line.starts_with("Internal error: Oops")
        || line.starts_with("general protection fault")
    {
        Trigger::new(Oops)
    } else if line.starts_with("Kernel panic - not syncing") {
        Trigger::new(Panic)
    } else if line.starts_with("UBSAN:") {
        Trigger::new(Ubsan)
    } else if line.starts_with("unreferenced object 0x") {
        Trigger {
            indented_body: true,
            ..Trigger::new(Kmemleak)
        }
    } else if line.starts_with("kmemleak: ") && line.contains("new suspected memory leak") {
        Trigger::new(Kmemleak)
    } else if is_hang(line) {
        Trigger::new(Hung)
    } else if line.contains(" invoked oom-killer: ")
        || is_alloc_failure(line)
        || is_oom_verdict(line)
    {
        Trigger::new(OutOfMemory)
    } else if is_probe_failure(line) {
        Trigger::new(ProbeFailed)
    } else if line.starts_with("Call Trace:") {
        Trigger {
            bare_trace: true,
            ..Trigger::new(Warning)
        }
    } else {
        return None;
    };
    t.subsystem = subsystem;
    Some(t)
}

/// Whether the report at `i` follows at once a failure that fault injection
/// forced (lib/fault-inject.c `fail_dump`).
fn injected_before(lines: &[&str], i: usize) -> bool {
    lines[i.saturating_sub(INJECTED_LINES)..i]
        .iter()
        .any(|l| l.starts_with(INJECTION_NOTICE))
}

/// SLUB's report banner, `BUG <cache> (<taint>): <reason>`
/// (mm/slub.c `__slab_bug`).
fn is_slab_report(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("BUG ") else {
        return false;
    };
    let Some((cache, rest)) = rest.split_once(" (") else {
        return false;
    };
    !cache.is_empty()
        && !cache.contains([' ', ':'])
        && (rest.starts_with("Not tainted): ") || rest.starts_with("Tainted: "))
        && rest.contains("): ")
}

/// Hung tasks, lockups and RCU stalls.
fn is_hang(line: &str) -> bool {
    (line.starts_with("INFO: task ") && line.contains(" blocked for more than "))
        || line.starts_with("watchdog: BUG: soft lockup")
        || line.starts_with("watchdog: Watchdog detected hard LOCKUP")
        || ((line.starts_with("rcu: INFO: ") || line.starts_with("INFO: rcu"))
            && line.contains("stall"))
}

/// The OOM killer's verdict, printed after its report's memory and task
/// dumps (mm/oom_kill.c): a task killed, or none it could kill.
fn is_oom_verdict(line: &str) -> bool {
    line.starts_with("Out of memory") || line.starts_with("Memory cgroup out of memory")
}

/// The most lines between an OOM killer's report (`invoked oom-killer:`)
/// and its verdict: the memory dump, the unreclaimable slabs, one line a
/// task.
const OOM_REPORT_LINES: usize = 1000;

/// The index of the verdict of the OOM killer's report whose excerpt ends
/// before `end`: the first line after it that is a verdict, unless another
/// report comes first.
fn oom_verdict_after(lines: &[&str], end: usize) -> Option<usize> {
    let window = lines.iter().enumerate().skip(end).take(OOM_REPORT_LINES);
    for (j, line) in window {
        if is_oom_verdict(line) {
            return Some(j);
        }
        if trigger(line).is_some() {
            return None;
        }
    }
    None
}

/// `subsys` of a line shaped like `subsys: message`, with a lowercase
/// subsystem name (the shape of ordinary log lines).
fn subsystem_prefix(line: &str) -> Option<&str> {
    let (name, _) = line.split_once(": ")?;
    let mut chars = name.chars();
    let first = chars.next()?;
    (first.is_ascii_lowercase()
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c)))
    .then_some(name)
}

/// Lowercase `name:` keys that kernel reports print themselves.
const REPORT_KEYS: &[&str] = &["preempt_count", "note", "flags", "raw", "head", "page_type"];

fn is_rule(line: &str) -> bool {
    let line = line.trim();
    line.len() >= 20 && line.bytes().all(|b| b == b'=')
}

fn is_ktap(line: &str) -> bool {
    let t = line.trim_start();
    let numbered = |rest: &str| rest.starts_with(|c: char| c.is_ascii_digit());
    t.strip_prefix("ok ").is_some_and(numbered)
        || t.strip_prefix("not ok ").is_some_and(numbered)
        || t.starts_with("# ")
        || t.starts_with("KTAP version ")
        || t.starts_with("TAP version ")
        || t.strip_prefix("1..").is_some_and(numbered)
}

/// The index after the last line of the excerpt starting at `start`.
fn excerpt_end(lines: &[&str], start: usize, kind: &Trigger) -> usize {
    let sanitizer = matches!(
        kind.finding,
        FindingKind::Kasan | FindingKind::Kfence | FindingKind::Ubsan
    );
    let limit = lines.len().min(start + kind.finding.max_excerpt());

    // Up to the first line that clearly starts something else, or an end
    // marker.
    let mut hard_stop = limit;
    for (j, line) in lines.iter().enumerate().take(limit).skip(start + 1) {
        if line.starts_with("---[ end ") || (sanitizer && is_rule(line)) {
            return j + 1;
        }
        let other_trigger = trigger(line).is_some_and(|t| {
            let oops_or_bug = matches!(t.finding, FindingKind::Oops | FindingKind::Bug);
            !(t.bare_trace
                || kind.may_oops && t.finding == FindingKind::Oops
                || kind.through_bug && oops_or_bug)
        });
        let cut_here = line.contains("[ cut here ]") && !kind.through_bug;
        if other_trigger || cut_here || is_rule(line) || is_ktap(line) {
            hard_stop = j;
            break;
        }
    }

    // No end marker: cut at the softer signs of the report's end. A Rust
    // panic's message (up to the `BUG()` its handler raises) is the panic's
    // own text, whatever it looks like (`scull: index 9 out of range`).
    let mut in_message = kind.through_bug;
    for (j, line) in lines.iter().enumerate().take(hard_stop).skip(start + 1) {
        if in_message {
            in_message = !line.contains("[ cut here ]") && trigger(line).is_none();
            if in_message {
                continue;
            }
        }
        if line.trim() == "</TASK>" && !kind.through_bug {
            return j + 1;
        }
        if kind.indented_body && !line.starts_with([' ', '\t']) {
            return j;
        }
        if let Some(subsystem) = subsystem_prefix(line) {
            let own = kind.subsystem.as_deref() == Some(subsystem);
            if !own && !REPORT_KEYS.contains(&subsystem) {
                return j;
            }
        }
    }
    hard_stop
}

/// The taint letters on a line, if it shows any.
fn taint_flags(line: &str) -> Option<Vec<char>> {
    let pos = line.find("Tainted: ")?;
    if pos > 0 && !line[..pos].ends_with(' ') {
        return None;
    }
    let rest = &line[pos + "Tainted: ".len()..];
    let mut flags = Vec::new();
    if rest.starts_with('[') {
        // `Tainted: [W]=WARN, [O]=OOT_MODULE`
        for part in rest.split('[').skip(1) {
            let mut chars = part.chars();
            if let (Some(c), Some(']')) = (chars.next(), chars.next()) {
                flags.push(c);
            }
        }
    } else {
        // `Tainted: G        W  O        7.3.4 #1`: letter columns, then the
        // kernel release.
        for word in rest.split_whitespace() {
            if !word.chars().all(|c| c.is_ascii_uppercase()) {
                break;
            }
            flags.extend(word.chars());
        }
        // The first column is `G` (no proprietary module) or `P`.
        if flags.first() == Some(&'G') {
            flags.remove(0);
        }
    }
    (!flags.is_empty() || rest.starts_with('G') || rest.starts_with('P')).then_some(flags)
}

/// Which taint letters were already reported or explained by a finding.
#[derive(Default)]
struct TaintState {
    known: Vec<char>,
}

impl TaintState {
    fn explain(&mut self, flags: &[char]) {
        for &f in flags {
            if !self.known.contains(&f) {
                self.known.push(f);
            }
        }
    }

    /// Reports the letters in `flags` that are neither expected, nor already
    /// known, nor in `explained`.
    fn check(
        &mut self,
        flags: &[char],
        explained: &[char],
        index: usize,
        line: &str,
        findings: &mut Vec<Finding>,
    ) {
        let new: String = flags
            .iter()
            .filter(|f| {
                !EXPECTED_TAINTS.contains(f) && !self.known.contains(f) && !explained.contains(f)
            })
            .collect();
        if new.is_empty() {
            return;
        }
        self.explain(&new.chars().collect::<Vec<_>>());
        findings.push(Finding {
            kind: FindingKind::Taint(new),
            line: index + 1,
            excerpt: vec![line.trim().to_string()],
            unloaded: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(findings: &[Finding]) -> Vec<FindingKind> {
        findings.iter().map(|f| f.kind.clone()).collect()
    }

    /// Adds printk timestamps to every line, as the serial console shows them.
    fn stamped(text: &str) -> String {
        text.lines()
            .enumerate()
            .map(|(i, l)| format!("[{:>5}.{:06}] {l}\n", 3 + i / 10, i * 1371 % 1_000_000))
            .collect()
    }

    const BOOT: &str = "\
Linux version 7.3.4 (nixbld@localhost) (gcc (GCC) 14.2.0) #1 SMP PREEMPT_DYNAMIC
Command line: console=ttyS0 panic=-1 rdinit=/init
rcu: Preemptible hierarchical RCU implementation.
rcu: 	RCU event tracing is enabled.
printk: legacy console [ttyS0] enabled
PCI: Fatal: No config space access function found
virtio-mmio: Registering device virtio-mmio.0 at 0xfeb00e00-0xfeb00fff, IRQ 12.
hello: `abc' invalid for parameter `count'
hello: this driver has a bug workaround and a warning counter
debug: no bugs found, no warnings issued
Run /init as init process
KTAP version 1
1..1
    KTAP version 1
    # Subtest: scull_buffer
    1..2
    # not_a_bug: BUG: this is KTAP diagnostic text
    ok 1 not_a_bug
    not ok 2 WARNING: test name
not ok 1 scull_buffer
";

    #[test]
    fn the_culprit_is_the_first_module_function_named() {
        let finding = |excerpt: &[&str]| Finding {
            kind: FindingKind::Kasan,
            line: 1,
            excerpt: excerpt.iter().map(|l| l.to_string()).collect(),
            unloaded: None,
        };
        let kasan = finding(&[
            "BUG: KASAN: slab-use-after-free in scull_read+0x8c/0x120 [scull]",
            " kasan_report+0xb9/0xf0",
        ]);
        assert_eq!(kasan.culprit().as_deref(), Some("scull_read [scull]"));
        let oops = finding(&[
            "BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "RIP: 0010:scull_init+0x1c/0x40 [scull]",
        ]);
        assert_eq!(oops.culprit().as_deref(), Some("scull_init [scull]"));
        let unreliable = finding(&[
            "Call Trace:",
            " ? __die+0x23/0x70 [scull]",
            " do_one_initcall+0x58/0x310",
            " mod_init+0x1/0x2 [m_2]",
        ]);
        assert_eq!(unreliable.culprit().as_deref(), Some("mod_init [m_2]"));
        assert_eq!(
            finding(&["WARNING: at kernel/foo.c:1 foo+0x1/0x2"]).culprit(),
            None
        );
    }

    #[test]
    fn rust_symbols_are_demangled_without_hashes() {
        // `<use_after_free::UseAfterFree as kernel::Module>::init`, v0-mangled.
        let mangled = "_RNvXCs4fqI2P2rA04_14use_after_freeNtB2_12UseAfterFreeNtCs1p5UDGgVI4d_6kernel6Module4init";
        let line = format!(" {mangled}+0x1c/0x40 [use_after_free]");
        assert_eq!(
            demangle(&line),
            " <use_after_free::UseAfterFree as kernel::Module>::init+0x1c/0x40 [use_after_free]"
        );
        assert_eq!(
            demangle("no _Rust here, FOO_RBAR"),
            "no _Rust here, FOO_RBAR"
        );
    }

    /// The watchdog's dump (stacks, `sysrq w`, `sysrq l`) is what lkmlab
    /// asked for: no finding, whatever it shows; it is found for the
    /// verdict to quote, also when the log ends inside it.
    #[test]
    fn the_watchdogs_dump_is_no_finding_and_is_found_whole() {
        let dump = "\
lkmlab: watchdog fired: m.a still running after 97s: its tasks, the blocked tasks (sysrq w) and the CPUs (sysrq l) follow
lkmlab: watchdog: task init (pid 45, state D) of m.a:
 msleep+0x2f/0x40
sysrq: Show Blocked State
task:init            state:D stack:0     pid:45    tgid:45    ppid:1      task_flags:0x400100 flags:0x00004000
Call Trace:
 <TASK>
 __schedule+0x2f3/0x8c0
 </TASK>
sysrq: Show backtrace of all active CPUs
NMI backtrace for cpu 0
CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G           O        7.3.4 #1
Call Trace:
 <TASK>
 </TASK>
";
        let log = stamped(&format!(
            "lkmlab: case m.a\n{dump}{}\n",
            lkmlab_protocol::WATCHDOG_LOG_END
        ));
        assert_eq!(scan(&log), []);
        let (first, last, lines) = watchdog_dump(&log).unwrap();
        assert_eq!((first, last), (2, 17));
        assert_eq!(lines[4].split_whitespace().next(), Some("task:init"));
        // Cut short by the host's timeout: the dump runs to the log's end.
        let cut = stamped(dump);
        assert_eq!(scan(&cut), []);
        assert_eq!(watchdog_dump(&cut).map(|(f, l, _)| (f, l)), Some((1, 15)));
        // A finding after the dump is found.
        let after = format!(
            "{log}{}",
            stamped("WARNING: a.c:1 at f+0x1/0x2, CPU#0: init/1\n")
        );
        assert_eq!(kinds(&scan(&after)), [FindingKind::Warning]);
    }

    #[test]
    fn quiet_boot_has_no_findings() {
        assert_eq!(scan(BOOT), []);
        assert_eq!(scan(&stamped(BOOT)), []);
        assert_eq!(scan(""), []);
    }

    #[test]
    fn harmless_taint_is_ignored() {
        let log = stamped(
            "CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G           O     N  7.3.4 #1\n\
             Tainted: [O]=OOT_MODULE, [N]=TEST, [E]=UNSIGNED_MODULE\n\
             CPU: 0 PID: 1 Comm: init Not tainted 7.3.4 #1\n",
        );
        assert_eq!(scan(&log), []);
    }

    #[test]
    fn null_pointer_dereference() {
        let report = "\
BUG: kernel NULL pointer dereference, address: 0000000000000008
#PF: supervisor read access in kernel mode
#PF: error_code(0x0000) - not-present page
PGD 0 P4D 0
Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O       7.3.4 #1
Tainted: [O]=OOT_MODULE
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS rel-1.16.3 04/01/2014
RIP: 0010:scull_init+0x1c/0x40 [scull]
Code: 48 8b 47 08 c3 cc cc cc cc 0f 1f 40 00 90 90 90 90 90 90 90 90 90 90 90 90
RSP: 0018:ffffc900001f7c98 EFLAGS: 00010246
RAX: 0000000000000000 RBX: ffffffffc0002000 RCX: 0000000000000000
Call Trace:
 <TASK>
 ? __die+0x23/0x70
 ? page_fault_oops+0x17d/0x4c0
 do_one_initcall+0x58/0x310
 do_init_module+0x90/0x250
 __do_sys_finit_module+0x2b2/0x340
 do_syscall_64+0x9e/0x1a0
 entry_SYSCALL_64_after_hwframe+0x77/0x7f
 </TASK>
Modules linked in: scull(O+)
CR2: 0000000000000008
---[ end trace 0000000000000000 ]---
RIP: 0010:scull_init+0x1c/0x40 [scull]
Kernel panic - not syncing: Fatal exception
Kernel Offset: disabled
---[ end Kernel panic - not syncing: Fatal exception ]---
";
        let log = stamped(&format!("Run /init as init process\n{report}"));
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Bug, FindingKind::Panic]);
        let bug = &findings[0];
        assert_eq!(bug.line, 2);
        assert_eq!(bug.excerpt.len(), 25);
        assert_eq!(
            bug.excerpt[0],
            "BUG: kernel NULL pointer dereference, address: 0000000000000008"
        );
        assert_eq!(bug.excerpt[24], "---[ end trace 0000000000000000 ]---");
        let panic = &findings[1];
        assert_eq!(panic.line, 28);
        assert_eq!(
            panic.excerpt,
            [
                "Kernel panic - not syncing: Fatal exception",
                "Kernel Offset: disabled",
                "---[ end Kernel panic - not syncing: Fatal exception ]---",
            ]
        );
        assert_eq!(FindingKind::Bug.to_string(), "kernel BUG");
    }

    #[test]
    fn page_fault_and_general_protection_fault() {
        let log = "\
BUG: unable to handle page fault for address: ffffffffc0003000
#PF: supervisor write access in kernel mode
#PF: error_code(0x0003) - permissions violation
Oops: 0003 [#1] PREEMPT SMP NOPTI
CPU: 0 PID: 96 Comm: insmod Tainted: G           O      6.12.0 #1
RIP: 0010:hello_init+0x10/0x20 [hello]
---[ end trace 0000000000000000 ]---
Oops: general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#2] PREEMPT SMP NOPTI
CPU: 0 UID: 0 PID: 97 Comm: rmmod Tainted: G      D    O       7.3.4 #1
RIP: 0010:list_del+0x8/0x30
---[ end trace 0000000000000000 ]---
Oops: 0002 [#3] SMP
RIP: 0010:[<ffffffffa0000010>]  [<ffffffffa0000010>] old_init+0x10/0x20 [old]
---[ end trace 0123456789abcdef ]---
";
        let findings = scan(log);
        assert_eq!(
            kinds(&findings),
            [FindingKind::Bug, FindingKind::Oops, FindingKind::Oops]
        );
        assert_eq!(findings[0].excerpt.len(), 7);
        assert_eq!(findings[1].line, 8);
        assert_eq!(findings[2].line, 12);
        assert_eq!(findings[2].excerpt.len(), 3);
    }

    #[test]
    fn kernel_bug_at() {
        let log = stamped(
            "\
------------[ cut here ]------------
kernel BUG at drivers/misc/scull.c:42!
Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O       7.3.4 #1
RIP: 0010:scull_write+0x5/0x10 [scull]
Call Trace:
 <TASK>
 vfs_write+0xf1/0x420
 </TASK>
---[ end trace 0000000000000000 ]---
scull: unloaded
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Bug]);
        assert_eq!(findings[0].line, 2);
        assert_eq!(findings[0].excerpt.len(), 9);
    }

    #[test]
    fn warning_with_new_taint() {
        let log = stamped(
            "\
------------[ cut here ]------------
WARNING: CPU: 0 PID: 1 at mm/slub.c:123 kmem_cache_destroy+0x1d/0x30
Modules linked in: scull(O)
CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G        W  O        7.3.4 #1
Tainted: [W]=WARN, [O]=OOT_MODULE
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS rel-1.16.3 04/01/2014
RIP: 0010:kmem_cache_destroy+0x1d/0x30
Call Trace:
 <TASK>
 scull_exit+0x15/0x20 [scull]
 __do_sys_delete_module+0x1a5/0x2a0
 </TASK>
---[ end trace 0000000000000000 ]---
CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G        W  O        7.3.4 #1
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Warning]);
        assert_eq!(findings[0].line, 2);
        assert_eq!(findings[0].excerpt.len(), 12);
        assert_eq!(FindingKind::Warning.to_string(), "kernel warning");

        // A proprietary module or a forced load is news even inside a report.
        let log = "\
WARNING: CPU: 0 PID: 1 at lib/foo.c:1 foo+0x1/0x2
CPU: 0 UID: 0 PID: 1 Comm: init Tainted: P  R     W  O        7.3.4 #1
Tainted: [P]=PROPRIETARY_MODULE, [R]=FORCED_RMMOD, [W]=WARN, [O]=OOT_MODULE
---[ end trace 0000000000000000 ]---
";
        let findings = scan(log);
        assert_eq!(
            kinds(&findings),
            [FindingKind::Warning, FindingKind::Taint("PR".to_string())]
        );
        assert_eq!(findings[1].line, 2);
        assert_eq!(
            FindingKind::Taint("PR".into()).to_string(),
            "kernel tainted (PR)"
        );
    }

    /// SLUB's own report of a double free, as mm/slub.c prints it
    /// (`object_err`: `__slab_bug`'s banner, the trailer with the alloc and
    /// free sites, then `WARN_ON(1)`): the first finding is SLUB's, starting
    /// at its `BUG … Object already free` line, and names the module's
    /// function; the WARNING that follows is a finding of its own after it.
    #[test]
    fn slubs_double_free_report_leads_with_its_own_line() {
        let log = stamped(
            "\
=============================================================================
BUG kmalloc-64 (Tainted: G           O       ): Object already free
-----------------------------------------------------------------------------

Allocated in init_module+0x3a/0x90 [double_free] age=3 cpu=1 pid=41
 __kmalloc_cache_noprof+0x1c4/0x3a0
 init_module+0x3a/0x90 [double_free]
 do_one_initcall+0x136/0x2b0
Freed in init_module+0x5c/0x90 [double_free] age=0 cpu=1 pid=41
 kfree+0x2b3/0x3a0
 init_module+0x5c/0x90 [double_free]
Slab 0xffffea0000123400 objects=32 used=10 fp=0xffff888004a8d0c0 flags=0x100000000000200(workingset|node=0|zone=1)
Object 0xffff888004a8d0c0 @offset=192 fp=0x0000000000000000

Redzone  ffff888004a8d0b0: bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb  ................
Object   ffff888004a8d0c0: 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b a5  kkkkkkkkkkkkkkk.
Padding  ffff888004a8d114: 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a              ZZZZZZZZZZZZ
------------[ cut here ]------------
WARNING: mm/slub.c:1255 at object_err+0x2c/0x40, CPU#1: init/41
Modules linked in: double_free(O)
CPU: 1 UID: 0 PID: 41 Comm: init Tainted: G    B      O        7.3.4 #1
Call Trace:
 <TASK>
 free_to_partial_list+0x1a2/0x3d0
 kfree+0x2b3/0x3a0
 init_module+0x5c/0x90 [double_free]
 </TASK>
---[ end trace 0000000000000000 ]---
",
        );
        let findings = scan(&log);
        assert_eq!(
            kinds(&findings),
            [FindingKind::Slab, FindingKind::Warning],
            "{findings:#?}"
        );
        let slab = &findings[0];
        assert_eq!(
            slab.excerpt[0],
            "BUG kmalloc-64 (Tainted: G           O       ): Object already free"
        );
        assert!(slab
            .excerpt
            .iter()
            .any(|l| l.starts_with("Freed in init_module+0x5c/0x90 [double_free]")));
        assert_eq!(slab.culprit().as_deref(), Some("init_module [double_free]"));
        assert_eq!(FindingKind::Slab.to_string(), "heap corruption (SLUB)");
        // The WARNING carries the B taint SLUB caused: no taint finding.
        assert!(findings[1].excerpt[0].starts_with("WARNING: mm/slub.c:1255 at object_err"));
    }

    /// A `refcount_t` underflow is a `WARN_ONCE` whose own message comes
    /// between `[ cut here ]` and the `WARNING:` line (lib/refcount.c): the
    /// excerpt starts at that message, the most specific line.
    #[test]
    fn a_refcount_underflow_is_quoted_from_its_own_message() {
        let log = stamped(
            "\
------------[ cut here ]------------
refcount_t: underflow; use-after-free.
WARNING: lib/refcount.c:28 at refcount_warn_saturate+0x4f/0x110, CPU#0: init/40
Modules linked in: refs(O)
Call Trace:
 <TASK>
 put_thing+0x31/0x40 [refs]
 cleanup_module+0x12/0x30 [refs]
 </TASK>
---[ end trace 0000000000000000 ]---
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Warning]);
        assert_eq!(findings[0].line, 2);
        assert_eq!(
            findings[0].excerpt[0],
            "refcount_t: underflow; use-after-free."
        );
        assert!(findings[0].excerpt[1].starts_with("WARNING: lib/refcount.c:28"));
        assert_eq!(findings[0].culprit().as_deref(), Some("put_thing [refs]"));
    }

    /// A panic in Rust code (here overflow checks, from the `overflow`
    /// fixture's console log, registers left out): one finding, led by the
    /// panic's place and message, through the oops its `BUG()` raises; the
    /// culprit comes from the unreliable frames, the only ones there are.
    #[test]
    fn a_rust_panic_is_one_finding_led_by_its_message() {
        let log = stamped(
            "\
overflow: loading out-of-tree module taints kernel.
rust_kernel: panicked at overflow.rs:30:5:
attempt to add with overflow
------------[ cut here ]------------
kernel BUG at rust/helpers/bug.c:7!
Oops: invalid opcode: 0000 [#1] SMP
CPU: 1 UID: 0 PID: 35 Comm: init Tainted: G           O        7.3.4 #1 PREEMPTLAZY
Tainted: [O]=OOT_MODULE
RIP: 0010:rust_helper_BUG+0x0/0x2
Call Trace:
 <TASK>
 ? _RNvCsfLfy6EI15iL_7___rustc17rust_begin_unwind+0x43/0x43
 ? _RNvNtNtCs1peUGmbrgHn_4core9panicking11panic_const24panic_const_add_overflow+0x15/0x15
 ? _RNvCs86nPLgLhBi8_8overflow8ten_more+0x1a/0x1a [overflow]
 ? init_module+0x6/0x1000 [overflow]
 ? do_one_initcall+0x6c/0x157
 </TASK>
Modules linked in: overflow(O+)
---[ end trace 0000000000000000 ]---
lkmlab: case overflow.rmmod
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::RustPanic], "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.line, 2);
        assert_eq!(
            f.excerpt[..2],
            [
                "rust_kernel: panicked at overflow.rs:30:5:",
                "attempt to add with overflow"
            ]
        );
        assert_eq!(
            f.excerpt.last().unwrap(),
            "---[ end trace 0000000000000000 ]---"
        );
        assert_eq!(
            f.culprit().as_deref(),
            Some("overflow::ten_more [overflow]")
        );
        assert_eq!(FindingKind::RustPanic.to_string(), "Rust panic");
    }

    /// A report without `---[ end trace` (lockdep's) ends where the next
    /// begins: the after-unload fault after it is not read as its.
    #[test]
    fn a_report_does_not_take_the_next_ones_lines() {
        let log = stamped(
            "\
WARNING: lock held when returning to user space!
cat/46 is leaving the kernel with locks still held!
 #0: ffffffffa0201060 (LOCK){+.+.}-{4:4}, at: m::read+0x13/0xa6 [m]
BUG: unable to handle page fault for address: ffffffffa0400000
#PF: supervisor instruction fetch in kernel mode
Oops: Oops: 0010 [#1] SMP
RIP: 0010:0xffffffffa0400000
Call Trace:
 ? call_timer_fn+0x12/0x64
Modules linked in: [last unloaded: t(O)]
---[ end trace 0000000000000000 ]---
",
        );
        let findings = scan(&log);
        assert_eq!(findings[0].kind, FindingKind::Lockdep, "{findings:#?}");
        assert!(findings[0].unloaded.is_none(), "{findings:#?}");
    }

    #[test]
    fn a_reliable_frame_is_preferred_to_unreliable_ones() {
        let f = Finding {
            kind: FindingKind::Warning,
            line: 1,
            excerpt: vec![
                "WARNING: a.c:1 at f+0x1/0x2, CPU#0: init/1".into(),
                " ? stale_caller+0x1/0x2 [m]".into(),
                " real_caller+0x1/0x2 [m]".into(),
            ],
            unloaded: None,
        };
        assert_eq!(f.culprit().as_deref(), Some("real_caller [m]"));
        // Outside a Rust panic, a stale frame is no one's to blame.
        let stale_only = Finding {
            excerpt: f.excerpt[..2].to_vec(),
            ..f
        };
        assert_eq!(stale_only.culprit(), None);
    }

    #[test]
    fn taint_outside_a_report() {
        let log = stamped(
            "\
hello: loading out-of-tree module taints kernel.
CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G        W  O        7.3.4 #1
Tainted: [W]=WARN, [O]=OOT_MODULE
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Taint("W".to_string())]);
        assert_eq!(findings[0].line, 2);
        assert_eq!(
            findings[0].excerpt,
            ["CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G        W  O        7.3.4 #1"]
        );
        assert_eq!(
            taint_flags("Tainted: [B]=BAD_PAGE, [L]=SOFTLOCKUP"),
            Some(vec!['B', 'L'])
        );
        assert_eq!(
            taint_flags("Tainted: G            OEL  6.1.0 #1"),
            Some(vec!['O', 'E', 'L'])
        );
        assert_eq!(taint_flags("Comm: x Tainted: G 6.1.0 #1"), Some(vec![]));
        assert_eq!(taint_flags("NotTainted: X"), None);
    }

    #[test]
    fn kasan() {
        let log = stamped(
            "\
==================================================================
BUG: KASAN: slab-use-after-free in scull_read+0x8c/0x120 [scull]
Read of size 8 at addr ffff888004a3c010 by task cat/101

CPU: 0 UID: 0 PID: 101 Comm: cat Tainted: G           O       7.3.4 #1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS rel-1.16.3 04/01/2014
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 print_report+0x171/0x4e0
 kasan_report+0xb5/0xe0
 scull_read+0x8c/0x120 [scull]
 vfs_read+0x10e/0x480
 </TASK>

Allocated by task 95:
 kasan_save_stack+0x24/0x50
 __kmalloc_cache_noprof+0x153/0x2c0

Freed by task 95:
 kfree+0x10f/0x370

The buggy address belongs to the object at ffff888004a3c000
 which belongs to the cache kmalloc-64 of size 64
page: refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x4a3c
flags: 0x100000000000000(node=0|zone=1)
raw: 0100000000000000 ffff888001041640 dead000000000122 0000000000000000
page dumped because: kasan: bad access detected

Memory state around the buggy address:
 ffff888004a3bf00: fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc fc
>ffff888004a3c000: fa fb fb fb fb fb fb fb fc fc fc fc fc fc fc fc
                         ^
==================================================================
Disabling lock debugging due to kernel taint
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Kasan]);
        assert_eq!(findings[0].line, 2);
        assert_eq!(findings[0].excerpt.len(), 33);
        assert!(findings[0].excerpt[32].starts_with("====="));
        assert_eq!(FindingKind::Kasan.to_string(), "memory error (KASAN)");
    }

    /// KFENCE's report as Documentation/dev-tools/kfence.rst shows it (no
    /// lkmlab flavor enables KFENCE; a user's own fragment may).
    #[test]
    fn kfence() {
        let log = stamped(
            "\
==================================================================
BUG: KFENCE: out-of-bounds read in scull_read+0xa6/0x234 [scull]

Out-of-bounds read at 0xffff8c3f2e291fff (1B left of kfence-#72):
 scull_read+0xa6/0x234 [scull]
 vfs_read+0x10e/0x480
 ksys_read+0x6f/0xf0

kfence-#72: 0xffff8c3f2e292000-0xffff8c3f2e29201f, size=32, cache=kmalloc-32

allocated by task 484 on cpu 0 at 32.919330s:
 scull_open+0xfe/0x738 [scull]
 do_dentry_open+0x14a/0x4a0

CPU: 0 UID: 0 PID: 484 Comm: cat Tainted: G           O       7.3.4 #1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS rel-1.16.3 04/01/2014
==================================================================
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Kfence]);
        assert_eq!(findings[0].line, 2);
        assert!(findings[0].excerpt[0].contains("BUG: KFENCE: out-of-bounds read"));
        assert!(findings[0].excerpt.last().unwrap().starts_with("====="));
        assert_eq!(findings[0].culprit().as_deref(), Some("scull_read [scull]"));
        assert_eq!(FindingKind::Kfence.to_string(), "memory error (KFENCE)");
    }

    #[test]
    fn ubsan() {
        let log = stamped(
            "\
================================================================================
UBSAN: array-index-out-of-bounds in drivers/misc/scull.c:77:9
index 4 is out of range for type 'int [4]'
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O       7.3.4 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 __ubsan_handle_out_of_bounds+0xa4/0xe0
 scull_init+0x2e/0x40 [scull]
 </TASK>
================================================================================
scull: loaded
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Ubsan]);
        assert_eq!(findings[0].excerpt.len(), 10);
        assert_eq!(
            FindingKind::Ubsan.to_string(),
            "undefined behaviour (UBSAN)"
        );

        // Newer kernels end UBSAN reports with an end-trace line.
        let log = "UBSAN: shift-out-of-bounds in lib/foo.c:3:1\nshift exponent 64 is too large\n---[ end trace ]---\nok 1 x\n";
        let findings = scan(log);
        assert_eq!(findings[0].excerpt.len(), 3);
    }

    #[test]
    fn kmemleak() {
        let log = stamped(
            "\
kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)
unreferenced object 0xffff888003b1a780 (size 32):
  comm \"insmod\", pid 95, jiffies 4294893456
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 5e4c1f2b):
    [<ffffffff81234567>] kmemleak_alloc+0x4b/0x80
    [<ffffffff81345678>] __kmalloc_cache_noprof+0x1a2/0x3c0
    [<ffffffffc0001234>] scull_init+0x34/0x80 [scull]
    [<ffffffff81001234>] do_one_initcall+0x44/0x220
unreferenced object 0xffff888003b1a7c0 (size 32):
  comm \"insmod\", pid 95, jiffies 4294893456
  backtrace (crc 5e4c1f2b):
    [<ffffffff81234567>] kmemleak_alloc+0x4b/0x80
Run /init as init process
",
        );
        let findings = scan(&log);
        assert_eq!(
            kinds(&findings),
            [
                FindingKind::Kmemleak,
                FindingKind::Kmemleak,
                FindingKind::Kmemleak
            ]
        );
        assert_eq!(findings[0].excerpt.len(), 1);
        assert_eq!(findings[1].line, 2);
        assert_eq!(findings[1].excerpt.len(), 10);
        assert_eq!(findings[2].line, 12);
        assert_eq!(findings[2].excerpt.len(), 4);
        assert_eq!(FindingKind::Kmemleak.to_string(), "memory leak (kmemleak)");
    }

    #[test]
    fn lockdep_circular() {
        let log = stamped(
            "\
======================================================
WARNING: possible circular locking dependency detected
7.3.4 #1 Tainted: G           O
------------------------------------------------------
insmod/95 is trying to acquire lock:
ffffffffc0002100 (&dev->lock){+.+.}-{4:4}, at: scull_write+0x1d/0x80 [scull]

but task is already holding lock:
ffffffffc0002140 (&dev->sem){+.+.}-{4:4}, at: scull_read+0x20/0x90 [scull]

which lock already depends on the new lock.

the existing dependency chain (in reverse order) is:

-> #1 (&dev->sem){+.+.}-{4:4}:
       __mutex_lock+0x8f/0xbe0
       scull_write+0x3a/0x80 [scull]

other info that might help us debug this:

 Possible unsafe locking scenario:

       CPU0                    CPU1
       ----                    ----
  lock(&dev->sem);
                               lock(&dev->lock);

 *** DEADLOCK ***

1 lock held by insmod/95:
 #0: ffffffffc0002140 (&dev->sem){+.+.}-{4:4}, at: scull_read+0x20/0x90 [scull]

stack backtrace:
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O       7.3.4 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 </TASK>
scull: loaded
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Lockdep]);
        assert_eq!(findings[0].line, 2);
        assert_eq!(findings[0].excerpt.len(), 37);
        assert_eq!(findings[0].excerpt[36], " </TASK>");
        assert_eq!(
            FindingKind::Lockdep.to_string(),
            "locking problem (lockdep)"
        );
    }

    #[test]
    fn lockdep_recursive() {
        let log = "\
============================================
WARNING: possible recursive locking detected
7.3.4 #1 Tainted: G           O
--------------------------------------------
insmod/95 is trying to acquire lock:
ffffffffc0002100 (&dev->lock){+.+.}-{4:4}, at: scull_write+0x1d/0x80 [scull]
KTAP version 1
";
        let findings = scan(log);
        assert_eq!(kinds(&findings), [FindingKind::Lockdep]);
        assert_eq!(findings[0].excerpt.len(), 5);
    }

    #[test]
    fn scheduling_while_atomic_and_sleeping_in_atomic() {
        let log = stamped(
            "\
BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580
in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 95, name: insmod
preempt_count: 1, expected: 0
RCU nest depth: 0, expected: 0
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O       7.3.4 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 __might_resched+0x17d/0x260
 </TASK>
BUG: scheduling while atomic: insmod/95/0x00000002
Modules linked in: scull(O+)
Preemption disabled at:
[<ffffffffc0001010>] scull_init+0x10/0x40 [scull]
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G        W  O       7.3.4 #1
Call Trace:
 <TASK>
 __schedule_bug+0x5c/0x70
 </TASK>
scull: loaded
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Bug, FindingKind::Bug]);
        assert_eq!(findings[0].excerpt.len(), 10);
        assert_eq!(findings[1].line, 11);
        // Its taint line shows W: not news inside a report.
        assert_eq!(findings[1].excerpt.len(), 9);
    }

    #[test]
    fn second_bug_line_taint_beyond_w_d() {
        let log = "\
BUG: scheduling while atomic: insmod/95/0x00000002
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G      D W  O       7.3.4 #1
";
        // W and D are implied by BUGs and warnings: no taint finding.
        assert_eq!(kinds(&scan(log)), [FindingKind::Bug]);
    }

    #[test]
    fn hung_task() {
        let log = stamped(
            "\
INFO: task insmod:95 blocked for more than 122 seconds.
      Tainted: G           O       7.3.4 #1
\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.
task:insmod          state:D stack:0     pid:95    tgid:95    ppid:1      flags:0x00004002
Call Trace:
 <TASK>
 __schedule+0x3f8/0xb60
 schedule+0x27/0xf0
 </TASK>
ok 1 something
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Hung]);
        assert_eq!(findings[0].excerpt.len(), 9);
        assert_eq!(FindingKind::Hung.to_string(), "hang or stall");
    }

    #[test]
    fn soft_lockup() {
        let log = stamped(
            "\
watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [insmod:95]
Modules linked in: spin(O+)
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O L     7.3.4 #1
Tainted: [O]=OOT_MODULE, [L]=SOFTLOCKUP
RIP: 0010:spin_init+0x10/0x20 [spin]
Call Trace:
 <IRQ>
 </IRQ>
 <TASK>
 do_one_initcall+0x58/0x310
 </TASK>
Kernel panic - not syncing: softlockup: hung tasks
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Hung, FindingKind::Panic]);
        assert_eq!(findings[0].excerpt.len(), 11);
        assert_eq!(findings[1].line, 12);
    }

    #[test]
    fn rcu_stall() {
        let log = stamped(
            "\
rcu: INFO: rcu_preempt self-detected stall on CPU
rcu: 	0-....: (21002 ticks this GP) idle=5f4c/1/0x4000000000000000 softirq=1201/1201 fqs=5209
rcu: 	(t=21003 jiffies g=1689 q=126 ncpus=1)
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O       7.3.4 #1
RIP: 0010:spin_init+0x10/0x20 [spin]
Call Trace:
 <TASK>
 do_one_initcall+0x58/0x310
 </TASK>
random: crng init done
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Hung]);
        assert_eq!(findings[0].excerpt.len(), 9);
    }

    #[test]
    fn out_of_memory() {
        // An allocation that failed, with its stack.
        let log = stamped(
            "\
insmod: page allocation failure: order:10, mode:0xcc0(GFP_KERNEL), nodemask=(null)
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O       7.3.4 #1
Call Trace:
 <TASK>
 warn_alloc+0x13b/0x1b0
 big_init+0x2e/0x40 [big]
 </TASK>
Mem-Info:
active_anon:0 inactive_anon:0 isolated_anon:0
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::OutOfMemory]);
        assert_eq!(findings[0].excerpt.len(), 7);
        assert_eq!(findings[0].culprit().as_deref(), Some("big_init [big]"));
        // The OOM killer's header is rate-limited: a verdict alone is one
        // finding, and so is each verdict after a report cut short.
        let log = "Out of memory: Killed process 95 (hog) total-vm:9000kB, anon-rss:8000kB\n\
                   oom_reaper: reaped process 95 (hog), now anon-rss:0kB\n\
                   Memory cgroup out of memory: Killed process 96 (hog)\n";
        let findings = scan(log);
        assert_eq!(
            kinds(&findings),
            [FindingKind::OutOfMemory, FindingKind::OutOfMemory]
        );
        assert_eq!(findings[0].excerpt.len(), 1);
        // A report's verdict after another report belongs to that one.
        let log = "hog invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0\n\
                   Call Trace:\n </TASK>\nWARNING: CPU: 0 PID: 1 at a.c:1 f\n\
                   Out of memory: Killed process 95 (hog)\n";
        let findings = scan(log);
        assert_eq!(
            kinds(&findings),
            [
                FindingKind::OutOfMemory,
                FindingKind::Warning,
                FindingKind::OutOfMemory
            ]
        );
        assert_eq!(findings[0].excerpt.len(), 3);
        assert_eq!(FindingKind::OutOfMemory.to_string(), "out of memory");
    }

    /// A failure that `--fault-injection` forced makes the allocator report
    /// it (a vmalloc without `__GFP_NOWARN`, as `VVec::with_capacity` in
    /// the kernel's rust_dma sample): that is no finding. The same report
    /// without the injection before it is one, and so is what follows.
    #[test]
    fn an_injected_allocation_failure_is_no_finding() {
        let report = "\
exe: vmalloc error: size 16384, align 0x1, vm_struct allocation failed, mode:0xcc0(GFP_KERNEL), nodemask=(null)
CPU: 0 UID: 0 PID: 87 Comm: exe Tainted: G           O        7.3.4 #1 PREEMPTLAZY
Tainted: [O]=OOT_MODULE
Call Trace:
 <TASK>
 warn_alloc+0x100/0x110
 __vmalloc_node_range_noprof+0x216/0xcf0
 pci_device_probe+0x15c/0x220
 </TASK>
Mem-Info:
active_anon:383 inactive_anon:1785 isolated_anon:0
";
        let injected = format!(
            "FAULT_INJECTION: forcing a failure.\n\
             name failslab, interval 1, probability 0, space 0, times 0\n{report}"
        );
        assert_eq!(kinds(&scan(&stamped(&injected))), []);
        let findings = scan(&stamped(report));
        assert_eq!(kinds(&findings), [FindingKind::OutOfMemory]);
        assert_eq!(findings[0].excerpt.len(), 9);
        let then_a_warning = format!("{injected}WARNING: CPU: 0 PID: 87 at a.c:1 f\n");
        assert_eq!(kinds(&scan(&then_a_warning)), [FindingKind::Warning]);
    }

    /// A probe that failed is a finding of one line; one that failed in a
    /// fault-injection step after a forced failure is not, and the next
    /// step starts clean.
    #[test]
    fn a_failed_probe_is_a_finding_unless_fault_injection_caused_it() {
        let failed =
            "probe_fails 0000:00:02.0: probe with driver probe_fails failed with error -22";
        let log = stamped(&format!(
            "probe_fails 0000:00:02.0: probing, and failing on purpose (fixture)\n{failed}\n\
             lkmlab: case probe_fails.rmmod\n"
        ));
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::ProbeFailed]);
        assert_eq!(findings[0].excerpt, [failed]);
        assert_eq!(FindingKind::ProbeFailed.id(), "driver_probe_failed");
        let dma = "rust_dma 0000:00:02.0: probe with driver rust_dma failed with error -12";
        let sweep = stamped(&format!(
            "lkmlab: fault injection: loading rust_dma with allocation 8 failing\n\
             FAULT_INJECTION: forcing a failure.\n\
             name failslab, interval 1, probability 0, space 0, times 0\n{dma}\n\
             lkmlab: fault injection: loading rust_dma with allocation 9 failing\n{dma}\n"
        ));
        let findings = scan(&sweep);
        assert_eq!(kinds(&findings), [FindingKind::ProbeFailed]);
        assert_eq!(findings[0].line, 6);
    }

    #[test]
    fn bare_call_trace() {
        let log = stamped(
            "\
scull: dumping stack on request
CPU: 0 UID: 0 PID: 95 Comm: insmod Tainted: G           O       7.3.4 #1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS rel-1.16.3 04/01/2014
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 scull_init+0x10/0x40 [scull]
 </TASK>
scull: loaded
",
        );
        let findings = scan(&log);
        assert_eq!(kinds(&findings), [FindingKind::Warning]);
        assert_eq!(findings[0].line, 4);
        assert_eq!(findings[0].excerpt.len(), 5);
    }

    #[test]
    fn excerpt_is_capped() {
        let mut log = String::from("WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2\n");
        for i in 0..100 {
            log.push_str(&format!(" frame_{i}+0x1/0x2\n"));
        }
        let findings = scan(&log);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].excerpt.len(), MAX_EXCERPT);
    }

    #[test]
    fn report_ends_at_the_next_unrelated_message() {
        let log = "\
WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2
Modules linked in: scull(O)
scull: device registered
BUG: unable to handle page fault for address: 0000000000001000
";
        let findings = scan(log);
        assert_eq!(kinds(&findings), [FindingKind::Warning, FindingKind::Bug]);
        assert_eq!(findings[0].excerpt.len(), 2);
        assert_eq!(findings[1].line, 4);
    }

    #[test]
    fn negatives() {
        for line in [
            "PCI: Fatal: No config space access function found",
            "rcu: Hierarchical RCU implementation.",
            "rcu: Preemptible hierarchical RCU implementation.",
            "printk: legacy console [ttyS0] enabled",
            "hello: `abc' invalid for parameter `count'",
            "scull: fixed a bug in the warning path",
            "bug: lowercase is not a trigger",
            "warning: neither is this",
            "KTAP version 1",
            "ok 1 bug_test",
            "not ok 2 warning_test # SKIP",
            "    # oops_test: Oops: looks like a trigger but is KTAP",
            "    not ok 3 BUG: in a test name",
            "Booting paravirtualized kernel on KVM",
            "OOM killer enabled.",
            "Freeing unused kernel image (initmem) memory: 1200K",
            "audit: type=2000 audit(0.123:1): state=initialized audit_enabled=0 res=1",
        ] {
            assert_eq!(scan(line), [], "{line}");
            assert_eq!(scan(&stamped(line)), [], "{line}");
        }
    }

    #[test]
    fn timestamps_are_stripped() {
        assert_eq!(strip_timestamp("[   12.345678] BUG: x"), "BUG: x");
        assert_eq!(strip_timestamp("[    1.000000][    T1] BUG: x"), "BUG: x");
        assert_eq!(strip_timestamp("[  123.456789]  indented"), " indented");
        assert_eq!(
            strip_timestamp("[<ffffffff81234567>] frame"),
            "[<ffffffff81234567>] frame"
        );
        assert_eq!(strip_timestamp("no stamp"), "no stamp");
        let findings = scan("[   12.345678] WARNING: CPU: 0 PID: 1 at a.c:1 f\n[   12.345679] ---[ end trace 0 ]---\n");
        assert_eq!(
            findings[0].excerpt,
            ["WARNING: CPU: 0 PID: 1 at a.c:1 f", "---[ end trace 0 ]---"]
        );
    }

    #[test]
    fn garbage_never_panics() {
        let pieces = [
            "BUG: x",
            "Oops: y",
            "---[ end trace ]---",
            "====================",
            "Tainted: [",
            "Tainted: [P",
            "x Tainted: P W 1",
            " </TASK>",
            "Call Trace:",
            "unreferenced object 0x1",
            "[",
            "[ 1.0",
            "[ 1.0] ",
            "[]",
            "rcu: INFO: stall",
            "ünï: ✓",
            "",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..500 {
            let mut log = String::new();
            for _ in 0..(seed % 60) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                log.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
                if seed & 1 == 0 {
                    log.push('\n');
                }
            }
            let lines = log.lines().count();
            for f in scan(&log) {
                // A finding points at a line of the log that starts its excerpt.
                assert!((1..=lines).contains(&f.line), "line {} of {lines}", f.line);
                assert!(!f.excerpt.is_empty() && f.excerpt.len() <= MAX_EXCERPT);
                let first = log.lines().nth(f.line - 1).unwrap();
                assert!(
                    first.contains(f.excerpt[0].trim()),
                    "line {} is {first:?}, excerpt starts {:?}",
                    f.line,
                    f.excerpt[0]
                );
            }
        }
    }
}
