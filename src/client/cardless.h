/*
 * cardless.h - the cardless CAS client (cardless.c): entitlements and package
 * keys from a provisioning file, or a card file plus EMMs; it implements
 * cas/client.h. Free with cas_client_free.
 */
#ifndef CASTELLAN_CLIENT_CARDLESS_H
#define CASTELLAN_CLIENT_CARDLESS_H

#include "lib/err.h"
#include "cas/client.h"

/* The cardless client: entitlements and package keys from a provisioning
 * file (cas/entitlement.h). 0 or the load error. Free with cas_client_free. */
int cardless_client_new(const char *entitlement_path, struct cas_client *out) WARN_UNUSED;
/* The same from an entitlement already in memory (copied; caller keeps and
 * wipes its own). */
struct entitlement;
int cardless_client_from(const struct entitlement *e, struct cas_client *out) WARN_UNUSED;
/* The cardless client in card mode: identity from a card file (cas/card.h),
 * entitlement and package keys from the EMMs it is given (cas/emm.h). With
 * state_path, the card state (last EMM sequence number, entitlement, keys,
 * commands) is read from it if it exists (CE_MAC if altered) and rewritten
 * atomically (0600) after every accepted EMM. */
int cardless_client_new_card(const char *card_path, const char *state_path, struct cas_client *out) WARN_UNUSED;
/* Copy of a card-mode client's state (tests, diagnostics): 0, CE_ARG, CE_STATE. */
struct emm_card_state;
int cardless_client_state(const struct cas_client *c, struct emm_card_state *out) WARN_UNUSED;

#endif
