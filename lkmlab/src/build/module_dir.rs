//! The layout of a module directory (`[module] dir`): the names lkmlab gives
//! meaning to in it, and what of it is never the module's source. The build,
//! the test payload, `watch` and `rust-analyzer` all read these names here.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where a module keeps its own guest tests (see docs/guest-tests.md).
pub const GUEST_TESTS_DIR: &str = "guest-tests";
/// The subdirectory of [`GUEST_TESTS_DIR`] whose files are packed for the
/// tests to use, not run as tests.
pub const HELPERS_DIR: &str = "helpers";
/// The extension of a test's list of modules to load before it runs.
pub const LOAD_EXT: &str = "load";
/// The file rust-analyzer reads for a project without Cargo, which
/// `lkmlab rust-analyzer` writes into the module directory.
pub const RUST_PROJECT: &str = "rust-project.json";
/// Where a module directory that is also a Cargo-style project keeps build
/// results (`target/`): never sources.
pub const TARGET_DIR: &str = "target";

/// Refuse `dir` unless it is a directory; `what` says where it came from
/// (`--module`, `lkmlab.toml [module] dir`). Cheap, so commands run it
/// before any build.
pub fn check_dir(dir: &Path, what: &str) -> Result<()> {
    let meta = match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{what} {}: no such directory; give the module's directory, the one holding its \
             Kbuild",
            dir.display()
        ),
        other => other.with_context(|| format!("{what} {}", dir.display()))?,
    };
    if !meta.is_dir() {
        // A source file given for its directory: name the directory.
        let parent = dir
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .filter(|p| has_build_file(p));
        bail!(
            "{what} {} is a file, not a directory: give the module's directory, the one \
             holding its Kbuild{}",
            dir.display(),
            parent.map_or_else(String::new, |p| format!(" ({})", p.display()))
        );
    }
    Ok(())
}

/// Refuse `dir` unless Kbuild can build a module in it: a directory (see
/// [`check_dir`]) with a Kbuild or a Makefile.
pub fn check_buildable(dir: &Path, what: &str) -> Result<()> {
    check_dir(dir, what)?;
    if !has_build_file(dir) {
        bail!(
            "{} has neither a Kbuild nor a Makefile; an out-of-tree module needs a Kbuild \
             file such as `obj-m := mymodule.o`",
            dir.display()
        );
    }
    Ok(())
}

/// Whether `dir` has what Kbuild reads in a module directory.
fn has_build_file(dir: &Path) -> bool {
    dir.join("Kbuild").is_file() || dir.join("Makefile").is_file()
}

/// Whether an entry at the top of a module directory is something other
/// than the module's sources: hidden files, its guest tests, build results,
/// the generated rust-project.json.
pub fn not_source_at_top(name: &str) -> bool {
    name.starts_with('.') || matches!(name, GUEST_TESTS_DIR | TARGET_DIR | RUST_PROJECT)
}

/// What a walk of a module directory takes in besides its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// The sources alone: what the module's build reads.
    Sources,
    /// The sources and the guest tests: what a test run depends on.
    SourcesAndTests,
}

/// Every file under the module directory `dir` that `walk` covers, sorted:
/// never hidden files or directories, never (at the top) build results
/// (`target/`) or the generated rust-project.json, never a directory reached
/// through a symbolic link (Kbuild's `source` link in a build folder points
/// into the kernel tree, and back into a module at the project root).
/// `tolerate_vanished`: a subdirectory removed while walking is skipped
/// (for `watch`, which walks while an editor saves).
pub fn files(dir: &Path, walk: Walk, tolerate_vanished: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(_) if tolerate_vanished && d != dir => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", d.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", d.display()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let top = d == dir;
            let skipped = if top {
                not_source_at_top(&name)
                    && !(walk == Walk::SourcesAndTests && name == GUEST_TESTS_DIR)
            } else {
                name.starts_with('.')
            };
            if skipped {
                continue;
            }
            let path = entry.path();
            // file_type() does not follow a symbolic link: a link to a
            // directory is neither walked into nor taken as a file.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The module name of a `.ko` file (its file stem, as the kernel names it).
pub fn module_name(ko: &Path) -> String {
    ko.file_stem()
        .map(|s| s.to_string_lossy().replace('-', "_"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_use_underscores() {
        assert_eq!(module_name(Path::new("/x/rust-hello.ko")), "rust_hello");
    }

    /// A module directory at the project root: results under target/ (with
    /// Kbuild's `source` link back to the tree) and hidden files are never
    /// walked; guest tests only when asked for.
    #[test]
    fn a_walk_takes_sources_not_results_links_or_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "m.rs",
            "Kbuild",
            "sub/helper.rs",
            "guest-tests/t.sh",
            ".git/HEAD",
        ] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
        }
        std::fs::create_dir_all(d.join("target/lkmlab/default/modules/m")).unwrap();
        std::os::unix::fs::symlink(d, d.join("target/lkmlab/default/modules/m/source")).unwrap();
        std::os::unix::fs::symlink(d, d.join("sub/loop")).unwrap();
        let rel = |walk| -> Vec<String> {
            files(d, walk, false)
                .unwrap()
                .iter()
                .map(|p| p.strip_prefix(d).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(rel(Walk::Sources), ["Kbuild", "m.rs", "sub/helper.rs"]);
        assert_eq!(
            rel(Walk::SourcesAndTests),
            ["Kbuild", "guest-tests/t.sh", "m.rs", "sub/helper.rs"]
        );
    }

    #[test]
    fn tests_results_and_hidden_files_are_not_sources() {
        for name in [".git", "guest-tests", "target", "rust-project.json"] {
            assert!(not_source_at_top(name), "{name}");
        }
        for name in ["hello.rs", "Kbuild", "Makefile", "scull.h"] {
            assert!(!not_source_at_top(name), "{name}");
        }
    }
}
