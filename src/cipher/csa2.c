/*
 * csa2.c - DVB-CSA2 back end over libdvbcsa's bitslice API (ETSI TS 100 289
 * describes the use of the Common Scrambling Algorithm in TS packets).
 *
 * The bitslice code processes dvbcsa_bs_batch_size() packets at once; it is
 * several times faster than the one-packet dvbcsa_encrypt/decrypt, so the
 * caller gathers payloads of one parity and we cut them into full batches.
 * libdvbcsa leaves payloads shorter than 8 bytes unchanged, which is what
 * the standard asks (no full block for the block cipher layer).
 */
#include <stdlib.h>
#include <string.h>
#include <dvbcsa/dvbcsa.h>
#include "cipher/cipher_impl.h"
#include "lib/err.h"

int csa2_init(struct csa2_state *s)
{
	memset(s, 0, sizeof(*s));
	s->batch_size = dvbcsa_bs_batch_size();
	if (s->batch_size == 0)
		return CE_INTERNAL;
	s->batch = calloc((size_t)s->batch_size + 1, sizeof(*s->batch));
	s->key[0] = dvbcsa_bs_key_alloc();
	s->key[1] = dvbcsa_bs_key_alloc();
	if (!s->batch || !s->key[0] || !s->key[1]) {
		csa2_cleanup(s);
		return CE_NOMEM;
	}
	return 0;
}

void csa2_clear_key(struct csa2_state *s, int parity)
{
	static const dvbcsa_cw_t zero;

	/* The schedule is opaque to us: overwrite it with the all-zero key's. */
	if (s->key[parity])
		dvbcsa_bs_key_set(zero, s->key[parity]);
}

void csa2_cleanup(struct csa2_state *s)
{
	for (int p = 0; p < 2; p++) {
		if (s->key[p]) {
			csa2_clear_key(s, p);
			dvbcsa_bs_key_free(s->key[p]);
		}
	}
	free(s->batch);
	memset(s, 0, sizeof(*s));
}

void csa2_set_key(struct csa2_state *s, int parity, const uint8_t cw[8])
{
	dvbcsa_bs_key_set(cw, s->key[parity]);
}

void csa2_run(struct csa2_state *s, int parity, const struct cipher_payload *pl, size_t n, bool enc)
{
	size_t i = 0;

	while (i < n) {
		size_t k = 0;

		for (; k < s->batch_size && i < n; i++) {
			if (pl[i].len < 8)
				continue; /* nothing to do; skip the batch slot too */
			s->batch[k].data = pl[i].p;
			s->batch[k].len = pl[i].len;
			k++;
		}
		if (k == 0)
			break;
		s->batch[k].data = NULL;
		s->batch[k].len = 0;
		if (enc)
			dvbcsa_bs_encrypt(s->key[parity], s->batch, 184);
		else
			dvbcsa_bs_decrypt(s->key[parity], s->batch, 184);
	}
}
