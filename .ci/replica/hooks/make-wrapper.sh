# shellcheck shell=bash
# The wrapper's text is written with literal $ expansions:
# shellcheck disable=SC2016
# Stand-in for makeWrapper's setup hook (pkgs/build-support/setup-hooks/
# make-wrapper.sh), as far as the flake uses it:
#   wrapProgram PROG [--prefix VAR SEP VALUE]...
# moves PROG to .PROG-wrapped beside it and writes PROG as a bash script
# that sets the variables and execs the original with the same argv[0].
wrapProgram() {
  local prog=$1 hidden line
  shift
  hidden="$(dirname "$prog")/.$(basename "$prog")-wrapped"
  mv "$prog" "$hidden"
  {
    printf '#!%s\n' "$BASH"
    while [ $# -gt 0 ]; do
      case "$1" in
        --prefix)
          printf -v line '%s=%q${%s:+%q$%s}' "$2" "$4" "$2" "$3" "$2"
          printf 'export %s\n' "$line"
          shift 4
          ;;
        *)
          echo "wrapProgram: $1 is not modelled by the replica" >&2
          return 1
          ;;
      esac
    done
    printf 'exec -a "$0" %q "$@"\n' "$hidden"
  } > "$prog"
  chmod +x "$prog"
}
