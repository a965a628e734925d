/*
 * bytes.h - big-endian stores into a buffer the caller owns and has sized
 * (a header being built, a counter block, a length prefix, a wire field
 * patched in place). Writing only: every read of outside bytes goes
 * through the bounded cursor (cursor.h: cur_u16 ... or cur_u16_at for one
 * field of a buffer of known length). A growing message is better written
 * with struct wbuf (cursor.h), which checks capacity.
 */
#ifndef CASTELLAN_BYTES_H
#define CASTELLAN_BYTES_H

#include <stdint.h>

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
