//! Bad input is refused before any work, with exit status 2 and a message
//! that names what is wrong and the fix: a module name that would not
//! build, a module directory that is not one. "Before any work": nothing
//! is fetched or built (the cache stays empty) and nothing is left in the
//! project (no build or lock folders under target/).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// lkmlab in `dir`, with a cache of its own there that must stay empty.
fn lkmlab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lkmlab"))
        .args(args)
        .current_dir(dir)
        .env("LKMLAB_CACHE", dir.join("no-cache"))
        .env_remove("LKMLAB_MIRROR")
        .output()
        .unwrap()
}

/// A project as `lkmlab init` makes it, in a temporary directory.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = lkmlab(dir.path(), &["-q", "init", ".", "--name", "m"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

/// `args` exit with 2 and a message that contains each of `says`.
#[track_caller]
fn refused(dir: &Path, args: &[&str], says: &[&str]) -> String {
    let out = lkmlab(dir, args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: no {s:?} in {err}");
    }
    assert!(text(&out.stdout).is_empty(), "{args:?}");
    err
}

/// Every file and directory below `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn init_refuses_names_that_would_not_build_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, says) in [
        ("fn", "is a Rust keyword"),
        ("self", "is a Rust keyword"),
        ("match", "is a Rust keyword"),
        ("kernel", "the kernel's crates"),
        ("core", "the kernel's crates"),
        ("std", "the kernel's crates"),
        ("my-mod", "has a `-`"),
        ("result", "module's type `Result`"),
    ] {
        refused(
            dir.path(),
            &["init", "new", "--name", name],
            &[says, "--name "],
        );
    }
    let long = "x".repeat(56);
    refused(
        dir.path(),
        &["init", "new", "--name", &long],
        &["at most 55", "MODULE_NAME_LEN"],
    );
    // The name a directory suggests is checked alike.
    refused(
        dir.path(),
        &["init", "match"],
        &["match does not make a module name", "is a Rust keyword"],
    );
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
    // And a name next to them is fine.
    let out = lkmlab(dir.path(), &["-q", "init", "new", "--name", "fn_mod"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("new/module/fn_mod.rs").is_file());
}

#[test]
fn a_module_directory_that_is_not_one_is_refused_before_any_build() {
    let p = project();
    let d = p.path();
    std::fs::create_dir(d.join("empty")).unwrap();
    let before = tree(d);
    for command in ["module", "test", "watch", "lint", "rust-analyzer", "vm"] {
        refused(
            d,
            &[command, "--module", "module/m.rs"],
            &[
                "--module module/m.rs is a file, not a directory",
                "the one holding its Kbuild (module)",
            ],
        );
        refused(
            d,
            &[command, "--module", "missing"],
            &["--module missing: no such directory"],
        );
        refused(
            d,
            &[command, "--module", "empty"],
            &["empty has neither a Kbuild nor a Makefile"],
        );
    }
    // `test` with a kernel and modules given builds nothing: a module
    // directory only brings guest tests, but it must be a directory.
    std::fs::write(d.join("bzImage"), "").unwrap();
    refused(
        d,
        &[
            "test",
            "--kernel",
            "bzImage",
            "--modules",
            "empty",
            "--module",
            "module/m.rs",
        ],
        &["is a file, not a directory"],
    );
    std::fs::remove_file(d.join("bzImage")).unwrap();
    // The pin's own module directory, for `check` (and every command
    // without --module).
    let pin = std::fs::read_to_string(d.join("lkmlab.toml")).unwrap();
    std::fs::write(
        d.join("lkmlab.toml"),
        pin.replacen("dir = \"module\"", "dir = \"modul\"", 1),
    )
    .unwrap();
    for command in ["check", "module", "test"] {
        refused(
            d,
            &[command],
            &["lkmlab.toml [module] dir", "modul: no such directory"],
        );
    }
    std::fs::write(d.join("lkmlab.toml"), pin).unwrap();
    // No lock or build folder, nothing in the cache.
    assert_eq!(tree(d), before);
}
