/* fuzz_http_head.c - the HTTP gate's request-header parser
 * (sms_http_head_parse, sms/http.h) on arbitrary bytes: whatever it
 * accepts, its pointers stay inside the input. */
#include <stdint.h>
#include <string.h>
#include "sms/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *h = (const char *)data;
	struct sms_http_head hd;

	if (sms_http_head_parse(h, size, &hd) != 0)
		return 0;
	if (hd.path < h || hd.path_len > size || (size_t)(hd.path - h) > size - hd.path_len)
		__builtin_trap();
	if (hd.api_key && ((size_t)(hd.api_key - h) > size || hd.api_key_len > size - (size_t)(hd.api_key - h)))
		__builtin_trap();
	if (hd.cookie && ((size_t)(hd.cookie - h) > size || hd.cookie_len > size - (size_t)(hd.cookie - h)))
		__builtin_trap();
	if (hd.content_length && !hd.body_method)
		__builtin_trap();
	return 0;
}
