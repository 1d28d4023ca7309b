//! Just enough of the `ar` archive format to read a Debian package.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"!<arch>\n";
const HEADER_LEN: usize = 60;

/// Copy the first member whose name starts with `prefix` into `dir`
/// (under the member's own name) and return its path.
pub fn extract_member_prefix(archive: &Path, prefix: &str, dir: &Path) -> Result<PathBuf> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut r = BufReader::new(file);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .context("file too short for an ar archive")?;
    if &magic != MAGIC {
        bail!("not an ar archive (bad magic)");
    }
    loop {
        let mut header = [0u8; HEADER_LEN];
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                bail!("no member named {prefix}* in the archive")
            }
            Err(e) => return Err(e.into()),
        }
        if &header[58..60] != b"`\n" {
            bail!("corrupt ar member header");
        }
        let name = String::from_utf8_lossy(&header[0..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: u64 = String::from_utf8_lossy(&header[48..58])
            .trim()
            .parse()
            .context("corrupt ar member size")?;
        if name.starts_with(prefix) {
            if name.contains('/') || name.starts_with('.') {
                bail!("refusing ar member name {name:?}");
            }
            let out_path = dir.join(&name);
            let mut out = File::create(&out_path)
                .with_context(|| format!("creating {}", out_path.display()))?;
            let copied = io::copy(&mut (&mut r).take(size), &mut out)?;
            if copied != size {
                bail!("archive ends inside member {name}");
            }
            return Ok(out_path);
        }
        // Members are padded to an even offset.
        r.seek(SeekFrom::Current((size + size % 2) as i64))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            0,
            0,
            0,
            "100644",
            data.len()
        )
        .into_bytes();
        h.extend_from_slice(data);
        if data.len() % 2 == 1 {
            h.push(b'\n');
        }
        h
    }

    #[test]
    fn finds_the_data_member_after_odd_sized_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut ar = MAGIC.to_vec();
        ar.extend(member("debian-binary", b"2.0\n"));
        ar.extend(member("control.tar.xz", b"odd"));
        ar.extend(member("data.tar.xz", b"payload"));
        let path = dir.path().join("x.deb");
        std::fs::write(&path, ar).unwrap();
        let out = extract_member_prefix(&path, "data.tar", dir.path()).unwrap();
        assert_eq!(out.file_name().unwrap(), "data.tar.xz");
        assert_eq!(std::fs::read(out).unwrap(), b"payload");
    }

    #[test]
    fn a_non_archive_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.deb");
        std::fs::write(&path, b"hello world, not an archive").unwrap();
        let err = extract_member_prefix(&path, "data.tar", dir.path()).unwrap_err();
        assert!(err.to_string().contains("not an ar archive"));
    }
}
