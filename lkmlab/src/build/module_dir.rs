//! The layout of a module directory (`[module] dir`): the names lkmlab gives
//! meaning to in it, and what of it is never the module's source. The build,
//! the test payload, `watch` and `rust-analyzer` all read these names here.

use std::path::Path;

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

/// Whether an entry at the top of a module directory is something other
/// than the module's sources: hidden files, its guest tests, build results,
/// the generated rust-project.json.
pub fn not_source_at_top(name: &str) -> bool {
    name.starts_with('.') || matches!(name, GUEST_TESTS_DIR | TARGET_DIR | RUST_PROJECT)
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
