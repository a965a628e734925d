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

#endif
