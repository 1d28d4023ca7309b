//! JUnit XML for CI systems, from a parsed KTAP report plus failures found
//! elsewhere (kernel log findings, timeouts), written with `quick-junit`
//! (nextest's writer), checked by a JUnit reader in the tests.

use crate::judge::failure::{Failure, NOT_RUN_ID};
use crate::judge::report::NotRun;
use crate::ktap::{Outcome, Report, TestCase as KtapCase};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// Renders a JUnit XML document with one `<testsuite>` named `suite`.
///
/// There is one `<testcase>` per leaf case of `report`; subtests are named
/// `parent.child`. What a case printed (its KTAP diagnostics) is its
/// `<system-out>`. A failed case's `<failure>` holds its diagnostics (for a
/// leaf also its parent's diagnostics that start with `leafname:`, where
/// KUnit prints assertion messages). A parent that failed although none of
/// its leaves did gets a failed testcase of its own. Each of
/// `extra_failures` (the verdict's: the report's structural problems and
/// bail-out among them) becomes a testcase named by its ID: an `<error>`
/// when the run itself broke ([`crate::judge::failure::FailureKind::is_error`]),
/// else a `<failure>`. Each case of `not_run` is a testcase `<skipped
/// type="not_run">` with the reason. `time_secs` is the suite's duration.
pub fn render(
    suite: &str,
    report: &Report,
    extra_failures: &[Failure],
    not_run: Option<&NotRun>,
    time_secs: f64,
) -> String {
    let mut cases = Vec::new();
    for case in &report.cases {
        collect(case, "", &[], &mut cases);
    }
    for failure in extra_failures {
        cases.push(extra(failure));
    }
    for name in not_run.iter().flat_map(|n| &n.cases) {
        let mut status = TestCaseStatus::skipped();
        status.set_type(NOT_RUN_ID);
        if let Some(n) = not_run {
            status.set_message(format!("not run because {}", n.reason));
        }
        cases.push(TestCase::new(name.as_str(), status));
    }

    let mut junit = TestSuite::new(suite);
    for mut case in cases {
        case.set_classname(suite);
        junit.add_test_case(case);
    }
    let time = if time_secs.is_finite() && time_secs > 0.0 {
        Duration::from_secs_f64(time_secs)
    } else {
        Duration::ZERO
    };
    junit.set_time(time);
    let mut out = quick_junit::Report::new(suite);
    out.set_time(time);
    out.add_test_suite(junit);
    // Serialising into a String cannot fail for want of space; quick-junit
    // returns an error only for a writer that fails.
    out.to_string().unwrap_or_else(|e| {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- JUnit output failed: {e} -->\n")
    })
}

/// A testcase for a failure found outside the cases.
fn extra(failure: &Failure) -> TestCase {
    let kind = if failure.kind.is_error() {
        NonSuccessKind::Error
    } else {
        NonSuccessKind::Failure
    };
    let mut status = TestCaseStatus::non_success(kind);
    status.set_message(failure.text.lines().next().unwrap_or("failed"));
    status.set_description(failure.text.as_str());
    TestCase::new(failure.kind.id(), status)
}

fn case_name(case: &KtapCase) -> String {
    if case.name.is_empty() {
        format!("#{}", case.number)
    } else {
        case.name.clone()
    }
}

/// Adds the testcases for `case` and its subtests; returns whether any failed.
fn collect(
    case: &KtapCase,
    prefix: &str,
    parent_diags: &[String],
    out: &mut Vec<TestCase>,
) -> bool {
    let name = case_name(case);
    let path = if prefix.is_empty() {
        name.clone()
    } else {
        format!("{prefix}.{name}")
    };
    if case.subtests.is_empty() {
        let status = match case.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Skip | Outcome::Todo => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(case.directive.clone().unwrap_or_else(|| {
                    if case.outcome == Outcome::Todo {
                        "TODO".to_string()
                    } else {
                        "skipped".to_string()
                    }
                }));
                status
            }
            Outcome::Fail => {
                let own = format!("{name}:");
                let diags: Vec<&str> = case
                    .diagnostics
                    .iter()
                    .chain(parent_diags.iter().filter(|d| d.starts_with(&own)))
                    .map(String::as_str)
                    .collect();
                failure(case, &diags)
            }
        };
        let failed = matches!(status, TestCaseStatus::NonSuccess { .. });
        out.push(with_output(TestCase::new(path, status), case));
        return failed;
    }
    let mut any_failed = false;
    for sub in &case.subtests {
        any_failed |= collect(sub, &path, &case.diagnostics, out);
    }
    if case.outcome == Outcome::Fail && !any_failed {
        let diags: Vec<&str> = case.diagnostics.iter().map(String::as_str).collect();
        out.push(with_output(
            TestCase::new(path, failure(case, &diags)),
            case,
        ));
        any_failed = true;
    }
    any_failed
}

/// What the case printed, as its `<system-out>`.
fn with_output(mut junit: TestCase, case: &KtapCase) -> TestCase {
    if !case.diagnostics.is_empty() {
        junit.set_system_out(case.diagnostics.join("\n"));
    }
    junit
}

fn failure(case: &KtapCase, diags: &[&str]) -> TestCaseStatus {
    let line = format!("not ok {} {}", case.number, case.name)
        .trim_end()
        .to_string();
    let message = case
        .directive
        .clone()
        .or_else(|| {
            diags
                .iter()
                .find(|d| d.to_ascii_uppercase().contains("FAIL"))
                .or_else(|| diags.first())
                .map(|d| d.to_string())
        })
        .unwrap_or_else(|| line.clone());
    let mut text = line;
    if let Some(directive) = &case.directive {
        text.push_str(&format!(" # {directive}"));
    }
    for d in diags {
        text.push('\n');
        text.push_str(d);
    }
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(message);
    status.set_description(text);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::failure::FailureKind;
    use crate::judge::logscan::FindingKind;
    use crate::ktap;
    use crate::vm::qemu::Ending;
    use junit_parser::TestStatus;

    /// The document as a JUnit reader sees it.
    fn read(xml: &str) -> junit_parser::TestSuites {
        junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes()))
            .unwrap_or_else(|e| panic!("not JUnit a reader takes: {e}\n{xml}"))
    }

    fn names(suites: &junit_parser::TestSuites) -> Vec<&str> {
        suites.suites[0]
            .cases
            .iter()
            .map(|c| c.original_name.as_str())
            .collect()
    }

    fn case<'a>(suites: &'a junit_parser::TestSuites, name: &str) -> &'a junit_parser::TestCase {
        suites.suites[0]
            .cases
            .iter()
            .find(|c| c.original_name == name)
            .unwrap()
    }

    const KTAP: &str = "\
KTAP version 1
# Subtest: scull_buffer
# module: scull
1..4
    ok 1 append_within_capacity
    ok 2 write_past_capacity_is_truncated
    # clear_empties_buffer: ASSERTION FAILED at scull.rs:120
    not ok 3 clear_empties_buffer
    ok 4 needs_hardware # SKIP no device
# scull_buffer: pass:2 fail:1 skip:1 total:4
not ok 1 scull_buffer
";

    #[test]
    fn nested_cases_counts_failures_and_errors() {
        let report = ktap::parse(KTAP);
        let extra = vec![
            Failure::new(
                FailureKind::KernelLog(FindingKind::Warning),
                "console.log line 12:\nWARNING: a.c:1 at f+0x1/0x2, CPU#0: init/1",
            ),
            Failure::new(
                FailureKind::VmCrash,
                "the kernel panicked before the runner finished",
            ),
        ];
        let xml = render("lkmlab", &report, &extra, None, 12.3456);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        let suites = read(&xml);
        assert_eq!(
            names(&suites),
            [
                "scull_buffer.append_within_capacity",
                "scull_buffer.write_past_capacity_is_truncated",
                "scull_buffer.clear_empties_buffer",
                "scull_buffer.needs_hardware",
                "kernel_log.kernel_warning",
                "vm.crash",
            ]
        );
        let suite = &suites.suites[0];
        assert_eq!(suite.name, "lkmlab");
        assert_eq!((suite.tests, suite.failures, suite.errors), (6, 2, 1));
        // quick-junit counts skips as `disabled`; readers count the elements.
        let skipped = suite
            .cases
            .iter()
            .filter(|c| matches!(c.status, TestStatus::Skipped(_)))
            .count();
        assert_eq!(skipped, 1);
        assert!(xml.contains(" disabled=\"1\""), "{xml}");
        assert_eq!((suites.tests, suites.failures, suites.errors), (6, 2, 1));
        assert!((suite.time - 12.346).abs() < 0.001, "{}", suite.time);
        assert_eq!(suite.cases[0].classname.as_deref(), Some("lkmlab"));

        match &case(&suites, "scull_buffer.clear_empties_buffer").status {
            TestStatus::Failure(f) => {
                assert_eq!(
                    f.message,
                    "clear_empties_buffer: ASSERTION FAILED at scull.rs:120"
                );
                assert_eq!(
                    f.text,
                    "not ok 3 clear_empties_buffer\n\
                     clear_empties_buffer: ASSERTION FAILED at scull.rs:120"
                );
            }
            other => panic!("{other:?}"),
        }
        match &case(&suites, "scull_buffer.needs_hardware").status {
            TestStatus::Skipped(s) => assert_eq!(s.message, "no device"),
            other => panic!("{other:?}"),
        }
        match &case(&suites, "kernel_log.kernel_warning").status {
            TestStatus::Failure(f) => {
                assert_eq!(f.message, "console.log line 12:");
                assert!(f.text.ends_with("CPU#0: init/1"), "{}", f.text);
            }
            other => panic!("{other:?}"),
        }
        match &case(&suites, "vm.crash").status {
            TestStatus::Error(e) => {
                assert_eq!(e.message, "the kernel panicked before the runner finished")
            }
            other => panic!("a crash is an <error>, not {other:?}"),
        }
    }

    #[test]
    fn what_a_case_printed_is_its_system_out() {
        let report = ktap::parse(
            "KTAP version 1\n1..2\n# running m.a\n# 200 cycles: 2.4 s\nok 1 m.a\nok 2 m.b\n",
        );
        let suites = read(&render("s", &report, &[], None, 1.0));
        assert_eq!(
            case(&suites, "m.a").system_out.as_deref(),
            Some("running m.a\n200 cycles: 2.4 s")
        );
        assert_eq!(case(&suites, "m.b").system_out, None);
        assert!(case(&suites, "m.a").status.is_success());
    }

    /// Older debugfs results print a case's messages after the results; they
    /// land on the suite, and the leaf's failure picks those naming it.
    #[test]
    fn leaf_failure_uses_parent_diagnostics_naming_it() {
        let report = ktap::parse(
            "\
KTAP version 1
# Subtest: scull_buffer
1..2
    ok 1 append_within_capacity
    not ok 2 clear_empties_buffer
    # clear_empties_buffer: ASSERTION FAILED at scull.rs:120
# scull_buffer: pass:1 fail:1 skip:0 total:2
not ok 1 scull_buffer
",
        );
        let suites = read(&render("s", &report, &[], None, 1.0));
        assert_eq!(
            names(&suites),
            [
                "scull_buffer.append_within_capacity",
                "scull_buffer.clear_empties_buffer"
            ]
        );
        match &case(&suites, "scull_buffer.clear_empties_buffer").status {
            TestStatus::Failure(f) => assert_eq!(
                f.message,
                "clear_empties_buffer: ASSERTION FAILED at scull.rs:120"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deep_nesting_and_parent_only_failure() {
        let report = ktap::parse(
            "\
KTAP version 1
1..2
  KTAP version 1
  1..1
    KTAP version 1
    1..1
    ok 1 leaf
  ok 1 middle
# suite_init failed: -ENOMEM
not ok 1 outer
ok 2 top_leaf
",
        );
        assert_eq!(report.problems, Vec::<String>::new());
        let suites = read(&render("s", &report, &[], None, 0.0));
        assert_eq!(names(&suites), ["outer.middle.leaf", "outer", "top_leaf"]);
        assert_eq!(suites.suites[0].failures, 1);
        match &case(&suites, "outer").status {
            TestStatus::Failure(f) => assert_eq!(f.message, "suite_init failed: -ENOMEM"),
            other => panic!("{other:?}"),
        }
        assert_eq!(suites.suites[0].time, 0.0);
    }

    /// The verdict owns the list of failures: JUnit shows each once, as
    /// `evaluate` found it, a bail-out and malformed KTAP as errors.
    #[test]
    fn problems_and_bail_out_become_errors_once() {
        let text = "KTAP version 1\n1..3\nok 1 a\nBail out! no /dev/scull0\n";
        let verdict = crate::judge::report::evaluate(
            text,
            "",
            &Ending::Saved,
            std::time::Duration::from_secs(1),
        );
        let suites = read(&render(
            "s",
            &verdict.ktap,
            &verdict.extra_failures,
            None,
            1.0,
        ));
        assert_eq!(names(&suites), ["a", "ktap.structure", "ktap.bail_out"]);
        match &case(&suites, "ktap.structure").status {
            TestStatus::Error(e) => {
                assert_eq!(e.message, "truncated: plan 1..3 but only 1 result")
            }
            other => panic!("{other:?}"),
        }
        match &case(&suites, "ktap.bail_out").status {
            TestStatus::Error(e) => assert_eq!(e.message, "no /dev/scull0"),
            other => panic!("{other:?}"),
        }
        assert_eq!((suites.suites[0].failures, suites.suites[0].errors), (0, 2));
    }

    #[test]
    fn text_that_xml_cannot_carry_is_escaped_or_dropped() {
        let report = ktap::parse(
            "KTAP version 1\n1..2\n# <fail> & \"quote\" \u{1}\nnot ok 1 a<b>&'c'\nok 2 d # SKIP \"why\" <now>\n",
        );
        let xml = render(
            "suite \"<&>\"",
            &report,
            &[Failure::new(
                FailureKind::KernelLog(FindingKind::Taint("<&>".into())),
                "bad\u{7}\n& worse",
            )],
            None,
            1.0,
        );
        assert!(!xml.chars().any(|c| c.is_control() && c != '\n'), "{xml}");
        let suites = read(&xml);
        assert_eq!(suites.suites[0].name, "suite \"<&>\"");
        let taint = "kernel_log.kernel_tainted_(<&>)";
        assert_eq!(names(&suites), ["a<b>&'c'", "d", taint]);
        match &case(&suites, "d").status {
            TestStatus::Skipped(s) => assert_eq!(s.message, "\"why\" <now>"),
            other => panic!("{other:?}"),
        }
        match &case(&suites, taint).status {
            TestStatus::Failure(f) => assert_eq!(f.message, "bad"),
            other => panic!("{other:?}"),
        }
        assert!(xml.contains(">bad\n&amp; worse</failure>"), "{xml}");
    }

    #[test]
    fn unnamed_and_empty() {
        let report = ktap::parse("KTAP version 1\n1..1\nnot ok 1\n");
        let suites = read(&render("s", &report, &[], None, f64::NAN));
        assert_eq!(names(&suites), ["#1"]);
        match &case(&suites, "#1").status {
            TestStatus::Failure(f) => assert_eq!(f.message, "not ok 1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(suites.suites[0].time, 0.0);

        let suites = read(&render("s", &ktap::Report::default(), &[], None, 2.0));
        assert_eq!(suites.suites[0].tests, 0);
        assert!(suites.suites[0].cases.is_empty());
    }
}
