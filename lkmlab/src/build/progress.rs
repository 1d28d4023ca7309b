//! Long builds: full output into a log file, a progress line on the terminal,
//! and on failure the error lines with the log's path.

use crate::process::spawn_error;
use crate::util::human_duration;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often a progress line is printed when stderr is not a terminal.
const PLAIN_INTERVAL: Duration = Duration::from_secs(30);

/// Lines of a build log that carry the reason for a failure. A rustc or gcc
/// diagnostic (`error…` up to the next blank line) is kept whole, with the
/// source lines it points at.
pub fn error_lines(log: &str) -> Vec<&str> {
    diagnostics(
        log,
        |line| line.starts_with("error") || line.contains(": error:"),
        |line| {
            line.contains("Error ")
                || line.contains("ERROR:")
                || line.contains("***")
                || line.contains("undefined reference")
                || line.contains("No such file or directory")
        },
    )
}

/// Lines of a successful build's log that warn: rustc and gcc warnings (kept
/// whole, like errors) and modpost's `WARNING:` lines (with
/// `KBUILD_MODPOST_WARN=1`, an undefined symbol is one of these).
pub fn warning_lines(log: &str) -> Vec<&str> {
    diagnostics(
        log,
        |line| line.starts_with("warning") || line.contains(": warning:"),
        |line| line.starts_with("WARNING:"),
    )
}

/// A Kbuild progress line such as `  RUSTC [M] foo.o` or `  MODPOST
/// Module.symvers`: it ends a diagnostic that no blank line ended (gcc's).
fn is_kbuild_step(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("  ") else {
        return false;
    };
    let word: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    word.len() >= 2
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && rest.len() > word.len()
}

/// Diagnostics that begin at a line where `starts` holds and run to the next
/// blank line or Kbuild step, plus single lines where `single` holds.
fn diagnostics(
    log: &str,
    starts: impl Fn(&str) -> bool,
    single: impl Fn(&str) -> bool,
) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_diagnostic = false;
    for line in log.lines() {
        if starts(line) {
            in_diagnostic = true;
        } else if in_diagnostic && (line.trim().is_empty() || is_kbuild_step(line)) {
            in_diagnostic = false;
            if line.trim().is_empty() {
                continue;
            }
        }
        if in_diagnostic || single(line) {
            out.push(line);
        }
    }
    out
}

/// What the progress line knows of a running build: its steps (Kbuild's
/// `  CC foo.o`, cargo's `   Compiling foo v1.0`) and the last line of output.
#[derive(Default)]
struct Progress {
    steps: usize,
    last_step: String,
    last_line: String,
}

/// Longest excerpt of a build's output shown on the progress line.
const PROGRESS_EXCERPT: usize = 60;

impl Progress {
    fn observe(&mut self, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        if is_step(trimmed) {
            self.steps += 1;
            self.last_step = trimmed.to_string();
        }
        self.last_line = trimmed.to_string();
    }

    /// `WHAT: 1m02s elapsed, N steps, last: STEP`; before the first step, the
    /// last line of output instead, or that there has been none.
    fn line(&self, what: &str, elapsed: Duration) -> String {
        let excerpt = |s: &str| s.chars().take(PROGRESS_EXCERPT).collect::<String>();
        let elapsed = human_duration(elapsed);
        if self.steps > 0 {
            let plural = if self.steps == 1 { "" } else { "s" };
            format!(
                "  {what}: {elapsed} elapsed, {} step{plural}, last: {}",
                self.steps,
                excerpt(&self.last_step)
            )
        } else if !self.last_line.is_empty() {
            format!(
                "  {what}: {elapsed} elapsed, last output: {}",
                excerpt(&self.last_line)
            )
        } else {
            format!("  {what}: {elapsed} elapsed, no output yet")
        }
    }
}

/// A line that marks a step of the build: Kbuild's (`CC`, `RUSTC [M]`, `LD`:
/// an upper-case word; `make[1]: …` is not one) or cargo's (`Compiling`,
/// `Checking`, …).
fn is_step(trimmed: &str) -> bool {
    const CARGO: &[&str] = &[
        "Compiling ",
        "Checking ",
        "Building ",
        "Downloading ",
        "Downloaded ",
        "Updating ",
        "Locking ",
        "Adding ",
        "Finished ",
    ];
    let kbuild = trimmed.len() > 2
        && trimmed
            .chars()
            .take_while(|c| c.is_ascii_uppercase())
            .count()
            >= 2
        && !trimmed.starts_with("make");
    kbuild || CARGO.iter().any(|c| trimmed.starts_with(c))
}

/// The most lines of errors a failed build quotes: the first ones, as the
/// first error is usually the cause and the later ones its consequences.
const QUOTED_ERROR_LINES: usize = 60;

/// Run `cmd` with its output going to `log`, showing progress; fail with the
/// first error lines and the log's path.
pub fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    run_logged_explained(cmd, log, what, |_| Vec::new())
}

/// [`run_logged`], with `explain` adding paragraphs to the failure's message
/// from the log's text (what the errors mean for the user, what to do).
pub fn run_logged_explained(
    cmd: &mut Command,
    log: &Path,
    what: &str,
    explain: impl FnOnce(&str) -> Vec<String>,
) -> Result<()> {
    let started = Instant::now();
    let mut file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    crate::detail!("{what}: {cmd:?} (log: {})", log.display());
    // One pipe for both streams keeps the log in the order things happened.
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    let writer2 = writer.try_clone()?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .map_err(|e| spawn_error(&program, e))?;
    // Drop the parent's copies of the write ends held by `cmd`.
    drop(std::mem::replace(cmd, Command::new(&program)));

    let (tx, rx) = mpsc::channel::<String>();
    let pump = std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let tty = std::io::stderr().is_terminal();
    let mut progress = Progress::default();
    let mut last_print = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                writeln!(file, "{line}")?;
                progress.observe(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let interval = if tty {
            Duration::from_secs(1)
        } else {
            PLAIN_INTERVAL
        };
        if last_print.elapsed() >= interval && crate::output::shows_status() {
            last_print = Instant::now();
            let line = progress.line(what, started.elapsed());
            if tty {
                crate::output::to_stderr(format_args!("\r\x1b[2K{line}"));
            } else {
                crate::output::to_stderr(format_args!("{line}\n"));
            }
        }
    }
    let _ = pump.join();
    let status = child.wait()?;
    if tty {
        crate::output::to_stderr(format_args!("\r\x1b[2K"));
    }
    file.flush()?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let head = format!(
        "{what} failed ({status}) after {}",
        human_duration(started.elapsed())
    );
    let mut message = crate::process::saying(&head, &quoted_lines(&text).join("\n"), "\n");
    for paragraph in explain(&text) {
        message.push('\n');
        message.push_str(&paragraph);
    }
    bail!("{message}\nFull log: {}", log.display())
}

/// What a failed build's message quotes of its log: the first
/// [`QUOTED_ERROR_LINES`] error lines (with a count of those left out), or,
/// when no line looks like an error, the last 30 lines.
fn quoted_lines(text: &str) -> Vec<String> {
    let errors = error_lines(text);
    if errors.is_empty() {
        let all: Vec<&str> = text.lines().collect();
        return all[all.len().saturating_sub(30)..]
            .iter()
            .map(|l| l.to_string())
            .collect();
    }
    let mut shown: Vec<String> = (errors.iter().take(QUOTED_ERROR_LINES))
        .map(|l| l.to_string())
        .collect();
    if errors.len() > QUOTED_ERROR_LINES {
        shown.push(format!(
            "… {} more lines of errors in the log",
            errors.len() - QUOTED_ERROR_LINES
        ));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_reports_its_error_lines_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo '  CC foo.o'; echo 'foo.c:1: error: boom' >&2; exit 3",
        ]);
        let err = run_logged(&mut cmd, &log, "test build")
            .unwrap_err()
            .to_string();
        assert!(err.contains("foo.c:1: error: boom"), "{err}");
        assert!(err.contains(&log.display().to_string()), "{err}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("CC foo.o") && text.contains("error: boom"));
    }

    /// A module with many errors: the first is usually the cause (a missing
    /// item), the rest its consequences, so the first ones are quoted.
    #[test]
    fn a_failed_build_quotes_its_first_errors() {
        let mut log = String::from("  RUSTC [M] m.o\n");
        for n in 1..=30 {
            log.push_str(&format!(
                "error[E0425]: cannot find value `v{n}` in this scope\n --> m.rs:{n}:5\n  |\n\n"
            ));
        }
        log.push_str("make[2]: *** [m.o] Error 1\n");
        let quoted = quoted_lines(&log);
        assert_eq!(quoted.len(), QUOTED_ERROR_LINES + 1, "{quoted:#?}");
        assert_eq!(
            quoted[0],
            "error[E0425]: cannot find value `v1` in this scope"
        );
        assert!(!quoted.iter().any(|l| l.contains("`v30`")), "{quoted:#?}");
        assert_eq!(
            quoted.last().unwrap(),
            "… 31 more lines of errors in the log"
        );
        // Without error lines, the end of the log is the best guess.
        let plain: String = (1..=40).map(|n| format!("line {n}\n")).collect();
        let quoted = quoted_lines(&plain);
        assert_eq!((quoted[0].as_str(), quoted.len()), ("line 11", 30));
    }

    #[test]
    fn a_silent_failure_says_so_instead_of_ending_in_a_colon() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 2"]);
        let err = run_logged_explained(&mut cmd, &log, "test build", |_| {
            vec!["what to do".to_string()]
        })
        .unwrap_err()
        .to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with("test build failed (exit status: 2) after ")
                && lines[0].ends_with(" and printed nothing"),
            "{err}"
        );
        assert_eq!(lines[1], "what to do", "{err}");
    }

    #[test]
    fn rustc_diagnostics_are_kept_whole() {
        let log = "  RUSTC [M] m.o\nerror[E0308]: mismatched types\n --> m.rs:3:5\n  |\n3 |     x\n\nnoise\nmake: *** [m.o] Error 1\n";
        let lines = error_lines(log);
        assert_eq!(
            lines,
            vec![
                "error[E0308]: mismatched types",
                " --> m.rs:3:5",
                "  |",
                "3 |     x",
                "make: *** [m.o] Error 1"
            ]
        );
    }

    #[test]
    fn warnings_of_rustc_gcc_and_modpost_are_found_and_nothing_else() {
        let log = "  RUSTC [M] m.o\nwarning: unused variable: `x`\n --> m.rs:3:9\n  |\n\n  \
                   CC [M] c.o\nc.c:1:5: warning: unused [-Wunused]\n    1 | int x;\n  \
                   LD [M] m.ko\n  MODPOST Module.symvers\nWARNING: modpost: m.ko: symbol \
                   'f' undefined!\n";
        assert_eq!(
            warning_lines(log),
            vec![
                "warning: unused variable: `x`",
                " --> m.rs:3:9",
                "  |",
                "c.c:1:5: warning: unused [-Wunused]",
                "    1 | int x;",
                "WARNING: modpost: m.ko: symbol 'f' undefined!",
            ]
        );
        assert!(warning_lines("  RUSTC [M] m.o\n  LD [M] m.ko\n").is_empty());
    }

    #[test]
    fn the_progress_line_never_ends_in_nothing() {
        let mut p = Progress::default();
        let at = Duration::from_millis(30_500);
        assert_eq!(
            p.line("guest runner build", at),
            "  guest runner build: 30.5s elapsed, no output yet"
        );
        p.observe("warning: unused manifest key: package.foo");
        assert_eq!(
            p.line("guest runner build", at),
            "  guest runner build: 30.5s elapsed, last output: warning: unused manifest key: package.foo"
        );
        p.observe("   Compiling libc v0.2.170");
        p.observe("");
        assert_eq!(
            p.line("guest runner build", at),
            "  guest runner build: 30.5s elapsed, 1 step, last: Compiling libc v0.2.170"
        );
        p.observe("  RUSTC [M] m.o");
        p.observe("make[1]: Leaving directory '/x'");
        assert_eq!(
            p.line("kernel build", at),
            "  kernel build: 30.5s elapsed, 2 steps, last: RUSTC [M] m.o"
        );
    }

    #[test]
    fn a_succeeding_command_keeps_its_output_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ok.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hello"]);
        run_logged(&mut cmd, &log, "ok").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello\n");
    }
}
