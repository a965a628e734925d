/*
 * fixed_cw.c - the fixed-CW CAS client (BISS-like; TSDuck's descrambler
 * --cw): no ECMs, one CW for both parities of every service. It is a
 * struct cas_client like any other (cas/client.h), so fixed-CW streams go
 * through exactly the same box and descrambler path as ECM streams.
 * References: ETSI TS 100 289 (CSA2 CW), ETSI TS 103 127 (CISSA key).
 */
#include <stdlib.h>
#include <string.h>
#include "lib/util.h"
#include "stb/stb.h"

struct fixed_cw {
	enum cw_alg alg;
	size_t len;
	uint8_t cw[CW_MAX_BYTES];
};

static uint16_t fixed_ca_system_id(void *self)
{
	(void)self;
	return STB_CA_SYSTEM_NONE;
}

/* Called with sec == NULL when the box finds a service: load the CW as
 * both keys. A real section (never sent by the box for CA_system_id 0) is
 * refused. */
static int fixed_ecm(void *self, const struct cas_host *host, uint16_t service_id, const uint8_t *sec,
	size_t len)
{
	struct fixed_cw *f = self;
	int r;

	if (sec || len)
		return CE_UNSUPPORTED;
	if (!host || !host->load_cw)
		return CE_UNSUPPORTED;
	r = host->load_cw(host->ctx, service_id, f->alg, CW_EVEN, f->cw, f->len);
	if (r == 0)
		r = host->load_cw(host->ctx, service_id, f->alg, CW_ODD, f->cw, f->len);
	return r;
}

static int fixed_emm(void *self, const uint8_t *sec, size_t len)
{
	(void)self;
	(void)sec;
	(void)len;
	return CE_UNSUPPORTED;
}

static void fixed_destroy(void *self)
{
	struct fixed_cw *f = self;

	if (!f)
		return;
	secret_wipe(f, sizeof(*f));
	free(f);
}

static const struct cas_client_ops fixed_ops = {
	.name = "fixed-cw",
	.ca_system_id = fixed_ca_system_id,
	.ecm = fixed_ecm,
	.emm = fixed_emm,
	.destroy = fixed_destroy,
};

int stb_fixed_cw_client_new(enum cw_alg alg, const uint8_t *cw, size_t len, struct cas_client *out)
{
	struct fixed_cw *f;
	size_t klen = cw_alg_key_bytes(alg);

	if (!out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	if (!cw || klen == 0 || len != klen)
		return CE_ARG;
	f = calloc(1, sizeof(*f));
	if (!f)
		return CE_NOMEM;
	f->alg = alg;
	f->len = len;
	memcpy(f->cw, cw, len);
	out->ops = &fixed_ops;
	out->self = f;
	return 0;
}
