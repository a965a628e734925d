/*
 * cmd_blackbox.c - `castellan blackbox burn|keygen`: the chip maker's black
 * box (src/kms/blackbox.h, docs/kms.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "kms/blackbox.h"
#include "kms/kms.h"
#include "crypto/pk.h"
#include "lib/err.h"
#include "lib/util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan blackbox burn --file F --key BLACKBOX_KEY --kms-pub KMS.pub\n"
		"                               --chips IDS|@CHIPS.csv|all --out-dir DIR [--ledger FILE]\n"
		"       castellan blackbox keygen --out BLACKBOX_KEY --pub BLACKBOX_PUB\n\n"
		"burn   verify the KMS signature of a black-box file, decrypt it with the box's\n"
		"       X25519 key and write DIR/<chip id>.otp (OTP image) for each chip asked.\n"
		"       IDS is a comma list (decimal or 0x-hex). Refuses a chip the file does not\n"
		"       carry and a file burned before (ledger, default DIR/burned-files.ledger).\n");
}

static int parse_chips(const char *s, uint64_t **ids, size_t *n)
{
	uint8_t *buf = NULL;
	size_t len = 0, bad = 0;
	int r;

	if (s[0] == '@') {
		if ((r = file_read_all(s + 1, KMS_MAX_CHIPS_FILE_BYTES, &buf, &len)) != 0)
			return r;
	} else {
		len = strlen(s);
		if (!(buf = malloc(len + 1)))
			return CE_NOMEM;
		for (size_t i = 0; i < len; i++)
			buf[i] = s[i] == ',' ? '\n' : (uint8_t)s[i];
	}
	r = kms_chips_parse(buf, len, ids, n, &bad);
	free(buf);
	return r;
}

int cmd_blackbox(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	uint8_t kms_pub[32], priv[32], pub[32], *file = NULL;
	uint64_t *ids = NULL;
	size_t n = 0, len = 0, burned = 0;
	char ledger[4096];
	int r;

	if (cli_wants_help(argc, argv) || !sub) {
		usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	if (strcmp(sub, "keygen") == 0) {
		const char *out = cli_opt(argc, argv, 2, "--out"), *pubf = cli_opt(argc, argv, 2, "--pub");
		if (!out || !pubf) {
			usage(stderr);
			return 2;
		}
		if ((r = pk_x25519_generate(priv, pub)) == 0 && (r = pk_write_file(out, priv, 1)) == 0)
			r = pk_write_file(pubf, pub, 0);
		secret_wipe(priv, sizeof(priv));
		if (r != 0)
			fprintf(stderr, "blackbox keygen: %s\n", err_str(r));
		return r ? 1 : 0;
	}
	if (strcmp(sub, "burn") != 0) {
		usage(stderr);
		return 2;
	}
	const char *ff = cli_opt(argc, argv, 2, "--file"), *kf = cli_opt(argc, argv, 2, "--key"), *pf = cli_opt(argc, argv, 2, "--kms-pub"),
		   *chips = cli_opt(argc, argv, 2, "--chips"), *dir = cli_opt(argc, argv, 2, "--out-dir"),
		   *lf = cli_opt(argc, argv, 2, "--ledger");
	if (!ff || !kf || !pf || !chips || !dir) {
		usage(stderr);
		return 2;
	}
	if (lf)
		snprintf(ledger, sizeof(ledger), "%s", lf);
	else if (snprintf(ledger, sizeof(ledger), "%s/burned-files.ledger", dir) >= (int)sizeof(ledger))
		return 2;
	if (strcmp(chips, "all") != 0 && (r = parse_chips(chips, &ids, &n)) != 0) {
		fprintf(stderr, "blackbox: bad --chips: %s\n", err_str(r));
		return 2;
	}
	if ((r = pk_read_file(pf, kms_pub)) != 0 || (r = pk_read_file(kf, priv)) != 0) {
		fprintf(stderr, "blackbox: key file: %s\n", err_str(r));
		goto out;
	}
	if ((r = file_read_all(ff, 1024u << 20, &file, &len)) != 0) {
		fprintf(stderr, "blackbox: cannot read %s: %s\n", ff, err_str(r));
		goto out;
	}
	r = blackbox_burn(file, len, kms_pub, priv, ids, n, dir, ledger, &burned);
	if (r == 0)
		printf("burned %zu OTP images into %s\n", burned, dir);
	else
		fprintf(stderr, "blackbox burn refused: %s\n", err_str(r));
out:
	secret_wipe(priv, sizeof(priv));
	free(file);
	free(ids);
	return r ? 1 : 0;
}
