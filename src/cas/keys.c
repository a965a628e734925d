/*
 * keys.c - the head-end keystore file and package key derivation (keys.h).
 *
 * File format (docs/key-files.md has the byte table), 107 bytes:
 *   "CSTLKS01" | log2(N) u8 | r u32 | p u32 | salt[16] | nonce[12]
 *   | AES-256-GCM(body[46]) | tag[16]
 * key = scrypt(passphrase, salt, N, r, p) (RFC 7914), AAD = the 45 header
 * bytes (the crypto/pwseal.h layout with no ext bytes), body = ca_system_id u16 | epoch_seconds u32 | created u64 | root[32].
 *
 * K_pkg(epoch, pkg) = KBKDF (NIST SP 800-108 counter mode, CMAC-AES-256,
 * OpenSSL 3 EVP_KDF "KBKDF") with key = root, label = "castellan package
 * key", context = epoch u32 BE || pkg u8, L = 128 bits.
 *
 * card_root = KBKDF(root, label "castellan card root", L = 256 bits), derived
 * at create/load time (not in the file); K_card(serial) = KBKDF(card_root,
 * label "castellan card key", context = serial u64 BE, L = 128 bits),
 * computed as raw CMAC blocks for speed (card_key_derive).
 *
 * Normative references: RFC 7914 (scrypt), NIST SP 800-38D (GCM),
 * NIST SP 800-108r1 (KBKDF), NIST SP 800-38B (CMAC).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "lib/bytes.h"
#include "cas/keys.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "crypto/kdf.h"
#include "crypto/pwseal.h"
#include "lib/util.h"

#define KS_MAGIC "CSTLKS01"
#define KS_BODY_BYTES (2 + 4 + 8 + KEYSTORE_ROOT_BYTES) /* 46 */
#define PKG_LABEL "castellan package key"
#define CARD_ROOT_LABEL "castellan card root"
#define CARD_KEY_LABEL "castellan card key"
#define CARD_KEY_LABEL_BYTES (sizeof(CARD_KEY_LABEL) - 1) /* 18 */

_Static_assert(PWSEAL_BYTES(0, KS_BODY_BYTES) == KEYSTORE_FILE_BYTES, "keystore size");

struct keystore {
	uint16_t ca_system_id;
	uint32_t epoch_seconds;
	uint64_t created_s;
	uint8_t root[KEYSTORE_ROOT_BYTES]; /* the package root: secret */
	/* Derived from root at create/load time (not stored in the file):
	 * the root of the card keys (keys.h). Secret. */
	uint8_t card_root[KEYSTORE_ROOT_BYTES];
};

static int kbkdf_cmac(const uint8_t *key, size_t key_len, const char *label, const uint8_t *ctxt, size_t ctxt_len,
	uint8_t *out, size_t out_len);

/* card_root = KBKDF(root, "castellan card root", no context, 256 bits). */
static int derive_card_root(struct keystore *ks)
{
	return kbkdf_cmac(ks->root, sizeof(ks->root), CARD_ROOT_LABEL, NULL, 0, ks->card_root, sizeof(ks->card_root));
}

void pkg_key_wipe(struct pkg_key *k)
{
	if (k)
		OPENSSL_cleanse(k, sizeof(*k));
}

void keystore_free(struct keystore *ks)
{
	if (!ks)
		return;
	OPENSSL_cleanse(ks, sizeof(*ks));
	free(ks);
}

static bool epoch_seconds_ok(uint32_t s)
{
	return s >= KEYSTORE_MIN_EPOCH_SECONDS && s <= KEYSTORE_MAX_EPOCH_SECONDS;
}

int keystore_generate(uint16_t ca_system_id, uint32_t epoch_seconds, struct keystore **out)
{
	struct keystore *ks;

	*out = NULL;
	if (epoch_seconds == 0)
		epoch_seconds = KEYSTORE_DEFAULT_EPOCH_SECONDS;
	if (!epoch_seconds_ok(epoch_seconds))
		return CE_RANGE;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return CE_NOMEM;
	ks->ca_system_id = ca_system_id;
	ks->epoch_seconds = epoch_seconds;
	ks->created_s = now_wall_ms() / 1000u;
	if (RAND_bytes(ks->root, sizeof(ks->root)) != 1 || derive_card_root(ks) != 0) {
		keystore_free(ks);
		return CE_CRYPTO;
	}
	*out = ks;
	return 0;
}

int keystore_from_root(uint16_t ca_system_id, uint32_t epoch_seconds, const uint8_t root[KEYSTORE_ROOT_BYTES],
	struct keystore **out)
{
	int r;

	*out = NULL;
	if (!root)
		return CE_ARG;
	if ((r = keystore_generate(ca_system_id, epoch_seconds, out)) != 0)
		return r;
	memcpy((*out)->root, root, KEYSTORE_ROOT_BYTES);
	if (derive_card_root(*out) != 0) {
		keystore_free(*out);
		*out = NULL;
		return CE_CRYPTO;
	}
	return 0;
}

uint16_t keystore_ca_system_id(const struct keystore *ks) { return ks->ca_system_id; }
uint32_t keystore_epoch_seconds(const struct keystore *ks) { return ks->epoch_seconds; }
uint64_t keystore_created(const struct keystore *ks) { return ks->created_s; }

uint32_t keystore_epoch_at(const struct keystore *ks, uint64_t unix_s)
{
	uint64_t e = unix_s / ks->epoch_seconds;

	return e > UINT32_MAX ? UINT32_MAX : (uint32_t)e;
}

void keystore_fingerprint(const struct keystore *ks, char out[17])
{
	/* Domain-separated so the fingerprint is not a plain hash of the root. */
	static const char dom[] = "castellan keystore fingerprint";
	uint8_t md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, dom, sizeof(dom) - 1) != 1 ||
	    EVP_DigestUpdate(ctx, ks->root, sizeof(ks->root)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		memset(md, 0, sizeof(md));
	EVP_MD_CTX_free(ctx);
	hex_encode(md, 8, out);
}

/* NIST SP 800-108 counter mode, CMAC-AES-256 (crypto/kdf.h). */
static int kbkdf_cmac(const uint8_t *key, size_t key_len, const char *label, const uint8_t *ctxt, size_t ctxt_len,
	uint8_t *out, size_t out_len)
{
	return crypto_kbkdf_cmac(key, key_len, label, strlen(label), ctxt, ctxt_len, out, out_len);
}

/*
 * Fast K_card: the KBKDF input for one 128-bit block is 35 bytes,
 *   00000001 | "castellan card key" (18) | 00 | serial (8) | 00000080,
 * i.e. CMAC blocks B1 = 00000001 "castellan ca" (constant), B2 = "rd key" 00
 * serial[0..7] 00, B3 = 00 00 80 (partial: padded 80 00.., XOR K2).
 * E(B1) and K2 are computed once, so each card costs two AES-256 blocks.
 * tests/cas/test_emm.c checks the result against OpenSSL's KBKDF.
 */
struct card_kdf {
	EVP_CIPHER_CTX *ecb;  /* AES-256-ECB under card_root, no padding */
	uint8_t x1[16];       /* E(B1): secret */
	uint8_t last[16];     /* padded B3 XOR K2: secret */
};

static int aes_block(EVP_CIPHER_CTX *c, const uint8_t in[16], uint8_t out[16])
{
	int l = 0;

	return EVP_EncryptUpdate(c, out, &l, in, 16) == 1 && l == 16 ? 0 : CE_CRYPTO;
}

void card_kdf_free(struct card_kdf *d)
{
	if (!d)
		return;
	EVP_CIPHER_CTX_free(d->ecb);
	OPENSSL_cleanse(d, sizeof(*d));
	free(d);
}

int card_kdf_new(const struct keystore *ks, struct card_kdf **out)
{
	static const uint8_t zero[16];
	uint8_t l[16], k1[16], k2[16], b1[16];
	struct card_kdf *d;
	int r = CE_CRYPTO;

	*out = NULL;
	if (!ks)
		return CE_ARG;
	d = calloc(1, sizeof(*d));
	if (!d)
		return CE_NOMEM;
	d->ecb = EVP_CIPHER_CTX_new();
	if (!d->ecb || EVP_EncryptInit_ex(d->ecb, EVP_aes_256_ecb(), NULL, ks->card_root, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(d->ecb, 0) != 1)
		goto out;
	/* CMAC subkeys (SP 800-38B 6.1): L = E(0), K1 = L<<1 ^ Rb, K2 = K1<<1 ^ Rb. */
	if (aes_block(d->ecb, zero, l) != 0)
		goto out;
	for (int i = 0; i < 16; i++)
		k1[i] = (uint8_t)((l[i] << 1) | (i < 15 ? l[i + 1] >> 7 : 0));
	if (l[0] & 0x80)
		k1[15] ^= 0x87;
	for (int i = 0; i < 16; i++)
		k2[i] = (uint8_t)((k1[i] << 1) | (i < 15 ? k1[i + 1] >> 7 : 0));
	if (k1[0] & 0x80)
		k2[15] ^= 0x87;
	put_be32(b1, 1);
	memcpy(b1 + 4, CARD_KEY_LABEL, 12);
	if (aes_block(d->ecb, b1, d->x1) != 0)
		goto out;
	/* B3: the last 3 bytes of L = 0x00000080, then the 10* padding. */
	memset(d->last, 0, sizeof(d->last));
	d->last[2] = 0x80;
	d->last[3] = 0x80;
	for (int i = 0; i < 16; i++)
		d->last[i] ^= k2[i];
	*out = d;
	d = NULL;
	r = 0;
out:
	OPENSSL_cleanse(l, sizeof(l));
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	card_kdf_free(d);
	return r;
}

int card_key_derive(struct card_kdf *d, uint64_t serial, uint8_t out[CARD_KEY_BYTES])
{
	uint8_t b[16], x[16];
	int r = CE_CRYPTO;

	_Static_assert(CARD_KEY_LABEL_BYTES == 18, "card label layout");
	if (!d || !out)
		return CE_ARG;
	memcpy(b, CARD_KEY_LABEL + 12, 6);
	b[6] = 0x00;
	for (int i = 0; i < 8; i++)
		b[7 + i] = (uint8_t)(serial >> (56 - 8 * i));
	b[15] = 0x00; /* first byte of L = 0x00000080 */
	for (int i = 0; i < 16; i++)
		b[i] ^= d->x1[i];
	if (aes_block(d->ecb, b, x) != 0)
		goto out;
	for (int i = 0; i < 16; i++)
		x[i] ^= d->last[i];
	if (aes_block(d->ecb, x, out) != 0)
		goto out;
	r = 0;
out:
	OPENSSL_cleanse(b, sizeof(b));
	OPENSSL_cleanse(x, sizeof(x));
	if (r != 0)
		OPENSSL_cleanse(out, CARD_KEY_BYTES);
	return r;
}

int keystore_card_key(const struct keystore *ks, uint64_t serial, uint8_t out[CARD_KEY_BYTES])
{
	struct card_kdf *d = NULL;
	int r;

	if ((r = card_kdf_new(ks, &d)) != 0)
		return r;
	r = card_key_derive(d, serial, out);
	card_kdf_free(d);
	return r;
}

int keystore_package_key(const struct keystore *ks, uint32_t epoch, unsigned pkg, struct pkg_key *out)
{
	uint8_t ctxt[5];
	int r;

	memset(out, 0, sizeof(*out));
	if (pkg >= CAS_MAX_PACKAGES)
		return CE_RANGE;
	put_be32(ctxt, epoch);
	ctxt[4] = (uint8_t)pkg;
	if ((r = kbkdf_cmac(ks->root, sizeof(ks->root), PKG_LABEL, ctxt, sizeof(ctxt), out->key, sizeof(out->key))) != 0) {
		OPENSSL_cleanse(out, sizeof(*out));
		return r;
	}
	out->epoch = epoch;
	out->pkg = (uint8_t)pkg;
	return 0;
}

static bool scrypt_params_ok(unsigned log2n, uint32_t r, uint32_t p)
{
	if (log2n < KEYSTORE_SCRYPT_MIN_LOG2N || log2n > KEYSTORE_SCRYPT_MAX_LOG2N)
		return false;
	if (r < 1 || r > KEYSTORE_SCRYPT_MAX_R || p < 1 || p > KEYSTORE_SCRYPT_MAX_P)
		return false;
	return 128ull * r * (1ull << log2n) <= KEYSTORE_SCRYPT_MAX_MEM;
}

int keystore_encode_params(const struct keystore *ks, const char *passphrase, unsigned log2n, uint32_t r,
	uint32_t p, uint8_t **out, size_t *out_len)
{
	uint8_t body[KS_BODY_BYTES];
	uint8_t *file = NULL;
	struct wbuf w;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (!ks || !passphrase || !*passphrase)
		return CE_ARG;
	if (!scrypt_params_ok(log2n, r, p))
		return CE_RANGE;
	file = calloc(1, KEYSTORE_FILE_BYTES);
	if (!file)
		return CE_NOMEM;
	wbuf_init(&w, body, sizeof(body));
	wbuf_u16(&w, ks->ca_system_id);
	wbuf_u32(&w, ks->epoch_seconds);
	wbuf_u64(&w, ks->created_s);
	wbuf_bytes(&w, ks->root, sizeof(ks->root));
	if ((rc = wbuf_status(&w)) != 0)
		goto out;
	rc = pwseal_seal(KS_MAGIC, log2n, r, p, passphrase, NULL, 0, body, sizeof(body), file, KEYSTORE_FILE_BYTES);
	if (rc != 0)
		goto out;
	*out = file;
	*out_len = KEYSTORE_FILE_BYTES;
	file = NULL;
out:
	OPENSSL_cleanse(body, sizeof(body));
	free(file);
	return rc;
}

int keystore_encode(const struct keystore *ks, const char *passphrase, uint8_t **out, size_t *out_len)
{
	return keystore_encode_params(ks, passphrase, KEYSTORE_SCRYPT_LOG2N, KEYSTORE_SCRYPT_R, KEYSTORE_SCRYPT_P,
		out, out_len);
}

int keystore_decode(const uint8_t *file, size_t len, const char *passphrase, struct keystore **out)
{
	struct cur b;
	uint8_t body[KS_BODY_BYTES];
	struct pwseal_view v;
	struct keystore *ks = NULL;
	int rc;

	*out = NULL;
	memset(body, 0, sizeof(body));
	if (!file || !passphrase || !*passphrase)
		return CE_ARG;
	if (len != KEYSTORE_FILE_BYTES)
		return CE_FORMAT;
	if (pwseal_parse(file, len, KS_MAGIC, 0, &v) != 0 || v.ct_len != KS_BODY_BYTES)
		return CE_FORMAT;
	/* Bound the work a file can demand before running scrypt. */
	if (!scrypt_params_ok(v.log2n, v.r, v.p))
		return CE_FORMAT;
	if ((rc = pwseal_open(file, &v, passphrase, body)) != 0)
		goto out;
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		rc = CE_NOMEM;
		goto out;
	}
	cur_init(&b, body, sizeof(body));
	cur_u16(&b, &ks->ca_system_id);
	cur_u32(&b, &ks->epoch_seconds);
	cur_u64(&b, &ks->created_s);
	cur_bytes(&b, ks->root, sizeof(ks->root));
	if ((rc = cur_end(&b)) != 0)
		goto out;
	/* Authentic but unusable (written by a broken tool): refuse. */
	if (!epoch_seconds_ok(ks->epoch_seconds)) {
		rc = CE_FORMAT;
		goto out;
	}
	if ((rc = derive_card_root(ks)) != 0)
		goto out;
	*out = ks;
	ks = NULL;
	rc = 0;
out:
	OPENSSL_cleanse(body, sizeof(body));
	keystore_free(ks);
	return rc;
}

int keystore_load(const char *path, const char *passphrase, struct keystore **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	r = file_read_all(path, KEYSTORE_MAX_FILE_BYTES, &buf, &len);
	if (r != 0)
		return r == CE_LIMIT ? CE_FORMAT : r;
	r = keystore_decode(buf, len, passphrase, out);
	free(buf);
	return r;
}

int keystore_save(const struct keystore *ks, const char *path, const char *passphrase)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = keystore_encode(ks, passphrase, &buf, &len)) != 0)
		return r;
	r = file_write_atomic(path, buf, len, 0600);
	free(buf);
	return r;
}

const char *passphrase_why(const char *path, int r, char *buf, size_t cap)
{
	if (path && r == CE_ARG)
		snprintf(buf, cap, "%s: its first line is empty (or holds a NUL byte); put the passphrase there", path);
	else if (path && r == CE_BLOCKED)
		snprintf(buf, cap, "%s: readable by group or other: chmod 600 it", path);
	else if (path)
		snprintf(buf, cap, "%s: %s", path, err_str(r));
	else if (r == CE_ARG)
		snprintf(buf, cap, "$%s is empty", KEYSTORE_PASSPHRASE_ENV);
	else if (r == CE_NOT_FOUND)
		snprintf(buf, cap, "none given");
	else
		snprintf(buf, cap, "%s", err_str(r));
	return buf;
}

/* A passphrase file is read through one descriptor (fstat, then read:
 * the checked file is the read file) and refused when group or other may
 * read it, as --db-file is. */
static int passphrase_file_read(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	struct stat st;
	int fd, r = CE_IO;

	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? CE_NOT_FOUND : CE_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	if ((st.st_mode & 077) != 0) {
		r = CE_BLOCKED;
		goto out;
	}
	while (*len < cap) {
		ssize_t got = read(fd, buf + *len, cap - *len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			goto out;
		if (got == 0)
			break;
		*len += (size_t)got;
	}
	r = 0;
out:
	close(fd);
	return r;
}

/* $CASTELLAN_PASSPHRASE once taken from the environment (passphrase_get). */
static char *env_pass;
static bool forget_registered;

void passphrase_forget(void)
{
	if (env_pass)
		secret_free(env_pass, strlen(env_pass));
	env_pass = NULL;
}

int passphrase_get(const char *path, char **out)
{
	uint8_t buf[PASSPHRASE_FILE_MAX_BYTES];
	const char *cred;
	char cp[4200];
	size_t len = 0, n;
	char *p = NULL;
	int r;

	*out = NULL;
	if (path) {
		r = passphrase_file_read(path, buf, sizeof(buf), &len);
		if (r == CE_BLOCKED)
			LOG_ERR("keys", "%s: readable by group or other: chmod 600 it", path);
		if (r != 0)
			goto wipe;
		for (n = 0; n < len && buf[n] != '\n' && buf[n] != '\r'; n++)
			;
		r = CE_ARG;
		if (n == 0 || memchr(buf, '\0', n))
			goto wipe;
		r = CE_NOMEM;
		p = malloc(n + 1);
		if (!p)
			goto wipe;
		memcpy(p, buf, n);
		p[n] = '\0';
		r = 0;
	wipe:
		OPENSSL_cleanse(buf, sizeof(buf));
		if (r != 0)
			return r;
	} else if ((cred = getenv("CREDENTIALS_DIRECTORY")) && *cred &&
		   (size_t)snprintf(cp, sizeof(cp), "%s/" KEYSTORE_PASSPHRASE_CREDENTIAL, cred) < sizeof(cp) &&
		   access(cp, F_OK) == 0) {
		return passphrase_get(cp, out); /* systemd LoadCredential=passphrase:FILE */
	} else {
		char *env = getenv(KEYSTORE_PASSPHRASE_ENV);

		/* Taken out of the environment at the first use (wiped and
		 * unset, so no child process, core dump or /proc/PID/environ
		 * reader of later finds it); kept for this process's later
		 * calls until passphrase_forget. */
		if (env && !env_pass) {
			bool empty = !*env;

			env_pass = empty ? NULL : strdup(env);
			OPENSSL_cleanse(env, strlen(env));
			unsetenv(KEYSTORE_PASSPHRASE_ENV);
			if (empty)
				return CE_ARG;
			if (!env_pass)
				return CE_NOMEM;
			if (!forget_registered)
				forget_registered = atexit(passphrase_forget) == 0;
		}
		if (!env_pass)
			return CE_NOT_FOUND;
		if (!(p = strdup(env_pass)))
			return CE_NOMEM;
	}
	*out = p;
	return 0;
}

int passphrase_check_strength(const char *p)
{
	bool seen[256] = { false };
	size_t len = p ? strlen(p) : 0, distinct = 0;

	if (len < PASSPHRASE_MIN_BYTES)
		return CE_RANGE;
	for (size_t i = 0; i < len; i++)
		if (!seen[(uint8_t)p[i]]) {
			seen[(uint8_t)p[i]] = true;
			distinct++;
		}
	return distinct < PASSPHRASE_MIN_DISTINCT ? CE_RANGE : 0;
}
