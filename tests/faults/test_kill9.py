#!/usr/bin/env python3
"""tests/faults/test_kill9.py - kill -9 in the middle of the write paths
(issue 12 item 14); after each kill the data is all-or-nothing and the audit
chain still verifies.

  * CSV import (`castellan sms import`, one transaction): killed at K points
    spread over a full import's duration (measured first); each time the
    imported range holds 0 or ROWS cards, the card entries of the audit log
    0 or ROWS, `castellan audit verify` passes, and the next import works.
  * REST bulk change (`POST /api/v1/subscriptions/bulk` to `castellan web
    serve`): the server killed at K points after the request is sent; the
    bulk's subscriptions are all there or none, the audit verifies, and the
    server starts again on the same store.
  * KMS chip order (`castellan kms order import`): killed at each named
    fault point (CASTELLAN_FAULT_AT, src/lib/fault.h: kms.order.logged,
    .written, .saved) and at K time points; the KMS audit log verifies with
    its anchor, every committed order has its "begin" line, an order killed
    before its commit can be imported again and one killed after cannot.
The store cases run on SQLite and on a throwaway PostgreSQL server (skipped
if none is installed). Kill points are spread by time: what the test asserts
holds wherever the kill lands (no timing is asserted).

Environment: CASTELLAN_BIN (the castellan binary), KILL9_ROWS (CSV rows,
default 20000; 1000000 for the long run), KILL9_BULK (bulk items, default
3000), KILL9_POINTS (kill points per case, default 5), KILL9_ONLY (csv, bulk
or kms).
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

B = os.environ.get("CASTELLAN_BIN", "build/src/cli/castellan")
ROWS = int(os.environ.get("KILL9_ROWS", "20000"))
BULK = int(os.environ.get("KILL9_BULK", "3000"))
POINTS = int(os.environ.get("KILL9_POINTS", "5"))
ONLY = os.environ.get("KILL9_ONLY", "")
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL: " + what, flush=True)
    return cond


def run(*args, env=None, ok=True, timeout=600):
    r = subprocess.run([B] + list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if ok and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args[:3]), r.returncode, r.stderr[-500:]))
    return r


def kill_after(args, seconds, env=None):
    """Start castellan ARGS, SIGKILL it after seconds (if still running); its exit code."""
    p = subprocess.Popen([B] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        return p.wait(seconds)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


class Pg:
    """A throwaway PostgreSQL server on a unix socket (as tests/pgtest.h)."""

    def __init__(self, d):
        self.dir = d + "/pg"
        base = "/usr/lib/postgresql"
        vers = sorted((int(v) for v in os.listdir(base) if v.isdigit() and
                       os.access("%s/%s/bin/initdb" % (base, v), os.X_OK)), reverse=True) if os.path.isdir(base) else []
        self.bin = "%s/%d/bin" % (base, vers[0]) if vers else None
        self.as_ = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.ok = False
        if not self.bin:
            return
        os.makedirs(self.dir)
        os.chmod(d, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        if subprocess.run(self.as_ + [self.bin + "/initdb", "-D", self.dir + "/data", "-A", "trust", "-U",
                                      "castellan", "-E", "UTF8", "--no-sync"], capture_output=True).returncode:
            return
        if subprocess.run(self.as_ + [self.bin + "/pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/server.log",
                                      "-w", "-t", "60", "-o", "-p %d -k %s -c listen_addresses='' -c fsync=off" %
                                      (self.port, self.dir), "start"], capture_output=True).returncode:
            return
        self.ok = True
        self.n = 0

    def new_db(self):
        self.n += 1
        name = "k%d" % self.n
        self.sql("postgres", "CREATE DATABASE %s" % name)
        return "postgres:host=%s port=%d dbname=%s user=castellan" % (self.dir, self.port, name), name

    def sql(self, db, q):
        r = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-h", self.dir, "-p", str(self.port), "-U", "castellan",
                            "-d", db, "-c", q], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("psql: " + r.stderr)
        return r.stdout.strip()

    def stop(self):
        if self.ok:
            subprocess.run(self.as_ + [self.bin + "/pg_ctl", "-D", self.dir + "/data", "-m", "immediate", "-w", "stop"],
                           capture_output=True)


class Store:
    def __init__(self, w, pg, name):
        self.pg = pg
        if pg:
            self.uri, self.db = pg.new_db()
        else:
            self.path = "%s/%s.db" % (w, name)
            self.uri = "sqlite:" + self.path

    def count(self, q):
        if self.pg:
            return int(self.pg.sql(self.db, q))
        import sqlite3
        c = sqlite3.connect(self.path, timeout=30)
        try:
            return int(c.execute(q).fetchone()[0])
        finally:
            c.close()

    def verify(self, what):
        r = run("audit", "--db", self.uri, "verify", ok=False)
        check(r.returncode == 0, "%s: audit verify exit %d: %s" % (what, r.returncode, (r.stdout + r.stderr)[-300:]))


def csv_file(w, first, n):
    p = "%s/import-%d.csv" % (w, first)
    with open(p, "w") as f:
        f.write("serial_no,name,access_criteria,start,finish\n")
        for i in range(n):
            f.write("%d,sub %d,00000003,1700000000,1900000000\n" % (first + i, i))
    return p


def case_csv(w, pg, label):
    st = Store(w, pg, "csv")
    run("sms", "--db", st.uri, "init")
    first = 3000000000
    t0 = time.monotonic()
    run("sms", "--db", st.uri, "import", csv_file(w, first, ROWS))
    full = time.monotonic() - t0
    check(st.count("SELECT COUNT(*) FROM cards WHERE serial >= %d AND serial < %d" % (first, first + ROWS)) == ROWS,
          "%s csv: the uninterrupted import" % label)
    killed = 0
    for k in range(1, POINTS + 1):
        first += ROWS
        f = csv_file(w, first, ROWS)
        rc = kill_after(["sms", "--db", st.uri, "import", f], full * k / (POINTS + 1))
        killed += rc == -signal.SIGKILL
        cards = st.count("SELECT COUNT(*) FROM cards WHERE serial >= %d AND serial < %d" % (first, first + ROWS))
        subs = st.count("SELECT COUNT(*) FROM subscriptions WHERE card >= %d AND card < %d" % (first, first + ROWS))
        ents = st.count("SELECT COUNT(*) FROM audit WHERE action = 'card.add' AND object >= 'card:%d' AND "
                        "object <= 'card:%d'" % (first, first + ROWS - 1))
        what = "%s csv: kill at %.0f%% (exit %d)" % (label, 100.0 * k / (POINTS + 1), rc)
        check(cards in (0, ROWS), "%s: %d of %d cards" % (what, cards, ROWS))
        check(subs == 2 * cards, "%s: %d subscriptions for %d cards" % (what, subs, cards))
        check(ents == cards, "%s: %d audit entries for %d cards" % (what, ents, cards))
        st.verify(what)
        print("%s: %d cards, %d entries" % (what, cards, ents), flush=True)
    # and the store takes the next import whole
    first += ROWS
    run("sms", "--db", st.uri, "import", csv_file(w, first, 100))
    check(st.count("SELECT COUNT(*) FROM cards WHERE serial >= %d" % first) == 100, "%s csv: import after" % label)
    st.verify("%s csv: after" % label)
    check(killed >= 1, "%s csv: no kill landed before the import ended (%d)" % (label, killed))


def serve(w, st, tag):
    ready = "%s/ready-%s" % (w, tag)
    if os.path.exists(ready):
        os.unlink(ready)
    p = subprocess.Popen([B, "web", "--data", w + "/web-" + tag, "serve", "--http", "127.0.0.1:0", "--db", st.uri,
                          "--root", "off", "--ready-file", ready, "--admin-password-file", w + "/webpw"],
                         stdout=subprocess.DEVNULL, stderr=open(w + "/web-%s.log" % tag, "a"))
    for _ in range(600):
        if os.path.exists(ready) or p.poll() is not None:
            break
        time.sleep(0.05)
    txt = open(ready).read()
    port = int(re.search(r"(\d+)", txt.split("http=")[-1]).group(1))
    return p, port


def case_bulk(w, pg, label):
    st = Store(w, pg, "bulk")
    key = run("sms", "--db", st.uri, "init", "--admin", "kill9").stdout
    key = re.search(r"[A-Za-z0-9_\-]{24,}", key).group(0)
    first = 4000000000
    run("sms", "--db", st.uri, "import", csv_file(w, first, BULK))
    with open(w + "/webpw", "w") as f:
        f.write("kill9 panel password 1234\n")
    os.chmod(w + "/webpw", 0o600)
    os.makedirs(w + "/web-" + label.replace(" ", ""), exist_ok=True)
    tag = label.replace(" ", "")

    def bulk(package):
        return json.dumps({"subscribe": [{"serial_no": str(first + i), "package": package, "start": 1700000000,
                                          "finish": 1900000000} for i in range(BULK)]}).encode()

    def post(port, body):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("POST", "/api/v1/subscriptions/bulk", body=body,
                  headers={"X-API-Key": key, "Content-Type": "application/json"})
        return c

    p, port = serve(w, st, tag)
    t0 = time.monotonic()
    c = post(port, bulk(10))
    r = c.getresponse()
    r.read()
    full = time.monotonic() - t0
    check(r.status in (200, 201), "%s bulk: the uninterrupted bulk answered %d" % (label, r.status))
    for k in range(1, POINTS + 1):
        pkg = 10 + k
        c = post(port, bulk(pkg))
        time.sleep(full * k / (POINTS + 1))
        p.kill()
        p.wait()
        c.close()
        n = st.count("SELECT COUNT(*) FROM subscriptions WHERE package = %d" % pkg)
        ents = st.count("SELECT COUNT(*) FROM audit WHERE action = 'subscribe' AND what LIKE '%% package %d %%'" % pkg)
        what = "%s bulk: kill at %.0f%%" % (label, 100.0 * k / (POINTS + 1))
        check(n in (0, BULK), "%s: %d of %d subscriptions" % (what, n, BULK))
        check(ents == n, "%s: %d audit entries for %d subscriptions" % (what, ents, n))
        st.verify(what)
        print("%s: %d subscriptions" % (what, n), flush=True)
        p, port = serve(w, st, tag)  # starts again on the same store
    c = post(port, json.dumps({"subscribe": [{"serial_no": str(first), "package": 30, "start": 1700000000,
                                              "finish": 1900000000}]}).encode())
    r = c.getresponse()
    r.read()
    check(r.status in (200, 201), "%s bulk: a bulk after the kills answered %d" % (label, r.status))
    p.terminate()
    p.wait()
    st.verify("%s bulk: after" % label)


def case_kms(w):
    d = w + "/kms"
    pw = w + "/kmspass"
    with open(pw, "w") as f:
        f.write("kill9 kms passphrase for the test\n")
    os.chmod(pw, 0o600)
    base = ["--dir", d, "--passphrase-file", pw]
    run("kms", "init", "--scrypt-log2n", "10", *base)
    nxt = [1 << 40]

    def chips(n):
        p = "%s/chips-%d.csv" % (w, nxt[0])
        with open(p, "w") as f:
            f.write("".join("0x%x\n" % (nxt[0] + i) for i in range(n)))
        nxt[0] += n
        return p

    def log():
        return open(d + "/audit.log").read()

    def verify(what):
        r = run("kms", "audit", "verify", *base, ok=False)
        check(r.returncode == 0, "%s: kms audit verify exit %d: %s" % (what, r.returncode, r.stderr[-300:]))

    def orders():
        return sorted(int(m) for m in re.findall(r"order import order=(\d+)", log()))

    def begun():
        return set(int(m) for m in re.findall(r"order import begin order=(\d+)", log()))

    def committed_max():
        f = chips(1)
        r = run("kms", "order", "import", f, *base)
        m = re.search(r"order (\d+)", r.stdout + r.stderr)
        return int(m.group(1)) if m else 0

    for point in ("kms.order.logged", "kms.order.written", "kms.order.saved"):
        f = chips(50)
        env = dict(os.environ, CASTELLAN_FAULT_AT=point)
        r = run("kms", "order", "import", f, *base, env=env, ok=False)
        what = "kms: killed at %s" % point
        if not check(r.returncode == -signal.SIGKILL, "%s: exit %d (a build without fault points?)" %
                     (what, r.returncode)):
            continue
        verify(what)
        again = run("kms", "order", "import", f, *base, ok=False)
        if point == "kms.order.saved":
            check(again.returncode != 0, "%s: the committed order's chips were issued twice" % what)
        else:
            check(again.returncode == 0, "%s: the uncommitted order's chips refused: %s" % (what, again.stderr[-200:]))
        last = committed_max()
        missing = [o for o in range(1, last + 1) if o not in begun() and o not in orders()]
        check(not missing, "%s: orders with no audit line: %s" % (what, missing))
        verify(what + ", then two imports")
        print("%s: next order %d, audit intact" % (what, last), flush=True)
    # by time, over a large order
    t0 = time.monotonic()
    run("kms", "order", "import", chips(200000), *base)
    full = time.monotonic() - t0
    for k in range(1, POINTS + 1):
        rc = kill_after(["kms", "order", "import", chips(200000)] + base, full * k / (POINTS + 1))
        what = "kms: kill at %.0f%% (exit %d)" % (100.0 * k / (POINTS + 1), rc)
        verify(what)
        last = committed_max()
        missing = [o for o in range(1, last + 1) if o not in begun() and o not in orders()]
        check(not missing, "%s: orders with no audit line: %s" % (what, missing))


class Sink:
    """A MUX for the head-end's EMMG: grants what is asked, records the
    highest seq it saw per card (unique 0x82 and group 0x83 sections)."""
    ANSWER = {0x0011: 0x0013, 0x0111: 0x0113, 0x0114: 0x0115, 0x0117: 0x0118}

    def __init__(self):
        import threading
        self.seen = {}
        self.active = 0
        self.sections = 0
        self.lock = threading.Lock()
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(4)
        self.port = self.s.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        import threading
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            with self.lock:
                self.active += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def note(self, serial, seq):
        if seq > self.seen.get(serial, 0):
            self.seen[serial] = seq

    def section(self, b):
        self.sections += 1
        if b[0] == 0x82 and len(b) >= 18:
            self.note(int.from_bytes(b[6:14], "big"), int.from_bytes(b[14:18], "big"))
        elif b[0] == 0x83 and len(b) >= 15:
            j = 15
            for _ in range(b[14]):
                if j + 26 > len(b):
                    break
                self.note(int.from_bytes(b[j:j + 8], "big"), int.from_bytes(b[j + 8:j + 12], "big"))
                ct = int.from_bytes(b[j + 24:j + 26], "big")
                j += 26 + ct + 16

    def serve(self, c):
        import struct
        f = c.makefile("rb")
        try:
            while True:
                h = f.read(5)
                if len(h) < 5:
                    return
                ver, typ, n = struct.unpack(">BHH", h)
                body = f.read(n)
                if len(body) < n:
                    return
                if typ in self.ANSWER:
                    c.sendall(struct.pack(">BHH", ver, self.ANSWER[typ], n) + body)
                elif typ == 0x0211:
                    i = 0
                    while i + 4 <= n:
                        t, ln = struct.unpack_from(">HH", body, i)
                        if t == 0x0005:
                            j, end = i + 4, i + 4 + ln
                            while j + 3 <= end:
                                sl = 3 + (((body[j + 1] & 0x0F) << 8) | body[j + 2])
                                self.section(body[j:j + sl])
                                j += sl
                        i += 4 + ln
        except OSError:
            pass
        finally:
            c.close()
            with self.lock:
                self.active -= 1


def case_carousel(w, pg, label):
    """The carousel's sequence commit: a card's seq is stored before any EMM
    carrying it goes on air, so after a kill -9 the store holds, for every
    card, at least the highest seq the MUX received (the head-end restarts
    from the store: a number sent is never given again to other content)."""
    st = Store(w, pg, "carousel")
    tag = "he-" + label
    d = "%s/%s" % (w, tag)
    os.makedirs(d)
    pw = w + "/hepass"
    with open(pw, "w") as f:
        f.write("kill9 head-end passphrase\n")
    os.chmod(pw, 0o600)
    if not os.path.exists(w + "/ks"):
        run("keys", "init", "--out", w + "/ks", "--ca-system-id", "0x4ADC", "--passphrase-file", pw)
    sink = Sink()
    cards = 2000
    first = 5000000000
    key = None

    def start():
        ready = d + "/ready"
        if os.path.exists(ready):
            os.unlink(ready)
        p = subprocess.Popen([B, "headend", "--data-dir", d, "--keystore", w + "/ks", "--passphrase-file", pw,
                              "--db", st.uri, "--http", "127.0.0.1:0", "--ecmg", "off", "--mux",
                              "127.0.0.1:%d" % sink.port, "--emm-kbps", "2000", "--ready-file", ready,
                              "--admin-key-file", d + "/key", "--web-root", "off", "--status-every", "0"],
                             stdout=subprocess.DEVNULL, stderr=open(d + "/headend.log", "a"))
        for _ in range(600):
            if os.path.exists(ready) or p.poll() is not None:
                break
            time.sleep(0.05)
        port = int(re.search(r"http=(\d+)", open(ready).read()).group(1))
        return p, port

    def req(port, method, path, body=None, ctype="application/json"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request(method, path, body=body, headers={"X-API-Key": key, "Content-Type": ctype})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    p, port = start()
    key = open(d + "/key").read().split()[0]
    csv = "serial_no,access_criteria,start,finish\n" + "".join(
        "%d,00000001,1700000000,1900000000\n" % (first + i) for i in range(cards))
    check(req(port, "POST", "/api/v1/import", csv.encode(), "text/csv") in (200, 201), "%s carousel: import" % label)
    for k in range(1, POINTS + 2):
        # changes (each gives a card a new seq), then a kill somewhere in the sending
        for i in range(20):
            body = json.dumps({"serial_no": str(first + (k * 37 + i * 101) % cards), "package": k % 30 + 1,
                               "start": 1700000000, "finish": 1900000000})
            req(port, "POST", "/api/v1/subscriptions", body.encode())
        time.sleep(0.2 + 0.3 * k)
        p.kill()
        p.wait()
        for _ in range(100):  # the sink reads what was sent before the kill
            if sink.active == 0:
                break
            time.sleep(0.05)
        seen = dict(sink.seen)
        if st.pg:
            rows = st.pg.sql(st.db, "SELECT serial, seq FROM emm_seq")
            stored = dict((int(a), int(b)) for a, b in (l.split("|") for l in rows.splitlines() if l))
        else:
            import sqlite3
            c = sqlite3.connect(st.path, timeout=30)
            stored = dict(c.execute("SELECT serial, seq FROM emm_seq").fetchall())
            c.close()
        behind = [(s, q, stored.get(s, 0)) for s, q in seen.items() if stored.get(s, 0) < q]
        what = "%s carousel: kill %d (%d cards seen on air, %d sections)" % (label, k, len(seen), sink.sections)
        check(len(seen) > 0, "%s: nothing reached the MUX" % what)
        check(not behind, "%s: the store is behind what went on air: %s" % (what, behind[:5]))
        st.verify(what)
        print("%s: store at or above the air for every card" % what, flush=True)
        p, port = start()
    p.terminate()
    p.wait()


def main():
    w = tempfile.mkdtemp(prefix="castellan-kill9-")
    pg = None
    try:
        if ONLY in ("", "kms"):
            case_kms(w)
        if ONLY in ("", "csv", "bulk", "carousel"):
            pg = Pg(w)
            for label, be in (("sqlite", None), ("postgresql", pg if pg.ok else None)):
                if label == "postgresql" and not be:
                    print("postgresql: no server here, skipped", flush=True)
                    continue
                if ONLY in ("", "csv"):
                    case_csv(w, be, label)
                if ONLY in ("", "bulk"):
                    case_bulk(w, be, label)
                if ONLY in ("", "carousel"):
                    case_carousel(w, be, label)
    finally:
        if pg:
            pg.stop()
        if not FAILS:
            shutil.rmtree(w, ignore_errors=True)
        else:
            print("kept " + w)
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
