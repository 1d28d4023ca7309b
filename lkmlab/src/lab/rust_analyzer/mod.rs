//! `lkmlab rust-analyzer`: editor support for the module, in one place.
//!
//! - [`project`]: the module's rust-project.json, from Kbuild's own
//!   `rust-analyzer` target, adapted for an out-of-tree module;
//! - [`diagnostics`]: `--check`, rust-analyzer's own analysis of the
//!   module through that file, so an editor's view is tested, not assumed;
//! - [`run`]: the command, both together.

pub mod diagnostics;
pub mod project;

use crate::build::kernel::{self, KernelTree};
use crate::build::toolchain;
use crate::config::paths::Paths;
use crate::config::project::Project;
use crate::config::target::Target;
use crate::source::fetch::Fetcher;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub use project::RUST_PROJECT;

/// What `lkmlab rust-analyzer` was asked to do.
pub struct Request<'a> {
    pub project: &'a Project,
    pub paths: &'a Paths,
    pub fetcher: &'a Fetcher<'a>,
    pub target: &'a Target,
    /// The module directory.
    pub src: &'a Path,
    /// Where Kbuild writes for a kernel tree (the command's build folder).
    pub out_dir: &'a dyn Fn(&KernelTree) -> Result<PathBuf>,
    /// Where rust-project.json goes [default: in the module directory].
    pub output: Option<&'a Path>,
    /// Also run rust-analyzer's diagnostics on the module.
    pub check: bool,
    /// The rust-analyzer to run (else found on PATH or in ~/.local/bin).
    pub rust_analyzer: Option<&'a Path>,
}

/// Write the module's rust-project.json (its path on standard output) and,
/// with `check`, run rust-analyzer on it; whether no error or warning was
/// found in the module's files.
pub fn run(r: &Request) -> Result<bool> {
    if r.check
        && r.output
            .is_some_and(|o| o.file_name() != Some(RUST_PROJECT.as_ref()))
    {
        bail!(
            "--check needs the --output file to be named {RUST_PROJECT} (the only name \
             rust-analyzer loads a project from)"
        );
    }
    // Find it before any build: a missing rust-analyzer is the likeliest
    // failure and costs nothing to report.
    let program = if r.check {
        Some(diagnostics::find(
            r.rust_analyzer,
            &r.project.pin.toolchain.rust_analyzer.to_string(),
        )?)
    } else {
        None
    };
    let tree = kernel::build(r.project, r.paths, r.fetcher, r.target)?;
    let out = (r.out_dir)(&tree)?;
    let dest = r
        .output
        .map(Path::to_path_buf)
        .unwrap_or_else(|| r.src.join(RUST_PROJECT));
    // generate_rust_analyzer.py names the Rust library source (RUST_LIB_SRC).
    let lib = toolchain::rust_lib_src(r.project, r.paths, r.fetcher)?;
    let crates = project::write(
        &tree,
        r.src,
        &out,
        &toolchain::make_env(r.project, Some(&lib)),
        &lib,
        &dest,
    )?;
    crate::outln!("{}", dest.display())?;
    match program {
        Some(program) => check(&program, &dest, r.src, &crates),
        None => Ok(true),
    }
}

/// `--check`: the module's files must have no error or warning in
/// rust-analyzer's own analysis.
fn check(
    program: &Path,
    rust_project: &Path,
    src: &Path,
    crates: &project::Crates,
) -> Result<bool> {
    let src = src
        .canonicalize()
        .with_context(|| format!("module directory {}", src.display()))?;
    crate::status!(
        "{} diagnostics: analysing the module's crates (some seconds)",
        program.display()
    );
    let findings = diagnostics::diagnose(program, rust_project, &src)?;
    let (counted, weak): (Vec<_>, Vec<_>) = findings.iter().partition(|f| f.counts());
    for f in &counted {
        crate::outln!("{f}")?;
    }
    crate::outln!(
        "rust-analyzer: {} error(s) or warning(s) in {} ({} crate(s): {}); {} weak warning(s) not counted",
        counted.len(),
        src.display(),
        crates.module.len(),
        crates.module.join(", "),
        weak.len()
    )?;
    Ok(counted.is_empty())
}
