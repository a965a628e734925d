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

struct bb_args {
	const char *file, *key, *kms_pub, *chips, *out_dir, *ledger, *out, *pub;
};

#define A struct bb_args
static const struct opt burn_opts[] = {
	OPT_STR("--file", "F", OPT_REQUIRED, A, file, "the black-box file (castellan kms)"),
	OPT_STR("--key", "BLACKBOX_KEY", OPT_REQUIRED, A, key, "the box's X25519 private key"),
	OPT_STR("--kms-pub", "KMS.pub", OPT_REQUIRED, A, kms_pub, "the KMS's public key: the file's signature"),
	OPT_STR("--chips", "IDS|@CHIPS.csv|all", OPT_REQUIRED, A, chips,
		"the chips to burn: a comma list (decimal or 0x-hex), a CSV file, or all"),
	OPT_STR("--out-dir", "DIR", OPT_REQUIRED, A, out_dir, "where DIR/<chip id>.otp go"),
	OPT_STR("--ledger", "FILE", 0, A, ledger, "files burned before (default DIR/burned-files.ledger)"),
	OPT_END,
};
static const struct opt keygen_opts[] = {
	OPT_STR("--out", "BLACKBOX_KEY", OPT_REQUIRED, A, out, "the new private key (mode 0600)"),
	OPT_STR("--pub", "BLACKBOX_PUB", OPT_REQUIRED, A, pub, "its public half, for the KMS"),
	OPT_END,
};
#undef A

static const struct opt_cmd burn_cmd = {
	.name = "blackbox burn",
	.about = "verify the KMS signature of a black-box file, decrypt it with the box's\n"
		 "X25519 key and write DIR/<chip id>.otp (OTP image) for each chip asked. Refuses a chip the\n"
		 "file does not carry and a file burned before (the ledger).",
	.opts = burn_opts,
};
static const struct opt_cmd keygen_cmd = {
	.name = "blackbox keygen",
	.about = "the box's X25519 key pair.",
	.opts = keygen_opts,
};
static const struct opt_cmd *const bb_subs[] = { &burn_cmd, &keygen_cmd, NULL };

static int keygen(struct bb_args *a)
{
	uint8_t priv[32], pub[32];
	int r;

	if ((r = pk_x25519_generate(priv, pub)) == 0 && (r = pk_write_file(a->out, priv, 1)) == 0)
		r = pk_write_file(a->pub, pub, 0);
	secret_wipe(priv, sizeof(priv));
	if (r != 0)
		fprintf(stderr, "blackbox keygen: %s\n", err_str(r));
	return r ? 1 : 0;
}

int cmd_blackbox(int argc, char **argv)
{
	struct bb_args a = { 0 };
	uint8_t kms_pub[32], priv[32], *file = NULL;
	uint64_t *ids = NULL;
	size_t n = 0, len = 0, burned = 0;
	char ledger[4096];
	int sub, r;

	if ((sub = opt_sub(NULL, bb_subs, NULL, argc, argv, &r)) < 0)
		return r;
	if ((r = opt_parse(bb_subs[sub], &a, argc, argv, 2, NULL, NULL)) != OPT_GO)
		return r;
	if (bb_subs[sub] == &keygen_cmd)
		return keygen(&a);
	if (snprintf(ledger, sizeof(ledger), "%s%s", a.ledger ? a.ledger : a.out_dir,
		     a.ledger ? "" : "/burned-files.ledger") >= (int)sizeof(ledger))
		return 2;
	if (strcmp(a.chips, "all") != 0 && (r = kms_chips_arg(a.chips, &ids, &n)) != 0) {
		fprintf(stderr, "blackbox: bad --chips: %s\n", err_str(r));
		return 2;
	}
	if ((r = pk_read_file(a.kms_pub, kms_pub)) != 0 || (r = pk_read_file(a.key, priv)) != 0) {
		fprintf(stderr, "blackbox: key file: %s\n", err_str(r));
		goto out;
	}
	if ((r = file_read_all(a.file, 1024u << 20, &file, &len)) != 0) {
		fprintf(stderr, "blackbox: cannot read %s: %s\n", a.file, err_str(r));
		goto out;
	}
	r = blackbox_burn(file, len, kms_pub, priv, ids, n, a.out_dir, ledger, &burned);
	if (r == 0)
		printf("burned %zu OTP images into %s\n", burned, a.out_dir);
	else
		fprintf(stderr, "blackbox burn refused: %s\n", err_str(r));
out:
	secret_wipe(priv, sizeof(priv));
	free(file);
	free(ids);
	return r ? 1 : 0;
}
