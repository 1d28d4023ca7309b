//! `fail-nth N SYSCALL CMD [ARG...]`: runs CMD and fails the N-th
//! allocation made by module code (see [`fault::enable`]) during the first
//! SYSCALL it makes, for guest tests of error paths (docs/guest-tests.md). The guest has it as
//! `/bin/fail-nth`, a link to the runner.
//!
//! CMD runs under ptrace: at the entry of its first SYSCALL, its task's
//! `/proc/PID/fail-nth` is armed with N; at the exit the tracer reads
//! whether the fault was injected, disarms it and lets CMD run on untraced.
//!
//! Exit status: CMD's own when the fault was injected; 125 when nothing
//! was injected (CMD made no SYSCALL, or that call had fewer than N fault
//! points: the end of a loop over N = 1, 2, 3 …); 126 on bad usage or a
//! setup failure. The outcome is also written to standard error.

use crate::fault::{self, FailNth};
use std::ffi::CString;
use std::process::ExitCode;

const NOTHING_INJECTED: u8 = 125;
const SETUP_FAILED: u8 = 126;

const USAGE: &str = "usage: fail-nth N SYSCALL CMD [ARG...]\n\
    Runs CMD and fails the N-th allocation made by module code during its first \
    SYSCALL (a name such as openat, write, ioctl, init_module, or a number).\n\
    Exit status: CMD's when the failure was injected; 125 when nothing was \
    injected (no such call, or fewer than N allocations in it); 126 on errors.";

/// Syscall names a guest test is likely to want, with this architecture's
/// numbers (from `libc`).
const SYSCALLS: &[(&str, libc::c_long)] = &[
    ("read", libc::SYS_read),
    ("write", libc::SYS_write),
    ("openat", libc::SYS_openat),
    ("close", libc::SYS_close),
    ("ioctl", libc::SYS_ioctl),
    ("pread64", libc::SYS_pread64),
    ("pwrite64", libc::SYS_pwrite64),
    ("readv", libc::SYS_readv),
    ("writev", libc::SYS_writev),
    ("lseek", libc::SYS_lseek),
    ("mmap", libc::SYS_mmap),
    ("fsync", libc::SYS_fsync),
    ("mkdirat", libc::SYS_mkdirat),
    ("unlinkat", libc::SYS_unlinkat),
    ("socket", libc::SYS_socket),
    ("sendmsg", libc::SYS_sendmsg),
    ("recvmsg", libc::SYS_recvmsg),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    // The legacy path calls that newer architectures (arm64) do not have:
    // there, C libraries call the *at forms.
    #[cfg(target_arch = "x86_64")]
    ("open", libc::SYS_open),
    #[cfg(target_arch = "x86_64")]
    ("mkdir", libc::SYS_mkdir),
    #[cfg(target_arch = "x86_64")]
    ("unlink", libc::SYS_unlink),
];

/// A syscall's number from its name (or its number).
pub fn syscall_number(name: &str) -> Option<libc::c_long> {
    SYSCALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
        .or_else(|| name.parse().ok())
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("fail-nth: {msg}");
    ExitCode::from(SETUP_FAILED)
}

/// What the command line asks for: N, the syscall's name and number, CMD.
#[derive(Debug, PartialEq)]
struct Request<'a> {
    n: u32,
    syscall: &'a str,
    nr: libc::c_long,
    cmd: &'a [String],
}

/// The command line read, or what is wrong with it (with the usage).
fn parse(args: &[String]) -> Result<Request<'_>, String> {
    let [n, syscall, cmd @ ..] = args else {
        return Err(USAGE.to_string());
    };
    let Some(n) = n.parse::<u32>().ok().filter(|n| *n > 0) else {
        return Err(format!("N must be a positive number, got {n:?}\n{USAGE}"));
    };
    let Some(nr) = syscall_number(syscall) else {
        let names: Vec<&str> = SYSCALLS.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "unknown syscall {syscall:?}: give a number or one of {}",
            names.join(", ")
        ));
    };
    if cmd.is_empty() {
        return Err(format!("no command given\n{USAGE}"));
    }
    Ok(Request {
        n,
        syscall,
        nr,
        cmd,
    })
}

pub fn main(args: &[String]) -> ExitCode {
    let request = match parse(args) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if let Err(e) = fault::enable() {
        return fail(&e);
    }
    match trace(request.n, request.syscall, request.nr, request.cmd) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

/// Waits for `pid` to stop or end; the raw wait status.
fn wait(pid: libc::pid_t) -> Result<libc::c_int, String> {
    let mut status = 0;
    // SAFETY: `status` is a valid pointer for the call.
    if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } < 0 {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    Ok(status)
}

/// CMD's exit status as fail-nth's (a signal as 128 + its number).
fn exit_code(status: libc::c_int) -> u8 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else {
        128u8.wrapping_add(libc::WTERMSIG(status) as u8)
    }
}

fn ptrace(request: libc::c_uint, pid: libc::pid_t, data: usize) -> Result<libc::c_long, String> {
    // SAFETY: the requests used here take no address, and `data` is a
    // signal number or option bits.
    let ret = unsafe { libc::ptrace(request, pid, 0usize, data) };
    if ret < 0 {
        return Err(format!("ptrace: {}", std::io::Error::last_os_error()));
    }
    Ok(ret)
}

/// The syscall number a tracee stopped at a syscall stop is making.
fn current_syscall(pid: libc::pid_t) -> Result<libc::c_long, String> {
    // SAFETY: user_regs_struct is plain data; PTRACE_GETREGSET fills it.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: (&mut regs as *mut libc::user_regs_struct).cast(),
        iov_len: std::mem::size_of::<libc::user_regs_struct>(),
    };
    // SAFETY: `iov` describes `regs`, valid for writing a whole
    // user_regs_struct, which is what NT_PRSTATUS holds on every
    // architecture (PTRACE_GETREGSET exists on all; PTRACE_GETREGS only on
    // some).
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            pid,
            libc::NT_PRSTATUS as usize,
            &mut iov as *mut libc::iovec,
        )
    };
    if ret < 0 {
        return Err(format!(
            "ptrace(GETREGSET): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(syscall_number_in(&regs))
}

/// The number of the syscall a tracee stopped at its entry is making: the
/// kernel keeps it in `orig_rax` on x86-64, and it is in `x8` on arm64.
#[cfg(target_arch = "x86_64")]
fn syscall_number_in(regs: &libc::user_regs_struct) -> libc::c_long {
    regs.orig_rax as libc::c_long
}

#[cfg(target_arch = "aarch64")]
fn syscall_number_in(regs: &libc::user_regs_struct) -> libc::c_long {
    regs.regs[8] as libc::c_long
}

fn trace(n: u32, name: &str, nr: libc::c_long, cmd: &[String]) -> Result<ExitCode, String> {
    let argv: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("NUL byte in {a:?}")))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    // SAFETY: fork in a single-threaded program; the child only calls
    // async-signal-safe functions (ptrace, raise, execvp, _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above; argv_ptrs is a NULL-terminated array of valid strings.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0usize, 0usize);
            libc::raise(libc::SIGSTOP);
            libc::execvp(argv_ptrs[0], argv_ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    let status = wait(pid)?;
    if !libc::WIFSTOPPED(status) {
        return Err(format!("{} did not start under ptrace", cmd[0]));
    }
    ptrace(
        libc::PTRACE_SETOPTIONS,
        pid,
        (libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL) as usize,
    )?;
    let mut fail_nth = FailNth::of_task(pid).map_err(|e| e.to_string())?;
    let syscall_stop = libc::SIGTRAP | 0x80;
    let mut signal = 0usize;
    // Stops alternate between a syscall's entry and its exit.
    let mut entering = true;
    loop {
        ptrace(libc::PTRACE_SYSCALL, pid, signal)?;
        let status = wait(pid)?;
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            eprintln!("fail-nth: {} made no {name} call: nothing injected", cmd[0]);
            let _ = exit_code(status);
            return Ok(ExitCode::from(NOTHING_INJECTED));
        }
        let sig = libc::WSTOPSIG(status);
        if sig != syscall_stop {
            // A signal for the tracee (the exec's SIGTRAP is not one).
            signal = if sig == libc::SIGTRAP {
                0
            } else {
                sig as usize
            };
            continue;
        }
        signal = 0;
        let at_entry = entering;
        entering = !entering;
        if !at_entry || current_syscall(pid)? != nr {
            continue;
        }
        fail_nth
            .arm(n)
            .map_err(|e| format!("arming {}'s fail-nth: {e}", cmd[0]))?;
        ptrace(libc::PTRACE_SYSCALL, pid, 0)?;
        let status = wait(pid)?;
        let remaining = fail_nth.remaining();
        let _ = fail_nth.arm(0);
        let injected = remaining.map_err(|e| format!("reading {}'s fail-nth: {e}", cmd[0]))? == 0;
        if libc::WIFSTOPPED(status) {
            ptrace(libc::PTRACE_DETACH, pid, 0)?;
        }
        let end = if libc::WIFSTOPPED(status) {
            wait(pid)?
        } else {
            status
        };
        let code = exit_code(end);
        return Ok(if injected {
            eprintln!(
                "fail-nth: failed allocation {n} of {}'s first {name}; it exited with {code}",
                cmd[0]
            );
            ExitCode::from(code)
        } else {
            eprintln!(
                "fail-nth: {}'s first {name} made fewer than {n} allocations: nothing injected \
                 (it exited with {code})",
                cmd[0]
            );
            ExitCode::from(NOTHING_INJECTED)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_command_line_names_n_the_syscall_and_the_command() {
        let a = args(&["3", "write", "sh", "-c", "echo x > /dev/scull"]);
        let r = parse(&a).unwrap();
        assert_eq!((r.n, r.syscall, r.nr), (3, "write", libc::SYS_write));
        assert_eq!(r.cmd, &a[2..]);
        // A number is taken as the syscall's number.
        let nr = libc::SYS_finit_module.to_string();
        let a = args(&["1", &nr, "insmod", "m.ko"]);
        assert_eq!(parse(&a).unwrap().nr, libc::SYS_finit_module);
    }

    #[test]
    fn a_bad_command_line_is_refused_with_the_reason() {
        let err = |words: &[&str]| parse(&args(words)).unwrap_err();
        assert!(err(&[]).starts_with("usage: fail-nth"));
        assert!(err(&["1"]).starts_with("usage: fail-nth"));
        assert!(err(&["0", "write", "true"]).starts_with("N must be a positive number, got \"0\""));
        assert!(err(&["x", "write", "true"]).contains("got \"x\""));
        let unknown = err(&["1", "wrtie", "true"]);
        assert!(unknown.starts_with("unknown syscall \"wrtie\""));
        assert!(unknown.contains("openat") && unknown.contains("init_module"));
        assert!(err(&["1", "write"]).starts_with("no command given"));
    }

    #[test]
    fn every_named_syscall_has_its_own_number() {
        let mut numbers: Vec<_> = SYSCALLS.iter().map(|(_, nr)| *nr).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), SYSCALLS.len());
        assert_eq!(syscall_number("init_module"), Some(libc::SYS_init_module));
        assert_eq!(syscall_number("nosuchcall"), None);
    }

    #[test]
    fn the_command_s_status_is_passed_on() {
        // Wait statuses as the kernel encodes them: exit code << 8, or the
        // signal number.
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(libc::SIGKILL), 128 + 9);
    }
}
