/*
 * csa2_bs.h - Castellan's own DVB-CSA2 engine (ETSI ETR 289 / TS 100 289
 * Common Scrambling Algorithm): the key schedule and the batch
 * implementations behind csa2.c. Not for use outside src/cipher/ (and the
 * tests, which force each implementation in turn).
 *
 * One key schedule per CW (csa2_key_set): the 56 block-cipher round bytes
 * and the nibble-swapped CW that seeds the stream cipher. A batch
 * implementation processes up to `lanes` payloads (8..184 bytes each) at
 * once: the stream cipher bitsliced (one bit of every payload per vector
 * word), the block cipher byte-sliced (one byte of every payload per vector
 * byte). docs/scrambling.md explains the layout.
 */
#ifndef CASTELLAN_CSA2_BS_H
#define CASTELLAN_CSA2_BS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cipher/cipher_impl.h"

#define CSA2_PAYLOAD_MAX 184 /* bytes of a TS payload */
#define CSA2_BLOCKS 23	     /* 8-byte blocks in a full payload */

/* Key schedule of an 8-byte CW (entropy reduction, if any, done before). */
void csa2_key_set(struct csa2_key *k, const uint8_t cw[8]);

/* Block S-box (a permutation of the bytes) and the bit permutation applied
 * to its output in every round; shared by every implementation. */
extern const uint8_t csa2_block_sbox[256];

struct csa2_impl {
	const char *name; /* "avx512" | "avx2" | "sse2" | "portable" */
	unsigned lanes;	  /* payloads per batch */
	size_t work_bytes;/* scratch memory a batch needs (64-byte aligned) */
	bool (*usable)(void);
	/* n <= lanes payloads, each 8..184 bytes, in place. */
	void (*run)(const struct csa2_key *k, const struct cipher_payload *pl, size_t n, bool enc, void *work);
};

extern const struct csa2_impl csa2_impl_portable;
#if defined(__x86_64__) || defined(__i386__)
#define CSA2_HAVE_X86 1
extern const struct csa2_impl csa2_impl_sse2;
extern const struct csa2_impl csa2_impl_avx2;
extern const struct csa2_impl csa2_impl_avx512;
#endif

/* The fastest usable implementation, or the one named by the environment
 * variable CASTELLAN_CSA_IMPL when that one is usable here. */
const struct csa2_impl *csa2_impl_default(void);
/* By name; NULL if unknown or not usable on this CPU. */
const struct csa2_impl *csa2_impl_by_name(const char *name);

#endif
