/*
 * csa2.c - DVB-CSA2 back end: key schedule, choice of the batch engine and
 * cutting payload lists into batches (ETSI TS 100 289 describes the use of
 * the Common Scrambling Algorithm in TS packets).
 *
 * The engines (csa2_bs_*.c, csa2_bs_core.h) process `lanes` payloads at
 * once: 512 with AVX-512 (F/BW/VBMI + GFNI), 256 with AVX2, 128 with SSE2,
 * 64 on plain 64-bit words. The fastest one the CPU has is taken unless
 * the environment variable CASTELLAN_CSA_IMPL names another usable one
 * (tests and benchmarks force each in turn). Payloads shorter than 8 bytes
 * stay as they are (no whole block: the standard leaves them clear).
 *
 * Key schedule (one per CW): the block cipher's 56 round bytes come from 7
 * 64-bit words, k6 = the CW (little-endian) and k(i-1) = P(k(i)) with P a
 * fixed permutation of the 64 bits; round byte 8i+j = byte j of k(i) XOR i.
 * The stream cipher takes the CW with the two nibbles of each byte swapped.
 */
#include <stdlib.h>
#include <string.h>
#include "cipher/csa2_bs.h"
#include "lib/err.h"
#include "lib/util.h"

const uint8_t csa2_block_sbox[256] __attribute__((aligned(64))) = {
	0x3a, 0xea, 0x68, 0xfe, 0x33, 0xe9, 0x88, 0x1a,
	0x83, 0xcf, 0xe1, 0x7f, 0xba, 0xe2, 0x38, 0x12,
	0xe8, 0x27, 0x61, 0x95, 0x0c, 0x36, 0xe5, 0x70,
	0xa2, 0x06, 0x82, 0x7c, 0x17, 0xa3, 0x26, 0x49,
	0xbe, 0x7a, 0x6d, 0x47, 0xc1, 0x51, 0x8f, 0xf3,
	0xcc, 0x5b, 0x67, 0xbd, 0xcd, 0x18, 0x08, 0xc9,
	0xff, 0x69, 0xef, 0x03, 0x4e, 0x48, 0x4a, 0x84,
	0x3f, 0xb4, 0x10, 0x04, 0xdc, 0xf5, 0x5c, 0xc6,
	0x16, 0xab, 0xac, 0x4c, 0xf1, 0x6a, 0x2f, 0x3c,
	0x3b, 0xd4, 0xd5, 0x94, 0xd0, 0xc4, 0x63, 0x62,
	0x71, 0xa1, 0xf9, 0x4f, 0x2e, 0xaa, 0xc5, 0x56,
	0xe3, 0x39, 0x93, 0xce, 0x65, 0x64, 0xe4, 0x58,
	0x6c, 0x19, 0x42, 0x79, 0xdd, 0xee, 0x96, 0xf6,
	0x8a, 0xec, 0x1e, 0x85, 0x53, 0x45, 0xde, 0xbb,
	0x7e, 0x0a, 0x9a, 0x13, 0x2a, 0x9d, 0xc2, 0x5e,
	0x5a, 0x1f, 0x32, 0x35, 0x9c, 0xa8, 0x73, 0x30,
	0x29, 0x3d, 0xe7, 0x92, 0x87, 0x1b, 0x2b, 0x4b,
	0xa5, 0x57, 0x97, 0x40, 0x15, 0xe6, 0xbc, 0x0e,
	0xeb, 0xc3, 0x34, 0x2d, 0xb8, 0x44, 0x25, 0xa4,
	0x1c, 0xc7, 0x23, 0xed, 0x90, 0x6e, 0x50, 0x00,
	0x99, 0x9e, 0x4d, 0xd9, 0xda, 0x8d, 0x6f, 0x5f,
	0x3e, 0xd7, 0x21, 0x74, 0x86, 0xdf, 0x6b, 0x05,
	0x8e, 0x5d, 0x37, 0x11, 0xd2, 0x28, 0x75, 0xd6,
	0xa7, 0x77, 0x24, 0xbf, 0xf0, 0xb0, 0x02, 0xb7,
	0xf8, 0xfc, 0x81, 0x09, 0xb1, 0x01, 0x76, 0x91,
	0x7d, 0x0f, 0xc8, 0xa0, 0xf2, 0xcb, 0x78, 0x60,
	0xd1, 0xf7, 0xe0, 0xb5, 0x98, 0x22, 0xb3, 0x20,
	0x1d, 0xa6, 0xdb, 0x7b, 0x59, 0x9f, 0xae, 0x31,
	0xfb, 0xd3, 0xb6, 0xca, 0x43, 0x72, 0x07, 0xf4,
	0xd8, 0x41, 0x14, 0x55, 0x0d, 0x54, 0x8b, 0xb9,
	0xad, 0x46, 0x0b, 0xaf, 0x80, 0x52, 0x2c, 0xfa,
	0x8c, 0x89, 0x66, 0xfd, 0xb2, 0xa9, 0x9b, 0xc0,};

/* key bit b of k(i) moves to bit key_perm[b] of k(i-1) */
static const uint8_t key_perm[64] = {
	19, 27, 55, 46, 1,  15, 36, 22, 56, 61, 39, 21, 54, 58, 50, 28, 7,  29, 51, 6,	33, 35,
	20, 16, 47, 30, 32, 63, 10, 11, 4,  38, 62, 26, 40, 18, 12, 52, 37, 53, 23, 59, 41, 17,
	31, 0,	25, 43, 44, 14, 2,  13, 45, 48, 3,  60, 49, 8,	34, 5,	9,  42, 57, 24,
};

void csa2_key_set(struct csa2_key *k, const uint8_t cw[8])
{
	uint64_t w = 0;

	for (int i = 0; i < 8; i++) {
		w |= (uint64_t)cw[i] << (8 * i);
		k->cws[i] = (uint8_t)((cw[i] >> 4) | (cw[i] << 4));
	}
	for (int i = 6; i >= 0; i--) {
		uint64_t n = 0;

		for (int j = 0; j < 8; j++)
			k->kk[8 * i + j] = (uint8_t)((w >> (8 * j)) ^ (uint64_t)i);
		for (int b = 0; b < 64; b++)
			n |= ((w >> b) & 1) << key_perm[b];
		w = n;
	}
	secret_wipe(&w, sizeof(w));
}

static const struct csa2_impl *const impls[] = {
#ifdef CSA2_HAVE_X86
	&csa2_impl_avx512,
	&csa2_impl_avx2,
	&csa2_impl_sse2,
#endif
	&csa2_impl_portable,
};

const struct csa2_impl *csa2_impl_by_name(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++)
		if (strcmp(impls[i]->name, name) == 0)
			return impls[i]->usable() ? impls[i] : NULL;
	return NULL;
}

const struct csa2_impl *csa2_impl_default(void)
{
	const struct csa2_impl *im = csa2_impl_by_name(getenv("CASTELLAN_CSA_IMPL"));

	if (im)
		return im;
	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++)
		if (impls[i]->usable())
			return impls[i];
	return &csa2_impl_portable;
}

static void free_work(struct csa2_state *s)
{
	if (s->work) {
		secret_wipe(s->work, s->work_bytes);
		free(s->work);
	}
	s->work = NULL;
	s->work_bytes = 0;
}

static int use_impl(struct csa2_state *s, const struct csa2_impl *im)
{
	size_t n = (im->work_bytes + 63) & ~(size_t)63;
	void *w = aligned_alloc(64, n);

	if (!w)
		return CE_NOMEM;
	free_work(s);
	s->work = w;
	s->work_bytes = n;
	s->impl = im;
	s->batch_size = im->lanes;
	return 0;
}

int csa2_init(struct csa2_state *s)
{
	memset(s, 0, sizeof(*s));
	return use_impl(s, csa2_impl_default());
}

int csa2_select(struct csa2_state *s, const char *name)
{
	const struct csa2_impl *im = NULL;
	bool known = false;

	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++)
		if (name && strcmp(impls[i]->name, name) == 0)
			known = true;
	if (!known)
		return CE_ARG;
	if (!(im = csa2_impl_by_name(name)))
		return CE_UNSUPPORTED;
	return im == s->impl ? 0 : use_impl(s, im);
}

void csa2_clear_key(struct csa2_state *s, int parity)
{
	secret_wipe(&s->key[parity], sizeof(s->key[parity]));
}

void csa2_cleanup(struct csa2_state *s)
{
	free_work(s);
	secret_wipe(s, sizeof(*s));
}

void csa2_set_key(struct csa2_state *s, int parity, const uint8_t cw[8])
{
	csa2_key_set(&s->key[parity], cw);
}

void csa2_run(struct csa2_state *s, int parity, const struct cipher_payload *pl, size_t n, bool enc)
{
	struct cipher_payload batch[512];
	size_t i = 0;

	while (i < n) {
		size_t k = 0, want = n - i < s->batch_size ? n - i : s->batch_size;

		/* the common case, no payload under 8 bytes: the caller's list is
		 * the batch; otherwise the short ones are left out of a copy */
		while (k < want && pl[i + k].len >= 8)
			k++;
		if (k == want) {
			s->impl->run(&s->key[parity], pl + i, k, enc, s->work);
			i += k;
			continue;
		}
		for (k = 0; k < s->batch_size && i < n; i++) {
			if (pl[i].len < 8)
				continue;
			batch[k++] = pl[i];
		}
		if (k > 0)
			s->impl->run(&s->key[parity], batch, k, enc, s->work);
	}
}
