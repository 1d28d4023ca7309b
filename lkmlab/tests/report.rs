//! `lkmlab report` as a user runs it: the verdict on saved files, and the
//! exit status docs/reference.md promises (0 only when every test passed and
//! there was at least one, 1 when something failed).

use std::path::Path;
use std::process::Output;

/// A clean guest runner's KTAP.
const GOOD: &str = "KTAP version 1\n1..1\n# running m.a\nok 1 m.a\n# lkmlab-guest: done\n";

fn report(dir: &Path, ktap: &str, console: Option<&str>) -> Output {
    let ktap_file = dir.join("results.ktap");
    std::fs::write(&ktap_file, ktap).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lkmlab"));
    cmd.arg("report").arg(&ktap_file);
    if let Some(text) = console {
        let console_file = dir.join("console.log");
        std::fs::write(&console_file, text).unwrap();
        cmd.arg("--console").arg(&console_file);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_clean_run_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = report(dir.path(), GOOD, Some("[    0.1] Linux version 7.3.4\n"));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("1 passed, 0 failed\n"));
}

/// The message of a panic may start with whitespace of its own; the scanner
/// matches after it (a `\tKernel panic` once passed unnoticed).
#[test]
fn a_tab_indented_panic_in_the_console_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let console = "[    0.1] Linux version 7.3.4\n\
                   [    1.0] \tKernel panic - not syncing: lkmlab: deliberate\n";
    let out = report(dir.path(), GOOD, Some(console));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL kernel_log.kernel_panic"), "{text}");
    assert!(
        text.contains("Kernel panic - not syncing: lkmlab: deliberate"),
        "{text}"
    );
}

/// 0 means every test passed and there was at least one: a run that skipped
/// every test, or ran none, exits 1 and says why.
#[test]
fn nothing_passed_is_a_failure_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let skipped = "KTAP version 1\n1..2\nok 1 a # SKIP no device\nok 2 b # SKIP no device\n";
    let out = report(dir.path(), skipped, None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL ktap.all_skipped"), "{text}");

    let out = report(dir.path(), "KTAP version 1\n1..0\n", None);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL ktap.no_tests\n       no test ran: the plan is 1..0"),
        "{text}"
    );
}

/// Every KTAP conformance fixture (the kernel's own parser test data) through
/// `lkmlab report`: 0 exactly when the parser's verdict is "passed", 1 for
/// any other verdict, 2 for a file without KTAP. (The verdict of each fixture
/// is checked against kunit.py's in protocol/src/ktap/parse.rs.)
#[test]
fn the_conformance_fixtures_exit_as_their_verdict_says() {
    use lkmlab::ktap::{self, Status};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/ktap-conformance");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        seen += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let expected = match ktap::extract(&text).map(|k| ktap::parse(&k).status()) {
            Some(Status::Passed) => 0,
            Some(_) => 1,
            None => 2,
        };
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lkmlab"))
            .arg("report")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{}:\n{}{}",
            path.display(),
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(seen > 20, "only {seen} fixtures in {}", dir.display());
}

/// `--format json` prints JSON on standard output whatever happens: a file
/// without KTAP gets an object that says so (and exit status 2, with the
/// error on standard error as in text).
#[test]
fn json_on_a_file_without_ktap_is_still_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    std::fs::write(&log, "[    0.1] Linux version 7.3.4\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lkmlab"))
        .args(["report", "--format", "json"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {:?}", stdout(&out)));
    assert_eq!(json["passed"], false);
    let error = json["error"].as_str().unwrap();
    assert!(
        error.ends_with("holds no KTAP (no `KTAP version` line)"),
        "{error}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(error));
}

/// The README's promise: `lkmlab report` reads a console log. On lkmlab's
/// own (the boot-time KUnit document, then one a module load) it passes.
#[test]
fn lkmlabs_own_console_log_passes() {
    let log = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/console-logs/clean-check.log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lkmlab"))
        .arg("report")
        .arg(&log)
        .arg("--console")
        .arg(&log)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.ends_with("4 passed, 0 failed\n"), "{text}");
}
