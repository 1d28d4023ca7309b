//! The runner's writer → the host's parser: what one writes, the other
//! reads back case by case, and the markers the host relies on survive.

use lkmlab_protocol::ktap::{self, CaseReport, Outcome, Status, Writer};
use lkmlab_protocol::{finished, from_runner, running_case};

fn case<'a>(
    name: &'a str,
    outcome: Outcome,
    diagnostics: &'a [String],
    subtests: &'a [String],
) -> CaseReport<'a> {
    CaseReport {
        name,
        outcome,
        skip_reason: "",
        diagnostics,
        subtests,
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// A run like the runner's: a passing case, a KUnit case with nested
/// results, a failure with a multi-line message, a skip.
fn write_run() -> String {
    let kunit = lines(
        "KTAP version 1\n\
         # Subtest: scull_buffer\n\
         1..2\n\
         ok 1 write_then_read\n\
         ok 2 capacity_is_kept",
    );
    let printed = lines("insmod hello.ko: ok");
    let failure = lines("cycle 3 of 200: rmmod: Device or resource busy\nrefcnt 1");
    let none: Vec<String> = Vec::new();
    let cases = [
        case("hello.loads", Outcome::Pass, &printed, &none),
        case("scull.kunit", Outcome::Pass, &none, &kunit),
        case("scull.cycles", Outcome::Fail, &failure, &none),
        CaseReport {
            skip_reason: "no debugfs\nin this kernel",
            ..case("scull.debugfs", Outcome::Skip, &none, &none)
        },
    ];
    let mut w = Writer::start(Vec::new(), cases.len()).unwrap();
    for c in &cases {
        w.running(c.name).unwrap();
        w.result(c).unwrap();
    }
    String::from_utf8(w.done().unwrap()).unwrap()
}

/// What the host receives when the guest dies while running `case`.
fn died_in<'a>(text: &'a str, case: &str) -> &'a str {
    let announced = format!("# running {case}\n");
    let at = text.find(&announced).expect("the case was announced");
    &text[..at + announced.len()]
}

#[test]
fn what_the_runner_writes_the_host_reads_back() {
    let text = write_run();
    let report = ktap::parse(&text);
    assert!(report.problems.is_empty(), "{:?}\n{text}", report.problems);
    assert_eq!(report.plan, Some(4));
    let summary: Vec<(u32, &str, Outcome)> = report
        .cases
        .iter()
        .map(|c| (c.number, c.name.as_str(), c.outcome))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "hello.loads", Outcome::Pass),
            (2, "scull.kunit", Outcome::Pass),
            (3, "scull.cycles", Outcome::Fail),
            (4, "scull.debugfs", Outcome::Skip),
        ]
    );
    assert_eq!(
        report.cases[0].diagnostics,
        ["running hello.loads", "insmod hello.ko: ok"]
    );
    let nested: Vec<&str> = report.cases[1]
        .subtests
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(nested, ["write_then_read", "capacity_is_kept"]);
    assert_eq!(
        report.cases[2].diagnostics,
        [
            "running scull.cycles",
            "cycle 3 of 200: rmmod: Device or resource busy",
            "refcnt 1"
        ]
    );
    assert_eq!(
        report.cases[3].directive.as_deref(),
        Some("no debugfs; in this kernel")
    );
    assert_eq!(report.status(), Status::Failed);
    assert!(from_runner(&text));
    assert!(finished(&text));
    assert_eq!(running_case(&text), None);
}

#[test]
fn a_guest_that_dies_in_a_case_is_named_by_the_host() {
    let text = died_in(&write_run(), "scull.cycles").to_string();
    let report = ktap::parse(&text);
    assert_eq!(report.cases.len(), 2);
    assert_eq!(report.status(), Status::Crashed, "{:?}", report.problems);
    assert!(!finished(&text));
    assert_eq!(running_case(&text).as_deref(), Some("scull.cycles"));
}

#[test]
fn a_run_of_passes_is_passed() {
    let none: Vec<String> = Vec::new();
    let mut w = Writer::start(Vec::new(), 2).unwrap();
    for name in ["a.one", "a.two"] {
        w.running(name).unwrap();
        w.result(&case(name, Outcome::Pass, &none, &none)).unwrap();
    }
    let text = String::from_utf8(w.done().unwrap()).unwrap();
    assert_eq!(ktap::parse(&text).status(), Status::Passed);
    assert!(
        text.ends_with("ok 2 a.two\n# lkmlab-guest: done\n"),
        "{text}"
    );
}

#[test]
fn kernel_ktap_without_the_runners_markers_is_not_the_runners() {
    let text = "KTAP version 1\n1..1\nok 1 example\n";
    assert!(!from_runner(text));
    assert!(!finished(text));
    assert_eq!(running_case(text), None);
}

/// The planned cases and the watchdog's mark, as the runner writes them,
/// are what the host reads back: the cases that did not run and the one
/// that hung.
#[test]
fn the_plan_and_a_hung_case_survive_the_round_trip() {
    let mut out = Vec::new();
    {
        let mut w = Writer::start(&mut out, 3).unwrap();
        w.planned(&["m.a", "m.b", "guest_tests.c"]).unwrap();
        w.running("m.a").unwrap();
        w.result(&case("m.a", Outcome::Pass, &[], &[])).unwrap();
        w.running("m.b").unwrap();
        w.hung("m.b", 97).unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        lkmlab_protocol::planned_cases(&text),
        ["m.a", "m.b", "guest_tests.c"]
    );
    assert_eq!(running_case(&text).as_deref(), Some("m.b"));
    assert_eq!(
        lkmlab_protocol::hung_case(&text),
        Some(("m.b".to_string(), 97))
    );
    assert!(!finished(&text));
}
