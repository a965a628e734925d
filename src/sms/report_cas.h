/*
 * report_cas.h - the CAS side's report of active entitlements per channel
 * and per package, and the SMS's match of it (TRAI Schedule III A.13: "the
 * CAS can generate and the SMS can match reports of active entitlements
 * per channel"; docs/reports.md "The CAS side per channel").
 *
 * The CAS side is what the head-end sent, not the SMS's subscriptions: the
 * emm_seq row it writes before each card's EMM goes on air (blocked flag;
 * from schema 4 the grant that EMM carries: 32-bit package mask, extended
 * package ids, validity period). A card counts for package p at time T when
 * its last sent EMM did not block it, carries p (a mask bit, or an extended
 * id >= 32) and T is in the grant's period (sent_start <= T <= sent_finish,
 * the card's own check of an ECM's time). It counts for a channel when it
 * counts for one of the channel's packages: the channels table (service id
 * -> 32-bit access criteria), which is the mapping the head-end's ECMG puts
 * in every ECM (headend.c channels_load, refreshed every 2 s); extended
 * packages have no channel there and are counted per package only. Rows not
 * counted: blocked (a BLOCK EMM: suspended, blacklisted, retired), unknown
 * (numbered before schema 4), out of period (expired or not started), empty
 * (nothing granted).
 *
 * Reports (report.h names; columns):
 *   cas-channels  kind (channel|package), id, name, packages (a channel's
 *                 mask, 8 hex digits), cards
 *   cas-match     kind, id, name, cas_cards, sms_cards, difference
 *                 (cas - sms); the SMS figure is report.h's `active
 *                 --channel`/`--package` count at the same T (from the log)
 * Rows: every channel of the table by service id, then every package of the
 * table by id and any other id either side counts.
 *
 * T is meant to be now (or later): emm_seq holds each card's last grant, not
 * a history, so for a past T the cards numbered since are counted by their
 * last grant (sms_cas_stats.sent_after says how many). A monthly CAS-side
 * figure is taken on the day (e.g. from cron), not afterwards.
 */
#ifndef CASTELLAN_SMS_REPORT_CAS_H
#define CASTELLAN_SMS_REPORT_CAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "sms/report.h"

struct sms_cas_stats {
	size_t rows;         /* emm_seq rows read */
	size_t counted;      /* entitled to something at T */
	size_t blocked, unknown, out_of_period, empty;
	size_t sent_after;   /* rows numbered after T (updated_ms): emm_seq
			      * keeps each card's LAST grant, so for them the
			      * grant at a past T is not known (the last one is
			      * counted); 0 when T is now */
};

/* Fill t (a new table of sms_report_run) with cas-channels, or cas-match
 * when match. st may be NULL. 0, CE_FORMAT (a stored sent_ext that does
 * not parse), CE_* of the store. */
int sms_report_cas(struct sms_store *s, int64_t at_s, bool match, struct sms_table *t) WARN_UNUSED;
int sms_report_cas_stats(struct sms_store *s, int64_t at_s, bool match, struct sms_table *t,
			 struct sms_cas_stats *st) WARN_UNUSED;

/* emm_seq.sent_ext as stored ("40,41", store_feed.c; a store migrated or
 * imported from elsewhere may hold anything): at most SMS_SENT_EXT_MAX ids
 * 0..65535, decimal digits only, comma-separated, into ids (room for
 * SMS_SENT_EXT_MAX); "" is none. 0 or CE_FORMAT (*n then undefined). */
int sms_sent_ext_parse(const char *t, uint32_t *ids, size_t *n) WARN_UNUSED;

/* `castellan sms reconcile --channels`: cas-match at at_s, the rows whose
 * difference is not 0 printed to f as CSV (header kind,id,name,cas_cards,
 * sms_cards,difference) or JSON {at, rows_compared, differences, items};
 * a summary line on stderr. *ndiff: the rows that differ. */
int sms_cas_match_print(struct sms_store *s, int64_t at_s, bool json, FILE *f, size_t *ndiff) WARN_UNUSED;

#endif
