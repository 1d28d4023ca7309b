//! The per-case watchdog: when a case is still running as the host's
//! deadline nears — the host says so on the control port
//! ([`lkmlab_protocol::CONTROL_PORT`], at [`lkmlab_protocol::watchdog_at`]
//! by its own clock: the guest's falls behind under load) — the runner writes into
//! the kernel log what the case's tasks are doing — their names, states,
//! the function each sleeps in (`/proc/PID/wchan`) and their kernel stacks
//! (`/proc/PID/stack`, with `CONFIG_STACKTRACE`), then the kernel's own dumps of every blocked task
//! (`sysrq w`) and of every CPU (`sysrq l`) — between two marker lines, and
//! marks the case hung on the KTAP channel. The host quotes that dump in
//! its verdict (`vm.case_hung`) if the VM then times out.
//!
//! The watchdog only reports: it kills nothing (a task in an
//! uninterruptible sleep cannot be killed anyway), the case may still
//! finish (a slow guest), and the host's timeout still decides.

use crate::sys;
use lkmlab_protocol::{watchdog_log_start, WATCHDOG_LOG_END};

/// The start of the dump's own lines.
const PREFIX: &str = "lkmlab: watchdog: ";
use std::fs;

/// Writes the dump of the case `name` (its process `pid`, which has run
/// `ran_secs`) into the kernel log.
pub fn dump(name: &str, ran_secs: u64, pid: libc::pid_t) {
    sys::log_to_kernel(&watchdog_log_start(name, ran_secs));
    for task in case_tasks(pid) {
        // The function it sleeps in (with KALLSYMS); its whole stack comes
        // next with STACKTRACE, and from `sysrq w` when it is blocked.
        let wchan = fs::read_to_string(format!("/proc/{}/wchan", task.pid))
            .ok()
            .filter(|w| !w.is_empty() && w != "0")
            .map(|w| format!(", in {w}"))
            .unwrap_or_default();
        sys::log_to_kernel(&format!(
            "{PREFIX}task {} (pid {}, state {}{wchan}) of {name}:",
            task.comm, task.pid, task.state
        ));
        let stack = fs::read_to_string(format!("/proc/{}/stack", task.pid)).unwrap_or_default();
        for frame in stack.lines() {
            // `[<0>] msleep+0x2f/0x40 [hangs]`: the address is hidden anyway.
            let frame = frame.split_once("] ").map_or(frame, |(_, f)| f);
            sys::log_to_kernel(&format!(" {frame}"));
        }
    }
    for (key, what) in [('w', "blocked tasks"), ('l', "CPUs")] {
        if let Err(e) = fs::write("/proc/sysrq-trigger", [key as u8]) {
            sys::log_to_kernel(&format!(
                "{PREFIX}no dump of the {what}: /proc/sysrq-trigger: {e} \
                 (the kernel needs CONFIG_MAGIC_SYSRQ)"
            ));
        }
    }
    sys::log_to_kernel(WATCHDOG_LOG_END);
}

/// A task of the case, from `/proc/PID/stat`.
#[derive(Debug, PartialEq, Eq)]
struct Task {
    pid: i32,
    ppid: i32,
    comm: String,
    state: char,
}

/// `pid` and every task descended from it, by PID.
fn case_tasks(pid: libc::pid_t) -> Vec<Task> {
    let mut all: Vec<Task> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| parse_stat(&fs::read_to_string(format!("/proc/{p}/stat")).ok()?))
        .collect();
    all.sort_by_key(|t| t.pid);
    descendants(all, pid)
}

/// The tasks of `all` that are `root` or descend from it.
fn descendants(all: Vec<Task>, root: i32) -> Vec<Task> {
    let mut ours = vec![root];
    // Parents may have higher PIDs than their children (PIDs wrap): repeat
    // until nothing new joins.
    loop {
        let before = ours.len();
        for t in &all {
            if !ours.contains(&t.pid) && ours.contains(&t.ppid) {
                ours.push(t.pid);
            }
        }
        if ours.len() == before {
            break;
        }
    }
    all.into_iter().filter(|t| ours.contains(&t.pid)).collect()
}

/// `PID (COMM) STATE PPID …`; COMM may hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<Task> {
    let (pid, rest) = stat.split_once(" (")?;
    let (comm, rest) = rest.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Task {
        pid: pid.trim().parse().ok()?,
        ppid,
        comm: comm.to_string(),
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_whatever_the_command_name() {
        let t = parse_stat("45 (my (odd) cmd) D 44 45 1 0 -1").unwrap();
        assert_eq!(
            t,
            Task {
                pid: 45,
                ppid: 44,
                comm: "my (odd) cmd".into(),
                state: 'D'
            }
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_case_is_its_process_and_its_descendants() {
        let task = |pid, ppid| Task {
            pid,
            ppid,
            comm: "t".into(),
            state: 'S',
        };
        let all = vec![
            task(1, 0),
            task(5, 9),
            task(7, 1),
            task(8, 7),
            task(9, 8),
            task(10, 1),
        ];
        let pids: Vec<i32> = descendants(all, 7).iter().map(|t| t.pid).collect();
        assert_eq!(pids, [5, 7, 8, 9]);
    }
}
