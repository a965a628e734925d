/*
 * csa2_bs_core.h - the body of one CSA2 batch implementation, included by
 * csa2_bs_portable.c / _sse2.c / _avx2.c / _avx512.c with:
 *   BS_N        uint64_t elements per vector word (1, 2, 4, 8)
 *   BS_FN(x)    name of the implementation's functions (suffix)
 *   TGT         function attribute (target ISA) or empty
 *   bs_sbox_perm(W x, W *s, W *p)  the block S-box of every byte of x and
 *               the bit permutation of the result (defined before the
 *               include; W is declared here first through BS_WORD_ONLY)
 *
 * Lanes: a batch has LANES = 64 * BS_N payloads. Lane L = 64 e + 8 j + r
 * (e: element of the word, j: group 0..7, r: 0..7) holds payload
 * 8 BS_N j + 8 e + r of the batch (bs_index).
 *  - Bit-sliced words (stream cipher): lane L is bit (L mod 64) of element
 *    L / 64, so one word holds one bit of every lane.
 *  - Byte-sliced words (block cipher, data): blk[pos][j] holds byte `pos`
 *    of the 8 BS_N lanes of group j, lane L at byte r of element e.
 * The two layouts differ by an 8x8 byte transpose across the 8 group words
 * and an 8x8 bit transpose inside each 64-bit element (both involutions,
 * done element-wise, so every width shares the code).
 */
#ifndef BS_WORD_ONLY_DONE
typedef uint64_t W __attribute__((vector_size(8 * BS_N)));
#define BS_WORD_ONLY_DONE 1
#endif
#ifndef BS_WORD_ONLY

#define LANES (64u * BS_N)
#define ONES (~(W){0})
#define ZERO ((W){0})

struct bs_work {
	W blk[CSA2_PAYLOAD_MAX][8];	 /* byte-sliced payloads */
	W mask[CSA2_BLOCKS + 1][8];	 /* 0xff where the lane has that block */
	W a[42][4], b[42][4];		 /* stream registers A and B (nibbles) */
	uint8_t scratch[LANES][CSA2_PAYLOAD_MAX]; /* copies of short payloads */
	uint8_t *src[LANES];		 /* where each lane's 184 bytes are */
	uint8_t nblk[LANES];
};

static const uint8_t bs_zeros[CSA2_PAYLOAD_MAX];

static inline TGT W bs_bcast(uint64_t v)
{
	return ZERO + v;
}

/* 8x8 bit matrix in each 64-bit element: bit (8 row + col) <-> (8 col + row). */
static inline TGT W bs_tr_bits(W x)
{
	W t;

	t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
	x ^= t ^ (t << 7);
	t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
	x ^= t ^ (t << 14);
	t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
	x ^= t ^ (t << 28);
	return x;
}

/* 8x8 byte matrix across 8 words, element by element: byte j of w[k] <->
 * byte k of w[j]. */
#define BS_SWAP(x, y, sh, m)                                                                                           \
	do {                                                                                                           \
		W t_ = (((x) >> (sh)) ^ (y)) & (m);                                                                    \
		(y) ^= t_;                                                                                             \
		(x) ^= t_ << (sh);                                                                                     \
	} while (0)

static inline TGT void bs_tr_bytes(W w[8])
{
	for (int k = 0; k < 4; k++)
		BS_SWAP(w[k], w[k + 4], 32, 0x00000000FFFFFFFFull);
	for (int k = 0; k < 8; k += 4) {
		BS_SWAP(w[k], w[k + 2], 16, 0x0000FFFF0000FFFFull);
		BS_SWAP(w[k + 1], w[k + 3], 16, 0x0000FFFF0000FFFFull);
	}
	for (int k = 0; k < 8; k += 2)
		BS_SWAP(w[k], w[k + 1], 8, 0x00FF00FF00FF00FFull);
}

/* the same on plain 64-bit words (packet <-> byte-sliced moves) */
#define U_SWAP(x, y, sh, m)                                                                                            \
	do {                                                                                                           \
		uint64_t t_ = (((x) >> (sh)) ^ (y)) & (m);                                                             \
		(y) ^= t_;                                                                                             \
		(x) ^= t_ << (sh);                                                                                     \
	} while (0)

static inline TGT void bs_tr_bytes64(uint64_t w[8])
{
	for (int k = 0; k < 4; k++)
		U_SWAP(w[k], w[k + 4], 32, 0x00000000FFFFFFFFull);
	for (int k = 0; k < 8; k += 4) {
		U_SWAP(w[k], w[k + 2], 16, 0x0000FFFF0000FFFFull);
		U_SWAP(w[k + 1], w[k + 3], 16, 0x0000FFFF0000FFFFull);
	}
	for (int k = 0; k < 8; k += 2)
		U_SWAP(w[k], w[k + 1], 8, 0x00FF00FF00FF00FFull);
}

static inline TGT uint64_t *bs_elem(W *w, unsigned e)
{
	return (uint64_t *)w + e;
}

/* Payload i of a batch goes to lane L(i): i = 8 BS_N j + 8 e + r, so that
 * a partial batch fills whole groups first and the block cipher (the bulk
 * of the work) skips the empty groups. */
static inline unsigned bs_index(unsigned e, unsigned j, unsigned r)
{
	return 8 * BS_N * j + 8 * e + r;
}

/* Payloads -> byte-sliced blk[][], masks; returns the longest length. */
static inline TGT unsigned bs_gather(struct bs_work *w, const struct cipher_payload *pl, size_t n)
{
	unsigned maxlen = 0;

	for (unsigned j = 0; j < 8; j++) {
		for (unsigned e = 0; e < BS_N; e++) {
			uint8_t **src = w->src + 64 * e + 8 * j;
			uint8_t *nblk = w->nblk + 64 * e + 8 * j;
			unsigned i0 = bs_index(e, j, 0);

			for (unsigned r = 0; r < 8; r++) {
				unsigned len = i0 + r < n ? pl[i0 + r].len : 0;

				if (len == CSA2_PAYLOAD_MAX) {
					src[r] = pl[i0 + r].p;
				} else if (len) {
					memset(w->scratch[64 * e + 8 * j + r], 0, CSA2_PAYLOAD_MAX);
					memcpy(w->scratch[64 * e + 8 * j + r], pl[i0 + r].p, len);
					src[r] = w->scratch[64 * e + 8 * j + r];
				} else {
					/* no payload: read zeros, never written (scatter stops at n) */
					src[r] = (uint8_t *)(uintptr_t)bs_zeros;
				}
				nblk[r] = (uint8_t)(len / 8);
				if (len > maxlen)
					maxlen = len;
			}
		}
	}
	/* 8 lanes x 8 bytes of one block -> 8 words of that block's bytes:
	 * all BS_N elements at once (loads per lane, the transpose in vectors) */
	for (unsigned j = 0; j < 8; j++) {
		if (bs_index(0, j, 0) >= n)
			break; /* the groups from here on are empty (masks say so) */
		for (unsigned b = 0; b < CSA2_BLOCKS; b++) {
			W v[8];

			for (unsigned r = 0; r < 8; r++)
				for (unsigned e = 0; e < BS_N; e++) {
					uint64_t x;

					memcpy(&x, w->src[64 * e + 8 * j + r] + 8 * b, 8);
					v[r][e] = x;
				}
			bs_tr_bytes(v);
			for (unsigned k = 0; k < 8; k++)
				w->blk[8 * b + k][j] = v[k];
		}
	}
	for (unsigned b = 0; b <= CSA2_BLOCKS; b++) {
		for (unsigned j = 0; j < 8; j++) {
			uint8_t *m = (uint8_t *)&w->mask[b][j];

			for (unsigned e = 0; e < BS_N; e++)
				for (unsigned r = 0; r < 8; r++)
					m[8 * e + r] = w->nblk[64 * e + 8 * j + r] > b ? 0xff : 0;
		}
	}
	return maxlen;
}

/* byte-sliced blk[][] -> payloads */
static inline TGT void bs_scatter(struct bs_work *w, const struct cipher_payload *pl, size_t n)
{
	for (unsigned j = 0; j < 8; j++) {
		if (bs_index(0, j, 0) >= n)
			break;
		for (unsigned b = 0; b < CSA2_BLOCKS; b++) {
			W v[8];

			for (unsigned k = 0; k < 8; k++)
				v[k] = w->blk[8 * b + k][j];
			bs_tr_bytes(v);
			for (unsigned r = 0; r < 8; r++)
				for (unsigned e = 0; e < BS_N; e++) {
					uint64_t x = v[r][e];

					if (bs_index(e, j, r) < n)
						memcpy(w->src[64 * e + 8 * j + r] + 8 * b, &x, 8);
				}
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (pl[i].len != CSA2_PAYLOAD_MAX) {
			unsigned i8 = i / (8 * BS_N), e = (i / 8) % BS_N, r = i % 8; /* i = bs_index(e, i8, r) */

			memcpy(pl[i].p, w->src[64 * e + 8 * i8 + r], pl[i].len);
		}
}

/* ---- block cipher (byte-sliced) ---- */

/* Groups run side by side through the 56 rounds: independent chains for
 * the out-of-order core (one round's S-box waits on the previous one). */
#ifndef BS_G
#define BS_G 2
#endif

static inline TGT void bs_block_enc(W r[BS_G][8], const uint64_t *kb)
{
	for (int i = 0; i < CSA2_ROUNDS; i++) {
#pragma GCC unroll 8
		for (int g = 0; g < BS_G; g++) {
			W s, p, w0 = r[g][0];

			bs_sbox_perm(r[g][7] ^ kb[i], &s, &p);
			r[g][0] = r[g][1];
			r[g][1] = r[g][2] ^ w0;
			r[g][2] = r[g][3] ^ w0;
			r[g][3] = r[g][4] ^ w0;
			r[g][4] = r[g][5];
			r[g][5] = r[g][6] ^ p;
			r[g][6] = r[g][7];
			r[g][7] = w0 ^ s;
		}
	}
}

static inline TGT void bs_block_dec(W r[BS_G][8], const uint64_t *kb)
{
	for (int i = CSA2_ROUNDS - 1; i >= 0; i--) {
#pragma GCC unroll 8
		for (int g = 0; g < BS_G; g++) {
			W s, p, l;

			bs_sbox_perm(r[g][6] ^ kb[i], &s, &p);
			l = r[g][7] ^ s;
			r[g][7] = r[g][6];
			r[g][6] = r[g][5] ^ p;
			r[g][5] = r[g][4];
			r[g][4] = r[g][3] ^ l;
			r[g][3] = r[g][2] ^ l;
			r[g][2] = r[g][1] ^ l;
			r[g][1] = r[g][0];
			r[g][0] = l;
		}
	}
}

/* Encrypt: chain from the last whole block to the first (each block is
 * XORed with the next one's ciphertext, the last with nothing). A lane's
 * blocks past its own last whole block stay as they are (the residue). */
static inline TGT void bs_block_encrypt_all(struct bs_work *w, const uint64_t *kb, unsigned nb, unsigned ng)
{
	for (unsigned j0 = 0; j0 < ng; j0 += BS_G) {
		W chain[BS_G][8];

		memset(chain, 0, sizeof(chain));

		for (int b = (int)nb - 1; b >= 0; b--) {
			W r[BS_G][8];

			for (int g = 0; g < BS_G; g++)
				for (int k = 0; k < 8; k++)
					r[g][k] = w->blk[8 * b + k][j0 + g] ^ chain[g][k];
			bs_block_enc(r, kb);
			for (int g = 0; g < BS_G; g++) {
				W m = w->mask[b][j0 + g];

				for (int k = 0; k < 8; k++) {
					W *d = &w->blk[8 * b + k][j0 + g];

					chain[g][k] = r[g][k] & m;
					*d = chain[g][k] | (*d & ~m);
				}
			}
		}
	}
}

/* Decrypt: block i = D(C_i) ^ C_(i+1), the last whole block D(C) alone. */
static inline TGT void bs_block_decrypt_all(struct bs_work *w, const uint64_t *kb, unsigned nb, unsigned ng)
{
	for (unsigned j0 = 0; j0 < ng; j0 += BS_G) {
		for (unsigned b = 0; b < nb; b++) {
			W r[BS_G][8];

			for (int g = 0; g < BS_G; g++)
				for (int k = 0; k < 8; k++)
					r[g][k] = w->blk[8 * b + k][j0 + g];
			bs_block_dec(r, kb);
			for (int g = 0; g < BS_G; g++) {
				W m = w->mask[b][j0 + g], mn = w->mask[b + 1][j0 + g];

				for (int k = 0; k < 8; k++) {
					W *d = &w->blk[8 * b + k][j0 + g];
					W nxt = b + 1 < CSA2_BLOCKS ? w->blk[8 * (b + 1) + k][j0 + g] & mn : ZERO;

					*d = ((r[g][k] ^ nxt) & m) | (*d & ~m);
				}
			}
		}
	}
}

/* ---- stream cipher (bit-sliced) ---- */

/* stream S-box 1: 39 gates */
static inline TGT void sbox1(W a, W b, W c, W d, W e, W *sa, W *sb)
{
	const W m_ab = a & b;
	const W m_ac = a & c;
	const W m_bc = b & c;
	const W m_ad = a & d;
	const W m_bd = b & d;
	const W m_cd = c & d;
	const W m_abc = m_ab & c;
	const W m_abd = m_ab & d;
	const W m_acd = m_ac & d;
	*sa = (ONES ^ m_ab ^ c ^ m_ac ^ m_bc ^ m_abc ^ d ^ m_ad ^ m_bd ^ m_abd ^ m_cd) ^ (e & (ONES ^ a ^ b ^ m_ab ^ m_ac ^ m_bc ^ m_abc ^ m_cd ^ m_acd));
	*sb = (a ^ c ^ m_ad ^ m_bd ^ m_acd) ^ (e & (a ^ m_ab ^ m_ac ^ d ^ m_abd));
}

/* stream S-box 2: 32 gates */
static inline TGT void sbox2(W a, W b, W c, W d, W e, W *sa, W *sb)
{
	const W m_ab = a & b;
	const W m_ac = a & c;
	const W m_bc = b & c;
	const W m_ad = a & d;
	const W m_bd = b & d;
	const W m_cd = c & d;
	const W m_abd = m_ab & d;
	const W m_acd = m_ac & d;
	const W m_bcd = m_bc & d;
	*sa = (ONES ^ a ^ c ^ m_bc ^ d ^ m_bd ^ m_bcd) ^ (e & (m_ab ^ m_ac ^ m_bc ^ m_ad ^ m_acd));
	*sb = (ONES ^ b ^ c ^ m_bd ^ m_abd ^ m_acd) ^ (e & (a ^ b ^ m_abd ^ m_cd ^ m_acd));
}

/* stream S-box 3: 36 gates */
static inline TGT void sbox3(W a, W b, W c, W d, W e, W *sa, W *sb)
{
	const W m_ab = a & b;
	const W m_ac = a & c;
	const W m_bc = b & c;
	const W m_ad = a & d;
	const W m_bd = b & d;
	const W m_cd = c & d;
	const W m_abc = m_ab & c;
	const W m_acd = m_ac & d;
	const W m_bcd = m_bc & d;
	*sa = (ONES ^ a ^ m_ab ^ c ^ m_ac ^ m_bc ^ m_abc ^ d ^ m_ad ^ m_bd ^ m_acd ^ m_bcd) ^ (e & (ONES ^ b ^ m_ab ^ c ^ m_bc ^ m_abc ^ m_ad ^ m_bd ^ m_cd ^ m_bcd));
	*sb = (a ^ c ^ m_bd ^ m_cd) ^ (e & (ONES));
}

/* stream S-box 4: 39 gates */
static inline TGT void sbox4(W a, W b, W c, W d, W e, W *sa, W *sb)
{
	const W m_ab = a & b;
	const W m_ad = a & d;
	const W m_cd = c & d;
	const W m_abc = m_ab & c;
	const W m_ac = a & c;
	const W m_acd = m_ac & d;
	const W m_bc = b & c;
	const W m_bcd = m_bc & d;
	*sa = (ONES ^ a ^ b ^ m_abc ^ d ^ m_cd ^ m_bcd) ^ (e & (ONES ^ a ^ m_ab ^ c ^ m_abc ^ d ^ m_ad ^ m_acd ^ m_bcd));
	*sb = (ONES ^ b ^ m_ab ^ c ^ m_ad ^ m_cd ^ m_acd) ^ (e & (a ^ m_ab ^ c ^ m_abc ^ d ^ m_ad ^ m_acd ^ m_bcd));
}

/* stream S-box 5: 47 gates */
static inline TGT void sbox5(W a, W b, W c, W d, W e, W *sa, W *sb)
{
	const W m_ac = a & c;
	const W m_bc = b & c;
	const W m_ad = a & d;
	const W m_bd = b & d;
	const W m_cd = c & d;
	const W m_ab = a & b;
	const W m_abc = m_ab & c;
	const W m_abd = m_ab & d;
	const W m_acd = m_ac & d;
	const W m_bcd = m_bc & d;
	*sa = (ONES ^ a ^ c ^ m_bc ^ m_abc ^ d ^ m_ad ^ m_bd ^ m_abd ^ m_cd ^ m_acd ^ m_bcd) ^ (e & (b ^ c ^ m_ac ^ m_bc ^ m_abc ^ d ^ m_ad ^ m_abd ^ m_bcd));
	*sb = (b ^ m_ac ^ m_ad ^ m_bd ^ m_abd ^ m_cd ^ m_bcd) ^ (e & (a ^ b ^ m_ac ^ m_bc ^ d ^ m_ad ^ m_bd ^ m_acd ^ m_bcd));
}

/* stream S-box 6: 30 gates */
static inline TGT void sbox6(W a, W b, W c, W d, W e, W *sa, W *sb)
{
	const W m_ab = a & b;
	const W m_ac = a & c;
	const W m_bc = b & c;
	const W m_ad = a & d;
	const W m_bd = b & d;
	const W m_cd = c & d;
	const W m_abc = m_ab & c;
	const W m_abd = m_ab & d;
	const W m_acd = m_ac & d;
	const W m_bcd = m_bc & d;
	*sa = (m_ab ^ c ^ m_bd ^ m_abd ^ m_acd) ^ (e & (ONES ^ m_ad ^ m_cd));
	*sb = (b ^ m_ab ^ m_ac ^ m_bc ^ m_abc ^ d ^ m_bcd) ^ (e & (m_bc ^ m_abc ^ m_cd ^ m_acd ^ m_bcd));
}

/* stream S-box 7: 30 gates */
static inline TGT void sbox7(W a, W b, W c, W d, W e, W *sa, W *sb)
{
	const W m_ab = a & b;
	const W m_ac = a & c;
	const W m_bc = b & c;
	const W m_cd = c & d;
	const W m_abc = m_ab & c;
	const W m_acd = m_ac & d;
	const W m_bcd = m_bc & d;
	*sa = (a ^ b ^ c ^ d ^ m_cd ^ m_acd) ^ (e & (b ^ m_bc ^ m_abc ^ d ^ m_cd ^ m_acd ^ m_bcd));
	*sb = (a ^ b ^ m_ab ^ m_bc ^ d ^ m_cd ^ m_bcd) ^ (e & (ONES ^ m_ac ^ m_acd));
}
/* total 253 */

struct bs_stream {
	W x[4], y[4], z[4], d[4], e[4], f[4];
	W p, q, r;
};

/*
 * One clock. A and B are nibble registers of 10 nibbles each, a[0] the
 * newest; a clock shifts a new nibble in at a[-1] (the caller moves the
 * window). During initialisation (in_a, in_b non-NULL) the IV nibbles and
 * D are mixed in. Returns the two output bits (D2^D3, D0^D1) in *o_hi,
 * *o_lo.
 */
static inline TGT __attribute__((always_inline)) void bs_clock(struct bs_stream *s, W (*a)[4], W (*b)[4], const W *in_a, const W *in_b, W *o_hi,
				W *o_lo)
{
	W s1a, s1b, s2a, s2b, s3a, s3b, s4a, s4b, s5a, s5b, s6a, s6b, s7a, s7b;
	W xb[4], na[4], nb[4], dn[4], c;

	/* S-box inputs: five bits of A each */
	sbox1(a[0][2], a[5][1], a[6][3], a[8][0], a[3][0], &s1a, &s1b);
	sbox2(a[2][2], a[5][3], a[6][0], a[8][1], a[1][1], &s2a, &s2b);
	sbox3(a[1][0], a[4][1], a[4][3], a[5][2], a[0][3], &s3a, &s3b);
	sbox4(a[0][1], a[1][3], a[3][2], a[7][0], a[2][3], &s4a, &s4b);
	sbox5(a[3][3], a[5][0], a[7][1], a[8][2], a[4][2], &s5a, &s5b);
	sbox6(a[3][1], a[4][0], a[6][2], a[8][3], a[2][1], &s6a, &s6b);
	sbox7(a[2][0], a[6][1], a[7][2], a[7][3], a[1][2], &s7a, &s7b);

	/* the B bits XORed into D */
	xb[3] = b[2][0] ^ b[5][1] ^ b[6][2] ^ b[8][3];
	xb[2] = b[5][0] ^ b[7][1] ^ b[2][3] ^ b[3][2];
	xb[1] = b[4][3] ^ b[7][2] ^ b[3][0] ^ b[4][1];
	xb[0] = b[8][2] ^ b[5][3] ^ b[2][1] ^ b[7][0];

	for (int i = 0; i < 4; i++) {
		na[i] = a[9][i] ^ s->x[i];
		nb[i] = b[6][i] ^ b[9][i] ^ s->y[i];
		if (in_a) {
			na[i] ^= s->d[i] ^ in_a[i];
			nb[i] ^= in_b[i];
		}
	}
	/* p set: the new B nibble is rotated left by one bit */
	a[-1][0] = na[0], a[-1][1] = na[1], a[-1][2] = na[2], a[-1][3] = na[3];
	b[-1][0] = nb[0] ^ ((nb[0] ^ nb[3]) & s->p);
	b[-1][1] = nb[1] ^ ((nb[1] ^ nb[0]) & s->p);
	b[-1][2] = nb[2] ^ ((nb[2] ^ nb[1]) & s->p);
	b[-1][3] = nb[3] ^ ((nb[3] ^ nb[2]) & s->p);

	for (int i = 0; i < 4; i++)
		dn[i] = s->e[i] ^ s->z[i] ^ xb[i];

	/* q set: F = E + Z + r (4 bits, carry to r); E takes the old F */
	c = s->r;
	for (int i = 0; i < 4; i++) {
		W ez = s->e[i] ^ s->z[i];
		W sum = ez ^ c;
		W co = (s->e[i] & s->z[i]) | (ez & c);
		W fo = s->f[i];

		s->f[i] = s->e[i] ^ ((sum ^ s->e[i]) & s->q);
		s->e[i] = fo;
		c = co;
	}
	s->r ^= (c ^ s->r) & s->q;

	s->x[0] = s1a, s->x[1] = s2a, s->x[2] = s3b, s->x[3] = s4b;
	s->y[0] = s3a, s->y[1] = s4a, s->y[2] = s5b, s->y[3] = s6b;
	s->z[0] = s5a, s->z[1] = s6a, s->z[2] = s1b, s->z[3] = s2b;
	s->p = s7a;
	s->q = s7b;
	for (int i = 0; i < 4; i++)
		s->d[i] = dn[i];
	*o_hi = dn[2] ^ dn[3];
	*o_lo = dn[0] ^ dn[1];
}

/* Stream cipher: IV = the first 8 bytes of each lane (blk[0..7]);
 * keystream XORed onto blk[8 .. 8 + nks - 1]. */
static inline TGT void bs_stream(struct bs_work *w, const struct csa2_key *k, unsigned nks)
{
	struct bs_stream s;
	W iv[8][8];
	unsigned pos = 32;
	uint32_t ka = (uint32_t)k->cws[0] | (uint32_t)k->cws[1] << 8 | (uint32_t)k->cws[2] << 16 |
		      (uint32_t)k->cws[3] << 24;
	uint32_t kb = (uint32_t)k->cws[4] | (uint32_t)k->cws[5] << 8 | (uint32_t)k->cws[6] << 16 |
		      (uint32_t)k->cws[7] << 24;

	memset(&s, 0, sizeof(s));
	for (unsigned n = 0; n < 10; n++)
		for (unsigned i = 0; i < 4; i++) {
			unsigned bit = 4 * n + i;

			w->a[pos + n][i] = n < 8 && (ka >> bit & 1) ? ONES : ZERO;
			w->b[pos + n][i] = n < 8 && (kb >> bit & 1) ? ONES : ZERO;
		}
	/* IV bit planes: iv[byte][bit] */
	for (unsigned i = 0; i < 8; i++) {
		W t[8];

		for (unsigned j = 0; j < 8; j++)
			t[j] = bs_tr_bits(w->blk[i][j]);
		bs_tr_bytes(t);
		for (unsigned j = 0; j < 8; j++)
			iv[i][j] = t[j];
	}
	for (unsigned i = 0; i < 8; i++) {
		for (unsigned c = 0; c < 4; c++) {
			W hi, lo;
			const W *ia = (c & 1) ? &iv[i][0] : &iv[i][4];
			const W *ib = (c & 1) ? &iv[i][4] : &iv[i][0];

			bs_clock(&s, &w->a[pos], &w->b[pos], ia, ib, &hi, &lo);
			pos--;
		}
	}
	/* pos is 0 now: move the 10 live nibbles back to the top */
	memmove(&w->a[32], &w->a[0], 10 * sizeof(w->a[0]));
	memmove(&w->b[32], &w->b[0], 10 * sizeof(w->b[0]));
	pos = 32;
	for (unsigned i = 0; i < nks; i++) {
		W o[8];

		for (unsigned c = 0; c < 4; c++) {
			bs_clock(&s, &w->a[pos], &w->b[pos], NULL, NULL, &o[7 - 2 * c], &o[6 - 2 * c]);
			pos--;
		}
		if (pos == 0) {
			memmove(&w->a[32], &w->a[0], 10 * sizeof(w->a[0]));
			memmove(&w->b[32], &w->b[0], 10 * sizeof(w->b[0]));
			pos = 32;
		}
		bs_tr_bytes(o);
		for (unsigned j = 0; j < 8; j++)
			w->blk[8 + i][j] ^= bs_tr_bits(o[j]);
	}
}

static TGT void BS_FN(run)(const struct csa2_key *k, const struct cipher_payload *pl, size_t n, bool enc, void *work)
{
	struct bs_work *w = work;
	uint64_t kb[CSA2_ROUNDS];
	unsigned maxlen, nb, ng = (unsigned)((n + 8 * BS_N - 1) / (8 * BS_N)); /* groups in use */

	for (int i = 0; i < CSA2_ROUNDS; i++)
		kb[i] = (uint64_t)k->kk[i] * 0x0101010101010101ull;
	maxlen = bs_gather(w, pl, n);
	nb = maxlen / 8;
	if (enc) {
		bs_block_encrypt_all(w, kb, nb, ng);
		bs_stream(w, k, maxlen - 8);
	} else {
		bs_stream(w, k, maxlen - 8);
		bs_block_decrypt_all(w, kb, nb, ng);
	}
	bs_scatter(w, pl, n);
}

#endif /* BS_WORD_ONLY */
