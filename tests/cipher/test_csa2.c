/*
 * test_csa2.c - Castellan's own DVB-CSA2 engine (src/cipher/csa2*.c)
 * against Debian's libdvbcsa, an independent implementation kept here as
 * the reference (the single-packet dvbcsa_encrypt/decrypt).
 *
 * Every engine this CPU runs (avx512, avx2, sse2, portable), forced in
 * turn: every payload length 0..184 with random data and random CWs, both
 * directions, batches from 1 payload to several full batches with mixed
 * lengths; the TS layer (ts_cipher_*) with adaptation fields, entropy
 * reduction on and off; engine choice through CASTELLAN_CSA_IMPL and
 * ts_cipher_set_csa2_impl; the same-key test the scrambler batches with.
 * (The TSDuck captures are checked for every engine in test_cipher.c.)
 */
#include <stdlib.h>
#include <dvbcsa/dvbcsa.h>
#include "testutil.h"
#include "cipher/cipher.h"
#include "cipher/csa2_bs.h"
#include "lib/err.h"
#include "ts/ts.h"

static const char *const names[] = { "avx512", "avx2", "sse2", "portable" };
static const unsigned lanes_of[] = { 512, 256, 128, 64 };

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

static void rnd_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static void *work_for(const struct csa2_impl *im)
{
	void *w = aligned_alloc(64, (im->work_bytes + 63) & ~(size_t)63);

	assert_non_null(w);
	return w;
}

/* n payloads with the given lengths through engine im, compared with
 * libdvbcsa packet by packet (payloads under 8 bytes must stay as they are,
 * and the engine is never given them, as csa2.c does). */
static void check_batch(const struct csa2_impl *im, void *work, const unsigned *len, size_t n, bool enc)
{
	uint8_t cw[8];
	struct csa2_key k;
	struct dvbcsa_key_s *ref = dvbcsa_key_alloc();
	uint8_t(*ours)[CSA2_PAYLOAD_MAX] = calloc(n, CSA2_PAYLOAD_MAX);
	uint8_t(*theirs)[CSA2_PAYLOAD_MAX] = calloc(n, CSA2_PAYLOAD_MAX);
	struct cipher_payload *pl = calloc(n, sizeof(*pl));
	size_t m = 0;

	assert_non_null(ref);
	assert_non_null(ours);
	assert_non_null(theirs);
	assert_non_null(pl);
	rnd_fill(cw, sizeof(cw));
	csa2_key_set(&k, cw);
	dvbcsa_key_set(cw, ref);
	for (size_t i = 0; i < n; i++) {
		rnd_fill(ours[i], CSA2_PAYLOAD_MAX);
		memcpy(theirs[i], ours[i], CSA2_PAYLOAD_MAX);
		if (enc)
			dvbcsa_encrypt(ref, theirs[i], len[i]);
		else
			dvbcsa_decrypt(ref, theirs[i], len[i]);
		if (len[i] >= 8) {
			pl[m].p = ours[i];
			pl[m].len = len[i];
			m++;
		}
	}
	for (size_t i = 0; i < m; i += im->lanes)
		im->run(&k, pl + i, m - i < im->lanes ? m - i : im->lanes, enc, work);
	for (size_t i = 0; i < n; i++)
		if (memcmp(ours[i], theirs[i], CSA2_PAYLOAD_MAX) != 0)
			fail_msg("%s %s: payload %zu of %zu (%u bytes) differs from libdvbcsa", im->name,
				 enc ? "encrypt" : "decrypt", i, n, len[i]);
	dvbcsa_key_free(ref);
	free(ours);
	free(theirs);
	free(pl);
}

static int usable_count(void)
{
	int n = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (csa2_impl_by_name(names[i]))
			n++;
		else
			print_message("CSA2 engine %s: not on this CPU, skipped\n", names[i]);
	}
	return n;
}

/* Every length 0..184: one full batch of that length, each direction. */
static void test_every_length(void **state)
{
	(void)state;
	assert_true(usable_count() >= 1);
	for (size_t ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++) {
		const struct csa2_impl *im = csa2_impl_by_name(names[ni]);
		unsigned len[512];
		void *work;

		if (!im)
			continue;
		assert_int_equal(im->lanes, lanes_of[ni]);
		work = work_for(im);
		for (unsigned l = 0; l <= CSA2_PAYLOAD_MAX; l++) {
			for (unsigned i = 0; i < im->lanes; i++)
				len[i] = l;
			check_batch(im, work, len, im->lanes, true);
			check_batch(im, work, len, im->lanes, false);
		}
		free(work);
	}
}

/* Mixed lengths, partial and several batches (a lane's residue, short
 * payloads left out, the empty groups of a partial batch). */
static void test_mixed_batches(void **state)
{
	static const size_t counts[] = { 1, 2, 7, 8, 9, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1500 };

	(void)state;
	for (size_t ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++) {
		const struct csa2_impl *im = csa2_impl_by_name(names[ni]);
		unsigned len[1500];
		void *work;

		if (!im)
			continue;
		work = work_for(im);
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			for (int dir = 0; dir < 2; dir++) {
				for (size_t i = 0; i < counts[c]; i++) {
					/* mostly full payloads, as in real streams */
					unsigned r = rnd() % 4;

					len[i] = r == 0 ? rnd() % (CSA2_PAYLOAD_MAX + 1) : CSA2_PAYLOAD_MAX;
				}
				check_batch(im, work, len, counts[c], dir == 1);
			}
		}
		free(work);
	}
}

/* A TS packet with a payload of exactly len bytes (0..184). */
static void make_pkt(uint8_t *p, unsigned len)
{
	rnd_fill(p, TS_PACKET_BYTES);
	p[0] = TS_SYNC;
	p[1] = 0x01;
	p[2] = 0x00;
	if (len == 184) {
		p[3] = 0x10;
	} else {
		unsigned af = 183 - len; /* adaptation_field_length */

		p[3] = len ? 0x30 : 0x20;
		p[4] = (uint8_t)af;
		if (af > 0) {
			p[5] = 0x00;
			memset(p + 6, 0xFF, af - 1);
		}
	}
}

/* The TS layer: ts_cipher_scramble / descramble with every engine, CWs
 * with and without entropy reduction, against libdvbcsa on the payloads. */
static void test_ts_layer(void **state)
{
	enum { N = 700 };
	uint8_t *buf = malloc((size_t)N * TS_PACKET_BYTES), *ref = malloc((size_t)N * TS_PACKET_BYTES);
	uint8_t *ptrs[N];

	(void)state;
	assert_non_null(buf);
	assert_non_null(ref);
	for (size_t ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++) {
		if (!csa2_impl_by_name(names[ni]))
			continue;
		for (int reduce = 0; reduce < 2; reduce++) {
			struct ts_cipher *c = ts_cipher_new(CW_ALG_CSA2, reduce);
			struct dvbcsa_key_s *rk = dvbcsa_key_alloc();
			uint8_t cw[8], rcw[8];
			size_t done = 99;

			assert_non_null(c);
			assert_int_equal(ts_cipher_set_csa2_impl(c, names[ni]), 0);
			assert_string_equal(ts_cipher_csa2_impl(c), names[ni]);
			assert_int_equal(ts_cipher_batch_size(c), lanes_of[ni]);
			rnd_fill(cw, 8);
			memcpy(rcw, cw, 8);
			if (reduce)
				csa2_reduce(rcw);
			dvbcsa_key_set(rcw, rk);
			assert_int_equal(ts_cipher_set_key(c, CW_ODD, cw, 8), 0);
			for (size_t i = 0; i < N; i++) {
				struct ts_hdr h;

				ptrs[i] = buf + i * TS_PACKET_BYTES;
				make_pkt(ptrs[i], i % 9 == 0 ? rnd() % 185 : 184);
				memcpy(ref + i * TS_PACKET_BYTES, ptrs[i], TS_PACKET_BYTES);
				assert_int_equal(ts_parse(ptrs[i], &h), 0);
				if (h.has_payload) {
					dvbcsa_encrypt(rk, ref + i * TS_PACKET_BYTES + h.payload_off, h.payload_len);
					ref[i * TS_PACKET_BYTES + 3] |= 0xC0; /* odd */
				}
			}
			assert_int_equal(ts_cipher_scramble(c, ptrs, N, CW_ODD), 0);
			assert_memory_equal(buf, ref, (size_t)N * TS_PACKET_BYTES);
			/* and back: the box's direction */
			for (size_t i = 0; i < N; i++) {
				struct ts_hdr h;

				assert_int_equal(ts_parse(ref + i * TS_PACKET_BYTES, &h), 0);
				if (h.has_payload) {
					dvbcsa_decrypt(rk, ref + i * TS_PACKET_BYTES + h.payload_off, h.payload_len);
					ref[i * TS_PACKET_BYTES + 3] &= 0x3F;
				}
			}
			assert_int_equal(ts_cipher_descramble(c, ptrs, N, &done, NULL), 0);
			assert_memory_equal(buf, ref, (size_t)N * TS_PACKET_BYTES);
			dvbcsa_key_free(rk);
			ts_cipher_free(c);
		}
	}
	free(buf);
	free(ref);
}

/* Choice of engine: the environment, the API, bad names. */
static void test_impl_choice(void **state)
{
	struct ts_cipher *c, *x;
	const char *first = NULL;

	(void)state;
	for (size_t ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++) {
		if (!csa2_impl_by_name(names[ni]))
			continue;
		if (!first)
			first = names[ni];
		assert_int_equal(setenv("CASTELLAN_CSA_IMPL", names[ni], 1), 0);
		c = ts_cipher_new(CW_ALG_CSA2, true);
		assert_non_null(c);
		assert_string_equal(ts_cipher_csa2_impl(c), names[ni]);
		assert_int_equal(ts_cipher_csa2_batch_default(), lanes_of[ni]);
		ts_cipher_free(c);
	}
	/* an unknown name in the environment: the fastest engine */
	assert_int_equal(setenv("CASTELLAN_CSA_IMPL", "mmx", 1), 0);
	c = ts_cipher_new(CW_ALG_CSA2, true);
	assert_non_null(c);
	assert_string_equal(ts_cipher_csa2_impl(c), first);
	assert_int_equal(unsetenv("CASTELLAN_CSA_IMPL"), 0);
	assert_string_equal(csa2_impl_default()->name, first);
	/* the portable engine is everywhere */
	assert_int_equal(ts_cipher_set_csa2_impl(c, "portable"), 0);
	assert_string_equal(ts_cipher_csa2_impl(c), "portable");
	assert_int_equal(ts_cipher_set_csa2_impl(c, "mmx"), CE_ARG);
	assert_int_equal(ts_cipher_set_csa2_impl(c, NULL), CE_ARG);
	assert_string_equal(ts_cipher_csa2_impl(c), "portable");
	x = ts_cipher_new(CW_ALG_CISSA, false);
	assert_non_null(x);
	assert_int_equal(ts_cipher_set_csa2_impl(x, "portable"), CE_ARG);
	assert_null(ts_cipher_csa2_impl(x));
	assert_int_equal(ts_cipher_batch_size(x), 1);
	ts_cipher_free(x);
	ts_cipher_free(c);
}

/* Same-key test (the scrambler merges such services' batches). */
static void test_same_key(void **state)
{
	static const uint8_t k1[8] = { 1, 2, 3, 6, 5, 6, 7, 18 }, k2[8] = { 1, 2, 3, 6, 5, 6, 7, 19 };
	struct ts_cipher *a = ts_cipher_new(CW_ALG_CSA2, false), *b = ts_cipher_new(CW_ALG_CSA2, true);
	struct ts_cipher *x = ts_cipher_new(CW_ALG_CISSA, false);
	uint8_t k16[16] = { 0 };

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(x);
	assert_false(ts_cipher_same_key(a, CW_EVEN, b, CW_EVEN)); /* no keys yet */
	assert_int_equal(ts_cipher_set_key(a, CW_EVEN, k1, 8), 0);
	assert_int_equal(ts_cipher_set_key(b, CW_ODD, k1, 8), 0); /* k1 is already reduced */
	assert_true(ts_cipher_same_key(a, CW_EVEN, b, CW_ODD));
	assert_false(ts_cipher_same_key(a, CW_EVEN, b, CW_EVEN));
	assert_int_equal(ts_cipher_set_key(b, CW_ODD, k2, 8), 0); /* reduced: k2 -> k1 */
	assert_true(ts_cipher_same_key(a, CW_EVEN, b, CW_ODD));
	assert_int_equal(ts_cipher_set_key(a, CW_EVEN, k2, 8), 0); /* not reduced in a */
	assert_false(ts_cipher_same_key(a, CW_EVEN, b, CW_ODD));
	ts_cipher_clear_key(b, CW_ODD);
	assert_false(ts_cipher_same_key(a, CW_EVEN, b, CW_ODD));
	assert_int_equal(ts_cipher_set_key(x, CW_EVEN, k16, 16), 0);
	assert_false(ts_cipher_same_key(x, CW_EVEN, x, CW_EVEN)); /* CISSA: never */
	assert_false(ts_cipher_same_key(a, CW_EVEN, x, CW_EVEN));
	ts_cipher_free(a);
	ts_cipher_free(b);
	ts_cipher_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_length), cmocka_unit_test(test_mixed_batches),
		cmocka_unit_test(test_ts_layer),     cmocka_unit_test(test_impl_choice),
		cmocka_unit_test(test_same_key),
	};

	unsetenv("CASTELLAN_CSA_IMPL");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
