/* client.c - the one function of the CAS client API (client.h) that every
 * client shares: cas_client_free. The clients themselves are in src/client/. */
#include <stddef.h>
#include "cas/client.h"

void cas_client_free(struct cas_client *c)
{
	if (!c)
		return;
	if (c->ops && c->ops->destroy)
		c->ops->destroy(c->self);
	c->ops = NULL;
	c->self = NULL;
}
