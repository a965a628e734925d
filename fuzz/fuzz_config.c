/* fuzz_config.c - the --config INI parser (cli_config_parse: lib/config.h)
 * on arbitrary files, with the head-end's kind of options: never a crash;
 * every error's line and every entry's line within the file's lines, in
 * order; every entry a known option, a switch without a value, a value
 * without NUL or surrounding quotes; the same input parses the same way
 * twice (no state left behind). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "lib/config.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: castellan headend --data-dir DIR [options]\n"
		   "  --data-dir DIR         state\n"
		   "  --emm-kbps N           bandwidth\n"
		   "  --log-level LEVEL      error|warn|info|debug\n"
		   "  --udp                  switch\n"
		   "  --no-group-emms        switch\n"
		   "  --http ADDR:PORT       listener\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cli_opt opts[CLI_CONFIG_MAX_OPTS];
	static size_t nopts;
	struct cli_config a, b;
	size_t lines = 1;

	if (!nopts && cli_opts_from_usage(usage, opts, CLI_CONFIG_MAX_OPTS, &nopts) != 0)
		__builtin_trap();
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (cli_config_parse("headend", opts, nopts, (const char *)data, size, &a) != 0) {
		cli_config_free(&a);
		return 0;
	}
	for (size_t i = 0; i < a.nerr; i++)
		if (a.err[i].line == 0 || a.err[i].line > lines || (i && a.err[i].line < a.err[i - 1].line))
			__builtin_trap();
	for (size_t i = 0; i < a.n; i++) {
		const struct cli_opt *o = NULL;

		for (size_t k = 0; k < nopts; k++)
			if (strcmp(opts[k].name, a.e[i].key) == 0)
				o = &opts[k];
		if (!o || a.e[i].line == 0 || a.e[i].line > lines || (i && a.e[i].line < a.e[i - 1].line))
			__builtin_trap();
		if (o->is_switch != (a.e[i].value == NULL))
			__builtin_trap();
		if (a.e[i].value && (a.e[i].value[0] == '\0' || strlen(a.e[i].value) > size))
			__builtin_trap();
	}
	if (cli_config_parse("headend", opts, nopts, (const char *)data, size, &b) != 0 || b.n != a.n ||
	    b.nerr != a.nerr)
		__builtin_trap();
	for (size_t i = 0; i < a.n; i++)
		if (strcmp(a.e[i].key, b.e[i].key) != 0 ||
		    (a.e[i].value && strcmp(a.e[i].value, b.e[i].value) != 0))
			__builtin_trap();
	cli_config_free(&a);
	cli_config_free(&b);
	return 0;
}
