/*
 * cmd_sms_migrate.c - `castellan sms migrate`: one SMS store copied whole
 * into another, e.g. SQLite to PostgreSQL (sms/store.h sms_store_copy),
 * then every table of the target compared with what was read. docs/sms.md
 * ("Moving a store") and docs/operations.md are the reference.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "sms/dburi.h"
#include "lib/util.h"
#include "sms/migrate.h"
#include "sms/store.h"

struct migrate_args {
	const char *from, *from_file, *to, *to_file;
	bool overwrite;
};

#define A struct migrate_args
static const struct opt migrate_opts[] = {
	OPT_STR("--from", "URI", 0, A, from, "the source: a SQLite path, sqlite:PATH, postgresql://... or postgres:CONNINFO"),
	OPT_STR("--from-file", "F", 0, A, from_file, "the source's URI on F's first line (F mode 600: a password in argv "
		"shows in ps)"),
	OPT_STR("--to", "URI", 0, A, to, "the target, as --from"),
	OPT_STR("--to-file", "F", 0, A, to_file, "the target's URI on F's first line"),
	OPT_FLAG("--overwrite", A, overwrite, "the target is not empty: delete its rows first (without it a\n"
		"target holding anything but a new store's packages is refused)"),
	OPT_END,
};
#undef A

const struct opt_cmd cli_sms_migrate_cmd = {
	.name = "sms migrate",
	.synopsis = "(--from URI | --from-file F) (--to URI | --to-file F) [--overwrite]",
	.about = "Copy every table of one SMS store into another (SQLite <-> PostgreSQL, or a file to a\n"
		 "file): cards, subscribers, packages with their names (extended ones too), channels,\n"
		 "subscriptions, generators, API keys (their hashes: the keys keep working), users, the\n"
		 "web panel's users, the audit log and its checkpoints (the chain still verifies), the\n"
		 "blacklist, EMM sequence numbers, the change feed and node status. The source is read\n"
		 "in one snapshot, the target written in one transaction, then every table of the\n"
		 "target is compared with what was read (rows and a digest of their values).",
	.opts = migrate_opts,
	.footer = "Stop the head-end (every node) first: changes made during the copy are not carried.\n"
		  "Both stores are brought to this build's schema when opened. Exit 0: copied and equal.\n",
};

/* Resolve and open one side; prints why on failure. */
static int open_side(const char *what, const char *uri, const char *file, struct sms_store **out)
{
	char prog[64];
	struct dburi u = { 0 };
	int r;

	*out = NULL;
	snprintf(prog, sizeof(prog), "castellan sms migrate %s", what);
	if (!uri && !file) {
		fprintf(stderr, "castellan sms migrate: --%s URI or --%s-file F is required\n", what, what);
		return CE_ARG;
	}
	if ((r = dburi_resolve(prog, uri, file, NULL, &u)) != 0)
		return r;
	if ((r = sms_store_open(u.uri, out)) != 0) {
		char shown[1024];

		sms_store_uri_redact(u.uri, shown, sizeof(shown)); /* never the password */
		fprintf(stderr, "castellan sms migrate: cannot open the %s store %s: %s\n",
			strcmp(what, "from") == 0 ? "source" : "target", shown, err_str(r));
		secret_wipe(shown, sizeof(shown));
	}
	dburi_cleanup(&u);
	return r;
}

int cmd_sms_migrate(int argc, char **argv)
{
	struct migrate_args m = { 0 };
	struct sms_store *a = NULL, *b = NULL;
	bool equal = false, read_back = false;
	char why[512] = "";
	int r, rc = 1;

	if ((r = opt_parse(&cli_sms_migrate_cmd, &m, argc, argv, 1, NULL, NULL)) != OPT_GO)
		return r;
	if ((m.from && m.from_file) || (m.to && m.to_file)) {
		fprintf(stderr, "castellan sms migrate: give --from or --from-file, --to or --to-file, not both\n");
		return 2;
	}
	if (open_side("from", m.from, m.from_file, &a) != 0 || open_side("to", m.to, m.to_file, &b) != 0)
		goto out;
	r = sms_migrate(a, b, m.overwrite ? SMS_COPY_OVERWRITE : 0, stdout, &equal, &read_back, why, sizeof(why));
	if (r == CE_EXISTS)
		fprintf(stderr, "castellan sms migrate: %s; nothing copied. To replace what the target holds, add "
			"--overwrite\n", why);
	else if (r != 0 && read_back)
		fprintf(stderr, "castellan sms migrate: copied, but the target cannot be read back: %s\n", err_str(r));
	else if (r != 0)
		fprintf(stderr, "castellan sms migrate: %s; nothing copied (the target is as it was)\n",
			why[0] ? why : err_str(r));
	rc = r == 0 && equal ? 0 : 1;
out:
	sms_store_close(a);
	sms_store_close(b);
	return rc;
}
