/*
 * bench/emm.c - the EMM generator's numbers (DESIGN.md section 4, issue 3
 * item 10): unique EMMs built per second on one core (2 packages x 2 epochs:
 * the entitlement, 4 package keys, AES-128-GCM under K_card), with the parts
 * measured separately in the same process as references (K_card derivation
 * alone, and the AES-128-GCM seal of the same plaintext), the time to build
 * one EMM for each of 10 million cards (EXTRAPOLATED from the measured rate,
 * not run), the same through group EMMs, and the on-air sizes.
 *
 * Usage: bench_emm [RESULTS_FILE]   (markdown; stdout without an argument)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include "cas/emm.h"
#include "cas/keys.h"
#include "lib/util.h"

#define N_EMM 400000
#define N_KDF 1000000
#define BASE_CARDS 10000000ull
#define T0_S 1700000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const uint8_t root[KEYSTORE_ROOT_BYTES] = { 1, 2, 3 };
	struct keystore *ks = NULL;
	struct emm_issuer *is = NULL;
	struct card_kdf *kdf = NULL;
	struct emm_grant g = { .packages = 0x00000003, .start_s = T0_S - 86400, .finish_s = T0_S + 30 * 86400 };
	uint8_t sec[EMM_MAX_SECTION], k[CARD_KEY_BYTES], acc = 0;
	size_t len = 0, group_len = 0;
	uint64_t t, ns_emm, ns_kdf, ns_gcm;
	FILE *out = stdout;
	int r = 1;

	if (argc > 1 && !(out = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 1;
	}
	if (keystore_from_root(0x4ADC, 0, root, &ks) != 0 || emm_issuer_new(ks, &is) != 0 ||
	    card_kdf_new(ks, &kdf) != 0)
		goto done;
	/* warm-up: the first EMM derives the 4 package keys into the cache */
	if (emm_build_unique(is, 2100000000ull, 1, &g, T0_S * 1000, sec, sizeof(sec), &len) != 0)
		goto done;
	t = now_ns();
	for (uint32_t i = 0; i < N_EMM; i++) {
		if (emm_build_unique(is, 2100000000ull + i, i + 1, &g, T0_S * 1000, sec, sizeof(sec), &len) != 0)
			goto done;
		acc ^= sec[len - 1];
	}
	ns_emm = now_ns() - t;
	t = now_ns();
	for (uint32_t i = 0; i < N_KDF; i++) {
		if (card_key_derive(kdf, 2100000000ull + i, k) != 0)
			goto done;
		acc ^= k[0];
	}
	ns_kdf = now_ns() - t;
	/* reference: the GCM seal alone (same plaintext size, reused context) */
	{
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		EVP_CIPHER *aes_gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
		uint8_t pt[EMM_MAX_PLAINTEXT] = { 0 }, ct[EMM_MAX_PLAINTEXT], tag[16], nonce[12] = { 0 };
		int ol = 0;
		size_t ptl = len - EMM_UNIQUE_OVERHEAD;

		if (!c || !aes_gcm || EVP_EncryptInit_ex(c, aes_gcm, NULL, NULL, NULL) != 1)
			goto done;
		t = now_ns();
		for (uint32_t i = 0; i < N_EMM; i++) {
			nonce[0] = (uint8_t)i;
			if (EVP_EncryptInit_ex(c, NULL, NULL, k, nonce) != 1 ||
			    EVP_EncryptUpdate(c, NULL, &ol, sec + 3, EMM_AAD_BYTES) != 1 ||
			    EVP_EncryptUpdate(c, ct, &ol, pt, (int)ptl) != 1 || EVP_EncryptFinal_ex(c, ct, &ol) != 1 ||
			    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
				goto done;
			acc ^= tag[0];
		}
		ns_gcm = now_ns() - t;
		EVP_CIPHER_CTX_free(c);
		EVP_CIPHER_free(aes_gcm);
	}
	/* group size for as many of these cards as fit one 4096-byte section */
	{
		size_t rec = EMM_RECORD_OVERHEAD + (len - EMM_UNIQUE_OVERHEAD);
		size_t per_group = (EMM_MAX_SECTION - EMM_GROUP_HEADER) / rec;

		group_len = EMM_GROUP_HEADER + per_group * rec;
		{
			double emm_s = (double)N_EMM * 1e9 / (double)ns_emm;
			double base_s = (double)BASE_CARDS / emm_s;
			/* on air: a unique EMM in its own TS packets; a group section packed in TS packets */
			size_t pk_unique = (len + 183) / 184 * 188;
			double per_card_group = (double)((group_len + 183) / 184 * 188) / (double)per_group;

			fprintf(out, "## EMMs (bench/emm.c)\n\n");
			fprintf(out, "One core, unique EMM with 2 packages x 2 epochs (%zu bytes), %u EMMs, distinct cards.\n\n",
				len, N_EMM);
			fprintf(out, "| measure | value |\n|---|---|\n");
			fprintf(out, "| unique EMMs built per second (one core) | %.0f |\n", emm_s);
			fprintf(out, "| time per EMM | %.0f ns |\n", (double)ns_emm / N_EMM);
			fprintf(out, "| of which K_card derivation (reference, alone) | %.0f ns |\n", (double)ns_kdf / N_KDF);
			fprintf(out, "| of which AES-128-GCM seal (reference, alone) | %.0f ns |\n", (double)ns_gcm / N_EMM);
			fprintf(out, "| one EMM for each of 10,000,000 cards, one core (EXTRAPOLATED from the rate above) | %.1f s |\n",
				base_s);
			fprintf(out, "| the same on 2 cores (EXTRAPOLATED, issuers are independent) | %.1f s |\n", base_s / 2);
			fprintf(out, "| on air per card: unique EMM in TS packets | %zu bytes |\n", pk_unique);
			fprintf(out, "| on air per card: in a group EMM of %zu cards | %.0f bytes |\n", per_group,
				per_card_group);
			fprintf(out, "| carousel of 10,000,000 cards at 1 Mbit/s, unique EMMs | %.1f h |\n",
				(double)BASE_CARDS * (double)pk_unique * 8 / 1e6 / 3600);
			fprintf(out, "| carousel of 10,000,000 cards at 1 Mbit/s, group EMMs | %.1f h |\n\n",
				(double)BASE_CARDS * per_card_group * 8 / 1e6 / 3600);
		}
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
