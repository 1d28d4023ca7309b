//! `lkmlab init`: a new module project, from the template that is also the
//! flake's `templates.default` (`templates/default/` in lkmlab's repository,
//! carried inside lkmlab). The template's module is called `mymodule`
//! (`MyModule` as a Rust type); `--name` renames both, in file names and
//! contents. `--lkmlab-url` names where lkmlab's source is, for the
//! flake's `lkmlab` input and the CI workflow ([`LkmlabUrl`]).
//! `--module-dir` starts from a module that exists instead: only the pin
//! and its fragments are written ([`init_existing`]). Nothing that exists
//! is overwritten.

use anyhow::{bail, Context, Result};
use include_dir::{include_dir, Dir, DirEntry};
use std::path::{Path, PathBuf};

/// The template, as `lkmlab init` and `nix flake init -t lkmlab` both give it.
static TEMPLATE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../templates/default");

/// The module name the template uses.
pub const TEMPLATE_NAME: &str = "mymodule";
/// The same name as a Rust type in the template.
const TEMPLATE_TYPE: &str = "MyModule";

/// lkmlab's source repository as the template names it: the flake's
/// `inputs.lkmlab.url` ...
const TEMPLATE_FLAKE_URL: &str = "github:lkmlab/lkmlab";
/// ... and the git repository its CI workflow clones lkmlab from (and its
/// README links to).
const TEMPLATE_GIT_URL: &str = "https://github.com/lkmlab/lkmlab";

/// Where lkmlab's source is, as `lkmlab init --lkmlab-url` gives it: the
/// https address of a git repository, which the project's flake takes as
/// its `lkmlab` input and its CI workflow clones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LkmlabUrl {
    /// What `git clone` takes: `https://HOST/PATH`.
    pub git: String,
    /// The flake input: `github:OWNER/REPO` on github.com, else
    /// `git+https://HOST/PATH`.
    pub flake: String,
}

impl LkmlabUrl {
    /// Checks `url` before anything is written: an `https://` address with
    /// a host and a path, of characters a Nix string, YAML and a shell
    /// word take as they are (no query, fragment, quote or space).
    pub fn parse(url: &str) -> Result<Self> {
        let how = "give the https address of the git repository lkmlab's source is in, as \
                   `git clone` takes it (e.g. --lkmlab-url https://github.com/you/lkmlab): the \
                   project's flake.nix takes it as its lkmlab input, and its CI workflow clones \
                   lkmlab from it";
        let Some(rest) = url.strip_prefix("https://") else {
            let local =
                if url.starts_with("git+file:") || url.starts_with("file:") || url.starts_with('/')
                {
                    " (a checkout on this machine cannot be reached from CI: init without \
                 --lkmlab-url, then set flake.nix's input to git+file:///… by hand)"
                } else {
                    ""
                };
            bail!("--lkmlab-url {url:?} is not an https:// URL{local}; {how}");
        };
        if let Some(bad) = rest
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~/:@%+".contains(*c)))
        {
            bail!(
                "--lkmlab-url {url:?} has {bad:?}, which lkmlab init does not write into \
                   flake.nix and the workflow (no query, fragment, quote or space); {how}"
            );
        }
        let rest = rest.trim_end_matches('/');
        let Some((host, path)) = rest
            .split_once('/')
            .filter(|(h, p)| !h.is_empty() && !p.is_empty())
        else {
            bail!("--lkmlab-url {url:?} names no repository (https://HOST/PATH); {how}");
        };
        let git = format!("https://{host}/{path}");
        let segments: Vec<&str> = path.trim_end_matches(".git").split('/').collect();
        let flake = match segments.as_slice() {
            [owner, repo]
                if host.eq_ignore_ascii_case("github.com")
                    && !owner.is_empty()
                    && !repo.is_empty() =>
            {
                format!("github:{owner}/{repo}")
            }
            _ => format!("git+{git}"),
        };
        Ok(LkmlabUrl { git, flake })
    }

    /// The template's own: lkmlab's repository.
    pub fn template() -> Self {
        LkmlabUrl {
            git: TEMPLATE_GIT_URL.to_string(),
            flake: TEMPLATE_FLAKE_URL.to_string(),
        }
    }

    /// `text` (a template file's) with the template's addresses of lkmlab
    /// replaced by these.
    fn apply(&self, text: &str) -> String {
        text.replace(TEMPLATE_GIT_URL, &self.git)
            .replace(TEMPLATE_FLAKE_URL, &self.flake)
    }
}

/// The kernel's limit for a module's name: `MODULE_NAME_LEN` (56, in
/// `include/linux/moduleparam.h`) bytes with the final NUL.
const MAX_NAME: usize = 55;

/// Rust's keywords, strict and reserved, in every edition: the module's
/// name is its crate's (the `.rs` file's) and its KUnit suite's
/// (`#[kunit_tests(NAME)]`), and neither can be one.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// The crates a module is compiled with or against, which its own crate
/// cannot share a name with: Rust's own (`core`, `alloc`, `std`,
/// `proc_macro`) and the kernel's (its `rust/` directory).
const RESERVED_CRATES: &[&str] = &[
    "core",
    "alloc",
    "std",
    "proc_macro",
    "kernel",
    "macros",
    "bindings",
    "uapi",
    "ffi",
    "build_error",
    "compiler_builtins",
    "pin_init",
    "pin_init_internal",
    "zerocopy",
    "zerocopy_derive",
    "proc_macro2",
    "quote",
    "syn",
];

/// The names the template's module code uses unqualified, which its own
/// type ([`type_name`] of the module's name) must not hide.
const TEMPLATE_USES: &[&str] = &["Result", "ThisModule", "Drop"];

/// A valid module name: it is the `.ko`'s name, the Kbuild object, the
/// Rust crate, the `module!` name and the KUnit suite's, and it names the
/// module's type, so it must be a C identifier and a Rust one, within the
/// kernel's length, and no crate the module is built with. The error says
/// which rule it breaks, and a name that keeps it when there is one.
pub fn check_name(name: &str) -> Result<()> {
    let fix = "give another with --name NAME";
    // A name that keeps every rule, when the one given breaks an easy one.
    let instead = |candidate: &str| match check_name(candidate) {
        Ok(()) => format!("--name {candidate}"),
        Err(_) => fix.to_string(),
    };
    if name.is_empty() {
        bail!("the module name is empty; {fix}");
    }
    if name.len() > MAX_NAME {
        bail!(
            "{name:?} is {} characters long: a kernel module's name has at most {MAX_NAME} \
             (the kernel's MODULE_NAME_LEN, 56, counts the final NUL); {fix}",
            name.len()
        );
    }
    let lowered = name.to_ascii_lowercase().replace('-', "_");
    if name.contains('-') {
        bail!(
            "{name:?} has a `-`: the module's name is its Rust crate's, which cannot have \
             one (and Kbuild would name the module with `_` anyway); use `_`: {}",
            instead(&lowered)
        );
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        bail!(
            "{name:?} has capital letters: module names are lowercase; {}",
            instead(&lowered)
        );
    }
    let identifier = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !identifier {
        bail!(
            "{name:?} cannot name a kernel module: use a lowercase letter, then lowercase \
             letters, digits or `_`; {fix}"
        );
    }
    let other = instead(&format!("{name}_mod"));
    if RUST_KEYWORDS.contains(&name) {
        bail!(
            "{name:?} is a Rust keyword, and the module's name is its Rust crate's and its \
             KUnit suite's: the module would not build; choose another, such as {other}"
        );
    }
    if RESERVED_CRATES.contains(&name) {
        bail!(
            "{name:?} is the name of one of Rust's or the kernel's crates ({}), which the \
             module's own crate cannot share: the module would not build; choose another, such \
             as {other}",
            RESERVED_CRATES.join(", ")
        );
    }
    let ty = type_name(name);
    if TEMPLATE_USES.contains(&ty.as_str()) {
        bail!(
            "{name:?} would name the module's type `{ty}`, which hides the `{ty}` its code \
             uses: the module would not build; choose another, such as {other}"
        );
    }
    Ok(())
}

/// The module name `dir` suggests: its last component, lowercased, with `-`
/// and `.` as `_`.
pub fn name_from_dir(dir: &Path) -> Option<String> {
    let base = dir.file_name()?.to_string_lossy().to_lowercase();
    Some(
        base.chars()
            .map(|c| if c == '-' || c == '.' { '_' } else { c })
            .collect(),
    )
}

/// The module name for a project in `dir` (which need not exist yet): its
/// last component once `.` and `..` are resolved, as [`name_from_dir`],
/// refused as [`check_name`] refuses it.
pub fn default_name(dir: &Path) -> Result<String> {
    let resolved = dir
        .canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .with_context(|| format!("resolving {}", dir.display()))?;
    let name = name_from_dir(&resolved)
        .with_context(|| format!("{} has no name to take", resolved.display()))?;
    check_name(&name).with_context(|| {
        format!(
            "{} does not make a module name ({name:?}): give one with --name NAME",
            dir.display()
        )
    })?;
    Ok(name)
}

/// `mymodule` → `MyModule`-style: each `_`-separated part capitalised.
fn type_name(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Every file of the template: (path relative to the project, contents).
fn template_files() -> Vec<(PathBuf, &'static [u8])> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<(PathBuf, &'static [u8])>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(d) => walk(d, out),
                DirEntry::File(f) => out.push((f.path().to_path_buf(), f.contents())),
            }
        }
    }
    let mut out = Vec::new();
    walk(&TEMPLATE, &mut out);
    out.sort();
    out
}

/// The project's files for module `name`: the template's, renamed, with
/// lkmlab's source at `lkmlab`.
pub fn project_files(name: &str, lkmlab: &LkmlabUrl) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    check_name(name)?;
    // The template's own name keeps its own type name (`MyModule`, which
    // `type_name` would spell `Mymodule`).
    let ty = if name == TEMPLATE_NAME {
        TEMPLATE_TYPE.to_string()
    } else {
        type_name(name)
    };
    let rename = |text: &str| {
        text.replace(TEMPLATE_TYPE, &ty)
            .replace(TEMPLATE_NAME, name)
    };
    template_files()
        .into_iter()
        .map(|(path, bytes)| {
            let path = PathBuf::from(rename(&path.to_string_lossy()));
            let text = std::str::from_utf8(bytes)
                .with_context(|| format!("the template's {} is not text", path.display()))?;
            // After the rename: the URL is the user's, `mymodule` or not.
            Ok((path, lkmlab.apply(&rename(text)).into_bytes()))
        })
        .collect()
}

/// The template's pin, whose `[module] dir` names the module directory.
const PIN: &str = "lkmlab.toml";
/// The template's Kconfig fragments, which the pin names.
const FRAGMENTS: &str = "kernel-config";
/// The template pin's `[module] dir` line.
const MODULE_DIR_LINE: &str = "dir = \"module\"";

/// The files of a project for a module that exists in `module_dir` (a
/// path relative to the project): the template's pin, with `[module] dir`
/// set to it, and the fragments the pin names; no module, no guest test.
pub fn pin_files(module_dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let dir = module_dir.to_str().with_context(|| {
        format!(
            "{} is not UTF-8, and lkmlab.toml cannot name it",
            module_dir.display()
        )
    })?;
    let quoted = toml::Value::String(dir.to_string()).to_string();
    template_files()
        .into_iter()
        .filter(|(path, _)| path == Path::new(PIN) || path.starts_with(FRAGMENTS))
        .map(|(path, bytes)| {
            if path != Path::new(PIN) {
                return Ok((path, bytes.to_vec()));
            }
            let text = std::str::from_utf8(bytes).context("the template's lkmlab.toml")?;
            if text.matches(MODULE_DIR_LINE).count() != 1 {
                bail!("the template's lkmlab.toml has no single `{MODULE_DIR_LINE}` line");
            }
            let pin = text.replace(MODULE_DIR_LINE, &format!("dir = {quoted}"));
            Ok((path, pin.into_bytes()))
        })
        .collect()
}

/// Write the pin and fragments of a project in `dir` for the module in
/// `module_dir` (as given: relative to the current directory), which must
/// be a directory Kbuild can build in, inside `dir`. Refuses, writing
/// nothing, if any of the files exists. Returns the files written and the
/// module directory as `[module] dir` names it.
pub fn init_existing(dir: &Path, module_dir: &Path) -> Result<(Vec<PathBuf>, PathBuf)> {
    crate::build::module_dir::check_buildable(module_dir, "--module-dir")?;
    let root = dir.canonicalize().with_context(|| {
        format!(
            "the project directory {}: with --module-dir it must exist, holding the module",
            dir.display()
        )
    })?;
    let module = module_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", module_dir.display()))?;
    let Ok(relative) = module.strip_prefix(&root) else {
        bail!(
            "--module-dir {} is not inside the project directory {}: lkmlab.toml names the \
             module directory relative to the project; make the project a directory above it \
             (lkmlab init DIR --module-dir {})",
            module_dir.display(),
            dir.display(),
            module_dir.display()
        );
    };
    let relative = if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative.to_path_buf()
    };
    let written = write_files(dir, pin_files(&relative)?)?;
    Ok((written, relative))
}

/// Write a new project for module `name` into `dir` (created if needed),
/// with lkmlab's source at `lkmlab`; refuses, writing nothing, if any of
/// its files exists. Returns the files.
pub fn init(dir: &Path, name: &str, lkmlab: &LkmlabUrl) -> Result<Vec<PathBuf>> {
    write_files(dir, project_files(name, lkmlab)?)
}

/// Write `files` (paths relative to `dir`, created if needed); refuses,
/// writing nothing, if any of them exists. Returns the files written.
fn write_files(dir: &Path, files: Vec<(PathBuf, Vec<u8>)>) -> Result<Vec<PathBuf>> {
    let existing: Vec<String> = files
        .iter()
        .filter(|(rel, _)| dir.join(rel).symlink_metadata().is_ok())
        .map(|(rel, _)| rel.display().to_string())
        .collect();
    if !existing.is_empty() {
        bail!(
            "{} already has {}; lkmlab init overwrites nothing: choose an empty directory \
             (or move those files away)",
            dir.display(),
            existing.join(", ")
        );
    }
    let mut written = Vec::new();
    for (rel, contents) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        // create_new: a file that appeared since the check is not replaced.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        std::io::Write::write_all(&mut file, &contents)
            .with_context(|| format!("writing {}", path.display()))?;
        if rel.extension().is_some_and(|e| e == "sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", path.display()))?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Every file below `dir`, relative, sorted.
    fn tree(dir: &Path) -> Vec<PathBuf> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().to_path_buf());
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    /// One source for both: what `lkmlab init` writes for the template's
    /// own name is, file for file and byte for byte, the flake's
    /// `templates.default` directory, and nothing more.
    #[test]
    fn init_writes_exactly_the_flake_template() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), TEMPLATE_NAME, &LkmlabUrl::template()).unwrap();
        let template = repo().join("templates/default");
        assert_eq!(tree(dir.path()), tree(&template));
        let executable = |path: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path).unwrap().permissions().mode() & 0o111 != 0
        };
        for rel in tree(&template) {
            assert_eq!(
                std::fs::read_to_string(dir.path().join(&rel)).unwrap(),
                std::fs::read_to_string(template.join(&rel)).unwrap(),
                "{}",
                rel.display()
            );
            // `nix flake init` copies the mode; `lkmlab init` must match it
            // (a guest test that is not executable is refused).
            assert_eq!(
                executable(&dir.path().join(&rel)),
                executable(&template.join(&rel)),
                "the mode of {}",
                rel.display()
            );
        }
    }

    /// The template's pin is lkmlab's own: the same kernel, fragments,
    /// toolchain and VM (only the tutorial's no-unload flavor and the
    /// example modules' suites are left out), and the same fragment files.
    #[test]
    fn the_template_pins_what_lkmlab_pins() {
        let read = |p: PathBuf| crate::config::pin::parse_pin(&std::fs::read_to_string(p).unwrap());
        let ours = read(repo().join("lkmlab.toml")).unwrap();
        let theirs = read(repo().join("templates/default/lkmlab.toml")).unwrap();
        // The pin's types compare by what they print.
        let same = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
            assert_eq!(format!("{a:?}"), format!("{b:?}"))
        };
        same(&ours.kernel, &theirs.kernel);
        same(&ours.toolchain, &theirs.toolchain);
        same(&ours.vm, &theirs.vm);
        assert_eq!(ours.module.dir, theirs.module.dir);
        assert!(theirs.module.example_suites.is_empty());
        assert_eq!(ours.kconfig.base, theirs.kconfig.base);
        assert_eq!(ours.kconfig.fragments, theirs.kconfig.fragments);
        let mut flavors: Vec<&String> = theirs.kconfig.flavors.keys().collect();
        flavors.sort();
        assert_eq!(flavors, ["debug", "default"]);
        for (name, flavor) in &theirs.kconfig.flavors {
            let own = &ours.kconfig.flavors[name];
            assert_eq!(own.fragments, flavor.fragments, "{name}");
            assert_eq!(own.compiler, flavor.compiler, "{name}");
        }
        for rel in tree(&repo().join("templates/default/kernel-config")) {
            assert_eq!(
                std::fs::read(repo().join("kernel-config").join(&rel)).unwrap(),
                std::fs::read(repo().join("templates/default/kernel-config").join(&rel)).unwrap(),
                "templates/default/kernel-config/{0} is not lkmlab's own: cp kernel-config/{0} \
                 templates/default/kernel-config/",
                rel.display()
            );
        }
    }

    #[test]
    fn a_name_renames_files_contents_and_the_type() {
        let files = project_files("rng_driver", &LkmlabUrl::template()).unwrap();
        let (_, rs) = files
            .iter()
            .find(|(p, _)| p == Path::new("module/rng_driver.rs"))
            .expect("module/rng_driver.rs");
        let rs = String::from_utf8_lossy(rs);
        assert!(rs.contains("name: \"rng_driver\""), "{rs}");
        assert!(rs.contains("struct RngDriver {"), "{rs}");
        assert!(rs.contains("#[kunit_tests(rng_driver)]"), "{rs}");
        assert!(!rs.contains("mymodule") && !rs.contains("MyModule"));
        let kbuild = files
            .iter()
            .find(|(p, _)| p == Path::new("module/Kbuild"))
            .unwrap();
        assert!(String::from_utf8_lossy(&kbuild.1).contains("obj-m := rng_driver.o"));
        assert!(files
            .iter()
            .any(|(p, _)| p == Path::new("module/guest-tests/rng_driver-loads.sh")));
    }

    /// The template names lkmlab's repository where `--lkmlab-url` replaces
    /// it: once in flake.nix's input, once in the workflow's LKMLAB_GIT.
    #[test]
    fn the_template_names_lkmlab_where_the_url_goes() {
        let text = |rel: &str| {
            std::fs::read_to_string(repo().join("templates/default").join(rel)).unwrap()
        };
        assert_eq!(
            text("flake.nix")
                .matches(&format!("inputs.lkmlab.url = \"{TEMPLATE_FLAKE_URL}\";"))
                .count(),
            1
        );
        assert_eq!(
            text(".github/workflows/lkmlab.yml")
                .matches(&format!("LKMLAB_GIT: {TEMPLATE_GIT_URL}\n"))
                .count(),
            1
        );
    }

    #[test]
    fn lkmlab_url_sets_the_flake_input_and_the_workflow() {
        for (url, git, flake) in [
            (
                "https://github.com/me/lkmlab",
                "https://github.com/me/lkmlab",
                "github:me/lkmlab",
            ),
            (
                "https://github.com/me/lkmlab.git/",
                "https://github.com/me/lkmlab.git",
                "github:me/lkmlab",
            ),
            (
                "https://gitlab.example/a/b/lkmlab",
                "https://gitlab.example/a/b/lkmlab",
                "git+https://gitlab.example/a/b/lkmlab",
            ),
        ] {
            let parsed = LkmlabUrl::parse(url).unwrap();
            assert_eq!(
                (parsed.git.as_str(), parsed.flake.as_str()),
                (git, flake),
                "{url}"
            );
        }
        let url = LkmlabUrl::parse("https://git.example/mymodule/lkmlab").unwrap();
        let files = project_files("rng", &url).unwrap();
        let file = |rel: &str| {
            let (_, bytes) = files.iter().find(|(p, _)| p == Path::new(rel)).unwrap();
            String::from_utf8(bytes.clone()).unwrap()
        };
        assert!(file("flake.nix")
            .contains("inputs.lkmlab.url = \"git+https://git.example/mymodule/lkmlab\";"));
        assert!(file(".github/workflows/lkmlab.yml")
            .contains("LKMLAB_GIT: https://git.example/mymodule/lkmlab\n"));
        for (path, bytes) in &files {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(TEMPLATE_FLAKE_URL) && !text.contains(TEMPLATE_GIT_URL),
                "{} still names the template's lkmlab",
                path.display()
            );
        }
        // The template's own address gives the template's files.
        assert_eq!(
            LkmlabUrl::parse(TEMPLATE_GIT_URL).unwrap(),
            LkmlabUrl::template()
        );
    }

    #[test]
    fn lkmlab_urls_that_cannot_be_written_are_refused() {
        for (bad, why) in [
            ("github:me/lkmlab", "is not an https:// URL"),
            ("git+file:///home/me/lkmlab", "cannot be reached from CI"),
            ("/home/me/lkmlab", "cannot be reached from CI"),
            ("http://example.org/lkmlab", "is not an https:// URL"),
            ("https://example.org/lk\"mlab", "has '\"'"),
            ("https://example.org/lkmlab?ref=x", "has '?'"),
            ("https://example.org/lk mlab", "has ' '"),
            ("https://example.org/", "names no repository"),
            ("https://", "names no repository"),
        ] {
            let err = LkmlabUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                err.contains("e.g. --lkmlab-url https://github.com/you/lkmlab"),
                "{err}"
            );
        }
    }

    #[test]
    fn names_that_cannot_name_a_module_are_refused() {
        for bad in ["", "9lives", "a b", "_x", "é"] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(
                err.contains("cannot name a kernel module") || err.contains("is empty"),
                "{bad}: {err}"
            );
        }
        assert!(check_name(&"x".repeat(55)).is_ok());
        let err = check_name(&"x".repeat(56)).unwrap_err().to_string();
        assert!(err.contains("is 56 characters long") && err.contains("MODULE_NAME_LEN"));
        assert_eq!(
            check_name("my-driver").unwrap_err().to_string(),
            "\"my-driver\" has a `-`: the module's name is its Rust crate's, which cannot have \
             one (and Kbuild would name the module with `_` anyway); use `_`: --name my_driver"
        );
        let err = check_name("My").unwrap_err().to_string();
        assert!(
            err.ends_with("module names are lowercase; --name my"),
            "{err}"
        );
        // No suggestion that would be refused in turn.
        let err = check_name("9-Lives").unwrap_err().to_string();
        assert!(err.ends_with("give another with --name NAME"), "{err}");
    }

    /// Each of these makes a project that does not build: a keyword or a
    /// crate's name as the module's crate and KUnit suite, or a type that
    /// hides one the module's code uses.
    #[test]
    fn names_that_would_not_build_are_refused_with_another_suggested() {
        for keyword in ["fn", "self", "match", "type", "async", "gen", "yield"] {
            let err = check_name(keyword).unwrap_err().to_string();
            assert!(err.contains("is a Rust keyword"), "{keyword}: {err}");
            assert!(err.ends_with(&format!("--name {keyword}_mod")), "{err}");
        }
        for krate in ["kernel", "core", "std", "alloc", "macros", "pin_init"] {
            let err = check_name(krate).unwrap_err().to_string();
            assert!(err.contains("the kernel's crates"), "{krate}: {err}");
        }
        for (name, ty) in [
            ("result", "Result"),
            ("this_module", "ThisModule"),
            ("drop", "Drop"),
        ] {
            let err = check_name(name).unwrap_err().to_string();
            assert!(
                err.contains(&format!("module's type `{ty}`")),
                "{name}: {err}"
            );
        }
        // What the template uses unqualified is there to be hidden.
        let (_, rs) = template_files()
            .into_iter()
            .find(|(p, _)| p.extension().is_some_and(|e| e == "rs"))
            .unwrap();
        let rs = String::from_utf8_lossy(rs);
        for ty in TEMPLATE_USES {
            assert!(rs.contains(ty), "the template no longer uses {ty}");
        }
        // Names close to those are fine.
        for good in ["fn_mod", "kernels", "my_core", "results", "stdx", "m"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn a_directory_suggests_its_name() {
        assert_eq!(
            name_from_dir(Path::new("/src/my-driver")).as_deref(),
            Some("my_driver")
        );
        assert_eq!(
            name_from_dir(Path::new("/src/Foo.Bar")).as_deref(),
            Some("foo_bar")
        );
        let err = format!("{:#}", default_name(Path::new("/src/2fast")).unwrap_err());
        assert!(
            err.contains("/src/2fast does not make a module name (\"2fast\")")
                && err.contains("cannot name a kernel module"),
            "{err}"
        );
        let err = format!("{:#}", default_name(Path::new("/src/fn")).unwrap_err());
        assert!(err.contains("is a Rust keyword"), "{err}");
        // `.` and `..` stand for the directory they name.
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("my-top");
        std::fs::create_dir_all(top.join("sub")).unwrap();
        assert_eq!(default_name(&top.join("sub/..")).unwrap(), "my_top");
        assert_eq!(default_name(&top.join(".")).unwrap(), "my_top");
        assert_eq!(default_name(&top.join("new-dir")).unwrap(), "new_dir");
    }

    /// An existing module gets the template's pin, pointing at it, and the
    /// fragments: nothing else of the template.
    #[test]
    fn an_existing_module_gets_the_pin_and_fragments_only() {
        let files = pin_files(Path::new("drivers/rng")).unwrap();
        let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
        let mut expected: Vec<PathBuf> = tree(&repo().join("templates/default/kernel-config"))
            .into_iter()
            .map(|p| Path::new(FRAGMENTS).join(p))
            .collect();
        expected.push(PathBuf::from(PIN));
        expected.sort();
        assert_eq!(paths, expected);
        let (_, pin) = files.iter().find(|(p, _)| p == Path::new(PIN)).unwrap();
        let parse = |bytes: &[u8]| {
            crate::config::pin::parse_pin(std::str::from_utf8(bytes).unwrap()).unwrap()
        };
        let mut pin = parse(pin);
        assert_eq!(pin.module.dir, "drivers/rng");
        // Everything else is the template's pin as it is.
        let template = parse(&std::fs::read(repo().join("templates/default/lkmlab.toml")).unwrap());
        pin.module.dir = template.module.dir.clone();
        assert_eq!(format!("{pin:?}"), format!("{template:?}"));
        // A path TOML must quote is quoted.
        let files = pin_files(Path::new("my \"odd\" dir")).unwrap();
        let (_, pin) = files.iter().find(|(p, _)| p == Path::new(PIN)).unwrap();
        assert_eq!(parse(pin).module.dir, "my \"odd\" dir");
    }

    #[test]
    fn an_existing_module_must_be_buildable_and_inside_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("src")).unwrap();
        let err = format!("{:#}", init_existing(&root, &root.join("src")).unwrap_err());
        assert!(err.contains("has neither a Kbuild nor a Makefile"), "{err}");
        std::fs::write(root.join("src/Makefile"), "obj-m := m.o\n").unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
        std::fs::write(dir.path().join("elsewhere/Kbuild"), "obj-m := m.o\n").unwrap();
        let err = format!(
            "{:#}",
            init_existing(&root, &dir.path().join("elsewhere")).unwrap_err()
        );
        assert!(err.contains("is not inside the project directory"), "{err}");
        assert!(!root.join(PIN).exists(), "nothing was written");
        let (written, module_dir) = init_existing(&root, &root.join("src/.")).unwrap();
        assert_eq!(module_dir, Path::new("src"));
        assert!(written.contains(&root.join(PIN)), "{written:?}");
        assert!(!root.join("module").exists());
        // The project root itself is a module directory too.
        std::fs::write(dir.path().join("elsewhere/x"), "").unwrap();
        let (_, module_dir) =
            init_existing(&dir.path().join("elsewhere"), &dir.path().join("elsewhere")).unwrap();
        assert_eq!(module_dir, Path::new("."));
    }

    #[test]
    fn nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("module")).unwrap();
        std::fs::write(dir.path().join("module/Kbuild"), "mine").unwrap();
        let err = init(dir.path(), "m", &LkmlabUrl::template())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("module/Kbuild") && err.contains("overwrites nothing"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("module/Kbuild")).unwrap(),
            "mine"
        );
        assert!(
            !dir.path().join("lkmlab.toml").exists(),
            "nothing was written"
        );
    }
}
