#!/usr/bin/env python3
"""bench/soak.py - the head-end soak (issue 12 item 15).

One `castellan headend` (SQLite store, its ECMG, its EMMG feeding a MUX sink
in this script, its HTTP APIs) runs for DURATION seconds under:
  * 1,000 ECM streams (bench_soak_ecm: 50 channels x 20 streams, one
    CW_provision per stream per second, open loop);
  * the EMM carousel over a base of CARDS cards (imported by CSV through the
    REST API at the start), sent to the sink;
  * API traffic: API_RATE requests/s, a mix of REST GET card (60 %), GET
    /api.php (20 %) and REST POST /subscriptions (20 %; each one changes a
    card, so the carousel sends it first, and appends to the audit log).
Every WINDOW seconds it samples the head-end's RSS (VmRSS), the ECM latency
(p50/p99/max of that window, as bench_soak_ecm measured it), errors of
every kind, the sink's EMM sections and the load average. The RSS baseline is
taken at the end of the warm-up (WARMUP seconds: caches filled, the first
carousel cycles done); growth = (last RSS - baseline) / baseline.
Writes RESULTS (default bench/RESULTS-soak.md) with the figures and a
verdict: RSS growth < 1 %, no error, p99 of the last quarter within 2x of the
first quarter's (the machine is shared: the load average is recorded).

Usage: bench/soak.py [--duration S] [--window S] [--warmup S] [--cards N]
         [--api-rate N] [--streams CONNSxPER] [--emm-kbps N] [--results FILE]
         [--build DIR] [--fail-on all|errors] [--keep]
Exit status 0 when every verdict passes (--fail-on errors: when there was no
error), 1 otherwise, 2 if it could not run.

The short run is a meson test outside the default suite (2 minutes, only
errors fail it): meson test -C build --setup soak soak-short
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST = 2100000000


def pct(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


class Sink:
    """A MUX for the EMMG: grants what is asked, counts the EMM sections."""
    ANSWER = {0x0011: 0x0013, 0x0111: 0x0113, 0x0114: 0x0115, 0x0117: 0x0118}

    def __init__(self):
        self.sections = 0
        self.bytes = 0
        self.conns = 0
        self.errors = 0
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(4)
        self.port = self.s.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        f = c.makefile("rb", buffering=1 << 20)
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
                elif typ == 0x0211:  # data_provision
                    i = 0
                    while i + 4 <= n:
                        t, ln = struct.unpack_from(">HH", body, i)
                        if t == 0x0005:
                            self.bytes += ln
                            j, end = i + 4, i + 4 + ln
                            while j + 3 <= end:
                                j += 3 + (((body[j + 1] & 0x0F) << 8) | body[j + 2])
                                self.sections += 1
                        i += 4 + ln
                elif typ in (0x0014, 0x0104):  # channel/stream close
                    pass
        except OSError:
            self.errors += 1
        finally:
            c.close()


class Api:
    """Open-loop API traffic at `rate` requests/s over one keep-alive connection."""

    def __init__(self, port, key, cards, rate):
        self.port, self.key, self.cards, self.rate = port, key, cards, rate
        self.lock = threading.Lock()
        self.lat = []
        self.n = self.errors = self.total = self.total_errors = 0
        self.last_error = ""
        self.stop = False
        self.conn = None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def request(self, method, path, body=None):
        hd = {"X-API-Key": self.key}
        if body is not None:
            hd["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.request(method, path, body=body, headers=hd)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (OSError, http.client.HTTPException) as e:
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt:
                    return 0, str(e).encode()
        return 0, b""

    def one(self):
        s = FIRST + random.randrange(self.cards)
        x = random.random()
        if x < 0.6:
            return self.request("GET", "/api/v1/cards/%d" % s)
        if x < 0.8:
            return self.request("GET", "/api.php?api_key=%s&serial_no=%d" % (self.key, s))
        now = int(time.time())
        body = json.dumps({"serial_no": str(s), "package": random.randrange(8),
                           "start": now - 86400, "finish": now + 30 * 86400})
        return self.request("POST", "/api/v1/subscriptions", body)

    def run(self):
        t0 = time.monotonic()
        k = 0
        while not self.stop:
            due = t0 + k / self.rate
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            if self.stop:
                break  # not one more request after the run (the head-end is being stopped)
            k += 1
            a = time.monotonic()
            st, data = self.one()
            ms = (time.monotonic() - a) * 1000
            with self.lock:
                self.n += 1
                self.total += 1
                self.lat.append(ms)
                if st not in (200, 201):
                    self.errors += 1
                    self.total_errors += 1
                    self.last_error = "%d %s" % (st, data[:160].decode("utf-8", "replace"))

    def take(self):
        with self.lock:
            r = (self.n, self.errors, pct(self.lat, 50), pct(self.lat, 99))
            self.n = self.errors = 0
            self.lat = []
        return r


def vm(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=3600)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=None, help="default: 10 %% of the duration, 30 s to 300 s")
    ap.add_argument("--cards", type=int, default=10000)
    ap.add_argument("--api-rate", type=float, default=20.0)
    ap.add_argument("--streams", default="50x20", help="CONNSxPER (default 50x20 = 1,000 streams)")
    ap.add_argument("--emm-kbps", type=int, default=500)
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS-soak.md"))
    ap.add_argument("--build", default=os.environ.get("BUILD", os.path.join(ROOT, "build")))
    ap.add_argument("--fail-on", choices=("all", "errors"), default="all",
                    help="errors: exit 1 only on an error, not on RSS growth or p99 (short runs, the test)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    warmup = a.warmup if a.warmup is not None else max(30, min(300, a.duration // 10))
    nconn, per = (int(x) for x in a.streams.split("x"))
    cli = os.path.join(a.build, "src", "cli", "castellan")
    ecm = os.path.join(a.build, "bench", "bench_soak_ecm")
    for p in (cli, ecm):
        if not os.access(p, os.X_OK):
            print("soak: build first (%s)" % p, file=sys.stderr)
            return 2
    w = tempfile.mkdtemp(prefix="castellan-soak-")
    procs = []
    rc = 2
    try:
        with open(os.path.join(w, "pass"), "w") as f:
            f.write("castellan soak bench passphrase\n")
        os.chmod(os.path.join(w, "pass"), 0o600)
        subprocess.run([cli, "keys", "init", "--out", w + "/ks", "--ca-system-id", "0x4ADC",
                        "--passphrase-file", w + "/pass"], check=True, capture_output=True)
        sink = Sink()
        os.mkdir(w + "/he")
        log = open(w + "/headend.log", "w")
        he = subprocess.Popen([cli, "headend", "--data-dir", w + "/he", "--keystore", w + "/ks",
                               "--passphrase-file", w + "/pass", "--http", "127.0.0.1:0",
                               "--ecmg", "127.0.0.1:0", "--mux", "127.0.0.1:%d" % sink.port,
                               "--emm-kbps", str(a.emm_kbps), "--ready-file", w + "/ready",
                               "--admin-key-file", w + "/key", "--web-root", "off",
                               "--status-every", "60"], stdout=log, stderr=subprocess.STDOUT)
        procs.append(he)
        for _ in range(600):
            if os.path.exists(w + "/ready") or he.poll() is not None:
                break
            time.sleep(0.1)
        ready = dict(kv.split("=") for kv in open(w + "/ready").read().split())
        http_port, ecmg_port = int(ready["http"]), int(ready["ecmg"])
        key = open(w + "/key").read().split()[0]
        # the base, by CSV through the REST API (every card with packages 0..3)
        now = int(time.time())
        csv = "serial_no,access_criteria,start,finish\n" + "".join(
            "%d,0000000f,%d,%d\n" % (FIRST + i, now - 86400, now + 30 * 86400) for i in range(a.cards))
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=600)
        c.request("POST", "/api/v1/import", body=csv.encode(),
                  headers={"X-API-Key": key, "Content-Type": "text/csv"})
        r = c.getresponse()
        body = r.read()
        if r.status not in (200, 201):
            print("soak: import failed: %d %s" % (r.status, body[:300]), file=sys.stderr)
            return 2
        c.close()
        t_start = time.time()
        ecm_p = subprocess.Popen([ecm, str(ecmg_port), str(a.duration), str(a.window), str(nconn), str(per)],
                                 stdout=subprocess.PIPE, stderr=open(w + "/ecm.err", "w"), text=True)
        procs.append(ecm_p)
        api = Api(http_port, key, a.cards, a.api_rate)
        samples = []
        print("soak: %d s, %d streams, %d cards, API %.0f req/s; head-end pid %d, work dir %s" %
              (a.duration, nconn * per, a.cards, a.api_rate, he.pid, w), file=sys.stderr)
        for line in ecm_p.stdout:
            e = dict(kv.split("=") for kv in line.split())
            an, aerr, ap50, ap99 = api.take()
            s = {"t": float(e["t"]), "ecm_sent": int(e["sent"]), "ecm_got": int(e["got"]),
                 "ecm_errors": int(e["errors"]), "ecm_missing": int(e["missing"]),
                 "p50": float(e["p50_us"]), "p99": float(e["p99_us"]), "max": float(e["max_us"]),
                 "rss": vm(he.pid, "VmRSS"), "hwm": vm(he.pid, "VmHWM"), "anon": vm(he.pid, "RssAnon"),
                 "db": sum(os.path.getsize(w + "/he/" + f) for f in os.listdir(w + "/he") if f.startswith("sms.db")), "api": an, "api_errors": aerr,
                 "api_p50": ap50, "api_p99": ap99, "sections": sink.sections, "load": os.getloadavg()[0],
                 "alive": he.poll() is None}
            samples.append(s)
            print("soak: t=%5.0f rss=%d kB ecm %d/%d err=%d miss=%d p50=%.0f p99=%.0f us api %d err=%d "
                  "p99=%.1f ms emm sections=%d load=%.2f" %
                  (s["t"], s["rss"], s["ecm_got"], s["ecm_sent"], s["ecm_errors"], s["ecm_missing"],
                   s["p50"], s["p99"], s["api"], s["api_errors"], s["api_p99"], s["sections"], s["load"]),
                  file=sys.stderr)
            if not s["alive"]:
                break
        api.stop = True
        api.t.join(30)
        ecm_rc = ecm_p.wait()
        he_alive = he.poll() is None
        # the head-end's own counters at the end
        st = {}
        try:
            c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
            c.request("GET", "/api/v1/status", headers={"X-API-Key": key})
            st = json.loads(c.getresponse().read())
        except (OSError, ValueError, http.client.HTTPException):
            pass
        he.send_signal(signal.SIGTERM)
        try:
            he_rc = he.wait(60)
        except subprocess.TimeoutExpired:
            he.kill()
            he_rc = -9
        log.close()
        errlog = [l for l in open(w + "/headend.log", errors="replace") if " error" in l.lower() or "ERROR" in l]
        rc = report(a, warmup, nconn * per, samples, st, ecm_rc, open(w + "/ecm.err").read(), he_alive, he_rc,
                    api, sink, errlog, t_start)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if a.keep:
            print("soak: kept %s" % w, file=sys.stderr)
        else:
            shutil.rmtree(w, ignore_errors=True)
    return rc


def report(a, warmup, streams, samples, st, ecm_rc, ecm_err, he_alive, he_rc, api, sink, errlog, t_start):
    if not samples:
        print("soak: no sample (bench_soak_ecm: %s)" % ecm_err.strip(), file=sys.stderr)
        return 2
    base = next((s for s in samples if s["t"] >= warmup), samples[-1])
    last = samples[-1]
    growth = 100.0 * (last["rss"] - base["rss"]) / base["rss"] if base["rss"] else 0.0
    after = [s for s in samples if s["t"] >= warmup] or samples
    q = max(1, len(after) // 4)
    first_q, last_q = after[:q], after[-q:]
    p99_first = sorted(s["p99"] for s in first_q)[len(first_q) // 2]
    p99_last = sorted(s["p99"] for s in last_q)[len(last_q) // 2]
    ecm_sent = sum(s["ecm_sent"] for s in samples)
    ecm_got = sum(s["ecm_got"] for s in samples)
    ecm_errors = sum(s["ecm_errors"] for s in samples)
    ecm_missing = sum(s["ecm_missing"] for s in samples)
    loads = [s["load"] for s in samples]
    late = (st.get("nodes") or [{}])[0].get("status", {}).get("ecmg", {}).get("ecms_late") if st.get("nodes") else None
    errors = ecm_errors + ecm_missing + api.total_errors + (0 if ecm_rc == 0 else 1) + (0 if he_alive else 1)
    ok_rss = growth < 1.0
    ok_err = errors == 0
    ok_p99 = p99_last <= 2.0 * max(p99_first, 1.0)
    # the table: about 12 rows whatever the duration, plus the last
    step = max(1, len(samples) // 12)
    rows = samples[step - 1::step]
    if rows[-1] is not last:
        rows.append(last)
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    out = []
    out.append("## Soak: %d s (bench/soak.py)" % last["t"])
    out.append("")
    out.append("%s, commit %s, %d cores (%s), shared with other users: load average %.2f at the start, "
               "median %.2f, max %.2f." % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start)), commit,
                                           os.cpu_count(), cpu, loads[0], sorted(loads)[len(loads) // 2],
                                           max(loads)))
    out.append("One `castellan headend` (build: %s, SQLite store): %d ECM streams (%d channels x %d, one "
               "CW_provision per stream per second), the EMM carousel over %d cards at %d kbit/s to a MUX sink, "
               "API traffic %.0f req/s (60 %% REST GET card, 20 %% GET /api.php, 20 %% POST /subscriptions). "
               "Samples every %d s; RSS baseline after the %d s warm-up." %
               (os.path.basename(a.build.rstrip("/")), streams, int(a.streams.split("x")[0]),
                int(a.streams.split("x")[1]), a.cards, a.emm_kbps, a.api_rate, a.window, warmup))
    out.append("")
    out.append("| t (s) | RSS (kB) | ECMs sent / answered | ECM errors / missing | ECM p50 / p99 / max (µs) | "
               "API req / errors | API p50 / p99 (ms) | EMM sections (total) | load |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for s in rows:
        out.append("| %.0f | %d | %d / %d | %d / %d | %.0f / %.0f / %.0f | %d / %d | %.1f / %.1f | %d | %.2f |" %
                   (s["t"], s["rss"], s["ecm_sent"], s["ecm_got"], s["ecm_errors"], s["ecm_missing"], s["p50"],
                    s["p99"], s["max"], s["api"], s["api_errors"], s["api_p50"], s["api_p99"], s["sections"],
                    s["load"]))
    out.append("")
    out.append("(each row is one %d s window; ECM and API figures are that window's)" % a.window)
    out.append("")
    out.append("- **RSS**: %d kB after the warm-up, %d kB at the end: growth **%.2f %%** (peak VmHWM %d kB) — %s" %
               (base["rss"], last["rss"], growth, last["hwm"], "PASS (< 1 %)" if ok_rss else "FAIL (>= 1 %)"))
    out.append("  (RssAnon %d -> %d kB while the store's files grew %.1f -> %.1f MB: the API writes add rows and "
               "audit entries, and SQLite keeps the pages it wrote in its cache, up to cache_size = 64 MiB per "
               "connection)" % (base.get("anon", 0), last.get("anon", 0), base.get("db", 0) / 1e6,
                                last.get("db", 0) / 1e6))
    out.append("- **Errors**: %d in all — ECMs: %d sent, %d answered, %d error answers, %d missing; API: %d "
               "requests, %d errors%s; bench_soak_ecm exit %d; head-end %s (exit %s)%s — %s" %
               (errors, ecm_sent, ecm_got, ecm_errors, ecm_missing, api.total, api.total_errors,
                (" (last: %s)" % api.last_error) if api.total_errors else "", ecm_rc,
                "alive to the end" if he_alive else "DIED", he_rc,
                ("; ECMs late by the head-end's own count: %s" % late) if late is not None else "",
                "PASS" if ok_err else "FAIL"))
    out.append("- **ECM p99**: median of the windows' p99 %.0f µs in the first quarter after the warm-up, "
               "%.0f µs in the last quarter — %s" %
               (p99_first, p99_last, "PASS (stable: within 2x)" if ok_p99 else "FAIL (more than 2x)"))
    out.append("- **EMM carousel**: %d sections (%d bytes) received by the sink over %d connection(s)" %
               (sink.sections, sink.bytes, sink.conns))
    if errlog:
        out.append("- head-end log lines with an error: %d (first: `%s`)" % (len(errlog), errlog[0].strip()[:160]))
    out.append("")
    text = "\n".join(out) + "\n"
    if not os.path.exists(a.results):
        text = ("# Soak results\n\nWritten by bench/soak.py (issue 12 item 15); each run appends its section.\n\n"
                + text)
    with open(a.results, "a") as f:
        f.write(text)
    print(text)
    if a.fail_on == "errors":
        return 0 if ok_err else 1
    return 0 if ok_rss and ok_err and ok_p99 else 1


if __name__ == "__main__":
    sys.exit(main())
