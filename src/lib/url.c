/* url.c - query strings: segments and %XX / '+' decoding (url.h). */
#include <string.h>
#include "lib/url.h"
#include "lib/util.h"

int url_decode(const char *src, size_t n, char *dst, size_t cap, bool php)
{
	size_t len;

	return url_decode_len(src, n, dst, cap, php, &len);
}

int url_decode_len(const char *src, size_t n, char *dst, size_t cap, bool php, size_t *len)
{
	size_t o = 0;

	*len = 0;
	if (!cap)
		return CE_LIMIT;
	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%' && n - i > 2 && hex_digit(src[i + 1]) >= 0 && hex_digit(src[i + 2]) >= 0) {
			c = (char)(hex_digit(src[i + 1]) << 4 | hex_digit(src[i + 2]));
			if (c == '\0' && !php) {
				dst[o] = '\0';
				*len = o;
				return CE_FORMAT;
			}
			i += 2;
		} else if (c == '%' && !php) {
			dst[o] = '\0';
			*len = o;
			return CE_FORMAT;
		}
		if (o + 1 >= cap) {
			dst[o] = '\0';
			*len = o;
			return CE_LIMIT;
		}
		dst[o++] = c;
	}
	dst[o] = '\0';
	*len = o;
	return 0;
}

bool url_query_next(const char **q, size_t *len, const char **name, size_t *nlen, const char **value,
	size_t *vlen)
{
	while (*len) {
		const char *seg = *q, *amp = memchr(seg, '&', *len), *eq;
		size_t slen = amp ? (size_t)(amp - seg) : *len;

		*q += slen + (amp ? 1 : 0);
		*len -= slen + (amp ? 1 : 0);
		if (slen == 0)
			continue;
		eq = memchr(seg, '=', slen);
		*name = seg;
		*nlen = eq ? (size_t)(eq - seg) : slen;
		*value = eq ? eq + 1 : seg + slen;
		*vlen = eq ? slen - *nlen - 1 : 0;
		return true;
	}
	return false;
}
