# The Kconfig options lkmlab requests, parsed from the fragments named in
# lkmlab.toml, in the order nix/fragments.nix gives.
#
# Pure Nix (no nixpkgs), so it evaluates anywhere and is cross-checked against
# `lkmlab show kconfig --arch <arch> --flavor <flavor> [--kernel-name <kernel>]` by
# .ci/nix-check; the rules are
# lkmlab's (lkmlab/src/build/kconfig.rs). Returns { CONFIG_X = "y"; ... }:
#   CONFIG_X=y|m|n|123|-1|0x1f   -> the value; a `# comment` after it is dropped
#   CONFIG_X="text"              -> text, unquoted (a backslash escapes the next
#                                   character, as Kconfig reads it)
#   # CONFIG_X is not set        -> "n"
#   other `#` lines, blank lines -> ignored
# Anything else is an error naming the file and line, and so is one option
# given twice in a fragment with different values. Later fragments win.
{
  root,
  arch ? "x86_64",
  flavor ? "default",
  # A [kernels.NAME] of the pin; null: [kernel], the default one.
  kernel ? null,
}:
let
  inherit (builtins)
    concatLists
    concatStringsSep
    elemAt
    filter
    foldl'
    genList
    isList
    isString
    length
    match
    readFile
    split
    ;

  # The fragments, in the order they apply (nix/fragments.nix).
  fragments = import ./fragments.nix {
    inherit
      root
      arch
      flavor
      kernel
      ;
  };

  name = "(CONFIG_[A-Za-z0-9_]+)";
  trailer = "[[:space:]]*(#.*)?";
  reNotSet = "# ${name} is not set${trailer}";
  reString = ''${name}="(([^"\]|\\.)*)"${trailer}'';
  rePlain = "${name}=[[:space:]]*(y|m|n|-?[0-9]+|0[xX][0-9a-fA-F]+)${trailer}";
  reTrim = "[[:space:]]*([^[:space:]](.*[^[:space:]])?)?[[:space:]]*";

  # Undo Kconfig's string escaping: `\X` stands for X.
  unescape = s: concatStringsSep "" (map (p: if isList p then elemAt p 0 else p) (split ''\\(.)'' s));

  # One fragment line -> [ { name; value; origin; } ] or [ ].
  parseLine =
    file: lineNo: raw:
    let
      trimmed = elemAt (match reTrim raw) 0;
      notSet = match reNotSet trimmed;
      quoted = match reString trimmed;
      plain = match rePlain trimmed;
      option = n: v: [
        {
          name = n;
          value = v;
          origin = "${file}:${toString lineNo}";
        }
      ];
    in
    if trimmed == null then
      [ ]
    else if notSet != null then
      option (elemAt notSet 0) "n"
    else if builtins.substring 0 1 trimmed == "#" then
      [ ]
    else if quoted != null then
      option (elemAt quoted 0) (unescape (elemAt quoted 1))
    else if plain != null then
      option (elemAt plain 0) (elemAt plain 1)
    else
      throw "kconfig.nix: ${file}:${toString lineNo}: cannot parse `${raw}`";

  # One fragment -> { CONFIG_X = { value; origin; }; }; a repeat with the same
  # value is allowed, a conflicting one is not.
  parseFragment =
    file:
    let
      lines = filter isString (split "\n" (readFile (root + "/${file}")));
      options = concatLists (genList (i: parseLine file (i + 1) (elemAt lines i)) (length lines));
      add =
        acc: o:
        if !(acc ? ${o.name}) then
          acc // { ${o.name} = o; }
        else if acc.${o.name}.value == o.value then
          acc
        else
          throw "kconfig.nix: ${o.origin}: ${o.name} conflicts with ${acc.${o.name}.origin}";
    in
    foldl' add { } options;
in
builtins.mapAttrs (_: o: o.value) (foldl' (acc: f: acc // parseFragment f) { } fragments)
