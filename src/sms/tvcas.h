/*
 * tvcas.h - reading the free CAS's (TVCAS) card table for `castellan sms
 * import-tvcas`: table tvcas_smartcards from a MariaDB/MySQL dump
 * (mysqldump or phpMyAdmin: INSERT INTO `tvcas_smartcards` ... VALUES
 * (...),(...);) or its CSV / TSV export with a header line. docs/
 * migration-from-tvcas.md has the columns and what becomes of each.
 *
 * The columns read (the rest, among them the old card key, are skipped
 * and never kept): serial_no (required, 1..2^63-1), name, info,
 * access_criteria (8 hex digits: the 32 packages), pair (0/1), start,
 * finish (unix seconds), status (0: disabled). NULL is accepted wherever
 * the free CAS allowed it: name, info -> ""; access_criteria -> 00000000;
 * pair -> 0; start/finish -> absent (has_start/has_finish false); status
 * -> 1. Castellan's names and info hold no control characters: a tab, CR
 * or LF in the free CAS's name or info becomes a space (cleaned set);
 * any other control byte is an error.
 *
 * Bounded: a file of at most TVCAS_FILE_MAX bytes, TVCAS_ROWS_MAX rows,
 * TVCAS_COLS_MAX columns, a value of at most TVCAS_VALUE_MAX bytes; every
 * read through a bounded cursor (lib/cursor.h). The first error stops the
 * parse: its line (1-based) and a reason for the operator.
 */
#ifndef CASTELLAN_SMS_TVCAS_H
#define CASTELLAN_SMS_TVCAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "sms/store.h"

#define TVCAS_FILE_MAX (512u << 20)
#define TVCAS_ROWS_MAX 20000000u
#define TVCAS_COLS_MAX 64
#define TVCAS_VALUE_MAX SMS_INFO_MAX /* bytes: MySQL TEXT, the info column */
#define TVCAS_TABLE "tvcas_smartcards"

enum tvcas_format { TVCAS_AUTO = 0, TVCAS_SQL, TVCAS_CSV, TVCAS_TSV };

struct tvcas_card {
	size_t line; /* where the row starts */
	uint64_t serial;
	char name[SMS_NAME_MAX + 1];
	uint32_t access_criteria;
	bool pair;
	bool has_start, has_finish;
	int64_t start, finish;
	bool disabled; /* status 0 */
	bool cleaned;  /* tabs / line breaks in name or info became spaces */
	char info[SMS_INFO_MAX + 1];
};

/* Parse buf (len bytes) as fmt (TVCAS_AUTO: a dump if it starts like one,
 * else TSV if the header has a tab, else CSV); fn gets each card row in
 * file order (the struct is reused: copy what you keep; non-zero stops and
 * is returned). *rows gets the rows handed over. On a parse error: CE_PARSE
 * (or CE_LIMIT past a bound, CE_RANGE for a bad value), *err_line and why. */
int tvcas_parse(const uint8_t *buf, size_t len, enum tvcas_format fmt,
		int (*fn)(void *ctx, const struct tvcas_card *c), void *ctx, size_t *rows, size_t *err_line,
		char *why, size_t why_cap) WARN_UNUSED;

#endif
