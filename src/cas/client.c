/* client.c - the functions of the CAS client API (client.h) that every
 * client shares: cas_client_free, cas_client_set_host and the delivery of
 * an accepted ECM's fingerprint. The clients themselves are in src/client/. */
#include <stddef.h>
#include "cas/client.h"
#include "cas/ecm.h"

void cas_client_free(struct cas_client *c)
{
	if (!c)
		return;
	if (c->ops && c->ops->destroy)
		c->ops->destroy(c->self);
	c->ops = NULL;
	c->self = NULL;
}

void cas_client_set_host(struct cas_client *c, const struct cas_host *host)
{
	if (c && c->ops && c->ops->set_host)
		c->ops->set_host(c->self, host);
}

int cas_client_deliver_fp(const struct cas_host *host, uint16_t service_id, const struct ecm_view *v,
	uint64_t serial, uint64_t stb_id, const uint8_t *k_card)
{
	struct osd_fingerprint fp;
	char text[64];
	bool found = false;
	int r;

	if (!host || !v || !host->on_fingerprint || v->ext_block_len == 0)
		return 0;
	if ((r = ecm_ext_fingerprint(v, &fp, &found)) != 0 || !found)
		return r;
	if (fp.service == 0)
		fp.service = service_id;
	if ((r = osd_fp_text(&fp, serial, stb_id, k_card, text, sizeof(text))) != 0)
		return r;
	host->on_fingerprint(host->ctx, service_id, &fp, text);
	return 0;
}
