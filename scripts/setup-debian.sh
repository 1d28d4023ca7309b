#!/usr/bin/env bash
# Set up a Debian or Ubuntu host for lkmlab without Nix: the packages the
# pipeline needs, bindgen-cli at the pinned version, and lkmlab itself.
# Idempotent: run it again after pulling a new pin.
#
#   scripts/setup-debian.sh          # then: lkmlab check
#   scripts/setup-debian.sh --with-rust-analyzer
#       also rust-analyzer for `lkmlab rust-analyzer --check` (compiled from
#       crates.io: several minutes). --only-rust-analyzer does just that.
set -euo pipefail

usage() { sed -n '2,10s/^# \{0,1\}//p' "$0"; }
with_ra=0
only_ra=0
for arg in "$@"; do
  case "$arg" in
    --with-rust-analyzer) with_ra=1 ;;
    --only-rust-analyzer) with_ra=1; only_ra=1 ;;
    -h|--help) usage; exit 0 ;;
    *) printf 'setup: error: unknown option %s (see --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 2; }

# rust-analyzer from crates.io (ra_ap_rust-analyzer, the version lkmlab.toml
# pins in [toolchain] rust_analyzer) into ~/.local/bin: rustup cannot fetch
# its component here and Debian 12 has no package. Compiled at opt-level 1,
# which halves the build (measured: 10 CPU-minutes instead of about 20) for a
# slower analysis (a quarter slower). cargo skips the build
# when that version is installed already.
install_rust_analyzer() {
  local version root
  version=$(sed -n 's/^rust_analyzer *= *"\([^"]*\)".*/\1/p' lkmlab.toml)
  [ -n "$version" ] || die "lkmlab.toml has no [toolchain] rust_analyzer"
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs), then run this again"
  root=${LKMLAB_RUST_ANALYZER_ROOT:-$HOME/.local}
  say "rust-analyzer: cargo install ra_ap_rust-analyzer $version into $root/bin (compiles for several minutes unless present)"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
  CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_LTO=false \
    cargo install --quiet --locked ra_ap_rust-analyzer --version "$version" --root "$root"
  "$root/bin/rust-analyzer" --version >/dev/null ||
    die "$root/bin/rust-analyzer does not run"
  say "rust-analyzer: $root/bin/rust-analyzer (lkmlab rust-analyzer --check finds it on PATH or in ~/.local/bin; else pass --rust-analyzer)"
}
if [ "$only_ra" -eq 1 ]; then
  install_rust_analyzer
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: install the packages below as root"
  sudo="sudo"
fi

# Kernel build (make gcc flex bison bc perl libelf-dev libssl-dev, and lz4 for
# the LZ4-compressed image kernel-config/base.config asks for), Rust
# bindings (libclang-19-dev: the kernel needs libclang >= 17), the LLVM
# toolchain of the debug flavor (clang-19 lld-19 llvm-19: KASAN with Rust
# needs a clang-built kernel, lkmlab.toml [toolchain] llvm), the static guest
# runner (libc6-dev's libc.a), fetching and unpacking (curl tar xz-utils),
# the VM (qemu-system-x86) and a shell for guest test scripts (busybox-static).
# arm64 targets (cross-built with the same clang): their VM (qemu-system-arm)
# and Debian's cross C library, against which the arm64 guest runner is linked
# statically (libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross).
# pahole: Kconfig records its version in .config (CONFIG_PAHOLE_VERSION), so
# it is part of every kernel's cache key; installed later (the Nix replica
# needs it), it would make every cached kernel stale.
# The interactive lab (`lkmlab vm`): pipx for virtme-ng (below), and udev and
# kmod, because the guest runs the host's own udevd and insmod/rmmod.
packages=(make gcc libc6-dev binutils flex bison bc perl lz4 pahole cpio tar xz-utils curl
          ca-certificates libelf-dev libssl-dev libclang-19-dev clang-19 lld-19 llvm-19
          qemu-system-x86 qemu-system-arm libc6-dev-arm64-cross libgcc-12-dev-arm64-cross
          busybox-static pipx udev kmod)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages: all present"
fi

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs), then run this again"

# The pinned bindgen-cli version lives in lkmlab.toml ([toolchain] bindgen_cli).
bindgen_version=$(sed -n 's/^bindgen_cli *= *"\([^"]*\)".*/\1/p' lkmlab.toml)
[ -n "$bindgen_version" ] || die "lkmlab.toml has no [toolchain] bindgen_cli"
if bindgen --version 2>/dev/null | grep -qx "bindgen $bindgen_version"; then
  say "bindgen $bindgen_version: present"
else
  say "installing bindgen-cli $bindgen_version from crates.io (a few minutes)"
  cargo install --quiet bindgen-cli --locked --version "$bindgen_version"
fi

# virtme-ng for `lkmlab vm`, at the version lkmlab is tested with, from PyPI
# through pipx: Debian 12 refuses `pip install --user` into its Python (PEP 668),
# and bookworm has no virtme-ng package. vng lands in ~/.local/bin.
vng_version=$(sed -n 's/^pub const VNG_TESTED: &str = "\([^"]*\)";/\1/p' lkmlab/src/lab/vng.rs)
[ -n "$vng_version" ] || die "lkmlab/src/lab/vng.rs has no VNG_TESTED"
vng_bin=${PIPX_BIN_DIR:-$HOME/.local/bin}/vng
if "$vng_bin" --version 2>/dev/null | grep -qx "virtme-ng $vng_version"; then
  say "virtme-ng $vng_version: present"
else
  say "installing virtme-ng $vng_version with pipx"
  out=$(pipx install --force "virtme-ng==$vng_version" 2>&1) ||
    die "pipx install virtme-ng==$vng_version failed:
$out"
fi

if [ "$with_ra" -eq 1 ]; then
  install_rust_analyzer
fi

say "installing lkmlab from $here/lkmlab"
cargo install --quiet --locked --path lkmlab

bin=$(dirname "$(command -v cargo)")
case ":$PATH:" in
  *":$bin:"*) ;;
  *) say "add $bin to PATH to run lkmlab" ;;
esac
case ":$PATH:" in
  *":$(dirname "$vng_bin"):"*) ;;
  *) say "add $(dirname "$vng_bin") to PATH to run vng yourself (lkmlab vm finds it there anyway)" ;;
esac
say "done: run \`lkmlab doctor\`, then \`lkmlab check\`"
