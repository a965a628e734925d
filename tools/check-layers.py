#!/usr/bin/env python3
"""check-layers.py - the layer rule of src/layers.txt, checked on the sources.

  check-layers.py            check: the table has no cycle and names every
                             folder of src/, and every #include "dir/x.h" in
                             src/<folder>/ names the folder itself or a layer
                             below it (transitively). Exit 1 with the list of
                             offending includes otherwise.
  check-layers.py selftest   plant an upward include, a sideways include and
                             a cycle in a scratch tree: each must be caught.
  check-layers.py links OUT LAYER
                             (meson, at configure time) make OUT/<dir> ->
                             src/<dir> for LAYER and every layer below it: the
                             only include path LAYER's library is built with.
The build enforces the same rule; this check names every offence at once and
also runs without a build (tools/test.sh).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.environ.get('CHECK_LAYERS_SRC') or os.path.join(ROOT, 'src')
TOP = {'cli'}  # commands: may include every layer


def read_table():
    table = {}
    with open(os.path.join(SRC, 'layers.txt'), encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            name, _, deps = line.partition(':')
            name = name.strip()
            if not re.fullmatch(r'[a-z0-9_]+', name) or name in table:
                sys.exit('src/layers.txt:%d: bad or repeated layer %r' % (n, name))
            table[name] = deps.split()
    return table


def closures(table):
    """Every layer's set of layers below it; exits on a cycle or unknown name."""
    done, below = set(), {}

    def visit(name, path):
        if name in path:
            sys.exit('src/layers.txt: cycle ' + ' -> '.join(path + [name]))
        if name in done:
            return below[name]
        if name not in table:
            sys.exit('src/layers.txt: %s names unknown layer %s' % (path[-1], name))
        acc = set()
        for d in table[name]:
            acc |= {d} | visit(d, path + [name])
        below[name] = acc
        done.add(name)
        return acc

    for name in table:
        visit(name, [])
    return below


def links(out, layer):
    table = read_table()
    below = closures(table)
    if layer not in table:
        sys.exit('no layer %s in src/layers.txt' % layer)
    os.makedirs(out, exist_ok=True)
    want = below[layer] | {layer}
    for entry in os.listdir(out):
        if entry not in want:
            os.unlink(os.path.join(out, entry))
    for d in sorted(want):
        p = os.path.join(out, d)
        if os.path.islink(p) and os.readlink(p) == os.path.join(SRC, d):
            continue
        if os.path.lexists(p):
            os.unlink(p)
        os.symlink(os.path.join(SRC, d), p)


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"')


def check():
    table = read_table()
    below = closures(table)
    bad = []
    folders = sorted(d for d in os.listdir(SRC) if os.path.isdir(os.path.join(SRC, d)))
    for folder in folders:
        if folder not in table and folder not in TOP:
            bad.append('src/%s: not in src/layers.txt' % folder)
            continue
        for fn in sorted(os.listdir(os.path.join(SRC, folder))):
            if not fn.endswith(('.c', '.h')):
                continue
            path = os.path.join(SRC, folder, fn)
            with open(path, encoding='utf-8', errors='replace') as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    d = m.group(1)
                    if folder in TOP:
                        ok = d in table or d in TOP
                    else:
                        ok = d == folder or d in below[folder]
                    if not ok:
                        bad.append('src/%s/%s:%d: includes %s/ (%s may include: %s)' % (
                            folder, fn, n, d, folder, ' '.join(sorted(below.get(folder, ()))) or 'nothing'))
    for b in bad:
        print(b)
    if bad:
        print('check-layers: %d offences' % len(bad))
        return 1
    print('check-layers: %d layers, no cycle, no upward include' % len(table))
    return 0


def selftest():
    import subprocess
    import tempfile
    cases = {
        'upward include': ('lib:\ncas: lib\nstb: cas\n', {'cas/a.c': '#include "stb/b.h"\n', 'stb/b.h': ''}),
        'sideways include': ('lib:\ncard: lib\nstb: lib\n', {'card/a.c': '#include "stb/b.h"\n', 'stb/b.h': ''}),
        'cycle': ('lib: cas\ncas: lib\n', {'lib/a.h': '', 'cas/b.h': ''}),
        'folder not in the table': ('lib:\n', {'lib/a.h': '', 'extra/b.c': '#include "lib/a.h"\n'}),
    }
    ok = True
    for name, (table, files) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, 'layers.txt'), 'w') as f:
                f.write(table)
            for rel, text in files.items():
                os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(d, rel), 'w') as f:
                    f.write(text)
            r = subprocess.run([sys.executable, os.path.abspath(__file__)], env=dict(os.environ, CHECK_LAYERS_SRC=d),
                               capture_output=True, text=True)
            caught = r.returncode != 0
            print('check-layers selftest: %s %s' % (name, 'caught' if caught else 'MISSED'))
            ok = ok and caught
    return 0 if ok else 1


if __name__ == '__main__':
    if len(sys.argv) == 2 and sys.argv[1] == 'selftest':
        sys.exit(selftest())
    if len(sys.argv) == 4 and sys.argv[1] == 'links':
        links(sys.argv[2], sys.argv[3])
        sys.exit(0)
    if len(sys.argv) == 1:
        sys.exit(check())
    sys.exit(__doc__)
