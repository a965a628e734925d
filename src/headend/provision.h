/*
 * provision.h - what `castellan provision` issues for one card, taken from
 * the SMS store only (TRAI Schedule III A.5: activation and deactivation
 * only through the SMS; docs/headend.md "Provisioning from the SMS").
 *
 * The command names a card; everything it grants comes from the card's
 * SMS row and subscriptions as the head-end would send them (the grant in
 * force at now_s: sched_grant_at, the package mask, the extended package
 * ids and the period), never from the command line. Refused: a card the SMS
 * does not know (CE_NOT_FOUND), blacklisted, or in a blacklisted box
 * (CE_BLOCKED), not ACTIVE (CE_STATE), with nothing in force at now_s
 * (CE_NOT_ENTITLED). Every grant appends one entry to the store's chained
 * audit log (action "card.provision", object "card:SERIAL", who as given):
 * what was issued (packages, ext, period, sequence number, box), never a
 * key. An EMM's sequence number is the store's (sms_emm_seq_next_many, the
 * head-end's own counter, with the grant recorded for `sms reconcile`),
 * taken and audited in one transaction before the EMM is written.
 *
 * Outputs that grant nothing stay outside the store: the card file of a
 * box that takes EMMs (K_card: it opens EMMs, it does not make them) and
 * --protect (re-wraps the keys of an entitlement file the SMS gave for one
 * chip: no package or period added).
 *
 * Every function: 0 or a CE_* code, and on failure a line for the operator
 * in why (why_cap bytes; "" on success).
 */
#ifndef CASTELLAN_HEADEND_PROVISION_H
#define CASTELLAN_HEADEND_PROVISION_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/emm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "sms/store.h"

#define PROVISION_AUDIT_ACTION "card.provision"

/* What the SMS grants one card at now_s (provision_lookup). */
struct provision_grant {
	uint64_t serial;
	struct emm_grant grant;   /* packages, ext, period in force at now_s */
	bool pair;                /* the SMS requires pairing with one box */
	char chip_id[SMS_CHIP_ID_MAX + 1]; /* the box the SMS names, "" if none */
};

/* What one call issued (for the command's line on stdout). */
struct provision_result {
	struct provision_grant g;
	uint32_t seq;             /* EMMs: the store's sequence number */
	size_t bytes;             /* EMMs: section length */
	size_t nkeys;             /* entitlement: package keys written */
	uint64_t stb_id;          /* PAIR: the box id (the chip id) */
};

/* The common inputs. vendor_csv: a vendor's opened key file (castellan kms
 * vendor open) for a card the SMS pairs with a box, NULL if none. min_seq:
 * EMMs, the lowest sequence number wanted (the store gives max(min_seq,
 * stored + 1)); 0 = 1. */
struct provision_req {
	struct sms_store *store;
	const struct keystore *ks;
	uint64_t serial;
	int64_t now_s;
	const char *who;          /* the audit actor, e.g. "cli:provision" */
	const char *vendor_csv;
	uint32_t min_seq;
};

/* Check the card may be provisioned and read its grant at now_s. */
int provision_lookup(struct sms_store *s, uint64_t serial, int64_t now_s, struct provision_grant *out, char *why,
		     size_t why_cap) WARN_UNUSED;

/* The entitlement file of a cardless box (path, mode 0600, refused if it
 * exists): the SMS's grant and the package keys of every epoch overlapping
 * its period. The file holds packages 0..31 only: extended ones are left
 * out (res->g.grant.next 0; the audit entry names them; only extended
 * packages: CE_UNSUPPORTED), they reach a box by EMM. A card the SMS pairs with a box is refused (CE_STATE: a file
 * of clear keys cannot honour pairing). The file is written, then the
 * audit entry (if that fails the file is removed). */
int provision_entitlement(const struct provision_req *q, const char *path, struct provision_result *res, char *why,
			  size_t why_cap) WARN_UNUSED;

/* Append (hex, one line) the grant EMM: the SMS's grant and the package
 * keys of the current and next epoch; a card the SMS pairs with a box also
 * gets PAIR (box id = the chip id, K_pair from vendor_csv's key of that
 * chip: refused without it, CE_NOT_FOUND). */
int provision_emm(const struct provision_req *q, const char *path, struct provision_result *res, char *why,
		  size_t why_cap) WARN_UNUSED;

/* Append the PAIR EMM alone (pairing the card with the box the SMS names:
 * chip_id, pair = 1), K_pair from vendor_csv. Refused (CE_STATE) when the
 * SMS does not require pairing or names no box. */
int provision_pair_emm(const struct provision_req *q, const char *path, struct provision_result *res, char *why,
		       size_t why_cap) WARN_UNUSED;

/* Grant nothing, so no store: the card file (castellan stb --card) of
 * serial with K_card, box id stb_id (0: none), and --protect: the package
 * keys of entitlement file in re-wrapped under K_v(chip) of vendor_csv. */
int provision_identity(const struct keystore *ks, uint64_t serial, uint64_t stb_id, const char *path, char *why,
		       size_t why_cap) WARN_UNUSED;
int provision_protect(const char *in, const char *vendor_csv, uint64_t chip_id, const char *out,
		      struct entitlement *e, char *why, size_t why_cap) WARN_UNUSED;

/* What `castellan provision` issues from the SMS: the entitlement file,
 * the grant EMM or the PAIR EMM (the three functions above). */
enum provision_kind { PROVISION_ENTITLEMENT, PROVISION_EMM, PROVISION_PAIR_EMM };

/* `castellan provision --card`: open the store (db, db_file: as
 * dburi_store_open, errors said prefixed prog), issue kind to path with q
 * (q->store set here; q->now_s 0: now), close the store. 0, CE_* (why
 * says it, else err_str), or 1 when the store could not be opened (said). */
int provision_from_store(const char *prog, const char *db, const char *db_file, struct provision_req *q,
	enum provision_kind kind, const char *path, struct provision_result *res, char *why, size_t why_cap)
	WARN_UNUSED;

#endif
