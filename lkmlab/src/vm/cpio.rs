//! A writer for "newc" (`070701`) cpio archives, the format the kernel
//! unpacks as an initramfs (`Documentation/driver-api/early-userspace/
//! buffer-format.rst`).
//!
//! Archives are reproducible: inode numbers count up from 1 in the order
//! entries are added, and every entry has mtime 0 and uid/gid 0. The writer
//! does not check that parent directories were added before their contents;
//! the kernel needs them to be, so add directories first.

use std::io::{self, Write};

/// Length of a newc header: the magic and 13 eight-digit hex fields.
const HEADER_LEN: usize = 110;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const TRAILER: &str = "TRAILER!!!";

/// Writes a newc cpio archive entry by entry.
///
/// If a method returns an error the archive is incomplete and should be
/// discarded.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    w: W,
    next_ino: u32,
    written: u64,
}

/// The fields of one header that vary between entries.
struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Paths are relative (`dev/console`, not `/dev/console`), with no empty,
/// `.` or `..` components and no NUL bytes.
fn check_path(path: &str) -> io::Result<()> {
    if path.is_empty() {
        return Err(invalid("cpio: empty path".to_string()));
    }
    if path.starts_with('/') {
        return Err(invalid(format!(
            "cpio: path {path:?} must not start with '/' (write {:?})",
            path.trim_start_matches('/')
        )));
    }
    if path.contains('\0') {
        return Err(invalid(format!("cpio: path {path:?} contains a NUL byte")));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid(format!(
            "cpio: path {path:?} has an empty, '.' or '..' component"
        )));
    }
    Ok(())
}

fn check_mode(path: &str, mode: u32) -> io::Result<()> {
    if mode & !0o7777 != 0 {
        return Err(invalid(format!(
            "cpio: mode {mode:o} for {path:?} has bits beyond the permissions (0o7777); \
             the file type is added by the writer"
        )));
    }
    Ok(())
}

/// Zero bytes needed after `len` bytes to reach a multiple of `align`.
fn padding(len: u64, align: u64) -> usize {
    // The result is below `align`, which is small.
    ((align - len % align) % align) as usize
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive written to `w`.
    pub fn new(w: W) -> Self {
        CpioWriter {
            w,
            next_ino: 1,
            written: 0,
        }
    }

    /// Adds a directory; `mode` holds only permission bits (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        check_path(path)?;
        check_mode(path, mode)?;
        self.entry(
            &Header {
                name: path,
                mode: S_IFDIR | mode,
                nlink: 2,
                rdev: (0, 0),
            },
            &[],
        )
    }

    /// Adds a regular file with the given permission bits and contents.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        check_path(path)?;
        check_mode(path, mode)?;
        self.entry(
            &Header {
                name: path,
                mode: S_IFREG | mode,
                nlink: 1,
                rdev: (0, 0),
            },
            data,
        )
    }

    /// Adds a symbolic link (mode `0o777`) pointing at `target`, which may be
    /// absolute.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        check_path(path)?;
        if target.is_empty() || target.contains('\0') {
            return Err(invalid(format!(
                "cpio: symlink {path:?} needs a non-empty target without NUL bytes"
            )));
        }
        self.entry(
            &Header {
                name: path,
                mode: S_IFLNK | 0o777,
                nlink: 1,
                rdev: (0, 0),
            },
            target.as_bytes(),
        )
    }

    /// Adds a character device node, e.g. `dev/console` 5:1.
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        check_path(path)?;
        check_mode(path, mode)?;
        self.entry(
            &Header {
                name: path,
                mode: S_IFCHR | mode,
                nlink: 1,
                rdev: (major, minor),
            },
            &[],
        )
    }

    /// Writes the `TRAILER!!!` entry, pads the archive with zeros to a
    /// multiple of 512 bytes, flushes, and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_entry(
            0,
            &Header {
                name: TRAILER,
                mode: 0,
                nlink: 1,
                rdev: (0, 0),
            },
            &[],
        )?;
        let pad = padding(self.written, 512);
        self.write_all(&vec![0; pad])?;
        self.w.flush()?;
        Ok(self.w)
    }

    fn entry(&mut self, header: &Header<'_>, data: &[u8]) -> io::Result<()> {
        let ino = self.next_ino;
        self.next_ino = ino
            .checked_add(1)
            .ok_or_else(|| invalid("cpio: too many entries".to_string()))?;
        self.write_entry(ino, header, data)
    }

    fn write_entry(&mut self, ino: u32, header: &Header<'_>, data: &[u8]) -> io::Result<()> {
        let filesize = u32::try_from(data.len()).map_err(|_| {
            invalid(format!(
                "cpio: {:?} is larger than newc's 4 GiB limit",
                header.name
            ))
        })?;
        // The name size counts the terminating NUL.
        let namesize = u32::try_from(header.name.len() + 1)
            .map_err(|_| invalid("cpio: path too long".to_string()))?;
        let fields = [
            ino,
            header.mode,
            0, // uid
            0, // gid
            header.nlink,
            0, // mtime
            filesize,
            0, // devmajor
            0, // devminor
            header.rdev.0,
            header.rdev.1,
            namesize,
            0, // check (only used by the "crc" format)
        ];
        let mut head = String::with_capacity(HEADER_LEN);
        head.push_str("070701");
        for field in fields {
            head.push_str(&format!("{field:08X}"));
        }
        self.write_all(head.as_bytes())?;
        self.write_all(header.name.as_bytes())?;
        self.write_all(&[0])?;
        // Header plus name is padded to 4 bytes; every entry starts aligned.
        self.write_all(&[0; 3][..padding(self.written, 4)])?;
        self.write_all(data)?;
        self.write_all(&[0; 3][..padding(self.written, 4)])?;
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::{Command, Stdio};

    fn archive(build: impl FnOnce(&mut CpioWriter<Vec<u8>>) -> io::Result<()>) -> Vec<u8> {
        let mut w = CpioWriter::new(Vec::new());
        build(&mut w).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn one_file_byte_exact() {
        let bytes = archive(|w| w.file("init", 0o755, b"hello"));
        let expected_header = concat!(
            "070701", "00000001", // ino
            "000081ED", // mode: S_IFREG | 0755
            "00000000", // uid
            "00000000", // gid
            "00000001", // nlink
            "00000000", // mtime
            "00000005", // filesize
            "00000000", // devmajor
            "00000000", // devminor
            "00000000", // rdevmajor
            "00000000", // rdevminor
            "00000005", // namesize: "init" + NUL
            "00000000", // check
        );
        assert_eq!(expected_header.len(), HEADER_LEN);
        let mut expected = expected_header.as_bytes().to_vec();
        // 110 + 5 = 115: one byte of padding to 116.
        expected.extend_from_slice(b"init\0\0");
        // 5 bytes of data, 3 of padding.
        expected.extend_from_slice(b"hello\0\0\0");
        assert_eq!(&bytes[..expected.len()], &expected[..]);

        let trailer = &bytes[expected.len()..];
        let trailer_header = concat!(
            "070701", "00000000", "00000000", "00000000", "00000000", "00000001", "00000000",
            "00000000", "00000000", "00000000", "00000000", "00000000", "0000000B", "00000000",
        );
        assert!(trailer.starts_with(trailer_header.as_bytes()));
        // 110 + 11 = 121, padded to 124.
        assert_eq!(&trailer[HEADER_LEN..HEADER_LEN + 14], b"TRAILER!!!\0\0\0\0");
        assert!(trailer[HEADER_LEN + 14..].iter().all(|&b| b == 0));
        assert_eq!(bytes.len(), 512);
    }

    #[test]
    fn padding_rules() {
        for (name, data_len) in [("a", 0), ("ab", 1), ("abc", 2), ("abcd", 3), ("abcde", 4)] {
            let data = vec![b'x'; data_len];
            let bytes = archive(|w| w.file(name, 0o644, &data));
            let name_end = HEADER_LEN + name.len() + 1;
            let data_start = name_end.next_multiple_of(4);
            assert!(
                bytes[name_end..data_start].iter().all(|&b| b == 0),
                "{name}"
            );
            assert_eq!(&bytes[data_start..data_start + data_len], &data[..]);
            let next = (data_start + data_len).next_multiple_of(4);
            assert!(bytes[data_start + data_len..next].iter().all(|&b| b == 0));
            assert_eq!(&bytes[next..next + 6], b"070701", "{name}");
            assert_eq!(bytes.len() % 512, 0);
        }
        assert_eq!(padding(0, 4), 0);
        assert_eq!(padding(115, 4), 1);
        assert_eq!(padding(512, 512), 0);
        assert_eq!(padding(513, 512), 511);
    }

    #[test]
    fn headers_of_each_kind() {
        let bytes = archive(|w| {
            w.dir("dev", 0o755)?;
            w.char_device("dev/console", 0o600, 5, 1)?;
            w.symlink("sh", "/bin/busybox")
        });
        let text = String::from_utf8_lossy(&bytes);
        let headers: Vec<&str> = text
            .match_indices("070701")
            .map(|(i, _)| &text[i..i + HEADER_LEN])
            .collect();
        assert_eq!(headers.len(), 4);
        let field = |h: &str, n: usize| u32::from_str_radix(&h[6 + 8 * n..14 + 8 * n], 16).unwrap();
        // ino, mode, nlink, filesize, rdevmajor, rdevminor
        let summary: Vec<[u32; 6]> = headers
            .iter()
            .map(|h| {
                [
                    field(h, 0),
                    field(h, 1),
                    field(h, 4),
                    field(h, 6),
                    field(h, 9),
                    field(h, 10),
                ]
            })
            .collect();
        assert_eq!(
            summary,
            [
                [1, 0o040755, 2, 0, 0, 0],
                [2, 0o020600, 1, 0, 5, 1],
                [3, 0o120777, 1, 12, 0, 0],
                [0, 0, 1, 0, 0, 0],
            ]
        );
    }

    #[test]
    fn bad_paths_and_modes_are_refused() {
        let mut w = CpioWriter::new(Vec::new());
        for path in [
            "", "/init", "a/../b", "..", "./init", "a//b", "dir/", "a\0b",
        ] {
            let err = w.file(path, 0o644, b"").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path:?}");
        }
        assert!(w.dir("/dev", 0o755).is_err());
        assert!(w.symlink("../x", "y").is_err());
        assert!(w.symlink("x", "").is_err());
        assert!(w.char_device("dev/../console", 0o600, 5, 1).is_err());
        let err = w.file("init", 0o100755, b"").unwrap_err();
        assert!(err.to_string().contains("permissions"), "{err}");
        // Nothing was written for refused entries.
        assert_eq!(w.finish().unwrap().len(), 512);
        // Dots inside names are fine.
        let mut w = CpioWriter::new(Vec::new());
        w.file("lib/modules/hello.ko", 0o644, b"").unwrap();
        w.file("..hidden", 0o644, b"").unwrap();
    }

    #[test]
    fn reproducible() {
        let build = |w: &mut CpioWriter<Vec<u8>>| {
            w.dir("lkmlab", 0o755)?;
            w.file("lkmlab/plan", 0o644, b"module hello\n")?;
            w.char_device("console", 0o600, 5, 1)
        };
        assert_eq!(archive(build), archive(build));
    }

    fn sample() -> Vec<u8> {
        archive(|w| {
            w.dir("dev", 0o755)?;
            w.char_device("dev/console", 0o600, 5, 1)?;
            w.dir("lkmlab", 0o700)?;
            w.dir("lkmlab/modules", 0o755)?;
            w.file("init", 0o755, b"#!/bin/sh\necho hi\n")?;
            w.file("lkmlab/modules/hello.ko", 0o644, &[0, 1, 2, 3, 4, 255])?;
            w.file("lkmlab/empty", 0o600, b"")?;
            w.symlink("bin", "lkmlab/modules")
        })
    }

    fn cpio(args: &[&str], dir: &Path, archive: &Path) -> std::process::Output {
        Command::new("cpio")
            .args(args)
            .current_dir(dir)
            .stdin(std::fs::File::open(archive).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("GNU cpio must be installed (/usr/bin/cpio)")
    }

    #[test]
    fn gnu_cpio_lists_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("initramfs.cpio");
        std::fs::write(&path, sample()).unwrap();
        let out = cpio(&["-tv", "--quiet"], dir.path(), &path);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        let console = listing
            .lines()
            .find(|l| l.ends_with("dev/console"))
            .unwrap_or_else(|| panic!("no dev/console in\n{listing}"));
        let fields: Vec<&str> = console.split_whitespace().collect();
        assert_eq!(fields[0], "crw-------", "{console}");
        let major = fields
            .iter()
            .position(|f| *f == "5,")
            .unwrap_or_else(|| panic!("{console}"));
        assert_eq!(fields[major + 1], "1", "{console}");
        let bin = listing
            .lines()
            .find(|l| l.contains("bin -> lkmlab/modules"))
            .unwrap();
        assert!(bin.starts_with("lrwxrwxrwx"), "{bin}");
        assert!(listing
            .lines()
            .any(|l| l.starts_with("drwx------") && l.ends_with(" lkmlab")));
        assert_eq!(listing.lines().count(), 8, "{listing}");
    }

    #[test]
    fn gnu_cpio_extracts_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("initramfs.cpio");
        std::fs::write(&path, sample()).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        // Device nodes need privileges: leave them to the listing test.
        let out = cpio(
            &[
                "-id",
                "--quiet",
                "--no-absolute-filenames",
                "--nonmatching",
                "dev/*",
            ],
            &root,
            &path,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        assert_eq!(
            std::fs::read(root.join("init")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            std::fs::read(root.join("lkmlab/modules/hello.ko")).unwrap(),
            [0, 1, 2, 3, 4, 255]
        );
        assert_eq!(std::fs::read(root.join("lkmlab/empty")).unwrap(), b"");
        let mode = |p: &str| {
            std::fs::symlink_metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(mode("init"), 0o100755);
        assert_eq!(mode("lkmlab/modules/hello.ko"), 0o100644);
        assert_eq!(mode("lkmlab/empty"), 0o100600);
        assert_eq!(mode("lkmlab") & 0o777, 0o700);
        assert!(std::fs::symlink_metadata(root.join("dev"))
            .unwrap()
            .is_dir());
        assert_eq!(
            std::fs::read_link(root.join("bin")).unwrap(),
            Path::new("lkmlab/modules")
        );
        assert!(!root.join("dev/console").exists());
    }
}
