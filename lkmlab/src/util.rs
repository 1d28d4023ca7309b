//! Running external commands with errors that say what failed.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// Run a command, capturing its output; on failure the error carries the tail
/// of what it printed.
pub fn run_quiet(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().map_err(|e| spawn_error(what, e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
        let tail = tail[tail.len().saturating_sub(25)..].join("\n");
        bail!("{what} failed ({}):\n{tail}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

/// The first `program` file in the directories of `PATH`, like `which`.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    which_all(program).into_iter().next()
}

/// `~/.local/bin`, where pipx and `scripts/setup-debian.sh` install tools
/// that may not be on PATH.
pub fn home_local_bin() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/bin"))
}

/// Every `program` on PATH, in PATH order.
pub fn which_all(program: &str) -> Vec<std::path::PathBuf> {
    let Some(paths) = std::env::var_os("PATH") else {
        return Vec::new();
    };
    std::env::split_paths(&paths)
        .map(|d| d.join(program))
        .filter(|p| p.is_file())
        .collect()
}

/// Run a command and return its stdout+stderr, whatever its exit status.
pub fn output_of(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().map_err(|e| spawn_error(what, e))?;
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(s)
}

/// Atomically write a file (write to a sibling, then rename).
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// A duration as `1m02s` or `3.4s`.
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{secs:.1}s")
    }
}
