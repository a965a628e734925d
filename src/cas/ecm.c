/*
 * ecm.c - Castellan ECM format v1: build, strict parse, open (ecm.h).
 * docs/ecm-format.md has the byte table and the reasoning.
 *
 *   section header (3): table_id 0x80|0x81, '0' ssi, '1' private, '11',
 *                       12-bit section_length
 *   version u8 | alg u8 | ECM_id u16 | CA_system_id u16 | CP_number u16
 *   | timestamp_ms u64 | epoch u32 | ac_len u8 | ac[ac_len] | cw_mask u8
 *   | nwraps u8 | nwraps x (pkg u8 | RFC3394-wrap(K_pkg, K_ecm)[24])
 *   | nonce[12] | AES-128-GCM(K_ecm, CWs present, even first) | tag[16]
 *   AAD = every section byte before the ciphertext.
 *
 * Normative references: ISO/IEC 13818-1 2.4.4.10 (private_section),
 * ETSI TR 101 290 / EN 300 468 (table_id 0x80/0x81 for ECMs),
 * RFC 3394 (AES key wrap), NIST SP 800-38D (GCM).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "cas/ecm.h"
#include "crypto/aead.h"
#include "lib/cursor.h"

#define ECM_KEY_BYTES 16
#define ECM_HDR_FLAGS 0x70 /* ssi 0, private_indicator 1, reserved 11 */
#define ECM_MAX_WRAPS CAS_MAX_PACKAGES

static size_t alg_cw_bytes(unsigned alg)
{
	return alg == CW_ALG_CSA2 ? 8 : alg == CW_ALG_CISSA ? 16 : 0;
}

static unsigned popcount8(uint8_t m) { return (unsigned)__builtin_popcount(m); }
static unsigned popcount32(uint32_t m) { return (unsigned)__builtin_popcount(m); }

void ecm_params_wipe(struct ecm_params *p)
{
	if (p)
		OPENSSL_cleanse(p, sizeof(*p));
}

void ecm_cws_wipe(struct ecm_cws *c)
{
	if (c)
		OPENSSL_cleanse(c, sizeof(*c));
}

/* AES-128 key wrap (RFC 3394) of a 16-byte key; enc 0 = unwrap (CE_MAC on
 * an integrity failure). crypto/aead.h does the work. */
static int keywrap(int enc, const uint8_t kek[16], const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
	if (enc ? in_len != 16 || out_len != ECM_WRAP_BYTES : in_len != ECM_WRAP_BYTES || out_len != 16)
		return CE_ARG;
	return enc ? crypto_wrap128(kek, in, out) : crypto_unwrap128(kek, in, out);
}

/* AES-128-GCM one-shot (crypto/aead.h). enc 0: CE_MAC if the tag does not verify. */
static int gcm128(int enc, const uint8_t key[16], const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	return crypto_gcm(enc, key, 16, nonce, aad, aad_len, in, len, out, tag);
}

/* The K_pkg of one epoch, as keyed AES-128-ECB contexts for the key wrap,
 * plus one reusable GCM context (ecm.h). */
struct ecm_keycache {
	const struct keystore *ks;
	uint32_t epoch;
	bool have_epoch;
	EVP_CIPHER_CTX *kek[CAS_MAX_PACKAGES]; /* NULL until the package is first used */
	EVP_CIPHER_CTX *gcm;
	uint64_t derivations;
};

/* How ecm_build_common gets RFC3394-wrap(K_pkg(epoch, pkg), kecm). */
typedef int (*wrap_fn)(void *ctx, uint32_t epoch, unsigned pkg, const uint8_t kecm[ECM_KEY_BYTES],
	uint8_t out[ECM_WRAP_BYTES]);

static int wrap_derive(void *ctx, uint32_t epoch, unsigned pkg, const uint8_t kecm[ECM_KEY_BYTES],
	uint8_t out[ECM_WRAP_BYTES])
{
	const struct keystore *ks = ctx;
	struct pkg_key k;
	int r;

	if ((r = keystore_package_key(ks, epoch, pkg, &k)) != 0)
		return r;
	r = keywrap(1, k.key, kecm, ECM_KEY_BYTES, out, ECM_WRAP_BYTES);
	pkg_key_wipe(&k);
	return r;
}

/* RFC 3394 wrap under a KEK kept keyed (crypto_wrap128_kek): no key setup
 * per ECM. ecm_open unwraps it with OpenSSL's own key-unwrap; tests check
 * that. */
static int wrap_ecb(EVP_CIPHER_CTX *ecb, const uint8_t kecm[ECM_KEY_BYTES], uint8_t out[ECM_WRAP_BYTES])
{
	return crypto_wrap128_kek(ecb, kecm, out);
}

static void keycache_drop(struct ecm_keycache *kc)
{
	for (unsigned i = 0; i < CAS_MAX_PACKAGES; i++) {
		EVP_CIPHER_CTX_free(kc->kek[i]); /* wipes the key schedule */
		kc->kek[i] = NULL;
	}
	kc->have_epoch = false;
}

static int wrap_cached(void *ctx, uint32_t epoch, unsigned pkg, const uint8_t kecm[ECM_KEY_BYTES],
	uint8_t out[ECM_WRAP_BYTES])
{
	struct ecm_keycache *kc = ctx;
	struct pkg_key k;
	int r;

	if (pkg >= CAS_MAX_PACKAGES)
		return CE_RANGE;
	if (!kc->have_epoch || kc->epoch != epoch) {
		keycache_drop(kc);
		kc->epoch = epoch;
		kc->have_epoch = true;
	}
	if (!kc->kek[pkg]) {
		if ((r = keystore_package_key(kc->ks, epoch, pkg, &k)) != 0)
			return r;
		r = crypto_kek_new(k.key, &kc->kek[pkg]);
		pkg_key_wipe(&k);
		if (r != 0)
			return r;
		kc->derivations++;
	}
	return wrap_ecb(kc->kek[pkg], kecm, out);
}

int ecm_keycache_new(const struct keystore *ks, struct ecm_keycache **out)
{
	struct ecm_keycache *kc;
	int r;

	if (!out)
		return CE_ARG;
	*out = NULL;
	if (!ks)
		return CE_ARG;
	kc = calloc(1, sizeof(*kc));
	if (!kc)
		return CE_NOMEM;
	kc->ks = ks;
	if ((r = crypto_gcm_ctx_new(1, 16, &kc->gcm)) != 0) {
		ecm_keycache_free(kc);
		return r;
	}
	*out = kc;
	return 0;
}

void ecm_keycache_free(struct ecm_keycache *kc)
{
	if (!kc)
		return;
	keycache_drop(kc);
	EVP_CIPHER_CTX_free(kc->gcm);
	OPENSSL_cleanse(kc, sizeof(*kc));
	free(kc);
}

void ecm_keycache_flush(struct ecm_keycache *kc)
{
	if (kc)
		keycache_drop(kc);
}

uint64_t ecm_keycache_derivations(const struct ecm_keycache *kc)
{
	return kc ? kc->derivations : 0;
}

/* AES-128-GCM encryption in a context set up once for GCM with a 12-byte
 * IV (only key and IV change per ECM). */
static int gcm128_reuse(EVP_CIPHER_CTX *c, const uint8_t key[16], const uint8_t *nonce, const uint8_t *aad,
	size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	return crypto_gcm_run(c, 1, key, nonce, aad, aad_len, in, len, out, tag);
}

/* The one ECM writer behind ecm_build and ecm_build_cached: wrap() gives
 * each package's wrap of K_ecm; gcm is a prepared context or NULL. */
static int build(uint16_t ca_system_id, wrap_fn wrap, void *wctx, EVP_CIPHER_CTX *gcm, const struct ecm_params *p,
	uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t rnd[ECM_KEY_BYTES + ECM_NONCE_BYTES], pt[2 * CW_MAX_BYTES], wrapped[ECM_WRAP_BYTES];
	uint8_t ct[2 * CW_MAX_BYTES], tag[ECM_TAG_BYTES];
	const uint8_t *kecm = rnd, *nonce = rnd + ECM_KEY_BYTES;
	struct wbuf w;
	size_t cw_len, pt_len = 0, total = 0, aad_len;
	uint32_t mask;
	unsigned nwraps;
	int r;

	*out_len = 0;
	memset(rnd, 0, sizeof(rnd));
	memset(pt, 0, sizeof(pt));
	cw_len = alg_cw_bytes(p->alg);
	if (!cw_len || p->ac_len < 4 || p->ac_len > ECM_MAX_AC_BYTES || p->cw_mask == 0 ||
	    (p->cw_mask & ~(ECM_HAS_EVEN | ECM_HAS_ODD)) || p->ca_system_id != ca_system_id)
		return CE_ARG;
	mask = be32(p->ac);
	nwraps = popcount32(mask);
	if (nwraps == 0)
		return CE_ARG;
	pt_len = popcount8(p->cw_mask) * cw_len;
	aad_len = 3 + 20 + 1 + p->ac_len + 1 + 1 + nwraps * (1 + ECM_WRAP_BYTES) + ECM_NONCE_BYTES;
	total = aad_len + pt_len + ECM_TAG_BYTES;
	if (total > ECM_MAX_SECTION)
		return CE_RANGE;
	if (total > cap)
		return CE_OVERFLOW;
	/* K_ecm and the nonce in one call to the CSPRNG */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	wbuf_init(&w, out, cap);
	wbuf_u8(&w, (p->cp_number & 1) ? ECM_TABLE_ODD : ECM_TABLE_EVEN);
	wbuf_u16(&w, (uint16_t)((ECM_HDR_FLAGS << 8) | (total - 3)));
	wbuf_u8(&w, ECM_FORMAT_V1);
	wbuf_u8(&w, (uint8_t)p->alg);
	wbuf_u16(&w, p->ecm_id);
	wbuf_u16(&w, p->ca_system_id);
	wbuf_u16(&w, p->cp_number);
	wbuf_u64(&w, p->timestamp_ms);
	wbuf_u32(&w, p->epoch);
	wbuf_u8(&w, p->ac_len);
	wbuf_bytes(&w, p->ac, p->ac_len);
	wbuf_u8(&w, p->cw_mask);
	wbuf_u8(&w, (uint8_t)nwraps);
	for (unsigned pkg = 0; pkg < CAS_MAX_PACKAGES; pkg++) {
		if (!(mask & (1u << pkg)))
			continue;
		if ((r = wrap(wctx, p->epoch, pkg, kecm, wrapped)) != 0)
			goto out;
		wbuf_u8(&w, (uint8_t)pkg);
		wbuf_bytes(&w, wrapped, sizeof(wrapped));
	}
	wbuf_bytes(&w, nonce, ECM_NONCE_BYTES);
	if ((r = wbuf_status(&w)) != 0)
		goto out;
	if (w.len != aad_len) {
		r = CE_INTERNAL;
		goto out;
	}
	{
		size_t off = 0;

		if (p->cw_mask & ECM_HAS_EVEN) {
			memcpy(pt + off, p->cw_even, cw_len);
			off += cw_len;
		}
		if (p->cw_mask & ECM_HAS_ODD) {
			memcpy(pt + off, p->cw_odd, cw_len);
			off += cw_len;
		}
	}
	r = gcm ? gcm128_reuse(gcm, kecm, nonce, out, aad_len, pt, pt_len, ct, tag)
		: gcm128(1, kecm, nonce, out, aad_len, pt, pt_len, ct, tag);
	if (r != 0)
		goto out;
	wbuf_bytes(&w, ct, pt_len);
	wbuf_bytes(&w, tag, sizeof(tag));
	if ((r = wbuf_status(&w)) != 0)
		goto out;
	if (w.len != total) {
		r = CE_INTERNAL;
		goto out;
	}
	*out_len = total;
	r = 0;
out:
	OPENSSL_cleanse(rnd, sizeof(rnd));
	OPENSSL_cleanse(pt, sizeof(pt));
	if (r != 0 && cap)
		OPENSSL_cleanse(out, cap < total ? cap : total);
	return r;
}

int ecm_build(const struct keystore *ks, const struct ecm_params *p, uint8_t *out, size_t cap, size_t *out_len)
{
	if (out_len)
		*out_len = 0;
	if (!ks || !p || !out || !out_len)
		return CE_ARG;
	return build(keystore_ca_system_id(ks), wrap_derive, (void *)(uintptr_t)ks, NULL, p, out, cap, out_len);
}

int ecm_build_cached(struct ecm_keycache *kc, const struct ecm_params *p, uint8_t *out, size_t cap,
	size_t *out_len)
{
	if (out_len)
		*out_len = 0;
	if (!kc || !p || !out || !out_len)
		return CE_ARG;
	return build(keystore_ca_system_id(kc->ks), wrap_cached, kc, kc->gcm, p, out, cap, out_len);
}

int ecm_parse(const uint8_t *sec, size_t len, struct ecm_view *v)
{
	struct cur c, body;
	uint8_t table_id = 0, version = 0, alg = 0;
	uint16_t hdr = 0;
	size_t cw_len;
	uint32_t mask;

	memset(v, 0, sizeof(*v));
	if (!sec || len < 3)
		return CE_TRUNCATED;
	if (len > ECM_MAX_SECTION)
		return CE_RANGE;
	cur_init(&c, sec, len);
	cur_u8(&c, &table_id);
	cur_u16(&c, &hdr);
	if (table_id != ECM_TABLE_EVEN && table_id != ECM_TABLE_ODD)
		return CE_FORMAT;
	if ((hdr >> 12) != (ECM_HDR_FLAGS >> 4))
		return CE_FORMAT;
	if (cur_view(&c, hdr & 0x0FFF, &body) != 0)
		return CE_TRUNCATED;
	if (cur_end(&c) != 0)
		return CE_TRAILING;
	v->table_id = table_id;
	cur_u8(&body, &version);
	cur_u8(&body, &alg);
	cur_u16(&body, &v->ecm_id);
	cur_u16(&body, &v->ca_system_id);
	cur_u16(&body, &v->cp_number);
	cur_u64(&body, &v->timestamp_ms);
	cur_u32(&body, &v->epoch);
	cur_u8(&body, &v->ac_len);
	if (body.err)
		goto fail;
	if (version != ECM_FORMAT_V1 || !(cw_len = alg_cw_bytes(alg)) ||
	    (table_id & 1) != (v->cp_number & 1) || v->ac_len < 4 || v->ac_len > ECM_MAX_AC_BYTES) {
		cur_fail(&body, CE_FORMAT);
		goto fail;
	}
	v->alg = (enum cw_alg)alg;
	v->ac = cur_ptr(&body, v->ac_len);
	cur_u8(&body, &v->cw_mask);
	cur_u8(&body, &v->nwraps);
	if (body.err)
		goto fail;
	mask = be32(v->ac);
	v->package_mask = mask;
	if (v->cw_mask == 0 || (v->cw_mask & ~(ECM_HAS_EVEN | ECM_HAS_ODD)) || v->nwraps == 0 ||
	    v->nwraps > ECM_MAX_WRAPS || v->nwraps != popcount32(mask)) {
		cur_fail(&body, CE_FORMAT);
		goto fail;
	}
	v->wraps = cur_ptr(&body, (size_t)v->nwraps * (1 + ECM_WRAP_BYTES));
	if (body.err)
		goto fail;
	/* Exactly one wrap per package of the mask, in ascending order. */
	for (unsigned i = 0, pkg = 0; i < v->nwraps; i++, pkg++) {
		while (pkg < CAS_MAX_PACKAGES && !(mask & (1u << pkg)))
			pkg++;
		if (v->wraps[i * (1 + ECM_WRAP_BYTES)] != pkg) {
			cur_fail(&body, CE_FORMAT);
			goto fail;
		}
	}
	v->nonce = cur_ptr(&body, ECM_NONCE_BYTES);
	v->ct_len = popcount8(v->cw_mask) * cw_len;
	v->aad = sec;
	v->aad_len = 3 + body.off;
	v->ct = cur_ptr(&body, v->ct_len);
	v->tag = cur_ptr(&body, ECM_TAG_BYTES);
	if (cur_end(&body) != 0)
		goto fail;
	return 0;
fail:
	{
		int r = body.err ? body.err : cur_end(&body);

		memset(v, 0, sizeof(*v));
		return r ? r : CE_FORMAT;
	}
}

int ecm_open(const struct ecm_view *v, const struct pkg_key *key, struct ecm_cws *out)
{
	uint8_t kecm[ECM_KEY_BYTES], pt[2 * CW_MAX_BYTES];
	const uint8_t *wrap = NULL;
	size_t cw_len;
	int r;

	memset(out, 0, sizeof(*out));
	if (!v || !key || !v->wraps || !v->ct || !v->tag || !v->nonce)
		return CE_ARG;
	cw_len = alg_cw_bytes(v->alg);
	if (!cw_len || v->ct_len != popcount8(v->cw_mask) * cw_len || v->ct_len > sizeof(pt))
		return CE_FORMAT;
	for (unsigned i = 0; i < v->nwraps; i++) {
		if (v->wraps[i * (1 + ECM_WRAP_BYTES)] == key->pkg) {
			wrap = v->wraps + i * (1 + ECM_WRAP_BYTES) + 1;
			break;
		}
	}
	if (!wrap)
		return CE_NOT_ENTITLED;
	if (key->epoch != v->epoch)
		return CE_NO_KEY;
	if ((r = keywrap(0, key->key, wrap, ECM_WRAP_BYTES, kecm, sizeof(kecm))) != 0)
		goto out;
	r = gcm128(0, kecm, v->nonce, v->aad, v->aad_len, v->ct, v->ct_len, pt, (uint8_t *)(uintptr_t)v->tag);
	if (r != 0)
		goto out;
	out->cw_mask = v->cw_mask;
	out->cw_len = cw_len;
	{
		size_t off = 0;

		if (v->cw_mask & ECM_HAS_EVEN) {
			memcpy(out->even, pt + off, cw_len);
			off += cw_len;
		}
		if (v->cw_mask & ECM_HAS_ODD)
			memcpy(out->odd, pt + off, cw_len);
	}
	r = 0;
out:
	OPENSSL_cleanse(kecm, sizeof(kecm));
	OPENSSL_cleanse(pt, sizeof(pt));
	if (r != 0)
		ecm_cws_wipe(out);
	return r;
}
