//! `lkmlab vm`: the interactive lab. virtme-ng (`vng`) boots the pinned
//! kernel with the host filesystem as the guest's root (read-only, with
//! writable overlays on /etc, /tmp, /usr, …), a root shell in the project
//! directory, and the module build directory in `$LKMLAB_MODULES`. The module
//! output directory is on the host filesystem, so a `.ko` rebuilt on the host
//! by `lkmlab module` is what the guest sees at once.

use crate::build::kconfig;
use crate::config::arch::Machine;
use crate::process::output_of;
use crate::process::{self, Waited};
use crate::vm::accel::Accel;
use crate::vm::devices;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// The virtme-ng release lkmlab is tested with (scripts/setup-debian.sh installs it).
pub const VNG_TESTED: &str = "1.42";
/// The guest environment variable holding the module build directory.
pub const MODULES_ENV: &str = "LKMLAB_MODULES";
/// The guest environment variable holding the path of the reload helper.
pub const RELOAD_ENV: &str = "LKMLAB_RELOAD";
/// The guest's host name (and so its shell prompt: `root@lkmlab`).
pub const HOSTNAME: &str = "lkmlab";
/// The reload helper's file name.
pub const RELOAD_SCRIPT: &str = "lkmlab-reload";

/// Kconfig options the kernel needs for `vng` to boot it, with what each is for.
/// They come from kernel-config/virtme.config; a kernel given with `--kernel`
/// is not checked (it has no .config next to it).
const NEEDED: &[(&str, &str)] = &[
    (
        "CONFIG_VIRTIO_PCI",
        "virtme-ng's virtio devices (QEMU's PC machine)",
    ),
    (
        "CONFIG_NET_9P_VIRTIO",
        "the host filesystem as the guest's root (9p)",
    ),
    (
        "CONFIG_9P_FS",
        "the host filesystem as the guest's root (9p)",
    ),
    (
        "CONFIG_OVERLAY_FS",
        "writable overlays on /etc, /tmp, /usr, …",
    ),
    ("CONFIG_TMPFS", "writable overlays and /run"),
    (
        "CONFIG_VIRTIO_CONSOLE",
        "the command's stdin/stdout/exit status (virtio serial)",
    ),
    ("CONFIG_UNIX98_PTYS", "the interactive shell's terminal"),
    ("CONFIG_UNIX", "the guest's init (unix sockets)"),
];

/// Without a power-off driver, virtme-ng's init halts the guest instead of
/// powering it off and QEMU never exits.
const POWER_OFF: (&str, &str) = (
    "CONFIG_ACPI",
    "powering the VM off when the shell or command exits",
);

/// What `lkmlab vm` runs.
pub struct VmSpec<'a> {
    pub vng: &'a Path,
    /// The kernel image.
    pub image: &'a Path,
    /// The directory of `.ko` files, `$LKMLAB_MODULES` in the guest.
    pub modules: &'a Path,
    /// The reload helper (`$LKMLAB_RELOAD` in the guest).
    pub reload: &'a Path,
    /// Host directories mounted at the same path in the guest straight over
    /// 9p (read-only), bypassing the overlays: the project and the modules.
    pub rodirs: &'a [&'a Path],
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    /// One command to run instead of a shell.
    pub exec: Option<&'a str>,
    /// Declared devices, as the test VM gets them.
    pub devices: &'a [devices::Checked],
    /// Extra `vng` arguments, passed last.
    pub extra: &'a [String],
}

/// Find `vng`: on PATH, else where `pipx` puts it (`~/.local/bin`).
pub fn find_vng() -> Result<PathBuf> {
    let on_path = crate::util::which("vng");
    let pipx = std::env::var_os("PIPX_BIN_DIR")
        .map(PathBuf::from)
        .or_else(crate::util::home_local_bin)
        .map(|d| d.join("vng"))
        .filter(|p| p.is_file());
    on_path.or(pipx).with_context(|| {
        format!(
            "virtme-ng (vng) is not installed: run scripts/setup-debian.sh, or \
             `pipx install virtme-ng=={VNG_TESTED}` (Debian: sudo apt-get install pipx) \
             and put ~/.local/bin on PATH"
        )
    })
}

/// `vng --version` → `1.42`.
pub fn vng_version(vng: &Path) -> Result<String> {
    let out = output_of(Command::new(vng).arg("--version"), "vng")?;
    out.split_whitespace()
        .last()
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .with_context(|| format!("cannot read a version from `vng --version`: {}", out.trim()))
}

/// systemd-udevd where virtme-ng's guest init looks for it. The guest sees
/// the host's root, so the host's udev is the guest's: without it the guest
/// has no /dev/virtio-ports/* links, and `--exec` loses the command's output
/// and exit status.
pub fn find_udevd() -> Option<PathBuf> {
    [
        "/usr/lib/systemd/systemd-udevd",
        "/lib/systemd/systemd-udevd",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .or_else(|| crate::util::which("udevd"))
}

/// Options a kernel `.config` lacks for the VM: `(missing needed, power-off missing)`.
pub fn missing_options(dotconfig: &str) -> (Vec<String>, bool) {
    let set = kconfig::parse_dotconfig(dotconfig);
    let is_y = |name: &str| set.get(name) == Some(&kconfig::Value::Yes);
    let missing = NEEDED
        .iter()
        .filter(|(name, _)| !is_y(name))
        .map(|(name, why)| format!("{name}=y ({why})"))
        .collect();
    (missing, !is_y(POWER_OFF.0))
}

/// Check the kernel built by lkmlab (its `.config`) before booting it.
/// Missing power-off support is fatal for `--exec` (the VM would never
/// exit) and a warning for the shell (leave with Ctrl-A x).
pub fn check_kernel_config(dotconfig: &Path, exec: bool) -> Result<()> {
    let text = std::fs::read_to_string(dotconfig)
        .with_context(|| format!("reading {}", dotconfig.display()))?;
    let (mut missing, no_power_off) = missing_options(&text);
    let power_off = format!("{}=y ({})", POWER_OFF.0, POWER_OFF.1);
    if no_power_off && exec {
        missing.push(power_off.clone());
    }
    if !missing.is_empty() {
        bail!(
            "the kernel ({}) lacks what virtme-ng needs:\n  {}\nAdd the option(s) to \
             kernel-config/virtme.config and run the command again (the kernel is rebuilt)",
            dotconfig.display(),
            missing.join("\n  ")
        );
    }
    if no_power_off {
        crate::notice!(
            "WARNING: the kernel lacks {power_off}: when the shell exits the guest \
             halts instead; leave with Ctrl-A x. Fix: add CONFIG_ACPI=y to kernel-config/virtme.config"
        );
    }
    Ok(())
}

/// Characters `vng` can pass through its shell command line unquoted.
fn shell_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._+,:@%=-".contains(c))
}

/// Quote for a POSIX shell (and for Python's `shlex.split`, which `vng`
/// applies to each `--append`).
fn shell_quote(s: &str) -> String {
    if shell_safe(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A path as text that virtme-ng can pass on: it ends up on the kernel
/// command line, which virtme-ng quotes with double quotes.
fn plain(path: &Path) -> Result<&str> {
    let s = path
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
    if s.contains('"') || s.contains('\n') {
        bail!(
            "{s:?} cannot be passed to virtme-ng (it holds a double quote or a newline, which \
             the kernel command line cannot carry): move the project or the cache to a plain path"
        );
    }
    Ok(s)
}

/// `NAME=VALUE` for `--append`: a kernel command-line word that the guest's
/// init gets as an environment variable (and passes on to the shell).
fn kernel_env(name: &str, value: &Path) -> Result<String> {
    Ok(shell_quote(&format!("{name}={}", plain(value)?)))
}

/// A path for a `vng` option that vng pastes into its shell command line
/// unquoted (vng 1.42 runs `virtme-run` with `shell=True`): quoted here.
fn vng_path(path: &Path) -> Result<String> {
    Ok(shell_quote(plain(path)?))
}

/// The `vng` command line (without the program).
pub fn vng_args(spec: &VmSpec) -> Result<Vec<OsString>> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &str| args.push(a.into());
    push("--run");
    push(&vng_path(spec.image)?);
    // A host name for the prompt, root in the guest (insmod needs it), and
    // no in-tree modules: the lab loads its own from $LKMLAB_MODULES.
    for a in ["--name", HOSTNAME, "--user", "root", "--skip-modules"] {
        push(a);
    }
    // 9p, not virtio-fs: no virtiofsd needed, and 9p without a cache shows
    // the guest a .ko rebuilt on the host at once.
    push("--force-9p");
    push("--memory");
    push(&format!("{}M", spec.memory_mib));
    push("--cpus");
    push(&spec.cpus.to_string());
    // The kernel has no CONFIG_BLOCK: without root= it mounts no root at
    // all. root=/dev/root names the 9p mount tag virtme-ng exports.
    push("--append");
    push("root=/dev/root");
    push("--append");
    push(&kernel_env(MODULES_ENV, spec.modules)?);
    push("--append");
    push(&kernel_env(RELOAD_ENV, spec.reload)?);
    // The guest sees /home, /tmp, … through overlayfs, which keeps the
    // inode (and size) of a file the host has since replaced: insmod of a
    // rebuilt .ko would fail with "Invalid module format". A direct 9p mount
    // looks files up afresh.
    for dir in spec.rodirs {
        push(&format!("--rodir={}", vng_path(dir)?));
    }
    if spec.accel == Accel::Tcg {
        push("--disable-kvm");
    }
    // A PCI device needs a PCI bus: not vng's default microvm on x86-64.
    // The devices go to QEMU through vng's shell command line, quoted.
    if devices::machine(spec.devices) == Machine::Pci {
        push("--disable-microvm");
    }
    // `--qemu-opts=…` in one word: vng's argument parser would take a
    // separate `-device …` for an option of its own.
    for device in spec.devices {
        push(&format!(
            "--qemu-opts=-device {}",
            shell_quote(&devices::option(&device.device))
        ));
    }
    if let Some(cmd) = spec.exec {
        push("--exec");
        push(cmd);
    }
    args.extend(spec.extra.iter().map(OsString::from));
    Ok(args)
}

/// The guest-side reload helper: unload the module if it is loaded and
/// unused, then load the fresh `.ko` from `$LKMLAB_MODULES`.
/// (`vng/lkmlab-reload.sh`, a file of its own so that shellcheck sees it.)
pub const RELOAD_SH: &str = include_str!("vng/lkmlab-reload.sh");

/// Write the reload helper into `dir` (created), returning its path.
pub fn write_reload_script(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(RELOAD_SCRIPT);
    std::fs::write(&path, RELOAD_SH).with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))?;
    Ok(path)
}

/// `PATH` with `vng`'s directory first: vng runs `virtme-run` through a shell.
fn child_path(vng: &Path) -> OsString {
    let mut dirs: Vec<PathBuf> = vng.parent().map(Path::to_path_buf).into_iter().collect();
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn vng_command(spec: &VmSpec, cwd: &Path) -> Result<Command> {
    let mut cmd = Command::new(spec.vng);
    cmd.args(vng_args(spec)?)
        // vng gives the guest shell the host's working directory.
        .current_dir(cwd)
        .env("PATH", child_path(spec.vng));
    Ok(cmd)
}

/// Run the interactive VM: the terminal belongs to QEMU until the shell exits.
pub fn run_shell(spec: &VmSpec, cwd: &Path) -> Result<ExitStatus> {
    crate::process::status_of(&mut vng_command(spec, cwd)?, "vng")
}

/// Run one command in the VM, its output on ours. QEMU opens our stdout and
/// stderr again by path (/proc/self/fd/N, truncating a regular file), so
/// they go through pipes and lkmlab copies them. vng exits with the
/// command's status (255 when the guest ended without one); at the deadline
/// vng, virtme-run and QEMU are killed together.
pub fn run_exec(spec: &VmSpec, cwd: &Path, timeout: Option<Duration>) -> Result<Waited> {
    let mut cmd = vng_command(spec, cwd)?;
    // A terminal on stdin would be put in raw mode by QEMU; the command gets
    // no terminal (use the interactive VM for that), piped input goes through.
    if std::io::stdin().is_terminal() {
        cmd.stdin(Stdio::null());
    }
    let mut vng = process::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()), "vng")?;
    let pumps = [
        pump(
            (vng.child().stdout.take()).map(|s| Box::new(s) as Box<dyn Read + Send>),
            false,
        ),
        pump(
            (vng.child().stderr.take()).map(|s| Box::new(s) as Box<dyn Read + Send>),
            true,
        ),
    ];
    let end = vng.wait(timeout, || {})?;
    for p in pumps {
        let _ = p.join();
    }
    Ok(end)
}

/// Copy a child's output to ours as it comes.
fn pump(src: Option<Box<dyn Read + Send>>, to_stderr: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Some(mut src) = src else { return };
        let mut buf = [0u8; 8192];
        loop {
            match src.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = &buf[..n];
                    let _ = if to_stderr {
                        let mut e = std::io::stderr().lock();
                        e.write_all(chunk).and_then(|()| e.flush())
                    } else {
                        let mut o = std::io::stdout().lock();
                        o.write_all(chunk).and_then(|()| o.flush())
                    };
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(exec: Option<&'a str>, accel: Accel, modules: &'a Path) -> VmSpec<'a> {
        VmSpec {
            vng: Path::new("/usr/bin/vng"),
            image: Path::new("/c/kernel/default-1/arch/x86/boot/bzImage"),
            modules,
            reload: Path::new("/p/target/lkmlab/vm/lkmlab-reload"),
            rodirs: &[],
            accel,
            memory_mib: 256,
            cpus: 1,
            exec,
            devices: &[],
            extra: &[],
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn tcg_exec_runs_disable_kvm_over_9p_with_the_modules_in_the_environment() {
        let m = Path::new("/p/target/lkmlab/default/modules/module");
        let args = strings(
            vng_args(&spec(
                Some("insmod $LKMLAB_MODULES/scull.ko"),
                Accel::Tcg,
                m,
            ))
            .unwrap(),
        );
        let joined = args.join(" ");
        assert!(
            joined.starts_with("--run /c/kernel/default-1/arch/x86/boot/bzImage "),
            "{joined}"
        );
        for want in [
            "--force-9p",
            "--skip-modules",
            "--disable-kvm",
            "--memory 256M",
            "--cpus 1",
            "--append root=/dev/root",
            "--append LKMLAB_MODULES=/p/target/lkmlab/default/modules/module",
            "--user root",
        ] {
            assert!(joined.contains(want), "{want} missing: {joined}");
        }
        let exec = args.iter().position(|a| a == "--exec").unwrap();
        assert_eq!(args[exec + 1], "insmod $LKMLAB_MODULES/scull.ko");
    }

    /// A PCI device: off microvm, and each device as QEMU's option,
    /// quoted for vng's shell; none: vng's own machine, no options.
    #[test]
    fn declared_devices_reach_qemu_through_vng() {
        let m = Path::new("/m");
        let none = strings(vng_args(&spec(None, Accel::Tcg, m)).unwrap());
        assert!(
            !none
                .iter()
                .any(|a| a == "--disable-microvm" || a.starts_with("--qemu-opts")),
            "{none:?}"
        );
        let edu: devices::Device =
            toml::from_str("device = \"edu\"\nproperties = { dma_mask = 268435455 }").unwrap();
        let checked = [devices::Checked {
            device: edu,
            bus: devices::Bus::Pci,
        }];
        let with = VmSpec {
            devices: &checked,
            ..spec(None, Accel::Tcg, m)
        };
        let args = strings(vng_args(&with).unwrap());
        assert!(args.iter().any(|a| a == "--disable-microvm"), "{args:?}");
        assert!(
            args.iter()
                .any(|a| a == "--qemu-opts=-device edu,dma_mask=268435455"),
            "{args:?}"
        );
    }

    #[test]
    fn kvm_keeps_kvm_and_a_shell_has_no_exec() {
        let args = strings(vng_args(&spec(None, Accel::Kvm, Path::new("/m"))).unwrap());
        assert!(
            !args.iter().any(|a| a == "--disable-kvm" || a == "--exec"),
            "{args:?}"
        );
    }

    #[test]
    fn paths_with_spaces_are_quoted_for_vngs_shell_or_refused() {
        let args = strings(vng_args(&spec(None, Accel::Kvm, Path::new("/my mods/it's"))).unwrap());
        assert!(
            args.contains(&r"'LKMLAB_MODULES=/my mods/it'\''s'".to_string()),
            "{args:?}"
        );
        let mut s = spec(None, Accel::Kvm, Path::new("/m"));
        s.image = Path::new("/home/a b/bzImage");
        let dirs = [Path::new("/home/a b/lab"), Path::new("/nix/store/x-module")];
        s.rodirs = &dirs;
        let args = strings(vng_args(&s).unwrap());
        assert_eq!(args[..2], ["--run", "'/home/a b/bzImage'"]);
        assert!(
            args.contains(&"--rodir='/home/a b/lab'".to_string()),
            "{args:?}"
        );
        assert!(
            args.contains(&"--rodir=/nix/store/x-module".to_string()),
            "{args:?}"
        );
        let err = vng_args(&spec(None, Accel::Kvm, Path::new("/x\"y")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("double quote"), "{err}");
    }

    #[test]
    fn a_kernel_without_9p_or_power_off_is_refused_with_the_fix() {
        let cfg = "CONFIG_VIRTIO_PCI=y\nCONFIG_NET_9P_VIRTIO=y\nCONFIG_OVERLAY_FS=y\n\
                   CONFIG_TMPFS=y\nCONFIG_VIRTIO_CONSOLE=y\nCONFIG_UNIX98_PTYS=y\nCONFIG_UNIX=y\n";
        let (missing, no_power_off) = missing_options(cfg);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].starts_with("CONFIG_9P_FS=y"));
        assert!(no_power_off);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".config");
        std::fs::write(&path, format!("{cfg}CONFIG_9P_FS=y\n")).unwrap();
        check_kernel_config(&path, false).unwrap();
        let err = check_kernel_config(&path, true).unwrap_err().to_string();
        assert!(
            err.contains("CONFIG_ACPI=y") && err.contains("virtme.config"),
            "{err}"
        );
        std::fs::write(&path, format!("{cfg}CONFIG_9P_FS=y\nCONFIG_ACPI=y\n")).unwrap();
        check_kernel_config(&path, true).unwrap();
    }

    #[test]
    fn the_reload_script_is_executable_and_refuses_a_module_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_reload_script(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("is in use") && text.contains("rmmod") && text.contains("insmod"));
        // Without a name it lists what it can load, and fails.
        std::fs::write(dir.path().join("scull.ko"), b"").unwrap();
        let out = Command::new("sh")
            .arg(&path)
            .env(MODULES_ENV, dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("scull"));
    }
}
