/*
 * test_ecm_cache.c - the ECM package-key cache (ecm.h: ecm_keycache,
 * ecm_build_cached): its ECMs open with ecm_open, whose key unwrap is
 * OpenSSL's own RFC 3394 code (an independent check of the cache's wrap),
 * the layout is ecm_build's, keys follow the epoch, and bad parameters get
 * the same errors as ecm_build.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lib/bytes.h"
#include "cas/ecm.h"
#include "cas/keys.h"
#include "lib/cursor.h"

#define CASID 0x4ADC

static const uint8_t root[KEYSTORE_ROOT_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
static const uint8_t other_root[KEYSTORE_ROOT_BYTES] = { 9, 9, 9 };

static struct ecm_params params(enum cw_alg alg, uint32_t mask, uint32_t epoch, uint16_t cp)
{
	struct ecm_params p;

	memset(&p, 0, sizeof(p));
	p.alg = alg;
	p.ecm_id = 7;
	p.ca_system_id = CASID;
	p.cp_number = cp;
	p.timestamp_ms = 1700000000000ull;
	p.epoch = epoch;
	p.ac_len = 4;
	put_be32(p.ac, mask);
	p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	for (int i = 0; i < CW_MAX_BYTES; i++) {
		p.cw_even[i] = (uint8_t)(0x10 + i);
		p.cw_odd[i] = (uint8_t)(0x80 + i);
	}
	return p;
}

/* Open sec with K_pkg(epoch, pkg) of ks: the ecm_open result. */
static int open_with(const struct keystore *ks, const uint8_t *sec, size_t len, uint32_t epoch, unsigned pkg,
	struct ecm_cws *cws)
{
	struct ecm_view v;
	struct pkg_key k;
	int r;

	assert_int_equal(ecm_parse(sec, len, &v), 0);
	assert_int_equal(keystore_package_key(ks, epoch, pkg, &k), 0);
	r = ecm_open(&v, &k, cws);
	pkg_key_wipe(&k);
	return r;
}

static void test_cached_opens(void **state)
{
	struct keystore *ks = NULL;
	struct ecm_keycache *kc = NULL;

	(void)state;
	assert_int_equal(keystore_from_root(CASID, 0, root, &ks), 0);
	assert_int_equal(ecm_keycache_new(ks, &kc), 0);
	for (int a = 0; a < 2; a++) {
		enum cw_alg alg = a ? CW_ALG_CISSA : CW_ALG_CSA2;
		size_t cwl = a ? 16 : 8;
		struct ecm_params p = params(alg, 0x80000005u, 3, (uint16_t)(10 + a));
		uint8_t sec[ECM_MAX_SECTION], ref[ECM_MAX_SECTION];
		size_t len = 0, rlen = 0;
		struct ecm_view v, rv;
		struct ecm_cws cws;

		assert_int_equal(ecm_build_cached(kc, &p, sec, sizeof(sec), &len), 0);
		assert_int_equal(ecm_build(ks, &p, ref, sizeof(ref), &rlen), 0);
		/* same layout and clear fields as ecm_build */
		assert_int_equal(len, rlen);
		assert_int_equal(ecm_parse(sec, len, &v), 0);
		assert_int_equal(ecm_parse(ref, rlen, &rv), 0);
		assert_int_equal(v.aad_len, rv.aad_len);
		assert_memory_equal(sec, ref, (size_t)(v.nonce - sec)); /* header up to the nonce */
		assert_int_equal(v.auth_len, rv.auth_len);
		assert_ptr_equal(v.wraps, sec + v.auth_len); /* the wraps close the section */
		assert_int_equal(v.nwraps, 3);
		for (unsigned i = 0; i < v.nwraps; i++)
			assert_int_equal(v.wraps[i * (1 + ECM_WRAP_BYTES)], rv.wraps[i * (1 + ECM_WRAP_BYTES)]);
		/* every package of the mask opens it (OpenSSL's unwrap checks our wrap) */
		for (unsigned pkg = 0; pkg < 32; pkg++) {
			int r = open_with(ks, sec, len, 3, pkg, &cws);

			if (!(0x80000005u & (1u << pkg))) {
				assert_int_equal(r, CE_NOT_ENTITLED);
				continue;
			}
			assert_int_equal(r, 0);
			assert_int_equal(cws.cw_len, cwl);
			assert_memory_equal(cws.even, p.cw_even, cwl);
			assert_memory_equal(cws.odd, p.cw_odd, cwl);
			ecm_cws_wipe(&cws);
		}
	}
	/* 3 packages, derived once, whatever the algorithm */
	assert_int_equal(ecm_keycache_derivations(kc), 3);
	ecm_keycache_free(kc);
	keystore_free(ks);
}

static void test_fresh_per_ecm(void **state)
{
	struct keystore *ks = NULL;
	struct ecm_keycache *kc = NULL;
	struct ecm_params p;
	uint8_t a[ECM_MAX_SECTION], b[ECM_MAX_SECTION];
	size_t la = 0, lb = 0;
	struct ecm_view va, vb;

	(void)state;
	assert_int_equal(keystore_from_root(CASID, 0, root, &ks), 0);
	assert_int_equal(ecm_keycache_new(ks, &kc), 0);
	p = params(CW_ALG_CSA2, 1, 1, 4);
	assert_int_equal(ecm_build_cached(kc, &p, a, sizeof(a), &la), 0);
	assert_int_equal(ecm_build_cached(kc, &p, b, sizeof(b), &lb), 0);
	assert_int_equal(ecm_parse(a, la, &va), 0);
	assert_int_equal(ecm_parse(b, lb, &vb), 0);
	/* a new K_ecm (so a new wrap) and a new nonce every time */
	assert_memory_not_equal(va.wraps + 1, vb.wraps + 1, ECM_WRAP_BYTES);
	assert_memory_not_equal(va.nonce, vb.nonce, ECM_NONCE_BYTES);
	ecm_keycache_free(kc);
	keystore_free(ks);
}

static void test_epoch_change(void **state)
{
	struct keystore *ks = NULL, *other = NULL;
	struct ecm_keycache *kc = NULL;
	struct ecm_params p;
	uint8_t sec[ECM_MAX_SECTION];
	size_t len = 0;
	struct ecm_cws cws;

	(void)state;
	assert_int_equal(keystore_from_root(CASID, 0, root, &ks), 0);
	assert_int_equal(keystore_from_root(CASID, 0, other_root, &other), 0);
	assert_int_equal(ecm_keycache_new(ks, &kc), 0);
	p = params(CW_ALG_CSA2, 0x3, 100, 0);
	assert_int_equal(ecm_build_cached(kc, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(ecm_build_cached(kc, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(ecm_keycache_derivations(kc), 2);
	assert_int_equal(open_with(ks, sec, len, 100, 1, &cws), 0);
	/* the next epoch: keys derived again, old epoch's key refused */
	p.epoch = 101;
	assert_int_equal(ecm_build_cached(kc, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(ecm_keycache_derivations(kc), 4);
	assert_int_equal(open_with(ks, sec, len, 100, 1, &cws), CE_NO_KEY);
	assert_int_equal(open_with(ks, sec, len, 101, 1, &cws), 0);
	ecm_cws_wipe(&cws);
	/* the right package of another keystore: integrity failure */
	assert_int_equal(open_with(other, sec, len, 101, 1, &cws), CE_MAC);
	/* back to the old epoch (clock step): derives again, still right */
	p.epoch = 100;
	assert_int_equal(ecm_build_cached(kc, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(ecm_keycache_derivations(kc), 6);
	assert_int_equal(open_with(ks, sec, len, 100, 0, &cws), 0);
	ecm_cws_wipe(&cws);
	/* flush forgets */
	ecm_keycache_flush(kc);
	assert_int_equal(ecm_build_cached(kc, &p, sec, sizeof(sec), &len), 0);
	assert_int_equal(ecm_keycache_derivations(kc), 8);
	ecm_keycache_free(kc);
	keystore_free(ks);
	keystore_free(other);
}

/* Bad parameters: the cached path answers as ecm_build does. */
static void test_bad_params(void **state)
{
	struct keystore *ks = NULL;
	struct ecm_keycache *kc = NULL;
	uint8_t sec[ECM_MAX_SECTION];
	size_t len = 99;
	static const struct {
		const char *what;
		int field; /* which change */
		int want;
	} bad[] = {
		{ "ac_len 3", 0, CE_ARG },
		{ "ac_len 33", 1, CE_ARG },
		{ "empty package mask", 2, CE_ARG },
		{ "no CW", 3, CE_ARG },
		{ "unknown cw_mask bit", 4, CE_ARG },
		{ "other CA_system_id", 5, CE_ARG },
		{ "unknown algorithm", 6, CE_ARG },
		{ "buffer too small", 7, CE_OVERFLOW },
		{ "every package (largest section, fits)", 8, 0 },
	};

	(void)state;
	assert_int_equal(keystore_from_root(CASID, 0, root, &ks), 0);
	assert_int_equal(ecm_keycache_new(ks, &kc), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ecm_params p = params(CW_ALG_CISSA, 1, 1, 0);
		size_t cap = sizeof(sec);
		int r1, r2;

		switch (bad[i].field) {
		case 0: p.ac_len = 3; break;
		case 1: p.ac_len = 33; break;
		case 2: put_be32(p.ac, 0); break;
		case 3: p.cw_mask = 0; break;
		case 4: p.cw_mask = 4; break;
		case 5: p.ca_system_id = CASID + 1; break;
		case 6: p.alg = (enum cw_alg)9; break;
		case 7: cap = 60; break;
		case 8: put_be32(p.ac, 0xFFFFFFFFu); break; /* 32 wraps: 865 bytes, still fits */
		}
		r1 = ecm_build(ks, &p, sec, cap, &len);
		r2 = ecm_build_cached(kc, &p, sec, cap, &len);
		print_message("%s: %d %d\n", bad[i].what, r1, r2);
		assert_int_equal(r1, bad[i].want);
		assert_int_equal(r2, bad[i].want);
		if (r2 != 0)
			assert_int_equal(len, 0);
	}
	assert_int_equal(ecm_build_cached(NULL, NULL, sec, sizeof(sec), &len), CE_ARG);
	ecm_keycache_free(kc);
	assert_int_equal(ecm_keycache_new(NULL, &kc), CE_ARG);
	assert_null(kc);
	ecm_keycache_free(NULL);
	keystore_free(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cached_opens),
		cmocka_unit_test(test_fresh_per_ecm),
		cmocka_unit_test(test_epoch_change),
		cmocka_unit_test(test_bad_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
