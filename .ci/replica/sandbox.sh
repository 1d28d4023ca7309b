#!/usr/bin/env bash
# One build, the way the Nix sandbox runs it, for .ci/replica/replica.py.
# Runs as root inside `unshare --net --mount --pid --fork --mount-proc`:
#   sandbox.sh SPEC
# SPEC is a directory written by replica.py:
#   root      the replica's root (its store/ and host/ are below it)
#   stage     an empty directory that becomes /nix/store for this build
#   build     the build directory (NIX_BUILD_TOP), owned by the build user
#   visible   NUL-separated store entries (basenames) the build may read:
#             its inputs and their closure, bound read-only from root/store
#   env, cmd  NUL-separated environment (KEY=VALUE) and command
#   binds     NUL-separated NAME, DIR pairs: host directories bound
#             read-only at root/host/NAME (the rust toolchain under /root)
#   uid       the build user (Nix builds as nixbld, not root)
#   mode      "build" (the sandbox) or "app" (a user's machine: /usr stays;
#             only the top-level directory above the work directory is
#             hidden, so that the build user reaches the work directory)
#   keep      the replica's work directory (holds root, stage and build)
# In "build" mode /usr/bin, /usr/sbin, /usr/local, /tmp and /dev are
# replaced: /usr/bin has only sh (dash, for Nix's sandbox-shell), /dev only
# null, zero, full, random, urandom, tty, pts, ptmx, shm and fd, so a tool
# reached by absolute path or an unpatched `#!/usr/bin/env` fails as in Nix.
# The host's other top-level directories (the checkout, /root, /home, /var,
# /opt...) are hidden under empty tmpfs, except /nix, /usr, /proc, /sys,
# /dev, /tmp and /etc; the work directory `keep` is put back at its path.
set -euo pipefail

spec=$1
read_field() { cat "$spec/$1"; }
root=$(read_field root)
stage=$(read_field stage)
build=$(read_field build)
uid=$(read_field uid)
mode=$(read_field mode)
host=$root/host

# The host's executables stay reachable for the tool links, at
# root/host/usr/bin/...: all of /usr is bound there, so that a program that
# finds its files relative to itself (gcc's cc1, python's lib/) finds them.
for dir in usr dev; do
  mkdir -p "$host/$dir"
  mount --bind "/$dir" "$host/$dir"
done
export PATH=$host/usr/bin:$host/usr/sbin
# Host directories the build user could not reach (binds: NAME, DIR pairs).
while IFS= read -r -d '' name && IFS= read -r -d '' dir; do
  mkdir -p "$host/$name"
  mount --bind "$dir" "$host/$name"
  mount -o remount,bind,ro "$host/$name"
done < "$spec/binds"

# /nix/store: only what the build may see, read-only; its outputs are
# created in the stage directory.
mount --bind "$stage" /nix/store
while IFS= read -r -d '' entry; do
  src=$root/store/$entry
  if [ -d "$src" ]; then mkdir -p "/nix/store/$entry"; else touch "/nix/store/$entry"; fi
  mount --bind "$src" "/nix/store/$entry"
  mount -o remount,bind,ro "/nix/store/$entry"
done < "$spec/visible"

if [ "$mode" = build ]; then
  # A build that reads the checkout or $HOME by absolute path fails here as
  # in Nix. The work directory is held open across the hiding and bound back
  # with everything mounted below it (the host binds, the build directory).
  # The host's /usr/bin by its own path: PATH's $host is hidden until the
  # work directory is back.
  keep=$(read_field keep)
  exec 3<"$keep"
  for dir in /*; do
    if [ -L "$dir" ] || [ ! -d "$dir" ]; then continue; fi
    # /bin, /sbin, /lib*: links into /usr on Debian; real directories (the
    # dynamic loader) on a host without merged /usr.
    case $dir in /nix | /usr | /proc | /sys | /dev | /tmp | /etc | /bin | /sbin | /lib*) continue ;; esac
    /usr/bin/mount -t tmpfs -o mode=0755 replica-hidden "$dir"
  done
  /usr/bin/mkdir -p "$keep"
  # --no-canonicalize: mount would resolve the fd link to the path, now empty.
  /usr/bin/mount --no-canonicalize --rbind /proc/self/fd/3 "$keep"
  exec 3<&-

  mount -t tmpfs -o mode=0755 replica-usr-bin /usr/bin
  # Nix's sandbox /bin/sh is busybox-sandbox-shell: ash with no other
  # applets. Debian's busybox would run its own awk, sed... in place of the
  # declared ones (its shell prefers applets); dash is a plain sh.
  ln -s "$host/usr/bin/dash" /usr/bin/sh
  mount -t tmpfs -o mode=0755 replica-usr-sbin /usr/sbin
  mount -t tmpfs -o mode=0755 replica-usr-local /usr/local
  mount -t tmpfs -o mode=1777 replica-tmp /tmp
  mount -t tmpfs -o mode=0755 replica-dev /dev
  for node in null zero full random urandom tty; do
    touch "/dev/$node"
    mount --bind "$host/dev/$node" "/dev/$node"
  done
  mkdir /dev/pts /dev/shm
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
  ln -s pts/ptmx /dev/ptmx
  mount -t tmpfs -o mode=1777 replica-shm /dev/shm
  ln -s /proc/self/fd /dev/fd
  ln -s /proc/self/fd/0 /dev/stdin
  ln -s /proc/self/fd/1 /dev/stdout
  ln -s /proc/self/fd/2 /dev/stderr
else
  # "app" mode keeps the host as it is, but the app's tools are links into
  # the work directory (root/host/usr, the virtme-ng venv), which the build
  # user must reach through the checkout's own path: a directory above it
  # that others cannot enter (a clone in a 0700 home) made `nix run .#test`
  # exit 126. Only the top-level directory holding the work directory is
  # hidden (as build mode hides it) and the work directory bound back below
  # root-owned 0755 directories.
  keep=$(read_field keep)
  rest=${keep#/}
  top=/${rest%%/*}
  case $top in
    /nix | /usr | /proc | /sys | /dev | /tmp | /etc | /) ;;
    *)
      exec 3<"$keep"
      /usr/bin/mount -t tmpfs -o mode=0755 replica-hidden "$top"
      /usr/bin/mkdir -p "$keep"
      /usr/bin/mount --no-canonicalize --rbind /proc/self/fd/3 "$keep"
      exec 3<&-
      ;;
  esac
fi

mapfile -d '' environment < "$spec/env"
mapfile -d '' command < "$spec/cmd"
cd "$build"
# setpriv and env by their host paths: /usr/bin is gone in build mode.
exec "$host/usr/bin/setpriv" --reuid="$uid" --regid="$uid" --clear-groups -- \
  "$host/usr/bin/env" -i "${environment[@]}" "${command[@]}"
