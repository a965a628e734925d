/*
 * bench/ecmg.c - the ECMG's numbers (DESIGN.md section 4): CW_provision ->
 * ECM_response latency (p50/p99) and ECMs per second, over one connection
 * (one request at a time, and pipelined) and over N concurrent connections
 * (one client thread each), against the raw ecm_build rate measured in the
 * same process as the reference. ECMG in a thread on 127.0.0.1, real TCP.
 *
 * Usage: bench_ecmg [RESULTS_FILE]   (markdown; stdout without an argument)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
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

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int send_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_n(int fd, uint8_t *b, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, b, n, 0);

		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
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
	return be16(buf + 1);
}

static size_t mk_cw(uint8_t *b, uint16_t ch, uint16_t cp)
{
	struct sc_writer sw;
	uint8_t comb[10] = { 0 }, ac[4] = { 0, 0, 0, 3 };
	size_t n = 0;

	sc_begin(&sw, b, 256, 2, SC_ECM_CW_PROVISION);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
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

/* channel_setup + stream_setup on a new connection; fd or -1. */
static int open_session(uint16_t port, uint16_t ch)
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
	sc_begin(&sw, b, sizeof(b), 2, SC_ECM_STREAM_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_ID, ch);
	sc_put_u16(&sw, SC_P_NOMINAL_CP_DURATION, 100);
	if (sc_finish(&sw, &n) != 0 || send_all(fd, b, n) != 0 || recv_msg(fd, b, sizeof(b)) != SC_ECM_STREAM_STATUS)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
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
	double p50, p99, raw_rate, seq_rate, pipe_rate;
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
	}

	ecmg_config_init(&cfg);
	cfg.listen = "127.0.0.1:0";
	cfg.ks = ks;
	cfg.max_comp_time_ms = 1000;
	if (ecmg_new(&cfg, &g) != 0 || ecmg_start(g) != 0 || pthread_create(&th, NULL, ecmg_thread, g) != 0)
		goto done;

	fprintf(out, "## ECMG (bench_ecmg)\n\n");
	fprintf(out, "CW_provision -> ECM_response over TCP on 127.0.0.1, ECMG in one thread, ECMs with 2 packages "
		     "(CSA2, one TS packet each). Reference: `ecm_build` alone in the same process.\n\n");
	fprintf(out, "| measure | value |\n|---|---|\n");
	fprintf(out, "| reference: ecm_build alone | %.0f ECMs/s |\n", raw_rate);

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
	fprintf(out, "| 1 connection, sequential: rate | %.0f ECMs/s (%.0f%% of reference) |\n", seq_rate,
		100.0 * seq_rate / raw_rate);

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
		fprintf(out, "| 1 connection, %d in flight: rate | %.0f ECMs/s (%.0f%% of reference) |\n", PIPE_WINDOW,
			pipe_rate, 100.0 * pipe_rate / raw_rate);
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
	{
		struct ecmg_stats st;

		ecmg_stats(g, &st);
		fprintf(out, "| ECM build time inside the ECMG (mean), ECMs late (> max_comp_time) | %.1f us, %llu |\n",
			st.ecms ? (double)st.ecm_us_total / (double)st.ecms : 0.0, (unsigned long long)st.ecms_late);
	}
	fprintf(out, "\nMachine: %ld online cores; the clients share them with the ECMG thread.\n",
		sysconf(_SC_NPROCESSORS_ONLN));
	rc = 0;
stop:
	ecmg_stop(g);
	pthread_join(th, NULL);
done:
	if (rc != 0)
		fprintf(stderr, "bench_ecmg: failed\n");
	ecmg_free(g);
	keystore_free(ks);
	free(lat);
	if (out != stdout)
		fclose(out);
	return rc;
}
