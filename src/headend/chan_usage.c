/*
 * chan_usage.c - the channels' usage rules for the ECMG (chan_usage.h).
 * One word per service id: 0 none, else CHAN_USAGE_SET | copy_control << 32
 * | retention_s.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include "headend/chan_usage.h"
#include "sms/store_usage.h"

#define CHAN_USAGE_SET (1ull << 40)

struct chan_usage {
	_Atomic uint64_t v[65536];
};

int chan_usage_new(struct chan_usage **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : CE_NOMEM;
}

void chan_usage_free(struct chan_usage *cu)
{
	free(cu);
}

static int usage_one(void *ctx, uint16_t sid, const struct cas_usage *u)
{
	((uint64_t *)ctx)[sid] = CHAN_USAGE_SET | (uint64_t)u->copy_control << 32 | u->retention_s;
	return 0;
}

int chan_usage_load(struct chan_usage *cu, struct sms_store *st)
{
	uint64_t *u = calloc(65536, sizeof(uint64_t));
	size_t n = 0;
	int r;

	if (!u)
		return CE_NOMEM;
	r = sms_usage_list(st, usage_one, u, &n);
	if (r == 0)
		for (size_t i = 0; i < 65536; i++)
			atomic_store(&cu->v[i], u[i]);
	free(u);
	return r;
}

int chan_usage_lookup(void *ctx, uint16_t ecm_id, struct cas_usage *u)
{
	const struct chan_usage *cu = ctx;
	uint64_t v = atomic_load(&cu->v[ecm_id]);

	if (!(v & CHAN_USAGE_SET))
		return CE_NOT_FOUND;
	u->copy_control = (uint8_t)((v >> 32) & 0xFF);
	u->retention_s = (uint32_t)v;
	return 0;
}
