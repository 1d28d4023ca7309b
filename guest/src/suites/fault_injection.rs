//! The fault-injection sweep (`lkmlab test --fault-injection`): load a
//! module with the 1st, 2nd, 3rd … allocation of its `init` failing (an
//! allocation made with module code on the stack, see [`fault::enable`]:
//! the module loader's own are the kernel's business), until a load makes
//! fewer allocations than the one to fail. After every
//! failed load the module must be gone and the kernel log as clean as
//! before. kmemleak (debug flavor) scans once, at the end; the host puts
//! each object it reports at the step whose load allocated it, and fails
//! that step.
//!
//! Each load runs in a process of its own (`lkmlab-guest --fail-nth-load
//! MODULE N`), so an oops in an error path kills that load alone, and
//! kmemleak's `pid` names it: each step says its load's pid
//! ([`lkmlab_protocol::LOAD_PID`]).

use crate::case::{Case, Env, Outcome, Verdict, SUBTEST_PREFIX};
use crate::checks::{self, sysfs_module};
use crate::fault::{self, FailNth};
use crate::sys;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

/// A bound on the sweep, far above what a module's load allocates.
const MAX_FAULT_POINTS: u32 = 5000;

pub fn case(module: &str) -> Case {
    let module = module.to_string();
    Case::new(lkmlab_protocol::FAULT_INJECTION_CASE, move |env| {
        sweep(env, &module)
    })
}

/// One load with fault point `n` failing, as the child process reports it.
struct Load {
    pid: u32,
    /// `init_module`'s error, if it failed.
    error: Option<io::Error>,
    /// Whether the `n`-th fault point was reached (and failed).
    injected: bool,
}

/// The name of step `n` in the report.
fn step_name(n: u32) -> String {
    format!("init_fails_cleanly_at_alloc_{n}")
}

fn sweep(env: &Env, module: &str) -> Verdict {
    env.ko(module)?;
    if Path::new(&sysfs_module(module)).exists() {
        return Err(format!(
            "{module} is loaded before the sweep (an earlier case left it)"
        ));
    }
    fault::enable()?;
    // KUnit suites run after init, from module code: their allocations would
    // count as init's, and fail the tests instead.
    let _kunit = checks::KunitPaused::new()?;
    let mut steps = Vec::new();
    let mut failures = Vec::new();
    let mut made = None;
    let started = std::time::Instant::now();
    for n in 1..=MAX_FAULT_POINTS {
        let mut log = checks::LogWatch::start()?;
        sys::log_to_kernel(&lkmlab_protocol::kernel_log::fault_injection_load(
            module, n,
        ));
        let load = run_load(module, n)?;
        let mut problems = Vec::new();
        let loaded = Path::new(&sysfs_module(module)).exists();
        match (&load.error, loaded) {
            (None, true) => {
                checks::record_load(module);
                if let Err(e) = checks::rmmod(module) {
                    problems.push(format!("unloading after the load: {e}"));
                }
            }
            (None, false) => problems.push(format!(
                "init_module succeeded but {} does not exist",
                sysfs_module(module)
            )),
            (Some(e), true) => {
                problems.push(format!(
                    "init_module failed ({e}) but {module} is still loaded"
                ));
                let _ = sys::rmmod(module);
            }
            (Some(_), false) => {}
        }
        let new_trouble = log.trouble()?;
        if !new_trouble.is_empty() {
            problems.push(format!(
                "the kernel log reports trouble:\n{}",
                new_trouble.join("\n")
            ));
        }
        let what = match (&load.error, load.injected) {
            (Some(e), true) => format!("init_module failed: {e}"),
            (None, true) => "the allocation failed and the load succeeded anyway".to_string(),
            (None, false) => format!("{module} loaded: no allocation {n} to fail"),
            (Some(e), false) => {
                problems.push(format!("init_module failed with no fault injected: {e}"));
                String::new()
            }
        };
        let name = if load.injected {
            step_name(n)
        } else {
            made = Some(n - 1);
            "loads_when_no_allocation_fails".to_string()
        };
        steps.push(Step {
            name,
            what,
            pid: load.pid,
            problems: problems.clone(),
        });
        if !problems.is_empty() {
            failures.push(format!("allocation {n} failing: {}", problems.join("; ")));
        }
        if !load.injected {
            break;
        }
    }
    print_subtests(&steps);
    println!(
        "fault injection: {} load(s) in {:.2} s",
        steps.len(),
        started.elapsed().as_secs_f64()
    );
    match made {
        Some(count) => println!(
            "the init of {module} makes {count} allocation(s) (slab and page, from module \
             code); each was failed once"
        ),
        None => failures.push(format!(
            "still failing allocations after {MAX_FAULT_POINTS} loads: stopped"
        )),
    }
    if failures.is_empty() {
        Ok(Outcome::Pass)
    } else {
        Err(failures.join("\n"))
    }
}

/// One load of the sweep, as reported.
struct Step {
    name: String,
    /// What happened to the load.
    what: String,
    /// The process that made the load.
    pid: u32,
    problems: Vec<String>,
}

/// The steps as nested KTAP (the runner indents them under the case). Each
/// step names its load's pid ([`lkmlab_protocol::LOAD_PID`]) for the host,
/// which fails the step when the final kmemleak scan reports an object that
/// process allocated.
fn print_subtests(steps: &[Step]) {
    let mut out = String::new();
    let _ = writeln!(out, "{SUBTEST_PREFIX}KTAP version 1");
    let _ = writeln!(out, "{SUBTEST_PREFIX}1..{}", steps.len());
    for (i, step) in steps.iter().enumerate() {
        if !step.what.is_empty() {
            let _ = writeln!(out, "{SUBTEST_PREFIX}# {}", step.what);
        }
        let _ = writeln!(
            out,
            "{SUBTEST_PREFIX}# {}{}",
            lkmlab_protocol::LOAD_PID,
            step.pid
        );
        for p in step.problems.iter().flat_map(|p| p.lines()) {
            let _ = writeln!(out, "{SUBTEST_PREFIX}# {p}");
        }
        let status = if step.problems.is_empty() {
            "ok"
        } else {
            "not ok"
        };
        let _ = writeln!(out, "{SUBTEST_PREFIX}{status} {} {}", i + 1, step.name);
    }
    print!("{out}");
}

/// Runs one load in a child process and reads its report line
/// (`injected=0|1 errno=N`).
fn run_load(module: &str, n: u32) -> Result<Load, String> {
    let child = Command::new("/proc/self/exe")
        .args(["--fail-nth-load", module, &n.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the load with allocation {n} failing: {e}"))?;
    let pid = child.id();
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for the load with allocation {n} failing: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        use std::os::unix::process::ExitStatusExt;
        let how = match out.status.signal() {
            Some(sig) => format!("was killed by signal {sig}"),
            None => format!("failed ({})", out.status),
        };
        return Err(format!(
            "the load with allocation {n} failing {how}: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let field = |key: &str| -> Option<i32> {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    match (field("injected"), field("errno")) {
        (Some(injected), Some(errno)) => Ok(Load {
            pid,
            error: (errno != 0).then(|| io::Error::from_raw_os_error(errno)),
            injected: injected != 0,
        }),
        _ => Err(format!("unreadable report from the load: {stdout:?}")),
    }
}

/// Child mode (`--fail-nth-load MODULE N`): `init_module` with this task's
/// `n`-th fault point failing. Everything that allocates (reading the
/// module, opening fail-nth) happens before arming; the report goes to
/// stdout after disarming. Exit status 0 whenever the report was written.
pub fn load_child(env: &Env, module: &str, n: u32) -> Result<(), String> {
    let ko = env.ko(module)?;
    let image = std::fs::read(ko).map_err(|e| format!("reading {}: {e}", ko.display()))?;
    let mut fail_nth = FailNth::this_thread().map_err(|e| e.to_string())?;
    fail_nth
        .arm(n)
        .map_err(|e| format!("arming fail-nth: {e}"))?;
    let result = sys::init_module(&image, "");
    let remaining = fail_nth.remaining();
    let disarmed = fail_nth.arm(0);
    let remaining = remaining.map_err(|e| format!("reading fail-nth: {e}"))?;
    disarmed.map_err(|e| format!("disarming fail-nth: {e}"))?;
    let errno = match result {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    };
    println!("injected={} errno={errno}", u8::from(remaining == 0));
    Ok(())
}
