#!/usr/bin/env python3
"""check-doc-options.py - every `--option` the docs name must exist in --help.

For each line of README.md and docs/*.md: an option on a line that names
`castellan CMD` must be in CMD's --help, one after `castellan-demo [SCENARIO]`
(the demos, tests/e2e) in that scenario's --help; any other --option must be
in the --help of some command. Prints each miss as FILE:LINE: --opt
(castellan CMD) and exits 1 if there is one.

usage: tools/check-doc-options.py [path/to/castellan [FILE.md ...]]
(default: build/src/cli/castellan, README.md and docs/*.md)
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/src/cli/castellan")
OPT = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*[a-z0-9])")
CMD = re.compile(r"\bcastellan ([a-z][a-z0-9-]*)")
# Options of other programs that the docs quote (meson, dpkg, wrk, ...): a line
# naming one of these programs is not checked against castellan's --help.
OTHER = re.compile(r"\b(TSDuck|Astra|meson|ninja|dpkg-buildpackage|apt-get|wrk|tsp|tsecmg|tstestecmg|tsemmg|"
                   r"pcscd|psql|pg_ctl|initdb|openssl|chromium|npm|git|systemctl|journalctl|"
                   r"systemd-analyze|sqlite3|curl|ffmpeg|valgrind|perf|hyperfine|tshark|"
                   r"playwright|pkcs11-tool|softhsm2-util|help2man|tools/[\w./-]+|bench/[\w./-]+|"
                   r"docker|lintian|debuild|dh|prometheus|grafana)\b")

# the demo driver, next to the tests (build/tests/e2e/castellan-demo)
DEMO = os.environ.get("CASTELLAN_DEMO") or os.path.join(os.path.dirname(os.path.abspath(BIN)), "..", "..", "tests",
                                                        "e2e", "castellan-demo")

TOKEN = re.compile(r"\bcastellan-demo(?: (?P<scen>[a-z][a-z0-9-]*))?|"
                   r"\bcastellan (?P<cmd>[a-z][a-z0-9-]*)|(?P<other>" + OTHER.pattern + r")|"
                   r"(?<![\w-])--(?P<opt>[a-z][a-z0-9-]*[a-z0-9])")


def help_of(cmd):
    try:
        out = subprocess.run([BIN, cmd, "--help"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout + out.stderr


def demo_helps():
    """{"castellan-demo SCENARIO": its options} ("castellan-demo": the
    default scenario's); empty if the driver is not built."""
    try:
        top = subprocess.run([DEMO, "--help"], capture_output=True, text=True, timeout=20).stdout
    except OSError:
        return {}
    helps = {}
    for sc, default in re.findall(r"^([a-z][a-z0-9-]*)( \(default\))?:$", top, re.M):
        out = subprocess.run([DEMO, sc, "--help"], capture_output=True, text=True, timeout=20).stdout
        helps["castellan-demo " + sc] = set(OPT.findall(out)) | {"help"}
        if default:
            helps["castellan-demo"] = helps["castellan-demo " + sc]
    return helps


def main():
    top = subprocess.run([BIN, "help"], capture_output=True, text=True).stdout
    cmds = re.findall(r"^  ([a-z][a-z0-9-]*) ", top, re.M)
    if not cmds:
        print("check-doc-options: cannot list commands of", BIN)
        return 1
    helps = {c: set(OPT.findall(help_of(c))) | {"help"} for c in cmds}
    union = set().union(*helps.values())
    demo = demo_helps()
    misses = 0
    files = sys.argv[2:] or [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    for path in files:
        rel = os.path.relpath(path, ROOT)
        carried = None  # the command of a shell line continued with a backslash
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                cont = carried
                carried = None
                # An option belongs to the nearest program named before it in
                # the same table cell: `castellan CMD` (checked against CMD's
                # --help), another program (not checked), or none (checked
                # against every command's --help).
                for cell in line.split("|"):
                    cmd = cont
                    for m in TOKEN.finditer(cell):
                        if m.group(0).startswith("castellan-demo"):
                            key = "castellan-demo" + (" " + m.group("scen") if m.group("scen") else "")
                            if key not in demo:
                                key = "castellan-demo"
                            cmd = key if key in demo else "-"
                            continue
                        if m.group("cmd"):
                            cmd = m.group("cmd") if m.group("cmd") in helps else None
                            continue
                        if m.group("other"):
                            cmd = "-"
                            continue
                        o = m.group("opt")
                        if cmd == "-":
                            continue
                        if cmd and cmd.startswith("castellan-demo"):
                            if o not in demo[cmd]:
                                print(f"{rel}:{n}: --{o} is not in `{cmd} --help`")
                                misses += 1
                        elif cmd and o not in helps[cmd]:
                            print(f"{rel}:{n}: --{o} is not in `castellan {cmd} --help`")
                            misses += 1
                        elif not cmd and o not in union:
                            print(f"{rel}:{n}: --{o} is in no command's --help")
                            misses += 1
                if line.rstrip().endswith("\\"):
                    carried = cmd
    print(f"check-doc-options: {misses} option(s) named in the docs but not in --help")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
