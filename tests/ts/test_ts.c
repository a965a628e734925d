/*
 * test_ts.c - transport stream packets, PSI tables, section reassembly and
 * TS I/O endpoints (src/ts/). Real streams: tests/data/simulcrypt/captures
 * ts-clear-2svc.ts (ffmpeg) and the TSDuck CISSA-scrambled copy.
 */
#include <arpa/inet.h>
#include <unistd.h>
#include "lib/bytes.h"
#include "testutil.h"
#include "lib/cursor.h"
#include "ts/ts.h"
#include "ts/psi.h"
#include "ts/tsio.h"

#define CLEAR_TS "ts-clear-2svc.ts"
#define CISSA_TS "simulcrypt/captures/ts-cissa-svc101-cw00112233445566778899aabbccddeeff.ts"

static void fix_crc(uint8_t *sec, size_t len)
{
	put_be32(sec + len - 4, crc32_mpeg(sec, len - 4));
}

/* ---- collecting sections ---- */

struct coll {
	size_t n;
	uint16_t pid[64];
	size_t len[64];
	uint8_t sec[64][PSI_MAX_SECTION];
};

static int coll_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct coll *c = ctx;

	if (c->n < 64) {
		c->pid[c->n] = pid;
		c->len[c->n] = len;
		memcpy(c->sec[c->n], sec, len);
	}
	c->n++;
	return 0;
}

static void push_all(struct psi_asm *a, const uint8_t *pkts, size_t n, struct coll *c)
{
	for (size_t i = 0; i < n; i++) {
		struct ts_hdr h;

		assert_int_equal(ts_parse(pkts + i * TS_PACKET_BYTES, &h), 0);
		assert_int_equal(psi_asm_push(a, pkts + i * TS_PACKET_BYTES, &h, coll_cb, c), 0);
	}
}

/* ---- CRC ---- */

static void test_crc(void **state)
{
	(void)state;
	/* CRC-32/MPEG-2 check value */
	assert_int_equal(crc32_mpeg((const uint8_t *)"123456789", 9), 0x0376E6E7u);
	assert_int_equal(crc32_mpeg(NULL, 0), 0xFFFFFFFFu);
}

/* ---- packet header ---- */

static void test_ts_parse_fields(void **state)
{
	uint8_t p[TS_PACKET_BYTES];
	struct ts_hdr h;

	(void)state;
	memset(p, 0xFF, sizeof(p));
	p[0] = 0x47; p[1] = 0xC1; p[2] = 0x23; p[3] = 0xF5; /* TEI PUSI pid 0x123, odd, AF+payload, cc 5 */
	p[4] = 7; p[5] = 0x90;                              /* discontinuity, PCR */
	/* PCR base 0x1_0000_0001, ext 0x101 */
	p[6] = 0x80; p[7] = 0x00; p[8] = 0x00; p[9] = 0x00; p[10] = 0x80 | 0x7E | 0x01; p[11] = 0x01;
	assert_int_equal(ts_parse(p, &h), 0);
	assert_int_equal(h.pid, 0x123);
	assert_true(h.tei);
	assert_true(h.pusi);
	assert_int_equal(h.scrambling, TS_SC_ODD);
	assert_true(h.has_af);
	assert_true(h.has_payload);
	assert_int_equal(h.cc, 5);
	assert_true(h.discontinuity);
	assert_true(h.has_pcr);
	assert_int_equal(h.pcr, 0x100000001ull * 300 + 0x101);
	assert_int_equal(h.payload_off, 12);
	assert_int_equal(h.payload_len, 176);

	ts_set_pid(p, 0x1FFE);
	ts_set_cc(p, 0xF);
	ts_set_scrambling(p, TS_SC_EVEN);
	assert_int_equal(ts_parse(p, &h), 0);
	assert_int_equal(h.pid, 0x1FFE);
	assert_int_equal(h.cc, 15);
	assert_int_equal(h.scrambling, TS_SC_EVEN);
	assert_true(h.tei && h.pusi); /* setters keep the other bits */

	/* AF only, 183 bytes: no payload */
	p[3] = 0x20; p[4] = 183; p[5] = 0;
	assert_int_equal(ts_parse(p, &h), 0);
	assert_false(h.has_payload);
	assert_int_equal(h.payload_len, 0);
	/* AF with PCR flag but too short to hold the PCR: no PCR */
	p[3] = 0x30; p[4] = 3; p[5] = 0x10;
	assert_int_equal(ts_parse(p, &h), 0);
	assert_false(h.has_pcr);
	assert_int_equal(h.payload_off, 8);
	/* AF length 0 (one stuffing byte) */
	p[4] = 0;
	assert_int_equal(ts_parse(p, &h), 0);
	assert_int_equal(h.payload_off, 5);
	assert_int_equal(h.payload_len, 183);

	ts_make_null(p);
	assert_int_equal(ts_parse(p, &h), 0);
	assert_int_equal(h.pid, TS_PID_NULL);
	assert_int_equal(h.payload_len, 184);
	assert_int_equal(p[187], 0xFF);
}

static void test_ts_parse_bad(void **state)
{
	static const struct { const char *what; uint8_t b0, b3, af_len; } bad[] = {
		{ "bad sync", 0x46, 0x10, 0 },
		{ "sync 0", 0x00, 0x10, 0 },
		{ "reserved AF control 00", 0x47, 0x00, 0 },
		{ "AF+payload, AF length 183", 0x47, 0x30, 183 },
		{ "AF+payload, AF length 184", 0x47, 0x30, 184 },
		{ "AF+payload, AF length 255", 0x47, 0x30, 255 },
		{ "AF only, AF length 182", 0x47, 0x20, 182 },
		{ "AF only, AF length 184", 0x47, 0x20, 184 },
		{ "AF only, AF length 0", 0x47, 0x20, 0 },
	};
	uint8_t p[TS_PACKET_BYTES];
	struct ts_hdr h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(p, 0, sizeof(p));
		p[0] = bad[i].b0;
		p[3] = bad[i].b3;
		p[4] = bad[i].af_len;
		memset(&h, 0xAA, sizeof(h));
		if (ts_parse(p, &h) != CE_FORMAT)
			fail_msg("accepted: %s", bad[i].what);
		assert_int_equal(h.pid, 0); /* zeroed on failure */
		assert_int_equal(h.payload_len, 0);
	}
}

/* ---- the real stream ---- */

struct scan {
	struct pat pat;
	struct pmt *pmt[2];
	size_t npat, npmt[2];
	uint8_t pat_sec[1024];
	size_t pat_len;
	uint8_t pmt_sec[2][1024];
	size_t pmt_len[2];
};

static int scan_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct scan *s = ctx;
	uint8_t out[PSI_MAX_SECTION];
	size_t ol;

	if (pid == TS_PID_PAT) {
		assert_int_equal(pat_parse(sec, len, &s->pat), 0);
		assert_int_equal(pat_build(&s->pat, out, sizeof(out), &ol), 0);
		assert_int_equal(ol, len);
		assert_memory_equal(out, sec, len);
		memcpy(s->pat_sec, sec, len);
		s->pat_len = len;
		s->npat++;
	} else {
		int k = pid - 0x1000;

		assert_true(k == 0 || k == 1);
		assert_int_equal(pmt_parse(sec, len, s->pmt[k]), 0);
		assert_int_equal(pmt_build(s->pmt[k], out, sizeof(out), &ol), 0);
		assert_int_equal(ol, len);
		assert_memory_equal(out, sec, len);
		memcpy(s->pmt_sec[k], sec, len);
		s->pmt_len[k] = len;
		s->npmt[k]++;
	}
	return 0;
}

static void scan_file(const char *rel, struct scan *s)
{
	size_t len;
	uint8_t *ts = tu_read(tu_testdata(rel), &len);
	struct psi_asm *a = calloc(3, sizeof(*a));
	size_t counts[3] = { 0 };

	assert_non_null(a);
	assert_int_equal(len % TS_PACKET_BYTES, 0);
	psi_asm_init(&a[0], 0);
	psi_asm_init(&a[1], 0x1000);
	psi_asm_init(&a[2], 0x1001);
	for (size_t off = 0; off < len; off += TS_PACKET_BYTES) {
		struct ts_hdr h;

		assert_int_equal(ts_parse(ts + off, &h), 0);
		for (int k = 0; k < 3; k++)
			if (h.pid == a[k].pid) {
				assert_int_equal(psi_asm_push(&a[k], ts + off, &h, scan_cb, s), 0);
				counts[k]++;
			}
	}
	for (int k = 0; k < 3; k++) {
		assert_int_equal(counts[k], 21);
		assert_int_equal(a[k].errors, 0);
	}
	free(a);
	free(ts);
}

static void test_clear_stream(void **state)
{
	struct scan s;
	size_t len, npkts = 0, pcrs = 0;
	uint8_t *ts;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.pmt[0] = calloc(1, sizeof(struct pmt));
	s.pmt[1] = calloc(1, sizeof(struct pmt));
	assert_non_null(s.pmt[0]);
	assert_non_null(s.pmt[1]);
	scan_file(CLEAR_TS, &s);
	assert_int_equal(s.npat, 21);
	assert_int_equal(s.npmt[0], 21);
	assert_int_equal(s.npmt[1], 21);
	assert_int_equal(s.pat.tsid, 1);
	assert_int_equal(s.pat.nprog, 2);
	assert_int_equal(s.pat.prog[0].program, 101);
	assert_int_equal(s.pat.prog[0].pid, 0x1000);
	assert_int_equal(s.pat.prog[1].program, 102);
	assert_int_equal(s.pat.prog[1].pid, 0x1001);
	for (int k = 0; k < 2; k++) {
		struct pmt *p = s.pmt[k];

		assert_int_equal(p->program, 101 + k);
		assert_int_equal(p->nes, 2);
		assert_int_equal(p->es[0].pid, 0x0100 + 2 * k);
		assert_int_equal(p->es[0].stream_type, 0x02); /* MPEG-2 video */
		assert_int_equal(p->es[1].pid, 0x0101 + 2 * k);
		assert_int_equal(p->es[1].stream_type, 0x03); /* MPEG-1 audio */
		assert_int_equal(p->pcr_pid, 0x0100 + 2 * k);
		assert_int_equal(p->info_len, 0);
	}
	/* every packet parses; PCRs are found on the PCR PIDs */
	ts = tu_read(tu_testdata(CLEAR_TS), &len);
	for (size_t off = 0; off < len; off += TS_PACKET_BYTES) {
		struct ts_hdr h;

		assert_int_equal(ts_parse(ts + off, &h), 0);
		assert_true(h.payload_off + h.payload_len == TS_PACKET_BYTES || !h.has_payload);
		if (h.has_pcr) {
			assert_true(h.pid == 0x0100 || h.pid == 0x0102);
			pcrs++;
		}
		npkts++;
	}
	assert_int_equal(npkts, 5319);
	assert_true(pcrs > 0);
	free(ts);
	free(s.pmt[0]);
	free(s.pmt[1]);
}

static void test_cissa_pmt(void **state)
{
	struct scan s;
	const uint8_t *d;
	size_t nca;
	struct ca_desc ca[2];

	(void)state;
	memset(&s, 0, sizeof(s));
	s.pmt[0] = calloc(1, sizeof(struct pmt));
	s.pmt[1] = calloc(1, sizeof(struct pmt));
	assert_non_null(s.pmt[0]);
	assert_non_null(s.pmt[1]);
	scan_file(CISSA_TS, &s);
	/* service 101 carries scrambling_descriptor 65 01 10 (DVB-CISSA v1) */
	assert_int_equal(s.pmt[0]->program, 101);
	assert_int_equal(s.pmt[0]->info_len, 3);
	d = s.pmt[0]->info;
	assert_int_equal(d[0], 0x65);
	assert_int_equal(d[1], 1);
	assert_int_equal(d[2], 0x10);
	assert_int_equal(ca_desc_find(d, s.pmt[0]->info_len, ca, 2, &nca), 0);
	assert_int_equal(nca, 0);
	assert_int_equal(s.pmt[1]->info_len, 0);
	free(s.pmt[0]);
	free(s.pmt[1]);
}

static void test_ca_desc_roundtrip(void **state)
{
	struct scan s;
	struct pmt *p2 = calloc(1, sizeof(*p2));
	struct ca_desc ca = { .ca_system_id = 0x4ADC, .ca_pid = 0x0200, .priv_len = 3,
		.priv = { 1, 2, 3 } };
	struct ca_desc ca2 = { .ca_system_id = 0x0B00, .ca_pid = 0x0201 };
	struct ca_desc found[4];
	uint8_t sec[PSI_MAX_SECTION];
	size_t sl, n;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.pmt[0] = calloc(1, sizeof(struct pmt));
	s.pmt[1] = calloc(1, sizeof(struct pmt));
	assert_non_null(p2);
	scan_file(CLEAR_TS, &s);

	/* program-level CA descriptor and one on the video ES */
	assert_int_equal(ca_desc_append(s.pmt[0]->info, sizeof(s.pmt[0]->info), &s.pmt[0]->info_len, &ca), 0);
	assert_int_equal(ca_desc_append(s.pmt[0]->es[0].info, sizeof(s.pmt[0]->es[0].info),
		&s.pmt[0]->es[0].info_len, &ca2), 0);
	assert_int_equal(pmt_build(s.pmt[0], sec, sizeof(sec), &sl), 0);
	assert_int_equal(sl, s.pmt_len[0] + 9 + 6);
	assert_int_equal(pmt_parse(sec, sl, p2), 0);
	assert_int_equal(p2->info_len, 9);
	assert_int_equal(ca_desc_find(p2->info, p2->info_len, found, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(found[0].ca_system_id, 0x4ADC);
	assert_int_equal(found[0].ca_pid, 0x0200);
	assert_int_equal(found[0].priv_len, 3);
	assert_memory_equal(found[0].priv, ca.priv, 3);
	assert_int_equal(ca_desc_find(p2->es[0].info, p2->es[0].info_len, found, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(found[0].ca_system_id, 0x0B00);
	assert_int_equal(found[0].ca_pid, 0x0201);
	assert_int_equal(found[0].priv_len, 0);

	/* remove only 0x4ADC; then 0x0B00: back to the original bytes */
	ca_desc_remove(p2->info, &p2->info_len, 0x0B00);
	assert_int_equal(p2->info_len, 9);
	ca_desc_remove(p2->info, &p2->info_len, 0x4ADC);
	assert_int_equal(p2->info_len, 0);
	ca_desc_remove(p2->es[0].info, &p2->es[0].info_len, 0x0B00);
	assert_int_equal(pmt_build(p2, sec, sizeof(sec), &sl), 0);
	assert_int_equal(sl, s.pmt_len[0]);
	assert_memory_equal(sec, s.pmt_sec[0], sl);

	/* a loop with other descriptors around the CA one */
	{
		uint8_t loop[64] = { 0x52, 1, 7 };
		uint16_t ll = 3;
		static const uint8_t want[] = { 0x52, 1, 7, 0x0A, 4, 'e', 'n', 'g', 0 };

		assert_int_equal(ca_desc_append(loop, sizeof(loop), &ll, &ca), 0);
		memcpy(loop + ll, want + 3, 6);
		ll += 6;
		assert_int_equal(ca_desc_find(loop, ll, found, 4, &n), 0);
		assert_int_equal(n, 1);
		/* max 0: counts nothing but still validates */
		assert_int_equal(ca_desc_find(loop, ll, NULL, 0, &n), 0);
		assert_int_equal(n, 0);
		ca_desc_remove(loop, &ll, 0x4ADC);
		assert_int_equal(ll, sizeof(want));
		assert_memory_equal(loop, want, sizeof(want));
		/* full buffer */
		ll = 60;
		assert_int_equal(ca_desc_append(loop, sizeof(loop), &ll, &ca), CE_OVERFLOW);
		assert_int_equal(ll, 60);
	}
	free(p2);
	free(s.pmt[0]);
	free(s.pmt[1]);
}

static void test_cat_roundtrip(void **state)
{
	struct cat cat, cat2;
	uint8_t sec[1024];
	size_t sl, n;
	struct ca_desc ca = { .ca_system_id = 0x4ADC, .ca_pid = 0x1FF0 }, f[2];

	(void)state;
	memset(&cat, 0, sizeof(cat));
	cat.version = 5;
	assert_int_equal(ca_desc_append(cat.info, sizeof(cat.info), &cat.info_len, &ca), 0);
	assert_int_equal(cat_build(&cat, sec, sizeof(sec), &sl), 0);
	assert_int_equal(sl, 8 + 6 + 4);
	assert_int_equal(sec[0], TID_CAT);
	assert_int_equal(tu_be16(sec + 3), 0xFFFF);
	assert_int_equal(cat_parse(sec, sl, &cat2), 0);
	assert_int_equal(cat2.version, 5);
	assert_int_equal(ca_desc_find(cat2.info, cat2.info_len, f, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(f[0].ca_pid, 0x1FF0);
	/* a CAT is not a PAT or PMT */
	assert_int_equal(pat_parse(sec, sl, &(struct pat){ 0 }), CE_FORMAT);
	/* builder capacity */
	assert_int_equal(cat_build(&cat, sec, 10, &sl), CE_OVERFLOW);
	assert_int_equal(sl, 0);
}

/* ---- bad sections ---- */

/* A valid PMT: program 7, PCR 0x100, program_info = one CA descriptor,
 * two ES with a 3-byte descriptor each. */
static size_t make_pmt(uint8_t *s)
{
	static const uint8_t body[] = {
		0x02, 0xB0, 0x00, 0x00, 0x07, 0xC1, 0x00, 0x00,
		0xE1, 0x00, 0xF0, 0x06, 0x09, 0x04, 0x4A, 0xDC, 0xE2, 0x00,
		0x02, 0xE1, 0x00, 0xF0, 0x03, 0x52, 0x01, 0x01,
		0x03, 0xE1, 0x01, 0xF0, 0x03, 0x52, 0x01, 0x02,
		0, 0, 0, 0,
	};
	memcpy(s, body, sizeof(body));
	s[2] = sizeof(body) - 3;
	fix_crc(s, sizeof(body));
	return sizeof(body);
}

enum { T_PAT, T_PMT, T_CAT, T_LONG };

/* fuzz_psi finding: a well-formed CAT loop holding a CA descriptor of
 * length 0 (shorter than its 4 fixed bytes). cat_parse accepts the loop
 * (it checks only the descriptor framing); ca_desc_find must reject it,
 * without reading past the descriptor. */
static void test_fuzz_regress_cat_short_ca(void **state)
{
	static const char hex[] =
		"01b05347ffc10000090a00000000010900000000000000000000000000000000"
		"0000090000000000000000000000000000000000000000000000000000000000"
		"000000000000000000000000000000000000002eeff3";
	uint8_t s[128];
	size_t l, n = 7;
	struct cat cat;
	struct ca_desc f[PSI_MAX_CA];

	(void)state;
	assert_int_equal(hex_decode_var(hex, s, sizeof(s), &l), 0);
	assert_int_equal(l, 86);
	fix_crc(s, l);
	assert_int_equal(cat_parse(s, l, &cat), 0);
	assert_int_equal(cat.info_len, 74);
	assert_int_equal(ca_desc_find(cat.info, cat.info_len, f, PSI_MAX_CA, &n), CE_FORMAT);
	assert_int_equal(n, 0);
	/* removing by CA_system_id leaves the short descriptor alone */
	ca_desc_remove(cat.info, &cat.info_len, 0x0000);
	assert_int_equal(cat.info_len, 74 - 12);
}

static void test_psi_bad(void **state)
{
	/* Each case edits a valid PMT (or builds a small section) and says
	 * whether to recompute the CRC afterwards. */
	static const struct {
		const char *what;
		int table;
		int off;       /* byte to change (-1: none) */
		uint8_t val;
		int dlen;      /* change of the buffer length */
		bool fix;      /* recompute the CRC */
		int want;
	} bad[] = {
		{ "section_length beyond buffer", T_PMT, 2, 0x30, 0, true, CE_TRUNCATED },
		{ "buffer shorter than section", T_PMT, -1, 0, -1, false, CE_TRUNCATED },
		{ "trailing byte after section", T_PMT, -1, 0, +1, false, CE_TRAILING },
		{ "bad CRC", T_PMT, 20, 0xE3, 0, false, CE_CRC },
		{ "program_number changed", T_PMT, 4, 0x08, 0, false, CE_CRC },
		{ "short-form section", T_PMT, 1, 0x30, 0, true, CE_FORMAT },
		{ "wrong table_id for PMT", T_PMT, 0, 0x03, 0, true, CE_FORMAT },
		{ "section_number > last", T_PMT, 6, 1, 0, true, CE_FORMAT },
		{ "program_info_length too large", T_PMT, 11, 0x40, 0, true, CE_FORMAT },
		{ "program_info_length top bits set", T_PMT, 10, 0xF4, 0, true, CE_FORMAT },
		{ "descriptor past program_info end", T_PMT, 13, 0x05, 0, true, CE_FORMAT },
		{ "ES_info_length beyond section", T_PMT, 22, 0x20, 0, true, CE_FORMAT },
		{ "ES descriptor past ES loop end", T_PMT, 24, 0x02, 0, true, CE_FORMAT },
		{ "ES descriptor short", T_PMT, 30, 0x02, 0, true, CE_FORMAT },
		{ "partial ES entry", T_PMT, -1, 0, 0, true, 0 }, /* special below */
		{ "PAT loop not multiple of 4", T_PAT, -1, 0, 0, true, CE_FORMAT },
		{ "CAT descriptor past end", T_CAT, -1, 0, 0, true, CE_FORMAT },
		{ "section_length < 9", T_LONG, -1, 0, 0, true, CE_FORMAT },
	};
	uint8_t s[PSI_MAX_SECTION + 8];
	struct pmt *pmt = calloc(1, sizeof(*pmt));
	struct pat pat;
	struct cat cat;

	(void)state;
	assert_non_null(pmt);
	/* the base is valid */
	{
		size_t l = make_pmt(s);

		assert_int_equal(pmt_parse(s, l, pmt), 0);
		assert_int_equal(pmt->nes, 2);
		assert_int_equal(pmt->info_len, 6);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t l;
		int r, want = bad[i].want;

		memset(s, 0, sizeof(s));
		switch (bad[i].table) {
		case T_PMT:
			l = make_pmt(s);
			if (strcmp(bad[i].what, "partial ES entry") == 0) {
				/* cut the second ES after 3 of its 5 bytes */
				memmove(s + 29, s + 34, 4);
				l -= 5;
				s[2] = (uint8_t)(l - 3);
				want = CE_FORMAT;
			}
			break;
		case T_PAT: {
			static const uint8_t p[] = { 0x00, 0xB0, 0x0E, 0x00, 0x01, 0xC1, 0x00, 0x00,
				0x00, 0x65, 0xF0, 0x00, 0x00, 0, 0, 0, 0 };
			memcpy(s, p, sizeof(p));
			l = sizeof(p);
			break;
		}
		case T_CAT: {
			static const uint8_t p[] = { 0x01, 0xB0, 0x0E, 0xFF, 0xFF, 0xC1, 0x00, 0x00,
				0x09, 0x04, 0x4A, 0xDC, 0xE2, 0, 0, 0, 0 };
			memcpy(s, p, sizeof(p));
			l = sizeof(p);
			break;
		}
		default: {
			static const uint8_t p[] = { 0x02, 0xB0, 0x08, 0x00, 0x01, 0xC1, 0x00, 0x00,
				0, 0, 0 };
			memcpy(s, p, sizeof(p));
			l = sizeof(p);
			break;
		}
		}
		if (bad[i].off >= 0)
			s[bad[i].off] = bad[i].val;
		l = (size_t)((long)l + bad[i].dlen);
		if (bad[i].fix && bad[i].table != T_LONG)
			fix_crc(s, l);
		switch (bad[i].table) {
		case T_PAT: r = pat_parse(s, l, &pat); break;
		case T_CAT: r = cat_parse(s, l, &cat); break;
		default: r = pmt_parse(s, l, pmt); break;
		}
		if (r != want)
			fail_msg("%s: got %d (%s), want %d", bad[i].what, r, err_str(r), want);
		assert_int_equal(pmt->nes, 0); /* zeroed on failure */
	}
	/* the generic checker agrees on lengths */
	{
		struct psi_long_hdr h;
		size_t l = make_pmt(s);

		assert_int_equal(psi_check_long(s, 2, &h), CE_TRUNCATED);
		assert_int_equal(psi_check_long(s, l, &h), 0);
		assert_int_equal(h.table_id, TID_PMT);
		assert_int_equal(h.id_ext, 7);
		assert_int_equal(h.section_length, l - 3);
		assert_true(h.current_next);
	}
	/* too many programs / ES are limits, not overflows */
	{
		size_t l = 8 + 4 * (PAT_MAX_PROGRAMS + 1) + 4;

		memset(s, 0, sizeof(s));
		s[0] = 0; s[1] = (uint8_t)(0xB0 | ((l - 3) >> 8)); s[2] = (uint8_t)(l - 3);
		s[5] = 0xC1;
		fix_crc(s, l);
		/* 257 programs cannot fit in a 1024-byte PSI section */
		assert_int_equal(pat_parse(s, l, &pat), CE_FORMAT);
		l = 8 + 4 + 5 * (PMT_MAX_ES + 1) + 4;
		memset(s, 0, sizeof(s));
		s[0] = 2; s[1] = (uint8_t)(0xB0 | ((l - 3) >> 8)); s[2] = (uint8_t)(l - 3);
		s[5] = 0xC1;
		fix_crc(s, l);
		assert_int_equal(pmt_parse(s, l, pmt), CE_LIMIT);
	}
	/* a descriptor loop with a CA descriptor too short for its fields */
	{
		static const uint8_t d1[] = { 0x09, 0x02, 0x4A, 0xDC };
		static const uint8_t d2[] = { 0x09, 0x06, 0x4A, 0xDC };
		static const uint8_t d3[] = { 0x0A };
		struct ca_desc f[1];
		size_t n = 9;

		assert_int_equal(ca_desc_find(d1, sizeof(d1), f, 1, &n), CE_FORMAT);
		assert_int_equal(n, 0);
		assert_int_equal(ca_desc_find(d2, sizeof(d2), f, 1, &n), CE_FORMAT);
		assert_int_equal(ca_desc_find(d3, sizeof(d3), f, 1, &n), CE_FORMAT);
	}
	free(pmt);
}

/* ---- packetizing and reassembly ---- */

static size_t make_private(uint8_t *s, size_t len, uint8_t seed)
{
	s[0] = 0x80;
	s[1] = (uint8_t)(0xB0 | ((len - 3) >> 8));
	s[2] = (uint8_t)(len - 3);
	for (size_t i = 3; i < len - 4; i++)
		s[i] = (uint8_t)(seed + i * 7);
	fix_crc(s, len);
	return len;
}

static void test_packetize_600(void **state)
{
	uint8_t sec[600], pk[8 * TS_PACKET_BYTES];
	struct psi_asm *a = malloc(sizeof(*a));
	struct coll *c = calloc(1, sizeof(*c));
	size_t n;
	uint8_t cc = 14;
	struct psi_long_hdr h;

	(void)state;
	assert_non_null(a);
	assert_non_null(c);
	make_private(sec, sizeof(sec), 1);
	assert_int_equal(psi_check_long(sec, sizeof(sec), &h), 0);
	assert_int_equal(ts_packets_for(600), 4);
	assert_int_equal(ts_packets_for(1), 1);
	assert_int_equal(ts_packets_for(183), 1);
	assert_int_equal(ts_packets_for(184), 2);
	assert_int_equal(ts_packets_for(367), 2);
	assert_int_equal(ts_packets_for(368), 3);
	assert_int_equal(ts_packetize(sec, sizeof(sec), 0x200, &cc, pk, 3, &n), CE_OVERFLOW);
	assert_int_equal(ts_packetize(sec, 0, 0x200, &cc, pk, 3, &n), CE_ARG);
	assert_int_equal(ts_packetize(sec, sizeof(sec), 0x2000, &cc, pk, 8, &n), CE_ARG);
	assert_int_equal(cc, 14);
	assert_int_equal(ts_packetize(sec, sizeof(sec), 0x200, &cc, pk, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(cc, 2); /* 15, 0, 1, 2 */
	for (size_t i = 0; i < n; i++) {
		struct ts_hdr th;

		assert_int_equal(ts_parse(pk + i * TS_PACKET_BYTES, &th), 0);
		assert_int_equal(th.pid, 0x200);
		assert_int_equal(th.pusi, i == 0);
		assert_int_equal(th.cc, (15 + i) & 15);
	}
	assert_int_equal(pk[4], 0); /* pointer_field */
	/* last packet: 600 - 183 - 2*184 = 49 bytes then stuffing */
	assert_int_equal(pk[3 * TS_PACKET_BYTES + 4 + 48], sec[599]);
	assert_int_equal(pk[3 * TS_PACKET_BYTES + 4 + 49], 0xFF);
	assert_int_equal(pk[4 * TS_PACKET_BYTES - 1], 0xFF);

	psi_asm_init(a, 0x200);
	push_all(a, pk, n, c);
	assert_int_equal(c->n, 1);
	assert_int_equal(c->len[0], 600);
	assert_memory_equal(c->sec[0], sec, 600);
	assert_int_equal(a->errors, 0);
	free(a);
	free(c);
}

/* Pack sections back to back into packets (the way multiplexers do: a new
 * section starts right after the previous one, pointer_field set when a
 * section starts in a packet). Returns the number of packets. */
static size_t pack_tight(const uint8_t *const *secs, const size_t *lens, size_t nsec,
	uint16_t pid, uint8_t *out, size_t cap)
{
	uint8_t stream[8192];
	size_t sl = 0, np = 0, pos = 0;
	size_t starts[16];
	uint8_t cc = 0;

	for (size_t i = 0; i < nsec; i++) {
		starts[i] = sl;
		memcpy(stream + sl, secs[i], lens[i]);
		sl += lens[i];
	}
	while (pos < sl) {
		uint8_t *p = out + np * TS_PACKET_BYTES;
		size_t at = 4, room;
		long first = -1;

		assert_true(np < cap);
		for (size_t i = 0; i < nsec; i++)
			if (starts[i] >= pos && starts[i] < pos + 183) {
				first = (long)starts[i];
				break;
			}
		p[0] = 0x47;
		p[1] = (uint8_t)((first >= 0 ? 0x40 : 0) | (pid >> 8));
		p[2] = (uint8_t)pid;
		p[3] = (uint8_t)(0x10 | (cc++ & 15));
		if (first >= 0)
			p[at++] = (uint8_t)((size_t)first - pos);
		room = TS_PACKET_BYTES - at;
		for (size_t i = 0; first < 0 && i < nsec; i++)
			if (starts[i] == pos + 183)
				room = 183; /* it must start the next packet */
		if (room > sl - pos)
			room = sl - pos;
		memcpy(p + at, stream + pos, room);
		pos += room;
		at += room;
		memset(p + at, 0xFF, TS_PACKET_BYTES - at);
		np++;
	}
	return np;
}

static void test_asm_multi(void **state)
{
	uint8_t s1[300], s2[20], s3[40], s4[500];
	const uint8_t *secs[] = { s1, s2, s3, s4 };
	size_t lens[] = { sizeof(s1), sizeof(s2), sizeof(s3), sizeof(s4) };
	uint8_t pk[16 * TS_PACKET_BYTES];
	struct psi_asm *a = malloc(sizeof(*a));
	struct coll *c = calloc(1, sizeof(*c));
	size_t np;

	(void)state;
	assert_non_null(a);
	assert_non_null(c);
	make_private(s1, sizeof(s1), 1);
	make_private(s2, sizeof(s2), 2);
	make_private(s3, sizeof(s3), 3);
	make_private(s4, sizeof(s4), 4);
	np = pack_tight(secs, lens, 4, 0x300, pk, 16);
	assert_int_equal(np, 5); /* 860 bytes + pointers */
	/* packet 1 continues s1 (117 bytes) then starts s2, s3, s4 */
	assert_int_equal(pk[TS_PACKET_BYTES + 4], 117);

	psi_asm_init(a, 0x300);
	push_all(a, pk, np, c);
	assert_int_equal(c->n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(c->len[i], lens[i]);
		assert_memory_equal(c->sec[i], secs[i], lens[i]);
		assert_int_equal(c->pid[i], 0x300);
	}
	assert_int_equal(a->errors, 0);

	/* a section header split across packets: a 181-byte first section
	 * leaves 2 bytes of the next header in packet 0 */
	{
		uint8_t t1[181], t2[100];
		const uint8_t *ss[] = { t1, t2 };
		size_t ll[] = { sizeof(t1), sizeof(t2) };

		make_private(t1, sizeof(t1), 9);
		make_private(t2, sizeof(t2), 8);
		np = pack_tight(ss, ll, 2, 0x300, pk, 16);
		assert_int_equal(np, 2);
		memset(c, 0, sizeof(*c));
		psi_asm_init(a, 0x300);
		push_all(a, pk, np, c);
		assert_int_equal(c->n, 2);
		assert_memory_equal(c->sec[1], t2, sizeof(t2));
	}
	free(a);
	free(c);
}

static void test_asm_errors(void **state)
{
	uint8_t s1[400], s2[400], pk[8 * TS_PACKET_BYTES], tmp[TS_PACKET_BYTES];
	struct psi_asm *a = malloc(sizeof(*a));
	struct coll *c = calloc(1, sizeof(*c));
	size_t n1, n2;
	uint8_t cc = 15;
	struct ts_hdr h;

	(void)state;
	assert_non_null(a);
	assert_non_null(c);
	make_private(s1, sizeof(s1), 1);
	make_private(s2, sizeof(s2), 2);
	assert_int_equal(ts_packetize(s1, sizeof(s1), 0x40, &cc, pk, 8, &n1), 0);
	assert_int_equal(ts_packetize(s2, sizeof(s2), 0x40, &cc, pk + n1 * TS_PACKET_BYTES, 8 - n1, &n2), 0);
	assert_int_equal(n1, 3);
	assert_int_equal(n2, 3);

	/* CC gap: lose packet 1 of s1: s1 dropped, s2 complete */
	psi_asm_init(a, 0x40);
	push_all(a, pk, 1, c);
	push_all(a, pk + 2 * TS_PACKET_BYTES, 4, c);
	assert_int_equal(c->n, 1);
	assert_memory_equal(c->sec[0], s2, sizeof(s2));
	assert_int_equal(a->errors, 1);

	/* duplicate packets (same CC) are ignored; TEI packets too */
	memset(c, 0, sizeof(*c));
	psi_asm_init(a, 0x40);
	for (size_t i = 0; i < n1 + n2; i++) {
		uint8_t *p = pk + i * TS_PACKET_BYTES;

		push_all(a, p, 1, c);
		push_all(a, p, 1, c); /* repeated */
		memcpy(tmp, p, sizeof(tmp));
		tmp[1] |= 0x80;       /* TEI, garbage payload */
		memset(tmp + 5, 0x11, 100);
		assert_int_equal(ts_parse(tmp, &h), 0);
		assert_int_equal(psi_asm_push(a, tmp, &h, coll_cb, c), 0);
	}
	assert_int_equal(c->n, 2);
	assert_memory_equal(c->sec[0], s1, sizeof(s1));
	assert_memory_equal(c->sec[1], s2, sizeof(s2));
	assert_int_equal(a->errors, 0);

	/* continuation packets before any PUSI are skipped */
	memset(c, 0, sizeof(*c));
	psi_asm_init(a, 0x40);
	push_all(a, pk + TS_PACKET_BYTES, 5, c);
	assert_int_equal(c->n, 1);
	assert_memory_equal(c->sec[0], s2, sizeof(s2));

	/* pointer_field past the payload: packet dropped, counted */
	memset(c, 0, sizeof(*c));
	psi_asm_init(a, 0x40);
	memcpy(tmp, pk, sizeof(tmp));
	tmp[4] = 184;
	assert_int_equal(ts_parse(tmp, &h), 0);
	assert_int_equal(psi_asm_push(a, tmp, &h, coll_cb, c), 0);
	assert_int_equal(a->errors, 1);
	assert_int_equal(c->n, 0);

	/* a section declaring more than PSI_MAX_SECTION is dropped */
	psi_asm_init(a, 0x40);
	memcpy(tmp, pk, sizeof(tmp));
	tmp[6] = 0xBF; tmp[7] = 0xFF; /* section_length 0xFFF: 4098 bytes */
	assert_int_equal(ts_parse(tmp, &h), 0);
	assert_int_equal(psi_asm_push(a, tmp, &h, coll_cb, c), 0);
	assert_int_equal(c->n, 0);
	assert_int_equal(a->errors, 1);
	assert_int_equal(a->have, 0);

	/* wrong PID, scrambled PSI */
	assert_int_equal(ts_parse(pk, &h), 0);
	h.pid = 0x41;
	assert_int_equal(psi_asm_push(a, pk, &h, coll_cb, c), CE_ARG);
	free(a);
	free(c);
}

static int stop_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	(*(int *)ctx)++;
	return CE_STATE;
}

static void test_asm_cb_error(void **state)
{
	uint8_t s[20], pk[TS_PACKET_BYTES];
	struct psi_asm *a = malloc(sizeof(*a));
	struct ts_hdr h;
	uint8_t cc = 0;
	size_t n;
	int calls = 0;

	(void)state;
	assert_non_null(a);
	make_private(s, sizeof(s), 1);
	assert_int_equal(ts_packetize(s, sizeof(s), 0x50, &cc, pk, 1, &n), 0);
	/* two sections in one packet: the first callback error stops */
	memcpy(pk + 5 + 20, s, 20);
	psi_asm_init(a, 0x50);
	assert_int_equal(ts_parse(pk, &h), 0);
	assert_int_equal(psi_asm_push(a, pk, &h, stop_cb, &calls), CE_STATE);
	assert_int_equal(calls, 1);
	free(a);
}

/* ---- TS I/O ---- */

static void make_pkts(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t *q = p + i * TS_PACKET_BYTES;

		ts_make_null(q);
		ts_set_pid(q, (uint16_t)(0x100 + i % 7));
		ts_set_cc(q, (uint8_t)i);
		q[4] = (uint8_t)i;
		q[5] = (uint8_t)(i >> 8);
	}
}

static char *tmp_path(void)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/castellan-ts-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return path;
}

static void test_tsio_file(void **state)
{
	enum { N = 1000 };
	uint8_t *src = malloc(N * TS_PACKET_BYTES), *got = malloc(N * TS_PACKET_BYTES);
	char *path = tmp_path();
	struct ts_out *o;
	struct ts_in *in;
	struct ts_io_stats st;
	size_t total = 0, n;

	(void)state;
	assert_non_null(src);
	assert_non_null(got);
	make_pkts(src, N);
	assert_int_equal(ts_out_open(path, &o), 0);
	assert_int_equal(ts_out_write(o, src, 3), 0);
	assert_int_equal(ts_out_write(o, src + 3 * TS_PACKET_BYTES, N - 3), 0);
	{
		uint8_t badp[TS_PACKET_BYTES] = { 0x48 };

		assert_int_equal(ts_out_write(o, badp, 1), CE_FORMAT);
	}
	ts_out_stats(o, &st);
	assert_int_equal(st.packets, N);
	assert_int_equal(ts_out_close(o), 0);

	assert_int_equal(ts_in_open(path, &in), 0);
	assert_int_equal(ts_in_port(in), 0);
	while (total < N) {
		assert_int_equal(ts_in_read(in, got + total * TS_PACKET_BYTES, 77, &n), 0);
		assert_true(n > 0);
		total += n;
	}
	assert_int_equal(ts_in_read(in, got, 10, &n), 0);
	assert_int_equal(n, 0); /* EOF */
	assert_memory_equal(got, src, N * TS_PACKET_BYTES);
	ts_in_stats(in, &st);
	assert_int_equal(st.packets, N);
	assert_int_equal(st.bytes, N * TS_PACKET_BYTES);
	assert_int_equal(st.resyncs, 0);
	ts_in_close(in);

	/* file: prefix works too */
	{
		char uri[80];

		snprintf(uri, sizeof(uri), "file:%s", path);
		assert_int_equal(ts_in_open(uri, &in), 0);
		assert_int_equal(ts_in_read(in, got, N, &n), 0);
		assert_true(n > 0);
		ts_in_close(in);
	}
	unlink(path);
	free(src);
	free(got);
}

static void test_tsio_resync(void **state)
{
	enum { N = 50 };
	uint8_t src[N * TS_PACKET_BYTES], got[N * TS_PACKET_BYTES];
	/* garbage including a false sync byte */
	static const uint8_t junk[] = { 0x00, 0x11, 0x47, 0x22, 0x33, 0x47, 0x01, 0x02, 0x03 };
	char *path = tmp_path();
	FILE *f;
	struct ts_in *in;
	struct ts_io_stats st;
	size_t total = 0, n;

	(void)state;
	make_pkts(src, N);
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(junk, 1, 5, f);                           /* leading junk */
	fwrite(src, TS_PACKET_BYTES, 20, f);
	fwrite(junk, 1, sizeof(junk), f);                /* mid-stream junk */
	fwrite(src + 20 * TS_PACKET_BYTES, TS_PACKET_BYTES, 10, f);
	fwrite(junk, 1, 2, f);                           /* short junk */
	fwrite(src + 30 * TS_PACKET_BYTES, TS_PACKET_BYTES, N - 30, f);
	fwrite(junk, 1, 7, f);                           /* trailing junk */
	fclose(f);

	assert_int_equal(ts_in_open(path, &in), 0);
	while (total < N) {
		assert_int_equal(ts_in_read(in, got + total * TS_PACKET_BYTES, 13, &n), 0);
		if (n == 0)
			break;
		total += n;
	}
	assert_int_equal(total, N);
	assert_memory_equal(got, src, sizeof(src));
	assert_int_equal(ts_in_read(in, got, 1, &n), 0);
	assert_int_equal(n, 0);
	ts_in_stats(in, &st);
	assert_int_equal(st.resyncs, 3);
	assert_int_equal(st.dropped_bytes, 5 + sizeof(junk) + 2 + 7);
	assert_int_equal(st.packets, N);
	ts_in_close(in);
	unlink(path);
}

static void test_tsio_udp(void **state)
{
	enum { N = 20 };
	uint8_t src[N * TS_PACKET_BYTES], got[N * TS_PACKET_BYTES];
	struct ts_in *in;
	struct ts_out *o;
	struct ts_io_stats st;
	char uri[64];
	size_t total = 0, n;
	uint16_t port;

	(void)state;
	make_pkts(src, N);
	assert_int_equal(ts_in_open("udp://127.0.0.1:0", &in), 0);
	port = ts_in_port(in);
	assert_true(port != 0);
	assert_true(ts_in_fd(in) >= 0);
	ts_in_set_timeout_ms(in, 5000);
	snprintf(uri, sizeof(uri), "udp://127.0.0.1:%u?ttl=4", (unsigned)port);
	assert_int_equal(ts_out_open(uri, &o), 0);
	assert_int_equal(ts_out_write(o, src, N), 0);
	ts_out_stats(o, &st);
	assert_int_equal(st.datagrams, 2); /* 14 sent, 6 buffered */
	assert_int_equal(ts_out_close(o), 0);

	while (total < N) {
		assert_int_equal(ts_in_read(in, got + total * TS_PACKET_BYTES, N - total, &n), 0);
		assert_true(n > 0 && n <= 7); /* at most one datagram per call */
		total += n;
	}
	assert_memory_equal(got, src, sizeof(src));
	ts_in_stats(in, &st);
	assert_int_equal(st.datagrams, 3);
	assert_int_equal(st.packets, N);

	/* nothing more: timeout */
	ts_in_set_timeout_ms(in, 50);
	assert_int_equal(ts_in_read(in, got, 1, &n), CE_TIMEOUT);
	assert_int_equal(n, 0);

	/* 3 packets per datagram, a datagram with an RTP header, and one with
	 * junk in front */
	snprintf(uri, sizeof(uri), "udp://127.0.0.1:%u?pkts=3", (unsigned)port);
	assert_int_equal(ts_out_open(uri, &o), 0);
	assert_int_equal(ts_out_write(o, src, 3), 0);
	assert_int_equal(ts_out_close(o), 0);
	ts_in_set_timeout_ms(in, 5000);
	assert_int_equal(ts_in_read(in, got, N, &n), 0);
	assert_int_equal(n, 3);
	{
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
		uint8_t dg[12 + 2 * TS_PACKET_BYTES];

		assert_true(fd >= 0);
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		memset(dg, 0, 12);
		dg[0] = 0x80; dg[1] = 33; /* RTP v2, MP2T */
		memcpy(dg + 12, src + 5 * TS_PACKET_BYTES, 2 * TS_PACKET_BYTES);
		assert_int_equal(sendto(fd, dg, sizeof(dg), 0, (struct sockaddr *)&to, sizeof(to)), sizeof(dg));
		assert_int_equal(ts_in_read(in, got, N, &n), 0);
		assert_int_equal(n, 2);
		assert_memory_equal(got, src + 5 * TS_PACKET_BYTES, 2 * TS_PACKET_BYTES);
		close(fd);
	}
	ts_in_close(in);
}

static void test_tsio_multicast(void **state)
{
	uint8_t src[4 * TS_PACKET_BYTES], got[4 * TS_PACKET_BYTES];
	struct ts_in *in;
	struct ts_out *o;
	char uri[96];
	size_t n;
	int r;

	(void)state;
	make_pkts(src, 4);
	r = ts_in_open("udp://239.255.42.42@127.0.0.1:0", &in);
	if (r == CE_IO)
		skip(); /* no multicast on loopback in this environment */
	assert_int_equal(r, 0);
	ts_in_set_timeout_ms(in, 2000);
	snprintf(uri, sizeof(uri), "udp://127.0.0.1@239.255.42.42:%u?ttl=1", (unsigned)ts_in_port(in));
	assert_int_equal(ts_out_open(uri, &o), 0);
	assert_int_equal(ts_out_write(o, src, 4), 0);
	assert_int_equal(ts_out_close(o), 0);
	r = ts_in_read(in, got, 4, &n);
	ts_in_close(in);
	if (r == CE_TIMEOUT)
		skip(); /* joined, but loopback does not route multicast here */
	assert_int_equal(r, 0);
	assert_int_equal(n, 4);
	assert_memory_equal(got, src, sizeof(src));
}

static void test_tsio_bad_uri(void **state)
{
	static const char *bad_in[] = {
		"", "udp://", "udp://127.0.0.1", "udp://:99999", "udp://:12x",
		"http://example.com/x.ts", "udp://10.0.0.1@:1234" /* group not multicast */,
		"udp://239.1.1.1@notanip:1234", "udp://:1234?ttl=3" /* output option */,
		"/nonexistent/dir/file.ts",
	};
	static const char *bad_out[] = {
		"", "udp://", "udp://:1234" /* no destination */, "udp://127.0.0.1:0",
		"udp://127.0.0.1:1234?ttl=0", "udp://127.0.0.1:1234?ttl=256",
		"udp://127.0.0.1:1234?pkts=8", "udp://127.0.0.1:1234?pkts=0",
		"udp://127.0.0.1:1234?foo=1", "udp://127.0.0.1:1234?ttl",
		"rtp://127.0.0.1:1234", "/nonexistent/dir/out.ts",
	};
	struct ts_in *in = (struct ts_in *)1;
	struct ts_out *o = (struct ts_out *)1;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_in) / sizeof(bad_in[0]); i++) {
		if (ts_in_open(bad_in[i], &in) == 0)
			fail_msg("input accepted: '%s'", bad_in[i]);
		assert_null(in);
	}
	for (size_t i = 0; i < sizeof(bad_out) / sizeof(bad_out[0]); i++) {
		if (ts_out_open(bad_out[i], &o) == 0)
			fail_msg("output accepted: '%s'", bad_out[i]);
		assert_null(o);
	}
	assert_int_equal(ts_in_open(NULL, &in), CE_ARG);
	assert_int_equal(ts_out_close(NULL), 0);
	ts_in_close(NULL);
}

/* ca_desc_remove on the cursor: only the CA_descriptors of that CA_system_id
 * go; other descriptors, a too-short CA_descriptor and a malformed tail stay
 * byte for byte. */
static void test_ca_desc_remove_table(void **state)
{
	static const struct {
		const char *name;
		uint8_t in[24];
		uint16_t in_len;
		uint8_t out[24];
		uint16_t out_len;
	} cases[] = {
		{ "one CA of that id", { 0x09, 4, 0x0B, 0x00, 0xE1, 0x00 }, 6, { 0 }, 0 },
		{ "other id kept", { 0x09, 4, 0x4A, 0xDC, 0xE1, 0x00 }, 6, { 0x09, 4, 0x4A, 0xDC, 0xE1, 0x00 }, 6 },
		{ "between others", { 0x52, 1, 0x07, 0x09, 4, 0x0B, 0x00, 0xE1, 0x00, 0x0A, 0 }, 11,
		  { 0x52, 1, 0x07, 0x0A, 0 }, 5 },
		{ "short CA kept", { 0x09, 1, 0x0B }, 3, { 0x09, 1, 0x0B }, 3 },
		{ "malformed tail kept", { 0x09, 4, 0x0B, 0x00, 0xE1, 0x00, 0x09, 9, 0x0B, 0x00 }, 10,
		  { 0x09, 9, 0x0B, 0x00 }, 4 },
		{ "one stray byte kept", { 0x09, 4, 0x0B, 0x00, 0xE1, 0x00, 0x09 }, 7, { 0x09 }, 1 },
		{ "empty", { 0 }, 0, { 0 }, 0 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t d[24];
		uint16_t len = cases[i].in_len;

		memcpy(d, cases[i].in, sizeof(d));
		ca_desc_remove(d, &len, 0x0B00);
		if (len != cases[i].out_len || memcmp(d, cases[i].out, len) != 0)
			fail_msg("%s: %u bytes", cases[i].name, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc),
		cmocka_unit_test(test_ts_parse_fields),
		cmocka_unit_test(test_ts_parse_bad),
		cmocka_unit_test(test_clear_stream),
		cmocka_unit_test(test_cissa_pmt),
		cmocka_unit_test(test_ca_desc_roundtrip),
		cmocka_unit_test(test_cat_roundtrip),
		cmocka_unit_test(test_psi_bad),
		cmocka_unit_test(test_fuzz_regress_cat_short_ca),
		cmocka_unit_test(test_packetize_600),
		cmocka_unit_test(test_asm_multi),
		cmocka_unit_test(test_asm_errors),
		cmocka_unit_test(test_asm_cb_error),
		cmocka_unit_test(test_tsio_file),
		cmocka_unit_test(test_tsio_resync),
		cmocka_unit_test(test_tsio_udp),
		cmocka_unit_test(test_tsio_multicast),
		cmocka_unit_test(test_tsio_bad_uri),
		cmocka_unit_test(test_ca_desc_remove_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
