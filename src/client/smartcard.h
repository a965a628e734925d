/*
 * smartcard.h - the box's side of the smartcard: an APDU transport (PC/SC
 * through libpcsclite, or the applet in-process for tests), command
 * chaining, and the smartcard CAS client (cas/client.h) built on them
 * (src/client/smartcard.c).
 *
 * The client sends each new ECM to the card (INS 0x20), loads the CWs it
 * answers, and maps the card's status words to CE_* codes
 * (card_sw_to_err) so the box reports why. Identical ECM repetitions are
 * answered from memory without bothering the card. A paired card answers
 * CWs encrypted for one box: the client hands them to host->load_ecw as
 * ladder chain CHIP_CHAIN_PAIRED (card serial | block; the chip derives
 * K_pair from its own K_v, stb/chip.h), or, on a box without a chip, opens
 * them with the pairing key given by smartcard_client_set_pair_key (a
 * software stand-in, docs/smartcard.md "Pairing").
 */
#ifndef CASTELLAN_CARD_SMARTCARD_H
#define CASTELLAN_CARD_SMARTCARD_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/client.h"
#include "card/applet.h"

struct card_transport {
	void *ctx;
	/* One APDU exchange: resp gets data + SW1 SW2. 0, CE_IO, CE_CLOSED. */
	int (*transmit)(void *ctx, const uint8_t *apdu, size_t len, uint8_t *resp, size_t cap, size_t *rlen);
	void (*close)(void *ctx); /* may be NULL */
};

/* Open the card in a PC/SC reader: the first reader whose name contains
 * `reader` (NULL or "" = the first reader with a card), waiting up to
 * wait_ms for the card. 0, CE_NOT_FOUND (no such reader / no card),
 * CE_IO (pcscd not running). */
int card_pcsc_open(const char *reader, unsigned wait_ms, struct card_transport *out) WARN_UNUSED;
/* The applet in this process (tests, benchmarks): a is not owned. */
void card_local_transport(struct card_applet *a, struct card_transport *out);
void card_transport_close(struct card_transport *t);

/* One command: CLA 0x80, INS ins, P1 P2 0, data split into chained parts
 * of at most 255 bytes. out gets the response data, *sw the status word.
 * 0 or a transport error (a refusal is a status word, not an error). */
int card_transceive(const struct card_transport *t, uint8_t ins, const uint8_t *data, size_t len, uint8_t *out,
	size_t cap, size_t *out_len, uint16_t *sw) WARN_UNUSED;
/* GET INFO -> struct card_info. 0, a transport error, or the SW's code. */
int card_read_info(const struct card_transport *t, struct card_info *info) WARN_UNUSED;

/* The smartcard client. Takes ownership of *t (closed on destroy). Reads
 * the card info first: CE_STATE for a blank card. */
int smartcard_client_new(struct card_transport *t, struct cas_client *out) WARN_UNUSED;
/* Same over PC/SC (card_pcsc_open with a 5 s wait). */
int smartcard_client_new_pcsc(const char *reader, struct cas_client *out) WARN_UNUSED;
/* Software chip stand-in for paired cards on a host without load_ecw. */
int smartcard_client_set_pair_key(struct cas_client *c, const uint8_t k_pair[CARD_PAIR_KEY_BYTES]) WARN_UNUSED;
/* The card info read at creation (refreshed after each EMM). */
int smartcard_client_info(struct cas_client *c, struct card_info *out) WARN_UNUSED;

#endif
