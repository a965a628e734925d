/*
 * descrambler.c - the emulated descrambler: slots of (service_id, tag) ->
 * struct ts_cipher, the cas_host.load_cw entry point, batch descrambling.
 * See descrambler.h. References: ETSI TS 100 289 (CSA2), ETSI TS 103 127
 * (CISSA), ISO/IEC 13818-1 2.4.3.
 */
#include <stdlib.h>
#include <string.h>
#include "lib/util.h"
#include "stb/descrambler.h"
#include "ts/ts.h"

struct descr_slot {
	uint16_t service_id;
	uint16_t tag;
	struct ts_cipher *cipher; /* holds the CWs; ts_cipher_free wipes */
	uint64_t cw_loads;
	uint64_t last_load_us;
};

struct descrambler {
	struct descrambler_config cfg;
	uint16_t cur_tag;
	uint64_t loads;
	size_t nslots;
	struct descr_slot slots[DESCR_MAX_SLOTS];
};

int descrambler_new(const struct descrambler_config *cfg, struct descrambler **out)
{
	struct descrambler *d;

	if (!out)
		return CE_ARG;
	*out = NULL;
	if (!cfg)
		return CE_ARG;
	d = calloc(1, sizeof(*d));
	if (!d)
		return CE_NOMEM;
	d->cfg = *cfg;
	d->cur_tag = DESCR_TAG_SERVICE;
	*out = d;
	return 0;
}

static void slot_release(struct descr_slot *s)
{
	ts_cipher_free(s->cipher);
	memset(s, 0, sizeof(*s));
}

void descrambler_free(struct descrambler *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nslots; i++)
		slot_release(&d->slots[i]);
	free(d);
}

/* Index of slot (service_id, tag), or -1. */
static long slot_index(const struct descrambler *d, uint16_t service_id, uint16_t tag)
{
	for (size_t i = 0; i < d->nslots; i++)
		if (d->slots[i].service_id == service_id && d->slots[i].tag == tag)
			return (long)i;
	return -1;
}

static struct descr_slot *slot_find(struct descrambler *d, uint16_t service_id, uint16_t tag)
{
	long i = slot_index(d, service_id, tag);

	return i < 0 ? NULL : &d->slots[i];
}

int descrambler_load_cw(struct descrambler *d, uint16_t service_id, uint16_t tag, enum cw_alg alg,
	enum cw_parity parity, const uint8_t *cw, size_t len)
{
	struct descr_slot *s;
	size_t klen = cw_alg_key_bytes(alg);
	int r;

	if (!d || !cw || klen == 0 || len != klen || (parity != CW_EVEN && parity != CW_ODD))
		return CE_ARG;
	s = slot_find(d, service_id, tag);
	if (!s) {
		if (d->nslots >= DESCR_MAX_SLOTS)
			return CE_LIMIT;
		s = &d->slots[d->nslots];
		memset(s, 0, sizeof(*s));
		s->service_id = service_id;
		s->tag = tag;
		d->nslots++;
	}
	if (s->cipher && ts_cipher_alg(s->cipher) != alg) {
		ts_cipher_free(s->cipher);
		s->cipher = NULL;
	}
	if (!s->cipher) {
		s->cipher = ts_cipher_new(alg, d->cfg.csa2_reduce);
		if (!s->cipher)
			return CE_NOMEM;
	}
	r = ts_cipher_set_key(s->cipher, parity, cw, len);
	if (r != 0)
		return r;
	s->cw_loads++;
	s->last_load_us = now_mono_us();
	d->loads++;
	return 0;
}

static int host_load_cw(void *ctx, uint16_t service_id, enum cw_alg alg, enum cw_parity parity,
	const uint8_t *cw, size_t len)
{
	struct descrambler *d = ctx;

	return descrambler_load_cw(d, service_id, d->cur_tag, alg, parity, cw, len);
}

static uint64_t host_now_ms(void *ctx)
{
	struct descrambler *d = ctx;

	if (d->cfg.now_ms)
		return d->cfg.now_ms(d->cfg.clock_ctx);
	return now_wall_ms();
}

void descrambler_host(struct descrambler *d, struct cas_host *host)
{
	memset(host, 0, sizeof(*host));
	host->ctx = d;
	host->load_cw = host_load_cw;
	host->load_ecw = NULL;
	host->now_ms = host_now_ms;
}

void descrambler_set_tag(struct descrambler *d, uint16_t tag)
{
	if (d)
		d->cur_tag = tag;
}

int descrambler_run(struct descrambler *d, uint16_t service_id, uint16_t tag, uint8_t *const *pkts,
	size_t n, size_t *done, size_t *missing)
{
	struct descr_slot *s;
	size_t dn = 0, mi = 0;
	int r = 0;

	if (done)
		*done = 0;
	if (missing)
		*missing = 0;
	if (!d || (n && !pkts))
		return CE_ARG;
	s = slot_find(d, service_id, tag);
	if (!s || !s->cipher) {
		for (size_t i = 0; i < n; i++)
			if ((pkts[i][3] >> 6) != TS_SC_CLEAR)
				mi++;
	} else {
		r = ts_cipher_descramble(s->cipher, pkts, n, &dn, &mi);
	}
	if (done)
		*done = dn;
	if (missing)
		*missing = mi;
	return r;
}

void descrambler_slot_info(const struct descrambler *d, uint16_t service_id, uint16_t tag,
	struct descr_slot_info *info)
{
	const struct descr_slot *s;
	long i;

	memset(info, 0, sizeof(*info));
	if (!d)
		return;
	i = slot_index(d, service_id, tag);
	if (i < 0)
		return;
	s = &d->slots[i];
	info->exists = true;
	info->cw_loads = s->cw_loads;
	info->last_load_us = s->last_load_us;
	if (s->cipher) {
		info->alg = ts_cipher_alg(s->cipher);
		info->has_even = ts_cipher_has_key(s->cipher, CW_EVEN);
		info->has_odd = ts_cipher_has_key(s->cipher, CW_ODD);
	}
}

uint64_t descrambler_loads(const struct descrambler *d)
{
	return d ? d->loads : 0;
}

void descrambler_drop_service(struct descrambler *d, uint16_t service_id)
{
	size_t w = 0;

	if (!d)
		return;
	for (size_t i = 0; i < d->nslots; i++) {
		if (d->slots[i].service_id == service_id) {
			slot_release(&d->slots[i]);
			continue;
		}
		if (w != i) {
			d->slots[w] = d->slots[i];
			memset(&d->slots[i], 0, sizeof(d->slots[i]));
		}
		w++;
	}
	d->nslots = w;
}
