/*
 * audit_file.h - the audit chain (store.h, "audit") to and from files: the
 * export an auditor takes away (CSV or JSON with the chain proof) and the
 * append-only checkpoint file kept outside the database, checked against
 * the log. `castellan audit export` / `verify --checkpoints` call these;
 * docs/audit.md describes both files.
 */
#ifndef CASTELLAN_SMS_AUDIT_FILE_H
#define CASTELLAN_SMS_AUDIT_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "sms/store.h"

#define SMS_AUDIT_CP_FILE_MAX (64u << 20) /* a checkpoint file, at most */

/* Write entries from_seq <= seq <= to_seq (0: from the first / to the
 * last) and every checkpoint to f: CSV ("record,seq,at_ms,who,...", one
 * "entry" row per entry, one "checkpoint" row per checkpoint) or JSON
 * ({"format": "castellan-audit-1", the hash and signature definitions,
 * "entries", "checkpoints"}). 0 or CE_*. */
int sms_audit_export(struct sms_store *s, int64_t from_seq, int64_t to_seq, bool json, FILE *f) WARN_UNUSED;

/* Check a checkpoint file's lines (buf[0..len), sms_audit_checkpoint_line
 * format, blank lines skipped) against the log, after sms_audit_verify
 * filled v (pub: also check signatures). *matched counts the checkpoints
 * read. A line that is not a checkpoint: CE_FORMAT with *bad_line its
 * 1-based number. 0 when it could look (v->bad_seq says whether the file
 * agrees), a CE_* code otherwise. */
int sms_audit_check_file(struct sms_store *s, const uint8_t *buf, size_t len, const uint8_t *pub,
	struct sms_audit_verify *v, size_t *matched, size_t *bad_line) WARN_UNUSED;

/* `castellan audit verify`: the whole chain and every checkpoint
 * (signatures too with pub), and with cp_path the checkpoint file's lines;
 * the verdict written to out ("audit log intact: ..." or "audit log BROKEN
 * at entry N: why"), *intact set. 0 when it could look (the verdict says
 * the rest), else CE_* (a checkpoint file it cannot read or a line that is
 * not a checkpoint also said on stderr). */
int sms_audit_verify_report(struct sms_store *s, const uint8_t *pub, const char *cp_path, FILE *out, bool *intact)
	WARN_UNUSED;

/* Append cp's line (sms_audit_checkpoint_line) to the checkpoint file at
 * path (created 0644), synced. 0, CE_IO, CE_LIMIT. */
int sms_audit_checkpoint_append(const char *path, const struct sms_audit_checkpoint *cp) WARN_UNUSED;

/* `castellan audit checkpoint`: load the audit key (key_path, its
 * passphrase from pfile or the environment: sms_audit_key_load), sign the
 * chain's head as who into the store, write its line to line[0..cap) and,
 * with out_path, append it there too. 0 or CE_*; *key_bad is set when the
 * key could not be loaded (the caller says which file). */
int sms_audit_checkpoint_run(struct sms_store *s, const char *key_path, const char *pfile, const char *who,
	const char *out_path, char *line, size_t cap, bool *key_bad) WARN_UNUSED;

/* `castellan audit verify` from files: the public key at pub_path (NULL:
 * signatures not checked) and the checkpoint file cp_path (may be NULL),
 * then sms_audit_verify_report to out. 0 or CE_*; *pub_bad is set when
 * pub_path could not be read (the caller says it). */
int sms_audit_verify_files(struct sms_store *s, const char *pub_path, const char *cp_path, FILE *out, bool *intact,
	bool *pub_bad) WARN_UNUSED;

/* `castellan audit export` to the file out_path (truncated; NULL: stdout):
 * sms_audit_export. 0 or CE_* (CE_IO: cannot open or close it). */
int sms_audit_export_file(struct sms_store *s, int64_t from_seq, int64_t to_seq, bool json, const char *out_path)
	WARN_UNUSED;

#endif
