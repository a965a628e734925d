/*
 * ecm.c - Castellan ECM format v2: build, strict parse, open (ecm.h).
 * docs/ecm-format.md has the byte table and the reasoning.
 *
 *   section header (3): table_id 0x80|0x81, '0' ssi, '1' private, '11',
 *                       12-bit section_length
 *   version u8 (2) | alg u8 | ECM_id u16 | CA_system_id u16 | CP_number u16
 *   | timestamp_ms u64 | epoch u32 | ac_len u8 | ac[ac_len] | cw_mask u8
 *   | nwraps u8 | nonce[12] | AES-128-GCM(K_ecm, CWs present, even first)
 *   | tag[16] | nwraps x (pkg u8 | RFC3394-wrap(K_pkg, IV_pkg, K_ecm)[24])
 *   GCM AAD = every section byte before the ciphertext.
 *   D = every section byte before the wraps (header .. GCM tag).
 *   IV_pkg = CMAC-AES-128(K_mac(pkg), D)[0..8], K_mac = AES-128(K_pkg, label):
 *   the RFC 3394 integrity value of each wrap is a MAC of the whole ECM
 *   under that package's key, so a holder of another package's key (who
 *   learns K_ecm) cannot re-seal an ECM this package's key opens.
 *
 * Normative references: ISO/IEC 13818-1 2.4.4.10 (private_section),
 * ETSI TR 101 290 / EN 300 468 (table_id 0x80/0x81 for ECMs),
 * RFC 3394 (AES key wrap), NIST SP 800-38D (GCM).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include "cas/ecm.h"
#include "crypto/aead.h"
#include "lib/cursor.h"

#define ECM_KEY_BYTES 16
#define ECM_HDR_FLAGS 0x70 /* ssi 0, private_indicator 1, reserved 11 */
#define ECM_MAX_WRAPS CAS_MAX_PACKAGES
#define ECM_IV_BYTES 8

/* K_mac(pkg) = AES-128-ECB(K_pkg, this block): the key of the wraps' IVs. */
static const uint8_t mac_label[16] = { 'c', 'a', 's', 't', 'e', 'l', 'l', 'a', 'n', ' ', 'e', 'c', 'm', ' ', 'v', '2' };

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

/* AES-128 key wrap (RFC 3394) of a 16-byte key with the integrity value iv;
 * enc 0 = unwrap (CE_MAC on an integrity failure: a wrong key, or an ECM
 * whose MAC is not iv). crypto/aead.h does the work. */
static int keywrap(int enc, const uint8_t kek[16], const uint8_t iv[ECM_IV_BYTES], const uint8_t *in, size_t in_len,
	uint8_t *out, size_t out_len)
{
	if (enc ? in_len != 16 || out_len != ECM_WRAP_BYTES : in_len != ECM_WRAP_BYTES || out_len != 16)
		return CE_ARG;
	return enc ? crypto_wrap128_iv(kek, iv, in, out) : crypto_unwrap128_iv(kek, iv, in, out);
}

/* AES-128-GCM one-shot (crypto/aead.h). enc 0: CE_MAC if the tag does not verify. */
static int gcm128(int enc, const uint8_t key[16], const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	return crypto_gcm(enc, key, 16, nonce, aad, aad_len, in, len, out, tag);
}

/* K_mac = AES-128-ECB(K_pkg, mac_label). */
static int mac_key(const uint8_t kpkg[16], uint8_t kmac[16])
{
	return crypto_aes_block(1, kpkg, 16, mac_label, kmac);
}

/* A CMAC-AES-128 context keyed with K_mac(K_pkg); NULL on failure. */
static EVP_MAC_CTX *cmac_new(const uint8_t kpkg[16])
{
	char cipher[] = "AES-128-CBC";
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0), OSSL_PARAM_END };
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
	EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
	uint8_t kmac[16];

	EVP_MAC_free(mac); /* the context holds its own reference */
	if (!m)
		return NULL;
	if (mac_key(kpkg, kmac) != 0 || EVP_MAC_init(m, kmac, sizeof(kmac), params) != 1) {
		EVP_MAC_CTX_free(m);
		m = NULL;
	}
	OPENSSL_cleanse(kmac, sizeof(kmac));
	return m;
}

/* IV = CMAC(K_mac, d)[0..8] with a keyed context (re-initialised, same key). */
static int cmac_iv(EVP_MAC_CTX *m, const uint8_t *d, size_t n, uint8_t iv[ECM_IV_BYTES])
{
	uint8_t t[16];
	size_t tl = 0;
	int r = CE_CRYPTO;

	if (EVP_MAC_init(m, NULL, 0, NULL) == 1 && EVP_MAC_update(m, d, n) == 1 &&
	    EVP_MAC_final(m, t, &tl, sizeof(t)) == 1 && tl == sizeof(t)) {
		memcpy(iv, t, ECM_IV_BYTES);
		r = 0;
	}
	OPENSSL_cleanse(t, sizeof(t));
	return r;
}

/* IV_pkg of the data d under K_pkg, without a cached context. */
static int wrap_iv(const uint8_t kpkg[16], const uint8_t *d, size_t n, uint8_t iv[ECM_IV_BYTES])
{
	EVP_MAC_CTX *m = cmac_new(kpkg);
	int r;

	if (!m)
		return CE_CRYPTO;
	r = cmac_iv(m, d, n, iv);
	EVP_MAC_CTX_free(m);
	return r;
}

/* The K_pkg of one epoch, as keyed AES-128-ECB contexts for the key wrap,
 * plus one reusable GCM context (ecm.h). */
struct ecm_keycache {
	const struct keystore *ks;
	uint32_t epoch;
	bool have_epoch;
	EVP_CIPHER_CTX *kek[CAS_MAX_PACKAGES]; /* NULL until the package is first used */
	EVP_MAC_CTX *mac[CAS_MAX_PACKAGES];    /* CMAC under K_mac(pkg), set with kek[] */
	EVP_CIPHER_CTX *gcm;
	uint64_t derivations;
};

/* How build() gets RFC3394-wrap(K_pkg(epoch, pkg), IV_pkg(d), kecm), d the
 * ECM bytes before the wraps. */
typedef int (*wrap_fn)(void *ctx, uint32_t epoch, unsigned pkg, const uint8_t kecm[ECM_KEY_BYTES],
	const uint8_t *d, size_t d_len, uint8_t out[ECM_WRAP_BYTES]);

static int wrap_derive(void *ctx, uint32_t epoch, unsigned pkg, const uint8_t kecm[ECM_KEY_BYTES],
	const uint8_t *d, size_t d_len, uint8_t out[ECM_WRAP_BYTES])
{
	const struct keystore *ks = ctx;
	struct pkg_key k;
	uint8_t iv[ECM_IV_BYTES];
	int r;

	if ((r = keystore_package_key(ks, epoch, pkg, &k)) != 0)
		return r;
	if ((r = wrap_iv(k.key, d, d_len, iv)) == 0)
		r = keywrap(1, k.key, iv, kecm, ECM_KEY_BYTES, out, ECM_WRAP_BYTES);
	pkg_key_wipe(&k);
	return r;
}

/* RFC 3394 wrap with the integrity value iv under a KEK kept keyed
 * (crypto_wrap128_kek_iv): no key setup per ECM. ecm_open unwraps it with
 * OpenSSL's own key-unwrap; tests check that. */
static int wrap_ecb(EVP_CIPHER_CTX *ecb, const uint8_t iv[ECM_IV_BYTES], const uint8_t kecm[ECM_KEY_BYTES],
	uint8_t out[ECM_WRAP_BYTES])
{
	return crypto_wrap128_kek_iv(ecb, iv, kecm, out);
}

static void keycache_drop(struct ecm_keycache *kc)
{
	for (unsigned i = 0; i < CAS_MAX_PACKAGES; i++) {
		EVP_CIPHER_CTX_free(kc->kek[i]); /* wipes the key schedule */
		kc->kek[i] = NULL;
		EVP_MAC_CTX_free(kc->mac[i]);
		kc->mac[i] = NULL;
	}
	kc->have_epoch = false;
}

static int wrap_cached(void *ctx, uint32_t epoch, unsigned pkg, const uint8_t kecm[ECM_KEY_BYTES],
	const uint8_t *d, size_t d_len, uint8_t out[ECM_WRAP_BYTES])
{
	struct ecm_keycache *kc = ctx;
	struct pkg_key k;
	uint8_t iv[ECM_IV_BYTES];
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
		if (r == 0 && !(kc->mac[pkg] = cmac_new(k.key))) {
			EVP_CIPHER_CTX_free(kc->kek[pkg]);
			kc->kek[pkg] = NULL;
			r = CE_CRYPTO;
		}
		pkg_key_wipe(&k);
		if (r != 0)
			return r;
		kc->derivations++;
	}
	if ((r = cmac_iv(kc->mac[pkg], d, d_len, iv)) != 0)
		return r;
	r = wrap_ecb(kc->kek[pkg], iv, kecm, out);
	OPENSSL_cleanse(iv, sizeof(iv));
	return r;
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
 * each package's wrap of K_ecm (its IV a MAC of the bytes before the
 * wraps); gcm is a prepared context or NULL. */
static int build(uint16_t ca_system_id, wrap_fn wrap, void *wctx, EVP_CIPHER_CTX *gcm, const struct ecm_params *p,
	uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t rnd[ECM_KEY_BYTES + ECM_NONCE_BYTES], pt[2 * CW_MAX_BYTES], wrapped[ECM_WRAP_BYTES];
	uint8_t ct[2 * CW_MAX_BYTES], tag[ECM_TAG_BYTES];
	const uint8_t *kecm = rnd, *nonce = rnd + ECM_KEY_BYTES;
	struct wbuf w;
	size_t cw_len, pt_len = 0, total = 0, aad_len, auth_len;
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
	if (cur_u32_at(p->ac, p->ac_len, 0, &mask) != 0)
		return CE_ARG;
	nwraps = popcount32(mask);
	if (nwraps == 0)
		return CE_ARG;
	pt_len = popcount8(p->cw_mask) * cw_len;
	aad_len = 3 + 20 + 1 + p->ac_len + 1 + 1 + ECM_NONCE_BYTES;
	auth_len = aad_len + pt_len + ECM_TAG_BYTES;
	total = auth_len + nwraps * (1 + ECM_WRAP_BYTES);
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
	wbuf_u8(&w, ECM_FORMAT_VERSION);
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
	if (w.len != auth_len) {
		r = CE_INTERNAL;
		goto out;
	}
	/* every byte so far is D: each wrap's IV is a MAC of it */
	for (unsigned pkg = 0; pkg < CAS_MAX_PACKAGES; pkg++) {
		if (!(mask & (1u << pkg)))
			continue;
		if ((r = wrap(wctx, p->epoch, pkg, kecm, out, auth_len, wrapped)) != 0)
			goto out;
		wbuf_u8(&w, (uint8_t)pkg);
		wbuf_bytes(&w, wrapped, sizeof(wrapped));
	}
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
	/* version 1 (wraps not bound to the ECM) is refused: its ECMs can be
	 * re-sealed by any subscriber of another of the channel's packages */
	if (version != ECM_FORMAT_VERSION || !(cw_len = alg_cw_bytes(alg)) ||
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
	if (cur_u32_at(v->ac, v->ac_len, 0, &mask) != 0)
		goto fail;
	v->package_mask = mask;
	if (v->cw_mask == 0 || (v->cw_mask & ~(ECM_HAS_EVEN | ECM_HAS_ODD)) || v->nwraps == 0 ||
	    v->nwraps > ECM_MAX_WRAPS || v->nwraps != popcount32(mask)) {
		cur_fail(&body, CE_FORMAT);
		goto fail;
	}
	v->nonce = cur_ptr(&body, ECM_NONCE_BYTES);
	v->ct_len = popcount8(v->cw_mask) * cw_len;
	v->aad = sec;
	v->aad_len = 3 + body.off;
	v->ct = cur_ptr(&body, v->ct_len);
	v->tag = cur_ptr(&body, ECM_TAG_BYTES);
	v->auth_len = 3 + body.off;
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
	uint8_t kecm[ECM_KEY_BYTES], pt[2 * CW_MAX_BYTES], iv[ECM_IV_BYTES];
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
	if (!v->aad || v->auth_len < v->aad_len)
		return CE_ARG;
	/* the wrap's integrity value must be this package's MAC of the ECM */
	if ((r = wrap_iv(key->key, v->aad, v->auth_len, iv)) != 0)
		goto out;
	if ((r = keywrap(0, key->key, iv, wrap, ECM_WRAP_BYTES, kecm, sizeof(kecm))) != 0)
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
	OPENSSL_cleanse(iv, sizeof(iv));
	if (r != 0)
		ecm_cws_wipe(out);
	return r;
}
