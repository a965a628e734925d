/*
 * cursor.h - bounded byte cursors: the only way Castellan reads or writes
 * untrusted or wire-format bytes.
 *
 * Reader (struct cur): offsets, not pointers. Every read goes through one
 * bounds check `n > len - off`. The first error sticks: once a read failed,
 * every later read fails too and returns the same code, so a parser can do a
 * run of reads and check once. Nested structures (a TLV value, a section, a
 * descriptor loop) are read through a child view made by cur_view(), and
 * cur_end() reports leftover bytes as CE_TRAILING.
 *
 * Writer (struct wbuf): fixed capacity given by the caller, a sticky overflow
 * flag, and back-patching of length fields (wbuf_reserve + wbuf_patch_*).
 * All multi-byte integers are big-endian (network / MPEG order). Stores into
 * a buffer the caller has sized, without a wbuf: bytes.h.
 */
#ifndef CASTELLAN_CURSOR_H
#define CASTELLAN_CURSOR_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

struct cur {
	const uint8_t *buf; /* start of the viewed bytes (not owned) */
	size_t len;         /* number of bytes in the view */
	size_t off;         /* next byte to read */
	int err;            /* first error (0 while all reads succeeded) */
};

void cur_init(struct cur *c, const void *buf, size_t len);
size_t cur_left(const struct cur *c);
/* 0 if every read succeeded and nothing is left, else the sticky error or
 * CE_TRAILING. */
int cur_end(const struct cur *c) WARN_UNUSED;

/* Each returns 0 or the sticky error; on error *v is set to 0. */
int cur_u8(struct cur *c, uint8_t *v);
int cur_u16(struct cur *c, uint16_t *v);
int cur_u24(struct cur *c, uint32_t *v);
int cur_u32(struct cur *c, uint32_t *v);
int cur_u64(struct cur *c, uint64_t *v);
/* Copy the next n bytes into dst. dst must hold n bytes: cur_bytes writes
 * exactly n bytes, the input's or, on error, zeros. Never pass a length read
 * from the input here; use cur_bytes_max. */
int cur_bytes(struct cur *c, void *dst, size_t n);
/* Like cur_bytes for a length n read from the input, into dst of dst_cap
 * bytes. n > dst_cap is a sticky CE_RANGE and nothing is read. Never writes
 * past dst_cap: on any error it zeroes min(n, dst_cap) bytes and leaves the
 * rest of dst alone. */
int cur_bytes_max(struct cur *c, void *dst, size_t dst_cap, size_t n);
int cur_skip(struct cur *c, size_t n);
/* Pointer to the next n bytes (valid while the underlying buffer lives), and
 * advance; NULL on error. */
const uint8_t *cur_ptr(struct cur *c, size_t n);
/* Child view of the next n bytes, and advance the parent past them. On error
 * the child is an empty view carrying the error. */
int cur_view(struct cur *c, size_t n, struct cur *child);
/* Text fields: a child view of the bytes before the next delim byte, and
 * advance the parent past that delim. No delim left: CE_TRUNCATED (sticky)
 * and an empty child carrying the error. A field is then read with the
 * child's own reads, or as text through cur_text. */
int cur_until(struct cur *c, uint8_t delim, struct cur *field);
/* One line of a text file: the bytes before the next '\n' (consumed), or
 * the rest when the last line has none. CE_TRUNCATED when nothing is left. */
int cur_line(struct cur *c, struct cur *line);
/* Narrow the unread part of a view: drop leading bytes found in lead and
 * trailing bytes found in trail (NUL-terminated sets; "" drops none). */
void cur_trim(struct cur *c, const char *lead, const char *trail);
/* Copy the unread part of a text view into dst (dst_cap bytes, with a NUL): 0, or
 * CE_RANGE (does not fit, or holds a NUL) / the view's sticky error, with
 * dst "" either way. For short fields (numbers, ids) parsed with util.h. */
int cur_text(const struct cur *field, char *dst, size_t dst_cap);
/* Record an error found by the caller's own validation (sticky). */
int cur_fail(struct cur *c, int err);

/* One big-endian field at offset off of buf[0..len), for a message whose
 * fields are read out of order (a header, a frame's type, a trailer): the
 * same bounds check as every cursor read. 0, or CE_TRUNCATED (off or the
 * field past len) with *v 0. There is no unchecked big-endian load. */
int cur_u16_at(const void *buf, size_t len, size_t off, uint16_t *v);
int cur_u32_at(const void *buf, size_t len, size_t off, uint32_t *v);
int cur_u64_at(const void *buf, size_t len, size_t off, uint64_t *v);

struct wbuf {
	uint8_t *buf; /* caller-owned storage */
	size_t cap;   /* its capacity */
	size_t len;   /* bytes written so far */
	int err;      /* CE_OVERFLOW once a write did not fit (sticky) */
};

void wbuf_init(struct wbuf *w, void *buf, size_t cap);
void wbuf_u8(struct wbuf *w, uint8_t v);
void wbuf_u16(struct wbuf *w, uint16_t v);
void wbuf_u24(struct wbuf *w, uint32_t v);
void wbuf_u32(struct wbuf *w, uint32_t v);
void wbuf_u64(struct wbuf *w, uint64_t v);
void wbuf_bytes(struct wbuf *w, const void *src, size_t n);
void wbuf_fill(struct wbuf *w, uint8_t byte, size_t n);
/* Reserve n bytes (zeroed) and return their offset, for back-patching. */
size_t wbuf_reserve(struct wbuf *w, size_t n);
void wbuf_patch_u8(struct wbuf *w, size_t at, uint8_t v);
void wbuf_patch_u16(struct wbuf *w, size_t at, uint16_t v);
/* 0, or CE_OVERFLOW if any write did not fit. */
int wbuf_status(const struct wbuf *w) WARN_UNUSED;

#endif
