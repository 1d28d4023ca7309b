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

use std::fmt;
use std::io::IsTerminal;
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
        eprintln!("lkmlab: {args}");
    }
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
    eprintln!("lkmlab: error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
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
