/*
 * emm.c - Castellan EMM format v1 (emm.h): strict parse, open, the
 * head-end issuer, group packing, and the box-side card state and its file.
 * docs/emm-format.md has the byte tables.
 *
 *   unique (0x82): hdr(3) | version u8 | CA_system_id u16 | serial u64
 *                  | seq u32 | timestamp_ms u64 | nonce[12] | ct_len u16
 *                  | ct | tag[16]             AAD = bytes 3..39 (37 bytes)
 *   group  (0x83): hdr(3) | version u8 | CA_system_id u16 | timestamp_ms u64
 *                  | ncards u8 | ncards x (serial u64 | seq u32 | nonce[12]
 *                  | ct_len u16 | ct | tag[16])
 *                  AAD of a record = the 37 bytes its unique EMM would have.
 *
 * Normative references: ISO/IEC 13818-1 2.4.4.10, NIST SP 800-38D.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "lib/bytes.h"
#include "cas/emm.h"
#include "crypto/aead.h"
#include "crypto/gcm_rekey.h"
#include "lib/cursor.h"
#include "lib/util.h"

#define EMM_HDR_FLAGS 0x70 /* ssi 0, private_indicator 1, reserved 11 */
#define ST_MAGIC "CSTLST02"    /* v2: extended packages, keys with a u16 package */
#define ST_MAGIC_V1 "CSTLST01" /* still read: keys with a u8 package, no extended ids */
#define ST_HEADER_BYTES (8 + 8 + EMM_NONCE_BYTES + 2)
#define ST_MAX_PLAINTEXT (4 + 1 + 8 + 4 + 2 + 4 + 1 + 2 * EMM_MAX_EXT_PACKAGES + 8 + 8 + 2 + EMM_MAX_KEYS * 22)
#define EMM_KEY_REC (2 + 4 + 1 + PKG_KEY_BYTES)     /* an EMM_T_PKG_KEY record */
#define EMM_KEY_EXT_REC (2 + 4 + 2 + PKG_KEY_BYTES) /* an EMM_T_PKG_KEY_EXT record */
#define EMM_CACHE_EXT 64 /* extended package keys an issuer caches per epoch */

void emm_content_wipe(struct emm_content *c)
{
	if (c)
		OPENSSL_cleanse(c, sizeof(*c));
}

void emm_state_wipe(struct emm_card_state *st)
{
	if (st)
		OPENSSL_cleanse(st, sizeof(*st));
}

/* The 37 AAD bytes of one card's record. */
static void make_aad(uint8_t aad[EMM_AAD_BYTES], uint16_t ca, uint64_t serial, uint32_t seq, uint64_t ts,
	const uint8_t *nonce, size_t ct_len)
{
	struct wbuf w;

	wbuf_init(&w, aad, EMM_AAD_BYTES);
	wbuf_u8(&w, EMM_FORMAT_V1);
	wbuf_u16(&w, ca);
	wbuf_u64(&w, serial);
	wbuf_u32(&w, seq);
	wbuf_u64(&w, ts);
	wbuf_bytes(&w, nonce, EMM_NONCE_BYTES);
	wbuf_u16(&w, (uint16_t)ct_len);
}

/* AES-128-GCM one-shot (crypto/aead.h). enc 0: CE_MAC on a bad tag. */
static int gcm_once(int enc, const uint8_t key[16], const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	return crypto_gcm(enc, key, 16, nonce, aad, aad_len, in, len, out, tag);
}


/* ------------------------------------------------------------------ parse */

/* One record: serial | seq | nonce | ct_len | ct | tag. */
static int parse_record(struct cur *c, struct emm_view *v)
{
	uint16_t ct_len = 0;

	cur_u64(c, &v->serial);
	cur_u32(c, &v->seq);
	v->nonce = cur_ptr(c, EMM_NONCE_BYTES);
	cur_u16(c, &ct_len);
	if (c->err)
		return c->err;
	if (ct_len == 0 || ct_len > EMM_MAX_PLAINTEXT)
		return cur_fail(c, CE_FORMAT);
	v->ct_len = ct_len;
	v->ct = cur_ptr(c, ct_len);
	v->tag = cur_ptr(c, EMM_TAG_BYTES);
	return c->err;
}

int emm_parse(const uint8_t *sec, size_t len, uint64_t serial, struct emm_view *v)
{
	struct cur c, body;
	uint8_t table_id = 0, version = 0, ncards = 0;
	uint16_t hdr = 0;
	struct emm_view rec;
	bool found = false;
	int r;

	memset(v, 0, sizeof(*v));
	if (!sec || len < 3)
		return CE_TRUNCATED;
	if (len > EMM_MAX_SECTION)
		return CE_RANGE;
	cur_init(&c, sec, len);
	cur_u8(&c, &table_id);
	cur_u16(&c, &hdr);
	if (table_id != EMM_TABLE_UNIQUE && table_id != EMM_TABLE_GROUP)
		return CE_FORMAT;
	if ((hdr >> 12) != (EMM_HDR_FLAGS >> 4))
		return CE_FORMAT;
	if (cur_view(&c, hdr & 0x0FFF, &body) != 0)
		return CE_TRUNCATED;
	if (cur_end(&c) != 0)
		return CE_TRAILING;
	memset(&rec, 0, sizeof(rec));
	rec.table_id = table_id;
	cur_u8(&body, &version);
	cur_u16(&body, &rec.ca_system_id);
	if (body.err)
		goto fail;
	if (version != EMM_FORMAT_V1) {
		cur_fail(&body, CE_FORMAT);
		goto fail;
	}
	if (table_id == EMM_TABLE_UNIQUE) {
		/* serial | seq | timestamp | nonce | ct_len | ct | tag */
		uint16_t ct_len = 0;

		cur_u64(&body, &rec.serial);
		cur_u32(&body, &rec.seq);
		cur_u64(&body, &rec.timestamp_ms);
		rec.nonce = cur_ptr(&body, EMM_NONCE_BYTES);
		cur_u16(&body, &ct_len);
		if (body.err)
			goto fail;
		if (ct_len == 0 || ct_len > EMM_MAX_PLAINTEXT) {
			cur_fail(&body, CE_FORMAT);
			goto fail;
		}
		rec.ct_len = ct_len;
		rec.ct = cur_ptr(&body, ct_len);
		rec.tag = cur_ptr(&body, EMM_TAG_BYTES);
		if (cur_end(&body) != 0)
			goto fail;
		found = rec.serial == serial;
		if (found)
			*v = rec;
	} else {
		cur_u64(&body, &rec.timestamp_ms);
		cur_u8(&body, &ncards);
		if (body.err)
			goto fail;
		if (ncards == 0) {
			cur_fail(&body, CE_FORMAT);
			goto fail;
		}
		for (unsigned i = 0; i < ncards; i++) {
			if (parse_record(&body, &rec) != 0)
				goto fail;
			if (rec.serial == serial) {
				if (found) { /* one record per card */
					cur_fail(&body, CE_FORMAT);
					goto fail;
				}
				found = true;
				*v = rec;
			}
		}
		if (cur_end(&body) != 0)
			goto fail;
	}
	if (!found) {
		memset(v, 0, sizeof(*v));
		return CE_NOT_FOUND;
	}
	return 0;
fail:
	r = body.err ? body.err : cur_end(&body);
	memset(v, 0, sizeof(*v));
	return r ? r : CE_FORMAT;
}

/* Strict TLV plaintext -> content. */
static int parse_plaintext(const uint8_t *pt, size_t len, struct emm_content *out)
{
	struct cur c, val;
	uint32_t seen = 0;
	int r;

	cur_init(&c, pt, len);
	if (len == 0)
		return CE_FORMAT;
	while (cur_left(&c) > 0) {
		uint8_t tag = 0, l = 0;

		cur_u8(&c, &tag);
		cur_u8(&c, &l);
		if (cur_view(&c, l, &val) != 0)
			return c.err;
		switch (tag) {
		case EMM_T_ENTITLEMENT:
			if (out->has_grant || l < 20 || (l - 20) % 2 || (size_t)(l - 20) / 2 > EMM_MAX_EXT_PACKAGES)
				return CE_FORMAT;
			out->has_grant = true;
			cur_u32(&val, &out->grant.packages);
			cur_u64(&val, &out->grant.start_s);
			cur_u64(&val, &out->grant.finish_s);
			out->grant.next = (size_t)(l - 20) / 2;
			for (size_t i = 0; i < out->grant.next; i++)
				cur_u16(&val, &out->grant.ext[i]);
			if ((r = cur_end(&val)) != 0)
				return r;
			if (out->grant.start_s > out->grant.finish_s || out->grant.finish_s > INT64_MAX)
				return CE_RANGE;
			break;
		case EMM_T_PKG_KEY:
		case EMM_T_PKG_KEY_EXT: {
			struct pkg_key *k;
			bool ext = tag == EMM_T_PKG_KEY_EXT;

			if (l != 4 + (ext ? 2 : 1) + PKG_KEY_BYTES)
				return CE_FORMAT;
			if (out->nkeys >= EMM_MAX_KEYS)
				return CE_LIMIT;
			k = &out->keys[out->nkeys];
			cur_u32(&val, &k->epoch);
			if (ext) {
				cur_u16(&val, &k->pkg);
			} else {
				uint8_t b = 0;

				cur_u8(&val, &b);
				k->pkg = b;
			}
			cur_bytes(&val, k->key, PKG_KEY_BYTES);
			if ((r = cur_end(&val)) != 0)
				return r;
			/* each package id has one form: 0..31 u8, 32.. u16 */
			if (ext ? k->pkg < CAS_MAX_PACKAGES : k->pkg >= CAS_MAX_PACKAGES)
				return CE_RANGE;
			out->nkeys++;
			break;
		}
		case EMM_T_BLOCK:
		case EMM_T_UNBLOCK:
		case EMM_T_UNPAIR:
		case EMM_T_RESET_COUNTER:
		case EMM_T_PAIR: {
			uint32_t bit = tag == EMM_T_BLOCK ? EMM_CMD_BLOCK : tag == EMM_T_UNBLOCK ? EMM_CMD_UNBLOCK :
				tag == EMM_T_UNPAIR ? EMM_CMD_UNPAIR : tag == EMM_T_PAIR ? EMM_CMD_PAIR :
				EMM_CMD_RESET_COUNTER;

			if ((seen & bit) || (tag == EMM_T_PAIR ? (l != 8 && l != 8 + EMM_PAIR_KEY_BYTES) : l != 0))
				return CE_FORMAT;
			seen |= bit;
			if (tag == EMM_T_PAIR) {
				cur_u64(&val, &out->pair_stb_id);
				if (out->pair_stb_id == 0)
					return CE_FORMAT;
				if (l == 8 + EMM_PAIR_KEY_BYTES) {
					out->has_pair_key = true;
					cur_bytes(&val, out->pair_key, EMM_PAIR_KEY_BYTES);
				}
			}
			if ((r = cur_end(&val)) != 0)
				return r;
			break;
		}
		case EMM_T_COUNTER_LIMITS:
			if (out->has_limits || l != EMM_LIMITS_BYTES)
				return CE_FORMAT;
			out->has_limits = true;
			cur_u8(&val, &out->limits.max_channels);
			cur_u32(&val, &out->limits.window_s);
			cur_u32(&val, &out->limits.block_s);
			if ((r = cur_end(&val)) != 0)
				return r;
			if (out->limits.max_channels == 0 || out->limits.max_channels > EMM_MAX_LIMIT_CHANNELS ||
			    out->limits.window_s == 0)
				return CE_RANGE;
			break;
		case EMM_T_OSD: { /* first chunk, then its 0x21 chunks (emm.h) */
			uint8_t item[OSD_MAX_BYTES];
			size_t n = 0;

			if (out->nosd >= EMM_MAX_OSD)
				return CE_LIMIT;
			if ((r = cur_bytes_max(&val, item, sizeof(item), l)) != 0)
				return r;
			n = l;
			for (;;) { /* the 0x21 records right after it */
				struct cur peek = c;
				uint8_t t2 = 0, l2 = 0;

				if (cur_u8(&peek, &t2) != 0 || t2 != EMM_T_OSD_MORE)
					break;
				cur_u8(&c, &t2);
				cur_u8(&c, &l2);
				if (l2 == 0 || l2 > sizeof(item) - n)
					return CE_FORMAT;
				if ((r = cur_bytes_max(&c, item + n, sizeof(item) - n, l2)) != 0)
					return r;
				n += l2;
			}
			if ((r = osd_parse(item, n, &out->osd[out->nosd])) != 0)
				return r;
			out->nosd++;
			break;
		}
		default: /* an EMM_T_OSD_MORE not right after its item lands here */
			return CE_FORMAT;
		}
	}
	if ((r = cur_end(&c)) != 0)
		return r;
	out->cmds = seen;
	if ((seen & EMM_CMD_BLOCK) && (seen & EMM_CMD_UNBLOCK))
		return CE_FORMAT;
	if ((seen & EMM_CMD_PAIR) && (seen & EMM_CMD_UNPAIR))
		return CE_FORMAT;
	/* Keys only with a grant, only of its packages, no (epoch, pkg) twice. */
	for (size_t i = 0; i < out->nkeys; i++) {
		bool in = false;

		if (out->has_grant && out->keys[i].pkg < CAS_MAX_PACKAGES)
			in = (out->grant.packages & (1u << out->keys[i].pkg)) != 0;
		for (size_t j = 0; out->has_grant && !in && j < out->grant.next; j++)
			in = out->grant.ext[j] == out->keys[i].pkg;
		if (!in)
			return CE_FORMAT;
		for (size_t j = 0; j < i; j++)
			if (out->keys[j].epoch == out->keys[i].epoch && out->keys[j].pkg == out->keys[i].pkg)
				return CE_FORMAT;
	}
	return 0;
}

int emm_open(const struct emm_view *v, const uint8_t k_card[CARD_KEY_BYTES], struct emm_content *out)
{
	uint8_t aad[EMM_AAD_BYTES], pt[EMM_MAX_PLAINTEXT];
	int r;

	memset(out, 0, sizeof(*out));
	if (!v || !k_card || !v->nonce || !v->ct || !v->tag)
		return CE_ARG;
	if (v->ct_len == 0 || v->ct_len > sizeof(pt))
		return CE_FORMAT;
	make_aad(aad, v->ca_system_id, v->serial, v->seq, v->timestamp_ms, v->nonce, v->ct_len);
	r = gcm_once(0, k_card, v->nonce, aad, sizeof(aad), v->ct, v->ct_len, pt, (uint8_t *)(uintptr_t)v->tag);
	if (r == 0)
		r = parse_plaintext(pt, v->ct_len, out);
	OPENSSL_cleanse(pt, v->ct_len);
	if (r != 0)
		emm_content_wipe(out);
	return r;
}

/* ----------------------------------------------------------------- issuer */

struct emm_issuer {
	const struct keystore *ks;   /* not owned */
	struct card_kdf *kdf;
	struct crypto_gcm_rekey *gcm; /* K_card changes every EMM */
	uint8_t nonce_prefix[8];     /* random; nonce = prefix | counter u32 */
	uint32_t nonce_ctr;
	uint32_t cache_epoch;        /* keys[0] = this epoch, keys[1] = next */
	bool cache_valid;
	uint32_t have[2];            /* bit pkg: keys[e][pkg] derived */
	struct pkg_key keys[2][CAS_MAX_PACKAGES];
	size_t next[2];              /* extended packages' keys of the two epochs, */
	struct pkg_key ext[2][EMM_CACHE_EXT]; /* the first EMM_CACHE_EXT used; secret */
	struct pkg_key spill;        /* one beyond the cache, derived per EMM; secret */
};

void emm_issuer_free(struct emm_issuer *is)
{
	if (!is)
		return;
	card_kdf_free(is->kdf);
	crypto_gcm_rekey_free(is->gcm);
	OPENSSL_cleanse(is, sizeof(*is));
	free(is);
}

int emm_issuer_new(const struct keystore *ks, struct emm_issuer **out)
{
	struct emm_issuer *is;
	int r;

	*out = NULL;
	if (!ks)
		return CE_ARG;
	is = calloc(1, sizeof(*is));
	if (!is)
		return CE_NOMEM;
	is->ks = ks;
	if ((r = crypto_gcm_rekey_new(&is->gcm)) != 0 || (r = card_kdf_new(ks, &is->kdf)) != 0 ||
	    RAND_bytes(is->nonce_prefix, sizeof(is->nonce_prefix)) != 1) {
		emm_issuer_free(is);
		return r ? r : CE_CRYPTO;
	}
	*out = is;
	return 0;
}

bool emm_issuer_set_reference(struct emm_issuer *is, bool reference)
{
	return is ? crypto_gcm_rekey_set_reference(is->gcm, reference) : false;
}

bool emm_issuer_is_reference(const struct emm_issuer *is)
{
	return !is || crypto_gcm_rekey_is_reference(is->gcm);
}

/* A nonce never repeated by this issuer (a fresh random prefix every 2^32). */
static int next_nonce(struct emm_issuer *is, uint8_t nonce[EMM_NONCE_BYTES])
{
	if (is->nonce_ctr == UINT32_MAX) {
		if (RAND_bytes(is->nonce_prefix, sizeof(is->nonce_prefix)) != 1)
			return CE_CRYPTO;
		is->nonce_ctr = 0;
	}
	memcpy(nonce, is->nonce_prefix, 8);
	put_be32(nonce + 8, is->nonce_ctr++);
	return 0;
}

static int cached_key(struct emm_issuer *is, uint32_t epoch, unsigned pkg, const struct pkg_key **out)
{
	unsigned slot;
	int r;

	if (!is->cache_valid || (epoch != is->cache_epoch && epoch != is->cache_epoch + 1)) {
		OPENSSL_cleanse(is->keys, sizeof(is->keys));
		OPENSSL_cleanse(is->ext, sizeof(is->ext));
		is->have[0] = is->have[1] = 0;
		is->next[0] = is->next[1] = 0;
		is->cache_epoch = epoch;
		is->cache_valid = true;
	}
	slot = epoch - is->cache_epoch;
	if (pkg >= CAS_MAX_PACKAGES) {
		size_t i;

		for (i = 0; i < is->next[slot] && is->ext[slot][i].pkg != pkg; i++)
			;
		if (i == EMM_CACHE_EXT) { /* full: derived for this EMM only */
			if ((r = keystore_package_key(is->ks, epoch, pkg, &is->spill)) != 0)
				return r;
			*out = &is->spill;
			return 0;
		}
		if (i == is->next[slot]) {
			if ((r = keystore_package_key(is->ks, epoch, pkg, &is->ext[slot][i])) != 0)
				return r;
			is->next[slot]++;
		}
		*out = &is->ext[slot][i];
		return 0;
	}
	if (!(is->have[slot] & (1u << pkg))) {
		if ((r = keystore_package_key(is->ks, epoch, pkg, &is->keys[slot][pkg])) != 0)
			return r;
		is->have[slot] |= 1u << pkg;
	}
	*out = &is->keys[slot][pkg];
	return 0;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static void tlv_hdr(struct wbuf *w, uint8_t tag, uint8_t len)
{
	wbuf_u8(w, tag);
	wbuf_u8(w, len);
}

static int encode_plaintext(const struct emm_content *c, uint8_t *pt, size_t cap, size_t *len)
{
	struct wbuf w;

	*len = 0;
	if (c->nkeys > EMM_MAX_KEYS || (c->has_grant && c->grant.next > EMM_MAX_EXT_PACKAGES))
		return CE_ARG;
	wbuf_init(&w, pt, cap);
	if (c->has_grant) {
		tlv_hdr(&w, EMM_T_ENTITLEMENT, (uint8_t)(20 + 2 * c->grant.next));
		wbuf_u32(&w, c->grant.packages);
		wbuf_u64(&w, c->grant.start_s);
		wbuf_u64(&w, c->grant.finish_s);
		for (size_t i = 0; i < c->grant.next; i++)
			wbuf_u16(&w, c->grant.ext[i]);
	}
	for (size_t i = 0; i < c->nkeys; i++) {
		bool ext = c->keys[i].pkg >= CAS_MAX_PACKAGES;

		tlv_hdr(&w, ext ? EMM_T_PKG_KEY_EXT : EMM_T_PKG_KEY, (uint8_t)(4 + (ext ? 2 : 1) + PKG_KEY_BYTES));
		wbuf_u32(&w, c->keys[i].epoch);
		if (ext)
			wbuf_u16(&w, c->keys[i].pkg);
		else
			wbuf_u8(&w, (uint8_t)c->keys[i].pkg);
		wbuf_bytes(&w, c->keys[i].key, PKG_KEY_BYTES);
	}
	if (c->cmds & EMM_CMD_BLOCK)
		tlv_hdr(&w, EMM_T_BLOCK, 0);
	if (c->cmds & EMM_CMD_UNBLOCK)
		tlv_hdr(&w, EMM_T_UNBLOCK, 0);
	if (c->cmds & EMM_CMD_PAIR) {
		tlv_hdr(&w, EMM_T_PAIR, c->has_pair_key ? 8 + EMM_PAIR_KEY_BYTES : 8);
		wbuf_u64(&w, c->pair_stb_id);
		if (c->has_pair_key)
			wbuf_bytes(&w, c->pair_key, EMM_PAIR_KEY_BYTES);
	}
	if (c->cmds & EMM_CMD_UNPAIR)
		tlv_hdr(&w, EMM_T_UNPAIR, 0);
	if (c->cmds & EMM_CMD_RESET_COUNTER)
		tlv_hdr(&w, EMM_T_RESET_COUNTER, 0);
	if (c->has_limits) {
		tlv_hdr(&w, EMM_T_COUNTER_LIMITS, EMM_LIMITS_BYTES);
		wbuf_u8(&w, c->limits.max_channels);
		wbuf_u32(&w, c->limits.window_s);
		wbuf_u32(&w, c->limits.block_s);
	}
	for (size_t i = 0; i < c->nosd && i < EMM_MAX_OSD; i++) {
		uint8_t item[OSD_MAX_BYTES];
		size_t n = 0, off = 0;
		int r = c->osd[i].kind == OSD_KIND_FINGERPRINT ? osd_fp_encode(&c->osd[i].u.fp, item, sizeof(item), &n)
			: c->osd[i].kind == OSD_KIND_MESSAGE ? osd_msg_encode(&c->osd[i].u.msg, item, sizeof(item), &n)
			: CE_ARG;

		if (r != 0)
			return r;
		while (off < n) {
			size_t k = n - off > 255 ? 255 : n - off;

			tlv_hdr(&w, off == 0 ? EMM_T_OSD : EMM_T_OSD_MORE, (uint8_t)k);
			wbuf_bytes(&w, item + off, k);
			off += k;
		}
	}
	if (c->nosd > EMM_MAX_OSD)
		return CE_ARG;
	if (wbuf_status(&w) != 0)
		return CE_RANGE;
	*len = w.len;
	return 0;
}

/* Encrypt a plaintext into a unique EMM section. */
static int seal(struct emm_issuer *is, uint64_t serial, uint32_t seq, uint64_t now_ms, const uint8_t *pt,
	size_t pt_len, uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t kcard[CARD_KEY_BYTES], nonce[EMM_NONCE_BYTES], aad[EMM_AAD_BYTES];
	size_t total = EMM_UNIQUE_OVERHEAD + pt_len;
	int r;

	if (pt_len == 0 || pt_len > EMM_MAX_PLAINTEXT)
		return CE_RANGE;
	if (total > cap)
		return CE_OVERFLOW;
	if ((r = next_nonce(is, nonce)) != 0)
		return r;
	if ((r = card_key_derive(is->kdf, serial, kcard)) != 0)
		return r;
	out[0] = EMM_TABLE_UNIQUE;
	put_be16(out + 1, (uint16_t)((EMM_HDR_FLAGS << 8) | (total - 3)));
	make_aad(aad, keystore_ca_system_id(is->ks), serial, seq, now_ms, nonce, pt_len);
	memcpy(out + 3, aad, EMM_AAD_BYTES);
	r = crypto_gcm_rekey_seal(is->gcm, kcard, nonce, aad, sizeof(aad), pt, pt_len, out + 3 + EMM_AAD_BYTES,
		out + 3 + EMM_AAD_BYTES + pt_len);
	OPENSSL_cleanse(kcard, sizeof(kcard));
	if (r != 0) {
		OPENSSL_cleanse(out, total);
		return r;
	}
	*out_len = total;
	return 0;
}

int emm_build(struct emm_issuer *is, uint64_t serial, uint32_t seq, uint64_t now_ms, const struct emm_content *c,
	uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t pt[EMM_MAX_PLAINTEXT];
	size_t pt_len = 0;
	int r;

	*out_len = 0;
	if (!is || !c || !out)
		return CE_ARG;
	if ((r = encode_plaintext(c, pt, sizeof(pt), &pt_len)) == 0)
		r = seal(is, serial, seq, now_ms, pt, pt_len, out, cap, out_len);
	OPENSSL_cleanse(pt, pt_len);
	return r;
}

/* The package keys a grant carries, in the order every unique EMM writer
 * puts them: the current and the next epoch at now (those overlapping the
 * grant), each with the mask's packages lowest first, then the extended
 * ones. None when x says the card must pair first. */
struct key_walk {
	struct emm_issuer *is;
	const struct emm_grant *g;
	uint64_t es, e, e_last; /* epochs e..e_last still to go */
	uint32_t m;             /* mask packages left in epoch e */
	size_t i;               /* extended packages done in epoch e */
};

static int key_walk_init(struct key_walk *w, struct emm_issuer *is, const struct emm_grant *g,
			 const struct emm_extra *x, uint64_t now_ms)
{
	uint32_t cur = keystore_epoch_at(is->ks, now_ms / 1000u);

	if (cur == UINT32_MAX)
		return CE_RANGE;
	*w = (struct key_walk){ .is = is, .g = g, .es = keystore_epoch_seconds(is->ks), .e = cur,
				.e_last = (uint64_t)cur + 1, .m = g->packages };
	if (x && x->no_keys)
		w->e = w->e_last + 1;
	return 0;
}

/* The next key into *k (its epoch and package in it; valid until the next
 * call): 1, 0 when there is none left, or CE_*. */
static int key_walk_next(struct key_walk *w, const struct pkg_key **k)
{
	const struct emm_grant *g = w->g;

	for (; w->e <= w->e_last; w->e++, w->m = g->packages, w->i = 0) {
		/* epoch e covers [e*es, (e+1)*es - 1]: keys only if it overlaps the grant */
		if (w->e * w->es > g->finish_s || (w->e + 1) * w->es <= g->start_s)
			continue;
		if (w->m != 0) { /* the set bits of the mask (a branch per package mispredicts) */
			unsigned pkg = (unsigned)__builtin_ctz(w->m);
			int r;

			w->m &= w->m - 1;
			return (r = cached_key(w->is, (uint32_t)w->e, pkg, k)) != 0 ? r : 1;
		}
		if (w->i < g->next) {
			uint16_t pkg = g->ext[w->i++];
			int r;

			if (pkg < CAS_MAX_PACKAGES)
				return CE_ARG;
			return (r = cached_key(w->is, (uint32_t)w->e, pkg, k)) != 0 ? r : 1;
		}
	}
	return 0;
}

int emm_build_unique(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct emm_grant *g,
	uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len)
{
	return emm_build_unique_ex(is, serial, seq, g, NULL, now_ms, out, cap, out_len);
}

int emm_build_unique_ex(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct emm_grant *g,
	const struct emm_extra *x, uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t pt[EMM_MAX_PLAINTEXT], *p = pt;
	const struct pkg_key *k;
	struct key_walk w;
	int r = 0;

	/* the largest plaintext: entitlement with every ext id, 2 epochs x
	 * (32 mask keys + EMM_MAX_EXT_PACKAGES extended keys), and room for
	 * every command record (2 + 2 + 26 + 2 + 2 + 11 bytes): 3139 bytes */
	_Static_assert(2 + 20 + 2 * EMM_MAX_EXT_PACKAGES + 2 * CAS_MAX_PACKAGES * EMM_KEY_REC +
		2 * EMM_MAX_EXT_PACKAGES * EMM_KEY_EXT_REC + 45 <= EMM_MAX_PLAINTEXT, "unique plaintext fits pt");
	_Static_assert(EMM_UNIQUE_OVERHEAD + EMM_MAX_PLAINTEXT <= EMM_MAX_SECTION, "a unique EMM fits a section");
	*out_len = 0;
	if (!is || !g || !out || g->next > EMM_MAX_EXT_PACKAGES)
		return CE_ARG;
	if (x && (((x->cmds & EMM_CMD_BLOCK) && (x->cmds & EMM_CMD_UNBLOCK)) ||
		  ((x->cmds & EMM_CMD_PAIR) && (x->cmds & EMM_CMD_UNPAIR)) ||
		  ((x->cmds & EMM_CMD_PAIR) && x->pair_stb_id == 0) ||
		  (x->cmds & ~(EMM_CMD_BLOCK | EMM_CMD_UNBLOCK | EMM_CMD_PAIR | EMM_CMD_UNPAIR | EMM_CMD_RESET_COUNTER))))
		return CE_ARG;
	if (g->start_s > g->finish_s || g->finish_s > INT64_MAX)
		return CE_RANGE;
	if ((r = key_walk_init(&w, is, g, x, now_ms)) != 0)
		return r;
	/* Encoded directly, no emm_content copy and no per-field bounds check
	 * (the size is bounded above): this is the hot path. */
	p[0] = EMM_T_ENTITLEMENT;
	p[1] = (uint8_t)(20 + 2 * g->next);
	put_be32(p + 2, g->packages);
	put_be64(p + 6, g->start_s);
	put_be64(p + 14, g->finish_s);
	p += 22;
	for (size_t i = 0; i < g->next; i++, p += 2)
		put_be16(p, g->ext[i]);
	while ((r = key_walk_next(&w, &k)) == 1) {
		if (k->pkg < CAS_MAX_PACKAGES) {
			p[0] = EMM_T_PKG_KEY;
			p[1] = 4 + 1 + PKG_KEY_BYTES;
			put_be32(p + 2, k->epoch);
			p[6] = (uint8_t)k->pkg;
			memcpy(p + 7, k->key, PKG_KEY_BYTES);
			p += EMM_KEY_REC;
		} else { /* the extended packages (ids >= 32) */
			p[0] = EMM_T_PKG_KEY_EXT;
			p[1] = 4 + 2 + PKG_KEY_BYTES;
			put_be32(p + 2, k->epoch);
			put_be16(p + 6, k->pkg);
			memcpy(p + 8, k->key, PKG_KEY_BYTES);
			p += EMM_KEY_EXT_REC;
		}
	}
	OPENSSL_cleanse(&is->spill, sizeof(is->spill));
	if (r != 0)
		goto out;
	if (x) { /* the command records (room for all of them: the assert above) */
		static const struct { uint32_t bit; uint8_t tag; } cmd[] = {
			{ EMM_CMD_BLOCK, EMM_T_BLOCK }, { EMM_CMD_UNBLOCK, EMM_T_UNBLOCK },
			{ EMM_CMD_UNPAIR, EMM_T_UNPAIR }, { EMM_CMD_RESET_COUNTER, EMM_T_RESET_COUNTER },
		};

		for (size_t i = 0; i < sizeof(cmd) / sizeof(cmd[0]); i++)
			if (x->cmds & cmd[i].bit) {
				p[0] = cmd[i].tag;
				p[1] = 0;
				p += 2;
			}
		if (x->cmds & EMM_CMD_PAIR) {
			p[0] = EMM_T_PAIR;
			p[1] = x->has_pair_key ? 8 + EMM_PAIR_KEY_BYTES : 8;
			put_be64(p + 2, x->pair_stb_id);
			if (x->has_pair_key)
				memcpy(p + 10, x->pair_key, EMM_PAIR_KEY_BYTES);
			p += 2 + p[1];
		}
	}
	r = seal(is, serial, seq, now_ms, pt, (size_t)(p - pt), out, cap, out_len);
out:
	OPENSSL_cleanse(pt, (size_t)(p - pt));
	return r;
}

/* Bytes item takes in the plaintext: its 0x20 / 0x21 records. */
static size_t osd_record_bytes(const struct osd_item *it)
{
	size_t n = it->kind == OSD_KIND_FINGERPRINT ? OSD_FP_BYTES : OSD_MSG_HEADER_BYTES + it->u.msg.text_len;

	return n + 2 * ((n + 254) / 255);
}

int emm_build_unique_osd(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct emm_grant *g,
	const struct emm_extra *x, const struct osd_item *const *items, size_t n, size_t *n_sent, uint64_t now_ms,
	uint8_t *out, size_t cap, size_t *out_len)
{
	struct emm_content *c;
	const struct pkg_key *k;
	struct key_walk w;
	size_t used;
	int r = 0;

	if (out_len)
		*out_len = 0;
	if (n_sent)
		*n_sent = 0;
	if (!is || !g || !out || !out_len || !n_sent || n > EMM_MAX_OSD || (n && !items) ||
	    g->next > EMM_MAX_EXT_PACKAGES)
		return CE_ARG;
	if (g->start_s > g->finish_s || g->finish_s > INT64_MAX)
		return CE_RANGE;
	c = calloc(1, sizeof(*c));
	if (!c)
		return CE_NOMEM;
	c->has_grant = true;
	c->grant = *g;
	if ((r = key_walk_init(&w, is, g, x, now_ms)) != 0)
		goto out;
	used = 2 + 20 + 2 * g->next;
	/* the keys emm_build_unique_ex gives, in its order */
	while ((r = key_walk_next(&w, &k)) == 1) {
		c->keys[c->nkeys++] = *k;
		used += k->pkg < CAS_MAX_PACKAGES ? EMM_KEY_REC : EMM_KEY_EXT_REC;
	}
	OPENSSL_cleanse(&is->spill, sizeof(is->spill));
	if (r != 0)
		goto out;
	if (x) { /* commands and pairing, as emm_build_unique_ex writes them */
		c->cmds = x->cmds;
		c->pair_stb_id = x->pair_stb_id;
		c->has_pair_key = x->has_pair_key;
		memcpy(c->pair_key, x->pair_key, sizeof(c->pair_key));
		used += 45; /* room for every command record, as emm_build_unique_ex counts */
	}
	for (size_t i = 0; i < n; i++) {
		size_t b = osd_record_bytes(items[i]);

		if (b > EMM_MAX_PLAINTEXT - used)
			break; /* this one and the rest wait */
		used += b;
		c->osd[c->nosd++] = *items[i];
	}
	if ((r = emm_build(is, serial, seq, now_ms, c, out, cap, out_len)) == 0)
		*n_sent = c->nosd;
out:
	emm_content_wipe(c);
	free(c);
	return r;
}

int emm_build_osd(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct osd_item *item,
	uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len)
{
	struct emm_content *c;
	int r;

	if (out_len)
		*out_len = 0;
	if (!is || !item || !out || !out_len)
		return CE_ARG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return CE_NOMEM;
	c->nosd = 1;
	c->osd[0] = *item;
	r = emm_build(is, serial, seq, now_ms, c, out, cap, out_len);
	emm_content_wipe(c);
	free(c);
	return r;
}

int emm_build_command(struct emm_issuer *is, uint64_t serial, uint32_t seq, uint32_t cmds, uint64_t stb_id,
	uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len)
{
	struct emm_content c;
	int r;

	*out_len = 0;
	if (cmds == 0 || (cmds & ~0x1Fu) || ((cmds & EMM_CMD_BLOCK) && (cmds & EMM_CMD_UNBLOCK)) ||
	    ((cmds & EMM_CMD_PAIR) && (cmds & EMM_CMD_UNPAIR)) || (!!(cmds & EMM_CMD_PAIR) != (stb_id != 0)))
		return CE_ARG;
	memset(&c, 0, sizeof(c));
	c.cmds = cmds;
	c.pair_stb_id = stb_id;
	r = emm_build(is, serial, seq, now_ms, &c, out, cap, out_len);
	emm_content_wipe(&c);
	return r;
}

int emm_build_pair(struct emm_issuer *is, uint64_t serial, uint32_t seq, uint64_t stb_id,
	const uint8_t k_pair[EMM_PAIR_KEY_BYTES], uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len)
{
	struct emm_content c;
	int r;

	*out_len = 0;
	if (stb_id == 0 || !k_pair)
		return CE_ARG;
	memset(&c, 0, sizeof(c));
	c.cmds = EMM_CMD_PAIR;
	c.pair_stb_id = stb_id;
	c.has_pair_key = true;
	memcpy(c.pair_key, k_pair, EMM_PAIR_KEY_BYTES);
	r = emm_build(is, serial, seq, now_ms, &c, out, cap, out_len);
	emm_content_wipe(&c);
	return r;
}

int emm_build_limits(struct emm_issuer *is, uint64_t serial, uint32_t seq, const struct emm_limits *l,
	uint64_t now_ms, uint8_t *out, size_t cap, size_t *out_len)
{
	struct emm_content c;
	int r;

	*out_len = 0;
	if (!l || l->max_channels == 0 || l->max_channels > EMM_MAX_LIMIT_CHANNELS || l->window_s == 0)
		return CE_ARG;
	memset(&c, 0, sizeof(c));
	c.has_limits = true;
	c.limits = *l;
	r = emm_build(is, serial, seq, now_ms, &c, out, cap, out_len);
	emm_content_wipe(&c);
	return r;
}

int emm_group_pack(const uint8_t *const *uniques, const size_t *lens, size_t n, uint8_t *out, size_t cap,
	size_t *out_len)
{
	struct wbuf w;
	struct emm_view v0, v;
	size_t total = EMM_GROUP_HEADER;

	*out_len = 0;
	if (!uniques || !lens || !out || n == 0 || n > EMM_MAX_GROUP_CARDS)
		return CE_ARG;
	memset(&v0, 0, sizeof(v0));
	for (size_t i = 0; i < n; i++) {
		if (!uniques[i] || lens[i] < 14 || uniques[i][0] != EMM_TABLE_UNIQUE)
			return CE_ARG;
		uint64_t serial = 0;

		if (cur_u64_at(uniques[i], lens[i], 6, &serial) != 0 || emm_parse(uniques[i], lens[i], serial, &v) != 0)
			return CE_ARG;
		if (i == 0)
			v0 = v;
		else if (v.ca_system_id != v0.ca_system_id || v.timestamp_ms != v0.timestamp_ms)
			return CE_ARG;
		total += EMM_RECORD_OVERHEAD + v.ct_len;
	}
	if (total > EMM_MAX_SECTION)
		return CE_RANGE;
	if (total > cap)
		return CE_OVERFLOW;
	wbuf_init(&w, out, cap);
	wbuf_u8(&w, EMM_TABLE_GROUP);
	wbuf_u16(&w, (uint16_t)((EMM_HDR_FLAGS << 8) | (total - 3)));
	wbuf_u8(&w, EMM_FORMAT_V1);
	wbuf_u16(&w, v0.ca_system_id);
	wbuf_u64(&w, v0.timestamp_ms);
	wbuf_u8(&w, (uint8_t)n);
	for (size_t i = 0; i < n; i++) {
		/* serial..seq (bytes 6..17), nonce..tag (bytes 26..end) */
		wbuf_bytes(&w, uniques[i] + 6, 12);
		wbuf_bytes(&w, uniques[i] + 26, lens[i] - 26);
	}
	if (wbuf_status(&w) != 0 || w.len != total)
		return CE_INTERNAL;
	*out_len = total;
	return 0;
}

/* -------------------------------------------------------------- card state */

int emm_state_apply(struct emm_card_state *st, const struct emm_view *v, const struct emm_content *c)
{
	if (!st || !v || !c)
		return CE_ARG;
	if (v->seq <= st->last_seq)
		return CE_REPLAY;
	if (c->nkeys > EMM_MAX_KEYS)
		return CE_ARG;
	st->last_seq = v->seq;
	st->ent.card_serial = v->serial;
	st->ent.ca_system_id = v->ca_system_id;
	if (c->has_grant) {
		OPENSSL_cleanse(st->ent.keys, sizeof(st->ent.keys));
		st->has_ent = true;
		st->ent.packages = c->grant.packages;
		st->ent.next = c->grant.next < CAS_MAX_EXT_PACKAGES ? c->grant.next : CAS_MAX_EXT_PACKAGES;
		memset(st->ent.ext, 0, sizeof(st->ent.ext));
		memcpy(st->ent.ext, c->grant.ext, st->ent.next * sizeof(st->ent.ext[0]));
		st->ent.start_s = c->grant.start_s;
		st->ent.finish_s = c->grant.finish_s;
		st->ent.nkeys = c->nkeys;
		memcpy(st->ent.keys, c->keys, c->nkeys * sizeof(c->keys[0]));
	}
	if (c->cmds & EMM_CMD_BLOCK)
		st->blocked = true;
	if (c->cmds & EMM_CMD_UNBLOCK)
		st->blocked = false;
	if (c->cmds & EMM_CMD_PAIR)
		st->paired_stb_id = c->pair_stb_id;
	if (c->cmds & EMM_CMD_UNPAIR)
		st->paired_stb_id = 0;
	if (c->cmds & EMM_CMD_RESET_COUNTER)
		st->zap_count = 0;
	/* c->has_limits: the cardless client has no request-counter limit to
	 * set (it only counts); the EMM is accepted and its seq consumed. */
	return 0;
}

int emm_state_encode(const struct emm_card_state *st, uint64_t serial, const uint8_t k_card[CARD_KEY_BYTES],
	uint8_t **out, size_t *out_len)
{
	uint8_t pt[ST_MAX_PLAINTEXT], nonce[EMM_NONCE_BYTES], *buf = NULL;
	struct wbuf w;
	size_t total = 0;
	int r;

	*out = NULL;
	*out_len = 0;
	if (!st || !k_card || st->ent.nkeys > EMM_MAX_KEYS || st->ent.next > CAS_MAX_EXT_PACKAGES)
		return CE_ARG;
	wbuf_init(&w, pt, sizeof(pt));
	wbuf_u32(&w, st->last_seq);
	wbuf_u8(&w, (uint8_t)((st->blocked ? 1 : 0) | (st->has_ent ? 2 : 0)));
	wbuf_u64(&w, st->paired_stb_id);
	wbuf_u32(&w, st->zap_count);
	wbuf_u16(&w, st->ent.ca_system_id);
	wbuf_u32(&w, st->ent.packages);
	wbuf_u8(&w, (uint8_t)st->ent.next);
	for (size_t i = 0; i < st->ent.next; i++)
		wbuf_u16(&w, st->ent.ext[i]);
	wbuf_u64(&w, st->ent.start_s);
	wbuf_u64(&w, st->ent.finish_s);
	wbuf_u16(&w, (uint16_t)st->ent.nkeys);
	for (size_t i = 0; i < st->ent.nkeys; i++) {
		wbuf_u32(&w, st->ent.keys[i].epoch);
		wbuf_u16(&w, st->ent.keys[i].pkg);
		wbuf_bytes(&w, st->ent.keys[i].key, PKG_KEY_BYTES);
	}
	if ((r = wbuf_status(&w)) != 0)
		goto out;
	total = ST_HEADER_BYTES + w.len + EMM_TAG_BYTES;
	buf = calloc(1, total);
	if (!buf) {
		r = CE_NOMEM;
		goto out;
	}
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	memcpy(buf, ST_MAGIC, 8);
	for (int i = 0; i < 8; i++)
		buf[8 + i] = (uint8_t)(serial >> (56 - 8 * i));
	memcpy(buf + 16, nonce, sizeof(nonce));
	put_be16(buf + 28, (uint16_t)w.len);
	r = gcm_once(1, k_card, nonce, buf, ST_HEADER_BYTES, pt, w.len, buf + ST_HEADER_BYTES,
		buf + ST_HEADER_BYTES + w.len);
	if (r != 0)
		goto out;
	*out = buf;
	*out_len = total;
	buf = NULL;
out:
	OPENSSL_cleanse(pt, sizeof(pt));
	if (buf)
		secret_free(buf, total);
	return r;
}

int emm_state_decode(const uint8_t *buf, size_t len, uint64_t serial, const uint8_t k_card[CARD_KEY_BYTES],
	struct emm_card_state *st)
{
	uint8_t pt[ST_MAX_PLAINTEXT], magic[8], flags = 0, next = 0;
	bool v1;
	const uint8_t *nonce, *ct, *tag;
	uint64_t fserial = 0;
	uint16_t ct_len = 0, nkeys = 0;
	struct cur c, p;
	int r;

	if (!st)
		return CE_ARG;
	memset(st, 0, sizeof(*st));
	if (!buf || !k_card)
		return CE_ARG;
	cur_init(&c, buf, len);
	cur_bytes(&c, magic, sizeof(magic));
	cur_u64(&c, &fserial);
	nonce = cur_ptr(&c, EMM_NONCE_BYTES);
	cur_u16(&c, &ct_len);
	if (c.err)
		return CE_FORMAT;
	v1 = memcmp(magic, ST_MAGIC_V1, 8) == 0;
	if ((!v1 && memcmp(magic, ST_MAGIC, 8) != 0) || ct_len > sizeof(pt))
		return CE_FORMAT;
	ct = cur_ptr(&c, ct_len);
	tag = cur_ptr(&c, EMM_TAG_BYTES);
	if (cur_end(&c) != 0)
		return CE_FORMAT;
	if (fserial != serial)
		return CE_MAC; /* another card's state */
	r = gcm_once(0, k_card, nonce, buf, ST_HEADER_BYTES, ct, ct_len, pt, (uint8_t *)(uintptr_t)tag);
	if (r != 0)
		goto out;
	cur_init(&p, pt, ct_len);
	cur_u32(&p, &st->last_seq);
	cur_u8(&p, &flags);
	cur_u64(&p, &st->paired_stb_id);
	cur_u32(&p, &st->zap_count);
	cur_u16(&p, &st->ent.ca_system_id);
	cur_u32(&p, &st->ent.packages);
	if (!v1) { /* v2: the extended packages */
		cur_u8(&p, &next);
		if (next > CAS_MAX_EXT_PACKAGES)
			cur_fail(&p, CE_FORMAT);
		for (size_t i = 0; !p.err && i < next; i++)
			cur_u16(&p, &st->ent.ext[i]);
		st->ent.next = next;
	}
	cur_u64(&p, &st->ent.start_s);
	cur_u64(&p, &st->ent.finish_s);
	cur_u16(&p, &nkeys);
	if (p.err || nkeys > EMM_MAX_KEYS || (flags & ~3u)) {
		r = CE_FORMAT;
		goto out;
	}
	for (size_t i = 0; i < nkeys; i++) {
		cur_u32(&p, &st->ent.keys[i].epoch);
		if (v1) {
			uint8_t b = 0;

			cur_u8(&p, &b);
			st->ent.keys[i].pkg = b;
		} else {
			cur_u16(&p, &st->ent.keys[i].pkg);
		}
		cur_bytes(&p, st->ent.keys[i].key, PKG_KEY_BYTES);
		if (!entitlement_has_pkg(&st->ent, st->ent.keys[i].pkg))
			cur_fail(&p, CE_FORMAT);
	}
	if (cur_end(&p) != 0) {
		r = CE_FORMAT;
		goto out;
	}
	st->ent.nkeys = nkeys;
	st->ent.card_serial = serial;
	st->blocked = flags & 1;
	st->has_ent = (flags & 2) != 0;
	r = 0;
out:
	OPENSSL_cleanse(pt, sizeof(pt));
	if (r != 0)
		emm_state_wipe(st);
	return r;
}
