/*
 * fuzz_ui_script.c - libFuzzer target: the input as a `stb --ui-states`
 * script (src/stb/ui.h); a script that parses has increasing times within
 * the limits and known states.
 */
#include <stdlib.h>
#include <string.h>
#include "stb/ui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ui_script sc;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (ui_script_parse(s, &sc) == 0) {
		for (size_t i = 0; i < sc.n; i++)
			if ((unsigned)sc.state[i] >= UI_NSTATES || sc.start_ms[i] > (uint64_t)UI_SCRIPT_MAX_S * 1000u ||
			    (i && sc.start_ms[i] <= sc.start_ms[i - 1]))
				abort();
		if (sc.n == 0 || sc.n > UI_SCRIPT_MAX)
			abort();
	}
	free(s);
	return 0;
}
