#!/usr/bin/env python3
"""ts_es_compare.py - compare the elementary-stream packets of two TS files.

  ts_es_compare.py CLEAR.ts BOX_OUTPUT.ts [PID ...]   (default PIDs 0x100-0x103,
                                                      the services of tests/data/ts-clear-2svc.ts)

Packets of each PID are taken in order from both files (the scrambler inserts
ECM/EMM/CAT packets and rewrites PMTs, so whole files never match) and compared
byte for byte. Prints one line: compared, differing, and of those still
scrambled (scrambling bits not 00); exit 1 if any differ or a count differs.
Used by bench/ecmg_failover.sh to judge the box by its output, not its counters.
"""
import sys


def by_pid(path):
    data = open(path, 'rb').read()
    out = {}
    for i in range(0, len(data) - 187, 188):
        p = data[i:i + 188]
        out.setdefault(((p[1] & 0x1F) << 8) | p[2], []).append(p)
    return out


def main():
    a, b = by_pid(sys.argv[1]), by_pid(sys.argv[2])
    pids = [int(x, 0) for x in sys.argv[3:]] or [0x100, 0x101, 0x102, 0x103]
    total = bad = scrambled = 0
    ok = True
    for pid in pids:
        x, y = a.get(pid, []), b.get(pid, [])
        if len(x) != len(y):
            print("pid %#x: %d packets in the clear input, %d in the output" % (pid, len(x), len(y)))
            ok = False
        for i in range(min(len(x), len(y))):
            total += 1
            if x[i] != y[i]:
                bad += 1
                scrambled += (y[i][3] >> 6) != 0
    print("ES packets compared %d, differing %d (still scrambled %d)" % (total, bad, scrambled))
    return 0 if ok and bad == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
