/*
 * test_emm.c - tests of the EMM path (src/cas/emm.c, card.c, the card mode
 * of cardless.c, the card key derivation in keys.c): round trip, a box that
 * gains a package from an EMM and opens the ECM, replay, tampering, other
 * cards, expiry by keys, a "patched client" that skips every check, the
 * state file across a restart, commands, group EMMs, a table of bad EMMs,
 * the fuzz corpus replayed, the CLI, and the issuer's fast AES-NI seal
 * against the OpenSSL EVP reference (byte for byte, many cards and lengths).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include "lib/bytes.h"
#include "client/cardless.h"
#include "cas/card.h"
#include "cas/client.h"
#include "cas/ecm.h"
#include "cas/emm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "lib/cursor.h"
#include "lib/util.h"
#include "testutil.h"
#include "ecmforge.h"

#define CASID 0x4ADC
#define EPOCH_S 3600u
#define T0 1700000000ull /* epoch 472222, 800 s into it */
#define SERIAL 2100000001ull
#define OTHER 2100000002ull

static const uint8_t test_root[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static struct keystore *test_ks(void)
{
	struct keystore *ks = NULL;

	assert_int_equal(keystore_from_root(CASID, EPOCH_S, test_root, &ks), 0);
	return ks;
}

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/castellan-emm-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
}

static const char *tmp(const char *name)
{
	static char p[2][512];
	static int k;

	k ^= 1;
	snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, name);
	return p[k];
}

static void rm_tmpdir(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
}

/* ---- fake host ---- */

struct fake_host {
	uint64_t now_ms;
	unsigned nloads;
	uint8_t cw[2][CW_MAX_BYTES];
};

static int fh_load_cw(void *ctx, uint16_t sid, enum cw_alg alg, enum cw_parity parity, const uint8_t *cw,
	size_t len)
{
	struct fake_host *h = ctx;

	(void)sid;
	(void)alg;
	memcpy(h->cw[parity == CW_ODD], cw, len);
	h->nloads++;
	return 0;
}

static uint64_t fh_now(void *ctx) { return ((struct fake_host *)ctx)->now_ms; }

/* ---- fixture: a keystore, an issuer, a card file and a card-mode client ---- */

struct fx {
	struct keystore *ks;
	struct emm_issuer *is;
	struct cas_client c;
	struct fake_host fh;
	struct cas_host host;
	uint8_t sec[EMM_MAX_SECTION];
	size_t len;
};

static void write_card(const struct keystore *ks, uint64_t serial, uint64_t stb_id, const char *path)
{
	struct card_identity ci;

	assert_int_equal(card_issue(ks, serial, &ci), 0);
	ci.stb_id = stb_id;
	assert_int_equal(card_save(&ci, path), 0);
	card_identity_wipe(&ci);
}

static struct fx *fx_new(const char *state_arg)
{
	struct fx *f = calloc(1, sizeof(*f));
	char state_buf[512];
	const char *state_path = NULL;

	if (state_arg) { /* tmp() buffers rotate: copy first */
		snprintf(state_buf, sizeof(state_buf), "%s", state_arg);
		state_path = state_buf;
	}

	assert_non_null(f);
	f->ks = test_ks();
	assert_int_equal(emm_issuer_new(f->ks, &f->is), 0);
	write_card(f->ks, SERIAL, 77, tmp("card.json"));
	assert_int_equal(cardless_client_new_card(tmp("card.json"), state_path, &f->c), 0);
	f->fh.now_ms = T0 * 1000;
	f->host.ctx = &f->fh;
	f->host.load_cw = fh_load_cw;
	f->host.now_ms = fh_now;
	return f;
}

static void fx_free(struct fx *f)
{
	cas_client_free(&f->c);
	emm_issuer_free(f->is);
	keystore_free(f->ks);
	free(f);
}

static size_t grant_emm(struct fx *f, uint64_t serial, uint32_t seq, uint32_t pk, uint64_t start, uint64_t finish)
{
	struct emm_grant g = { .packages = pk, .start_s = start, .finish_s = finish };

	assert_int_equal(emm_build_unique(f->is, serial, seq, &g, T0 * 1000, f->sec, sizeof(f->sec), &f->len), 0);
	return f->len;
}

static int feed_emm(struct fx *f, const uint8_t *sec, size_t len)
{
	return f->c.ops->emm(f->c.self, sec, len);
}

/* ECM of channel `mask` at T0, CSA2, both CWs. */
static size_t make_ecm(const struct keystore *ks, uint32_t mask, uint8_t *sec, struct ecm_params *p)
{
	size_t len = 0;

	memset(p, 0, sizeof(*p));
	p->alg = CW_ALG_CSA2;
	p->ecm_id = 7;
	p->ca_system_id = CASID;
	p->cp_number = 10;
	p->timestamp_ms = T0 * 1000;
	p->epoch = keystore_epoch_at(ks, T0);
	p->ac_len = 4;
	put_be32(p->ac, mask);
	p->cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	for (int i = 0; i < 8; i++) {
		p->cw_even[i] = (uint8_t)(0x30 + i);
		p->cw_odd[i] = (uint8_t)(0x50 + i);
	}
	assert_int_equal(ecm_build(ks, p, sec, ECM_MAX_SECTION, &len), 0);
	return len;
}

static int feed_ecm(struct fx *f, const uint8_t *sec, size_t len)
{
	return f->c.ops->ecm(f->c.self, &f->host, 101, sec, len);
}

static void get_state(struct fx *f, struct emm_card_state *st)
{
	assert_int_equal(cardless_client_state(&f->c, st), 0);
}

/* ---- card keys ---- */

static int kbkdf_ref(const uint8_t *key, size_t klen, const char *label, const uint8_t *ctx, size_t clen,
	uint8_t *out, size_t olen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
	EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM prm[7], *p = prm;
	int ok;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, (char *)"counter", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"CMAC", 0);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, (char *)"AES-256-CBC", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)key, klen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)label, strlen(label));
	if (clen)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)ctx, clen);
	*p = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(k, out, olen, prm);
	EVP_KDF_CTX_free(k);
	EVP_KDF_free(kdf);
	return ok == 1 ? 0 : -1;
}

/* The fast card-key path equals OpenSSL's KBKDF, and K_card differs per card
 * and from every package key. */
static void test_card_key_known_answer(void **state)
{
	static const uint64_t serials[] = { 0, 1, SERIAL, OTHER, 0xFFFFFFFFFFFFFFFFull, 0x0102030405060708ull };
	struct keystore *ks = test_ks();
	uint8_t card_root[32], want[16], got[16], prev[16];
	struct pkg_key pk;

	(void)state;
	assert_int_equal(kbkdf_ref(test_root, 32, "castellan card root", NULL, 0, card_root, 32), 0);
	for (size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
		uint8_t ctx[8];

		for (int b = 0; b < 8; b++)
			ctx[b] = (uint8_t)(serials[i] >> (56 - 8 * b));
		assert_int_equal(kbkdf_ref(card_root, 32, "castellan card key", ctx, 8, want, 16), 0);
		assert_int_equal(keystore_card_key(ks, serials[i], got), 0);
		assert_memory_equal(got, want, 16);
		if (i)
			assert_memory_not_equal(got, prev, 16);
		memcpy(prev, got, 16);
	}
	assert_int_equal(keystore_package_key(ks, 0, 0, &pk), 0);
	assert_memory_not_equal(pk.key, got, 16);
	/* a keystore reloaded from its file derives the same card keys */
	{
		uint8_t *file = NULL;
		size_t flen = 0;
		struct keystore *ks2 = NULL;

		assert_int_equal(keystore_encode_params(ks, "pw", KEYSTORE_SCRYPT_MIN_LOG2N, 8, 1, &file, &flen), 0);
		assert_int_equal(keystore_decode(file, flen, "pw", &ks2), 0);
		assert_int_equal(keystore_card_key(ks2, 0x0102030405060708ull, want), 0);
		assert_memory_equal(want, prev, 16);
		keystore_free(ks2);
		free(file);
	}
	keystore_free(ks);
}

static void test_card_file(void **state)
{
	struct keystore *ks = test_ks();
	struct card_identity a, b;
	struct stat sb;
	char *json = NULL;
	static const char *const bad[] = {
		"{}",
		"[]",
		"{\"format\":\"castellan-card-2\",\"ca_system_id\":1,\"card\":\"1\",\"card_key\":\"000102030405060708090a0b0c0d0e0f\"}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":70000,\"card\":\"1\",\"card_key\":\"000102030405060708090a0b0c0d0e0f\"}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":1,\"card\":\"-1\",\"card_key\":\"000102030405060708090a0b0c0d0e0f\"}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":1,\"card\":\"99999999999999999999\",\"card_key\":\"000102030405060708090a0b0c0d0e0f\"}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":1,\"card\":\"1\",\"card_key\":\"000102030405060708090a0b0c0d0e\"}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":1,\"card\":\"1\",\"card_key\":\"zz0102030405060708090a0b0c0d0e0f\"}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":1,\"card\":\"1\"}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":1,\"card\":\"1\",\"card_key\":\"000102030405060708090a0b0c0d0e0f\",\"x\":1}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":1,\"card\":\"1\",\"card_key\":\"000102030405060708090a0b0c0d0e0f\",\"stb_id\":\"0x1\"}",
		"{\"format\":\"castellan-card-1\",\"ca_system_id\":1.5,\"card\":\"1\",\"card_key\":\"000102030405060708090a0b0c0d0e0f\"}",
	};

	(void)state;
	make_tmpdir();
	assert_int_equal(card_issue(ks, SERIAL, &a), 0);
	a.stb_id = 42;
	assert_int_equal(card_save(&a, tmp("c.json")), 0);
	assert_int_equal(stat(tmp("c.json"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(card_load(tmp("c.json"), &b), 0);
	assert_int_equal(b.serial, SERIAL);
	assert_int_equal(b.ca_system_id, CASID);
	assert_int_equal(b.stb_id, 42);
	assert_memory_equal(a.key, b.key, 16);
	a.stb_id = 0;
	assert_int_equal(card_encode(&a, &json), 0);
	assert_null(strstr(json, "stb_id"));
	assert_int_equal(card_decode(json, strlen(json), &b), 0);
	assert_int_equal(b.stb_id, 0);
	secret_free(json, strlen(json));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = card_decode(bad[i], strlen(bad[i]), &b);

		if (r == 0)
			fail_msg("bad card file %zu accepted", i);
		assert_true(r == CE_FORMAT || r == CE_RANGE);
	}
	card_identity_wipe(&a);
	card_identity_wipe(&b);
	rm_tmpdir();
	keystore_free(ks);
}

/* ---- EMM format ---- */

static void test_emm_roundtrip(void **state)
{
	struct keystore *ks = test_ks();
	struct emm_issuer *is = NULL;
	struct emm_grant g = { .packages = 0x00000005, .start_s = T0 - 86400, .finish_s = T0 + 86400, .next = 2,
		.ext = { 40, 300 } };
	uint8_t sec[EMM_MAX_SECTION], kc[16];
	size_t len = 0;
	struct emm_view v;
	static struct emm_content c;
	uint32_t e0 = (uint32_t)(T0 / EPOCH_S);

	(void)state;
	assert_int_equal(emm_issuer_new(ks, &is), 0);
	assert_int_equal(emm_build_unique(is, SERIAL, 9, &g, T0 * 1000 + 5, sec, sizeof(sec), &len), 0);
	/* 2 packages x 2 epochs, and the 2 extended ones x 2 epochs: 22 + 4 (ext)
	 * + 4 x 23 + 4 x 24 = 214 bytes of plaintext */
	assert_int_equal(len, EMM_UNIQUE_OVERHEAD + 22 + 4 + 4 * 23 + 4 * 24);
	assert_int_equal(sec[0], EMM_TABLE_UNIQUE);
	assert_int_equal(((sec[1] & 0x0F) << 8 | sec[2]) + 3, len);
	assert_int_equal(emm_parse(sec, len, SERIAL, &v), 0);
	assert_int_equal(v.table_id, EMM_TABLE_UNIQUE);
	assert_int_equal(v.ca_system_id, CASID);
	assert_int_equal(v.serial, SERIAL);
	assert_int_equal(v.seq, 9);
	assert_int_equal(v.timestamp_ms, T0 * 1000 + 5);
	assert_int_equal(emm_parse(sec, len, OTHER, &v), CE_NOT_FOUND);
	assert_int_equal(emm_parse(sec, len, SERIAL, &v), 0);
	assert_int_equal(keystore_card_key(ks, SERIAL, kc), 0);
	assert_int_equal(emm_open(&v, kc, &c), 0);
	assert_true(c.has_grant);
	assert_int_equal(c.grant.packages, 5);
	assert_int_equal(c.grant.start_s, T0 - 86400);
	assert_int_equal(c.grant.finish_s, T0 + 86400);
	assert_int_equal(c.grant.next, 2);
	assert_int_equal(c.grant.ext[1], 300);
	assert_int_equal(c.cmds, 0);
	assert_int_equal(c.nkeys, 8);
	for (size_t i = 0; i < 8; i++) {
		static const unsigned pk[4] = { 0, 2, 40, 300 };
		struct pkg_key want;
		uint32_t ep = e0 + (uint32_t)(i / 4);
		unsigned pkg = pk[i % 4];

		assert_int_equal(c.keys[i].epoch, ep);
		assert_int_equal(c.keys[i].pkg, pkg);
		assert_int_equal(keystore_package_key(ks, ep, pkg, &want), 0);
		assert_memory_equal(c.keys[i].key, want.key, 16);
	}
	/* the other card's key does not open it */
	assert_int_equal(keystore_card_key(ks, OTHER, kc), 0);
	assert_int_equal(emm_open(&v, kc, &c), CE_MAC);
	assert_int_equal(c.nkeys, 0);
	/* commands round trip */
	assert_int_equal(emm_build_command(is, SERIAL, 10, EMM_CMD_BLOCK | EMM_CMD_PAIR | EMM_CMD_RESET_COUNTER, 99,
		T0 * 1000, sec, sizeof(sec), &len), 0);
	assert_int_equal(emm_parse(sec, len, SERIAL, &v), 0);
	assert_int_equal(keystore_card_key(ks, SERIAL, kc), 0);
	assert_int_equal(emm_open(&v, kc, &c), 0);
	assert_false(c.has_grant);
	assert_int_equal(c.cmds, EMM_CMD_BLOCK | EMM_CMD_PAIR | EMM_CMD_RESET_COUNTER);
	assert_int_equal(c.pair_stb_id, 99);
	/* bad command requests */
	assert_int_equal(emm_build_command(is, SERIAL, 10, 0, 0, T0 * 1000, sec, sizeof(sec), &len), CE_ARG);
	assert_int_equal(emm_build_command(is, SERIAL, 10, EMM_CMD_BLOCK | EMM_CMD_UNBLOCK, 0, T0 * 1000, sec,
		sizeof(sec), &len), CE_ARG);
	assert_int_equal(emm_build_command(is, SERIAL, 10, EMM_CMD_PAIR, 0, T0 * 1000, sec, sizeof(sec), &len),
		CE_ARG);
	assert_int_equal(emm_build_unique(is, SERIAL, 9, &g, T0 * 1000, sec, 100, &len), CE_OVERFLOW);
	g.start_s = g.finish_s + 1;
	assert_int_equal(emm_build_unique(is, SERIAL, 9, &g, T0 * 1000, sec, sizeof(sec), &len), CE_RANGE);
	emm_content_wipe(&c);
	emm_issuer_free(is);
	keystore_free(ks);
}

/* The box gains the package from an EMM and opens the ECM. */
static void test_box_gains_package(void **state)
{
	struct fx *f;
	struct emm_card_state st;
	struct ecm_params p;
	uint8_t ecm[ECM_MAX_SECTION];
	size_t elen;

	(void)state;
	make_tmpdir();
	f = fx_new(NULL);
	assert_string_equal(f->c.ops->name, "cardless");
	assert_int_equal(f->c.ops->ca_system_id(f->c.self), CASID);
	elen = make_ecm(f->ks, 0x00000002, ecm, &p);
	/* no EMM yet */
	assert_int_equal(feed_ecm(f, ecm, elen), CE_NOT_ENTITLED);
	assert_int_equal(f->fh.nloads, 0);
	/* EMM with package 0 only: still not entitled to the package-1 channel */
	grant_emm(f, SERIAL, 1, 0x00000001, T0 - 86400, T0 + 86400);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	assert_int_equal(feed_ecm(f, ecm, elen), CE_NOT_ENTITLED);
	/* EMM adds package 1: the ECM opens, the CWs are the ECMG's */
	grant_emm(f, SERIAL, 2, 0x00000003, T0 - 86400, T0 + 86400);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
	assert_int_equal(f->fh.nloads, 2);
	assert_memory_equal(f->fh.cw[0], p.cw_even, 8);
	assert_memory_equal(f->fh.cw[1], p.cw_odd, 8);
	get_state(f, &st);
	assert_int_equal(st.last_seq, 2);
	assert_int_equal(st.ent.packages, 3);
	assert_int_equal(st.ent.nkeys, 4);
	/* EMM removes the package: the box loses the channel at once */
	grant_emm(f, SERIAL, 3, 0x00000001, T0 - 86400, T0 + 86400);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	assert_int_equal(feed_ecm(f, ecm, elen), CE_NOT_ENTITLED);
	emm_state_wipe(&st);
	fx_free(f);
	rm_tmpdir();
}

/* Replayed, altered, other card's, other CA system's EMMs change nothing. */
static void test_emm_refusals(void **state)
{
	struct fx *f;
	struct emm_card_state before, after;
	uint8_t old[EMM_MAX_SECTION], cur[EMM_MAX_SECTION];
	size_t oldlen, curlen;

	(void)state;
	make_tmpdir();
	f = fx_new(NULL);
	grant_emm(f, SERIAL, 5, 0x00000001, T0 - 86400, T0 + 86400);
	memcpy(old, f->sec, f->len);
	oldlen = f->len;
	assert_int_equal(feed_emm(f, old, oldlen), 0);
	grant_emm(f, SERIAL, 6, 0x00000003, T0 - 86400, T0 + 86400);
	memcpy(cur, f->sec, f->len);
	curlen = f->len;
	assert_int_equal(feed_emm(f, cur, curlen), 0);
	get_state(f, &before);
	/* replay of an older sequence number: refused; the same one again is
	 * the carousel's repeat (CE_EXISTS: the box counts it apart) */
	assert_int_equal(feed_emm(f, old, oldlen), CE_REPLAY);
	assert_int_equal(feed_emm(f, cur, curlen), CE_EXISTS);
	get_state(f, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	/* every single-byte change of a fresh EMM is refused and changes nothing */
	grant_emm(f, SERIAL, 7, 0x00000001, T0 - 86400, T0 + 86400);
	for (size_t i = 0; i < f->len; i++) {
		uint8_t m[EMM_MAX_SECTION];
		int r;

		memcpy(m, f->sec, f->len);
		m[i] ^= 0x01;
		r = feed_emm(f, m, f->len);
		if (r == 0)
			fail_msg("EMM with byte %zu altered accepted", i);
		if (i >= 14 && i < 18) /* seq */
			assert_int_equal(r, CE_MAC);
		if (i >= 18) /* timestamp, nonce, ct_len, ciphertext, tag */
			assert_true(r == CE_MAC || (i >= 38 && i < 40));
	}
	/* bits of the ciphertext and tag: CE_MAC */
	{
		uint8_t m[EMM_MAX_SECTION];

		memcpy(m, f->sec, f->len);
		m[f->len - 1] ^= 0x80;
		assert_int_equal(feed_emm(f, m, f->len), CE_MAC);
		memcpy(m, f->sec, f->len);
		m[45] ^= 0x10;
		assert_int_equal(feed_emm(f, m, f->len), CE_MAC);
	}
	get_state(f, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	/* another card's EMM */
	grant_emm(f, OTHER, 100, 0xFFFFFFFF, T0 - 86400, T0 + 86400);
	assert_int_equal(feed_emm(f, f->sec, f->len), CE_NOT_FOUND);
	/* another CA system's keystore, same serial */
	{
		struct keystore *ks2 = NULL;
		struct emm_issuer *is2 = NULL;
		struct emm_grant g = { .packages = 1, .start_s = T0, .finish_s = T0 + 1 };

		assert_int_equal(keystore_from_root(0x0B00, EPOCH_S, test_root, &ks2), 0);
		assert_int_equal(emm_issuer_new(ks2, &is2), 0);
		assert_int_equal(emm_build_unique(is2, SERIAL, 100, &g, T0 * 1000, f->sec, sizeof(f->sec), &f->len), 0);
		assert_int_equal(feed_emm(f, f->sec, f->len), CE_NOT_FOUND);
		emm_issuer_free(is2);
		keystore_free(ks2);
	}
	/* a different keystore (a forger without our root), same CA system */
	{
		uint8_t root2[32];
		struct keystore *ks2 = NULL;
		struct emm_issuer *is2 = NULL;
		struct emm_grant g = { .packages = 0xFFFFFFFF, .start_s = T0, .finish_s = T0 + 1 };

		memset(root2, 0x5A, sizeof(root2));
		assert_int_equal(keystore_from_root(CASID, EPOCH_S, root2, &ks2), 0);
		assert_int_equal(emm_issuer_new(ks2, &is2), 0);
		assert_int_equal(emm_build_unique(is2, SERIAL, 100, &g, T0 * 1000, f->sec, sizeof(f->sec), &f->len), 0);
		assert_int_equal(feed_emm(f, f->sec, f->len), CE_MAC);
		emm_issuer_free(is2);
		keystore_free(ks2);
	}
	get_state(f, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	/* an entitlement-file client takes no EMMs */
	{
		static struct entitlement e;
		struct cas_client c2;

		e.ca_system_id = CASID;
		assert_int_equal(cardless_client_from(&e, &c2), 0);
		assert_int_equal(c2.ops->emm(c2.self, old, oldlen), CE_UNSUPPORTED);
		assert_int_equal(cardless_client_state(&c2, &after), CE_STATE);
		cas_client_free(&c2);
	}
	emm_state_wipe(&before);
	emm_state_wipe(&after);
	fx_free(f);
	rm_tmpdir();
}

/* An expired subscription gets no key for the current epoch: the ECM does
 * not open, even for a client that skips its checks. */
static void test_expired_no_key(void **state)
{
	struct fx *f;
	struct emm_card_state st;
	struct ecm_params p;
	struct ecm_view ev;
	uint8_t ecm[ECM_MAX_SECTION];
	size_t elen;
	uint64_t epoch_start = (T0 / EPOCH_S) * EPOCH_S;

	(void)state;
	make_tmpdir();
	f = fx_new(NULL);
	/* the subscription ended one second before the current epoch began */
	grant_emm(f, SERIAL, 1, 0x00000003, T0 - 30 * 86400, epoch_start - 1);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	get_state(f, &st);
	assert_int_equal(st.ent.packages, 3);
	assert_int_equal(st.ent.nkeys, 0);
	elen = make_ecm(f->ks, 0x00000001, ecm, &p);
	assert_int_equal(feed_ecm(f, ecm, elen), CE_EXPIRED);
	/* patched: box clock and ECM checks skipped; the card has no key at all */
	assert_int_equal(ecm_parse(ecm, elen, &ev), 0);
	assert_null(entitlement_find_key(&st.ent, ev.epoch, 0));
	/* ending inside the current epoch: current key yes, next epoch no */
	grant_emm(f, SERIAL, 2, 0x00000003, T0 - 30 * 86400, T0 + 10);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	get_state(f, &st);
	assert_int_equal(st.ent.nkeys, 2);
	for (size_t i = 0; i < st.ent.nkeys; i++)
		assert_int_equal(st.ent.keys[i].epoch, ev.epoch);
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
	/* not yet started (starts next epoch): only next epoch's keys */
	grant_emm(f, SERIAL, 3, 0x00000003, epoch_start + EPOCH_S, epoch_start + 10 * EPOCH_S);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	get_state(f, &st);
	assert_int_equal(st.ent.nkeys, 2);
	assert_int_equal(st.ent.keys[0].epoch, ev.epoch + 1);
	emm_state_wipe(&st);
	fx_free(f);
	rm_tmpdir();
}

/* A patched client: every key the card ever got from EMMs, tried on every
 * wrap of a channel outside its packages, as any package and the ECM's
 * epoch. No CW comes out. */
static void test_patched_client(void **state)
{
	struct fx *f;
	struct emm_card_state st;
	struct ecm_params p;
	struct ecm_view ev;
	uint8_t ecm[ECM_MAX_SECTION];
	size_t elen;
	unsigned tries = 0;

	(void)state;
	make_tmpdir();
	f = fx_new(NULL);
	grant_emm(f, SERIAL, 1, 0x00000003, T0 - 86400, T0 + 86400);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	get_state(f, &st);
	assert_int_equal(st.ent.nkeys, 4);
	elen = make_ecm(f->ks, 0x80000024, ecm, &p); /* packages 2, 5, 31 */
	assert_int_equal(feed_ecm(f, ecm, elen), CE_NOT_ENTITLED);
	assert_int_equal(ecm_parse(ecm, elen, &ev), 0);
	for (size_t i = 0; i < st.ent.nkeys; i++) {
		for (unsigned w = 0; w < ev.nwraps; w++) {
			struct pkg_key forged = st.ent.keys[i];
			struct ecm_cws cws;

			forged.pkg = ev.wraps[w * (1 + ECM_WRAP_BYTES)];
			forged.epoch = ev.epoch;
			assert_int_equal(ecm_open(&ev, &forged, &cws), CE_MAC);
			assert_int_equal(cws.cw_mask, 0);
			tries++;
		}
	}
	assert_int_equal(tries, 4 * 3);
	/* control: the same channel opens once an EMM grants package 5 */
	grant_emm(f, SERIAL, 2, 0x00000020, T0 - 86400, T0 + 86400);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
	assert_memory_equal(f->fh.cw[0], p.cw_even, 8);
	emm_state_wipe(&st);
	fx_free(f);
	rm_tmpdir();
}

/* ECM of a channel in the mask's packages and extended packages ext[0..n)
 * (format v3 when n > 0), at T0. */
static size_t make_ecm_ext(const struct keystore *ks, uint32_t mask, const uint16_t *ext, size_t n, uint8_t *sec,
	struct ecm_params *p)
{
	size_t len = 0;

	(void)make_ecm(ks, mask ? mask : 1, sec, p);
	put_be32(p->ac, mask);
	for (size_t i = 0; i < n; i++)
		put_be16(p->ac + 4 + 2 * i, ext[i]);
	p->ac_len = (uint8_t)(4 + 2 * n);
	assert_int_equal(ecm_build(ks, p, sec, ECM_MAX_SECTION, &len), 0);
	return len;
}

/* Issue 16 item 8: packages above 31 are keyed end to end. The head-end's
 * EMM gives K_pkg(40) to a card entitled to package 40 only; the ECM of a
 * channel in package 40 (format v3) opens with it; a card entitled to 41
 * only gets nothing -- not through the client (CE_NOT_ENTITLED), nor as a
 * patched client trying every key it holds on every wrap as any package
 * (CE_MAC), nor by re-sealing an ECM of a channel in 40 and 41 with 41's
 * key (40's boxes refuse it: CE_MAC). */
static void test_extended_packages(void **state)
{
	static const uint16_t p40[] = { 40 }, p40_41[] = { 40, 41 };
	struct fx *f;
	struct emm_card_state st;
	struct emm_grant g = { .packages = 0, .start_s = T0 - 86400, .finish_s = T0 + 86400, .next = 1 };
	struct ecm_params p;
	struct ecm_view ev, fv;
	struct ecm_cws cws;
	struct pkg_key k40, k41, k8;
	uint8_t ecm[ECM_MAX_SECTION], both[ECM_MAX_SECTION], forged[ECM_MAX_SECTION], evil[16];
	size_t elen, blen;
	unsigned tries = 0;

	(void)state;
	make_tmpdir();
	f = fx_new(NULL);
	/* the keystore: ids >= 32 have keys of their own, distinct from the
	 * mask's (8 = 40 - 32 and 40 mod 256 would be the naive collisions) */
	assert_int_equal(keystore_package_key(f->ks, 5, 40, &k40), 0);
	assert_int_equal(keystore_package_key(f->ks, 5, 41, &k41), 0);
	assert_int_equal(keystore_package_key(f->ks, 5, 8, &k8), 0);
	assert_int_equal(k40.pkg, 40);
	assert_memory_not_equal(k40.key, k41.key, 16);
	assert_memory_not_equal(k40.key, k8.key, 16);
	assert_int_equal(keystore_package_key(f->ks, 5, CAS_PACKAGE_IDS - 1, &k8), 0);
	assert_int_equal(keystore_package_key(f->ks, 5, CAS_PACKAGE_IDS, &k8), CE_RANGE);
	/* the ECM of a channel in package 40: v3, one wrap with a u16 id */
	elen = make_ecm_ext(f->ks, 0, p40, 1, ecm, &p);
	assert_int_equal(ecm_parse(ecm, elen, &ev), 0);
	assert_int_equal(ev.version, ECM_FORMAT_V3);
	assert_int_equal(ev.nwraps, 1);
	assert_int_equal(ecm_wrap_pkg(&ev, 0), 40);
	assert_int_equal(elen, 54 + 6 + 26 + 16);
	/* entitled to 40 only: the EMM carries K_pkg(40) (EMM_T_PKG_KEY_EXT) */
	g.ext[0] = 40;
	assert_int_equal(emm_build_unique(f->is, SERIAL, 1, &g, T0 * 1000, f->sec, sizeof(f->sec), &f->len), 0);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	get_state(f, &st);
	assert_int_equal(st.ent.next, 1);
	assert_int_equal(st.ent.nkeys, 2); /* this epoch and the next */
	assert_int_equal(st.ent.keys[0].pkg, 40);
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
	assert_int_equal(f->fh.nloads, 2);
	assert_memory_equal(f->fh.cw[0], p.cw_even, 8);
	/* a channel in 40 and 41 opens too, with 40's key */
	blen = make_ecm_ext(f->ks, 0x00000001, p40_41, 2, both, &p);
	assert_int_equal(feed_ecm(f, both, blen), 0);
	emm_state_wipe(&st);
	/* entitled to 41 only: the client refuses the package-40 channel */
	g.ext[0] = 41;
	assert_int_equal(emm_build_unique(f->is, SERIAL, 2, &g, T0 * 1000, f->sec, sizeof(f->sec), &f->len), 0);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	f->fh.nloads = 0;
	assert_int_equal(feed_ecm(f, ecm, elen), CE_NOT_ENTITLED);
	assert_int_equal(f->fh.nloads, 0);
	/* patched: every key it holds, on every wrap, as that wrap's package */
	get_state(f, &st);
	assert_int_equal(st.ent.nkeys, 2);
	for (size_t i = 0; i < st.ent.nkeys; i++) {
		assert_int_equal(st.ent.keys[i].pkg, 41);
		for (unsigned w = 0; w < ev.nwraps; w++) {
			struct pkg_key forged_key = st.ent.keys[i];

			forged_key.pkg = (uint16_t)ecm_wrap_pkg(&ev, w);
			forged_key.epoch = ev.epoch;
			assert_int_equal(ecm_open(&ev, &forged_key, &cws), CE_MAC);
			assert_int_equal(cws.cw_mask, 0);
			tries++;
		}
	}
	assert_int_equal(tries, 2);
	/* the forgery: 41's subscriber takes a genuine ECM of a channel in 40
	 * and 41, opens 41's wrap, re-seals with its own ECM_id, time and CWs */
	assert_int_equal(ecm_parse(both, blen, &ev), 0);
	assert_int_equal(keystore_package_key(f->ks, ev.epoch, 40, &k40), 0);
	assert_int_equal(keystore_package_key(f->ks, ev.epoch, 41, &k41), 0);
	memset(evil, 0xEE, sizeof(evil));
	assert_true(tu_ecm_forge(both, blen, 41, k41.key, 0x0777, p.timestamp_ms + 60000, evil, true, forged));
	assert_int_equal(ecm_parse(forged, blen, &fv), 0);
	assert_int_equal(ecm_open(&fv, &k41, &cws), 0); /* the forger is competent */
	ecm_cws_wipe(&cws);
	assert_int_equal(ecm_open(&fv, &k40, &cws), CE_MAC); /* 40's boxes refuse it */
	assert_int_equal(cws.cw_mask, 0);
	/* and a box entitled to 40 (a fresh card state) refuses it through the client */
	g.ext[0] = 40;
	assert_int_equal(emm_build_unique(f->is, SERIAL, 3, &g, T0 * 1000, f->sec, sizeof(f->sec), &f->len), 0);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	assert_int_equal(feed_ecm(f, forged, blen), CE_MAC);
	assert_int_equal(feed_ecm(f, both, blen), 0);
	/* the fuzz seeds of format v3 parse as v3 (fuzz/corpus/ecm/v3-*) */
	{
		static const char *const seeds[] = { "v3-csa2-ext40-41", "v3-cissa-mask3-ext5000" };

		for (size_t i = 0; i < 2; i++) {
			char path[700];
			size_t sl = 0;
			uint8_t *b;

			snprintf(path, sizeof(path), "%s/../../fuzz/corpus/ecm/%s", tu_testdata("."), seeds[i]);
			b = tu_read(path, &sl);
			assert_non_null(b);
			assert_int_equal(ecm_parse(b, sl, &fv), 0);
			assert_int_equal(fv.version, ECM_FORMAT_V3);
			assert_int_equal(fv.xpkg[0], i ? 5000 : 40);
			free(b);
		}
	}
	/* a v3 ECM whose AC lists an id < 32, unsorted ids, or an odd length: refused */
	{
		uint8_t bad[ECM_MAX_SECTION];
		struct ecm_params q = p;
		size_t bl = 0;

		put_be16(q.ac + 4, 31);
		assert_int_equal(ecm_build(f->ks, &q, bad, sizeof(bad), &bl), CE_ARG);
		put_be16(q.ac + 4, 41);
		put_be16(q.ac + 6, 40);
		assert_int_equal(ecm_build(f->ks, &q, bad, sizeof(bad), &bl), CE_ARG);
		q.ac_len = 5;
		assert_int_equal(ecm_build(f->ks, &q, bad, sizeof(bad), &bl), CE_ARG);
		/* the parser, on a genuine v3 ECM with 41 rewritten to 39 < 40 */
		memcpy(bad, both, blen);
		put_be16(bad + 24 + 6, 39);
		assert_int_equal(ecm_parse(bad, blen, &fv), CE_FORMAT);
	}
	pkg_key_wipe(&k40);
	pkg_key_wipe(&k41);
	pkg_key_wipe(&k8);
	emm_state_wipe(&st);
	fx_free(f);
	rm_tmpdir();
}

/* The state file survives a restart; a replay after the restart is still
 * refused; an altered or foreign state file is refused. */
static void test_state_file(void **state)
{
	struct fx *f;
	struct emm_card_state st;
	struct ecm_params p;
	uint8_t ecm[ECM_MAX_SECTION], first[EMM_MAX_SECTION];
	size_t elen, flen;
	struct stat sb;
	struct cas_client c2;

	(void)state;
	make_tmpdir();
	f = fx_new(tmp("state.bin"));
	assert_int_equal(stat(tmp("state.bin"), &sb), -1); /* nothing written before an EMM */
	grant_emm(f, SERIAL, 41, 0x00000002, T0 - 86400, T0 + 86400);
	memcpy(first, f->sec, f->len);
	flen = f->len;
	assert_int_equal(feed_emm(f, first, flen), 0);
	assert_int_equal(emm_build_command(f->is, SERIAL, 42, EMM_CMD_PAIR, 77, T0 * 1000, f->sec, sizeof(f->sec),
		&f->len), 0);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	assert_int_equal(stat(tmp("state.bin"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* restart */
	cas_client_free(&f->c);
	assert_int_equal(cardless_client_new_card(tmp("card.json"), tmp("state.bin"), &f->c), 0);
	get_state(f, &st);
	assert_int_equal(st.last_seq, 42);
	assert_int_equal(st.ent.packages, 2);
	assert_int_equal(st.paired_stb_id, 77);
	elen = make_ecm(f->ks, 0x00000002, ecm, &p);
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
	assert_memory_equal(f->fh.cw[1], p.cw_odd, 8);
	assert_int_equal(feed_emm(f, first, flen), CE_REPLAY);
	/* altered state file: refused (not silently reset, which would re-open replays) */
	{
		uint8_t *buf = NULL;
		size_t len = 0;

		assert_int_equal(file_read_all(tmp("state.bin"), 65536, &buf, &len), 0);
		buf[len / 2] ^= 1;
		assert_int_equal(file_write_atomic(tmp("state2.bin"), buf, len, 0600), 0);
		assert_int_equal(cardless_client_new_card(tmp("card.json"), tmp("state2.bin"), &c2), CE_MAC);
		buf[len / 2] ^= 1;
		/* every truncation is refused */
		for (size_t n = 0; n < len; n += 7) {
			static struct emm_card_state s2;
			uint8_t kc[16];

			assert_int_equal(keystore_card_key(f->ks, SERIAL, kc), 0);
			assert_int_not_equal(emm_state_decode(buf, n, SERIAL, kc, &s2), 0);
		}
		free(buf);
	}
	/* another card's state file */
	write_card(f->ks, OTHER, 0, tmp("other.json"));
	assert_int_equal(cardless_client_new_card(tmp("other.json"), tmp("state.bin"), &c2), CE_MAC);
	emm_state_wipe(&st);
	fx_free(f);
	rm_tmpdir();
}

/* Commands: block/unblock, pair/unpair, reset the anti-sharing counter. */
static void test_commands(void **state)
{
	struct fx *f;
	struct emm_card_state st;
	struct ecm_params p;
	uint8_t ecm[ECM_MAX_SECTION], ecm2[ECM_MAX_SECTION];
	size_t elen, elen2;
	uint32_t seq = 1;

	(void)state;
	make_tmpdir();
	f = fx_new(NULL); /* card file has STB id 77 */
	grant_emm(f, SERIAL, seq++, 0x00000001, T0 - 86400, T0 + 86400);
	assert_int_equal(feed_emm(f, f->sec, f->len), 0);
	elen = make_ecm(f->ks, 0x00000001, ecm, &p);
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
#define CMD(bits, stb) \
	do { \
		assert_int_equal(emm_build_command(f->is, SERIAL, seq++, (bits), (stb), T0 * 1000, f->sec, \
			sizeof(f->sec), &f->len), 0); \
		assert_int_equal(feed_emm(f, f->sec, f->len), 0); \
	} while (0)
	CMD(EMM_CMD_BLOCK, 0);
	assert_int_equal(feed_ecm(f, ecm, elen), CE_BLOCKED);
	CMD(EMM_CMD_UNBLOCK, 0);
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
	CMD(EMM_CMD_PAIR, 1234); /* paired to another box */
	assert_int_equal(feed_ecm(f, ecm, elen), CE_BLOCKED);
	CMD(EMM_CMD_PAIR, 77); /* paired to this box */
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
	CMD(EMM_CMD_UNPAIR, 0);
	get_state(f, &st);
	assert_int_equal(st.paired_stb_id, 0);
	/* the grant survives commands */
	assert_int_equal(st.ent.packages, 1);
	/* zapping counts, reset by EMM */
	p.cp_number = 11;
	elen2 = make_ecm(f->ks, 0x00000001, ecm2, &p);
	assert_int_equal(f->c.ops->ecm(f->c.self, &f->host, 202, ecm2, elen2), 0);
	assert_int_equal(feed_ecm(f, ecm, elen), 0);
	get_state(f, &st);
	assert_true(st.zap_count >= 2);
	CMD(EMM_CMD_RESET_COUNTER, 0);
	get_state(f, &st);
	assert_int_equal(st.zap_count, 0);
	assert_int_equal(st.last_seq, seq - 1);
#undef CMD
	emm_state_wipe(&st);
	fx_free(f);
	rm_tmpdir();
}

/* Group EMMs: one section, three cards; each opens its own record. */
static void test_group(void **state)
{
	struct keystore *ks = test_ks();
	struct emm_issuer *is = NULL;
	uint8_t u[3][EMM_MAX_SECTION], grp[EMM_MAX_SECTION];
	const uint8_t *ptrs[3];
	size_t lens[3], glen = 0, sum = 0;
	uint64_t serials[3] = { 2100000010, 2100000011, 2100000012 };

	(void)state;
	make_tmpdir();
	assert_int_equal(emm_issuer_new(ks, &is), 0);
	for (int i = 0; i < 3; i++) {
		struct emm_grant g = { .packages = 1u << i, .start_s = T0 - 100, .finish_s = T0 + 100 };

		assert_int_equal(emm_build_unique(is, serials[i], 5, &g, T0 * 1000, u[i], sizeof(u[i]), &lens[i]), 0);
		ptrs[i] = u[i];
		sum += lens[i];
	}
	assert_int_equal(emm_group_pack(ptrs, lens, 3, grp, sizeof(grp), &glen), 0);
	assert_int_equal(grp[0], EMM_TABLE_GROUP);
	assert_int_equal(glen, sum - 3 * (EMM_UNIQUE_OVERHEAD - EMM_RECORD_OVERHEAD) + EMM_GROUP_HEADER);
	for (int i = 0; i < 3; i++) {
		struct cas_client c;
		struct emm_card_state st;
		char name[32];

		snprintf(name, sizeof(name), "c%d.json", i);
		write_card(ks, serials[i], 0, tmp(name));
		assert_int_equal(cardless_client_new_card(tmp(name), NULL, &c), 0);
		assert_int_equal(c.ops->emm(c.self, grp, glen), 0);
		assert_int_equal(cardless_client_state(&c, &st), 0);
		assert_int_equal(st.ent.packages, 1u << i);
		assert_int_equal(st.last_seq, 5);
		assert_int_equal(c.ops->emm(c.self, grp, glen), CE_EXISTS); /* the carousel's repeat */
		cas_client_free(&c);
		emm_state_wipe(&st);
	}
	{
		struct emm_view v;

		assert_int_equal(emm_parse(grp, glen, 2100000099, &v), CE_NOT_FOUND);
		/* one record altered: that card refuses, the others still open theirs */
		grp[EMM_GROUP_HEADER + 20] ^= 1;
		assert_int_equal(emm_parse(grp, glen, serials[0], &v), 0);
		{
			uint8_t kc[16];
			static struct emm_content c;

			assert_int_equal(keystore_card_key(ks, serials[0], kc), 0);
			assert_int_equal(emm_open(&v, kc, &c), CE_MAC);
			assert_int_equal(emm_parse(grp, glen, serials[1], &v), 0);
			assert_int_equal(keystore_card_key(ks, serials[1], kc), 0);
			assert_int_equal(emm_open(&v, kc, &c), 0);
		}
	}
	/* different timestamps cannot share a group */
	{
		struct emm_grant g = { .packages = 1, .start_s = T0 - 100, .finish_s = T0 + 100 };

		assert_int_equal(emm_build_unique(is, serials[2], 6, &g, T0 * 1000 + 1, u[2], sizeof(u[2]), &lens[2]),
			0);
		assert_int_equal(emm_group_pack(ptrs, lens, 3, grp, sizeof(grp), &glen), CE_ARG);
	}
	emm_issuer_free(is);
	keystore_free(ks);
	rm_tmpdir();
}

/* ---- bad EMMs ---- */

/* Re-encrypt: build an authentic EMM of arbitrary content. */
static size_t build_raw(struct emm_issuer *is, const struct emm_content *c, uint8_t *sec)
{
	size_t len = 0;

	assert_int_equal(emm_build(is, SERIAL, 1, T0 * 1000, c, sec, EMM_MAX_SECTION, &len), 0);
	return len;
}

/* Seal an arbitrary plaintext with K_card (to test the TLV parser on
 * authentic bytes the issuer would never write). */
static size_t seal_pt(const struct keystore *ks, const uint8_t *pt, size_t pt_len, uint8_t *sec)
{
	uint8_t kc[16], nonce[12] = { 1, 2, 3 }, tag[16];
	struct wbuf w;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl = 0;
	size_t total = EMM_UNIQUE_OVERHEAD + pt_len;

	assert_int_equal(keystore_card_key(ks, SERIAL, kc), 0);
	wbuf_init(&w, sec, EMM_MAX_SECTION);
	wbuf_u8(&w, EMM_TABLE_UNIQUE);
	wbuf_u16(&w, (uint16_t)(0x7000 | (total - 3)));
	wbuf_u8(&w, 1);
	wbuf_u16(&w, CASID);
	wbuf_u64(&w, SERIAL);
	wbuf_u32(&w, 1);
	wbuf_u64(&w, T0 * 1000);
	wbuf_bytes(&w, nonce, 12);
	wbuf_u16(&w, (uint16_t)pt_len);
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, kc, nonce), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &outl, sec + 3, EMM_AAD_BYTES), 1);
	assert_int_equal(EVP_EncryptUpdate(c, sec + w.len, &outl, pt, (int)pt_len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, sec + w.len + pt_len, &outl), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
	EVP_CIPHER_CTX_free(c);
	memcpy(sec + w.len + pt_len, tag, 16);
	return total;
}

static int open_sec(const struct keystore *ks, const uint8_t *sec, size_t len)
{
	static struct emm_content c;
	struct emm_view v;
	uint8_t kc[16];
	int r;

	if ((r = emm_parse(sec, len, SERIAL, &v)) != 0)
		return r;
	assert_int_equal(keystore_card_key(ks, SERIAL, kc), 0);
	r = emm_open(&v, kc, &c);
	if (r != 0) {
		assert_false(c.has_grant);
		assert_int_equal(c.nkeys, 0);
	}
	return r;
}

static void test_bad_emms(void **state)
{
	struct keystore *ks = test_ks();
	struct emm_issuer *is = NULL;
	static struct emm_content c;
	uint8_t good[EMM_MAX_SECTION], m[EMM_MAX_SECTION + 8];
	size_t glen;
	struct {
		const char *what;
		uint8_t pt[64];
		size_t len;
		int want;
	} pts[] = {
		{ "empty plaintext", { 0 }, 0, CE_FORMAT }, /* ct_len 0 is refused by the parser */
		{ "TLV header cut", { EMM_T_BLOCK }, 1, CE_TRUNCATED },
		{ "TLV overruns", { EMM_T_PAIR, 8, 0, 0, 0, 1 }, 6, CE_TRUNCATED },
		{ "unknown tag", { 0x7F, 0 }, 2, CE_FORMAT },
		{ "block twice", { EMM_T_BLOCK, 0, EMM_T_BLOCK, 0 }, 4, CE_FORMAT },
		{ "block+unblock", { EMM_T_BLOCK, 0, EMM_T_UNBLOCK, 0 }, 4, CE_FORMAT },
		{ "pair+unpair", { EMM_T_PAIR, 8, 0, 0, 0, 0, 0, 0, 0, 1, EMM_T_UNPAIR, 0 }, 12, CE_FORMAT },
		{ "pair stb 0", { EMM_T_PAIR, 8, 0, 0, 0, 0, 0, 0, 0, 0 }, 10, CE_FORMAT },
		{ "block with value", { EMM_T_BLOCK, 1, 0 }, 3, CE_FORMAT },
		{ "entitlement short", { EMM_T_ENTITLEMENT, 4, 0, 0, 0, 1 }, 6, CE_FORMAT },
		{ "entitlement odd ext", { EMM_T_ENTITLEMENT, 21 }, 23, CE_FORMAT },
		{ "start > finish",
			{ EMM_T_ENTITLEMENT, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1 }, 22,
			CE_RANGE },
		{ "key without grant", { EMM_T_PKG_KEY, 21, 0, 0, 0, 1, 0 }, 23, CE_FORMAT },
		{ "key bad length", { EMM_T_PKG_KEY, 20 }, 22, CE_FORMAT },
		{ "key pkg 32",
			{ EMM_T_ENTITLEMENT, 20, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
				EMM_T_PKG_KEY, 21, 0, 0, 0, 1, 32 }, 22 + 23, CE_RANGE },
		{ "key outside grant",
			{ EMM_T_ENTITLEMENT, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
				EMM_T_PKG_KEY, 21, 0, 0, 0, 1, 1 }, 22 + 23, CE_FORMAT },
		/* extended packages (issue 16 item 8): grant of ext 40 (00 28) */
		{ "ext key id < 32",
			{ EMM_T_ENTITLEMENT, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 40,
				EMM_T_PKG_KEY_EXT, 22, 0, 0, 0, 1, 0, 5 }, 24 + 24, CE_RANGE },
		{ "ext key outside grant",
			{ EMM_T_ENTITLEMENT, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 40,
				EMM_T_PKG_KEY_EXT, 22, 0, 0, 0, 1, 0, 41 }, 24 + 24, CE_FORMAT },
		{ "ext key bad length", { EMM_T_PKG_KEY_EXT, 21 }, 23, CE_FORMAT },
		{ "two grants",
			{ EMM_T_ENTITLEMENT, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
				EMM_T_ENTITLEMENT, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 44,
			CE_FORMAT },
	};

	(void)state;
	assert_int_equal(emm_issuer_new(ks, &is), 0);
	{
		struct emm_grant g = { .packages = 3, .start_s = T0 - 10, .finish_s = T0 + 10 };

		assert_int_equal(emm_build_unique(is, SERIAL, 1, &g, T0 * 1000, good, sizeof(good), &glen), 0);
	}
	assert_int_equal(open_sec(ks, good, glen), 0);
	/* section-level cases */
	assert_int_equal(open_sec(ks, good, 0), CE_TRUNCATED);
	assert_int_equal(open_sec(ks, good, 2), CE_TRUNCATED);
	for (size_t n = 3; n < glen; n++)
		assert_int_equal(open_sec(ks, good, n), CE_TRUNCATED); /* every truncation */
	memcpy(m, good, glen);
	m[glen] = 0;
	assert_int_equal(open_sec(ks, m, glen + 1), CE_TRAILING);
	memcpy(m, good, glen);
	m[0] = 0x80; /* an ECM table_id */
	assert_int_equal(open_sec(ks, m, glen), CE_FORMAT);
	m[0] = 0x84;
	assert_int_equal(open_sec(ks, m, glen), CE_FORMAT);
	memcpy(m, good, glen);
	m[1] = (uint8_t)((m[1] & 0x0F) | 0xB0); /* section_syntax_indicator 1 */
	assert_int_equal(open_sec(ks, m, glen), CE_FORMAT);
	memcpy(m, good, glen);
	put_be16(m + 1, (uint16_t)(0x7000 | (glen - 3 + 1))); /* length says one more */
	assert_int_equal(open_sec(ks, m, glen), CE_TRUNCATED);
	put_be16(m + 1, (uint16_t)(0x7000 | (glen - 3 - 1))); /* one less */
	assert_int_equal(open_sec(ks, m, glen), CE_TRAILING);
	memcpy(m, good, glen);
	m[3] = 2; /* format version */
	assert_int_equal(open_sec(ks, m, glen), CE_FORMAT);
	memcpy(m, good, glen);
	put_be16(m + 38, (uint16_t)(tu_be16(m + 38) + 1)); /* ct_len lies: longer */
	assert_int_equal(open_sec(ks, m, glen), CE_TRUNCATED);
	put_be16(m + 38, (uint16_t)(tu_be16(good + 38) - 1)); /* shorter */
	assert_int_equal(open_sec(ks, m, glen), CE_TRAILING);
	put_be16(m + 38, 0);
	assert_int_equal(open_sec(ks, m, glen), CE_FORMAT);
	put_be16(m + 38, EMM_MAX_PLAINTEXT + 1);
	assert_int_equal(open_sec(ks, m, glen), CE_FORMAT);
	{
		uint8_t big[EMM_MAX_SECTION + 1] = { EMM_TABLE_UNIQUE, 0x7F, 0xFF };

		assert_int_equal(open_sec(ks, big, sizeof(big)), CE_RANGE);
	}
	/* group-level cases */
	{
		uint8_t g[64] = { EMM_TABLE_GROUP, 0x70, 12, 1, 0x4A, 0xDC, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

		assert_int_equal(open_sec(ks, g, 15), CE_FORMAT); /* ncards 0 */
		g[14] = 2;
		assert_int_equal(open_sec(ks, g, 15), CE_TRUNCATED); /* records missing */
	}
	{
		const uint8_t *ptrs[2] = { good, good };
		size_t lens[2] = { glen, glen };
		size_t l2 = 0;

		assert_int_equal(emm_group_pack(ptrs, lens, 2, m, sizeof(m), &l2), 0);
		assert_int_equal(open_sec(ks, m, l2), CE_FORMAT); /* the same card twice */
	}
	/* authentic plaintexts that break the TLV rules */
	for (size_t i = 0; i < sizeof(pts) / sizeof(pts[0]); i++) {
		size_t len = seal_pt(ks, pts[i].pt, pts[i].len, m);
		int r = open_sec(ks, m, len);

		if (r != pts[i].want)
			fail_msg("%s: got %d want %d", pts[i].what, r, pts[i].want);
	}
	/* too many keys: 65 > EMM_MAX_KEYS */
	memset(&c, 0, sizeof(c));
	c.has_grant = true;
	c.grant.packages = 0xFFFFFFFF;
	c.grant.finish_s = 1;
	c.nkeys = EMM_MAX_KEYS;
	for (size_t i = 0; i < EMM_MAX_KEYS; i++) {
		c.keys[i].epoch = (uint32_t)(i / 32);
		c.keys[i].pkg = (uint8_t)(i % 32);
	}
	assert_int_equal(open_sec(ks, m, build_raw(is, &c, m)), 0); /* 64: the maximum */
	{
		/* one more key record appended to the 64 (sealed by hand) */
		uint8_t pt[EMM_MAX_PLAINTEXT];
		struct wbuf w;

		wbuf_init(&w, pt, sizeof(pt));
		wbuf_u8(&w, EMM_T_ENTITLEMENT);
		wbuf_u8(&w, 20);
		wbuf_u32(&w, 0xFFFFFFFF);
		wbuf_u64(&w, 0);
		wbuf_u64(&w, 1);
		for (unsigned i = 0; i <= EMM_MAX_KEYS; i++) {
			wbuf_u8(&w, EMM_T_PKG_KEY);
			wbuf_u8(&w, 21);
			wbuf_u32(&w, i / 32);
			wbuf_u8(&w, (uint8_t)(i % 32));
			wbuf_fill(&w, 0xAA, 16);
		}
		assert_int_equal(wbuf_status(&w), 0);
		assert_int_equal(open_sec(ks, m, seal_pt(ks, pt, w.len, m)), CE_LIMIT);
	}
	/* duplicate (epoch, pkg) */
	c.nkeys = 2;
	c.keys[1] = c.keys[0];
	assert_int_equal(open_sec(ks, m, build_raw(is, &c, m)), CE_FORMAT);
	emm_content_wipe(&c);
	emm_issuer_free(is);
	keystore_free(ks);
}

/* Every file of fuzz/corpus/emm parses or fails cleanly (fuzzer findings
 * are kept there as regressions). */
static void test_fuzz_corpus(void **state)
{
	char dir[8192];
	DIR *d;
	struct dirent *de;
	unsigned n = 0;
	uint8_t kc[16];

	(void)state;
	memset(kc, 0x42, sizeof(kc));
	snprintf(dir, sizeof(dir), "%s/../../fuzz/corpus/emm", tu_testdata("."));
	d = opendir(dir);
	if (!d)
		fail_msg("no corpus at %s", dir);
	while ((de = readdir(d)) != NULL) {
		char path[16384];
		uint8_t *buf;
		size_t len;
		struct emm_view v;
		static struct emm_content c;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		buf = tu_read(path, &len);
		if (emm_parse(buf, len, SERIAL, &v) == 0)
			assert_int_not_equal(emm_open(&v, kc, &c), 0);
		free(buf);
		n++;
	}
	closedir(d);
	assert_true(n >= 3);
}

/* ---- CLI ---- */

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	struct keystore *ks = test_ks();
	struct card_identity ci;
	char cmd[4096], db[600];
	uint8_t kc[16];
	struct stat sb;

	(void)state;
	if (!bin)
		skip();
	make_tmpdir();
	assert_int_equal(keystore_save(ks, tmp("ks.bin"), "pw"), 0);
	snprintf(cmd, sizeof(cmd),
		"CASTELLAN_PASSPHRASE=pw %s provision --keystore %s --card 2100000001 --identity-out %s --stb-id 9 >/dev/null",
		bin, tmp("ks.bin"), tmp("card.json"));
	assert_int_equal(run(cmd), 0);
	assert_int_equal(stat(tmp("card.json"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(card_load(tmp("card.json"), &ci), 0);
	assert_int_equal(keystore_card_key(ks, SERIAL, kc), 0);
	assert_memory_equal(ci.key, kc, 16);
	assert_int_equal(ci.stb_id, 9);
	/* refuses to overwrite */
	assert_int_not_equal(run(cmd), 0);
	/* EMM to a hex file, its grant from the SMS store (TRAI A.5); the card opens it */
	snprintf(db, sizeof(db), "%s", tmp("sms.db"));
	snprintf(cmd, sizeof(cmd),
		"%s sms --db %s init >/dev/null 2>&1 && %s sms --db %s card add 2100000001 >/dev/null && "
		"%s sms --db %s subscribe 2100000001 --packages 0,1 --start 1699000000 --finish 1701000000 >/dev/null",
		bin, db, bin, db, bin, db);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		"CASTELLAN_PASSPHRASE=pw %s provision --db %s --keystore %s --card 2100000001 "
		"--now 1700000000 --seq 3 --emm-out %s >/dev/null",
		bin, db, tmp("ks.bin"), tmp("emm.hex"));
	assert_int_equal(run(cmd), 0);
	{
		uint8_t *hex = NULL, sec[EMM_MAX_SECTION];
		size_t hl = 0, sl = 0;
		struct cas_client c;
		struct emm_card_state st;

		assert_int_equal(file_read_all(tmp("emm.hex"), 65536, &hex, &hl), 0);
		assert_true(hl > 2 && hex[hl - 1] == '\n');
		hex[hl - 1] = 0;
		assert_int_equal(hex_decode_var((char *)hex, sec, sizeof(sec), &sl), 0);
		free(hex);
		assert_int_equal(cardless_client_new_card(tmp("card.json"), NULL, &c), 0);
		assert_int_equal(c.ops->emm(c.self, sec, sl), 0);
		assert_int_equal(cardless_client_state(&c, &st), 0);
		assert_int_equal(st.ent.packages, 3);
		assert_int_equal(st.ent.nkeys, 4);
		assert_int_equal(st.last_seq, 3);
		cas_client_free(&c);
		emm_state_wipe(&st);
	}
	/* usage errors */
	snprintf(cmd, sizeof(cmd), "%s provision --keystore x --card 1 --emm-out y --packages 1 2>/dev/null", bin);
	assert_int_equal(run(cmd), 2);
	snprintf(cmd, sizeof(cmd), "%s stb --help | grep -q -- --card", bin);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s provision --help | grep -q -- --identity-out", bin);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s stb --input a --output b --card x --cw 00 2>/dev/null", bin);
	assert_int_equal(run(cmd), 2);
	snprintf(cmd, sizeof(cmd), "%s stb --input a --output b --entitlement x --state y 2>/dev/null", bin);
	assert_int_equal(run(cmd), 2);
	card_identity_wipe(&ci);
	keystore_free(ks);
	rm_tmpdir();
}

/* ---- fast seal (AES-NI + OpenSSL GCM mode) against the EVP reference ---- */

/* AES-128-GCM through OpenSSL EVP, the reference: enc 1 writes out and tag;
 * enc 0 checks tag and writes the plaintext (returns false on a bad tag). */
static bool evp_gcm(int enc, const uint8_t key[16], const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int ol = 0, ok;

	assert_non_null(c);
	ok = EVP_CipherInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce, enc) == 1 &&
	     EVP_CipherUpdate(c, NULL, &ol, aad, (int)aad_len) == 1 &&
	     EVP_CipherUpdate(c, out, &ol, in, (int)len) == 1 && (size_t)ol == len;
	if (ok && enc)
		ok = EVP_CipherFinal_ex(c, out + len, &ol) == 1 &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
	else if (ok)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
		     EVP_CipherFinal_ex(c, out + len, &ol) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

/* Decrypt a unique EMM with EVP under k (tag must verify); the plaintext
 * re-encrypted with EVP under the EMM's own nonce and AAD must give back
 * exactly the EMM's ciphertext and tag. Returns the plaintext length. */
static size_t evp_check_unique(const uint8_t *e, size_t len, const uint8_t k[16], uint8_t *pt)
{
	uint8_t ct[EMM_MAX_PLAINTEXT + 16], tag[16];
	size_t ptl;

	assert_true(len > EMM_UNIQUE_OVERHEAD);
	ptl = len - EMM_UNIQUE_OVERHEAD;
	assert_int_equal(tu_be16(e + 38), ptl);
	memcpy(tag, e + 40 + ptl, 16);
	assert_true(evp_gcm(0, k, e + 26, e + 3, EMM_AAD_BYTES, e + 40, ptl, pt, tag));
	assert_true(evp_gcm(1, k, e + 26, e + 3, EMM_AAD_BYTES, pt, ptl, ct, tag));
	assert_memory_equal(ct, e + 40, ptl);
	assert_memory_equal(tag, e + 40 + ptl, 16);
	return ptl;
}

static void test_fast_seal_identical(void **state)
{
	struct keystore *ks = test_ks();
	struct emm_issuer *is = NULL;
	struct card_kdf *kdf = NULL;
	struct emm_content *c = calloc(1, sizeof(*c));
	uint8_t e1[EMM_MAX_SECTION], e2[EMM_MAX_SECTION], pt1[EMM_MAX_PLAINTEXT + 16], pt2[EMM_MAX_PLAINTEXT + 16];
	uint8_t k[CARD_KEY_BYTES];
	uint32_t residues = 0, rng = 12345;
	size_t l1 = 0, l2 = 0, max_pt = 0;
	const unsigned n = 1500;

	(void)state;
	assert_non_null(c);
	assert_int_equal(emm_issuer_new(ks, &is), 0);
	assert_int_equal(card_kdf_new(ks, &kdf), 0);
	/* the switch itself */
	assert_true(emm_issuer_set_reference(is, true));
	assert_true(emm_issuer_is_reference(is));
	if (!emm_issuer_set_reference(is, false)) {
		/* no AES-NI here: the issuer has only the reference path */
		assert_true(emm_issuer_is_reference(is));
		fprintf(stderr, "fast EMM seal not available on this CPU: nothing to compare\n");
		goto done;
	}
	assert_false(emm_issuer_is_reference(is));
	for (unsigned i = 0; i < 2 * n; i++) {
		uint64_t serial = SERIAL + (uint64_t)i * 7919u;
		uint32_t seq = i + 1;
		size_t ptl;

		rng = rng * 1103515245u + 12345u;
		if (i < n) {
			/* entitlements as the carousel sends them: any mask, 0..64 ext ids,
			 * periods that cover 0, 1 or 2 key epochs */
			struct emm_grant g;

			memset(&g, 0, sizeof(g));
			g.packages = rng ^ (rng << 7) ^ (i % 3 == 0 ? 0 : 0xFFFFFFFFu);
			g.start_s = T0 - 86400 + (uint64_t)(rng % 7) * EPOCH_S;
			g.finish_s = g.start_s + (uint64_t)(i % 5) * EPOCH_S;
			g.next = i % (EMM_MAX_EXT_PACKAGES + 1);
			for (size_t x = 0; x < g.next; x++)
				g.ext[x] = (uint16_t)(32 + x);
			assert_true(emm_issuer_set_reference(is, false));
			assert_int_equal(emm_build_unique(is, serial, seq, &g, T0 * 1000, e1, sizeof(e1), &l1), 0);
			assert_true(emm_issuer_set_reference(is, true));
			assert_int_equal(emm_build_unique(is, serial, seq, &g, T0 * 1000, e2, sizeof(e2), &l2), 0);
		} else {
			/* any content: every plaintext length from 2 to ~1.6 KB, commands */
			memset(c, 0, sizeof(*c));
			c->has_grant = (i % 4) != 0;
			c->grant.packages = 0xFFFFFFFFu;
			c->grant.start_s = T0;
			c->grant.finish_s = T0 + 1;
			c->grant.next = c->has_grant ? i % 17 : 0;
			c->nkeys = c->has_grant ? (i / 17) % (EMM_MAX_KEYS + 1) : 0;
			for (size_t x = 0; x < c->nkeys; x++) {
				c->keys[x].epoch = 1000 + (uint32_t)(x / 32);
				c->keys[x].pkg = (uint8_t)(x % 32);
				memset(c->keys[x].key, (int)(x + i), PKG_KEY_BYTES);
			}
			c->cmds = (i % 4 == 0 ? EMM_CMD_BLOCK : 0) | (i % 3 == 0 ? EMM_CMD_RESET_COUNTER : 0);
			if (i % 5 == 0) {
				c->cmds |= EMM_CMD_PAIR;
				c->pair_stb_id = 77;
				c->has_pair_key = i % 2;
				memset(c->pair_key, 0x5A, EMM_PAIR_KEY_BYTES);
			}
			if (!c->has_grant && c->cmds == 0)
				c->cmds = EMM_CMD_UNBLOCK;
			assert_true(emm_issuer_set_reference(is, false));
			assert_int_equal(emm_build(is, serial, seq, T0 * 1000, c, e1, sizeof(e1), &l1), 0);
			assert_true(emm_issuer_set_reference(is, true));
			assert_int_equal(emm_build(is, serial, seq, T0 * 1000, c, e2, sizeof(e2), &l2), 0);
		}
		/* same section but for the nonce (each EMM gets a fresh one) */
		assert_int_equal(l1, l2);
		assert_memory_equal(e1, e2, 26);
		assert_memory_not_equal(e1 + 26, e2 + 26, EMM_NONCE_BYTES);
		assert_memory_equal(e1 + 38, e2 + 38, 2);
		/* the fast EMM is byte for byte EVP's for its nonce, and both carry the same plaintext */
		assert_int_equal(card_key_derive(kdf, serial, k), 0);
		ptl = evp_check_unique(e1, l1, k, pt1);
		assert_int_equal(evp_check_unique(e2, l2, k, pt2), ptl);
		assert_memory_equal(pt1, pt2, ptl);
		residues |= 1u << (ptl % 16);
		max_pt = ptl > max_pt ? ptl : max_pt;
	}
	/* every partial-block length, and more than 4 CTR blocks at a time */
	assert_int_equal(residues, 0xFFFFu);
	assert_true(max_pt > 1024);
done:
	OPENSSL_cleanse(k, sizeof(k));
	emm_content_wipe(c);
	free(c);
	card_kdf_free(kdf);
	emm_issuer_free(is);
	keystore_free(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_card_key_known_answer),
		cmocka_unit_test(test_card_file),
		cmocka_unit_test(test_emm_roundtrip),
		cmocka_unit_test(test_box_gains_package),
		cmocka_unit_test(test_emm_refusals),
		cmocka_unit_test(test_expired_no_key),
		cmocka_unit_test(test_patched_client),
		cmocka_unit_test(test_extended_packages),
		cmocka_unit_test(test_state_file),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_group),
		cmocka_unit_test(test_bad_emms),
		cmocka_unit_test(test_fuzz_corpus),
		cmocka_unit_test(test_cli),
		cmocka_unit_test(test_fast_seal_identical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
