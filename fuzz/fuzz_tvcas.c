/* fuzz_tvcas.c - the free CAS's card table reader (sms/tvcas.h) on
 * arbitrary bytes, as a dump, CSV, TSV and sniffed: it must return, and
 * every row it hands over must hold what the store accepts (a serial in
 * range, valid text, a period in order). No database. */
#include <stdint.h>
#include <string.h>
#include "sms/tvcas.h"

static int check(void *ctx, const struct tvcas_card *c)
{
	(void)ctx;
	if (c->serial == 0 || c->serial > INT64_MAX || !sms_text_valid(c->name) || !sms_name_fits(c->name) ||
	    !sms_text_valid(c->info) || strlen(c->info) > SMS_INFO_MAX ||
	    (c->has_start && c->has_finish && c->finish < c->start) || c->line == 0)
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum tvcas_format fmts[] = { TVCAS_AUTO, TVCAS_SQL, TVCAS_CSV, TVCAS_TSV };
	char why[200];
	size_t rows, line;

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		int r = tvcas_parse(data, size, fmts[i], check, NULL, &rows, &line, why, sizeof(why));

		if (r != 0 && (line == 0 && why[0] == '\0'))
			__builtin_trap(); /* an error always says why */
	}
	return 0;
}
