# shellcheck shell=bash
# The derivation's attributes arrive as variables (env, outputs, src, out...):
# shellcheck disable=SC2154
# The replica's stand-in for nixpkgs' stdenv setup (pkgs/stdenv/generic/
# setup.sh), written for the derivations of this flake: what they use of it,
# with the same semantics, and nothing else.
#   - PATH: the bin/ of every declared input (depsBuildBuild,
#     nativeBuildInputs, buildInputs, and what their nix-support/propagated-*
#     files name), then the stdenv's compiler, then the stdenv's initialPath;
#     each input's nix-support/setup-hook is sourced.
#   - __structuredAttrs: .attrs.sh is sourced, `env` exported, the outputs
#     set; otherwise every attribute is already an environment variable.
#   - genericBuild: buildCommand, or the phases unpack, patch, configure,
#     build, check, install, fixup (fixup = patchShebangs on the outputs; no
#     stripping), honouring phases, dont*/do* and the pre/post hooks.
#   - helpers: runHook, patchShebangs (as setup-hooks/patch-shebangs.sh),
#     substituteInPlace (--replace-fail, --replace-warn, --replace), stripHash.
# Not modelled: the cc-wrapper's flags (hardening, -isystem of inputs), strip,
# patchelf, SOURCE_DATE_EPOCH from the sources' newest file (it stays
# 315532800, stdenv's default).

if [ -n "${NIX_ATTRS_SH_FILE-}" ]; then
  # shellcheck source=/dev/null
  source "$NIX_ATTRS_SH_FILE"
  for _var in "${!env[@]}"; do
    export "$_var=${env[$_var]}"
  done
  for _output in "${!outputs[@]}"; do
    export "$_output=${outputs[$_output]}"
  done
  unset _var _output
fi

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}
export SHELL=$BASH
: "${NIX_BUILD_CORES:=1}"
export NIX_BUILD_CORES

# The value of attribute $1 as words: an array under __structuredAttrs, a
# space-separated string otherwise.
_isArray() { [[ $(declare -p "$1" 2> /dev/null) == "declare -a"* ]]; }
_words() {
  local -n _ref=$1
  if _isArray "$1"; then
    [ "${#_ref[@]}" -eq 0 ] || printf '%s\0' "${_ref[@]}"
  elif [ -n "${_ref-}" ]; then
    # Word splitting is the point: that is how Nix hands over a list.
    # shellcheck disable=SC2086
    printf '%s\0' ${_ref}
  fi
}
_set() { [ -n "${!1-}" ] || _isArray "$1"; }

# --- PATH and setup hooks ---
declare -A _seen=()
_paths=()
_addInput() {
  local dir=$1 f p
  [ -n "$dir" ] || return 0
  [ -z "${_seen[$dir]-}" ] || return 0
  _seen[$dir]=1
  if [ ! -e "$dir" ]; then
    echo "replica setup: input $dir does not exist" >&2
    exit 1
  fi
  _paths+=("$dir")
  for f in propagated-native-build-inputs propagated-build-inputs; do
    if [ -f "$dir/nix-support/$f" ]; then
      # No external tools before PATH is set: $(<file), not cat.
      for p in $(< "$dir/nix-support/$f"); do _addInput "$p"; done
    fi
  done
}
for _attr in depsBuildBuild nativeBuildInputs buildInputs propagatedNativeBuildInputs propagatedBuildInputs replicaCC; do
  while IFS= read -r -d '' _p; do _addInput "$_p"; done < <(_words "$_attr")
done
_declared=("${_paths[@]}")
# shellcheck disable=SC2123 # PATH is built from the inputs, as stdenv does
PATH=
for _p in "${_declared[@]}"; do
  [ -d "$_p/bin" ] && PATH=${PATH:+$PATH:}$_p/bin
done
while IFS= read -r -d '' _p; do
  [ -d "$_p/bin" ] && PATH=${PATH:+$PATH:}$_p/bin
done < <(_words initialPath)
export PATH
for _p in "${_declared[@]}"; do
  if [ -f "$_p/nix-support/setup-hook" ]; then
    # shellcheck source=/dev/null
    source "$_p/nix-support/setup-hook"
  fi
done
unset _attr _p _declared

# --- hooks ---
runHook() {
  local name=$1 hook
  shift
  if declare -F "$name" > /dev/null; then
    "$name" "$@"
  elif [ -n "${!name-}" ]; then
    eval "${!name}"
  fi
  local hooks="${name}Hooks[@]"
  for hook in ${!hooks+"${!hooks}"}; do
    if declare -F "$hook" > /dev/null; then "$hook" "$@"; else eval "$hook"; fi
  done
}

stripHash() {
  local base
  base=$(basename "$1")
  if [[ $base =~ ^[a-z0-9]{32}- ]]; then echo "${base:33}"; else echo "$base"; fi
}

substituteInPlace() {
  local file=$1 mode from to content
  shift
  content=$(cat "$file"; printf x)
  content=${content%x}
  while [ $# -gt 0 ]; do
    mode=$1 from=$2 to=$3
    shift 3
    case "$mode" in
      --replace-fail | --replace-warn | --replace)
        if [[ $content != *"$from"* ]]; then
          if [ "$mode" = --replace-fail ]; then
            echo "substituteInPlace: $file has no '$from'" >&2
            return 1
          fi
          echo "substituteInPlace: warning: $file has no '$from'" >&2
        fi
        content=${content//"$from"/"$to"}
        ;;
      *)
        echo "substituteInPlace: $mode is not modelled by the replica" >&2
        return 1
        ;;
    esac
  done
  printf '%s' "$content" > "$file"
}

isScript() {
  local magic
  magic=$(head -c 2 "$1" 2> /dev/null || true)
  [ "$magic" = "#!" ]
}

# patch-shebangs.sh's rules: executable files with `#!`; `/usr/bin/env X`,
# `/usr/bin/env -S X ARGS` and `/any/path/X` become the X (and env) found on
# PATH; one not found stays as it was
# (and then fails in the sandbox, where /usr/bin does not exist).
patchShebangs() {
  local f line interp arg0 args new
  [ "${1-}" = --build ] || [ "${1-}" = --host ] && shift
  echo "patching script interpreter paths in $*"
  while IFS= read -r -d '' f; do
    isScript "$f" || continue
    read -r line < "$f" || [ -n "$line" ]
    read -r interp arg0 args <<< "${line:2}"
    [ "${interp:0:${#NIX_STORE}}" != "$NIX_STORE" ] || continue
    if [[ $interp == */bin/env ]]; then
      if [ "$arg0" = -S ]; then
        # `env -S PROG ARGS`: env and PROG from PATH.
        arg0=${args%% *}
        if [[ $args == *" "* ]]; then args=${args#* }; else args=; fi
        new=$(type -P env || true)
        args="-S $(type -P "$arg0" || true) $args"
      elif [[ $arg0 == -* || $arg0 == *=* ]]; then
        echo "$f: unsupported interpreter directive \"$line\"" >&2
        exit 1
      else
        new=$(type -P "$arg0" || true)
      fi
    else
      [ -n "$interp" ] || interp=/bin/sh
      new=$(type -P "$(basename "$interp")" || true)
      args="${arg0:+$arg0 }$args"
    fi
    if [ -n "$new" ] && [ "$new" != "$interp" ]; then
      new="$new${args:+ $args}"
      new=${new%"${new##*[![:space:]]}"}
      local tmp
      tmp=$(mktemp)
      { printf '#!%s\n' "$new"; tail -n +2 "$f"; } > "$tmp"
      chmod u+w "$f"
      cat "$tmp" > "$f"
      rm "$tmp"
    fi
  done < <(find "$@" -type f -perm -0100 -print0)
}

# --- phases ---
unpackPhase() {
  runHook preUnpack
  if [ -d "$src" ]; then
    cp -pr --reflink=auto -- "$src" "$(stripHash "$src")"
    _unpacked=$(stripHash "$src")
  else
    local before
    before=$(find . -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)
    tar -xf "$src"
    _unpacked=$(comm -13 <(printf '%s\n' "$before") \
      <(find . -mindepth 1 -maxdepth 1 -printf '%f\n' | sort) | head -n 1)
  fi
  : "${sourceRoot:=$_unpacked}"
  if [ ! -d "$sourceRoot" ]; then
    echo "unpackPhase: no source directory $sourceRoot" >&2
    exit 1
  fi
  chmod -R u+w -- "$sourceRoot"
  runHook postUnpack
}

patchPhase() {
  runHook prePatch
  local p
  while IFS= read -r -d '' p; do
    patch -p1 < "$p"
  done < <(_words patches)
  runHook postPatch
}

configurePhase() {
  runHook preConfigure
  if [ -x ./configure ]; then ./configure --prefix="$out"; fi
  runHook postConfigure
}

_make() { # flag attributes...
  local flags=(SHELL="$SHELL") attr w
  [ -z "${enableParallelBuilding-}" ] || flags=(-j"$NIX_BUILD_CORES" "${flags[@]}")
  for attr in "$@"; do
    while IFS= read -r -d '' w; do flags+=("$w"); done < <(_words "$attr")
  done
  echo "make ${flags[*]}"
  make "${flags[@]}"
}

buildPhase() {
  runHook preBuild
  if _set makeFlags || [ -e Makefile ] || [ -e makefile ] || [ -e GNUmakefile ]; then
    _make makeFlags makeFlagsArray buildFlags buildFlagsArray
  else
    echo "no Makefile or custom buildPhase, doing nothing"
  fi
  runHook postBuild
}

installPhase() {
  runHook preInstall
  mkdir -p "$out"
  if _set installTargets; then
    _make makeFlags makeFlagsArray installFlags installFlagsArray installTargets
  else
    # shellcheck disable=SC2034 # read by _make through a nameref
    installTargets=install
    _make makeFlags makeFlagsArray installFlags installFlagsArray installTargets
  fi
  runHook postInstall
}

checkPhase() {
  runHook preCheck
  _make makeFlags makeFlagsArray checkFlags checkFlagsArray checkTarget
  runHook postCheck
}

fixupPhase() {
  runHook preFixup
  local o
  while IFS= read -r -d '' o; do
    if [ -e "${!o}" ] && [ -z "${dontPatchShebangs-}" ]; then patchShebangs "${!o}"; fi
  done < <(_outputNames)
  runHook postFixup
}

_outputNames() {
  if [[ $(declare -p outputs 2> /dev/null) == "declare -A"* ]]; then
    printf '%s\0' "${!outputs[@]}"
  else
    _words outputs
  fi
}

# The stand-in for a derivation the replica does not replay
# (tools.toml [standin.*]): its executables copied in, then postInstall.
replicaStandinPhase() {
  local entry
  mkdir -p "$out/bin"
  for entry in $replicaStandinBins; do
    cp "${entry#*=}" "$out/bin/${entry%%=*}"
  done
  runHook postInstall
}

genericBuild() {
  if [ -n "${buildCommandPath-}" ]; then
    # shellcheck source=/dev/null
    source "$buildCommandPath"
    return
  fi
  if [ -n "${buildCommand-}" ]; then
    eval "$buildCommand"
    return
  fi
  local phase list=()
  if _set phases; then
    while IFS= read -r -d '' phase; do list+=("$phase"); done < <(_words phases)
  else
    list=(unpackPhase patchPhase configurePhase buildPhase checkPhase installPhase fixupPhase)
  fi
  for phase in "${list[@]}"; do
    case "$phase" in
      unpackPhase) [ -z "${dontUnpack-}" ] || continue ;;
      patchPhase) [ -z "${dontPatch-}" ] || continue ;;
      configurePhase) [ -z "${dontConfigure-}" ] || continue ;;
      buildPhase) [ -z "${dontBuild-}" ] || continue ;;
      checkPhase) [ -n "${doCheck-}" ] || continue ;;
      installPhase) [ -z "${dontInstall-}" ] || continue ;;
      fixupPhase) [ -z "${dontFixup-}" ] || continue ;;
    esac
    echo "replica: $phase"
    if [ -n "${!phase-}" ]; then
      eval "${!phase}"
    else
      "$phase"
    fi
    if [ "$phase" = unpackPhase ]; then cd "$sourceRoot" || exit 1; fi
  done
}
