#!/usr/bin/env python3
"""house.py: the rules of the source tree's layout (docs/internals/layout.md), checked.

    python3 tests/docs/house.py ROOT            check; exit 1 and name every breach
    python3 tests/docs/house.py ROOT --report   also list the longest files and functions

- no source file under src/ (.c, .h, .js) over MAX_FILE lines;
- no function over MAX_FUNC lines: C functions (a definition whose body opens with '{'
  in column 0 and closes with '}' in column 0, the house style) and JavaScript functions
  (`function name(...) {` up to the '}' at the same indentation);
- every directory under src/ that holds source files has a README.md, and that README
  names every source file of its directory (by file name, or by a glob such as
  `write*.c`, or as `name.c/.h`), so the map cannot fall behind the tree.
"""
import fnmatch
import os
import re
import sys

MAX_FILE = 1000
MAX_FUNC = 150
SOURCE_EXT = ('.c', '.h', '.js')


def c_functions(lines):
    """(name, first line, length) of each C function in house style."""
    out = []
    start = None
    for i, line in enumerate(lines):
        if line.startswith('{') and start is None:
            j = i - 1
            while j >= 0 and '(' not in lines[j]:
                j -= 1
            m = re.search(r'(\w+)\s*\(', lines[j]) if j >= 0 else None
            start, name = i, (m.group(1) if m else '?')
        elif line.startswith('}') and start is not None:
            out.append((name, start + 1, i - start + 1))
            start = None
    return out


def js_functions(lines):
    out = []
    for i, line in enumerate(lines):
        m = re.match(r'^(\s*)(export\s+)?(async\s+)?function\s*\*?\s*(\w+)', line)
        if not m or not line.rstrip().endswith('{'):
            continue
        ind = m.group(1)
        for j in range(i + 1, len(lines)):
            if lines[j].startswith(ind + '}') and not lines[j].startswith(ind + ' '):
                out.append((m.group(4), i + 1, j - i + 1))
                break
    return out


def readme_names(text, name):
    """Whether README text names file name: literally, as `stem.c/.h`, or by a glob."""
    if re.search(r'(^|[^\w.])' + re.escape(name) + r'($|[^\w])', text):
        return True
    stem, ext = os.path.splitext(name)
    if re.search(r'(^|[^\w.])' + re.escape(stem) + r'\.c/\.h', text):
        return True
    for g in re.findall(r'[\w/]*\*[\w.*]*', text):
        if fnmatch.fnmatch(name, os.path.basename(g)):
            return True
    return False


def selftest():
    """The check catches what it is for: a long file, a long C and JS function, a file
    its README does not name, a directory without a README."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as t:
        os.makedirs(os.path.join(t, 'src', 'a'))
        os.makedirs(os.path.join(t, 'src', 'b'))
        open(os.path.join(t, 'src', 'a', 'README.md'), 'w').write('| ok.c | fine |\n| big*.c | glob |\n')
        open(os.path.join(t, 'src', 'a', 'ok.c'), 'w').write('int f(void)\n{\n' + '\tx();\n' * 148 + '}\n')
        open(os.path.join(t, 'src', 'a', 'big1.c'), 'w').write('/* x */\n' * 1001)
        open(os.path.join(t, 'src', 'a', 'stray.c'), 'w').write('int g(void)\n{\n' + '\tx();\n' * 149 + '\tx();\n}\n')
        open(os.path.join(t, 'src', 'b', 'ui.js'), 'w').write('function v() {\n' + '  x();\n' * 148 + '}\n')
        r = subprocess.run([sys.executable, __file__, t], capture_output=True, text=True)
        want = ['src/a/big1.c: 1001 lines', 'src/a/stray.c: not named', 'function g has 152 lines',
                'src/b: no README.md', 'house: 4 files']
        missing = [w for w in want if w not in r.stdout]
        unwanted = [u for u in ['function f has', 'ok.c: not named', 'function v has'] if u in r.stdout]
        if r.returncode != 1 or missing or unwanted:
            print('house selftest failed: rc %d, missing %s, unwanted %s\n%s' % (r.returncode, missing, unwanted,
                                                                              r.stdout))
            return 1
    print('house selftest: ok')
    return 0


def main():
    if '--selftest' in sys.argv:
        return selftest()
    root = sys.argv[1] if len(sys.argv) > 1 else '.'
    report = '--report' in sys.argv
    src = os.path.join(root, 'src')
    bad = []
    files = []
    funcs = []
    for d, dirs, names in os.walk(src):
        dirs.sort()
        srcs = sorted(n for n in names if n.endswith(SOURCE_EXT))
        rel = os.path.relpath(d, root)
        if srcs:
            readme = os.path.join(d, 'README.md')
            # the UI's sub-folders are mapped by src/server/README.md
            owner = readme
            probe = d
            while not os.path.exists(owner) and probe != src:
                probe = os.path.dirname(probe)
                owner = os.path.join(probe, 'README.md')
            if not os.path.exists(owner):
                bad.append('%s: no README.md maps this directory' % rel)
            else:
                text = open(owner, encoding='utf-8').read()
                for n in srcs:
                    if not readme_names(text, n):
                        bad.append('%s/%s: not named in %s' % (rel, n, os.path.relpath(owner, root)))
        for n in srcs:
            p = os.path.join(d, n)
            lines = open(p, encoding='utf-8', errors='replace').read().split('\n')
            count = len(lines) - (1 if lines and lines[-1] == '' else 0)
            files.append((count, os.path.join(rel, n)))
            if count > MAX_FILE:
                bad.append('%s/%s: %d lines (at most %d)' % (rel, n, count, MAX_FILE))
            fl = c_functions(lines) if n.endswith('.c') else js_functions(lines) if n.endswith('.js') else []
            for name, at, length in fl:
                funcs.append((length, '%s/%s:%d %s' % (rel, n, at, name)))
                if length > MAX_FUNC:
                    bad.append('%s/%s:%d: function %s has %d lines (at most %d)' % (rel, n, at, name, length,
                                                                                    MAX_FUNC))
    if report:
        print('longest files:')
        for c, p in sorted(files, reverse=True)[:10]:
            print('  %5d %s' % (c, p))
        print('longest functions:')
        for c, p in sorted(funcs, reverse=True)[:10]:
            print('  %5d %s' % (c, p))
    for b in bad:
        print('house: ' + b)
    print('house: %d files, %d functions checked: %s' % (len(files), len(funcs), 'ok' if not bad else
                                                         '%d problems' % len(bad)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
