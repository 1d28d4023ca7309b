//! Which modules can make the kernel call their own code later — from a
//! timer, a work item, an RCU callback, a tasklet, an irq_work or a kernel
//! thread — read from the kernel functions each `.ko` imports.
//!
//! A callback a module forgot to cancel in its exit path still runs after
//! `rmmod`, in the module's freed code. The runner gives such callbacks a
//! bounded time to run after the last unload (and before the VM shuts
//! down), but only for the modules named here, so that a module that
//! schedules nothing pays nothing ([`lkmlab_protocol::plan::Deferrer`]).

use anyhow::Result;
use lkmlab_protocol::plan::Deferrer;
use object::{Object, ObjectSymbol};

/// The exported kernel functions that make the kernel call a function of
/// the caller's later (7.3's `kernel/time/timer.c`, `hrtimer.c`,
/// `kernel/workqueue.c`, `kthread.c`, `rcu/`, `softirq.c`, `irq_work.c`).
/// Inline wrappers (`schedule_work`, `queue_delayed_work`, `kthread_run`,
/// `tasklet_schedule`, `call_rcu` on some configurations) end in one of
/// these; the `kernel` crate's Rust abstractions do too (through a
/// `rust_helper_` wrapper where the C function is inline).
const SCHEDULERS: &[&str] = &[
    // timers
    "mod_timer",
    "mod_timer_pending",
    "add_timer",
    "add_timer_on",
    "add_timer_local",
    "add_timer_global",
    "timer_reduce",
    "hrtimer_start_range_ns",
    // work items
    "queue_work_on",
    "queue_work_node",
    "queue_delayed_work_on",
    "mod_delayed_work_on",
    "queue_rcu_work",
    "kthread_queue_work",
    "kthread_queue_delayed_work",
    "kthread_mod_delayed_work",
    // RCU callbacks
    "call_rcu",
    "call_rcu_hurry",
    "call_srcu",
    "call_rcu_tasks",
    "call_rcu_tasks_trace",
    // tasklets, irq_work, kernel threads
    "__tasklet_schedule",
    "__tasklet_hi_schedule",
    "irq_work_queue",
    "irq_work_queue_on",
    "kthread_create_on_node",
    "kthread_create_on_cpu",
];

/// The prefix of the `kernel` crate's C helpers (`rust/helpers/*.c`), which
/// wrap inline C functions for Rust.
const RUST_HELPER: &str = "rust_helper_";

/// The module `module` (its `.ko` file's bytes, `ko`) as a [`Deferrer`]
/// when it imports a function of [`SCHEDULERS`] (named without
/// `rust_helper_`, in the order of that list).
pub fn deferrer(module: &str, ko: &[u8]) -> Result<Option<Deferrer>> {
    let imports = imported_schedulers(ko)?;
    Ok((!imports.is_empty()).then(|| Deferrer {
        module: module.to_string(),
        imports,
    }))
}

/// The functions of [`SCHEDULERS`] an ELF object imports (its undefined
/// symbols).
fn imported_schedulers(elf: &[u8]) -> Result<Vec<String>> {
    let file = object::File::parse(elf)?;
    let undefined: Vec<String> = file
        .symbols()
        .filter(|s| s.is_undefined())
        .filter_map(|s| s.name().ok())
        .map(|name| name.strip_prefix(RUST_HELPER).unwrap_or(name).to_string())
        .collect();
    Ok(SCHEDULERS
        .iter()
        .filter(|f| undefined.iter().any(|u| u == *f))
        .map(|f| f.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::write;

    /// A relocatable ELF object importing `names` (as a `.ko` imports
    /// kernel functions).
    fn object_importing(names: &[&str]) -> Vec<u8> {
        let mut obj = write::Object::new(
            object::BinaryFormat::Elf,
            object::Architecture::X86_64,
            object::Endianness::Little,
        );
        for name in names {
            obj.add_symbol(write::Symbol {
                name: name.as_bytes().to_vec(),
                value: 0,
                size: 0,
                kind: object::SymbolKind::Text,
                scope: object::SymbolScope::Dynamic,
                weak: false,
                section: write::SymbolSection::Undefined,
                flags: object::SymbolFlags::None,
            });
        }
        obj.write().expect("an ELF object")
    }

    #[test]
    fn a_module_that_arms_a_timer_or_queues_work_defers() {
        let elf = object_importing(&[
            "_printk",
            "rust_helper_queue_work_on",
            "mod_timer",
            "timer_init_key",
        ]);
        assert_eq!(
            imported_schedulers(&elf).unwrap(),
            ["mod_timer", "queue_work_on"]
        );
    }

    #[test]
    fn a_module_that_schedules_nothing_does_not() {
        let elf = object_importing(&["_printk", "__kmalloc_cache_noprof", "timer_delete_sync"]);
        assert!(imported_schedulers(&elf).unwrap().is_empty());
    }

    #[test]
    fn a_module_is_named_by_its_caller_and_garbage_is_an_error() {
        let elf = object_importing(&["call_rcu"]);
        let d = deferrer("m", &elf).unwrap().unwrap();
        assert_eq!(
            (d.module.as_str(), d.imports),
            ("m", vec!["call_rcu".to_string()])
        );
        assert!(deferrer("m", b"not an object").is_err());
    }
}
