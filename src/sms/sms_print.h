/*
 * sms_print.h - the store as `castellan sms` shows it (docs/sms.md,
 * docs/csv.md, docs/reports.md): listings and reports written as text to
 * a stream or file, CSV import and export of whole files, the search index
 * state, an API key made for a user. Text only; the REST API has its own
 * JSON (rest_*.c). Failures are said on stderr prefixed "castellan sms".
 */
#ifndef CASTELLAN_SMS_SMS_PRINT_H
#define CASTELLAN_SMS_SMS_PRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "lib/err.h"

struct sms_store;
struct sms_report_params;

/* Cards after serial `after`, at most limit, one tab-separated line each
 * (serial, chip, state, pair, access criteria, period, name), read in
 * pages. 0 or a store error. */
int sms_print_cards(struct sms_store *s, uint64_t after, uint64_t limit, FILE *f) WARN_UNUSED;
/* The blacklist: kind, id, when (ms), who, reason, tab-separated. */
int sms_print_blacklist(struct sms_store *s, FILE *f) WARN_UNUSED;
/* Report name (report.h) as CSV or (json) JSON into path (NULL: stdout).
 * 0; CE_ARG when the report needs a parameter it lacks (said); CE_IO. */
int sms_print_report(struct sms_store *s, const char *name, const struct sms_report_params *p, bool json,
	const char *path) WARN_UNUSED;
/* csv_import of the file at path, with a progress bar on stderr when it
 * is a terminal and the file is over 1 MiB; says the result ("N rows
 * imported: ...") on stdout or why nothing was imported on stderr. */
int sms_import_csv_file(struct sms_store *s, const char *path) WARN_UNUSED;
/* csv_export into path (NULL: stdout; then nothing is said). */
int sms_export_csv_file(struct sms_store *s, const char *path) WARN_UNUSED;
/* The text search index: build (create what is missing), check
 * (SQLite's integrity check), then say whether it is there. 0; CE_STATE
 * while it is missing; a store error. */
int sms_print_search_index(struct sms_store *s, bool build, bool check) WARN_UNUSED;
/* Create user (if new) and print a new API key with scopes for it (shown
 * once, then wiped). 0 or a store error. */
int sms_print_new_apikey(struct sms_store *s, const char *user, unsigned scopes) WARN_UNUSED;
/* Add card serial (chip, name, info: NULL for none) and print "card N
 * added". 0, CE_RANGE (a field too long for the store), a store error. */
int sms_print_card_add(struct sms_store *s, uint64_t serial, const char *chip, const char *name, const char *info,
	bool pair) WARN_UNUSED;
/* package add (add) or rename id to name, printing the result; a refusal
 * that another command fixes (add: it exists; rename: it does not) is
 * said with that command and returned as CE_STATE (nothing more to say);
 * other store errors are returned unsaid. */
int sms_print_package(struct sms_store *s, bool add, uint32_t id, const char *name) WARN_UNUSED;
/* Subscribe card serial to every package of the comma-separated list
 * packages (ids 0..SMS_PACKAGES_MAX-1) from start to finish, one line
 * printed per package. CE_ARG (a bad list), or the first store error
 * (said with its package). */
int sms_print_subscribe(struct sms_store *s, uint64_t serial, const char *packages, int64_t start, int64_t finish)
	WARN_UNUSED;
/* "read,write,admin,metrics" (any non-empty subset) into *out. 0 or CE_ARG. */
int sms_scopes_parse(const char *s, unsigned *out) WARN_UNUSED;

#endif
