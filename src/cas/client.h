/*
 * client.h - the CAS client API: what a set-top box offers a CAS client, and
 * what a CAS client (cardless today; smartcard and signed OTA modules later)
 * must implement. docs/client-api.md describes it for module writers.
 *
 * The host gives the client a way to load control words into a descrambler
 * slot. Today load_cw takes a CW in the clear (cardless, no secure chip yet);
 * when the box gets a key ladder, load_ecw takes the protected form and the
 * client never sees a CW. A client fills whichever its host offers.
 *
 * Every call returns 0 or an CE_* code that says why (CE_NOT_ENTITLED,
 * CE_EXPIRED, CE_NO_KEY, CE_MAC, CE_REPLAY, CE_BLOCKED, CE_FORMAT...),
 * so a box can show a reason instead of silently timing out.
 */
#ifndef CASTELLAN_CLIENT_H
#define CASTELLAN_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cipher/cipher.h"

struct cas_host {
	void *ctx;
	/* Load a clear CW into the descrambler of service_id. */
	int (*load_cw)(void *ctx, uint16_t service_id, enum cw_alg alg, enum cw_parity parity,
		const uint8_t *cw, size_t len);
	/* Key-ladder form (NULL until the secure chip exists): ek is the
	 * ladder input chain for the CW, opaque to the host. */
	int (*load_ecw)(void *ctx, uint16_t service_id, enum cw_alg alg, enum cw_parity parity,
		const uint8_t *ek, size_t ek_len);
	/* Current unix time in ms (the box's clock; tests set it). */
	uint64_t (*now_ms)(void *ctx);
};

struct cas_client_ops {
	const char *name;
	/* CA_system_id this client handles (matched against CA_descriptors). */
	uint16_t (*ca_system_id)(void *self);
	/* One ECM section for service_id (table_id 0x80/0x81). Loads CWs through
	 * the host; returns 0 or why not. Repeated ECMs (same table_id and
	 * content) may return 0 without work. */
	int (*ecm)(void *self, const struct cas_host *host, uint16_t service_id,
		const uint8_t *sec, size_t len);
	/* One EMM section (table_id 0x82..0x8F). CE_UNSUPPORTED if the client
	 * takes no EMMs; CE_NOT_FOUND if not addressed to this card. */
	int (*emm)(void *self, const uint8_t *sec, size_t len);
	void (*destroy)(void *self);
};

struct cas_client {
	const struct cas_client_ops *ops;
	void *self;
};

/* Calls the client's destroy and clears *c (NULL-safe). The clients
 * (cardless, smartcard, ladder) are in src/client/. */
void cas_client_free(struct cas_client *c);

#endif
