/*
 * report.h - the reports an addressable-system audit asks the SMS for
 * (TRAI Schedule III A.11/A.12; docs/reports.md), as tables rendered to CSV
 * or JSON, shared by `castellan sms report NAME` and GET
 * /api/v1/reports/NAME.
 *
 * Point-in-time figures come from the audit chain (store_audit.c): each
 * card's state at time T is the snapshot of its newest entry at or before T
 * (a card without one did not exist yet). "In force" at T: start <= T <=
 * finish (unix seconds). A card at T is
 *   registered   in the base (not deleted);
 *   active       state active, not blacklisted, a subscription in force;
 *   suspended    state blocked (temporarily), not blacklisted;
 *   deactivated  retired, or active with nothing in force;
 *   blacklisted  its card or box blacklisted.
 * Channels: a channel belongs to package p (0..31) when bit p of its
 * access criteria is set (the channel table as it is now).
 *
 * Reports (params):
 *   summary           (at)                 counts of the five statuses
 *   subscribers       (at, status)         one row per card and its status
 *   blacklist         (at)                 cards and boxes listed at T
 *   monthly           (month, days, by)    per package or channel: active
 *                                          cards at the end of each day, average
 *   package-channels  ()                   the channels forming each package
 *   active            (at, package|channel) the cards active on it at T
 *   card              (card, at)           one card's packages and channels
 *   ageing            (package|channel, at) each active card: since when, age
 *   history           (card|box, from, to) activation/deactivation log of a card,
 *                                          or of a box (chip id): the entries of
 *                                          every card while in it, its moves in
 *                                          and out, the box's blacklisting
 */
#ifndef CASTELLAN_SMS_REPORT_H
#define CASTELLAN_SMS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "sms/store.h"

#define REPORT_COLS_MAX 40
#define REPORT_ROWS_MAX 20000000 /* a table bigger than this is refused (CE_LIMIT) */

struct sms_report_params {
	int64_t at_s;          /* 0: now */
	int year, month;       /* monthly: 0 = this month */
	int days[31];          /* monthly: days of the month; none = 7, 14, 21, 28 */
	size_t ndays;
	bool by_channel;       /* monthly: per channel instead of per package */
	int64_t package;       /* -1: none */
	int64_t channel;       /* -1: none */
	uint64_t card;         /* 0: none */
	int64_t from_s, to_s;  /* history: 0 / 0 = everything */
	char box[SMS_CHIP_ID_MAX + 1]; /* history: "" = none */
	int status;            /* subscribers: -1 = all, else an SMS_RS_* */
};

enum { SMS_RS_ACTIVE = 0, SMS_RS_SUSPENDED, SMS_RS_DEACTIVATED, SMS_RS_BLACKLISTED, SMS_RS_DELETED };

struct sms_table {
	char name[32];
	size_t ncols;
	const char *cols[REPORT_COLS_MAX]; /* static strings or owned by colbuf */
	bool num[REPORT_COLS_MAX];         /* JSON: a number, not a string */
	char colbuf[REPORT_COLS_MAX][16];
	size_t nrows, cap;
	char **cells;                      /* nrows * ncols, malloc'ed strings */
	int64_t at_s;                      /* the time the figures are for (0: n/a) */
};

void sms_report_params_init(struct sms_report_params *p);
/* One parameter by name from the CLI (--NAME VALUE) or the query string:
 * at, month (YYYY-MM), days (comma list 1..31), by (package|channel),
 * package, channel, card, box, from, to, status. 0, CE_NOT_FOUND (no such
 * parameter), CE_RANGE (bad value). */
int sms_report_param(struct sms_report_params *p, const char *name, const char *value) WARN_UNUSED;
/* Run report name: *out (free with sms_table_free). 0, CE_NOT_FOUND (no such
 * report), CE_ARG (a parameter it needs is missing), CE_* from the store. */
int sms_report_run(struct sms_store *s, const char *name, const struct sms_report_params *p,
		   struct sms_table **out) WARN_UNUSED;
void sms_table_free(struct sms_table *t);
/* CSV (RFC 4180, CRLF, a header row) through out; JSON
 * {"report","at","columns":[...],"rows":[{...}]} (new reference). */
int sms_table_csv(const struct sms_table *t, int (*out)(void *ctx, const char *p, size_t n), void *ctx) WARN_UNUSED;
json_t *sms_table_json(const struct sms_table *t);
/* The report names, NULL-terminated. */
extern const char *const sms_report_names[];

#endif
