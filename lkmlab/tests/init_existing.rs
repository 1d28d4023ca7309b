//! `lkmlab init --module-dir`: a repository with a module of its own gets
//! the pin and the fragments, pointing at that module, and nothing else;
//! what cannot be a module directory of the project is refused, writing
//! nothing.

use std::path::{Path, PathBuf};

mod common;
use common::{lkmlab, text};

/// Every file below `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A module repository as people have them: a module built by a Makefile
/// alone (no Kbuild), a README, a .gitignore of its own.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("README.md", "# rng\n");
    write(".gitignore", "*.ko\n");
    write("driver/Makefile", "obj-m := rng.o\n");
    write("driver/rng.rs", "// the module\n");
    dir
}

/// The `[module] dir` of the pin in `dir`.
fn module_dir(dir: &Path) -> String {
    let pin: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("lkmlab.toml")).unwrap()).unwrap();
    pin["module"]["dir"].as_str().unwrap().to_string()
}

#[test]
fn an_existing_module_gets_the_pin_and_fragments_and_nothing_else() {
    let repo = repository();
    let before = files(repo.path());
    let out = lkmlab(repo.path(), &["init", "--module-dir", "driver"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        text(&out.stdout).trim_end(),
        repo.path().canonicalize().unwrap().display().to_string()
    );
    assert!(
        err.contains("[module] dir = \"driver\"") && err.contains("add /target/ to .gitignore"),
        "{err}"
    );
    let added: Vec<PathBuf> = files(repo.path())
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    let mut expected: Vec<PathBuf> = [
        "arm64.config",
        "base.config",
        "debug.config",
        "virtme.config",
        "x86_64.config",
    ]
    .iter()
    .map(|f| Path::new("kernel-config").join(f))
    .collect();
    expected.push(PathBuf::from("lkmlab.toml"));
    assert_eq!(
        added, expected,
        "no module, test, flake or README is written"
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join(".gitignore")).unwrap(),
        "*.ko\n"
    );
    assert_eq!(module_dir(repo.path()), "driver");
    // The project is one lkmlab reads.
    let out = lkmlab(repo.path(), &["show", "pin"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The layout of the kernel's out-of-tree template: the module at the top.
#[test]
fn the_project_root_can_be_the_module_directory() {
    let repo = repository();
    let root = repo.path().join("driver");
    let out = lkmlab(&root, &["-q", "init", ".", "--module-dir", "."]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), ".\n");
    assert_eq!(module_dir(&root), ".");
}

/// `args` in `dir` exit with 2, saying each of `says`, and write nothing.
#[track_caller]
fn refused(dir: &Path, args: &[&str], says: &[&str]) {
    let before = files(dir);
    let out = lkmlab(dir, args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: no {s:?} in {err}");
    }
    assert!(out.stdout.is_empty(), "{args:?}");
    assert_eq!(files(dir), before, "{args:?} wrote something");
}

#[test]
fn what_cannot_be_the_projects_module_is_refused_writing_nothing() {
    let repo = repository();
    let dir = repo.path();
    std::fs::create_dir(dir.join("docs")).unwrap();
    refused(
        dir,
        &["init", "--module-dir", "docs"],
        &["docs has neither a Kbuild nor a Makefile"],
    );
    refused(
        dir,
        &["init", "--module-dir", "nowhere"],
        &["--module-dir nowhere: no such directory"],
    );
    refused(
        dir,
        &["init", "--module-dir", "driver/rng.rs"],
        &["is a file, not a directory", "(driver)"],
    );
    // Outside the project, lkmlab.toml could not name it.
    refused(
        &dir.join("docs"),
        &["init", ".", "--module-dir", "../driver"],
        &["is not inside the project directory ."],
    );
    // The module's name is the module's own, not lkmlab's to give.
    refused(
        dir,
        &["init", "--module-dir", "driver", "--name", "rng"],
        &["cannot be used with"],
    );
    // A project that has a pin already keeps it.
    std::fs::write(dir.join("lkmlab.toml"), "mine").unwrap();
    refused(
        dir,
        &["init", "--module-dir", "driver"],
        &["already has lkmlab.toml", "overwrites nothing"],
    );
}
