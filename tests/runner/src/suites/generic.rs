//! Any module: it loads, unloads cleanly and leaves the kernel log clean.

use crate::case::{Case, Suite};
use crate::checks;

pub fn suite(module: &str) -> Suite {
    let (m1, m2) = (module.to_string(), module.to_string());
    Suite {
        name: module.to_string(),
        cases: vec![
            Case::new("insmod", move |env| checks::insmod(env, &m1, "")),
            Case::new("rmmod", move |_| checks::unload(&m2)),
            Case::new("kernel_log_clean", |_| checks::log_clean()),
        ],
    }
}
