//! Bad input is refused before any work, with exit status 2 and a message
//! that names what is wrong and the fix: a module name that would not
//! build, a module directory that is not one, `[vm]` values or a
//! `--timeout` that no VM of the target can run with. "Before any work":
//! nothing is fetched or built (the cache cannot even be written) and
//! nothing is left in the project (no build or lock folders under target/).

use std::path::{Path, PathBuf};

mod common;
use common::{lkmlab, text};

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
    // No lock or build folder.
    assert_eq!(tree(d), before);
}

/// The pin of `dir` with `key = from` replaced by `key = to` in `[vm]`.
fn set_vm(dir: &Path, key: &str, from: &str, to: &str) {
    let path = dir.join("lkmlab.toml");
    let pin = std::fs::read_to_string(&path).unwrap();
    let (old, new) = (format!("\n{key} = {from}\n"), format!("\n{key} = {to}\n"));
    assert!(pin.contains(&old), "no {old:?} in the pin");
    std::fs::write(&path, pin.replacen(&old, &new, 1)).unwrap();
}

#[test]
fn vm_values_no_run_can_succeed_with_are_refused_naming_the_key_and_the_range() {
    let p = project();
    let d = p.path();
    let before = tree(d);
    let vm_commands: [&[&str]; 6] = [
        &["test"],
        &["check"],
        &["watch"],
        &["vm", "--exec", "true"],
        &["test", "--flavor", "debug"],
        &["check", "--flavor", "debug"],
    ];
    // The ceiling is CONFIG_NR_CPUS of the fragments (8 in base.config).
    for cpus in ["0", "9", "999"] {
        set_vm(d, "cpus", "2", cpus);
        for args in vm_commands {
            refused(
                d,
                args,
                &[
                    &format!("lkmlab.toml [vm] cpus = {cpus}: the x86_64"),
                    " kernel runs on 1 to 8 CPUs (CONFIG_NR_CPUS=8 in kernel-config/base.config:",
                    "set cpus in that range",
                ],
            );
        }
        set_vm(d, "cpus", cpus, "2");
    }
    // The floor of memory is the flavor's: KASAN needs more.
    set_vm(d, "memory_mib", "256", "16");
    for args in vm_commands {
        let err = refused(d, args, &["lkmlab.toml [vm] memory_mib = 16: the x86_64"]);
        let floor = if args.contains(&"debug") { 128 } else { 64 };
        assert!(
            err.contains(&format!("needs at least {floor} MiB")),
            "{args:?}: {err}"
        );
    }
    set_vm(d, "memory_mib", "16", "100");
    refused(
        d,
        &["test", "--flavor", "debug"],
        &[
            "memory_mib = 100: the x86_64-debug kernel needs at least 128 MiB (it has KASAN \
             (kernel-config/debug.config:",
            "set memory_mib to 128 or more",
        ],
    );
    set_vm(d, "memory_mib", "100", "256");
    // A time limit of 0 kills the VM at once.
    set_vm(d, "timeout_secs", "120", "0");
    for args in vm_commands {
        refused(
            d,
            args,
            &[
                "lkmlab.toml [vm] timeout_secs = 0: the VM would be killed",
                "1 s or more",
            ],
        );
    }
    set_vm(d, "timeout_secs", "0", "120");
    for command in ["test", "check", "watch"] {
        refused(
            d,
            &[command, "--timeout", "0"],
            &["--timeout 0: the VM would be killed", "1 s or more"],
        );
    }
    assert_eq!(tree(d), before, "nothing was built or locked");
}
