//! Turning what a VM run left behind — KTAP, the kernel log, how QEMU ended —
//! into a verdict that never says "passed" when something went wrong.

use crate::judge::failure::{Failure, FailureKind};
use crate::judge::{leaks, logscan};
use crate::ktap::{self, Outcome, Status, TestCase};
use crate::output;
use crate::vm::qemu::Ending;
use std::fmt::Write as _;
use std::time::Duration;

/// Everything known about one run.
pub struct Verdict {
    pub ktap: ktap::Report,
    /// Failures outside the KTAP cases: kernel log findings, timeout, crash.
    pub extra_failures: Vec<Failure>,
    /// What the kernel log scan found (each also one of `extra_failures`,
    /// but kmemleak's when every leak is reported at its fault-injection
    /// step: [`leaks::attribute`]).
    pub findings: Vec<logscan::Finding>,
}

impl Verdict {
    pub fn counts(&self) -> (usize, usize, usize) {
        let c = self.ktap.counts();
        (c.passed, c.failed + self.extra_failures.len(), c.skipped)
    }

    /// Nothing failed, and at least one case passed.
    pub fn passed(&self) -> bool {
        let (passed, failed, _) = self.counts();
        failed == 0 && passed > 0
    }

    /// Add a case that did not run, with the reason (`# SKIP reason`): what
    /// the host decided before the guest ran (a module that does not build
    /// for this kernel).
    pub fn add_skip(&mut self, name: &str, reason: &str) {
        let number = u32::try_from(self.ktap.cases.len() + 1).unwrap_or(u32::MAX);
        self.ktap.cases.push(TestCase {
            number,
            name: name.to_string(),
            outcome: Outcome::Skip,
            directive: Some(reason.to_string()),
            diagnostics: Vec::new(),
            subtests: Vec::new(),
        });
    }

    /// The closing line: `N passed, N failed` (`, N skipped` where any).
    pub fn summary_line(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        let mut line = format!("{passed} passed, {failed} failed");
        if skipped > 0 {
            let _ = write!(line, ", {skipped} skipped");
        }
        line
    }
}

/// Judge a run from the guest's KTAP, the console log and how QEMU ended.
pub fn evaluate(ktap_text: &str, console: &str, ending: &Ending, timeout: Duration) -> Verdict {
    let mut report = ktap::parse(ktap_text);
    let attribution = leaks::attribute(&mut report);
    let mut extra = Vec::new();
    let findings = logscan::scan(console);
    let panicked = findings
        .iter()
        .any(|f| matches!(f.kind, logscan::FindingKind::Panic));
    let during = lkmlab_protocol::running_case(ktap_text)
        .map(|c| format!(" while running {c}"))
        .unwrap_or_default();

    match ending {
        Ending::TimedOut => extra.push(Failure::new(
            FailureKind::VmTimeout,
            format!(
                "the VM did not finish within {}s{during}; raise [vm] timeout_secs or \
                 --timeout if the tests are just slow, else look for a hang in console.log",
                timeout.as_secs()
            ),
        )),
        Ending::Exited { status, stderr } if !status.success() => extra.push(Failure::new(
            FailureKind::VmQemu,
            crate::process::saying(&format!("QEMU failed ({status})"), stderr.trim(), " "),
        )),
        Ending::Exited { .. } | Ending::Saved => {}
    }
    // The runner announces each case (`# running`) and ends with a marker;
    // KTAP from elsewhere (a saved kernel log's KUnit output) has neither,
    // and is judged by its own structure alone.
    let from_runner = !matches!(ending, Ending::Saved) || lkmlab_protocol::from_runner(ktap_text);
    if ktap_text.trim().is_empty() && !matches!(ending, Ending::TimedOut) {
        let hint = console
            .lines()
            .find(|l| l.contains("lkmlab-guest:"))
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_else(|| {
                if panicked {
                    ": the kernel panicked before the runner started".into()
                } else {
                    String::new()
                }
            });
        extra.push(Failure::new(
            FailureKind::VmNoResults,
            format!("the guest reported no KTAP at all{hint}"),
        ));
    } else if from_runner
        && !lkmlab_protocol::finished(ktap_text)
        && !matches!(ending, Ending::TimedOut)
    {
        let what = if panicked {
            "the kernel panicked"
        } else {
            "the guest stopped"
        };
        extra.push(Failure::new(
            FailureKind::VmCrash,
            format!("{what} before the runner finished{during}"),
        ));
    }
    for problem in &report.problems {
        extra.push(Failure::new(FailureKind::KtapStructure, problem.clone()));
    }
    if let Some(reason) = &report.bail_out {
        extra.push(Failure::new(FailureKind::KtapBailOut, reason.clone()));
    }
    extra.extend(nothing_passed(&report));
    for f in &findings {
        // kmemleak's `N new suspected memory leaks` is the final scan's: when
        // every object it reported is at the step that leaked it, that step
        // is the report (a leak shows once).
        if f.kind == logscan::FindingKind::Kmemleak
            && attribution.as_ref().is_some_and(|a| a.all_at_steps())
        {
            continue;
        }
        let culprit = f.culprit().map(|c| format!(", in {c}")).unwrap_or_default();
        let excerpt: Vec<String> = f.excerpt.iter().map(|l| logscan::demangle(l)).collect();
        extra.push(Failure::new(
            FailureKind::KernelLog(f.kind.clone()),
            format!(
                "console.log line {}{culprit}:\n{}",
                f.line,
                excerpt.join("\n")
            ),
        ));
    }
    Verdict {
        ktap: report,
        extra_failures: extra,
        findings,
    }
}

/// A run passes only when at least one case passed: a document that ran none
/// (`1..0`) or skipped every one fails, with a reason. (One without even a
/// plan already has a structure problem that says so.)
fn nothing_passed(report: &ktap::Report) -> Option<Failure> {
    const RULE: &str = "a run passes only when at least one test passed";
    match report.status() {
        Status::NoTests if report.problems.is_empty() => {
            let directive = report
                .plan_directive
                .as_deref()
                .map(|d| format!(" # {d}"))
                .unwrap_or_default();
            Some(Failure::new(
                FailureKind::KtapNoTests,
                format!("no test ran: the plan is 1..0{directive}; {RULE}"),
            ))
        }
        Status::Skipped => Some(Failure::new(
            FailureKind::KtapAllSkipped,
            format!(
                "every test was skipped ({} of {}); {RULE}",
                report.counts().skipped,
                report.cases.len()
            ),
        )),
        _ => None,
    }
}

fn render_case(out: &mut String, case: &TestCase, depth: usize) {
    let indent = "  ".repeat(depth);
    let show_diag = case.outcome == Outcome::Fail;
    let tag = output::Tag::of(case.outcome);
    let tag = output::paint(tag, &format!("{:<4}", tag.word()));
    let directive = case
        .directive
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let _ = writeln!(out, "{indent}{tag} {}{directive}", case.name);
    if show_diag {
        for d in &case.diagnostics {
            // The runner's bookkeeping, not the case's words.
            if !d.starts_with(lkmlab_protocol::RUNNING) && !d.starts_with(lkmlab_protocol::LOAD_PID)
            {
                let _ = writeln!(out, "{indent}       {}", logscan::demangle(d));
            }
        }
    }
    for sub in &case.subtests {
        render_case(out, sub, depth + 1);
    }
}

/// The human report: each case, each extra failure quoted, then (when
/// something failed) the names of what failed, and the summary line.
pub fn render(v: &Verdict) -> String {
    let mut out = String::new();
    for case in &v.ktap.cases {
        render_case(&mut out, case, 0);
    }
    for failure in &v.extra_failures {
        let fail = output::Tag::Fail;
        let _ = writeln!(
            out,
            "{} {}",
            output::paint(fail, fail.word()),
            failure.kind.id()
        );
        for line in failure.text.lines() {
            let _ = writeln!(out, "       {line}");
        }
    }
    let failed = failed_names(v);
    if !failed.is_empty() {
        let _ = writeln!(out, "--- failed ({}):", failed.len());
        for name in failed {
            let _ = writeln!(out, "    {name}");
        }
    }
    out.push_str(&v.summary_line());
    out.push('\n');
    out
}

/// What the summary line counts as failed: each failed case (its nested
/// results are shown above it) and each failure outside the cases, in report
/// order.
fn failed_names(v: &Verdict) -> Vec<String> {
    let cases = (v.ktap.cases.iter())
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name.clone());
    let extra = v.extra_failures.iter().map(|f| f.kind.id().into_owned());
    cases.chain(extra).collect()
}

/// The verdict as JSON (`--format json`): the counts, whether it passed,
/// what failed, the KTAP cases as parsed, the failures outside them and the
/// kernel log's findings with the module function each names.
pub fn to_json(v: &Verdict) -> serde_json::Value {
    let (passed, failed, skipped) = v.counts();
    let findings: Vec<serde_json::Value> = v
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "kind": f.kind.to_string(),
                "line": f.line,
                "culprit": f.culprit(),
                "excerpt": f.excerpt.iter().map(|l| logscan::demangle(l)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "passed": v.passed(),
        "summary": { "passed": passed, "failed": failed, "skipped": skipped },
        "failed": failed_names(v),
        "cases": v.ktap.cases,
        "failures": v.extra_failures.iter()
            .map(|f| serde_json::json!({ "name": f.kind.id(), "text": f.text }))
            .collect::<Vec<_>>(),
        "findings": findings,
        "ktap_problems": v.ktap.problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn clean_exit() -> Ending {
        Ending::Exited {
            status: ExitStatus::from_raw(0),
            stderr: String::new(),
        }
    }

    const GOOD: &str = "KTAP version 1\n1..2\n# running m.a\nok 1 m.a\n# running m.b\nok 2 m.b\n# lkmlab-guest: done\n";

    #[test]
    fn a_failing_run_ends_with_what_failed_then_the_summary() {
        let ktap = "KTAP version 1\n1..2\n# running m.a\n\
                    \x20   KTAP version 1\n    1..1\n    not ok 1 inner\nnot ok 1 m.a\n\
                    # running m.b\nok 2 m.b\n# lkmlab-guest: done\n";
        let console = "[ 1.0] WARNING: a.c:1 at f+0x1/0x2, CPU#0: init/1\n";
        let v = evaluate(ktap, console, &clean_exit(), Duration::from_secs(1));
        let text = render(&v);
        let tail: Vec<&str> = text.lines().rev().take(4).collect();
        assert_eq!(
            tail,
            [
                "1 passed, 2 failed",
                "    kernel_log.kernel_warning",
                "    m.a",
                "--- failed (2):",
            ],
            "{text}"
        );
        // A passing run has no such list.
        let v = evaluate(GOOD, "", &clean_exit(), Duration::from_secs(1));
        assert!(!render(&v).contains("--- failed"));
    }

    #[test]
    fn the_json_verdict_has_the_counts_what_failed_and_the_findings() {
        let console = "[ 1.0] BUG: KASAN: slab-use-after-free in read_it+0x8c/0x120 [uaf]\n\
                       [ 1.0] Read of size 8 at addr ffff888004a8d0c0 by task init/40\n";
        let v = evaluate(GOOD, console, &clean_exit(), Duration::from_secs(1));
        let json = to_json(&v);
        assert_eq!(json["passed"], false);
        assert_eq!(json["summary"]["passed"], 2);
        assert_eq!(json["summary"]["failed"], 1);
        assert_eq!(json["failed"][0], "kernel_log.memory_error_(KASAN)");
        assert_eq!(json["cases"][1]["name"], "m.b");
        assert_eq!(json["findings"][0]["kind"], "memory error (KASAN)");
        assert_eq!(json["findings"][0]["culprit"], "read_it [uaf]");
        assert_eq!(json["findings"][0]["line"], 1);
    }

    #[test]
    fn a_clean_run_passes() {
        let v = evaluate(
            GOOD,
            "[    0.1] Linux version 7.3.4\n",
            &clean_exit(),
            Duration::from_secs(9),
        );
        assert!(v.passed(), "{}", render(&v));
        assert_eq!(v.summary_line(), "2 passed, 0 failed");
    }

    #[test]
    fn a_warning_in_the_kernel_log_fails_the_run_and_is_quoted() {
        let console = "[    1.0] ------------[ cut here ]------------\n\
                       [    1.0] WARNING: CPU: 0 PID: 42 at mm/slub.c:123 kfree+0x1/0x2\n\
                       [    1.0] Call Trace:\n[    1.0] ---[ end trace 0000000000000000 ]---\n";
        let v = evaluate(GOOD, console, &clean_exit(), Duration::from_secs(9));
        assert!(!v.passed());
        let text = render(&v);
        assert!(text.contains("WARNING: CPU: 0 PID: 42"), "{text}");
        assert!(text.ends_with("2 passed, 1 failed\n"), "{text}");
    }

    #[test]
    fn a_timeout_names_the_running_case() {
        let ktap = "KTAP version 1\n1..2\n# running m.a\nok 1 m.a\n# running m.b\n";
        let v = evaluate(ktap, "", &Ending::TimedOut, Duration::from_secs(9));
        assert!(!v.passed());
        let text = render(&v);
        assert!(
            text.contains("vm.timeout") && text.contains("while running m.b"),
            "{text}"
        );
    }

    #[test]
    fn a_guest_that_dies_midway_is_a_crash_not_a_pass() {
        let ktap = "KTAP version 1\n1..2\n# running m.a\nok 1 m.a\n# running m.b\n";
        let console =
            "[    2.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n";
        let v = evaluate(ktap, console, &clean_exit(), Duration::from_secs(9));
        assert!(!v.passed());
        let text = render(&v);
        assert!(
            text.contains("vm.crash") && text.contains("kernel panicked"),
            "{text}"
        );
        assert!(text.contains("while running m.b"), "{text}");
    }

    #[test]
    fn no_ktap_at_all_is_a_failure_with_the_guest_reason() {
        let console = "lkmlab-guest: cannot start: no virtio serial port named lkmlab.ktap\n";
        let v = evaluate("", console, &clean_exit(), Duration::from_secs(9));
        assert!(!v.passed());
        assert!(render(&v).contains("no virtio serial port"));
    }

    #[test]
    fn saved_kunit_output_is_judged_by_its_structure_alone() {
        let kunit = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: s\n    1..1\n    ok 1 t\nok 1 s\n";
        let v = evaluate(kunit, "", &Ending::Saved, Duration::ZERO);
        assert!(v.passed(), "{}", render(&v));
        let cut = "KTAP version 1\n1..2\nok 1 a\n";
        assert!(!evaluate(cut, "", &Ending::Saved, Duration::ZERO).passed());
        let runner_cut = "KTAP version 1\n1..1\n# running m.a\nok 1 m.a\n";
        let v = evaluate(runner_cut, "", &Ending::Saved, Duration::ZERO);
        assert!(render(&v).contains("vm.crash"), "{}", render(&v));
    }

    #[test]
    fn a_run_of_no_tests_fails_and_says_why() {
        let v = evaluate("KTAP version 1\n1..0\n", "", &Ending::Saved, Duration::ZERO);
        assert!(!v.passed());
        let text = render(&v);
        assert!(
            text.contains("FAIL ktap.no_tests\n       no test ran: the plan is 1..0; a run passes only when at least one test passed"),
            "{text}"
        );
        assert!(text.ends_with("0 passed, 1 failed\n"), "{text}");
        let skip_all = "TAP version 13\n1..0 # SKIP no hardware\n";
        let text = render(&evaluate(skip_all, "", &Ending::Saved, Duration::ZERO));
        assert!(
            text.contains("the plan is 1..0 # SKIP no hardware;"),
            "{text}"
        );
    }

    #[test]
    fn a_run_where_every_test_was_skipped_fails() {
        let ktap = "KTAP version 1\n1..2\n# running m.a\nok 1 m.a # SKIP no device\n\
                    # running m.b\nok 2 m.b # SKIP no device\n# lkmlab-guest: done\n";
        let v = evaluate(ktap, "", &clean_exit(), Duration::from_secs(9));
        assert!(!v.passed());
        let text = render(&v);
        assert!(
            text.contains("FAIL ktap.all_skipped\n       every test was skipped (2 of 2)"),
            "{text}"
        );
        assert!(text.ends_with("0 passed, 1 failed, 2 skipped\n"), "{text}");
        // One that passed among the skipped is enough.
        let some = ktap.replace("ok 2 m.b # SKIP no device", "ok 2 m.b");
        assert!(evaluate(&some, "", &clean_exit(), Duration::from_secs(9)).passed());
    }

    #[test]
    fn qemu_failing_to_start_is_reported() {
        let ending = Ending::Exited {
            status: ExitStatus::from_raw(1 << 8),
            stderr: "qemu-system-x86_64: -kernel x: No such file".into(),
        };
        let v = evaluate("", "", &ending, Duration::from_secs(9));
        assert!(render(&v).contains("No such file"));
        // QEMU that failed in silence: its FAIL does not end in a colon.
        let silent = Ending::Exited {
            status: ExitStatus::from_raw(1 << 8),
            stderr: "\n".into(),
        };
        let text = render(&evaluate("", "", &silent, Duration::from_secs(9)));
        assert!(
            text.contains(
                "FAIL vm.qemu\n       QEMU failed (exit status: 1) and printed nothing\n"
            ),
            "{text}"
        );
    }
}
