/*
 * cissa_aesni.c - DVB-CISSA with AES-NI, LANES packets interleaved.
 *
 * CBC encryption is serial inside a packet (each block needs the previous
 * ciphertext), so one packet at a time waits on the AESENC latency for
 * every round. CISSA restarts CBC at every packet, so packets are
 * independent: we run LANES of them side by side, one block of each per
 * step, which keeps the AES unit busy; lanes whose packet has fewer
 * blocks idle (their state is not stored). CBC decryption has no chain:
 * every block of every packet is an independent job, LANES jobs a step.
 *
 * Only compiled into real code on x86-64; elsewhere cissa_aesni_available()
 * is false and cipher.c stays on the OpenSSL path. Round keys are supplied
 * by the caller (struct cissa_state), which wipes them.
 */
#include <string.h>
#include "cipher/cipher_impl.h"
#include "crypto/aesni.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define LANES 8
#define AESNI_TARGET __attribute__((target("aes,sse2")))

bool cissa_aesni_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes");
}

AESNI_TARGET void cissa_aesni_expand(const uint8_t key[16], uint8_t ek[CISSA_ROUND_KEYS][CISSA_BLOCK],
				     uint8_t dk[CISSA_ROUND_KEYS][CISSA_BLOCK])
{
	crypto_aesni_expand128(key, ek);
	/* Equivalent inverse cipher: reversed order, InvMixColumns inside. */
	memcpy(dk[0], ek[10], CISSA_BLOCK);
	for (int i = 1; i < 10; i++)
		_mm_storeu_si128((__m128i *)dk[i],
				 _mm_aesimc_si128(_mm_loadu_si128((const __m128i *)ek[10 - i])));
	memcpy(dk[10], ek[0], CISSA_BLOCK);
}

/*
 * Encryption: lane k runs payload k, one block per step, the state being
 * the last ciphertext block (the IV at first). Fully unrolled so the LANES
 * states stay in registers; round keys are memory operands.
 */
AESNI_TARGET static void enc_group(const __m128i rk[CISSA_ROUND_KEYS], const struct cipher_payload *pl,
				   size_t n)
{
	__m128i s[LANES];
	unsigned nb[LANES], max_nb = 0;

	for (size_t k = 0; k < LANES; k++) {
		nb[k] = k < n ? pl[k].len / CISSA_BLOCK : 0;
		if (nb[k] > max_nb)
			max_nb = nb[k];
		s[k] = _mm_loadu_si128((const __m128i *)cissa_iv);
	}
	for (unsigned j = 0; j < max_nb; j++) {
#pragma GCC unroll 8
		for (size_t k = 0; k < LANES; k++) {
			if (j < nb[k])
				s[k] = _mm_xor_si128(
				    s[k], _mm_loadu_si128((const __m128i *)(pl[k].p + j * CISSA_BLOCK)));
			s[k] = _mm_xor_si128(s[k], rk[0]);
		}
#pragma GCC unroll 9
		for (int r = 1; r < 10; r++) {
#pragma GCC unroll 8
			for (size_t k = 0; k < LANES; k++)
				s[k] = _mm_aesenc_si128(s[k], rk[r]);
		}
#pragma GCC unroll 8
		for (size_t k = 0; k < LANES; k++) {
			s[k] = _mm_aesenclast_si128(s[k], rk[10]);
			if (j < nb[k])
				_mm_storeu_si128((__m128i *)(pl[k].p + j * CISSA_BLOCK), s[k]);
		}
	}
}

/* One CBC decryption job: a ciphertext block and the block before it. */
struct dec_job {
	uint8_t *c;
	const uint8_t *prev; /* previous ciphertext block, or the IV */
};

/*
 * LANES independent blocks: P = D(C) xor prev. Jobs of one payload come
 * last block first, so a block is written only after the job that needs it
 * as its "prev" has read it (earlier group, or lower lane of this group:
 * lanes are finished in increasing order).
 */
AESNI_TARGET static void dec_group(const __m128i rk[CISSA_ROUND_KEYS], const struct dec_job *job)
{
	__m128i s[LANES];

#pragma GCC unroll 8
	for (size_t k = 0; k < LANES; k++)
		s[k] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)job[k].c), rk[0]);
#pragma GCC unroll 9
	for (int r = 1; r < 10; r++) {
#pragma GCC unroll 8
		for (size_t k = 0; k < LANES; k++)
			s[k] = _mm_aesdec_si128(s[k], rk[r]);
	}
#pragma GCC unroll 8
	for (size_t k = 0; k < LANES; k++) {
		s[k] = _mm_aesdeclast_si128(s[k], rk[10]);
		s[k] = _mm_xor_si128(s[k], _mm_loadu_si128((const __m128i *)job[k].prev));
		_mm_storeu_si128((__m128i *)job[k].c, s[k]);
	}
}

AESNI_TARGET static void dec_all(const __m128i rk[CISSA_ROUND_KEYS], const struct cipher_payload *pl,
				 size_t n)
{
	struct dec_job job[LANES];
	_Alignas(16) uint8_t pad[LANES][CISSA_BLOCK]; /* idle lanes work here */
	size_t nj = 0;

	for (size_t i = 0; i < n; i++) {
		for (unsigned j = pl[i].len / CISSA_BLOCK; j-- > 0;) {
			job[nj].c = pl[i].p + j * CISSA_BLOCK;
			job[nj].prev = j ? pl[i].p + (j - 1) * CISSA_BLOCK : cissa_iv;
			if (++nj == LANES) {
				dec_group(rk, job);
				nj = 0;
			}
		}
	}
	if (nj == 0)
		return;
	for (size_t k = nj; k < LANES; k++) {
		memset(pad[k], 0, CISSA_BLOCK);
		job[k].c = pad[k];
		job[k].prev = pad[k];
	}
	dec_group(rk, job);
}

AESNI_TARGET void cissa_aesni_run(const uint8_t rk_bytes[CISSA_ROUND_KEYS][CISSA_BLOCK],
				  const struct cipher_payload *pl, size_t n, bool enc)
{
	__m128i rk[CISSA_ROUND_KEYS];

	for (int i = 0; i < CISSA_ROUND_KEYS; i++)
		rk[i] = _mm_loadu_si128((const __m128i *)rk_bytes[i]);
	if (enc) {
		for (size_t i = 0; i < n; i += LANES)
			enc_group(rk, pl + i, n - i < LANES ? n - i : LANES);
	} else {
		dec_all(rk, pl, n);
	}
	/* The round keys were copied to the stack: wipe the copy. */
	for (int i = 0; i < CISSA_ROUND_KEYS; i++)
		rk[i] = _mm_setzero_si128();
	__asm__ __volatile__("" : : "r"(rk) : "memory");
}

#else /* not x86-64: no AES-NI path */

bool cissa_aesni_available(void)
{
	return false;
}

void cissa_aesni_expand(const uint8_t key[16], uint8_t ek[CISSA_ROUND_KEYS][CISSA_BLOCK],
			uint8_t dk[CISSA_ROUND_KEYS][CISSA_BLOCK])
{
	(void)key;
	(void)ek;
	(void)dk;
}

void cissa_aesni_run(const uint8_t rk[CISSA_ROUND_KEYS][CISSA_BLOCK], const struct cipher_payload *pl,
		     size_t n, bool enc)
{
	(void)rk;
	(void)pl;
	(void)n;
	(void)enc;
}
#endif
