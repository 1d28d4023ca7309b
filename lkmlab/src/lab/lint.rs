//! `lkmlab lint`: the module's Rust code checked with the kernel's own
//! settings and tooling.
//!
//! - rustfmt: the kernel's `rustfmt`/`rustfmtcheck` targets walk the kernel
//!   tree only (they ignore `M=`), so rustfmt runs directly, with the kernel
//!   source's `.rustfmt.toml`, as those targets do.
//! - clippy: Kbuild's `CLIPPY=1` compiles with clippy-driver, the kernel's
//!   lint set and `.clippy.toml`; `KRUSTFLAGS=-Dwarnings` (appended to
//!   KBUILD_RUSTFLAGS, external modules included) turns every warning into
//!   an error. The build goes to its own directory, wiped first: Kbuild
//!   would otherwise find the objects up to date and lint nothing.

use crate::build::kernel::KernelTree;
use crate::build::module_dir;
use crate::build::progress::{run_logged, warning_lines};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The edition the kernel's `.rustfmt.toml` sets (passed too, as the kernel
/// build passes `--edition` to rustc).
const EDITION: &str = "2021";

pub struct Lint<'a> {
    pub tree: &'a KernelTree,
    /// The module's source directory.
    pub src: &'a Path,
    /// A build directory of its own (emptied first).
    pub out: &'a Path,
    pub env: &'a [(String, OsString)],
    /// Reformat instead of checking the format.
    pub fix: bool,
}

/// The kernel source tree of a build tree (Kbuild's `source` link).
pub fn kernel_source(tree: &KernelTree) -> Result<PathBuf> {
    let link = tree.dir.join("source");
    link.canonicalize().with_context(|| {
        format!(
            "{} has no `source` link to the kernel source; rebuild it with `lkmlab kernel`",
            tree.dir.display()
        )
    })
}

/// The module's `.rs` files: its sources ([`module_dir::files`]), never its
/// build results or anything behind a link, even when the module directory
/// is the project root.
pub fn rust_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(module_dir::files(dir, module_dir::Walk::Sources, false)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect())
}

/// The rustfmt command line for `files` with the kernel's configuration.
pub fn rustfmt_command(srctree: &Path, files: &[PathBuf], check: bool) -> Command {
    let mut cmd = Command::new("rustfmt");
    if check {
        cmd.arg("--check");
    }
    // The diff is captured and shown on stderr: colour it only for a terminal.
    let color = if std::io::stderr().is_terminal() {
        "always"
    } else {
        "never"
    };
    cmd.args(["--color", color]);
    cmd.args(["--edition", EDITION])
        .arg("--config-path")
        .arg(srctree.join(".rustfmt.toml"))
        .args(files);
    cmd
}

/// `rustfmt --check` (or reformat, with `fix`); a difference fails with the diff.
pub fn rustfmt(srctree: &Path, files: &[PathBuf], fix: bool) -> Result<()> {
    let out = crate::process::captured(&mut rustfmt_command(srctree, files, !fix), "rustfmt")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(());
    }
    if !fix && out.status.code() == Some(1) && stderr.trim().is_empty() {
        bail!(
            "rustfmt: the module is not formatted as the kernel's .rustfmt.toml asks:\n{}\n\
             Fix: `lkmlab lint --fix` (or `rustfmt --edition {EDITION} --config-path {} FILE…`)",
            stdout.trim_end(),
            srctree.join(".rustfmt.toml").display()
        );
    }
    bail!(
        "rustfmt failed ({}):\n{}{}",
        out.status,
        stdout,
        stderr.trim_end()
    )
}

/// Build the module from scratch with clippy, every warning an error.
pub fn clippy(l: &Lint) -> Result<()> {
    if l.out.exists() {
        std::fs::remove_dir_all(l.out)
            .with_context(|| format!("emptying the lint build directory {}", l.out.display()))?;
    }
    std::fs::create_dir_all(l.out).with_context(|| format!("creating {}", l.out.display()))?;
    let src = l
        .src
        .canonicalize()
        .with_context(|| format!("module directory {}", l.src.display()))?;
    let out = (l.out.canonicalize()).with_context(|| format!("resolving {}", l.out.display()))?;
    let mut cmd = crate::build::module::kbuild(l.tree, &src, &out, l.env)?;
    cmd.args(["CLIPPY=1", "KRUSTFLAGS=-Dwarnings", "modules"]);
    let log = out.join("lint.log");
    run_logged(
        &mut cmd,
        &log,
        "clippy (make CLIPPY=1 KRUSTFLAGS=-Dwarnings)",
    )?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // After -Dwarnings there should be none; gcc's warnings on the
    // generated `.mod.c` and modpost's are caught here too.
    let found = warning_lines(&text);
    if !found.is_empty() {
        bail!(
            "clippy: the module build warned:\n{}\nFull log: {}",
            found.join("\n"),
            log.display()
        );
    }
    Ok(())
}

/// rustfmt, then clippy: both must be clean.
pub fn run(l: &Lint) -> Result<()> {
    let srctree = kernel_source(l.tree)?;
    let files = rust_sources(l.src)?;
    if files.is_empty() {
        bail!("{} holds no .rs files to lint", l.src.display());
    }
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(l.src).unwrap_or(f).display().to_string())
        .collect();
    let verb = if l.fix {
        "formatting"
    } else {
        "checking the format of"
    };
    crate::status!(
        "rustfmt: {verb} {} with {}",
        names.join(", "),
        srctree.join(".rustfmt.toml").display()
    );
    rustfmt(&srctree, &files, l.fix)?;
    crate::status!(
        "clippy: building {} with CLIPPY=1 KRUSTFLAGS=-Dwarnings against {}",
        l.src.display(),
        l.tree.dir.display()
    );
    clippy(l)?;
    crate::outln!(
        "lkmlab lint: {} file(s) formatted as the kernel's .rustfmt.toml asks; clippy: no warnings",
        files.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_found_recursively_without_hidden_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::create_dir_all(d.join(".git")).unwrap();
        for f in ["b.rs", "a.rs", "sub/c.rs", ".git/x.rs", "Kbuild", "scull.h"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let got: Vec<String> = rust_sources(d)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(got, ["a.rs", "b.rs", "sub/c.rs"]);
    }

    #[test]
    fn rustfmt_uses_the_kernels_configuration() {
        let cmd = rustfmt_command(Path::new("/k"), &[PathBuf::from("/m/a.rs")], true);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        // `--color always|never` follows whether stderr is a terminal.
        assert_eq!(args[1], "--color");
        let args: Vec<&String> = args
            .iter()
            .enumerate()
            .filter(|(i, _)| ![1, 2].contains(i))
            .map(|(_, a)| a)
            .collect();
        assert_eq!(
            args,
            [
                "--check",
                "--edition",
                "2021",
                "--config-path",
                "/k/.rustfmt.toml",
                "/m/a.rs"
            ]
        );
    }

    #[test]
    fn rustfmt_shows_the_diff_and_the_fix() {
        if Command::new("rustfmt").arg("--version").output().is_err() {
            return; // no rustfmt here; `lkmlab doctor` reports it
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".rustfmt.toml"), "edition = \"2021\"\n").unwrap();
        let file = dir.path().join("m.rs");
        std::fs::write(&file, "fn  main( ) {}\n").unwrap();
        let err = rustfmt(dir.path(), std::slice::from_ref(&file), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("-fn  main( ) {}") && err.contains("lkmlab lint --fix"),
            "{err}"
        );
        rustfmt(dir.path(), std::slice::from_ref(&file), true).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "fn main() {}\n");
        rustfmt(dir.path(), &[file], false).unwrap();
    }
}
