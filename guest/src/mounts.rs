//! The filesystems the runner mounts before any test: the ones `lkmlab vm`
//! (virtme-ng's init) mounts, so that a guest test finds in the test VM
//! what it found in the interactive one. docs/guest-tests.md lists them.

use crate::sys;
use std::io;

/// A filesystem and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount {
    pub fstype: &'static str,
    pub target: &'static str,
    /// Options, as `mount -o` takes them (the filesystem's own).
    pub options: &'static str,
}

const fn mount(fstype: &'static str, target: &'static str, options: &'static str) -> Mount {
    Mount {
        fstype,
        target,
        options,
    }
}

/// What the runner itself needs: mounted first, on every kernel.
pub const REQUIRED: [Mount; 3] = [
    mount("proc", "/proc", ""),
    mount("sysfs", "/sys", ""),
    mount("devtmpfs", "/dev", ""),
];

/// The others virtme-ng mounts, in its order (each under one of
/// [`REQUIRED`]): mounted when the kernel has the filesystem, that is when
/// `/proc/filesystems` lists it.
pub const IF_AVAILABLE: [Mount; 8] = [
    mount("debugfs", "/sys/kernel/debug", ""),
    mount("configfs", "/sys/kernel/config", ""),
    mount("tracefs", "/sys/kernel/tracing", ""),
    mount("securityfs", "/sys/kernel/security", ""),
    mount("devpts", "/dev/pts", "mode=0620,ptmxmode=0666"),
    mount("tmpfs", "/dev/shm", "mode=1777"),
    mount("tmpfs", "/run", "mode=0755"),
    mount("cgroup2", "/sys/fs/cgroup", ""),
];

/// The filesystem types a `/proc/filesystems` text lists (`nodev\tsysfs`,
/// `\text4`: the type is the last word of a line).
fn listed(proc_filesystems: &str) -> Vec<&str> {
    proc_filesystems
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .collect()
}

/// The mounts of [`IF_AVAILABLE`] whose filesystem the kernel has.
fn available(proc_filesystems: &str) -> Vec<Mount> {
    let listed = listed(proc_filesystems);
    IF_AVAILABLE
        .into_iter()
        .filter(|m| listed.contains(&m.fstype))
        .collect()
}

/// Mounts [`REQUIRED`], then what the kernel has of [`IF_AVAILABLE`]. A
/// filesystem the kernel has that does not mount is an error, as a missing
/// required one is: a test would find it missing with no word why.
pub fn mount_all() -> io::Result<()> {
    for m in REQUIRED {
        mount_one(m)?;
    }
    let path = "/proc/filesystems";
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {path}: {e}")))?;
    for m in available(&text) {
        mount_one(m)?;
    }
    Ok(())
}

fn mount_one(m: Mount) -> io::Result<()> {
    sys::mount(m.fstype, m.target, m.options).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("mounting {} on {}: {e}", m.fstype, m.target),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A /proc/filesystems like that of lkmlab's default test kernel: no
    /// configfs, tracefs, securityfs or cgroup2.
    const DEFAULT_KERNEL: &str = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tbdev\nnodev\tproc\n\
         nodev\tdevtmpfs\nnodev\tdebugfs\nnodev\tsockfs\nnodev\tpipefs\nnodev\tramfs\n\
         nodev\tdevpts\nnodev\t9p\nnodev\tfuse\n\tfuseblk\nnodev\tfusectl\nnodev\tvirtiofs\n\
         nodev\toverlay\n";

    fn targets(mounts: &[Mount]) -> Vec<&str> {
        mounts.iter().map(|m| m.target).collect()
    }

    #[test]
    fn only_what_the_kernel_has_is_mounted() {
        assert_eq!(
            targets(&available(DEFAULT_KERNEL)),
            ["/sys/kernel/debug", "/dev/pts", "/dev/shm", "/run"]
        );
        let with_configfs = format!("{DEFAULT_KERNEL}nodev\tconfigfs\n");
        assert_eq!(
            targets(&available(&with_configfs)),
            [
                "/sys/kernel/debug",
                "/sys/kernel/config",
                "/dev/pts",
                "/dev/shm",
                "/run"
            ]
        );
        assert!(available("").is_empty());
    }

    /// A type is a whole word: `fuseblk` is not `fuse`, and `nodev` is no
    /// filesystem.
    #[test]
    fn a_type_is_the_last_word_of_its_line() {
        assert_eq!(
            listed("nodev\tsysfs\n\text4\nnodev\tfuse\n"),
            ["sysfs", "ext4", "fuse"]
        );
        assert!(available("nodev\tconfigfs_x\n\tnodev\n").is_empty());
    }

    /// Each mount point is under one mounted before it (a directory of
    /// sysfs or devtmpfs exists only once they are mounted), or at the top.
    #[test]
    fn every_mount_point_is_mounted_after_its_parent() {
        let all: Vec<Mount> = REQUIRED.into_iter().chain(IF_AVAILABLE).collect();
        for (i, m) in all.iter().enumerate() {
            let parent = std::path::Path::new(m.target).parent().unwrap();
            let under = all[..i]
                .iter()
                .any(|earlier| parent.starts_with(earlier.target));
            assert!(under || parent == std::path::Path::new("/"), "{m:?}");
        }
    }

    /// docs/guest-tests.md lists what a test can rely on: each of these, by
    /// type and mount point, in a table row of its own.
    #[test]
    fn the_docs_list_every_mount() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/guest-tests.md");
        let docs = std::fs::read_to_string(path).unwrap();
        for m in REQUIRED.into_iter().chain(IF_AVAILABLE) {
            let row = format!("| `{}` | `{}` |", m.target, m.fstype);
            assert!(docs.contains(&row), "docs/guest-tests.md has no row {row}");
        }
    }
}
