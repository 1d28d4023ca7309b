//! What the binary tests that must do no work share: lkmlab run with a cache
//! it cannot write, and its output as text.

use std::path::Path;
use std::process::{Command, Output};

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// lkmlab in `dir`, with a cache it cannot write (procfs makes no
/// directories): whatever got past a refusal could neither download nor
/// build anything, and would fail on that instead.
pub fn lkmlab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lkmlab"))
        .args(args)
        .current_dir(dir)
        .env("LKMLAB_CACHE", "/proc/lkmlab-no-cache")
        .env_remove("LKMLAB_MIRROR")
        .output()
        .unwrap()
}
