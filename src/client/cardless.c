/*
 * cardless.c - the cardless CAS client (client.h): package keys from an
 * entitlement file, ECMs of Castellan format v2 (ecm.h).
 *
 * ECM processing, in this order (first failure wins, no state changes):
 *   1. box time within [start, finish] of the entitlement  -> CE_EXPIRED
 *   2. identical to the last ECM accepted for (service, table_id) -> 0, no work
 *   3. ecm_parse                                           -> its code
 *   4. CA_system_id is ours                                -> CE_NOT_FOUND
 *   5. ECM time within [start, finish] of the entitlement  -> CE_EXPIRED
 *   6. ECM time not > CL_FUTURE_MS ahead of the box clock, not
 *      > CL_PAST_MS behind it (so a restart or an evicted replay slot
 *      does not let old ECMs in), not
 *      > CL_REPLAY_TOLERANCE_MS older than the newest ECM
 *      accepted for its ECM_id                             -> CE_REPLAY
 *   7. the ECM's packages (mask and extended ids) meet ours -> CE_NOT_ENTITLED
 *   8. we hold K_pkg(epoch, one of those packages)         -> CE_NO_KEY
 *   9. ecm_open (package MAC of the ECM, unwrap, GCM)      -> CE_MAC
 *  10. host->load_cw for each CW present; then record the ECM time and
 *      the section as accepted.
 * Checks 1-8 are conveniences that give a box a reason: the security rests
 * on 8-9 (no key, no CW), as tests/cas "patched client" shows.
 *
 * Card mode (cardless_client_new_card): the entitlement and keys come from
 * EMMs (emm.h) opened with the card's K_card. Before step 1: blocked card,
 * or paired to another STB id -> CE_BLOCKED; no entitlement EMM yet ->
 * CE_NOT_ENTITLED. EMM processing: parse (other card or CA system:
 * CE_NOT_FOUND) -> emm_open (CE_MAC) -> sequence number (CE_REPLAY) ->
 * apply to a copy of the state -> write the state file if any (atomic,
 * 0600; on failure nothing changes) -> commit. A refused EMM changes nothing.
 *
 * Normative references: docs/client-api.md, docs/ecm-format.md.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "cas/card.h"
#include "cas/client.h"
#include "client/cardless.h"
#include "cas/ecm.h"
#include "cas/emm.h"
#include "cas/entitlement.h"
#include "lib/log.h"
#include "lib/util.h"

#define CL_REPLAY_SLOTS 64
#define CL_LAST_SLOTS 8
#define CL_REPLAY_TOLERANCE_MS (60u * 1000u)
#define CL_FUTURE_MS (10u * 60u * 1000u)
#define CL_PAST_MS (10u * 60u * 1000u) /* the box clock's tolerance, backwards */

struct cl_replay {
	bool used;
	uint16_t ecm_id;
	uint64_t newest_ms; /* newest accepted ECM timestamp */
};

struct cl_last {
	bool used;
	uint16_t service_id;
	uint8_t table_id;
	size_t len;
	uint8_t sec[ECM_MAX_SECTION];
};

struct cardless {
	struct entitlement ent; /* holds package keys: wiped on destroy */
	/* Card mode: ent is st.ent's copy, kept in step by cl_emm. */
	bool card_mode;
	struct card_identity card;   /* K_card: wiped on destroy */
	struct emm_card_state st;
	char *state_path;            /* NULL: state in memory only */
	uint16_t last_service;       /* for the anti-sharing counter */
	struct cl_replay replay[CL_REPLAY_SLOTS];
	size_t replay_next;     /* round-robin eviction */
	struct cl_last last[CL_LAST_SLOTS];
	size_t last_next;
	const struct cas_host *osd_host; /* set_host: where EMM-borne OSD items go */
};

static uint16_t cl_ca_system_id(void *self)
{
	return ((struct cardless *)self)->ent.ca_system_id;
}

static struct cl_replay *replay_find(struct cardless *cl, uint16_t ecm_id)
{
	for (size_t i = 0; i < CL_REPLAY_SLOTS; i++)
		if (cl->replay[i].used && cl->replay[i].ecm_id == ecm_id)
			return &cl->replay[i];
	return NULL;
}

static struct cl_last *last_find(struct cardless *cl, uint16_t service_id, uint8_t table_id)
{
	for (size_t i = 0; i < CL_LAST_SLOTS; i++)
		if (cl->last[i].used && cl->last[i].service_id == service_id && cl->last[i].table_id == table_id)
			return &cl->last[i];
	return NULL;
}

static void remember(struct cardless *cl, uint16_t service_id, const struct ecm_view *v, const uint8_t *sec,
	size_t len)
{
	struct cl_replay *rp = replay_find(cl, v->ecm_id);
	struct cl_last *l = last_find(cl, service_id, v->table_id);

	if (!rp) {
		rp = &cl->replay[cl->replay_next];
		cl->replay_next = (cl->replay_next + 1) % CL_REPLAY_SLOTS;
		rp->used = true;
		rp->ecm_id = v->ecm_id;
		rp->newest_ms = 0;
	}
	if (v->timestamp_ms > rp->newest_ms)
		rp->newest_ms = v->timestamp_ms;
	if (!l) {
		l = &cl->last[cl->last_next];
		cl->last_next = (cl->last_next + 1) % CL_LAST_SLOTS;
	}
	l->used = true;
	l->service_id = service_id;
	l->table_id = v->table_id;
	l->len = len;
	memcpy(l->sec, sec, len);
}

static int cl_ecm(void *self, const struct cas_host *host, uint16_t service_id, const uint8_t *sec, size_t len)
{
	struct cardless *cl = self;
	const struct entitlement *e = &cl->ent;
	const struct pkg_key *key = NULL;
	struct cl_replay *rp;
	struct cl_last *l;
	struct ecm_view v;
	struct ecm_cws cws;
	uint64_t now_ms, ts_s;
	int r;

	memset(&cws, 0, sizeof(cws));
	if (!host || !host->now_ms || !sec)
		return CE_ARG;
	if (!host->load_cw)
		return CE_UNSUPPORTED; /* key-ladder hosts: not yet */
	if (cl->card_mode) {
		if (cl->st.blocked || (cl->st.paired_stb_id && cl->st.paired_stb_id != cl->card.stb_id))
			return CE_BLOCKED;
		if (!cl->st.has_ent)
			return CE_NOT_ENTITLED;
	}
	now_ms = host->now_ms(host->ctx);
	if (now_ms / 1000u < e->start_s || now_ms / 1000u > e->finish_s)
		return CE_EXPIRED;
	if (len >= 1 && len <= ECM_MAX_SECTION && (l = last_find(cl, service_id, sec[0])) != NULL && l->len == len &&
	    memcmp(l->sec, sec, len) == 0)
		return 0;
	if ((r = ecm_parse(sec, len, &v)) != 0)
		return r;
	if (v.ca_system_id != e->ca_system_id)
		return CE_NOT_FOUND;
	ts_s = v.timestamp_ms / 1000u;
	if (ts_s < e->start_s || ts_s > e->finish_s)
		return CE_EXPIRED;
	if (v.timestamp_ms > now_ms + CL_FUTURE_MS || v.timestamp_ms + CL_PAST_MS < now_ms)
		return CE_REPLAY;
	rp = replay_find(cl, v.ecm_id);
	if (rp && v.timestamp_ms + CL_REPLAY_TOLERANCE_MS < rp->newest_ms)
		return CE_REPLAY;
	if ((r = ecm_pick_key(&v, e, &key)) != 0)
		return r;
	if ((r = ecm_open(&v, key, &cws)) != 0)
		goto out;
	if (cws.cw_mask & ECM_HAS_EVEN) {
		r = host->load_cw(host->ctx, service_id, v.alg, CW_EVEN, cws.even, cws.cw_len);
		if (r != 0)
			goto out;
	}
	if (cws.cw_mask & ECM_HAS_ODD) {
		r = host->load_cw(host->ctx, service_id, v.alg, CW_ODD, cws.odd, cws.cw_len);
		if (r != 0)
			goto out;
	}
	remember(cl, service_id, &v, sec, len);
	/* the fingerprint block was covered by the MAC ecm_open just checked */
	if (cas_client_deliver_fp(host, service_id, &v, cl->card_mode ? cl->card.serial : e->card_serial,
		    cl->card_mode ? cl->card.stb_id : 0, cl->card_mode ? cl->card.key : NULL) != 0)
		LOG_WARN("cardless", "service %u: ECM fingerprint block unreadable", service_id);
	if (cl->card_mode && service_id != cl->last_service) {
		cl->last_service = service_id;
		if (cl->st.zap_count < UINT32_MAX)
			cl->st.zap_count++;
	}
	r = 0;
out:
	ecm_cws_wipe(&cws);
	return r;
}

static int save_state(const struct cardless *cl, const struct emm_card_state *st)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (!cl->state_path)
		return 0;
	if ((r = emm_state_encode(st, cl->card.serial, cl->card.key, &buf, &len)) != 0)
		return r;
	r = file_write_atomic(cl->state_path, buf, len, 0600);
	secret_free(buf, len);
	return r;
}

/* The OSD items of an applied EMM to the host (client.h): fingerprints
 * for every service, messages until their expiry. */
static void deliver_osd(const struct cardless *cl, const struct emm_content *c)
{
	const struct cas_host *h = cl->osd_host;

	if (!h)
		return;
	for (size_t i = 0; i < c->nosd; i++) {
		const struct osd_item *it = &c->osd[i];

		if (it->kind == OSD_KIND_FINGERPRINT && h->on_fingerprint) {
			char text[64];

			if (osd_fp_text(&it->u.fp, cl->card.serial, cl->card.stb_id, cl->card.key, text, sizeof(text)) == 0)
				h->on_fingerprint(h->ctx, it->u.fp.service, &it->u.fp, text);
		} else if (it->kind == OSD_KIND_MESSAGE && h->on_message) {
			uint64_t now_s = h->now_ms ? h->now_ms(h->ctx) / 1000u : 0;

			if (it->u.msg.expiry_s >= now_s)
				h->on_message(h->ctx, &it->u.msg);
		}
	}
}

static void cl_set_host(void *self, const struct cas_host *host)
{
	((struct cardless *)self)->osd_host = host;
}

static int cl_emm(void *self, const uint8_t *sec, size_t len)
{
	struct cardless *cl = self;
	struct emm_card_state *next = NULL;
	struct emm_content *c = NULL;
	struct emm_view v;
	int r;

	if (!cl->card_mode)
		return CE_UNSUPPORTED;
	if (!sec)
		return CE_ARG;
	if ((r = emm_parse(sec, len, cl->card.serial, &v)) != 0)
		return r;
	if (v.ca_system_id != cl->card.ca_system_id)
		return CE_NOT_FOUND;
	c = malloc(sizeof(*c));
	next = malloc(sizeof(*next));
	if (!c || !next) {
		r = CE_NOMEM;
		goto out;
	}
	if ((r = emm_open(&v, cl->card.key, c)) != 0)
		goto out;
	/* authenticated, and the sequence number this card applied last: the
	 * carousel repeating the same EMM, not a replay (docs/client-api.md) */
	if (v.seq == cl->st.last_seq) {
		r = CE_EXISTS;
		goto out;
	}
	memcpy(next, &cl->st, sizeof(*next));
	if ((r = emm_state_apply(next, &v, c)) != 0)
		goto out;
	if ((r = save_state(cl, next)) != 0) {
		LOG_WARN("cardless", "card %llu: cannot write state %s: %s (EMM seq %u not applied)",
			(unsigned long long)cl->card.serial, cl->state_path, err_str(r), v.seq);
		goto out;
	}
	memcpy(&cl->st, next, sizeof(cl->st));
	memcpy(&cl->ent, &cl->st.ent, sizeof(cl->ent));
	/* the entitlement may have changed: forget the identical-ECM shortcut */
	memset(cl->last, 0, sizeof(cl->last));
	deliver_osd(cl, c);
	r = 0;
out:
	if (next) {
		emm_state_wipe(next);
		free(next);
	}
	if (c) {
		emm_content_wipe(c);
		free(c);
	}
	return r;
}

static void cl_destroy(void *self)
{
	struct cardless *cl = self;

	if (!cl)
		return;
	free(cl->state_path);
	OPENSSL_cleanse(cl, sizeof(*cl));
	free(cl);
}

static const struct cas_client_ops cardless_ops = {
	.name = "cardless",
	.ca_system_id = cl_ca_system_id,
	.ecm = cl_ecm,
	.emm = cl_emm,
	.destroy = cl_destroy,
	.set_host = cl_set_host,
};

int cardless_client_from(const struct entitlement *e, struct cas_client *out)
{
	struct cardless *cl;

	memset(out, 0, sizeof(*out));
	if (!e || e->nkeys > ENT_MAX_KEYS)
		return CE_ARG;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return CE_NOMEM;
	memcpy(&cl->ent, e, sizeof(*e));
	out->ops = &cardless_ops;
	out->self = cl;
	return 0;
}

int cardless_client_new(const char *entitlement_path, struct cas_client *out)
{
	struct entitlement *e;
	int r;

	memset(out, 0, sizeof(*out));
	e = malloc(sizeof(*e));
	if (!e)
		return CE_NOMEM;
	r = entitlement_load(entitlement_path, e);
	if (r == 0)
		r = cardless_client_from(e, out);
	entitlement_wipe(e);
	free(e);
	return r;
}

int cardless_client_new_card(const char *card_path, const char *state_path, struct cas_client *out)
{
	struct cardless *cl;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (!card_path)
		return CE_ARG;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return CE_NOMEM;
	cl->card_mode = true;
	if ((r = card_load(card_path, &cl->card)) != 0)
		goto fail;
	if (state_path) {
		cl->state_path = strdup(state_path);
		if (!cl->state_path) {
			r = CE_NOMEM;
			goto fail;
		}
		r = file_read_all(state_path, 64 * 1024, &buf, &len);
		if (r == 0) {
			r = emm_state_decode(buf, len, cl->card.serial, cl->card.key, &cl->st);
			secret_free(buf, len);
			if (r != 0)
				goto fail; /* altered or another card's: refuse rather than reset seq */
		} else if (r != CE_NOT_FOUND) {
			goto fail;
		}
	}
	cl->st.ent.card_serial = cl->card.serial;
	cl->st.ent.ca_system_id = cl->card.ca_system_id;
	memcpy(&cl->ent, &cl->st.ent, sizeof(cl->ent));
	out->ops = &cardless_ops;
	out->self = cl;
	return 0;
fail:
	cl_destroy(cl);
	return r;
}

int cardless_client_state(const struct cas_client *c, struct emm_card_state *out)
{
	const struct cardless *cl;

	if (!c || !out || c->ops != &cardless_ops)
		return CE_ARG;
	cl = c->self;
	if (!cl->card_mode)
		return CE_STATE;
	memcpy(out, &cl->st, sizeof(*out));
	return 0;
}
