/* cursor.c - bounded reader and fixed-capacity writer (see cursor.h). */
#include <string.h>
#include "bytes.h"
#include "cursor.h"

static uint16_t load16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t load32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void cur_init(struct cur *c, const void *buf, size_t len)
{
	c->buf = buf;
	c->len = buf ? len : 0;
	c->off = 0;
	c->err = 0;
}

size_t cur_left(const struct cur *c)
{
	return c->err ? 0 : c->len - c->off;
}

int cur_end(const struct cur *c)
{
	if (c->err)
		return c->err;
	return c->off == c->len ? 0 : CE_TRAILING;
}

int cur_fail(struct cur *c, int err)
{
	if (!c->err)
		c->err = err ? err : CE_FORMAT;
	return c->err;
}

/* The one bounds check. */
static const uint8_t *take(struct cur *c, size_t n)
{
	const uint8_t *p;

	if (c->err)
		return NULL;
	if (n > c->len - c->off) {
		c->err = CE_TRUNCATED;
		return NULL;
	}
	p = c->buf + c->off;
	c->off += n;
	return p;
}

int cur_u8(struct cur *c, uint8_t *v)
{
	const uint8_t *p = take(c, 1);

	*v = p ? p[0] : 0;
	return c->err;
}

int cur_u16(struct cur *c, uint16_t *v)
{
	const uint8_t *p = take(c, 2);

	*v = p ? load16(p) : 0;
	return c->err;
}

int cur_u24(struct cur *c, uint32_t *v)
{
	const uint8_t *p = take(c, 3);

	*v = p ? ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2] : 0;
	return c->err;
}

int cur_u32(struct cur *c, uint32_t *v)
{
	const uint8_t *p = take(c, 4);

	*v = p ? load32(p) : 0;
	return c->err;
}

int cur_u64(struct cur *c, uint64_t *v)
{
	const uint8_t *p = take(c, 8);

	*v = p ? ((uint64_t)load32(p) << 32) | load32(p + 4) : 0;
	return c->err;
}

int cur_bytes(struct cur *c, void *dst, size_t n)
{
	const uint8_t *p = take(c, n);

	if (p)
		memcpy(dst, p, n);
	else if (n)
		memset(dst, 0, n);
	return c->err;
}

int cur_bytes_max(struct cur *c, void *dst, size_t dst_cap, size_t n)
{
	if (n > dst_cap) {
		cur_fail(c, CE_RANGE);
		n = dst_cap;
	}
	return cur_bytes(c, dst, n);
}

int cur_skip(struct cur *c, size_t n)
{
	take(c, n);
	return c->err;
}

const uint8_t *cur_ptr(struct cur *c, size_t n)
{
	return take(c, n);
}

int cur_view(struct cur *c, size_t n, struct cur *child)
{
	const uint8_t *p = take(c, n);

	cur_init(child, p, p ? n : 0);
	child->err = c->err;
	return c->err;
}

int cur_until(struct cur *c, uint8_t delim, struct cur *field)
{
	const uint8_t *p = c->err || c->off == c->len ? NULL : memchr(c->buf + c->off, delim, c->len - c->off);

	if (!p) {
		cur_fail(c, CE_TRUNCATED);
		cur_init(field, NULL, 0);
		field->err = c->err;
		return c->err;
	}
	cur_view(c, (size_t)(p - (c->buf + c->off)), field);
	return cur_skip(c, 1);
}

int cur_line(struct cur *c, struct cur *line)
{
	if (!c->err && c->off < c->len && !memchr(c->buf + c->off, '\n', c->len - c->off))
		return cur_view(c, c->len - c->off, line);
	return cur_until(c, '\n', line);
}

void cur_trim(struct cur *c, const char *lead, const char *trail)
{
	if (c->err)
		return;
	while (c->off < c->len && c->buf[c->off] && strchr(lead, c->buf[c->off]))
		c->off++;
	while (c->len > c->off && c->buf[c->len - 1] && strchr(trail, c->buf[c->len - 1]))
		c->len--;
}

int cur_text(const struct cur *field, char *dst, size_t dst_cap)
{
	size_t n = field->len - field->off;

	if (dst_cap == 0)
		return CE_RANGE;
	dst[0] = '\0';
	if (field->err)
		return field->err;
	if (n >= dst_cap || (n && memchr(field->buf + field->off, 0, n)))
		return CE_RANGE;
	if (n)
		memcpy(dst, field->buf + field->off, n);
	dst[n] = '\0';
	return 0;
}

/* A view of buf[off..len) (empty and failed when off is past len). */
static void at(struct cur *c, const void *buf, size_t len, size_t off)
{
	cur_init(c, buf, len);
	cur_skip(c, off);
}

int cur_u16_at(const void *buf, size_t len, size_t off, uint16_t *v)
{
	struct cur c;

	at(&c, buf, len, off);
	return cur_u16(&c, v);
}

int cur_u32_at(const void *buf, size_t len, size_t off, uint32_t *v)
{
	struct cur c;

	at(&c, buf, len, off);
	return cur_u32(&c, v);
}

int cur_u64_at(const void *buf, size_t len, size_t off, uint64_t *v)
{
	struct cur c;

	at(&c, buf, len, off);
	return cur_u64(&c, v);
}

void wbuf_init(struct wbuf *w, void *buf, size_t cap)
{
	w->buf = buf;
	w->cap = buf ? cap : 0;
	w->len = 0;
	w->err = 0;
}

static uint8_t *put(struct wbuf *w, size_t n)
{
	uint8_t *p;

	if (w->err)
		return NULL;
	if (n > w->cap - w->len) {
		w->err = CE_OVERFLOW;
		return NULL;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

void wbuf_u8(struct wbuf *w, uint8_t v)
{
	uint8_t *p = put(w, 1);

	if (p)
		p[0] = v;
}

void wbuf_u16(struct wbuf *w, uint16_t v)
{
	uint8_t *p = put(w, 2);

	if (p)
		put_be16(p, v);
}

void wbuf_u24(struct wbuf *w, uint32_t v)
{
	uint8_t *p = put(w, 3);

	if (p) {
		p[0] = (uint8_t)(v >> 16);
		p[1] = (uint8_t)(v >> 8);
		p[2] = (uint8_t)v;
	}
}

void wbuf_u32(struct wbuf *w, uint32_t v)
{
	uint8_t *p = put(w, 4);

	if (p)
		put_be32(p, v);
}

void wbuf_u64(struct wbuf *w, uint64_t v)
{
	uint8_t *p = put(w, 8);

	if (p) {
		put_be32(p, (uint32_t)(v >> 32));
		put_be32(p + 4, (uint32_t)v);
	}
}

void wbuf_bytes(struct wbuf *w, const void *src, size_t n)
{
	uint8_t *p = put(w, n);

	if (p && n)
		memcpy(p, src, n);
}

void wbuf_fill(struct wbuf *w, uint8_t byte, size_t n)
{
	uint8_t *p = put(w, n);

	if (p && n)
		memset(p, byte, n);
}

size_t wbuf_reserve(struct wbuf *w, size_t n)
{
	size_t at = w->len;
	uint8_t *p = put(w, n);

	if (p && n)
		memset(p, 0, n);
	return at;
}

void wbuf_patch_u8(struct wbuf *w, size_t at, uint8_t v)
{
	if (!w->err && at < w->len)
		w->buf[at] = v;
}

void wbuf_patch_u16(struct wbuf *w, size_t at, uint16_t v)
{
	if (!w->err && at <= w->len && w->len - at >= 2)
		put_be16(w->buf + at, v);
}

int wbuf_status(const struct wbuf *w)
{
	return w->err;
}
