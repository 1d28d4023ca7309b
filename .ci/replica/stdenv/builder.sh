# shellcheck shell=bash
# The builder of every mock derivation (mock-nixpkgs.nix runs it as
# `bash -e builder.sh`, as nixpkgs runs its default-builder.sh): the
# replica's setup, then the build.
set -euo pipefail
if [ -n "${NIX_ATTRS_SH_FILE-}" ]; then
  # shellcheck source=/dev/null
  source "$NIX_ATTRS_SH_FILE"
fi
# replicaSetup is a derivation attribute (mock-nixpkgs.nix):
# shellcheck source=/dev/null disable=SC2154
source "$replicaSetup"
genericBuild
