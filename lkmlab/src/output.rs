//! What lkmlab says, and how much: the one owner of the `lkmlab:` prefix,
//! of `-q`/`-v` and of colour.
//!
//! Results (a test report, `show`'s JSON, the `.ko` paths of `module`) go to
//! standard output; everything lkmlab says about what it is doing goes to
//! standard error, as one of:
//! - [`status!`]: what it is doing (`lkmlab: building …`); not with `-q`;
//! - [`notice!`]: what the user must know even with `-q` (running under TCG,
//!   waiting for another lkmlab);
//! - [`detail!`]: the commands behind a step; only with `-v`;
//! - [`error`]: a failure, with its causes (always).
//!
//! Results are written with [`out!`] and [`outln!`], never `print!`: when
//! the reader of standard output goes away (`lkmlab show kconfig | head -2`)
//! they return [`StdoutClosed`], which ends the command through its usual
//! error path (children killed, temporary files removed) and lkmlab with
//! status 141, as a program killed by `SIGPIPE` ends; `println!` would panic
//! instead (Rust ignores `SIGPIPE`, so the write fails with `EPIPE`), and the
//! release build aborts on a panic. What lkmlab says on standard error is
//! commentary: a write there that fails is dropped, and the work goes on.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// How much lkmlab says on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: notices, warnings and errors only.
    Quiet = 0,
    /// Status lines too.
    Normal = 1,
    /// `-v`: and the commands behind them.
    Verbose = 2,
}

/// When the test report is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// When standard output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    Always,
    Never,
}

static LEVEL: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);
static COLOR: AtomicBool = AtomicBool::new(false);

/// Set once, from the command line.
pub fn init(verbosity: Verbosity, color: ColorChoice) {
    LEVEL.store(verbosity as u8, Ordering::Relaxed);
    let color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    COLOR.store(color, Ordering::Relaxed);
}

fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// Whether the report on standard output is coloured.
pub fn color() -> bool {
    COLOR.load(Ordering::Relaxed)
}

/// Whether status lines are shown (not with `-q`).
pub fn shows_status() -> bool {
    level() >= Verbosity::Normal as u8
}

#[doc(hidden)]
pub fn write(min: Verbosity, args: fmt::Arguments) {
    if level() >= min as u8 {
        to_stderr(format_args!("lkmlab: {args}\n"));
    }
}

/// Text on standard error as it is (no prefix, no newline added); a write
/// that fails is dropped (see the module's documentation).
pub fn to_stderr(args: fmt::Arguments) {
    // The unit tests' harness captures each test's output from `eprint!`
    // alone (and never closes standard error).
    #[cfg(test)]
    #[allow(clippy::print_stderr)]
    {
        eprint!("{args}");
    }
    #[cfg(not(test))]
    {
        let _ = std::io::stderr().lock().write_fmt(args);
    }
}

/// Standard output was closed before lkmlab finished writing its results:
/// its reader stopped reading (`| head`). Not a failure to report, since
/// nobody is left to read the rest; lkmlab exits with 141 (see
/// [`closed_stdout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// Results on standard output, written and flushed at once: the error
/// [`StdoutClosed`] when its reader has gone, else any other write error.
/// Used through [`out!`] and [`outln!`].
#[doc(hidden)]
pub fn write_stdout(args: fmt::Arguments) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing the results to standard output")),
    }
}

/// Whether `e` is (or was caused by) [`StdoutClosed`].
pub fn closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.is::<StdoutClosed>())
}

/// The exit status of lkmlab when its standard output was closed early:
/// 128 + `SIGPIPE`, what a shell reports for a program the signal killed.
pub const CLOSED_STDOUT_STATUS: u8 = 141;

/// Results on standard output, as `print!`; an `anyhow::Result` to pass on
/// with `?` (see [`StdoutClosed`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// Results on standard output, as `println!`; an `anyhow::Result` to pass
/// on with `?` (see [`StdoutClosed`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `lkmlab: …` on standard error, unless `-q`.
#[macro_export]
macro_rules! status {
    ($($arg:tt)*) => {
        $crate::output::write($crate::output::Verbosity::Normal, format_args!($($arg)*))
    };
}

/// `lkmlab: …` on standard error, even with `-q`.
#[macro_export]
macro_rules! notice {
    ($($arg:tt)*) => {
        $crate::output::write($crate::output::Verbosity::Quiet, format_args!($($arg)*))
    };
}

/// `lkmlab: …` on standard error, only with `-v`.
#[macro_export]
macro_rules! detail {
    ($($arg:tt)*) => {
        $crate::output::write($crate::output::Verbosity::Verbose, format_args!($($arg)*))
    };
}

/// `lkmlab: error: …`, then a `caused by:` line per cause.
pub fn error(e: &anyhow::Error) {
    to_stderr(format_args!("lkmlab: error: {e}\n"));
    for cause in e.chain().skip(1) {
        to_stderr(format_args!("  caused by: {cause}\n"));
    }
}

/// A result tag of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Ok,
    Fail,
    Skip,
    Todo,
}

impl Tag {
    /// The tag a case's outcome is shown with.
    pub fn of(outcome: crate::ktap::Outcome) -> Tag {
        use crate::ktap::Outcome;
        match outcome {
            Outcome::Pass => Tag::Ok,
            Outcome::Fail => Tag::Fail,
            Outcome::Skip => Tag::Skip,
            Outcome::Todo => Tag::Todo,
        }
    }

    /// The word the report prints.
    pub fn word(self) -> &'static str {
        match self {
            Tag::Ok => "ok",
            Tag::Fail => "FAIL",
            Tag::Skip => "skip",
            Tag::Todo => "todo",
        }
    }
}

/// `text` in the colour of a result tag (`ok` green, `FAIL` red, `skip` and
/// `todo` yellow) when the report is coloured.
pub fn paint(tag: Tag, text: &str) -> String {
    if !color() {
        return text.to_string();
    }
    let code = match tag {
        Tag::Ok => "32",
        Tag::Fail => "31;1",
        Tag::Skip | Tag::Todo => "33",
    };
    format!("\u{1b}[{code}m{text}\u{1b}[0m")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_closed_stdout_is_recognised_under_any_context() {
        let e = Err::<(), _>(anyhow::Error::from(StdoutClosed))
            .context("printing the verdict")
            .context("lkmlab test")
            .unwrap_err();
        assert!(closed_stdout(&e));
        let other = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing to a child");
        assert!(!closed_stdout(&other), "only standard output's own");
    }
}
