/*
 * provision.c - `castellan provision`'s product logic (provision.h): a
 * card's grant read from the SMS store and checked, then an entitlement
 * file, a grant EMM or a PAIR EMM issued from it and audited in the
 * store's chain; the card file and --protect, which grant nothing.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "headend/provision.h"
#include "headend/scheduler.h"
#include "cas/card.h"
#include "cas/emm_vendor.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "lib/util.h"
#include "sms/dburi.h"

#define PROV_SUBS_MAX 256

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (!why || cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* "40,41" from a grant's extended ids. */
static void ext_text(const struct emm_grant *g, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < g->next && i < EMM_MAX_EXT_PACKAGES && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%u", i ? "," : "", (unsigned)g->ext[i]);
}

int provision_lookup(struct sms_store *s, uint64_t serial, int64_t now_s, struct provision_grant *out, char *why,
		     size_t why_cap)
{
	struct sms_card *c = malloc(sizeof(*c));
	struct sms_subscription *subs = calloc(PROV_SUBS_MAX, sizeof(*subs));
	struct sched_sub *ss = calloc(PROV_SUBS_MAX, sizeof(*ss));
	char id[24];
	size_t n = 0;
	int64_t next;
	bool bl = false;
	int r;

	say(why, why_cap, "%s", "");
	memset(out, 0, sizeof(*out));
	out->serial = serial;
	if (!c || !subs || !ss) {
		r = CE_NOMEM;
		say(why, why_cap, "out of memory");
		goto out;
	}
	snprintf(id, sizeof(id), "%" PRIu64, serial);
	if ((r = sms_blacklist_check(s, SMS_BL_CARD, id, &bl)) != 0) {
		say(why, why_cap, "card %s: the SMS store: %s", id, err_str(r));
		goto out;
	}
	if (bl) {
		r = CE_BLOCKED;
		say(why, why_cap, "card %s is blacklisted in the SMS: it can never be provisioned", id);
		goto out;
	}
	r = sms_card_get_subs(s, serial, c, subs, PROV_SUBS_MAX, &n);
	if (r == CE_NOT_FOUND) {
		say(why, why_cap, "card %s is not in the SMS: add it and its packages there first "
			"(castellan sms card add, sms subscribe)", id);
		goto out;
	}
	if (r == CE_OVERFLOW)
		r = CE_LIMIT;
	if (r != 0) {
		say(why, why_cap, "card %s: the SMS store: %s", id, err_str(r));
		goto out;
	}
	if (c->chip_id[0]) {
		if ((r = sms_blacklist_check(s, SMS_BL_BOX, c->chip_id, &bl)) != 0) {
			say(why, why_cap, "card %s: the SMS store: %s", id, err_str(r));
			goto out;
		}
		if (bl) {
			r = CE_BLOCKED;
			say(why, why_cap, "card %s is in box %s, blacklisted in the SMS: it can never be provisioned", id,
			    c->chip_id);
			goto out;
		}
	}
	if (c->state != SMS_CARD_ACTIVE) {
		r = CE_STATE;
		say(why, why_cap, "card %s is %s in the SMS, not active: activate it there first", id,
		    c->state == SMS_CARD_BLOCKED ? "blocked" : "retired");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ss[i] = (struct sched_sub){ subs[i].package, subs[i].start, subs[i].finish };
	sched_grant_at(ss, n, now_s, &out->grant, &next);
	if (out->grant.packages == 0 && out->grant.next == 0) {
		r = CE_NOT_ENTITLED;
		say(why, why_cap, "card %s has no package in force in the SMS at %" PRId64
			" (castellan sms subscribe gives it one)", id, now_s);
		goto out;
	}
	out->pair = c->pair;
	memcpy(out->chip_id, c->chip_id, sizeof(out->chip_id));
	r = 0;
out:
	free(c);
	free(subs);
	free(ss);
	return r;
}

/* The audit entry of one grant, in the caller's transaction or its own. */
static int audit_grant(const struct provision_req *q, const char *what_kind, const struct provision_result *res,
		       const char *extra)
{
	char obj[40], ext[EMM_MAX_EXT_PACKAGES * 6 + 1], what[512];

	snprintf(obj, sizeof(obj), "card:%" PRIu64, q->serial);
	ext_text(&res->g.grant, ext, sizeof(ext));
	snprintf(what, sizeof(what), "%s from the SMS: packages=%08" PRIX32 " ext=%s period=%" PRIu64 "..%" PRIu64 "%s",
		 what_kind, res->g.grant.packages, ext[0] ? ext : "-", res->g.grant.start_s, res->g.grant.finish_s, extra);
	return sms_audit_add_ev(q->store, q->who, PROVISION_AUDIT_ACTION, obj, what);
}

int provision_entitlement(const struct provision_req *q, const char *path, struct provision_result *res, char *why,
			  size_t why_cap)
{
	struct entitlement *e = calloc(1, sizeof(*e));
	char extra[160 + EMM_MAX_EXT_PACKAGES * 6], left[EMM_MAX_EXT_PACKAGES * 6 + 1];
	int r;

	memset(res, 0, sizeof(*res));
	if (!e)
		return CE_NOMEM;
	if (exists(path)) {
		r = CE_EXISTS;
		say(why, why_cap, "%s already exists: not overwriting", path);
		goto out;
	}
	if ((r = provision_lookup(q->store, q->serial, q->now_s, &res->g, why, why_cap)) != 0)
		goto out;
	if (res->g.pair) {
		r = CE_STATE;
		say(why, why_cap, "card %" PRIu64 " must be paired with a box (SMS pair = 1): an entitlement file of "
			"clear keys cannot honour that; give it EMMs (--emm-out --vendor-keys)", q->serial);
		goto out;
	}
	/* the file format holds packages 0..31 only (docs/key-files.md): the
	 * SMS's extended packages reach a box by EMM; the file leaves them out
	 * and its audit entry says so */
	ext_text(&res->g.grant, left, sizeof(left));
	if (res->g.grant.packages == 0) {
		r = CE_UNSUPPORTED;
		say(why, why_cap, "card %" PRIu64 " holds extended packages only (%s): an entitlement file carries "
			"packages 0..31; give it EMMs (--emm-out)", q->serial, left);
		goto out;
	}
	res->g.grant.next = 0;
	e->card_serial = q->serial;
	e->packages = res->g.grant.packages;
	e->start_s = res->g.grant.start_s;
	e->finish_s = res->g.grant.finish_s;
	if ((r = entitlement_issue(q->ks, e)) != 0) {
		say(why, why_cap, "cannot issue: %s%s", err_str(r),
		    r == CE_LIMIT ? " (too many package x epoch keys: the SMS period is too long for a file)" : "");
		goto out;
	}
	if ((r = entitlement_save(e, path)) != 0) {
		say(why, why_cap, "cannot write %s: %s", path, err_str(r));
		goto out;
	}
	res->nkeys = e->nkeys;
	snprintf(extra, sizeof(extra), " keys=%zu epochs=%u..%u%s%s", e->nkeys, keystore_epoch_at(q->ks, e->start_s),
		 keystore_epoch_at(q->ks, e->finish_s), left[0] ? " ext_left_out=" : "", left);
	if ((r = audit_grant(q, "entitlement file", res, extra)) != 0) {
		(void)unlink(path); /* no grant without its audit entry */
		say(why, why_cap, "the SMS audit log: %s (%s not kept)", err_str(r), path);
		goto out;
	}
out:
	entitlement_wipe(e);
	free(e);
	return r;
}

/* K_v of the box the SMS names (chip_id) from q->vendor_csv. */
static int box_key(const struct provision_req *q, const struct provision_grant *g, uint64_t *chip, uint8_t kv[16],
		   char *why, size_t why_cap)
{
	int r;

	if (!g->chip_id[0] || parse_u64(g->chip_id, UINT64_MAX, chip) != 0 || *chip == 0) {
		say(why, why_cap, "card %" PRIu64 ": the SMS names no box (chip id) to pair with (castellan sms card add "
			"--chip)", q->serial);
		return CE_STATE;
	}
	if (!q->vendor_csv) {
		say(why, why_cap, "card %" PRIu64 " is paired with box %s in the SMS: give --vendor-keys (that box's "
			"vendor key file)", q->serial, g->chip_id);
		return CE_NOT_FOUND;
	}
	if ((r = emm_vendor_key_file(q->vendor_csv, *chip, kv)) != 0)
		say(why, why_cap, "box %s in %s: %s", g->chip_id, q->vendor_csv, err_str(r));
	return r;
}

/* Take the store's next seq for the card and audit the EMM, one
 * transaction; sent: record the grant (for sms reconcile). */
static int seq_and_audit(const struct provision_req *q, struct provision_result *res, bool sent, const char *kind,
			 const char *extra)
{
	struct sms_emm_seq_req sq;
	char more[160];
	int r;

	memset(&sq, 0, sizeof(sq));
	sq.serial = q->serial;
	sq.step = 1;
	sq.want = q->min_seq ? q->min_seq : 1;
	if (sent) {
		sq.has_sent = true;
		sq.sent_packages = res->g.grant.packages;
		sq.sent_start = (int64_t)res->g.grant.start_s;
		sq.sent_finish = (int64_t)res->g.grant.finish_s;
		sq.sent_next = res->g.grant.next < SMS_SENT_EXT_MAX ? res->g.grant.next : SMS_SENT_EXT_MAX;
		memcpy(sq.sent_ext, res->g.grant.ext, sq.sent_next * sizeof(sq.sent_ext[0]));
	}
	if ((r = sms_tx_begin(q->store)) != 0)
		return r;
	r = sms_emm_seq_next_many(q->store, &sq, 1);
	if (r == 0 && sq.seq == 0)
		r = CE_RANGE; /* the card's numbers are spent */
	res->seq = sq.seq;
	snprintf(more, sizeof(more), " seq=%" PRIu32 "%s", sq.seq, extra);
	if (r == 0)
		r = audit_grant(q, kind, res, more);
	return sms_tx_end(q->store, r);
}

static int append_hex(const char *path, const uint8_t *sec, size_t len)
{
	char hex[2 * EMM_MAX_SECTION + 2];
	FILE *f;
	int r;

	hex_encode(sec, len, hex);
	f = fopen(path, "a");
	r = f && fprintf(f, "%s\n", hex) >= 0 ? 0 : CE_IO;
	if (f && fclose(f) != 0)
		r = CE_IO;
	return r;
}

int provision_emm(const struct provision_req *q, const char *path, struct provision_result *res, char *why,
		  size_t why_cap)
{
	struct emm_issuer *is = NULL;
	struct emm_extra x;
	uint8_t kv[16], sec[EMM_MAX_SECTION];
	char extra[96] = "";
	uint64_t chip = 0;
	int r;

	memset(res, 0, sizeof(*res));
	memset(&x, 0, sizeof(x));
	if ((r = provision_lookup(q->store, q->serial, q->now_s, &res->g, why, why_cap)) != 0)
		goto out;
	if (res->g.pair) {
		if ((r = box_key(q, &res->g, &chip, kv, why, why_cap)) != 0)
			goto out;
		x.cmds = EMM_CMD_PAIR;
		x.pair_stb_id = chip;
		x.has_pair_key = true;
		if ((r = kms_pairing_key(kv, q->serial, x.pair_key)) != 0) {
			say(why, why_cap, "pairing key: %s", err_str(r));
			goto out;
		}
		res->stb_id = chip;
		snprintf(extra, sizeof(extra), " paired with box %s", res->g.chip_id);
	}
	if ((r = seq_and_audit(q, res, true, "grant EMM", extra)) != 0) {
		say(why, why_cap, "the SMS store (sequence number, audit): %s", err_str(r));
		goto out;
	}
	if ((r = emm_issuer_new(q->ks, &is)) == 0)
		r = emm_build_unique_ex(is, q->serial, res->seq, &res->g.grant, res->g.pair ? &x : NULL,
					(uint64_t)q->now_s * 1000u, sec, sizeof(sec), &res->bytes);
	emm_issuer_free(is);
	if (r != 0) {
		say(why, why_cap, "cannot build the EMM: %s", err_str(r));
		goto out;
	}
	if ((r = append_hex(path, sec, res->bytes)) != 0)
		say(why, why_cap, "cannot append to %s", path);
out:
	secret_wipe(kv, sizeof(kv));
	secret_wipe(&x, sizeof(x));
	secret_wipe(sec, sizeof(sec));
	return r;
}

int provision_pair_emm(const struct provision_req *q, const char *path, struct provision_result *res, char *why,
		       size_t why_cap)
{
	struct emm_issuer *is = NULL;
	uint8_t kv[16], kpair[16], sec[EMM_MAX_SECTION];
	char extra[96];
	uint64_t chip = 0;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = provision_lookup(q->store, q->serial, q->now_s, &res->g, why, why_cap)) != 0)
		goto out;
	if (!res->g.pair) {
		r = CE_STATE;
		say(why, why_cap, "card %" PRIu64 ": the SMS does not pair it with a box (pair = 0): set pairing and "
			"its box there first (castellan sms card add --pair 1 --chip ID)", q->serial);
		goto out;
	}
	if ((r = box_key(q, &res->g, &chip, kv, why, why_cap)) != 0)
		goto out;
	if ((r = kms_pairing_key(kv, q->serial, kpair)) != 0) {
		say(why, why_cap, "pairing key: %s", err_str(r));
		goto out;
	}
	res->stb_id = chip;
	snprintf(extra, sizeof(extra), " box=%s", res->g.chip_id);
	if ((r = seq_and_audit(q, res, false, "PAIR EMM", extra)) != 0) {
		say(why, why_cap, "the SMS store (sequence number, audit): %s", err_str(r));
		goto out;
	}
	if ((r = emm_issuer_new(q->ks, &is)) == 0)
		r = emm_build_pair(is, q->serial, res->seq, chip, kpair, (uint64_t)q->now_s * 1000u, sec, sizeof(sec),
				   &res->bytes);
	emm_issuer_free(is);
	if (r != 0) {
		say(why, why_cap, "cannot build the PAIR EMM: %s", err_str(r));
		goto out;
	}
	if ((r = append_hex(path, sec, res->bytes)) != 0)
		say(why, why_cap, "cannot append to %s", path);
out:
	secret_wipe(kv, sizeof(kv));
	secret_wipe(kpair, sizeof(kpair));
	secret_wipe(sec, sizeof(sec));
	return r;
}

int provision_identity(const struct keystore *ks, uint64_t serial, uint64_t stb_id, const char *path, char *why,
		       size_t why_cap)
{
	struct card_identity ci;
	int r;

	say(why, why_cap, "%s", "");
	if (exists(path)) {
		say(why, why_cap, "%s already exists: not overwriting", path);
		return CE_EXISTS;
	}
	r = card_issue(ks, serial, &ci);
	ci.stb_id = stb_id;
	if (r == 0)
		r = card_save(&ci, path);
	card_identity_wipe(&ci);
	if (r != 0)
		say(why, why_cap, "cannot write %s: %s", path, err_str(r));
	return r;
}

int provision_protect(const char *in, const char *vendor_csv, uint64_t chip_id, const char *out,
		      struct entitlement *e, char *why, size_t why_cap)
{
	uint8_t kv[16], blk[16];
	int r;

	say(why, why_cap, "%s", "");
	memset(e, 0, sizeof(*e));
	if (exists(out)) {
		say(why, why_cap, "%s exists, not overwritten", out);
		return CE_EXISTS;
	}
	if ((r = emm_vendor_key_file(vendor_csv, chip_id, kv)) != 0) {
		say(why, why_cap, "chip 0x%016" PRIx64 " in %s: %s", chip_id, vendor_csv, err_str(r));
		goto out;
	}
	if ((r = entitlement_load(in, e)) != 0) {
		say(why, why_cap, "%s: %s", in, err_str(r));
		goto out;
	}
	/* E_{K_v(chip)}(K_pkg): stb/chip.h chip_protect_key, one AES block */
	for (size_t i = 0; i < e->nkeys && r == 0; i++)
		if ((r = crypto_aes_block(1, kv, sizeof(kv), e->keys[i].key, blk)) == 0)
			memcpy(e->keys[i].key, blk, sizeof(blk));
	if (r != 0) {
		say(why, why_cap, "cannot protect the keys: %s", err_str(r));
		goto out;
	}
	if ((r = entitlement_save(e, out)) != 0)
		say(why, why_cap, "%s: %s", out, err_str(r));
out:
	secret_wipe(kv, sizeof(kv));
	secret_wipe(blk, sizeof(blk));
	return r;
}

int provision_from_store(const char *prog, const char *db, const char *db_file, struct provision_req *q,
	enum provision_kind kind, const char *path, struct provision_result *res, char *why, size_t why_cap)
{
	int r;

	why[0] = '\0';
	if (!q->now_s)
		q->now_s = (int64_t)(now_wall_ms() / 1000u);
	if (dburi_store_open(prog, db, db_file, &q->store) != 0)
		return 1;
	if (kind == PROVISION_ENTITLEMENT)
		r = provision_entitlement(q, path, res, why, why_cap);
	else if (kind == PROVISION_EMM)
		r = provision_emm(q, path, res, why, why_cap);
	else
		r = provision_pair_emm(q, path, res, why, why_cap);
	sms_store_close(q->store);
	q->store = NULL;
	return r;
}
