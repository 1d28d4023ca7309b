//! lkmlab-guest: PID 1 of the lkmlab test VM.
//!
//! It mounts the pseudo filesystems ([`mounts`]), reads the test plan the
//! host packed into the initramfs (`/lkmlab/plan`), runs every case in a
//! child process of its own and writes the results as KTAP to a virtio
//! serial port named `lkmlab.ktap` — a channel apart from the kernel log on
//! the serial console.
//! Then it reboots; QEMU runs with `-no-reboot` and exits.
//!
//! Each case runs in a forked child of PID 1 ([`run_child`]), under the
//! per-case [`watchdog`], which dumps what a case still running near the
//! host's deadline is blocked on.
//!
//! After a kernel oops the runner does not go on: the test kernel boots with
//! `oops=panic` (see `lkmlab/src/vm/qemu.rs`), so the oops ends the VM and
//! the host names the cases that did not run from the runner's `# planned:`
//! line.
//! `lkmlab-guest --fail-nth-load MODULE N` is one load of the
//! fault-injection sweep, which the sweep's case executes anew. Run as
//! `fail-nth` (a link to it in the guest's `/bin`), it is the
//! fault-injection helper for guest tests ([`fail_nth`]); as `lkmlab-log`,
//! it prints a guest test's own kernel log ([`test_log`]).

mod case;
mod checks;
mod elf;
mod fail_nth;
mod fault;
mod interrupts;
mod mounts;
mod suites;
mod sys;
mod test_log;
mod watchdog;

use case::{Env, Outcome, Suite};
use lkmlab_protocol::ktap::{self, CaseReport};
use lkmlab_protocol::{layout, CONTROL_PORT, KTAP_PORT};
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status of a skipped case (as in automake).
const EXIT_SKIP: u8 = 77;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let called_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match called_as {
        "fail-nth" => return fail_nth::main(&args[1..]),
        "lkmlab-log" => return test_log::main(&args[1..]),
        _ => {}
    }
    match args.as_slice() {
        [_, flag, module, n] if flag == "--fail-nth-load" => fail_nth_load(module, n),
        _ if std::process::id() == 1 => pid1(),
        _ => {
            eprintln!(
                "lkmlab-guest runs as PID 1 in the lkmlab test VM \
                 (or: --fail-nth-load MODULE N, or as fail-nth or lkmlab-log)"
            );
            ExitCode::from(2)
        }
    }
}

fn read_plan() -> io::Result<Env> {
    let text = fs::read_to_string(layout::PLAN)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", layout::PLAN)))?;
    Env::parse(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Every suite of the plan: one per module, then the module's own guest
/// tests, then the kernel's: a wait for callbacks after the last unload of
/// modules that can schedule them, and (debug flavor) a kmemleak scan of
/// everything they did.
fn suites(env: &Env) -> Vec<Suite> {
    let mut all: Vec<Suite> = env
        .modules
        .iter()
        .map(|module| {
            // A module file that cannot be read keeps its `kunit` case,
            // which then says what it finds.
            let has_kunit = elf::has_kunit_suites(&module.path).unwrap_or(true);
            let mut suite =
                suites::for_module(&module.name, env.example_of(&module.name), has_kunit);
            if env.fault_injection {
                suite.cases.push(suites::fault_injection(&module.name));
            }
            suite
        })
        .collect();
    if !env.tests.is_empty() {
        all.push(suites::guest_tests(env));
    }
    all.extend(suites::kernel_suite(env));
    all
}

/// Runs one case of `all`, printing its message; the exit status it stands
/// for: 0 (pass), 77 (skip) or 1.
fn case_status(env: &Env, all: &[Suite], suite: &str, case: &str) -> u8 {
    let Some(case) = all
        .iter()
        .filter(|s| s.name == suite)
        .flat_map(|s| &s.cases)
        .find(|c| c.name == case)
    else {
        println!("no case {case} in suite {suite}");
        return 1;
    };
    match (case.run)(env) {
        Ok(Outcome::Pass) => 0,
        Ok(Outcome::Skip(reason)) => {
            println!("{reason}");
            EXIT_SKIP
        }
        Err(message) => {
            println!("{message}");
            1
        }
    }
}

/// Child mode of the fault-injection sweep: one load, reported on stdout.
fn fail_nth_load(module: &str, n: &str) -> ExitCode {
    let result = read_plan()
        .map_err(|e| format!("reading the plan: {e}"))
        .and_then(|env| {
            let n = n
                .parse()
                .map_err(|e| format!("--fail-nth-load: N {n:?}: {e}"))?;
            suites::fault_injection_load(&env, module, n)
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The device node of the virtio serial port the host named `name`.
fn find_port(name: &str) -> io::Result<PathBuf> {
    for entry in fs::read_dir("/sys/class/virtio-ports")? {
        let entry = entry?;
        let port = fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if port.trim() == name {
            return Ok(PathBuf::from("/dev").join(entry.file_name()));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no virtio serial port named {name}"),
    ))
}

/// The host's control port ([`CONTROL_PORT`]), opened for reading without
/// blocking; none (no watchdog) when the host gave none.
fn open_control_port() -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = find_port(CONTROL_PORT).ok()?;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()
}

fn setup() -> io::Result<(File, Env)> {
    mounts::mount_all()?;
    // The kernel booted with a KUnit filter that matched its own built-in
    // suites away; the modules' suites are to run at insmod.
    checks::set_kunit_filter(lkmlab_protocol::KUNIT_FILTER_ALL).map_err(io::Error::other)?;
    let port = find_port(KTAP_PORT)?;
    let ktap = fs::OpenOptions::new()
        .write(true)
        .open(&port)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", port.display())))?;
    Ok((ktap, read_plan()?))
}

fn pid1() -> ExitCode {
    match setup() {
        Ok((mut ktap, env)) => {
            if let Err(e) = run_all(&mut ktap, &env) {
                eprintln!("lkmlab-guest: writing results: {e}");
            }
        }
        // Without the channel nothing can be reported: say why on the console.
        Err(e) => eprintln!("lkmlab-guest: cannot start: {e}"),
    }
    sys::reboot()
}

fn run_all(port: &mut File, env: &Env) -> io::Result<()> {
    let suites = suites(env);
    let control = open_control_port();
    let names: Vec<String> = (suites.iter())
        .flat_map(|s| {
            s.cases
                .iter()
                .map(move |c| format!("{}.{}", s.name, c.name))
        })
        .collect();
    let mut ktap = ktap::Writer::start(port, names.len())?;
    // Lets the host name what did not run if the guest stops early.
    ktap.planned(&names)?;
    for suite in &suites {
        for case in &suite.cases {
            let name = format!("{}.{}", suite.name, case.name);
            // Lets the host name the case that was running if the guest dies,
            // and puts the case into the kernel log beside what it caused.
            ktap.running(&name)?;
            sys::log_to_kernel(&case::log_marker(&name));
            let started = sys::uptime();
            let mut fire = |pid| {
                let ran = sys::uptime().saturating_sub(started).as_secs();
                watchdog::dump(&name, ran, pid);
                if let Err(e) = ktap.hung(&name, ran) {
                    eprintln!("lkmlab-guest: writing results: {e}");
                }
            };
            // The host signals when the VM's time is nearly up.
            let alarm = control.as_ref().map(|port| sys::Alarm {
                port,
                fire: &mut fire,
            });
            let result = run_child(env, &suites, &suite.name, &case.name, alarm);
            ktap.result(&CaseReport {
                name: &name,
                outcome: result.outcome,
                skip_reason: &result.skip_reason,
                diagnostics: &result.diagnostics,
                subtests: &result.subtests,
            })?;
        }
    }
    // Writes to the port are synchronous: nothing is lost at the reboot.
    ktap.done().map(drop)
}

/// What a case's child process reported.
struct CaseResult {
    outcome: ktap::Outcome,
    skip_reason: String,
    diagnostics: Vec<String>,
    /// Its own nested KTAP (a KUnit suite's), written one level deeper.
    subtests: Vec<String>,
}

/// Runs a case in a child process of its own: forked, not executed anew
/// (an exec of the runner and a new read of the plan cost some 40 ms a
/// case under TCG). The `alarm` is the watchdog's.
fn run_child(
    env: &Env,
    all: &[Suite],
    suite: &str,
    case: &str,
    alarm: Option<sys::Alarm>,
) -> CaseResult {
    match sys::run_forked(|| case_status(env, all, suite, case), alarm) {
        Ok(output) => {
            use std::os::unix::process::ExitStatusExt;
            let ended = match output.status.code() {
                Some(code) => Ended::Exited(code),
                None => Ended::Killed(output.status.signal().unwrap_or_default()),
            };
            case_result(
                ended,
                &String::from_utf8_lossy(&output.stdout),
                &String::from_utf8_lossy(&output.stderr),
            )
        }
        Err(e) => CaseResult {
            outcome: ktap::Outcome::Fail,
            skip_reason: String::new(),
            diagnostics: vec![format!("could not start the case: {e}")],
            subtests: Vec::new(),
        },
    }
}

/// How a case's process ended.
#[derive(Debug, Clone, Copy)]
enum Ended {
    Exited(i32),
    Killed(i32),
}

/// A case's result from how its process ended and what it printed: exit 0
/// passes, [`EXIT_SKIP`] skips with what it printed as the reason, anything
/// else fails; stdout lines with [`case::SUBTEST_PREFIX`] are its nested
/// KTAP, the other lines (stdout, then stderr) its diagnostics.
fn case_result(ended: Ended, stdout: &str, stderr: &str) -> CaseResult {
    let (subtests, printed): (Vec<&str>, Vec<&str>) = stdout
        .lines()
        .partition(|l| l.starts_with(case::SUBTEST_PREFIX));
    let subtests = subtests
        .iter()
        .map(|l| l[case::SUBTEST_PREFIX.len()..].to_string())
        .collect();
    let mut diagnostics: Vec<String> = printed
        .into_iter()
        .chain(stderr.lines())
        .map(str::to_string)
        .collect();
    let (outcome, skip_reason) = match ended {
        Ended::Exited(0) => (ktap::Outcome::Pass, String::new()),
        Ended::Exited(code) if code == i32::from(EXIT_SKIP) => (
            ktap::Outcome::Skip,
            std::mem::take(&mut diagnostics).join("; "),
        ),
        Ended::Exited(_) => (ktap::Outcome::Fail, String::new()),
        Ended::Killed(signal) => {
            diagnostics.push(format!("the case was killed by signal {signal}"));
            (ktap::Outcome::Fail, String::new())
        }
    };
    CaseResult {
        outcome,
        skip_reason,
        diagnostics,
        subtests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_that_exits_0_passes_with_what_it_printed() {
        let r = case_result(Ended::Exited(0), "opened /dev/scull\n", "a warning\n");
        assert_eq!(r.outcome, ktap::Outcome::Pass);
        assert_eq!(r.diagnostics, ["opened /dev/scull", "a warning"]);
        assert!(r.subtests.is_empty());
    }

    #[test]
    fn a_case_that_exits_77_is_skipped_for_the_reason_it_printed() {
        let r = case_result(Ended::Exited(77), "no debugfs\n", "in this kernel\n");
        assert_eq!(r.outcome, ktap::Outcome::Skip);
        assert_eq!(r.skip_reason, "no debugfs; in this kernel");
        assert!(r.diagnostics.is_empty());
    }

    #[test]
    fn a_case_that_fails_or_is_killed_fails_and_says_how() {
        let r = case_result(Ended::Exited(1), "cycle 3: busy\n", "");
        assert_eq!(r.outcome, ktap::Outcome::Fail);
        assert_eq!(r.diagnostics, ["cycle 3: busy"]);
        let r = case_result(Ended::Killed(9), "", "");
        assert_eq!(r.outcome, ktap::Outcome::Fail);
        assert_eq!(r.diagnostics, ["the case was killed by signal 9"]);
    }

    #[test]
    fn nested_ktap_lines_become_subtests_in_their_order() {
        let stdout = "ktap: KTAP version 1\nloaded\nktap: 1..1\nktap: ok 1 t\n";
        let r = case_result(Ended::Exited(0), stdout, "");
        assert_eq!(r.subtests, ["KTAP version 1", "1..1", "ok 1 t"]);
        assert_eq!(r.diagnostics, ["loaded"]);
    }

    /// What the runner writes for a case, as the host reads it.
    #[test]
    fn a_case_result_reaches_the_host_as_written() {
        let r = case_result(
            Ended::Exited(0),
            "ktap: KTAP version 1\nktap: 1..1\nktap: ok 1 inner\n",
            "",
        );
        let mut w = ktap::Writer::start(Vec::new(), 1).unwrap();
        w.running("m.kunit").unwrap();
        w.result(&CaseReport {
            name: "m.kunit",
            outcome: r.outcome,
            skip_reason: &r.skip_reason,
            diagnostics: &r.diagnostics,
            subtests: &r.subtests,
        })
        .unwrap();
        let text = String::from_utf8(w.done().unwrap()).unwrap();
        let report = ktap::parse(&text);
        assert_eq!(report.status(), ktap::Status::Passed, "{text}");
        assert_eq!(report.cases[0].subtests[0].name, "inner");
    }
}
