/*
 * migrate.h - `castellan sms migrate`: one store copied whole into another
 * (store.h sms_store_copy), then every table of the target read back and
 * compared with what was read (rows and digest), one line per table.
 * docs/sms.md ("Moving a store").
 */
#ifndef CASTELLAN_SMS_MIGRATE_H
#define CASTELLAN_SMS_MIGRATE_H

#include <stdbool.h>
#include <stdio.h>
#include "sms/store.h"

/* Copy from into to (flags: SMS_COPY_OVERWRITE), then the table of tables
 * and a summary line on out; *equal: every table of the target matched.
 * 0 (copied: *equal says the rest), or CE_EXISTS (the target holds rows:
 * nothing copied) / the copy's error with why (why_cap bytes, "" if the
 * code says it) / CE_IO... from reading the target back (*read_back set). */
int sms_migrate(struct sms_store *from, struct sms_store *to, unsigned flags, FILE *out, bool *equal, bool *read_back,
	char *why, size_t why_cap) WARN_UNUSED;

#endif
