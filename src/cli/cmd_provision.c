/*
 * cmd_provision.c - `castellan provision`: write the entitlement file of one
 * card (src/cas/entitlement.h): its packages, validity period and the
 * package keys of every epoch overlapping it, derived from the keystore.
 * The file holds keys: written mode 0600; the keys are never printed.
 * --protect: the vendor's step for a ladder box (stb/chip.h): each package
 * key of an entitlement replaced by E_{K_v(chip)}(K_pkg) (chip_protect_key),
 * K_v(chip) taken from the vendor's opened key file (kms vendor open).
 * --pair-emm-out: the PAIR EMM that binds a smartcard to one box's chip:
 * K_pair = chip_pairing_key(K_v(chip), serial) (docs/smartcard.md "Pairing").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cas/card.h"
#include "cas/emm.h"
#include "cas/emm_vendor.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/util.h"
#include "stb/chip.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan provision --keystore FILE --card SERIAL --packages HEX8 --start UNIX\n"
		"                           --finish UNIX --out FILE [--passphrase-file F]\n"
		"       castellan provision --keystore FILE --card SERIAL --identity-out FILE [--stb-id N]\n"
		"       castellan provision --keystore FILE --card SERIAL --packages HEX8 --start UNIX\n"
		"                           --finish UNIX --emm-out FILE --seq N [--now UNIX]\n\n"
		"Write the entitlement file of a cardless box: card serial (decimal, e.g. 2100000001),\n"
		"packages as 8 hex digits (the access-criteria bit mask, e.g. 00000003 = packages 0\n"
		"and 1), validity [start, finish] in unix seconds, and the package keys of every\n"
		"epoch overlapping it (at most %d keys). Refuses to overwrite --out.\n"
		"The passphrase is the first line of --passphrase-file, or $%s.\n\n"
		"  --identity-out FILE  write the card file of a box that takes EMMs (castellan stb --card):\n"
		"                       CA_system_id, serial and its card key K_card (mode 0600; refuses to\n"
		"                       overwrite). --stb-id N records the box's STB id (EMM pairing).\n"
		"  --emm-out FILE       append one unique EMM (hex, one section per line: the input of\n"
		"                       castellan emmg --emm-file) that gives the card its packages, period and\n"
		"                       the package keys of the current and next epoch at --now (default: now).\n"
		"  --seq N              EMM sequence number, 1..4294967295: must grow for each EMM of a card.\n"
		"       castellan provision --protect ENT --vendor-keys CSV --chip ID --out FILE\n"
		"                       the vendor's step for a chip box (castellan stb --chip-*): ENT's package\n"
		"                       keys each replaced by E_{K_v(chip)}(K_pkg), K_v(chip) from CSV (chip_id,\n"
		"                       hex key lines: castellan kms vendor open). FILE (0600) is the keys file\n"
		"                       a module names, for the box's --module-dir; only that chip opens it.\n"
		"       castellan provision --pair-emm-out FILE --vendor-keys CSV --chip ID --card SERIAL\n"
		"                           --seq N --keystore FILE [--passphrase-file F] [--stb-id N] [--now UNIX]\n"
		"                       append the PAIR EMM (hex, as --emm-out) that pairs smartcard SERIAL with\n"
		"                       the chip ID of CSV's vendor: K_pair = KBKDF(K_v(chip), serial), sealed\n"
		"                       under the card's K_card; box id --stb-id (default: the chip id).\n"
		"                       The box runs castellan stb --smartcard --chip-otp ... with that vendor.\n"
		"docs/emm-format.md describes card files and EMMs; docs/smartcard.md pairing.\n",
		ENT_MAX_KEYS, KEYSTORE_PASSPHRASE_ENV);
}

static int do_protect(int argc, char **argv)
{
	const char *in = NULL, *csv = NULL, *chip = NULL, *out = NULL;
	struct entitlement *e = NULL;
	uint8_t kv[16];
	uint64_t chip_id;
	FILE *probe;
	int r, rc = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--protect") == 0)
			in = argv[i + 1];
		else if (strcmp(argv[i], "--vendor-keys") == 0)
			csv = argv[i + 1];
		else if (strcmp(argv[i], "--chip") == 0)
			chip = argv[i + 1];
		else if (strcmp(argv[i], "--out") == 0)
			out = argv[i + 1];
		else
			break;
	}
	if (!in || !csv || !chip || !out || argc != 9 || parse_u64(chip, UINT64_MAX, &chip_id) != 0) {
		usage(stderr);
		return 2;
	}
	if ((probe = fopen(out, "r")) != NULL) {
		fclose(probe);
		fprintf(stderr, "provision: %s exists, not overwritten\n", out);
		return 1;
	}
	if (!(e = calloc(1, sizeof(*e))))
		return 1;
	if ((r = emm_vendor_key_file(csv, chip_id, kv)) != 0) {
		fprintf(stderr, "provision: chip %s in %s: %s\n", chip, csv, err_str(r));
		goto out;
	}
	if ((r = entitlement_load(in, e)) != 0) {
		fprintf(stderr, "provision: %s: %s\n", in, err_str(r));
		goto out;
	}
	for (size_t i = 0; i < e->nkeys; i++)
		if ((r = chip_protect_key(kv, e->keys[i].key)) != 0)
			goto out;
	if ((r = entitlement_save(e, out)) != 0) {
		fprintf(stderr, "provision: %s: %s\n", out, err_str(r));
		goto out;
	}
	printf("wrote %s: %zu package keys protected for chip 0x%016llx (CA_system_id 0x%04X)\n", out, e->nkeys,
		(unsigned long long)chip_id, e->ca_system_id);
	rc = 0;
out:
	secret_wipe(kv, sizeof(kv));
	entitlement_wipe(e);
	free(e);
	return rc;
}

/* --pair-emm-out: one PAIR EMM (record stb_id | K_pair) for card on chip. */
static int do_pair_emm(int argc, char **argv)
{
	const char *out = NULL, *csv = NULL, *chip = NULL, *card = NULL, *seqs = NULL, *ksp = NULL, *pfile = NULL;
	const char *stbs = NULL, *nows = NULL;
	uint64_t chip_id = 0, serial = 0, seq = 0, stb_id = 0, now_s = 0;
	uint8_t kv[16], kpair[16], sec[EMM_MAX_SECTION];
	char hex[2 * EMM_MAX_SECTION + 2];
	struct keystore *ks = NULL;
	struct emm_issuer *is = NULL;
	char *pass = NULL;
	size_t len = 0;
	FILE *f;
	int r, rc = 1;

	for (int i = 1; i < argc; i += 2) {
		const char **dst = NULL;

		if (strcmp(argv[i], "--pair-emm-out") == 0)
			dst = &out;
		else if (strcmp(argv[i], "--vendor-keys") == 0)
			dst = &csv;
		else if (strcmp(argv[i], "--chip") == 0)
			dst = &chip;
		else if (strcmp(argv[i], "--card") == 0)
			dst = &card;
		else if (strcmp(argv[i], "--seq") == 0)
			dst = &seqs;
		else if (strcmp(argv[i], "--keystore") == 0)
			dst = &ksp;
		else if (strcmp(argv[i], "--passphrase-file") == 0)
			dst = &pfile;
		else if (strcmp(argv[i], "--stb-id") == 0)
			dst = &stbs;
		else if (strcmp(argv[i], "--now") == 0)
			dst = &nows;
		if (!dst || i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		*dst = argv[i + 1];
	}
	if (!out || !csv || !chip || !card || !seqs || !ksp) {
		usage(stderr);
		return 2;
	}
	if (parse_u64(chip, UINT64_MAX, &chip_id) != 0 || strspn(card, "0123456789") != strlen(card) ||
	    parse_u64(card, UINT64_MAX, &serial) != 0 || parse_u64(seqs, UINT32_MAX, &seq) != 0 || seq == 0 ||
	    (stbs && (parse_u64(stbs, UINT64_MAX, &stb_id) != 0 || stb_id == 0)) ||
	    (nows && parse_u64(nows, INT64_MAX / 1000, &now_s) != 0)) {
		fprintf(stderr, "provision: bad --chip, --card (decimal), --seq (1..4294967295), --stb-id (non-zero) "
				"or --now\n");
		return 2;
	}
	if (!stbs)
		stb_id = chip_id;
	if (stb_id == 0) {
		fprintf(stderr, "provision: the box id is 0: give --stb-id\n");
		return 2;
	}
	if ((r = emm_vendor_key_file(csv, chip_id, kv)) != 0) {
		fprintf(stderr, "provision: chip %s in %s: %s\n", chip, csv, err_str(r));
		goto out;
	}
	if ((r = passphrase_get(pfile, &pass)) != 0) {
		char pwhy[600];

		fprintf(stderr, "provision: passphrase: %s (give --passphrase-file or set $%s)\n",
			passphrase_why(pfile, r, pwhy, sizeof(pwhy)),
			KEYSTORE_PASSPHRASE_ENV);
		goto out;
	}
	r = keystore_load(ksp, pass, &ks);
	secret_free(pass, strlen(pass));
	if (r != 0) {
		fprintf(stderr, "provision: cannot open %s: %s\n", ksp, err_str(r));
		goto out;
	}
	if ((r = chip_pairing_key(kv, serial, kpair)) == 0 && (r = emm_issuer_new(ks, &is)) == 0)
		r = emm_build_pair(is, serial, (uint32_t)seq, stb_id, kpair, nows ? now_s * 1000u : now_wall_ms(), sec,
			sizeof(sec), &len);
	emm_issuer_free(is);
	if (r != 0) {
		fprintf(stderr, "provision: cannot build the PAIR EMM: %s\n", err_str(r));
		goto out;
	}
	hex_encode(sec, len, hex);
	f = fopen(out, "a");
	r = f && fprintf(f, "%s\n", hex) >= 0 ? 0 : CE_IO;
	if (f && fclose(f) != 0)
		r = CE_IO;
	if (r != 0) {
		fprintf(stderr, "provision: cannot append to %s\n", out);
		goto out;
	}
	printf("PAIR EMM %s: card %llu paired with chip 0x%016llx (box id %llu), seq %llu, %zu bytes\n", out,
		(unsigned long long)serial, (unsigned long long)chip_id, (unsigned long long)stb_id,
		(unsigned long long)seq, len);
	rc = 0;
out:
	secret_wipe(kv, sizeof(kv));
	secret_wipe(kpair, sizeof(kpair));
	keystore_free(ks);
	return rc;
}

int cmd_provision(int argc, char **argv)
{
	const char *ksp = NULL, *out = NULL, *pfile = NULL, *card = NULL, *pk = NULL, *st = NULL, *fi = NULL;
	const char *idout = NULL, *emmout = NULL, *seqs = NULL, *nows = NULL, *stbs = NULL;
	uint64_t seq = 0, now_s = 0, stb_id = 0;
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
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--protect") == 0)
			return do_protect(argc, argv);
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--pair-emm-out") == 0)
			return do_pair_emm(argc, argv);
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
		else if (strcmp(argv[i], "--identity-out") == 0)
			dst = &idout;
		else if (strcmp(argv[i], "--emm-out") == 0)
			dst = &emmout;
		else if (strcmp(argv[i], "--seq") == 0)
			dst = &seqs;
		else if (strcmp(argv[i], "--now") == 0)
			dst = &nows;
		else if (strcmp(argv[i], "--stb-id") == 0)
			dst = &stbs;
		if (!dst || i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		*dst = argv[++i];
	}
	if (!ksp || !card || (!out && !idout && !emmout) || ((out || emmout) && (!pk || !st || !fi)) ||
	    (emmout && !seqs)) {
		usage(stderr);
		return 2;
	}
	memset(&e, 0, sizeof(e));
	if (strspn(card, "0123456789") != strlen(card) || parse_u64(card, UINT64_MAX, &e.card_serial) != 0) {
		fprintf(stderr, "provision: --card must be a decimal serial\n");
		return 2;
	}
	if ((seqs && (parse_u64(seqs, UINT32_MAX, &seq) != 0 || seq == 0)) ||
	    (nows && parse_u64(nows, INT64_MAX / 1000, &now_s) != 0) ||
	    (stbs && (parse_u64(stbs, UINT64_MAX, &stb_id) != 0 || stb_id == 0))) {
		fprintf(stderr, "provision: bad --seq (1..4294967295), --now (unix seconds) or --stb-id (non-zero)\n");
		return 2;
	}
	if (!out && !emmout)
		goto keys;
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
	if (out && (probe = fopen(out, "rb")) != NULL) {
		fclose(probe);
		fprintf(stderr, "provision: %s already exists: not overwriting\n", out);
		return 1;
	}
keys:
	if (idout && (probe = fopen(idout, "rb")) != NULL) {
		fclose(probe);
		fprintf(stderr, "provision: %s already exists: not overwriting\n", idout);
		return 1;
	}
	if ((r = passphrase_get(pfile, &pass)) != 0) {
		char pwhy[600];

		fprintf(stderr, "provision: passphrase: %s (give --passphrase-file or set $%s)\n",
			passphrase_why(pfile, r, pwhy, sizeof(pwhy)),
			KEYSTORE_PASSPHRASE_ENV);
		return 1;
	}
	r = keystore_load(ksp, pass, &ks);
	secret_free(pass, strlen(pass));
	if (r != 0) {
		fprintf(stderr, "provision: cannot open %s: %s\n", ksp, err_str(r));
		return 1;
	}
	if (idout) {
		struct card_identity ci;

		r = card_issue(ks, e.card_serial, &ci);
		ci.stb_id = stb_id;
		if (r == 0)
			r = card_save(&ci, idout);
		card_identity_wipe(&ci);
		if (r != 0) {
			fprintf(stderr, "provision: cannot write %s: %s\n", idout, err_str(r));
			goto out;
		}
		printf("card %s: card %llu, CA_system_id 0x%04X%s\n", idout, (unsigned long long)e.card_serial,
			keystore_ca_system_id(ks), stb_id ? ", with STB id" : "");
	}
	if (emmout) {
		struct emm_issuer *is = NULL;
		struct emm_grant g = { .packages = e.packages, .start_s = e.start_s, .finish_s = e.finish_s };
		uint8_t sec[EMM_MAX_SECTION];
		char hex[2 * EMM_MAX_SECTION + 2];
		size_t len = 0;
		uint64_t now_ms = nows ? now_s * 1000u : now_wall_ms();
		FILE *f;

		r = emm_issuer_new(ks, &is);
		if (r == 0)
			r = emm_build_unique(is, e.card_serial, (uint32_t)seq, &g, now_ms, sec, sizeof(sec), &len);
		emm_issuer_free(is);
		if (r != 0) {
			fprintf(stderr, "provision: cannot build the EMM: %s\n", err_str(r));
			goto out;
		}
		hex_encode(sec, len, hex);
		f = fopen(emmout, "a");
		r = f && fprintf(f, "%s\n", hex) >= 0 ? 0 : CE_IO;
		if (f && fclose(f) != 0)
			r = CE_IO;
		if (r != 0) {
			fprintf(stderr, "provision: cannot append to %s\n", emmout);
			goto out;
		}
		printf("EMM %s: card %llu, seq %llu, packages %08X, %zu bytes\n", emmout,
			(unsigned long long)e.card_serial, (unsigned long long)seq, e.packages, len);
	}
	if (!out) {
		rc = 0;
		goto out;
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
