/* fuzz_entitlement.c - entitlement_decode on arbitrary text; a decoded
 * record must re-encode and decode to the same thing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cas/entitlement.h"
#include "lib/util.h"

static struct entitlement e, back;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = NULL;

	if (entitlement_decode((const char *)data, size, &e) != 0)
		return 0;
	if (entitlement_encode(&e, &text) != 0 || entitlement_decode(text, strlen(text), &back) != 0 ||
	    back.nkeys != e.nkeys || memcmp(back.keys, e.keys, e.nkeys * sizeof(e.keys[0])) != 0)
		__builtin_trap();
	secret_free(text, strlen(text));
	return 0;
}
