/* fuzz_osd.c - osd_list_from_json (the box's OSD items, stb/overlay.h) on
 * arbitrary bytes: an accepted item passes osd_list_add's checks again and
 * a refused document leaves the list as it was; the lenient reader
 * (osd_list_from_json_skip) agrees with it on every accepted document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stb/overlay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct osd_list l, again;
	long bad;
	size_t n_strict;
	int r;

	osd_list_init(&l);
	osd_list_init(&again);
	r = osd_list_from_json(&l, (const char *)data, size, &bad);
	if (r != 0 && l.n != 0)
		__builtin_trap();
	for (size_t i = 0; i < l.n; i++)
		if (strlen(l.v[i].text) == 0 || strlen(l.v[i].text) > OSD_TEXT_MAX_BYTES ||
		    osd_list_add(&again, &l.v[i]) != 0)
			__builtin_trap();
	n_strict = l.n;
	osd_list_cleanup(&l);
	osd_list_cleanup(&again);
	/* the lenient reader (the box's own report) keeps what the strict one would */
	{
		size_t skipped = 0;

		osd_list_init(&l);
		int r2 = osd_list_from_json_skip(&l, (const char *)data, size, &skipped);

		/* a document the strict reader takes: the same items, none skipped */
		if (r == 0 && (r2 != 0 || skipped != 0 || l.n != n_strict))
			__builtin_trap();
		for (size_t i = 0; i < l.n; i++)
			if (strlen(l.v[i].text) == 0 || strlen(l.v[i].text) > OSD_TEXT_MAX_BYTES)
				__builtin_trap();
		osd_list_cleanup(&l);
	}
	return 0;
}
