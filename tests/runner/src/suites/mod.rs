//! The built-in suites, chosen by module name.

use crate::case::Suite;

mod fault_injection;
mod generic;
mod hello;
mod kmemleak;
mod scull;
mod user;

pub use fault_injection::case as fault_injection;
pub use fault_injection::load_child as fault_injection_load;
pub use kmemleak::suite as kmemleak;
pub use user::guest_tests;

/// The suite for a module: its own where lkmlab has one, otherwise the
/// generic load/unload suite that any module must pass.
pub fn for_module(module: &str) -> Suite {
    match module {
        "hello" => hello::suite(),
        "scull" => scull::suite(),
        other => generic::suite(other),
    }
}
