//! The contract between the host (`lkmlab`) and the guest runner
//! (`lkmlab-guest`, PID 1 of the test VM), in one place:
//!
//! - where the host puts things in the initramfs ([`layout`]),
//! - the test plan the runner reads ([`plan::Plan`]),
//! - the channel the results travel on ([`KTAP_PORT`]) and what the runner
//!   writes there: KTAP ([`ktap::Writer`]) with lkmlab's own diagnostics
//!   ([`RUNNING`], [`DONE`]), which the host reads back ([`ktap::parse`],
//!   [`running_case`], [`finished`]),
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
/// debug flavor's kmemleak scan): `kernel.NAME`.
pub const KERNEL_SUITE: &str = "kernel";

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
