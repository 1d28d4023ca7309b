//! `lkmlab watch`: rerun the build and VM test whenever a file under the
//! module directory changes. Polling file metadata keeps it dependency-free
//! and works on every filesystem (inotify misses changes on 9p and NFS).

use crate::build::module_dir;
use crate::judge::report::Verdict;
use crate::util::human_duration;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often the module directory is scanned: a scan is a few `stat`s of a
/// small directory, and every millisecond of it is the developer's wait.
pub const POLL: Duration = Duration::from_millis(50);
/// How long the files must stay unchanged before a run starts: an editor's
/// save (write to a temporary file, rename, touch) takes well under this and
/// ends as one change.
pub const SETTLE: Duration = Duration::from_millis(100);

/// Each watched file's modification time and size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<PathBuf, (Option<SystemTime>, u64)>);

/// Files that are not the module's source: hidden files (`.git`, editor
/// swap files, Kbuild's `.*.cmd`), editor backups, build products of an
/// in-tree `make`, and the generated rust-project.json.
fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name == "4913" // vim's write test
        || name == crate::build::module_dir::RUST_PROJECT
        || name == "modules.order"
        || name == "Module.symvers"
        || [".o", ".ko", ".mod", ".mod.c", ".swp", ".tmp"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// The watched files under `dir`: the module's sources and guest tests
/// ([`module_dir::files`]: never its results under `target/` nor anything
/// behind a link), less editor and in-tree build leftovers.
pub fn snapshot(dir: &Path) -> Result<Snapshot> {
    let files = module_dir::files(dir, module_dir::Walk::SourcesAndTests, true)
        .with_context(|| format!("watching {}", dir.display()))?;
    Ok(Snapshot(
        files
            .into_iter()
            .filter(|p| !p.file_name().is_some_and(|n| ignored(&n.to_string_lossy())))
            .filter_map(|p| {
                // A file removed while scanning is just a change.
                let meta = std::fs::metadata(&p).ok()?;
                Some((p, (meta.modified().ok(), meta.len())))
            })
            .collect(),
    ))
}

/// The files added, removed or modified from `old` to `new`.
pub fn changes(old: &Snapshot, new: &Snapshot) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = new
        .0
        .iter()
        .filter(|(p, meta)| old.0.get(*p) != Some(*meta))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(old.0.keys().filter(|p| !new.0.contains_key(*p)).cloned());
    out.sort();
    out
}

/// Waits for changes under a directory.
pub struct Watcher {
    dir: PathBuf,
    seen: Snapshot,
    poll: Duration,
    settle: Duration,
}

impl Watcher {
    pub fn new(dir: &Path, poll: Duration, settle: Duration) -> Result<Watcher> {
        Ok(Watcher {
            dir: dir.to_path_buf(),
            seen: snapshot(dir)?,
            poll,
            settle,
        })
    }

    /// Block until something changed since the last call (or since
    /// `new`), then until the files have been quiet for the settle time.
    /// Changes made while the caller was busy count too.
    pub fn wait(&mut self) -> Result<Vec<PathBuf>> {
        let start = self.seen.clone();
        let mut current = snapshot(&self.dir)?;
        while changes(&start, &current).is_empty() {
            std::thread::sleep(self.poll);
            current = snapshot(&self.dir)?;
        }
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < self.settle {
            std::thread::sleep(self.settle.min(self.poll) / 2);
            let next = snapshot(&self.dir)?;
            if next != current {
                current = next;
                quiet_since = Instant::now();
            }
        }
        let changed = changes(&start, &current);
        self.seen = current;
        Ok(changed)
    }
}

/// A short description of what changed, relative to `dir`.
fn describe(dir: &Path, changed: &[PathBuf]) -> String {
    let names: Vec<String> = changed
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string())
        .collect();
    match names.len() {
        0 => "no change".into(),
        1..=3 => format!("{} changed", names.join(", ")),
        n => format!("{}, … ({n} files) changed", names[..2].join(", ")),
    }
}

/// Run `test` now and after every change under `module_dir`, printing each
/// run's result. Returns after `max_runs` runs (forever when `None`):
/// `Some(passed)` of the last run, `None` when it could not run (a build error).
pub fn run(
    module_dir: &Path,
    max_runs: Option<u32>,
    mut test: impl FnMut() -> Result<Verdict>,
    report: impl Fn(&Verdict) -> Result<()>,
) -> Result<Option<bool>> {
    let dir = module_dir
        .canonicalize()
        .with_context(|| format!("module directory {}", module_dir.display()))?;
    let mut watcher = Watcher::new(&dir, POLL, SETTLE)?;
    let mut reason = "first run".to_string();
    let mut run = 0u32;
    loop {
        run += 1;
        crate::status!("watch: run {run} ({reason})");
        let started = Instant::now();
        let last = match test() {
            Ok(verdict) => {
                report(&verdict)?;
                Some(verdict.passed())
            }
            Err(e) => {
                // A build error is part of the loop: show it and keep watching.
                crate::output::error(&e);
                None
            }
        };
        let verdict = match last {
            Some(true) => "passed",
            Some(false) => "FAILED",
            None => "did not run",
        };
        if max_runs.is_some_and(|m| run >= m) {
            crate::notice!(
                "watch: run {run} {verdict} in {}; stopping after {run} run(s)",
                human_duration(started.elapsed())
            );
            return Ok(last);
        }
        crate::notice!(
            "watch: run {run} {verdict} in {}; watching {} for changes (Ctrl-C stops)",
            human_duration(started.elapsed()),
            dir.display()
        );
        let changed = watcher.wait()?;
        reason = describe(&dir, &changed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(path: &Path, secs: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn edits_additions_and_removals_are_changes_but_build_products_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("scull.rs"), "a").unwrap();
        std::fs::write(d.join("Kbuild"), "obj-m := scull.o").unwrap();
        std::fs::create_dir(d.join("guest-tests")).unwrap();
        std::fs::write(d.join("guest-tests/t.sh"), "#!/bin/sh").unwrap();
        let before = snapshot(d).unwrap();
        assert_eq!(before.0.len(), 3);

        for junk in [
            "scull.o",
            "scull.ko",
            ".scull.o.cmd",
            "scull.rs~",
            ".scull.rs.swp",
            "rust-project.json",
            "modules.order",
        ] {
            std::fs::write(d.join(junk), "x").unwrap();
        }
        assert!(changes(&before, &snapshot(d).unwrap()).is_empty());

        set_mtime(&d.join("scull.rs"), 1_000_000);
        std::fs::write(d.join("new.rs"), "b").unwrap();
        std::fs::remove_file(d.join("guest-tests/t.sh")).unwrap();
        let names: Vec<String> = changes(&before, &snapshot(d).unwrap())
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["guest-tests/t.sh", "new.rs", "scull.rs"]);
    }

    /// An editor saving several files (or one file several times) is one
    /// change. The burst here is four writes back to back, each with its own
    /// mtime, while the watcher is polling; the settle time (1 s) is far
    /// longer than the burst takes even on a loaded machine, so the test
    /// does not depend on how fast either side runs.
    #[test]
    fn a_burst_of_writes_is_one_change_and_later_edits_are_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        std::fs::write(d.join("m.rs"), "0").unwrap();
        let mut w = Watcher::new(&d, Duration::from_millis(10), Duration::from_secs(1)).unwrap();
        let writer = {
            let d = d.clone();
            std::thread::spawn(move || {
                for i in 1..=4u64 {
                    std::fs::write(d.join("m.rs"), i.to_string().repeat(i as usize)).unwrap();
                    set_mtime(&d.join("m.rs"), 2_000_000 + i);
                }
            })
        };
        let changed = w.wait().unwrap();
        writer.join().unwrap();
        assert_eq!(changed, [d.join("m.rs")]);
        assert_eq!(std::fs::read_to_string(d.join("m.rs")).unwrap(), "4444");
        // The burst was absorbed: nothing is pending. An edit made while the
        // caller was busy is reported by the next wait.
        std::fs::write(d.join("other.rs"), "x").unwrap();
        assert_eq!(w.wait().unwrap(), [d.join("other.rs")]);
    }

    #[test]
    fn changes_are_described_relative_to_the_module() {
        let d = Path::new("/m");
        assert_eq!(describe(d, &[d.join("scull.rs")]), "scull.rs changed");
        let many: Vec<PathBuf> = (0..5).map(|i| d.join(format!("{i}.rs"))).collect();
        assert_eq!(describe(d, &many), "0.rs, 1.rs, … (5 files) changed");
    }
}
