/*
 * view.h - the panel's read-only view of an operator KMS directory
 * (kms/kms.h, docs/kms.md) for GET /web/api/kms, built WITHOUT unlocking
 * the KMS: the head-end never holds the KMS passphrase or PIN.
 *
 * Shown from the files outside the encrypted state: chip orders (clear
 * header and chip ids of orders/NNNNNN.ord), the CRL (crl.bin, parsed but
 * its TA signature not checked: the TA key is in the state), the audit log
 * (hash chain checked; the anchor in the state is not), and what the audit
 * log records of vendors, operator certificates and signed modules.
 * Vendor keys, revoked flags and the operator certificate themselves are
 * inside state.bin: the answer says so ("sealed").
 */
#ifndef CASTELLAN_KMS_VIEW_H
#define CASTELLAN_KMS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

typedef struct json_t json_t;

#define WEB_KMS_ORDERS_MAX 4096		/* order files listed */
#define WEB_KMS_AUDIT_BYTES (16u << 20) /* audit.log read at most */
#define WEB_KMS_AUDIT_LINES 1000	/* newest audit lines returned */
#define WEB_KMS_LIST_MAX 4096		/* vendors / certificates / modules listed */

/* The view of dir as a JSON object (*out, caller decrefs). Never follows
 * a symlink inside dir; order files are only the names NNNNNN.ord.
 * CE_NOT_FOUND if dir is not a directory, CE_NOMEM. */
int kms_view_json(const char *dir, json_t **out) WARN_UNUSED;

/* ---- pure parsers (no I/O; the fuzz target fuzz_web_kms.c drives them) ---- */

/* An order file's clear part (docs/kms.md):
 *   off  size  field
 *     0     8  "CSTLORD1"
 *     8     4  order number, u32 big-endian
 *    12     4  N chips, u32 big-endian, >= 1
 *    16    12  nonce
 *    28   8*N  chip ids, u64 big-endian
 *   ...        sealed part; the whole file is exactly 44 + 24*N bytes. */
struct kms_view_order {
	uint32_t order;	     /* order number */
	uint32_t chips;	     /* N */
	uint64_t first_chip; /* first chip id */
	uint64_t last_chip;  /* last chip id (== first_chip when N == 1) */
};

/* Parse buf[0..len). 0 and *out filled, or CE_FORMAT (*out zeroed). */
int kms_view_parse_order(const uint8_t *buf, size_t len, struct kms_view_order *out) WARN_UNUSED;

/* crl.bin's fields the panel shows beyond crl_parse(): the issuer hash
 * (32 bytes at offset 9) and the creation time (u64 at offset 49).
 * *serials is malloc'd (caller frees), NULL on error. 0, CE_FORMAT, CE_NOMEM. */
int kms_view_parse_crl(const uint8_t *buf, size_t len, uint64_t *number, uint64_t *created_s, uint8_t issuer[32],
		      uint64_t **serials, size_t *n) WARN_UNUSED;

/* One audit.log line "seq\tat\tevent\tmac": line is a NUL-terminated
 * string (no '\n'), split IN PLACE (the tabs become NULs). */
struct kms_view_audit_line {
	bool fields;	   /* false: fewer than 3 tabs; event is the whole line */
	uint64_t seq;	   /* 0 when not a number */
	int64_t at_s;	   /* 0 when not a number (or either is not) */
	const char *event; /* inside line, NUL-terminated */
};
void kms_view_parse_audit_line(char *line, struct kms_view_audit_line *out);

/* Apply what one audit event records to the panel's lists: vendors (object
 * keyed by id), certs and mods (arrays), each capped at WEB_KMS_LIST_MAX. */
void kms_view_audit_event(const char *ev, int64_t at, json_t *vendors, json_t *certs, json_t *mods);

#endif
