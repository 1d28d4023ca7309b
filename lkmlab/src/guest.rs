//! The guest side of a test run: the static runner (PID 1) and the initramfs
//! that carries it, the modules and the test plan.

use crate::cpio::CpioWriter;
use crate::module::module_name;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The guest runner, built with lkmlab (see build.rs) and carried inside it.
pub const EMBEDDED_RUNNER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lkmlab-guest"));

/// The runner for a test run: the one carried inside lkmlab, or `--runner FILE`
/// (checked to be static).
pub fn runner(given: Option<&Path>) -> Result<std::borrow::Cow<'static, [u8]>> {
    match given {
        None => Ok(EMBEDDED_RUNNER.into()),
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            check_static_elf(&bytes, path, RUNNER_STATIC_FIX)?;
            Ok(bytes.into())
        }
    }
}

/// How to get a static guest runner.
pub const RUNNER_STATIC_FIX: &str =
    "build it with -C target-feature=+crt-static (needs libc6-dev's libc.a)";
/// How to get a static busybox.
const BUSYBOX_STATIC_FIX: &str = "install Debian's static one (sudo apt-get install \
     busybox-static; the package `busybox` is dynamic) and put it first on PATH";

/// PID 1 in the initramfs has no dynamic loader to run: refuse anything that
/// asks for one (an ELF `PT_INTERP` program header), saying how to get a
/// static build (`fix`).
pub fn check_static(exe: &Path, fix: &str) -> Result<()> {
    let bytes = std::fs::read(exe).with_context(|| format!("reading {}", exe.display()))?;
    check_static_elf(&bytes, exe, fix)
}

/// [`check_static`] on the bytes of `exe`.
fn check_static_elf(bytes: &[u8], exe: &Path, fix: &str) -> Result<()> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        bail!(
            "{} is not a 64-bit little-endian ELF executable",
            exe.display()
        );
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[32..40].try_into()?) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        let Some(ph) = bytes.get(off..off + 4) else {
            bail!("{} has a truncated program header table", exe.display());
        };
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(ph.try_into()?) == PT_INTERP {
            bail!(
                "{} is dynamically linked, and the VM has no dynamic loader: {fix}",
                exe.display()
            );
        }
    }
    Ok(())
}

/// Where a module keeps its own guest tests (see docs/guest-tests.md).
pub const GUEST_TESTS_DIR: &str = "guest-tests";
/// Shell commands made available to guest test scripts through busybox.
const APPLETS: &[&str] = &[
    "sh", "ash", "cat", "echo", "test", "[", "grep", "sed", "ls", "mkdir", "rm", "sleep", "dmesg",
    "insmod", "rmmod", "lsmod", "head", "tail", "wc", "dd", "printf", "true", "false", "stat",
];

/// What goes into the initramfs besides the runner.
pub struct Payload {
    pub modules: Vec<PathBuf>,
    /// The module's own guest tests, in the order they run.
    pub tests: Vec<PathBuf>,
    /// A static busybox for test scripts, when any test is a script.
    pub busybox: Option<PathBuf>,
}

impl Payload {
    /// The modules, plus the guest tests found in `module_dir/guest-tests`
    /// (and busybox when any of them is a script).
    pub fn new(modules: Vec<PathBuf>, module_dir: Option<&Path>) -> Result<Payload> {
        let mut tests = Vec::new();
        if let Some(dir) = module_dir.map(|d| d.join(GUEST_TESTS_DIR)) {
            if dir.is_dir() {
                for entry in
                    std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
                {
                    let path = entry?.path();
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    if path.is_file()
                        && !name.is_some_and(|n| n.starts_with('.') || n.ends_with(".md"))
                    {
                        tests.push(path);
                    }
                }
                tests.sort();
            }
        }
        let needs_shell = tests
            .iter()
            .any(|t| std::fs::read(t).is_ok_and(|b| b.starts_with(b"#!")));
        let busybox = if needs_shell {
            Some(find_busybox()?)
        } else {
            None
        };
        Ok(Payload {
            modules,
            tests,
            busybox,
        })
    }
}

fn find_busybox() -> Result<PathBuf> {
    let Some(busybox) = crate::util::which("busybox") else {
        bail!(
            "guest tests that are scripts need a shell in the guest: install a static \
             busybox (sudo apt-get install busybox-static)"
        );
    };
    check_static(&busybox, BUSYBOX_STATIC_FIX).context("busybox for guest test scripts")?;
    Ok(busybox)
}

/// A guest test's name in the report: its file name without extension.
pub fn test_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().replace([' ', '#'], "_"))
        .unwrap_or_default()
}

/// How the guest runs the plan.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// `--fault-injection`: each module's suite ends with the sweep of its load.
    pub fault_injection: bool,
}

/// The test plan the runner reads from `/lkmlab/plan`.
pub fn plan(payload: &Payload, options: &RunOptions) -> String {
    let mut plan = String::from("# lkmlab test plan: modules, then guest tests\n");
    if options.fault_injection {
        plan.push_str("option fault-injection\n");
    }
    for ko in &payload.modules {
        let name = module_name(ko);
        plan.push_str(&format!("module {name} /lkmlab/modules/{name}.ko\n"));
    }
    for t in &payload.tests {
        let name = test_name(t);
        plan.push_str(&format!("test {name} /lkmlab/tests/{name}\n"));
    }
    plan
}

/// Write the initramfs: `/init` (the runner), `/dev/console`, the modules,
/// the guest tests (with busybox as `/bin/sh` when they need it) and the plan.
pub fn write_initramfs(
    out: &Path,
    runner: &[u8],
    payload: &Payload,
    options: &RunOptions,
) -> Result<()> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut cpio = CpioWriter::new(std::io::BufWriter::new(file));
    for dir in [
        "dev",
        "proc",
        "sys",
        "tmp",
        "bin",
        "lkmlab",
        "lkmlab/modules",
        "lkmlab/tests",
    ] {
        cpio.dir(dir, 0o755)?;
    }
    // The kernel opens /dev/console for PID 1 before devtmpfs is mounted.
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    cpio.file("init", 0o755, runner)?;
    // The runner is also the guest tests' fault-injection helper.
    cpio.symlink("bin/fail-nth", "/init")?;
    for ko in &payload.modules {
        let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
        cpio.file(
            &format!("lkmlab/modules/{}.ko", module_name(ko)),
            0o644,
            &data,
        )?;
    }
    for t in &payload.tests {
        let data = std::fs::read(t).with_context(|| format!("reading {}", t.display()))?;
        cpio.file(&format!("lkmlab/tests/{}", test_name(t)), 0o755, &data)?;
    }
    if let Some(busybox) = &payload.busybox {
        let data =
            std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
        cpio.file("bin/busybox", 0o755, &data)?;
        for applet in APPLETS {
            cpio.symlink(&format!("bin/{applet}"), "busybox")?;
        }
    }
    cpio.file("lkmlab/plan", 0o644, plan(payload, options).as_bytes())?;
    use std::io::Write;
    cpio.finish()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_each_module_and_test_once() {
        let payload = Payload {
            modules: vec![
                PathBuf::from("/b/hello.ko"),
                PathBuf::from("/b/rust-scull.ko"),
            ],
            tests: vec![PathBuf::from("/m/guest-tests/open-close.sh")],
            busybox: None,
        };
        let plan = plan(&payload, &RunOptions::default());
        assert!(!plan.contains("option"));
        assert!(plan.contains("module hello /lkmlab/modules/hello.ko\n"));
        assert!(plan.contains("module rust_scull /lkmlab/modules/rust_scull.ko\n"));
        assert!(plan.contains("test open-close /lkmlab/tests/open-close\n"));
        let with = super::plan(
            &payload,
            &RunOptions {
                fault_injection: true,
            },
        );
        assert!(with.contains("option fault-injection\n"));
    }

    #[test]
    fn guest_tests_are_found_in_order_and_docs_are_not_tests() {
        let dir = tempfile::tempdir().unwrap();
        let tests = dir.path().join(GUEST_TESTS_DIR);
        std::fs::create_dir(&tests).unwrap();
        std::fs::write(tests.join("b-second"), b"\x7fELF").unwrap();
        std::fs::write(tests.join("a-first"), b"\x7fELF").unwrap();
        std::fs::write(tests.join("README.md"), b"# docs").unwrap();
        let payload = Payload::new(vec![], Some(dir.path())).unwrap();
        let names: Vec<String> = payload.tests.iter().map(|t| test_name(t)).collect();
        assert_eq!(names, ["a-first", "b-second"]);
        assert!(payload.busybox.is_none(), "no script, no shell needed");
    }

    #[test]
    fn the_carried_runner_is_a_static_executable() {
        check_static_elf(EMBEDDED_RUNNER, Path::new("lkmlab-guest"), "FIX").unwrap();
    }

    #[test]
    fn a_dynamic_executable_is_refused() {
        // This test binary itself is dynamically linked on Debian.
        let me = std::env::current_exe().unwrap();
        let err = check_static(&me, "FIX").unwrap_err().to_string();
        assert!(
            err.contains("dynamically linked") && err.ends_with(": FIX"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"#!/bin/sh\n").unwrap();
        assert!(check_static(&junk, "FIX").is_err());
    }
}
