/*
 * cmd_sms_tvcas.c - `castellan sms import-tvcas FILE`: the free CAS's card
 * table (a MariaDB dump or its CSV/TSV export) into the SMS store through
 * sms/tvcas_import.h. docs/migration-from-tvcas.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include "cli/cli.h"
#include "lib/util.h"
#include "sms/store.h"
#include "sms/tvcas_import.h"

struct tvcas_args {
	int format;
	bool dry_run;
};

static const struct opt_choice formats[] = {
	{ "auto", TVCAS_AUTO }, { "sql", TVCAS_SQL }, { "csv", TVCAS_CSV }, { "tsv", TVCAS_TSV }, { NULL, 0 }
};

#define A struct tvcas_args
static const struct opt tvcas_opts[] = {
	OPT_CHOICE("--format", "auto|sql|csv|tsv", A, format, formats, "the file's format (default auto)"),
	OPT_FLAG("--dry-run", A, dry_run, "read and check the whole file, write nothing"),
	OPT_END,
};
#undef A

const struct opt_cmd cli_sms_tvcas_cmd = {
	.name = "sms import-tvcas",
	.synopsis = "FILE [--format auto|sql|csv|tsv] [--dry-run]",
	.about = "the free CAS's card table (tvcas_smartcards) from a MariaDB dump or its CSV/TSV export:\n"
		 "checked whole, then one transaction; docs/migration-from-tvcas.md",
	.opts = tvcas_opts,
	.args = "FILE",
	.min_args = 1,
	.max_args = 1,
};

static void warn(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "castellan sms import-tvcas: %s\n", msg);
}

int sms_import_tvcas(struct sms_store *s, int argc, char **argv)
{
	struct tvcas_args a = { TVCAS_AUTO, false };
	struct tvcas_import_result res;
	const char *file = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, n = 0;

	if ((r = opt_parse(&cli_sms_tvcas_cmd, &a, argc, argv, 1, &file, &n)) != OPT_GO)
		return r;
	if ((r = file_read_all(file, TVCAS_FILE_MAX, &buf, &len)) != 0) {
		fprintf(stderr, "castellan sms import-tvcas: %s: %s\n", file, err_str(r));
		return 1;
	}
	r = tvcas_import(s, buf, len, (enum tvcas_format)a.format, a.dry_run, warn, NULL, &res);
	secret_free(buf, len); /* the dump holds the old CAS's card keys: wiped */
	if (res.more_warnings)
		fprintf(stderr, "castellan sms import-tvcas: ... and %zu more rows without a period\n", res.more_warnings);
	if (r == CE_EXISTS) {
		fprintf(stderr, "castellan sms import-tvcas: %s: card %" PRIu64 " is on lines %zu and %zu; nothing was "
			"imported\n", file, res.dup_serial, res.dup_line[0], res.dup_line[1]);
		return 1;
	}
	if (r != 0) {
		fprintf(stderr, "castellan sms import-tvcas: %s line %zu: %s; nothing was imported\n", file, res.line,
			res.why[0] ? res.why : err_str(r));
		if (r == CE_BLOCKED)
			fprintf(stderr, "castellan sms import-tvcas: a blacklisted card or box cannot be imported\n");
		return 1;
	}
	if (a.dry_run)
		printf("%s: %zu cards read and checked (%zu disabled, %zu without a period); nothing written "
		       "(--dry-run)\n", file, res.rows, res.disabled, res.no_period);
	else
		printf("%s: %zu cards imported: %zu added, %zu changed (%zu disabled -> blocked, %zu without a period)\n",
		       file, res.rows, res.added, res.changed, res.disabled, res.no_period);
	return 0;
}
