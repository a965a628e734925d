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

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan keys init --out FILE --ca-system-id ID [--epoch-seconds N] [--passphrase-file F]\n"
		"       castellan keys show --keystore FILE [--passphrase-file F]\n\n"
		"init  create a new head-end keystore with a random package root key, encrypted\n"
		"      under a passphrase (scrypt + AES-256-GCM). Refuses to overwrite FILE.\n"
		"      --ca-system-id ID    16-bit CA_system_id, e.g. 0x4ADC\n"
		"      --epoch-seconds N    package key rotation period (default %u = 7 days)\n"
		"show  print CA_system_id, epoch length, the current epoch and the root's\n"
		"      fingerprint (never the key).\n\n"
		"The passphrase is the first line of --passphrase-file, or $%s.\n"
		"There is no default passphrase; an empty one is refused; init needs at least 12\n"
		"characters, 6 of them different. A passphrase file readable by group or other is\n"
		"refused (chmod 600); the variable is unset once read.\n",
		KEYSTORE_DEFAULT_EPOCH_SECONDS, KEYSTORE_PASSPHRASE_ENV);
}

static int get_pass(const char *file, char **pass)
{
	int r = passphrase_get(file, pass);

	if (r == CE_NOT_FOUND && !file)
		fprintf(stderr, "keys: no passphrase: give --passphrase-file or set $%s\n", KEYSTORE_PASSPHRASE_ENV);
	else if (r != 0) {
		char pwhy[600];

		fprintf(stderr, "keys: passphrase: %s\n", passphrase_why(file, r, pwhy, sizeof(pwhy)));
	}
	return r;
}

static int keys_init(int argc, char **argv)
{
	const char *out = NULL, *pfile = NULL;
	uint64_t casid = 0, epoch_s = 0;
	bool have_id = false;
	struct keystore *ks = NULL;
	char *pass = NULL;
	char fp[17];
	struct stat st;
	int r, rc = 1;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else if (strcmp(argv[i], "--ca-system-id") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], 0xFFFF, &casid) != 0) {
				fprintf(stderr, "keys: bad --ca-system-id (16-bit, e.g. 0x4ADC)\n");
				return 2;
			}
			have_id = true;
		} else if (strcmp(argv[i], "--epoch-seconds") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], KEYSTORE_MAX_EPOCH_SECONDS, &epoch_s) != 0 ||
			    epoch_s < KEYSTORE_MIN_EPOCH_SECONDS) {
				fprintf(stderr, "keys: --epoch-seconds must be %u..%u\n", KEYSTORE_MIN_EPOCH_SECONDS,
					KEYSTORE_MAX_EPOCH_SECONDS);
				return 2;
			}
		} else if (strcmp(argv[i], "--passphrase-file") == 0 && i + 1 < argc) {
			pfile = argv[++i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!out || !have_id) {
		usage(stderr);
		return 2;
	}
	if (stat(out, &st) == 0 || errno != ENOENT) {
		fprintf(stderr, "keys: %s already exists: not overwriting\n", out);
		return 1;
	}
	if (get_pass(pfile, &pass) != 0)
		return 1;
	if (passphrase_check_strength(pass) != 0) {
		fprintf(stderr, "keys: passphrase too weak: a new keystore needs at least %d characters, %d of them "
			"different\n", PASSPHRASE_MIN_BYTES, PASSPHRASE_MIN_DISTINCT);
		goto out;
	}
	if ((r = keystore_generate((uint16_t)casid, (uint32_t)epoch_s, &ks)) != 0 ||
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

static int keys_show(int argc, char **argv)
{
	const char *path = NULL, *pfile = NULL;
	struct keystore *ks = NULL;
	char *pass = NULL, fp[17];
	uint64_t now_s = now_wall_ms() / 1000;
	int r;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--keystore") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--passphrase-file") == 0 && i + 1 < argc) {
			pfile = argv[++i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!path) {
		usage(stderr);
		return 2;
	}
	if (get_pass(pfile, &pass) != 0)
		return 1;
	r = keystore_load(path, pass, &ks);
	secret_free(pass, strlen(pass));
	if (r != 0) {
		fprintf(stderr, "keys: cannot open %s: %s\n", path, err_str(r));
		return 1;
	}
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
	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "init") == 0)
		return keys_init(argc, argv);
	if (strcmp(argv[1], "show") == 0)
		return keys_show(argc, argv);
	usage(stderr);
	return 2;
}
