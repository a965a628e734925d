/*
 * card_admin.h - the tools of `castellan card` that talk to a card the way
 * a box does (docs/smartcard.md): program a blank card from its
 * personalization file, erase it with the head-end's token, read what it
 * says about itself, send it EMMs. The card is reached through PC/SC
 * (reader) or, with eeprom, in-process on a card file (no pcscd). The
 * results are printed on stdout, failures said on stderr prefixed
 * "card <tool>: ".
 */
#ifndef CASTELLAN_CLIENT_CARD_ADMIN_H
#define CASTELLAN_CLIENT_CARD_ADMIN_H

#include "lib/err.h"

/* Which card: eeprom (a card file, in-process) or else the PC/SC reader
 * whose name contains reader (NULL: the first with a card). */
struct card_target {
	const char *reader, *eeprom;
};

/* Decrypt the personalization file with transport_pass and write it into
 * the blank card. 0 or CE_*. */
int card_admin_program(const struct card_target *t, const char *file, const char *transport_pass) WARN_UNUSED;
/* Where the head-end keystore comes from when `card erase` computes the
 * token: opened (passphrase asked) only when the card is not blank. */
struct keystore;
struct card_keys_src {
	int (*open)(void *ctx, struct keystore **ks); /* 0 or CE_* (said) */
	void *ctx;
};
/* Blank a programmed card with token_hex (32 hex digits) or, when NULL, the
 * token computed from the keystore of keys. 0 or CE_*. */
int card_admin_erase(const struct card_target *t, const char *token_hex, const struct card_keys_src *keys) WARN_UNUSED;
/* Print serial, packages, period, counter, block, pairing, time. */
int card_admin_info(const struct card_target *t) WARN_UNUSED;
/* Send each EMM of file (hex, one section a line) in order; stops at the
 * first refusal; a file with a bad line sends nothing. 0 or CE_*. */
int card_admin_emm(const struct card_target *t, const char *file) WARN_UNUSED;

#endif
