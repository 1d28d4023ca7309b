#!/usr/bin/env bash
# The docs cannot drift from the code: this runs what they show.
#
#   1. Links: every relative link in README.md and docs/*.md resolves, to a
#      file or directory, and a `#anchor` to a heading of the target file.
#   2. Commands: every ```console block in docs/*.md is run, block by block in
#      document order (tutorial.md, reference.md, troubleshooting.md,
#      architecture.md, bumping-kernel.md, then the others by name), from the
#      repository root. The convention:
#        - a line `$ COMMAND` is a command (a line ending in `\` continues it);
#          it runs with `bash -o pipefail -c` and must exit 0, except the
#          last command of a block fenced ```console exit=N, which must exit N;
#        - the lines after it, up to the next `$ ` line, are its expected
#          output (stdout and stderr through one pipe, in the order written). They
#          must match the whole output, line by line, except that `…` inside a
#          line matches any text, and a line holding only `…` matches any
#          number of lines (none included). A command with no lines after it
#          has its status checked, not its output.
#      A block whose fence says file=PATH (```rust file=module/hello.rs) must
#      be an excerpt of PATH, with `…` for what is left out. A console block
#      fenced needs-flavor=NAME runs only when that flavor's kernel is in
#      the cache (CI does not build the no-unload kernel, see
#      docs/benchmarks.md); otherwise it is listed at the end as not run.
#      One fenced needs-rustdoc runs only when the default target's `lkmlab
#      doc` documentation is in the cache (its first build takes minutes,
#      which CI does not spend: docs/benchmarks.md); otherwise likewise.
#      ```sh blocks are illustrations: not run, and each is listed below so
#      that nothing is skipped silently. Other fences (rust, toml, text, c)
#      are not commands.
#   3. Reference: every `lkmlab` subcommand in `lkmlab --help` has a section in
#      docs/reference.md that mentions each of its options.
#
# The commands write only under target/ (tutorial/, ts/, lkmlab/…), except
# that troubleshooting.md's dropped-Kconfig-option example configures a small
# tree in the kernel cache, which the failed `lkmlab kernel` removes again
# (with its lock).
#
# lkmlab comes from $LKMLAB, else PATH. Run it after `lkmlab kernel` and
# `lkmlab kernel --flavor debug` (both cached in CI). Ends with
# `N passed, N failed`; the exit status is non-zero on any failure.
#
#   LKMLAB=target/debug/lkmlab tests/e2e/docs.sh [docs/FILE.md...]
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
exec python3 - "$@" <<'PY'
import os, re, shutil, subprocess, sys, tempfile, time

ROOT = os.getcwd()
ORDER = ["tutorial.md", "reference.md", "troubleshooting.md", "architecture.md",
         "bumping-kernel.md"]
started = time.monotonic()
passed = failed = 0
notes = []


def ok(what):
    global passed
    passed += 1
    print(f"ok   {what}", flush=True)


def fail(what, detail=""):
    global failed
    failed += 1
    print(f"FAIL {what}", flush=True)
    for line in detail.rstrip("\n").splitlines():
        print(f"       {line}")


# ---- lkmlab on PATH ----------------------------------------------------------
env = dict(os.environ)
bindir = tempfile.mkdtemp(prefix="lkmlab-docs-bin-")
if os.environ.get("LKMLAB"):
    os.symlink(os.path.abspath(os.environ["LKMLAB"]), os.path.join(bindir, "lkmlab"))
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
LKMLAB = shutil.which("lkmlab", path=env["PATH"])


# ---- Markdown ----------------------------------------------------------------
def blocks(text):
    """Yield (info, first_line_number, body_lines) for each fenced block, and
    the lines outside fences as (None, line_number, [line])."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(`{3,}|~{3,})(.*)$", lines[i])
        if not m:
            yield None, i + 1, [lines[i]]
            i += 1
            continue
        indent, fence, info, start = len(m.group(1)), m.group(2), m.group(3).strip(), i + 1
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*" + re.escape(fence[0]) + r"{%d,}\s*$" % len(fence), lines[i]):
            # A block inside a list item is indented like its fence.
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line)
            i += 1
        i += 1
        yield info, start, body


def slugs(path):
    """GitHub's anchors for the headings of a Markdown file."""
    seen, out = {}, set()
    text = open(path, encoding="utf-8").read()
    for info, _, body in blocks(text):
        if info is not None:
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", body[0])
        if not m:
            continue
        h = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1)).lower()
        h = re.sub(r"[^\w\- ]", "", h.replace("`", "")).replace(" ", "-")
        n = seen.get(h, 0)
        seen[h] = n + 1
        out.add(h if n == 0 else f"{h}-{n}")
    return out


def check_links(md):
    rel = os.path.relpath(md, ROOT)
    text = open(md, encoding="utf-8").read()
    targets = []
    for info, line, body in blocks(text):
        if info is not None:
            continue
        prose = re.sub(r"`[^`]*`", "", body[0])
        for m in re.finditer(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose):
            targets.append((line, m.group(1)))
        m = re.match(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)", prose)
        if m:
            targets.append((line, m.group(1)))
    bad = []
    for line, target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        dest = md if path == "" else os.path.normpath(os.path.join(os.path.dirname(md), path))
        if not os.path.exists(dest):
            bad.append(f"{rel}:{line}: {target}: {os.path.relpath(dest, ROOT)} does not exist")
        elif anchor and (not dest.endswith(".md") or anchor not in slugs(dest)):
            bad.append(f"{rel}:{line}: {target}: no heading #{anchor} in {os.path.relpath(dest, ROOT)}")
    if bad:
        fail(f"links in {rel} ({len(targets)})", "\n".join(bad))
    else:
        ok(f"links in {rel} ({len(targets)} checked)")


# ---- Commands ----------------------------------------------------------------
def pattern(expected):
    out = ""
    for line in expected:
        if line.strip() == "…":
            out += r"(?:[^\n]*\n)*?"
        else:
            out += "".join(".*?" if part == "…" else re.escape(part)
                           for part in re.split(r"(…)", line)) + r"\n"
    return re.compile(out)


def trim(lines):
    lines = [l.rstrip() for l in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def commands(body):
    """(index in the block, command, expected output lines) of a console block."""
    out, i = [], 0
    while i < len(body):
        if not body[i].startswith("$ "):
            i += 1  # text before the first command: not expected output
            continue
        at, cmd = i, body[i][2:]
        while cmd.endswith("\\") and i + 1 < len(body):
            i += 1
            cmd = cmd + "\n" + body[i]
        i += 1
        expected = []
        while i < len(body) and not body[i].startswith("$ "):
            expected.append(body[i])
            i += 1
        out.append((at, cmd, trim(expected)))
    return out


def check_excerpt(rel, line, path, body):
    """A ```LANG file=PATH block must be a contiguous excerpt of PATH (`…`
    lines and `…` inside lines stand for what is left out)."""
    label = f"{rel}:{line} excerpt of {path}"
    try:
        text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    except OSError as e:
        fail(label, str(e))
        return
    text = "".join(l.rstrip() + "\n" for l in text.split("\n"))
    if re.compile("^" + pattern(trim(body)).pattern, re.M).search(text):
        ok(label)
    else:
        fail(label, "the block is not in the file as shown:\n" + "\n".join(body))


def kernel_built(flavor):
    """Whether the current kernel tree of `flavor` is built (its build stamp
    exists), asking lkmlab where it would be, without building it."""
    r = subprocess.run([LKMLAB, "show", "build-env", "--flavor", flavor], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        return False
    import json
    tree = json.loads(r.stdout)["tree"]
    return os.path.isfile(os.path.join(tree, "lkmlab-build.json"))


def rustdoc_built():
    """Whether `lkmlab doc` of the default target has its documentation
    built (beside the kernel tree, in the cache's rustdoc/), without
    building it."""
    r = subprocess.run([LKMLAB, "show", "build-env"], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        return False
    import json
    tree = json.loads(r.stdout)["tree"]
    cache = os.path.dirname(os.path.dirname(tree))
    return os.path.isfile(os.path.join(cache, "rustdoc", os.path.basename(tree),
                                       "lkmlab-rustdoc.txt"))


def run_doc(md):
    rel = os.path.relpath(md, ROOT)
    text = open(md, encoding="utf-8").read()
    for info, line, body in blocks(text):
        if info is None:
            continue
        words = info.split()
        lang = words[0] if words else ""
        for w in words[1:]:
            if w.startswith("file="):
                check_excerpt(rel, line, w[5:], body)
        if lang in ("sh", "bash", "shell"):
            notes.append(f"{rel}:{line}: ```{lang} block shown, not run (illustration)")
            continue
        if lang != "console":
            continue
        status = 0
        needs = None
        for w in words[1:]:
            if w.startswith("exit="):
                status = int(w[5:])
            if w.startswith("needs-flavor="):
                needs = w[len("needs-flavor="):]
            if w == "needs-rustdoc" and not rustdoc_built():
                needs = "rustdoc"
        if needs == "rustdoc":
            notes.append(f"{rel}:{line}: ```console block not run: it needs the kernel crate's "
                         f"documentation, which is not built (`lkmlab doc`)")
            continue
        if needs and not kernel_built(needs):
            notes.append(f"{rel}:{line}: ```console block not run: it needs the {needs} "
                         f"kernel, which is not built (`lkmlab kernel --flavor {needs}`)")
            continue
        cmds = commands(body)
        for k, (at, cmd, expected) in enumerate(cmds):
            short = cmd.split("\n")[0]
            if len(short) > 100:
                short = short[:97] + "..."
            label = f"{rel}:{line + 1 + at} $ {short}"
            t0 = time.monotonic()
            try:
                r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=ROOT, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=600)
                got, code = r.stdout.decode("utf-8", "replace"), r.returncode
            except subprocess.TimeoutExpired as e:
                got, code = (e.stdout or b"").decode("utf-8", "replace"), "timeout (600 s)"
            took = f"{time.monotonic() - t0:.1f}s"
            actual = trim(got.split("\n"))
            problems = []
            want = status if k == len(cmds) - 1 else 0
            if code != want:
                problems.append(f"exit status {code}, expected {want}")
            if expected and not pattern(expected).fullmatch("".join(l + "\n" for l in actual)):
                problems.append("output does not match the document")
            if problems:
                detail = "; ".join(problems) + "\n--- expected (docs)\n" + "\n".join(expected)
                detail += "\n--- actual\n" + "\n".join(actual[-60:])
                fail(f"{label} ({took})", detail)
            else:
                ok(f"{label} ({took})")


# ---- Reference ---------------------------------------------------------------
def help_of(args):
    r = subprocess.run([LKMLAB, *args, "--help"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    return r.stdout.decode()


def subcommands(text):
    m = re.search(r"^Commands:\n((?:  \S.*\n)+)", text, re.M)
    return [l.split()[0] for l in m.group(1).splitlines() if l.split()[0] != "help"] if m else []


def sections(md):
    """Heading text -> the text under it (up to the next heading of any level)."""
    out, cur = {}, None
    for info, _, body in blocks(open(md, encoding="utf-8").read()):
        if info is None and re.match(r"^#{1,6}\s", body[0]):
            cur = body[0].lstrip("#").strip()
            out[cur] = ""
        elif cur is not None:
            out[cur] += "\n".join(body) + "\n"
    return out


def check_reference():
    ref = os.path.join(ROOT, "docs", "reference.md")
    if not os.path.exists(ref):
        fail("docs/reference.md", "missing")
        return
    secs = sections(ref)
    top = help_of([])
    global_opts = set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", top, re.M)) - {"--help", "--version"}
    todo = [[c] for c in subcommands(top)]
    while todo:
        path = todo.pop(0)
        h = help_of(path)
        todo += [path + [c] for c in subcommands(h)]
        name = "lkmlab " + " ".join(path)
        opts = set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", h, re.M)) - global_opts - {"--help"}
        heading = next((k for k in secs if re.search(r"`" + re.escape(name) + r"\b", k)), None)
        if heading is None:
            fail(f"reference: {name}", f"docs/reference.md has no heading naming `{name}`")
            continue
        missing = [o for o in sorted(opts) if o not in secs[heading]]
        if missing:
            fail(f"reference: {name}", "its section does not mention " + ", ".join(missing))
        else:
            ok(f"reference: {name} ({len(opts)} options)")
    glob = next((k for k in secs if "Global options" in k), None)
    missing = [o for o in sorted(global_opts) if glob is None or o not in secs[glob]]
    if missing:
        fail("reference: global options", "no 'Global options' section mentioning " + ", ".join(missing))
    else:
        ok(f"reference: global options ({len(global_opts)})")


# ---- main --------------------------------------------------------------------
docs = os.path.join(ROOT, "docs")
all_md = [os.path.join(ROOT, "README.md")] + sorted(
    os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
for md in all_md:
    check_links(md)

if LKMLAB is None:
    fail("lkmlab", "not found: set LKMLAB or put lkmlab on PATH")
else:
    check_reference()
    wanted = [os.path.abspath(a) for a in sys.argv[1:]]
    ordered = [os.path.join(docs, f) for f in ORDER if os.path.exists(os.path.join(docs, f))]
    ordered += [md for md in all_md[1:] if md not in ordered]
    for md in ordered:
        if not wanted or md in wanted:
            run_doc(md)

# The README shows the setup and Nix commands; .ci/run runs the setup ones.
for info, line, _ in blocks(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()):
    if info is not None and info.split()[:1] in (["sh"], ["bash"], ["console"]):
        notes.append(f"README.md:{line}: ```{info} block not run here (README.md: see .ci/run)")
shutil.rmtree(bindir, ignore_errors=True)
for n in notes:
    print(f"note {n}")
print(f"docs: {len(notes)} illustration block(s) not run; wall time {time.monotonic() - started:.0f}s")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
