//! The shared cache with several lkmlab at once: `lkmlab fetch` run four
//! times in parallel on an empty cache, from a mirror holding a small
//! stand-in for the pinned kernel package (a real .deb, built here with
//! dpkg-deb, pinned by its own size and hashes in a copy of the project).
//! So that the runs really overlap, the test holds the download's and the
//! source's locks while they start: all four must wait (none may finish or
//! write the package), then, released, all must succeed, and the cache must
//! hold one verified copy of the package and one unpacked source, with
//! nothing half-written left over.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A .deb whose data holds `usr/src/linux-source-7.3.tar.xz` with a
/// one-file tree; returns (deb, tarball sha256).
fn stand_in_package(work: &Path, mirror: &Path, name: &str) -> (PathBuf, String) {
    let tree = work.join("tree/linux-source-7.3");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("Makefile"), "VERSION = 7\n").unwrap();
    let pkg = work.join("pkg");
    let src = pkg.join("usr/src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    let tarball = src.join("linux-source-7.3.tar.xz");
    run(Command::new("tar")
        .arg("-cJf")
        .arg(&tarball)
        .arg("-C")
        .arg(work.join("tree"))
        .arg("linux-source-7.3"));
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: linux-source-7.3\nVersion: 7.3.4-1\nArchitecture: all\n\
         Maintainer: lkmlab <lkmlab@example.org>\nDescription: stand-in\n",
    )
    .unwrap();
    std::fs::create_dir_all(mirror).unwrap();
    let deb = mirror.join(name);
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&pkg)
        .arg(&deb));
    (deb, sha256(&tarball))
}

/// The repository's pin with the kernel package replaced by `deb`.
fn project_for(dir: &Path, deb: &Path, tarball_sha256: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pin = std::fs::read_to_string(repo.join("lkmlab.toml")).unwrap();
    let field = |pin: &str, table: &str, key: &str| -> String {
        let start = pin.find(table).unwrap();
        let line = pin[start..]
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap();
        line.to_string()
    };
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    let size = std::fs::metadata(deb).unwrap().len();
    for (table, key, value) in [
        ("[kernel.deb]", "file", format!("\"{name}\"")),
        ("[kernel.deb]", "size", size.to_string()),
        ("[kernel.deb]", "sha256", format!("\"{}\"", sha256(deb))),
        (
            "[kernel.tarball]",
            "sha256",
            format!("\"{tarball_sha256}\""),
        ),
    ] {
        let old = field(&pin, table, key);
        pin = pin.replacen(&old, &format!("{key} = {value}"), 1);
    }
    // x86_64 alone: an arm64 target would have `fetch` download its busybox.
    if let Some(at) = pin.find("\n[[targets]]") {
        pin.truncate(at + 1);
    }
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("lkmlab.toml"), pin).unwrap();
    project
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn parallel_fetches_on_an_empty_cache_leave_one_verified_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    let name = "linux-source-7.3_7.3.4-1_all.deb";
    let (deb, tarball_sha256) = stand_in_package(dir.path(), &mirror, name);
    let project = project_for(dir.path(), &deb, &tarball_sha256);
    // The Rust library source is not what this is about: point at one.
    let lib = dir.path().join("library");
    std::fs::create_dir_all(lib.join("core/src")).unwrap();
    std::fs::write(lib.join("core/src/lib.rs"), "").unwrap();
    let cache = dir.path().join("cache");
    let src_dir = cache
        .join("src")
        .join(format!("linux-{}", &tarball_sha256[..16]));
    let held = [
        lkmlab::lock::exclusive(
            &lkmlab::lock::beside(&cache.join("downloads").join(name)),
            "test",
        )
        .unwrap(),
        lkmlab::lock::exclusive(&lkmlab::lock::beside(&src_dir), "test").unwrap(),
    ];

    let mut runs: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_lkmlab"))
                .arg("--project")
                .arg(&project)
                .arg("fetch")
                .env("LKMLAB_CACHE", &cache)
                .env("LKMLAB_MIRROR", &mirror)
                .env("RUST_LIB_SRC", &lib)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(1));
    for child in &mut runs {
        assert!(
            child.try_wait().unwrap().is_none(),
            "a fetch finished while the cache's locks were held"
        );
    }
    assert!(!cache.join("downloads").join(name).exists());
    drop(held);
    for child in runs {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a parallel fetch failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // One verified copy, beside its lock, and no partial file.
    assert_eq!(
        names(&cache.join("downloads")),
        [name.to_string(), format!("{name}.lock")]
    );
    assert_eq!(sha256(&cache.join("downloads").join(name)), sha256(&deb));
    // One unpacked source, beside its lock, and no half-unpacked directory.
    let sources = names(&cache.join("src"));
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert!(sources[1].ends_with(".lock") && sources[1].starts_with(&sources[0]));
    let tree = cache.join("src").join(&sources[0]);
    assert_eq!(
        std::fs::read_to_string(tree.join("linux-source-7.3/Makefile")).unwrap(),
        "VERSION = 7\n"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join(".lkmlab-unpacked")).unwrap(),
        tarball_sha256
    );
}

/// The pin's `[kernel.deb] urls`, replaced by one that fails at once (nothing
/// listens on port 9), so that nothing here can reach the network.
fn offline(pin: &str) -> String {
    let start = pin.find("[kernel.deb]").unwrap();
    let urls = start + pin[start..].find("urls = [").unwrap();
    let end = urls + pin[urls..].find(']').unwrap() + 1;
    format!(
        "{}urls = [\"http://127.0.0.1:9/kernel.deb\"]{}",
        &pin[..urls],
        &pin[end..]
    )
}

/// A wrong sha256 in the pin (an edit by hand) must not cost the good
/// download in the cache: lkmlab refuses at once, downloads nothing, says the
/// pin may be wrong, and the file is there again for the pin that is right.
#[test]
fn a_wrong_sha256_in_the_pin_keeps_the_cached_download_and_fetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    let name = "linux-source-7.3_7.3.4-1_all.deb";
    let (deb, tarball_sha256) = stand_in_package(dir.path(), &mirror, name);
    let project = project_for(dir.path(), &deb, &tarball_sha256);
    let pin_path = project.join("lkmlab.toml");
    let good_pin = offline(&std::fs::read_to_string(&pin_path).unwrap());
    std::fs::write(&pin_path, &good_pin).unwrap();
    let lib = dir.path().join("library");
    std::fs::create_dir_all(lib.join("core/src")).unwrap();
    std::fs::write(lib.join("core/src/lib.rs"), "").unwrap();
    let cache = dir.path().join("cache");
    let fetch = |mirror: &Path| {
        Command::new(env!("CARGO_BIN_EXE_lkmlab"))
            .arg("--project")
            .arg(&project)
            .arg("fetch")
            .env("LKMLAB_CACHE", &cache)
            .env("LKMLAB_MIRROR", mirror)
            .env("RUST_LIB_SRC", &lib)
            .output()
            .unwrap()
    };
    // The good download, from the mirror; then no mirror, and no unpacked
    // source either, so that the next fetch needs the package.
    assert!(fetch(&mirror).status.success());
    std::fs::remove_dir_all(cache.join("src")).unwrap();
    let cached = cache.join("downloads").join(name);
    let good = sha256(&cached);

    let wrong = good_pin.replacen(&good, &"0".repeat(64), 1);
    assert_ne!(wrong, good_pin);
    std::fs::write(&pin_path, wrong).unwrap();
    let out = fetch(Path::new(""));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "the cache's copy of {name} is not the file the pin describes"
        )) && err.contains(&format!("got      {good}"))
            && err.contains("the pin itself may be wrong"),
        "{err}"
    );
    assert!(!err.contains("downloading"), "nothing is downloaded: {err}");
    assert_eq!(sha256(&cached), good, "the cached download is kept");

    // The pin put right finds it again, offline.
    std::fs::write(&pin_path, &good_pin).unwrap();
    let out = fetch(Path::new(""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
