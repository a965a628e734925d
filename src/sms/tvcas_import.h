/*
 * tvcas_import.h - the free CAS's card table (tvcas.h) into the SMS store
 * (`castellan sms import-tvcas`, docs/migration-from-tvcas.md). The whole
 * file is read and checked first (a bad row: its line and why, nothing
 * imported; a serial twice: refused), then applied in one transaction: a
 * new card is added, a card the store has is changed to what the file says
 * (name, info, packages 0..31 from access_criteria with the card's period,
 * pair, period, state), and one audit entry names the file's SHA-256.
 */
#ifndef CASTELLAN_SMS_TVCAS_IMPORT_H
#define CASTELLAN_SMS_TVCAS_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sms/store.h"
#include "sms/tvcas.h"

#define TVCAS_WARN_LINES 20 /* rows named one by one in warnings; the rest counted */

struct tvcas_import_result {
	size_t rows, added, changed;
	size_t disabled;        /* imported blocked */
	size_t no_period;       /* start or finish NULL: imported with no period (0..0) */
	size_t more_warnings;   /* rows without a period past TVCAS_WARN_LINES */
	size_t line;            /* the bad line (CE_FORMAT, or the row the store refused) */
	char why[300];          /* why that line is bad ("" if the error says it) */
	uint64_t dup_serial;    /* CE_EXISTS: this serial is on lines dup_line[0] and dup_line[1] */
	size_t dup_line[2];
};

/* Check buf (len bytes of a dump, CSV or TSV) and, unless dry_run, apply it
 * to s. warn(ctx, msg) is told of rows imported differently from the file
 * (no period, cleaned text), at most TVCAS_WARN_LINES of each kind. 0, or
 * CE_FORMAT / CE_EXISTS (nothing checked in) / the store's error (the
 * transaction rolled back; CE_BLOCKED: a blacklisted card or box), with
 * the details in *res. */
int tvcas_import(struct sms_store *s, const uint8_t *buf, size_t len, enum tvcas_format fmt, bool dry_run,
	void (*warn)(void *ctx, const char *msg), void *ctx, struct tvcas_import_result *res) WARN_UNUSED;

#endif
