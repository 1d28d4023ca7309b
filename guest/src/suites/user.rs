//! A module's own guest tests: executables from `<module dir>/guest-tests/`,
//! each one KTAP result by exit status (0 pass, 77 skip, anything else fail).
//! A test's `.load` file names modules the runner loads before it and
//! unloads after it; `guest-tests/helpers/` is at [`layout::HELPERS`] for it to use.
//! Its kernel log is what was logged since its case started ([`test_log`]).

use crate::case::{log_marker, Case, Env, Outcome, Preload, Suite, Verdict};
use crate::{checks, test_log};
use lkmlab_protocol::layout;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

/// The suite name under which the module's own tests are reported.
pub const SUITE: &str = lkmlab_protocol::GUEST_TESTS_SUITE;
/// The exit status that means "skipped" (as in automake and lkmlab-guest).
const EXIT_SKIP: i32 = 77;
/// The test's `PATH`: busybox's applets, then the helpers.
fn search_path() -> String {
    format!("/bin:{}", layout::HELPERS)
}

pub fn guest_tests(env: &Env) -> Suite {
    let cases = env
        .tests
        .iter()
        .map(|test| {
            let (name, path) = (test.name.clone(), test.path.clone());
            Case::new(name.clone(), move |env| {
                // The runner marked the case's start in the kernel log: the
                // test's log starts there, before its modules load.
                let log_since = test_log::start(&log_marker(&format!("{SUITE}.{name}")))?;
                let preloads: Vec<&Preload> = env.preloads_of(&name).collect();
                let before = checks::loaded_modules()?;
                load_first(env, &preloads)?;
                let verdict = run(&path, log_since);
                // What the test left loaded goes first: it may use a module
                // of the .load file, which then unloads.
                let left = left_loaded(&before, &preloads);
                let unloaded = unload_after(&preloads);
                after_unload(after_unload(verdict, left), unloaded)
            })
        })
        .collect();
    Suite {
        name: SUITE.to_string(),
        cases,
    }
}

/// Run the test program, its kernel log starting after the record
/// `log_since`; its exit status is the verdict.
fn run(path: &Path, log_since: u64) -> Verdict {
    let out = Command::new(path)
        .env_clear()
        .env("PATH", search_path())
        .env("LKMLAB_MODULES", layout::MODULES)
        .env("LKMLAB_HELPERS", layout::HELPERS)
        .env(test_log::SINCE_VAR, log_since.to_string())
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", path.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {
            print!("{text}");
            Ok(Outcome::Pass)
        }
        Some(EXIT_SKIP) => Ok(Outcome::Skip(text.trim().to_string())),
        _ => Err(format!("{}{}", text, out.status)),
    }
}

/// Load the test's modules in order; if one fails, unload those already
/// loaded and fail the test before it runs.
fn load_first(env: &Env, preloads: &[&Preload]) -> Result<(), String> {
    for (i, p) in preloads.iter().enumerate() {
        if let Err(why) = checks::insmod(env, &p.module, &p.params) {
            let _ = unload_after(&preloads[..i]);
            return Err(format!(
                "loading {} before the test (its .load file): {why}",
                p.module
            ));
        }
    }
    Ok(())
}

/// Unload the test's modules in reverse order; one the test unloaded itself
/// is fine. Returns what went wrong.
fn unload_after(preloads: &[&Preload]) -> Result<(), String> {
    let mut problems = Vec::new();
    for p in preloads.iter().rev() {
        if let Err(why) = checks::unload(&p.module) {
            problems.push(format!("unloading {} after the test: {why}", p.module));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Modules the test loaded itself and left loaded (not its `.load`
/// file's, which the runner unloads): a failure naming them. Each is then
/// unloaded, so that the cases after it start as the test found the kernel.
fn left_loaded(before: &BTreeSet<String>, preloads: &[&Preload]) -> Result<(), String> {
    let now = checks::loaded_modules()?;
    let left: Vec<&String> = (now.difference(before))
        .filter(|m| !preloads.iter().any(|p| &p.module == *m))
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    let mut problems = vec![format!(
        "the test left {} loaded: a guest test unloads what it loads (rmmod at its end, or \
         name the module in the test's .load file and the runner unloads it)",
        left.iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    // Modules that depend on others unload first: retry while one goes;
    // what is left has failed its last try, with that error.
    let mut pending: Vec<(&String, String)> =
        left.into_iter().map(|m| (m, String::new())).collect();
    loop {
        let before_round = pending.len();
        pending.retain_mut(|(m, why)| match checks::rmmod(m) {
            Ok(_) => false,
            Err(e) => {
                *why = e;
                true
            }
        });
        if pending.is_empty() || pending.len() == before_round {
            break;
        }
    }
    for (m, why) in pending {
        problems.push(format!("unloading {m} after the test: {why}"));
    }
    Err(problems.join("\n"))
}

/// The test's verdict, failed if its modules would not unload after it.
fn after_unload(verdict: Verdict, unloaded: Result<(), String>) -> Verdict {
    match (verdict, unloaded) {
        (verdict, Ok(())) => verdict,
        (Err(failed), Err(why)) => Err(format!("{failed}\n{why}")),
        (Ok(_), Err(why)) => Err(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_that_will_not_unload_fails_the_test() {
        let busy = || Err("unloading scull after the test: rmmod scull: busy".to_string());
        assert!(matches!(
            after_unload(Ok(Outcome::Pass), Ok(())),
            Ok(Outcome::Pass)
        ));
        assert_eq!(
            after_unload(Ok(Outcome::Pass), busy()).err().as_deref(),
            Some("unloading scull after the test: rmmod scull: busy")
        );
        assert!(after_unload(Ok(Outcome::Skip("no device".into())), busy()).is_err());
        assert_eq!(
            after_unload(Err("exit status: 1".into()), busy())
                .err()
                .as_deref(),
            Some("exit status: 1\nunloading scull after the test: rmmod scull: busy")
        );
    }

    #[test]
    fn busybox_then_the_helpers_are_on_path() {
        let path = search_path();
        assert_eq!(
            path.split(':').collect::<Vec<_>>(),
            ["/bin", layout::HELPERS]
        );
    }
}
