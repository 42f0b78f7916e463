#!/usr/bin/env python3
"""order.py MAP TRACE... : prints a symbol ordering file for lld.
Each TRACE holds 'offset seq role' lines (executed instruction addresses of
the binary the MAP describes; role 0: the command's process, 1: its clones),
each role a trace of its own. Sections hit by more traces go first; among
them, by the bitset of traces and then by first execution."""
import bisect, re, sys

def sections(map_path):
    secs = []  # (vma, size, name, symbols)
    out = None
    line_re = re.compile(r'^\s*([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+(\d+)(\s+)(.*)$')
    for line in open(map_path):
        m = line_re.match(line)
        if not m:
            continue
        vma, size, indent, rest = int(m[1], 16), int(m[3], 16), len(m[5]), m[6]
        if indent <= 1:
            out = rest
        elif indent <= 9:
            if out in ('.text',):
                name = rest[rest.rfind(':(') + 2:-1] if ':(' in rest else rest
                secs.append([vma, size, name, []])
        elif secs and out == '.text' and secs[-1][0] <= vma < secs[-1][0] + max(secs[-1][1], 1):
            secs[-1][3].append(rest)
    secs.sort()
    return secs

def main():
    secs = sections(sys.argv[1])
    starts = [s[0] for s in secs]
    hit = {}  # index -> [bitset, first seq rank]
    traces = []  # one per (file, role): a command's own process, its clones
    for path in sys.argv[2:]:
        by_role = {}
        for line in open(path):
            off, seq, *role = line.split()
            by_role.setdefault(role[0] if role else '0', []).append((int(seq), int(off, 16)))
        traces += [sorted(rows) for _, rows in sorted(by_role.items())]
    for t, rows in enumerate(traces):
        for rank, (seq, off) in enumerate(rows):
            i = bisect.bisect_right(starts, off) - 1
            if i < 0 or off >= secs[i][0] + secs[i][1]:
                continue
            h = hit.setdefault(i, [0, rank + t * 10**7])
            h[0] |= 1 << t
    order = sorted(hit, key=lambda i: (-bin(hit[i][0]).count('1'), -hit[i][0], hit[i][1]))
    total = sum(secs[i][1] for i in order)
    print(f'# {len(order)} sections, {total} bytes', file=sys.stderr)
    for i in order:
        name = secs[i][2]
        symbol = name[len('.text.'):] if name.startswith('.text.') else ''
        for kind in ('unlikely.', 'hot.', 'startup.', 'exit.', 'split.'):
            symbol = symbol.removeprefix(kind)
        # C objects without function sections: their first symbol (not demangled).
        if not symbol and secs[i][3]:
            symbol = secs[i][3][0]
        if symbol:
            print(symbol)
if __name__ == "__main__":
    main()
