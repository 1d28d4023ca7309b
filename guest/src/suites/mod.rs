//! The built-in suites: the generic one every module gets, and the example
//! modules' own, which a module gets only when the plan says so.

use crate::case::{Case, Env, Suite};

mod after_unload;
mod fault_injection;
mod generic;
mod hello;
mod kmemleak;
mod scull;
mod user;

pub use fault_injection::case as fault_injection;
pub use fault_injection::load_child as fault_injection_load;
pub use user::guest_tests;

use lkmlab_protocol::plan::ExampleSuite;

/// The suite for a module: the example suite the plan gives it, otherwise
/// the generic load/unload suite that any module must pass (which checks
/// its KUnit suites if `has_kunit`).
pub fn for_module(module: &str, example: Option<ExampleSuite>, has_kunit: bool) -> Suite {
    match example {
        Some(ExampleSuite::Hello) => hello::suite(),
        Some(ExampleSuite::Scull) => scull::suite(),
        None => generic::suite(module, has_kunit),
    }
}

/// The checks of the whole kernel after every module's tests: the wait
/// after the last unload of modules that can schedule callbacks (if the plan
/// names any), then the kmemleak scan (if the kernel has kmemleak).
pub fn kernel_suite(env: &Env) -> Option<Suite> {
    let cases: Vec<Case> = (after_unload::case(env).into_iter())
        .chain(kmemleak::case())
        .collect();
    (!cases.is_empty()).then(|| Suite {
        name: lkmlab_protocol::KERNEL_SUITE.to_string(),
        cases,
    })
}
