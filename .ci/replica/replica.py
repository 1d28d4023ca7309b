#!/usr/bin/env python3
"""Replay the flake's derivations on Debian the way the Nix sandbox builds them.

No Nix binary cache is reachable here, so nothing from nixpkgs can be built.
Instead:
  1. The flake (its git-tracked files, as a flake sees them) is evaluated and
     instantiated with Debian's nix-instantiate, the real nixpkgs lib and the
     mock nixpkgs of mock-nixpkgs.nix (eval.nix).
  2. Every .drv the chosen outputs need is executed in dependency order:
       - a tool (tools.toml [tool.*]): its outputs become directories of links
         to exactly the Debian executables the table maps the package to;
       - a fetchurl: the file from the local mirror, its hash checked;
       - a stand-in (tools.toml [standin.*]): the output built on the host,
         then the derivation's own postInstall, in the sandbox;
       - anything else: the derivation's builder with its own environment, in
         sandbox.sh: no network, `env -i`, HOME=/homeless-shelter, a build
         user, /nix/store holding only its inputs (read-only), no /usr/bin.
     A fixed-output derivation's output is checked against its hash; every
     output must exist afterwards.
  3. The apps' scripts are shellchecked and run with only their runtimeInputs
     on PATH.
Outputs are kept in WORK/store and reused when a derivation and the Debian
tools behind its inputs are unchanged (a Nix store does the same by path).

  .ci/replica/run [--work DIR] [--apt | --apt-only] [--tools FILE] [--ci]
                  [--expect-missing TOOL] [OUTPUT...]
"""

import argparse
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD_UID = 30001  # nixbld1's uid on NixOS
DEFAULT_OUTPUTS = [
    "packages.kernel-config",
    "packages.kernel",
    "packages.module",
    # The arm64 target, cross-built with nixpkgs' pkgsCross.aarch64-multiplatform
    # (Debian's gcc-aarch64-linux-gnu standing in for its GNU cross toolchain).
    "packages.kernel-config-arm64",
    "packages.kernel-arm64",
    "packages.module-arm64",
    # Kbuild's .config (the build path) equals lkmlab config's, per target.
    "checks.kernel-config",
    "checks.kernel-config-arm64",
    "checks.module-lint",
    "checks.pin",
    "checks.nixfmt",
    "packages.guest-runner",
    "checks.vm-test",
    "packages.virtme-ng",
    "devShells.default",
    "apps.test",
    "apps.vm",
]
# What CI replays (--ci): every default output except those that need the
# x86_64 kernel (packages.kernel: the module, its lint, the VM test, the dev
# shell, the apps). That kernel is build.nix's phases a second time, which
# the arm64 kernel's replay proves each run (cross-built, its own module),
# and checks.kernel-config proves its .config is lkmlab's; CI's 60-minute
# budget cannot hold both kernels beside lkmlab's four (docs/benchmarks.md).
# `.ci/replica/run` with no outputs replays them all.
CI_LEAVES_OUT = "packages.kernel"
STORE = "/nix/store"


class Fail(Exception):
    """A replica failure: the message names the problem and the fix."""


def say(msg):
    print(f"replica: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def base(path):
    return path[len(STORE) + 1 :] if path.startswith(STORE + "/") else path


# Directories sandbox.sh mounts over in a build: nothing of the replica's
# may live below them.
SANDBOX_REPLACES = [Path(d) for d in ("/usr/bin", "/usr/sbin", "/usr/local", "/tmp", "/dev")]


class Replica:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work).resolve()
        self.root = self.work / "root"
        self.store = self.root / "store"
        self.keys = self.work / "keys"
        self.logs = self.work / "logs"
        self.cache = self.work / "cache"
        for d in (self.store, self.keys, self.logs, self.cache, self.root / "host"):
            d.mkdir(parents=True, exist_ok=True)
        self.tools_file = Path(args.tools).resolve()
        self.table = tomllib.loads(self.tools_file.read_text())
        self.pin = tomllib.loads((REPO / "lkmlab.toml").read_text())
        self.placeholders = {}
        self.binds = {}
        self.results = []  # (label, ok, seconds, note)
        self.cpu = {}  # label -> CPU seconds of the build's processes
        self.key_of = {}

    # ---------------------------------------------------------------- eval
    def flake_copy(self):
        """The flake as Nix sees it: the git-tracked files (with their
        working-tree contents; a file not `git add`ed is not in a flake), and
        this harness with the tools table under test."""
        dst = self.work / "flake"
        if dst.exists():
            shutil.rmtree(dst)
        files = run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached"],
            capture_output=True,
        ).stdout.split(b"\0")
        for f in files:
            if not f:
                continue
            src = REPO / f.decode()
            if not src.exists():
                continue
            target = dst / f.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=False)
        # The harness itself, tracked or not (it is not part of the flake).
        shutil.rmtree(dst / ".ci/replica", ignore_errors=True)
        shutil.copytree(HERE, dst / ".ci/replica", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(self.tools_file, dst / ".ci/replica/tools.toml")
        return dst

    def nix_lib(self):
        if self.args.lib:
            return Path(self.args.lib).resolve()
        tarball = REPO.parent / "shared/nix/nixpkgs-lib-de42d442.tar.gz"
        out = self.cache / "nixpkgs-lib"
        if not (out / "lib/default.nix").exists():
            if not tarball.exists():
                raise Fail(
                    f"no nixpkgs lib: {tarball} is missing (pass --lib DIR, a nixpkgs checkout's lib/)"
                )
            shutil.rmtree(out, ignore_errors=True)
            run(["tar", "-xzf", str(tarball), "-C", str(self.cache)])
        return out / "lib"

    def evaluate(self):
        if not shutil.which("nix-instantiate"):
            raise Fail("nix-instantiate not found (Debian: apt-get install nix-bin)")
        flake = self.flake_copy()
        lib = self.nix_lib()
        t0 = time.monotonic()
        out = run(
            [
                "nix-instantiate", "--eval", "--strict", "--json",
                str(flake / ".ci/replica/eval.nix"),
                "--arg", "lib", str(lib), "--arg", "flake", str(flake), "-A", "plan",
            ],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            raise Fail("evaluating the flake with the mock nixpkgs failed (above)")
        self.plan = json.loads(out.stdout)
        # Instantiate: write every output's .drv (and its dependencies').
        inst = run(
            ["nix-instantiate", str(flake / ".ci/replica/eval.nix"), "--arg", "lib", str(lib),
             "--arg", "flake", str(flake), "-A", "drvList"],
            capture_output=True, text=True, check=False,
        )
        if inst.returncode != 0:
            sys.stderr.write(inst.stderr)
            raise Fail("instantiating the flake's outputs failed (above)")
        say(f"evaluated and instantiated {len(self.plan['outputs'])} outputs in {time.monotonic() - t0:.1f} s "
            f"(Nix {self.plan['nixVersion']}, nixpkgs lib {self.plan['libVersion']})")
        drvs = sorted(set(self.plan["outputs"].values()))
        shown = run(
            ["nix", "--extra-experimental-features", "nix-command", "show-derivation", "-r", *drvs],
            capture_output=True, text=True,
        )
        self.drvs = json.loads(shown.stdout)

    # ------------------------------------------------------------- helpers
    def placeholder(self, name):
        if name in self.placeholders:
            return self.placeholders[name]
        if name == "rust-sysroot":
            value = self.bind(run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip(),
                              "rust-sysroot")
        elif name == "cargo-bin":
            value = self.bind(str(Path.home() / ".cargo/bin"), "cargo-bin")
        elif name == "nixfmt":
            nixfmt = os.path.realpath(os.environ.get("NIXFMT") or REPO.parent / "shared/tools/nixfmt")
            value = self.bind(os.path.dirname(nixfmt), "nixfmt-bin") + "/" + os.path.basename(nixfmt)
        elif name == "rust-src":
            value = str(self.rust_src())
        elif name == "vng":
            value = str(self.vng_venv())
        elif name == "lkmlab":
            value = os.environ.get("LKMLAB") or shutil.which("lkmlab") or ""
            if not value:
                raise Fail("no lkmlab: set LKMLAB to this checkout's build (cargo build -p lkmlab)")
            value = self.bind(os.path.dirname(os.path.realpath(value)), "lkmlab-bin") + "/" + os.path.basename(value)
        elif name == "guest-runner":
            value = str(self.guest_runner())
        else:
            raise Fail(f"tools.toml: unknown placeholder @{name}@")
        self.placeholders[name] = value
        return value

    def bind(self, host_dir, name):
        """A host directory a build cannot reach (under /root, mode 0700, or
        hidden by sandbox.sh in build mode, as the checkout is) is bound by
        sandbox.sh at root/host/NAME; return that path."""
        self.binds[name] = host_dir
        return str(self.root / "host" / name)

    def expand(self, text):
        return re.sub(r"@([a-z-]+)@", lambda m: self.placeholder(m.group(1)), text)

    def mirror_file(self, name, sha256):
        dirs = [os.environ.get("LKMLAB_MIRROR"), str(REPO.parent / "shared/sources"),
                str(Path.home() / ".cache/lkmlab/downloads")]
        for d in filter(None, dirs):
            p = Path(d) / name
            if p.is_file() and sha256_file(p) == sha256:
                return p
        raise Fail(f"{name} (sha256 {sha256[:12]}…) is in no mirror ({', '.join(filter(None, dirs))}); "
                   "the replica has no network: put the file in LKMLAB_MIRROR")

    def rust_src(self):
        rs = self.pin["toolchain"]["rust_src"]
        out = self.cache / f"rust-src-{rs['sha256'][:16]}"
        lib = out / rs["library"]
        if not lib.is_dir():
            deb = self.mirror_file(rs["file"], rs["sha256"])
            shutil.rmtree(out, ignore_errors=True)
            run(["dpkg-deb", "-x", str(deb), str(out)])
        return lib

    def vng_venv(self):
        version = self.table["tool"]["virtme-ng"]["version"]
        venv = self.cache / f"virtme-ng-{version}"
        cfg = venv / "pyvenv.cfg"
        made_by_debian = cfg.is_file() and "home = /usr/bin\n" in cfg.read_text()
        if not ((venv / "bin/vng").exists() and made_by_debian):
            say(f"virtme-ng {version} (nixpkgs' version) from PyPI into {venv}")
            shutil.rmtree(venv, ignore_errors=True)
            # Debian's python, not whichever is first on PATH: a pyenv
            # python lives under /root (mode 0700), where the sandbox's
            # build user cannot reach the venv's interpreter.
            run(["/usr/bin/python3", "-m", "venv", str(venv)])
            r = run([str(venv / "bin/pip"), "install", "--quiet", f"virtme-ng=={version}"],
                    capture_output=True, text=True, check=False)
            if r.returncode != 0:
                raise Fail(f"pip install virtme-ng=={version} failed:\n{r.stderr}")
        return venv

    def guest_runner(self):
        # The static runner as lkmlab builds it (lkmlab/src/vm/guest.rs).
        env = dict(os.environ, CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static")
        env.pop("RUSTFLAGS", None)
        run(["cargo", "build", "--quiet", "--release", "--locked", "-p", "lkmlab-guest",
             "--target", "x86_64-unknown-linux-gnu"], cwd=REPO, env=env)
        # Bound: the sandbox hides the checkout.
        return Path(self.bind(str(REPO / "target/x86_64-unknown-linux-gnu/release"), "guest-runner-bin")) / "lkmlab-guest"

    # ----------------------------------------------------------- the table
    def debian_bins(self, key, packages):
        bins = {}
        for pkg in packages:
            st = run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True, check=False)
            if "install ok installed" not in st.stdout:
                raise Fail(f"tools.toml [tool.{key}] maps to Debian package {pkg}, which is not installed "
                           f"(apt-get install {pkg}, or .ci/replica/run --apt)")
            for line in run(["dpkg", "-L", pkg], capture_output=True, text=True).stdout.splitlines():
                p = Path(line)
                if p.parent.as_posix() in ("/bin", "/sbin", "/usr/bin", "/usr/sbin") and os.access(p, os.X_OK) \
                        and not p.is_dir():
                    bins.setdefault(p.name, str(p))
        return bins

    def tool_links(self, key):
        """name -> target path (host path, or a generated wrapper)."""
        entry = self.table["tool"].get(key)
        if entry is None:
            raise Fail(f"tools.toml has no [tool.{key}]")
        bins = self.debian_bins(key, entry.get("debian", []))
        if "only" in entry:
            missing = [n for n in entry["only"] if n not in bins]
            if missing:
                raise Fail(f"tools.toml [tool.{key}]: {', '.join(missing)} not in Debian package(s) {entry.get('debian')}")
            bins = {n: bins[n] for n in entry["only"]}
        for name, target in entry.get("bin", {}).items():
            bins[name] = self.expand(target)
        for name, target in bins.items():
            if not os.access(self.unbind(target), os.X_OK):
                raise Fail(f"tools.toml [tool.{key}]: {name} -> {target}, which is not an executable here")
        return bins

    def unbind(self, path):
        for name, host_dir in self.binds.items():
            prefix = str(self.root / "host" / name)
            if path == prefix or path.startswith(prefix + "/"):
                return host_dir + path[len(prefix):]
        return path

    def env_value(self, value):
        value = self.expand(value)
        if value.startswith(("/usr/bin/", "/usr/sbin/")):
            if not os.access(value, os.X_OK):
                raise Fail(f"tools.toml: {value} is not an executable here")
            return self.host_path(value)
        return value

    def host_path(self, target):
        """Where the sandbox reaches a host executable: /usr/bin and /usr/sbin
        are hidden there; all of /usr is bound at root/host/usr."""
        if target.startswith(str(self.root / "host") + "/"):
            return target
        real = os.path.realpath(target)
        if real.startswith("/usr/"):
            return str(self.root / "host") + real
        return real

    def make_tool(self, drv_path, drv):
        key = drv["env"]["replicaTool"]
        entry = self.table["tool"][key]
        outputs = {name: o["path"] for name, o in drv["outputs"].items()}
        bin_output = "bin" if "bin" in outputs else "out"
        links = self.tool_links(key)
        mapping = {"links": links, "env": entry.get("env", {}), "dirs": entry.get("dirs", {}),
                   "path": self.expand(entry["path"]) if "path" in entry else None,
                   "hook": sha256_file(HERE / entry["hook"]) if "hook" in entry else None}
        key_text = json.dumps(mapping, sort_keys=True)
        self.key_of[drv_path] = hashlib.sha256((drv_path + key_text).encode()).hexdigest()
        for name, path in outputs.items():
            dst = self.store / base(path)
            if dst.is_symlink() or dst.is_file():
                dst.unlink()
            elif dst.exists():
                shutil.rmtree(dst)
            if mapping["path"]:
                if not Path(mapping["path"]).exists():
                    raise Fail(f"tools.toml [tool.{key}]: {mapping['path']} does not exist")
                dst.symlink_to(mapping["path"])
                continue
            dst.mkdir()
            for d, target in mapping["dirs"].items():
                (dst / d).symlink_to(self.expand(target))
            if name == bin_output and links:
                (dst / "bin").mkdir()
                for n, target in links.items():
                    link = dst / "bin" / n
                    if mapping["env"]:
                        exports = "".join(f"export {k}={shlex.quote(self.env_value(v))}\n"
                                          for k, v in mapping["env"].items())
                        link.write_text(f"#!{self.host_path('/usr/bin/bash')}\n{exports}"
                                        f"exec -a \"$0\" {shlex.quote(self.host_path(target))} \"$@\"\n")
                        link.chmod(0o555)
                    else:
                        link.symlink_to(self.host_path(target))
            if name == "dev" and bin_output != "dev" and len(outputs) > 1:
                (dst / "nix-support").mkdir()
                (dst / "nix-support/propagated-build-inputs").write_text(outputs[bin_output] + "\n")
            if "hook" in entry:
                (dst / "nix-support").mkdir(exist_ok=True)
                shutil.copy(HERE / entry["hook"], dst / "nix-support/setup-hook")

    # ------------------------------------------------------------- builds
    def inputs_of(self, drv):
        paths = list(drv["inputSrcs"])
        for path, outs in drv["inputDrvs"].items():
            for o in outs:
                paths.append(self.drvs[path]["outputs"][o]["path"])
        return paths

    def closure(self, drv_path, memo):
        """Store entries a build may read: its inputs, their inputs (an upper
        bound of the inputs' runtime closure), all outputs of a tool."""
        if drv_path in memo:
            return memo[drv_path]
        drv = self.drvs[drv_path]
        seen = set(base(p) for p in drv["inputSrcs"])
        for path, outs in drv["inputDrvs"].items():
            dep = self.drvs[path]
            names = dep["outputs"] if "replicaTool" in dep["env"] else outs
            for o in names:
                seen.add(base(dep["outputs"][o]["path"]))
            seen |= self.closure(path, memo)
        memo[drv_path] = seen
        return seen

    def copy_sources(self, drv):
        for src in drv["inputSrcs"]:
            dst = self.store / base(src)
            if dst.exists() or dst.is_symlink():
                continue
            tmp = self.store / (".tmp-" + base(src))
            shutil.rmtree(tmp, ignore_errors=True)
            run(["cp", "-a", "--no-preserve=ownership", src, str(tmp)])
            run(["chmod", "-R", "a-w", str(tmp)])
            tmp.rename(dst)

    def build_key(self, drv_path):
        drv = self.drvs[drv_path]
        # The sandbox is part of how it was built (the .drv does not say).
        parts = [drv_path, sha256_file(HERE / "sandbox.sh")] + sorted(self.key_of[p] for p in drv["inputDrvs"])
        if "replicaStandin" in drv["env"]:
            # What stands in for the output is an input too.
            for name, target in sorted(self.standin_bins(drv).items()):
                parts.append(f"{name}={sha256_file(self.unbind(target))}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def rewrite(self, drv, value):
        """Nix replaces each output's placeholder with its path at build time."""
        for name, o in drv["outputs"].items():
            value = value.replace(placeholder(name), o["path"])
        return value

    def structured(self, drv, build):
        attrs = json.loads(self.rewrite(drv, drv["env"]["__json"]))
        attrs["outputs"] = {name: o["path"] for name, o in drv["outputs"].items()}
        (build / ".attrs.json").write_text(json.dumps(attrs))
        lines = []
        for k, v in attrs.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                continue
            if isinstance(v, bool):
                lines.append(f"declare {k}={'1' if v else shlex.quote('')}")
            elif isinstance(v, (str, int)):
                lines.append(f"declare {k}={shlex.quote(str(v))}")
            elif isinstance(v, list) and all(isinstance(x, (str, int)) for x in v):
                lines.append(f"declare -a {k}=(" + " ".join(shlex.quote(str(x)) for x in v) + ")")
            elif isinstance(v, dict) and all(isinstance(x, (str, int, bool)) for x in v.values()):
                items = " ".join(f"[{shlex.quote(a)}]={shlex.quote(str(b))}" for a, b in v.items())
                lines.append(f"declare -A {k}=({items})")
        (build / ".attrs.sh").write_text("\n".join(lines) + "\n")

    def sandbox(self, label, drv_path, env, cmd, mode="build", files=None):
        """Run cmd in sandbox.sh; its log goes to logs/LABEL.log. Returns the
        stage directory (where the outputs are) and the exit status."""
        drv = self.drvs[drv_path]
        tag = base(drv_path)[:12]
        stage = self.work / "stage" / tag
        build = self.work / "build" / tag
        spec = self.work / "spec" / tag
        self.discard(stage, build, spec)
        for d in (stage, build, spec):
            d.mkdir(parents=True)
        os.chown(build, BUILD_UID, BUILD_UID)
        os.chown(stage, BUILD_UID, BUILD_UID)
        visible = sorted(self.closure(drv_path, {}))
        if drv["env"].get("__json"):
            self.structured(drv, build)
            os.chown(build / ".attrs.json", BUILD_UID, BUILD_UID)
            os.chown(build / ".attrs.sh", BUILD_UID, BUILD_UID)
        full_env = {
            "PATH": "/path-not-set",
            "HOME": "/homeless-shelter",
            "NIX_STORE": STORE,
            "NIX_BUILD_CORES": str(os.cpu_count() or 1),
            "NIX_BUILD_TOP": str(build),
            "TMPDIR": str(build), "TEMPDIR": str(build), "TMP": str(build), "TEMP": str(build),
            "PWD": str(build),
            "TERM": "xterm-256color",
            "NIX_LOG_FD": "2",
        }
        for name, value in (files or {}).items():
            # passAsFile: Nix writes the attribute to a file in the build
            # directory and sets NAMEPath.
            path = build / f".attr-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
            path.write_text(value)
            os.chown(path, BUILD_UID, BUILD_UID)
            env[f"{name}Path"] = str(path)
        if drv["env"].get("__json"):
            full_env["NIX_ATTRS_JSON_FILE"] = str(build / ".attrs.json")
            full_env["NIX_ATTRS_SH_FILE"] = str(build / ".attrs.sh")
        full_env.update(env)
        for name, value in {"root": self.root, "stage": stage, "build": build, "uid": BUILD_UID,
                            "mode": mode, "keep": self.work}.items():
            (spec / name).write_text(str(value))
        (spec / "binds").write_bytes(b"".join(f"{n}\0{d}\0".encode() for n, d in self.binds.items()))
        (spec / "visible").write_bytes(b"".join(v.encode() + b"\0" for v in visible))
        (spec / "env").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in full_env.items()))
        (spec / "cmd").write_bytes(b"".join(c.encode() + b"\0" for c in cmd))
        log = self.logs / f"{label}.log"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(log, "wb") as f:
            p = subprocess.run(
                ["nice", "-n", str(self.args.nice), "unshare", "--net", "--mount", "--pid", "--fork",
                 "--mount-proc", "--propagation", "private", "--", "bash", str(HERE / "sandbox.sh"), str(spec)],
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu[label] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return stage, p.returncode, log

    def drv_env(self, drv):
        env = {k: self.rewrite(drv, v) for k, v in drv["env"].items() if k != "__json"}
        files = {}
        if "__json" not in drv["env"]:
            for name in env.get("passAsFile", "").split():
                files[name] = env.pop(name, "")
        return env, files

    def replay(self, label, drv_path, extra_env=None):
        drv = self.drvs[drv_path]
        env, files = self.drv_env(drv)
        env.update(extra_env or {})
        cmd = [drv["builder"], *drv["args"]]
        t0 = time.monotonic()
        stage, rc, log = self.sandbox(label, drv_path, env, cmd, files=files)
        seconds = time.monotonic() - t0
        if rc != 0:
            raise Fail(f"{label}: the build failed (exit {rc}) after {seconds:.0f} s; "
                       f"last lines of {log}:\n{tail(log)}{self.diagnose(log)}")
        outputs = {name: o for name, o in drv["outputs"].items()}
        for name, o in outputs.items():
            got = stage / base(o["path"])
            if not (got.exists() or got.is_symlink()):
                raise Fail(f"{label}: the builder produced no output {name} ({o['path']}); log: {log}")
            if o.get("hash"):
                algo = o["hashAlgo"]
                if algo != "sha256" or got.is_dir():
                    raise Fail(f"{label}: fixed-output hash {algo} is not modelled by the replica")
                actual = sha256_file(got)
                if actual != o["hash"]:
                    raise Fail(f"{label}: hash mismatch for {o['path']}: wanted sha256 {o['hash']}, got {actual}")
        for name, o in outputs.items():
            dst = self.store / base(o["path"])
            if dst.exists() or dst.is_symlink():
                run(["rm", "-rf", str(dst)])
            (stage / base(o["path"])).rename(dst)
        self.discard(stage, self.work / "build" / base(drv_path)[:12])
        return seconds

    def discard(self, *dirs):
        """Remove build directories in the background, at idle I/O priority:
        deleting an unpacked kernel tree takes minutes on a slow disk."""
        trash = self.work / "trash"
        trash.mkdir(exist_ok=True)
        moved = []
        for d in dirs:
            if d.exists():
                target = trash / f"{d.name}-{time.time_ns()}"
                d.rename(target)
                moved.append(str(target))
        if moved:
            subprocess.Popen(["ionice", "-c3", "nice", "-n", "19", "rm", "-rf", *moved],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)

    def diagnose(self, log):
        """Name the tool a build reached for without declaring it."""
        text = log.read_text(errors="replace")[-200000:]
        names = set(re.findall(r"(?:^|[\s:/])([\w.+-]+): (?:command )?not found", text, re.M))
        names |= set(re.findall(r"/usr/bin/env: ['‘]?([\w.+-]+)['’]?: No such file", text))
        names |= set(re.findall(r"(/usr/s?bin/[\w.+-]+): No such file", text))
        names -= {"sh", "line"}
        if not names:
            return ""
        listed = ", ".join(sorted(names))
        return (f"\nreplica: the build ran {listed}, which none of its declared inputs provides: "
                f"declare the nixpkgs package that has it in the Nix file (and map it in {self.tools_file.name})")

    def fetch(self, label, drv_path):
        drv = self.drvs[drv_path]
        o = drv["outputs"]["out"]
        if o.get("hashAlgo") != "sha256":
            raise Fail(f"{label}: fetchurl with {o.get('hashAlgo')} is not modelled by the replica")
        names = [urllib.parse.unquote(u.rsplit("/", 1)[-1]) for u in drv["env"]["urls"].split()]
        last = None
        for name in names:
            try:
                src = self.mirror_file(name, o["hash"])
                break
            except Fail as e:
                last = e
        else:
            raise last
        dst = self.store / base(o["path"])
        if not dst.exists():
            shutil.copy(src, dst)
            dst.chmod(0o444)

    def standin_bins(self, drv):
        pname = drv["env"]["replicaStandin"]
        entry = self.table.get("standin", {}).get(pname)
        if entry is None:
            raise Fail(f"{pname}: a buildRustPackage the replica does not replay, and tools.toml has no [standin.{pname}]")
        return {n: self.expand(t) for n, t in entry["bin"].items()}

    def standin(self, label, drv_path):
        drv = self.drvs[drv_path]
        bins = " ".join(f"{n}={self.host_path(t)}" for n, t in self.standin_bins(drv).items())
        return self.replay(label, drv_path, {"phases": "replicaStandinPhase", "replicaStandinBins": bins})

    def needed_drvs(self, drv_path, seen=None):
        """drv_path and every derivation it needs."""
        seen = set() if seen is None else seen
        if drv_path not in seen:
            seen.add(drv_path)
            for dep in self.drvs[drv_path]["inputDrvs"]:
                self.needed_drvs(dep, seen)
        return seen

    def without(self, outputs, leave_out):
        """(outputs that do not need leave_out's derivation, those that do)."""
        drv = self.plan["outputs"][leave_out]
        kept, left = [], []
        for name in outputs:
            needs = name == leave_out or drv in self.needed_drvs(self.plan["outputs"][name])
            (left if needs else kept).append(name)
        return kept, left

    def realise(self, drv_path, labels):
        """Build drv_path after its inputs (depth first)."""
        if drv_path in self.key_of:
            return
        drv = self.drvs[drv_path]
        for dep in drv["inputDrvs"]:
            self.realise(dep, labels)
        env = drv["env"]
        label = labels.get(drv_path, drv["env"].get("name", base(drv_path)))
        if "replicaTool" in env:
            self.make_tool(drv_path, drv)
            return
        self.copy_sources(drv)
        key = self.build_key(drv_path)
        self.key_of[drv_path] = key
        keyfile = self.keys / base(drv_path)
        have = all((self.store / base(o["path"])).exists() for o in drv["outputs"].values())
        if have and keyfile.exists() and keyfile.read_text() == key:
            self.results.append((label, True, 0.0, "unchanged, kept"))
            return
        t0 = time.monotonic()
        kind = "fetch" if "replicaFetch" in env else "stand-in" if "replicaStandin" in env else "replay"
        say(f"{label}: {kind} ({base(drv_path)})")
        try:
            if kind == "fetch":
                self.fetch(label, drv_path)
            elif kind == "stand-in":
                self.standin(label, drv_path)
            else:
                self.replay(label, drv_path)
        except Fail as e:
            self.results.append((label, False, time.monotonic() - t0, kind))
            raise e
        keyfile.write_text(key)
        self.results.append((label, True, time.monotonic() - t0, kind))

    # ---------------------------------------------------------------- apps
    def app(self, name, drv_path):
        program = self.plan["apps"][name]["program"]
        script = self.store / base(program)
        if not script.exists():
            raise Fail(f"apps.{name}: {program} was not built")
        t0 = time.monotonic()
        if not shutil.which("shellcheck"):
            raise Fail("shellcheck not found (apt-get install shellcheck, or .ci/replica/run --apt)")
        r = run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise Fail(f"apps.{name}: shellcheck {program}:\n{r.stdout}{r.stderr}")
        out = self.work / f"app-{name}"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir()
        os.chown(out, BUILD_UID, BUILD_UID)
        env = {"PATH": "/replica-inherited-path-is-empty", "HOME": str(out), "TERM": "dumb",
               "USER": "replica", "LOGNAME": "replica"}
        if name == "test":
            # As `nix run .#test` runs it: its own defaults (--accel auto, and
            # results in ./lkmlab-results of the working directory, which is
            # the sandbox's build directory here); then with --accel and --out
            # given, which the script must leave to the user.
            # --clear-groups drops the kvm group in the sandbox, so --accel
            # auto's probe picks TCG here even where /dev/kvm exists.
            runs = [("defaults", [], self.work / "build" / base(drv_path)[:12] / "lkmlab-results"),
                    ("given", ["--accel", "tcg", "--out", str(out / "results")], out / "results")]
        else:
            runs = [("exec", ["--exec", 'insmod "$LKMLAB_MODULES/scull.ko" && rmmod scull && echo scull-unloaded'], None)]
        for run_name, args, results in runs:
            stage, rc, log = self.sandbox(f"apps.{name}.{run_name}", drv_path, env, [program, *args], mode="app")
            self.discard(stage)
            shown = " ".join(["nix", "run", f".#{name}", *(["--", *args] if args else [])])
            if rc != 0:
                raise Fail(f"apps.{name}: `{shown}` exited {rc}; last lines of {log}:\n{tail(log)}")
            if results is not None:
                for f in ("results.ktap", "junit.xml", "console.log"):
                    if not (results / f).is_file():
                        raise Fail(f"apps.{name}: `{shown}` left no {f} in {results}")
            elif "scull-unloaded" not in log.read_text(errors="replace"):
                raise Fail(f"apps.{name}: the command in the VM did not finish; see {log}")
        self.results.append((f"apps.{name}", True, time.monotonic() - t0, "shellcheck + run"))


def nix32(digest):
    """Nix's base-32 (libutil/hash.cc): least significant 5 bits last."""
    chars = "0123456789abcdfghijklmnpqrsvwxyz"
    out = []
    for n in range((len(digest) * 8 - 1) // 5, -1, -1):
        byte, bit = divmod(n * 5, 8)
        c = digest[byte] >> bit
        if byte + 1 < len(digest):
            c |= digest[byte + 1] << (8 - bit)
        out.append(chars[c & 0x1F])
    return "".join(out)


def placeholder(output):
    """builtins.placeholder: "/" + nix32(sha256("nix-output:" + output))."""
    return "/" + nix32(hashlib.sha256(f"nix-output:{output}".encode()).digest())


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tail(log, n=25):
    lines = log.read_text(errors="replace").splitlines()[-n:]
    return "".join(f"  {line}\n" for line in lines)


def apt_install(table):
    wanted = sorted({p for t in table["tool"].values() for p in t.get("debian", [])}
                    | {"shellcheck", "python3-venv"})
    missing = [p for p in wanted if "install ok installed" not in run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True, check=False).stdout]
    if missing:
        say(f"apt-get install {' '.join(missing)}")
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outputs", nargs="*", help=f"flake outputs (default: {' '.join(DEFAULT_OUTPUTS)})")
    ap.add_argument("--work", default=str(REPO / "target/replica"), help="work directory (kept between runs)")
    ap.add_argument("--tools", default=str(HERE / "tools.toml"), help="the tools table to replay with")
    ap.add_argument("--lib", help="nixpkgs lib/ (default: the snapshot in ../shared/nix)")
    ap.add_argument("--apt", action="store_true", help="install the Debian packages tools.toml names")
    ap.add_argument("--apt-only", action="store_true",
                    help="only install them (CI does this before its kernel builds: gawk among "
                         "them would otherwise replace the awk those builds started with)")
    ap.add_argument("--ci", action="store_true",
                    help=f"the default outputs except those that need {CI_LEAVES_OUT} (what CI replays)")
    ap.add_argument("--nice", type=int, default=10, help="nice level of the builds (default 10)")
    ap.add_argument("--expect-missing", metavar="TOOL",
                    help="seeded omission: TOOL is removed from a copy of the table; the replica "
                         "must fail, naming it")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("replica: needs root (mount namespaces, a build user); CI runs as root", file=sys.stderr)
        return 2

    work = Path(args.work).resolve()
    hidden = next((d for d in SANDBOX_REPLACES if work.is_relative_to(d)), None)
    if hidden:
        print(f"replica: the work directory {work} is under {hidden}, which the sandbox replaces "
              "(sandbox.sh), so its builds could not see it: give --work a directory elsewhere, "
              "or clone the repository outside it", file=sys.stderr)
        return 2

    if args.expect_missing:
        return seeded(args)

    table = tomllib.loads(Path(args.tools).read_text())
    if args.apt or args.apt_only:
        apt_install(table)
    if args.apt_only:
        return 0
    if args.ci and args.outputs:
        print("replica: --ci chooses the outputs itself: give either --ci or OUTPUT names", file=sys.stderr)
        return 2
    r = Replica(args)
    outputs = args.outputs or DEFAULT_OUTPUTS
    t0 = time.monotonic()
    failed = None
    try:
        r.evaluate()
        if args.ci:
            outputs, left_out = r.without(outputs, CI_LEAVES_OUT)
            say(f"--ci: not replaying {CI_LEAVES_OUT} and what needs it: {', '.join(left_out)}")
        labels = {v: k for k, v in r.plan["outputs"].items()}
        for name in outputs:
            if name not in r.plan["outputs"]:
                raise Fail(f"no flake output {name} (known: {', '.join(sorted(r.plan['outputs']))})")
            drv = r.plan["outputs"][name]
            if name.startswith("apps."):
                for dep in r.drvs[drv]["inputDrvs"]:
                    r.realise(dep, labels)
                r.app(name.split(".", 1)[1], drv)
            else:
                r.realise(drv, labels)
    except Fail as e:
        failed = str(e)
        if not r.results or r.results[-1][1]:
            r.results.append(("(the step above)", False, 0.0, "error"))
    total = time.monotonic() - t0
    print("\nreplica (each derivation built as the Nix sandbox would, Debian tools per tools.toml):")
    for label, ok, seconds, note in r.results:
        cpu = f"{r.cpu[label]:7.1f} s CPU" if label in r.cpu else " " * 13
        print(f"  {'PASS' if ok else 'FAIL'}  {label:40} {seconds:7.1f} s {cpu}  {note}")
    if failed:
        print(f"\n{failed}", file=sys.stderr)
    passed = sum(1 for _, ok, _, _ in r.results if ok)
    print(f"replica: {passed} passed, {len(r.results) - passed} failed, in {total:.0f} s "
          f"({sum(r.cpu.values()) / 60:.1f} CPU-minutes of builds)")
    return 1 if failed else 0


def seeded(args):
    """Remove TOOL from a copy of the table and replay the kernel: the
    replica must fail and name TOOL."""
    tool = args.expect_missing
    table = tomllib.loads(Path(args.tools).read_text())
    if tool not in table["tool"]:
        print(f"replica: tools.toml has no [tool.{tool}]", file=sys.stderr)
        return 2
    # Keep the section and its outputs; drop what maps it to Debian.
    text = Path(args.tools).read_text()
    section = re.compile(rf'^\[tool\.{re.escape(tool)}\]\n(?:(?!\[).*\n)*', re.M)
    drop = re.compile(r'^(debian|bin|only|path|dirs|env|hook) *=.*\n', re.M)
    seeded_text, n = section.subn(lambda m: drop.sub("", m.group(0)), text)
    if n != 1 or seeded_text == text:
        print(f"replica: cannot find the [tool.{tool}] section to empty", file=sys.stderr)
        return 2
    copy = Path(args.work).resolve() / f"tools-without-{tool}.toml"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(seeded_text)
    args.tools = str(copy)
    r = Replica(args)
    outputs = args.outputs or ["packages.kernel"]
    t0 = time.monotonic()
    try:
        r.evaluate()
        labels = {v: k for k, v in r.plan["outputs"].items()}
        for name in outputs:
            r.realise(r.plan["outputs"][name], labels)
    except Fail as e:
        message = str(e)
        named = re.search(rf"the build ran [^\n]*\b{re.escape(tool)}\b", message) is not None
        print(message, file=sys.stderr)
        print(f"\nreplica: seeded omission of {tool}: the replica failed after {time.monotonic() - t0:.0f} s, "
              f"{'naming' if named else 'NOT naming'} {tool}")
        return 0 if named else 1
    print(f"replica: seeded omission of {tool}: the replica did NOT fail: the check is broken")
    return 1


if __name__ == "__main__":
    sys.exit(main())
