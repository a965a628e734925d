/*
 * csa2_bs_sse2.c - CSA2 batch engine on 128-bit SSE2 words (128 payloads
 * per batch). SSE2 has no byte shuffle, so the block S-box is looked up
 * byte by byte as in the portable engine (csa2_bs_core.h for the rest).
 */
#include <string.h>
#include "cipher/csa2_bs.h"

#ifdef CSA2_HAVE_X86
#define BS_N 2
#ifndef BS_G
#define BS_G 2
#endif
#define BS_FN(x) bs_sse2_##x
#define TGT __attribute__((target("sse2")))
#define BS_WORD_ONLY
#include "cipher/csa2_bs_core.h"
#undef BS_WORD_ONLY

static inline TGT uint64_t perm64(uint64_t s)
{
	return ((s & 0x2929292929292929ull) << 1) | ((s & 0x0202020202020202ull) << 6) |
	       ((s & 0x0404040404040404ull) << 3) | ((s & 0x1010101010101010ull) >> 2) |
	       ((s & 0x4040404040404040ull) >> 6) | ((s & 0x8080808080808080ull) >> 4);
}

static inline TGT void bs_sbox_perm(W x, W *s, W *p)
{
	for (int e = 0; e < BS_N; e++) {
		uint64_t v = x[e], o = 0;

#pragma GCC unroll 8
		for (int i = 0; i < 64; i += 8)
			o |= (uint64_t)csa2_block_sbox[(v >> i) & 0xff] << i;
		(*s)[e] = o;
		(*p)[e] = perm64(o);
	}
}

#include "cipher/csa2_bs_core.h"

static bool usable(void)
{
	return __builtin_cpu_supports("sse2");
}

const struct csa2_impl csa2_impl_sse2 = { "sse2", LANES, sizeof(struct bs_work), usable, BS_FN(run) };
#endif
