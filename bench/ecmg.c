/*
 * bench/ecmg.c - the ECMG's numbers (DESIGN.md section 4): CW_provision ->
 * ECM_response latency (p50/p99) and ECMs per second, over one connection
 * (one request at a time, and pipelined) and over N concurrent connections
 * (one client thread each), against the raw ecm_build rate measured in the
 * same process as the reference. ECMG in a thread on 127.0.0.1, real TCP.
 * Then many streams like a real SCS (one connection per channel, many
 * streams on each): 100 streams (10 connections x 10) and 1,000 streams
 * (50 x 20), every stream sending one CW_provision per STREAM_PERIOD_MS,
 * staggered evenly (an open-loop load, as a CP sends on its own clock),
 * from one client thread that polls every connection; then the same
 * streams closed-loop (each sends its next request as soon as its ECM
 * arrives) for the saturated ECMs/s.
 *
 * Usage: bench_ecmg [RESULTS_FILE]   (markdown; stdout without an argument)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench_net.h"
#include "lib/bytes.h"
#include "cas/ecm.h"
#include "cas/keys.h"
#include "headend/ecmg.h"
#include "lib/log.h"
#include "lib/util.h"
#include "simulcrypt/simulcrypt.h"

#define N_SEQ 3000
#define N_PIPE 6000
#define PIPE_WINDOW 32
#define N_PER_CONN 800
#define N_RAW 3000
#define STREAM_PERIOD_MS 1000  /* one CW_provision per stream per second */
#define OPEN_LOOP_MS 4000      /* duration of each open-loop run */
#define CLOSED_LOOP_REQS 20000 /* requests in each closed-loop run */
#define MAX_CONNS 64
#define MAX_STREAMS 1024

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One message; returns its type, or -1. */
static int recv_msg(int fd, uint8_t *buf, size_t cap)
{
	size_t fl;

	if (recv_n(fd, buf, SC_HEADER_BYTES) != 0)
		return -1;
	fl = sc_frame_len(buf);
	if (fl > cap || recv_n(fd, buf + SC_HEADER_BYTES, fl - SC_HEADER_BYTES) != 0)
		return -1;
	{
		uint16_t type = 0;

		return cur_u16_at(buf, fl, 1, &type) == 0 ? type : -1;
	}
}

static size_t mk_cw_sid(uint8_t *b, uint16_t ch, uint16_t sid, uint16_t cp)
{
	struct sc_writer sw;
	uint8_t comb[10] = { 0 }, ac[4] = { 0, 0, 0, 3 };
	size_t n = 0;

	sc_begin(&sw, b, 256, 2, SC_ECM_CW_PROVISION);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, sid);
	sc_put_u16(&sw, SC_P_CP_NUMBER, cp);
	sc_put_u16(&sw, SC_P_CP_DURATION, 100);
	sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, ac, 4);
	for (int i = 0; i < 2; i++) {
		put_be16(comb, (uint16_t)(cp + i));
		memset(comb + 2, 0x11 * (cp + i + 1), 8);
		sc_put_bytes(&sw, SC_P_CP_CW_COMBINATION, comb, sizeof(comb));
	}
	return sc_finish(&sw, &n) == 0 ? n : 0;
}

static size_t mk_cw(uint8_t *b, uint16_t ch, uint16_t cp)
{
	return mk_cw_sid(b, ch, 1, cp);
}

/* channel_setup + nstreams stream_setups (ids 1..nstreams, ECM_id
 * ecm_id0 + i) on a new connection; fd or -1. */
static int open_session_n(uint16_t port, uint16_t ch, uint16_t nstreams, uint16_t ecm_id0)
{
	uint8_t b[512];
	struct sc_writer sw;
	size_t n = 0;
	int fd = tcp_connect(port);

	if (fd < 0)
		return -1;
	sc_begin(&sw, b, sizeof(b), 2, SC_ECM_CHANNEL_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u32(&sw, SC_P_SUPER_CAS_ID, 0x4ADC0001u);
	if (sc_finish(&sw, &n) != 0 || send_all(fd, b, n) != 0 || recv_msg(fd, b, sizeof(b)) != SC_ECM_CHANNEL_STATUS)
		goto fail;
	for (uint16_t i = 0; i < nstreams; i++) {
		sc_begin(&sw, b, sizeof(b), 2, SC_ECM_STREAM_SETUP);
		sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
		sc_put_u16(&sw, SC_P_ECM_STREAM_ID, (uint16_t)(i + 1));
		sc_put_u16(&sw, SC_P_ECM_ID, (uint16_t)(ecm_id0 + i));
		sc_put_u16(&sw, SC_P_NOMINAL_CP_DURATION, 100);
		if (sc_finish(&sw, &n) != 0 || send_all(fd, b, n) != 0 ||
		    recv_msg(fd, b, sizeof(b)) != SC_ECM_STREAM_STATUS)
			goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static int open_session(uint16_t port, uint16_t ch)
{
	return open_session_n(port, ch, 1, ch);
}

struct client {
	uint16_t port, ch;
	size_t n;
	uint64_t *lat;
	int ok;
};

static void *client_thread(void *arg)
{
	struct client *c = arg;
	uint8_t b[4096];
	int fd = open_session(c->port, c->ch);

	c->ok = 0;
	if (fd < 0)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		size_t n = mk_cw(b, c->ch, (uint16_t)i);
		uint64_t t0 = now_ns();

		if (send_all(fd, b, n) != 0 || recv_msg(fd, b, sizeof(b)) != SC_ECM_ECM_RESPONSE)
			goto out;
		c->lat[i] = now_ns() - t0;
	}
	c->ok = 1;
out:
	close(fd);
	return NULL;
}

static void *ecmg_thread(void *arg)
{
	if (ecmg_run(arg) != 0)
		fprintf(stderr, "bench_ecmg: ecmg_run failed\n");
	return NULL;
}

static void pct(uint64_t *v, size_t n, double *p50, double *p99)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	*p50 = (double)v[n / 2] / 1000.0;
	*p99 = (double)v[n * 99 / 100] / 1000.0;
}

/* ---- many streams, one polling client thread ---- */

struct mconn {
	int fd;
	uint16_t ch;
	size_t rxlen;
	uint8_t rx[16384];
};

struct mres {
	size_t n, errors, missing;
	double p50, p99, max_us, rate;
	double ecmg_cpu_us; /* ECMG thread CPU time per ECM */
};

static clockid_t ecmg_clock;

static uint64_t ecmg_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(ecmg_clock, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ECM_stream_id and CP_number of an ECM_response frame; 0 if found. */
static int resp_ids(const uint8_t *f, size_t len, uint16_t *sid, uint16_t *cp)
{
	struct cur c, v;
	int got = 0;

	cur_init(&c, f, len);
	cur_skip(&c, SC_HEADER_BYTES);
	while (cur_left(&c) >= 4) {
		uint16_t t = 0, l = 0;

		cur_u16(&c, &t);
		cur_u16(&c, &l);
		if (cur_view(&c, l, &v) != 0)
			break;
		if (t == SC_P_ECM_STREAM_ID && l == 2 && cur_u16(&v, sid) == 0)
			got |= 1;
		else if (t == SC_P_CP_NUMBER && l == 2 && cur_u16(&v, cp) == 0)
			got |= 2;
	}
	return got == 3 ? 0 : -1;
}

/* nconn connections x per streams. open_loop: stream i of N sends CP k at
 * t0 + (k*N + i) * STREAM_PERIOD_MS / N for OPEN_LOOP_MS; else every stream
 * keeps one request in flight until CLOSED_LOOP_REQS were sent. */
static int many_streams(uint16_t port, int nconn, int per, int run, bool open_loop, struct mres *res)
{
	size_t ns = (size_t)nconn * (size_t)per, total, sent = 0, got = 0;
	struct mconn *mc = calloc((size_t)nconn, sizeof(*mc));
	struct pollfd pf[MAX_CONNS];
	uint64_t (*sent_at)[4] = calloc(ns, sizeof(*sent_at));
	uint16_t *next_cp = calloc(ns, sizeof(*next_cp));
	uint64_t *lat, t0, cpu0, period_ns = (uint64_t)STREAM_PERIOD_MS * 1000000u, deadline;
	uint8_t b[512];
	int rc = -1;

	total = open_loop ? ns * OPEN_LOOP_MS / STREAM_PERIOD_MS : CLOSED_LOOP_REQS;
	lat = calloc(total, sizeof(*lat));
	memset(res, 0, sizeof(*res));
	if (!mc || !sent_at || !next_cp || !lat || nconn > MAX_CONNS)
		goto out;
	for (int c = 0; c < nconn; c++)
		mc[c].fd = -1;
	for (int c = 0; c < nconn; c++) {
		mc[c].ch = (uint16_t)(1000 + run * MAX_CONNS + c);
		mc[c].fd = open_session_n(port, mc[c].ch, (uint16_t)per, (uint16_t)(2000 + run * 2048 + c * per));
		if (mc[c].fd < 0)
			goto out;
		pf[c].fd = mc[c].fd;
		pf[c].events = POLLIN;
	}
	t0 = now_ns();
	cpu0 = ecmg_cpu_ns();
	if (!open_loop) {
		/* one request in flight per stream */
		for (size_t i = 0; i < ns && sent < total; i++, sent++) {
			size_t n = mk_cw_sid(b, mc[i / (size_t)per].ch, (uint16_t)(i % (size_t)per + 1), 0);

			sent_at[i][0] = now_ns();
			next_cp[i] = 1;
			if (send_all(mc[i / (size_t)per].fd, b, n) != 0)
				goto out;
		}
	}
	deadline = t0 + (open_loop ? (uint64_t)OPEN_LOOP_MS * 1000000u : 0) + 30000000000ull;
	while (got + res->errors < total) {
		uint64_t now = now_ns();
		struct timespec to = { 0, 1000000 };

		if (now > deadline)
			break;
		/* open loop: everything due by now goes out */
		while (open_loop && sent < total && t0 + sent * period_ns / ns <= now) {
			size_t i = sent % ns;
			uint16_t cp = (uint16_t)(sent / ns);
			size_t n = mk_cw_sid(b, mc[i / (size_t)per].ch, (uint16_t)(i % (size_t)per + 1), cp);

			sent_at[i][cp & 3] = now_ns();
			if (send_all(mc[i / (size_t)per].fd, b, n) != 0)
				goto out;
			sent++;
		}
		if (open_loop && sent < total) {
			uint64_t due = t0 + sent * period_ns / ns;

			now = now_ns();
			to.tv_nsec = due > now ? (long)(due - now) : 0;
			if (to.tv_nsec > 1000000)
				to.tv_nsec = 1000000;
		}
		if (ppoll(pf, (nfds_t)nconn, &to, NULL) < 0)
			goto out;
		for (int c = 0; c < nconn; c++) {
			struct mconn *m = &mc[c];
			ssize_t r;
			size_t off = 0;

			if (!(pf[c].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = recv(m->fd, m->rx + m->rxlen, sizeof(m->rx) - m->rxlen, 0);
			if (r <= 0)
				goto out;
			m->rxlen += (size_t)r;
			now = now_ns();
			while (m->rxlen - off >= SC_HEADER_BYTES) {
				size_t fl = sc_frame_len(m->rx + off);
				uint16_t sid = 0, cp = 0;
				size_t i;

				if (fl > sizeof(m->rx))
					goto out;
				if (m->rxlen - off < fl)
					break;
				uint16_t type = 0;

				(void)cur_u16_at(m->rx + off, fl, 1, &type);
				if (type != SC_ECM_ECM_RESPONSE ||
				    resp_ids(m->rx + off, fl, &sid, &cp) != 0 || sid < 1 || sid > per) {
					res->errors++;
					off += fl;
					continue;
				}
				i = (size_t)c * (size_t)per + sid - 1;
				if (got < total)
					lat[got++] = now - sent_at[i][cp & 3];
				if (!open_loop && sent < total) {
					size_t n = mk_cw_sid(b, m->ch, sid, next_cp[i]);

					sent_at[i][next_cp[i] & 3] = now_ns();
					next_cp[i]++;
					sent++;
					if (send_all(m->fd, b, n) != 0)
						goto out;
				}
				off += fl;
			}
			memmove(m->rx, m->rx + off, m->rxlen - off);
			m->rxlen -= off;
		}
	}
	res->rate = (double)got / ((double)(now_ns() - t0) / 1e9);
	res->ecmg_cpu_us = got ? (double)(ecmg_cpu_ns() - cpu0) / 1000.0 / (double)got : 0;
	res->n = got;
	res->missing = total - got - res->errors;
	if (got > 0) {
		pct(lat, got, &res->p50, &res->p99);
		res->max_us = (double)lat[got - 1] / 1000.0;
	}
	rc = 0;
out:
	for (int c = 0; mc && c < nconn; c++)
		if (mc[c].fd >= 0)
			close(mc[c].fd);
	free(mc);
	free(sent_at);
	free(next_cp);
	free(lat);
	return rc;
}

int main(int argc, char **argv)
{
	static const uint8_t root[KEYSTORE_ROOT_BYTES] = { 7 };
	FILE *out = stdout;
	struct keystore *ks = NULL;
	struct ecmg_config cfg;
	struct ecmg *g = NULL;
	pthread_t th;
	uint64_t *lat = calloc(N_SEQ > N_PER_CONN * 32 ? N_SEQ : N_PER_CONN * 32, sizeof(uint64_t));
	uint8_t b[4096];
	double p50, p99, raw_rate, cached_rate, seq_rate, pipe_rate;
	struct ecm_keycache *kc = NULL;
	uint64_t t0;
	int fd, rc = 1;

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LEVEL_ERROR);
	if (argc > 1 && !(out = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 1;
	}
	if (!lat || keystore_from_root(0x4ADC, 0, root, &ks) != 0)
		goto done;

	/* reference: ecm_build alone, same parameters (2 packages, CSA2) */
	{
		struct ecm_params p = { .alg = CW_ALG_CSA2, .ecm_id = 1, .ca_system_id = 0x4ADC, .ac_len = 4,
			.ac = { 0, 0, 0, 3 }, .cw_mask = 3, .epoch = 1 };
		size_t n;

		t0 = now_ns();
		for (int i = 0; i < N_RAW; i++) {
			p.cp_number = (uint16_t)i;
			if (ecm_build(ks, &p, b, sizeof(b), &n) != 0)
				goto done;
		}
		raw_rate = N_RAW / ((double)(now_ns() - t0) / 1e9);
		/* the package-key cache the ECMG uses */
		if (ecm_keycache_new(ks, &kc) != 0)
			goto done;
		t0 = now_ns();
		for (int i = 0; i < N_RAW; i++) {
			p.cp_number = (uint16_t)i;
			if (ecm_build_cached(kc, &p, b, sizeof(b), &n) != 0)
				goto done;
		}
		cached_rate = N_RAW / ((double)(now_ns() - t0) / 1e9);
		ecm_keycache_free(kc);
		kc = NULL;
	}

	ecmg_config_init(&cfg);
	cfg.listen = "127.0.0.1:0";
	cfg.ks = ks;
	cfg.max_comp_time_ms = 1000;
	if (ecmg_new(&cfg, &g) != 0 || ecmg_start(g) != 0 || pthread_create(&th, NULL, ecmg_thread, g) != 0)
		goto done;
	if (pthread_getcpuclockid(th, &ecmg_clock) != 0)
		ecmg_clock = CLOCK_MONOTONIC;

	fprintf(out, "## ECMG (bench_ecmg)\n\n");
	fprintf(out, "CW_provision -> ECM_response over TCP on 127.0.0.1, ECMG in one thread, ECMs with 2 packages "
		     "(CSA2, one TS packet each). Reference: `ecm_build` alone in the same process.\n\n");
	fprintf(out, "| measure | value |\n|---|---|\n");
	fprintf(out, "| reference: ecm_build alone (derives K_pkg per ECM) | %.0f ECMs/s |\n", raw_rate);
	fprintf(out, "| ecm_build_cached alone (package-key cache, as the ECMG uses) | %.0f ECMs/s (%.1fx) |\n",
		cached_rate, cached_rate / raw_rate);

	/* 1. one connection, one request at a time */
	fd = open_session(ecmg_port(g), 1);
	if (fd < 0)
		goto stop;
	t0 = now_ns();
	for (int i = 0; i < N_SEQ; i++) {
		size_t n = mk_cw(b, 1, (uint16_t)i);
		uint64_t t1 = now_ns();

		if (send_all(fd, b, n) != 0 || recv_msg(fd, b, sizeof(b)) != SC_ECM_ECM_RESPONSE)
			goto stop;
		lat[i] = now_ns() - t1;
	}
	seq_rate = N_SEQ / ((double)(now_ns() - t0) / 1e9);
	pct(lat, N_SEQ, &p50, &p99);
	fprintf(out, "| 1 connection, sequential: latency p50 / p99 | %.1f us / %.1f us |\n", p50, p99);
	fprintf(out, "| 1 connection, sequential: rate | %.0f ECMs/s (%.0f%% of ecm_build_cached) |\n", seq_rate,
		100.0 * seq_rate / cached_rate);

	/* 2. one connection, PIPE_WINDOW requests in flight */
	{
		size_t sent = 0, got = 0;

		t0 = now_ns();
		while (got < N_PIPE) {
			while (sent < N_PIPE && sent - got < PIPE_WINDOW) {
				size_t n = mk_cw(b, 1, (uint16_t)sent);

				if (send_all(fd, b, n) != 0)
					goto stop;
				sent++;
			}
			if (recv_msg(fd, b, sizeof(b)) != SC_ECM_ECM_RESPONSE)
				goto stop;
			got++;
		}
		pipe_rate = N_PIPE / ((double)(now_ns() - t0) / 1e9);
		fprintf(out, "| 1 connection, %d in flight: rate | %.0f ECMs/s (%.0f%% of ecm_build_cached) |\n", PIPE_WINDOW,
			pipe_rate, 100.0 * pipe_rate / cached_rate);
	}
	close(fd);

	/* 3. N connections, one client thread each, sequential requests */
	for (int nc = 4; nc <= 32; nc *= 2) {
		struct client cl[32];
		pthread_t ct[32];
		double rate;
		int ok = 1;

		t0 = now_ns();
		for (int i = 0; i < nc; i++) {
			cl[i] = (struct client){ .port = ecmg_port(g), .ch = (uint16_t)(100 + i), .n = N_PER_CONN,
				.lat = lat + (size_t)i * N_PER_CONN };
			if (pthread_create(&ct[i], NULL, client_thread, &cl[i]) != 0)
				goto stop;
		}
		for (int i = 0; i < nc; i++) {
			pthread_join(ct[i], NULL);
			ok &= cl[i].ok;
		}
		if (!ok)
			goto stop;
		rate = (double)nc * N_PER_CONN / ((double)(now_ns() - t0) / 1e9);
		pct(lat, (size_t)nc * N_PER_CONN, &p50, &p99);
		fprintf(out, "| %d connections (1 stream each): rate, latency p50 / p99 | %.0f ECMs/s, %.1f us / %.1f us |\n",
			nc, rate, p50, p99);
	}
	/* the machine's own scheduling noise, for scale: a thread that sleeps
	 * 500 us, 2000 times; how late does it wake? */
	{
		for (int i = 0; i < 2000; i++) {
			struct timespec d = { 0, 500000 };
			uint64_t t1 = now_ns();

			nanosleep(&d, NULL);
			lat[i] = now_ns() - t1 - 500000u;
		}
		pct(lat, 2000, &p50, &p99);
		fprintf(out, "| reference: wake-up delay of a 500 us sleep on this machine now, p50 / p99 | %.1f us / %.1f us |\n",
			p50, p99);
	}
	/* 4. many streams: 10 x 10 and 50 x 20, open then closed loop */
	{
		static const int shape[2][2] = { { 10, 10 }, { 50, 20 } };

		for (int k = 0; k < 2; k++) {
			struct mres mo, mcl;
			int nc = shape[k][0], per = shape[k][1];

			if (many_streams(ecmg_port(g), nc, per, 2 * k, true, &mo) != 0 ||
			    many_streams(ecmg_port(g), nc, per, 2 * k + 1, false, &mcl) != 0) {
				fprintf(stderr, "bench_ecmg: %d x %d streams failed\n", nc, per);
				goto stop;
			}
			fprintf(out, "| %d streams (%d connections x %d), 1 CW_provision/s each: latency p50 / p99 / max "
				"(%zu ECMs, %zu errors, %zu unanswered) | %.1f us / %.1f us / %.1f us |\n",
				nc * per, nc, per, mo.n, mo.errors, mo.missing, mo.p50, mo.p99, mo.max_us);
			fprintf(out, "| %d streams, closed loop (1 in flight per stream): rate, latency p50 / p99 | "
				"%.0f ECMs/s, %.1f us / %.1f us |\n", nc * per, mcl.rate, mcl.p50, mcl.p99);
			fprintf(out, "| %d streams: ECMG thread CPU time per ECM (open / closed loop) -> ECMs/s one core "
				"can serve | %.1f us / %.1f us -> %.0f ECMs/s |\n", nc * per, mo.ecmg_cpu_us, mcl.ecmg_cpu_us,
				mcl.ecmg_cpu_us > 0 ? 1e6 / mcl.ecmg_cpu_us : 0.0);
		}
	}
	{
		struct ecmg_stats st;

		ecmg_stats(g, &st);
		fprintf(out, "| ECM build time inside the ECMG (mean), ECMs late (> max_comp_time) | %.1f us, %llu |\n",
			st.ecms ? (double)st.ecm_us_total / (double)st.ecms : 0.0, (unsigned long long)st.ecms_late);
	}
	{
		double la[3] = { 0, 0, 0 };

		getloadavg(la, 3);
		fprintf(out, "\nMachine: %ld online cores, load average %.1f at the end; the clients share them "
			"with the ECMG thread, so latencies include scheduling delays from other processes.\n",
			sysconf(_SC_NPROCESSORS_ONLN), la[0]);
	}
	rc = 0;
stop:
	ecmg_stop(g);
	pthread_join(th, NULL);
done:
	if (rc != 0)
		fprintf(stderr, "bench_ecmg: failed\n");
	ecmg_free(g);
	ecm_keycache_free(kc);
	keystore_free(ks);
	free(lat);
	if (out != stdout)
		fclose(out);
	return rc;
}
