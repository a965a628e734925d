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
#include "cas/osd.h"

struct emm_view;
struct emm_content;
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
	/*
	 * On-screen display (issue 13; optional, NULL: the box shows nothing).
	 * on_fingerprint: an authenticated fingerprint instruction, from an
	 * ECM the client accepted (service_id = that service; called for each
	 * new ECM that carries it, the host de-duplicates by fp->fp_id) or from
	 * an EMM for this card (service_id 0: every service). text is what to
	 * draw (osd_fp_text: serial / box id, or the covert code).
	 * on_message: an authenticated, unexpired message from an EMM.
	 * Both are called synchronously from ecm()/emm(); the pointers are
	 * valid only during the call.
	 */
	void (*on_fingerprint)(void *ctx, uint16_t service_id, const struct osd_fingerprint *fp, const char *text);
	void (*on_message)(void *ctx, const struct osd_message *m);
	/*
	 * A chip box's OPEN_EMM (stb/chip.h; NULL on every other host): the
	 * chip opens card `serial`'s record of a vendor EMM (sealed under
	 * K_emm from the chip's K_v, docs/emm-format.md "Vendor EMMs") and
	 * answers only what is not secret: v the header, out the grant,
	 * commands, limits, the OSD items and each package key re-protected
	 * as E_{K_v}(K_pkg). 0, CE_NOT_FOUND (not for this card), CE_MAC
	 * (not for this chip and vendor, or altered), CE_STATE, CE_FORMAT...
	 */
	int (*open_emm)(void *ctx, const uint8_t *sec, size_t len, uint64_t serial, struct emm_view *v,
		struct emm_content *out);
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
	/* Optional (NULL: EMMs carry no OSD for this client). The host whose
	 * on_fingerprint / on_message EMM-borne items go to (ecm() gets its
	 * host per call; emm() has none). NULL detaches. The host must stay
	 * valid until detached or the client destroyed. */
	void (*set_host)(void *self, const struct cas_host *host);
};

struct cas_client {
	const struct cas_client_ops *ops;
	void *self;
};

/* Calls the client's destroy and clears *c (NULL-safe). The clients
 * (cardless, smartcard, ladder) are in src/client/. */
void cas_client_free(struct cas_client *c);
/* ops->set_host if the client has one (NULL-safe). */
void cas_client_set_host(struct cas_client *c, const struct cas_host *host);
/* Deliver the fingerprint of an ECM the client (or its card / chip)
 * accepted to host->on_fingerprint, if both exist: the shared step of
 * every client. serial / stb_id / k_card as osd_fp_text. 0, or
 * CE_FORMAT for a malformed block (not expected after authentication). */
struct ecm_view;
int cas_client_deliver_fp(const struct cas_host *host, uint16_t service_id, const struct ecm_view *v,
	uint64_t serial, uint64_t stb_id, const uint8_t *k_card);

#endif
