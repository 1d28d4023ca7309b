//! A module's own guest tests: executables from `<module dir>/guest-tests/`,
//! each one KTAP result by exit status (0 pass, 77 skip, anything else fail).

use crate::case::{Case, Env, Outcome, Suite};
use std::process::{Command, Stdio};

/// The suite name under which the module's own tests are reported.
pub const SUITE: &str = "guest_tests";
/// The exit status that means "skipped" (as in automake and lkmlab-guest).
const EXIT_SKIP: i32 = 77;

pub fn guest_tests(env: &Env) -> Suite {
    let cases = env
        .tests
        .iter()
        .map(|(name, path)| {
            let path = path.clone();
            Case::new(name.clone(), move |_| {
                let out = Command::new(&path)
                    .env_clear()
                    .env("PATH", "/bin")
                    .env("LKMLAB_MODULES", "/lkmlab/modules")
                    .current_dir("/")
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("running {}: {e}", path.display()))?;
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                match out.status.code() {
                    Some(0) => {
                        print!("{text}");
                        Ok(Outcome::Pass)
                    }
                    Some(EXIT_SKIP) => Ok(Outcome::Skip(text.trim().to_string())),
                    _ => Err(format!("{}{}", text, out.status)),
                }
            })
        })
        .collect();
    Suite {
        name: SUITE.to_string(),
        cases,
    }
}
