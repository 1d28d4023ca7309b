//! The guest side of a test run: the static runner (PID 1) and the initramfs
//! that carries it, the modules and the test plan.

use crate::build::module_dir::module_name;
use crate::build::module_dir::{GUEST_TESTS_DIR, HELPERS_DIR, LOAD_EXT};
use crate::build::partial::Unbuilt;
use crate::config::arch::Arch;
use crate::vm::cpio::CpioWriter;
use anyhow::{bail, Context, Result};
use lkmlab_protocol::layout;
use lkmlab_protocol::plan::{ExampleSuite, Item, Plan};
use std::path::{Path, PathBuf};

/// The guest runner, built with lkmlab (see build.rs) and carried inside it.
pub const EMBEDDED_RUNNER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lkmlab-guest"));

/// The runner for a test run on `arch`: `--runner FILE` (checked to be
/// static and for `arch`), else the one carried inside lkmlab for the
/// architecture lkmlab itself runs on, else `cross_built` (one cross-built
/// for `arch` from the sources lkmlab carries: [`crate::vm::cross::runner`]).
pub fn runner(
    given: Option<&Path>,
    arch: Arch,
    cross_built: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<std::borrow::Cow<'static, [u8]>> {
    match given {
        None if !arch.is_foreign() => Ok(EMBEDDED_RUNNER.into()),
        None => Ok(cross_built()?.into()),
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            check_static_elf(&bytes, path, RUNNER_STATIC_FIX, arch)?;
            Ok(bytes.into())
        }
    }
}

/// How to get a static guest runner.
pub const RUNNER_STATIC_FIX: &str =
    "build it with -C target-feature=+crt-static (needs libc6-dev's libc.a)";
/// How to get a static busybox.
const BUSYBOX_STATIC_FIX: &str = "install Debian's static one (sudo apt-get install \
     busybox-static; the package `busybox` is dynamic) and put it first on PATH";

/// PID 1 in the initramfs has no dynamic loader to run: refuse anything that
/// asks for one (an ELF `PT_INTERP` program header), saying how to get a
/// static build (`fix`); and anything built for another architecture than
/// the guest's (`arch`).
pub fn check_static(exe: &Path, fix: &str, arch: Arch) -> Result<()> {
    let bytes = std::fs::read(exe).with_context(|| format!("reading {}", exe.display()))?;
    check_static_elf(&bytes, exe, fix, arch)
}

/// [`check_static`] on the bytes of `exe`.
pub fn check_static_elf(bytes: &[u8], exe: &Path, fix: &str, arch: Arch) -> Result<()> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        bail!(
            "{} is not a 64-bit little-endian ELF executable",
            exe.display()
        );
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let machine = u16_at(18) as u16;
    if machine != arch.elf_machine() {
        let built_for = Arch::of_elf_machine(machine)
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("ELF machine {machine}"));
        bail!(
            "{} is built for {built_for}, and the VM is {arch}: build it for {} (Rust: \
             --target {})",
            exe.display(),
            arch,
            arch.rust_target()
        );
    }
    let phoff = u64::from_le_bytes(bytes[32..40].try_into()?) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let ph = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .and_then(|off| bytes.get(off..off.checked_add(4)?));
        let Some(ph) = ph else {
            bail!("{} has a truncated program header table", exe.display());
        };
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(ph.try_into()?) == PT_INTERP {
            bail!(
                "{} is dynamically linked, and the VM has no dynamic loader: {fix}",
                exe.display()
            );
        }
    }
    Ok(())
}

/// The busybox applets linked into the guest's `/bin` (on a test's `PATH`,
/// so that a static program can run them too); busybox's shell runs its
/// other applets as well. docs/guest-tests.md lists these.
const APPLETS: &[&str] = &[
    "sh", "ash", "cat", "echo", "test", "[", "grep", "sed", "awk", "ls", "mkdir", "rmdir", "rm",
    "cp", "mv", "ln", "touch", "chmod", "mknod", "mkfifo", "mktemp", "readlink", "basename",
    "dirname", "sleep", "usleep", "timeout", "dmesg", "insmod", "rmmod", "lsmod", "modinfo",
    "mount", "umount", "head", "tail", "wc", "cut", "tr", "sort", "uniq", "tee", "find", "xargs",
    "dd", "od", "hexdump", "cmp", "diff", "printf", "true", "false", "expr", "seq", "stat", "env",
    "id", "uname", "ps", "kill", "sync", "sysctl", "taskset",
];
/// The runner's other names, each a link to it in the guest's `/bin`: the
/// fault-injection helper and the guest test's own kernel log.
const RUNNER_LINKS: &[&str] = &["fail-nth", "lkmlab-log"];
/// How to get a static guest test or helper program.
const GUEST_PROGRAM_STATIC_FIX: &str =
    "link it statically (gcc -static; for Rust, -C target-feature=+crt-static)";

/// A module a guest test needs loaded first (`guest-tests/<test>.load`),
/// module names as the plan has them (`-` read as `_`).
pub use lkmlab_protocol::plan::Preload;

/// What the guest's programs are: its architecture, and where a static
/// busybox for it comes from (asked for only when a guest test is a script).
pub struct GuestTools<'a> {
    pub arch: Arch,
    pub busybox: Box<dyn Fn() -> Result<PathBuf> + 'a>,
}

impl GuestTools<'_> {
    /// The host's architecture and busybox (tests of lkmlab itself).
    pub fn host() -> GuestTools<'static> {
        GuestTools {
            arch: Arch::host().unwrap_or(Arch::X86_64),
            busybox: Box::new(find_busybox),
        }
    }
}

/// What goes into the initramfs besides the runner.
pub struct Payload {
    pub modules: Vec<PathBuf>,
    /// The module's own guest tests, in the order they run.
    pub tests: Vec<PathBuf>,
    /// The files of `guest-tests/helpers/`: (path under it, file on the host).
    pub helpers: Vec<(PathBuf, PathBuf)>,
    /// The modules each test needs loaded first, from its `.load` file.
    pub preloads: Vec<Preload>,
    /// A static busybox for test scripts, when any test is a script.
    pub busybox: Option<PathBuf>,
    /// The runner's built-in example suites to run instead of the generic
    /// suite of the module of the same name.
    pub examples: Vec<ExampleSuite>,
    /// Modules of the directory that do not build on this kernel: not
    /// packed; the verdict reports each as skipped, with the reason.
    pub not_built: Vec<Unbuilt>,
}

impl Payload {
    /// The modules, plus the guest tests found in `module_dir/guest-tests`,
    /// their helpers and what they need loaded (and busybox when any test or
    /// helper is a script). Each of `examples` (the pin's `[module]
    /// example_suites`) must have its module among `modules`.
    pub fn new(
        modules: Vec<PathBuf>,
        module_dir: Option<&Path>,
        examples: &[ExampleSuite],
        guest: &GuestTools,
    ) -> Result<Payload> {
        Payload::with_unbuilt(modules, Vec::new(), module_dir, examples, guest)
    }

    /// [`Payload::new`] where the modules `not_built` did not build on this
    /// kernel: their example suites are left out.
    pub fn with_unbuilt(
        modules: Vec<PathBuf>,
        not_built: Vec<Unbuilt>,
        module_dir: Option<&Path>,
        examples: &[ExampleSuite],
        guest: &GuestTools,
    ) -> Result<Payload> {
        let examples: Vec<ExampleSuite> = examples
            .iter()
            .copied()
            .filter(|e| !not_built.iter().any(|u| u.module == e.name()))
            .collect();
        let names: Vec<String> = modules.iter().map(|ko| module_name(ko)).collect();
        if let Some(missing) = examples
            .iter()
            .find(|e| !names.iter().any(|n| n == e.name()))
        {
            bail!(
                "lkmlab.toml [module] example_suites names {missing}, but the module build made \
                 no {missing}.ko (it made: {}); remove \"{missing}\" from example_suites: it is \
                 the suite of lkmlab's own example module, for nothing else",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
        let mut payload = Payload {
            modules,
            tests: Vec::new(),
            helpers: Vec::new(),
            preloads: Vec::new(),
            busybox: None,
            examples,
            not_built,
        };
        let Some(dir) = module_dir.map(|d| d.join(GUEST_TESTS_DIR)) else {
            return Ok(payload);
        };
        if !dir.is_dir() {
            return Ok(payload);
        }
        let (tests, load_files) = guest_test_files(&dir)?;
        payload.tests = tests;
        let helpers = dir.join(HELPERS_DIR);
        if helpers.is_dir() {
            collect_files(&helpers, Path::new(""), &mut payload.helpers)?;
            payload.helpers.sort();
        }
        for file in &load_files {
            payload.preloads.extend(read_load_file(file, &payload)?);
        }
        if payload.check_programs(guest.arch)? {
            payload.busybox = Some((guest.busybox)()?);
        }
        Ok(payload)
    }

    /// Refuse a dynamically linked test or helper program; tell whether any
    /// is a script (which needs a shell).
    fn check_programs(&self, arch: Arch) -> Result<bool> {
        let programs = self
            .tests
            .iter()
            .chain(self.helpers.iter().map(|(_, host)| host));
        let mut needs_shell = false;
        for program in programs {
            let head = read_head(program)?;
            if head.starts_with(b"#!") {
                needs_shell = true;
            } else if head.starts_with(b"\x7fELF") {
                check_static(program, GUEST_PROGRAM_STATIC_FIX, arch)?;
            }
        }
        Ok(needs_shell)
    }
}

/// The files directly in `guest-tests/`, sorted: the tests, and the `.load`
/// files. `*.md`, dot files and subdirectories are neither.
fn guest_test_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut tests, mut load_files) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.is_file() || name.starts_with('.') || name.ends_with(".md") {
            continue;
        }
        if path.extension().is_some_and(|e| e == LOAD_EXT) {
            load_files.push(path);
        } else {
            tests.push(path);
        }
    }
    tests.sort();
    load_files.sort();
    Ok((tests, load_files))
}

/// The first bytes of a file (enough for `#!` or the ELF magic).
fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4).read_to_end(&mut head))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(head)
}

/// Every file under `dir` (recursively, dot files too), as (path relative
/// to the top, path on the host).
fn collect_files(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        if path.is_dir() {
            collect_files(&path, &rel, out)?;
        } else {
            out.push((rel, path));
        }
    }
    Ok(())
}

/// The modules `guest-tests/<test>.load` asks for, one per line:
/// `MODULE [PARAMETERS]`; blank lines and `#` comments are skipped. The test
/// and each module must be in the payload.
fn read_load_file(file: &Path, payload: &Payload) -> Result<Vec<Preload>> {
    let test = test_name(file);
    if !payload.tests.iter().any(|t| test_name(t) == test) {
        bail!(
            "{} names no guest test: there is no {test} or {test}.* beside it",
            file.display()
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let known: Vec<String> = payload.modules.iter().map(|ko| module_name(ko)).collect();
    let mut preloads = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (module, params) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let module = module.trim_end_matches(".ko").replace('-', "_");
        if !known.contains(&module) {
            bail!(
                "{}:{}: {module} is not among the modules this run builds ({})",
                file.display(),
                number + 1,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        preloads.push(Preload {
            test: test.clone(),
            module,
            params: params.trim().to_string(),
        });
    }
    Ok(preloads)
}

/// The host's own static busybox, for a guest of the host's architecture.
pub fn find_busybox() -> Result<PathBuf> {
    let Some(busybox) = crate::util::which("busybox") else {
        bail!(
            "guest tests that are scripts need a shell in the guest: install a static \
             busybox (sudo apt-get install busybox-static)"
        );
    };
    let host = Arch::host().context("lkmlab does not know this host's architecture")?;
    check_static(&busybox, BUSYBOX_STATIC_FIX, host).context("busybox for guest test scripts")?;
    Ok(busybox)
}

/// A guest test's name in the report: its file name without extension.
pub fn test_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().replace([' ', '#'], "_"))
        .unwrap_or_default()
}

/// How the guest runs the plan.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// `--fault-injection`: each module's suite ends with the sweep of its load.
    pub fault_injection: bool,
}

/// The test plan the runner reads ([`layout::PLAN`]), but for the modules
/// that can schedule callbacks, which [`write_initramfs`] reads from them.
pub fn plan(payload: &Payload, options: &RunOptions) -> Plan {
    let item = |name: String, path: String| Item {
        name,
        path: path.into(),
    };
    Plan {
        fault_injection: options.fault_injection,
        modules: (payload.modules.iter())
            .map(|ko| module_name(ko))
            .map(|name| item(name.clone(), layout::module(&name)))
            .collect(),
        tests: (payload.tests.iter())
            .map(|t| test_name(t))
            .map(|name| item(name.clone(), layout::test(&name)))
            .collect(),
        examples: payload.examples.clone(),
        preloads: payload.preloads.clone(),
        // Read from the modules as the initramfs is written.
        deferrers: Vec::new(),
    }
}

/// Write the initramfs: `/init` (the runner), `/dev/console`, the modules,
/// the guest tests and their helpers (with busybox as `/bin/sh` when they
/// need it) and the plan.
pub fn write_initramfs(
    out: &Path,
    runner: &[u8],
    payload: &Payload,
    options: &RunOptions,
) -> Result<()> {
    // Written beside `out` under a random name and renamed over it, so the
    // file at `out` is always whole (runs into one folder take turns on the
    // folder's lock).
    let dir = out.parent().unwrap_or(Path::new("."));
    let file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let mut cpio = CpioWriter::new(std::io::BufWriter::new(file));
    for dir in [
        "dev",
        "proc",
        "sys",
        "tmp",
        "bin",
        "lkmlab",
        layout::in_archive(layout::MODULES),
        layout::in_archive(layout::TESTS),
        layout::in_archive(layout::HELPERS),
    ] {
        cpio.dir(dir, 0o755)?;
    }
    // The kernel opens /dev/console for PID 1 before devtmpfs is mounted.
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    cpio.file("init", 0o755, runner)?;
    for name in RUNNER_LINKS {
        cpio.symlink(&format!("bin/{name}"), "/init")?;
    }
    let mut plan = plan(payload, options);
    for ko in &payload.modules {
        let data = std::fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
        let name = module_name(ko);
        plan.deferrers.extend(
            crate::vm::deferrers::deferrer(&name, &data)
                .with_context(|| format!("reading the symbols of {}", ko.display()))?,
        );
        let path = layout::module(&name);
        cpio.file(layout::in_archive(&path), 0o644, &data)?;
    }
    for t in &payload.tests {
        let data = std::fs::read(t).with_context(|| format!("reading {}", t.display()))?;
        let path = layout::test(&test_name(t));
        cpio.file(layout::in_archive(&path), 0o755, &data)?;
    }
    write_helpers(&mut cpio, &payload.helpers)?;
    if let Some(busybox) = &payload.busybox {
        let data =
            std::fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
        cpio.file("bin/busybox", 0o755, &data)?;
        for applet in APPLETS {
            cpio.symlink(&format!("bin/{applet}"), "busybox")?;
        }
    }
    cpio.file(
        layout::in_archive(layout::PLAN),
        0o644,
        plan.render().as_bytes(),
    )?;
    let file = cpio
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", out.display()))?;
    crate::util::persist(file, out)
}

/// The helpers under [`layout::HELPERS`], with their directories; a file the
/// owner may execute stays executable.
fn write_helpers<W: std::io::Write>(
    cpio: &mut CpioWriter<W>,
    helpers: &[(PathBuf, PathBuf)],
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs = std::collections::BTreeSet::new();
    for (rel, _) in helpers {
        for dir in rel
            .ancestors()
            .skip(1)
            .filter(|d| !d.as_os_str().is_empty())
        {
            dirs.insert(dir.to_path_buf());
        }
    }
    for dir in &dirs {
        let path = format!("{}/{}", layout::HELPERS, dir.display());
        cpio.dir(layout::in_archive(&path), 0o755)?;
    }
    for (rel, host) in helpers {
        let data = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
        let executable = std::fs::metadata(host)
            .with_context(|| format!("reading {}", host.display()))?
            .permissions()
            .mode()
            & 0o100
            != 0;
        let mode = if executable { 0o755 } else { 0o644 };
        let path = format!("{}/{}", layout::HELPERS, rel.display());
        cpio.file(layout::in_archive(&path), mode, &data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner lkmlab carries is rebuilt when its source changes because
    /// the build script (which builds it) tells cargo to rerun on every file
    /// the runner is made of, the protocol crate's included, or on the
    /// prebuilt runner Nix passes in: what it declared is checked here
    /// (cargo's own `OUT_DIR/../output`); cargo does the rest.
    #[test]
    fn the_build_script_watches_every_source_of_the_carried_runner() {
        let output = std::path::Path::new(env!("OUT_DIR")).join("../output");
        let declared = std::fs::read_to_string(&output).unwrap();
        let watched: Vec<&str> = declared
            .lines()
            .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
            .collect();
        let watches = |suffix: &str| watched.iter().any(|w| w.ends_with(suffix));
        match option_env!("LKMLAB_GUEST_RUNNER").filter(|p| !p.is_empty()) {
            Some(prebuilt) => assert!(watches(prebuilt), "{declared}"),
            None => {
                for source in [
                    "guest/src",
                    "guest/Cargo.toml",
                    "protocol/src",
                    "protocol/Cargo.toml",
                    "Cargo.lock",
                ] {
                    assert!(watches(source), "{source} is not watched:\n{declared}");
                }
            }
        }
        assert!(watches("templates/default"), "{declared}");
    }

    #[test]
    fn the_plan_names_each_module_and_test_once() {
        let payload = Payload {
            modules: vec![
                PathBuf::from("/b/hello.ko"),
                PathBuf::from("/b/rust-scull.ko"),
            ],
            tests: vec![PathBuf::from("/m/guest-tests/open-close.sh")],
            helpers: Vec::new(),
            preloads: vec![
                Preload {
                    test: "open-close".into(),
                    module: "rust_scull".into(),
                    params: "capacity=64 name=\"a b\"".into(),
                },
                Preload {
                    test: "open-close".into(),
                    module: "hello".into(),
                    params: String::new(),
                },
            ],
            busybox: None,
            examples: Vec::new(),
            not_built: Vec::new(),
        };
        let plan = plan(&payload, &RunOptions::default()).render();
        assert!(!plan.contains("option"));
        assert!(plan.contains("module hello /lkmlab/modules/hello.ko\n"));
        assert!(plan.contains("module rust_scull /lkmlab/modules/rust_scull.ko\n"));
        assert!(plan.contains("test open-close /lkmlab/tests/open-close\n"));
        assert!(plan.ends_with(
            "load open-close rust_scull capacity=64 name=\"a b\"\nload open-close hello\n"
        ));
        let with = super::plan(
            &payload,
            &RunOptions {
                fault_injection: true,
            },
        )
        .render();
        assert!(with.contains("option fault-injection\n"));
    }

    #[test]
    fn guest_tests_are_found_in_order_and_docs_are_not_tests() {
        let dir = tempfile::tempdir().unwrap();
        let tests = dir.path().join(GUEST_TESTS_DIR);
        std::fs::create_dir(&tests).unwrap();
        std::fs::write(tests.join("b-second"), static_elf()).unwrap();
        std::fs::write(tests.join("a-first"), static_elf()).unwrap();
        std::fs::write(tests.join("README.md"), b"# docs").unwrap();
        let payload = Payload::new(vec![], Some(dir.path()), &[], &GuestTools::host()).unwrap();
        let names: Vec<String> = payload.tests.iter().map(|t| test_name(t)).collect();
        assert_eq!(names, ["a-first", "b-second"]);
        assert!(payload.busybox.is_none(), "no script, no shell needed");
    }

    fn write(path: &Path, text: impl AsRef<[u8]>) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The header of a 64-bit little-endian ELF file without program headers:
    /// what a static executable for the host looks like to [`check_static`].
    fn static_elf() -> Vec<u8> {
        static_elf_for(Arch::host().unwrap())
    }

    fn static_elf_for(arch: Arch) -> Vec<u8> {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        elf[18..20].copy_from_slice(&arch.elf_machine().to_le_bytes());
        elf
    }

    /// A guest program for another architecture would not run in the VM.
    #[test]
    fn a_guest_program_for_another_architecture_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let arm = dir.path().join("arm-tool");
        std::fs::write(&arm, static_elf_for(Arch::Arm64)).unwrap();
        check_static(&arm, "FIX", Arch::Arm64).unwrap();
        let err = check_static(&arm, "FIX", Arch::X86_64)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is built for arm64, and the VM is x86_64")
                && err.contains("--target x86_64-unknown-linux-gnu"),
            "{err}"
        );
    }

    #[test]
    fn helpers_are_packed_not_run_and_load_files_are_not_tests() {
        let dir = tempfile::tempdir().unwrap();
        let tests = dir.path().join(GUEST_TESTS_DIR);
        write(&tests.join("uses-helper"), static_elf());
        write(&tests.join("needs-scull"), static_elf());
        write(
            &tests.join("needs-scull.load"),
            "# load scull first\n\nrust-scull capacity=64\nhello.ko\n",
        );
        write(&tests.join("helpers/tool.sh"), "#!/bin/sh\necho help\n");
        write(&tests.join("helpers/data/expected.txt"), "hello\n");
        write(&tests.join("src/tool.c"), "int main(void) { return 0; }\n");
        let kos = vec![
            PathBuf::from("/b/rust-scull.ko"),
            PathBuf::from("/b/hello.ko"),
        ];
        let payload = Payload::new(kos, Some(dir.path()), &[], &GuestTools::host()).unwrap();
        let names: Vec<String> = payload.tests.iter().map(|t| test_name(t)).collect();
        assert_eq!(names, ["needs-scull", "uses-helper"]);
        let helpers: Vec<&Path> = payload
            .helpers
            .iter()
            .map(|(rel, _)| rel.as_path())
            .collect();
        assert_eq!(
            helpers,
            [Path::new("data/expected.txt"), Path::new("tool.sh")]
        );
        assert_eq!(
            payload.preloads,
            [
                Preload {
                    test: "needs-scull".into(),
                    module: "rust_scull".into(),
                    params: "capacity=64".into(),
                },
                Preload {
                    test: "needs-scull".into(),
                    module: "hello".into(),
                    params: String::new(),
                },
            ]
        );
    }

    #[test]
    fn the_initramfs_carries_the_helpers_where_the_docs_say() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tests = dir.path().join(GUEST_TESTS_DIR);
        write(&tests.join("t"), "\x7fELF");
        write(&tests.join("helpers/bin/tool"), "\x7fELF tool");
        write(&tests.join("helpers/data.txt"), "data");
        let tool = tests.join("helpers/bin/tool");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Not a real ELF file: skip the static check by building the payload by hand.
        let payload = Payload {
            modules: Vec::new(),
            tests: vec![tests.join("t")],
            helpers: vec![
                (PathBuf::from("bin/tool"), tool),
                (PathBuf::from("data.txt"), tests.join("helpers/data.txt")),
            ],
            preloads: Vec::new(),
            busybox: None,
            examples: Vec::new(),
            not_built: Vec::new(),
        };
        let cpio = dir.path().join("initramfs.cpio");
        write_initramfs(&cpio, b"runner", &payload, &RunOptions::default()).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let status = std::process::Command::new("cpio")
            .args(["-idm", "--quiet", "-F"])
            .arg(&cpio)
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(status.success());
        let helpers = root.join(layout::in_archive(layout::HELPERS));
        assert_eq!(std::fs::read(helpers.join("data.txt")).unwrap(), b"data");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&helpers.join("bin/tool")), 0o755);
        assert_eq!(mode(&helpers.join("data.txt")), 0o644);
        assert!(!root.join("lkmlab/tests/tool").exists());
        for name in ["fail-nth", "lkmlab-log"] {
            let link = std::fs::read_link(root.join("bin").join(name)).unwrap();
            assert_eq!(link, Path::new("/init"), "{name}");
        }
    }

    /// docs/guest-tests.md names the applets on a test's `PATH`: exactly
    /// these, in the sentence that says they are linked into `/bin`.
    #[test]
    fn the_docs_list_the_applets_on_path() {
        let docs = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/guest-tests.md"),
        )
        .unwrap();
        let start = docs
            .find("linked into `/bin`")
            .expect("docs/guest-tests.md: no \"linked into `/bin`\"");
        let sentence = docs[start..].split('.').next().unwrap();
        let mut listed: Vec<&str> = sentence
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| !w.contains('/') && !w.contains(' '))
            .collect();
        listed.sort();
        let mut applets = APPLETS.to_vec();
        applets.sort();
        assert_eq!(listed, applets, "{sentence}");
    }

    #[test]
    fn a_load_file_must_name_a_test_and_modules_of_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let tests = dir.path().join(GUEST_TESTS_DIR);
        write(&tests.join("t.sh"), "#!/bin/sh\n");
        write(&tests.join("t.load"), "hello\nnope x=1\n");
        let err = read_load_file(
            &tests.join("t.load"),
            &Payload {
                modules: vec![PathBuf::from("/b/hello.ko")],
                tests: vec![tests.join("t.sh")],
                helpers: Vec::new(),
                preloads: Vec::new(),
                busybox: None,
                examples: Vec::new(),
                not_built: Vec::new(),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("t.load:2: nope is not among the modules this run builds (hello)"),
            "{err}"
        );
        write(&tests.join("orphan.load"), "hello\n");
        let err = Payload::new(
            vec![PathBuf::from("/b/hello.ko")],
            Some(dir.path()),
            &[],
            &GuestTools::host(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("orphan.load names no guest test"), "{err}");
    }

    /// A module gets an example suite because the pin says so, never by
    /// its name; naming a module the build did not make is an error.
    #[test]
    fn example_suites_come_from_the_pin_and_need_their_module() {
        let dir = tempfile::tempdir().unwrap();
        let kos = || vec![PathBuf::from("/b/hello.ko"), PathBuf::from("/b/scull.ko")];
        let plan_of = |examples: &[ExampleSuite]| {
            let payload =
                Payload::new(kos(), Some(dir.path()), examples, &GuestTools::host()).unwrap();
            plan(&payload, &RunOptions::default())
        };
        assert_eq!(plan_of(&[]).example_of("scull"), None);
        let plan = plan_of(&[ExampleSuite::Scull]);
        assert_eq!(plan.example_of("scull"), Some(ExampleSuite::Scull));
        assert_eq!(plan.example_of("hello"), None);
        assert!(plan.render().contains("\nexample scull\n"));
        let err = Payload::new(
            vec![PathBuf::from("/b/hello.ko")],
            Some(dir.path()),
            &[ExampleSuite::Scull],
            &GuestTools::host(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("example_suites names scull, but the module build made no scull.ko")
                && err.contains("(it made: hello)"),
            "{err}"
        );
    }

    #[test]
    fn a_dynamic_guest_program_is_refused_before_the_vm_starts() {
        let dir = tempfile::tempdir().unwrap();
        let tests = dir.path().join(GUEST_TESTS_DIR);
        std::fs::create_dir_all(tests.join(HELPERS_DIR)).unwrap();
        // This test binary itself is dynamically linked on Debian.
        let me = std::env::current_exe().unwrap();
        std::fs::copy(&me, tests.join(HELPERS_DIR).join("tool")).unwrap();
        let err = Payload::new(Vec::new(), Some(dir.path()), &[], &GuestTools::host())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("dynamically linked") && err.contains("gcc -static"),
            "{err}"
        );
    }

    #[test]
    fn the_carried_runner_is_a_static_executable() {
        check_static_elf(
            EMBEDDED_RUNNER,
            Path::new("lkmlab-guest"),
            "FIX",
            Arch::host().unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn a_dynamic_executable_is_refused() {
        // This test binary itself is dynamically linked on Debian.
        let me = std::env::current_exe().unwrap();
        let err = check_static(&me, "FIX", Arch::host().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dynamically linked") && err.ends_with(": FIX"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"#!/bin/sh\n").unwrap();
        assert!(check_static(&junk, "FIX", Arch::host().unwrap()).is_err());
    }
}
