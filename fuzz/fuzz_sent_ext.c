/* fuzz_sent_ext.c - emm_seq.sent_ext as the CAS-side report reads it
 * (sms_sent_ext_parse: sms/report_cas.h) on arbitrary text: on success at
 * most SMS_SENT_EXT_MAX ids, each 0..65535, the input only digits and
 * commas, and the ids written back as "ID,ID,..." parse to the same ids. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "sms/report_cas.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char in[SMS_SENT_EXT_MAX * 8 + 1], back[SMS_SENT_EXT_MAX * 8 + 1];
	uint32_t ids[SMS_SENT_EXT_MAX];
	size_t n = 0, o = 0;

	if (size >= sizeof(in) || memchr(data, '\0', size))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (sms_sent_ext_parse(in, ids, &n) != 0)
		return 0;
	if (n > SMS_SENT_EXT_MAX)
		__builtin_trap();
	back[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (ids[i] > 65535)
			__builtin_trap();
		o += (size_t)snprintf(back + o, sizeof(back) - o, "%s%" PRIu32, i ? "," : "", ids[i]);
	}
	if (strspn(in, "0123456789,") != size) /* no sign, space or hex got through */
		__builtin_trap();
	{
		uint32_t again[SMS_SENT_EXT_MAX];
		size_t m = 0;

		if (sms_sent_ext_parse(back, again, &m) != 0 || m != n || memcmp(again, ids, n * sizeof(ids[0])) != 0)
			__builtin_trap();
	}
	return 0;
}
