//! Child processes that must not outlive their purpose: QEMU under a test
//! deadline, vng (and the virtme-run and QEMU it starts) under `--exec
//! --timeout`, the KVM probe.
//!
//! Each starts in a process group of its own, so that at its deadline it is
//! killed together with everything it started. A group of its own no longer
//! gets the terminal's Ctrl-C, so lkmlab kills the groups it runs when it is
//! interrupted or terminated itself (then exits 130).
//!
//! A SIGKILL runs no handler: for that, each such child asks the kernel to
//! kill it when lkmlab dies (`PR_SET_PDEATHSIG`; see [`spawn`]). That
//! reaches the child itself, not what it started: QEMU under `lkmlab test`
//! is the child, but under `lkmlab vm` QEMU is vng's grandchild.

use crate::lock::Lock;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::prctl;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getppid, Pid};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// How often a wait looks at the child (and runs its `tick`).
const POLL: Duration = Duration::from_millis(10);

/// Process groups lkmlab started and has not reaped yet.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// A child process leading a process group of its own; the group is killed
/// when this is dropped before the child exited.
///
/// It stays on the thread that spawned the child (it is not `Send`): the
/// kernel kills the child when that *thread* exits (`PR_SET_PDEATHSIG`), so
/// a `Group` handed to another thread could lose its child early, when the
/// spawning thread ended. On one thread the `Group` is dropped, and its
/// child killed anyway, before the thread can end.
#[derive(Debug)]
pub struct Group {
    child: Child,
    reaped: bool,
    on_spawning_thread: PhantomData<*const ()>,
}

/// How a wait ended.
#[derive(Debug)]
pub enum Waited {
    Exited(ExitStatus),
    /// The deadline passed: the whole group was killed.
    TimedOut,
}

/// On Ctrl-C, SIGTERM or SIGHUP: kill every group lkmlab started, then
/// exit with status 130. Called once, when lkmlab starts.
pub fn on_interrupt_kill_children() {
    HANDLER.call_once(|| {
        // If another handler is already set, lkmlab's groups die with the
        // terminal session instead; nothing else to do.
        let _ = ctrlc::set_handler(|| {
            kill_all();
            std::process::exit(130);
        });
    });
}

/// What `-v` shows: each command lkmlab runs, as it is run (the program, its
/// arguments and the environment lkmlab set for it).
fn announce(cmd: &Command) {
    crate::detail!("running {cmd:?}");
}

/// Run a command to its end with its output captured, whatever its exit
/// status; `what` names it in errors. Every other way of running a
/// program to its end goes through here.
pub fn captured(cmd: &mut Command, what: &str) -> Result<Output> {
    announce(cmd);
    cmd.output().map_err(|e| spawn_error(what, e))
}

/// Run a command with the terminal (lkmlab's standard streams) as its own.
pub fn status_of(cmd: &mut Command, what: &str) -> Result<ExitStatus> {
    announce(cmd);
    cmd.status().map_err(|e| spawn_error(what, e))
}

/// Run a command, capturing its output; on failure the error carries the tail
/// of what it printed.
pub fn run_quiet(cmd: &mut Command, what: &str) -> Result<String> {
    let out = captured(cmd, what)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
        let tail = tail[tail.len().saturating_sub(25)..].join("\n");
        bail!(saying(
            &format!("{what} failed ({})", out.status),
            &tail,
            "\n"
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `HEAD:` then what a program printed (after `separator`), or `HEAD and
/// printed nothing`: a failure's message never ends in a colon with
/// nothing after it.
pub fn saying(head: &str, printed: &str, separator: &str) -> String {
    let printed = printed.trim_end();
    if printed.trim().is_empty() {
        format!("{head} and printed nothing")
    } else {
        format!("{head}:{separator}{printed}")
    }
}

/// Turn "program not found" into an error that names the fix.
pub fn spawn_error(program: &str, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "{program} is not installed or not on PATH; `lkmlab doctor` says how to install it"
        )
    } else {
        anyhow::anyhow!("running {program}: {e}")
    }
}

/// Run a command and return its stdout+stderr, whatever its exit status.
pub fn output_of(cmd: &mut Command, what: &str) -> Result<String> {
    let out = captured(cmd, what)?;
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(s)
}

/// Start `cmd` in a new process group; `program` names it in errors.
///
/// The child dies with lkmlab, SIGKILL included: it asks the kernel for a
/// SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), then checks that its
/// parent is still lkmlab (if lkmlab died before that request, nobody would
/// send the signal, and the child ends there). The signal comes when the
/// thread that spawned the child ends, which is why a [`Group`] cannot
/// leave that thread. What the child starts in turn is not covered: a
/// grandchild outlives a SIGKILL of lkmlab.
pub fn spawn(cmd: &mut Command, program: &str) -> Result<Group> {
    start(cmd, program, None)
}

/// [`spawn`], and the child holds `lock` too: it inherits the lock's open
/// file, so the lock is released only when lkmlab and the child have both
/// closed it (a flock belongs to the open file, whoever has it). Should
/// the child ever outlive lkmlab, what the lock guards (a results folder
/// QEMU writes into) is not handed to the next run while the child lives.
pub fn spawn_holding(cmd: &mut Command, program: &str, lock: &Lock) -> Result<Group> {
    start(cmd, program, Some(lock.as_fd().as_raw_fd()))
}

fn start(cmd: &mut Command, program: &str, inherit: Option<RawFd>) -> Result<Group> {
    on_interrupt_kill_children();
    announce(cmd);
    let parent = Pid::this();
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe work is sound: `in_child` makes three system
    // calls (prctl, getppid, fcntl) through nix's thin wrappers, takes no
    // lock and allocates nothing (its errors are plain errno values).
    // `inherit` is the descriptor of a `Lock` that the caller lends for the
    // whole of this call, so it is open in the child's copy of the table.
    unsafe {
        cmd.pre_exec(move || in_child(parent, inherit));
    }
    let child = cmd
        .process_group(0)
        .spawn()
        .map_err(|e| spawn_error(program, e))?;
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child.id() as i32);
    Ok(Group {
        child,
        reaped: false,
        on_spawning_thread: PhantomData,
    })
}

/// In the child, before it runs its program: die with `parent` (lkmlab),
/// and keep `inherit` open across exec (std opens every file close-on-exec).
fn in_child(parent: Pid, inherit: Option<RawFd>) -> std::io::Result<()> {
    prctl::set_pdeathsig(Signal::SIGKILL)?;
    if getppid() != parent {
        // lkmlab died before the request above: no signal will come.
        return Err(Errno::ESRCH.into());
    }
    if let Some(fd) = inherit {
        // SAFETY: `fd` is open in this process for as long as it runs this
        // function (see `start`), and the borrow ends with the call below.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
    }
    Ok(())
}

fn kill_all() {
    for &pgid in GROUPS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

impl Group {
    /// The child (to take its pipes).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Wait until the child exits or `timeout` (none: no limit) passes;
    /// `tick` runs at every look. At the deadline the whole group is
    /// killed.
    pub fn wait(&mut self, timeout: Option<Duration>, mut tick: impl FnMut()) -> Result<Waited> {
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("waiting for a child process")?
            {
                self.forget();
                return Ok(Waited::Exited(status));
            }
            tick();
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                self.kill();
                return Ok(Waited::TimedOut);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Kill the whole group and reap the child.
    pub fn kill(&mut self) {
        if !self.reaped {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
            self.forget();
        }
    }

    fn forget(&mut self) {
        self.reaped = true;
        let pgid = self.child.id() as i32;
        GROUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&g| g != pgid);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// The pid a shell started in the background, as it printed it.
    fn grandchild_alive(pid: i32) -> bool {
        // Signal 0: is it there (and not a zombie reaped by init)?
        nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }

    #[test]
    fn a_failure_quotes_what_was_printed_or_says_nothing_was() {
        assert_eq!(saying("x failed (1)", "boom\n", " "), "x failed (1): boom");
        assert_eq!(saying("x failed (1)", "a\nb", "\n"), "x failed (1):\na\nb");
        assert_eq!(
            saying("x failed (1)", " \n", "\n"),
            "x failed (1) and printed nothing"
        );
        let err = run_quiet(Command::new("false").arg("x"), "false")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with(" and printed nothing"), "{err}");
    }

    #[test]
    fn at_the_deadline_the_child_and_what_it_started_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut group = spawn(
            Command::new("sh")
                .arg("-c")
                .arg("sleep 30 & echo $! > \"$1\"; wait")
                .arg("sh")
                .arg(&pidfile)
                .stdin(Stdio::null()),
            "sh",
        )
        .unwrap();
        let started = Instant::now();
        let mut grandchild = None;
        let waited = group
            .wait(Some(Duration::from_millis(500)), || {
                if grandchild.is_none() {
                    grandchild = std::fs::read_to_string(&pidfile)
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok());
                }
            })
            .unwrap();
        assert!(matches!(waited, Waited::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(5));
        let grandchild = grandchild.expect("the shell wrote its child's pid");
        // SIGKILL is delivered at once; give the kernel a moment to reap.
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !grandchild_alive(grandchild)
        });
        assert!(gone, "sleep {grandchild} outlived the deadline");
    }

    #[test]
    fn an_exiting_child_reports_its_status_and_ticks_while_it_runs() {
        let mut group = spawn(Command::new("sh").args(["-c", "sleep 0.1; exit 3"]), "sh").unwrap();
        let mut ticks = 0;
        match group
            .wait(Some(Duration::from_secs(10)), || ticks += 1)
            .unwrap()
        {
            Waited::Exited(status) => assert_eq!(status.code(), Some(3)),
            other => panic!("expected an exit, got {other:?}"),
        }
        assert!(ticks > 0);
        assert!(!GROUPS
            .lock()
            .unwrap()
            .contains(&(group.child().id() as i32)));
    }

    /// What makes a SIGKILL of lkmlab take its QEMU along: the kernel kills
    /// a child when the thread that spawned it ends. Here that thread
    /// forgets the child's `Group` (which would have killed it) and ends.
    #[test]
    fn a_child_dies_with_the_thread_that_spawned_it() {
        use nix::sys::wait::{waitpid, WaitStatus};
        let pid = std::thread::spawn(|| {
            let group = spawn(Command::new("sleep").arg("30"), "sleep").unwrap();
            let pid = group.child.id() as i32;
            std::mem::forget(group);
            pid
        })
        .join()
        .unwrap();
        GROUPS.lock().unwrap().retain(|&g| g != pid);
        // Our child still, so ours to reap: killed, not exited.
        let status = waitpid(Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            status,
            WaitStatus::Signaled(Pid::from_raw(pid), Signal::SIGKILL, false)
        );
    }

    /// A child given a lock holds it with lkmlab, and alone once lkmlab let
    /// go (as when lkmlab is killed); a child not given it does not get it.
    #[test]
    fn a_child_given_a_lock_holds_it_until_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lkmlab-lock");
        let lock = crate::lock::exclusive(&path, "testing").unwrap();
        let mut holder = spawn_holding(
            Command::new("sleep").arg("30").stdin(Stdio::null()),
            "sleep",
            &lock,
        )
        .unwrap();
        let mut other = spawn(Command::new("sleep").arg("30"), "sleep").unwrap();
        drop(lock);
        assert!(crate::lock::is_held(&path), "the child let go of the lock");
        holder.kill();
        // Polled: a child another test forks has every file open until it
        // runs its program (std opens them close-on-exec).
        let free = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            !crate::lock::is_held(&path)
        });
        assert!(free, "a child not given the lock holds it");
        other.kill();
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = spawn(
            &mut Command::new("lkmlab-no-such-program"),
            "lkmlab-no-such-program",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("lkmlab-no-such-program is not installed"),
            "{err}"
        );
    }
}
