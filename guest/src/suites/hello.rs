//! `module/hello.rs`: load with a parameter, check its messages, unload, and
//! refuse a malformed parameter.

use crate::case::{Case, Outcome, Suite};
use crate::checks::{self, sysfs_module};
use crate::ensure;
use std::path::Path;

const INIT_MSG: &str = "hello: Hello from Rust!";
const EXIT_MSG: &str = "hello: Goodbye from Rust!";
/// The parameter value the suite loads with (the default is 1).
const COUNT: i64 = 3;

pub fn suite() -> Suite {
    Suite {
        name: "hello".into(),
        cases: vec![
            Case::new("insmod", |env| {
                checks::insmod(env, "hello", &format!("greeting_count={COUNT}"))
            }),
            Case::new("init_message_logged", |_| checks::logged(INIT_MSG, 1)),
            Case::new("sysfs_entry_exists", |_| {
                let dir = sysfs_module("hello");
                ensure!(Path::new(&dir).is_dir(), "{dir} is missing while loaded");
                Ok(Outcome::Pass)
            }),
            Case::new("parameter_value_logged", |_| {
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
                checks::insmod_refused(env, "hello", "greeting_count=abc", libc::EINVAL)
            }),
            Case::new("kernel_log_clean", |_| checks::log_clean()),
        ],
    }
}
