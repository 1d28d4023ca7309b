//! Turning what a VM run left behind — KTAP, the kernel log, how QEMU ended —
//! into a verdict that never says "passed" when something went wrong.

use crate::judge::failure::{Failure, FailureKind, NOT_RUN_ID};
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
    /// The planned cases the run stopped before, if it stopped early.
    pub not_run: Option<NotRun>,
}

/// The planned cases that did not run because the run stopped before them:
/// not failures of their own (what stopped the run is one), not skips (no
/// one chose to skip them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRun {
    /// Why, as in "not run because …": `the kernel oopsed in hello.insmod`.
    pub reason: String,
    /// The cases, in plan order.
    pub cases: Vec<String>,
}

impl Verdict {
    pub fn counts(&self) -> (usize, usize, usize) {
        let c = self.ktap.counts();
        (c.passed, c.failed + self.extra_failures.len(), c.skipped)
    }

    /// Nothing failed, everything planned ran, and at least one case passed.
    pub fn passed(&self) -> bool {
        let (passed, failed, _) = self.counts();
        failed == 0 && passed > 0 && self.not_run.is_none()
    }

    /// How many planned cases did not run.
    pub fn not_run_count(&self) -> usize {
        self.not_run.as_ref().map_or(0, |n| n.cases.len())
    }

    /// Add a case that did not run, with the reason (`# SKIP reason`): what
    /// the host decided before the guest ran (a module that does not build
    /// for this kernel).
    pub fn add_skip(&mut self, name: &str, reason: &str) {
        add_case(
            &mut self.ktap,
            name,
            Outcome::Skip,
            Some(reason.to_string()),
            Vec::new(),
        );
    }

    /// The closing line: `N passed, N failed` (`, N skipped` where any).
    pub fn summary_line(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        let mut line = format!("{passed} passed, {failed} failed");
        if skipped > 0 {
            let _ = write!(line, ", {skipped} skipped");
        }
        if self.not_run_count() > 0 {
            let _ = write!(line, ", {} not run", self.not_run_count());
        }
        line
    }
}

/// Judge a run from the guest's KTAP, the console log and how QEMU ended.
///
/// A run the runner did not finish names what it planned and did not run
/// ([`NotRun`], from its `# planned:` line) and why. The test kernel panics
/// on an oops (`oops=panic`, see [`crate::vm::qemu::CMDLINE`]): then the
/// oops is the failure, quoted, the case that was running fails, and the
/// panic that ended the VM ("Fatal exception") is no failure of its own. A
/// timeout after the runner's watchdog marked the running case hung is
/// [`FailureKind::VmCaseHung`], quoting the watchdog's dump.
pub fn evaluate(ktap_text: &str, console: &str, ending: &Ending, timeout: Duration) -> Verdict {
    let mut report = ktap::parse(ktap_text);
    // The runner's notes to the host are no case's output.
    for case in &mut report.cases {
        case.diagnostics.retain(|d| {
            !d.starts_with(lkmlab_protocol::PLANNED) && !d.starts_with(lkmlab_protocol::HUNG)
        });
    }
    let attribution = leaks::attribute(&mut report);
    let mut extra = Vec::new();
    let mut findings = logscan::scan(console);
    let panicked = findings
        .iter()
        .any(|f| matches!(f.kind, logscan::FindingKind::Panic));
    let oops_panic = findings.iter().position(is_oops_panic);
    let running = lkmlab_protocol::running_case(ktap_text);
    let during = running
        .as_ref()
        .map(|c| format!(" while running {c}"))
        .unwrap_or_default();
    let timed_out = matches!(ending, Ending::TimedOut);
    // QEMU itself failed before the guest wrote anything (a device it
    // refused at start): `vm.qemu` says so, and the missing results are
    // that failure, not failures of their own.
    let qemu_failed = matches!(ending, Ending::Exited { status, .. } if !status.success());
    let qemu_failed_first = qemu_failed && ktap_text.trim().is_empty();
    // A saved run does not say how it ended: a case marked hung and never
    // finished, with no panic after it, was still hung at the end.
    let saved = matches!(ending, Ending::Saved);
    let hung = lkmlab_protocol::hung_case(ktap_text).filter(|_| timed_out || (saved && !panicked));
    // The runner announces each case (`# running`) and ends with a marker;
    // KTAP from elsewhere (a saved kernel log's KUnit output) has neither,
    // and is judged by its own structure alone.
    let from_runner = !matches!(ending, Ending::Saved) || lkmlab_protocol::from_runner(ktap_text);
    let stopped_early =
        from_runner && !ktap_text.trim().is_empty() && !lkmlab_protocol::finished(ktap_text);
    let oopsed_in = running
        .clone()
        .filter(|_| stopped_early && oops_panic.is_some());
    if let Some(i) = oops_panic {
        findings.remove(i);
    }

    match ending {
        Ending::TimedOut => extra.push(match &hung {
            Some((case, secs)) => Failure::new(
                FailureKind::VmCaseHung,
                hung_text(case, *secs, Some(timeout), console),
            ),
            None => Failure::new(
                FailureKind::VmTimeout,
                format!(
                    "the VM did not finish within {}s{during}; raise [vm] timeout_secs or \
                     --timeout if the tests are just slow, else look for a hang in console.log{}",
                    timeout.as_secs(),
                    running
                        .as_deref()
                        .map(|case| last_lines_of(console, case))
                        .unwrap_or_default()
                ),
            ),
        }),
        Ending::Exited { status, stderr } if !status.success() => extra.push(Failure::new(
            FailureKind::VmQemu,
            crate::process::saying(
                &format!("QEMU failed ({status})"),
                qemu_message(stderr),
                " ",
            ),
        )),
        Ending::Exited { .. } | Ending::Saved => {}
    }
    if ktap_text.trim().is_empty() && !timed_out && !qemu_failed_first {
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
    } else if let (Some((case, secs)), true) = (&hung, saved) {
        extra.push(Failure::new(
            FailureKind::VmCaseHung,
            hung_text(case, *secs, None, console),
        ));
    } else if stopped_early && !timed_out && oopsed_in.is_none() && !qemu_failed {
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
    if let Some(case) = &oopsed_in {
        add_case(
            &mut report,
            case,
            Outcome::Fail,
            None,
            vec![
                "the kernel oopsed while this case ran (the oops is quoted below); the test \
                 kernel panics on an oops (oops=panic), which ended the VM"
                    .to_string(),
            ],
        );
    }
    let planned = lkmlab_protocol::planned_cases(ktap_text);
    let not_run = (stopped_early && !planned.is_empty()).then(|| {
        let reason = match (&running, &hung) {
            (None, _) => "the guest stopped before them".to_string(),
            (Some(case), _) if oopsed_in.is_some() => format!("the kernel oopsed in {case}"),
            (Some(case), Some(_)) => format!("{case} hung"),
            (Some(case), None) if timed_out => format!("the VM timed out in {case}"),
            (Some(case), None) if qemu_failed => format!("QEMU failed in {case}"),
            (Some(case), None) if panicked => format!("the kernel panicked in {case}"),
            (Some(case), None) => format!("the guest stopped in {case}"),
        };
        // Every planned case is accounted for here, so the KTAP's missing
        // results are no problem of their own.
        report.problems.retain(|p| !p.starts_with(ktap::TRUNCATED));
        let done: Vec<&str> = (report.cases.iter().map(|c| c.name.as_str()))
            .chain(running.as_deref())
            .collect();
        NotRun {
            reason,
            cases: (planned.iter())
                .filter(|c| !done.contains(&c.as_str()))
                .cloned()
                .collect(),
        }
    });
    let not_run = not_run.filter(|n| !n.cases.is_empty());
    for problem in report.problems.iter().filter(|_| !qemu_failed_first) {
        extra.push(Failure::new(FailureKind::KtapStructure, problem.clone()));
    }
    if let Some(reason) = &report.bail_out {
        extra.push(Failure::new(FailureKind::KtapBailOut, reason.clone()));
    }
    // A run that stopped early has failed already, for that reason.
    if !stopped_early {
        extra.extend(nothing_passed(&report));
    }
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
        // Code that ran after its module was unloaded: say whose, and what
        // the fix is, before the kernel's report.
        let lead = (f.unloaded.as_ref())
            .map(|u| format!("{}.\n", u.sentence()))
            .unwrap_or_default();
        extra.push(Failure::new(
            FailureKind::KernelLog(f.kind.clone()),
            format!(
                "{lead}console.log line {}{culprit}:\n{}",
                f.line,
                excerpt.join("\n")
            ),
        ));
    }
    Verdict {
        ktap: report,
        extra_failures: extra,
        findings,
        not_run,
    }
}

/// The panic that `oops=panic` raises after an oops: `Kernel panic - not
/// syncing: Fatal exception` (`… in interrupt`; arm64: `Oops: Fatal
/// exception`).
fn is_oops_panic(f: &logscan::Finding) -> bool {
    f.kind == logscan::FindingKind::Panic
        && f.excerpt
            .first()
            .is_some_and(|l| l.contains("Fatal exception"))
}

/// A case the host adds to the report (numbered after the last).
fn add_case(
    report: &mut ktap::Report,
    name: &str,
    outcome: Outcome,
    directive: Option<String>,
    diagnostics: Vec<String>,
) {
    let number = u32::try_from(report.cases.len() + 1).unwrap_or(u32::MAX);
    report.cases.push(TestCase {
        number,
        name: name.to_string(),
        outcome,
        directive,
        diagnostics,
        subtests: Vec::new(),
    });
}

/// What QEMU said when it failed, without the register dump of every CPU
/// that a device model's `hw_error` prints after its message (`CPU #0:`,
/// then `RAX=…` lines).
fn qemu_message(stderr: &str) -> &str {
    let end = stderr
        .match_indices('\n')
        .find(|(i, _)| stderr[i + 1..].starts_with("CPU #"))
        .map_or(stderr.len(), |(i, _)| i);
    stderr[..end].trim()
}

/// What a [`FailureKind::VmCaseHung`] says: the case, how long it had run
/// when the watchdog fired, the timeout, and the watchdog's dump.
fn hung_text(case: &str, secs: u64, timeout: Option<Duration>, console: &str) -> String {
    let within = timeout
        .map(|t| format!(" within {}s", t.as_secs()))
        .unwrap_or_default();
    let mut text = format!(
        "{case} hung: the runner's watchdog found it still running after {secs}s, and the VM \
         did not finish{within} (if the tests are just slow, raise [vm] timeout_secs or \
         --timeout)."
    );
    match logscan::watchdog_dump(console) {
        Some((first, last, lines)) => {
            let _ = write!(
                text,
                " Its tasks, the blocked tasks (sysrq w) and the CPUs (sysrq l), \
                 console.log lines {first}-{last}:"
            );
            for line in lines {
                text.push('\n');
                text.push_str(&logscan::demangle(&line));
            }
            if last + 1 - first > logscan::MAX_WATCHDOG_QUOTE {
                text.push_str("\n…");
            }
        }
        None => text.push_str(" Its dump did not reach console.log."),
    }
    text
}

/// How many of the kernel's last lines a timeout quotes.
const TIMEOUT_QUOTE: usize = 15;

/// The kernel's last lines since the runner started `case` (its marker,
/// `lkmlab: case NAME`), as text to append to a timeout's message.
fn last_lines_of(console: &str, case: &str) -> String {
    let marker = lkmlab_protocol::kernel_log::case_marker(case);
    let lines: Vec<&str> = console.lines().collect();
    let Some(start) = lines.iter().rposition(|l| l.ends_with(marker.as_str())) else {
        return String::new();
    };
    let since = &lines[start + 1..];
    if since.is_empty() {
        return format!(
            ". The kernel logged nothing after {case} started (console.log line {})",
            start + 1
        );
    }
    let first = since.len().saturating_sub(TIMEOUT_QUOTE);
    let mut text = format!(
        ". The kernel's last lines since {case} started (console.log lines {}-{}):",
        start + 2 + first,
        lines.len()
    );
    for line in &since[first..] {
        text.push('\n');
        text.push_str(&logscan::demangle(line.trim_end()));
    }
    text
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
    if let Some(n) = &v.not_run {
        let _ = writeln!(
            out,
            "--- not run ({}), because {}:",
            n.cases.len(),
            n.reason
        );
        for name in &n.cases {
            let _ = writeln!(out, "    {name}");
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
        "summary": {
            "passed": passed,
            "failed": failed,
            "skipped": skipped,
            NOT_RUN_ID: v.not_run_count(),
        },
        "failed": failed_names(v),
        NOT_RUN_ID: v.not_run.as_ref().map(|n| serde_json::json!({
            "reason": n.reason,
            "cases": n.cases,
        })),
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

    /// Without the watchdog's dump (a guest too wedged to write one), a
    /// timeout quotes what the kernel said since the running case began.
    #[test]
    fn a_timeout_quotes_the_running_cases_last_kernel_lines() {
        let ktap = "KTAP version 1\n1..2\n# running m.a\nok 1 m.a\n# running m.b\n";
        let mut console =
            String::from("[ 1.0] lkmlab: case m.a\n[ 1.1] a says hi\n[ 2.0] lkmlab: case m.b\n");
        for i in 0..20 {
            console.push_str(&format!("[ 3.{i}] b line {i}\n"));
        }
        let v = evaluate(ktap, &console, &Ending::TimedOut, Duration::from_secs(9));
        let text = render(&v);
        assert!(
            text.contains("The kernel's last lines since m.b started (console.log lines 9-23):"),
            "{text}"
        );
        assert!(text.contains("[ 3.19] b line 19"), "{text}");
        assert!(
            !text.contains("b line 4\n") && !text.contains("a says hi"),
            "{text}"
        );
        let quiet = "[ 1.0] lkmlab: case m.a\n[ 2.0] lkmlab: case m.b\n";
        let text = render(&evaluate(
            ktap,
            quiet,
            &Ending::TimedOut,
            Duration::from_secs(9),
        ));
        assert!(
            text.contains("The kernel logged nothing after m.b started (console.log line 2)"),
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

    /// An oops ends the VM (`oops=panic`): the oops is quoted, the case
    /// that was running fails, the cases after it are not run — and
    /// nothing else fails for it (no crash, no panic, no missing results).
    #[test]
    fn an_oops_fails_its_case_and_names_what_did_not_run() {
        let ktap =
            "KTAP version 1\n1..4\n# planned: m.insmod m.rmmod guest_tests.a guest_tests.b\n\
                    # running m.insmod\nok 1 m.insmod\n# running m.rmmod\n";
        let console = "\
[    2.0] lkmlab: case m.rmmod
[    2.1] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    2.1] Oops: Oops: 0002 [#1] SMP NOPTI
[    2.1] RIP: 0010:m_exit+0x5/0x10 [m]
[    2.1] ---[ end trace 0000000000000000 ]---
[    2.1] Kernel panic - not syncing: Fatal exception
[    2.1] ---[ end Kernel panic - not syncing: Fatal exception ]---
";
        let v = evaluate(ktap, console, &clean_exit(), Duration::from_secs(9));
        assert!(!v.passed());
        let text = render(&v);
        let ids: Vec<_> = v.extra_failures.iter().map(|f| f.kind.id()).collect();
        assert_eq!(ids, ["kernel_log.kernel_BUG"], "{text}");
        assert!(text.contains("FAIL m.rmmod\n"), "{text}");
        assert!(
            text.contains("the kernel oopsed while this case ran"),
            "{text}"
        );
        assert!(
            text.contains(
                "--- not run (2), because the kernel oopsed in m.rmmod:\n    guest_tests.a\n    guest_tests.b\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("1 passed, 2 failed, 2 not run\n"), "{text}");
        let json = to_json(&v);
        assert_eq!(json["summary"]["not_run"], 2);
        assert_eq!(json["not_run"]["cases"][1], "guest_tests.b");
        assert_eq!(json["not_run"]["reason"], "the kernel oopsed in m.rmmod");
    }

    /// A panic of its own (not an oops's) is still a crash, and what did not
    /// run is named too.
    #[test]
    fn a_panic_names_what_did_not_run() {
        let ktap = "KTAP version 1\n1..2\n# planned: m.insmod m.rmmod\n# running m.insmod\n";
        let console = "[ 2.0] Kernel panic - not syncing: deliberate\n";
        let v = evaluate(ktap, console, &clean_exit(), Duration::from_secs(9));
        let text = render(&v);
        assert!(text.contains("FAIL vm.crash"), "{text}");
        assert!(text.contains("FAIL kernel_log.kernel_panic"), "{text}");
        assert!(!text.contains("ktap.structure"), "{text}");
        assert!(
            text.contains(
                "--- not run (1), because the kernel panicked in m.insmod:\n    m.rmmod\n"
            ),
            "{text}"
        );
    }

    /// A timeout after the watchdog marked the running case hung names the
    /// case and quotes the dump, instead of a bare timeout.
    #[test]
    fn a_hung_case_is_named_with_the_watchdogs_dump() {
        let ktap = "KTAP version 1\n1..2\n# planned: guest_tests.read guest_tests.z\n\
                    # running guest_tests.read\n# hung guest_tests.read 97\n";
        let console = "\
[  100.0] lkmlab: case guest_tests.read
[  197.0] lkmlab: watchdog fired: guest_tests.read still running after 97s: its tasks, the blocked tasks (sysrq w) and the CPUs (sysrq l) follow
[  197.0] lkmlab: watchdog: task cat (pid 50, state D) of guest_tests.read:
[  197.0]  hangs_in_read::read+0x1f/0x40 [hangs_in_read]
[  197.1] sysrq: Show Blocked State
[  197.1] task:cat             state:D stack:0     pid:50    tgid:50    ppid:49
[  197.1] Call Trace:
[  197.1]  <TASK>
[  197.1]  __mutex_lock+0x1f/0x40
[  197.1]  </TASK>
[  197.2] lkmlab: watchdog: end of the dump
";
        let v = evaluate(ktap, console, &Ending::TimedOut, Duration::from_secs(120));
        let text = render(&v);
        let ids: Vec<_> = v.extra_failures.iter().map(|f| f.kind.id()).collect();
        assert_eq!(ids, ["vm.case_hung"], "{text}");
        assert!(
            text.contains(
                "guest_tests.read hung: the runner's watchdog found it still running after 97s"
            ),
            "{text}"
        );
        assert!(text.contains("console.log lines 2-11:"), "{text}");
        assert!(text.contains("task:cat             state:D"), "{text}");
        assert!(text.contains("__mutex_lock+0x1f/0x40"), "{text}");
        assert!(
            text.contains("--- not run (1), because guest_tests.read hung:\n    guest_tests.z\n"),
            "{text}"
        );
        // Read back from the saved files, it is the same hang.
        let saved = evaluate(ktap, console, &Ending::Saved, Duration::ZERO);
        let ids: Vec<_> = saved.extra_failures.iter().map(|f| f.kind.id()).collect();
        assert_eq!(ids, ["vm.case_hung"], "{}", render(&saved));
        // The same run without the watchdog's mark is a bare timeout.
        let unmarked = ktap.replace("# hung guest_tests.read 97\n", "");
        let v = evaluate(&unmarked, "", &Ending::TimedOut, Duration::from_secs(120));
        let ids: Vec<_> = v.extra_failures.iter().map(|f| f.kind.id()).collect();
        assert_eq!(ids, ["vm.timeout"]);
        assert!(render(&v).contains("because the VM timed out in guest_tests.read"));
    }

    /// A case the watchdog fired for that finished after all (a slow guest)
    /// is judged by its result alone.
    /// The runner's `# planned:` and `# hung` lines are not shown as what the
    /// case they precede printed.
    #[test]
    fn the_runners_notes_are_not_a_cases_output() {
        let ktap = "KTAP version 1\n1..1\n# planned: m.a\n# running m.a\n# hung m.a 97\n\
                    # busy\nnot ok 1 m.a\n# lkmlab-guest: done\n";
        let v = evaluate(ktap, "", &clean_exit(), Duration::from_secs(120));
        let text = render(&v);
        assert!(text.starts_with("FAIL m.a\n       busy\n"), "{text}");
    }

    #[test]
    fn a_slow_case_the_watchdog_fired_for_is_not_hung() {
        let ktap = "KTAP version 1\n1..1\n# planned: m.a\n# running m.a\n# hung m.a 97\n\
                    ok 1 m.a\n# lkmlab-guest: done\n";
        let console = "\
[ 197.0] lkmlab: watchdog fired: m.a still running after 97s: its tasks, the blocked tasks (sysrq w) and the CPUs (sysrq l) follow
[ 197.1] NMI backtrace for cpu 0
[ 197.1] Call Trace:
[ 197.1]  <TASK>
[ 197.1]  </TASK>
[ 197.2] lkmlab: watchdog: end of the dump
";
        let v = evaluate(ktap, console, &clean_exit(), Duration::from_secs(120));
        assert!(v.passed(), "{}", render(&v));
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
        // The missing results are that failure, not two more.
        let ids: Vec<String> = v
            .extra_failures
            .iter()
            .map(|f| f.kind.id().into_owned())
            .collect();
        assert_eq!(ids, ["vm.qemu"]);
        // A device model's hw_error aborts QEMU in the run: the results so
        // far are judged as usual, beside vm.qemu.
        let aborted = Ending::Exited {
            status: ExitStatus::from_raw(6),
            stderr: "qemu: hardware error: EDU: DMA range 0x0000000000050000-0x0000000000050007 \
                     out of bounds (0x0000000000040000-0x0000000000040fff)!\nCPU #0:\nRAX=0000000000000000\n"
                .into(),
        };
        let ktap = "KTAP version 1\n# planned: m.insmod m.rmmod\n1..2\n# running m.insmod\n";
        let v = evaluate(ktap, "", &aborted, Duration::from_secs(9));
        let text = render(&v);
        // The VM stopped because QEMU did: no vm.crash of its own, and the
        // rest of the plan did not run because of it.
        assert!(!text.contains("vm.crash"), "{text}");
        assert!(
            text.contains("--- not run (1), because QEMU failed in m.insmod:"),
            "{text}"
        );
        assert!(
            text.contains("FAIL vm.qemu\n       QEMU failed (signal: 6")
                && text.contains("out of bounds")
                && !text.contains("RAX="),
            "{text}"
        );
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
