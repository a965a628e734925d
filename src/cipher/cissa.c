/*
 * cissa.c - DVB-CISSA v1 back end (ETSI TS 103 127): AES-128 in CBC mode
 * over each TS payload on its own, IV "DVBTMCPTAESCISSA" for every packet,
 * only the whole 16-byte blocks are processed; the residue (< 16 bytes, the
 * whole payload if it is shorter than a block) stays in the clear.
 *
 * Portable path: OpenSSL EVP, one context per parity and direction, keyed
 * once in cissa_set_key; per packet only the IV is re-set. Fast path:
 * cissa_aesni.c, chosen by cipher.c when the CPU has AES-NI; both give the
 * same bytes (tests/cipher checks this on random data).
 */
#include <string.h>
#include <openssl/evp.h>
#include "cipher/cipher_impl.h"
#include "lib/err.h"
#include "lib/util.h"

const uint8_t cissa_iv[CISSA_BLOCK] = {'D', 'V', 'B', 'T', 'M', 'C', 'P', 'T',
				       'A', 'E', 'S', 'C', 'I', 'S', 'S', 'A'};

int cissa_init(struct cissa_state *s)
{
	memset(s, 0, sizeof(*s));
	for (int p = 0; p < 2; p++) {
		s->enc[p] = EVP_CIPHER_CTX_new();
		s->dec[p] = EVP_CIPHER_CTX_new();
		if (!s->enc[p] || !s->dec[p]) {
			cissa_cleanup(s);
			return CE_NOMEM;
		}
	}
	return 0;
}

void cissa_cleanup(struct cissa_state *s)
{
	for (int p = 0; p < 2; p++) {
		EVP_CIPHER_CTX_free(s->enc[p]); /* frees (and cleanses) the key schedule */
		EVP_CIPHER_CTX_free(s->dec[p]);
	}
	secret_wipe(s, sizeof(*s));
}

int cissa_set_key(struct cissa_state *s, int parity, const uint8_t cw[16])
{
	if (EVP_EncryptInit_ex(s->enc[parity], EVP_aes_128_cbc(), NULL, cw, cissa_iv) != 1 ||
	    EVP_CIPHER_CTX_set_padding(s->enc[parity], 0) != 1 ||
	    EVP_DecryptInit_ex(s->dec[parity], EVP_aes_128_cbc(), NULL, cw, cissa_iv) != 1 ||
	    EVP_CIPHER_CTX_set_padding(s->dec[parity], 0) != 1)
		return CE_CRYPTO;
	if (cissa_aesni_available())
		cissa_aesni_expand(cw, s->ek[parity], s->dk[parity]);
	return 0;
}

void cissa_clear_key(struct cissa_state *s, int parity)
{
	/* EVP_CIPHER_CTX_reset cleanses the cipher data (key schedule). */
	EVP_CIPHER_CTX_reset(s->enc[parity]);
	EVP_CIPHER_CTX_reset(s->dec[parity]);
	secret_wipe(s->ek[parity], sizeof(s->ek[parity]));
	secret_wipe(s->dk[parity], sizeof(s->dk[parity]));
}

static int evp_run(EVP_CIPHER_CTX *ctx, const struct cipher_payload *pl, size_t n, bool enc)
{
	for (size_t i = 0; i < n; i++) {
		int whole = (int)(pl[i].len & ~(unsigned)(CISSA_BLOCK - 1));
		int outl = 0;

		if (whole == 0)
			continue;
		if (enc) {
			if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, cissa_iv) != 1 ||
			    EVP_EncryptUpdate(ctx, pl[i].p, &outl, pl[i].p, whole) != 1)
				return CE_CRYPTO;
		} else {
			if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, cissa_iv) != 1 ||
			    EVP_DecryptUpdate(ctx, pl[i].p, &outl, pl[i].p, whole) != 1)
				return CE_CRYPTO;
		}
		if (outl != whole)
			return CE_CRYPTO;
	}
	return 0;
}

int cissa_run(struct cissa_state *s, int parity, const struct cipher_payload *pl, size_t n, bool enc)
{
	if (s->aesni) {
		cissa_aesni_run(enc ? s->ek[parity] : s->dk[parity], pl, n, enc);
		return 0;
	}
	return evp_run(enc ? s->enc[parity] : s->dec[parity], pl, n, enc);
}
