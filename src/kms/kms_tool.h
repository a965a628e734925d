/*
 * kms_tool.h - the KMS as `castellan kms` drives it (docs/kms.md): where its
 * secrets come from (the KMS passphrase, the PKCS#11 user PIN, the trust
 * authority's passphrase: a file's first line or the environment, never an
 * argument), opening a KMS directory of either kind, writing a new output
 * file without overwriting one, and the vendor's side of a vendor key file
 * (verify, decrypt, list, write the keys as CSV). Failures are said on
 * stderr prefixed "kms: "; key material is never printed.
 */
#ifndef CASTELLAN_KMS_KMS_TOOL_H
#define CASTELLAN_KMS_KMS_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define KMS_TA_PASSPHRASE_ENV "CASTELLAN_TA_PASSPHRASE"

struct kms;

/* A passphrase: file's first line; with file NULL and $env set, a copy of
 * it (CE_ARG if empty); else passphrase_get(NULL) (the credential, then
 * $CASTELLAN_PASSPHRASE). Says why on failure. Free with kms_secret_free. */
int kms_pass_get(const char *file, const char *env, char **out) WARN_UNUSED;
/* The token user PIN: file's first line or $CASTELLAN_PKCS11_PIN. Says
 * why on failure. Free with kms_secret_free. */
int kms_pin_get(const char *file, char **out) WARN_UNUSED;
/* Wipe and free a passphrase or PIN; NULL is a no-op. */
void kms_secret_free(char *p);

/* How to open a KMS directory: its master key under the passphrase
 * (passphrase_file or the environment) or, if the directory says PKCS#11,
 * under the token's key (pkcs11_module, PIN from pin_file or $env). */
struct kms_open_params {
	const char *dir, *passphrase_file, *pin_file, *pkcs11_module;
};
/* Open it with progress output on; says why on failure (CE_ARG: no dir). */
int kms_open_dir(const struct kms_open_params *p, struct kms **out) WARN_UNUSED;
/* The trust authority's private key from path (passphrase from
 * ta_passphrase_file or $CASTELLAN_TA_PASSPHRASE). Says why on failure. */
int kms_ta_open(const char *path, const char *ta_passphrase_file, uint8_t priv[32]) WARN_UNUSED;

/* Write buf to a new file path (0644): CE_ARG when path is NULL ("--out is
 * required"), CE_EXISTS when it exists (refused); said on stderr. */
int kms_write_new(const char *path, const uint8_t *buf, size_t len) WARN_UNUSED;

/* `kms module sign`: open the KMS (p), sign the payload under manifest m
 * (kms_module_sign: refused if the operator certificate expired or is
 * revoked) and write the module to the new file out; *mod_len its size.
 * 0 or CE_* (said; CE_EXISTS before the KMS is opened). */
struct module_manifest;
int kms_module_sign_file(const struct kms_open_params *p, const struct module_manifest *m, const uint8_t *payload,
	size_t payload_len, const char *out, size_t *mod_len) WARN_UNUSED;

/* The operator commands that open the KMS (p), do one thing and write its
 * file: 0 or CE_* (the KMS's, said when opening; the caller says the
 * rest). out is written new (kms_write_new) unless said otherwise.
 * operator certify: the TA (ta, its passphrase from ta_pfile or the
 * environment) certifies the KMS signing key as name for days, serial. */
int kms_operator_certify_file(const struct kms_open_params *p, const char *ta, const char *ta_pfile, const char *name,
	uint32_t days, uint64_t serial, const char *out) WARN_UNUSED;
/* revoke --cert: the TA revokes operator certificate serial; the CRL
 * goes to KMSDIR/crl.bin and, with out (overwritten), there too. */
int kms_revoke_cert_file(const struct kms_open_params *p, const char *ta, const char *ta_pfile, uint64_t serial,
	const char *out) WARN_UNUSED;
/* blackbox export: order's root keys to the black box whose X25519 public
 * key is in to_pub_file; *len the file's size. */
int kms_blackbox_export_file(const struct kms_open_params *p, uint32_t order, const char *to_pub_file,
	const char *out, size_t *len) WARN_UNUSED;
/* vendor add: register vendor id with the X25519 public key in pub_file. */
int kms_vendor_add_file(const struct kms_open_params *p, uint32_t id, const char *pub_file) WARN_UNUSED;
/* vendor export: K_v(chip) of vendor id for order (0: every order). */
int kms_vendor_export_file(const struct kms_open_params *p, uint32_t id, uint32_t order, const char *out,
	size_t *len) WARN_UNUSED;

/* Vendor side of `kms vendor open`: verify file's KMS signature with the
 * KMS public key in kms_pub_file, decrypt it with the X25519 key in
 * key_file, refuse a black-box file or (want_id != 0) another vendor's,
 * print the header on stdout and, with out_csv, write the keys there as
 * CSV (0600, refused if it exists). 0 or CE_* (said). */
int kms_vendor_open_file(const char *file, const char *key_file, const char *kms_pub_file, uint32_t want_id,
	const char *out_csv) WARN_UNUSED;

/* `kms init`: create the KMS in p->dir, its master key under the
 * passphrase (p->passphrase_file or the environment) or, with pkcs11,
 * under token's key (p->pkcs11_module, PIN from p->pin_file), then open it
 * and give its Ed25519 public key. 0, CE_* (the caller says it), or 1
 * when a secret could not be had (said). */
struct kms_init_params {
	const struct kms_open_params *open;
	bool pkcs11;
	const char *token;
	unsigned log2n;
};
int kms_tool_init(const struct kms_init_params *ip, uint8_t pub[32]) WARN_UNUSED;

/* `kms keygen`: a new key pair of type ("x25519" or "ed25519"), the
 * private key to the new file out (0600), the public one to pub_file.
 * 0 or CE_* (CE_EXISTS: out exists; the caller says it). */
int kms_keygen_files(const char *type, const char *out, const char *pub_file) WARN_UNUSED;

/* `kms ta init`: the trust authority's root key to out under its
 * passphrase (ta_pfile or $CASTELLAN_TA_PASSPHRASE), its public key to
 * pub_file and pub. 0, CE_* (the caller says it), or 1 when the
 * passphrase could not be had (said). */
int kms_ta_init_files(const char *out, const char *pub_file, const char *ta_pfile, unsigned log2n, uint8_t pub[32])
	WARN_UNUSED;

/* A random certificate serial in 1..2^63-1. 0 or CE_CRYPTO. */
int kms_serial_random(uint64_t *serial) WARN_UNUSED;

/* `kms pub`: open the KMS (p), give its Ed25519 public key. 0 or CE_*. */
int kms_pub_get(const struct kms_open_params *p, uint8_t pub[32]) WARN_UNUSED;

/* `kms order import`: read the chips CSV file csv (at most
 * KMS_MAX_CHIPS_FILE_BYTES), open the KMS (p) and import it as a new
 * order: *order its number, *n its chips. 0, CE_* (the KMS's; the caller
 * says it) or 1 when csv cannot be read (said). */
int kms_order_import_file(const struct kms_open_params *p, const char *csv, uint32_t *order, size_t *n) WARN_UNUSED;

/* `kms revoke --vendor`: open the KMS (p) and revoke vendor. 0 or CE_*. */
int kms_revoke_vendor_dir(const struct kms_open_params *p, uint32_t vendor) WARN_UNUSED;

/* `kms module sign` from its options: the payload is the file
 * payload_file (raw payload v1) or, without it, the ladder payload naming
 * keys_file under casid; signed as vendor/version/rollback into the new
 * file out (kms_module_sign_file). m is filled, *mod_len the module's
 * size. The exit status: 0, 1 (failed, said) or 2 (keys_file is not a
 * valid name, said). */
struct kms_module_params {
	uint32_t vendor, version, rollback;
	uint16_t casid;
	const char *keys_file, *payload_file, *out;
};
int kms_module_sign_params(const struct kms_open_params *p, const struct kms_module_params *mp,
	struct module_manifest *m, size_t *mod_len) WARN_UNUSED;

/* Whether the KMS passphrase or the PIN is at hand (an option of p or the
 * environment): `kms audit verify` then checks the anchor too. */
bool kms_secret_at_hand(const struct kms_open_params *p);

/* `kms audit verify`'s anchor: open the KMS (p; kms_open checks that the
 * encrypted state's last audit entry is in the log) and close it. 0 or
 * CE_* (said). */
int kms_audit_anchor_check(const struct kms_open_params *p) WARN_UNUSED;

#endif
