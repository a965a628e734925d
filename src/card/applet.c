/*
 * applet.c - the Castellan card application (applet.h): APDU parsing and
 * dispatch, the EEPROM image, ECM -> CW with the request counter and
 * pairing, EMMs, personalization and erase.
 *
 * ECM processing, in this order (first refusal wins, nothing changes):
 *   blank card -> 6985; ecm_parse -> 6A80; CA_system_id -> 6A88;
 *   blocked (head-end, or counter block not yet over in ECM time) -> 6983;
 *   ECM time outside [start, finish] -> 9402; older than card time minus
 *   CARD_REPLAY_TOLERANCE_MS -> 6984; no package in common -> 9401; no
 *   key for the epoch -> 9403; ecm_open -> 6982; then the request counter
 *   (only authenticated ECMs count, so forged ones cannot block a card):
 *   a new channel past max_channels within window_s -> the card blocks
 *   itself for block_s (written to EEPROM) and answers 9404.
 *
 * max_channels, window_s and block_s come from personalization and can be
 * changed later by a COUNTER LIMITS EMM record (emm.h EMM_T_COUNTER_LIMITS),
 * which also empties the window.
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "card/applet.h"
#include "cas/ecm.h"
#include "crypto/aead.h"
#include "lib/cursor.h"
#include "ts/psi.h"

#define EE_MAGIC "CSTLEE02"     /* v2: pair_mode and K_pair after paired_stb_id */
#define EE_MAGIC_V1 "CSTLEE01"  /* still loaded: pairing was K_card-derived only */
#define EE_MAGIC_BYTES 8
#define INFO_VERSION 1
#define PERSO_VERSION 1

_Static_assert(EMM_MAX_LIMIT_CHANNELS == CARD_MAX_CHANNELS, "EMM counter limits must fit the card's window");
_Static_assert(EMM_PAIR_KEY_BYTES == CARD_PAIR_KEY_BYTES, "the PAIR record carries the card's K_pair");

/* ------------------------------------------------------------ status words */

static const struct {
	int err;
	uint16_t sw;
} sw_map[] = {
	{ CE_TRUNCATED, SW_BAD_DATA },  { CE_FORMAT, SW_BAD_DATA },   { CE_TRAILING, SW_BAD_DATA },
	{ CE_RANGE, SW_BAD_DATA },      { CE_LIMIT, SW_BAD_DATA },    { CE_MAC, SW_BAD_MAC },
	{ CE_BLOCKED, SW_BLOCKED },     { CE_REPLAY, SW_REPLAY },     { CE_STATE, SW_STATE },
	{ CE_NOT_FOUND, SW_NOT_FOUND }, { CE_IO, SW_MEMORY },         { CE_NOT_ENTITLED, SW_NOT_ENTITLED },
	{ CE_EXPIRED, SW_EXPIRED },     { CE_NO_KEY, SW_NO_KEY },     { CE_UNSUPPORTED, SW_UNKNOWN_INS },
	{ CE_ARG, SW_WRONG_LENGTH },    { CE_CRC, SW_BAD_DATA },
};

uint16_t card_err_to_sw(int err)
{
	if (err == 0)
		return SW_OK;
	for (size_t i = 0; i < sizeof(sw_map) / sizeof(sw_map[0]); i++)
		if (sw_map[i].err == err)
			return sw_map[i].sw;
	return SW_INTERNAL;
}

int card_sw_to_err(uint16_t sw)
{
	switch (sw) {
	case SW_OK: return 0;
	case SW_BAD_DATA: return CE_FORMAT;
	case SW_BAD_MAC: return CE_MAC;
	case SW_BLOCKED: return CE_BLOCKED;
	case SW_REPLAY: return CE_REPLAY;
	case SW_STATE: return CE_STATE;
	case SW_NOT_FOUND: return CE_NOT_FOUND;
	case SW_MEMORY: return CE_IO;
	case SW_NOT_ENTITLED: return CE_NOT_ENTITLED;
	case SW_EXPIRED: return CE_EXPIRED;
	case SW_NO_KEY: return CE_NO_KEY;
	case SW_COUNTER: return CE_LIMIT;
	case SW_UNKNOWN_INS: case SW_UNKNOWN_CLA: case SW_WRONG_P1P2: return CE_UNSUPPORTED;
	case SW_WRONG_LENGTH: case SW_CHAIN: return CE_PROTO;
	default: return CE_PROTO;
	}
}

/* ------------------------------------------------------------- EEPROM image */

int card_state_encode(const struct card_state *st, uint8_t *out, size_t cap, size_t *len)
{
	struct wbuf w;
	int r;

	*len = 0;
	if (st->nkeys > CARD_MAX_KEYS || st->nchan > CARD_MAX_CHANNELS)
		return CE_ARG;
	wbuf_init(&w, out, cap);
	wbuf_bytes(&w, EE_MAGIC, EE_MAGIC_BYTES);
	wbuf_u8(&w, st->life);
	wbuf_u8(&w, st->protect ? 1 : 0);
	wbuf_u16(&w, st->ca_system_id);
	wbuf_u64(&w, st->serial);
	wbuf_bytes(&w, st->k_card, CARD_KEY_BYTES);
	wbuf_u8(&w, st->max_channels);
	wbuf_u32(&w, st->window_s);
	wbuf_u32(&w, st->block_s);
	wbuf_u32(&w, st->last_seq);
	wbuf_u64(&w, st->time_ms);
	wbuf_u8(&w, st->block);
	wbuf_u64(&w, st->blocked_until_ms);
	wbuf_u64(&w, st->paired_stb_id);
	wbuf_u8(&w, st->pair_mode);
	wbuf_bytes(&w, st->k_pair, CARD_PAIR_KEY_BYTES);
	wbuf_u32(&w, st->packages);
	wbuf_u64(&w, st->start_s);
	wbuf_u64(&w, st->finish_s);
	wbuf_u8(&w, st->nkeys);
	for (size_t i = 0; i < st->nkeys; i++) {
		wbuf_u32(&w, st->keys[i].epoch);
		wbuf_u8(&w, st->keys[i].pkg);
		wbuf_bytes(&w, st->keys[i].key, PKG_KEY_BYTES);
	}
	wbuf_u8(&w, st->nchan);
	for (size_t i = 0; i < st->nchan; i++) {
		wbuf_u16(&w, st->chan[i].ecm_id);
		wbuf_u64(&w, st->chan[i].last_ms);
	}
	if ((r = wbuf_status(&w)) != 0)
		return r;
	wbuf_u32(&w, crc32_mpeg(out, w.len));
	if ((r = wbuf_status(&w)) != 0)
		return r;
	*len = w.len;
	return 0;
}

int card_state_decode(const uint8_t *img, size_t len, struct card_state *st)
{
	uint8_t magic[EE_MAGIC_BYTES], prot = 0;
	bool v1 = false;
	struct cur c;
	uint32_t crc;
	int r;

	memset(st, 0, sizeof(*st));
	if (len < EE_MAGIC_BYTES + 4)
		return CE_TRUNCATED;
	if (cur_u32_at(img, len, len - 4, &crc) != 0 || crc32_mpeg(img, len - 4) != crc) /* the CRC trailer */
		return CE_CRC;
	cur_init(&c, img, len - 4);
	cur_bytes(&c, magic, sizeof(magic));
	if (c.err == 0 && memcmp(magic, EE_MAGIC_V1, EE_MAGIC_BYTES) == 0)
		v1 = true;
	else if (c.err == 0 && memcmp(magic, EE_MAGIC, EE_MAGIC_BYTES) != 0)
		cur_fail(&c, CE_FORMAT);
	cur_u8(&c, &st->life);
	cur_u8(&c, &prot);
	cur_u16(&c, &st->ca_system_id);
	cur_u64(&c, &st->serial);
	cur_bytes(&c, st->k_card, CARD_KEY_BYTES);
	cur_u8(&c, &st->max_channels);
	cur_u32(&c, &st->window_s);
	cur_u32(&c, &st->block_s);
	cur_u32(&c, &st->last_seq);
	cur_u64(&c, &st->time_ms);
	cur_u8(&c, &st->block);
	cur_u64(&c, &st->blocked_until_ms);
	cur_u64(&c, &st->paired_stb_id);
	if (!v1) {
		cur_u8(&c, &st->pair_mode);
		cur_bytes(&c, st->k_pair, CARD_PAIR_KEY_BYTES);
	}
	cur_u32(&c, &st->packages);
	cur_u64(&c, &st->start_s);
	cur_u64(&c, &st->finish_s);
	cur_u8(&c, &st->nkeys);
	if (st->nkeys > CARD_MAX_KEYS)
		cur_fail(&c, CE_LIMIT);
	for (size_t i = 0; i < st->nkeys && c.err == 0; i++) {
		cur_u32(&c, &st->keys[i].epoch);
		cur_u8(&c, &st->keys[i].pkg);
		cur_bytes(&c, st->keys[i].key, PKG_KEY_BYTES);
		if (st->keys[i].pkg >= CAS_MAX_PACKAGES)
			cur_fail(&c, CE_RANGE);
	}
	cur_u8(&c, &st->nchan);
	if (st->nchan > CARD_MAX_CHANNELS)
		cur_fail(&c, CE_LIMIT);
	for (size_t i = 0; i < st->nchan && c.err == 0; i++) {
		cur_u16(&c, &st->chan[i].ecm_id);
		cur_u64(&c, &st->chan[i].last_ms);
	}
	if (prot > 1 || st->life > CARD_LIFE_PERSONALIZED || st->block > CARD_BLOCK_COUNTER ||
	    st->pair_mode > CARD_PAIR_CHIP || (st->pair_mode == CARD_PAIR_NONE) != (st->paired_stb_id == 0 || v1))
		cur_fail(&c, CE_RANGE);
	/* a v1 image's pairing was the K_card-derived one */
	if (c.err == 0 && v1 && st->paired_stb_id != 0) {
		st->pair_mode = CARD_PAIR_SOFT;
		if (card_pairing_key(st->k_card, st->paired_stb_id, st->k_pair) != 0)
			cur_fail(&c, CE_CRYPTO);
	}
	if (st->life == CARD_LIFE_PERSONALIZED && (st->max_channels == 0 || st->max_channels > CARD_MAX_CHANNELS))
		cur_fail(&c, CE_RANGE);
	st->protect = prot == 1;
	if ((r = cur_end(&c)) != 0) {
		OPENSSL_cleanse(st, sizeof(*st));
		return r;
	}
	return 0;
}

/* Write a.next, then make it live. On failure the live state is untouched. */
static int commit(struct card_applet *a)
{
	size_t len;
	int r;

	if ((r = card_state_encode(&a->next, a->img, sizeof(a->img), &len)) != 0)
		return r;
	r = a->ee.store(a->ee.ctx, a->img, len);
	OPENSSL_cleanse(a->img, len);
	if (r != 0)
		return CE_IO;
	memcpy(&a->st, &a->next, sizeof(a->st));
	a->persisted_time_ms = a->st.time_ms;
	return 0;
}

static void begin(struct card_applet *a)
{
	memcpy(&a->next, &a->st, sizeof(a->next));
}

int card_applet_reset(struct card_applet *a)
{
	size_t len = 0;
	int r;

	a->chaining = false;
	a->chain_len = 0;
	OPENSSL_cleanse(&a->st, sizeof(a->st));
	OPENSSL_cleanse(&a->next, sizeof(a->next));
	r = a->ee.load(a->ee.ctx, a->img, sizeof(a->img), &len);
	if (r == CE_NOT_FOUND)
		return 0; /* blank card */
	if (r == 0)
		r = card_state_decode(a->img, len, &a->st);
	OPENSSL_cleanse(a->img, sizeof(a->img));
	a->persisted_time_ms = a->st.time_ms;
	return r;
}

int card_applet_init(struct card_applet *a, const struct card_eeprom *ee)
{
	memset(a, 0, sizeof(*a));
	if (!ee || !ee->load || !ee->store)
		return CE_ARG;
	a->ee = *ee;
	return card_applet_reset(a);
}

void card_applet_wipe(struct card_applet *a)
{
	if (a)
		OPENSSL_cleanse(a, sizeof(*a));
}

/* ------------------------------------------------------------------ crypto */

static int hmac16(const uint8_t k_card[CARD_KEY_BYTES], const char *label, uint64_t v, uint8_t out[16])
{
	uint8_t msg[64], mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t n = strlen(label);
	struct wbuf w;

	wbuf_init(&w, msg, sizeof(msg));
	wbuf_bytes(&w, label, n);
	wbuf_u64(&w, v);
	if (wbuf_status(&w) != 0)
		return CE_INTERNAL;
	if (!HMAC(EVP_sha256(), k_card, CARD_KEY_BYTES, msg, w.len, mac, &mac_len) || mac_len < 16) {
		OPENSSL_cleanse(mac, sizeof(mac));
		return CE_CRYPTO;
	}
	memcpy(out, mac, 16);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

int card_pairing_key(const uint8_t k_card[CARD_KEY_BYTES], uint64_t stb_id, uint8_t out[CARD_PAIR_KEY_BYTES])
{
	return hmac16(k_card, "castellan pairing key", stb_id, out);
}

int card_erase_token(const uint8_t k_card[CARD_KEY_BYTES], uint64_t serial, uint8_t out[CARD_TOKEN_BYTES])
{
	return hmac16(k_card, "castellan card erase", serial, out);
}

/* One AES-128-ECB block (the last stage of a key ladder; crypto/aead.h). */
static int aes_block(int enc, const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	return crypto_aes_block(enc, key, 16, in, out);
}

int card_paired_cw_open(const uint8_t k_pair[CARD_PAIR_KEY_BYTES], const uint8_t blk[16], uint8_t out[16])
{
	return aes_block(0, k_pair, blk, out);
}

/* ------------------------------------------------------------------- INFO */

static size_t cmd_info(struct card_applet *a, uint8_t *resp)
{
	const struct card_state *st = &a->st;
	struct wbuf w;
	uint8_t flags = 0;

	if (st->protect)
		flags |= 0x01;
	if (st->block != CARD_BLOCK_NONE)
		flags |= 0x02;
	if (st->paired_stb_id != 0)
		flags |= 0x04;
	if (st->pair_mode == CARD_PAIR_CHIP)
		flags |= 0x08;
	wbuf_init(&w, resp, CARD_INFO_BYTES);
	wbuf_u8(&w, INFO_VERSION);
	wbuf_u8(&w, st->life);
	wbuf_u8(&w, flags);
	wbuf_u16(&w, st->ca_system_id);
	wbuf_u64(&w, st->serial);
	wbuf_u32(&w, st->packages);
	wbuf_u64(&w, st->start_s);
	wbuf_u64(&w, st->finish_s);
	wbuf_u32(&w, st->last_seq);
	wbuf_u64(&w, st->time_ms);
	wbuf_u64(&w, st->blocked_until_ms);
	wbuf_u64(&w, st->paired_stb_id);
	wbuf_u8(&w, st->max_channels);
	wbuf_u32(&w, st->window_s);
	wbuf_u32(&w, st->block_s);
	wbuf_u8(&w, st->nchan);
	wbuf_u8(&w, st->nkeys);
	return wbuf_status(&w) == 0 ? w.len : 0;
}

int card_info_parse(const uint8_t *data, size_t len, struct card_info *o)
{
	uint8_t flags = 0;
	struct cur c;

	memset(o, 0, sizeof(*o));
	cur_init(&c, data, len);
	cur_u8(&c, &o->version);
	cur_u8(&c, &o->life);
	cur_u8(&c, &flags);
	cur_u16(&c, &o->ca_system_id);
	cur_u64(&c, &o->serial);
	cur_u32(&c, &o->packages);
	cur_u64(&c, &o->start_s);
	cur_u64(&c, &o->finish_s);
	cur_u32(&c, &o->last_seq);
	cur_u64(&c, &o->time_ms);
	cur_u64(&c, &o->blocked_until_ms);
	cur_u64(&c, &o->paired_stb_id);
	cur_u8(&c, &o->max_channels);
	cur_u32(&c, &o->window_s);
	cur_u32(&c, &o->block_s);
	cur_u8(&c, &o->nchan);
	cur_u8(&c, &o->nkeys);
	if (c.err == 0 && o->version != INFO_VERSION)
		cur_fail(&c, CE_UNSUPPORTED);
	o->protect = flags & 0x01;
	o->blocked = flags & 0x02;
	o->paired = flags & 0x04;
	o->pair_chip = flags & 0x08;
	return cur_end(&c);
}

/* -------------------------------------------------------------------- ECM */

static const struct pkg_key *find_key(const struct card_state *st, uint32_t epoch, uint32_t pkgs)
{
	for (size_t i = 0; i < st->nkeys; i++)
		if (st->keys[i].epoch == epoch && (pkgs & (1u << st->keys[i].pkg)))
			return &st->keys[i];
	return NULL;
}

/* Request counter on a.next at ECM time t_ms: 0, or CE_LIMIT (next blocked). */
static int counter_serve(struct card_state *n, uint16_t ecm_id, uint64_t t_ms, bool *added)
{
	uint64_t window_ms = (uint64_t)n->window_s * 1000u;
	size_t keep = 0;

	*added = false;
	for (size_t i = 0; i < n->nchan; i++) /* slide the window */
		if (n->chan[i].last_ms + window_ms >= t_ms || n->chan[i].last_ms > t_ms)
			n->chan[keep++] = n->chan[i];
	*added = keep != n->nchan; /* pruning is a change worth writing */
	n->nchan = (uint8_t)keep;
	for (size_t i = 0; i < n->nchan; i++) {
		if (n->chan[i].ecm_id == ecm_id) {
			if (t_ms > n->chan[i].last_ms)
				n->chan[i].last_ms = t_ms;
			return 0;
		}
	}
	if (n->nchan >= n->max_channels || n->nchan >= CARD_MAX_CHANNELS) {
		n->block = CARD_BLOCK_COUNTER;
		n->blocked_until_ms = t_ms + (uint64_t)n->block_s * 1000u;
		n->nchan = 0;
		memset(n->chan, 0, sizeof(n->chan));
		return CE_LIMIT;
	}
	n->chan[n->nchan].ecm_id = ecm_id;
	n->chan[n->nchan].last_ms = t_ms;
	n->nchan++;
	*added = true;
	return 0;
}

static int cmd_ecm(struct card_applet *a, const uint8_t *sec, size_t len, uint8_t *resp, size_t *rlen)
{
	const struct card_state *st = &a->st;
	struct card_state *n = &a->next;
	const struct pkg_key *key;
	struct ecm_view v;
	struct ecm_cws cws;
	struct wbuf w;
	uint8_t blk[16];
	bool unblocked = false, added = false;
	int r;

	*rlen = 0;
	memset(&cws, 0, sizeof(cws));
	if (st->life != CARD_LIFE_PERSONALIZED)
		return CE_STATE;
	if ((r = ecm_parse(sec, len, &v)) != 0)
		return r;
	if (v.ca_system_id != st->ca_system_id)
		return CE_NOT_FOUND;
	if (st->block == CARD_BLOCK_HEADEND)
		return CE_BLOCKED;
	if (st->block == CARD_BLOCK_COUNTER) {
		if (v.timestamp_ms < st->blocked_until_ms)
			return CE_BLOCKED;
		unblocked = true; /* the day is over: confirmed once the ECM authenticates */
	}
	if (v.timestamp_ms / 1000u < st->start_s || v.timestamp_ms / 1000u > st->finish_s)
		return CE_EXPIRED;
	if (v.timestamp_ms + CARD_REPLAY_TOLERANCE_MS < st->time_ms)
		return CE_REPLAY;
	if ((v.package_mask & st->packages) == 0)
		return CE_NOT_ENTITLED;
	if ((key = find_key(st, v.epoch, v.package_mask & st->packages)) == NULL)
		return CE_NO_KEY;
	if ((r = ecm_open(&v, key, &cws)) != 0)
		goto out;

	begin(a);
	if (unblocked) {
		n->block = CARD_BLOCK_NONE;
		n->blocked_until_ms = 0;
	}
	if (v.timestamp_ms > n->time_ms)
		n->time_ms = v.timestamp_ms;
	r = counter_serve(n, v.ecm_id, v.timestamp_ms, &added);
	if (r == CE_LIMIT) {
		int wr = commit(a);

		r = wr != 0 ? wr : CE_LIMIT;
		goto out;
	}
	if (unblocked || added || n->time_ms >= a->persisted_time_ms + CARD_PERSIST_INTERVAL_MS) {
		if ((r = commit(a)) != 0)
			goto out;
	} else {
		/* card time and channel refresh live in RAM until the next write */
		memcpy(&a->st, n, sizeof(a->st));
	}

	wbuf_init(&w, resp, CARD_CW_RESP_BYTES);
	wbuf_u8(&w, st->paired_stb_id ? CARD_CW_PAIRED : CARD_CW_CLEAR);
	wbuf_u8(&w, (uint8_t)v.alg);
	wbuf_u8(&w, cws.cw_mask);
	wbuf_u8(&w, (uint8_t)cws.cw_len);
	for (int i = 0; i < 2; i++) {
		memset(blk, 0, sizeof(blk));
		if (cws.cw_len <= sizeof(blk))
			memcpy(blk, i == 0 ? cws.even : cws.odd, cws.cw_len);
		if (st->paired_stb_id && (r = aes_block(1, st->k_pair, blk, blk)) != 0)
			goto out;
		wbuf_bytes(&w, blk, sizeof(blk));
	}
	if ((r = wbuf_status(&w)) != 0)
		goto out;
	*rlen = w.len;
	r = 0;
out:
	OPENSSL_cleanse(blk, sizeof(blk));
	ecm_cws_wipe(&cws);
	return r;
}

/* -------------------------------------------------------------------- EMM */

static int cmd_emm(struct card_applet *a, const uint8_t *sec, size_t len)
{
	const struct card_state *st = &a->st;
	struct card_state *n = &a->next;
	struct emm_content *c = &a->emc;
	struct emm_view v;
	int r;

	if (st->life != CARD_LIFE_PERSONALIZED)
		return CE_STATE;
	if ((r = emm_parse(sec, len, st->serial, &v)) != 0)
		return r;
	if (v.ca_system_id != st->ca_system_id)
		return CE_NOT_FOUND;
	if ((r = emm_open(&v, st->k_card, c)) != 0)
		return r;
	if (v.seq <= st->last_seq) {
		r = CE_REPLAY;
		goto out;
	}
	if (c->nkeys > CARD_MAX_KEYS) {
		r = CE_LIMIT;
		goto out;
	}
	begin(a);
	n->last_seq = v.seq;
	if (v.timestamp_ms > n->time_ms)
		n->time_ms = v.timestamp_ms;
	if (c->has_grant) {
		OPENSSL_cleanse(n->keys, sizeof(n->keys));
		n->packages = c->grant.packages;
		n->start_s = c->grant.start_s;
		n->finish_s = c->grant.finish_s;
		n->nkeys = (uint8_t)c->nkeys;
		memcpy(n->keys, c->keys, c->nkeys * sizeof(c->keys[0]));
	}
	if (c->cmds & EMM_CMD_BLOCK) {
		n->block = CARD_BLOCK_HEADEND;
		n->blocked_until_ms = 0;
	}
	if (c->cmds & EMM_CMD_UNBLOCK) {
		n->block = CARD_BLOCK_NONE;
		n->blocked_until_ms = 0;
		n->nchan = 0;
	}
	if (c->cmds & EMM_CMD_PAIR) {
		/* with K_pair: bound to one box's chip (the head-end derived it from
		 * that chip's K_v); without: the software stand-in from K_card */
		n->paired_stb_id = c->pair_stb_id;
		n->pair_mode = c->has_pair_key ? CARD_PAIR_CHIP : CARD_PAIR_SOFT;
		if (c->has_pair_key)
			memcpy(n->k_pair, c->pair_key, CARD_PAIR_KEY_BYTES);
		else if ((r = card_pairing_key(n->k_card, n->paired_stb_id, n->k_pair)) != 0)
			goto out;
	}
	if (c->cmds & EMM_CMD_UNPAIR) {
		n->paired_stb_id = 0;
		n->pair_mode = CARD_PAIR_NONE;
		OPENSSL_cleanse(n->k_pair, sizeof(n->k_pair));
	}
	if (c->cmds & EMM_CMD_RESET_COUNTER)
		n->nchan = 0;
	if (c->has_limits) {
		/* new rule, fresh window: channels counted under the old N do not
		 * trip the new one. A running counter block stays (UNBLOCK lifts it). */
		n->max_channels = c->limits.max_channels;
		n->window_s = c->limits.window_s;
		n->block_s = c->limits.block_s;
		n->nchan = 0;
		memset(n->chan, 0, sizeof(n->chan));
	}
	r = commit(a);
out:
	emm_content_wipe(c);
	return r;
}

/* ------------------------------------------------ personalization / erase */

void card_perso_encode(const struct card_perso *p, uint8_t out[CARD_PERSO_BYTES])
{
	struct wbuf w;

	wbuf_init(&w, out, CARD_PERSO_BYTES);
	wbuf_u8(&w, PERSO_VERSION);
	wbuf_u16(&w, p->ca_system_id);
	wbuf_u64(&w, p->serial);
	wbuf_bytes(&w, p->k_card, CARD_KEY_BYTES);
	wbuf_u8(&w, p->max_channels);
	wbuf_u32(&w, p->window_s);
	wbuf_u32(&w, p->block_s);
}

int card_perso_decode(const uint8_t *in, size_t len, struct card_perso *p)
{
	uint8_t ver = 0;
	struct cur c;
	int r;

	memset(p, 0, sizeof(*p));
	cur_init(&c, in, len);
	cur_u8(&c, &ver);
	cur_u16(&c, &p->ca_system_id);
	cur_u64(&c, &p->serial);
	cur_bytes(&c, p->k_card, CARD_KEY_BYTES);
	cur_u8(&c, &p->max_channels);
	cur_u32(&c, &p->window_s);
	cur_u32(&c, &p->block_s);
	if (c.err == 0 && ver != PERSO_VERSION)
		cur_fail(&c, CE_UNSUPPORTED);
	if (c.err == 0 && (p->max_channels == 0 || p->max_channels > CARD_MAX_CHANNELS || p->window_s == 0 ||
			   p->serial == 0))
		cur_fail(&c, CE_RANGE);
	if ((r = cur_end(&c)) != 0)
		OPENSSL_cleanse(p, sizeof(*p));
	return r;
}

static int cmd_personalize(struct card_applet *a, const uint8_t *d, size_t len)
{
	struct card_state *n = &a->next;
	struct card_perso p;
	int r;

	if (a->st.life != CARD_LIFE_BLANK || a->st.protect)
		return CE_STATE;
	if ((r = card_perso_decode(d, len, &p)) != 0)
		return r == CE_UNSUPPORTED ? CE_FORMAT : r;
	begin(a);
	memset(n, 0, sizeof(*n));
	n->life = CARD_LIFE_PERSONALIZED;
	n->protect = true;
	n->ca_system_id = p.ca_system_id;
	n->serial = p.serial;
	memcpy(n->k_card, p.k_card, CARD_KEY_BYTES);
	n->max_channels = p.max_channels;
	n->window_s = p.window_s;
	n->block_s = p.block_s;
	OPENSSL_cleanse(&p, sizeof(p));
	return commit(a);
}

static int cmd_erase(struct card_applet *a, const uint8_t *d, size_t len)
{
	uint8_t tok[CARD_TOKEN_BYTES];
	int r;

	if (len != CARD_TOKEN_BYTES)
		return CE_ARG;
	if (a->st.life == CARD_LIFE_BLANK)
		return 0;
	if ((r = card_erase_token(a->st.k_card, a->st.serial, tok)) != 0)
		return r;
	r = CRYPTO_memcmp(tok, d, CARD_TOKEN_BYTES) == 0 ? 0 : CE_MAC;
	OPENSSL_cleanse(tok, sizeof(tok));
	if (r != 0)
		return r;
	begin(a);
	OPENSSL_cleanse(&a->next, sizeof(a->next));
	return commit(a);
}

/* ------------------------------------------------------------------- APDU */

static size_t finish(uint8_t *resp, size_t dlen, uint16_t sw)
{
	resp[dlen] = (uint8_t)(sw >> 8);
	resp[dlen + 1] = (uint8_t)sw;
	return dlen + 2;
}

/* The command header and body of one APDU (parse_apdu). */
struct apdu {
	uint8_t cla, ins, p1, p2;
	const uint8_t *data;
	size_t lc;
};

/* ISO 7816-4 5.1: cases 1-4, short and extended, on the cursor. The header
 * is always set (len >= 4); the return value is the body's status word. */
static uint16_t parse_apdu(const uint8_t *cmd, size_t len, struct apdu *a)
{
	struct cur c;
	size_t body, n;
	uint16_t n16;
	uint8_t b;

	cur_init(&c, cmd, len);
	(void)cur_u8(&c, &a->cla);
	(void)cur_u8(&c, &a->ins);
	(void)cur_u8(&c, &a->p1);
	(void)cur_u8(&c, &a->p2);
	a->data = NULL;
	a->lc = 0;
	body = cur_left(&c);
	if (c.err != 0)
		return SW_WRONG_LENGTH;
	if (body == 0 || body == 1)
		return SW_OK; /* case 1, case 2 short */
	(void)cur_u8(&c, &b);
	if (b != 0) { /* short Lc */
		n = b;
		if (body != 1 + n && body != 2 + n)
			return SW_WRONG_LENGTH;
	} else {
		if (body == 3)
			return SW_OK; /* case 2 extended: 00 Le1 Le2 */
		if (body < 3)
			return SW_WRONG_LENGTH;
		(void)cur_u16(&c, &n16);
		n = n16;
		if (n == 0 || (body != 3 + n && body != 5 + n))
			return SW_WRONG_LENGTH;
	}
	if (!(a->data = cur_ptr(&c, n)))
		return SW_WRONG_LENGTH;
	a->lc = n;
	return SW_OK;
}

size_t card_applet_apdu(struct card_applet *a, const uint8_t *cmd, size_t len, uint8_t *resp, size_t cap)
{
	const uint8_t *data;
	size_t lc, rlen = 0;
	struct apdu ap;
	uint16_t sw;
	uint8_t cla, ins;
	int r;

	if (!resp || cap < CARD_MAX_RESP + 2)
		return 0;
	if (!a || !cmd || len < 4)
		return finish(resp, 0, SW_WRONG_LENGTH);
	sw = parse_apdu(cmd, len, &ap);
	cla = ap.cla;
	ins = ap.ins;
	data = ap.data;
	lc = ap.lc;
	if ((cla & (uint8_t)~CARD_CLA_CHAIN) != CARD_CLA) {
		a->chaining = false;
		return finish(resp, 0, SW_UNKNOWN_CLA);
	}
	if (sw != SW_OK) {
		a->chaining = false;
		return finish(resp, 0, sw);
	}
	if (a->chaining && ins != a->chain_ins) {
		a->chaining = false;
		return finish(resp, 0, SW_CHAIN);
	}
	if (cla & CARD_CLA_CHAIN) {
		if (ins != CARD_INS_ECM && ins != CARD_INS_EMM)
			return finish(resp, 0, SW_CHAIN);
		if (!a->chaining) {
			a->chaining = true;
			a->chain_ins = ins;
			a->chain_len = 0;
		}
		if (lc > sizeof(a->data) - a->chain_len) {
			a->chaining = false;
			return finish(resp, 0, SW_WRONG_LENGTH);
		}
		memcpy(a->data + a->chain_len, data, lc);
		a->chain_len += lc;
		return finish(resp, 0, SW_OK);
	}
	if (a->chaining) { /* last part */
		a->chaining = false;
		if (lc > sizeof(a->data) - a->chain_len)
			return finish(resp, 0, SW_WRONG_LENGTH);
		memcpy(a->data + a->chain_len, data, lc);
		lc += a->chain_len;
		data = a->data;
	}
	if (ap.p1 != 0 || ap.p2 != 0)
		return finish(resp, 0, SW_WRONG_P1P2);

	switch (ins) {
	case CARD_INS_INFO:
		if (lc != 0)
			return finish(resp, 0, SW_WRONG_LENGTH);
		rlen = cmd_info(a, resp);
		return finish(resp, rlen, rlen ? SW_OK : SW_INTERNAL);
	case CARD_INS_ECM:
		r = lc ? cmd_ecm(a, data, lc, resp, &rlen) : CE_ARG;
		if (r == CE_LIMIT)
			return finish(resp, 0, SW_COUNTER);
		break;
	case CARD_INS_EMM:
		r = lc ? cmd_emm(a, data, lc) : CE_ARG;
		break;
	case CARD_INS_PERSONALIZE:
		r = lc == CARD_PERSO_BYTES ? cmd_personalize(a, data, lc) : CE_ARG;
		break;
	case CARD_INS_ERASE:
		r = cmd_erase(a, data, lc);
		break;
	default:
		return finish(resp, 0, SW_UNKNOWN_INS);
	}
	if (data == a->data)
		OPENSSL_cleanse(a->data, lc);
	if (r != 0)
		rlen = 0;
	return finish(resp, rlen, card_err_to_sw(r));
}
