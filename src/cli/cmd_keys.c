/*
 * cmd_keys.c - `castellan keys init|show`: create and inspect the head-end
 * keystore (src/cas/keys.h, docs/key-files.md). Never prints key material:
 * `show` gives the root's public fingerprint only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "cas/keys.h"
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/util.h"

static const char keys_footer[] =
	"The passphrase is the first line of --passphrase-file, or $" KEYSTORE_PASSPHRASE_ENV ".\n"
	"There is no default passphrase; an empty one is refused; init needs at least 12\n"
	"characters, 6 of them different. A passphrase file readable by group or other is\n"
	"refused (chmod 600); the variable is unset once read.\n";

struct keys_args {
	const char *out, *keystore, *pfile;
	uint16_t casid;
	uint32_t epoch_s;
};

#define A struct keys_args
static const struct opt init_opts[] = {
	OPT_STR("--out", "FILE", OPT_REQUIRED, A, out, "the new keystore (refused if FILE exists)"),
	OPT_NUM("--ca-system-id", "ID", OPT_REQUIRED, A, casid, 0, 0xFFFF, "16-bit CA_system_id, e.g. 0x4ADC"),
	OPT_NUM("--epoch-seconds", "N", 0, A, epoch_s, KEYSTORE_MIN_EPOCH_SECONDS, KEYSTORE_MAX_EPOCH_SECONDS,
		"package key rotation period (default 604800 = 7 days)"),
	OPT_STR("--passphrase-file", "F", 0, A, pfile, "the passphrase (first line), else $" KEYSTORE_PASSPHRASE_ENV),
	OPT_END,
};
static const struct opt show_opts[] = {
	OPT_STR("--keystore", "FILE", OPT_REQUIRED, A, keystore, "the keystore"),
	OPT_STR("--passphrase-file", "F", 0, A, pfile, "the passphrase (first line), else $" KEYSTORE_PASSPHRASE_ENV),
	OPT_END,
};
#undef A

static const struct opt_cmd init_cmd = {
	.name = "keys init",
	.about = "create a new head-end keystore with a random package root key, encrypted\n"
		 "under a passphrase (scrypt + AES-256-GCM). Refuses to overwrite FILE.",
	.opts = init_opts,
};
static const struct opt_cmd show_cmd = {
	.name = "keys show",
	.about = "print CA_system_id, epoch length, the current epoch and the root's\n"
		 "fingerprint (never the key).",
	.opts = show_opts,
};
static const struct opt_cmd *const keys_subs[] = { &init_cmd, &show_cmd, NULL };

static int keys_init(const struct keys_args *a)
{
	const char *out = a->out;
	struct keystore *ks = NULL;
	char *pass = NULL;
	char fp[17];
	struct stat st;
	int r, rc = 1;

	if (stat(out, &st) == 0 || errno != ENOENT) {
		fprintf(stderr, "keys: %s already exists: not overwriting\n", out);
		return 1;
	}
	if (cli_passphrase("keys", a->pfile, &pass) != 0)
		return 1;
	if (passphrase_check_strength(pass) != 0) {
		fprintf(stderr, "keys: passphrase too weak: a new keystore needs at least %d characters, %d of them "
			"different\n", PASSPHRASE_MIN_BYTES, PASSPHRASE_MIN_DISTINCT);
		goto out;
	}
	if ((r = keystore_generate(a->casid, a->epoch_s, &ks)) != 0 ||
	    (r = keystore_save(ks, out, pass)) != 0) {
		fprintf(stderr, "keys: cannot create %s: %s\n", out, err_str(r));
		goto out;
	}
	keystore_fingerprint(ks, fp);
	printf("keystore %s created: CA_system_id 0x%04X, epoch %u s, root fingerprint %s\n", out,
		keystore_ca_system_id(ks), keystore_epoch_seconds(ks), fp);
	rc = 0;
out:
	keystore_free(ks);
	if (pass)
		secret_free(pass, strlen(pass));
	return rc;
}

static int keys_show(const struct keys_args *a)
{
	const char *path = a->keystore;
	struct keystore *ks = NULL;
	char fp[17];
	uint64_t now_s = now_wall_ms() / 1000;

	if (cli_keystore_open("keys", path, a->pfile, &ks) != 0)
		return 1;
	keystore_fingerprint(ks, fp);
	printf("keystore:         %s\n", path);
	printf("CA_system_id:     0x%04X\n", keystore_ca_system_id(ks));
	printf("epoch length:     %u s\n", keystore_epoch_seconds(ks));
	printf("current epoch:    %u (since unix %llu)\n", keystore_epoch_at(ks, now_s),
		(unsigned long long)keystore_epoch_at(ks, now_s) * keystore_epoch_seconds(ks));
	printf("created:          %llu\n", (unsigned long long)keystore_created(ks));
	printf("root fingerprint: %s\n", fp);
	keystore_free(ks);
	return 0;
}

int cmd_keys(int argc, char **argv)
{
	struct keys_args a = { 0 };
	int sub, r;

	if ((sub = opt_sub(NULL, keys_subs, keys_footer, argc, argv, &r)) < 0)
		return r;
	if ((r = opt_parse(keys_subs[sub], &a, argc, argv, 2, NULL, NULL)) != OPT_GO)
		return r;
	return sub == 0 ? keys_init(&a) : keys_show(&a);
}
