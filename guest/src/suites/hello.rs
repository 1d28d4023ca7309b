//! `module/hello.rs`: load with a parameter, check its messages, unload, and
//! refuse a malformed parameter. On a kernel older than Rust module
//! parameters (6.19) hello is built without its parameter (`module/Kbuild`),
//! and the parameter's cases are skipped, saying so.

use crate::case::{Case, Outcome, Suite};
use crate::checks::{self, sysfs_module};
use crate::ensure;
use lkmlab_protocol::plan::Plan;
use std::path::Path;

const INIT_MSG: &str = "hello: Hello from Rust!";
const EXIT_MSG: &str = "hello: Goodbye from Rust!";
/// The parameter value the suite loads with (the default is 1).
const COUNT: i64 = 3;
/// The first kernel whose `module!` takes `params` (`module/Kbuild`'s test).
const PARAMS_SINCE: (u32, u32) = (6, 19);

pub fn suite() -> Suite {
    Suite {
        name: "hello".into(),
        cases: vec![
            Case::new("insmod", |env| {
                let params = if declares_parameter(env)? {
                    format!("greeting_count={COUNT}")
                } else {
                    String::new()
                };
                checks::insmod(env, "hello", &params)
            }),
            Case::new("init_message_logged", |_| checks::logged(INIT_MSG, 1)),
            Case::new("sysfs_entry_exists", |_| {
                let dir = sysfs_module("hello");
                ensure!(Path::new(&dir).is_dir(), "{dir} is missing while loaded");
                Ok(Outcome::Pass)
            }),
            Case::new("parameter_value_logged", |env| {
                if let Some(skip) = without_parameter(env)? {
                    return Ok(skip);
                }
                // Rust module parameters are not exposed under
                // /sys/module/*/parameters in 7.3: the module logs the value.
                let lines = checks::log_lines_with(INIT_MSG)?;
                let want = format!("greeting_count={COUNT}");
                ensure!(
                    lines.iter().any(|l| l.ends_with(&want)),
                    "init message does not show {want}: {lines:?}"
                );
                Ok(Outcome::Pass)
            }),
            Case::new("rmmod", |_| checks::unload("hello")),
            Case::new("exit_message_logged", |_| checks::logged(EXIT_MSG, 1)),
            Case::new("non_numeric_parameter_refused", |env| {
                if let Some(skip) = without_parameter(env)? {
                    return Ok(skip);
                }
                checks::insmod_refused(env, "hello", "greeting_count=abc", libc::EINVAL)
            }),
            Case::new("kernel_log_clean", |_| checks::log_clean()),
        ],
    }
}

/// Whether this build of hello declares `greeting_count` (its `.modinfo`
/// has `parmtype=greeting_count:`).
fn declares_parameter(env: &Plan) -> Result<bool, String> {
    let ko = env.ko("hello")?;
    let bytes = std::fs::read(ko).map_err(|e| format!("reading {}: {e}", ko.display()))?;
    let needle = b"parmtype=greeting_count:";
    Ok(bytes.windows(needle.len()).any(|w| w == needle))
}

/// `Some(skip)` when hello has no parameter because the running kernel is
/// older than Rust module parameters; an error when it has none although the
/// kernel has them (module/Kbuild's version test is broken).
fn without_parameter(env: &Plan) -> Result<Option<Outcome>, String> {
    if declares_parameter(env)? {
        return Ok(None);
    }
    let release = crate::sys::kernel_release()?;
    if kernel_has_params(&release) {
        return Err(format!(
            "hello.ko declares no greeting_count parameter, but kernel {release} has Rust \
             module parameters: module/Kbuild's version test passed --cfg no_module_params"
        ));
    }
    Ok(Some(Outcome::Skip(format!(
        "kernel {release} is older than Rust module parameters ({}.{}): hello has none",
        PARAMS_SINCE.0, PARAMS_SINCE.1
    ))))
}

/// Whether a kernel release (`6.12.117`, `7.3.4-rc1`) is at least
/// [`PARAMS_SINCE`]; an unreadable one counts as new (the case then fails).
fn kernel_has_params(release: &str) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= PARAMS_SINCE,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_arrived_in_6_19() {
        assert!(!kernel_has_params("6.12.117"));
        assert!(!kernel_has_params("6.18.2"));
        assert!(kernel_has_params("6.19.0"));
        assert!(kernel_has_params("7.3.4"));
        assert!(kernel_has_params("garbage"));
    }
}
