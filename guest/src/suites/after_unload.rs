//! After every module's tests: the modules that can make the kernel call
//! their code later (a timer, a work item, an RCU callback…: the host names
//! them in the plan, [`lkmlab_protocol::plan::Deferrer`]) are given time for
//! a callback they forgot to cancel to run. Without the wait the VM would
//! shut down within milliseconds of the last `rmmod`, and such a callback —
//! which runs in the module's freed code — would never run inside the run.
//! With it, it faults here, and the host names the module and the kind of
//! callback from the kernel's report.

use crate::case::{Case, Env, Outcome, Verdict};
use crate::checks;
use lkmlab_protocol::{AFTER_UNLOAD_CASE, AFTER_UNLOAD_WAIT_MS};
use std::path::Path;
use std::time::Duration;

/// The case, when the plan names a module that can schedule callbacks.
pub fn case(env: &Env) -> Option<Case> {
    (!env.deferrers.is_empty()).then(|| Case::new(AFTER_UNLOAD_CASE, wait_and_look))
}

fn wait_and_look(env: &Env) -> Verdict {
    let (loaded, unloaded): (Vec<_>, Vec<_>) = env
        .deferrers
        .iter()
        .partition(|d| Path::new(&checks::sysfs_module(&d.module)).exists());
    if unloaded.is_empty() {
        let names: Vec<&str> = loaded.iter().map(|d| d.module.as_str()).collect();
        return Ok(Outcome::Skip(format!(
            "{} still loaded (an earlier case failed to unload it): nothing to wait for",
            names.join(", ")
        )));
    }
    let mut log = checks::LogWatch::start()?;
    std::thread::sleep(Duration::from_millis(AFTER_UNLOAD_WAIT_MS));
    let trouble = log.trouble()?;
    let waited_for: Vec<String> = unloaded
        .iter()
        .map(|d| format!("{} (it calls {})", d.module, d.imports.join(", ")))
        .collect();
    if trouble.is_empty() {
        println!(
            "waited {AFTER_UNLOAD_WAIT_MS} ms after the last unload of {}: nothing ran in freed \
             module code",
            waited_for.join("; ")
        );
        return Ok(Outcome::Pass);
    }
    Err(format!(
        "in the {AFTER_UNLOAD_WAIT_MS} ms after the last unload of {}, the kernel reported \
         trouble (a callback the module did not cancel?):\n{}",
        waited_for.join("; "),
        trouble.join("\n")
    ))
}
