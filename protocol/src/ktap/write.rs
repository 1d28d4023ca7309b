//! The writer: KTAP as the guest runner reports it.
//!
//! ```text
//! KTAP version 1
//! 1..2
//! # planned: hello.loads scull.kunit <- every case, in order (crate::PLANNED)
//! # running hello.loads             <- before each case (crate::RUNNING)
//! # what the case printed            <- its diagnostics
//!     KTAP version 1                 <- nested results (a KUnit suite's), one
//!     1..1                              level deeper
//!     ok 1 a_kunit_case
//! ok 1 hello.loads
//! # running scull.kunit
//! ok 2 scull.kunit # SKIP no KUnit in this kernel
//! # lkmlab-guest: done               <- after the last result (crate::DONE)
//! ```

use super::Outcome;
use std::io::{self, Write};

/// One case's result, as the runner reports it.
#[derive(Debug, Clone, Copy)]
pub struct CaseReport<'a> {
    pub name: &'a str,
    /// [`Outcome::Pass`], [`Outcome::Fail`] or [`Outcome::Skip`]; the runner
    /// writes no `TODO`.
    pub outcome: Outcome,
    /// The reason of a skip (`# SKIP reason`).
    pub skip_reason: &'a str,
    /// Lines the case printed: `# ` lines before its result.
    pub diagnostics: &'a [String],
    /// The case's own nested KTAP (a KUnit suite's results), one line each,
    /// as the producer wrote them: written one level deeper.
    pub subtests: &'a [String],
}

/// Writes the runner's KTAP: the header, then per case [`Writer::running`]
/// and [`Writer::result`], then [`Writer::done`]. Results are numbered in
/// the order they are written.
pub struct Writer<W: Write> {
    out: W,
    number: usize,
}

/// One level of nesting, as KUnit indents.
const INDENT: &str = "    ";

impl<W: Write> Writer<W> {
    /// Writes the version line and the plan of `planned` results.
    pub fn start(mut out: W, planned: usize) -> io::Result<Self> {
        writeln!(out, "KTAP version 1")?;
        writeln!(out, "1..{planned}")?;
        Ok(Writer { out, number: 0 })
    }

    /// Names every case the runner is about to run, in order.
    pub fn planned<S: AsRef<str>>(&mut self, names: &[S]) -> io::Result<()> {
        let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        self.diagnostic(&format!("{}{}", crate::PLANNED, names.join(" ")))
    }

    /// Says that the watchdog found the case `name` still running after
    /// `secs` seconds (and dumped the blocked tasks into the kernel log).
    pub fn hung(&mut self, name: &str, secs: u64) -> io::Result<()> {
        self.diagnostic(&format!("{}{name} {secs}", crate::HUNG))
    }

    /// Announces the case about to run, so that the host can name it if the
    /// guest dies before its result.
    pub fn running(&mut self, name: &str) -> io::Result<()> {
        self.diagnostic(&format!("{}{name}", crate::RUNNING))
    }

    /// A `# ` line; a multi-line text becomes one line each.
    pub fn diagnostic(&mut self, text: &str) -> io::Result<()> {
        for line in text.lines() {
            writeln!(self.out, "# {line}")?;
        }
        Ok(())
    }

    /// The case's diagnostics, its nested results, then its result line.
    pub fn result(&mut self, case: &CaseReport) -> io::Result<()> {
        for diag in case.diagnostics {
            self.diagnostic(diag)?;
        }
        for sub in case.subtests {
            writeln!(self.out, "{INDENT}{sub}")?;
        }
        self.number += 1;
        let (status, directive) = match case.outcome {
            Outcome::Pass => ("ok", String::new()),
            Outcome::Fail => ("not ok", String::new()),
            Outcome::Skip | Outcome::Todo => {
                let keyword = if case.outcome == Outcome::Skip {
                    "SKIP"
                } else {
                    "TODO"
                };
                // A directive is the rest of one line.
                let reason = case.skip_reason.lines().collect::<Vec<_>>().join("; ");
                (
                    "ok",
                    format!(" # {keyword} {reason}").trim_end().to_string(),
                )
            }
        };
        writeln!(
            self.out,
            "{status} {} {}{directive}",
            self.number, case.name
        )
    }

    /// The closing [`crate::DONE`] line; the channel is handed back.
    pub fn done(mut self) -> io::Result<W> {
        self.diagnostic(crate::DONE)?;
        self.out.flush()?;
        Ok(self.out)
    }
}
