//! Guest programs for an architecture other than the host's: the guest
//! runner, cross-built from the sources lkmlab carries, and a static
//! busybox from a pinned Debian package. Both are cached.
//!
//! The runner needs the Rust standard library for the guest's target, which
//! rustup would download (`rustup target add`). lkmlab builds it instead from
//! the Rust library source it already has for the kernel (the sysroot's
//! `rust-src`, or the pinned Debian `rust-src`): `cargo -Zbuild-std`, with
//! clang and lld as the cross linker and Debian's cross glibc
//! (`libc6-dev-<arch>-cross`) linked statically, as the host's runner is.

use crate::build::progress::run_logged;
use crate::build::toolchain;
use crate::config::arch::Arch;
use crate::config::paths::Paths;
use crate::config::project::Project;
use crate::doctor::{Check, Status};
use crate::source::fetch::{extract_from_deb, hex, Fetcher};
use anyhow::{bail, Context, Result};
use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The runner's sources, as lkmlab was built from them.
static GUEST_SRC: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../guest");
static PROTOCOL_SRC: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../protocol");
/// The workspace's manifest and lock: the runner's profile and dependency versions.
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");
const WORKSPACE_LOCK: &str = include_str!("../../../Cargo.lock");
/// Bump when the way the runner is cross-built changes.
const RECIPE: &str = "lkmlab-cross-runner-1";
const RUNNER: &str = "lkmlab-guest";
/// Where Debian's busybox-static has it.
const BUSYBOX_IN_DEB: &str = "bin/busybox";

/// The static runner for `arch`, built once per set of inputs.
pub fn runner(arch: Arch, project: &Project, paths: &Paths, fetcher: &Fetcher) -> Result<Vec<u8>> {
    let lib = toolchain::rust_lib_src(project, paths, fetcher)?;
    let dir = runner_dir(arch, project, paths, &lib)?;
    let linker = linker(project);
    let done = |d: &Path| d.join(RUNNER).is_file();
    if !done(&dir) {
        check_cross_libc(arch)?;
        crate::lock::fill_once(&dir, "building the guest runner", done, |staging| {
            build_runner(arch, &lib, &linker, staging, &dir)
        })?;
    }
    let exe = dir.join(RUNNER);
    let bytes = std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?;
    crate::vm::guest::check_static_elf(&bytes, &exe, crate::vm::guest::RUNNER_STATIC_FIX, arch)?;
    Ok(bytes)
}

/// The cache folder of the runner for `arch` built from the current inputs
/// (`lib`: the Rust library source's path).
pub fn runner_dir(arch: Arch, project: &Project, paths: &Paths, lib: &Path) -> Result<PathBuf> {
    let key = runner_key(arch, lib, &linker(project), &paths.cache)?;
    Ok(paths
        .cache
        .join("runner")
        .join(format!("{arch}-{}", &key[..16])))
}

/// clang, as the pin's LLVM names it: the cross linker.
fn linker(project: &Project) -> String {
    toolchain::llvm_tool(project.pin.toolchain.llvm.as_str(), "clang")
}

/// Everything the cross-built runner is made of: its sources, the Rust
/// library source, rustc and cargo as the build in the cache resolves them
/// (`cwd`: rustup picks a toolchain by directory), the linker.
fn runner_key(arch: Arch, lib: &Path, linker: &str, cwd: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut feed = |name: &str, bytes: &[u8]| {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(bytes);
        h.update([0]);
    };
    feed("recipe", RECIPE.as_bytes());
    feed("arch", arch.name().as_bytes());
    for (prefix, dir) in [("guest", &GUEST_SRC), ("protocol", &PROTOCOL_SRC)] {
        for (path, contents) in files(dir) {
            feed(&format!("{prefix}/{}", path.display()), contents);
        }
    }
    feed("Cargo.toml", WORKSPACE_MANIFEST.as_bytes());
    feed("Cargo.lock", WORKSPACE_LOCK.as_bytes());
    feed("library", lib.display().to_string().as_bytes());
    std::fs::create_dir_all(cwd).with_context(|| format!("creating {}", cwd.display()))?;
    let rustc =
        crate::process::output_of(Command::new("rustc").arg("-vV").current_dir(cwd), "rustc")?;
    feed("rustc", rustc.as_bytes());
    let cargo =
        crate::process::output_of(Command::new("cargo").arg("-V").current_dir(cwd), "cargo")?;
    feed("cargo", cargo.as_bytes());
    let clang = crate::process::output_of(Command::new(linker).arg("--version"), linker)?;
    feed(
        "linker",
        clang.lines().next().unwrap_or_default().as_bytes(),
    );
    Ok(hex(&h.finalize()))
}

/// Every file of an embedded directory, with its path in it, sorted.
fn files<'a>(dir: &'a Dir<'a>) -> Vec<(&'a Path, &'a [u8])> {
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in d.entries() {
            match entry {
                include_dir::DirEntry::Dir(sub) => stack.push(sub),
                include_dir::DirEntry::File(f) => out.push((f.path(), f.contents())),
            }
        }
    }
    out.sort();
    out
}

/// The workspace of the runner alone: the real manifest with only the
/// runner and the protocol crate as members.
fn workspace_manifest() -> Result<String> {
    let mut manifest: toml::Table =
        toml::from_str(WORKSPACE_MANIFEST).context("reading lkmlab's own Cargo.toml")?;
    let workspace = manifest
        .get_mut("workspace")
        .and_then(toml::Value::as_table_mut)
        .context("lkmlab's Cargo.toml has no [workspace]")?;
    workspace.insert(
        "members".into(),
        toml::Value::Array(vec!["guest".into(), "protocol".into()]),
    );
    Ok(toml::to_string(&manifest)?)
}

/// Build the runner in `out`, which becomes `dest` when it is done.
fn build_runner(arch: Arch, lib: &Path, linker: &str, out: &Path, dest: &Path) -> Result<()> {
    let ws = out.join("src");
    for (prefix, dir) in [("guest", &GUEST_SRC), ("protocol", &PROTOCOL_SRC)] {
        for (path, contents) in files(dir) {
            let dest = ws.join(prefix).join(path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&dest, contents)
                .with_context(|| format!("writing {}", dest.display()))?;
        }
    }
    std::fs::write(ws.join("Cargo.toml"), workspace_manifest()?)
        .with_context(|| format!("writing {}", ws.join("Cargo.toml").display()))?;
    std::fs::write(ws.join("Cargo.lock"), WORKSPACE_LOCK)
        .with_context(|| format!("writing {}", ws.join("Cargo.lock").display()))?;
    let target = arch.rust_target();
    let env_target = target.to_uppercase().replace('-', "_");
    let target_dir = out.join("target");
    // Paths of this machine (the library source, the crates' sources, the
    // workspace in the cache) remapped: the same binary from any cache.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let flags = format!(
        "-C target-feature=+crt-static -C link-arg=--target={} -C link-arg=-fuse-ld=lld \
         --remap-path-prefix={}=/rustc/library --remap-path-prefix={}=/cargo \
         --remap-path-prefix={}=/src",
        arch.gnu_triplet(),
        lib.display(),
        cargo_home.join("registry").join("src").display(),
        ws.display()
    );
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&ws)
        .args(["build", "--release", "-p", RUNNER, "--target", target])
        .arg("-Zbuild-std=std,panic_abort")
        // -Zbuild-std is unstable: the stable rustc accepts it with this.
        .env("RUSTC_BOOTSTRAP", "1")
        // Where -Zbuild-std finds the library source when the sysroot has
        // none (rustup without the rust-src component): the same source the
        // kernel is built with.
        .env("__CARGO_TESTS_ONLY_SRC_ROOT", lib)
        .env(format!("CARGO_TARGET_{env_target}_LINKER"), linker)
        .env(format!("CARGO_TARGET_{env_target}_RUSTFLAGS"), flags)
        .env("CARGO_TARGET_DIR", &target_dir);
    // What an outer cargo (lkmlab run by `cargo run` or its tests) set for
    // itself must not reach this build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let log = out.join("build.log");
    crate::status!(
        "building the guest runner for {arch} with the Rust library source (a minute or two, \
         once; log: {})",
        dest.join("build.log").display()
    );
    if let Err(e) = run_logged(&mut cmd, &log, "the guest runner's cross build") {
        // The staging folder goes with the error: keep its log beside the
        // runner's folder.
        let kept = dest.with_extension("failed.log");
        let _ = std::fs::copy(&log, &kept);
        return Err(e.context(format!("the whole log: {}", kept.display())));
    }
    let built = target_dir.join(target).join("release").join(RUNNER);
    std::fs::copy(&built, out.join(RUNNER))
        .with_context(|| format!("copying {} (see {})", built.display(), log.display()))?;
    // Keep the binary and the log, not the 100 MB of objects.
    let _ = std::fs::remove_dir_all(&target_dir);
    Ok(())
}

/// Debian's cross glibc and its libgcc (of whichever GCC version the
/// distribution has: 12 on Debian 12): what a static executable for `arch`
/// links against.
fn cross_libc(arch: Arch) -> [(PathBuf, String); 2] {
    let triplet = arch.gnu_triplet();
    let gcc_dir = PathBuf::from(format!("/usr/lib/gcc-cross/{triplet}"));
    // The newest version that has a libgcc.a, else Debian 12's for the fix.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(&gcc_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let lib = e.path().join("libgcc.a");
            lib.is_file().then_some((v, lib))
        })
        .collect();
    versions.sort();
    let (version, libgcc) = versions
        .pop()
        .unwrap_or_else(|| (12, gcc_dir.join("12").join("libgcc.a")));
    [
        (
            PathBuf::from(format!("/usr/{triplet}/lib/libc.a")),
            format!("libc6-dev-{}-cross", arch.debian()),
        ),
        (
            libgcc,
            format!("libgcc-{version}-dev-{}-cross", arch.debian()),
        ),
    ]
}

fn check_cross_libc(arch: Arch) -> Result<()> {
    let missing: Vec<String> = cross_libc(arch)
        .into_iter()
        .filter(|(file, _)| !file.is_file())
        .map(|(_, pkg)| pkg)
        .collect();
    if !missing.is_empty() {
        bail!(
            "the guest runner for {arch} is linked statically against Debian's cross C library, \
             which is missing: sudo apt-get install {}",
            missing.join(" ")
        );
    }
    Ok(())
}

/// A static busybox for `arch`'s guest test scripts, from the package the
/// pin names in `[toolchain.busybox.<arch>]`.
pub fn busybox(arch: Arch, project: &Project, paths: &Paths, fetcher: &Fetcher) -> Result<PathBuf> {
    let Some(pinned) = project.pin.toolchain.busybox.get(&arch) else {
        bail!(
            "guest tests that are scripts need a static busybox for {arch}, and lkmlab.toml pins \
             none: add [toolchain.busybox.{arch}] with Debian's busybox-static_…_{}.deb (file, \
             size, sha256, urls), as lkmlab's own lkmlab.toml does",
            arch.debian()
        );
    };
    let dir = paths.cache.join("busybox").join(pinned.sha256.short());
    let done = |d: &Path| d.join(BUSYBOX_IN_DEB).is_file();
    if !done(&dir) {
        let deb = fetcher.get(pinned)?;
        crate::lock::fill_once(&dir, "unpacking busybox", done, |staging| {
            extract_from_deb(&deb, BUSYBOX_IN_DEB, staging)
        })?;
    }
    let exe = dir.join(BUSYBOX_IN_DEB);
    crate::vm::guest::check_static(&exe, "pin Debian's busybox-static package", arch)
        .context("busybox for guest test scripts")?;
    Ok(exe)
}

/// What `lkmlab doctor` checks for a target on `arch` (another
/// architecture than the host's).
pub fn doctor_checks(arch: Arch, project: &Project) -> Vec<Check> {
    let mut checks = Vec::new();
    for (file, pkg) in cross_libc(arch) {
        checks.push(Check {
            name: format!("{pkg} (runner for {arch})"),
            status: if file.is_file() {
                Status::Ok
            } else {
                Status::Fail
            },
            detail: if file.is_file() {
                file.display().to_string()
            } else {
                format!("{} missing", file.display())
            },
            fix: (!file.is_file()).then(|| format!("sudo apt-get install {pkg}")),
        });
    }
    if !project.pin.toolchain.busybox.contains_key(&arch) {
        checks.push(Check {
            name: format!("busybox ({arch})"),
            status: Status::Note,
            detail: format!(
                "lkmlab.toml pins none: modules whose guest-tests/ holds scripts cannot be \
                 tested on {arch}"
            ),
            fix: Some(format!(
                "add [toolchain.busybox.{arch}] (see lkmlab's own lkmlab.toml)"
            )),
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carried_sources_are_the_runner_and_its_protocol() {
        let names: Vec<String> = files(&GUEST_SRC)
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert!(names.contains(&"Cargo.toml".to_string()), "{names:?}");
        assert!(names.contains(&"src/main.rs".to_string()), "{names:?}");
        assert!(files(&PROTOCOL_SRC)
            .iter()
            .any(|(p, _)| *p == Path::new("src/plan.rs")));
    }

    #[test]
    fn the_runner_workspace_has_only_the_runner_and_the_protocol() {
        let manifest: toml::Table = toml::from_str(&workspace_manifest().unwrap()).unwrap();
        assert_eq!(
            manifest["workspace"]["members"],
            toml::Value::Array(vec!["guest".into(), "protocol".into()])
        );
        // The same small, static release profile as the host's runner.
        assert_eq!(
            manifest["profile"]["release"]["panic"].as_str(),
            Some("abort")
        );
    }
}
