#!/usr/bin/env python3
"""Writes a man page (roff) from a program's --help and a hand-written template.

Usage: gen_man.py --binary PATH --name NAME --template FILE.in --output FILE

The options of the page are not written twice: the build runs the freshly built binary
with --help (argv[0] = NAME) and --version and fills the template's placeholders with
what they print, so the man page and --help cannot drift apart. The template holds what
--help has no room for (mounting, fstab, systemd, files, see also) and these placeholders,
each alone on a line:

  @SYNOPSIS@     the "usage:" lines of --help
  @DESCRIPTION@  the paragraphs of --help before its first option list
  @OPTIONS@      every option list of --help (its heading, then one .TP entry an option)
                 and the paragraphs between and after them, in --help's order
and, anywhere in a line: @VERSION@ (the first line of --version, less the program name)
and @DATE@ (SOURCE_DATE_EPOCH if set, else today; YYYY-MM-DD).

What --help looks like (fs/option_table.cc HelpText, fs/zbudfsctl.cc Usage): "usage: PROG ..."
and "       PROG ..." lines; paragraphs separated by blank lines; an option list is a
line ending in ":" followed by entries, each "    LABEL  TEXT" with its text continued on
lines indented to the text's column. Defaults that depend on the machine ("half of RAM,
like tmpfs: 11.8G", "twice the cores, 4..16: 4") lose their figure here: the page is the
same on every machine, and --help prints the figures of the machine it runs on.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys


def run(binary, name, arg):
    """Output of `NAME arg` (argv[0] = NAME, whatever the binary's path)."""
    res = subprocess.run([name, arg], executable=binary, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=60,
                         env=dict(os.environ, LC_ALL="C",
                                  # A sanitizer build's binary: no leak report at exit.
                                  ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "detect_leaks=0")))
    if res.returncode != 0:
        sys.exit(f"gen_man: {binary} {arg} exited with {res.returncode}: {res.stderr.strip()}")
    return res.stdout


# --- roff helpers -----------------------------------------------------------------------------

def esc(text):
    """Plain text to roff: backslashes, minus signs (so options copy and search as ASCII
    '-'), and a leading '.' or "'" that would read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith(".") or text.startswith("'"):
        text = "\\&" + text
    return text


def prose(text):
    """One paragraph of --help as filled roff text: `code` in bold, figures that depend
    on the machine left out, sentence ends kept (roff wants a newline after a period that
    ends a sentence; a line of its own per sentence does that)."""
    text = " ".join(text.split())
    text = strip_machine_figures(text)
    out = []
    # `...` spans: bold. Split first so the escaping does not touch the font changes.
    for i, part in enumerate(re.split(r"`([^`]*)`", text)):
        part = esc(part)
        out.append(f"\\fB{part}\\fR" if i % 2 else part)
    text = "".join(out)
    # A new line after each sentence (". X"), as man(7) asks.
    text = re.sub(r"([.!?]) +(?=[A-Z\\])", "\\1\n", text)
    lines = [("\\&" + l if l[:1] in (".", "'") else l) for l in text.split("\n")]
    return "\n".join(lines)


def strip_machine_figures(text):
    """ "like tmpfs: 11.8G)" -> "like tmpfs)", "4..16: 4)" -> "4..16)", but never a plain
    "(default: 1)" or "(default: -1; ...": those are the same on every machine."""
    return re.sub(r"(?<!default): -?\d+(?:\.\d+)?[KMGTP]?(?=[);])", "", text)


METAVAR = re.compile(r"[A-Z][A-Z0-9_]*")


def label(text):
    """An option's label ("-o size=SIZE", "-d, -o debug", "stats MOUNTPOINT") as roff:
    what is typed as written in bold, the placeholders (upper case words) in italics."""
    words = []
    for word in text.split(" "):
        if word.startswith("-") and "=" in word:
            name, value = word.split("=", 1)
            words.append(f"\\fB{esc(name)}=\\fR" + value_part(value))
        elif word.startswith("-"):
            comma = word.endswith(",")
            words.append(f"\\fB{esc(word.rstrip(','))}\\fR" + ("," if comma else ""))
        else:
            words.append(value_part(word))
    return " ".join(words)


def value_part(text):
    """Placeholders in italics, literal parts ("|off", "[,", "...]") in bold or roman."""
    out = []
    pos = 0
    for m in METAVAR.finditer(text):
        if m.start() > pos:
            out.append(literal(text[pos:m.start()]))
        out.append(f"\\fI{esc(m.group())}\\fR")
        pos = m.end()
    if pos < len(text):
        out.append(literal(text[pos:]))
    return "".join(out)


def literal(text):
    """Brackets, bars and commas of a synopsis stay roman; words typed as such are bold."""
    parts = re.split(r"([\[\]|,]|\.\.\.)", text)
    return "".join(esc(p) if re.fullmatch(r"[\[\]|,]|\.\.\.|", p) else f"\\fB{esc(p)}\\fR"
                   for p in parts)


# --- parsing --help -----------------------------------------------------------------------------

def parse_help(text, name):
    """(usage lines, blocks): a block is ("para", text) or ("list", heading, [(label, text)])."""
    lines = text.rstrip("\n").split("\n")
    usage = []
    i = 0
    if lines and lines[0].startswith("usage:"):
        usage.append(lines[0][len("usage:"):].strip())
        i = 1
        while i < len(lines) and lines[i].startswith(" ") and lines[i].strip().startswith(name):
            usage.append(lines[i].strip())
            i += 1
    # Groups of lines separated by blank lines.
    groups, cur = [], []
    for line in lines[i:]:
        if line.strip():
            cur.append(line)
        elif cur:
            groups.append(cur)
            cur = []
    if cur:
        groups.append(cur)
    blocks = []
    for g in groups:
        if g[0].rstrip().endswith(":") and not g[0].startswith(" ") and \
                (len(g) == 1 or g[1].startswith("    ")):
            blocks.append(("list", g[0].rstrip()[:-1], parse_entries(g[1:])))
        elif all(l.startswith("    ") for l in g):
            blocks.append(("list", None, parse_entries(g)))
        else:
            blocks.append(("para", " ".join(l.strip() for l in g)))
    return usage, blocks


def parse_entries(lines):
    """Entries "    LABEL  TEXT" with continuation lines indented to TEXT's column."""
    if not lines:
        return []
    entry_indent = len(lines[0]) - len(lines[0].lstrip())
    cont = [len(l) - len(l.lstrip()) for l in lines if len(l) - len(l.lstrip()) > entry_indent]
    column = min(cont) if cont else None  # The text's column, from the continuation lines.
    entries = []
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if indent > entry_indent and entries:
            entries[-1][1].append(line.strip())
            continue
        body = line[entry_indent:]
        col = None if column is None else column - entry_indent
        if col is not None and len(body) > col and body[col - 1] == " " and body[col] != " ":
            lab, txt = body[:col].rstrip(), body[col:]
        else:
            m = re.match(r"(\S(?:.*?\S)?)(?: {2,}(.*))?$", body)
            lab, txt = m.group(1), m.group(2) or ""
        entries.append((lab, [txt.strip()] if txt.strip() else []))
    return [(lab, " ".join(t)) for lab, t in entries]


# --- writing roff -----------------------------------------------------------------------------

def synopsis(usage, name):
    out = []
    for u in usage:
        rest = u[len(name):].strip() if u.startswith(name) else u
        remark = ""
        m = re.match(r"(.*?) {2,}\((.*)\)$", rest)
        if m:
            rest, remark = m.group(1), m.group(2)
        out.append(f".SY {name}")
        out.append(" ".join(label(w) if w.startswith("-") else value_part(w)
                            for w in rest.split(" ") if w))
        if remark:
            out.append(f"({esc(remark)})")
        out.append(".YS")
    return "\n".join(out)


def description(blocks):
    paras = []
    for b in blocks:
        if b[0] != "para":
            break
        paras.append(prose(b[1]))
    return "\n.PP\n".join(paras)


def options(blocks, section=""):
    """The option lists; a list's heading that only repeats the section's is left out."""
    out = []
    started = False
    for b in blocks:
        if b[0] == "list":
            started = True
            if b[1] and b[1].lower() != section.lower():
                out.append(f'.SS "{esc(heading(b[1]))}"')
            for lab, txt in b[2]:
                out.append(".TP")
                out.append(label(lab))
                if txt:
                    out.append(prose(txt))
        elif started:
            out.append(".PP")
            out.append(prose(b[1]))
    return "\n".join(out)


def heading(text):
    """A list's heading as a subsection title: "general options" -> "General options"; a
    program's name ("zbudfs options") keeps its case."""
    first = text.split(" ", 1)[0]
    if first.islower() and first.isalpha() and first not in ("zbudfs", "zbudfsctl"):
        return text[:1].upper() + text[1:]
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--output", required=True)
    a = ap.parse_args()

    help_text = run(a.binary, a.name, "--help")
    version = run(a.binary, a.name, "--version").split("\n")[0]
    version = version[len(a.name):].strip() if version.startswith(a.name + " ") else version
    usage, blocks = parse_help(help_text, a.name)
    if not usage or not any(b[0] == "list" for b in blocks):
        sys.exit(f"gen_man: cannot read the usage and options of {a.binary} --help")
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc))
    fills = {
        "@SYNOPSIS@": lambda section: synopsis(usage, a.name),
        "@DESCRIPTION@": lambda section: description(blocks),
        "@OPTIONS@": lambda section: options(blocks, section),
    }
    with open(a.template, encoding="utf-8") as f:
        template = f.read()
    out = [f'.\\" Generated by man/gen_man.py from {os.path.basename(a.template)} and '
           f'`{a.name} --help`; edit those, not this file.']
    section = ""
    for line in template.split("\n"):
        if line.startswith(".SH "):
            section = line[4:].strip().strip('"')
        if line.strip() in fills:
            fill = fills[line.strip()](section)
            if fill:
                out.append(fill)
        else:
            out.append(line.replace("@VERSION@", version)
                       .replace("@DATE@", when.strftime("%Y-%m-%d")))
    text = "\n".join(out)
    tmp = a.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
