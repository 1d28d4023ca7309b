//! lkmlab-guest: PID 1 of the lkmlab test VM.
//!
//! It mounts the pseudo filesystems, reads the test plan the host packed into
//! the initramfs (`/lkmlab/plan`), runs every case in a child process of its
//! own and writes the results as KTAP to a virtio serial port named
//! `lkmlab.ktap` — a channel apart from the kernel log on the serial console.
//! Then it reboots; QEMU runs with `-no-reboot` and exits.
//!
//! `lkmlab-guest --case SUITE CASE` runs one case (what PID 1 spawns);
//! `lkmlab-guest --fail-nth-load MODULE N` one load of the fault-injection
//! sweep. Run as `fail-nth` (a link to it in the guest's `/bin`), it is the
//! fault-injection helper for guest tests ([`fail_nth`]).

mod case;
mod checks;
mod fail_nth;
mod fault;
mod suites;
mod sys;

use case::{Env, Outcome, Suite};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const PLAN: &str = "/lkmlab/plan";
const KTAP_PORT_NAME: &str = "lkmlab.ktap";
/// Exit status of a skipped case (as in automake).
const EXIT_SKIP: u8 = 77;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let called_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if called_as == "fail-nth" {
        return fail_nth::main(&args[1..]);
    }
    match args.as_slice() {
        [_, flag, suite, case] if flag == "--case" => run_case(suite, case),
        [_, flag, module, n] if flag == "--fail-nth-load" => fail_nth_load(module, n),
        _ if std::process::id() == 1 => pid1(),
        _ => {
            eprintln!("lkmlab-guest runs as PID 1 in the lkmlab test VM (or: --case SUITE CASE)");
            ExitCode::from(2)
        }
    }
}

fn read_plan() -> io::Result<Env> {
    parse_plan(&fs::read_to_string(PLAN)?)
}

/// The plan's lines (written by the host's `guest::plan`): `option NAME`,
/// `module NAME PATH`, `test NAME PATH`, `load TEST MODULE [PARAMETERS]`.
fn parse_plan(text: &str) -> io::Result<Env> {
    let mut env = Env {
        modules: Vec::new(),
        tests: Vec::new(),
        preloads: Vec::new(),
        fault_injection: false,
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("load ") {
            env.preloads
                .push(parse_load(rest).ok_or_else(|| unreadable(line))?);
            continue;
        }
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["module", name, path] => env.modules.push((name.to_string(), PathBuf::from(path))),
            ["test", name, path] => env.tests.push((name.to_string(), PathBuf::from(path))),
            ["option", "fault-injection"] => env.fault_injection = true,
            _ => return Err(unreadable(line)),
        }
    }
    Ok(env)
}

/// `TEST MODULE [PARAMETERS]`: the parameters are the rest of the line, as
/// written (the kernel parses their quotes).
fn parse_load(rest: &str) -> Option<case::Preload> {
    let (test, rest) = rest.trim().split_once(char::is_whitespace)?;
    let (module, params) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .unwrap_or((rest.trim_start(), ""));
    (!module.is_empty()).then(|| case::Preload {
        test: test.to_string(),
        module: module.to_string(),
        params: params.trim().to_string(),
    })
}

fn unreadable(line: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{PLAN}: cannot read line {line:?}"),
    )
}

/// Every suite of the plan: one per module, then the module's own guest
/// tests, then (debug flavor) a kmemleak scan of everything they did.
fn suites(env: &Env) -> Vec<Suite> {
    let mut all: Vec<Suite> = env
        .modules
        .iter()
        .map(|(name, _)| {
            let mut suite = suites::for_module(name);
            if env.fault_injection {
                suite.cases.push(suites::fault_injection(name));
            }
            suite
        })
        .collect();
    if !env.tests.is_empty() {
        all.push(suites::guest_tests(env));
    }
    all.extend(suites::kmemleak());
    all
}

/// Child mode: run one case, report on stdout, exit 0 (pass), 77 (skip) or 1.
fn run_case(suite: &str, case: &str) -> ExitCode {
    match read_plan() {
        Ok(env) => ExitCode::from(case_status(&env, &suites(&env), suite, case)),
        Err(e) => {
            println!("reading the plan: {e}");
            ExitCode::FAILURE
        }
    }
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

/// The device node of the virtio serial port the host named `lkmlab.ktap`.
fn find_ktap_port() -> io::Result<PathBuf> {
    for entry in fs::read_dir("/sys/class/virtio-ports")? {
        let entry = entry?;
        let name = fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if name.trim() == KTAP_PORT_NAME {
            return Ok(PathBuf::from("/dev").join(entry.file_name()));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no virtio serial port named {KTAP_PORT_NAME}"),
    ))
}

fn setup() -> io::Result<(File, Env)> {
    sys::mount("proc", "/proc")?;
    sys::mount("sysfs", "/sys")?;
    sys::mount("devtmpfs", "/dev")?;
    sys::mount("debugfs", "/sys/kernel/debug")?;
    // The kernel booted with a KUnit filter that matched its own built-in
    // suites away; the modules' suites are to run at insmod.
    checks::set_kunit_filter(checks::KUNIT_ALL).map_err(io::Error::other)?;
    let port = find_ktap_port()?;
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

fn run_all(ktap: &mut File, env: &Env) -> io::Result<()> {
    let suites = suites(env);
    let total: usize = suites.iter().map(|s| s.cases.len()).sum();
    writeln!(ktap, "KTAP version 1")?;
    writeln!(ktap, "1..{total}")?;
    let mut number = 0;
    for suite in &suites {
        for case in &suite.cases {
            number += 1;
            let name = format!("{}.{}", suite.name, case.name);
            // Lets the host name the case that was running if the guest dies,
            // and puts the case into the kernel log beside what it caused.
            writeln!(ktap, "# running {name}")?;
            sys::log_to_kernel(&format!("lkmlab: case {name}"));
            let line = run_child(env, &suites, &suite.name, &case.name);
            for diag in &line.diagnostics {
                writeln!(ktap, "# {diag}")?;
            }
            // Nested results (e.g. a KUnit suite's own KTAP) go before the
            // case's result line, indented one level as KTAP requires.
            for sub in &line.subtests {
                writeln!(ktap, "    {sub}")?;
            }
            writeln!(ktap, "{} {number} {name}{}", line.status, line.directive)?;
        }
    }
    // Writes to the port are synchronous: nothing to flush before reboot.
    writeln!(ktap, "# lkmlab-guest: done")
}

struct ResultLine {
    status: &'static str,
    directive: String,
    diagnostics: Vec<String>,
    subtests: Vec<String>,
}

/// Runs a case in a child process of its own: forked, not executed anew
/// (an exec of the runner and a new read of the plan cost some 40 ms a
/// case under TCG), so a kernel oops that kills the task fails that case
/// alone.
fn run_child(env: &Env, all: &[Suite], suite: &str, case: &str) -> ResultLine {
    let output = sys::run_forked(|| case_status(env, all, suite, case));
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            return ResultLine {
                status: "not ok",
                directive: String::new(),
                diagnostics: vec![format!("could not start the case: {e}")],
                subtests: Vec::new(),
            }
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (subtests, stdout): (Vec<&str>, Vec<&str>) = stdout
        .lines()
        .partition(|l| l.starts_with(case::SUBTEST_PREFIX));
    let subtests = subtests
        .iter()
        .map(|l| l[case::SUBTEST_PREFIX.len()..].to_string())
        .collect();
    let mut diagnostics: Vec<String> = stdout
        .into_iter()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
        .map(str::to_string)
        .collect();
    match output.status.code() {
        Some(0) => ResultLine {
            status: "ok",
            directive: String::new(),
            diagnostics,
            subtests,
        },
        Some(code) if code == i32::from(EXIT_SKIP) => ResultLine {
            status: "ok",
            directive: format!(" # SKIP {}", diagnostics.join("; ")),
            diagnostics: Vec::new(),
            subtests,
        },
        code => {
            if code.is_none() {
                use std::os::unix::process::ExitStatusExt;
                let signal = output.status.signal().unwrap_or_default();
                diagnostics.push(format!(
                    "the case was killed by signal {signal} (a kernel oops kills the task)"
                ));
            }
            ResultLine {
                status: "not ok",
                directive: String::new(),
                diagnostics,
                subtests,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_as_the_host_writes_it() {
        let env = parse_plan(
            "# lkmlab test plan: modules, then guest tests\n\
             option fault-injection\n\
             module scull /lkmlab/modules/scull.ko\n\
             test needs-scull /lkmlab/tests/needs-scull\n\
             load needs-scull scull capacity=64 name=\"a b\"\n\
             load needs-scull hello\n",
        )
        .unwrap();
        assert!(env.fault_injection);
        assert_eq!(
            env.modules,
            [(
                "scull".to_string(),
                PathBuf::from("/lkmlab/modules/scull.ko")
            )]
        );
        assert_eq!(env.tests[0].0, "needs-scull");
        let loads: Vec<(&str, &str)> = env
            .preloads_of("needs-scull")
            .map(|p| (p.module.as_str(), p.params.as_str()))
            .collect();
        assert_eq!(
            loads,
            [("scull", "capacity=64 name=\"a b\""), ("hello", "")]
        );
        assert_eq!(env.preloads_of("other").count(), 0);
    }

    #[test]
    fn a_line_the_runner_cannot_read_is_an_error() {
        for line in ["load only-a-test", "modul x y", "test a"] {
            let err = parse_plan(line)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("cannot read line"), "{line}: {err}");
        }
    }
}
