//! Targets as a user meets them: an architecture or target lkmlab does not
//! know is refused before any work, naming what it does know; each target
//! has its own Kconfig options; an old pin without architecture fragments
//! still configures x86-64 and is told how to add arm64.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lkmlab(args: &[&str], project: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lkmlab"))
        .arg("--project")
        .arg(project)
        .args(args)
        // No cache to touch: nothing here may build or fetch.
        .env("LKMLAB_CACHE", project.join("no-cache"))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of lkmlab's own pin and fragments, with `edit` applied to the pin.
fn project(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pin = std::fs::read_to_string(repo().join("lkmlab.toml")).unwrap();
    std::fs::write(dir.path().join("lkmlab.toml"), edit(pin)).unwrap();
    std::fs::create_dir(dir.path().join("kernel-config")).unwrap();
    for entry in std::fs::read_dir(repo().join("kernel-config")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            dir.path()
                .join("kernel-config")
                .join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    dir
}

#[test]
fn unknown_architectures_and_targets_are_refused_naming_the_known_ones() {
    let p = project(|pin| pin);
    let out = lkmlab(&["kernel", "--arch", "riscv"], p.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown architecture \"riscv\"; lkmlab knows x86_64, arm64"),
        "{}",
        text(&out.stderr)
    );
    let out = lkmlab(&["kernel", "--target", "x86_64-fast"], p.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("no target \"x86_64-fast\" in lkmlab.toml; its targets: x86_64, arm64"),
        "{}",
        text(&out.stderr)
    );
    // A foreign architecture cannot boot the host's filesystem: refused
    // before anything is built.
    let out = lkmlab(&["vm", "--arch", "arm64", "--exec", "true"], p.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("lkmlab test --target arm64"),
        "{}",
        text(&out.stderr)
    );
    assert!(!p.path().join("no-cache").exists(), "nothing was cached");
}

#[test]
fn each_architecture_requests_its_own_console() {
    let p = project(|pin| pin);
    let kconfig = |args: &[&str]| -> serde_json::Value {
        let out = lkmlab(args, p.path());
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let x86 = kconfig(&["show", "kconfig", "--arch", "x86_64"]);
    let arm = kconfig(&["show", "kconfig", "--target", "arm64"]);
    assert_eq!(x86["CONFIG_SERIAL_8250_CONSOLE"], "y");
    assert_eq!(x86["CONFIG_KERNEL_LZ4"], "y");
    assert_eq!(arm["CONFIG_SERIAL_AMBA_PL011_CONSOLE"], "y");
    assert!(arm.get("CONFIG_SERIAL_8250_CONSOLE").is_none(), "{arm}");
    assert!(arm.get("CONFIG_KERNEL_LZ4").is_none(), "{arm}");
    // What both share.
    for k in [&x86, &arm] {
        assert_eq!(k["CONFIG_RUST"], "y");
    }
}

#[test]
fn a_pin_from_before_targets_keeps_x86_and_is_told_how_to_add_arm64() {
    // The pin as `lkmlab init` wrote it before architectures had fragments:
    // x86-64's options in base.config, no [kconfig.arch], no [[targets]].
    let p = project(|pin| {
        let start = pin.find("[kconfig.arch.x86_64]").unwrap();
        let end = pin.find("[kconfig.flavors.default]").unwrap();
        let mut old = format!("{}{}", &pin[..start], &pin[end..]);
        old.truncate(old.find("\n[[targets]]").unwrap() + 1);
        old
    });
    let base = p.path().join("kernel-config/base.config");
    let x86 = std::fs::read_to_string(p.path().join("kernel-config/x86_64.config")).unwrap();
    let mut text_base = std::fs::read_to_string(&base).unwrap();
    text_base.push_str(&x86);
    std::fs::write(&base, text_base).unwrap();

    let out = lkmlab(&["show", "kconfig"], p.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let old: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let current = project(|pin| pin);
    let now = lkmlab(&["show", "kconfig"], current.path());
    let now: serde_json::Value = serde_json::from_slice(&now.stdout).unwrap();
    assert_eq!(old, now, "the same x86-64 options, so the same kernel");

    let out = lkmlab(&["kernel", "--arch", "arm64"], p.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("has no [kconfig.arch.arm64]")
            && err.contains("fragments = [\"kernel-config/arm64.config\"]"),
        "{err}"
    );
    assert!(
        !p.path().join("no-cache/kernel").exists(),
        "refused before any work"
    );
}
