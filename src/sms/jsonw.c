/*
 * jsonw.c - bounded JSON writer (see jsonw.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "sms/jsonw.h"
#include "lib/err.h"
#include "lib/utf8.h"

void jw_init(struct jw *j, char *buf, size_t cap, enum jw_style style)
{
	j->buf = buf;
	j->cap = cap;
	j->len = 0;
	j->overflow = false;
	j->style = style;
}

void jw_raw(struct jw *j, const char *s, size_t n)
{
	if (j->overflow || n > j->cap - j->len) {
		j->overflow = true;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

void jw_lit(struct jw *j, const char *s) { jw_raw(j, s, strlen(s)); }

static void ju16(struct jw *j, uint32_t u)
{
	char e[8];

	/* PHP writes lower-case hex digits, jansson upper-case. */
	snprintf(e, sizeof(e), j->style == JW_PHP ? "\\u%04" PRIx32 : "\\u%04" PRIX32, u);
	jw_raw(j, e, 6);
}


/* Invalid UTF-8 (never stored through the APIs, possible from elsewhere)
 * becomes U+FFFD in both styles. */
void jw_str(struct jw *j, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	jw_raw(j, "\"", 1);
	while (*p) {
		const unsigned char *run = p;
		uint32_t cp = 0;
		int n;

		/* Plain ASCII needs no escape in either style but '/' in PHP's. */
		while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\' && !(*p == '/' && j->style == JW_PHP))
			p++;
		jw_raw(j, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p < 0x80) {
			switch (*p) {
			case '"': jw_lit(j, "\\\""); break;
			case '\\': jw_lit(j, "\\\\"); break;
			case '/': jw_lit(j, "\\/"); break;
			case '\b': jw_lit(j, "\\b"); break;
			case '\f': jw_lit(j, "\\f"); break;
			case '\n': jw_lit(j, "\\n"); break;
			case '\r': jw_lit(j, "\\r"); break;
			case '\t': jw_lit(j, "\\t"); break;
			default: ju16(j, *p);
			}
			p++;
			continue;
		}
		if (!(n = utf8_next(p, &cp))) {
			if (j->style == JW_PHP)
				ju16(j, 0xfffd);
			else
				jw_raw(j, "\xef\xbf\xbd", 3);
			p++;
			continue;
		}
		if (j->style == JW_JANSSON) {
			jw_raw(j, (const char *)p, (size_t)n);
		} else if (cp >= 0x10000) {
			ju16(j, 0xd800 + ((cp - 0x10000) >> 10));
			ju16(j, 0xdc00 + ((cp - 0x10000) & 0x3ff));
		} else {
			ju16(j, cp);
		}
		p += n;
	}
	jw_raw(j, "\"", 1);
}

void jw_u64(struct jw *j, uint64_t v)
{
	char d[20];
	size_t n = 0;

	do {
		d[sizeof(d) - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	jw_raw(j, d + sizeof(d) - n, n);
}

void jw_i64(struct jw *j, int64_t v)
{
	if (v < 0) {
		jw_raw(j, "-", 1);
		jw_u64(j, (uint64_t)0 - (uint64_t)v);
	} else {
		jw_u64(j, (uint64_t)v);
	}
}

int jw_end(const struct jw *j, size_t *len)
{
	*len = j->overflow ? 0 : j->len;
	return j->overflow ? CE_OVERFLOW : 0;
}
