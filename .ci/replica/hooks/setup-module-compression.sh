# shellcheck shell=bash
# Stand-in for build.nix's setup-module-compression hook: after configure,
# xz (when the kernel compresses modules with it) uses CRC32 checks, which
# the kernel's own decompressor understands.
replicaModuleCompression() { export XZ_OPT="--check=crc32"; }
postConfigureHooks+=(replicaModuleCompression)
