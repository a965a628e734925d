/*
 * cipher.c - TS packet scrambling/descrambling front end (see cipher.h):
 * validates packets with ts_parse (the payload offset comes from there
 * only), sets and resets transport_scrambling_control, gathers payloads
 * per parity and hands them to the CSA2 or CISSA back end in batches.
 *
 * References: ISO/IEC 13818-1 2.4.3 (scrambling control: 00 clear, 10 even,
 * 11 odd, 01 reserved), ETSI TS 100 289 (CSA2 on TS), ETSI TS 103 127
 * (DVB-CISSA). Keys live only in the back-end states and are wiped on
 * clear_key and free.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cipher/cipher.h"
#include <openssl/crypto.h>
#include "cipher/cipher_impl.h"
#include "cipher/csa2_bs.h"
#include "lib/util.h"
#include "ts/ts.h"

/* Payloads gathered per back-end call: a multiple of every CSA2 engine's
 * batch (64..512) and of the AES-NI lane count. */
#define GATHER_MAX 1024

struct ts_cipher {
	enum cw_alg alg;
	bool reduce;				     /* CSA2 entropy reduction on set_key */
	bool has_key[2];			     /* even, odd */
	struct csa2_state csa2;			     /* used when alg == CW_ALG_CSA2 */
	struct cissa_state cissa;		     /* used when alg == CW_ALG_CISSA */
	struct cipher_payload gather[2][GATHER_MAX]; /* per parity */
};

size_t cw_alg_key_bytes(enum cw_alg alg)
{
	switch (alg) {
	case CW_ALG_CSA2:
		return 8;
	case CW_ALG_CISSA:
		return 16;
	}
	return 0;
}

const char *cw_alg_name(enum cw_alg alg)
{
	switch (alg) {
	case CW_ALG_CSA2:
		return "csa2";
	case CW_ALG_CISSA:
		return "cissa";
	}
	return "unknown";
}

int cw_alg_parse(const char *s, enum cw_alg *alg)
{
	if (!s || !alg)
		return CE_ARG;
	if (strcasecmp(s, "csa2") == 0 || strcasecmp(s, "dvb-csa2") == 0)
		*alg = CW_ALG_CSA2;
	else if (strcasecmp(s, "cissa") == 0 || strcasecmp(s, "dvb-cissa") == 0)
		*alg = CW_ALG_CISSA;
	else
		return CE_ARG;
	return 0;
}

void csa2_reduce(uint8_t cw[8])
{
	cw[3] = (uint8_t)(cw[0] + cw[1] + cw[2]);
	cw[7] = (uint8_t)(cw[4] + cw[5] + cw[6]);
}

struct ts_cipher *ts_cipher_new(enum cw_alg alg, bool csa2_reduce_on)
{
	struct ts_cipher *c;

	if (cw_alg_key_bytes(alg) == 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->alg = alg;
	c->reduce = csa2_reduce_on;
	if (alg == CW_ALG_CSA2) {
		if (csa2_init(&c->csa2) != 0)
			goto fail;
	} else {
		if (cissa_init(&c->cissa) != 0)
			goto fail;
		c->cissa.aesni = cissa_aesni_available();
	}
	return c;
fail:
	free(c);
	return NULL;
}

void ts_cipher_free(struct ts_cipher *c)
{
	if (!c)
		return;
	if (c->alg == CW_ALG_CSA2)
		csa2_cleanup(&c->csa2);
	else
		cissa_cleanup(&c->cissa);
	/* gather[] holds pointers into caller packets only; wipe all anyway */
	secret_free(c, sizeof(*c));
}

enum cw_alg ts_cipher_alg(const struct ts_cipher *c)
{
	return c->alg;
}

int ts_cipher_set_cissa_impl(struct ts_cipher *c, enum cissa_impl impl)
{
	if (!c || c->alg != CW_ALG_CISSA)
		return CE_ARG;
	switch (impl) {
	case CISSA_IMPL_AUTO:
		c->cissa.aesni = cissa_aesni_available();
		return 0;
	case CISSA_IMPL_OPENSSL:
		c->cissa.aesni = false;
		return 0;
	case CISSA_IMPL_AESNI:
		if (!cissa_aesni_available())
			return CE_UNSUPPORTED;
		c->cissa.aesni = true;
		return 0;
	}
	return CE_ARG;
}

bool ts_cipher_cissa_aesni(const struct ts_cipher *c)
{
	return c && c->alg == CW_ALG_CISSA && c->cissa.aesni;
}

int ts_cipher_set_key(struct ts_cipher *c, enum cw_parity parity, const uint8_t *cw, size_t len)
{
	int r;

	if (!c || !cw || (parity != CW_EVEN && parity != CW_ODD) || len != cw_alg_key_bytes(c->alg))
		return CE_ARG;
	if (c->alg == CW_ALG_CSA2) {
		uint8_t k[8];

		memcpy(k, cw, sizeof(k));
		if (c->reduce)
			csa2_reduce(k);
		csa2_set_key(&c->csa2, parity, k);
		secret_wipe(k, sizeof(k));
	} else {
		if ((r = cissa_set_key(&c->cissa, parity, cw)) != 0) {
			cissa_clear_key(&c->cissa, parity);
			c->has_key[parity] = false;
			return r;
		}
	}
	c->has_key[parity] = true;
	return 0;
}

void ts_cipher_clear_key(struct ts_cipher *c, enum cw_parity parity)
{
	if (!c || (parity != CW_EVEN && parity != CW_ODD))
		return;
	if (c->alg == CW_ALG_CSA2)
		csa2_clear_key(&c->csa2, parity);
	else
		cissa_clear_key(&c->cissa, parity);
	c->has_key[parity] = false;
}

bool ts_cipher_has_key(const struct ts_cipher *c, enum cw_parity parity)
{
	return c && (parity == CW_EVEN || parity == CW_ODD) && c->has_key[parity];
}

int ts_cipher_set_csa2_impl(struct ts_cipher *c, const char *name)
{
	if (!c || c->alg != CW_ALG_CSA2 || !name)
		return CE_ARG;
	return csa2_select(&c->csa2, name);
}

const char *ts_cipher_csa2_impl(const struct ts_cipher *c)
{
	return c && c->alg == CW_ALG_CSA2 ? c->csa2.impl->name : NULL;
}

size_t ts_cipher_batch_size(const struct ts_cipher *c)
{
	return c && c->alg == CW_ALG_CSA2 ? c->csa2.batch_size : 1;
}

size_t ts_cipher_csa2_batch_default(void)
{
	return csa2_impl_default()->lanes;
}

bool ts_cipher_same_key(const struct ts_cipher *a, enum cw_parity pa, const struct ts_cipher *b, enum cw_parity pb)
{
	if (!a || !b || a->alg != b->alg || (pa != CW_EVEN && pa != CW_ODD) || (pb != CW_EVEN && pb != CW_ODD) ||
	    !a->has_key[pa] || !b->has_key[pb])
		return false;
	/* CISSA has no batch to fill: never merged */
	return a->alg == CW_ALG_CSA2 &&
	       CRYPTO_memcmp(&a->csa2.key[pa], &b->csa2.key[pb], sizeof(a->csa2.key[pa])) == 0;
}

static int run(struct ts_cipher *c, int parity, size_t n, bool enc)
{
	if (n == 0)
		return 0;
	if (c->alg == CW_ALG_CSA2) {
		csa2_run(&c->csa2, parity, c->gather[parity], n, enc);
		return 0;
	}
	return cissa_run(&c->cissa, parity, c->gather[parity], n, enc);
}

int ts_cipher_scramble(struct ts_cipher *c, uint8_t *const *pkts, size_t n, enum cw_parity parity)
{
	uint8_t sc = parity == CW_ODD ? TS_SC_ODD : TS_SC_EVEN;
	size_t g = 0;
	int r;

	if (!c || (n && !pkts) || (parity != CW_EVEN && parity != CW_ODD))
		return CE_ARG;
	if (!c->has_key[parity])
		return CE_NO_KEY;
	/* Check the whole batch first: on CE_FORMAT nothing is changed. */
	for (size_t i = 0; i < n; i++) {
		struct ts_hdr h;

		if (!pkts[i] || ts_parse(pkts[i], &h) != 0 || h.scrambling != TS_SC_CLEAR)
			return CE_FORMAT;
	}
	for (size_t i = 0; i < n; i++) {
		struct ts_hdr h;

		if (ts_parse(pkts[i], &h) != 0 || !h.has_payload)
			continue;
		c->gather[parity][g].p = pkts[i] + h.payload_off;
		c->gather[parity][g].len = h.payload_len;
		g++;
		ts_set_scrambling(pkts[i], sc);
		if (g == GATHER_MAX) {
			if ((r = run(c, parity, g, true)) != 0)
				return r;
			g = 0;
		}
	}
	return run(c, parity, g, true);
}

int ts_cipher_descramble(struct ts_cipher *c, uint8_t *const *pkts, size_t n, size_t *done, size_t *missing)
{
	size_t g[2] = {0, 0}, nd = 0, nm = 0;
	int r = 0, rr;

	if (done)
		*done = 0;
	if (missing)
		*missing = 0;
	if (!c || (n && !pkts))
		return CE_ARG;
	for (size_t i = 0; i < n; i++) {
		struct ts_hdr h;
		int par;

		if (!pkts[i] || ts_parse(pkts[i], &h) != 0) {
			r = CE_FORMAT;
			continue;
		}
		if (h.scrambling == TS_SC_CLEAR)
			continue;
		/* 01 is reserved: no key can undo it, count it as missing. */
		if (h.scrambling != TS_SC_EVEN && h.scrambling != TS_SC_ODD) {
			nm++;
			continue;
		}
		par = h.scrambling == TS_SC_ODD ? CW_ODD : CW_EVEN;
		if (!c->has_key[par]) {
			nm++;
			continue;
		}
		ts_set_scrambling(pkts[i], TS_SC_CLEAR);
		nd++;
		if (!h.has_payload)
			continue;
		c->gather[par][g[par]].p = pkts[i] + h.payload_off;
		c->gather[par][g[par]].len = h.payload_len;
		if (++g[par] == GATHER_MAX) {
			if ((rr = run(c, par, g[par], false)) != 0)
				return rr;
			g[par] = 0;
		}
	}
	for (int p = 0; p < 2; p++)
		if ((rr = run(c, p, g[p], false)) != 0)
			return rr;
	if (done)
		*done = nd;
	if (missing)
		*missing = nm;
	return r;
}
