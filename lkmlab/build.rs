//! Carries the guest runner (the workspace package `lkmlab-guest`, PID 1 of
//! the test VM) inside the lkmlab binary, so that an installed lkmlab tests
//! any project directory without a cargo build of its own at test time.
//!
//! - `LKMLAB_GUEST_RUNNER=FILE` set: that static executable is carried (the
//!   Nix flake builds the runner as a derivation of its own and passes it).
//! - Otherwise the runner is built here from `../guest`, statically
//!   (`-C target-feature=+crt-static`, glibc's libc.a from libc6-dev), in a
//!   target directory of its own under OUT_DIR (a nested cargo may not share
//!   the outer build's), with the workspace's release profile.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";
const PACKAGE: &str = "lkmlab-guest";

fn main() {
    // `lkmlab init` carries the project template (include_dir! does not
    // tell cargo about the files it reads).
    println!("cargo:rerun-if-changed=../templates/default");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join(PACKAGE);
    println!("cargo:rerun-if-env-changed=LKMLAB_GUEST_RUNNER");
    if let Some(prebuilt) = env::var_os("LKMLAB_GUEST_RUNNER").filter(|v| !v.is_empty()) {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        copy(&prebuilt, &dest);
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir.join("..");
    let runner = workspace.join("guest");
    if !runner.join("Cargo.toml").is_file() {
        panic!(
            "lkmlab carries its guest runner, built from {} — which is missing. Build lkmlab \
             from its repository (cargo install --path lkmlab), or set LKMLAB_GUEST_RUNNER to \
             a static lkmlab-guest executable",
            runner.display()
        );
    }
    for watched in [
        "guest/src",
        "guest/Cargo.toml",
        "protocol/src",
        "protocol/Cargo.toml",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let target_dir = out.join("runner-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--locked")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["-p", PACKAGE, "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "-C target-feature=+crt-static",
        );
    // What the outer build set for itself must not reach the runner's build.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key == "RUSTFLAGS"
            || key == "CARGO_ENCODED_RUSTFLAGS"
            || key == "CARGO_BUILD_TARGET"
            || key == "CARGO_MAKEFLAGS"
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_CFG_")
            || key == "RUSTC_WORKSPACE_WRAPPER"
        {
            cmd.env_remove(&*key);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build the guest runner: {e}"));
    if !status.success() {
        panic!(
            "building the guest runner ({}) failed ({status}); see the cargo output above. \
             It is a static executable: glibc's libc.a must be installed (Debian: libc6-dev)",
            runner.display()
        );
    }
    copy(
        &target_dir.join(TARGET).join("release").join(PACKAGE),
        &dest,
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| {
        panic!(
            "copying the guest runner {} to {}: {e}",
            from.display(),
            to.display()
        )
    });
}
