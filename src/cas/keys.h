/*
 * keys.h - the head-end keystore of one Castellan CAS instance, and the
 * package keys derived from it.
 *
 * Owns: the keystore file (encrypted at rest: scrypt passphrase KDF +
 * AES-256-GCM, see docs/key-files.md), the CAS identity it holds
 * (CA_system_id, key epoch length) and its package root key, and the
 * derivation of per-epoch package keys:
 *
 *   K_pkg(epoch, pkg) = KBKDF-CMAC-AES256(package_root,
 *                          label = "castellan package key",
 *                          context = epoch (u32 BE) || pkg (u8))   [SP 800-108 counter mode]
 *
 * for the packages 0..31 of the 32-bit access-criteria mask, and context =
 * epoch (u32 BE) || pkg (u16 BE) for the extended packages 32..65535 (a
 * context one byte longer: no input of one form is an input of the other)
 *
 * so keys rotate with time (epoch = unix_time / epoch_seconds) without the
 * keystore growing, and one epoch's key reveals nothing of another's. A box
 * is only ever given K_pkg values, never the root.
 *
 * Every struct holding key bytes is wiped by its _free/_wipe function.
 */
#ifndef CASTELLAN_KEYS_H
#define CASTELLAN_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define PKG_KEY_BYTES 16
#define CAS_MAX_PACKAGES 32      /* packages of the 32-bit mask: ids 0..31 */
#define CAS_PACKAGE_IDS 65536    /* every package id: 0..31 the mask, 32..65535 extended */
#define CAS_MAX_EXT_PACKAGES 32  /* extended packages (ids >= 32) one card holds at once */
#define KEYSTORE_ROOT_BYTES 32
#define KEYSTORE_MAX_FILE_BYTES (64 * 1024)
#define KEYSTORE_DEFAULT_EPOCH_SECONDS (7u * 24u * 3600u)
#define KEYSTORE_PASSPHRASE_ENV "CASTELLAN_PASSPHRASE"

/* One package key of one epoch. Wipe with pkg_key_wipe. */
struct pkg_key {
	uint32_t epoch;
	uint16_t pkg; /* 0..31: bit of the access-criteria mask; 32..65535: extended */
	uint8_t key[PKG_KEY_BYTES];
};
void pkg_key_wipe(struct pkg_key *k);

struct keystore; /* opaque; holds the package root key */

/* A fresh keystore with a random package root (RAND_bytes).
 * epoch_seconds 0 = default. */
int keystore_generate(uint16_t ca_system_id, uint32_t epoch_seconds, struct keystore **out) WARN_UNUSED;
/* Read and decrypt a keystore file. CE_PASSPHRASE for a wrong passphrase
 * or a file that was altered; CE_FORMAT for a malformed file. */
int keystore_load(const char *path, const char *passphrase, struct keystore **out) WARN_UNUSED;
/* Encrypt and write (atomically, mode 0600). */
int keystore_save(const struct keystore *ks, const char *path, const char *passphrase) WARN_UNUSED;
/* The same two over memory buffers (for tests and fuzzing). */
int keystore_decode(const uint8_t *file, size_t len, const char *passphrase, struct keystore **out) WARN_UNUSED;
int keystore_encode(const struct keystore *ks, const char *passphrase, uint8_t **out, size_t *out_len) WARN_UNUSED;
void keystore_free(struct keystore *ks);

/* scrypt work factors written by keystore_encode/keystore_save, and the
 * bounds keystore_decode accepts from a file (a file may not make us
 * allocate more than KEYSTORE_SCRYPT_MAX_MEM bytes: 128 * r * N). */
#define KEYSTORE_SCRYPT_LOG2N 15
#define KEYSTORE_SCRYPT_R 8
#define KEYSTORE_SCRYPT_P 1
#define KEYSTORE_SCRYPT_MIN_LOG2N 10
#define KEYSTORE_SCRYPT_MAX_LOG2N 20
#define KEYSTORE_SCRYPT_MAX_R 32
#define KEYSTORE_SCRYPT_MAX_P 4
#define KEYSTORE_SCRYPT_MAX_MEM (256u * 1024u * 1024u)
#define KEYSTORE_MIN_EPOCH_SECONDS 60u
#define KEYSTORE_MAX_EPOCH_SECONDS (366u * 24u * 3600u)
/* Size of a keystore file (it has no variable part). */
#define KEYSTORE_FILE_BYTES 107
/* keystore_encode with explicit scrypt factors (within the bounds above:
 * CE_RANGE otherwise). For tests, fuzz seeds and slow machines. */
int keystore_encode_params(const struct keystore *ks, const char *passphrase, unsigned log2n,
	uint32_t r, uint32_t p, uint8_t **out, size_t *out_len) WARN_UNUSED;
/* A keystore around a given root (restore from backup, known-answer tests).
 * The root is copied; the caller wipes its own. */
int keystore_from_root(uint16_t ca_system_id, uint32_t epoch_seconds, const uint8_t root[KEYSTORE_ROOT_BYTES],
	struct keystore **out) WARN_UNUSED;
/* Creation time (unix seconds) recorded in the keystore. */
uint64_t keystore_created(const struct keystore *ks);

uint16_t keystore_ca_system_id(const struct keystore *ks);
uint32_t keystore_epoch_seconds(const struct keystore *ks);
/* Epoch number in force at unix time t (seconds). */
uint32_t keystore_epoch_at(const struct keystore *ks, uint64_t unix_s);
/* Short public fingerprint of the root (first 8 bytes of SHA-256), for logs. */
void keystore_fingerprint(const struct keystore *ks, char out[17]);
/* Derive K_pkg(epoch, pkg). 0, CE_RANGE (pkg >= CAS_PACKAGE_IDS), CE_CRYPTO. */
int keystore_package_key(const struct keystore *ks, uint32_t epoch, unsigned pkg, struct pkg_key *out) WARN_UNUSED;

/*
 * Card keys (docs/emm-format.md). Each card (box identity) has a 16-byte
 * K_card that authenticates and encrypts its unique EMMs:
 *
 *   card_root      = KBKDF-CMAC-AES256(package_root, label "castellan card root",
 *                                      no context, L = 256)
 *   K_card(serial) = KBKDF-CMAC-AES256(card_root, label "castellan card key",
 *                                      context = serial u64 BE, L = 128)
 *
 * card_root is derived when a keystore is created or loaded, so the keystore
 * file format is unchanged and old keystores keep working. (Issue 4 replaces
 * K_card by the chip's vendor key from the operator's KMS: card_key_derive
 * is the one place to change.)
 */
#define CARD_KEY_BYTES 16
struct card_kdf; /* opaque: card_root precomputation for fast K_card derivation */
/* 0, CE_NOMEM, CE_CRYPTO. Free with card_kdf_free (wipes). */
int card_kdf_new(const struct keystore *ks, struct card_kdf **out) WARN_UNUSED;
void card_kdf_free(struct card_kdf *d);
/* K_card(serial) into out. 0 or CE_CRYPTO (out wiped). About 2 AES blocks. */
int card_key_derive(struct card_kdf *d, uint64_t serial, uint8_t out[CARD_KEY_BYTES]) WARN_UNUSED;
/* One-shot convenience (slow: sets up a card_kdf each call). */
int keystore_card_key(const struct keystore *ks, uint64_t serial, uint8_t out[CARD_KEY_BYTES]) WARN_UNUSED;

/* Passphrase from --passphrase-file (first line; the file is refused,
 * CE_BLOCKED, when group or other may read it: chmod 600) or, if path is
 * NULL, from the systemd credential $CREDENTIALS_DIRECTORY/passphrase
 * (LoadCredential=passphrase:FILE) when there is one (the same rules), else
 * from $CASTELLAN_PASSPHRASE: at the first such call the variable is
 * copied, wiped and unset (child processes and /proc/PID/environ no longer
 * show it); later calls of this process get the copy until
 * passphrase_forget (which wipes it; also run at exit). Caller frees with
 * secret_free(p, strlen(p)). Not thread-safe: call it from main's thread. */
#define PASSPHRASE_FILE_MAX_BYTES 4096
#define KEYSTORE_PASSPHRASE_CREDENTIAL "passphrase"
int passphrase_get(const char *path, char **out) WARN_UNUSED;
/* Why passphrase_get(path) failed with r, in words that name the fix
 * (e.g. "PATH: its first line is empty; put the passphrase there"). Writes
 * into buf (always NUL-terminated) and returns it. */
const char *passphrase_why(const char *path, int r, char *buf, size_t cap);

void passphrase_forget(void);

/* The strength a new keystore's passphrase needs (`keys init`): at least
 * PASSPHRASE_MIN_BYTES bytes and PASSPHRASE_MIN_DISTINCT different ones.
 * 0 or CE_RANGE. */
#define PASSPHRASE_MIN_BYTES 12
#define PASSPHRASE_MIN_DISTINCT 6
int passphrase_check_strength(const char *p) WARN_UNUSED;

#endif
