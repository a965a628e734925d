/*
 * chip_client.c - the ladder client: the cardless client of client/cardless.c
 * rebuilt for a box with a secure chip. Its entitlement holds protected
 * package keys only (ek2 = E_{K_v(chip)}(K_pkg): the CAS vendor computes
 * them from its per-chip key file), so this code can check an ECM and pick
 * the chain, but cannot open it: the chip does (CHIP_CHAIN_ECM, chip.h).
 *
 * Checks, in order (first failure wins, nothing remembered unless all pass):
 * box time in [start, finish] -> parse -> CA_system_id -> ECM time in
 * [start, finish] -> not > 10 min ahead of the box nor > 10 min behind it,
 * not > 60 s older than
 * the newest accepted for its ECM_id -> package mask -> a protected key for
 * (epoch, package) -> host->load_ecw even / odd (the chip's GCM check is
 * the authentication: CE_MAC) -> remember the ECM time. A card blocked by
 * an EMM: CE_BLOCKED before any of it.
 *
 * EMMs (a vendor EMM, docs/emm-format.md "Vendor EMMs"): the client cannot
 * open one either; the host's open_emm (the chip's OPEN_EMM, set on a chip
 * box by chip_link_host) does, and gives back the header, the grant and
 * commands, the package keys re-protected for this chip (the form this
 * client holds) and the OSD items. Then, as the cardless client: CA_system_id
 * -> sequence number above the last (the last again: CE_EXISTS, below it:
 * CE_REPLAY) -> emm_state_apply (a grant
 * replaces the entitlement and its keys, BLOCK/UNBLOCK) -> the OSD items to
 * the host set by set_host: on_fingerprint (service 0: every service; the
 * text is the serial, as for an ECM fingerprint: the encoded covert code
 * needs K_card, which a chip box does not hold) and on_message (unexpired).
 * Without open_emm (or set_host) emm() is CE_UNSUPPORTED, as before.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "client/chip_client.h"
#include "cas/client.h"
#include "cas/ecm.h"
#include "cas/emm.h"
#include "cas/entitlement.h"
#include "lib/cursor.h"
#include "stb/chip.h"

#define LC_REPLAY_SLOTS 64
#define LC_REPLAY_TOLERANCE_MS (60u * 1000u)
#define LC_FUTURE_MS (10u * 60u * 1000u)
#define LC_PAST_MS (10u * 60u * 1000u) /* the box clock's tolerance, backwards */

struct ladder_client {
	struct emm_card_state st; /* st.ent: keys[].key are ek2 values, not package keys */
	const struct cas_host *osd_host; /* set_host: open_emm and where EMM-borne OSD items go */
	struct {
		bool used;
		uint16_t ecm_id;
		uint64_t newest_ms;
	} replay[LC_REPLAY_SLOTS];
	size_t replay_next;
};

size_t ladder_client_state_bytes(void)
{
	return sizeof(struct ladder_client);
}

static uint16_t lc_ca_system_id(void *self)
{
	return ((struct ladder_client *)self)->st.ent.ca_system_id;
}

static int replay_slot(struct ladder_client *lc, uint16_t ecm_id)
{
	for (int i = 0; i < LC_REPLAY_SLOTS; i++)
		if (lc->replay[i].used && lc->replay[i].ecm_id == ecm_id)
			return i;
	return -1;
}

/* The CHIP_CHAIN_ECM chain for one protected key: the whole section goes
 * to the chip, which checks the package's MAC of it (chip.h). */
static int build_chain(const struct ecm_view *v, const struct pkg_key *k, const uint8_t *sec, size_t len,
	uint8_t *out, size_t cap, size_t *chain_len)
{
	struct wbuf w;

	if (!ecm_wrap_of(v, k->pkg))
		return CE_NOT_ENTITLED;
	if (len > ECM_MAX_SECTION)
		return CE_FORMAT;
	wbuf_init(&w, out, cap);
	wbuf_u8(&w, CHIP_CHAIN_ECM);
	wbuf_bytes(&w, k->key, 16);
	wbuf_u16(&w, k->pkg);
	wbuf_u16(&w, (uint16_t)len);
	wbuf_bytes(&w, sec, len);
	*chain_len = w.len;
	return wbuf_status(&w);
}

static int lc_ecm(void *self, const struct cas_host *host, uint16_t service_id, const uint8_t *sec, size_t len)
{
	struct ladder_client *lc = self;
	const struct entitlement *e = &lc->st.ent;
	const struct pkg_key *key = NULL;
	uint8_t chain[CHIP_MAX_CHAIN];
	size_t chain_len = 0;
	struct ecm_view v;
	uint64_t now_ms, ts_s;
	int slot, r;

	if (!host || !host->now_ms || !sec)
		return CE_ARG;
	if (!host->load_ecw)
		return CE_UNSUPPORTED; /* this client has no clear-CW path at all */
	if (lc->st.blocked)
		return CE_BLOCKED;
	now_ms = host->now_ms(host->ctx);
	if (now_ms / 1000u < e->start_s || now_ms / 1000u > e->finish_s)
		return CE_EXPIRED;
	if ((r = ecm_parse(sec, len, &v)) != 0)
		return r;
	if (v.ca_system_id != e->ca_system_id)
		return CE_NOT_FOUND;
	ts_s = v.timestamp_ms / 1000u;
	if (ts_s < e->start_s || ts_s > e->finish_s)
		return CE_EXPIRED;
	if (v.timestamp_ms > now_ms + LC_FUTURE_MS || v.timestamp_ms + LC_PAST_MS < now_ms)
		return CE_REPLAY;
	slot = replay_slot(lc, v.ecm_id);
	if (slot >= 0 && v.timestamp_ms + LC_REPLAY_TOLERANCE_MS < lc->replay[slot].newest_ms)
		return CE_REPLAY;
	if ((r = ecm_pick_key(&v, e, &key)) != 0)
		return r;
	if ((r = build_chain(&v, key, sec, len, chain, sizeof(chain), &chain_len)) != 0)
		return r;
	if ((v.cw_mask & ECM_HAS_EVEN) &&
	    (r = host->load_ecw(host->ctx, service_id, v.alg, CW_EVEN, chain, chain_len)) != 0)
		return r;
	if ((v.cw_mask & ECM_HAS_ODD) &&
	    (r = host->load_ecw(host->ctx, service_id, v.alg, CW_ODD, chain, chain_len)) != 0)
		return r;
	if (slot < 0) {
		slot = (int)lc->replay_next;
		lc->replay_next = (lc->replay_next + 1) % LC_REPLAY_SLOTS;
		lc->replay[slot].used = true;
		lc->replay[slot].ecm_id = v.ecm_id;
		lc->replay[slot].newest_ms = 0;
	}
	if (v.timestamp_ms > lc->replay[slot].newest_ms)
		lc->replay[slot].newest_ms = v.timestamp_ms;
	/* the fingerprint: the chip checks the package MAC (block included)
	 * when it opens the chain, at load_ecw above; a forged or stripped
	 * block fails there and nothing reaches this line */
	(void)cas_client_deliver_fp(host, service_id, &v, e->card_serial, 0, NULL);
	return 0;
}

/* The OSD items of an applied EMM to the host (client.h). */
static void deliver_osd(const struct ladder_client *lc, const struct emm_content *c)
{
	const struct cas_host *h = lc->osd_host;

	for (size_t i = 0; i < c->nosd; i++) {
		const struct osd_item *it = &c->osd[i];

		if (it->kind == OSD_KIND_FINGERPRINT && h->on_fingerprint) {
			char text[64];

			if (osd_fp_text(&it->u.fp, lc->st.ent.card_serial, 0, NULL, text, sizeof(text)) == 0)
				h->on_fingerprint(h->ctx, it->u.fp.service, &it->u.fp, text);
		} else if (it->kind == OSD_KIND_MESSAGE && h->on_message) {
			uint64_t now_s = h->now_ms ? h->now_ms(h->ctx) / 1000u : 0;

			if (it->u.msg.expiry_s >= now_s)
				h->on_message(h->ctx, &it->u.msg);
		}
	}
}

static int lc_emm(void *self, const uint8_t *sec, size_t len)
{
	struct ladder_client *lc = self;
	const struct cas_host *h = lc->osd_host;
	struct emm_content *c;
	struct emm_view v;
	int r;

	if (!h || !h->open_emm)
		return CE_UNSUPPORTED;
	if (!sec)
		return CE_ARG;
	if (!(c = calloc(1, sizeof(*c))))
		return CE_NOMEM;
	if ((r = h->open_emm(h->ctx, sec, len, lc->st.ent.card_serial, &v, c)) != 0)
		goto out;
	if (v.ca_system_id != lc->st.ent.ca_system_id) {
		r = CE_NOT_FOUND;
		goto out;
	}
	if (v.seq == lc->st.last_seq && v.seq != 0) {
		r = CE_EXISTS; /* the carousel repeating the last one: a repeat, not a refusal */
		goto out;
	}
	if ((r = emm_state_apply(&lc->st, &v, c)) != 0)
		goto out;
	deliver_osd(lc, c);
out:
	emm_content_wipe(c);
	free(c);
	return r;
}

static void lc_set_host(void *self, const struct cas_host *host)
{
	((struct ladder_client *)self)->osd_host = host;
}

static void lc_destroy(void *self)
{
	if (!self)
		return;
	OPENSSL_cleanse(self, sizeof(struct ladder_client));
	free(self);
}

static const struct cas_client_ops ladder_ops = {
	.name = "ladder",
	.ca_system_id = lc_ca_system_id,
	.ecm = lc_ecm,
	.emm = lc_emm,
	.destroy = lc_destroy,
	.set_host = lc_set_host,
};

int ladder_client_from(const struct entitlement *protected_ent, struct cas_client *out)
{
	struct ladder_client *lc;

	memset(out, 0, sizeof(*out));
	if (!protected_ent || protected_ent->nkeys > ENT_MAX_KEYS)
		return CE_ARG;
	lc = calloc(1, sizeof(*lc));
	if (!lc)
		return CE_NOMEM;
	memcpy(&lc->st.ent, protected_ent, sizeof(*protected_ent));
	lc->st.has_ent = true;
	out->ops = &ladder_ops;
	out->self = lc;
	return 0;
}
