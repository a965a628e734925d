/*
 * bench/report_cas.c - the CAS side's count per channel and package
 * (src/sms/report_cas.c, Schedule III A.13) at scale on SQLite: CARDS
 * cards added by the bulk path (one audit snapshot each, as an import
 * writes), each with a bundle of packages 0..31 (one of 64 bundles) and one
 * card in ten an extended package (40..47); CHANNELS channels, each in one
 * or two of the 32 packages; then every card's grant written to emm_seq as
 * the head-end records it (sms_emm_seq_next_many, one transaction per
 * 10,000), except the last UNSENT cards. Timed: `report cas-channels` (the
 * CAS side alone, RUNS times: min and median) and `report cas-match` (plus
 * the SMS side's pass over the log; once), wall and CPU seconds, and the
 * process's peak RSS after each. cas-match must find exactly the channels
 * and packages of the UNSENT cards, by their count (checked, not assumed).
 *
 * Usage: bench_report_cas [RESULTS_FILE]   (markdown; stdout without one)
 * Environment: CARDS (default 1000000), CHANNELS (default 200), RUNS (3),
 * UNSENT (1000), CASTELLAN_BENCH_DB (a store URI, e.g. an empty PostgreSQL
 * database: postgres:...; default a SQLite file in a temp dir).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "lib/log.h"
#include "lib/util.h"
#include "sms/report.h"
#include "sms/report_cas.h"
#include "sms/store.h"

#define FIRST 2100000000ull
#define SEQ_TX 10000

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

static double rss_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

static size_t env_num(const char *name, size_t def, size_t max)
{
	const char *v = getenv(name);
	uint64_t n;

	if (!v || parse_u64(v, max, &n) != 0 || n == 0)
		return def;
	return (size_t)n;
}

/* Card i's packages: bundle (mask) and maybe one extended id (0: none). */
static uint32_t card_mask(size_t i)
{
	uint32_t x = (uint32_t)(i * 2654435761u) >> 26; /* 0..63 */

	return (1u << (x % 32)) | (x >= 32 ? 1u << ((x * 7) % 32) : 0) | 1u; /* package 0: the basic tier */
}

static uint32_t card_ext(size_t i)
{
	return i % 10 == 3 ? 40 + (uint32_t)(i / 10 % 8) : 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	FILE *out = argc > 1 ? fopen(argv[1], "w") : stdout;
	const size_t cards = env_num("CARDS", 1000000, 100000000), nch = env_num("CHANNELS", 200, 65535),
		     runs = env_num("RUNS", 3, 100), unsent = env_num("UNSENT", 1000, 1000000);
	char dir[] = "/tmp/castellan-bench-rcas-XXXXXX", db[128], cmd[160];
	const int64_t now = (int64_t)time(NULL), start = now - 86400, finish = now + 30 * 86400;
	struct sms_store *s = NULL;
	struct sms_bulk *b = NULL;
	struct sms_report_params p;
	struct sms_table *t = NULL;
	struct sms_emm_seq_req *q = NULL;
	double *wall = NULL, add_s, seq_s, match_s, match_cpu, rss_cas, rss_match, cas_cpu = 0;
	int64_t want_ch = 0, want_pkg = 0, diff_rows = 0;
	uint64_t t0;
	double c0;

	if (!out || unsent >= cards || !mkdtemp(dir) || !(wall = calloc(runs, sizeof(*wall))) ||
	    !(q = calloc(SEQ_TX, sizeof(*q))))
		return 1;
	log_set_level(LOG_LEVEL_WARN);
	snprintf(db, sizeof(db), "%s/sms.db", dir);
	if (sms_store_open(getenv("CASTELLAN_BENCH_DB") ? getenv("CASTELLAN_BENCH_DB") : db, &s) != 0)
		return 1;
	for (uint32_t k = 40; k < 48; k++) {
		char name[16];

		snprintf(name, sizeof(name), "ext-%u", (unsigned)k);
		if (sms_package_add(s, k, name, "bench") != 0)
			return 1;
	}
	for (size_t c = 0; c < nch; c++) {
		char name[24];
		uint32_t ac = (1u << (c % 32)) | (c % 5 == 0 ? 1u << ((c / 32 + 3) % 32) : 0);

		snprintf(name, sizeof(name), "ch-%zu", c);
		if (sms_channel_set(s, (uint16_t)(1000 + c), name, ac, "bench") != 0)
			return 1;
	}

	/* the base: bulk path, one transaction */
	t0 = now_ns();
	if (sms_tx_begin(s) != 0 || sms_bulk_new(s, "bench", &b) != 0)
		return 1;
	for (size_t i = 0; i < cards; i++) {
		struct sms_card c = { .serial = FIRST + i, .state = SMS_CARD_ACTIVE, .start = start, .finish = finish,
				      .access_criteria = card_mask(i) };
		uint32_t ext = card_ext(i);

		if (sms_bulk_card_add(b, &c, ext ? &ext : NULL, ext ? 1 : 0) != 0)
			return 1;
	}
	if (sms_bulk_flush(b) != 0 || sms_tx_end(s, 0) != 0)
		return 1;
	sms_bulk_free(b);
	add_s = (double)(now_ns() - t0) / 1e9;

	/* the CAS side: the head-end's grant per card, all but the last `unsent` */
	t0 = now_ns();
	for (size_t i = 0; i < cards - unsent;) {
		size_t n = 0;

		if (sms_tx_begin(s) != 0)
			return 1;
		for (; n < SEQ_TX && i < cards - unsent; n++, i++) {
			uint32_t ext = card_ext(i);

			memset(&q[n], 0, sizeof(q[n]));
			q[n] = (struct sms_emm_seq_req){ .serial = FIRST + i, .step = 1, .want = 1, .has_sent = true,
							 .sent_packages = card_mask(i), .sent_start = start,
							 .sent_finish = finish, .sent_next = ext ? 1 : 0 };
			q[n].sent_ext[0] = (uint16_t)ext;
		}
		if (sms_emm_seq_next_many(s, q, n) != 0 || sms_tx_end(s, 0) != 0)
			return 1;
	}
	seq_s = (double)(now_ns() - t0) / 1e9;
	/* what the match must find: the unsent cards' channels and packages */
	{
		int64_t pk[48] = { 0 };

		for (size_t i = cards - unsent; i < cards; i++) {
			uint32_t m = card_mask(i);

			for (unsigned k = 0; k < 32; k++)
				pk[k] += m >> k & 1;
			if (card_ext(i))
				pk[card_ext(i)]++;
		}
		for (unsigned k = 0; k < 48; k++)
			want_pkg += pk[k] != 0;
		for (size_t c = 0; c < nch; c++) {
			uint32_t ac = (1u << (c % 32)) | (c % 5 == 0 ? 1u << ((c / 32 + 3) % 32) : 0);
			bool any = false;

			for (size_t i = cards - unsent; i < cards && !any; i++)
				any = (card_mask(i) & ac) != 0;
			want_ch += any;
		}
	}

	sms_report_params_init(&p);
	p.at_s = now;
	for (size_t r = 0; r < runs; r++) {
		c0 = cpu_s();
		t0 = now_ns();
		if (sms_report_run(s, "cas-channels", &p, &t) != 0)
			return 1;
		wall[r] = (double)(now_ns() - t0) / 1e9;
		cas_cpu += cpu_s() - c0;
		if (t->nrows != nch + 40) /* channels, packages 0..31 and 40..47 */
			return 1;
		sms_table_free(t);
	}
	rss_cas = rss_mib();
	c0 = cpu_s();
	t0 = now_ns();
	if (sms_report_run(s, "cas-match", &p, &t) != 0)
		return 1;
	match_s = (double)(now_ns() - t0) / 1e9;
	match_cpu = cpu_s() - c0;
	rss_match = rss_mib();
	for (size_t i = 0; i < t->nrows; i++)
		diff_rows += strcmp(t->cells[i * t->ncols + t->ncols - 1], "0") != 0;
	sms_table_free(t);
	qsort(wall, runs, sizeof(*wall), cmp_d);

	fprintf(out, "## CAS-side report per channel (bench/report_cas.c, %s)\n\n", sms_store_backend(s));
	fprintf(out, "| cards | channels | bulk add (s) | emm_seq rows written (s) | cas-channels min / median (s) |"
		     " CPU per run (s) | peak RSS (MiB) | cas-match (s, CPU s) | peak RSS after (MiB) | rows differing"
		     " (want) |\n|---|---|---|---|---|---|---|---|---|---|\n");
	fprintf(out, "| %zu | %zu | %.1f | %.1f | %.2f / %.2f | %.2f | %.0f | %.1f, %.1f | %.0f | %" PRId64 " (%" PRId64
		     ") |\n",
		cards, nch, add_s, seq_s, wall[0], wall[runs / 2], cas_cpu / (double)runs, rss_cas, match_s, match_cpu,
		rss_match, diff_rows, want_ch + want_pkg);
	sms_store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(wall);
	free(q);
	if (out != stdout)
		fclose(out);
	return diff_rows == want_ch + want_pkg ? 0 : 3;
}
