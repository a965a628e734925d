/*
 * cmd_demo.c - `castellan demo`: the whole scrambled path on one machine.
 *
 * Runs the real commands as separate processes, as an operator would:
 *   keys init -> headend (SMS GET API, ECMG, EMMG, scheduler; SQLite in the
 *   work dir) -> scramble a file (SimulCrypt SCS, CSA2 or CISSA) ->
 *   provision two boxes -> stb for each box,
 * and checks the outcome itself: box A (packages 1 and 2) gets both services
 * back bit-identical to the input's elementary streams, box B (package 1
 * only) gets service 101 and cannot descramble service 102.
 * Then the live part: a card is added to the SMS, the input is streamed
 * (looped, paced at its PCR rate, through pipes) into `scramble
 * --mux-listen`, whose MUX the head-end's EMMG feeds, and out to `stb
 * --card`; the card is subscribed through the GET API (the box's output
 * becomes bit-identical to the input), then its package is removed (it no
 * longer is); the seconds each took are printed.
 * Exit 0 only if every expectation holds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "cli/cli.h"
#include "cli/demo_util.h"
#include "lib/err.h"
#include "lib/util.h"
#include "ts/psi.h"
#include "ts/ts.h"

#ifndef CASTELLAN_SOURCE_DIR
#define CASTELLAN_SOURCE_DIR "."
#endif

#define DEMO_MAX_ARGS 48
#define DEMO_MAX_SERVICES 2

struct demo {
	char dir[256];        /* work directory */
	char self[4096];      /* path of this executable */
	char *input;          /* clear TS */
	char *algo;           /* csa2 | cissa */
	unsigned cp_seconds;
	bool keep;            /* keep the work directory */
	pid_t ecmg_pid;       /* the headend process (its ECMG serves the scrambler) */
	uint16_t ecmg_port;
	uint16_t http_port;   /* the headend's SMS HTTP (GET API) */
	uint16_t mux_port;    /* the streaming scrambler's MUX, where the headend's EMMG connects */
};

/* Per-service facts read from a TS: its ES PIDs. */
struct svc_info {
	uint16_t program;
	uint16_t pmt_pid;
	size_t npids;
	uint16_t pids[PMT_MAX_ES];
};

static void demo_path(const struct demo *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->dir, name);
}

/* Run `castellan args...` with stdout+stderr to log; wait. 0 if exit 0. */
static int run_cmd(const struct demo *d, const char *log_name, char *const args[])
{
	char log[512];
	pid_t pid;
	int status;

	demo_path(d, log_name, log, sizeof(log));
	pid = fork();
	if (pid < 0)
		return CE_IO;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(d->self, args);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return CE_IO;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : CE_INTERNAL;
}

static void print_log_tail(const struct demo *d, const char *log_name)
{
	char log[512], line[1024];
	FILE *f;

	demo_path(d, log_name, log, sizeof(log));
	f = fopen(log, "r");
	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", log_name);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* Start `castellan headend` (SMS GET API, ECMG, EMMG to the scrambler's MUX,
 * scheduler) on SQLite in the work dir; wait for its ready file. */
static int start_headend(struct demo *d)
{
	char ks[512], pf[512], log[512], dir[512], http[64], ecmg[64], mux[64], keyf[512], ready[512];
	pid_t pid;

	if (demo_free_port(&d->ecmg_port) != 0 || demo_free_port(&d->http_port) != 0 || demo_free_port(&d->mux_port) != 0)
		return CE_IO;
	snprintf(ecmg, sizeof(ecmg), "127.0.0.1:%u", d->ecmg_port);
	snprintf(http, sizeof(http), "127.0.0.1:%u", d->http_port);
	snprintf(mux, sizeof(mux), "127.0.0.1:%u", d->mux_port);
	demo_path(d, "headend.keystore", ks, sizeof(ks));
	demo_path(d, "passphrase", pf, sizeof(pf));
	demo_path(d, "headend.log", log, sizeof(log));
	demo_path(d, "headend-data", dir, sizeof(dir));
	demo_path(d, "admin-key", keyf, sizeof(keyf));
	demo_path(d, "headend.ready", ready, sizeof(ready));
	pid = fork();
	if (pid < 0)
		return CE_IO;
	if (pid == 0) {
		char *args[] = { (char *)"castellan", (char *)"headend", (char *)"--data-dir", dir, (char *)"--keystore",
			ks, (char *)"--passphrase-file", pf, (char *)"--http", http, (char *)"--ecmg", ecmg,
			(char *)"--mux", mux, (char *)"--emm-kbps", (char *)"64", (char *)"--admin-key-file", keyf,
			(char *)"--ready-file", ready, (char *)"--status-every", (char *)"5", NULL };
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(d->self, args);
		_exit(127);
	}
	d->ecmg_pid = pid;
	for (int i = 0; i < 200; i++) {
		int status;
		struct stat st;

		if (stat(ready, &st) == 0 && demo_port_open(d->ecmg_port) && demo_port_open(d->http_port))
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			d->ecmg_pid = 0;
			return CE_IO;
		}
		usleep(50 * 1000);
	}
	return CE_TIMEOUT;
}

static void stop_ecmg(struct demo *d)
{
	int status;

	if (d->ecmg_pid > 0) {
		kill(d->ecmg_pid, SIGTERM);
		for (int i = 0; i < 40; i++) {
			if (waitpid(d->ecmg_pid, &status, WNOHANG) == d->ecmg_pid) {
				d->ecmg_pid = 0;
				return;
			}
			usleep(50 * 1000);
		}
		kill(d->ecmg_pid, SIGKILL);
		waitpid(d->ecmg_pid, &status, 0);
		d->ecmg_pid = 0;
	}
}

/* Section callback collecting PAT then PMTs. */
struct psi_scan {
	struct pat pat;
	bool have_pat;
	struct pmt *pmt;
	struct svc_info svc[DEMO_MAX_SERVICES + 8];
	size_t nsvc;
};

static int scan_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct psi_scan *s = ctx;

	if (pid == TS_PID_PAT) {
		if (!s->have_pat && pat_parse(sec, len, &s->pat) == 0)
			s->have_pat = true;
		return 0;
	}
	for (size_t i = 0; i < s->nsvc; i++) {
		if (s->svc[i].pmt_pid != pid || s->svc[i].npids)
			continue;
		if (pmt_parse(sec, len, s->pmt) != 0 || s->pmt->program != s->svc[i].program)
			continue;
		for (size_t e = 0; e < s->pmt->nes && e < PMT_MAX_ES; e++)
			s->svc[i].pids[s->svc[i].npids++] = s->pmt->es[e].pid;
	}
	return 0;
}

/* Learn the services and their ES PIDs from a clear TS. */
static int scan_services(const uint8_t *ts, size_t npkts, struct psi_scan *s)
{
	struct psi_asm *pat_asm = NULL, *pmt_asm = NULL;
	int r = CE_FORMAT;

	memset(s->svc, 0, sizeof(s->svc));
	s->nsvc = 0;
	s->have_pat = false;
	s->pmt = calloc(1, sizeof(*s->pmt));
	pmt_asm = calloc(DEMO_MAX_SERVICES + 8, sizeof(*pmt_asm));
	pat_asm = calloc(1, sizeof(*pat_asm));
	if (!s->pmt || !pmt_asm || !pat_asm) {
		r = CE_NOMEM;
		goto out;
	}
	psi_asm_init(pat_asm, TS_PID_PAT);
	for (size_t i = 0; i < npkts; i++) {
		const uint8_t *p = ts + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		if (ts_parse(p, &h) != 0)
			continue;
		if (h.pid == TS_PID_PAT && !s->have_pat) {
			psi_asm_push(pat_asm, p, &h, scan_cb, s);
			if (s->have_pat) {
				for (size_t k = 0; k < s->pat.nprog && s->nsvc < DEMO_MAX_SERVICES + 8; k++) {
					if (s->pat.prog[k].program == 0)
						continue;
					s->svc[s->nsvc].program = s->pat.prog[k].program;
					s->svc[s->nsvc].pmt_pid = s->pat.prog[k].pid;
					psi_asm_init(&pmt_asm[s->nsvc], s->pat.prog[k].pid);
					s->nsvc++;
				}
			}
			continue;
		}
		for (size_t k = 0; k < s->nsvc; k++)
			if (h.pid == s->svc[k].pmt_pid)
				psi_asm_push(&pmt_asm[k], p, &h, scan_cb, s);
	}
	r = s->have_pat && s->nsvc ? 0 : CE_FORMAT;
out:
	free(pat_asm);
	free(pmt_asm);
	free(s->pmt);
	s->pmt = NULL;
	return r;
}

/* Compare the packets of the service's ES PIDs, in order, between the clear
 * input and a box output; count how many were scrambled in `scrambled`. */
struct svc_verdict {
	size_t pkts;        /* ES packets in the input */
	size_t equal;       /* identical in the box output */
	size_t scrambled;   /* scrambled in the scrambler output */
	bool identical;
};

static bool pid_in(const struct svc_info *s, uint16_t pid)
{
	for (size_t i = 0; i < s->npids; i++)
		if (s->pids[i] == pid)
			return true;
	return false;
}

/* Extract the ES packets of a service from a TS into a compact array.
 * Packets without payload (adaptation field only, e.g. PCR carriers) are
 * never scrambled (ISO/IEC 13818-1 transport_scrambling_control covers the
 * payload only), so they are left out of the comparison. */
static size_t es_packets(const uint8_t *ts, size_t npkts, const struct svc_info *s, const uint8_t **out,
	size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < npkts && n < cap; i++) {
		const uint8_t *p = ts + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		if (ts_parse(p, &h) == 0 && pid_in(s, h.pid) && h.has_payload && h.payload_len > 0)
			out[n++] = p;
	}
	return n;
}

static int verdict(const uint8_t *in, size_t nin, const uint8_t *scr, size_t nscr, const uint8_t *box,
	size_t nbox, const struct svc_info *s, struct svc_verdict *v)
{
	const uint8_t **a = calloc(nin + 1, sizeof(*a));
	const uint8_t **b = calloc(nbox + 1, sizeof(*b));
	const uint8_t **c = calloc(nscr + 1, sizeof(*c));
	size_t na, nb, nc;
	int r = CE_NOMEM;

	memset(v, 0, sizeof(*v));
	if (!a || !b || !c)
		goto out;
	na = es_packets(in, nin, s, a, nin);
	nb = es_packets(box, nbox, s, b, nbox);
	nc = es_packets(scr, nscr, s, c, nscr);
	v->pkts = na;
	for (size_t i = 0; i < nc; i++)
		if ((c[i][3] >> 6) != 0)
			v->scrambled++;
	for (size_t i = 0; i < na && i < nb; i++)
		if (memcmp(a[i], b[i], TS_PACKET_BYTES) == 0)
			v->equal++;
	v->identical = na > 0 && na == nb && v->equal == na;
	r = 0;
out:
	free(a);
	free(b);
	free(c);
	return r;
}

static int load_ts(const char *path, uint8_t **buf, size_t *npkts)
{
	size_t len;
	int r = file_read_all(path, 512u << 20, buf, &len);

	*npkts = r == 0 ? len / TS_PACKET_BYTES : 0;
	return r;
}

/* ---- live part: head-end -> streaming scramble with MUX -> box with a card ---- */

#define LIVE_LOOPS 40          /* the input is looped; the feeder is stopped when done */
#define LIVE_WAIT_S 25         /* bound on each wait */
#define LIVE_CHUNK_PKTS 200

static int cmp_payload(const void *a, const void *b)
{
	return memcmp(*(const uint8_t *const *)a, *(const uint8_t *const *)b, TS_PACKET_BYTES - 4);
}

/* Stream time of a TS from its PCRs (first PCR PID), in ms; 0 if none. */
static uint64_t pcr_span_ms(const uint8_t *ts, size_t npkts)
{
	uint64_t first = 0, last = 0;
	int pid = -1;

	for (size_t i = 0; i < npkts; i++) {
		const uint8_t *p = ts + i * TS_PACKET_BYTES;
		int ppid = ((p[1] & 0x1F) << 8) | p[2];

		if (!(p[3] & 0x20) || p[4] < 7 || !(p[5] & 0x10) || (pid >= 0 && ppid != pid))
			continue;
		uint64_t base = ((uint64_t)p[6] << 25) | ((uint64_t)p[7] << 17) | ((uint64_t)p[8] << 9) |
				((uint64_t)p[9] << 1) | (p[10] >> 7);

		if (pid < 0) {
			pid = ppid;
			first = base;
		}
		last = base;
	}
	return last > first ? (last - first) / 90 : 0;
}

/* The feeder: writes the clear TS LIVE_LOOPS times at its own pace. */
static pid_t spawn_feeder(const uint8_t *ts, size_t npkts, int out_fd)
{
	uint64_t span = pcr_span_ms(ts, npkts);
	pid_t pid;

	if (span == 0)
		span = npkts * TS_PACKET_BYTES * 8 / 10000; /* 10 Mbit/s */
	pid = fork();
	if (pid != 0)
		return pid;
	signal(SIGPIPE, SIG_DFL);
	for (int k = 0; k < LIVE_LOOPS; k++) {
		for (size_t i = 0; i < npkts; i += LIVE_CHUNK_PKTS) {
			size_t n = npkts - i < LIVE_CHUNK_PKTS ? npkts - i : LIVE_CHUNK_PKTS;
			const uint8_t *p = ts + i * TS_PACKET_BYTES;
			size_t left = n * TS_PACKET_BYTES;
			uint64_t us = span * 1000u * n / npkts;
			struct timespec t = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };

			while (left) {
				ssize_t w = write(out_fd, p, left);

				if (w <= 0)
					_exit(0);
				p += w;
				left -= (size_t)w;
			}
			nanosleep(&t, NULL);
		}
	}
	_exit(0);
}

/* Start `castellan args` with stdin/stdout from the given fds (-1: none),
 * stderr to log_name. */
static pid_t spawn_cmd(const struct demo *d, char *const args[], int in_fd, int out_fd, const char *log_name)
{
	char log[512];
	pid_t pid;

	demo_path(d, log_name, log, sizeof(log));
	pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (in_fd >= 0)
		dup2(in_fd, 0);
	if (out_fd >= 0)
		dup2(out_fd, 1);
	else if (fd >= 0)
		dup2(fd, 1);
	if (fd >= 0)
		dup2(fd, 2);
	execv(d->self, args);
	_exit(127);
}

static void reap(pid_t pid, int wait_ms)
{
	int status;

	if (pid <= 0)
		return;
	for (int i = 0; i < wait_ms / 50; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* GET path from the head-end's HTTP; the status, body into out. */
static int http_get(uint16_t port, const char *path, char *out, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char req[2048], buf[8192];
	size_t got = 0;
	int fd, st = 0, n;
	ssize_t k;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	while (got < sizeof(buf) - 1 && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)k;
	buf[got] = '\0';
	close(fd);
	const char *sp = strchr(buf, ' ');

	if (!sp)
		return -1;
	for (int i = 1; i <= 3; i++) {
		if (sp[i] < '0' || sp[i] > '9')
			return -1;
		st = st * 10 + (sp[i] - '0');
	}
	const char *body = strstr(buf, "\r\n\r\n");

	snprintf(out, cap, "%s", body ? body + 4 : "");
	return st;
}

/* The box's output as it grows: of the packets of the service's first ES
 * PID since the last look, how many are the clear input's (ok) or not. */
struct live_watch {
	char path[512];
	off_t pos;
	uint16_t pid;
	const uint8_t **clear; /* sorted payloads (184 bytes) of that PID in the input */
	size_t nclear;
	size_t garbage;        /* scrambling bits cleared, payload not the input's: a wrong key */
};

static void live_look(struct live_watch *w, size_t *ok, size_t *bad)
{
	uint8_t buf[TS_PACKET_BYTES * 512];
	int fd = open(w->path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	*ok = *bad = 0;
	if (fd < 0)
		return;
	while ((n = pread(fd, buf, sizeof(buf), w->pos)) >= TS_PACKET_BYTES) {
		size_t np = (size_t)n / TS_PACKET_BYTES;

		for (size_t i = 0; i < np; i++) {
			const uint8_t *p = buf + i * TS_PACKET_BYTES;
			const uint8_t *key = p + 4;

			if (p[0] != 0x47 || ((((p[1] & 0x1F) << 8) | p[2]) != w->pid) || !(p[3] & 0x10) || (p[3] & 0x20))
				continue;
			if (bsearch(&key, w->clear, w->nclear, sizeof(*w->clear), cmp_payload)) {
				(*ok)++;
			} else {
				(*bad)++;
				if ((p[3] >> 6) == 0)
					w->garbage++;
			}
		}
		w->pos += (off_t)(np * TS_PACKET_BYTES);
	}
	close(fd);
}

/* Wait until the box shows want (true: descrambling, false: not). Returns
 * the seconds it took, or -1 after LIVE_WAIT_S. */
static double live_wait(struct live_watch *w, bool want)
{
	uint64_t t0 = now_mono_us();

	while (now_mono_us() - t0 < (uint64_t)LIVE_WAIT_S * 1000000u) {
		size_t ok, bad;

		usleep(100 * 1000);
		live_look(w, &ok, &bad);
		if (ok + bad >= 3 && (want ? (ok > 0 && bad == 0) : (ok == 0)))
			return (double)(now_mono_us() - t0) / 1e6;
	}
	return -1.0;
}

static int live_part(struct demo *d, const uint8_t *in, size_t nin, const struct psi_scan *scan, bool *ok)
{
	char ks[512], pf[512], db[600], card[512], state[512], outc[512], keyf[512], mux[64], ecmg[64];
	char svc1[64], svc2[64], q[1024], body[4096];
	char *key = NULL;
	size_t klen = 0;
	int p1[2] = { -1, -1 }, p2[2] = { -1, -1 };
	pid_t feeder = 0, scr = 0, stb = 0;
	struct live_watch w;
	double t_on = -1, t_off = -1, t_seen;
	size_t ok_pkts = 0, bad_pkts = 0;
	uint64_t now = now_wall_ms() / 1000;
	int r = CE_INTERNAL;

	memset(&w, 0, sizeof(w));
	demo_path(d, "headend.keystore", ks, sizeof(ks));
	demo_path(d, "passphrase", pf, sizeof(pf));
	demo_path(d, "cardC.json", card, sizeof(card));
	demo_path(d, "boxC.state", state, sizeof(state));
	demo_path(d, "boxC.ts", outc, sizeof(outc));
	demo_path(d, "admin-key", keyf, sizeof(keyf));
	snprintf(db, sizeof(db), "sqlite:%s/headend-data/sms.db", d->dir);
	snprintf(mux, sizeof(mux), "127.0.0.1:%u", d->mux_port);
	snprintf(ecmg, sizeof(ecmg), "127.0.0.1:%u", d->ecmg_port);
	snprintf(svc1, sizeof(svc1), "%u:ac=00000001", scan->svc[0].program);
	snprintf(svc2, sizeof(svc2), "%u:ac=00000002", scan->svc[1].program);
	printf("\nLive: head-end -> streaming scrambler with MUX -> box C with a card, entitled over the air\n");
	{
		char *a1[] = { (char *)"castellan", (char *)"sms", (char *)"--db", db, (char *)"card", (char *)"add",
			(char *)"2100000003", NULL };
		char *a2[] = { (char *)"castellan", (char *)"provision", (char *)"--keystore", ks,
			(char *)"--passphrase-file", pf, (char *)"--card", (char *)"2100000003",
			(char *)"--identity-out", card, NULL };

		if (run_cmd(d, "sms-card-add.log", a1) != 0) {
			print_log_tail(d, "sms-card-add.log");
			goto out;
		}
		if (run_cmd(d, "provisionC.log", a2) != 0) {
			print_log_tail(d, "provisionC.log");
			goto out;
		}
	}
	printf("  card 2100000003 added to the SMS (no package); box C has only its card file\n");
	/* the clear payloads of service 1's first ES PID */
	w.pid = scan->svc[0].pids[0];
	snprintf(w.path, sizeof(w.path), "%s", outc);
	w.clear = calloc(nin + 1, sizeof(*w.clear));
	if (!w.clear)
		goto out;
	for (size_t i = 0; i < nin; i++) {
		const uint8_t *p = in + i * TS_PACKET_BYTES;

		if ((((p[1] & 0x1F) << 8) | p[2]) == w.pid && (p[3] & 0x10) && !(p[3] & 0x20))
			w.clear[w.nclear++] = p + 4;
	}
	qsort(w.clear, w.nclear, sizeof(*w.clear), cmp_payload);
	/* feeder | scramble --mux-listen | stb --card */
	if (pipe2(p1, O_CLOEXEC) != 0 || pipe2(p2, O_CLOEXEC) != 0)
		goto out;
	{
		char *sa[] = { (char *)"castellan", (char *)"scramble", (char *)"--input", (char *)"-", (char *)"--output",
			(char *)"-", (char *)"--service", svc1, (char *)"--service", svc2, (char *)"--ecmg", ecmg,
			(char *)"--super-cas-id", (char *)"0x4ADC0001", (char *)"--algo", d->algo,
			(char *)"--cp-duration", (char *)"2", (char *)"--mux-listen", mux, NULL };
		char *ba[] = { (char *)"castellan", (char *)"stb", (char *)"--input", (char *)"-", (char *)"--output",
			outc, (char *)"--card", card, (char *)"--state", state, NULL };

		scr = spawn_cmd(d, sa, p1[0], p2[1], "scramble-live.log");
		stb = spawn_cmd(d, ba, p2[0], -1, "boxC.log");
		feeder = spawn_feeder(in, nin, p1[1]);
	}
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
	p1[0] = p1[1] = p2[0] = p2[1] = -1;
	if (scr < 0 || stb < 0 || feeder < 0)
		goto out;
	t_seen = live_wait(&w, false);
	if (t_seen < 0) {
		printf("  ! box C did not receive the stream\n");
		goto out;
	}
	printf("  streaming (%s, crypto-period 2 s, EMMs from the head-end's carousel on the MUX);\n"
	       "  box C receives service %u scrambled and cannot descramble it (no package)\n",
		d->algo, scan->svc[0].program);
	if (file_read_all(keyf, 256, (uint8_t **)&key, &klen) != 0 || klen != 64)
		goto out;
	/* subscribe through the free CAS's GET API: package 1 (bit 0) */
	snprintf(q, sizeof(q), "/api.php?api_key=%.64s&serial_no=2100000003&set%%5Bstart%%5D=%llu"
		"&set%%5Bfinish%%5D=%llu&set%%5Baccess_criteria%%5D=00000001", key, (unsigned long long)(now - 3600),
		(unsigned long long)(now + 30 * 86400));
	if (http_get(d->http_port, q, body, sizeof(body)) != 200) {
		printf("  ! GET API refused the subscription: %s\n", body);
		goto out;
	}
	printf("  GET /api.php ... set[access_criteria]=00000001  -> %s\n", body);
	t_on = live_wait(&w, true);
	if (t_on < 0)
		printf("  ! box C did not start descrambling within %d s\n", LIVE_WAIT_S);
	else
		printf("  box C descrambles service %u (bit-identical to the input) %.1f s after the API call\n",
			scan->svc[0].program, t_on);
	if (t_on >= 0) {
		snprintf(q, sizeof(q), "/api.php?api_key=%.64s&serial_no=2100000003&set%%5Baccess_criteria%%5D=00000000",
			key);
		if (http_get(d->http_port, q, body, sizeof(body)) != 200) {
			printf("  ! GET API refused the removal: %s\n", body);
			goto out;
		}
		printf("  GET /api.php ... set[access_criteria]=00000000  -> %s\n", body);
		t_off = live_wait(&w, false);
		if (t_off < 0)
			printf("  ! box C still descrambles %d s after the package was removed\n", LIVE_WAIT_S);
		else
			printf("  box C stops descrambling %.1f s after the API call (next crypto-period: no key)\n",
				t_off);
	}
	live_look(&w, &ok_pkts, &bad_pkts);
	if (w.garbage > 0)
		printf("  ! box C wrote %zu packets as clear that are not the input's (descrambled with a wrong key)\n",
			w.garbage);
	else
		printf("  box C, compared with the clear input: every packet it marked clear is the input's\n");
	r = 0;
out:
	if (r != 0 || t_on < 0 || t_off < 0 || w.garbage > 0)
		*ok = false;
	for (int i = 0; i < 2; i++) {
		if (p1[i] >= 0)
			close(p1[i]);
		if (p2[i] >= 0)
			close(p2[i]);
	}
	if (feeder > 0)
		kill(feeder, SIGTERM);
	reap(feeder, 2000);
	reap(scr, 5000);
	reap(stb, 5000);
	if (key)
		secret_free(key, klen);
	free(w.clear);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan demo [--input CLEAR.ts] [--algo csa2|cissa] [--cp-duration S] [--keep]\n\n"
		"End-to-end demo on this machine: create a head-end keystore, start the head-end\n"
		"(SMS GET API, ECMG, EMMG, scheduler), scramble a two-service transport stream over\n"
		"DVB SimulCrypt, provision two boxes (A: packages 1+2, B: package 1) and descramble\n"
		"with each; then stream it through a scrambler with a MUX to box C (a card, no\n"
		"local entitlement), subscribe C through the GET API and remove the package again,\n"
		"printing how long the box took to start and stop descrambling. Succeeds only if\n"
		"box A gets both services back bit-identical, box B service 1 but not service 2,\n"
		"and box C starts and then stops.\n\n"
		"  --input FILE      clear TS with two services (default: tests/data/ts-clear-2svc.ts)\n"
		"  --algo ALG        csa2 (default) or cissa\n"
		"  --cp-duration S   crypto-period in seconds (default 4)\n"
		"  --keep            keep the work directory (keystore, TS files, logs)\n");
}

int cmd_demo(int argc, char **argv)
{
	static char default_input[4096];
	struct demo d = { .algo = "csa2", .cp_seconds = 4 };
	struct psi_scan scan;
	uint8_t *in = NULL, *scr = NULL, *boxa = NULL, *boxb = NULL;
	size_t nin = 0, nscr = 0, na = 0, nb = 0;
	char ks[512], pf[512], scrp[512], enta[512], entb[512], outa[512], outb[512];
	char listen[64], cp[16], start[24], finish[24], svc1[64], svc2[64], pass_hex[65];
	uint8_t pass[32];
	uint64_t t0_us, now_s;
	int rc = 1;
	bool ok = true;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	snprintf(default_input, sizeof(default_input), "%s/tests/data/ts-clear-2svc.ts", CASTELLAN_SOURCE_DIR);
	d.input = default_input;
	for (int i = 1; i < argc; i++) {
		uint64_t v;

		if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
			d.input = argv[++i];
		} else if (strcmp(argv[i], "--algo") == 0 && i + 1 < argc) {
			d.algo = argv[++i];
			if (strcmp(d.algo, "csa2") != 0 && strcmp(d.algo, "cissa") != 0) {
				fprintf(stderr, "demo: --algo must be csa2 or cissa\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--cp-duration") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], 3600, &v) != 0 || v == 0) {
				fprintf(stderr, "demo: bad --cp-duration\n");
				return 2;
			}
			d.cp_seconds = (unsigned)v;
		} else if (strcmp(argv[i], "--keep") == 0) {
			d.keep = true;
		} else {
			usage(stderr);
			return 2;
		}
	}
	{
		ssize_t n = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);

		if (n <= 0) {
			fprintf(stderr, "demo: cannot find own executable\n");
			return 1;
		}
		d.self[n] = '\0';
	}
	snprintf(d.dir, sizeof(d.dir), "/tmp/castellan-demo-XXXXXX");
	if (!mkdtemp(d.dir)) {
		fprintf(stderr, "demo: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	t0_us = now_mono_us();
	printf("Castellan demo: %s scrambling over DVB SimulCrypt, crypto-period %u s\n", d.algo, d.cp_seconds);
	printf("  input    %s\n  work dir %s\n", d.input, d.dir);

	/* 1. head-end keystore, under a passphrase generated for this run */
	demo_path(&d, "passphrase", pf, sizeof(pf));
	demo_path(&d, "headend.keystore", ks, sizeof(ks));
	if (RAND_bytes(pass, sizeof(pass)) != 1)
		goto fail;
	hex_encode(pass, sizeof(pass), pass_hex);
	secret_wipe(pass, sizeof(pass));
	if (file_write_atomic(pf, pass_hex, strlen(pass_hex), 0600) != 0)
		goto fail;
	secret_wipe(pass_hex, sizeof(pass_hex));
	{
		char *args[] = { (char *)"castellan", (char *)"keys", (char *)"init", (char *)"--out", ks,
			(char *)"--ca-system-id", (char *)"0x4ADC", (char *)"--passphrase-file", pf, NULL };

		if (run_cmd(&d, "keys.log", args) != 0) {
			print_log_tail(&d, "keys.log");
			goto fail;
		}
	}
	/* 2. the head-end: SMS (GET API), ECMG, EMMG + carousel, scheduler */
	if (start_headend(&d) != 0) {
		fprintf(stderr, "demo: the head-end did not start\n");
		print_log_tail(&d, "headend.log");
		goto fail;
	}
	printf("  head-end running: ECMG on 127.0.0.1:%u (CA_system_id 0x4ADC), GET API on 127.0.0.1:%u\n",
		d.ecmg_port, d.http_port);

	/* 3. scramble: service 101 in package 1 (mask 00000001), 102 in package 2 */
	if (load_ts(d.input, &in, &nin) != 0 || scan_services(in, nin, &scan) != 0 || scan.nsvc < 2) {
		fprintf(stderr, "demo: %s is not a TS with two services\n", d.input);
		goto fail;
	}
	demo_path(&d, "scrambled.ts", scrp, sizeof(scrp));
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", d.ecmg_port);
	snprintf(cp, sizeof(cp), "%u", d.cp_seconds);
	snprintf(svc1, sizeof(svc1), "%u:ac=00000001", scan.svc[0].program);
	snprintf(svc2, sizeof(svc2), "%u:ac=00000002", scan.svc[1].program);
	{
		char *args[] = { (char *)"castellan", (char *)"scramble", (char *)"--input", d.input,
			(char *)"--output", scrp, (char *)"--service", svc1, (char *)"--service", svc2,
			(char *)"--ecmg", listen, (char *)"--super-cas-id", (char *)"0x4ADC0001",
			(char *)"--algo", d.algo, (char *)"--cp-duration", cp, NULL };

		if (run_cmd(&d, "scramble.log", args) != 0) {
			print_log_tail(&d, "scramble.log");
			goto fail;
		}
	}
	if (load_ts(scrp, &scr, &nscr) != 0)
		goto fail;

	/* 4. two boxes: A has packages 1+2, B only package 1 */
	now_s = now_wall_ms() / 1000;
	snprintf(start, sizeof(start), "%llu", (unsigned long long)(now_s - 3600));
	snprintf(finish, sizeof(finish), "%llu", (unsigned long long)(now_s + 30 * 86400));
	demo_path(&d, "boxA.entitlement", enta, sizeof(enta));
	demo_path(&d, "boxB.entitlement", entb, sizeof(entb));
	demo_path(&d, "boxA.ts", outa, sizeof(outa));
	demo_path(&d, "boxB.ts", outb, sizeof(outb));
	for (int b = 0; b < 2; b++) {
		char *pargs[] = { (char *)"castellan", (char *)"provision", (char *)"--keystore", ks,
			(char *)"--passphrase-file", pf, (char *)"--card", (char *)(b ? "2100000002" : "2100000001"),
			(char *)"--packages", (char *)(b ? "00000001" : "00000003"), (char *)"--start", start,
			(char *)"--finish", finish, (char *)"--out", b ? entb : enta, NULL };
		char *sargs[] = { (char *)"castellan", (char *)"stb", (char *)"--input", scrp, (char *)"--output",
			b ? outb : outa, (char *)"--entitlement", b ? entb : enta, NULL };

		if (run_cmd(&d, b ? "provisionB.log" : "provisionA.log", pargs) != 0) {
			print_log_tail(&d, b ? "provisionB.log" : "provisionA.log");
			goto fail;
		}
		if (run_cmd(&d, b ? "boxB.log" : "boxA.log", sargs) != 0) {
			print_log_tail(&d, b ? "boxB.log" : "boxA.log");
			goto fail;
		}
	}
	if (load_ts(outa, &boxa, &na) != 0 || load_ts(outb, &boxb, &nb) != 0)
		goto fail;

	/* 5. the verdict, checked here against the clear input */
	printf("\n  %-28s %-34s %-34s\n", "", "box A (card 2100000001, pkg 1+2)", "box B (card 2100000002, pkg 1)");
	for (size_t k = 0; k < 2; k++) {
		struct svc_verdict va, vb;
		char la[64], lb[64];
		bool want_b = k == 0;

		if (verdict(in, nin, scr, nscr, boxa, na, &scan.svc[k], &va) != 0 ||
		    verdict(in, nin, scr, nscr, boxb, nb, &scan.svc[k], &vb) != 0)
			goto fail;
		snprintf(la, sizeof(la), "%s %zu/%zu pkts", va.identical ? "CLEAR, bit-identical" : "NOT clear",
			va.equal, va.pkts);
		snprintf(lb, sizeof(lb), "%s %zu/%zu pkts", vb.identical ? "CLEAR, bit-identical" :
			(vb.equal == 0 ? "stays scrambled" : "NOT clear"), vb.equal, vb.pkts);
		printf("  service %-5u (package %zu)    %-34s %-34s\n", scan.svc[k].program, k + 1, la, lb);
		if (va.scrambled == 0) {
			printf("    ! the scrambler left service %u in the clear\n", scan.svc[k].program);
			ok = false;
		}
		if (!va.identical || vb.identical != want_b || (!want_b && vb.equal != 0))
			ok = false;
	}
	printf("\n  what box B said:\n");
	{
		char log[512], line[512];
		FILE *f;

		demo_path(&d, "boxB.log", log, sizeof(log));
		f = fopen(log, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, "service"))
				printf("    %s", line);
		if (f)
			fclose(f);
	}
	if (live_part(&d, in, nin, &scan, &ok) != 0)
		print_log_tail(&d, "headend.log");
	printf("\n  %s in %.1f s\n", ok ? "DEMO PASSED: box A sees both services, box B only the one it pays for;"
		" box C gained and lost service 1 by EMM after GET API calls"
				      : "DEMO FAILED", (double)(now_mono_us() - t0_us) / 1e6);
	rc = ok ? 0 : 1;
	goto out;
fail:
	fprintf(stderr, "demo: failed (logs in %s)\n", d.dir);
	d.keep = true;
out:
	secret_wipe(pass_hex, sizeof(pass_hex));
	stop_ecmg(&d);
	free(in);
	free(scr);
	free(boxa);
	free(boxb);
	if (!d.keep && rc == 0) {
		char cmd[512];

		/* the work dir holds only files this run wrote */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "demo: could not remove %s\n", d.dir);
	} else if (rc == 0) {
		printf("  files kept in %s\n", d.dir);
	}
	return rc;
}
