//! Any module: it loads, its KUnit suites (if it has any) pass, it unloads
//! cleanly and leaves the kernel log clean.

use crate::case::{Case, Outcome, Suite, Verdict};
use crate::checks;

/// Where KUnit lists the suites that ran: the kernel's own are filtered
/// away at boot, and a module's are removed when it unloads, so between
/// the module's `insmod` and `rmmod` the ones here are the module's.
const KUNIT_DEBUGFS: &str = "/sys/kernel/debug/kunit";

pub fn suite(module: &str) -> Suite {
    let (m1, m2) = (module.to_string(), module.to_string());
    Suite {
        name: module.to_string(),
        cases: vec![
            Case::new("insmod", move |env| checks::insmod(env, &m1, "")),
            Case::new("kunit", |_| kunit_suites_passed()),
            Case::new("rmmod", move |_| checks::unload(&m2)),
            Case::new("kernel_log_clean", |_| checks::log_clean()),
        ],
    }
}

/// Every KUnit suite the module ran at load passed (their results nested
/// under this case); a module without `#[kunit_tests]` skips.
fn kunit_suites_passed() -> Verdict {
    let suites = match std::fs::read_dir(KUNIT_DEBUGFS) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
        Err(_) => {
            return Ok(Outcome::Skip(format!(
                "no {KUNIT_DEBUGFS} (no KUnit in this kernel)"
            )))
        }
    };
    if suites.is_empty() {
        return Ok(Outcome::Skip("the module ran no KUnit suite".to_string()));
    }
    let mut failures = Vec::new();
    for suite in &suites {
        if let Err(e) = checks::kunit_suite_passed(suite) {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(Outcome::Pass)
    } else {
        Err(failures.join("\n"))
    }
}
