/*
 * test_osd.c - fingerprints and messages (cas/osd.h): the encodings and a
 * table of bad cases, the ECM extension block (a forged or stripped
 * fingerprint gives no CW), the EMM OSD record, the cardless client's
 * on_fingerprint / on_message, and the box's showing policy (osd_log).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "cas/card.h"
#include "cas/client.h"
#include "cas/ecm.h"
#include "cas/emm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cas/osd.h"
#include "cas/usage.h"
#include "client/cardless.h"
#include "lib/bytes.h"
#include "lib/cursor.h"
#include "testutil.h"
#include "stb/osd_log.h"

#define CASID 0x4ADC
#define EPOCH_S 3600u
#define T0 1700000000ull
#define SERIAL 2100000001ull

static const uint8_t test_root[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

/* 133 characters (172 bytes), 2- and 3-byte UTF-8 among them */
static const char long_text[] =
	"Cher abonné : votre abonnement « Sport+ » expire le 31/12. Renouvelez-le au 0800 000 000 — "
	"merci de votre fidélité ! 日本語のテキストも表示できます。";

static void sample_fp(struct osd_fingerprint *fp)
{
	memset(fp, 0, sizeof(*fp));
	fp->flags = OSD_FP_SERIAL | OSD_FP_BOX;
	fp->fp_id = 7;
	fp->x_pct = 12;
	fp->y_pct = 80;
	fp->fg[0] = 0xFF, fp->fg[1] = 0xFF, fp->fg[2] = 0x00;
	fp->bg[0] = 0, fp->bg[1] = 0, fp->bg[2] = 0, fp->bg[3] = 0x80;
	fp->font_px = 28;
	fp->duration_ms = 5000;
	fp->repeat = 3;
	fp->interval_s = 60;
	fp->service = 101;
}

static void sample_msg(struct osd_message *m)
{
	memset(m, 0, sizeof(*m));
	m->flags = OSD_MSG_FORCED | OSD_MSG_POPUP;
	m->scope = OSD_SCOPE_INDIVIDUAL;
	m->msg_id = 42;
	m->expiry_s = T0 + 86400;
	m->duration_s = 30;
	m->fg[0] = 0xFF, m->fg[1] = 0xFF, m->fg[2] = 0xFF;
	m->bg[0] = 0x20, m->bg[1] = 0x20, m->bg[2] = 0x80, m->bg[3] = 0xE0;
	m->font_px = 24;
	assert_int_equal(osd_msg_set_text(m, long_text), 0);
}

/* ---- encodings ---- */

static void test_osd_roundtrip(void **state)
{
	struct osd_fingerprint fp;
	struct osd_message m;
	struct osd_item it;
	uint8_t buf[OSD_MAX_BYTES];
	size_t n = 0, chars = 0;

	(void)state;
	sample_fp(&fp);
	assert_int_equal(osd_fp_encode(&fp, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, OSD_FP_BYTES);
	assert_int_equal(osd_parse(buf, n, &it), 0);
	assert_int_equal(it.kind, OSD_KIND_FINGERPRINT);
	assert_memory_equal(&it.u.fp, &fp, sizeof(fp));
	sample_msg(&m);
	assert_int_equal(osd_text_check(m.text, m.text_len, &chars), 0);
	assert_true(chars >= 120);
	assert_true(m.text_len > chars); /* multi-byte characters */
	assert_int_equal(osd_msg_encode(&m, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, OSD_MSG_HEADER_BYTES + m.text_len);
	assert_int_equal(osd_parse(buf, n, &it), 0);
	assert_int_equal(it.kind, OSD_KIND_MESSAGE);
	assert_string_equal(it.u.msg.text, long_text);
	assert_int_equal(it.u.msg.msg_id, 42);
	assert_int_equal(it.u.msg.flags, OSD_MSG_FORCED | OSD_MSG_POPUP);
	/* a buffer one byte short */
	assert_int_equal(osd_msg_encode(&m, buf, n - 1, &n), CE_OVERFLOW);
}

/* One valid encoding, one byte changed (or the length), one expected code. */
struct bad_case {
	const char *name;
	bool msg;          /* mutate the message encoding (else the fingerprint's) */
	size_t off;        /* byte to set */
	uint8_t val;
	int cut;           /* != 0: the length changes by this many bytes instead */
	int want;
};

static const struct bad_case bad_cases[] = {
	{ "unknown kind", false, 0, 0x03, 0, CE_FORMAT },
	{ "kind 0", false, 0, 0x00, 0, CE_FORMAT },
	{ "fp truncated", false, 0, 0, -1, CE_TRUNCATED },
	{ "fp trailing", false, 0, 0, +1, CE_TRAILING },
	{ "fp unknown flag", false, 1, 0x26, 0, CE_FORMAT },
	{ "fp nothing to show", false, 1, 0x00, 0, CE_FORMAT },
	{ "fp encoded but overt", false, 1, 0x12, 0, CE_FORMAT },
	{ "fp id 0", false, 5, 0x00, 0, CE_RANGE },      /* fp_id = 7: low byte at 5 */
	{ "fp x 101", false, 6, 101, 0, CE_RANGE },
	{ "fp y 255", false, 7, 255, 0, CE_RANGE },
	{ "fp font 7", false, 15, 7, 0, CE_RANGE },
	{ "fp font 161", false, 15, 161, 0, CE_RANGE },
	{ "fp duration > 10 min", false, 16, 0xFF, 0, CE_RANGE },
	{ "fp repeat 0", false, 21, 0, 0, CE_RANGE },     /* repeat = 00 03 */
	{ "fp repeat 1 with interval", false, 21, 1, 0, CE_RANGE },
	{ "fp covert frames 5 s", false, 1, 0x03, 0, CE_RANGE },
	{ "msg truncated", true, 0, 0, -1, CE_TRUNCATED },
	{ "msg trailing", true, 0, 0, +1, CE_TRAILING },
	{ "msg unknown flag", true, 1, 0x07, 0, CE_FORMAT },
	{ "msg scope 3", true, 2, 3, 0, CE_FORMAT },
	{ "msg group scope, group 0", true, 2, 1, 0, CE_RANGE },
	{ "msg id 0", true, 10, 0, 0, CE_RANGE },         /* msg_id 42 at 7..10 */
	{ "msg duration 0", true, 20, 0, 0, CE_RANGE },   /* 30 = 00 1e at 19..20 */
	{ "msg font 0", true, 28, 0, 0, CE_RANGE },
	{ "msg text_len 0", true, 30, 0, 0, CE_FORMAT },  /* text_len at 29..30 (< 256 low byte) */
	{ "msg text_len past end", true, 29, 0x01, 0, CE_TRUNCATED },
	{ "msg text_len over max", true, 29, 0x0F, 0, CE_RANGE },
	{ "msg NUL in text", true, 31, 0x00, 0, CE_FORMAT },
	{ "msg control char", true, 31, 0x07, 0, CE_FORMAT },
	{ "msg DEL", true, 32, 0x7F, 0, CE_FORMAT },
	{ "msg C1 control", true, 33, 0xC2, 0, CE_FORMAT }, /* "Cher": 'e' -> C2 'r' invalid */
	{ "msg lone continuation", true, 31, 0x80, 0, CE_FORMAT },
	{ "msg overlong lead", true, 35, 0xC0, 0, CE_FORMAT },
	{ "msg 5-byte lead", true, 31, 0xF8, 0, CE_FORMAT },
};

static void test_osd_bad_table(void **state)
{
	struct osd_fingerprint fp;
	struct osd_message m;
	uint8_t fpb[OSD_FP_BYTES + 1], mb[OSD_MAX_BYTES + 1], b[OSD_MAX_BYTES + 1];
	size_t fpn = 0, mn = 0;
	struct osd_item it;

	(void)state;
	sample_fp(&fp);
	sample_msg(&m);
	assert_int_equal(osd_fp_encode(&fp, fpb, sizeof(fpb), &fpn), 0);
	assert_int_equal(osd_msg_encode(&m, mb, sizeof(mb), &mn), 0);
	assert_true(mn < 256 + OSD_MSG_HEADER_BYTES); /* the text_len cases above assume it */
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		size_t n = bc->msg ? mn : fpn;

		memcpy(b, bc->msg ? mb : fpb, n);
		b[n] = 0;
		if (bc->cut)
			n = (size_t)((long)n + bc->cut);
		else
			b[bc->off] = bc->val;
		it.kind = 0xEE;
		if (osd_parse(b, n, &it) != bc->want)
			fail_msg("case '%s': got %d, want %d", bc->name, osd_parse(b, n, &it), bc->want);
		assert_int_equal(it.kind, 0); /* zeroed on error */
	}
	/* the writer applies the same rules */
	fp.x_pct = 101;
	assert_int_equal(osd_fp_encode(&fp, fpb, sizeof(fpb), &fpn), CE_RANGE);
	assert_int_equal(osd_msg_set_text(&m, ""), CE_RANGE);
	assert_int_equal(osd_msg_set_text(&m, "bad \xED\xA0\x80 surrogate"), CE_FORMAT);
	assert_int_equal(osd_parse(NULL, 0, &it), CE_ARG);
	assert_int_equal(osd_parse(mb, OSD_MAX_BYTES + 1, &it), CE_RANGE);
}

static void test_osd_text_and_code(void **state)
{
	struct osd_fingerprint fp;
	uint8_t k1[16], k2[16];
	char t[64], c1[17], c2[17];

	(void)state;
	sample_fp(&fp);
	assert_int_equal(osd_fp_text(&fp, SERIAL, 9, NULL, t, sizeof(t)), 0);
	assert_string_equal(t, "2100000001 9");
	fp.flags = OSD_FP_BOX;
	assert_int_equal(osd_fp_text(&fp, SERIAL, 9, NULL, t, sizeof(t)), 0);
	assert_string_equal(t, "9");
	assert_int_equal(osd_fp_text(&fp, SERIAL, 9, NULL, t, 1), CE_OVERFLOW);
	memset(k1, 0x11, 16);
	memset(k2, 0x22, 16);
	fp.flags = OSD_FP_SERIAL | OSD_FP_COVERT | OSD_FP_ENCODED;
	assert_int_equal(osd_fp_text(&fp, SERIAL, 9, k1, t, sizeof(t)), 0);
	assert_int_equal(osd_covert_code(k1, fp.fp_id, c1), 0);
	assert_string_equal(t, c1);
	assert_int_equal(strlen(c1), OSD_COVERT_CODE_CHARS);
	assert_null(strstr(t, "2100000001"));
	/* another card, or another fp_id, gives another code */
	assert_int_equal(osd_covert_code(k2, fp.fp_id, c2), 0);
	assert_string_not_equal(c1, c2);
	assert_int_equal(osd_covert_code(k1, fp.fp_id + 1, c2), 0);
	assert_string_not_equal(c1, c2);
}

/* ---- ECM extension block ---- */

static struct keystore *test_ks(void)
{
	struct keystore *ks = NULL;

	assert_int_equal(keystore_from_root(CASID, EPOCH_S, test_root, &ks), 0);
	return ks;
}

static void fill_params(const struct keystore *ks, struct ecm_params *p, uint64_t ts_ms)
{
	memset(p, 0, sizeof(*p));
	p->alg = CW_ALG_CSA2;
	p->ecm_id = 0x0102;
	p->ca_system_id = CASID;
	p->cp_number = 41;
	p->timestamp_ms = ts_ms;
	p->epoch = keystore_epoch_at(ks, ts_ms / 1000);
	p->ac_len = 4;
	put_be32(p->ac, 0x00000003);
	p->cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	for (size_t i = 0; i < CW_MAX_BYTES; i++) {
		p->cw_even[i] = (uint8_t)(0x10 + i);
		p->cw_odd[i] = (uint8_t)(0xa0 + i);
	}
}

/* Offset of the extension block's ext_len in a section built with ac_len 4. */
#define EXT_OFF (3 + 20 + 1 + 4 + 1 + 1 + ECM_NONCE_BYTES)
#define CW_MASK_OFF (3 + 20 + 1 + 4)

/* The same ECM without its extension block: the bytes removed, bit 7 of
 * cw_mask cleared, section_length fixed. Everything else (MACs) as it was. */
static size_t strip_ext(const uint8_t *sec, size_t len, uint8_t *out)
{
	size_t ext = 2 + tu_be16(sec + EXT_OFF);

	memcpy(out, sec, EXT_OFF);
	memcpy(out + EXT_OFF, sec + EXT_OFF + ext, len - EXT_OFF - ext);
	out[CW_MASK_OFF] &= (uint8_t)~ECM_HAS_EXT_BLOCK;
	put_be16(out + 1, (uint16_t)((tu_be16(out + 1) & 0xF000) | (len - ext - 3)));
	return len - ext;
}

static void test_ecm_fingerprint(void **state)
{
	struct keystore *ks = test_ks();
	struct ecm_params p;
	struct ecm_view v;
	struct ecm_cws cws;
	struct pkg_key k;
	struct osd_fingerprint fp, got;
	uint8_t sec[ECM_MAX_SECTION], plain[ECM_MAX_SECTION], bad[ECM_MAX_SECTION];
	size_t len = 0, plen = 0, blen;
	bool found = true;

	(void)state;
	sample_fp(&fp);
	fill_params(ks, &p, T0 * 1000);
	assert_int_equal(ecm_build(ks, &p, plain, sizeof(plain), &plen), 0);
	assert_int_equal(ecm_ext_add_fingerprint(&p, &fp), 0);
	assert_int_equal(ecm_ext_add_fingerprint(&p, &fp), CE_EXISTS);
	assert_int_equal(p.ext_block_len, 2 + OSD_FP_BYTES);
	assert_int_equal(ecm_build(ks, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(len, plen + 2 + 2 + OSD_FP_BYTES); /* ext_len u16 + entry */
	assert_int_equal(ecm_parse(sec, len, &v), 0);
	assert_int_equal(v.cw_mask, ECM_HAS_EVEN | ECM_HAS_ODD); /* the flag bit is not a CW */
	assert_int_equal(ecm_ext_fingerprint(&v, &got, &found), 0);
	assert_true(found);
	assert_memory_equal(&got, &fp, sizeof(fp));
	assert_int_equal(keystore_package_key(ks, p.epoch, 1, &k), 0);
	assert_int_equal(ecm_open(&v, &k, &cws), 0);
	assert_memory_equal(cws.even, p.cw_even, 8);
	/* an ECM without a block has none */
	assert_int_equal(ecm_parse(plain, plen, &v), 0);
	assert_int_equal(ecm_ext_fingerprint(&v, &got, &found), 0);
	assert_false(found);

	/* stripped: a well-formed ECM without the block, but the MACs were
	 * made over the block: no CW for either package */
	blen = strip_ext(sec, len, bad);
	assert_int_equal(blen, plen);
	assert_int_equal(ecm_parse(bad, blen, &v), 0);
	assert_int_equal(ecm_open(&v, &k, &cws), CE_MAC);
	assert_int_equal(cws.cw_mask, 0);
	/* forged: move the fingerprint off screen (x 100, y 100), shrink it */
	memcpy(bad, sec, len);
	bad[EXT_OFF + 2 + 2 + 6] = 100;
	bad[EXT_OFF + 2 + 2 + 7] = 100;
	bad[EXT_OFF + 2 + 2 + 15] = OSD_MIN_FONT_PX;
	assert_int_equal(ecm_parse(bad, len, &v), 0); /* still valid as a format */
	assert_int_equal(ecm_open(&v, &k, &cws), CE_MAC);
	/* forged: every byte of the block, one at a time */
	for (size_t i = EXT_OFF; i < EXT_OFF + 2 + 2 + OSD_FP_BYTES; i++) {
		memcpy(bad, sec, len);
		bad[i] ^= 0x01;
		if (ecm_parse(bad, len, &v) == 0)
			assert_int_equal(ecm_open(&v, &k, &cws), CE_MAC);
	}
	/* the flag without a block, or a block with a bad entry: refused */
	memcpy(bad, plain, plen);
	bad[CW_MASK_OFF] |= ECM_HAS_EXT_BLOCK;
	assert_int_not_equal(ecm_parse(bad, plen, &v), 0);
	memcpy(bad, sec, len);
	bad[EXT_OFF + 2 + 2 + 6] = 101; /* x_pct out of range */
	assert_int_equal(ecm_parse(bad, len, &v), CE_FORMAT);
	memcpy(bad, sec, len);
	bad[EXT_OFF + 1] = 0; /* ext_len 0 */
	assert_int_not_equal(ecm_parse(bad, len, &v), 0);
	/* the builder refuses a bad block and a flag in cw_mask */
	p.ext_block[2 + 6] = 101;
	assert_int_equal(ecm_build(ks, &p, sec, sizeof(sec), &len), CE_ARG);
	p.ext_block_len = 0;
	p.cw_mask |= ECM_HAS_EXT_BLOCK;
	assert_int_equal(ecm_build(ks, &p, sec, sizeof(sec), &len), CE_ARG);
	pkg_key_wipe(&k);
	keystore_free(ks);
}

/* C.6: the copy-control entry rides in the same block, under the same MACs:
 * changed or stripped, the ECM gives no CW; with a fingerprint both read. */
static void test_ecm_usage(void **state)
{
	struct keystore *ks = test_ks();
	struct ecm_params p;
	struct ecm_view v;
	struct ecm_cws cws;
	struct pkg_key k;
	struct osd_fingerprint fp, gotfp;
	struct cas_usage u = { .copy_control = CAS_COPY_NEVER, .retention_s = 0 }, got;
	struct cas_usage badu = { .copy_control = CAS_COPY_NO_MORE };
	uint8_t sec[ECM_MAX_SECTION], plain[ECM_MAX_SECTION], bad[ECM_MAX_SECTION];
	size_t len = 0, plen = 0, blen;
	bool found = false;
	/* the entry: tag, len, copy_control, retention_s */
	const size_t cc_off = EXT_OFF + 2 + 2;
	static const struct { size_t at; uint8_t val; int want; } forms[] = {
		{ 0, 1, CE_FORMAT },   /* copy_no_more is never sent */
		{ 0, 4, CE_FORMAT },   /* unknown value */
		{ 1, 0xFF, CE_FORMAT },/* retention over ten years */
	};

	(void)state;
	fill_params(ks, &p, T0 * 1000);
	assert_int_equal(ecm_build(ks, &p, plain, sizeof(plain), &plen), 0);
	assert_int_equal(ecm_ext_add_usage(&p, &badu), CE_RANGE);
	assert_int_equal(ecm_ext_add_usage(&p, &u), 0);
	assert_int_equal(ecm_ext_add_usage(&p, &u), CE_EXISTS);
	assert_int_equal(ecm_build(ks, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(len, plen + 2 + 2 + CAS_USAGE_BYTES);
	assert_int_equal(ecm_parse(sec, len, &v), 0);
	assert_int_equal(ecm_ext_usage(&v, &got, &found), 0);
	assert_true(found);
	assert_int_equal(got.copy_control, CAS_COPY_NEVER);
	assert_int_equal(keystore_package_key(ks, p.epoch, 1, &k), 0);
	assert_int_equal(ecm_open(&v, &k, &cws), 0);
	ecm_cws_wipe(&cws);
	/* no entry: copy_free, not found */
	assert_int_equal(ecm_parse(plain, plen, &v), 0);
	assert_int_equal(ecm_ext_usage(&v, &got, &found), 0);
	assert_false(found);
	assert_int_equal(got.copy_control, CAS_COPY_FREE);
	/* stripped: no CW */
	blen = strip_ext(sec, len, bad);
	assert_int_equal(blen, plen);
	assert_int_equal(ecm_parse(bad, blen, &v), 0);
	assert_int_equal(ecm_open(&v, &k, &cws), CE_MAC);
	/* changed to copy_free (a valid value): the format reads, the MACs do not */
	memcpy(bad, sec, len);
	bad[cc_off] = CAS_COPY_FREE;
	assert_int_equal(ecm_parse(bad, len, &v), 0);
	assert_int_equal(ecm_ext_usage(&v, &got, &found), 0);
	assert_int_equal(got.copy_control, CAS_COPY_FREE);
	assert_int_equal(ecm_open(&v, &k, &cws), CE_MAC);
	assert_int_equal(cws.cw_mask, 0);
	/* every byte of the block flipped: no CW */
	for (size_t i = EXT_OFF; i < EXT_OFF + 2 + 2 + CAS_USAGE_BYTES; i++) {
		memcpy(bad, sec, len);
		bad[i] ^= 0x01;
		if (ecm_parse(bad, len, &v) == 0)
			assert_int_equal(ecm_open(&v, &k, &cws), CE_MAC);
	}
	/* bad values read as CE_FORMAT */
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		memcpy(bad, sec, len);
		bad[cc_off + forms[i].at] = forms[i].val;
		assert_int_equal(ecm_parse(bad, len, &v), 0);
		assert_int_equal(ecm_ext_usage(&v, &got, &found), forms[i].want);
		assert_false(found);
	}
	/* twice in one block: refused */
	memcpy(p.ext_block + p.ext_block_len, p.ext_block, p.ext_block_len);
	p.ext_block_len = (uint16_t)(p.ext_block_len * 2);
	assert_int_equal(ecm_build(ks, &p, bad, sizeof(bad), &blen), 0);
	assert_int_equal(ecm_parse(bad, blen, &v), 0);
	assert_int_equal(ecm_ext_usage(&v, &got, &found), CE_FORMAT);
	/* with a fingerprint: both read */
	p.ext_block_len = 0;
	sample_fp(&fp);
	assert_int_equal(ecm_ext_add_fingerprint(&p, &fp), 0);
	assert_int_equal(ecm_ext_add_usage(&p, &u), 0);
	assert_int_equal(ecm_build(ks, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(ecm_parse(sec, len, &v), 0);
	assert_int_equal(ecm_ext_fingerprint(&v, &gotfp, &found), 0);
	assert_true(found);
	assert_int_equal(ecm_ext_usage(&v, &got, &found), 0);
	assert_true(found);
	assert_int_equal(got.copy_control, CAS_COPY_NEVER);
	assert_int_equal(ecm_open(&v, &k, &cws), 0);
	ecm_cws_wipe(&cws);
	/* names */
	assert_int_equal(cas_copy_parse("copy_once", &u.copy_control), 0);
	assert_int_equal(u.copy_control, CAS_COPY_ONCE);
	assert_int_equal(cas_copy_parse("copy_no_more", &u.copy_control), CE_ARG);
	pkg_key_wipe(&k);
	ecm_params_wipe(&p);
	keystore_free(ks);
}

/* ---- the cardless client: on_fingerprint / on_message ---- */

struct osd_host {
	uint64_t now_ms;
	size_t nloads, nfp, nmsg;
	uint16_t fp_service;
	struct osd_fingerprint fp;
	char fp_text[64];
	struct osd_message msg;
};

static int oh_load_cw(void *ctx, uint16_t sid, enum cw_alg alg, enum cw_parity par, const uint8_t *cw, size_t len)
{
	(void)sid, (void)alg, (void)par, (void)cw, (void)len;
	((struct osd_host *)ctx)->nloads++;
	return 0;
}

static uint64_t oh_now(void *ctx)
{
	return ((struct osd_host *)ctx)->now_ms;
}

static void oh_fp(void *ctx, uint16_t sid, const struct osd_fingerprint *fp, const char *text)
{
	struct osd_host *h = ctx;

	h->nfp++;
	h->fp_service = sid;
	h->fp = *fp;
	snprintf(h->fp_text, sizeof(h->fp_text), "%s", text);
}

static void oh_msg(void *ctx, const struct osd_message *m)
{
	struct osd_host *h = ctx;

	h->nmsg++;
	h->msg = *m;
}

static void test_cardless_fingerprint(void **state)
{
	struct keystore *ks = test_ks();
	struct entitlement e;
	struct cas_client c;
	struct osd_host oh = { .now_ms = T0 * 1000 };
	struct cas_host host = { .ctx = &oh, .load_cw = oh_load_cw, .now_ms = oh_now, .on_fingerprint = oh_fp,
		.on_message = oh_msg };
	struct ecm_params p;
	struct osd_fingerprint fp;
	uint8_t sec[ECM_MAX_SECTION], bad[ECM_MAX_SECTION];
	size_t len = 0, blen;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.card_serial = SERIAL;
	e.packages = 0x2;
	e.start_s = T0 - 86400;
	e.finish_s = T0 + 86400;
	assert_int_equal(entitlement_issue(ks, &e), 0);
	assert_int_equal(cardless_client_from(&e, &c), 0);
	sample_fp(&fp);
	fp.flags = OSD_FP_SERIAL;
	fill_params(ks, &p, T0 * 1000);
	assert_int_equal(ecm_ext_add_fingerprint(&p, &fp), 0);
	assert_int_equal(ecm_build(ks, &p, sec, sizeof(sec), &len), 0);
	/* stripped: no CW, no fingerprint */
	blen = strip_ext(sec, len, bad);
	assert_int_equal(c.ops->ecm(c.self, &host, 101, bad, blen), CE_MAC);
	/* forged: same */
	memcpy(bad, sec, len);
	bad[EXT_OFF + 2 + 2 + 6] ^= 0x20;
	assert_int_equal(c.ops->ecm(c.self, &host, 101, bad, len), CE_MAC);
	assert_int_equal(oh.nloads, 0);
	assert_int_equal(oh.nfp, 0);
	/* genuine: both CWs and the fingerprint, text = the card serial */
	assert_int_equal(c.ops->ecm(c.self, &host, 101, sec, len), 0);
	assert_int_equal(oh.nloads, 2);
	assert_int_equal(oh.nfp, 1);
	assert_int_equal(oh.fp_service, 101);
	assert_int_equal(oh.fp.fp_id, fp.fp_id);
	assert_int_equal(oh.fp.x_pct, 12);
	assert_string_equal(oh.fp_text, "2100000001");
	/* a host without OSD callbacks still gets its CWs */
	host.on_fingerprint = NULL;
	p.cp_number = 42;
	assert_int_equal(ecm_build(ks, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(c.ops->ecm(c.self, &host, 101, sec, len), 0);
	assert_int_equal(oh.nloads, 4);
	assert_int_equal(oh.nfp, 1);
	cas_client_free(&c);
	entitlement_wipe(&e);
	keystore_free(ks);
}

/* ---- EMM OSD record, through the card-mode cardless client ---- */

static void test_emm_osd(void **state)
{
	struct keystore *ks = test_ks();
	struct emm_issuer *is = NULL;
	struct card_identity ci;
	struct cas_client c;
	struct osd_host oh = { .now_ms = T0 * 1000 };
	struct cas_host host = { .ctx = &oh, .load_cw = oh_load_cw, .now_ms = oh_now, .on_fingerprint = oh_fp,
		.on_message = oh_msg };
	struct osd_item it;
	struct emm_view v;
	struct emm_content *got = calloc(1, sizeof(*got));
	uint8_t emm[EMM_MAX_SECTION], key[CARD_KEY_BYTES];
	char path[] = "/tmp/osd-card-XXXXXX", code[17];
	size_t len = 0;
	int fd;

	(void)state;
	assert_non_null(got);
	assert_int_equal(emm_issuer_new(ks, &is), 0);
	assert_int_equal(card_issue(ks, SERIAL, &ci), 0);
	ci.stb_id = 9;
	memcpy(key, ci.key, sizeof(key));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(card_save(&ci, path), 0);
	assert_int_equal(cardless_client_new_card(path, NULL, &c), 0);
	unlink(path);
	cas_client_set_host(&c, &host);

	/* a 133-character message: 0x20 + 0x21 records, opened and parsed */
	memset(&it, 0, sizeof(it));
	it.kind = OSD_KIND_MESSAGE;
	sample_msg(&it.u.msg);
	assert_int_equal(emm_build_osd(is, SERIAL, 1, &it, T0 * 1000, emm, sizeof(emm), &len), 0);
	assert_int_equal(emm_parse(emm, len, SERIAL, &v), 0);
	assert_int_equal(emm_open(&v, key, got), 0);
	assert_int_equal(got->nosd, 1);
	assert_string_equal(got->osd[0].u.msg.text, long_text);
	/* the client hands it to the host */
	assert_int_equal(c.ops->emm(c.self, emm, len), 0);
	assert_int_equal(oh.nmsg, 1);
	assert_string_equal(oh.msg.text, long_text);
	assert_true((oh.msg.flags & OSD_MSG_FORCED) != 0);
	/* the carousel repeating it: not applied again, not shown again */
	assert_int_not_equal(c.ops->emm(c.self, emm, len), 0);
	assert_int_equal(oh.nmsg, 1);
	/* altered in the air: refused */
	emm[len - 20] ^= 1;
	assert_int_equal(c.ops->emm(c.self, emm, len), CE_MAC);
	/* expired: authentic, applied, not shown */
	it.u.msg.msg_id = 43;
	it.u.msg.expiry_s = T0 - 1;
	assert_int_equal(emm_build_osd(is, SERIAL, 2, &it, T0 * 1000, emm, sizeof(emm), &len), 0);
	assert_int_equal(c.ops->emm(c.self, emm, len), 0);
	assert_int_equal(oh.nmsg, 1);
	/* a per-card covert fingerprint: the covert code of this card's K_card */
	memset(&it, 0, sizeof(it));
	it.kind = OSD_KIND_FINGERPRINT;
	sample_fp(&it.u.fp);
	it.u.fp.flags = OSD_FP_SERIAL | OSD_FP_COVERT | OSD_FP_ENCODED;
	it.u.fp.service = 0;
	assert_int_equal(emm_build_osd(is, SERIAL, 3, &it, T0 * 1000, emm, sizeof(emm), &len), 0);
	assert_int_equal(c.ops->emm(c.self, emm, len), 0);
	assert_int_equal(oh.nfp, 1);
	assert_int_equal(oh.fp_service, 0);
	assert_int_equal(osd_covert_code(key, it.u.fp.fp_id, code), 0);
	assert_string_equal(oh.fp_text, code);
	/* detached: applied, nothing delivered */
	cas_client_set_host(&c, NULL);
	it.u.fp.fp_id = 8;
	assert_int_equal(emm_build_osd(is, SERIAL, 4, &it, T0 * 1000, emm, sizeof(emm), &len), 0);
	assert_int_equal(c.ops->emm(c.self, emm, len), 0);
	assert_int_equal(oh.nfp, 1);
	/* a bad item is refused by the builder */
	it.u.fp.x_pct = 200;
	assert_int_equal(emm_build_osd(is, SERIAL, 5, &it, T0 * 1000, emm, sizeof(emm), &len), CE_RANGE);
	cas_client_free(&c);
	emm_content_wipe(got);
	free(got);
	emm_issuer_free(is);
	keystore_free(ks);
}

/* ---- the box's showing policy ---- */

static void test_osd_log_policy(void **state)
{
	struct osd_log *l = NULL;
	struct osd_fingerprint fp;
	struct osd_message m;
	const struct osd_event *e;

	(void)state;
	assert_int_equal(osd_log_new(&l), 0);
	sample_fp(&fp); /* repeat 3, interval 60 s */
	assert_true(osd_log_fingerprint(l, 1000, 5, 101, &fp, "2100000001"));
	assert_false(osd_log_fingerprint(l, 11000, 6, 101, &fp, "2100000001")); /* every ECM: not yet */
	assert_true(osd_log_fingerprint(l, 61000, 7, 101, &fp, "2100000001"));
	assert_true(osd_log_fingerprint(l, 121500, 8, 101, &fp, "2100000001"));
	assert_false(osd_log_fingerprint(l, 999000, 9, 101, &fp, "2100000001")); /* 3 showings done */
	assert_true(osd_log_fingerprint(l, 1000, 5, 102, &fp, "2100000001"));    /* another service */
	assert_int_equal(osd_log_count(l), 4);
	/* first shown before the stream clock started (an ECM ahead of the
	 * first PCR, -1): the repeats follow the stream clock from 0, not the
	 * box clock (a file played fast never moves it by interval_s) */
	fp.fp_id = 55;
	assert_true(osd_log_fingerprint(l, -1, 100, 101, &fp, "2100000001"));
	assert_false(osd_log_fingerprint(l, 59999, 101, 101, &fp, "2100000001"));
	assert_true(osd_log_fingerprint(l, 60000, 102, 101, &fp, "2100000001"));
	assert_int_equal(osd_log_get(l, 5)->showing, 2);
	assert_int_equal(osd_log_get(l, 5)->start_ms, 60000);
	fp.fp_id = 1;
	e = osd_log_get(l, 1);
	assert_int_equal(e->start_ms, 61000);
	assert_int_equal(e->showing, 2);
	assert_int_equal(e->x_pct, 12);
	assert_true(e->overt);
	fp.fp_id = 99;
	fp.flags |= OSD_FP_RANDOM_POS;
	fp.x_pct = 0;
	fp.y_pct = 0;
	for (int i = 0; i < 20; i++) { /* random positions stay on screen */
		fp.fp_id = 100 + (uint32_t)i;
		assert_true(osd_log_fingerprint(l, 0, 0, 101, &fp, "x"));
		e = osd_log_get(l, osd_log_count(l) - 1);
		assert_true(e->x_pct <= 90 && e->y_pct <= 90);
	}
	sample_msg(&m);
	assert_true(osd_log_message(l, 5000, 1, &m));
	assert_false(osd_log_message(l, 6000, 2, &m)); /* once per msg_id */
	e = osd_log_get(l, osd_log_count(l) - 1);
	assert_int_equal(e->style, OSD_STYLE_POPUP);
	assert_true(e->forced);
	assert_int_equal(e->duration_ms, 30000);
	assert_null(osd_log_get(l, osd_log_count(l)));
	osd_log_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_osd_roundtrip),
		cmocka_unit_test(test_osd_bad_table),
		cmocka_unit_test(test_osd_text_and_code),
		cmocka_unit_test(test_ecm_fingerprint),
		cmocka_unit_test(test_ecm_usage),
		cmocka_unit_test(test_cardless_fingerprint),
		cmocka_unit_test(test_emm_osd),
		cmocka_unit_test(test_osd_log_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
