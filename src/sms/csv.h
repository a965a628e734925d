/*
 * csv.h - CSV import and export of cards for billing systems (docs/csv.md
 * is the operator's reference): an RFC 4180 reader over a bounded buffer,
 * the column set (the free CAS's card fields plus Castellan's), whole-file
 * validation before anything is written, and the import applied in ONE
 * transaction of the store, so a bad line leaves the database unchanged.
 *
 * Columns (header line required, any order, serial_no mandatory):
 *   serial_no,name,info,access_criteria,pair,start,finish,chip_id,state,packages
 *
 * The reader never allocates: a record is unquoted into a fixed buffer
 * (CSV_RECORD_MAX bytes, CSV_FIELDS_MAX fields); anything longer is an
 * error with its line number, never a truncation.
 */
#ifndef CASTELLAN_SMS_CSV_H
#define CASTELLAN_SMS_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sms/store.h"

#define CSV_FIELDS_MAX 16
/* Bytes of one record once unquoted: a whole info (SMS_INFO_MAX) and room
 * for the other columns, so every exported row imports back. */
#define CSV_RECORD_MAX (SMS_INFO_MAX + 16385)
#define CSV_FILE_MAX (512u << 20)  /* bytes of one import */
#define CSV_ROW_PACKAGES_MAX 256   /* packages listed on one row */

/* ---- RFC 4180 reader ----------------------------------------------------- */

struct csv_reader {
	const char *buf;
	size_t len, off;
	size_t line;     /* physical line where the next record starts (1-based) */
	size_t rec_line; /* line where the last record read started */
};

struct csv_record {
	size_t n;                           /* fields */
	const char *field[CSV_FIELDS_MAX];  /* NUL-terminated, inside data */
	char data[CSV_RECORD_MAX];
};

/* Start reading buf[0..len) (a UTF-8 BOM at the start is skipped). */
void csv_reader_init(struct csv_reader *r, const char *buf, size_t len);

/* Next record: 1 and rec filled, 0 at the end of input, or CE_FORMAT /
 * CE_LIMIT with *why (a static text) and r->rec_line set. Fields are
 * separated by ',', records by CRLF or LF; a field in double quotes may
 * hold ',', CR, LF and "" (one quote). Lines holding nothing are skipped.
 * Refused: a quote inside an unquoted field, text after a closing quote,
 * an unterminated quote, a NUL byte, a lone CR, over the limits. */
int csv_read(struct csv_reader *r, struct csv_record *rec, const char **why) WARN_UNUSED;

/* Append field to out (cap bytes, *len advanced) quoted as RFC 4180 needs
 * (only when it holds ',', '"', CR, LF, starts/ends with a space or starts
 * with 0xEF, a UTF-8 BOM's first byte).
 * CE_OVERFLOW if it does not fit. */
int csv_quote(const char *field, char *out, size_t cap, size_t *len) WARN_UNUSED;

/* ---- import / export ----------------------------------------------------- */

struct csv_result {
	size_t rows;     /* data rows in the file */
	size_t added;    /* new cards */
	size_t updated;  /* existing cards changed */
	size_t line;     /* on failure: the line at fault (0: the file as a whole) */
	char why[192];   /* on failure: the reason */
};

/* Progress: phase "check" then "apply", bytes of the file done so far. */
typedef void (*csv_progress_fn)(void *ctx, const char *phase, size_t done, size_t total);

/* Import a whole file: check every line first (syntax, values, package
 * names, duplicate serials), then apply all rows in one transaction (who
 * is the audit actor). 0; CE_FORMAT (a bad line: res->line, res->why);
 * CE_LIMIT (file over CSV_FILE_MAX); CE_IO or another store error while
 * applying (res->line says which row; everything is rolled back).
 * progress may be NULL. */
int csv_import(struct sms_store *s, const char *buf, size_t len, const char *who, csv_progress_fn progress,
	       void *pctx, struct csv_result *res) WARN_UNUSED;

/* Only the checking pass, without a database: package ids are taken as
 * given and package names refused (for the fuzzer and `--check`). */
int csv_check(const char *buf, size_t len, struct csv_result *res) WARN_UNUSED;

/* Export every card, header first, CRLF line ends, through out (which
 * returns 0 or an error that stops the export). *rows gets the count. */
int csv_export(struct sms_store *s, int (*out)(void *ctx, const char *p, size_t n), void *ctx,
	       size_t *rows) WARN_UNUSED;

#endif
