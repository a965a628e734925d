/* fuzz_osd.c - osd_list_from_json (the box's OSD items, stb/overlay.h) on
 * arbitrary bytes: an accepted item passes osd_list_add's checks again and
 * a refused document leaves the list as it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stb/overlay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct osd_list l, again;
	long bad;
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
	osd_list_cleanup(&l);
	osd_list_cleanup(&again);
	return 0;
}
