/*
 * utf8.c - strict UTF-8 decoding (see utf8.h).
 */
#include "lib/utf8.h"

int utf8_next(const unsigned char *p, uint32_t *cp)
{
	static const uint32_t min[4] = { 0, 0x80, 0x800, 0x10000 };
	int n;

	if (*p < 0x80) {
		*cp = *p;
		return 1;
	}
	if ((*p & 0xe0) == 0xc0) { *cp = *p & 0x1f; n = 1; }
	else if ((*p & 0xf0) == 0xe0) { *cp = *p & 0x0f; n = 2; }
	else if ((*p & 0xf8) == 0xf0) { *cp = *p & 0x07; n = 3; }
	else return 0;
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* a NUL ends the loop here too */
			return 0;
		*cp = *cp << 6 | (p[i] & 0x3f);
	}
	if (*cp < min[n] || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n + 1;
}
