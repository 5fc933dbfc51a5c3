#!/usr/bin/env python3
"""md2man.py: turn one of joey's Markdown docs into a man page (roff + tbl).

    md2man.py --name joey-config --section 5 --version 0.1.0 \
        --summary "the joey config directory" docs/config.md > joey-config.5

Handles the Markdown the docs use, no more: "#" (the title, dropped: NAME and the
summary replace it), "##" sections, "###" subsections, paragraphs, "-"/"*" lists with
two-space continuation lines and one nested level, fenced and four-space-indented code,
pipe tables, `code`, **bold**, *italic* and [links](url). Anything else passes through
as text, escaped, so a doc that grows new syntax still gives a readable page.
The date comes from SOURCE_DATE_EPOCH (reproducible builds), else today.
"""
import argparse
import datetime
import os
import re
import sys


def escape(text):
    """Escape roff's special characters in running text."""
    return text.replace("\\", "\\e")


def inline(text):
    """Markdown inline markup to roff font changes; code is bold, emphasis italic."""
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2:  # a code span
            code = escape(part[1:-1]).replace("-", "\\-")
            out.append("\\fB" + code + "\\fR")
            continue
        part = escape(part)
        part = re.sub(r"\[([^\]]+)\]\(#[^)]*\)", r"\1", part)  # in-page anchor: the text
        part = re.sub(r"\[([^\]]+)\]\(([^)]+)\)",
                      lambda m: m.group(1) if m.group(1) == m.group(2) else "%s (%s)" % (m.group(1), m.group(2)),
                      part)
        part = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", part)
        part = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\\fI\1\\fR", part)
        out.append(part)
    return "".join(out)


def line_safe(text):
    """A text line must not start with a control character."""
    return "\\&" + text if text[:1] in (".", "'") else text


def block(lines):
    """Lines of one paragraph or list item: inline markup may span the line breaks."""
    return [line_safe(t) for t in inline("\n".join(lines)).split("\n")]


def table(rows):
    """Pipe-table rows (header, separator, body) to a tbl table."""
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    # a cell may hold `a|b` code with the pipe escaped as in GitHub Markdown: rejoin
    header, body = cells[0], [c for c in cells[2:]]
    n = len(header)
    body = [c[: n - 1] + ["|".join(c[n - 1:])] if len(c) > n else c + [""] * (n - len(c)) for c in body]
    out = [".TS", "allbox;", " ".join(["lb"] * n), " ".join(["l"] * (n - 1) + ["lx"]) + "."]
    for r in [header] + body:
        out.append("\t".join("T{\n%s\nT}" % line_safe(inline(c)) for c in r))
    out.append(".TE")
    return out


def convert(md, name, section, version, summary, date):
    out = [
        "'\\\" t",
        '.\\" Generated from %s by packaging/man/md2man.py; edit that file instead.' % args.source,
        '.TH %s %s "%s" "joey %s" "joey manual"' % (name.upper(), section, date, version),
        ".ad l",  # ragged right: tables of long code words cannot be justified
        ".SH NAME",
        "%s \\- %s" % (name, summary),
        ".SH DESCRIPTION",
    ]
    lines = md.splitlines()
    i = 0
    para_open = False  # between paragraphs a .PP is due
    list_depth = 0

    def close_lists():
        nonlocal list_depth
        while list_depth > 1:
            out.append(".RE")
            list_depth -= 1
        list_depth = 0

    while i < len(lines):
        line = lines[i]
        if line.startswith("# "):
            i += 1
            continue
        m = re.match(r"^(#{2,6}) (.*)", line)
        if m:
            close_lists()
            title = inline(m.group(2))
            out.append((".SH " + title.upper()) if len(m.group(1)) == 2 else (".SS " + title))
            para_open = False
            i += 1
            continue
        if line.startswith("```"):
            close_lists()
            i += 1
            out += [".PP", ".RS 4", ".nf"]
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(line_safe(escape(lines[i]).replace("-", "\\-")))
                i += 1
            out += [".fi", ".RE"]
            i += 1
            para_open = False
            continue
        if line.startswith("    ") and line.strip() and not list_depth:
            out += [".PP", ".RS 4", ".nf"]
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                if not lines[i].strip() and not (i + 1 < len(lines) and lines[i + 1].startswith("    ")):
                    break
                out.append(line_safe(escape(lines[i][4:]).replace("-", "\\-")))
                i += 1
            out += [".fi", ".RE"]
            para_open = False
            continue
        if line.startswith("|"):
            close_lists()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            out += [".PP"] + table(rows)
            para_open = False
            continue
        m = re.match(r"^( *)[-*] (.*)", line)
        if m:
            depth = len(m.group(1)) // 2 + 1
            text = [m.group(2)]
            i += 1
            indent = len(m.group(1)) + 2
            while i < len(lines) and lines[i].strip() and lines[i].startswith(" " * indent) \
                    and not re.match(r"^ *[-*] ", lines[i]):
                text.append(lines[i].strip())
                i += 1
            while list_depth < depth:
                if list_depth >= 1:
                    out.append(".RS")
                list_depth += 1
            while list_depth > depth:
                out.append(".RE")
                list_depth -= 1
            out.append('.IP "\\(bu" 2')
            out += block(text)
            para_open = False
            continue
        if not line.strip():
            if list_depth and i + 1 < len(lines) and re.match(r"^ *[-*] ", lines[i + 1]):
                i += 1  # a blank line between items keeps the list
                continue
            close_lists()
            para_open = True
            i += 1
            continue
        # a paragraph
        close_lists()
        if para_open or out[-1].startswith((".SH", ".SS", ".fi", ".RE", ".TE")):
            out.append(".PP")
        text = []
        while i < len(lines) and lines[i].strip() and not re.match(r"^(#|```|\||\s*[-*] )", lines[i]):
            text.append(lines[i].strip())
            i += 1
        if not text:  # a line no other rule took ("#tag", "#####x"): plain text, never a loop
            text.append(lines[i].strip())
            i += 1
        out += block(text)
        para_open = False
    close_lists()
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--section", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--see-also", default="", help="comma-separated, e.g. 'joey(1), joey-run(1)'")
    p.add_argument("source")
    args = p.parse_args()
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch else \
        datetime.datetime.now(datetime.timezone.utc)
    with open(args.source, encoding="utf-8") as f:
        page = convert(f.read(), args.name, args.section, args.version, args.summary, when.strftime("%Y-%m-%d"))
    if args.see_also:
        refs = [r.strip() for r in args.see_also.split(",") if r.strip()]
        page += ".SH SEE ALSO\n" + ",\n".join(
            re.sub(r"^([\w.-]+)\((\w+)\)$", lambda m: "\\fB%s\\fR(%s)" % (m.group(1).replace("-", "\\-"), m.group(2)), r)
            for r in refs) + "\n"
    sys.stdout.write(page)
