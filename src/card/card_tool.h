/*
 * card_tool.h - the card's own side of `castellan card` (docs/smartcard.md):
 * serve a card file as a virtual card in pcscd's vpcd reader, and issue a
 * card's personalization file at the head-end. The tools that talk to a
 * card like a box does (program, erase, info, emm) are client/card_admin.h.
 * Messages go to stderr prefixed "card serve: " / "card issue: ".
 */
#ifndef CASTELLAN_CARD_CARD_TOOL_H
#define CASTELLAN_CARD_CARD_TOOL_H

#include <signal.h>
#include <stdint.h>
#include "lib/err.h"

/* The transport passphrase's variable, when no --transport-file. */
#define CARD_TRANSPORT_ENV "CASTELLAN_TRANSPORT_PASSPHRASE"

/* Run the card application on EEPROM file eeprom (created blank if absent)
 * behind vpcd at host (NULL: 127.0.0.1):port, reconnecting when pcscd
 * restarts, until *stop. 0, or CE_* when the card file cannot be used. */
int card_serve(const char *eeprom, const char *host, uint16_t port, volatile sig_atomic_t *stop) WARN_UNUSED;

/* What `card issue` writes: card serial's personalization file at out
 * (0600), request counter limits as card_perso_issue (0: the defaults),
 * sealed under transport_pass. */
struct keystore;
struct card_issue {
	const struct keystore *ks;    /* the head-end keystore (K_card) */
	uint64_t serial;
	uint64_t max_channels, window_s, block_s;
	const char *out;
};
/* 0 or CE_* (said on stderr); prints "card N: personalization file OUT". */
int card_issue_file(const struct card_issue *c, const char *transport_pass) WARN_UNUSED;

/* The transport passphrase of personalization files: path's first line,
 * else $CASTELLAN_TRANSPORT_PASSPHRASE (cas/secret_src.h secret_get). 0,
 * or CE_ARG with "card TOOL: no transport passphrase ..." said on stderr.
 * Free with secret_free(p, strlen(p)). */
int card_transport_pass(const char *tool, const char *path, char **out) WARN_UNUSED;

#endif
