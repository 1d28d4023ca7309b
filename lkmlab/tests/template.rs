//! The guest test `lkmlab init` writes belongs to the template's module: it
//! passes on that module, and once the module is replaced by one without its
//! parameter, its greeting or its name, it fails saying that the test is the
//! template's, to be replaced, rather than with a bare exit status.
//!
//! The test runs on the host here, with the host's `sh` and `grep`, and
//! stand-ins for `insmod` and `rmmod` (which log their calls) and `dmesg`
//! (which prints the kernel log given). In the VM, on the real module, CI's
//! `lkmlab check` of a project `lkmlab init` made runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "rng_driver";

struct Run {
    status: Option<i32>,
    output: String,
    /// The stand-ins' calls, one a line.
    calls: String,
}

/// A project `lkmlab init --name NAME` made in `dir`; its guest test.
fn init(dir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_lkmlab"))
        .args(["-q", "init", ".", "--name", NAME])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("module/guest-tests/{NAME}-loads.sh"))
}

/// Run `test` as the guest runner would, with NAME.ko among the modules
/// when `built`, and `kernel_log` as what `dmesg` prints.
fn run(dir: &Path, test: &Path, built: bool, kernel_log: &str) -> Run {
    let modules = dir.join("modules");
    let bin = dir.join("bin");
    let calls = dir.join("calls");
    let log = dir.join("kernel.log");
    for d in [&modules, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    let _ = std::fs::remove_file(&calls);
    std::fs::write(&log, kernel_log).unwrap();
    let ko = modules.join(format!("{NAME}.ko"));
    let _ = std::fs::remove_file(&ko);
    if built {
        std::fs::write(&ko, b"\x7fELF").unwrap();
    }
    let record = format!("echo \"${{0##*/}} $*\" >>'{}'", calls.display());
    for (tool, body) in [
        ("insmod", record.clone()),
        ("rmmod", record),
        ("dmesg", format!("cat '{}'", log.display())),
    ] {
        let path = bin.join(tool);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh")
        .arg(test)
        .env("PATH", path)
        .env("LKMLAB_MODULES", &modules)
        .output()
        .unwrap();
    Run {
        status: out.status.code(),
        output: String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr),
        calls: std::fs::read_to_string(&calls).unwrap_or_default(),
    }
}

/// What the test says when the module is not the template's.
fn replace(why: &str) -> String {
    format!(
        "{why}: this is the template's test of the template's module; replace \
         guest-tests/{NAME}-loads.sh with a test of your module"
    )
}

#[test]
fn the_template_test_passes_on_the_template_module() {
    let dir = tempfile::tempdir().unwrap();
    let test = init(dir.path());
    let r = run(
        dir.path(),
        &test,
        true,
        &format!("{NAME}: loaded: hello, again (greeting_count=3)\n"),
    );
    assert_eq!(r.status, Some(0), "{}", r.output);
    assert!(
        r.output
            .contains("loaded with greeting_count=3, greeted, unloaded"),
        "{}",
        r.output
    );
    assert!(
        r.calls.starts_with("insmod ") && r.calls.contains(" greeting_count=3\nrmmod "),
        "{}",
        r.calls
    );
}

#[test]
fn on_a_replaced_module_the_template_test_says_it_is_the_templates() {
    let dir = tempfile::tempdir().unwrap();
    let test = init(dir.path());
    // The user's module, under the same name, without the parameter: the
    // kernel loads it anyway, and says so.
    let r = run(
        dir.path(),
        &test,
        true,
        &format!("{NAME}: unknown parameter 'greeting_count' ignored\n{NAME}: my driver\n"),
    );
    assert_eq!(r.status, Some(1), "{}", r.output);
    let why = format!("{NAME} has no parameter greeting_count");
    assert!(r.output.contains(&replace(&why)), "{}", r.output);
    assert!(r.calls.ends_with(&format!("rmmod {NAME}\n")), "{}", r.calls);
    // With the parameter, and a greeting of its own.
    let r = run(
        dir.path(),
        &test,
        true,
        &format!("{NAME}: loaded: hi (greeting_count=3)\n"),
    );
    assert_eq!(r.status, Some(1), "{}", r.output);
    let why = format!("{NAME} did not log 'loaded: hello, again (greeting_count=3)'");
    assert!(r.output.contains(&replace(&why)), "{}", r.output);
    assert!(r.calls.ends_with(&format!("rmmod {NAME}\n")), "{}", r.calls);
    // Under another name: no NAME.ko at all, and nothing is loaded.
    let r = run(dir.path(), &test, false, "");
    assert_eq!(r.status, Some(1), "{}", r.output);
    let why = format!("no {NAME}.ko was built");
    assert!(r.output.contains(&replace(&why)), "{}", r.output);
    assert!(r.calls.is_empty(), "{}", r.calls);
}
