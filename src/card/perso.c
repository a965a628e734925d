/*
 * perso.c - the personalization file (perso.h): head-end issue, seal, and
 * the programming tool's open. Not part of the applet.
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "card/perso.h"
#include "cas/keys.h"
#include "lib/cursor.h"
#include "crypto/pwseal.h"

#define PF_MAGIC "CSTLPF01"
#define PF_SALT 16
#define PF_NONCE 12
#define PF_TAG 16
#define PF_AAD 39

int card_perso_issue(const struct keystore *ks, uint64_t serial, uint8_t max_channels, uint32_t window_s,
	uint32_t block_s, struct card_perso *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	if (!ks || serial == 0 || max_channels > CARD_MAX_CHANNELS)
		return CE_RANGE;
	p->ca_system_id = keystore_ca_system_id(ks);
	p->serial = serial;
	p->max_channels = max_channels ? max_channels : CARD_DEFAULT_MAX_CHANNELS;
	p->window_s = window_s ? window_s : CARD_DEFAULT_WINDOW_S;
	p->block_s = block_s ? block_s : CARD_DEFAULT_BLOCK_S;
	if ((r = keystore_card_key(ks, serial, p->k_card)) != 0)
		OPENSSL_cleanse(p, sizeof(*p));
	return r;
}

static int derive(const char *pass, const uint8_t *salt, unsigned log2n, uint8_t key[32])
{
	/* pwseal_scrypt sets OpenSSL's memory cap to what N needs (the default
	 * 32 MiB cap refuses log2n >= 15); same KDF, same file format. */
	return pwseal_scrypt(pass, salt, log2n, 8, 1, key);
}

int card_perso_seal(const struct card_perso *p, const char *passphrase, unsigned log2n,
	uint8_t out[CARD_PERSO_FILE_BYTES])
{
	uint8_t key[32], pt[CARD_PERSO_BYTES];
	struct wbuf w;
	int r;

	if (!p || !passphrase || log2n < CARD_PERSO_MIN_LOG2N || log2n > CARD_PERSO_MAX_LOG2N)
		return CE_RANGE;
	wbuf_init(&w, out, CARD_PERSO_FILE_BYTES);
	wbuf_bytes(&w, PF_MAGIC, 8);
	wbuf_u8(&w, (uint8_t)log2n);
	if (RAND_bytes(out + w.len, PF_SALT + PF_NONCE) != 1)
		return CE_CRYPTO;
	w.len += PF_SALT + PF_NONCE;
	wbuf_u16(&w, CARD_PERSO_BYTES);
	if ((r = wbuf_status(&w)) != 0)
		return r;
	card_perso_encode(p, pt);
	if ((r = derive(passphrase, out + 9, log2n, key)) == 0)
		r = aes256_gcm(1, key, out + 25, out, PF_AAD, pt, CARD_PERSO_BYTES, out + PF_AAD,
			out + PF_AAD + CARD_PERSO_BYTES);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(pt, sizeof(pt));
	return r;
}

int card_perso_open(const uint8_t *buf, size_t len, const char *passphrase, struct card_perso *p)
{
	uint8_t key[32], pt[CARD_PERSO_BYTES], magic[8], log2n = 0, tag[PF_TAG];
	uint16_t ct_len = 0;
	const uint8_t *salt, *nonce, *ct;
	struct cur c;
	int r;

	memset(p, 0, sizeof(*p));
	if (!buf || !passphrase)
		return CE_ARG;
	cur_init(&c, buf, len);
	cur_bytes(&c, magic, sizeof(magic));
	cur_u8(&c, &log2n);
	salt = cur_ptr(&c, PF_SALT);
	nonce = cur_ptr(&c, PF_NONCE);
	cur_u16(&c, &ct_len);
	if (c.err == 0 && memcmp(magic, PF_MAGIC, 8) != 0)
		cur_fail(&c, CE_FORMAT);
	if (c.err == 0 && (log2n < CARD_PERSO_MIN_LOG2N || log2n > CARD_PERSO_MAX_LOG2N || ct_len != CARD_PERSO_BYTES))
		cur_fail(&c, CE_RANGE);
	ct = cur_ptr(&c, CARD_PERSO_BYTES);
	cur_bytes(&c, tag, PF_TAG);
	if ((r = cur_end(&c)) != 0)
		return r;
	(void)salt;
	if ((r = derive(passphrase, buf + 9, log2n, key)) == 0)
		r = aes256_gcm(0, key, nonce, buf, PF_AAD, ct, CARD_PERSO_BYTES, pt, tag);
	if (r == 0)
		r = card_perso_decode(pt, sizeof(pt), p);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(pt, sizeof(pt));
	return r;
}
