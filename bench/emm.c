/*
 * bench/emm.c - the EMM generator's numbers (DESIGN.md section 4, issue 3
 * item 10): unique EMMs built per second on one core (2 packages x 2 epochs:
 * the entitlement, 4 package keys, AES-128-GCM under K_card), for the fast
 * seal (AES-NI + OpenSSL GCM mode) against the reference seal (OpenSSL EVP
 * re-keyed per card) in the same process, in alternating rounds (the
 * machine is shared: the best round of each is the figure, the mean is
 * given too; times are the thread's CPU time); the parts alone (K_card derivation, EVP GCM seal); then the
 * whole base regenerated for real: one EMM for each of FULL_CARDS cards
 * (default 10,000,000) on 2 threads, one issuer each; the same through
 * group EMMs and the on-air sizes.
 *
 * Usage: bench_emm [RESULTS_FILE [FULL_CARDS]]  (markdown, stdout without
 * an argument or with "-"; FULL_CARDS 0 skips the full run)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include "cas/emm.h"
#include "cas/keys.h"
#include "lib/util.h"

#define ROUNDS 8
#define N_ROUND 50000
#define N_KDF 1000000
#define N_GCM 200000
#define BASE_CARDS 10000000ull
#define THREADS 2 /* the full run's report assumes 2 */
#define SERIAL0 2100000000ull
#define T0_S 1700000000ull

static const uint8_t root[KEYSTORE_ROOT_BYTES] = { 1, 2, 3 };
static const struct emm_grant grant = { .packages = 0x00000003, .start_s = T0_S - 86400,
	.finish_s = T0_S + 30 * 86400 };

/* Per-core figures use this thread's CPU time (the machine is shared: wall
 * time would count the other processes); the full run uses wall time. */
static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* n EMMs for cards first..first+n-1: elapsed ns, 0 on error. */
static uint64_t build_run(struct emm_issuer *is, uint64_t first, uint64_t n, uint8_t *acc)
{
	uint8_t sec[EMM_MAX_SECTION];
	size_t len = 0;
	uint64_t t = now_ns();

	for (uint64_t i = 0; i < n; i++) {
		if (emm_build_unique(is, first + i, (uint32_t)(i + 1), &grant, T0_S * 1000, sec, sizeof(sec), &len) != 0)
			return 0;
		*acc ^= sec[len - 1];
	}
	t = now_ns() - t;
	return t ? t : 1;
}

/* One thread of the full run: its own keystore copy and issuer. */
struct part {
	uint64_t first, n, ns;
	uint8_t acc;
	int r;
};

static void *full_part(void *arg)
{
	struct part *p = arg;
	struct keystore *ks = NULL;
	struct emm_issuer *is = NULL;

	p->r = 1;
	if (keystore_from_root(0x4ADC, 0, root, &ks) == 0 && emm_issuer_new(ks, &is) == 0 &&
	    (p->ns = build_run(is, p->first, p->n, &p->acc)) != 0)
		p->r = 0;
	emm_issuer_free(is);
	keystore_free(ks);
	return NULL;
}

int main(int argc, char **argv)
{
	struct keystore *ks = NULL;
	struct emm_issuer *is = NULL;
	struct card_kdf *kdf = NULL;
	uint8_t sec[EMM_MAX_SECTION], k[CARD_KEY_BYTES], acc = 0;
	size_t len = 0, group_len = 0;
	uint64_t t, ns_kdf, ns_gcm, best[2] = { UINT64_MAX, UINT64_MAX }, sum[2] = { 0, 0 };
	uint64_t full_cards = BASE_CARDS, full_ns = 0, p_cpu[THREADS] = { 0 };
	bool fast = false;
	FILE *out = stdout;
	int r = 1;

	if (argc > 1 && strcmp(argv[1], "-") != 0 && !(out = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 1;
	}
	if (argc > 2 && parse_u64(argv[2], 1000000000ull, &full_cards) != 0) {
		fprintf(stderr, "bench_emm: bad FULL_CARDS\n");
		goto done;
	}
	if (keystore_from_root(0x4ADC, 0, root, &ks) != 0 || emm_issuer_new(ks, &is) != 0 ||
	    card_kdf_new(ks, &kdf) != 0)
		goto done;
	fast = !emm_issuer_is_reference(is);
	/* warm-up: the first EMM derives the 4 package keys into the cache */
	if (emm_build_unique(is, SERIAL0, 1, &grant, T0_S * 1000, sec, sizeof(sec), &len) != 0)
		goto done;
	/* rounds alternate reference (0) and fast (1), order swapped each round */
	for (int round = 0; round < ROUNDS; round++) {
		for (int j = 0; j < 2; j++) {
			int path = (j + round) % 2;
			uint64_t ns;

			if (emm_issuer_set_reference(is, path == 0) != (path == 0 || fast))
				goto done;
			if (path == 1 && !fast)
				continue;
			if (!(ns = build_run(is, SERIAL0 + (uint64_t)round * N_ROUND, N_ROUND, &acc)))
				goto done;
			best[path] = ns < best[path] ? ns : best[path];
			sum[path] += ns;
		}
	}
	t = now_ns();
	for (uint32_t i = 0; i < N_KDF; i++) {
		if (card_key_derive(kdf, SERIAL0 + i, k) != 0)
			goto done;
		acc ^= k[0];
	}
	ns_kdf = now_ns() - t;
	/* reference: the EVP GCM seal alone (same plaintext size, reused context) */
	{
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		EVP_CIPHER *aes_gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
		uint8_t pt[EMM_MAX_PLAINTEXT] = { 0 }, ct[EMM_MAX_PLAINTEXT], tag[16], nonce[12] = { 0 };
		int ol = 0, ok;
		size_t ptl = len - EMM_UNIQUE_OVERHEAD;

		ok = c && aes_gcm && EVP_EncryptInit_ex(c, aes_gcm, NULL, NULL, NULL) == 1;
		t = now_ns();
		for (uint32_t i = 0; ok && i < N_GCM; i++) {
			nonce[0] = (uint8_t)i;
			ok = EVP_EncryptInit_ex(c, NULL, NULL, k, nonce) == 1 &&
			     EVP_EncryptUpdate(c, NULL, &ol, sec + 3, EMM_AAD_BYTES) == 1 &&
			     EVP_EncryptUpdate(c, ct, &ol, pt, (int)ptl) == 1 && EVP_EncryptFinal_ex(c, ct, &ol) == 1 &&
			     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
			acc ^= tag[0];
		}
		ns_gcm = now_ns() - t;
		EVP_CIPHER_CTX_free(c);
		EVP_CIPHER_free(aes_gcm);
		if (!ok)
			goto done;
	}
	/* the whole base, for real, THREADS issuers (default path: fast if the CPU has AES-NI) */
	if (full_cards > 0) {
		pthread_t th[THREADS];
		struct part p[THREADS];

		memset(p, 0, sizeof(p));
		t = clock_ns(CLOCK_MONOTONIC);
		for (int i = 0; i < THREADS; i++) {
			p[i].first = SERIAL0 + full_cards / THREADS * (uint64_t)i;
			p[i].n = i == THREADS - 1 ? full_cards - full_cards / THREADS * (THREADS - 1) : full_cards / THREADS;
			if (pthread_create(&th[i], NULL, full_part, &p[i]) != 0)
				goto done;
		}
		for (int i = 0; i < THREADS; i++)
			pthread_join(th[i], NULL);
		full_ns = clock_ns(CLOCK_MONOTONIC) - t;
		for (int i = 0; i < THREADS; i++) {
			if (p[i].r != 0)
				goto done;
			acc ^= p[i].acc;
			p_cpu[i] = p[i].ns;
		}
	}
	/* group size for as many of these cards as fit one 4096-byte section */
	{
		size_t rec = EMM_RECORD_OVERHEAD + (len - EMM_UNIQUE_OVERHEAD);
		size_t per_group = (EMM_MAX_SECTION - EMM_GROUP_HEADER) / rec;
		double ref_s = (double)N_ROUND * 1e9 / (double)best[0];
		double fast_s = fast ? (double)N_ROUND * 1e9 / (double)best[1] : ref_s;
		/* on air: a unique EMM in its own TS packets; a group section packed in TS packets */
		size_t pk_unique = (len + 183) / 184 * 188;
		double per_card_group;

		group_len = EMM_GROUP_HEADER + per_group * rec;
		per_card_group = (double)((group_len + 183) / 184 * 188) / (double)per_group;
		fprintf(out, "## EMMs (bench/emm.c)\n\n");
		fprintf(out, "Unique EMM with 2 packages x 2 epochs (%zu bytes), distinct cards; %d alternating rounds of "
			"%d EMMs per seal path on one core (thread CPU time; best round, mean in brackets).\n\n", len, ROUNDS, N_ROUND);
		fprintf(out, "| measure | value |\n|---|---|\n");
		fprintf(out, "| unique EMMs/s, one core, reference seal (EVP re-keyed per card) | %.0f (%.0f) |\n", ref_s,
			(double)N_ROUND * ROUNDS * 1e9 / (double)sum[0]);
		if (fast) {
			fprintf(out, "| unique EMMs/s, one core, fast seal (AES-NI + OpenSSL GCM mode) | %.0f (%.0f) |\n",
				fast_s, (double)N_ROUND * ROUNDS * 1e9 / (double)sum[1]);
			fprintf(out, "| speed-up, fast / reference, same process | %.2fx |\n", fast_s / ref_s);
		} else {
			fprintf(out, "| fast seal | not available (no AES-NI) |\n");
		}
		fprintf(out, "| time per EMM, reference / fast | %.0f ns / %.0f ns |\n", 1e9 / ref_s, 1e9 / fast_s);
		fprintf(out, "| of which K_card derivation (alone) | %.0f ns |\n", (double)ns_kdf / N_KDF);
		fprintf(out, "| of which AES-128-GCM seal, EVP (alone) | %.0f ns |\n", (double)ns_gcm / N_GCM);
		fprintf(out, "| one EMM for each of 10,000,000 cards, one core (EXTRAPOLATED from the fast rate) | %.1f s |\n",
			(double)BASE_CARDS / fast_s);
		if (full_cards > 0) {
			uint64_t cpu_max = p_cpu[0] > p_cpu[1] ? p_cpu[0] : p_cpu[1];

			fprintf(out, "| one EMM for each of %llu cards, %d threads (RUN, wall time) | %.2f s (%.0f EMMs/s) |\n",
				(unsigned long long)full_cards, THREADS, (double)full_ns / 1e9,
				(double)full_cards * 1e9 / (double)full_ns);
			fprintf(out, "| the same run, CPU time of the busier thread (= wall time on %d idle cores) | %.2f s |\n",
				THREADS, (double)cpu_max / 1e9);
		}
		fprintf(out, "| on air per card: unique EMM in TS packets | %zu bytes |\n", pk_unique);
		fprintf(out, "| on air per card: in a group EMM of %zu cards | %.0f bytes |\n", per_group, per_card_group);
		fprintf(out, "| carousel of 10,000,000 cards at 1 Mbit/s, unique EMMs | %.1f h |\n",
			(double)BASE_CARDS * (double)pk_unique * 8 / 1e6 / 3600);
		fprintf(out, "| carousel of 10,000,000 cards at 1 Mbit/s, group EMMs | %.1f h |\n\n",
			(double)BASE_CARDS * per_card_group * 8 / 1e6 / 3600);
	}
	r = 0;
done:
	if (r != 0)
		fprintf(stderr, "bench_emm: failed\n");
	if (acc == 0x5A && r == 0)
		fprintf(stderr, " \n"); /* keep acc alive */
	card_kdf_free(kdf);
	emm_issuer_free(is);
	keystore_free(ks);
	if (out != stdout)
		fclose(out);
	return r;
}
