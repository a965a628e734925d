/*
 * cmd_audit.c - `castellan audit`: the SMS/CAS audit chain for operators
 * and auditors: an Ed25519 audit key (sms/audit_key.h), signed checkpoints
 * (into the store and an append-only file outside it), verification, and
 * export as CSV or JSON with the chain proof (sms/audit_file.h). The work
 * is sms/audit_key.c and sms/audit_file.c; this file parses and prints.
 * docs/audit.md is the reference.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "sms/dburi.h"
#include "lib/util.h"
#include "sms/audit_file.h"
#include "sms/audit_key.h"
#include "sms/store.h"

struct audit_args {
	const char *db, *db_file, *key, *pub, *pfile, *out, *checkpoints;
	bool no_pass;
	int json;
	int64_t from, to;
};

static const struct opt_choice formats[] = { { "csv", 0 }, { "json", 1 }, { NULL, 0 } };

#define A struct audit_args
#define DB_OPTS                                                                                           \
	OPT_STR("--db", "URI", 0, A, db, "the store (as for castellan sms; default $CASTELLAN_DB, then castellan-sms.db)"), \
	OPT_STR("--db-file", "FILE", 0, A, db_file, "the store URI on FILE's first line (FILE mode 600)")
static const struct opt keygen_opts[] = {
	OPT_STR("--key", "FILE", OPT_REQUIRED, A, key, "the private key, sealed under the passphrase"),
	OPT_STR("--pub", "FILE", OPT_REQUIRED, A, pub, "the public key (for verify --pub)"),
	OPT_STR("--passphrase-file", "F", 0, A, pfile, "the passphrase (first line), else $CASTELLAN_PASSPHRASE"),
	OPT_FLAG("--no-passphrase", A, no_pass, "write the private key as plain hex (0600) instead"),
	OPT_END,
};
static const struct opt checkpoint_opts[] = {
	OPT_STR("--key", "FILE", OPT_REQUIRED, A, key, "the audit key (audit keygen)"),
	OPT_STR("--passphrase-file", "F", 0, A, pfile, "its passphrase (first line), else $CASTELLAN_PASSPHRASE"),
	OPT_FLAG("--no-passphrase", A, no_pass, "the key is plain hex (a plain key is read as such anyway)"),
	OPT_STR("--out", "FILE", 0, A, out, "append the checkpoint's line to FILE too"),
	DB_OPTS,
	OPT_END,
};
static const struct opt verify_opts[] = {
	OPT_STR("--pub", "FILE", 0, A, pub, "check the checkpoints' signatures with this public key"),
	OPT_STR("--checkpoints", "FILE", 0, A, checkpoints, "check the checkpoint file's lines against the log too"),
	DB_OPTS,
	OPT_END,
};
static const struct opt export_opts[] = {
	OPT_CHOICE("--format", "csv|json", A, json, formats, "the export's format (default csv)"),
	OPT_NUM("--from", "SEQ", 0, A, from, 0, INT64_MAX, "from this entry (default the first)"),
	OPT_NUM("--to", "SEQ", 0, A, to, 0, INT64_MAX, "to this entry (default the last)"),
	OPT_STR("--out", "FILE", 0, A, out, "write there (default stdout)"),
	DB_OPTS,
	OPT_END,
};
#undef A

static const struct opt_cmd keygen_cmd = { .name = "audit keygen", .opts = keygen_opts,
	.about = "a new Ed25519 audit key; the private key sealed under the passphrase,\n"
		 "plain hex 0600 only if --no-passphrase is given" };
static const struct opt_cmd checkpoint_cmd = { .name = "audit checkpoint", .opts = checkpoint_opts,
	.about = "sign the chain's head, store the checkpoint, append its line to --out\n"
		 "(run it periodically, e.g. every 10 minutes from cron or a timer)" };
static const struct opt_cmd verify_cmd = { .name = "audit verify", .opts = verify_opts,
	.about = "walk the whole chain and every checkpoint (signatures with --pub; the\n"
		 "file's checkpoints too): exit 0 intact, 1 altered, deleted or truncated" };
static const struct opt_cmd export_cmd = { .name = "audit export", .opts = export_opts,
	.about = "entries with their hashes and the checkpoints, for an auditor" };
static const struct opt_cmd *const audit_subs[] = { &keygen_cmd, &checkpoint_cmd, &verify_cmd, &export_cmd, NULL };

static const char audit_intro[] =
	"--db URI / --db-file FILE may also come before the command: castellan audit --db URI verify.";

static int keygen(const struct audit_args *a)
{
	char *pass = NULL, hex[17];
	int r;

	if (!a->no_pass && cli_passphrase("audit", a->pfile, &pass) != 0)
		return 1;
	r = sms_audit_keygen(a->key, a->pub, pass, hex);
	if (pass)
		secret_free(pass, strlen(pass));
	if (r != 0) {
		fprintf(stderr, "castellan audit: %s\n", err_str(r));
		return 1;
	}
	printf("audit key %s written: private %s, public %s\n", hex, a->key, a->pub);
	return 0;
}

static int checkpoint(struct sms_store *s, const struct audit_args *a)
{
	char line[300];
	bool key_bad = false;
	int r = sms_audit_checkpoint_run(s, a->key, a->pfile, "cli:audit", a->out, line, sizeof(line), &key_bad);

	if (r != 0 && key_bad)
		fprintf(stderr, "castellan audit: audit key %s: %s\n", a->key, err_str(r));
	if (r == 0)
		printf("checkpoint %s", line);
	return r;
}

static int verify(struct sms_store *s, const struct audit_args *a, bool *intact)
{
	bool pub_bad = false;
	int r = sms_audit_verify_files(s, a->pub, a->checkpoints, stdout, intact, &pub_bad);

	if (r != 0 && pub_bad)
		fprintf(stderr, "castellan audit: %s: %s\n", a->pub, err_str(r));
	return r;
}

int cmd_audit(int argc, char **argv)
{
	struct audit_args a = { 0 };
	struct sms_store *s = NULL;
	bool intact = false;
	int i, sub, r;

	i = cli_db_args(argc, argv, &a.db, &a.db_file); /* --db before the command */
	argc -= i - 1;
	argv += i - 1;
	if ((sub = opt_sub(audit_intro, audit_subs, NULL, argc, argv, &r)) < 0)
		return r;
	if ((r = opt_parse(audit_subs[sub], &a, argc, argv, 2, NULL, NULL)) != OPT_GO)
		return r;
	if (audit_subs[sub] == &keygen_cmd)
		return keygen(&a);
	if (dburi_store_open("castellan audit", a.db, a.db_file, &s) != 0)
		return 1;
	if (audit_subs[sub] == &checkpoint_cmd)
		r = checkpoint(s, &a);
	else if (audit_subs[sub] == &verify_cmd)
		r = verify(s, &a, &intact);
	else
		r = sms_audit_export_file(s, a.from, a.to, a.json, a.out);
	sms_store_close(s);
	if (r != 0) {
		fprintf(stderr, "castellan audit: %s\n", err_str(r));
		return 1;
	}
	return audit_subs[sub] == &verify_cmd && !intact ? 1 : 0;
}
