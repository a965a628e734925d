/*
 * carousel.c - benchmark of the EMM carousel (src/headend/carousel.h):
 * unique EMMs built and emitted per second on one core, and the time to
 * cycle a base of N cards (in-memory source: this measures the carousel and
 * the EMM build, not the database), with the reference figure of plain
 * emm_build_unique calls in the same process (the carousel's overhead is
 * the ratio). Also the on-air time of one cycle at a given bandwidth,
 * computed from the TS bytes the carousel counted; and group EMMs (the
 * default) against --no-group-emms (config no_group): card EMMs/s and TS
 * bytes per card per cycle for 1 package, 2 packages and commands only
 * (blocked cards: empty grant + BLOCK).
 *
 * usage: bench_carousel [RESULTS_FILE] [N_CARDS]   (default stdout, 200000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cas/emm.h"
#include "cas/keys.h"
#include "headend/carousel.h"
#include "headend/scheduler.h"
#include "lib/util.h"

#define T0_MS (1700000000ull * 1000ull)

enum base_kind { MIX_1_2, ONE_PKG, TWO_PKG, COMMANDS };

struct src {
	size_t n;
	enum base_kind kind;
};

static void card_at(enum base_kind kind, size_t i, int64_t now_s, struct carousel_card *k)
{
	memset(k, 0, sizeof(*k));
	k->serial = 2100000000ull + i + 1;
	k->state = kind == COMMANDS ? CAROUSEL_BLOCKED : CAROUSEL_ACTIVE;
	if (kind == COMMANDS)
		return;
	k->grant.packages = kind == ONE_PKG ? 1u : kind == TWO_PKG ? 3u
				: (uint32_t)(1u << (i % 4)) | 1u; /* 1 or 2 packages */
	k->grant.start_s = (uint64_t)(now_s - 86400);
	k->grant.finish_s = (uint64_t)(now_s + 30 * 86400);
}

static int page(void *ctx, uint64_t after, int64_t now_s, struct carousel_card *out, size_t max, size_t *n)
{
	struct src *s = ctx;
	size_t i = after >= 2100000000ull ? (size_t)(after - 2100000000ull) : 0;

	*n = 0;
	for (; i < s->n && *n < max; i++)
		card_at(s->kind, i, now_s, &out[(*n)++]);
	return 0;
}

static int get(void *ctx, uint64_t serial, int64_t now_s, struct carousel_card *out)
{
	card_at(((struct src *)ctx)->kind, (size_t)(serial - 2100000001ull), now_s, out);
	return 0;
}

static int emit(void *ctx, const uint8_t *sec, size_t len)
{
	uint64_t *sum = ctx;

	*sum += sec[len - 1] + len;
	return 0;
}

/* Two cycles over a base of kind (the second timed: same numbers); card
 * EMMs/s of that cycle and TS bytes per card per cycle. */
static int run_kind(struct emm_issuer *is, size_t ncards, enum base_kind kind, bool no_group, double *per_s,
	double *bytes_per_card, double *sections_per_cycle, uint64_t *sum)
{
	struct src s = { ncards, kind };
	struct carousel_config cc = { .epoch_seconds = 7 * 86400, .page = 1000, .no_group = no_group };
	struct carousel_source cs = { &s, page, get, NULL };
	struct carousel_stats st, st1;
	struct carousel *c = NULL;
	uint64_t t0, us;
	int r;

	if ((r = carousel_new(&cc, is, &cs, &c)) != 0)
		return r;
	do {
		if ((r = carousel_tick(c, T0_MS, emit, sum, NULL)) != 0)
			goto out;
		carousel_stats(c, &st1);
	} while (st1.cycles == 0);
	t0 = now_mono_us();
	do {
		if ((r = carousel_tick(c, T0_MS + 1000, emit, sum, NULL)) != 0)
			goto out;
		carousel_stats(c, &st);
	} while (st.cycles < 2);
	us = now_mono_us() - t0;
	/* the last tick may run into the next cycle: figures per card EMM sent */
	uint64_t recs = st.records - st1.records;

	*per_s = (double)recs * 1e6 / (double)(us ? us : 1);
	*bytes_per_card = (double)(st.ts_bytes - st1.ts_bytes) / (double)(recs ? recs : 1);
	*sections_per_cycle = (double)(st.emms - st1.emms) * (double)ncards / (double)(recs ? recs : 1);
out:
	carousel_free(c);
	return r;
}

int main(int argc, char **argv)
{
	FILE *out = stdout;
	size_t ncards = 200000;
	struct keystore *ks = NULL;
	struct emm_issuer *is = NULL;
	struct carousel *c = NULL;
	struct src s;
	struct carousel_config cc = { .epoch_seconds = 7 * 86400, .page = 1000 };
	struct carousel_source cs;
	struct carousel_stats st;
	uint64_t sum = 0, t0, t1, ref_us, car_us;
	uint8_t buf[EMM_MAX_SECTION];
	size_t len;
	int rc = 1;

	if (argc > 1 && !(out = fopen(argv[1], "a"))) {
		perror(argv[1]);
		return 1;
	}
	if (argc > 2) {
		uint64_t v;

		if (parse_u64(argv[2], 100000000, &v) != 0 || v == 0)
			return 2;
		ncards = (size_t)v;
	}
	s.n = ncards;
	s.kind = MIX_1_2;
	cs = (struct carousel_source){ &s, page, get, NULL };
	if (keystore_generate(0x4ADC, 7 * 86400, &ks) != 0 || emm_issuer_new(ks, &is) != 0 ||
	    carousel_new(&cc, is, &cs, &c) != 0)
		goto done;
	/* reference: emm_build_unique alone, same cards */
	t0 = now_mono_us();
	for (size_t i = 0; i < ncards; i++) {
		struct carousel_card k;

		card_at(MIX_1_2, i, (int64_t)(T0_MS / 1000u), &k);
		if (emm_build_unique(is, k.serial, 1, &k.grant, T0_MS, buf, sizeof(buf), &len) != 0)
			goto done;
		sum += buf[len - 1];
	}
	ref_us = now_mono_us() - t0;
	/* the carousel: one whole cycle (first cycle numbers every card) */
	t0 = now_mono_us();
	do {
		if (carousel_tick(c, T0_MS, emit, &sum, NULL) != 0)
			goto done;
		carousel_stats(c, &st);
	} while (st.cycles == 0);
	t1 = now_mono_us();
	car_us = t1 - t0;
	/* a second cycle: same seqs, no renumbering */
	t0 = now_mono_us();
	do {
		if (carousel_tick(c, T0_MS + 1000, emit, &sum, NULL) != 0)
			goto done;
		carousel_stats(c, &st);
	} while (st.cycles < 2);
	uint64_t car2_us = now_mono_us() - t0;
	double bytes_per_cycle = (double)st.ts_bytes / 2.0;

	fprintf(out, "## carousel (bench/carousel.c), %zu cards, 1-2 packages each, group EMMs on (default), one core\n\n", ncards);
	fprintf(out, "| what | figure |\n|---|---|\n");
	fprintf(out, "| emm_build_unique alone (reference) | %.0f EMMs/s |\n", (double)ncards * 1e6 / (double)ref_us);
	fprintf(out, "| carousel, first cycle (numbering every card) | %.0f EMMs/s, cycle %.2f s |\n",
		(double)ncards * 1e6 / (double)car_us, (double)car_us / 1e6);
	fprintf(out, "| carousel, next cycle (same numbers) | %.0f EMMs/s, cycle %.2f s |\n",
		(double)ncards * 1e6 / (double)car2_us, (double)car2_us / 1e6);
	fprintf(out, "| carousel / reference | %.2f |\n", (double)ref_us / (double)car2_us);
	fprintf(out, "| on air per cycle | %.1f MB of TS (%.0f B per card) |\n", bytes_per_cycle / 1e6,
		bytes_per_cycle / (double)ncards);
	fprintf(out, "| cycle on air at 100 kbit/s / 1 Mbit/s / 10 Mbit/s | %.0f s / %.0f s / %.0f s |\n",
		bytes_per_cycle * 8 / 100e3, bytes_per_cycle * 8 / 1e6, bytes_per_cycle * 8 / 10e6);
	fprintf(out, "\nGroup EMMs (default) against `--no-group-emms`, same cards, second cycle (EMMs/s counts card\n"
		     "EMMs, packed or not; bytes are TS bytes on the EMM PID per card per cycle):\n\n");
	fprintf(out, "| base | grouped EMMs/s | unique EMMs/s | grouped B/card | unique B/card | bytes saved |"
		     " sections/cycle grouped / unique |\n|---|---|---|---|---|---|---|\n");
	{
		static const char *const names[] = { "1-2 packages (mixed)", "1 package", "2 packages",
			"commands only (blocked)" };

		for (int kind = MIX_1_2; kind <= COMMANDS; kind++) {
			double gps, ups, gb, ub, gsec, usec;

			if (run_kind(is, ncards, (enum base_kind)kind, false, &gps, &gb, &gsec, &sum) != 0 ||
			    run_kind(is, ncards, (enum base_kind)kind, true, &ups, &ub, &usec, &sum) != 0)
				goto done;
			fprintf(out, "| %s | %.0f | %.0f | %.1f | %.1f | %.0f %% | %.0f / %.0f |\n", names[kind], gps, ups,
				gb, ub, ub > 0 ? 100.0 * (ub - gb) / ub : 0.0, gsec, usec);
		}
	}
	fprintf(out, "\n(checksum %llu)\n\n", (unsigned long long)(sum & 0xFF));
	rc = 0;
done:
	carousel_free(c);
	emm_issuer_free(is);
	keystore_free(ks);
	if (out != stdout)
		fclose(out);
	return rc;
}
