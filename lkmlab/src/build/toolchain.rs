//! The host toolchain the kernel build uses: rustc and its library source,
//! bindgen and libclang, checked against the kernel's minimums.

use crate::config::paths::Paths;
use crate::config::pin::{Compiler, Version};
use crate::config::project::Project;
use crate::process::{output_of, run_quiet};
use crate::source::fetch::{extract_from_deb, Fetcher};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool_version(program: &str, arg: &str) -> Result<Version> {
    let out = output_of(Command::new(program).arg(arg), program)?;
    Version::find_in(&out)
        .with_context(|| format!("cannot read a version from `{program} {arg}`: {out}"))
}

pub fn rustc_version() -> Result<Version> {
    tool_version("rustc", "--version")
}

pub fn bindgen_version() -> Result<Version> {
    tool_version("bindgen", "--version")
}

/// The libclang that bindgen loads, found the way the kernel's
/// `scripts/rust_is_available.sh` does: bindgen reports `__clang_version__`.
pub fn libclang_version(libclang_path: Option<&Path>) -> Result<Version> {
    let dir = crate::util::temp_dir("libclang")?;
    let header = dir.path().join("libclang_version.h");
    std::fs::write(
        &header,
        "#pragma message(\"clang version \" __clang_version__)\n",
    )?;
    let mut cmd = Command::new("bindgen");
    cmd.arg(&header).env("LC_ALL", "C");
    if let Some(p) = libclang_path {
        cmd.env("LIBCLANG_PATH", p);
    }
    let out = output_of(&mut cmd, "bindgen")?;
    let after = out
        .split("clang version ")
        .nth(1)
        .with_context(|| format!("bindgen did not report a libclang version: {}", out.trim()))?;
    Version::find_in(after).context("unreadable libclang version")
}

/// `LIBCLANG_PATH` from the environment, else the pinned directory if it exists.
pub fn libclang_path(project: &Project) -> Option<PathBuf> {
    std::env::var_os("LIBCLANG_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let pinned = PathBuf::from(&project.pin.toolchain.libclang_path);
            pinned.is_dir().then_some(pinned)
        })
}

/// The active rustc's own library source, if its sysroot has it (rustup's
/// `rust-src` component).
pub fn sysroot_library() -> Option<PathBuf> {
    let sysroot = run_quiet(Command::new("rustc").args(["--print", "sysroot"]), "rustc").ok()?;
    let lib = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library");
    lib.join("core/src/lib.rs").is_file().then_some(lib)
}

/// Where the Rust library source comes from, in order of preference.
#[derive(Debug, Clone)]
pub enum LibSrc {
    /// `RUST_LIB_SRC` was set by the user (or by Nix).
    Env(PathBuf),
    /// The active rustc's sysroot has it.
    Sysroot(PathBuf),
    /// The pinned Debian rust-src package is needed.
    Pinned,
}

pub fn lib_src_source() -> LibSrc {
    if let Some(p) = std::env::var_os("RUST_LIB_SRC").filter(|v| !v.is_empty()) {
        return LibSrc::Env(PathBuf::from(p));
    }
    match sysroot_library() {
        Some(p) => LibSrc::Sysroot(p),
        None => LibSrc::Pinned,
    }
}

/// The Rust library source for the kernel build (`RUST_LIB_SRC`), fetching
/// and unpacking the pinned rust-src package only when nothing else has it.
pub fn rust_lib_src(project: &Project, paths: &Paths, fetcher: &Fetcher) -> Result<PathBuf> {
    match lib_src_source() {
        LibSrc::Env(p) => {
            if !p.join("core/src/lib.rs").is_file() {
                bail!(
                    "RUST_LIB_SRC={} has no core/src/lib.rs; point it at a Rust `library` directory",
                    p.display()
                );
            }
            Ok(p)
        }
        LibSrc::Sysroot(p) => Ok(p),
        LibSrc::Pinned => pinned_rust_src(project, paths, fetcher),
    }
}

/// Where the Rust library source [`rust_lib_src`] gives is, without
/// fetching or unpacking anything (for keys of what was built from it).
pub fn rust_lib_src_path(project: &Project, paths: &Paths) -> PathBuf {
    match lib_src_source() {
        LibSrc::Env(p) | LibSrc::Sysroot(p) => p,
        LibSrc::Pinned => {
            let pin = &project.pin.toolchain.rust_src;
            paths.rust_src(&pin.deb.sha256).join(&pin.library)
        }
    }
}

fn pinned_rust_src(project: &Project, paths: &Paths, fetcher: &Fetcher) -> Result<PathBuf> {
    let pin = &project.pin.toolchain.rust_src;
    let rustc = rustc_version()?;
    let want = &pin.rustc;
    if rustc.0.get(..2) != want.0.get(..2) {
        bail!(
            "the active rustc is {rustc} and its sysroot has no library source; the pinned \
             rust-src package is for rustc {want}. Install rustc {want} (rustup toolchain \
             install {want}), add the component (rustup component add rust-src), or set \
             RUST_LIB_SRC to a matching library directory."
        );
    }
    let dir = paths.rust_src(&pin.deb.sha256);
    let has_core = |dir: &Path| dir.join(&pin.library).join("core/src/lib.rs").is_file();
    if has_core(&dir) {
        return Ok(dir.join(&pin.library));
    }
    let deb = fetcher.get(&pin.deb)?;
    crate::lock::fill_once(
        &dir,
        "unpacking the Rust library source",
        has_core,
        |staging| {
            crate::status!("unpacking {}", pin.deb.file);
            extract_from_deb(&deb, &pin.library, staging)?;
            if !has_core(staging) {
                bail!(
                    "{} does not contain {}/core/src/lib.rs; [toolchain.rust_src] library is wrong",
                    pin.deb.file,
                    pin.library
                );
            }
            Ok(())
        },
    )?;
    Ok(dir.join(&pin.library))
}

/// The environment every kernel and module `make` runs with.
pub fn make_env(project: &Project, rust_lib_src: Option<&Path>) -> Vec<(String, OsString)> {
    let mut env = Vec::new();
    if let Some(p) = rust_lib_src {
        env.push(("RUST_LIB_SRC".to_string(), p.as_os_str().to_owned()));
    }
    if let Some(p) = libclang_path(project) {
        env.push(("LIBCLANG_PATH".to_string(), p.into_os_string()));
    }
    env
}

/// The make variable that picks a tree's compiler: `LLVM=<[toolchain] llvm>`
/// for LLVM, and an explicit empty `LLVM=` for GCC, so that an `LLVM` in the
/// user's environment cannot switch a GCC tree (or its modules) to clang.
pub fn compiler_var(project: &Project, compiler: Compiler) -> String {
    match compiler {
        Compiler::Gcc => "LLVM=".to_string(),
        Compiler::Llvm => format!("LLVM={}", project.pin.toolchain.llvm),
    }
}

/// An LLVM tool as Kbuild names it for `LLVM=<llvm>`: `-19` is a suffix
/// (`clang-19`), a value ending in `/` a directory prefix, `1` neither.
pub fn llvm_tool(llvm: &str, tool: &str) -> String {
    if llvm.ends_with('/') {
        format!("{llvm}{tool}")
    } else if llvm.starts_with('-') {
        format!("{tool}{llvm}")
    } else {
        tool.to_string()
    }
}

/// The C compiler Kbuild runs for a value of `LLVM=` (empty: GCC).
pub fn c_compiler_for(llvm: &str) -> String {
    if llvm.is_empty() {
        "gcc".to_string()
    } else {
        llvm_tool(llvm, "clang")
    }
}

/// The first line of `cc --version`, as Kbuild records it in
/// `CONFIG_CC_VERSION_TEXT` (with `#` removed).
pub fn cc_version_text(cc: &str) -> Result<String> {
    let out = output_of(Command::new(cc).arg("--version").env("LC_ALL", "C"), cc)?;
    Ok(out.lines().next().unwrap_or_default().replace('#', ""))
}

/// The LLVM tools Kbuild runs with `LLVM=`, for doctor and the build.
pub const LLVM_TOOLS: &[&str] = &[
    "clang",
    "ld.lld",
    "llvm-ar",
    "llvm-nm",
    "llvm-objcopy",
    "llvm-objdump",
    "llvm-readelf",
    "llvm-strip",
];

/// The LLVM tools `LLVM=<[toolchain] llvm>` runs, checked: each found, clang
/// at least `min` (the kernel's minimum). `Ok` holds clang's version; `Err`
/// what is wrong, with the fix.
pub fn check_llvm(project: &Project, min: &Version) -> Result<Version> {
    let tc = &project.pin.toolchain;
    let missing: Vec<String> = LLVM_TOOLS
        .iter()
        .map(|t| llvm_tool(tc.llvm.as_str(), t))
        .filter(|t| crate::util::which(t).is_none())
        .collect();
    let fix = match tc.llvm.as_str().strip_prefix('-') {
        Some(v) if v.chars().all(|c| c.is_ascii_digit()) => {
            format!("sudo apt-get install clang-{v} lld-{v} llvm-{v}")
        }
        _ => format!(
            "install clang, lld and the LLVM binutils so that LLVM={} finds them",
            tc.llvm
        ),
    };
    if !missing.is_empty() {
        bail!("not found on PATH: {}; fix: {fix}", missing.join(", "));
    }
    let clang = llvm_tool(tc.llvm.as_str(), "clang");
    let version = tool_version(&clang, "--version")?;
    if version < *min {
        bail!("{clang} is {version}, older than the kernel's minimum {min}; fix: {fix}");
    }
    Ok(version)
}

/// [`libclang_version`], remembered in the cache under what decides it: the
/// bindgen executable and the libclang libraries of `dir` (see
/// [`remembered`]). The probe loads libclang into bindgen: 0.1-0.4 s here,
/// on every `lkmlab kernel`, `test` or `check`. Without a known libclang
/// directory (bindgen searches for one itself) nothing is remembered.
pub fn libclang_version_cached(paths: &Paths, dir: Option<&Path>) -> Result<Version> {
    let (Some(dir), Some(bindgen)) = (dir, crate::util::which("bindgen")) else {
        return libclang_version(dir);
    };
    let mut files = vec![bindgen];
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut libs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("libclang"))
            })
            .collect();
        libs.sort();
        files.extend(libs);
    }
    let text = remembered(paths, "libclang", &files, || {
        libclang_version(Some(dir)).map(|v| v.to_string())
    })?;
    Version::parse(&text).with_context(|| format!("unreadable libclang version {text:?}"))
}

/// What `probe` says, remembered in the cache (`toolchain/NAME-<identity>`)
/// under the identity of `files` (path, size, modification time and inode
/// of each), so that changing any of them probes again. A cache that cannot
/// be read or written costs only the probe.
pub fn remembered(
    paths: &Paths,
    name: &str,
    files: &[PathBuf],
    probe: impl FnOnce() -> Result<String>,
) -> Result<String> {
    let Some(identity) = files_identity(files) else {
        return probe();
    };
    let dir = paths.cache.join("toolchain");
    let memo = dir.join(format!("{name}-{identity}"));
    if let Ok(text) = std::fs::read_to_string(&memo) {
        if !text.trim().is_empty() {
            return Ok(text.trim().to_string());
        }
    }
    let answer = probe()?;
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = crate::util::write_atomic(&memo, answer.as_bytes());
    }
    Ok(answer)
}

/// A hash of each file's path, size, modification time and inode (following
/// symbolic links); `None` if one cannot be read.
fn files_identity(files: &[PathBuf]) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    for f in files {
        let m = std::fs::metadata(f).ok()?;
        h.update(f.as_os_str().as_encoded_bytes());
        h.update(
            format!(
                "\0{} {} {} {}\0",
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ino()
            )
            .as_bytes(),
        );
    }
    Some(crate::source::fetch::hex(&h.finalize())[..16].to_string())
}

/// The versions that go into the kernel cache key: the compiler and linker
/// the flavor builds with, rustc, bindgen and libclang.
pub fn fingerprint(
    project: &Project,
    paths: &Paths,
    compiler: Compiler,
) -> Result<Vec<(String, String)>> {
    let first_line = |program: &str| -> Result<String> {
        let out = output_of(Command::new(program).arg("--version"), program)?;
        Ok(out.lines().next().unwrap_or_default().to_string())
    };
    let rustc = output_of(Command::new("rustc").arg("-vV"), "rustc")?;
    let mut inputs = match compiler {
        Compiler::Gcc => vec![("gcc".to_string(), first_line("gcc")?)],
        Compiler::Llvm => {
            let llvm = &project.pin.toolchain.llvm;
            vec![
                (
                    "clang".to_string(),
                    first_line(&llvm_tool(llvm.as_str(), "clang"))?,
                ),
                (
                    "ld.lld".to_string(),
                    first_line(&llvm_tool(llvm.as_str(), "ld.lld"))?,
                ),
            ]
        }
    };
    // Kbuild records pahole's version in the .config (CONFIG_PAHOLE_VERSION,
    // 0 without one) and compares it when a module is built.
    let pahole = match crate::util::which("pahole") {
        Some(_) => first_line("pahole")?,
        None => "none".to_string(),
    };
    inputs.extend([
        ("pahole".to_string(), pahole),
        ("rustc".to_string(), rustc.trim().to_string()),
        ("bindgen".into(), bindgen_version()?.to_string()),
        (
            "libclang".into(),
            libclang_version_cached(paths, libclang_path(project).as_deref())?.to_string(),
        ),
    ]);
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.95.0") > v("1.85.0"));
        assert!(v("0.71.1") < v("0.73.2"));
        assert!(v("17.0.1") < v("19.1.7"));
        assert!(v("14.0.6") < v("17.0.1"));
        assert_eq!(v("1.2"), v("1.2.0"));
    }

    #[test]
    fn versions_are_found_in_tool_output() {
        assert_eq!(
            Version::find_in("rustc 1.95.0 (59807616e 2026-04-14)").unwrap(),
            Version(vec![1, 95, 0])
        );
        assert_eq!(
            Version::find_in("bindgen 0.73.2").unwrap(),
            Version(vec![0, 73, 2])
        );
        assert!(Version::find_in("no digits here").is_none());
    }

    #[test]
    fn llvm_tools_are_named_as_kbuild_names_them() {
        assert_eq!(llvm_tool("-19", "clang"), "clang-19");
        assert_eq!(
            llvm_tool("/opt/llvm/bin/", "ld.lld"),
            "/opt/llvm/bin/ld.lld"
        );
        assert_eq!(llvm_tool("1", "llvm-ar"), "llvm-ar");
        assert_eq!(c_compiler_for(""), "gcc");
        assert_eq!(c_compiler_for("-19"), "clang-19");
    }
}
