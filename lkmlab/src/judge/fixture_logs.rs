//! The console logs of `tests/fixtures/console-logs/`, judged as `lkmlab
//! report` judges them: each shows a way the judge once went wrong, or is a
//! clean run that must stay clean.

use crate::judge::after_unload::Callback;
use crate::judge::logscan::{self, FindingKind};
use crate::judge::report::{self, Verdict};
use crate::vm::qemu::Ending;
use std::time::Duration;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/console-logs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `lkmlab report FILE --console FILE` on one log: its KTAP and its kernel
/// log findings.
fn report_on(log: &str) -> Verdict {
    let ktap = crate::ktap::extract(log).unwrap_or_default();
    report::evaluate(&ktap, log, &Ending::Saved, Duration::ZERO)
}

fn kinds(log: &str) -> Vec<FindingKind> {
    kinds_of(&logscan::scan(log))
}

fn kinds_of(findings: &[logscan::Finding]) -> Vec<FindingKind> {
    findings.iter().map(|f| f.kind.clone()).collect()
}

/// The module and the callback the first finding names as code that ran
/// after its module was unloaded (it must be such a finding).
fn first_unloaded(findings: &[logscan::Finding]) -> (&str, Option<Callback>) {
    assert_eq!(findings[0].kind, FindingKind::AfterUnload, "{findings:#?}");
    let unloaded = findings[0].unloaded.as_ref().expect("whose code");
    (unloaded.module.as_str(), unloaded.callback)
}

/// A whole `lkmlab check` run's console (x86-64, default flavor) of the
/// example module: booting, the guest runner's cases, KUnit at each load.
#[test]
fn a_clean_run_has_no_findings() {
    assert_eq!(kinds(&fixture("clean-check.log")), []);
}

/// On the debug kernel a Rust panic's oops runs past the excerpt's 40
/// lines, so the excerpt ends by the softer rules; its message, `bounds:
/// index 9 …`, looked like another subsystem's log line and was cut off,
/// leaving only `rust_kernel: panicked at bounds.rs:24:9:`.
#[test]
fn a_rust_panic_keeps_a_message_shaped_like_a_log_line() {
    let log = fixture("rust-panic-debug.log");
    let findings = logscan::scan(&log);
    let panic = &findings[0];
    assert_eq!(panic.kind, FindingKind::RustPanic, "{findings:#?}");
    assert_eq!(
        panic.excerpt[..2],
        [
            "rust_kernel: panicked at bounds.rs:24:9:",
            "bounds: index 9 is past the end of the 8-byte table"
        ]
    );
    assert_eq!(panic.excerpt.len(), logscan::MAX_EXCERPT);
    assert_eq!(panic.culprit().as_deref(), Some("bounds::lookup [bounds]"));
    assert_eq!(
        kinds(&log),
        [FindingKind::RustPanic, FindingKind::Panic],
        "{findings:#?}"
    );
    let text = report::render(&report_on(&log));
    assert!(
        text.contains("       bounds: index 9 is past the end of the 8-byte table\n"),
        "{text}"
    );
}

/// Memory ran out as the runner (PID 1) started: the OOM killer's report
/// had no trigger of its own, so only its stack was found, as a warning
/// quoting `Call Trace:` onwards without the line that says what happened.
#[test]
fn an_out_of_memory_at_boot_is_its_own_finding_quoting_the_oom_line() {
    let log = fixture("oom-at-boot.log");
    let findings = logscan::scan(&log);
    assert_eq!(
        kinds(&log),
        [FindingKind::OutOfMemory, FindingKind::Panic],
        "{findings:#?}"
    );
    let oom = &findings[0].excerpt;
    assert_eq!(findings[0].line, 3);
    assert!(
        oom[0].starts_with("init invoked oom-killer: gfp_mask=0x140dca(")
            && oom[0].contains("order=0"),
        "{oom:#?}"
    );
    assert_eq!(oom[oom.len() - 3], " </TASK>");
    assert_eq!(
        oom[oom.len() - 2..],
        ["…", "Out of memory and no killable processes..."]
    );
    let verdict = report_on(&log);
    let ids: Vec<String> = (verdict.extra_failures.iter())
        .map(|f| f.kind.id().into_owned())
        .filter(|id| id.starts_with("kernel_log."))
        .collect();
    assert_eq!(ids, ["kernel_log.out_of_memory", "kernel_log.kernel_panic"]);
}

/// `lkmlab report console.log` on lkmlab's own console log: the kernel's
/// boot-time KUnit document (`1..0`: no built-in suite), then one document
/// for each load of `scull` (four here), read as one sequence. The empty
/// first one used to swallow the next one's version line, giving two false
/// `ktap.structure` failures.
#[test]
fn a_console_log_of_several_kunit_documents_passes() {
    let verdict = report_on(&fixture("clean-check.log"));
    assert_eq!(verdict.ktap.problems, Vec::<String>::new());
    assert_eq!(verdict.ktap.plan, Some(4));
    assert!(verdict.passed(), "{}", report::render(&verdict));
    assert_eq!(verdict.summary_line(), "4 passed, 0 failed");
}

/// tests/fixtures/work-after-unload on the default kernel (x86-64, 7.3.4):
/// its guest test loads the module (at another address than the runner's
/// load, which alone is recorded), unloads it while its work item sleeps,
/// and the worker returns into the freed code during the runner's wait
/// after the last unload. The page fault is the module's, named with what
/// ran it (gcc inlined `process_one_work` into `process_scheduled_works`).
#[test]
fn a_work_item_in_freed_module_code_is_named() {
    let log = fixture("work-after-unload.log");
    let findings = logscan::scan(&log);
    assert_eq!(
        kinds_of(&findings),
        [FindingKind::AfterUnload, FindingKind::Panic]
    );
    assert_eq!(
        first_unloaded(&findings),
        ("work_after_unload", Some(Callback::WorkItem))
    );
    let text = report::render(&report_on(&log));
    assert!(
        text.contains("a work item of work_after_unload ran after the module was unloaded"),
        "{text}"
    );
    assert!(
        text.contains("FAIL kernel_log.code_ran_after_unload"),
        "{text}"
    );
    assert!(!text.contains("kernel_log.kernel_BUG"), "{text}");
}

/// tests/fixtures/timer-after-unload on the default kernel (x86-64,
/// 7.3.4): the timer fires into the freed code while the guest test sleeps.
/// The kernel's `Modules linked in: [last unloaded: …]` comes 41 lines
/// after the report's first line, past the quoted excerpt; the timer's
/// caller is gcc's clone `call_timer_fn.constprop.0`.
#[test]
fn a_timer_in_freed_module_code_is_named() {
    let log = fixture("timer-after-unload.log");
    let findings = logscan::scan(&log);
    assert_eq!(
        kinds_of(&findings),
        [FindingKind::AfterUnload, FindingKind::Panic]
    );
    assert_eq!(
        first_unloaded(&findings),
        ("timer_after_unload", Some(Callback::Timer))
    );
}

/// The same on the debug kernel: lockdep trips over the work item's lock
/// class (in the freed module) first, then the kernel oopses in lockdep.
/// The first report is quoted and named; the oops after it, the same
/// module's code again, is not a second finding.
#[test]
fn on_the_debug_kernel_the_first_report_names_the_work_item() {
    let log = fixture("work-after-unload-debug.log");
    let findings = logscan::scan(&log);
    assert_eq!(
        first_unloaded(&findings),
        ("work_after_unload", Some(Callback::WorkItem))
    );
    assert_eq!(findings[0].excerpt[0], "DEBUG_LOCKS_WARN_ON(1)");
    assert_eq!(
        kinds_of(&findings)
            .iter()
            .filter(|k| **k == FindingKind::AfterUnload)
            .count(),
        1,
        "{findings:#?}"
    );
    assert!(
        !kinds_of(&findings).contains(&FindingKind::Lockdep),
        "{findings:#?}"
    );
}

/// The same on arm64 (7.3.4, default), with the runner's load record taken
/// out, as when a guest test's own insmod put the module elsewhere: the
/// kernel's `Unable to handle kernel paging request at virtual address X`
/// with X the bare `pc`, and `[last unloaded: …]`, name it. The report
/// starts at that line, not at the `Internal error: Oops` after it.
#[test]
fn on_arm64_the_fetch_fault_names_the_work_item() {
    let log = fixture("work-after-unload-arm64.log");
    let findings = logscan::scan(&log);
    assert_eq!(
        first_unloaded(&findings),
        ("work_after_unload", Some(Callback::WorkItem))
    );
    assert!(
        findings[0].excerpt[0].starts_with("Unable to handle kernel paging request"),
        "{findings:#?}"
    );
}

/// Another run of the same on the debug kernel: lockdep reports an
/// inconsistent lock state first, and prints where the lock was used before
/// (a timer's softirq among those stacks). The worker's bare work function
/// says a work item, not the first caller the report names.
#[test]
fn a_lockdep_report_of_a_worker_is_a_work_item_whatever_stacks_it_prints() {
    let log = fixture("work-after-unload-debug-2.log");
    let findings = logscan::scan(&log);
    assert_eq!(
        first_unloaded(&findings),
        ("work_after_unload", Some(Callback::WorkItem))
    );
    assert_eq!(findings[0].excerpt[0], "WARNING: inconsistent lock state");
}
