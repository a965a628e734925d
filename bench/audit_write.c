/*
 * bench/audit_write.c - what one audited SMS write costs (issue 13 item 6:
 * the hash-chained audit log must not slow the API): CALLS calls each of
 * sms_subscribe and sms_card_set_state (one transaction and one chained
 * audit entry with the card's snapshot each, as a REST write makes) on
 * CARDS cards, in process, wall time per call (p50, p99, mean) and this
 * process's CPU time per call; on SQLite (a temp dir) and on PostgreSQL
 * (CASTELLAN_BENCH_PG=URI, else a throwaway server started here on a unix
 * socket, fsync off, as tests/pgtest.h does; skipped if none is installed).
 * Then the same calls from two connections at once (threads), which is
 * where the chain's serialization shows.
 *
 * Usage: bench_audit_write [RESULTS_FILE]   (markdown; stdout without one)
 * Environment: CALLS (default 3000), CARDS (default 2000), CASTELLAN_BENCH_PG.
 */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/util.h"
#include "sms/store.h"

#define FIRST 2100000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static size_t env_n(const char *name, size_t dflt)
{
	const char *v = getenv(name);

	uint64_t n;

	return v && *v && parse_u64(v, SIZE_MAX, &n) == 0 ? (size_t)n : dflt;
}

struct res {
	double p50, p99, mean, cpu;
	size_t errors;
};

static void summarize(uint64_t *lat, size_t n, double cpu, struct res *r)
{
	double sum = 0;

	qsort(lat, n, sizeof(*lat), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)lat[i];
	r->p50 = (double)lat[n / 2] / 1000.0;
	r->p99 = (double)lat[n * 99 / 100] / 1000.0;
	r->mean = sum / (double)n / 1000.0;
	r->cpu = cpu / (double)n * 1e6;
}

/* kind 0: sms_subscribe; 1: sms_card_set_state. lat gets n wall times. */
static size_t run_calls(struct sms_store *s, int kind, size_t n, size_t cards, unsigned seed, uint64_t *lat)
{
	size_t errors = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t serial = FIRST + (uint64_t)((seed * 7919u + i * 104729u) % cards), t0 = now_ns();
		int r;

		if (kind == 0) {
			struct sms_subscription sub = { serial, (uint32_t)(i % 32), 1700000000 + (int64_t)i, 1900000000 };

			r = sms_subscribe(s, &sub, "bench");
		} else {
			r = sms_card_set_state(s, serial, (i / cards) % 2 ? SMS_CARD_ACTIVE : SMS_CARD_BLOCKED, "bench");
		}
		lat[i] = now_ns() - t0;
		if (r != 0)
			errors++;
	}
	return errors;
}

struct thr {
	const char *uri;
	int kind;
	size_t n, cards;
	unsigned seed;
	uint64_t *lat;
	size_t errors;
};

static void *thr_run(void *arg)
{
	struct thr *t = arg;
	struct sms_store *s = NULL;

	if (sms_store_open(t->uri, &s) != 0) {
		t->errors = t->n;
		return NULL;
	}
	t->errors = run_calls(s, t->kind, t->n, t->cards, t->seed, t->lat);
	sms_store_close(s);
	return NULL;
}

static int bench_backend(FILE *out, const char *label, const char *uri, size_t calls, size_t cards)
{
	struct sms_store *s = NULL;
	uint64_t *lat = calloc(calls * 2, sizeof(*lat));
	static const char *const kinds[] = { "sms_subscribe", "sms_card_set_state" };
	int rc = -1;

	if (!lat || sms_store_open(uri, &s) != 0) {
		fprintf(stderr, "bench_audit_write: cannot open %s\n", label);
		goto out;
	}
	if (sms_tx_begin(s) != 0)
		goto out;
	for (size_t i = 0; i < cards; i++) {
		struct sms_card c = { 0 };

		c.serial = FIRST + i;
		c.state = SMS_CARD_ACTIVE;
		c.start = 1700000000;
		c.finish = 1900000000;
		if (sms_card_add(s, &c, "bench") != 0) {
			if (sms_tx_end(s, -1) != 0) { /* rolled back */ }
			fprintf(stderr, "bench_audit_write: card add failed\n");
			goto out;
		}
	}
	if (sms_tx_end(s, 0) != 0)
		goto out;
	(void)run_calls(s, 0, calls / 10 + 1, cards, 99, lat); /* warm the caches */
	for (int k = 0; k < 2; k++) {
		struct res r;
		double c0 = cpu_s();

		r.errors = run_calls(s, k, calls, cards, 1, lat);
		summarize(lat, calls, cpu_s() - c0, &r);
		fprintf(out, "| %s | %s | 1 | %zu | %.0f | %.0f | %.0f | %.1f | %zu |\n", label, kinds[k], calls, r.p50,
			r.p99, r.mean, r.cpu, r.errors);
	}
	/* two connections at once: the chain's appends are serialized */
	for (int k = 0; k < 2; k++) {
		struct thr t[2];
		pthread_t th[2];
		struct res r;
		double c0 = cpu_s();
		uint64_t w0 = now_ns();

		for (int i = 0; i < 2; i++) {
			t[i] = (struct thr){ uri, k, calls / 2, cards, (unsigned)(i + 7), lat + (size_t)i * (calls / 2), 0 };
			pthread_create(&th[i], NULL, thr_run, &t[i]);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		summarize(lat, (calls / 2) * 2, cpu_s() - c0, &r);
		fprintf(out, "| %s | %s | 2 | %zu | %.0f | %.0f | %.0f | %.1f | %zu (%.0f calls/s) |\n", label, kinds[k],
			(calls / 2) * 2, r.p50, r.p99, r.mean, r.cpu, t[0].errors + t[1].errors,
			(double)((calls / 2) * 2) / ((double)(now_ns() - w0) / 1e9));
	}
	{
		struct sms_audit_verify v;

		memset(&v, 0, sizeof(v));
		if (sms_audit_verify(s, NULL, &v) != 0 || v.bad_seq != 0) {
			fprintf(stderr, "bench_audit_write: %s: the audit chain does not verify\n", label);
			goto out;
		}
		fprintf(out, "| %s | (chain verified: %" PRId64 " entries) | | | | | | | |\n", label, v.entries);
	}
	rc = 0;
out:
	sms_store_close(s);
	free(lat);
	return rc;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* The newest /usr/lib/postgresql/N/bin with initdb, or NULL. */
static const char *pg_bindir(void)
{
	static char best[320];
	int best_v = -1;
	DIR *d = opendir("/usr/lib/postgresql");
	struct dirent *e;

	if (!d)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		char p[600];
		uint64_t u = 0;
		int v = parse_u64(e->d_name, 1000, &u) == 0 ? (int)u : -1;

		snprintf(p, sizeof(p), "/usr/lib/postgresql/%s/bin/initdb", e->d_name);
		if (v > best_v && access(p, X_OK) == 0) {
			best_v = v;
			snprintf(best, sizeof(best), "/usr/lib/postgresql/%s/bin", e->d_name);
		}
	}
	closedir(d);
	return best_v >= 0 ? best : NULL;
}

int main(int argc, char **argv)
{
	FILE *out = stdout;
	size_t calls = env_n("CALLS", 3000), cards = env_n("CARDS", 2000);
	char dir[] = "/tmp/castellan-auditw-XXXXXX", uri[600];
	const char *as = geteuid() == 0 ? "runuser -u postgres -- " : "", *bin;
	int rc = 0;

	log_set_level(LOG_LEVEL_ERROR);
	if (calls < 10 || cards < 1 || !mkdtemp(dir))
		return 1;
	if (argc > 1 && !(out = fopen(argv[1], "w")))
		return 1;
	fprintf(out, "## Audited SMS writes (bench/audit_write.c)\n\n");
	fprintf(out, "In process, %zu calls each on %zu cards; one transaction and one chained audit entry (with the\n"
		     "card's snapshot) per call. Wall time per call in µs; CPU = this process's CPU per call (the\n"
		     "PostgreSQL server's own is not in it). conns 2 = two connections (threads) at once.\n\n",
		calls, cards);
	fprintf(out, "| backend | call | conns | calls | p50 µs | p99 µs | mean µs | CPU µs | errors |\n");
	fprintf(out, "|---|---|---|---|---|---|---|---|---|\n");
	snprintf(uri, sizeof(uri), "sqlite:%s/sms.db", dir);
	if (bench_backend(out, "SQLite", uri, calls, cards) != 0)
		rc = 1;
	if (getenv("CASTELLAN_BENCH_PG")) {
		if (bench_backend(out, "PostgreSQL", getenv("CASTELLAN_BENCH_PG"), calls, cards) != 0)
			rc = 1;
	} else if ((bin = pg_bindir()) != NULL) {
		int port = 56000 + (int)(getpid() % 4000);

		(void)sh("chmod 755 %s && mkdir -p %s/pg && chown postgres %s/pg 2>/dev/null", dir, dir, dir);
		if (sh("%s%s/initdb -D %s/pg/data -A trust -U castellan -E UTF8 --no-sync >%s/pg/initdb.log 2>&1", as,
		       bin, dir, dir) != 0 ||
		    sh("%s%s/pg_ctl -D %s/pg/data -l %s/pg/server.log -w -t 60 -o \"-p %d -k %s/pg -c listen_addresses='' "
		       "-c fsync=off\" start >/dev/null 2>&1",
		       as, bin, dir, dir, port, dir) != 0) {
			fprintf(stderr, "bench_audit_write: could not start PostgreSQL (%s/pg)\n", dir);
			rc = 1;
		} else {
			snprintf(uri, sizeof(uri), "postgres:host=%s/pg port=%d dbname=postgres user=castellan", dir, port);
			if (bench_backend(out, "PostgreSQL (unix socket, fsync off)", uri, calls, cards) != 0)
				rc = 1;
			(void)sh("%s%s/pg_ctl -D %s/pg/data -m immediate -w stop >/dev/null 2>&1", as, bin, dir);
		}
	} else {
		fprintf(out, "| PostgreSQL | not installed: skipped | | | | | | | |\n");
	}
	fprintf(out, "\n");
	if (out != stdout)
		fclose(out);
	(void)sh("rm -rf %s", dir);
	return rc;
}
