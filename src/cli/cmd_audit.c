/*
 * cmd_audit.c - `castellan audit`: the SMS/CAS audit chain for operators
 * and auditors: an Ed25519 audit key, signed checkpoints (into the store
 * and an append-only file outside it), verification, and export as CSV or
 * JSON with the chain proof. docs/audit.md is the reference.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cas/keys.h"
#include "cli/cli.h"
#include "sms/dburi.h"
#include "crypto/pk.h"
#include "crypto/pwseal.h"
#include "lib/util.h"
#include "sms/audit_file.h"
#include "sms/store.h"

#define AUDIT_KEY_MAGIC "CSTLAUK1"
#define AUDIT_KEY_LOG2N 15

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan audit [--db URI | --db-file FILE] <command> ...\n\n"
		"  keygen --key FILE --pub FILE [--passphrase-file F]\n"
		"                          new Ed25519 audit key; the private key sealed under the passphrase\n"
		"                          (--passphrase-file or $CASTELLAN_PASSPHRASE), plain hex 0600 without one\n"
		"                          only if --no-passphrase is given\n"
		"  checkpoint --key FILE [--passphrase-file F] [--no-passphrase] [--out FILE]\n"
		"                          sign the chain's head, store the checkpoint, append its line to --out\n"
		"                          (run it periodically, e.g. every 10 minutes from cron or a timer)\n"
		"  verify [--pub FILE] [--checkpoints FILE]\n"
		"                          walk the whole chain and every checkpoint (signatures with --pub; the\n"
		"                          file's checkpoints too): exit 0 intact, 1 altered, deleted or truncated\n"
		"  export [--format csv|json] [--from SEQ] [--to SEQ] [--out FILE]\n"
		"                          entries with their hashes and the checkpoints, for an auditor\n\n"
		"--db URI / --db-file FILE: as for castellan sms (default $CASTELLAN_DB, then castellan-sms.db).\n");
}

static int keygen(int argc, char **argv)
{
	const char *key = cli_opt(argc, argv, 0, "--key"), *pubf = cli_opt(argc, argv, 0, "--pub");
	const char *pf = cli_opt(argc, argv, 0, "--passphrase-file");
	uint8_t priv[32], pub[32];
	uint8_t sealed[PWSEAL_BYTES(0, 32)];
	char *pass = NULL;
	int r;

	if (!key || !pubf) {
		usage(stderr);
		return CE_ARG;
	}
	if ((r = pk_ed25519_generate(priv, pub)) != 0)
		goto out;
	if (cli_flag(argc, argv, 0, "--no-passphrase")) {
		r = pk_write_file(key, priv, 1);
	} else {
		if ((r = passphrase_get(pf, &pass)) != 0) {
			fprintf(stderr, "castellan audit: no passphrase (--passphrase-file, $%s or --no-passphrase)\n",
				KEYSTORE_PASSPHRASE_ENV);
			goto out;
		}
		if ((r = pwseal_seal(AUDIT_KEY_MAGIC, AUDIT_KEY_LOG2N, 8, 1, pass, NULL, 0, priv, 32, sealed,
				     sizeof(sealed))) != 0)
			goto out;
		r = file_write_atomic(key, sealed, sizeof(sealed), 0600);
	}
	if (r == 0)
		r = pk_write_file(pubf, pub, 0);
	if (r == 0) {
		uint8_t kid[32];
		char hex[17];

		pk_hash(pub, kid);
		hex_encode(kid, 8, hex);
		printf("audit key %s written: private %s, public %s\n", hex, key, pubf);
	}
out:
	secret_wipe(priv, sizeof(priv));
	if (pass)
		secret_free(pass, strlen(pass));
	return r;
}

static int key_load(int argc, char **argv, uint8_t priv[32])
{
	return audit_key_load(cli_opt(argc, argv, 0, "--key"), cli_opt(argc, argv, 0, "--passphrase-file"), priv);
}

int audit_key_load(const char *key, const char *pf, uint8_t priv[32])
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char *pass = NULL;
	struct pwseal_view v;
	int r;

	if (!key)
		return CE_ARG;
	if ((r = file_read_all(key, 4096, &buf, &len)) != 0)
		return r;
	if (len < 8 || memcmp(buf, AUDIT_KEY_MAGIC, 8) != 0) {
		secret_free(buf, len);
		return pk_read_file(key, priv);
	}
	if ((r = pwseal_parse(buf, len, AUDIT_KEY_MAGIC, 0, &v)) != 0 || v.ct_len != 32 || v.log2n > 20 || v.r > 16 ||
	    v.p > 4) {
		r = r ? r : CE_FORMAT;
		goto out;
	}
	if ((r = passphrase_get(pf, &pass)) != 0) {
		fprintf(stderr, "castellan audit: no passphrase (--passphrase-file or $%s)\n", KEYSTORE_PASSPHRASE_ENV);
		goto out;
	}
	r = pwseal_open(buf, &v, pass, priv);
out:
	secret_free(buf, len);
	if (pass)
		secret_free(pass, strlen(pass));
	return r;
}

static int checkpoint(struct sms_store *s, int argc, char **argv)
{
	const char *outf = cli_opt(argc, argv, 0, "--out");
	struct sms_audit_checkpoint cp;
	uint8_t priv[32];
	char line[300];
	int r;

	if ((r = key_load(argc, argv, priv)) != 0) {
		fprintf(stderr, "castellan audit: audit key: %s\n", err_str(r));
		return r;
	}
	r = sms_audit_checkpoint(s, priv, "cli:audit", true, &cp);
	secret_wipe(priv, sizeof(priv));
	if (r != 0)
		return r;
	if ((r = sms_audit_checkpoint_line(&cp, line, sizeof(line))) != 0)
		return r;
	if (outf) {
		int fd = open(outf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		size_t n = strlen(line);

		if (fd < 0)
			return CE_IO;
		if (write(fd, line, n) != (ssize_t)n || fsync(fd) != 0) {
			close(fd);
			return CE_IO;
		}
		if (close(fd) != 0)
			return CE_IO;
	}
	printf("checkpoint %s", line);
	return 0;
}

static int verify(struct sms_store *s, int argc, char **argv, bool *intact)
{
	const char *pubf = cli_opt(argc, argv, 0, "--pub"), *cpf = cli_opt(argc, argv, 0, "--checkpoints");
	struct sms_audit_verify v;
	uint8_t pub[32];
	char head[65];
	size_t from_file = 0;
	int r;

	*intact = false;
	if (pubf && (r = pk_read_file(pubf, pub)) != 0) {
		fprintf(stderr, "castellan audit: %s: %s\n", pubf, err_str(r));
		return r;
	}
	if ((r = sms_audit_verify(s, pubf ? pub : NULL, &v)) != 0)
		return r;
	if (!v.bad_seq && cpf) {
		uint8_t *buf = NULL;
		size_t len = 0, line = 0;

		if ((r = file_read_all(cpf, SMS_AUDIT_CP_FILE_MAX, &buf, &len)) != 0) {
			fprintf(stderr, "castellan audit: %s: %s\n", cpf, err_str(r));
			return r;
		}
		r = sms_audit_check_file(s, buf, len, pubf ? pub : NULL, &v, &from_file, &line);
		free(buf);
		if (r == CE_FORMAT && line)
			fprintf(stderr, "castellan audit: %s line %zu: not a checkpoint line\n", cpf, line);
		if (r != 0)
			return r;
	}
	hex_encode(v.head, 32, head);
	if (v.bad_seq) {
		printf("audit log BROKEN at entry %" PRId64 ": %s\n", v.bad_seq, v.why);
		printf("  %" PRId64 " entries checked before it\n", v.entries);
		return 0;
	}
	*intact = true;
	printf("audit log intact: %" PRId64 " entries, head %s\n", v.entries, v.entries ? head : "-");
	printf("  checkpoints: %" PRId64 " matched (%zu from %s), newest at entry %" PRId64 ", signatures %s\n",
	       v.checkpoints, from_file, cpf ? cpf : "no file", v.checkpoint_seq,
	       pubf ? "verified" : "NOT checked (no --pub)");
	if (v.checkpoint_seq < v.last_seq)
		printf("  entries after %" PRId64 " are not covered by a signed checkpoint yet\n", v.checkpoint_seq);
	return 0;
}

static int export(struct sms_store *s, int argc, char **argv)
{
	const char *fmt = cli_opt(argc, argv, 0, "--format"), *outf = cli_opt(argc, argv, 0, "--out");
	const char *from = cli_opt(argc, argv, 0, "--from"), *to = cli_opt(argc, argv, 0, "--to");
	uint64_t a = 0, b = 0;
	FILE *f;
	int r;

	if ((from && parse_u64(from, INT64_MAX, &a) != 0) || (to && parse_u64(to, INT64_MAX, &b) != 0) ||
	    (fmt && strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0))
		return CE_ARG;
	if (!(f = outf ? fopen(outf, "w") : stdout))
		return CE_IO;
	r = sms_audit_export(s, (int64_t)a, (int64_t)b, fmt && strcmp(fmt, "json") == 0, f);
	if (outf && fclose(f) != 0 && r == 0)
		r = CE_IO;
	return r;
}

int cmd_audit(int argc, char **argv)
{
	const char *db = NULL, *db_file = NULL;
	struct sms_store *s = NULL;
	bool intact = false;
	int i = 1, r;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	i = cli_db_args(argc, argv, &db, &db_file);
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	argc -= i;
	argv += i;
	if (strcmp(argv[0], "keygen") == 0) {
		r = keygen(argc, argv);
		if (r != 0)
			fprintf(stderr, "castellan audit: %s\n", err_str(r));
		return r ? 1 : 0;
	}
	if (strcmp(argv[0], "checkpoint") != 0 && strcmp(argv[0], "verify") != 0 && strcmp(argv[0], "export") != 0) {
		usage(stderr);
		return 2;
	}
	if (dburi_store_open("castellan audit", db, db_file, &s) != 0)
		return 1;
	if (strcmp(argv[0], "checkpoint") == 0)
		r = checkpoint(s, argc, argv);
	else if (strcmp(argv[0], "verify") == 0)
		r = verify(s, argc, argv, &intact);
	else
		r = export(s, argc, argv);
	sms_store_close(s);
	if (r != 0) {
		fprintf(stderr, "castellan audit: %s\n", err_str(r));
		return 1;
	}
	if (strcmp(argv[0], "verify") == 0 && !intact)
		return 1;
	return 0;
}
