/* fuzz_getapi.c - the GET API's query parser, set[] validation and JSON
 * writer (getapi.h) on arbitrary query strings; no database. */
#include <stdint.h>
#include <string.h>
#include "sms/getapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct getapi_req req;
	struct sms_card_change ch;
	struct sms_card c = { .serial = 2100000000 };
	char body[GETAPI_BODY_MAX];
	size_t len;

	if (getapi_parse((const char *)data, size, &req) != 0)
		return 0;
	if (getapi_validate(&req, &ch) == GETAPI_OK) {
		memcpy(c.name, ch.name, sizeof(c.name));
		memcpy(c.info, ch.info, sizeof(c.info));
		c.access_criteria = ch.access_criteria;
		if (getapi_card_json(&c, body, sizeof(body), &len) != 0)
			__builtin_trap(); /* the worst case must always fit */
	}
	return 0;
}
