#!/usr/bin/python3
"""Scrape a running head-end and scrambler with a real Prometheus parser.

Starts `castellan headend` (HTTP, ECMG, EMMG to the scrambler's MUX) and
`castellan scramble --mux-listen ... --metrics ...` fed the test stream
through a pipe, drives the APIs (GET API, REST, a CSV import), then reads
both /metrics with prometheus_client.parser (Debian's python3-prometheus-
client) and checks the series docs/metrics.md promises. Exits 77 (skipped)
without prometheus_client. Every wait is bounded.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("prometheus_client missing (apt-get install python3-prometheus-client): skipped")
    sys.exit(77)

BIN = os.environ.get("CASTELLAN_BIN", "castellan")
DATA = os.environ.get("CASTELLAN_TESTDATA", os.path.join(os.path.dirname(__file__), "..", "data"))
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def families(text):
    """{name: {labels-tuple: value}} of every sample, parsed by prometheus_client."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(m, name, **labels):
    want = set(labels.items())
    return sum(v for k, v in m.get(name, {}).items() if want <= set(k))


def scrape(url, headers=None):
    st, hd, body = http(url, headers=headers)
    if st != 200:
        return st, hd, {}
    return st, hd, families(body)


def wait_for(fn, what, timeout=60):
    t = time.time() + timeout
    while time.time() < t:
        if fn():
            return True
        time.sleep(0.2)
    check(False, what + " (timed out)")
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="castellan-metrics-")
    pf = os.path.join(tmp, "pass")
    ks = os.path.join(tmp, "he.keystore")
    with open(pf, "w") as f:
        f.write("6d6574726963732d746573742d706173737068726173652d6e6f742d7365637265\n")
    os.chmod(pf, 0o600)
    subprocess.run([BIN, "keys", "init", "--out", ks, "--ca-system-id", "0x4ADC", "--passphrase-file", pf],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mux_port, scr_metrics = free_port(), free_port()
    data_dir, ready, keyf = os.path.join(tmp, "data"), os.path.join(tmp, "ready"), os.path.join(tmp, "admin")
    he_log = open(os.path.join(tmp, "headend.log"), "w")
    he = subprocess.Popen([BIN, "headend", "--data-dir", data_dir, "--keystore", ks, "--passphrase-file", pf,
                           "--http", "127.0.0.1:0", "--ecmg", "127.0.0.1:0", "--mux", "127.0.0.1:%d" % mux_port,
                           "--emm-kbps", "64", "--admin-key-file", keyf, "--ready-file", ready,
                           "--web-root", "off", "--status-every", "0"], stdout=he_log, stderr=he_log)
    scr = None
    feeder_stop = threading.Event()
    try:
        wait_for(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0, "head-end ready")
        ports = dict(kv.split("=") for kv in open(ready).read().split())
        base = "http://127.0.0.1:%s" % ports["http"]
        admin = open(keyf).read().split()[-1].strip()
        db = "sqlite:" + os.path.join(data_dir, "sms.db")

        def key(scopes):
            out = subprocess.run([BIN, "sms", "--db", db, "key", "add", "scraper-" + scopes.replace(",", "-"),
                                  "--scopes", scopes], check=True, capture_output=True, text=True).stdout
            return out.split()[-1]

        # API traffic: a GET API error, a REST create, an unauthorised REST call, a CSV import.
        H = {"X-API-Key": admin, "Content-Type": "application/json"}
        st, _, _ = http(base + "/api.php?api_key=%s&serial_no=2100000077" % admin)
        check(st == 400, "GET API: unknown card answers 400")
        st, _, _ = http(base + "/api/v1/cards", "POST", json.dumps(
            {"serial_no": "2100000001", "access_criteria": "00000001", "start": 1700000000,
             "finish": 4000000000}).encode(), H)
        check(st == 201, "REST: card created (201), got %d" % st)
        st, _, _ = http(base + "/api/v1/cards/2100000001")
        check(st == 401, "REST: no key answers 401")
        csv = b"serial_no,name,access_criteria,start,finish\r\n2100000002,Ivan,00000003,1700000000,4000000000\r\n"
        st, _, _ = http(base + "/api/v1/import", "POST", csv, {"X-API-Key": admin, "Content-Type": "text/csv"})
        check(st == 200, "REST: CSV import (200), got %d" % st)

        # The scrambler: the head-end's ECMG, MUX for its EMMG, fed the stream in a loop.
        scr_log = open(os.path.join(tmp, "scramble.log"), "w")
        scr = subprocess.Popen([BIN, "scramble", "--input", "-", "--output", "/dev/null",
                                "--service", "101:ac=00000001", "--service", "102:ac=00000002",
                                "--ecmg", "127.0.0.1:%s" % ports["ecmg"], "--super-cas-id", "0x4ADC0001",
                                "--cp-duration", "1", "--mux-listen", "127.0.0.1:%d" % mux_port,
                                "--metrics", "127.0.0.1:%d" % scr_metrics],
                               stdin=subprocess.PIPE, stdout=scr_log, stderr=scr_log)
        ts = open(os.path.join(DATA, "ts-clear-2svc.ts"), "rb").read()

        def feed():
            try:
                while not feeder_stop.is_set():
                    for i in range(0, len(ts), 188 * 70):
                        if feeder_stop.is_set():
                            break
                        scr.stdin.write(ts[i:i + 188 * 70])
                        time.sleep(0.01)
            except (BrokenPipeError, ValueError):
                pass
        threading.Thread(target=feed, daemon=True).start()
        surl = "http://127.0.0.1:%d/metrics" % scr_metrics

        # The scrambler's series.
        m = {}

        def scr_ok():
            nonlocal m
            try:
                st, _, m = scrape(surl)
            except OSError:
                return False
            return (st == 200 and value(m, "castellan_scrambled_packets_total") > 0 and
                    value(m, "castellan_cp_changes_total") >= 2 and
                    value(m, "castellan_link_up", kind="mux") >= 1)
        if wait_for(scr_ok, "scrambler: packets scrambled, CP changes, an EMMG at the MUX"):
            check(value(m, "castellan_scrambled_packets_total") > 0, "scrambler: castellan_scrambled_packets_total > 0")
            check(value(m, "castellan_link_up", kind="ecmg") == 1, "scrambler: ECMG link up")
            check(value(m, "castellan_link_up", kind="mux", peer="0x4ADC0001") == 1,
                  "scrambler: the head-end's EMMG (client_id 0x4ADC0001) up at the MUX")
            check("castellan_clear_packets_total" in m and "castellan_ecmg_failovers_total" in m,
                  "scrambler: clear-packet and failover counters exported")
        st, hd, _ = http(surl)
        check(hd.get("Content-Type", "").startswith("text/plain; version=0.0.4"), "Content-Type 0.0.4")
        check(http("http://127.0.0.1:%d/other" % scr_metrics)[0] == 404, "metrics listener: other paths 404")

        # The head-end's series (from loopback: no key needed).
        hurl = base + "/metrics"

        def he_ok():
            nonlocal m
            st, _, m = scrape(hurl)
            return (st == 200 and value(m, "castellan_ecm_requests_total") > 0 and
                    value(m, "castellan_emm_sections_sent_total") > 0 and
                    value(m, "castellan_carousel_cycle_seconds_count") >= 1 and
                    value(m, "castellan_link_up", kind="emmg") == 1)
        if wait_for(he_ok, "head-end: ECMs, EMMs sent, a carousel cycle, EMMG link up"):
            n = value(m, "castellan_ecm_request_duration_seconds_count")
            check(n > 0 and n <= value(m, "castellan_ecm_requests_total"), "ECM latency histogram counted")
            buckets = sorted((float(dict(k)["le"]), v) for k, v in
                             m["castellan_ecm_request_duration_seconds_bucket"].items())
            check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])) and buckets[-1][1] == n,
                  "ECM histogram buckets cumulative, +Inf = count")
            check(value(m, "castellan_api_requests_total", route="/api.php", status="400") == 1,
                  "API: /api.php 400 counted once")
            check(value(m, "castellan_api_requests_total", route="/api/v1/cards", status="201") == 1,
                  "API: /api/v1/cards 201 counted")
            check(value(m, "castellan_api_requests_total", route="/api/v1/cards", status="401") == 1,
                  "API: /api/v1/cards 401 counted")
            check(value(m, "castellan_api_request_duration_seconds_count", route="/api/v1/import") == 1,
                  "API latency histogram by route")
            check(value(m, "castellan_csv_imports_total", result="ok") == 1, "CSV import counted")
            check(value(m, "castellan_csv_rows_imported_total") == 1, "CSV rows counted")
            check(not any("2100000001" in str(k) for s in m.values() for k in s),
                  "no card serial in any label (routes, not paths)")

        # The docs and the dashboard name only series that exist, and every family is documented.
        st, _, text = http(hurl)
        names = {f.name for f in text_string_to_metric_families(text)}
        docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")
        doc = open(os.path.join(docs, "metrics.md")).read()
        dash = open(os.path.join(docs, "grafana-castellan.json")).read()
        json.loads(dash)
        fams = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in re.findall(r"castellan_[a-z_]+", doc + dash)}
        known = names | {n + "_total" for n in names}
        check(all(f in known or f + "_total" in known for f in fams),
              "docs/metrics.md and grafana-castellan.json name existing series: %s" %
              sorted(f for f in fams if f not in known and f + "_total" not in known))
        check(all(("`%s`" % (n + "_total" if n + "_total" in text else n)) in doc for n in names),
              "every family is in docs/metrics.md's table")

        # Keys: a key decides when one is sent, even from loopback.
        check(http(hurl, headers={"X-API-Key": key("metrics")})[0] == 200, "/metrics with a metrics-scope key: 200")
        check(http(hurl, headers={"X-API-Key": key("read")})[0] == 403, "/metrics with a read-only key: 403")
        check(http(hurl, headers={"Authorization": "Bearer " + "0" * 64})[0] == 401, "/metrics with a bad key: 401")
        check(http(hurl, "POST", b"")[0] == 405, "/metrics POST: 405")
    finally:
        feeder_stop.set()
        for p in (scr, he):
            if p is None:
                continue
            if p is scr:
                try:
                    p.stdin.close() # end of input: the scrambler stops by itself
                except (BrokenPipeError, OSError):
                    pass
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
            if p.returncode is None:
                p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            # A clean stop (under ASan also: no leak, no error report).
            check(p.returncode == 0, "%s stopped cleanly (exit %d)" % ("scramble" if p is scr else "headend",
                                                                       p.returncode))
    if FAILS:
        for name in ("headend.log", "scramble.log"):
            path = os.path.join(tmp, name)
            if os.path.exists(path):
                print("---- %s (tail)" % name)
                print("".join(open(path, errors="replace").readlines()[-30:]))
        print("%d failed" % len(FAILS))
        return 1
    subprocess.run(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
