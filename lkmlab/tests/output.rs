//! What lkmlab says as a user sees it: `-q` silences the status lines and
//! nothing else (results on standard output, errors), `--color` decides
//! whether the report is coloured, and a reader that closes the pipe early
//! ends lkmlab quietly.

use std::path::Path;
use std::process::{Command, Output};

fn lkmlab(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lkmlab"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn quiet_hides_status_lines_but_not_results_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let loud = lkmlab(&["init", "loud"], dir.path());
    assert!(loud.status.success(), "{}", text(&loud.stderr));
    assert!(
        text(&loud.stderr).starts_with("lkmlab: created module loud with "),
        "{}",
        text(&loud.stderr)
    );

    let quiet = lkmlab(&["-q", "init", "quiet"], dir.path());
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert_eq!(text(&quiet.stderr), "", "-q prints no status line");
    // The result (the project's path) is still printed, and the project made.
    assert!(text(&quiet.stdout).trim_end().ends_with("quiet"));
    assert!(dir.path().join("quiet/lkmlab.toml").is_file());

    // An error is printed whatever the verbosity.
    let refused = lkmlab(&["-q", "init", "quiet"], dir.path());
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).starts_with("lkmlab: error: "),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn quiet_and_verbose_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let out = lkmlab(&["-q", "-v", "init", "x"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!dir.path().join("x").exists());
}

#[test]
fn color_paints_the_report_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let ktap = dir.path().join("results.ktap");
    std::fs::write(
        &ktap,
        "KTAP version 1\n1..1\n# running m.a\nok 1 m.a\n# lkmlab-guest: done\n",
    )
    .unwrap();
    let ktap = ktap.to_str().unwrap();
    let report = |color: Option<&str>| {
        let mut args = vec!["report", ktap];
        if let Some(c) = color {
            args.extend(["--color", c]);
        }
        let out = lkmlab(&args, dir.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let painted = report(Some("always"));
    assert!(
        painted.starts_with("\u{1b}[32mok  \u{1b}[0m m.a\n"),
        "{painted:?}"
    );
    let plain = report(Some("never"));
    assert!(
        !plain.contains('\u{1b}') && plain.contains("ok   m.a"),
        "{plain:?}"
    );
    // auto: standard output is a pipe here, so no colour.
    assert_eq!(report(None), plain);
}

/// `-v` shows the commands lkmlab runs, each as it runs it (all of them go
/// through one place, `process.rs`); without it, none.
#[test]
fn verbose_shows_every_command_it_runs() {
    let cache = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = |verbose: bool| -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lkmlab"));
        if verbose {
            cmd.arg("-v");
        }
        let out = cmd
            .args(["doctor"])
            .current_dir(&repo)
            .env("LKMLAB_CACHE", cache.path())
            .output()
            .unwrap();
        text(&out.stderr)
    };
    let loud = run(true);
    let running: Vec<&str> = loud
        .lines()
        .filter(|l| l.starts_with("lkmlab: running "))
        .collect();
    // doctor asks rustc for its version and sysroot, whatever else is here.
    for expected in [
        r#"lkmlab: running "rustc" "--version""#,
        r#"lkmlab: running "rustc" "--print" "sysroot""#,
    ] {
        assert!(running.contains(&expected), "{expected} not in:\n{loud}");
    }
    assert!(!run(false).contains("lkmlab: running "));
}

/// A pipe whose reading end is already closed: every write to the other
/// end fails with EPIPE, as when `| head -2` has read what it wanted.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// `lkmlab … | head -2`: a reader that leaves early ends lkmlab quietly with
/// 141, as `SIGPIPE` ends a C program, instead of a panic (the release
/// build aborted: 134).
#[test]
fn a_closed_standard_output_ends_lkmlab_quietly_with_141() {
    let dir = tempfile::tempdir().unwrap();
    let ktap = dir.path().join("results.ktap");
    std::fs::write(&ktap, "KTAP version 1\n1..1\nok 1 m.a\n").unwrap();
    for args in [
        &["report", ktap.to_str().unwrap()][..],
        &["report", "--format", "json", ktap.to_str().unwrap()],
        &["show", "kconfig"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lkmlab"))
            .args(args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .stdout(closed_pipe())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}: {out:?}");
        assert_eq!(text(&out.stderr), "", "{args:?}: nothing to say about it");
    }
}

/// Standard error is commentary: when it is closed, lkmlab says nothing and
/// does its work all the same.
#[test]
fn a_closed_standard_error_does_not_stop_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lkmlab"))
        .args(["-v", "init", "quiet"])
        .current_dir(dir.path())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).trim_end().ends_with("quiet"));
    assert!(dir.path().join("quiet/lkmlab.toml").is_file());
}
