/*
 * cipher_impl.h - internal interface between cipher.c (packets, bits,
 * batching) and the per-algorithm back ends: csa2.c (own bitslice engine),
 * cissa.c (OpenSSL EVP AES-128-CBC) and cissa_aesni.c (AES-NI, several
 * packets interleaved). Not for use outside src/cipher/.
 *
 * The back ends see only payloads (pointer + length, in place); they never
 * look at TS headers. Parity is 0 (even) or 1 (odd).
 */
#ifndef CASTELLAN_CIPHER_IMPL_H
#define CASTELLAN_CIPHER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

/* One TS payload to process in place (1..184 bytes). */
struct cipher_payload {
	uint8_t *p;
	unsigned len;
};

/* ---- CSA2 (csa2.c, engine in csa2_bs*.c) ---- */
#define CSA2_ROUNDS 56 /* block-cipher rounds (bytes of schedule) */

/* One CW's key schedule, computed once when the key is set. */
struct csa2_key {
	uint8_t kk[CSA2_ROUNDS]; /* block-cipher round bytes */
	uint8_t cws[8];		 /* stream-cipher key: CW with nibbles swapped */
};

struct csa2_impl;

struct csa2_state {
	struct csa2_key key[2];	     /* even, odd (secret) */
	const struct csa2_impl *impl; /* batch implementation in use */
	void *work;		     /* its scratch memory (holds data: wiped) */
	size_t work_bytes;
	unsigned batch_size;	     /* impl->lanes */
};

int csa2_init(struct csa2_state *s);
/* Overwrites both schedules with an all-zero CW, then frees. */
void csa2_cleanup(struct csa2_state *s);
void csa2_set_key(struct csa2_state *s, int parity, const uint8_t cw[8]);
void csa2_clear_key(struct csa2_state *s, int parity);
/* Encrypt or decrypt n payloads with the key of one parity, batch by
 * batch. Payloads shorter than 8 bytes stay as they are (CSA2 rule). */
void csa2_run(struct csa2_state *s, int parity, const struct cipher_payload *pl, size_t n, bool enc);
/* Switch implementation ("avx512", "avx2", "sse2", "portable"); 0,
 * CE_ARG (unknown name) or CE_UNSUPPORTED (not on this CPU). */
int csa2_select(struct csa2_state *s, const char *name);

/* ---- CISSA (cissa.c, cissa_aesni.c) ---- */
#define CISSA_BLOCK 16
#define CISSA_ROUND_KEYS 11 /* AES-128: 10 rounds + initial */

/* ASCII "DVBTMCPTAESCISSA", ETSI TS 103 127 */
extern const uint8_t cissa_iv[CISSA_BLOCK];

struct cissa_state {
	EVP_CIPHER_CTX *enc[2]; /* OpenSSL path: one context per parity and */
	EVP_CIPHER_CTX *dec[2]; /* direction, IV re-set for every packet */
	/* AES-NI path: expanded keys (secret, wiped with the rest) */
	_Alignas(16) uint8_t ek[2][CISSA_ROUND_KEYS][CISSA_BLOCK];
	_Alignas(16) uint8_t dk[2][CISSA_ROUND_KEYS][CISSA_BLOCK];
	bool aesni; /* use the AES-NI path */
};

int cissa_init(struct cissa_state *s);
void cissa_cleanup(struct cissa_state *s);
/* 0 or CE_CRYPTO. */
int cissa_set_key(struct cissa_state *s, int parity, const uint8_t cw[16]);
void cissa_clear_key(struct cissa_state *s, int parity);
/* CBC over the whole 16-byte blocks of each payload, IV reset per payload,
 * residue left clear. 0 or CE_CRYPTO. */
int cissa_run(struct cissa_state *s, int parity, const struct cipher_payload *pl, size_t n, bool enc);

/* AES-NI back end: available only on x86-64 CPUs with the AES flag. */
bool cissa_aesni_available(void);
void cissa_aesni_expand(const uint8_t key[16], uint8_t ek[CISSA_ROUND_KEYS][CISSA_BLOCK],
			uint8_t dk[CISSA_ROUND_KEYS][CISSA_BLOCK]);
void cissa_aesni_run(const uint8_t rk[CISSA_ROUND_KEYS][CISSA_BLOCK], const struct cipher_payload *pl,
		     size_t n, bool enc);

#endif
