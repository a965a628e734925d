/*
 * cmd_provision.c - `castellan provision`: write the entitlement file of one
 * card (src/cas/entitlement.h): its packages, validity period and the
 * package keys of every epoch overlapping it, derived from the keystore.
 * The file holds keys: written mode 0600; the keys are never printed.
 */
#include <stdio.h>
#include <string.h>
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan provision --keystore FILE --card SERIAL --packages HEX8 --start UNIX\n"
		"                           --finish UNIX --out FILE [--passphrase-file F]\n\n"
		"Write the entitlement file of a cardless box: card serial (decimal, e.g. 2100000001),\n"
		"packages as 8 hex digits (the access-criteria bit mask, e.g. 00000003 = packages 0\n"
		"and 1), validity [start, finish] in unix seconds, and the package keys of every\n"
		"epoch overlapping it (at most %d keys). Refuses to overwrite --out.\n"
		"The passphrase is the first line of --passphrase-file, or $%s.\n",
		ENT_MAX_KEYS, KEYSTORE_PASSPHRASE_ENV);
}

int cmd_provision(int argc, char **argv)
{
	const char *ksp = NULL, *out = NULL, *pfile = NULL, *card = NULL, *pk = NULL, *st = NULL, *fi = NULL;
	static struct entitlement e;
	struct keystore *ks = NULL;
	char *pass = NULL;
	uint8_t mask[4];
	FILE *probe;
	int r, rc = 1;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;

		if (strcmp(argv[i], "--keystore") == 0)
			dst = &ksp;
		else if (strcmp(argv[i], "--out") == 0)
			dst = &out;
		else if (strcmp(argv[i], "--passphrase-file") == 0)
			dst = &pfile;
		else if (strcmp(argv[i], "--card") == 0)
			dst = &card;
		else if (strcmp(argv[i], "--packages") == 0)
			dst = &pk;
		else if (strcmp(argv[i], "--start") == 0)
			dst = &st;
		else if (strcmp(argv[i], "--finish") == 0)
			dst = &fi;
		if (!dst || i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		*dst = argv[++i];
	}
	if (!ksp || !out || !card || !pk || !st || !fi) {
		usage(stderr);
		return 2;
	}
	memset(&e, 0, sizeof(e));
	if (strspn(card, "0123456789") != strlen(card) || parse_u64(card, UINT64_MAX, &e.card_serial) != 0) {
		fprintf(stderr, "provision: --card must be a decimal serial\n");
		return 2;
	}
	if (strlen(pk) != 8 || hex_decode(pk, mask, sizeof(mask)) != 0) {
		fprintf(stderr, "provision: --packages must be 8 hex digits (00000000-FFFFFFFF)\n");
		return 2;
	}
	e.packages = ((uint32_t)mask[0] << 24) | ((uint32_t)mask[1] << 16) | ((uint32_t)mask[2] << 8) | mask[3];
	if (parse_u64(st, INT64_MAX, &e.start_s) != 0 || parse_u64(fi, INT64_MAX, &e.finish_s) != 0 ||
	    e.finish_s < e.start_s) {
		fprintf(stderr, "provision: --start/--finish must be unix seconds with start <= finish\n");
		return 2;
	}
	if ((probe = fopen(out, "rb")) != NULL) {
		fclose(probe);
		fprintf(stderr, "provision: %s already exists: not overwriting\n", out);
		return 1;
	}
	if ((r = passphrase_get(pfile, &pass)) != 0) {
		fprintf(stderr, "provision: passphrase: %s (give --passphrase-file or set $%s)\n", err_str(r),
			KEYSTORE_PASSPHRASE_ENV);
		return 1;
	}
	r = keystore_load(ksp, pass, &ks);
	secret_free(pass, strlen(pass));
	if (r != 0) {
		fprintf(stderr, "provision: cannot open %s: %s\n", ksp, err_str(r));
		return 1;
	}
	if ((r = entitlement_issue(ks, &e)) != 0) {
		fprintf(stderr, "provision: cannot issue: %s%s\n", err_str(r),
			r == CE_LIMIT ? " (too many package x epoch keys: shorten the period)" : "");
		goto out;
	}
	if ((r = entitlement_save(&e, out)) != 0) {
		fprintf(stderr, "provision: cannot write %s: %s\n", out, err_str(r));
		goto out;
	}
	printf("entitlement %s: card %llu, packages %08X, %llu..%llu, %zu package keys (epochs %u..%u)\n", out,
		(unsigned long long)e.card_serial, e.packages, (unsigned long long)e.start_s,
		(unsigned long long)e.finish_s, e.nkeys, keystore_epoch_at(ks, e.start_s),
		keystore_epoch_at(ks, e.finish_s));
	rc = 0;
out:
	entitlement_wipe(&e);
	keystore_free(ks);
	return rc;
}
