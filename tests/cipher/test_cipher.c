/*
 * test_cipher.c - DVB-CSA2 and DVB-CISSA scrambling (src/cipher/).
 *
 * Interop: TSDuck 3.44 scrambled service 101 of ts-clear-2svc.ts with
 * CSA2 (with and without entropy reduction; every CSA2 engine this CPU
 * runs is checked in turn) and CISSA, even parity, fixed
 * CW (tests/data/simulcrypt/captures/README.md). Descrambling each file must
 * give the clear file back bit for bit (the CISSA PMT keeps TSDuck's extra
 * scrambling_descriptor), and scrambling the clear packets of the scrambled
 * PIDs must give TSDuck's bytes. Then round trips on random packets with
 * adaptation fields, mixed parities, missing keys, refused batches, bad
 * packets, the OpenSSL and AES-NI CISSA paths against each other, and the
 * fuzz corpus replayed.
 */
#include <dirent.h>
#include "testutil.h"
#include "cipher/cipher.h"
#include "ts/ts.h"

#define CAP "simulcrypt/captures/"
#define CLEAR_TS "ts-clear-2svc.ts"
#define CSA2_TS CAP "ts-csa2-svc101-cw0123456789abcdef.ts"
#define CSA2_NR_TS CAP "ts-csa2-noreduce-svc101-cw0123456789abcdef.ts"
#define CISSA_TS CAP "ts-cissa-svc101-cw00112233445566778899aabbccddeeff.ts"

#define PID_VIDEO 0x0100
#define PID_AUDIO 0x0101
#define PID_PMT1 0x1000
/* Scrambled packets in each TSDuck file (video 660 + audio 135). */
#define N_SCRAMBLED 795

static const uint8_t csa2_cw[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
static const uint8_t cissa_cw[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				     0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF};

/* ---- helpers ---- */

struct ts_file {
	uint8_t *buf;
	size_t n;	/* packets */
	uint8_t **ptrs; /* n pointers into buf */
};

static void ts_load(const char *rel, struct ts_file *f)
{
	size_t len;

	f->buf = tu_read(tu_testdata(rel), &len);
	assert_int_equal(len % TS_PACKET_BYTES, 0);
	f->n = len / TS_PACKET_BYTES;
	assert_true(f->n > 5000);
	f->ptrs = calloc(f->n, sizeof(*f->ptrs));
	assert_non_null(f->ptrs);
	for (size_t i = 0; i < f->n; i++)
		f->ptrs[i] = f->buf + i * TS_PACKET_BYTES;
}

static void ts_unload(struct ts_file *f)
{
	free(f->buf);
	free(f->ptrs);
}

static uint16_t pkt_pid(const uint8_t *p)
{
	return (uint16_t)(((p[1] & 0x1F) << 8) | p[2]);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

static void rnd_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

/*
 * A valid clear packet: kind 0 payload only, 1 adaptation field of
 * af_len (0..182) + payload, 2 adaptation field only (no payload).
 */
static void make_pkt(uint8_t *p, int kind, unsigned af_len)
{
	rnd_fill(p, TS_PACKET_BYTES);
	p[0] = TS_SYNC;
	p[1] = (uint8_t)(p[1] & 0x1F); /* no TEI/PUSI/priority */
	if (pkt_pid(p) == TS_PID_NULL)
		p[1] = 0x01;
	p[3] = (uint8_t)(p[3] & 0x0F); /* clear, CC kept */
	if (kind == 0) {
		p[3] |= 0x10;
	} else {
		if (kind == 2)
			af_len = 183;
		p[3] |= kind == 1 ? 0x30 : 0x20;
		p[4] = (uint8_t)af_len;
		if (af_len > 0) {
			p[5] = 0x00; /* no flags */
			memset(p + 6, 0xFF, af_len - 1);
		}
	}
}

static void make_random_pkt(uint8_t *p)
{
	unsigned k = rnd() % 8;

	if (k < 3)
		make_pkt(p, 0, 0);
	else if (k < 7)
		make_pkt(p, 1, rnd() % 183);
	else
		make_pkt(p, 2, 183);
}

static struct ts_cipher *new_keyed(enum cw_alg alg, bool reduce, const uint8_t *even, const uint8_t *odd)
{
	struct ts_cipher *c = ts_cipher_new(alg, reduce);

	assert_non_null(c);
	if (even)
		assert_int_equal(ts_cipher_set_key(c, CW_EVEN, even, cw_alg_key_bytes(alg)), 0);
	if (odd)
		assert_int_equal(ts_cipher_set_key(c, CW_ODD, odd, cw_alg_key_bytes(alg)), 0);
	return c;
}

/* The CISSA implementations to try: OpenSSL always, AES-NI when present. */
static int cissa_impls(enum cissa_impl out[2])
{
	struct ts_cipher *c = ts_cipher_new(CW_ALG_CISSA, false);
	int n = 0;

	assert_non_null(c);
	out[n++] = CISSA_IMPL_OPENSSL;
	if (ts_cipher_set_cissa_impl(c, CISSA_IMPL_AESNI) == 0)
		out[n++] = CISSA_IMPL_AESNI;
	else
		print_message("no AES-NI on this CPU: OpenSSL path only\n");
	ts_cipher_free(c);
	return n;
}

/* ---- algorithm table, entropy reduction ---- */

static void test_alg_table(void **state)
{
	static const struct {
		const char *s;
		int r;
		enum cw_alg alg;
	} cases[] = {
	    {"csa2", 0, CW_ALG_CSA2},
	    {"CSA2", 0, CW_ALG_CSA2},
	    {"dvb-csa2", 0, CW_ALG_CSA2},
	    {"cissa", 0, CW_ALG_CISSA},
	    {"CISSA", 0, CW_ALG_CISSA},
	    {"dvb-cissa", 0, CW_ALG_CISSA},
	    {"", CE_ARG, 0},
	    {"csa", CE_ARG, 0},
	    {"csa3", CE_ARG, 0},
	    {"csa2 ", CE_ARG, 0},
	    {" cissa", CE_ARG, 0},
	    {"aes", CE_ARG, 0},
	    {"cissa2", CE_ARG, 0},
	    {"idsa", CE_ARG, 0},
	};
	enum cw_alg alg;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		alg = 0;
		assert_int_equal(cw_alg_parse(cases[i].s, &alg), cases[i].r);
		if (cases[i].r == 0)
			assert_int_equal(alg, cases[i].alg);
	}
	assert_int_equal(cw_alg_parse(NULL, &alg), CE_ARG);
	assert_int_equal(cw_alg_parse("csa2", NULL), CE_ARG);
	assert_int_equal(cw_alg_key_bytes(CW_ALG_CSA2), 8);
	assert_int_equal(cw_alg_key_bytes(CW_ALG_CISSA), 16);
	assert_int_equal(cw_alg_key_bytes((enum cw_alg)0), 0);
	assert_int_equal(cw_alg_key_bytes((enum cw_alg)3), 0);
	assert_string_equal(cw_alg_name(CW_ALG_CSA2), "csa2");
	assert_string_equal(cw_alg_name(CW_ALG_CISSA), "cissa");
	assert_string_equal(cw_alg_name((enum cw_alg)7), "unknown");
	/* names parse back */
	assert_int_equal(cw_alg_parse(cw_alg_name(CW_ALG_CISSA), &alg), 0);
	assert_int_equal(alg, CW_ALG_CISSA);
	assert_null(ts_cipher_new((enum cw_alg)0, true));
	assert_null(ts_cipher_new((enum cw_alg)9, true));
}

static void test_reduce(void **state)
{
	uint8_t cw[8];
	static const uint8_t want[8] = {0x01, 0x23, 0x45, 0x69, 0x89, 0xAB, 0xCD, 0x01};
	static const uint8_t ff[8] = {0xFF, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0xFF, 0x00};

	(void)state;
	memcpy(cw, csa2_cw, 8);
	csa2_reduce(cw);
	assert_memory_equal(cw, want, 8);
	csa2_reduce(cw); /* idempotent */
	assert_memory_equal(cw, want, 8);
	/* sums wrap mod 256: FF+FF+FF = 0x2FD -> FD */
	memcpy(cw, ff, 8);
	csa2_reduce(cw);
	assert_memory_equal(cw, ((const uint8_t[8]){0xFF, 0xFF, 0xFF, 0xFD, 0xFF, 0xFF, 0xFF, 0xFD}), 8);
}

static void test_keys(void **state)
{
	struct ts_cipher *c = ts_cipher_new(CW_ALG_CSA2, true);
	struct ts_cipher *a = ts_cipher_new(CW_ALG_CISSA, false);
	enum cissa_impl impl[2];

	(void)state;
	assert_non_null(c);
	assert_non_null(a);
	assert_int_equal(ts_cipher_alg(c), CW_ALG_CSA2);
	assert_int_equal(ts_cipher_alg(a), CW_ALG_CISSA);
	assert_false(ts_cipher_has_key(c, CW_EVEN));
	assert_false(ts_cipher_has_key(c, CW_ODD));
	assert_int_equal(ts_cipher_set_key(c, CW_EVEN, csa2_cw, 7), CE_ARG);
	assert_int_equal(ts_cipher_set_key(c, CW_EVEN, cissa_cw, 16), CE_ARG);
	assert_int_equal(ts_cipher_set_key(c, CW_EVEN, NULL, 8), CE_ARG);
	assert_int_equal(ts_cipher_set_key(c, (enum cw_parity)2, csa2_cw, 8), CE_ARG);
	assert_int_equal(ts_cipher_set_key(a, CW_ODD, csa2_cw, 8), CE_ARG);
	assert_false(ts_cipher_has_key(c, CW_EVEN));
	assert_int_equal(ts_cipher_set_key(c, CW_ODD, csa2_cw, 8), 0);
	assert_true(ts_cipher_has_key(c, CW_ODD));
	assert_false(ts_cipher_has_key(c, CW_EVEN));
	ts_cipher_clear_key(c, CW_ODD);
	assert_false(ts_cipher_has_key(c, CW_ODD));
	assert_int_equal(ts_cipher_set_key(a, CW_ODD, cissa_cw, 16), 0);
	assert_true(ts_cipher_has_key(a, CW_ODD));
	/* impl switch: only for CISSA contexts */
	assert_int_equal(ts_cipher_set_cissa_impl(c, CISSA_IMPL_OPENSSL), CE_ARG);
	assert_int_equal(ts_cipher_set_cissa_impl(a, CISSA_IMPL_OPENSSL), 0);
	assert_false(ts_cipher_cissa_aesni(a));
	if (cissa_impls(impl) == 2) {
		assert_int_equal(ts_cipher_set_cissa_impl(a, CISSA_IMPL_AUTO), 0);
		assert_true(ts_cipher_cissa_aesni(a));
	}
	assert_false(ts_cipher_cissa_aesni(c));
	ts_cipher_free(c);
	ts_cipher_free(a);
	ts_cipher_free(NULL);
}

/* ---- interop with TSDuck's scrambled streams ---- */

/* Descramble a whole TSDuck file in one call; compare with the clear one. */
static void descramble_file(const char *rel, enum cw_alg alg, bool reduce, const uint8_t *cw,
			    enum cissa_impl impl)
{
	struct ts_file clear, scr;
	struct ts_cipher *c = new_keyed(alg, reduce, cw, NULL);
	size_t done = 99, missing = 99, pmt_diff = 0, scrambled = 0;

	if (alg == CW_ALG_CISSA)
		assert_int_equal(ts_cipher_set_cissa_impl(c, impl), 0);
	ts_load(CLEAR_TS, &clear);
	ts_load(rel, &scr);
	assert_int_equal(clear.n, scr.n);
	for (size_t i = 0; i < scr.n; i++) {
		uint8_t sc = scr.ptrs[i][3] >> 6;

		/* TSDuck uses the even key only, on service 101's ES PIDs */
		assert_true(sc == TS_SC_CLEAR || sc == TS_SC_EVEN);
		if (sc != TS_SC_CLEAR) {
			uint16_t pid = pkt_pid(scr.ptrs[i]);

			assert_true(pid == PID_VIDEO || pid == PID_AUDIO);
			scrambled++;
		}
	}
	assert_int_equal(scrambled, N_SCRAMBLED);
	assert_int_equal(ts_cipher_descramble(c, scr.ptrs, scr.n, &done, &missing), 0);
	assert_int_equal(done, N_SCRAMBLED);
	assert_int_equal(missing, 0);
	for (size_t i = 0; i < scr.n; i++) {
		if (memcmp(scr.ptrs[i], clear.ptrs[i], TS_PACKET_BYTES) == 0)
			continue;
		/* the only difference allowed: CISSA's PMT with the scrambling_descriptor */
		if (alg == CW_ALG_CISSA && pkt_pid(scr.ptrs[i]) == PID_PMT1) {
			pmt_diff++;
			continue;
		}
		fail_msg("%s: packet %zu (PID 0x%04x) differs after descrambling", rel, i,
			 pkt_pid(scr.ptrs[i]));
	}
	if (alg == CW_ALG_CISSA)
		assert_int_equal(pmt_diff, 21);
	/* a second pass changes nothing: all clear now */
	assert_int_equal(ts_cipher_descramble(c, scr.ptrs, scr.n, &done, &missing), 0);
	assert_int_equal(done, 0);
	ts_cipher_free(c);
	ts_unload(&clear);
	ts_unload(&scr);
}

/* Scramble the clear packets of PIDs 0x100/0x101 in one call: TSDuck's bytes. */
static void scramble_file(const char *rel, enum cw_alg alg, bool reduce, const uint8_t *cw,
			  enum cissa_impl impl)
{
	struct ts_file clear, scr;
	struct ts_cipher *c = new_keyed(alg, reduce, cw, NULL);
	uint8_t **sel;
	size_t n = 0;

	if (alg == CW_ALG_CISSA)
		assert_int_equal(ts_cipher_set_cissa_impl(c, impl), 0);
	ts_load(CLEAR_TS, &clear);
	ts_load(rel, &scr);
	sel = calloc(clear.n, sizeof(*sel));
	assert_non_null(sel);
	for (size_t i = 0; i < clear.n; i++) {
		uint16_t pid = pkt_pid(clear.ptrs[i]);

		if (pid == PID_VIDEO || pid == PID_AUDIO)
			sel[n++] = clear.ptrs[i];
	}
	assert_int_equal(n, N_SCRAMBLED + 44); /* + 44 video packets without payload */
	assert_int_equal(ts_cipher_scramble(c, sel, n, CW_EVEN), 0);
	for (size_t i = 0; i < clear.n; i++) {
		uint16_t pid = pkt_pid(clear.ptrs[i]);

		if (pid != PID_VIDEO && pid != PID_AUDIO)
			continue;
		if (memcmp(clear.ptrs[i], scr.ptrs[i], TS_PACKET_BYTES) != 0)
			fail_msg("%s: packet %zu (PID 0x%04x) differs from TSDuck's after scrambling", rel, i,
				 pid);
	}
	free(sel);
	ts_cipher_free(c);
	ts_unload(&clear);
	ts_unload(&scr);
}

/* The CSA2 engines this CPU runs (our own, src/cipher/csa2*.c): each is
 * forced in turn through CASTELLAN_CSA_IMPL for the TSDuck files. */
static size_t csa2_engines(const char *out[4])
{
	static const char *const all[] = {"avx512", "avx2", "sse2", "portable"};
	size_t n = 0;

	for (size_t i = 0; i < 4; i++) {
		struct ts_cipher *c = ts_cipher_new(CW_ALG_CSA2, true);

		assert_non_null(c);
		if (ts_cipher_set_csa2_impl(c, all[i]) == 0)
			out[n++] = all[i];
		else
			print_message("CSA2 engine %s: not on this CPU\n", all[i]);
		ts_cipher_free(c);
	}
	assert_true(n >= 1);
	return n;
}

/* new contexts now take that engine */
static void engine_is(const char *name)
{
	struct ts_cipher *c = ts_cipher_new(CW_ALG_CSA2, true);

	assert_non_null(c);
	assert_string_equal(ts_cipher_csa2_impl(c), name);
	ts_cipher_free(c);
}

static void test_interop_csa2(void **state)
{
	static const uint8_t reduced[8] = {0x01, 0x23, 0x45, 0x69, 0x89, 0xAB, 0xCD, 0x01};
	const char *eng[4];
	size_t ne = csa2_engines(eng);

	(void)state;
	for (size_t k = 0; k < ne; k++) {
		assert_int_equal(setenv("CASTELLAN_CSA_IMPL", eng[k], 1), 0);
		engine_is(eng[k]);
		descramble_file(CSA2_TS, CW_ALG_CSA2, true, csa2_cw, 0);
		scramble_file(CSA2_TS, CW_ALG_CSA2, true, csa2_cw, 0);
		/* the reduced key given as is, reduction off: same stream */
		descramble_file(CSA2_TS, CW_ALG_CSA2, false, reduced, 0);
		scramble_file(CSA2_TS, CW_ALG_CSA2, false, reduced, 0);
	}
	assert_int_equal(unsetenv("CASTELLAN_CSA_IMPL"), 0);
}

static void test_interop_csa2_noreduce(void **state)
{
	struct ts_file clear, scr;
	struct ts_cipher *c;
	size_t done = 0, same = 0;
	const char *eng[4];
	size_t ne = csa2_engines(eng);

	(void)state;
	for (size_t k = 0; k < ne; k++) {
		assert_int_equal(setenv("CASTELLAN_CSA_IMPL", eng[k], 1), 0);
		engine_is(eng[k]);
		descramble_file(CSA2_NR_TS, CW_ALG_CSA2, false, csa2_cw, 0);
		scramble_file(CSA2_NR_TS, CW_ALG_CSA2, false, csa2_cw, 0);
	}
	assert_int_equal(unsetenv("CASTELLAN_CSA_IMPL"), 0);
	/* with reduction on, the same CW is a different key: nothing matches */
	c = new_keyed(CW_ALG_CSA2, true, csa2_cw, NULL);
	ts_load(CLEAR_TS, &clear);
	ts_load(CSA2_NR_TS, &scr);
	assert_int_equal(ts_cipher_descramble(c, scr.ptrs, scr.n, &done, NULL), 0);
	assert_int_equal(done, N_SCRAMBLED);
	for (size_t i = 0; i < scr.n; i++) {
		uint16_t pid = pkt_pid(scr.ptrs[i]);

		if ((pid == PID_VIDEO || pid == PID_AUDIO) &&
		    memcmp(scr.ptrs[i], clear.ptrs[i], TS_PACKET_BYTES) == 0)
			same++;
	}
	/* only the 44 payload-less and 2 short (< 8 bytes) packets stay equal */
	assert_int_equal(same, 44 + 2);
	ts_cipher_free(c);
	ts_unload(&clear);
	ts_unload(&scr);
}

static void test_interop_cissa(void **state)
{
	enum cissa_impl impl[2];
	int ni = cissa_impls(impl);

	(void)state;
	for (int k = 0; k < ni; k++) {
		descramble_file(CISSA_TS, CW_ALG_CISSA, false, cissa_cw, impl[k]);
		scramble_file(CISSA_TS, CW_ALG_CISSA, false, cissa_cw, impl[k]);
		/* csa2_reduce is ignored for CISSA */
		descramble_file(CISSA_TS, CW_ALG_CISSA, true, cissa_cw, impl[k]);
	}
}

/* ---- round trips on random packets ---- */

#define RT_PKTS 700

static void roundtrip(enum cw_alg alg, enum cissa_impl impl)
{
	uint8_t *orig = malloc(RT_PKTS * TS_PACKET_BYTES);
	uint8_t *buf = malloc(RT_PKTS * TS_PACKET_BYTES);
	uint8_t *ptrs[RT_PKTS], *even[RT_PKTS], *odd[RT_PKTS];
	uint8_t k_even[16], k_odd[16];
	size_t klen = cw_alg_key_bytes(alg), ne = 0, no = 0, with_payload = 0;
	size_t done = 0, missing = 0;
	unsigned min_len = alg == CW_ALG_CSA2 ? 8 : 16;
	struct ts_cipher *c;

	assert_non_null(orig);
	assert_non_null(buf);
	rnd_fill(k_even, sizeof(k_even));
	rnd_fill(k_odd, sizeof(k_odd));
	c = new_keyed(alg, true, k_even, k_odd);
	if (alg == CW_ALG_CISSA)
		assert_int_equal(ts_cipher_set_cissa_impl(c, impl), 0);
	for (size_t i = 0; i < RT_PKTS; i++) {
		/* the first 190 cover every adaptation length, then random */
		if (i < 183)
			make_pkt(orig + i * TS_PACKET_BYTES, 1, (unsigned)i);
		else if (i < 190)
			make_pkt(orig + i * TS_PACKET_BYTES, (int)(i % 3), rnd() % 183);
		else
			make_random_pkt(orig + i * TS_PACKET_BYTES);
		ptrs[i] = buf + i * TS_PACKET_BYTES;
		if (rnd() & 1)
			even[ne++] = ptrs[i];
		else
			odd[no++] = ptrs[i];
	}
	memcpy(buf, orig, RT_PKTS * TS_PACKET_BYTES);
	assert_int_equal(ts_cipher_scramble(c, even, ne, CW_EVEN), 0);
	assert_int_equal(ts_cipher_scramble(c, odd, no, CW_ODD), 0);
	for (size_t i = 0; i < RT_PKTS; i++) {
		const uint8_t *o = orig + i * TS_PACKET_BYTES, *p = ptrs[i];
		struct ts_hdr h;
		unsigned off;
		bool is_odd = false;

		for (size_t j = 0; j < no; j++)
			is_odd |= odd[j] == p;
		assert_int_equal(ts_parse(o, &h), 0);
		if (!h.has_payload) {
			assert_memory_equal(o, p, TS_PACKET_BYTES);
			continue;
		}
		with_payload++;
		off = h.payload_off;
		/* header and adaptation field untouched but for the bits */
		assert_int_equal(p[3] >> 6, is_odd ? TS_SC_ODD : TS_SC_EVEN);
		assert_int_equal(p[3] & 0x3F, o[3] & 0x3F);
		assert_memory_equal(o, p, 3);
		assert_memory_equal(o + 4, p + 4, off - 4);
		if (h.payload_len >= min_len)
			assert_memory_not_equal(o + off, p + off, min_len);
		else
			assert_memory_equal(o + off, p + off, h.payload_len);
		if (alg == CW_ALG_CISSA) { /* residue clear */
			unsigned res = h.payload_len % 16;

			assert_memory_equal(o + TS_PACKET_BYTES - res, p + TS_PACKET_BYTES - res, res);
		}
	}
	/* descramble everything, both parities mixed, in one call */
	assert_int_equal(ts_cipher_descramble(c, ptrs, RT_PKTS, &done, &missing), 0);
	assert_int_equal(done, with_payload);
	assert_int_equal(missing, 0);
	assert_memory_equal(orig, buf, RT_PKTS * TS_PACKET_BYTES);
	/* and again one packet per call */
	assert_int_equal(ts_cipher_scramble(c, even, ne, CW_EVEN), 0);
	assert_int_equal(ts_cipher_scramble(c, odd, no, CW_ODD), 0);
	for (size_t i = 0; i < RT_PKTS; i++)
		assert_int_equal(ts_cipher_descramble(c, &ptrs[i], 1, NULL, NULL), 0);
	assert_memory_equal(orig, buf, RT_PKTS * TS_PACKET_BYTES);
	/* a wrong key gives garbage, not the clear packets */
	rnd_fill(k_even, sizeof(k_even));
	assert_int_equal(ts_cipher_scramble(c, ptrs, RT_PKTS, CW_EVEN), 0);
	assert_int_equal(ts_cipher_set_key(c, CW_EVEN, k_even, klen), 0);
	assert_int_equal(ts_cipher_descramble(c, ptrs, RT_PKTS, &done, NULL), 0);
	assert_int_equal(done, with_payload);
	assert_memory_not_equal(orig, buf, RT_PKTS * TS_PACKET_BYTES);
	ts_cipher_free(c);
	free(orig);
	free(buf);
}

static void test_roundtrip_csa2(void **state)
{
	(void)state;
	for (int k = 0; k < 3; k++)
		roundtrip(CW_ALG_CSA2, 0);
}

static void test_roundtrip_cissa(void **state)
{
	enum cissa_impl impl[2];
	int ni = cissa_impls(impl);

	(void)state;
	for (int k = 0; k < ni; k++)
		for (int j = 0; j < 3; j++)
			roundtrip(CW_ALG_CISSA, impl[k]);
}

/* The AES-NI path gives exactly the OpenSSL path's bytes, on batches of
 * every size around the lane count and random adaptation fields. */
static void test_cissa_aesni_equals_openssl(void **state)
{
	enum cissa_impl impl[2];
	uint8_t key[16], odd_key[16];
	struct ts_cipher *a, *b;

	(void)state;
	if (cissa_impls(impl) < 2) {
		skip();
		return;
	}
	rnd_fill(key, sizeof(key));
	rnd_fill(odd_key, sizeof(odd_key));
	a = new_keyed(CW_ALG_CISSA, false, key, odd_key);
	b = new_keyed(CW_ALG_CISSA, false, key, odd_key);
	assert_int_equal(ts_cipher_set_cissa_impl(a, CISSA_IMPL_OPENSSL), 0);
	assert_int_equal(ts_cipher_set_cissa_impl(b, CISSA_IMPL_AESNI), 0);
	for (size_t n = 1; n <= 40; n++) {
		uint8_t x[40][TS_PACKET_BYTES], y[40][TS_PACKET_BYTES];
		uint8_t *px[40], *py[40];
		enum cw_parity par = (n & 1) ? CW_ODD : CW_EVEN;

		for (size_t i = 0; i < n; i++) {
			make_random_pkt(x[i]);
			memcpy(y[i], x[i], TS_PACKET_BYTES);
			px[i] = x[i];
			py[i] = y[i];
		}
		assert_int_equal(ts_cipher_scramble(a, px, n, par), 0);
		assert_int_equal(ts_cipher_scramble(b, py, n, par), 0);
		assert_memory_equal(x, y, n * TS_PACKET_BYTES);
		/* decrypt across: AES-NI undoes OpenSSL and the reverse */
		assert_int_equal(ts_cipher_descramble(b, px, n, NULL, NULL), 0);
		assert_int_equal(ts_cipher_descramble(a, py, n, NULL, NULL), 0);
		assert_memory_equal(x, y, n * TS_PACKET_BYTES);
	}
	ts_cipher_free(a);
	ts_cipher_free(b);
}

/* ---- missing keys, refused batches, bad packets ---- */

static void test_missing_key(void **state)
{
	static const enum cw_alg algs[2] = {CW_ALG_CSA2, CW_ALG_CISSA};

	(void)state;
	for (int a = 0; a < 2; a++) {
		uint8_t pk[10][TS_PACKET_BYTES], orig[10][TS_PACKET_BYTES], *p[10];
		uint8_t key[16];
		struct ts_cipher *c;
		size_t done = 9, missing = 9;

		rnd_fill(key, sizeof(key));
		c = ts_cipher_new(algs[a], true);
		assert_non_null(c);
		for (int i = 0; i < 10; i++) {
			make_pkt(pk[i], 0, 0);
			p[i] = pk[i];
		}
		/* no key at all */
		assert_int_equal(ts_cipher_scramble(c, p, 10, CW_EVEN), CE_NO_KEY);
		assert_int_equal(ts_cipher_set_key(c, CW_EVEN, key, cw_alg_key_bytes(algs[a])), 0);
		assert_int_equal(ts_cipher_scramble(c, p, 10, CW_ODD), CE_NO_KEY);
		assert_int_equal(p[0][3] >> 6, TS_SC_CLEAR);
		assert_int_equal(ts_cipher_set_key(c, CW_ODD, key, cw_alg_key_bytes(algs[a])), 0);
		assert_int_equal(ts_cipher_scramble(c, p, 4, CW_EVEN), 0);
		assert_int_equal(ts_cipher_scramble(c, p + 4, 6, CW_ODD), 0);
		memcpy(orig, pk, sizeof(pk));
		/* odd key gone: 6 odd packets left as they are and counted */
		ts_cipher_clear_key(c, CW_ODD);
		assert_int_equal(ts_cipher_descramble(c, p, 10, &done, &missing), 0);
		assert_int_equal(done, 4);
		assert_int_equal(missing, 6);
		assert_memory_equal(pk[4], orig[4], 6 * TS_PACKET_BYTES);
		for (int i = 0; i < 4; i++)
			assert_int_equal(pk[i][3] >> 6, TS_SC_CLEAR);
		/* no key left: everything missing, nothing touched */
		ts_cipher_clear_key(c, CW_EVEN);
		memcpy(orig, pk, sizeof(pk));
		assert_int_equal(ts_cipher_descramble(c, p, 10, &done, &missing), 0);
		assert_int_equal(done, 0);
		assert_int_equal(missing, 6);
		assert_memory_equal(pk, orig, sizeof(pk));
		/* reserved scrambling_control 01 is never descrambled */
		ts_set_scrambling(pk[0], 1);
		assert_int_equal(ts_cipher_set_key(c, CW_EVEN, key, cw_alg_key_bytes(algs[a])), 0);
		assert_int_equal(ts_cipher_descramble(c, p, 1, &done, &missing), 0);
		assert_int_equal(done, 0);
		assert_int_equal(missing, 1);
		assert_int_equal(pk[0][3] >> 6, 1);
		/* NULL counters are allowed */
		assert_int_equal(ts_cipher_descramble(c, p, 10, NULL, NULL), 0);
		ts_cipher_free(c);
	}
}

/* A scrambled-flagged packet without payload: bits reset, counted done. */
static void test_no_payload(void **state)
{
	uint8_t pk[TS_PACKET_BYTES], orig[TS_PACKET_BYTES], *p = pk;
	struct ts_cipher *c = new_keyed(CW_ALG_CSA2, true, csa2_cw, NULL);
	size_t done = 0;

	(void)state;
	make_pkt(pk, 2, 183);
	memcpy(orig, pk, sizeof(pk));
	assert_int_equal(ts_cipher_scramble(c, &p, 1, CW_EVEN), 0);
	assert_memory_equal(pk, orig, sizeof(pk)); /* left as it is */
	ts_set_scrambling(pk, TS_SC_EVEN);
	assert_int_equal(ts_cipher_descramble(c, &p, 1, &done, NULL), 0);
	assert_int_equal(done, 1);
	assert_memory_equal(pk, orig, sizeof(pk));
	/* empty batches */
	assert_int_equal(ts_cipher_scramble(c, NULL, 0, CW_EVEN), 0);
	assert_int_equal(ts_cipher_descramble(c, NULL, 0, &done, NULL), 0);
	assert_int_equal(done, 0);
	assert_int_equal(ts_cipher_scramble(c, NULL, 2, CW_EVEN), CE_ARG);
	assert_int_equal(ts_cipher_scramble(c, &p, 1, (enum cw_parity)5), CE_ARG);
	assert_int_equal(ts_cipher_descramble(NULL, &p, 1, NULL, NULL), CE_ARG);
	ts_cipher_free(c);
}

/* Bad packets: header bytes that ts_parse refuses. */
struct bad_case {
	const char *what;
	int byte; /* index to set, -1 none */
	uint8_t val;
	uint8_t byte3; /* scrambling/AFC/CC */
};

static const struct bad_case bad_cases[] = {
    {"sync byte 0x00", 0, 0x00, 0x90},
    {"sync byte 0xB8", 0, 0xB8, 0x90},
    {"AFC 00 (reserved)", -1, 0, 0x80},
    {"AFC 00 scrambled odd", -1, 0, 0xC0},
    {"AF length 183 with payload", 4, 183, 0xB0},
    {"AF length 184 with payload", 4, 184, 0xB0},
    {"AF length 255 with payload", 4, 255, 0xB0},
    {"AF length 182 without payload", 4, 182, 0xA0},
    {"AF length 0 without payload", 4, 0, 0xA0},
};

static void test_bad_packets(void **state)
{
	static const enum cw_alg algs[2] = {CW_ALG_CSA2, CW_ALG_CISSA};

	(void)state;
	for (int a = 0; a < 2; a++) {
		struct ts_cipher *c = new_keyed(algs[a], true, cissa_cw, cissa_cw);

		for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); k++) {
			const struct bad_case *bc = &bad_cases[k];
			uint8_t pk[3][TS_PACKET_BYTES], orig[3][TS_PACKET_BYTES], bad[TS_PACKET_BYTES];
			uint8_t *p[3] = {pk[0], pk[1], pk[2]};
			size_t done = 0, missing = 0;

			make_pkt(pk[0], 0, 0);
			make_pkt(pk[2], 1, 20);
			assert_int_equal(ts_cipher_scramble(c, &p[0], 1, CW_EVEN), 0);
			assert_int_equal(ts_cipher_scramble(c, &p[2], 1, CW_ODD), 0);
			make_pkt(pk[1], 0, 0);
			pk[1][3] = (uint8_t)((pk[1][3] & 0x0F) | bc->byte3);
			if (bc->byte >= 0)
				pk[1][bc->byte] = bc->val;
			memcpy(bad, pk[1], sizeof(bad));
			memcpy(orig, pk, sizeof(pk));
			/* descramble: the bad one skipped and reported, the rest done */
			assert_int_equal(ts_cipher_descramble(c, p, 3, &done, &missing), CE_FORMAT);
			assert_int_equal(done, 2);
			assert_int_equal(missing, 0);
			assert_memory_equal(pk[1], bad, TS_PACKET_BYTES);
			assert_int_equal(pk[0][3] >> 6, TS_SC_CLEAR);
			assert_int_equal(pk[2][3] >> 6, TS_SC_CLEAR);
			/* scramble: the whole batch refused, nothing changed */
			memcpy(orig, pk, sizeof(pk));
			if (ts_cipher_scramble(c, p, 3, CW_EVEN) != CE_FORMAT)
				fail_msg("%s: scramble accepted a bad packet", bc->what);
			assert_memory_equal(pk, orig, sizeof(pk));
		}
		ts_cipher_free(c);
	}
}

/* Already-scrambled input is refused with nothing changed. */
static void test_already_scrambled(void **state)
{
	static const enum cw_alg algs[2] = {CW_ALG_CSA2, CW_ALG_CISSA};

	(void)state;
	for (int a = 0; a < 2; a++) {
		struct ts_cipher *c = new_keyed(algs[a], false, cissa_cw, cissa_cw);

		for (uint8_t sc = 1; sc <= 3; sc++) {
			uint8_t pk[300][TS_PACKET_BYTES], orig[300][TS_PACKET_BYTES], *p[300];

			for (int i = 0; i < 300; i++) {
				make_random_pkt(pk[i]);
				p[i] = pk[i];
			}
			ts_set_scrambling(pk[299], sc); /* the last one, after a full gather */
			memcpy(orig, pk, sizeof(pk));
			assert_int_equal(ts_cipher_scramble(c, p, 300, CW_ODD), CE_FORMAT);
			assert_memory_equal(pk, orig, sizeof(pk));
			p[150] = NULL;
			ts_set_scrambling(pk[299], 0);
			memcpy(orig, pk, sizeof(pk));
			assert_int_equal(ts_cipher_scramble(c, p, 300, CW_EVEN), CE_FORMAT);
			assert_memory_equal(pk, orig, sizeof(pk));
		}
		ts_cipher_free(c);
	}
}

/* The fuzz target's corpus (and any finding kept there) replayed. */
static void test_fuzz_corpus(void **state)
{
	char dir[4096];
	DIR *d;
	struct dirent *e;
	size_t files = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s", tu_testdata("../../fuzz/corpus/descramble"));
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[4600];
		uint8_t *buf;
		size_t len;
		struct ts_cipher *c[2];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		buf = tu_read(path, &len);
		/* the same as fuzz/fuzz_descramble.c, both algorithms */
		c[0] = new_keyed(CW_ALG_CSA2, true, csa2_cw, csa2_cw);
		c[1] = new_keyed(CW_ALG_CISSA, false, cissa_cw, NULL);
		for (int a = 0; a < 2; a++) {
			uint8_t *p[64];
			size_t n = 0;

			for (size_t off = 0; len - off >= TS_PACKET_BYTES && n < 64; off += TS_PACKET_BYTES)
				p[n++] = buf + off;
			(void)ts_cipher_descramble(c[a], p, n, NULL, NULL);
			ts_cipher_free(c[a]);
		}
		free(buf);
		files++;
	}
	closedir(d);
	assert_true(files > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alg_table),
	    cmocka_unit_test(test_reduce),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_interop_csa2),
	    cmocka_unit_test(test_interop_csa2_noreduce),
	    cmocka_unit_test(test_interop_cissa),
	    cmocka_unit_test(test_roundtrip_csa2),
	    cmocka_unit_test(test_roundtrip_cissa),
	    cmocka_unit_test(test_cissa_aesni_equals_openssl),
	    cmocka_unit_test(test_missing_key),
	    cmocka_unit_test(test_no_payload),
	    cmocka_unit_test(test_bad_packets),
	    cmocka_unit_test(test_already_scrambled),
	    cmocka_unit_test(test_fuzz_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
