/*
 * p11.h - the KMS's use of a PKCS#11 token (an HSM, or SoftHSM2 in tests):
 * load the module with dlopen, open a session on the token found by its
 * label, log in as the user, and use one AES-256 secret key that lives on
 * the token (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE) to
 * encrypt and decrypt the KMS master key with CKM_AES_GCM (C_Encrypt /
 * C_Decrypt, 12-byte IV chosen by us, 128-bit tag, our AAD).
 *
 * GCM and not CKM_AES_KEY_WRAP_PAD: C_WrapKey would need the master key to
 * be a token object first; C_Encrypt on 32 bytes is the same protection and
 * SoftHSM2 2.6 supports it with caller-chosen IVs and AAD. References:
 * PKCS#11 v2.40 (OASIS), NIST SP 800-38D.
 *
 * One struct p11 = one loaded module + one logged-in R/W session. Not
 * thread-safe; open one per thread. The PIN is a secret: callers read it
 * from a file or the environment, never argv, and wipe it.
 */
#ifndef CASTELLAN_KMS_P11_H
#define CASTELLAN_KMS_P11_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define P11_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define P11_DEFAULT_TOKEN "castellan"
#define P11_PIN_ENV "CASTELLAN_PKCS11_PIN"
#define P11_LABEL_MAX 32 /* CK_TOKEN_INFO.label is 32 blank-padded bytes */
#define P11_KEY_ID_BYTES 16
#define P11_IV_BYTES 12
#define P11_TAG_BYTES 16

struct p11_config {
	const char *module; /* path of the module .so; NULL = P11_DEFAULT_MODULE */
	const char *token;  /* token label (1..32 bytes); NULL = P11_DEFAULT_TOKEN */
	const char *pin;    /* user PIN: secret, required */
};

struct p11;

/* Load, initialize, find the token, open a session, log in.
 * 0; CE_ARG (bad config), CE_NOT_FOUND (module cannot be loaded, or no
 * token with that label: e.g. removed), CE_PASSPHRASE (wrong PIN),
 * CE_BLOCKED (PIN locked), CE_CRYPTO (any other PKCS#11 failure).
 * *out freed with p11_close. */
int p11_open(const struct p11_config *cfg, struct p11 **out) WARN_UNUSED;
/* Log out, close the session, C_Finalize (if we initialized). NULL ok. */
void p11_close(struct p11 *p);

/* Generate a fresh AES-256 token key with a random CKA_ID (written to id)
 * and CKA_LABEL label; it can encrypt/decrypt and can never leave the
 * token. 0 or CE_CRYPTO. */
int p11_key_generate(struct p11 *p, const char *label, uint8_t id[P11_KEY_ID_BYTES]) WARN_UNUSED;
/* 0 if the key with this CKA_ID is an AES-256 key that is CKA_SENSITIVE,
 * not CKA_EXTRACTABLE, and whose CKA_VALUE the token refuses to read;
 * CE_BLOCKED if not (someone weakened it), CE_NOT_FOUND, CE_CRYPTO. */
int p11_key_check(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES]) WARN_UNUSED;
/* Remove the key with this CKA_ID (undo of a failed init). */
int p11_key_destroy(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES]) WARN_UNUSED;

/* AES-256-GCM on the token with the key of CKA_ID id. encrypt: out holds
 * len + 16 bytes (ciphertext then tag). decrypt: in is ciphertext||tag
 * (len >= 16), out holds len - 16 bytes. len <= 4096.
 * 0; CE_NOT_FOUND (no such key: other token, or deleted); CE_MAC (tag
 * mismatch); CE_CRYPTO. */
int p11_gcm_encrypt(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES], const uint8_t iv[P11_IV_BYTES],
	const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out) WARN_UNUSED;
int p11_gcm_decrypt(struct p11 *p, const uint8_t id[P11_KEY_ID_BYTES], const uint8_t iv[P11_IV_BYTES],
	const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out) WARN_UNUSED;

/* The KMS's master.key when the master key is wrapped on a token
 * (docs/kms.md), big-endian:
 *   "CSTLP11W" | version u8 (1) | label_len u8 (1..32) | token label (no NUL)
 *   | key id[16] | iv[12] | len u16 (= 32) | ciphertext[len] | tag[16]
 * AAD = every byte before the ciphertext. The parse is offline (no token):
 * it checks the layout only; the tag is checked by p11_gcm_decrypt. */
#define P11W_FILE_MAGIC "CSTLP11W"
#define P11W_FILE_MAX 512

struct p11_wrapped {
	char token[P11_LABEL_MAX + 1]; /* NUL-terminated label */
	uint8_t id[P11_KEY_ID_BYTES];
	uint8_t iv[P11_IV_BYTES];
	size_t aad_len;    /* bytes before the ciphertext */
	const uint8_t *ct; /* ct_len + P11_TAG_BYTES bytes (ciphertext || tag), points into buf */
	size_t ct_len;     /* always 32 */
};

/* Bounded parse of len bytes. 0; CE_FORMAT (bad magic, size, label,
 * length, trailing bytes, len > P11W_FILE_MAX); CE_UNSUPPORTED (version);
 * CE_ARG. *w zeroed on error. */
int p11_wrapped_parse(const uint8_t *buf, size_t len, struct p11_wrapped *w) WARN_UNUSED;

#endif
