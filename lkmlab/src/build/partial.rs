//! A module directory on a kernel where some of its modules do not build:
//! on a kernel other than the pin's default one (an older series, whose
//! `kernel` crate lacks APIs a module uses), such a module is skipped there
//! with the compiler's first error as the reason, and the others are built
//! on their own (`make … NAME.ko`) and tested.

use crate::build::module::{self, Built, ModuleBuild};
use crate::build::module_failure::Objects;
use crate::build::progress::run_logged;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A module of the directory that did not build, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbuilt {
    /// Its name (the `.ko`'s stem).
    pub module: String,
    /// The compiler's first error in its source, on one line.
    pub reason: String,
}

/// The case a module that did not build is reported as (skipped):
/// `MODULE.build`.
pub const BUILD_CASE: &str = "build";

impl Unbuilt {
    /// Its skipped case's name.
    pub fn case_name(&self) -> String {
        format!("{}.{BUILD_CASE}", self.module)
    }
}

/// What a directory came to: the `.ko` files that built and the modules that
/// did not.
#[derive(Debug, Default)]
pub struct Outcome {
    pub kos: Vec<PathBuf>,
    pub unbuilt: Vec<Unbuilt>,
}

/// Build the directory; if that fails, build the modules whose objects
/// compiled one by one and report the others as [`Unbuilt`]. Fails as
/// [`module::build`] does when the failure cannot be put on some of the
/// modules (a failed link, a composite module's object), or when none
/// builds.
pub fn build_what_builds(b: &ModuleBuild) -> Result<(Outcome, Built)> {
    let whole = match module::build(b) {
        Ok((kos, built)) => {
            let unbuilt = Vec::new();
            return Ok((Outcome { kos, unbuilt }, built));
        }
        Err(e) => e,
    };
    let log_path = b.out.join("build.log");
    let Ok(log) = std::fs::read_to_string(&log_path) else {
        return Err(whole);
    };
    let Ok(out) = b.out.canonicalize() else {
        return Err(whole);
    };
    let objects = Objects::of(&log);
    let failed: Vec<PathBuf> = objects.failed.iter().map(|o| out.join(o)).collect();
    // Every module Kbuild made a NAME.mod for whose object exists and did
    // not fail: compiled now, or up to date from an earlier build.
    let built: Vec<PathBuf> = module_objects(&out)
        .into_iter()
        .filter(|o| o.is_file() && !failed.contains(o))
        .collect();
    if failed.is_empty() || built.is_empty() {
        return Err(whole);
    }
    let unbuilt = unbuilt_of(&log, &failed, &log_path);
    for u in &unbuilt {
        crate::notice!(
            "{} does not build against {}: {}",
            u.module,
            b.tree.release,
            u.reason
        );
    }
    let kos = build_each(b, &built).with_context(|| {
        format!(
            "building the modules of {} that compile, one by one, after the others failed",
            b.src.display()
        )
    })?;
    Ok((Outcome { kos, unbuilt }, Built::Rebuilt))
}

/// The modules of the objects `failed`, each with the compiler's first
/// error in its source from `log` (kept at `log_path`) as the reason.
fn unbuilt_of(log: &str, failed: &[PathBuf], log_path: &Path) -> Vec<Unbuilt> {
    failed
        .iter()
        .map(|object| {
            let module = stem(object);
            let reason = first_error_in(log, &format!("{module}.rs"))
                .or_else(|| first_error_in(log, &format!("{module}.c")))
                .unwrap_or_else(|| format!("its build failed (log: {})", log_path.display()));
            Unbuilt { module, reason }
        })
        .collect()
}

/// The log a module build leaves beside the `.ko` files it installs when
/// some modules may not build on its kernel (the flake's module of a
/// target on a kernel other than the default one: `make -k modules`).
pub const GIVEN_BUILD_LOG: &str = "lkmlab-build.log";

/// For `lkmlab test --modules DIR`: the modules the build of DIR left out,
/// from its [`GIVEN_BUILD_LOG`] (none when there is no such log).
pub fn unbuilt_in_given(dir: &Path) -> Result<Vec<Unbuilt>> {
    let log_path = dir.join(GIVEN_BUILD_LOG);
    if !log_path.is_file() {
        return Ok(Vec::new());
    }
    let log = std::fs::read_to_string(&log_path)
        .with_context(|| format!("reading {}", log_path.display()))?;
    let failed: Vec<PathBuf> = Objects::of(&log)
        .failed
        .into_iter()
        .map(PathBuf::from)
        .collect();
    Ok(unbuilt_of(&log, &failed, &log_path))
}

/// `make … A.ko B.ko`: only the modules whose objects compiled (Kbuild's
/// single-module targets), checked for vermagic like a whole build's.
fn build_each(b: &ModuleBuild, objects: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let src = b
        .src
        .canonicalize()
        .with_context(|| format!("module directory {}", b.src.display()))?;
    let out = b
        .out
        .canonicalize()
        .with_context(|| format!("resolving {}", b.out.display()))?;
    let kos: Vec<PathBuf> = objects.iter().map(|o| o.with_extension("ko")).collect();
    let mut cmd = module::kbuild(b.tree, &src, &out, b.env)?;
    cmd.args(b.extra);
    for ko in &kos {
        // Kbuild names single targets relative to the module directory.
        let rel = ko.strip_prefix(&out).unwrap_or(ko);
        cmd.arg(rel);
    }
    run_logged(&mut cmd, &out.join("build-each.log"), "module build")?;
    for ko in &kos {
        if !ko.is_file() {
            bail!("Kbuild built no {}", ko.display());
        }
        module::check_vermagic(ko, &b.tree.release)?;
    }
    Ok(kos)
}

/// The object of each module Kbuild listed in `out` (`NAME.mod`, written
/// for every module of `obj-m` before its objects compile), in the folder
/// and its subfolders.
fn module_objects(out: &Path) -> Vec<PathBuf> {
    module::build_products(out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mod"))
        .map(|p| p.with_extension("o"))
        .collect()
}

fn stem(object: &Path) -> String {
    object
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The first error the compiler reported in the file named `file_name`, on
/// one line: `scull.rs:56: error: proc macro panicked (Unknown key …)`.
/// rustc's errors are a header (`error[E0432]: …`) with a `--> PATH:LINE:COL`
/// line under it, and a proc macro's own message on a `= help: message:`
/// line; gcc's are one line, `PATH:LINE:COL: error: …`.
pub fn first_error_in(log: &str, file_name: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    let named = |path: &str| Path::new(path).file_name().is_some_and(|n| n == file_name);
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("error") && !line.starts_with("error: aborting") {
            // rustc: the location follows the header, before the next one.
            let block = lines[i + 1..]
                .iter()
                .take_while(|l| !(l.starts_with("error") || l.starts_with("warning")));
            let mut at = None;
            let mut help = None;
            for l in block {
                let t = l.trim_start();
                if let Some(loc) = t.strip_prefix("--> ") {
                    at = at.or(Some(loc.trim()));
                } else if let Some(msg) = t.strip_prefix("= help: message: ") {
                    help = help.or(Some(msg.trim()));
                }
            }
            let Some(loc) = at else { continue };
            let mut parts = loc.rsplitn(3, ':');
            let (_col, line_no, path) = (parts.next(), parts.next(), parts.next());
            let (Some(line_no), Some(path)) = (line_no, path) else {
                continue;
            };
            if !named(path) {
                continue;
            }
            let mut text = format!("{file_name}:{line_no}: {line}");
            if let Some(help) = help {
                text.push_str(&format!(" ({help})"));
            }
            return Some(text);
        }
        // gcc: PATH:LINE:COL: error: MESSAGE
        if let Some((path, rest)) = line.split_once(':') {
            if named(path) {
                let mut parts = rest.splitn(3, ':');
                if let (Some(line_no), Some(_col), Some(msg)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    if msg.trim_start().starts_with("error") {
                        return Some(format!("{file_name}:{line_no}:{msg}"));
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head of a real 6.12 build of lkmlab's module/ (scull needs a
    /// newer `kernel` crate).
    const LOG: &str = r#"make: Entering directory '/k'
  RUSTC [M] /o/hello.o
  RUSTC [M] /o/scull.o
error: proc macro panicked
  --> /work/main/module/scull.rs:56:1
   |
56 | / module! {
   |
   = help: message: Unknown key "authors". Valid keys are: ["type", "name", "author", "description", "license", "alias", "firmware"].

error[E0432]: unresolved imports `kernel::debugfs`, `kernel::fs`
  --> /work/main/module/scull.rs:26:5
   |
error: aborting due to 21 previous errors; 1 warning emitted
make[2]: *** [/k/scripts/Makefile.build:289: /o/scull.o] Error 1
"#;

    #[test]
    fn the_first_located_error_of_a_file_is_the_reason() {
        assert_eq!(
            first_error_in(LOG, "scull.rs").unwrap(),
            "scull.rs:56: error: proc macro panicked (Unknown key \"authors\". Valid keys \
             are: [\"type\", \"name\", \"author\", \"description\", \"license\", \"alias\", \
             \"firmware\"].)"
        );
        assert_eq!(first_error_in(LOG, "hello.rs"), None);
    }

    #[test]
    fn a_given_module_folder_says_what_its_build_left_out() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(unbuilt_in_given(dir.path()).unwrap(), []);
        std::fs::write(dir.path().join(GIVEN_BUILD_LOG), LOG).unwrap();
        let unbuilt = unbuilt_in_given(dir.path()).unwrap();
        assert_eq!(unbuilt.len(), 1);
        assert_eq!(unbuilt[0].module, "scull");
        assert!(unbuilt[0]
            .reason
            .starts_with("scull.rs:56: error: proc macro panicked"));
    }

    #[test]
    fn a_c_compilers_error_is_read_too() {
        let log = "/o/a.c: In function 'f':\n/o/a.c:3:5: error: 'x' undeclared\n";
        assert_eq!(
            first_error_in(log, "a.c").unwrap(),
            "a.c:3: error: 'x' undeclared"
        );
    }

    #[test]
    fn objects_say_which_modules_failed_and_which_compiled() {
        let o = Objects::of(LOG);
        assert_eq!(o.failed, ["/o/scull.o"]);
        assert_eq!(o.compiled, ["/o/hello.o"]);
    }

    #[test]
    fn kbuilds_mod_files_name_the_modules_of_a_folder() {
        let out = tempfile::tempdir().unwrap();
        for f in [
            "hello.mod",
            "hello.o",
            "scull.mod",
            "sub/x.mod",
            "notes.txt",
        ] {
            let p = out.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let found = module_objects(out.path());
        let rel: Vec<&Path> = found
            .iter()
            .map(|p| p.strip_prefix(out.path()).unwrap())
            .collect();
        assert_eq!(
            rel,
            [
                Path::new("hello.o"),
                Path::new("scull.o"),
                Path::new("sub/x.o")
            ]
        );
    }
}
