//! The module's rust-project.json: written by Kbuild's `rust-analyzer`
//! target (it supports `M=` and runs scripts/generate_rust_analyzer.py with
//! the module as the external tree), then adapted so that rust-analyzer
//! resolves the kernel crate's items in the module and reports only the
//! module's own files.

use crate::build::kernel::KernelTree;
use crate::build::progress::run_logged;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::Path;

pub use crate::build::module_dir::RUST_PROJECT;

/// Write rust-project.json for the module to `dest` with Kbuild's
/// `rust-analyzer` target (it writes the file into the `MO=` directory),
/// adapted by [`use_sysroot_src`] for the Rust library source `lib_src`.
pub fn write(
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
    let out = (out.canonicalize()).with_context(|| format!("resolving {}", out.display()))?;
    let generated = out.join(RUST_PROJECT);
    let _ = std::fs::remove_file(&generated);
    let mut cmd = crate::build::module::kbuild(tree, &src, &out, env)?;
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
