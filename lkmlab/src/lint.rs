//! `lkmlab lint` and `lkmlab rust-analyzer`: the module's Rust code checked
//! and indexed with the kernel's own settings and tooling.
//!
//! - rustfmt: the kernel's `rustfmt`/`rustfmtcheck` targets walk the kernel
//!   tree only (they ignore `M=`), so rustfmt runs directly, with the kernel
//!   source's `.rustfmt.toml`, as those targets do.
//! - clippy: Kbuild's `CLIPPY=1` compiles with clippy-driver, the kernel's
//!   lint set and `.clippy.toml`; `KRUSTFLAGS=-Dwarnings` (appended to
//!   KBUILD_RUSTFLAGS, external modules included) turns every warning into
//!   an error. The build goes to its own directory, wiped first: Kbuild
//!   would otherwise find the objects up to date and lint nothing.
//! - rust-analyzer: Kbuild's `rust-analyzer` target supports `M=` and runs
//!   scripts/generate_rust_analyzer.py with the module as the external tree.

use crate::kernel::KernelTree;
use crate::progress::{run_logged, warning_lines};
use crate::util::spawn_error;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file rust-analyzer reads for a project without Cargo.
pub const RUST_PROJECT: &str = "rust-project.json";
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

/// The module's `.rs` files, recursively, skipping hidden directories.
pub fn rust_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
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
    let out = rustfmt_command(srctree, files, !fix)
        .output()
        .map_err(|e| spawn_error("rustfmt", e))?;
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
    let out = l.out.canonicalize()?;
    let mut cmd = crate::module::kbuild(l.tree, &src, &out, l.env);
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
    println!(
        "lkmlab lint: {} file(s) formatted as the kernel's .rustfmt.toml asks; clippy: no warnings",
        files.len()
    );
    Ok(())
}

/// Write rust-project.json for the module to `dest` with Kbuild's
/// `rust-analyzer` target (it writes the file into the `MO=` directory),
/// adapted by [`use_sysroot_src`] for the Rust library source `lib_src`.
pub fn rust_project(
    tree: &KernelTree,
    src: &Path,
    out: &Path,
    env: &[(String, OsString)],
    lib_src: &Path,
    dest: &Path,
) -> Result<Crates> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let src = src
        .canonicalize()
        .with_context(|| format!("module directory {}", src.display()))?;
    let out = out.canonicalize()?;
    let generated = out.join(RUST_PROJECT);
    let _ = std::fs::remove_file(&generated);
    let mut cmd = crate::module::kbuild(tree, &src, &out, env);
    cmd.arg("rust-analyzer");
    run_logged(
        &mut cmd,
        &out.join("rust-analyzer.log"),
        "make rust-analyzer",
    )?;
    let json = std::fs::read_to_string(&generated).with_context(|| {
        format!(
            "`make M=… rust-analyzer` wrote no {} (see {})",
            generated.display(),
            out.join("rust-analyzer.log").display()
        )
    })?;
    let json = use_sysroot_src(&json, lib_src)?;
    let json = module_crates_only_as_members(&json, &src)?;
    let crates = check_rust_project(&json, &src)?;
    std::fs::write(dest, &json).with_context(|| format!("writing {}", dest.display()))?;
    crate::status!(
        "{}: {} crate(s), the module's: {}; core, alloc and std from {}",
        dest.display(),
        crates.total,
        crates.module.join(", "),
        lib_src.display()
    );
    Ok(crates)
}

/// The kernel's generate_rust_analyzer.py lists `core` as an ordinary crate
/// (rooted in RUST_LIB_SRC) next to `"sysroot"`. rust-analyzer then does not
/// know that crate as the language's core: every method of a primitive type
/// (`<[u8]>::len`, `str::as_bytes`) is "not found" (E0599), and where the
/// sysroot has its own library source, core is loaded twice. So: name the
/// library source as `sysroot_src`, which rust-analyzer loads as the real
/// core/alloc/std for every crate, and drop the listed `core` (renumbering
/// the dependencies).
pub fn use_sysroot_src(json: &str, lib_src: &Path) -> Result<String> {
    edit_project(json, |v| {
        let crates = crates_of(v)?;
        let core = crates
            .iter()
            .position(|c| c.get("display_name").and_then(|n| n.as_str()) == Some("core"));
        if let Some(core) = core {
            crates.remove(core);
            for krate in crates.iter_mut() {
                let Some(deps) = krate.get_mut("deps").and_then(|d| d.as_array_mut()) else {
                    continue;
                };
                deps.retain(|d| d.get("crate").and_then(|i| i.as_u64()) != Some(core as u64));
                for dep in deps.iter_mut() {
                    if let Some(i) = dep.get("crate").and_then(|i| i.as_u64()) {
                        if i > core as u64 {
                            dep["crate"] = serde_json::json!(i - 1);
                        }
                    }
                }
            }
        }
        v["sysroot_src"] = serde_json::json!(lib_src.display().to_string());
        Ok(())
    })
}

/// Parse a rust-project.json, let `edit` change it, and write it out again.
fn edit_project(
    json: &str,
    edit: impl FnOnce(&mut serde_json::Value) -> Result<()>,
) -> Result<String> {
    let mut v: serde_json::Value =
        serde_json::from_str(json).context("rust-project.json is not valid JSON")?;
    edit(&mut v)?;
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// The `crates` list of a parsed rust-project.json.
fn crates_of(v: &mut serde_json::Value) -> Result<&mut Vec<serde_json::Value>> {
    v.get_mut("crates")
        .and_then(|c| c.as_array_mut())
        .context("rust-project.json has no `crates` list")
}

/// The kernel's generator marks every crate of the kernel tree as a
/// workspace member, as if you were editing the kernel. For an out-of-tree
/// module the kernel is a library: rust-analyzer still resolves and infers
/// everything the module uses from it, but reports (and re-checks) only the
/// members' files. So only the crates rooted in `module_dir` stay members;
/// `rust-analyzer diagnostics` on module/ then takes 9 s instead of 34 s, and
/// an editor spends nothing on the kernel's own files.
pub fn module_crates_only_as_members(json: &str, module_dir: &Path) -> Result<String> {
    edit_project(json, |v| {
        for krate in crates_of(v)?.iter_mut() {
            let member = krate
                .get("root_module")
                .and_then(|r| r.as_str())
                .is_some_and(|r| Path::new(r).starts_with(module_dir));
            krate["is_workspace_member"] = serde_json::json!(member);
        }
        Ok(())
    })
}

/// What a rust-project.json holds.
#[derive(Debug)]
pub struct Crates {
    pub total: usize,
    /// The crates rooted in the module directory.
    pub module: Vec<String>,
}

/// The generated file must describe the module's crates (a Kbuild file
/// listing `obj-m := name.o` makes `name.rs` a crate root).
pub fn check_rust_project(json: &str, module_dir: &Path) -> Result<Crates> {
    let v: serde_json::Value =
        serde_json::from_str(json).context("rust-project.json is not valid JSON")?;
    let crates = v
        .get("crates")
        .and_then(|c| c.as_array())
        .context("rust-project.json has no `crates` list")?;
    let module: Vec<String> = crates
        .iter()
        .filter(|c| {
            c.get("root_module")
                .and_then(|r| r.as_str())
                .is_some_and(|r| Path::new(r).starts_with(module_dir))
        })
        .filter_map(|c| c.get("display_name").and_then(|n| n.as_str()))
        .map(str::to_string)
        .collect();
    if module.is_empty() {
        bail!(
            "rust-project.json names no crate in {}: does its Kbuild list `obj-m := NAME.o` \
             for each NAME.rs?",
            module_dir.display()
        );
    }
    Ok(Crates {
        total: crates.len(),
        module,
    })
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

    #[test]
    fn core_comes_from_the_sysroot_source_not_from_the_crate_list() {
        let json = r#"{"crates": [
            {"display_name": "core", "root_module": "/lib/core/src/lib.rs", "deps": []},
            {"display_name": "kernel", "root_module": "/k/rust/kernel/lib.rs",
             "deps": [{"crate": 0, "name": "core"}]},
            {"display_name": "scull", "root_module": "/p/module/scull.rs",
             "deps": [{"crate": 0, "name": "core"}, {"crate": 1, "name": "kernel"}]}
        ], "sysroot": "/s"}"#;
        let out = use_sysroot_src(json, Path::new("/lib")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["sysroot_src"], "/lib");
        assert_eq!(v["sysroot"], "/s");
        let names: Vec<&str> = v["crates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["display_name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["kernel", "scull"]);
        assert_eq!(v["crates"][0]["deps"], serde_json::json!([]));
        assert_eq!(
            v["crates"][1]["deps"],
            serde_json::json!([{"crate": 0, "name": "kernel"}])
        );
    }

    #[test]
    fn only_the_modules_crates_are_workspace_members() {
        let json = r#"{"crates": [
            {"display_name": "kernel", "root_module": "/k/rust/kernel/lib.rs", "is_workspace_member": true},
            {"display_name": "hello", "root_module": "/m/hello.rs", "is_workspace_member": true},
            {"display_name": "gen", "root_module": "/k/scripts/gen.rs"}
        ]}"#;
        let out: serde_json::Value =
            serde_json::from_str(&module_crates_only_as_members(json, Path::new("/m")).unwrap())
                .unwrap();
        let members: Vec<bool> = out["crates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["is_workspace_member"].as_bool().unwrap())
            .collect();
        assert_eq!(members, [false, true, false]);
    }

    #[test]
    fn a_rust_project_must_name_the_modules_crates() {
        let json = r#"{"crates": [
            {"display_name": "core", "root_module": "/src/library/core/src/lib.rs"},
            {"display_name": "scull", "root_module": "/p/module/scull.rs"}
        ], "sysroot": "/s"}"#;
        let c = check_rust_project(json, Path::new("/p/module")).unwrap();
        assert_eq!((c.total, c.module), (2, vec!["scull".to_string()]));
        let err = check_rust_project(json, Path::new("/other"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("obj-m"), "{err}");
        assert!(check_rust_project("{}", Path::new("/p")).is_err());
    }
}
