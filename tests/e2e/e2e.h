/*
 * e2e.h - the end-to-end harness: what the demos (tests/e2e/castellan-demo)
 * and the tests that drive real processes share.
 *
 *   - a run: a work directory, the castellan binary, a JSON summary;
 *   - processes of that binary with stdout+stderr captured in a log file
 *     of the work dir, waited for, stopped (SIGTERM, then SIGKILL);
 *   - readiness: a free loopback port, a port that accepts, a ready file;
 *   - an HTTP/1.0 client for the head-end's GET and REST APIs, and the
 *     head-end itself on free ports with its admin API key;
 *   - TS checks: services from PAT/PMT, a box's output judged packet by
 *     packet against the clear input, a box output watched as it grows.
 *
 * Test machinery only: nothing under src/ includes this.
 */
#ifndef CASTELLAN_E2E_H
#define CASTELLAN_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "ts/psi.h"

/* ---- a run ---- */

struct e2e {
	char dir[512];     /* work directory */
	char bin[4096];    /* the castellan binary the processes run */
	bool own_dir;      /* made by e2e_init: removed by e2e_finish unless keep */
	bool keep;         /* keep the work directory */
	json_t *summary;   /* what the run found (e2e_finish writes it) */
	char summary_path[4096];
};

/* Set up a run: bin (NULL: $CASTELLAN_BIN, else the castellan of this
 * build), dir (NULL: a new /tmp/<prefix>-XXXXXX), an empty summary.
 * 0 or CE_*. */
int e2e_init(struct e2e *e, const char *prefix, const char *bin, const char *dir);
/* Record "ok" in the summary and write it (if a path was set), remove the
 * work dir if this run made it, did not keep it and succeeded; free. */
void e2e_finish(struct e2e *e, bool ok);
/* out = dir/name; returns out. */
char *e2e_path(const struct e2e *e, const char *name, char *out, size_t cap);
/* A random 32-byte passphrase as 64 hex chars into dir/name (0600) and,
 * if hex is not NULL, into hex[65]. 0 or CE_*. */
int e2e_passphrase(const struct e2e *e, const char *name, char hex[65]);

/* ---- processes ---- */

/* Start castellan with argv (NULL-terminated; argv[0] is the program if it
 * is an absolute path, else ignored: e->bin runs), stdin
 * from in_fd and stdout to out_fd when >= 0, else stdout and stderr to
 * dir/log (appended). The child closes nothing else: pass O_CLOEXEC fds.
 * The pid, or -1. */
pid_t e2e_spawn(const struct e2e *e, const char *log, char *const argv[], int in_fd, int out_fd);
/* Run castellan with argv to completion, output in dir/log: 0 if it exited
 * 0; otherwise the log is copied to stderr and CE_INTERNAL returned. */
int e2e_run(const struct e2e *e, const char *log, char *const argv[]);
/* e2e_run on a literal argument list: E2E_RUN(e, "x.log", "keys", "init", ...) */
#define E2E_RUN(e, log, ...) e2e_run((e), (log), (char *const[]){ (char *)"castellan", __VA_ARGS__, NULL })
/* Run castellan-demo ($CASTELLAN_DEMO, an absolute path) scenario with
 * extra arguments (NULL-terminated, or NULL) in e's work dir, its output in
 * dir/demo.log: the exit status (-1: not run), *summary the JSON summary it
 * wrote (NULL if none; json_decref it). */
int e2e_demo(const struct e2e *e, const char *scenario, char *const extra[], json_t **summary);
/* Exit status of pid (waited for), or -1 if it did not exit normally. */
int e2e_wait(pid_t pid);
/* Wait up to wait_ms for *pid, then SIGKILL it; *pid = 0. */
void e2e_reap(pid_t *pid, int wait_ms);
/* SIGTERM *pid, then e2e_reap(pid, grace_ms). */
void e2e_stop(pid_t *pid, int grace_ms);
/* Copy dir/log to stderr under a header line. */
void e2e_show_log(const struct e2e *e, const char *log);

/* ---- readiness and HTTP ---- */

/* A TCP port on 127.0.0.1 that was free a moment ago. 0 or CE_IO. */
int e2e_free_port(uint16_t *port);
/* true if something accepts TCP connections on 127.0.0.1:port. */
bool e2e_port_open(uint16_t port);
/* Wait until every port accepts and file (if not NULL) exists: 0; CE_IO if
 * pid (if > 0) exited first, CE_TIMEOUT after timeout_ms. */
int e2e_wait_ready(pid_t pid, const char *file, const uint16_t *ports, size_t nports, unsigned timeout_ms);
/* One HTTP/1.0 request to 127.0.0.1:port: method, path, extra header lines
 * (each "Name: value\r\n"; NULL: none), a JSON body (NULL: none; sent with
 * its Content-Type and Content-Length). The status code (the answer's body
 * into body, NUL-terminated, cut at cap), or -1 if no valid answer came. */
int e2e_http(uint16_t port, const char *method, const char *path, const char *headers, const char *req_body,
	char *body, size_t cap);
/* e2e_http GET without headers or body. */
int e2e_http_get(uint16_t port, const char *path, char *body, size_t cap);

/* ---- the head-end ---- */

struct e2e_headend {
	pid_t pid;
	uint16_t http_port, ecmg_port, mux_port;
	char http[32], ecmg[32], mux[32]; /* "127.0.0.1:PORT" */
	char admin_key[65];               /* the admin API key of the first start (64 hex) */
};
/* Start `castellan headend` on SQLite in dir/headend-data with the keystore
 * dir/<keystore> under the passphrase in dir/<passphrase>, its GET/REST
 * APIs, ECMG and EMMG (to a MUX at mux_port) on free loopback ports, extra
 * arguments appended (NULL-terminated, or NULL); output in
 * dir/headend.log. Waits for its ready file and ports (timeout_ms), reads
 * the admin API key. 0, CE_IO if it exited, CE_TIMEOUT; h->pid is stopped
 * by e2e_headend_stop either way. The store is "sqlite:DIR/headend-data/sms.db". */
int e2e_headend_start(struct e2e *e, const char *keystore, const char *passphrase, char *const extra[],
	unsigned timeout_ms, struct e2e_headend *h);
/* SIGTERM, wait, SIGKILL after 2 s; wipes the admin key. */
void e2e_headend_stop(struct e2e_headend *h);

/* ---- transport streams ---- */

struct e2e_ts {
	uint8_t *buf;
	size_t n;          /* whole 188-byte packets */
};

/* Read a TS file (whole packets; a trailing partial packet is CE_FORMAT). */
int e2e_ts_load(const char *path, struct e2e_ts *t);
void e2e_ts_free(struct e2e_ts *t);

struct e2e_svc {
	uint16_t program, pmt_pid;
	size_t npids;
	uint16_t pids[PMT_MAX_ES]; /* its elementary streams */
};

/* The services of a TS from its first PAT and their PMTs, program 0 and
 * skip_program (0: none) left out; up to cap. 0, or CE_FORMAT if no PAT or
 * no service with a PMT. */
int e2e_services(const struct e2e_ts *t, uint16_t skip_program, struct e2e_svc *svc, size_t cap, size_t *n);

/* A box's output judged against the clear stream. scr is what the box read
 * and box what it wrote (the same packets in order: castellan stb keeps
 * every packet); the k-th packet of a PID in box is the k-th packet of
 * that PID in clear. Counted over the given PIDs (pids NULL: every PID),
 * packets with a payload only. */
struct e2e_judge {
	size_t packets;     /* box packets counted */
	size_t same;        /* identical to the clear packet */
	size_t scrambled;   /* of those, scrambled in scr */
	size_t right;       /* scrambled, back to the clear packet */
	size_t left;        /* scrambled, left as they came in */
	size_t wrong;       /* scrambled, neither: descrambled with a wrong key */
	size_t pids_all_right, pids_all_left; /* PIDs whose scrambled packets all were */
};
/* 0, or CE_FORMAT if scr and box differ in length. */
int e2e_judge(const struct e2e_ts *clear, const struct e2e_ts *scr, const struct e2e_ts *box, const uint16_t *pids,
	size_t npids, struct e2e_judge *j);
/* Every packet of the PIDs back bit-identical, and some were scrambled. */
bool e2e_judge_clear(const struct e2e_judge *j);
/* Every scrambled packet of the PIDs left scrambled, none wrong. */
bool e2e_judge_refused(const struct e2e_judge *j);
/* The judge as a JSON object {packets, same, scrambled, right, left, wrong}. */
json_t *e2e_judge_json(const struct e2e_judge *j);

/* Stream time of a TS from the PCRs of its first PCR PID, ms (0: none). */
uint64_t e2e_pcr_span_ms(const struct e2e_ts *t);
/* A child writing t to fd loops times, paced at its PCR rate (10 Mbit/s
 * without PCRs); it exits when done or when fd is closed. The pid, or -1. */
pid_t e2e_feeder(const struct e2e_ts *t, int fd, unsigned loops);

/* A box output file watched as it grows: packets of one PID (payload
 * only, no adaptation field) are "ok" if their payload is one of the clear
 * input's on that PID. */
struct e2e_watch {
	char path[512];
	off_t pos;
	uint16_t pid;
	const uint8_t **clear; /* sorted clear payloads */
	size_t nclear;
	size_t garbage;        /* marked clear but not the input's: a wrong key */
};
int e2e_watch_init(struct e2e_watch *w, const char *path, const struct e2e_ts *clear, uint16_t pid);
void e2e_watch_free(struct e2e_watch *w);
/* The packets written since the last look: ok and bad counts. */
void e2e_watch_look(struct e2e_watch *w, size_t *ok, size_t *bad);
/* Wait until the box shows want (true: descrambling, false: not): the
 * seconds it took, or -1 after timeout_s. */
double e2e_watch_until(struct e2e_watch *w, bool want, unsigned timeout_s);

#endif
