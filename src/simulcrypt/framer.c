/* framer.c - SimulCrypt messages out of a TCP byte stream (framer.h). */
#include <string.h>
#include "simulcrypt/framer.h"

void sc_framer_init(struct sc_framer *f, uint8_t *buf, size_t cap, size_t max_msg)
{
	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->cap = cap;
	f->max_msg = max_msg < cap ? max_msg : cap;
}

void sc_framer_reset(struct sc_framer *f)
{
	f->len = f->off = f->skip = 0;
}

/* Move the bytes not yet returned to the start of the buffer. */
static void compact(struct sc_framer *f)
{
	if (f->off == 0)
		return;
	memmove(f->buf, f->buf + f->off, f->len - f->off);
	f->len -= f->off;
	f->off = 0;
}

uint8_t *sc_framer_room(struct sc_framer *f, bool exact, size_t *room)
{
	size_t free_bytes, want;

	compact(f);
	free_bytes = f->cap - f->len;
	want = free_bytes;
	if (exact) {
		if (f->skip)
			want = f->skip > f->len ? f->skip - f->len : 0;
		else if (f->len < SC_HEADER_BYTES)
			want = SC_HEADER_BYTES - f->len;
		else if (sc_frame_len(f->buf) > f->len)
			want = sc_frame_len(f->buf) - f->len;
		else
			want = 0;
		if (want > free_bytes)
			want = free_bytes;
	}
	*room = want;
	return f->buf + f->len;
}

void sc_framer_fill(struct sc_framer *f, size_t n)
{
	f->len += n <= f->cap - f->len ? n : f->cap - f->len;
}

int sc_framer_next(struct sc_framer *f, uint8_t **msg, size_t *len)
{
	size_t have, flen;

	if (f->skip) {
		size_t k = f->len - f->off < f->skip ? f->len - f->off : f->skip;

		f->off += k;
		f->skip -= k;
		if (f->skip) {
			compact(f);
			return SC_FRAME_NONE;
		}
	}
	have = f->len - f->off;
	if (have < SC_HEADER_BYTES) {
		compact(f);
		return SC_FRAME_NONE;
	}
	flen = sc_frame_len(f->buf + f->off);
	if (flen > f->max_msg) {
		memcpy(f->hdr, f->buf + f->off, SC_HEADER_BYTES);
		f->skip = flen; /* dropped from the next call on, header included */
		*msg = f->hdr;
		*len = flen;
		return SC_FRAME_TOO_LONG;
	}
	if (have < flen) {
		compact(f);
		return SC_FRAME_NONE;
	}
	*msg = f->buf + f->off;
	*len = flen;
	f->off += flen;
	return SC_FRAME_MSG;
}
