/*
 * bench/sms.c - the SMS's numbers (DESIGN.md section 4): CSV import rate
 * (rows/s, the whole base in one transaction), then over real HTTP on
 * 127.0.0.1 with keep-alive connections: REST GET card and REST subscribe
 * (requests/s, p50, p99), against the free CAS's GET API (GET /api.php)
 * measured in the same process as the reference. SQLite in a temp dir;
 * the server runs on its own thread (one event loop, as in the head-end),
 * CLIENTS client threads send one request at a time each.
 *
 * The import is timed on a file generated here (CARDS rows, new cards),
 * in wall time and in the process's CPU time (the machine may be shared),
 * against the per-card store calls (sms_card_add + the mask, as the import
 * did before its bulk path) run on REF_ROWS rows in the same process; then
 * a re-import of REF_ROWS existing cards (the update path). The HTTP
 * workloads then run on the imported base.
 *
 * Usage: bench_sms [RESULTS_FILE [CARDS]]   (markdown; stdout without
 * arguments; CARDS defaults to 1000000)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include "lib/log.h"
#include "lib/util.h"
#include "sms/csv.h"
#include "sms/http.h"
#include "sms/store.h"

#define CLIENTS 2
#define REQS_PER_CLIENT 10000
#define REF_ROWS 20000

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

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* rows lines of the benchmark's CSV (header included) into a new buffer. */
static char *make_csv(size_t first, size_t rows, size_t *len)
{
	size_t cap = rows * 160 + 256, n;
	char *csv = malloc(cap);

	if (!csv)
		return NULL;
	n = (size_t)snprintf(csv, cap, "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state\r\n");
	for (size_t i = first; i < first + rows; i++)
		n += (size_t)snprintf(csv + n, cap - n,
				      "%llu,Subscriber %zu,\"Street %zu, Town\",%08X,%d,1700000000,1800000000,%08zX,active\r\n",
				      2100000000ull + i, i, i % 977, (unsigned)(i * 2654435761u) & 0xFFu, (int)(i & 1), i);
	*len = n;
	return csv;
}

/* The reference: the same new cards through the per-card store calls, in
 * one transaction (what csv_import did per row before the bulk path, less
 * its per-row lookup). Rows per second. */
static double percard_ref(const char *db, size_t rows)
{
	struct sms_store *s = NULL;
	uint64_t t0, t1;
	int r;

	if (sms_store_open(db, &s) != 0)
		return 0;
	t0 = now_ns();
	r = sms_tx_begin(s);
	for (size_t i = 0; i < rows && r == 0; i++) {
		struct sms_card c = { .serial = 2100000000ull + i, .pair = i & 1, .start = 1700000000, .finish = 1800000000 };
		struct sms_card_change ac = { .has_ac = true, .access_criteria = (unsigned)(i * 2654435761u) & 0xFFu };

		snprintf(c.name, sizeof(c.name), "Subscriber %zu", i);
		snprintf(c.info, sizeof(c.info), "Street %zu, Town", i % 977);
		snprintf(c.chip_id, sizeof(c.chip_id), "%08zX", i);
		if ((r = sms_card_add(s, &c, "bench")) == 0)
			r = sms_card_change(s, c.serial, &ac, "bench", NULL);
	}
	r = sms_tx_end(s, r);
	t1 = now_ns();
	sms_store_close(s);
	return r == 0 ? (double)rows / ((double)(t1 - t0) / 1e9) : 0;
}

enum workload { W_GETAPI, W_REST_GET, W_REST_SUB };

struct client {
	uint16_t port;
	enum workload w;
	const char *key;
	size_t cards;
	unsigned seed;
	uint64_t lat[REQS_PER_CLIENT];
	size_t n, errors;
};

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

/* Read one HTTP/1.1 answer (headers + Content-Length body); its status. */
static int read_answer(int fd, char *buf, size_t cap)
{
	size_t got = 0, need = 0;
	char *sep = NULL;

	for (;;) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		if (!sep && (sep = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(buf, "Content-Length:");

			uint64_t body = 0;

			if (cl) { /* "Content-Length: N\r\n", N strictly */
				const char *q = cl + 15 + strspn(cl + 15, " \t");
				size_t nd = strspn(q, "0123456789");
				char num[21];

				if (nd == 0 || nd >= sizeof(num))
					return -1;
				memcpy(num, q, nd);
				num[nd] = '\0';
				if (parse_u64(num, 1u << 30, &body) != 0)
					return -1;
			}
			need = (size_t)(sep + 4 - buf) + (size_t)body;
		}
		if (sep && got >= need) { /* "HTTP/1.1 NNN" */
			uint64_t st = 0;
			char code[4] = { buf[9], buf[10], buf[11], 0 };

			return strncmp(buf, "HTTP/1.", 7) == 0 && parse_u64(code, 599, &st) == 0 ? (int)st : -1;
		}
		if (got + 1 >= cap)
			return -1;
	}
}

static void *client_run(void *arg)
{
	struct client *c = arg;
	char req[1024], resp[16384];
	int fd = tcp_connect(c->port);

	if (fd < 0) {
		c->errors = REQS_PER_CLIENT;
		return NULL;
	}
	for (size_t i = 0; i < REQS_PER_CLIENT; i++) {
		uint64_t serial = 2100000000ull + (uint64_t)(rand_r(&c->seed) % c->cards), t0;
		int len, st;

		if (c->w == W_GETAPI)
			len = snprintf(req, sizeof(req), "GET /api.php?api_key=%s&serial_no=%llu HTTP/1.1\r\nHost: b\r\n\r\n",
				       c->key, (unsigned long long)serial);
		else if (c->w == W_REST_GET)
			len = snprintf(req, sizeof(req), "GET /api/v1/cards/%llu HTTP/1.1\r\nHost: b\r\nX-API-Key: %s\r\n\r\n",
				       (unsigned long long)serial, c->key);
		else {
			char body[160];
			int bl = snprintf(body, sizeof(body), "{\"serial_no\":\"%llu\",\"package\":%d,\"start\":1700000000,"
					  "\"finish\":1800000000}", (unsigned long long)serial, rand_r(&c->seed) % 32);

			len = snprintf(req, sizeof(req), "POST /api/v1/subscriptions HTTP/1.1\r\nHost: b\r\nX-API-Key: %s\r\n"
				       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", c->key, bl, body);
		}
		t0 = now_ns();
		if (write(fd, req, (size_t)len) != len || (st = read_answer(fd, resp, sizeof(resp))) < 0) {
			c->errors++;
			break;
		}
		c->lat[c->n++] = now_ns() - t0;
		if (st != 200)
			c->errors++;
	}
	close(fd);
	return NULL;
}

struct result {
	double rps, p50_us, p99_us;
	size_t n, errors;
};

static struct result run_workload(uint16_t port, enum workload w, const char *key, size_t cards)
{
	static struct client cl[CLIENTS];
	pthread_t th[CLIENTS];
	struct result r = { 0 };
	uint64_t *all = malloc(sizeof(uint64_t) * CLIENTS * REQS_PER_CLIENT), t0, t1;
	size_t n = 0;

	t0 = now_ns();
	for (int i = 0; i < CLIENTS; i++) {
		cl[i] = (struct client){ .port = port, .w = w, .key = key, .cards = cards, .seed = 17u + (unsigned)i };
		pthread_create(&th[i], NULL, client_run, &cl[i]);
	}
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		memcpy(all + n, cl[i].lat, cl[i].n * sizeof(uint64_t));
		n += cl[i].n;
		r.errors += cl[i].errors;
	}
	t1 = now_ns();
	qsort(all, n, sizeof(uint64_t), cmp_u64);
	r.n = n;
	if (n) {
		r.rps = (double)n / ((double)(t1 - t0) / 1e9);
		r.p50_us = (double)all[n / 2] / 1e3;
		r.p99_us = (double)all[n * 99 / 100] / 1e3;
	}
	free(all);
	return r;
}

struct server {
	struct event_base *base;
	struct sms_http *http;
};

static void *server_run(void *arg)
{
	struct server *sv = arg;

	event_base_dispatch(sv->base);
	return NULL;
}

/* libevent is not built thread-aware here: the loop polls a flag. */
static _Atomic int stop_flag;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (stop_flag)
		event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	FILE *out = argc > 1 ? fopen(argv[1], "w") : stdout;
	size_t cards = 1000000, ref_rows;
	char dir[] = "/tmp/castellan-bench-sms-XXXXXX", db[128], refdb[128], key[65], cmd[160];
	struct sms_store *s = NULL;
	struct csv_result res;
	struct server sv = { 0 };
	struct result rg, rr, rs;
	pthread_t th;
	char *csv;
	size_t len = 0;
	uint64_t t0, t1;
	double c0, c1, import_s, import_cpu_s, ref_rps, upd_rps;
	struct event *stop;

	if (!out || !mkdtemp(dir))
		return 1;
	if (argc > 2) {
		uint64_t v;

		if (parse_u64(argv[2], 100000000, &v) != 0 || v == 0)
			return 2;
		cards = (size_t)v;
	}
	ref_rows = cards < REF_ROWS ? cards : REF_ROWS;
	log_set_level(LOG_LEVEL_WARN);
	snprintf(db, sizeof(db), "%s/sms.db", dir);
	snprintf(refdb, sizeof(refdb), "%s/ref.db", dir);
	ref_rps = percard_ref(refdb, ref_rows);
	if (sms_store_open(db, &s) != 0 || sms_user_add(s, "bench", "bench", NULL) != 0 ||
	    sms_apikey_create(s, "bench", 7, "bench", key) != 0)
		return 1;

	/* The base, as a billing system would send it. */
	if (!(csv = make_csv(0, cards, &len)))
		return 1;
	t0 = now_ns();
	c0 = cpu_s();
	if (csv_import(s, csv, len, "bench", NULL, NULL, &res) != 0) {
		fprintf(stderr, "import failed: line %zu: %s\n", res.line, res.why);
		return 1;
	}
	c1 = cpu_s();
	t1 = now_ns();
	import_s = (double)(t1 - t0) / 1e9;
	import_cpu_s = c1 - c0;
	free(csv);

	/* The update path: the first ref_rows cards again. */
	if (!(csv = make_csv(0, ref_rows, &len)))
		return 1;
	t0 = now_ns();
	if (csv_import(s, csv, len, "bench", NULL, NULL, &res) != 0 || res.updated != ref_rows) {
		fprintf(stderr, "re-import failed: line %zu: %s\n", res.line, res.why);
		return 1;
	}
	t1 = now_ns();
	upd_rps = (double)ref_rows / ((double)(t1 - t0) / 1e9);
	free(csv);

	sv.base = event_base_new();
	if (!sv.base || sms_http_new(sv.base, s, "127.0.0.1:0", &sv.http) != 0)
		return 1;
	stop = event_new(sv.base, -1, EV_PERSIST, on_tick, sv.base);
	{
		struct timeval tv = { 0, 20000 };

		event_add(stop, &tv);
	}
	pthread_create(&th, NULL, server_run, &sv);
	rg = run_workload(sms_http_port(sv.http), W_GETAPI, key, cards);
	rr = run_workload(sms_http_port(sv.http), W_REST_GET, key, cards);
	rs = run_workload(sms_http_port(sv.http), W_REST_SUB, key, cards);
	stop_flag = 1;
	pthread_join(th, NULL);
	event_free(stop);
	sms_http_free(sv.http);
	event_base_free(sv.base);
	sms_store_close(s);

	fprintf(out, "## SMS (bench/sms.c)\n\n");
	fprintf(out, "SQLite (WAL, synchronous=NORMAL, 64 MiB cache, 256 MiB mmap) in /tmp, a base of %zu cards "
		     "imported by CSV; HTTP on 127.0.0.1, server on one thread, %d client threads with one keep-alive "
		     "connection each, one request at a time, %d requests per client, random cards of the base.\n\n",
		cards, CLIENTS, REQS_PER_CLIENT);
	fprintf(out, "| measure | requests | errors | requests/s | p50 (us) | p99 (us) | ratio to GET API |\n");
	fprintf(out, "|---|---|---|---|---|---|---|\n");
	fprintf(out, "| GET /api.php card (reference) | %zu | %zu | %.0f | %.0f | %.0f | 1.00 |\n", rg.n, rg.errors,
		rg.rps, rg.p50_us, rg.p99_us);
	fprintf(out, "| REST GET /api/v1/cards/{serial} | %zu | %zu | %.0f | %.0f | %.0f | %.2f |\n", rr.n, rr.errors,
		rr.rps, rr.p50_us, rr.p99_us, rg.rps > 0 ? rr.rps / rg.rps : 0);
	fprintf(out, "| REST POST /api/v1/subscriptions | %zu | %zu | %.0f | %.0f | %.0f | %.2f |\n", rs.n, rs.errors,
		rs.rps, rs.p50_us, rs.p99_us, rg.rps > 0 ? rs.rps / rg.rps : 0);
	fprintf(out, "\n| CSV import, 9 columns, one transaction | rows | seconds (wall) | CPU seconds | rows/s (wall) "
		     "| ratio to per-card calls |\n|---|---|---|---|---|---|\n");
	fprintf(out, "| new cards (bulk path) | %zu | %.1f | %.1f | %.0f | %.2f |\n", cards, import_s, import_cpu_s,
		(double)cards / import_s, ref_rps > 0 ? (double)cards / import_s / ref_rps : 0);
	fprintf(out, "| reference: sms_card_add + mask per card | %zu | | | %.0f | 1.00 |\n", ref_rows, ref_rps);
	fprintf(out, "| existing cards again (update path) | %zu | | | %.0f | %.2f |\n\n", ref_rows, upd_rps,
		ref_rps > 0 ? upd_rps / ref_rps : 0);
	if (out != stdout)
		fclose(out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 && rg.errors + rr.errors + rs.errors == 0 ? 0 : 1;
}
