/*
 * store_osd.h - the SMS's fingerprint schedules and messages (schema 6,
 * issue 13): what the head-end puts in ECMs (fingerprints of a channel or
 * package) and in EMMs (per-card fingerprints; global, group and individual
 * messages). Every add and delete is one transaction with its entry in the
 * hash-chained audit log (store_audit.c); an individual item also queues
 * its card on the change feed, so the head-end sends it at once.
 *
 * Tables (SQLite and PostgreSQL, the same SQL):
 *   osd_fingerprints: id, target kind + value (service / package / card),
 *                     the osd.h fields, start_s, end_s, created_ms
 *   osd_messages:     id, scope (0 global / 1 group = package / 2 card),
 *                     group_id, card, the osd.h fields, text, start_s,
 *                     expiry_s, created_ms
 * Ids are the items' fp_id / msg_id on air (< 2^32).
 */
#ifndef CASTELLAN_SMS_STORE_OSD_H
#define CASTELLAN_SMS_STORE_OSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/osd.h"

struct sms_store;

enum sms_fp_target { SMS_FP_SERVICE = 0, SMS_FP_PACKAGE = 1, SMS_FP_CARD = 2 };

struct sms_fingerprint {
	int64_t id;                  /* set by sms_fp_add; fp.fp_id = id */
	enum sms_fp_target target;
	uint64_t value;              /* service_id (1..65535), package (0..31) or card serial */
	struct osd_fingerprint fp;   /* fp_id ignored on add */
	int64_t start_s, end_s;      /* active in [start, end] (unix s), start <= end */
};

struct sms_message {
	int64_t id;                  /* set by sms_msg_add; msg.msg_id = id */
	uint64_t card;               /* scope INDIVIDUAL: the card; else 0 */
	struct osd_message msg;      /* scope, group_id (package), text, expiry_s ... */
	int64_t start_s;             /* not sent before (unix s) */
};

/* Schema 5's tables (idempotent; the migration runs it). */
int store_osd_migrate(struct sms_store *s);

/* Add (checked with osd_fp_check / osd_msg_check and the target's
 * range): 0 and f->id / m->id, CE_RANGE, CE_FORMAT, CE_NOT_FOUND (card
 * unknown). who: for the audit log. */
int sms_fp_add(struct sms_store *s, struct sms_fingerprint *f, const char *who) WARN_UNUSED;
int sms_msg_add(struct sms_store *s, struct sms_message *m, const char *who) WARN_UNUSED;
/* Delete by id: 0 or CE_NOT_FOUND. */
int sms_fp_delete(struct sms_store *s, int64_t id, const char *who) WARN_UNUSED;
int sms_msg_delete(struct sms_store *s, int64_t id, const char *who) WARN_UNUSED;
/* Every item (now_s < 0) or those active at now_s (fingerprints: start <=
 * now <= end; messages: start <= now <= expiry), by id, at most max. */
int sms_fp_list(struct sms_store *s, int64_t now_s, size_t max,
	int (*fn)(void *ctx, const struct sms_fingerprint *f), void *ctx, size_t *count) WARN_UNUSED;
int sms_msg_list(struct sms_store *s, int64_t now_s, size_t max,
	int (*fn)(void *ctx, const struct sms_message *m), void *ctx, size_t *count) WARN_UNUSED;

const char *sms_fp_target_name(enum sms_fp_target t);

/* The defaults a new schedule / message gets (docs/sms.md): a fingerprint
 * of the serial at 5%,5%, white on half-black, 24 px, shown once for 5 s
 * (covert: 80 ms), active for 24 h from now_s; a message scrolled for 30 s,
 * white on dark blue, 24 px, from now_s for 7 days. */
void sms_fp_defaults(struct sms_fingerprint *f, int64_t now_s);
uint32_t sms_fp_default_duration_ms(uint8_t flags);
void sms_msg_defaults(struct sms_message *m, int64_t now_s);

#endif
