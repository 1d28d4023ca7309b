//! Putting each leak the final kmemleak scan reports at the fault-injection
//! step that made it.
//!
//! The fault-injection sweep (`MODULE.fault_injection`) loads a module with
//! its 1st, 2nd, … allocation failing, one nested result per load; kmemleak
//! scans once, after everything else (`kernel.kmemleak_no_leaks`: a scan per
//! step would cost kmemleak's fixed 5 s minimum age each time). The runner
//! reports a step before the scan has seen its leak, so the host, which has
//! both, fails the step whose load leaked: it quotes the object under the
//! step, fails the sweep above it, and takes the object out of the kmemleak
//! case, which then fails only for leaks no step made. A leak shows once, at
//! its step.
//!
//! How an object is tied to a step: by the pid of the task that allocated it.
//! kmemleak records the allocating task (`comm "exe", pid 44, jiffies …`),
//! and the runner makes each load in a process of its own and names its pid
//! under the step (`# load pid 44`, [`lkmlab_protocol::LOAD_PID`]). This is
//! exact where it matters: fault injection itself is per task (`fail-nth`
//! fails the n-th allocation *of that task*), so the error path that leaks
//! runs in the loading task. The alternatives are not: the allocation's
//! `jiffies` against time marks of each step would be at the mercy of the
//! clock's resolution (a step takes a few jiffies under TCG) and of two
//! clocks (printk's time, jiffies); the module's address range is the same
//! from one load to the next and, the load having failed, its frames are
//! bare addresses. What pids cannot tie: an object allocated on the load's
//! behalf by another task (a workqueue, an RCU callback), and a pid two
//! steps share (pids wrap only after `pid_max`, 32768 or more, processes;
//! a shared one is ambiguous and ties nothing). Such a leak stays a
//! `kernel.kmemleak_no_leaks` failure, with the task that allocated it.

use crate::ktap::{self, Outcome, TestCase};
use lkmlab_protocol::{FAULT_INJECTION_CASE, KERNEL_SUITE, KMEMLEAK_CASE, LOAD_PID};

/// kmemleak's first line of an object's report.
const OBJECT: &str = "unreferenced object ";

/// One object of kmemleak's report, as it printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The report's lines: `unreferenced object 0x… (size N):`, then
    /// indented `comm "…", pid N, jiffies N`, the hex dump, the backtrace.
    pub lines: Vec<String>,
}

impl Leak {
    /// The allocating task's pid (`comm "exe", pid 44, jiffies …`).
    pub fn pid(&self) -> Option<u32> {
        self.lines.iter().find_map(|l| {
            let rest = l.trim_start().strip_prefix("comm ")?;
            let (_, pid) = rest.split_once(", pid ")?;
            pid.split(',').next()?.trim().parse().ok()
        })
    }

    /// The allocating task as kmemleak names it (`comm "exe", pid 44`).
    fn task(&self) -> Option<&str> {
        self.lines.iter().find_map(|l| {
            let l = l.trim_start();
            l.starts_with("comm ")
                .then(|| l.split(", jiffies").next().unwrap_or(l))
        })
    }

    /// The lines worth quoting under a step: the object and its size, the
    /// task, the backtrace (whose bare addresses are the failed load's
    /// module, its text gone); not the hex dump.
    pub fn key_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut in_hex_dump = false;
        for line in &self.lines {
            let trimmed = line.trim_start();
            if trimmed.starts_with("hex dump") {
                in_hex_dump = true;
                continue;
            }
            if trimmed.starts_with("backtrace") {
                in_hex_dump = false;
            }
            if !in_hex_dump {
                out.push(line.clone());
            }
        }
        out
    }

    /// `0x… (size N)`, from the first line.
    fn object(&self) -> &str {
        self.lines[0]
            .strip_prefix(OBJECT)
            .unwrap_or(&self.lines[0])
            .trim_end_matches(':')
    }
}

/// kmemleak's report, as the kmemleak case quotes it: what comes before the
/// first object (the case's own words), then each object.
pub fn parse_report(lines: &[String]) -> (Vec<String>, Vec<Leak>) {
    let mut preamble = Vec::new();
    let mut leaks: Vec<Leak> = Vec::new();
    for line in lines {
        if line.starts_with(OBJECT) {
            leaks.push(Leak {
                lines: vec![line.clone()],
            });
        } else if let Some(leak) = leaks.last_mut() {
            // The report's own lines are indented; the first that is not
            // ends the last object (a note after the report).
            if line.starts_with(' ') {
                leak.lines.push(line.clone());
            } else {
                preamble.push(line.clone());
            }
        } else {
            preamble.push(line.clone());
        }
    }
    (preamble, leaks)
}

/// What [`attribute`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Objects put at a step, each with the step's full name
    /// (`MODULE.fault_injection.STEP`).
    pub at_steps: Vec<String>,
    /// Objects no step made, left in the kmemleak case.
    pub unattributed: usize,
}

impl Attribution {
    /// The kmemleak case reported leaks, and every one is at its step.
    pub fn all_at_steps(&self) -> bool {
        !self.at_steps.is_empty() && self.unattributed == 0
    }
}

/// Puts each object of the failed kmemleak case's report at the
/// fault-injection step whose load allocated it (see the module
/// documentation): the step and its sweep fail, quoting it, and the kmemleak
/// case keeps only the rest (it passes when nothing is left). `None` when no
/// kmemleak case failed with objects.
pub fn attribute(report: &mut ktap::Report) -> Option<Attribution> {
    let kmemleak_name = format!("{KERNEL_SUITE}.{KMEMLEAK_CASE}");
    let kmemleak = report
        .cases
        .iter()
        .position(|c| c.name == kmemleak_name && c.outcome == Outcome::Fail)?;
    let (preamble, leaks) = parse_report(&report.cases[kmemleak].diagnostics);
    if leaks.is_empty() {
        return None;
    }
    let steps = steps_by_pid(&report.cases);
    if steps.is_empty() {
        // No sweep ran: the report is the kmemleak case's alone, as it is.
        return None;
    }
    let mut attribution = Attribution::default();
    let mut left = Vec::new();
    for leak in leaks {
        let step = leak
            .pid()
            .and_then(|pid| steps.iter().find(|s| s.pid == pid));
        let Some(step) = step else {
            left.push(leak);
            continue;
        };
        let sweep = &mut report.cases[step.case];
        let step_case = &mut sweep.subtests[step.subtest];
        let full_name = format!("{}.{}", sweep.name, step_case.name);
        step_case.outcome = Outcome::Fail;
        // First: it is why the step failed (and JUnit's message).
        let mut quoted = vec!["this load failed to free an object (kmemleak's final scan):".into()];
        quoted.extend(leak.key_lines());
        if quoted.iter().any(|l| l.trim_start().starts_with("0x")) {
            let module = sweep.name.strip_suffix(&format!(".{FAULT_INJECTION_CASE}"));
            quoted.push(format!(
                "(the bare 0x… frames are {}'s: its code went with the failed load)",
                module.unwrap_or("the module")
            ));
        }
        step_case.diagnostics.splice(0..0, quoted);
        let step_name = step_case.name.clone();
        sweep.outcome = Outcome::Fail;
        // `STEP: …`: JUnit gives a failed leaf its parent's lines naming it.
        sweep
            .diagnostics
            .push(format!("{step_name}: leaked {} (kmemleak)", leak.object()));
        attribution.at_steps.push(full_name);
    }
    attribution.unattributed = left.len();
    let case = &mut report.cases[kmemleak];
    let mut diagnostics: Vec<String> = preamble
        .into_iter()
        .filter(|d| d.starts_with(lkmlab_protocol::RUNNING))
        .collect();
    if left.is_empty() {
        case.outcome = Outcome::Pass;
    } else {
        diagnostics.push("kmemleak reports unreferenced objects:".into());
        for leak in &left {
            diagnostics.extend(leak.lines.iter().cloned());
        }
        let mut tasks: Vec<(&str, usize)> = Vec::new();
        for leak in &left {
            let task = leak.task().unwrap_or("a task kmemleak does not name");
            match tasks.iter_mut().find(|(t, _)| *t == task) {
                Some((_, count)) => *count += 1,
                None => tasks.push((task, 1)),
            }
        }
        for (task, count) in tasks {
            diagnostics.push(format!(
                "{count} object(s) allocated by {task}, which made no load of a \
                 fault-injection sweep"
            ));
        }
    }
    if !attribution.at_steps.is_empty() {
        let mut names = attribution.at_steps.clone();
        names.dedup();
        let (count, more) = (
            attribution.at_steps.len(),
            if left.is_empty() { "" } else { " more" },
        );
        diagnostics.push(format!(
            "{count}{more} object(s), each reported at the fault-injection step that allocated it: {}",
            names.join(", ")
        ));
    }
    case.diagnostics = diagnostics;
    Some(attribution)
}

/// A fault-injection step: where it is in the report, its load's pid.
struct Step {
    case: usize,
    subtest: usize,
    pid: u32,
}

/// Every fault-injection step that names its load's pid, except those whose
/// pid another step names too (ambiguous: it ties nothing).
fn steps_by_pid(cases: &[TestCase]) -> Vec<Step> {
    let suffix = format!(".{FAULT_INJECTION_CASE}");
    let mut steps = Vec::new();
    for (case, sweep) in cases.iter().enumerate() {
        if !sweep.name.ends_with(&suffix) {
            continue;
        }
        for (subtest, step) in sweep.subtests.iter().enumerate() {
            let pid = step
                .diagnostics
                .iter()
                .find_map(|d| d.strip_prefix(LOAD_PID)?.trim().parse().ok());
            if let Some(pid) = pid {
                steps.push(Step { case, subtest, pid });
            }
        }
    }
    let shared: Vec<u32> = steps
        .iter()
        .filter(|s| steps.iter().filter(|t| t.pid == s.pid).count() > 1)
        .map(|s| s.pid)
        .collect();
    steps.retain(|s| !shared.contains(&s.pid));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::report;
    use crate::vm::qemu::Ending;
    use std::time::Duration;

    /// A real run (`lkmlab test --flavor debug --fault-injection --module
    /// tests/fixtures/leak-on-init-error`): its KTAP and console log. The
    /// second load (pid 44) leaked a 512-byte object.
    fn captured() -> (String, String) {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/console-logs");
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        (
            read("fault-injection-leak.ktap"),
            read("fault-injection-leak.log"),
        )
    }

    fn case<'a>(report: &'a ktap::Report, name: &str) -> &'a TestCase {
        report
            .cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no case {name}"))
    }

    fn sweep(report: &ktap::Report) -> &TestCase {
        case(report, "leak_on_init_error.fault_injection")
    }

    fn kmemleak_case(report: &ktap::Report) -> &TestCase {
        case(report, "kernel.kmemleak_no_leaks")
    }

    #[test]
    fn kmemleaks_report_is_read_object_by_object() {
        let (ktap_text, _) = captured();
        let parsed = ktap::parse(&ktap_text);
        let (preamble, leaks) = parse_report(&kmemleak_case(&parsed).diagnostics);
        assert_eq!(
            preamble,
            [
                "running kernel.kmemleak_no_leaks",
                "kmemleak reports unreferenced objects:"
            ]
        );
        assert_eq!(leaks.len(), 1);
        let leak = &leaks[0];
        assert_eq!(leak.pid(), Some(44));
        assert_eq!(leak.task(), Some("comm \"exe\", pid 44"));
        assert_eq!(leak.object(), "0xffff8880065e7400 (size 512)");
        let key = leak.key_lines();
        assert_eq!(key[0], "unreferenced object 0xffff8880065e7400 (size 512):");
        assert_eq!(key[1], "  comm \"exe\", pid 44, jiffies 4294895247");
        assert_eq!(key[2], "  backtrace (crc 0):");
        assert!(key.iter().all(|l| !l.contains("hex dump")), "{key:#?}");
        assert!(
            key.contains(&"    0xffffffffa00000b9".to_string()),
            "{key:#?}"
        );
        assert_eq!(
            key.last().unwrap(),
            "    entry_SYSCALL_64_after_hwframe+0x4b/0x53"
        );
    }

    /// The step whose load leaked fails, quoting the object; its sweep
    /// fails; the other steps stay ok; the kmemleak case, left with nothing,
    /// passes; kmemleak's log line is no second failure.
    #[test]
    fn the_leak_is_reported_once_at_the_step_whose_load_made_it() {
        let (ktap_text, console) = captured();
        let verdict = report::evaluate(&ktap_text, &console, &Ending::Saved, Duration::ZERO);
        let sweep = sweep(&verdict.ktap);
        assert_eq!(sweep.outcome, Outcome::Fail);
        let outcomes: Vec<(&str, Outcome)> = (sweep.subtests.iter())
            .map(|s| (s.name.as_str(), s.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("init_fails_cleanly_at_alloc_1", Outcome::Pass),
                ("init_fails_cleanly_at_alloc_2", Outcome::Fail),
                ("loads_when_no_allocation_fails", Outcome::Pass),
            ]
        );
        assert!(sweep.diagnostics.contains(
            &"init_fails_cleanly_at_alloc_2: leaked 0xffff8880065e7400 (size 512) (kmemleak)"
                .to_string()
        ));
        let kmemleak = kmemleak_case(&verdict.ktap);
        assert_eq!(kmemleak.outcome, Outcome::Pass);
        assert_eq!(
            kmemleak.diagnostics.last().unwrap(),
            "1 object(s), each reported at the fault-injection step that allocated it: \
             leak_on_init_error.fault_injection.init_fails_cleanly_at_alloc_2"
        );
        assert!(
            verdict.extra_failures.is_empty(),
            "{:#?}",
            verdict.extra_failures
        );
        assert!(!verdict.passed());
        assert_eq!(verdict.summary_line(), "4 passed, 1 failed");

        let text = report::render(&verdict);
        let step = text
            .split("  FAIL init_fails_cleanly_at_alloc_2\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            step.starts_with(
                "         this load failed to free an object (kmemleak's final scan):\n\
                 \x20        unreferenced object 0xffff8880065e7400 (size 512):\n\
                 \x20          comm \"exe\", pid 44, jiffies 4294895247\n\
                 \x20          backtrace (crc 0):\n"
            ),
            "{text}"
        );
        assert!(
            step.contains(
                "             entry_SYSCALL_64_after_hwframe+0x4b/0x53\n\
                 \x20        (the bare 0x… frames are leak_on_init_error's: its code went with \
                 the failed load)\n\
                 \x20        init_module failed: Cannot allocate memory (os error 12)\n\
                 \x20 ok   loads_when_no_allocation_fails\n"
            ),
            "{text}"
        );
        assert!(!text.contains("load pid"), "{text}");
        assert!(!text.contains("hex dump"), "{text}");
        assert!(!text.contains("FAIL kernel"), "{text}");
        assert!(
            text.contains("  ok   init_fails_cleanly_at_alloc_1\n"),
            "{text}"
        );

        let junit = crate::judge::junit::render(
            "t",
            &verdict.ktap,
            &verdict.extra_failures,
            verdict.not_run.as_ref(),
            1.0,
        );
        assert!(
            junit.contains(
                "message=\"this load failed to free an object (kmemleak&apos;s final scan):\""
            ),
            "{junit}"
        );
    }

    /// A leak no load made (another pid: the module's ordinary load, a
    /// kworker) stays the kmemleak case's failure, quoted whole and naming
    /// the task; the steps stay ok, and kmemleak's log line still counts.
    #[test]
    fn a_leak_no_step_made_stays_a_kmemleak_failure_naming_its_task() {
        let (ktap_text, console) = captured();
        let ktap_text = ktap_text.replace("comm \"exe\", pid 44,", "comm \"kworker/1:1\", pid 17,");
        let verdict = report::evaluate(&ktap_text, &console, &Ending::Saved, Duration::ZERO);
        assert_eq!(sweep(&verdict.ktap).outcome, Outcome::Pass);
        let kmemleak = kmemleak_case(&verdict.ktap);
        assert_eq!(kmemleak.outcome, Outcome::Fail);
        assert!(kmemleak.diagnostics.iter().any(|d| d.contains("hex dump")));
        assert_eq!(
            kmemleak.diagnostics.last().unwrap(),
            "1 object(s) allocated by comm \"kworker/1:1\", pid 17, which made no load of \
             a fault-injection sweep"
        );
        let ids: Vec<_> = (verdict.extra_failures.iter())
            .map(|f| f.kind.id().into_owned())
            .collect();
        assert_eq!(ids, ["kernel_log.memory_leak_(kmemleak)"]);
    }

    /// One object at its step, another no step made: each where it belongs.
    #[test]
    fn attributed_and_unattributed_leaks_are_split() {
        let (ktap_text, _) = captured();
        let (before, after) = ktap_text.split_at(ktap_text.find("# unreferenced object").unwrap());
        let (object, rest) = after.split_at(
            after
                .find("# allocated")
                .unwrap_or_else(|| after.find("not ok 5").unwrap()),
        );
        let other = object
            .replace("0xffff8880065e7400", "0xffff888000123400")
            .replace("pid 44", "pid 31");
        let mut parsed = ktap::parse(&format!("{before}{object}{other}{rest}"));
        let attribution = attribute(&mut parsed).unwrap();
        assert_eq!(
            attribution,
            Attribution {
                at_steps: vec![
                    "leak_on_init_error.fault_injection.init_fails_cleanly_at_alloc_2".into()
                ],
                unattributed: 1,
            }
        );
        assert!(!attribution.all_at_steps());
        let kmemleak = kmemleak_case(&parsed);
        assert_eq!(kmemleak.outcome, Outcome::Fail);
        let quoted = kmemleak.diagnostics.join("\n");
        assert!(quoted.contains("0xffff888000123400"), "{quoted}");
        assert!(
            !quoted.contains("unreferenced object 0xffff8880065e7400"),
            "{quoted}"
        );
        assert!(
            quoted.ends_with(
                "1 more object(s), each reported at the fault-injection step that allocated \
                 it: leak_on_init_error.fault_injection.init_fails_cleanly_at_alloc_2"
            ),
            "{quoted}"
        );
    }

    /// Two steps naming one pid tie nothing: the leak stays unattributed.
    #[test]
    fn a_pid_two_steps_share_ties_nothing() {
        let (ktap_text, _) = captured();
        let first = ktap_text.find("# load pid ").unwrap();
        let line_end = first + ktap_text[first..].find('\n').unwrap();
        let ktap_text = format!(
            "{}# load pid 44{}",
            &ktap_text[..first],
            &ktap_text[line_end..]
        );
        let mut parsed = ktap::parse(&ktap_text);
        let attribution = attribute(&mut parsed).unwrap();
        assert_eq!(attribution.unattributed, 1);
        assert!(attribution.at_steps.is_empty());
        assert_eq!(sweep(&parsed).outcome, Outcome::Pass);
    }

    /// Without a sweep, the kmemleak case stays as the runner wrote it.
    #[test]
    fn without_a_sweep_the_report_stays_as_it_is() {
        let (ktap_text, _) = captured();
        let mut parsed = ktap::parse(&ktap_text.replace("# load pid ", "# pid "));
        let before = parsed.clone();
        assert_eq!(attribute(&mut parsed), None);
        assert_eq!(parsed, before);
    }

    /// No kmemleak case, or one that passed: nothing to do.
    #[test]
    fn a_clean_scan_changes_nothing() {
        let (ktap_text, _) = captured();
        let start = ktap_text.find("# kmemleak reports").unwrap();
        let end = ktap_text.find("not ok 5").unwrap();
        let clean = format!(
            "{}ok 5{}",
            &ktap_text[..start],
            &ktap_text[end + "not ok 5".len()..]
        );
        let mut parsed = ktap::parse(&clean);
        let before = parsed.clone();
        assert_eq!(attribute(&mut parsed), None);
        assert_eq!(parsed, before);
    }
}
