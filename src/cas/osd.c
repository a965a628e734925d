/*
 * osd.c - fingerprint and message encodings (osd.h): the field rules, one
 * writer and one bounded parser per item, the covert code.
 *
 * Byte tables: osd.h, docs/ecm-format.md "Extension block",
 * docs/emm-format.md "OSD record".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "cas/osd.h"
#include "crypto/aead.h"
#include "lib/bytes.h"
#include "lib/cursor.h"
#include "lib/utf8.h"

static const uint8_t covert_label[12] = { 'c', 'a', 's', 't', 'e', 'l', 'l', 'a', 'n', ' ', 'f', 'p' };

int osd_fp_check(const struct osd_fingerprint *fp)
{
	if (!fp)
		return CE_ARG;
	if (fp->flags & ~OSD_FP_FLAGS_ALL)
		return CE_FORMAT;
	if (!(fp->flags & (OSD_FP_SERIAL | OSD_FP_BOX)))
		return CE_FORMAT; /* nothing to show */
	if ((fp->flags & OSD_FP_ENCODED) && !(fp->flags & OSD_FP_COVERT))
		return CE_FORMAT; /* the encoded form is a covert form */
	if (fp->fp_id == 0 || fp->x_pct > 100 || fp->y_pct > 100 || fp->font_px < OSD_MIN_FONT_PX ||
	    fp->font_px > OSD_MAX_FONT_PX || fp->duration_ms == 0 || fp->duration_ms > OSD_MAX_FP_DURATION_MS ||
	    fp->repeat == 0 || fp->repeat > OSD_MAX_REPEAT || fp->interval_s > OSD_MAX_INTERVAL_S)
		return CE_RANGE;
	/* covert "few frames" (not encoded): short by definition */
	if ((fp->flags & (OSD_FP_COVERT | OSD_FP_ENCODED)) == OSD_FP_COVERT && fp->duration_ms > OSD_COVERT_MAX_MS)
		return CE_RANGE;
	if ((fp->repeat == 1) != (fp->interval_s == 0))
		return CE_RANGE;
	return 0;
}

int osd_text_check(const char *text, size_t len, size_t *chars)
{
	unsigned char buf[OSD_MAX_TEXT_BYTES + 1];
	size_t off = 0, n = 0;

	if (chars)
		*chars = 0;
	if (!text || len == 0 || len > OSD_MAX_TEXT_BYTES)
		return len > OSD_MAX_TEXT_BYTES ? CE_RANGE : CE_FORMAT;
	if (memchr(text, 0, len))
		return CE_FORMAT;
	memcpy(buf, text, len);
	buf[len] = 0;
	while (off < len) {
		uint32_t cp = 0;
		int k = utf8_next(buf + off, &cp);

		if (k <= 0)
			return CE_FORMAT;
		/* no C0, DEL or C1 controls: a box draws the text as it is */
		if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
			return CE_FORMAT;
		off += (size_t)k;
		n++;
	}
	if (chars)
		*chars = n;
	return 0;
}

int osd_msg_check(const struct osd_message *m)
{
	if (!m)
		return CE_ARG;
	if (m->flags & ~OSD_MSG_FLAGS_ALL)
		return CE_FORMAT;
	if (m->scope > OSD_SCOPE_INDIVIDUAL)
		return CE_FORMAT;
	if ((m->scope == OSD_SCOPE_GROUP) != (m->group_id != 0))
		return CE_RANGE;
	if (m->msg_id == 0 || m->expiry_s == 0 || m->duration_s == 0 || m->duration_s > OSD_MAX_MSG_DURATION_S ||
	    m->font_px < OSD_MIN_FONT_PX || m->font_px > OSD_MAX_FONT_PX)
		return CE_RANGE;
	if (m->text_len == 0 || m->text_len > OSD_MAX_TEXT_BYTES)
		return CE_RANGE;
	return osd_text_check(m->text, m->text_len, NULL);
}

int osd_msg_set_text(struct osd_message *m, const char *text)
{
	size_t n;
	int r;

	if (!m || !text)
		return CE_ARG;
	n = strnlen(text, OSD_MAX_TEXT_BYTES + 1);
	if (n == 0 || n > OSD_MAX_TEXT_BYTES)
		return CE_RANGE;
	if ((r = osd_text_check(text, n, NULL)) != 0)
		return r;
	memcpy(m->text, text, n);
	m->text[n] = 0;
	m->text_len = (uint16_t)n;
	return 0;
}

int osd_fp_encode(const struct osd_fingerprint *fp, uint8_t *out, size_t cap, size_t *out_len)
{
	struct wbuf w;
	int r;

	if (out_len)
		*out_len = 0;
	if (!fp || !out || !out_len)
		return CE_ARG;
	if ((r = osd_fp_check(fp)) != 0)
		return r;
	wbuf_init(&w, out, cap);
	wbuf_u8(&w, OSD_KIND_FINGERPRINT);
	wbuf_u8(&w, fp->flags);
	wbuf_u32(&w, fp->fp_id);
	wbuf_u8(&w, fp->x_pct);
	wbuf_u8(&w, fp->y_pct);
	wbuf_bytes(&w, fp->fg, 3);
	wbuf_bytes(&w, fp->bg, 4);
	wbuf_u8(&w, fp->font_px);
	wbuf_u32(&w, fp->duration_ms);
	wbuf_u16(&w, fp->repeat);
	wbuf_u32(&w, fp->interval_s);
	wbuf_u16(&w, fp->service);
	if ((r = wbuf_status(&w)) != 0)
		return r;
	if (w.len != OSD_FP_BYTES)
		return CE_INTERNAL;
	*out_len = w.len;
	return 0;
}

int osd_msg_encode(const struct osd_message *m, uint8_t *out, size_t cap, size_t *out_len)
{
	struct wbuf w;
	int r;

	if (out_len)
		*out_len = 0;
	if (!m || !out || !out_len)
		return CE_ARG;
	if ((r = osd_msg_check(m)) != 0)
		return r;
	wbuf_init(&w, out, cap);
	wbuf_u8(&w, OSD_KIND_MESSAGE);
	wbuf_u8(&w, m->flags);
	wbuf_u8(&w, m->scope);
	wbuf_u32(&w, m->group_id);
	wbuf_u32(&w, m->msg_id);
	wbuf_u64(&w, m->expiry_s);
	wbuf_u16(&w, m->duration_s);
	wbuf_bytes(&w, m->fg, 3);
	wbuf_bytes(&w, m->bg, 4);
	wbuf_u8(&w, m->font_px);
	wbuf_u16(&w, m->text_len);
	wbuf_bytes(&w, m->text, m->text_len);
	if ((r = wbuf_status(&w)) != 0)
		return r;
	if (w.len != OSD_MSG_HEADER_BYTES + (size_t)m->text_len)
		return CE_INTERNAL;
	*out_len = w.len;
	return 0;
}

int osd_parse(const uint8_t *buf, size_t len, struct osd_item *out)
{
	struct cur c;
	uint8_t kind = 0;
	int r;

	if (!out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	if (!buf)
		return CE_ARG;
	if (len > OSD_MAX_BYTES)
		return CE_RANGE;
	cur_init(&c, buf, len);
	cur_u8(&c, &kind);
	if (kind == OSD_KIND_FINGERPRINT) {
		struct osd_fingerprint *fp = &out->u.fp;

		cur_u8(&c, &fp->flags);
		cur_u32(&c, &fp->fp_id);
		cur_u8(&c, &fp->x_pct);
		cur_u8(&c, &fp->y_pct);
		cur_bytes(&c, fp->fg, 3);
		cur_bytes(&c, fp->bg, 4);
		cur_u8(&c, &fp->font_px);
		cur_u32(&c, &fp->duration_ms);
		cur_u16(&c, &fp->repeat);
		cur_u32(&c, &fp->interval_s);
		cur_u16(&c, &fp->service);
		if ((r = cur_end(&c)) != 0 || (r = osd_fp_check(fp)) != 0)
			goto fail;
	} else if (kind == OSD_KIND_MESSAGE) {
		struct osd_message *m = &out->u.msg;

		cur_u8(&c, &m->flags);
		cur_u8(&c, &m->scope);
		cur_u32(&c, &m->group_id);
		cur_u32(&c, &m->msg_id);
		cur_u64(&c, &m->expiry_s);
		cur_u16(&c, &m->duration_s);
		cur_bytes(&c, m->fg, 3);
		cur_bytes(&c, m->bg, 4);
		cur_u8(&c, &m->font_px);
		cur_u16(&c, &m->text_len);
		if (c.err) {
			r = c.err;
			goto fail;
		}
		if (m->text_len == 0 || m->text_len > OSD_MAX_TEXT_BYTES) {
			r = m->text_len ? CE_RANGE : CE_FORMAT;
			goto fail;
		}
		cur_bytes_max(&c, m->text, OSD_MAX_TEXT_BYTES, m->text_len);
		m->text[m->text_len] = 0;
		if ((r = cur_end(&c)) != 0 || (r = osd_msg_check(m)) != 0)
			goto fail;
	} else {
		r = c.err ? c.err : CE_FORMAT;
		goto fail;
	}
	out->kind = kind;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

int osd_covert_code(const uint8_t k_card[16], uint32_t fp_id, char out[OSD_COVERT_CODE_CHARS + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t in[16], ct[16];
	int r;

	out[0] = 0;
	if (!k_card)
		return CE_ARG;
	memcpy(in, covert_label, sizeof(covert_label));
	put_be32(in + 12, fp_id);
	if ((r = crypto_aes_block(1, k_card, 16, in, ct)) == 0) {
		for (size_t i = 0; i < OSD_COVERT_CODE_CHARS / 2; i++) {
			out[2 * i] = hex[ct[i] >> 4];
			out[2 * i + 1] = hex[ct[i] & 15];
		}
		out[OSD_COVERT_CODE_CHARS] = 0;
	}
	OPENSSL_cleanse(ct, sizeof(ct));
	return r;
}

int osd_fp_text(const struct osd_fingerprint *fp, uint64_t serial, uint64_t stb_id, const uint8_t *k_card,
	char *out, size_t cap)
{
	int n;

	if (!fp || !out || cap == 0)
		return CE_ARG;
	out[0] = 0;
	if ((fp->flags & OSD_FP_ENCODED) && k_card) {
		char code[OSD_COVERT_CODE_CHARS + 1];
		int r = osd_covert_code(k_card, fp->fp_id, code);

		if (r != 0)
			return r;
		n = snprintf(out, cap, "%s", code);
	} else if ((fp->flags & OSD_FP_SERIAL) && (fp->flags & OSD_FP_BOX)) {
		n = snprintf(out, cap, "%" PRIu64 " %" PRIu64, serial, stb_id);
	} else if (fp->flags & OSD_FP_SERIAL) {
		n = snprintf(out, cap, "%" PRIu64, serial);
	} else {
		n = snprintf(out, cap, "%" PRIu64, stb_id);
	}
	if (n < 0 || (size_t)n >= cap) {
		out[0] = 0;
		return CE_OVERFLOW;
	}
	return 0;
}
