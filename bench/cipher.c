/*
 * bench/cipher.c - scrambling throughput of src/cipher (one core):
 *   DVB-CSA2 scramble / descramble through ts_cipher (our bitslice engine,
 *   bench/csa2.c compares it with libdvbcsa's bitslice API), against raw
 *   single-packet libdvbcsa (dvbcsa_encrypt/decrypt) on the same payloads;
 *   DVB-CISSA scramble / descramble through ts_cipher, OpenSSL path and
 *   AES-NI interleaved path, against raw OpenSSL EVP AES-128-CBC on the same
 *   payloads (IV re-set per packet, as CISSA needs), plus EVP over one long
 *   buffer as the ceiling of OpenSSL's CBC code.
 * Data: BENCH_PKTS packets with a 184-byte payload (no adaptation field),
 * random bytes. Mbit/s counts whole 188-byte TS packets (the stream rate a
 * scrambler sustains). Each figure is the best of 5 runs of >= 0.1 s,
 * alternating with its reference (the ratio is of the two bests).
 * Writes a markdown section to argv[1], or to stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dvbcsa/dvbcsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "cipher/cipher.h"
#include "ts/ts.h"

#define BENCH_PKTS 2048
#define RUNS 5
#define RUN_NS 100000000ull

struct bench {
	uint8_t *buf;
	uint8_t *ptrs[BENCH_PKTS];
	uint8_t csa_cw[8];
	uint8_t aes_key[16];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Restore clear packets (payload only, scrambling bits 00). */
static void reset_pkts(struct bench *b)
{
	for (size_t i = 0; i < BENCH_PKTS; i++) {
		uint8_t *p = b->ptrs[i];

		p[0] = TS_SYNC;
		p[1] = 0x01;
		p[2] = 0x00;
		p[3] = (uint8_t)(0x10 | (i & 15));
	}
}

typedef int (*bench_fn)(struct bench *b, void *ctx);

static double run_for(struct bench *b, bench_fn fn, void *ctx, uint64_t min_ns)
{
	uint64_t t0 = now_ns(), t, rounds = 0;

	do {
		if (fn(b, ctx) != 0) {
			fprintf(stderr, "bench_cipher: a benchmark step failed\n");
			exit(1);
		}
		rounds++;
		t = now_ns() - t0;
	} while (t < min_ns);
	return (double)rounds * BENCH_PKTS * TS_PACKET_BYTES * 8.0 / ((double)t / 1e9) / 1e6;
}

/*
 * Best Mbit/s of fn and of its reference, measured alternately (RUNS short
 * runs each) so that a busy machine slows both alike and the ratio holds.
 */
static void measure_pair(struct bench *b, bench_fn fn, void *ctx, bench_fn ref, void *ref_ctx, double *mbps,
			 double *ref_mbps)
{
	*mbps = 0;
	*ref_mbps = 0;
	for (int run = 0; run < RUNS; run++) {
		double v = run_for(b, ref, ref_ctx, RUN_NS), w = run_for(b, fn, ctx, RUN_NS);

		if (v > *ref_mbps)
			*ref_mbps = v;
		if (w > *mbps)
			*mbps = w;
	}
}

/* ---- Castellan ---- */

static int ts_scr(struct bench *b, void *ctx)
{
	reset_pkts(b);
	return ts_cipher_scramble(ctx, b->ptrs, BENCH_PKTS, CW_EVEN);
}

static int ts_descr(struct bench *b, void *ctx)
{
	size_t done = 0;
	int r;

	/* payloads are whatever they are: valid headers marked even again */
	reset_pkts(b);
	for (size_t i = 0; i < BENCH_PKTS; i++)
		ts_set_scrambling(b->ptrs[i], TS_SC_EVEN);
	r = ts_cipher_descramble(ctx, b->ptrs, BENCH_PKTS, &done, NULL);
	return r != 0 ? r : (done == BENCH_PKTS ? 0 : -1);
}

/* ---- raw references ---- */

static int raw_csa_enc(struct bench *b, void *ctx)
{
	for (size_t i = 0; i < BENCH_PKTS; i++)
		dvbcsa_encrypt(ctx, b->ptrs[i] + 4, 184);
	return 0;
}

static int raw_csa_dec(struct bench *b, void *ctx)
{
	for (size_t i = 0; i < BENCH_PKTS; i++)
		dvbcsa_decrypt(ctx, b->ptrs[i] + 4, 184);
	return 0;
}

static const uint8_t iv[16] = "DVBTMCPTAESCISSA";

static int raw_evp_pkt(struct bench *b, void *ctx, int enc)
{
	for (size_t i = 0; i < BENCH_PKTS; i++) {
		int outl;

		if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) != 1 ||
		    EVP_CipherUpdate(ctx, b->ptrs[i] + 4, &outl, b->ptrs[i] + 4, 176) != 1)
			return -1;
	}
	return 0;
}

static int raw_evp_enc(struct bench *b, void *ctx)
{
	return raw_evp_pkt(b, ctx, 1);
}

static int raw_evp_dec(struct bench *b, void *ctx)
{
	return raw_evp_pkt(b, ctx, 0);
}

/* One CBC run over the whole buffer (as many bytes as the packets). */
static int raw_evp_bulk(struct bench *b, void *ctx)
{
	int outl;

	if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) != 1 ||
	    EVP_CipherUpdate(ctx, b->buf, &outl, b->buf, BENCH_PKTS * TS_PACKET_BYTES) != 1)
		return -1;
	return 0;
}

static EVP_CIPHER_CTX *evp_new(const uint8_t key[16], int enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx || EVP_CipherInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv, enc) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
		fprintf(stderr, "bench_cipher: EVP init failed\n");
		exit(1);
	}
	return ctx;
}

static void pair_row(FILE *out, struct bench *b, const char *what, bench_fn fn, void *ctx,
		     const char *refname, bench_fn ref, void *ref_ctx)
{
	double v, rv;

	measure_pair(b, fn, ctx, ref, ref_ctx, &v, &rv);
	fprintf(out, "| %s | %.0f | %s | %.0f | %.2f× |\n", what, v, refname, rv, v / rv);
	fflush(out);
}

int main(int argc, char **argv)
{
	struct bench b;
	FILE *out = stdout;
	struct ts_cipher *csa, *cissa;
	struct dvbcsa_key_s *raw_key;
	EVP_CIPHER_CTX *e_enc, *e_dec;
	int have_aesni;

	b.buf = malloc(BENCH_PKTS * TS_PACKET_BYTES);
	if (!b.buf)
		return 1;
	if (RAND_bytes(b.buf, BENCH_PKTS * TS_PACKET_BYTES) != 1 || RAND_bytes(b.csa_cw, 8) != 1 ||
	    RAND_bytes(b.aes_key, 16) != 1)
		return 1;
	for (size_t i = 0; i < BENCH_PKTS; i++)
		b.ptrs[i] = b.buf + i * TS_PACKET_BYTES;
	reset_pkts(&b);
	if (argc > 1 && !(out = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 1;
	}

	csa = ts_cipher_new(CW_ALG_CSA2, true);
	cissa = ts_cipher_new(CW_ALG_CISSA, false);
	raw_key = dvbcsa_key_alloc();
	if (!csa || !cissa || !raw_key || ts_cipher_set_key(csa, CW_EVEN, b.csa_cw, 8) != 0 ||
	    ts_cipher_set_key(cissa, CW_EVEN, b.aes_key, 16) != 0)
		return 1;
	csa2_reduce(b.csa_cw);
	dvbcsa_key_set(b.csa_cw, raw_key);
	e_enc = evp_new(b.aes_key, 1);
	e_dec = evp_new(b.aes_key, 0);

	fprintf(out, "## cipher: TS scrambling throughput (src/cipher)\n\n");
	fprintf(out,
		"%d packets of 188 bytes with a 184-byte payload, random data, one core; "
		"Mbit/s of whole TS packets; best of %d runs of >= 0.1 s, each row measured "
		"alternately with its reference so the ratio survives a busy machine. "
		"CSA2 engine here: %s, %zu packets a batch (bench/csa2.c compares it with libdvbcsa's bitslice API).\n\n",
		BENCH_PKTS, RUNS, ts_cipher_csa2_impl(csa), ts_cipher_batch_size(csa));
	fprintf(out, "| what | Mbit/s | reference | ref. Mbit/s | ratio |\n|---|---:|---|---:|---:|\n");
	pair_row(out, &b, "CSA2 `ts_cipher_scramble` (bitslice batches)", ts_scr, csa,
		 "raw `dvbcsa_encrypt`, one packet per call", raw_csa_enc, raw_key);
	pair_row(out, &b, "CSA2 `ts_cipher_descramble` (bitslice batches)", ts_descr, csa,
		 "raw `dvbcsa_decrypt`, one packet per call", raw_csa_dec, raw_key);
	if (ts_cipher_set_cissa_impl(cissa, CISSA_IMPL_OPENSSL) != 0)
		return 1;
	pair_row(out, &b, "CISSA `ts_cipher_scramble`, OpenSSL path", ts_scr, cissa,
		 "raw EVP AES-128-CBC encrypt, IV re-set per packet", raw_evp_enc, e_enc);
	pair_row(out, &b, "CISSA `ts_cipher_descramble`, OpenSSL path", ts_descr, cissa,
		 "raw EVP AES-128-CBC decrypt, IV re-set per packet", raw_evp_dec, e_dec);
	have_aesni = ts_cipher_set_cissa_impl(cissa, CISSA_IMPL_AESNI) == 0;
	if (have_aesni) {
		pair_row(out, &b, "CISSA `ts_cipher_scramble`, AES-NI, 8 packets interleaved", ts_scr, cissa,
			 "raw EVP AES-128-CBC encrypt, IV re-set per packet", raw_evp_enc, e_enc);
		pair_row(out, &b, "CISSA `ts_cipher_descramble`, AES-NI, 8 blocks interleaved", ts_descr,
			 cissa, "raw EVP AES-128-CBC decrypt, IV re-set per packet", raw_evp_dec, e_dec);
		pair_row(out, &b, "CISSA `ts_cipher_scramble`, AES-NI, 8 packets interleaved", ts_scr, cissa,
			 "raw EVP AES-128-CBC encrypt, one long buffer (no per-packet IV)", raw_evp_bulk,
			 e_enc);
		pair_row(out, &b, "CISSA `ts_cipher_descramble`, AES-NI, 8 blocks interleaved", ts_descr,
			 cissa, "raw EVP AES-128-CBC decrypt, one long buffer (no per-packet IV)",
			 raw_evp_bulk, e_dec);
	} else {
		fprintf(out, "| CISSA AES-NI path | n/a | this CPU has no AES-NI | | |\n");
	}
	fprintf(out, "\nCISSA default path on this machine: %s.\n", have_aesni ? "AES-NI" : "OpenSSL");

	ts_cipher_free(csa);
	ts_cipher_free(cissa);
	dvbcsa_key_free(raw_key);
	EVP_CIPHER_CTX_free(e_enc);
	EVP_CIPHER_CTX_free(e_dec);
	free(b.buf);
	if (out != stdout)
		fclose(out);
	return 0;
}
