//! The contract between the host (`lkmlab`) and the guest runner
//! (`lkmlab-guest`, PID 1 of the test VM), in one place:
//!
//! - where the host puts things in the initramfs ([`layout`]),
//! - the test plan the runner reads ([`plan::Plan`]),
//! - the channel the results travel on ([`KTAP_PORT`]) and what the runner
//!   writes there: KTAP ([`ktap::Writer`]) with lkmlab's own diagnostics
//!   ([`PLANNED`], [`RUNNING`], [`HUNG`], [`DONE`]), which the host reads
//!   back ([`ktap::parse`], [`planned_cases`], [`running_case`],
//!   [`hung_case`], [`finished`]),
//! - the per-case watchdog: the port on which the host signals it
//!   ([`CONTROL_PORT`], [`WATCHDOG_SIGNAL`]), when ([`watchdog_at`]), and the
//!   lines that frame its dump in the kernel log ([`watchdog_log_start`],
//!   [`WATCHDOG_LOG_END`]),
//! - the KUnit filter the test kernel boots with ([`KUNIT_FILTER_NONE`]).
//!
//! Both binaries depend on this crate, so a change to any of these is made
//! once, and the round trip (the runner's writer → the host's parser) is
//! tested here.

pub mod ktap;
pub mod plan;

/// The name of the virtio serial port the guest runner writes KTAP to
/// (QEMU's `virtserialport,name=`; the guest finds it in
/// `/sys/class/virtio-ports/*/name`).
pub const KTAP_PORT: &str = "lkmlab.ktap";

/// The suite of checks of the whole kernel after every module's tests (the
/// wait for callbacks after the last unload, the debug flavor's kmemleak
/// scan): `kernel.NAME`.
pub const KERNEL_SUITE: &str = "kernel";

/// The kernel suite's case that waits, after the last unload of every
/// module that can schedule callbacks ([`plan::Deferrer`]), for those a
/// module forgot to cancel to run (`kernel.quiet_after_unload`): one that
/// runs in the freed module's code faults inside the run.
pub const AFTER_UNLOAD_CASE: &str = "quiet_after_unload";

/// How long [`AFTER_UNLOAD_CASE`] waits: callbacks due within this time of
/// the unload run inside it (timers and delayed work armed for up to about
/// this long, RCU callbacks after their grace period); one due later is not
/// seen.
pub const AFTER_UNLOAD_WAIT_MS: u64 = 1000;

/// The kernel suite's kmemleak case (`kernel.kmemleak_no_leaks`, debug
/// flavor): the one scan after everything else. Its failure message is
/// kmemleak's report; the host ties each object in it to the fault-injection
/// step that allocated it ([`LOAD_PID`]).
pub const KMEMLEAK_CASE: &str = "kmemleak_no_leaks";

/// A module's fault-injection sweep case (`MODULE.fault_injection`), whose
/// nested results are its steps.
pub const FAULT_INJECTION_CASE: &str = "fault_injection";

/// The diagnostic of each fault-injection step naming the process that made
/// its load (`# load pid 44`). Each load runs in a process of its own, and
/// kmemleak records the pid of the task that allocated an object
/// (`comm "…", pid 44, jiffies …`), so the host can put a leaked object at
/// the step whose load allocated it.
pub const LOAD_PID: &str = "load pid ";

/// The suite the module's own guest tests (`guest-tests/`) run in: their
/// cases are `guest_tests.NAME`.
pub const GUEST_TESTS_SUITE: &str = "guest_tests";

/// The diagnostic the runner writes before each case (`# running NAME`), so
/// that the host can name the case that was running when the guest died.
pub const RUNNING: &str = "running ";

/// The diagnostic the runner writes after the plan line, before any case:
/// `# planned: SUITE.CASE SUITE.CASE …`, every case it is about to run, in
/// order, so that the host can name the ones that did not run when the
/// guest stops early (an oops with `oops=panic`, a hang, a crash).
pub const PLANNED: &str = "planned: ";

/// The diagnostic the runner writes when its watchdog fired for the case
/// still running: `# hung SUITE.CASE SECS` (how long it had run). The case
/// may still finish (a slow guest): only a case without a result after it
/// is hung.
pub const HUNG: &str = "hung ";

/// The diagnostic the runner writes after its last result, before it reboots
/// (`# lkmlab-guest: done`): without it, the guest stopped early.
pub const DONE: &str = "lkmlab-guest: done";

/// A `kunit.filter_glob` that matches no suite: the test kernel boots with
/// it, so that the kernel's own built-in KUnit suites do not run at every
/// boot; the runner sets the filter to [`KUNIT_FILTER_ALL`] before it loads
/// the modules, whose suites run at insmod.
pub const KUNIT_FILTER_NONE: &str = "lkmlab_no_kunit_suite";

/// A `kunit.filter_glob` that matches every suite.
pub const KUNIT_FILTER_ALL: &str = "*";

/// Where the host puts things in the initramfs. Paths are absolute, as the
/// guest sees them; [`layout::in_archive`] gives an archive member's name.
pub mod layout {
    /// The test plan ([`crate::plan::Plan`]).
    pub const PLAN: &str = "/lkmlab/plan";
    /// The modules under test, `NAME.ko`.
    pub const MODULES: &str = "/lkmlab/modules";
    /// The module's guest tests, one executable each.
    pub const TESTS: &str = "/lkmlab/tests";
    /// Files the guest tests use (`guest-tests/helpers/`), with their layout;
    /// also `$LKMLAB_HELPERS` in a test's environment.
    pub const HELPERS: &str = "/lkmlab/helpers";

    /// The name of `path` inside the cpio archive (no leading `/`).
    pub fn in_archive(path: &str) -> &str {
        path.trim_start_matches('/')
    }

    /// Where a module's `.ko` lands.
    pub fn module(name: &str) -> String {
        format!("{MODULES}/{name}.ko")
    }

    /// Where a guest test lands.
    pub fn test(name: &str) -> String {
        format!("{TESTS}/{name}")
    }
}

/// The case the runner announced ([`RUNNING`]) last and never reported: the
/// one that was running when the output stopped.
pub fn running_case(ktap_text: &str) -> Option<String> {
    let announced = ktap_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# ")?.strip_prefix(RUNNING))
        .next_back()?
        .trim()
        .to_string();
    let reported = ktap_text.lines().any(|l| {
        let l = l.trim();
        (l.starts_with("ok ") || l.starts_with("not ok "))
            && l.split(" # ")
                .next()
                .is_some_and(|s| s.ends_with(&format!(" {announced}")))
    });
    (!reported).then_some(announced)
}

/// The cases the runner planned ([`PLANNED`]), in order; empty when it did
/// not say (an older runner, or no runner at all).
pub fn planned_cases(ktap_text: &str) -> Vec<String> {
    ktap_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("# ")?.strip_prefix(PLANNED))
        .map(|names| names.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The case the watchdog found still running ([`HUNG`]) and never reported
/// afterwards, with how long it had run (seconds): the running case
/// ([`running_case`]) when the runner marked it hung.
pub fn hung_case(ktap_text: &str) -> Option<(String, u64)> {
    let running = running_case(ktap_text)?;
    ktap_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# ")?.strip_prefix(HUNG))
        .filter_map(|rest| {
            let (name, secs) = rest.trim().rsplit_once(' ')?;
            Some((name.to_string(), secs.parse().ok()?))
        })
        .rfind(|(name, _)| *name == running)
}

/// The name of the virtio serial port on which the host tells the runner
/// that the VM's time is nearly up ([`WATCHDOG_SIGNAL`]); the runner reads
/// it while it waits for a case.
pub const CONTROL_PORT: &str = "lkmlab.ctl";

/// What the host writes to [`CONTROL_PORT`] at [`watchdog_at`]: the runner's
/// watchdog dumps the case still running (if one is), marks it hung, and
/// goes on waiting for it.
pub const WATCHDOG_SIGNAL: &[u8] = b"watchdog\n";

/// When (after QEMU started, by the host's clock) the host signals the
/// runner's watchdog, for a VM it kills after `timeout`: a margin before
/// the deadline (a tenth of the timeout, 3 to 30 s), so the dump reaches the
/// console first. The budget is as generous as it can be — every case may
/// run until the VM's time is nearly up — so a slow guest (a TCG vCPU
/// starved by host load) is not called hung: the watchdog only reports,
/// and the host's timeout still decides. The host's clock, not the guest's,
/// says when: the test kernel keeps time with jiffies under TCG (it finds
/// no TSC frequency to trust), and ticks a starved vCPU misses are lost —
/// measured: with a 30 s timeout on a loaded host, the guest had not reached
/// 27 s of uptime when the host killed it. `None` when the timeout leaves
/// no time before the margin.
pub fn watchdog_at(timeout: std::time::Duration) -> Option<std::time::Duration> {
    let secs = timeout.as_secs();
    let margin = (secs / 10).clamp(3, 30);
    secs.checked_sub(margin)
        .filter(|&at| at > 0)
        .map(std::time::Duration::from_secs)
}

/// The kernel log line that starts the watchdog's dump starts with this
/// (see [`watchdog_log_start`]); the dump ends with [`WATCHDOG_LOG_END`].
pub const WATCHDOG_LOG_START: &str = "lkmlab: watchdog fired: ";

/// The kernel log line after the watchdog's dump.
pub const WATCHDOG_LOG_END: &str = "lkmlab: watchdog: end of the dump";

/// The kernel log line the watchdog writes before its dump of `case`, which
/// has run `secs` seconds.
pub fn watchdog_log_start(case: &str, secs: u64) -> String {
    format!(
        "{WATCHDOG_LOG_START}{case} still running after {secs}s: its tasks, the blocked \
         tasks (sysrq w) and the CPUs (sysrq l) follow"
    )
}

/// Whether the text is the runner's (it announces its cases), rather than
/// KTAP from elsewhere, such as a kernel log's KUnit output.
pub fn from_runner(ktap_text: &str) -> bool {
    ktap_text.lines().any(|l| {
        l.trim()
            .strip_prefix("# ")
            .is_some_and(|d| d.starts_with(RUNNING))
    })
}

/// Whether the runner got to its closing [`DONE`] line.
pub fn finished(ktap_text: &str) -> bool {
    ktap_text
        .lines()
        .any(|l| l.trim().strip_prefix("# ") == Some(DONE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_watchdog_fires_a_margin_before_the_hosts_timeout() {
        let at = |secs| watchdog_at(Duration::from_secs(secs)).map(|d| d.as_secs());
        assert_eq!(at(120), Some(108));
        assert_eq!(at(10), Some(7));
        assert_eq!(at(1000), Some(970));
        assert_eq!(at(3), None);
    }

    #[test]
    fn planned_running_and_hung_cases_are_read_back() {
        let ktap = "KTAP version 1\n1..3\n# planned: m.a m.b m.c\n# running m.a\nok 1 m.a\n\
                    # running m.b\n# hung m.b 97\n";
        assert_eq!(planned_cases(ktap), ["m.a", "m.b", "m.c"]);
        assert_eq!(running_case(ktap).as_deref(), Some("m.b"));
        assert_eq!(hung_case(ktap), Some(("m.b".to_string(), 97)));
        // A case the watchdog fired for that finished after all is not hung.
        let slow = format!("{ktap}ok 2 m.b\n# running m.c\n");
        assert_eq!(hung_case(&slow), None);
        assert!(planned_cases("KTAP version 1\n1..0\n").is_empty());
    }

    #[test]
    fn a_load_record_reads_back_and_holds_its_module() {
        use kernel_log::{module_loaded, parse_module_loaded, LoadedAt};
        let at = LoadedAt {
            base: 0xffff_ffff_c020_0000,
            size: 16384,
        };
        let line = module_loaded("timer_after_unload", at);
        assert_eq!(
            line,
            "lkmlab: module loaded: timer_after_unload at 0xffffffffc0200000 size 16384"
        );
        assert_eq!(parse_module_loaded(&line), Some(("timer_after_unload", at)));
        assert!(at.contains(0xffff_ffff_c020_3fff));
        assert!(!at.contains(0xffff_ffff_c020_4000));
        assert!(!at.contains(0xffff_ffff_c01f_ffff));
        assert_eq!(
            parse_module_loaded("lkmlab: module loaded: x at zz size 1"),
            None
        );
    }
}

/// Kernel log lines that both sides read the same way: the runner's own
/// markers (it writes them, the host's log scan reads them) and the
/// kernel's reports of failures that fault injection forced, which are no
/// finding (the runner's per-step check and the host's scan both skip them).
pub mod kernel_log {
    /// The line the runner writes before it runs a case: [`case_marker`].
    pub const CASE: &str = "lkmlab: case ";

    /// The line the runner writes before each load of a fault-injection
    /// sweep: [`fault_injection_load`].
    pub const FAULT_INJECTION_LOAD: &str = "lkmlab: fault injection: loading ";

    /// `lkmlab: case SUITE.CASE`.
    pub fn case_marker(name: &str) -> String {
        format!("{CASE}{name}")
    }

    /// `lkmlab: fault injection: loading MODULE with allocation N failing`.
    pub fn fault_injection_load(module: &str, n: u32) -> String {
        format!("{FAULT_INJECTION_LOAD}{module} with allocation {n} failing")
    }

    /// Whether the line starts a step of the runner (a case, or one load
    /// of a sweep): what fault injection forced before it is over.
    pub fn starts_step(line: &str) -> bool {
        line.starts_with(CASE) || line.starts_with(FAULT_INJECTION_LOAD)
    }

    /// The line the runner writes after each module it loads:
    /// [`module_loaded`].
    pub const MODULE_LOADED: &str = "lkmlab: module loaded: ";

    /// Where a load put a module, from `/proc/modules`: the start of its
    /// text and the size of all its parts (text, data, read-only data),
    /// which 7.x allocates apart: an approximate range.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LoadedAt {
        pub base: u64,
        pub size: u64,
    }

    impl LoadedAt {
        /// Whether `address` lies in the module's memory.
        pub fn contains(&self, address: u64) -> bool {
            address >= self.base && address - self.base < self.size
        }
    }

    /// `lkmlab: module loaded: NAME at 0xBASE size SIZE`: the record a
    /// report of a fault in the module's memory is matched against, also
    /// after the module is unloaded (the kernel can then no longer name it).
    pub fn module_loaded(module: &str, at: LoadedAt) -> String {
        format!("{MODULE_LOADED}{module} at {:#x} size {}", at.base, at.size)
    }

    /// The module and place of a [`module_loaded`] line.
    pub fn parse_module_loaded(line: &str) -> Option<(&str, LoadedAt)> {
        let rest = line.strip_prefix(MODULE_LOADED)?;
        let (module, rest) = rest.split_once(" at 0x")?;
        let (base, size) = rest.split_once(" size ")?;
        Some((
            module,
            LoadedAt {
                base: u64::from_str_radix(base, 16).ok()?,
                size: size.trim().parse().ok()?,
            },
        ))
    }

    /// The fault-injection framework's notice of each failure it forces
    /// (lib/fault-inject.c `fail_dump`).
    pub const INJECTION_NOTICE: &str = "FAULT_INJECTION: forcing a failure.";

    /// How many lines the framework prints before the allocation it fails
    /// reports anything: [`INJECTION_NOTICE`] and its `name failslab,
    /// interval 1, …` line.
    pub const INJECTED_LINES: usize = 2;

    /// The allocator's report of a failed allocation made without
    /// `__GFP_NOWARN` (mm/page_alloc.c `warn_alloc`): `insmod: page
    /// allocation failure: order:…` for pages, `insmod: vmalloc error: size
    /// …` for vmalloc.
    pub fn is_alloc_failure(line: &str) -> bool {
        line.contains(": page allocation failure: ") || line.contains(": vmalloc error: size ")
    }

    /// drivers/base/dd.c's `probe with driver %s failed with error %d`,
    /// after the device's name. A probe that rejects the device with
    /// `ENODEV` or `ENXIO` is logged at debug level only.
    pub fn is_probe_failure(line: &str) -> bool {
        line.contains(": probe with driver ") && line.contains(" failed with error ")
    }
}
