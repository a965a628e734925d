/* fuzz_web.c - the web panel's parsers of request data (session.h,
 * web.h): the Cookie header, the session-id / CSRF token check and the
 * static file path check, on arbitrary bytes. The first byte picks the
 * parser; the rest is the input. */
#include <stdint.h>
#include <string.h>
#include "web/session.h"
#include "web/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[WEB_COOKIE_HEADER_MAX + 2], out[WEB_TOKEN_HEX + 2], path[512];
	const char *ct;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1 < sizeof(in) - 1 ? size - 1 : sizeof(in) - 1;
	memcpy(in, data + 1, n);
	in[n] = '\0';
	switch (data[0] % 3) {
	case 0:
		if (web_cookie_find(in, n, WEB_COOKIE_NAME, out, sizeof(out)) == 0 &&
		    strlen(out) >= sizeof(out))
			__builtin_trap();
		break;
	case 1:
		if (web_token_valid(in) && strlen(in) != WEB_TOKEN_HEX)
			__builtin_trap();
		break;
	default:
		if (web_static_path("/srv/web", in, path, sizeof(path), &ct) == 0 &&
		    (strstr(path, "/..") || strstr(path, "//") || !ct))
			__builtin_trap(); /* never out of the root */
		break;
	}
	return 0;
}
