/*
 * audit_key.h - the audit key's private half on disk (docs/audit.md): an
 * Ed25519 seed sealed under the keystore passphrase (crypto/pwseal.h,
 * magic "CSTLAUK1", scrypt 2^15), or plain hex (0600) for an operator who
 * chose --no-passphrase. `castellan audit keygen` writes it; `audit
 * checkpoint` and the head-end's --audit-key read it.
 */
#ifndef CASTELLAN_SMS_AUDIT_KEY_H
#define CASTELLAN_SMS_AUDIT_KEY_H

#include <stdint.h>
#include "lib/err.h"

/* Write priv to path (0600): sealed under pass, or plain hex when pass is
 * NULL. 0 or CE_*. */
int sms_audit_key_write(const char *path, const uint8_t priv[32], const char *pass) WARN_UNUSED;

/* Read the key at path into priv: a sealed one is opened with the
 * passphrase of passphrase_file or $CASTELLAN_PASSPHRASE (cas/keys.h
 * passphrase_get: its error when there is none), a plain one as it is.
 * 0 or CE_*; priv is wiped on error. */
int sms_audit_key_load(const char *path, const char *passphrase_file, uint8_t priv[32]) WARN_UNUSED;

/* `castellan audit keygen`: a new Ed25519 audit key, its private half to
 * key_path (sms_audit_key_write: sealed under pass, plain hex when NULL),
 * its public one to pub_path; kid_hex the first 8 bytes of the public
 * key's hash in hex. 0 or CE_*. */
int sms_audit_keygen(const char *key_path, const char *pub_path, const char *pass, char kid_hex[17]) WARN_UNUSED;

#endif
