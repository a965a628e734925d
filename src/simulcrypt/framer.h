/*
 * framer.h - the one SimulCrypt stream framer: whole messages (5-byte
 * header, message_length) out of a TCP byte stream, for the four endpoints
 * (the ECMG, headend/ecmg.c; the EMMG, headend/emmg.c; the SCS client,
 * scrambler/scs.c; the MUX, scrambler/mux.c).
 *
 * The framer works in a buffer the caller owns and does no I/O. The caller
 * asks for room (sc_framer_room), receives into it, says how much arrived
 * (sc_framer_fill) and takes whole messages (sc_framer_next) until there
 * are none. "exact" room stops at the end of the message being assembled,
 * so an endpoint that reads one message at a time never takes bytes of the
 * next one. A message longer than max_msg is reported once with its header
 * (SC_FRAME_TOO_LONG, to be answered with message_too_long) and its bytes
 * are then dropped as they arrive.
 */
#ifndef CASTELLAN_SIMULCRYPT_FRAMER_H
#define CASTELLAN_SIMULCRYPT_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "simulcrypt/simulcrypt.h"

enum { SC_FRAME_NONE = 0, SC_FRAME_MSG = 1, SC_FRAME_TOO_LONG = 2 };

struct sc_framer {
	uint8_t *buf;			/* cap bytes, the caller's */
	size_t cap;
	size_t max_msg;			/* largest message returned (<= cap) */
	size_t len;			/* bytes held */
	size_t off;			/* first byte not yet returned */
	size_t skip;			/* bytes of an oversized message still to drop */
	uint8_t hdr[SC_HEADER_BYTES];	/* that message's header */
};

/* buf of cap bytes (>= SC_HEADER_BYTES); max_msg is lowered to cap. */
void sc_framer_init(struct sc_framer *f, uint8_t *buf, size_t cap, size_t max_msg);
/* Forget every byte held (a new connection). */
void sc_framer_reset(struct sc_framer *f);
/* Where to receive next and at most *room bytes (0: call sc_framer_next
 * first). exact: no further than the end of the current message. */
uint8_t *sc_framer_room(struct sc_framer *f, bool exact, size_t *room);
/* n bytes were received at the room. */
void sc_framer_fill(struct sc_framer *f, size_t n);
/* SC_FRAME_NONE (more bytes needed), SC_FRAME_MSG (*msg, *len: one whole
 * message, valid until the next framer call), SC_FRAME_TOO_LONG (*msg: its
 * 5-byte header, *len: its announced size). */
int sc_framer_next(struct sc_framer *f, uint8_t **msg, size_t *len);

#endif
