/*
 * web_kms.h - the panel's read-only view of an operator KMS directory
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
#ifndef CASTELLAN_WEB_KMS_H
#define CASTELLAN_WEB_KMS_H

#include "lib/err.h"

typedef struct json_t json_t;

#define WEB_KMS_ORDERS_MAX 4096		/* order files listed */
#define WEB_KMS_AUDIT_BYTES (16u << 20) /* audit.log read at most */
#define WEB_KMS_AUDIT_LINES 1000	/* newest audit lines returned */
#define WEB_KMS_LIST_MAX 4096		/* vendors / certificates / modules listed */

/* The view of dir as a JSON object (*out, caller decrefs). Never follows
 * a symlink inside dir; order files are only the names NNNNNN.ord.
 * CE_NOT_FOUND if dir is not a directory, CE_NOMEM. */
int web_kms_json(const char *dir, json_t **out) WARN_UNUSED;

#endif
