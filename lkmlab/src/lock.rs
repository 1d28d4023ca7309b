//! One writer at a time: exclusive locks (`flock`) on the shared cache's
//! entries (a download, the unpacked source, a kernel tree) and on a
//! module's output folder. Two lkmlab runs at once take turns; the second
//! says what it waits for.
//!
//! A lock is a file beside (or in) what it guards. Whoever holds it may
//! remove it together with what it guards (a kernel build whose
//! configuration failed removes its tree and lock): a waiter then holds a
//! lock on a file that is gone, notices, and locks the path anew.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this lock's file is still the one at its path (see the module
    /// documentation).
    fn still_at_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
}

/// The lock file that guards `path` (a file or directory): `<path>.lock`
/// beside it.
pub fn beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Hold the lock at `lock_file` (created, with its directory, if missing),
/// waiting while another process holds it; `what` says what it guards in
/// the waiting message ("building this kernel").
pub fn exclusive(lock_file: &Path, what: &str) -> Result<Lock> {
    if let Some(parent) = lock_file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut said = false;
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_file)
            .with_context(|| format!("opening {}", lock_file.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                if !said {
                    crate::status!(
                        "another lkmlab is {what} ({}); waiting for it",
                        lock_file.display()
                    );
                    said = true;
                }
                file.lock()
                    .with_context(|| format!("locking {}", lock_file.display()))?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_file.display()))
            }
        }
        let lock = Lock {
            file,
            path: lock_file.to_path_buf(),
        };
        if lock.still_at_path() {
            return Ok(lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = beside(&dir.path().join("tree"));
        assert_eq!(path.file_name().unwrap(), "tree.lock");
        let first = exclusive(&path, "testing").unwrap();
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let lock = exclusive(&path, "testing").unwrap();
                tx.send(()).unwrap();
                lock
            })
        };
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        drop(first);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(waiter.join().unwrap());
    }

    #[test]
    fn a_lock_removed_by_its_holder_is_taken_anew_by_the_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let path = beside(&dir.path().join("tree"));
        let first = exclusive(&path, "testing").unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || exclusive(&path, "testing").unwrap())
        };
        std::thread::sleep(Duration::from_millis(100));
        // The holder gives up and removes what it guarded, lock included.
        std::fs::remove_file(&path).unwrap();
        drop(first);
        let held = waiter.join().unwrap();
        assert!(held.still_at_path());
        // And it really is exclusive: nobody else gets the new file.
        let third = File::open(held.path()).unwrap();
        assert!(matches!(third.try_lock(), Err(TryLockError::WouldBlock)));
    }
}
