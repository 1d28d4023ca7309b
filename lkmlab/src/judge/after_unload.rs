//! Recognising code that ran after its module was unloaded: a report of a
//! fault whose faulting instruction is in no loaded code (x86-64 `RIP:
//! 0010:0xffffffffc0201000`, arm64 `pc : 0xffff800079e41000`, with no
//! symbol: the module that held it is gone), or made by a worker whose work
//! function is in none (`Workqueue: events 0xffffffffa00003cf`: on the debug
//! kernel lockdep trips over the work item's lock class, which lived in the
//! module, before the worker returns into the freed code), in the memory of a module the
//! runner had loaded there ([`lkmlab_protocol::kernel_log::module_loaded`]) or, failing
//! that, of the one the kernel names as `[last unloaded: NAME]`. The call
//! trace says which kind of callback ran it.

use lkmlab_protocol::kernel_log::LoadedAt;

/// Whose freed code ran, and from what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unloaded {
    pub module: String,
    /// What called it, from the call trace.
    pub callback: Option<Callback>,
}

/// What can call a module's code after the module is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    Timer,
    Hrtimer,
    WorkItem,
    Rcu,
    Srcu,
    Tasklet,
    IrqWork,
    KernelThread,
}

impl std::fmt::Display for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Callback::Timer => "a timer",
            Callback::Hrtimer => "an hrtimer",
            Callback::WorkItem => "a work item",
            Callback::Rcu => "an RCU callback",
            Callback::Srcu => "an SRCU callback",
            Callback::Tasklet => "a tasklet",
            Callback::IrqWork => "an irq_work",
            Callback::KernelThread => "a kernel thread",
        })
    }
}

impl Unloaded {
    /// What ran the code: the callback, or just `code`.
    pub fn what(&self) -> String {
        self.callback
            .map_or_else(|| "code".to_string(), |c| c.to_string())
    }

    /// `a timer of timer_after_unload ran after the module was unloaded`.
    pub fn sentence(&self) -> String {
        format!(
            "{} of {} ran after the module was unloaded: the kernel called into its freed \
             code. Its exit path (Drop) must cancel every callback it scheduled and wait for \
             it (timer_delete_sync, cancel_work_sync, hrtimer_cancel, rcu_barrier, \
             kthread_stop)",
            self.what(),
            self.module
        )
    }
}

/// The functions of a call trace that run a callback, and what they run
/// (7.3's kernel/time/timer.c, hrtimer.c, workqueue.c, rcu/tree.c,
/// softirq.c, irq_work.c, kthread.c), innermost first.
const CALLERS: &[(&str, Callback)] = &[
    ("call_timer_fn", Callback::Timer),
    ("__run_hrtimer", Callback::Hrtimer),
    ("process_one_work", Callback::WorkItem),
    // process_one_work inlined into it (7.3, gcc).
    ("process_scheduled_works", Callback::WorkItem),
    ("rcu_do_batch", Callback::Rcu),
    ("srcu_invoke_callbacks", Callback::Srcu),
    ("tasklet_action_common", Callback::Tasklet),
    ("irq_work_single", Callback::IrqWork),
    ("kthread", Callback::KernelThread),
];

/// x86-64's module area (`MODULES_VADDR` to `MODULES_END`, with or
/// without KASLR): an address outside it is no module's.
const X86_64_MODULES: std::ops::Range<u64> = 0xffff_ffff_a000_0000..0xffff_ffff_ff00_0000;

/// Whether a report (`report`, its lines without timestamps, from its first
/// line to its end) is of code that ran in an unloaded module's memory;
/// `loads` are the runner's load records logged before it, oldest first.
///
/// The address is the report's own instruction pointer (its first `RIP:`
/// or `pc :` line, in kernel mode, with no symbol), or else that of the
/// work function of the worker that reports (`Workqueue: events 0x…`). It
/// must lie where the runner had loaded a module, or else in the module
/// area (x86-64), or be the address of a kernel execution fault (arm64),
/// and the module is then the one the kernel names `[last unloaded: NAME]`.
/// A call through a null or heap pointer, or user space's registers, are
/// not claimed.
pub fn classify(report: &[String], loads: &[(String, LoadedAt)]) -> Option<Unloaded> {
    // A worker's work function with no symbol: a work item, whatever
    // other stacks the report prints (lockdep's shows where the lock was
    // used before, a timer's among them).
    let (address, known_callback) = match report.iter().find_map(|l| instruction_pointer(l)) {
        Some(InstructionPointer::Bare(address)) => (address, None),
        _ => (
            report.iter().find_map(|l| bare_work_function(l))?,
            Some(Callback::WorkItem),
        ),
    };
    let recorded = loads.iter().rev().find(|(_, at)| at.contains(address));
    let module = match recorded {
        Some((module, _)) => module.clone(),
        // The kernel's word: a load the runner did not make (a guest
        // test's own insmod) is not recorded, and may have put the module
        // elsewhere than the runner's load of it did.
        None if in_module_memory(address, report) => {
            report.iter().find_map(|l| last_unloaded(l))?
        }
        None => return None,
    };
    Some(Unloaded {
        module,
        callback: known_callback.or_else(|| callback(report)),
    })
}

/// Whether `address` can be a module's: in x86-64's module area, or the
/// address arm64 could not fetch its instruction from (its `Unable to
/// handle kernel paging request at virtual address X` with X the `pc`).
fn in_module_memory(address: u64, report: &[String]) -> bool {
    X86_64_MODULES.contains(&address)
        || report.iter().any(|l| {
            l.starts_with("Unable to handle kernel ")
                && l.trim_end()
                    .ends_with(&format!("at virtual address {address:016x}"))
        })
}

/// A report's instruction pointer.
enum InstructionPointer {
    /// In kernel mode, with no symbol: `RIP: 0010:0xffffffffc0201000`
    /// (x86-64), `pc : 0xffff800079e41000` (arm64).
    Bare(u64),
    /// With a symbol, or user space's (`RIP: 0033:…`).
    Other,
}

/// The instruction pointer of a `RIP:` (x86-64) or `pc :` (arm64) line.
fn instruction_pointer(line: &str) -> Option<InstructionPointer> {
    let line = line.trim_start();
    let value = if let Some(rest) = line.strip_prefix("RIP: ") {
        let (segment, value) = rest.split_once(':')?;
        // 0010 is the kernel's code segment; 0033 user space's.
        if segment != "0010" {
            return Some(InstructionPointer::Other);
        }
        value
    } else {
        line.strip_prefix("pc : ")?
    };
    Some(
        match value
            .trim()
            .strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16))
        {
            Some(Ok(address)) => InstructionPointer::Bare(address),
            _ => InstructionPointer::Other,
        },
    )
}

/// The address of `Workqueue: events 0xffffffffa00003cf`: the function of
/// the work item the reporting worker runs, which the kernel could put no
/// symbol to.
fn bare_work_function(line: &str) -> Option<u64> {
    let rest = line.trim_start().strip_prefix("Workqueue: ")?;
    let hex = rest.split_whitespace().nth(1)?.strip_prefix("0x")?;
    u64::from_str_radix(hex, 16).ok()
}

/// `NAME` of `[last unloaded: NAME(O)]` in a `Modules linked in:` line.
fn last_unloaded(line: &str) -> Option<String> {
    let rest = line.split_once("[last unloaded: ")?.1;
    let name = rest.split(['(', ']']).next()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// What ran the code, from the first frame of the trace that runs a
/// callback (`? call_timer_fn+0x2f/0x130` counts: the frame of a function
/// that faulted at once is often marked unreliable).
fn callback(excerpt: &[String]) -> Option<Callback> {
    excerpt.iter().find_map(|line| {
        let frame = line.trim_start().trim_start_matches("? ");
        // `call_timer_fn.constprop.0+0x12/0x64`: gcc's clones keep the name.
        let function = frame.split(['+', '.']).next()?;
        CALLERS
            .iter()
            .find(|(name, _)| *name == function)
            .map(|(_, what)| *what)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    /// x86-64, the default kernel: tests/fixtures/timer-after-unload.
    const TIMER_X86: &str = "\
BUG: unable to handle page fault for address: ffffffffc0201000
#PF: supervisor instruction fetch in kernel mode
#PF: error_code(0x0010) - not-present page
Oops: Oops: 0010 [#1] SMP NOPTI
Modules linked in: [last unloaded: timer_after_unload(O)]
CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Tainted: G           O        7.3.4 #1
RIP: 0010:0xffffffffc0201000
Code: Unable to access opcode bytes at 0xffffffffc0200fd6.
Call Trace:
 <IRQ>
 ? call_timer_fn.constprop.0+0x12/0x64
 ? __run_timers+0x1f0/0x2b0
 run_timer_softirq+0x89/0x100
 </IRQ>";

    #[test]
    fn a_timer_in_freed_code_is_named_with_its_module() {
        let loads = [(
            "timer_after_unload".to_string(),
            LoadedAt {
                base: 0xffff_ffff_c020_0000,
                size: 0x3000,
            },
        )];
        let found = classify(&lines(TIMER_X86), &loads).unwrap();
        assert_eq!(
            found,
            Unloaded {
                module: "timer_after_unload".into(),
                callback: Some(Callback::Timer),
            }
        );
        assert!(found
            .sentence()
            .starts_with("a timer of timer_after_unload ran after the module was unloaded"));
    }

    #[test]
    fn the_load_record_names_the_module_before_last_unloaded_does() {
        // Two modules unloaded: the kernel names the last; the address is
        // in the first one's memory.
        let text = TIMER_X86.replace("timer_after_unload(O)", "other(O)");
        let loads = [
            (
                "timer_after_unload".to_string(),
                LoadedAt {
                    base: 0xffff_ffff_c020_0000,
                    size: 0x3000,
                },
            ),
            (
                "other".to_string(),
                LoadedAt {
                    base: 0xffff_ffff_c030_0000,
                    size: 0x3000,
                },
            ),
        ];
        assert_eq!(
            classify(&lines(&text), &loads).unwrap().module,
            "timer_after_unload"
        );
        // Without records, the kernel's word.
        assert_eq!(classify(&lines(&text), &[]).unwrap().module, "other");
    }

    #[test]
    fn arm64_and_a_work_item() {
        let text = "\
Unable to handle kernel paging request at virtual address ffff80007a0f1000
Internal error: Oops: 0000000086000007 [#1]  SMP
Modules linked in: [last unloaded: work_after_unload(O)]
pc : 0xffff80007a0f1000
lr : process_one_work+0x170/0x3c0
Call trace:
 0xffff80007a0f1000 (P)
 process_one_work+0x170/0x3c0
 worker_thread+0x268/0x3a8";
        assert_eq!(
            classify(&lines(text), &[]),
            Some(Unloaded {
                module: "work_after_unload".into(),
                callback: Some(Callback::WorkItem),
            })
        );
    }

    /// The debug kernel: lockdep reports first, in the worker, whose work
    /// function has no symbol any more.
    #[test]
    fn a_lockdep_report_from_a_worker_of_an_unloaded_module() {
        let text = "\
DEBUG_LOCKS_WARN_ON(1)
WARNING: kernel/locking/lockdep.c:238 at __lock_acquire+0x51f/0x2650, CPU#1: kworker/1:0/22
Modules linked in: [last unloaded: work_after_unload(O)]
Workqueue: events 0xffffffffa00003cf
RIP: 0010:__lock_acquire+0x526/0x2650
Call Trace:
 msleep+0x12/0x20
 ? process_scheduled_works+0x87e/0xf80";
        let loads = [(
            "work_after_unload".to_string(),
            LoadedAt {
                base: 0xffff_ffff_a000_0000,
                size: 24576,
            },
        )];
        assert_eq!(
            classify(&lines(text), &loads),
            Some(Unloaded {
                module: "work_after_unload".into(),
                callback: Some(Callback::WorkItem),
            })
        );
        // A worker running a loaded module's function is not one.
        let loaded = text.replace(
            "Workqueue: events 0xffffffffa00003cf",
            "Workqueue: events work_fn [m]",
        );
        assert_eq!(classify(&lines(&loaded), &loads), None);
    }

    #[test]
    fn a_fault_in_a_loaded_function_is_not_one() {
        let text = "\
BUG: kernel NULL pointer dereference, address: 0000000000000000
Oops: Oops: 0000 [#1] SMP NOPTI
Modules linked in: oops_in_read(O) [last unloaded: hello(O)]
RIP: 0010:oops_in_read::read+0x12/0x40 [oops_in_read]";
        assert_eq!(classify(&lines(text), &[]), None);
        // A bare address but no module to put it to: not claimed.
        let text = "Oops: Oops: 0010 [#1] SMP NOPTI\nRIP: 0010:0xffffffffc0201000";
        assert_eq!(classify(&lines(text), &[]), None);
        // A call through a null or a heap pointer in a loaded module, after
        // an unrelated module was unloaded: not one.
        for rip in ["0x0", "0xffff888002198868"] {
            let text = format!(
                "BUG: kernel NULL pointer dereference, address: 0000000000000000\n\
                 Modules linked in: m(O) [last unloaded: hello(O)]\n\
                 RIP: 0010:{rip}\n\
                 Call Trace:\n m::read+0x12/0x40 [m]"
            );
            assert_eq!(classify(&lines(&text), &[]), None, "{rip}");
        }
        // The kernel's named RIP, then user space's registers (a report made
        // during a system call): not one.
        let text = "\
BUG: unable to handle page fault for address: 0000000000400000
Modules linked in: user_pointer(O) [last unloaded: user_pointer(O)]
RIP: 0010:<user_pointer::Device as kernel::miscdevice::MiscDevice>::write_iter+0x1d/0x54 [user_pointer]
RIP: 0033:0x4a5d3c";
        assert_eq!(classify(&lines(text), &[]), None);
    }
}
