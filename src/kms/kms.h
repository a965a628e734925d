/*
 * kms.h - the operator's key management system: one directory holding
 *
 *   master.key     the 32-byte master key MK, wrapped by a passphrase
 *                  (scrypt + AES-256-GCM, as src/cas/keys.c)        [kms_wrap_*]
 *                  or by an AES-256 key that never leaves a PKCS#11
 *                  token ("CSTLP11W", GCM on the token)     [kms_init_p11]
 *   state.bin      AES-256-GCM under MK: the KMS/operator Ed25519 key, the
 *                  TA public key, the operator certificate, the vendors
 *                  (id, X25519 pub, revoked), revoked cert serials, next order,
 *                  and the audit anchor (entry count + hash of the last one)
 *   orders/N.ord   one chip order: "CSTLORD1" | order u32 | count u32 |
 *                  nonce[12] | chip ids u64 * N (clear, in the AAD) |
 *                  AES-256-GCM(MK, root keys 16 * N) | tag[16]
 *   audit.log      append-only, hash-chained record of every key operation
 *   crl.bin        the newest TA-signed CRL (cert.h)
 *
 * Root keys K_otp(chip) exist only in orders/ (encrypted) and, after
 * export, inside black-box files encrypted to the black box.
 * The same Ed25519 key signs black-box and vendor files and (via the
 * operator certificate) CAS client modules (kms_module_sign). docs/kms.md.
 */
#ifndef CASTELLAN_KMS_H
#define CASTELLAN_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define KMS_MAX_VENDORS 1024
#define KMS_MAX_CHIPS_FILE_BYTES (512u * 1024u * 1024u)
#define KMS_AUDIT_MAX_BYTES (256u << 20) /* audit.log read at most (chain checks) */
#define KMS_AUDIT_EVENT_MAX 700          /* bytes of one audit event */

/* Wrapped secret file ("CSTLWRP1"): magic | log2n u8 | r u32 | p u32 |
 * salt[16] | nonce[12] | len u16 | GCM(secret) | tag[16]; AAD = header. */
int kms_wrap_encode(const uint8_t *secret, size_t len, const char *pass, unsigned log2n, uint8_t **out,
	size_t *out_len) WARN_UNUSED;
/* secret must hold cap bytes. CE_PASSPHRASE on a wrong passphrase. */
int kms_wrap_decode(const uint8_t *buf, size_t len, const char *pass, uint8_t *secret, size_t cap,
	size_t *secret_len) WARN_UNUSED;

/* Chip list (CSV): one chip id per line (decimal or 0x-hex u64), optional
 * "chip_id" header line, '#' comments, blank lines, CRLF. Duplicates and
 * malformed lines are refused (CE_FORMAT / CE_EXISTS, *bad_line set).
 * *ids malloc'ed, sorted increasing. */
int kms_chips_parse(const uint8_t *buf, size_t len, uint64_t **ids, size_t *n, size_t *bad_line) WARN_UNUSED;
/* The same from a command-line value: "@FILE" (such a list) or "ID,ID,...". */
int kms_chips_arg(const char *s, uint64_t **ids, size_t *n) WARN_UNUSED;

struct kms;
struct p11_config;      /* kms/p11.h */
struct module_manifest; /* cas/module.h */

#define KMS_MASTER_PASSPHRASE 1
#define KMS_MASTER_PKCS11 2

/* Create a KMS in dir (created if missing, must not hold a KMS: CE_EXISTS). */
int kms_init(const char *dir, const char *pass, unsigned scrypt_log2n) WARN_UNUSED;
/* Same, but MK is encrypted by a fresh non-extractable AES-256 key
 * generated on the token cfg->token (logged in with cfg->pin). Token
 * errors as p11_open (CE_PASSPHRASE wrong PIN, CE_NOT_FOUND no token). */
int kms_init_p11(const char *dir, const struct p11_config *cfg) WARN_UNUSED;
/* Open: unwrap MK, decrypt the state, check the audit log against the
 * anchor (CE_MAC if it was cut or replaced). The token label comes from
 * master.key (cfg->token is ignored by kms_open_p11). CE_UNSUPPORTED if
 * the master key is of the other kind. */
int kms_open(const char *dir, const char *pass, struct kms **out) WARN_UNUSED;
int kms_open_p11(const char *dir, const struct p11_config *cfg, struct kms **out) WARN_UNUSED;
/* *kind = KMS_MASTER_* of dir/master.key; CE_NOT_FOUND, CE_FORMAT. */
int kms_master_kind(const char *dir, int *kind) WARN_UNUSED;
void kms_close(struct kms *k);
/* Show a progress bar on stderr for long operations (only if a tty). */
void kms_set_progress(struct kms *k, bool on);
void kms_public_key(const struct kms *k, uint8_t pub[32]);
/* 0 or CE_NOT_FOUND (no TA recorded yet). */
int kms_trust_root_hash(const struct kms *k, uint8_t out[32]) WARN_UNUSED;

/* Import a chip list and issue a random root key per chip. Chip ids
 * already in an earlier order are refused (CE_EXISTS). */
int kms_order_import(struct kms *k, const uint8_t *csv, size_t len, uint32_t *order, size_t *count) WARN_UNUSED;
/* Black-box file for one order, encrypted to bb_pub, signed. *out malloc'ed. */
int kms_blackbox_export(struct kms *k, uint32_t order, const uint8_t bb_pub[32], uint8_t **out,
	size_t *out_len) WARN_UNUSED;
int kms_vendor_add(struct kms *k, uint32_t vendor_id, const uint8_t pub[32]) WARN_UNUSED;
/* K_v(chip) for every chip of order (0 = all orders) to the vendor's key.
 * CE_NOT_FOUND unknown vendor, CE_BLOCKED revoked vendor. */
int kms_vendor_export(struct kms *k, uint32_t vendor_id, uint32_t order, uint8_t **out,
	size_t *out_len) WARN_UNUSED;
int kms_revoke_vendor(struct kms *k, uint32_t vendor_id) WARN_UNUSED;

/* Trust authority: a wrapped Ed25519 key file of its own. */
int kms_ta_init(const char *path, const char *pass, unsigned scrypt_log2n, uint8_t pub[32]) WARN_UNUSED;
int kms_ta_load(const char *path, const char *pass, uint8_t priv[32]) WARN_UNUSED;
/* TA certifies the KMS operator key; records TA pub + cert in the state.
 * out must hold CERT_MAX_BYTES. */
int kms_operator_certify(struct kms *k, const uint8_t ta_priv[32], const char *name, uint32_t days, uint64_t serial,
	uint8_t *out, size_t *out_len) WARN_UNUSED;
/* Add a serial to the TA's CRL (dir/crl.bin, signed by ta_priv). */
int kms_revoke_cert(struct kms *k, const uint8_t ta_priv[32], uint64_t serial, uint8_t **crl,
	size_t *crl_len) WARN_UNUSED;

/* Sign a CAS client module (cas/module.h format) with the KMS operator
 * key, embedding the TA public key and the operator certificate recorded
 * by kms_operator_certify; the key never leaves the KMS. m->payload_sha256
 * is ignored (module_sign computes it). Refused before signing, and
 * nothing audited: no certificate yet (CE_NOT_FOUND); the certificate not
 * valid now (CE_EXPIRED); its serial in dir/crl.bin (CE_BLOCKED); a
 * crl.bin the TA did not sign (CE_MAC / CE_FORMAT); a payload that does
 * not parse or names another vendor_id (CE_FORMAT / CE_RANGE). Every
 * signed module is audited ("module sign vendor=... sha256=..."); if the
 * audit fails the module is not returned. *out malloc'ed, caller frees. */
int kms_module_sign(struct kms *k, const struct module_manifest *m, const uint8_t *payload, size_t payload_len,
	uint8_t **out, size_t *out_len) WARN_UNUSED;

/* Audit log of dir: append one event (no tab/newline) / verify the chain.
 * Line: seq \t unix_s \t event \t prev_hash_hex \t hash_hex, with
 * hash = SHA-256(prev_hash || "seq\tunix_s\tevent"), prev of line 1 = 0^32.
 * verify: 0 and *n entries, or CE_MAC with *bad_line. */
int kms_audit_append(const char *dir, const char *event) WARN_UNUSED;
int kms_audit_verify(const char *dir, size_t *n, size_t *bad_line) WARN_UNUSED;
/* The chain check of audit.log's bytes (buf, len), through the cursor: *n
 * lines, the last hash in head, the hash of line at_line in at_hash (0^32
 * for at_line 0 or a shorter log). 0, or CE_MAC with *bad_line (1-based);
 * a line must be exactly "seq\tat\tevent\tprev-hex\thash-hex\n". */
int kms_audit_walk_buf(const uint8_t *buf, size_t len, size_t at_line, uint8_t at_hash[32], size_t *n,
	uint8_t head[32], size_t *bad_line) WARN_UNUSED;
/* Chain plus anchor: the log holds at least the anchored entry count and
 * the anchored entry is the last one the KMS wrote (lines after it, from
 * a crash or kms_audit_append, are accepted). 0, or CE_MAC + *bad_line. */
int kms_audit_check(const struct kms *k, size_t *n, size_t *bad_line) WARN_UNUSED;

#endif
