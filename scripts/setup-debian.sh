#!/usr/bin/env bash
# Set up a Debian or Ubuntu host for lkmlab without Nix: the packages the
# pipeline needs, bindgen-cli at the pinned version, and lkmlab itself.
# Idempotent: run it again after pulling a new pin.
#
#   scripts/setup-debian.sh          # then: lkmlab check
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 2; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: install the packages below as root"
  sudo="sudo"
fi

# Kernel build (make gcc flex bison bc perl libelf-dev libssl-dev), Rust
# bindings (libclang-19-dev: the kernel needs libclang >= 17), the static guest
# runner (libc6-dev's libc.a), fetching and unpacking (curl tar xz-utils),
# the VM (qemu-system-x86) and a shell for guest test scripts (busybox-static).
# The interactive lab (`lkmlab vm`): pipx for virtme-ng (below), and udev and
# kmod, because the guest runs the host's own udevd and insmod/rmmod.
packages=(make gcc libc6-dev binutils flex bison bc perl cpio tar xz-utils curl
          ca-certificates libelf-dev libssl-dev libclang-19-dev qemu-system-x86
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
vng_version=$(sed -n 's/^pub const VNG_TESTED: &str = "\([^"]*\)";/\1/p' lkmlab/src/vm.rs)
[ -n "$vng_version" ] || die "lkmlab/src/vm.rs has no VNG_TESTED"
vng_bin=${PIPX_BIN_DIR:-$HOME/.local/bin}/vng
if "$vng_bin" --version 2>/dev/null | grep -qx "virtme-ng $vng_version"; then
  say "virtme-ng $vng_version: present"
else
  say "installing virtme-ng $vng_version with pipx"
  out=$(pipx install --force "virtme-ng==$vng_version" 2>&1) ||
    die "pipx install virtme-ng==$vng_version failed:
$out"
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
