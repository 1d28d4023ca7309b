//! Out-of-tree modules: built with the kernel's own Kbuild against exactly the
//! pinned tree, and checked to carry that kernel's vermagic.

use crate::build::kernel::KernelTree;
use crate::build::progress::{run_logged_explained, warning_lines};
use crate::build::{module_dir, module_failure};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options for one module build.
pub struct ModuleBuild<'a> {
    pub tree: &'a KernelTree,
    /// The module's source directory (with a Kbuild file).
    pub src: &'a Path,
    /// Where objects and `.ko` files go (Kbuild `MO=`), keeping `src` clean.
    pub out: &'a Path,
    pub env: &'a [(String, OsString)],
    /// Extra make arguments, e.g. `CLIPPY=1`.
    pub extra: &'a [String],
    /// The pin's `[kconfig] fragments`, named in the advice when a `#[cfg]`
    /// left out an item the module uses.
    pub shared_fragments: &'a [String],
    /// The `lkmlab doc` command of the tree's target, which a failure whose
    /// errors name `kernel` items points at.
    pub doc_command: &'a str,
}

/// `make -C <tree> M=<src> MO=<out> ARCH=… -k -jN`: Kbuild on an
/// out-of-tree module, objects kept out of its source directory. With `-k`
/// an object that fails does not stop the others: every module of the
/// directory gets its errors reported. Targets and variables are for the
/// caller to add.
///
/// A kernel older than `MO=` (6.12) writes the objects beside the sources:
/// for it, `out` gets a link to each source file (see [`mirror_sources`]) and
/// Kbuild runs with `M=<out>`, its messages' paths mapped back to `src`.
pub fn kbuild(
    tree: &KernelTree,
    src: &Path,
    out: &Path,
    env: &[(String, OsString)],
) -> Result<Command> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cmd = Command::new("make");
    cmd.arg("-k").arg("-C").arg(&tree.dir);
    if tree.module_output {
        cmd.arg(format!("M={}", src.display()))
            .arg(format!("MO={}", out.display()));
    } else {
        mirror_sources(src, out)?;
        cmd.arg(format!("M={}", out.display())).env(
            "KRUSTFLAGS",
            format!("--remap-path-prefix={}={}", out.display(), src.display()),
        );
    }
    cmd.arg(format!("ARCH={}", tree.target.arch.kbuild()))
        .arg(&tree.compiler_var)
        .arg(format!("-j{jobs}"))
        .envs(env.iter().map(|(k, v)| (k, v)));
    Ok(cmd)
}

/// Make `out` a stand-in for the module directory `src`: a symbolic link to
/// each of its source files ([`module_dir::files`]) at the same relative
/// path, and no link to a file `src` no longer has. Objects then land in
/// `out`, never in `src`.
pub fn mirror_sources(src: &Path, out: &Path) -> Result<()> {
    let sources = module_dir::files(src, module_dir::Walk::Sources, false)?;
    // Links from an earlier mirror: a removed or renamed source must not
    // stay behind.
    for old in module_dir::files(out, module_dir::Walk::Sources, false)? {
        if old.is_symlink() {
            std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
        }
    }
    for file in sources {
        let rel = file.strip_prefix(src).unwrap_or(&file);
        let link = out.join(rel);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::os::unix::fs::symlink(&file, &link)
            .with_context(|| format!("linking {} to {}", link.display(), file.display()))?;
    }
    Ok(())
}

/// Bump when the way lkmlab builds modules changes.
const MODULE_RECIPE: &str = "lkmlab-module-recipe-2";
/// Beside the objects: the key of the inputs the `.ko` files were built from.
const MODULE_KEY: &str = "lkmlab-module.key";

/// Whether a build produced the `.ko` files or found them up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    Rebuilt,
    UpToDate,
}

/// Build the module and return its `.ko` files, each checked for vermagic.
/// Nothing is rebuilt when the inputs' key (see [`input_key`]) is the one
/// the last successful build in `out` recorded.
pub fn build(b: &ModuleBuild) -> Result<(Vec<PathBuf>, Built)> {
    let src = b
        .src
        .canonicalize()
        .with_context(|| format!("module directory {}", b.src.display()))?;
    module_dir::check_buildable(&src, "module directory")?;
    check_compiler(b.tree, b.extra)?;
    std::fs::create_dir_all(b.out).with_context(|| format!("creating {}", b.out.display()))?;
    let out = (b.out.canonicalize()).with_context(|| format!("resolving {}", b.out.display()))?;
    let key = input_key(b, &src, &out, &kbuild_environment(std::env::vars_os()))?;
    let key_file = out.join(MODULE_KEY);
    let recorded = std::fs::read_to_string(&key_file).unwrap_or_default();
    if recorded_key_holds(&recorded, &key) {
        if let Ok(kos) = find_kos(&out) {
            if !kos.is_empty()
                && kos
                    .iter()
                    .all(|ko| check_vermagic(ko, &b.tree.release).is_ok())
            {
                return Ok((kos, Built::UpToDate));
            }
        }
    }
    // A build that fails half way must not leave the old key behind.
    let _ = std::fs::remove_file(&key_file);
    crate::status!(
        "building {} against {}",
        src.display(),
        b.tree.dir.display()
    );
    let mut cmd = kbuild(b.tree, &src, &out, b.env)?;
    cmd.args(b.extra).arg("modules");
    let log = out.join("build.log");
    run_logged_explained(&mut cmd, &log, "module build", |text| {
        module_failure::explain(text, b.tree, b.shared_fragments, b.doc_command)
    })?;
    show_warnings(&log);

    let kos = find_kos(&out)?;
    if kos.is_empty() {
        bail!(
            "the module build produced no .ko files in {}; does {}/Kbuild list obj-m?",
            out.display(),
            src.display()
        );
    }
    for ko in &kos {
        check_vermagic(ko, &b.tree.release)?;
    }
    // The kernel's build tree and its source (the tree's `source` link, for
    // an `O=` build) are keyed by the tree's stamp; `out` holds products.
    // Canonical, as the dependencies are compared canonicalized.
    let tree = b.tree.dir.canonicalize().ok();
    let source = b.tree.dir.join("source").canonicalize().ok();
    let keyed: Vec<&Path> = [tree.as_deref(), source.as_deref(), Some(&out)]
        .into_iter()
        .flatten()
        .collect();
    let record = key_record(&key, &kbuild_dependencies(&out, &keyed));
    crate::util::write_atomic(&key_file, record.as_bytes())?;
    Ok((kos, Built::Rebuilt))
}

/// The key file's text: the inputs' key on the first line, then one
/// `SHA256 PATH` line for each file of `deps` (what Kbuild recorded the
/// build read outside the kernel tree).
fn key_record(key: &str, deps: &[PathBuf]) -> String {
    let mut record = format!("{key}\n");
    for dep in deps {
        if let Ok(hash) = crate::source::fetch::sha256_file(dep) {
            record.push_str(&format!("{hash} {}\n", dep.display()));
        }
    }
    record
}

/// Whether a key file's text (see [`key_record`]) records `key`, and every
/// dependency it lists still has the content it had: a header included from
/// outside the module directory, a hidden file a `#[path]` names, an
/// `include!`d file are then covered although [`input_key`] does not read them.
fn recorded_key_holds(record: &str, key: &str) -> bool {
    let mut lines = record.lines();
    if lines.next() != Some(key) {
        return false;
    }
    lines.all(|line| {
        line.split_once(' ').is_some_and(|(hash, path)| {
            crate::source::fetch::sha256_file(Path::new(path)).is_ok_and(|h| h == hash)
        })
    })
}

/// The files Kbuild recorded that the objects in `out` were built from (the
/// `source_*` and `deps_*` lists of its `.*.cmd` files; for a Rust object
/// they hold rustc's dep-info, so `#[path]` modules and `include!`d files
/// are there), except those under a directory of `keyed` (keyed otherwise)
/// and Kconfig's `$(wildcard …)` entries. Sorted, canonical, each once; only
/// files that exist (a relative path is taken from `out`, Kbuild's working
/// directory with `MO=`). The `.cmd` files of objects in subdirectories
/// (`m-y := sub/b.o`) are read too.
fn kbuild_dependencies(out: &Path, keyed: &[&Path]) -> Vec<PathBuf> {
    let mut deps = std::collections::BTreeSet::new();
    for file in build_products(out) {
        let is_cmd = file.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n.starts_with('.') && n.ends_with(".cmd")
        });
        if !is_cmd {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for path in cmd_file_dependencies(&text) {
            let Ok(path) = out.join(path).canonicalize() else {
                continue;
            };
            if !keyed.iter().any(|dir| path.starts_with(dir)) && path.is_file() {
                deps.insert(path);
            }
        }
    }
    deps.into_iter().collect()
}

/// Every regular file in a module build's output folder `out` and its
/// subfolders: what Kbuild wrote there. Links (a mirror's sources, see
/// [`mirror_sources`]) are neither taken nor followed.
pub fn build_products(out: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(entry.path()),
                Ok(t) if t.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

/// The paths of a Kbuild `.cmd` file's `source_X := PATH` and
/// `deps_X := \` lists (one path per continued line).
fn cmd_file_dependencies(text: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        if in_deps {
            let item = line.trim().trim_end_matches('\\').trim();
            if !item.is_empty() && !item.starts_with("$(") {
                paths.push(item);
            }
            in_deps = line.trim_end().ends_with('\\');
        } else if let Some(rest) = line.strip_prefix("source_") {
            if let Some((_, path)) = rest.split_once(" := ") {
                paths.push(path.trim());
            }
        } else if line.starts_with("deps_") && line.trim_end().ends_with('\\') {
            in_deps = true;
        }
    }
    paths
}

/// Environment variables Kbuild reads as make variables
/// (Documentation/kbuild/kbuild.rst, Documentation/kbuild/llvm.rst): any of
/// these set in lkmlab's environment reaches the module's `make` and can
/// change what it builds (`KBUILD_MODPOST_WARN=1` turns modpost's errors
/// into warnings, `KCFLAGS` adds flags), so it is part of the build's key.
#[rustfmt::skip]
const KBUILD_ENV: &[&str] = &[
    "ARCH", "CROSS_COMPILE", "LLVM", "LLVM_IAS", "CC", "LD", "AR", "NM", "OBJCOPY", "OBJDUMP",
    "STRIP", "HOSTCC", "HOSTCXX", "HOSTRUSTC", "RUSTC", "BINDGEN", "CLIPPY", "KCFLAGS",
    "KCPPFLAGS", "KAFLAGS", "KRUSTFLAGS", "CFLAGS_MODULE", "AFLAGS_MODULE", "LDFLAGS_MODULE",
    "RUSTFLAGS_MODULE", "RUST_LIB_SRC", "LIBCLANG_PATH", "W", "C", "CF", "HOSTCFLAGS",
    "HOSTCXXFLAGS", "HOSTLDFLAGS", "HOSTRUSTFLAGS", "USERCFLAGS", "USERLDFLAGS",
];

/// The variables of `vars` (the process environment) that Kbuild reads:
/// [`KBUILD_ENV`] and every `KBUILD_*`, sorted; and of `MAKEFLAGS` (set when
/// lkmlab runs under another make) the variables it passes on (`VAR=value`
/// after its ` -- `), not its job server, which changes every run.
pub fn kbuild_environment(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = Vec::new();
    for (k, v) in vars {
        let name = k.to_string_lossy();
        if name.starts_with("KBUILD_") || KBUILD_ENV.contains(&name.as_ref()) {
            out.push((k, v));
        } else if name == "MAKEFLAGS" {
            let flags = v.to_string_lossy();
            if let Some((_, assignments)) = flags.split_once(" -- ") {
                let assignments = OsString::from(assignments.trim());
                out.push((k, assignments));
            }
        }
    }
    out.sort();
    out
}

/// The sha256 of everything a module build reads that lkmlab can see: every
/// file of the module directory (path, mode, content; not `guest-tests/`,
/// hidden files, `rust-project.json` or a `target/` directory, which Kbuild
/// does not read), the kernel tree (its directory, keyed by the kernel's own
/// inputs, and its build stamp), the make variables, lkmlab's environment
/// for make and the caller's (`process_env`: [`kbuild_environment`]), where
/// the objects go, and lkmlab's recipe.
pub fn input_key(
    b: &ModuleBuild,
    src: &Path,
    out: &Path,
    process_env: &[(OsString, OsString)],
) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field("recipe", MODULE_RECIPE.as_bytes());
    field("lkmlab", env!("CARGO_PKG_VERSION").as_bytes());
    field("tree", b.tree.dir.as_os_str().as_encoded_bytes());
    let stamp = std::fs::read(b.tree.dir.join("lkmlab-build.json")).unwrap_or_default();
    field("tree-stamp", &stamp);
    field("compiler", b.tree.compiler_var.as_bytes());
    for v in b.extra {
        field("make-var", v.as_bytes());
    }
    for (k, v) in b.env {
        field("env", k.as_bytes());
        field("env-value", v.as_encoded_bytes());
    }
    for (k, v) in process_env {
        field("process-env", k.as_encoded_bytes());
        field("process-env-value", v.as_encoded_bytes());
    }
    field("src", src.as_os_str().as_encoded_bytes());
    field("out", out.as_os_str().as_encoded_bytes());
    for (rel, mode, content) in source_files(src)? {
        field("file", rel.as_encoded_bytes());
        field("mode", &mode.to_le_bytes());
        field("content", &content);
    }
    Ok(crate::source::fetch::hex(&h.finalize()))
}

/// The files of a module directory that its build can read, sorted: each
/// with its path in the directory, its mode and its content.
fn source_files(src: &Path) -> Result<Vec<(std::ffi::OsString, u32, Vec<u8>)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    for path in module_dir::files(src, module_dir::Walk::Sources, false)? {
        let meta =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let content =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let rel = path
            .strip_prefix(src)
            .unwrap_or(&path)
            .as_os_str()
            .to_owned();
        files.push((rel, meta.permissions().mode(), content));
    }
    Ok(files)
}

/// The value a `NAME=value` make argument gives NAME, the last one winning
/// as in make.
fn make_var<'v>(vars: &'v [String], name: &str) -> Option<&'v str> {
    vars.iter()
        .rev()
        .find_map(|v| v.strip_prefix(name)?.strip_prefix('='))
}

/// A module must be built with the compiler its kernel was built with
/// (Kbuild only warns, "the compiler differs from the one used to build the
/// kernel"; with clang vs gcc the module then fails or misbehaves). lkmlab
/// passes the tree's own `LLVM=`; a `CC=` or `LLVM=` among the extra make
/// variables that picks another compiler is refused here, before make runs.
fn check_compiler(tree: &KernelTree, extra: &[String]) -> Result<()> {
    let cc = match (make_var(extra, "CC"), make_var(extra, "LLVM")) {
        (Some(cc), _) => cc.to_string(),
        (None, Some(llvm)) => crate::build::toolchain::c_compiler_for(llvm),
        (None, None) => return Ok(()),
    };
    let text = crate::build::toolchain::cc_version_text(&cc)
        .with_context(|| format!("the module build would run {cc}"))?;
    if text != tree.cc_version_text {
        bail!(
            "the module would be built with another compiler than its kernel:\n  \
             kernel {} ({}) was built by: {}\n  \
             this build would use:        {text} ({cc})\n\
             Drop the CC=/LLVM= make variables: lkmlab builds the module with the tree's own \
             compiler ({}). To use another compiler, give the flavor `compiler = \"gcc\"` or \
             `\"llvm\"` in lkmlab.toml [kconfig.flavors.{}] so that its kernel is built with it too.",
            tree.release,
            tree.target.label(),
            tree.cc_version_text,
            tree.compiler_var,
            tree.target.flavor_name
        );
    }
    Ok(())
}

/// A build that succeeds keeps its output in the log; its warnings are
/// still the developer's business, so they are shown.
fn show_warnings(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let warnings = warning_lines(&text);
    if !warnings.is_empty() {
        crate::notice!(
            "the module built with warnings (full log: {}):\n{}",
            log.display(),
            warnings.join("\n")
        );
    }
}

/// The `.ko` files Kbuild just built, from the `modules.order` it writes
/// (`MO=` also holds a `source` link back to the module directory, so a
/// directory walk would find stale or duplicate files).
fn find_kos(out: &Path) -> Result<Vec<PathBuf>> {
    let order = out.join("modules.order");
    let text = std::fs::read_to_string(&order)
        .with_context(|| format!("reading {} (written by Kbuild)", order.display()))?;
    let mut kos = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let ko = out.join(Path::new(line).with_extension("ko"));
        if !ko.is_file() {
            bail!(
                "Kbuild listed {line} in modules.order but {} is missing",
                ko.display()
            );
        }
        kos.push(ko);
    }
    Ok(kos)
}

/// The `vermagic=` string in a module's `.modinfo`.
pub fn vermagic(ko: &[u8]) -> Option<String> {
    let key = b"vermagic=";
    let start = ko.windows(key.len()).position(|w| w == key)? + key.len();
    let end = ko[start..].iter().position(|&b| b == 0)? + start;
    Some(String::from_utf8_lossy(&ko[start..end]).into_owned())
}

/// Refuse a module built for another kernel release.
pub fn check_vermagic(ko: &Path, release: &str) -> Result<()> {
    let bytes = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    let Some(magic) = vermagic(&bytes) else {
        bail!(
            "{} has no vermagic: it is not a kernel module",
            ko.display()
        );
    };
    let built_for = magic.split_whitespace().next().unwrap_or_default();
    if built_for != release {
        bail!(
            "{} was built for kernel {built_for:?} (vermagic {magic:?}) but the kernel to \
             load it is {release}; that kernel would refuse it. Build the module against \
             that kernel's own tree (`lkmlab module`).",
            ko.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vermagic_is_read_from_modinfo() {
        let blob = b"\x7fELF....license=GPL\0vermagic=7.3.4 SMP preempt mod_unload \0name=hello\0";
        assert_eq!(vermagic(blob).unwrap(), "7.3.4 SMP preempt mod_unload ");
        assert!(vermagic(b"no modinfo here").is_none());
    }

    #[test]
    fn a_module_for_another_release_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ko = dir.path().join("hello.ko");
        std::fs::write(&ko, b"vermagic=6.1.0 SMP mod_unload \0").unwrap();
        let err = check_vermagic(&ko, "7.3.4").unwrap_err().to_string();
        assert!(err.contains("6.1.0") && err.contains("7.3.4"), "{err}");
        std::fs::write(&ko, b"vermagic=7.3.4 SMP preempt mod_unload \0").unwrap();
        check_vermagic(&ko, "7.3.4").unwrap();
    }

    fn tree(dir: &Path) -> KernelTree {
        KernelTree {
            dir: dir.to_path_buf(),
            release: "7.3.4".into(),
            target: crate::config::target::Target::example(crate::config::arch::Arch::X86_64),
            compiler: crate::config::pin::Compiler::Gcc,
            cc_version_text: "gcc 12".into(),
            compiler_var: "LLVM=".into(),
            config: Default::default(),
            module_output: true,
        }
    }

    #[test]
    fn a_mirror_links_every_source_and_drops_links_to_removed_ones() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("Kbuild"), "obj-m := a.o\n").unwrap();
        std::fs::write(src.path().join("a.rs"), "").unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/b.rs"), "").unwrap();
        std::fs::write(src.path().join("old.rs"), "").unwrap();
        mirror_sources(src.path(), out.path()).unwrap();
        // A product of the last build, beside the links.
        std::fs::write(out.path().join("a.o"), "").unwrap();
        std::fs::remove_file(src.path().join("old.rs")).unwrap();
        mirror_sources(src.path(), out.path()).unwrap();
        for rel in ["Kbuild", "a.rs", "sub/b.rs"] {
            let link = out.path().join(rel);
            assert_eq!(
                std::fs::read_link(&link).unwrap(),
                src.path().join(rel),
                "{rel}"
            );
        }
        assert!(
            !out.path().join("old.rs").exists(),
            "a removed source's link stays"
        );
        assert!(out.path().join("a.o").is_file(), "products are left alone");
    }

    #[test]
    fn every_input_of_a_module_build_changes_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("m");
        std::fs::create_dir_all(src.join("guest-tests")).unwrap();
        std::fs::write(src.join("Kbuild"), "obj-m := m.o\n").unwrap();
        std::fs::write(src.join("m.rs"), "// one\n").unwrap();
        let (tree_a, tree_b) = (tree(&dir.path().join("ka")), tree(&dir.path().join("kb")));
        let out = dir.path().join("out");
        let key_with = |t: &KernelTree, extra: &[String], env: &[(OsString, OsString)]| {
            let b = ModuleBuild {
                tree: t,
                src: &src,
                out: &out,
                env: &[],
                extra,
                shared_fragments: &[],
                doc_command: "lkmlab doc",
            };
            input_key(&b, &src, &out, env).unwrap()
        };
        let key = |t: &KernelTree, extra: &[String]| key_with(t, extra, &[]);
        let base = key(&tree_a, &[]);
        assert_eq!(base, key(&tree_a, &[]), "the same inputs, the same key");
        // Not read by Kbuild: no rebuild.
        std::fs::write(src.join("guest-tests/t.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(src.join("rust-project.json"), "{}").unwrap();
        assert_eq!(base, key(&tree_a, &[]));
        // A source file, the Kbuild file, a new file, a flag, the kernel.
        std::fs::write(src.join("m.rs"), "// two\n").unwrap();
        let edited = key(&tree_a, &[]);
        assert_ne!(base, edited);
        std::fs::write(src.join("Kbuild"), "obj-m := m.o\nccflags-y := -DX\n").unwrap();
        let kbuild = key(&tree_a, &[]);
        assert_ne!(edited, kbuild);
        std::fs::create_dir(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/helper.h"), "#define X 1\n").unwrap();
        let added = key(&tree_a, &[]);
        assert_ne!(kbuild, added);
        assert_ne!(added, key(&tree_a, &["CLIPPY=1".to_string()]));
        assert_ne!(added, key(&tree_b, &[]));
        // A Kbuild variable in the environment (this one once let a module
        // whose modpost failed be reused from a run that had it).
        let env = kbuild_environment([("KBUILD_MODPOST_WARN".into(), "1".into())]);
        assert_ne!(added, key_with(&tree_a, &[], &env));
    }

    #[test]
    fn only_the_variables_kbuild_reads_are_part_of_the_key() {
        let vars = [
            ("TERM", "xterm"),
            ("KCFLAGS", "-O1"),
            ("PWD", "/x"),
            ("KBUILD_MODPOST_WARN", "1"),
            ("LLVM", "-19"),
            (
                "MAKEFLAGS",
                "-j2 --jobserver-auth=fifo:/tmp/GMfifo123 -- KCFLAGS=-O1",
            ),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let got: Vec<(String, String)> = kbuild_environment(vars)
            .into_iter()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect();
        let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["KBUILD_MODPOST_WARN", "KCFLAGS", "LLVM", "MAKEFLAGS"]
        );
        // The job server's pipe changes every run: only the variables count.
        assert_eq!(got[3].1, "KCFLAGS=-O1");
    }

    #[test]
    fn kbuild_cmd_files_name_sources_and_dependencies() {
        let text = "savedcmd_m.o := rustc ... m.rs\n\
                    source_m.o := /src/m/m.rs\n\
                    deps_m.o := \\\n  /k/rust/libkernel.rmeta \\\n  /src/m/.gen.rs \\\n  \
                    $(wildcard include/config/X) \\\n  ../shared/h.h \\\n\n\
                    m.o: $(deps_m.o)\n$(deps_m.o):\n";
        assert_eq!(
            cmd_file_dependencies(text),
            [
                "/src/m/m.rs",
                "/k/rust/libkernel.rmeta",
                "/src/m/.gen.rs",
                "../shared/h.h"
            ]
        );
    }

    #[test]
    fn a_recorded_dependency_outside_the_module_invalidates_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        // Canonical, as the dependencies are (the temporary directory may be
        // reached through a link).
        let dir = tmp.path().canonicalize().unwrap();
        let (out, tree) = (dir.as_path().join("out"), dir.as_path().join("tree"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&tree).unwrap();
        let header = dir.as_path().join("shared.h");
        std::fs::write(&header, "#define X 1\n").unwrap();
        std::fs::write(tree.join("k.h"), "").unwrap();
        let cmd = format!(
            "deps_m.o := \\\n  {} \\\n  {} \\\n  gone.h \\\n\n",
            header.display(),
            tree.join("k.h").display()
        );
        std::fs::write(out.join(".m.o.cmd"), cmd).unwrap();
        let src = dir.as_path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("m.c"), "int x;\n").unwrap();
        std::fs::write(out.join("m.mod.c"), "").unwrap();
        let cmd = format!(
            "source_m.o := {}\ndeps_m.o := \\\n  m.mod.c \\\n\n",
            src.join("m.c").display()
        );
        std::fs::write(out.join(".m.mod.o.cmd"), cmd).unwrap();
        // An object in a subdirectory of the module has its .cmd file there.
        std::fs::create_dir_all(out.join("sub")).unwrap();
        let sub_header = dir.as_path().join("sub.h");
        std::fs::write(&sub_header, "").unwrap();
        let cmd = "deps_sub/b.o := \\\n  ../sub.h \\\n\n";
        std::fs::write(out.join("sub/.b.o.cmd"), cmd).unwrap();
        // The kernel tree's file, a product in `out` and a file that is not
        // there are left out; the relative path is taken from `out`.
        let deps = kbuild_dependencies(&out, &[&tree, &out]);
        assert_eq!(deps, [header.clone(), src.join("m.c"), sub_header]);
        let record = key_record("k1", &deps);
        assert!(recorded_key_holds(&record, "k1"));
        assert!(!recorded_key_holds(&record, "k2"), "another key");
        std::fs::write(&header, "#define X 2\n").unwrap();
        assert!(!recorded_key_holds(&record, "k1"), "the header changed");
        std::fs::remove_file(&header).unwrap();
        assert!(!recorded_key_holds(&record, "k1"), "the header is gone");
        // A record without dependencies holds on its key alone.
        assert!(recorded_key_holds("k1\n", "k1"));
    }

    #[test]
    fn the_last_make_variable_wins() {
        let vars = ["LLVM=-19".to_string(), "V=1".into(), "LLVM=".into()];
        assert_eq!(make_var(&vars, "LLVM"), Some(""));
        assert_eq!(make_var(&vars, "V"), Some("1"));
        assert_eq!(make_var(&vars, "CC"), None);
        assert_eq!(make_var(&["LLVM_IAS=0".to_string()], "LLVM"), None);
    }
}
