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
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// A held lock; released when dropped, unless a child process was given it
/// too ([`crate::process::spawn_holding`]): a flock belongs to the open
/// file, and is released when the last process that has it open closes it.
/// (So nothing here unlocks explicitly: that would release it for the child
/// too.)
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl AsFd for Lock {
    /// The open lock file, whose holders hold the lock.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
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
    exclusive_counting(lock_file, what).map(|(lock, _)| lock)
}

/// [`exclusive`], and how many files it locked to get there (more than one
/// when the holder removed the file it waited on).
fn exclusive_counting(lock_file: &Path, what: &str) -> Result<(Lock, usize)> {
    if let Some(parent) = lock_file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut said = false;
    let mut attempts = 0;
    loop {
        attempts += 1;
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
            return Ok((lock, attempts));
        }
    }
}

/// Make the directory `dest` once, whichever lkmlab asks first. If `done`
/// says it is complete, nothing happens; else, holding `dest`'s lock (`what`
/// is what the others are told they wait for) and if it is still not done,
/// `fill` writes it into a new directory of a random name beside it
/// (`.unpacking-…`), which then replaces whatever is at `dest` (a stale
/// copy an interrupted run left) in one rename: the cache never holds half
/// of it, and two runs never write it at once.
pub fn fill_once(
    dest: &Path,
    what: &str,
    done: impl Fn(&Path) -> bool,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    if done(dest) {
        return Ok(());
    }
    let _lock = exclusive(&beside(dest), what)?;
    if done(dest) {
        return Ok(());
    }
    let parent = dest
        .parent()
        .with_context(|| format!("{} has no parent directory", dest.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    fill(staging.path())?;
    if dest.exists() {
        std::fs::remove_dir_all(dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    std::fs::rename(staging.path(), dest)
        .with_context(|| format!("moving {} into place", dest.display()))
}

/// Whether a running lkmlab holds the lock at `lock_file` right now.
pub fn is_held(lock_file: &Path) -> bool {
    let Ok(file) = OpenOptions::new().write(true).open(lock_file) else {
        return false;
    };
    matches!(file.try_lock(), Err(TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_directory_is_filled_once_and_moved_into_place_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("src/linux-0123");
        let done = |d: &Path| d.join("marker").is_file();
        // An interrupted run's leftover is replaced, not filled on top of.
        std::fs::create_dir_all(dest.join("stale")).unwrap();
        fill_once(&dest, "testing", done, |staging| {
            assert_ne!(staging, dest);
            std::fs::write(staging.join("marker"), "x")?;
            Ok(())
        })
        .unwrap();
        assert!(done(&dest) && !dest.join("stale").exists());
        // Done: `fill` is not called again.
        fill_once(&dest, "testing", done, |_| panic!("filled twice")).unwrap();
        // A failed fill leaves nothing at `dest`, and no staging directory.
        let other = dir.path().join("src/linux-4567");
        let err = fill_once(&other, "testing", done, |_| anyhow::bail!("no space")).unwrap_err();
        assert_eq!(err.to_string(), "no space");
        assert!(!other.exists());
        let names: Vec<String> = std::fs::read_dir(dir.path().join("src"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        assert_eq!(names, ["linux-0123"]);
    }

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
        // The waiter must have opened the file before it is removed for the
        // re-lock to happen; on a slow machine it may not have within the
        // pause, so the scenario is tried until it did (and fails after 5).
        for _ in 0..5 {
            let first = exclusive(&path, "testing").unwrap();
            let waiter = {
                let path = path.clone();
                std::thread::spawn(move || exclusive_counting(&path, "testing").unwrap())
            };
            std::thread::sleep(Duration::from_millis(100));
            // The holder gives up and removes what it guarded, lock included.
            std::fs::remove_file(&path).unwrap();
            drop(first);
            let (held, attempts) = waiter.join().unwrap();
            assert!(held.still_at_path());
            // And it really is exclusive: nobody else gets the new file.
            let third = File::open(held.path()).unwrap();
            assert!(matches!(third.try_lock(), Err(TryLockError::WouldBlock)));
            if attempts == 2 {
                return;
            }
        }
        panic!("the waiter never waited on a lock file that was then removed");
    }
}
