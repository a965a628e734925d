/*
 * reconcile_print.h - `castellan sms reconcile`'s output (docs/sms.md):
 * reconcile_run's differences as CSV (serial_no,kind,sms,cas; CRLF) or as
 * one JSON document with the counts, on a stream, and the counts said on
 * stderr.
 */
#ifndef CASTELLAN_HEADEND_RECONCILE_PRINT_H
#define CASTELLAN_HEADEND_RECONCILE_PRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "headend/reconcile.h"

/* Compare at at_s and print every difference to f. 0 or CE_* (the store's,
 * CE_NOMEM, CE_IO); *st filled. */
int reconcile_print(struct sms_store *s, int64_t at_s, bool json, FILE *f, struct reconcile_stats *st) WARN_UNUSED;

#endif
