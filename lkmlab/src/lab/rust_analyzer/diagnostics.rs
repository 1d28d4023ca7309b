//! `lkmlab rust-analyzer --check`: rust-analyzer's own diagnostics on the
//! module's crates, loaded through the rust-project.json lkmlab wrote, so an
//! editor's view of the module is tested rather than assumed.
//!
//! `rust-analyzer diagnostics PATH` analyses the workspace members of the
//! project (lkmlab leaves only the module's crates as members) and prints
//! one line per finding: `at crate C, file F: SEVERITY CODE from LineCol {
//! line: L, col: C } to LineCol { … }: MESSAGE` (lines and columns from 0).
//! lkmlab reads those lines rather than the exit status, which only says
//! whether some member had an error, and judges the module's files.

use crate::util::{home_local_bin, which_all};
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The line rust-analyzer prints when it has gone through every crate.
const SCAN_COMPLETE: &str = "diagnostic scan complete";

/// One diagnostic of rust-analyzer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    /// `Error`, `Warning` or `WeakWarning`.
    pub severity: String,
    /// Such as `RustcHardError("E0432")` or `Ra("unresolved-import", Error)`.
    pub code: String,
    /// From 1, as editors count.
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl Finding {
    /// Errors and warnings count; weak warnings (inactive `#[cfg]` code,
    /// style hints) do not.
    pub fn counts(&self) -> bool {
        matches!(self.severity.as_str(), "Error" | "Warning")
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} {}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.severity,
            self.code,
            self.message
        )
    }
}

/// The number after `key` (`line: 3` → 3).
fn number_after(text: &str, key: &str) -> Option<u32> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Parse one finding. rust-analyzer's progress bar shares stdout (redrawn
/// with carriage returns), so the finding may follow progress text.
fn parse_finding(segment: &str) -> Option<Finding> {
    let at = segment.find("at crate ")?;
    let rest = &segment[at..];
    let file_start = rest.find(", file ")? + ", file ".len();
    let rest = &rest[file_start..];
    let from = rest.find(" from LineCol { ")?;
    let head = &rest[..from];
    // `FILE: SEVERITY CODE`; the file may hold ": ", the code holds spaces.
    let (file, kind) = head.split_once(": ")?;
    let (severity, code) = kind.split_once(' ')?;
    let tail = &rest[from..];
    let line = number_after(tail, "line: ")?;
    let col = number_after(tail, "col: ")?;
    let to_end = tail.find(" to LineCol { ")?;
    let message_start = tail[to_end..].find("}: ")? + to_end + "}: ".len();
    Some(Finding {
        file: PathBuf::from(file),
        severity: severity.to_string(),
        code: code.to_string(),
        line: line + 1,
        col: col + 1,
        message: tail[message_start..].trim_end().to_string(),
    })
}

/// Every finding in the output of `rust-analyzer diagnostics`.
pub fn parse(output: &str) -> Vec<Finding> {
    output
        .split(['\r', '\n'])
        .filter_map(parse_finding)
        .collect()
}

/// How to get a rust-analyzer, for an error's or doctor's fix line.
pub fn install_hint(pinned: &str) -> String {
    format!(
        "`scripts/setup-debian.sh --with-rust-analyzer` (crates.io ra_ap_rust-analyzer \
         {pinned}, the version lkmlab.toml pins; several minutes to compile) or `rustup \
         component add rust-analyzer`, then put it on PATH or pass it with --rust-analyzer \
         FILE (LKMLAB_RUST_ANALYZER)"
    )
}

/// The rust-analyzer to run: `explicit` (flag or environment), else the
/// first that answers `--version` on PATH, then in `~/.local/bin` (where
/// `scripts/setup-debian.sh --with-rust-analyzer` puts it). rustup puts a
/// proxy named rust-analyzer on PATH even where the component is not
/// installed; it fails, and the next one is tried. The error says why none
/// was taken; [`find`] adds the fix.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    let candidates = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => {
            let mut all = which_all("rust-analyzer");
            let setup = home_local_bin()
                .map(|d| d.join("rust-analyzer"))
                .filter(|p| p.is_file() && !all.contains(p));
            all.extend(setup);
            all
        }
    };
    let mut first_failure = None;
    for program in candidates {
        match answers_version(&program) {
            Ok(()) => return Ok(program),
            Err(e) => {
                first_failure.get_or_insert(e);
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| anyhow!("no rust-analyzer on PATH or in ~/.local/bin")))
}

/// [`locate`], with the fix on a line of its own when none runs.
pub fn find(explicit: Option<&Path>, pinned: &str) -> Result<PathBuf> {
    locate(explicit).map_err(|e| anyhow!("{e}\ninstall one: {}", install_hint(pinned)))
}

/// `program --version` must succeed.
fn answers_version(program: &Path) -> Result<()> {
    let out = crate::process::captured(
        Command::new(program).arg("--version"),
        &program.display().to_string(),
    )?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr.lines().next().map(str::trim).unwrap_or_default();
        bail!(
            "`{} --version` failed ({}){}",
            program.display(),
            out.status,
            if why.is_empty() {
                " and said nothing".to_string()
            } else {
                format!(": {why}")
            }
        );
    }
    Ok(())
}

/// Run `rust-analyzer diagnostics` on `project` (a rust-project.json) and
/// return the findings in files under `module_dir`.
pub fn diagnose(program: &Path, project: &Path, module_dir: &Path) -> Result<Vec<Finding>> {
    let out = crate::process::captured(
        Command::new(program).arg("diagnostics").arg(project),
        &program.display().to_string(),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.contains(SCAN_COMPLETE) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{} diagnostics {}` stopped before its scan was complete ({}):\n{}",
            program.display(),
            project.display(),
            out.status,
            stderr.trim_end()
        );
    }
    Ok(parse(&stdout)
        .into_iter()
        .filter(|f| f.file.starts_with(module_dir))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_parsed_out_of_progress_output() {
        let out = "1/3 33% processing /m/a.rs\r\x1b[K  at crate a, file /m/a.rs: Error \
                   RustcHardError(\"E0432\") from LineCol { line: 2, col: 4 } to LineCol { \
                   line: 2, col: 9 }: unresolved import `kernel::nope`\n\
                   at crate kernel, file /k/rust/kernel/lib.rs: WeakWarning Ra(\"inactive-code\", \
                   WeakWarning) from LineCol { line: 0, col: 0 } to LineCol { line: 1, col: 0 }: \
                   code is inactive: x is disabled\n\ndiagnostic scan complete\n";
        let found = parse(out);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].to_string(),
            "/m/a.rs:3:5: Error RustcHardError(\"E0432\"): unresolved import `kernel::nope`"
        );
        assert!(found[0].counts());
        assert_eq!(found[1].code, "Ra(\"inactive-code\", WeakWarning)");
        assert!(!found[1].counts());
    }

    #[test]
    fn progress_alone_is_no_finding() {
        assert!(parse("2/3 66% processing /m/b.rs\rdiagnostic scan complete\n").is_empty());
    }

    #[test]
    fn a_rust_analyzer_that_cannot_run_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("rust-analyzer");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho \"error: Unknown binary 'rust-analyzer' in official toolchain\" >&2\nexit 1\n",
        )
        .unwrap();
        let mut perms = std::fs::metadata(&fake).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&fake, perms).unwrap();
        let err = find(Some(&fake), "0.0.340").unwrap_err().to_string();
        assert!(err.contains("Unknown binary"), "{err}");
        assert!(err.contains("--with-rust-analyzer"), "{err}");
        assert!(err.contains("0.0.340"), "{err}");
    }
}
