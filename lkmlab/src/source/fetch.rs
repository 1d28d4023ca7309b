//! Getting pinned files: mirror directory first, then the pinned URLs; every
//! file is sha256-verified before anything uses it.

use crate::config::paths::Paths;
use crate::config::pin::{self, PinnedFile};
use crate::process::run_quiet;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is wrong with a file given for a sha256: `None` when it has it,
/// else both hashes.
fn sha256_mismatch(path: &Path, want: &pin::Sha256) -> Result<Option<String>> {
    let got = sha256_file(path)?;
    Ok((*want != *got).then(|| {
        format!(
            "sha256 mismatch for {}\n  expected {want}\n  got      {got}",
            path.display()
        )
    }))
}

/// What is wrong with a file given for `pinned`: `None` when it is the
/// pinned one; else its size (which a truncated download gets wrong at
/// once, before any hashing), or both hashes.
fn pinned_mismatch(path: &Path, pinned: &PinnedFile) -> Result<Option<String>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size != pinned.size {
        return Ok(Some(format!(
            "{} is {size} bytes; the pin says {} bytes",
            path.display(),
            pinned.size
        )));
    }
    sha256_mismatch(path, &pinned.sha256)
}

/// What follows a refused file: either the file or the pin is wrong.
const REFUSED: &str = "The file is not the pinned one: it was refused and nothing was \
                       unpacked. Delete it (or fix the mirror) and run `lkmlab fetch` again; \
                       if it is the right file, the pin itself is wrong: check its sha256 \
                       (and size) in lkmlab.toml.";

/// Refuse a file whose sha256 is not the pinned one, naming both hashes.
pub fn verify(path: &Path, want: &pin::Sha256) -> Result<()> {
    match sha256_mismatch(path, want)? {
        Some(why) => bail!("{why}\n{REFUSED}"),
        None => Ok(()),
    }
}

/// Refuse a file that is not the pinned one: its size, then its sha256.
pub fn verify_pinned(path: &Path, pinned: &PinnedFile) -> Result<()> {
    match pinned_mismatch(path, pinned)? {
        Some(why) => bail!("{why}\n{REFUSED}"),
        None => Ok(()),
    }
}

/// Take the cache's copy of `pinned`, or refuse it, leaving it in place.
///
/// The cache holds only files that were verified against a pin when they
/// were fetched, under the name the pin gives them, so a copy that does
/// not match the current pin is another pin's file: another project's, or
/// this one's before an edit. It is not removed nor replaced (that pin may
/// be back), and nothing is fetched in its place: the likeliest cause is a
/// wrong size or sha256 in the pin, and downloading the file again would
/// only be refused in the same way.
fn cached(dest: &Path, pinned: &PinnedFile) -> Result<PathBuf> {
    match pinned_mismatch(dest, pinned)? {
        None => Ok(dest.to_path_buf()),
        Some(why) => bail!(
            "the cache's copy of {file} is not the file the pin describes: {why}\n\
             lkmlab left it in place and fetched nothing. lkmlab caches only files it \
             verified, so this is the file an earlier pin named (another project's, or this \
             one's before an edit), and the pin itself may be wrong: check the size and sha256 \
             that lkmlab.toml gives for {file} (a hash edited by hand is the likeliest cause). \
             If the pin is right, move {dest} away (or delete it, if no other project pins \
             it) and run `lkmlab fetch` again.",
            file = pinned.file,
            dest = dest.display()
        ),
    }
}

/// Where a pinned file comes from.
pub struct Fetcher<'a> {
    pub paths: &'a Paths,
    pub mirror: Option<PathBuf>,
}

impl Fetcher<'_> {
    /// A verified local copy of `pinned`, fetched if the cache lacks it. One
    /// lkmlab fetches a file at a time (others wait, then find it there);
    /// it is written to a new file of a random name in the cache and renamed
    /// into place once verified, so the cache never holds half a file, nor
    /// one that no pin asked for. A cached file of that name that does not
    /// match is refused and left alone (see [`cached`]).
    pub fn get(&self, pinned: &PinnedFile) -> Result<PathBuf> {
        let dest = self.paths.downloads().join(&pinned.file);
        if dest.is_file() {
            return cached(&dest, pinned);
        }
        let _lock = crate::lock::exclusive(
            &crate::lock::beside(&dest),
            &format!("fetching {}", pinned.file),
        )?;
        // Another lkmlab may have fetched it while this one waited.
        if dest.is_file() {
            return cached(&dest, pinned);
        }
        let downloads = self.paths.downloads();
        let partial = tempfile::Builder::new()
            .prefix(&format!(".{}.", pinned.file))
            .suffix(".partial")
            .tempfile_in(&downloads)
            .with_context(|| format!("creating a file in {}", downloads.display()))?;

        if let Some(mirror) = &self.mirror {
            let candidate = mirror.join(&pinned.file);
            if candidate.is_file() {
                crate::status!("{} from mirror {}", pinned.file, mirror.display());
                // Verify the mirror's copy before taking it into the cache.
                verify_pinned(&candidate, pinned)?;
                std::fs::copy(&candidate, partial.path())
                    .with_context(|| format!("copying {}", candidate.display()))?;
                return finish(partial, &dest, pinned);
            }
            crate::notice!(
                "mirror {} has no {}; trying the pinned URLs",
                mirror.display(),
                pinned.file
            );
        }

        let mut errors = Vec::new();
        for url in &pinned.urls {
            crate::status!("downloading {url}");
            match download(url, partial.path()) {
                Ok(()) => return finish(partial, &dest, pinned),
                Err(e) => errors.push(format!("  {url}: {e:#}")),
            }
        }
        bail!(
            "could not fetch {} from any source:\n{}\nPut the file (sha256 {}) into a directory \
             and point LKMLAB_MIRROR (or --mirror) at it.",
            pinned.file,
            errors.join("\n"),
            pinned.sha256
        )
    }
}

/// Verify the fetched file and move it into place; a file that does not
/// match is removed with its temporary name.
fn finish(partial: tempfile::NamedTempFile, dest: &Path, pinned: &PinnedFile) -> Result<PathBuf> {
    verify_pinned(partial.path(), pinned).with_context(|| format!("fetching {}", pinned.file))?;
    crate::util::persist(partial, dest)?;
    Ok(dest.to_path_buf())
}

fn download(url: &str, to: &Path) -> Result<()> {
    let status = crate::process::status_of(
        Command::new("curl")
            .args(["--fail", "--location", "--silent", "--show-error"])
            .args(["--retry", "2", "--connect-timeout", "20", "--output"])
            .arg(to)
            .arg(url),
        "curl",
    )?;
    if !status.success() {
        bail!("curl failed ({status})");
    }
    Ok(())
}

/// Extract one member of a Debian package's data archive to `dest`.
/// A .deb is an `ar` archive whose `data.tar.*` member holds the files.
pub fn extract_from_deb(deb: &Path, member: &str, dest_dir: &Path) -> Result<()> {
    let data = crate::source::ar::extract_member_prefix(deb, "data.tar", dest_dir)
        .with_context(|| format!("reading {} as a Debian package", deb.display()))?;
    let result = run_quiet(
        Command::new("tar")
            .arg("-xf")
            .arg(&data)
            .arg("-C")
            .arg(dest_dir)
            .arg(format!("./{member}")),
        "tar",
    );
    let _ = std::fs::remove_file(&data);
    result
        .map(drop)
        .with_context(|| format!("extracting {member} from {}", deb.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn pinned(sha256: &str) -> PinnedFile {
        PinnedFile {
            file: "input.deb".into(),
            size: 5,
            sha256: sha256.to_string().try_into().unwrap(),
            // Nothing listens on port 9 (discard): a download fails at once.
            urls: vec!["http://127.0.0.1:9/input.deb".into()],
        }
    }

    #[test]
    fn a_file_is_hashed_as_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        assert_eq!(sha256_file(&f).unwrap(), HELLO_SHA256);
    }

    #[test]
    fn a_mismatch_is_refused_with_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hellO").unwrap();
        let err = verify(&f, &HELLO_SHA256.to_string().try_into().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("expected {HELLO_SHA256}")), "{err}");
        assert!(err.contains("got      "), "{err}");
        assert!(err.contains("nothing was unpacked"), "{err}");
    }

    #[test]
    fn a_file_of_another_size_is_refused_before_hashing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello!").unwrap();
        let err = verify_pinned(&f, &pinned(HELLO_SHA256))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is 6 bytes; the pin says 5 bytes"), "{err}");
        std::fs::write(&f, b"hello").unwrap();
        verify_pinned(&f, &pinned(HELLO_SHA256)).unwrap();
    }

    #[test]
    fn the_mirror_is_used_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        std::fs::create_dir(&mirror).unwrap();
        std::fs::write(mirror.join("input.deb"), b"hello").unwrap();
        let paths = Paths {
            cache: dir.path().join("cache"),
        };
        let fetcher = Fetcher {
            paths: &paths,
            mirror: Some(mirror.clone()),
        };
        let got = fetcher.get(&pinned(HELLO_SHA256)).unwrap();
        assert_eq!(std::fs::read(got).unwrap(), b"hello");

        // A pin that names another file (a wrong sha256) does not remove
        // the cached copy, which another pin may want, nor fetch anything:
        // the refusal says the pin may be wrong.
        std::fs::write(mirror.join("input.deb"), b"evil!").unwrap();
        let other = "0".repeat(64);
        let err = format!("{:#}", fetcher.get(&pinned(&other)).unwrap_err());
        assert!(
            err.contains("the cache's copy of input.deb is not the file the pin describes")
                && err.contains("the pin itself may be wrong")
                && err.contains("left it in place and fetched nothing"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(paths.downloads().join("input.deb")).unwrap(),
            b"hello"
        );
        // The pin it matches still has it.
        assert_eq!(
            std::fs::read(fetcher.get(&pinned(HELLO_SHA256)).unwrap()).unwrap(),
            b"hello"
        );

        // Without a cached copy, a corrupted mirror file is refused and
        // nothing enters the cache.
        std::fs::remove_file(paths.downloads().join("input.deb")).unwrap();
        let err = format!("{:#}", fetcher.get(&pinned(&other)).unwrap_err());
        assert!(
            err.contains("sha256 mismatch") && err.contains("the pin itself is wrong"),
            "{err}"
        );
        // Only the file's lock stays, no partial copy.
        let cached: Vec<_> = std::fs::read_dir(paths.downloads())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            cached,
            ["input.deb.lock"],
            "nothing else may stay in the cache"
        );
    }
}
