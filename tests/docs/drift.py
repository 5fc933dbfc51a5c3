#!/usr/bin/env python3
"""drift.py: fail when the code and the user docs disagree.

    drift.py SRC_DIR [JOEY_BIN]

Compares, both ways, what the code has with what README.md and docs/*.md say:

- connector types: the app, source and destination types of the config catalog
  (src/config/catalog.c), with the connectors' ops tables (src/source/*.c) agreeing with
  it, against the Connectors table of docs/config.md (supported or not, old names) and
  each app's options;
- CLI options: every --option of every command, from `JOEY_BIN <cmd> --help` (when
  JOEY_BIN is given) and the option strings of src/cli/*.c, against the docs: an option
  must be mentioned in a paragraph, list item, table row or code line that names
  `joey <cmd>`; an option written after `joey <cmd>` in a code span, or alone in one,
  must exist;
- API routes: the route table of src/server/api.c and the fixed routes of
  src/server/httpd.c against the route tables of docs/api.md.

Prints each disagreement with what to do and exits 1; prints a one-line summary and
exits 0 when there is none.
"""
import glob
import os
import re
import subprocess
import sys

problems = []


def problem(msg, hint):
    problems.append(f"docs/drift: {msg}\n  hint: {hint}")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def strip_c_comments(s):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", s, flags=re.S)


# ---- the docs, cut into units: paragraphs, list items, table rows, code lines ----

def doc_units(text):
    units, cur, in_code = [], [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            if cur:
                units.append("\n".join(cur))
                cur = []
            in_code = not in_code
            continue
        if in_code or line.startswith("    ") and not cur:
            units.append(line)  # a code line stands alone
            continue
        if not line.strip():
            if cur:
                units.append("\n".join(cur))
                cur = []
            continue
        if re.match(r"\s*(\||[-*] |\d+\. )", line) and cur:
            units.append("\n".join(cur))
            cur = []
        cur.append(line)
    if cur:
        units.append("\n".join(cur))
    return units


def code_spans(text):
    """Inline `code` spans and the lines of fenced code blocks."""
    spans, in_code = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            spans.append(line)
        else:
            spans.extend(re.findall(r"`([^`]+)`", line))
    return spans


OPT = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-v)(?![\w-])")


# ---- connector types ----

def check_connectors(src, config_md):
    cat = strip_c_comments(read(os.path.join(src, "src/config/catalog.c")))

    def table(name):
        m = re.search(r"\b" + name + r"\[\]\s*=\s*\{(.*?)\n\};", cat, re.S)
        if not m:
            problem(f"src/config/catalog.c: table {name}[] not found", "update tests/docs/drift.py")
            return []
        return re.findall(r"\{([^{}]*)\}", m.group(1))

    def fields(entry):
        return [f.strip() for f in entry.split(",")]

    def unq(s):
        return s.strip('"') if s.startswith('"') else None

    def opts(name):
        return [e[0] for e in (fields(x) for x in table(name)) if unq(e[0])]

    apps = {}  # type -> (supported, [options])
    for e in map(fields, table("apps")):
        apps[unq(e[0])] = (e[1] == "true", [unq(o) for o in opts(e[2])])
    sources = {}  # type -> (app, renamed-to or None)
    for e in map(fields, table("sources")):
        sources[unq(e[0])] = (unq(e[1]), unq(e[3]))
    dests = {}
    for e in map(fields, table("dests")):
        dests[unq(e[0])] = (unq(e[1]), unq(e[2]))

    # the connectors' ops tables agree with the catalog
    for path in sorted(glob.glob(os.path.join(src, "src/source/*.c"))):
        c = strip_c_comments(read(path))
        m = re.search(r"const struct source_ops \w+ = \{(.*?)\n\};", c, re.S)
        if not m:
            continue
        rel = os.path.relpath(path, src)
        app = re.search(r'\.app_type\s*=\s*"([^"]+)"', m.group(1)).group(1)
        tv = re.search(r"\.source_types\s*=\s*(\w+)", m.group(1)).group(1)
        tm = re.search(r"\b" + tv + r"\[\]\s*=\s*\{(.*?)\};", c, re.S)
        types = re.findall(r'"([^"]+)"', tm.group(1)) if tm else []
        if app not in apps or not apps[app][0]:
            problem(f'{rel}: app type "{app}" is not a supported app in src/config/catalog.c',
                    "add it to apps[] there (and to docs/config.md)")
        for t in types:
            if t not in sources:
                problem(f'{rel}: source type "{t}" is not in src/config/catalog.c, so validation refuses it',
                        "add it to sources[] there (an old name: with the name it was renamed to), "
                        "or drop it from the connector")
        for t, (a, _) in sources.items():
            if a == app and t not in types:
                problem(f'src/config/catalog.c: source type "{t}" has no connector in {rel}',
                        f"add it to {tv}[]")

    # docs/config.md, ### Connectors: | kind | `types` | options |
    sec = re.search(r"^### Connectors\n(.*?)(?=^#)", config_md, re.S | re.M)
    rows = []
    for line in (sec.group(1) if sec else "").split("\n"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in ("app", "source", "destination"):
            rows.append((cells[0], re.findall(r"`([^`]+)`", cells[1]), cells[1] + " " + " ".join(cells[2:])))
    if not rows:
        problem("docs/config.md: no Connectors table (### Connectors, | kind | type | options |)",
                "restore it, or update tests/docs/drift.py")

    def rows_for(kind, t):
        return [r for r in rows if r[0] == kind and t in r[1]]

    code = {"app": apps, "source": sources, "destination": dests}
    for kind, types in code.items():
        for t, info in types.items():
            rs = rows_for(kind, t)
            if not rs:
                problem(f'{kind} type "{t}" (src/config/catalog.c) is not in the Connectors table of docs/config.md',
                        f"add a `{t}` row ({kind}) with its options")
                continue
            text = " ".join(r[2] for r in rs)
            says_unsupported = "not supported" in text
            if kind == "app":
                supported, options = info
                if supported and says_unsupported:
                    problem(f'docs/config.md says app type "{t}" is not supported, but it is', "document its options")
                if not supported and not says_unsupported:
                    problem(f'app type "{t}" is known but not supported; docs/config.md does not say so',
                            'say "not supported yet" in its row')
                for o in options:
                    if f"`{o}`" not in text:
                        problem(f'option "{o}" of app type "{t}" is not in its docs/config.md row', f"document `{o}`")
            elif info[1] and not re.search(r"old name", text):
                problem(f'{kind} type "{t}" is an old name of "{info[1]}"; docs/config.md does not say so',
                        'list it as an old name')
    for kind, types, _ in rows:
        for t in types:
            if t not in code[kind]:
                problem(f'docs/config.md documents {kind} type "{t}", which src/config/catalog.c does not have',
                        "remove it from the docs, or add it to the catalog")
    # alert channels (alert_channels[] in catalog.c) and their options, in docs/config.md's ## Alerts
    asec = re.search(r"^## Alerts\n(.*?)(?=^## )", config_md, re.S | re.M)
    atext = asec.group(1) if asec else ""
    channels = {}
    for e in map(fields, table("alert_channels")):
        channels[unq(e[0])] = [unq(o) for o in opts(e[2])]
    if not channels:
        problem("src/config/catalog.c: no alert channels (alert_channels[])", "update tests/docs/drift.py")
    elif not asec:
        problem("docs/config.md: no ## Alerts section", "document the Alert class there")
    for ch, options in channels.items():
        if f"`{ch}`" not in atext:
            problem(f'alert type "{ch}" (src/config/catalog.c) is not in docs/config.md\'s Alerts section', f"document `{ch}`")
        for o in options:
            if f"`{o}`" not in atext:
                problem(f'option "{o}" of alert type "{ch}" is not in docs/config.md\'s Alerts section', f"document `{o}`")
    return sum(len(v) for v in code.values()) + len(channels)


# ---- CLI options ----

def check_cli(src, joey, docs):
    main_c = read(os.path.join(src, "src/cli/main.c"))
    cmds = re.findall(r'\{\s*"([a-z]+)",\s*cmd_\w+', main_c)
    if not cmds:
        problem("src/cli/main.c: no command table found", "update tests/docs/drift.py")
    shared = set(OPT.findall(read(os.path.join(src, "src/cli/common.c")))) - {"--help", "--version"}

    # what the code accepts: the option strings of src/cli/*.c
    in_source = set()
    for path in glob.glob(os.path.join(src, "src/cli/*.c")):
        in_source |= set(re.findall(r'"(--[a-z][a-z0-9-]*)"', read(path)))
    in_source -= {"--help", "--version"}

    # per command: its --help (the binary), else the option strings of its cmd_<name>.c
    per_cmd = {}
    for cmd in cmds:
        if joey:
            r = subprocess.run([joey, cmd, "--help"], capture_output=True, text=True, timeout=30)
            helptext = r.stdout + r.stderr
            per_cmd[cmd] = set(OPT.findall(helptext)) - {"--help", "--version"}
        else:
            p = os.path.join(src, f"src/cli/cmd_{cmd}.c")
            per_cmd[cmd] = set(re.findall(r'"(--[a-z][a-z0-9-]*)"', read(p))) if os.path.exists(p) else set()
            per_cmd[cmd] -= {"--help"}
    if joey:
        in_help = set().union(*per_cmd.values()) if per_cmd else set()
        for o in sorted(in_source - in_help - shared):
            problem(f"src/cli accepts {o}, but no `joey <command> --help` lists it", "add it to the command's usage text")
        for o in sorted(in_help - in_source - shared - {"-v"}):
            problem(f"`joey <command> --help` lists {o}, which src/cli/*.c does not accept",
                    "remove it from the usage text")

    units = [u for text in docs.values() for u in doc_units(text)]
    alltext = "\n".join(docs.values())
    for o in sorted(shared):
        if not OPT.search(alltext) or o not in set(OPT.findall(alltext)):
            problem(f"shared option {o} (src/cli/common.c) is not in the docs", "add it to README.md's shared options")
    n = len(shared)
    for cmd in cmds:
        named = [u for u in units if re.search(r"\bjoey " + cmd + r"\b", u)]
        for o in sorted(per_cmd[cmd] - shared):
            n += 1
            if not any(o in OPT.findall(u) for u in named):
                problem(f"`joey {cmd} {o}` is not in the docs (README.md, docs/*.md)",
                        f"mention {o} where the docs describe `joey {cmd}` (README.md's Commands table)")

    # the docs' options exist
    every = set().union(shared, *per_cmd.values())
    for name, text in docs.items():
        for span in code_spans(text):
            s = span.strip()
            m = re.match(r"(?:\$ )?joey ([a-z]+)\b(.*)", s)
            if m and m.group(1) in per_cmd:
                for o in OPT.findall(m.group(2).split("#")[0]):
                    if o not in per_cmd[m.group(1)] | shared:
                        problem(f"{name}: `{s}`: joey {m.group(1)} has no option {o}",
                                "fix the docs (or the command's --help)")
            elif m and not s.startswith("joey " + m.group(1) + "ing"):
                if m.group(1) not in cmds and re.match(r"joey [a-z]+( |$)", s) and "--" in s:
                    problem(f"{name}: `{s}`: joey has no command {m.group(1)}", "fix the docs")
            elif re.match(r"--[a-z]", s):
                o = OPT.match(s).group(1)
                if o not in every:
                    problem(f"{name}: `{s}`: no joey command has the option {o}", "fix the docs")
    return n


# ---- API routes ----

def check_routes(src, api_md):
    api_c = strip_c_comments(read(os.path.join(src, "src/server/api.c")))
    code = set()
    for m, p in re.findall(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*"(/[^"]*)"', api_c):
        code.add((m, p))
    httpd = read(os.path.join(src, "src/server/httpd.c"))
    for p in re.findall(r'!strcmp\(url, "(/[^"]+)"\)', httpd):
        code.add(("GET", p))
    if not code:
        problem("src/server/api.c: no route table found", "update tests/docs/drift.py")
    docs = set()
    for m, p in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s\[?]*)", api_md):
        docs.add((m, re.sub(r"\{[^}]*\}", "{}", p)))
    for m, p in sorted(code - docs):
        problem(f"route {m} {p} (src/server) is not in docs/api.md", "add it to the Read or Actions table")
    for m, p in sorted(docs - code):
        problem(f"docs/api.md documents {m} {p}, which src/server does not route", "remove it from docs/api.md")
    return len(code)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    src = sys.argv[1]
    joey = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    paths = ["README.md"] + sorted(os.path.relpath(p, src) for p in glob.glob(os.path.join(src, "docs/*.md")))
    docs = {p: read(os.path.join(src, p)) for p in paths}
    nt = check_connectors(src, docs["docs/config.md"])
    no = check_cli(src, joey, docs)
    nr = check_routes(src, docs["docs/api.md"])
    for p in problems:
        print(p)
    if problems:
        print(f"docs/drift: {len(problems)} disagreements between the code and the docs")
        return 1
    print(f"docs/drift: ok ({nt} connector types, {no} command options, {nr} routes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
