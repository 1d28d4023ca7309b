//! Small helpers: finding programs on PATH, atomic writes, temporary
//! directories, durations. (Running programs is `process.rs`'s.)

use anyhow::{Context, Result};

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

/// Atomically write a file: into a new file of a random name beside it,
/// then renamed over it, so that a reader never sees half of it and two
/// writers never share a temporary file.
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    persist(tmp, path)
}

/// Move a finished temporary file (made beside `path`) to `path`, replacing
/// what was there in one rename.
pub fn persist(tmp: tempfile::NamedTempFile, path: &std::path::Path) -> Result<()> {
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("moving {} into place", path.display()))?;
    Ok(())
}

/// A new directory in the system's temporary directory (`TMPDIR`), of a
/// random name and mode 0700 (never a predictable path someone could have
/// put a symlink at), removed with what it holds when dropped.
pub fn temp_dir(purpose: &str) -> Result<tempfile::TempDir> {
    temp_dir_in(&std::env::temp_dir(), purpose)
}

fn temp_dir_in(parent: &std::path::Path, purpose: &str) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(&format!("lkmlab-{purpose}-"))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Where lkmlab used to put its temporary directories (`lkmlab-PID`,
    /// `lkmlab-config-PID`, `lkmlab-kvm-probe-PID` in TMPDIR), an attacker on
    /// a shared machine could plant a symlink to a directory of the user's;
    /// lkmlab then wrote into (and removed) that directory. The three users
    /// (the libclang probe, `lkmlab config`, the KVM probe) now all take
    /// their directory from `temp_dir`, whose directories are new, private
    /// and of random names: with links planted at the old names, none is
    /// followed.
    #[test]
    fn temporary_directories_are_new_and_private_never_a_planted_link() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        for old in ["lkmlab-{}", "lkmlab-config-{}", "lkmlab-kvm-probe-{}"] {
            let name = old.replace("{}", &std::process::id().to_string());
            std::os::unix::fs::symlink(&victim, tmp.path().join(name)).unwrap();
        }
        for purpose in ["libclang", "config", "kvm-probe"] {
            let dir = temp_dir_in(tmp.path(), purpose).unwrap();
            let meta = std::fs::symlink_metadata(dir.path()).unwrap();
            assert!(meta.is_dir() && !meta.file_type().is_symlink());
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
            std::fs::write(dir.path().join("probe.img"), b"x").unwrap();
        }
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("initramfs.cpio");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
