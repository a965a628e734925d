/* fuzz_csv.c - the CSV reader and row checks (csv_check: csv.h) on
 * arbitrary files, and every record re-quoted with csv_quote must read back
 * as the same fields; no database. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sms/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct csv_record rec, back;
	static char line[CSV_FIELDS_MAX * (2 * CSV_RECORD_MAX + 3)];
	struct csv_result res;
	struct csv_reader r;
	const char *why;

	(void)csv_check((const char *)data, size, &res);
	csv_reader_init(&r, (const char *)data, size);
	while (csv_read(&r, &rec, &why) == 1) {
		struct csv_reader r2;
		size_t len = 0;

		for (size_t i = 0; i < rec.n; i++) {
			if (csv_quote(rec.field[i], line, sizeof(line), &len) != 0)
				__builtin_trap(); /* the buffer holds any record */
			line[len++] = i + 1 < rec.n ? ',' : '\n';
		}
		/* A record of one empty field is a blank line: skipped on reading. */
		if (rec.n == 1 && !rec.field[0][0])
			continue;
		csv_reader_init(&r2, line, len);
		if (csv_read(&r2, &back, &why) != 1 || back.n != rec.n)
			__builtin_trap();
		for (size_t i = 0; i < rec.n; i++)
			if (strcmp(back.field[i], rec.field[i]) != 0)
				__builtin_trap();
	}
	return 0;
}
