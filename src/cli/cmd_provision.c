/*
 * cmd_provision.c - `castellan provision`: one card's entitlement file,
 * grant EMM or PAIR EMM as the SMS store holds its grant (the logic, checks
 * and audit entry are src/headend/provision.c; TRAI Schedule III A.5: no
 * grant outside the SMS), and the two outputs that grant nothing: the card
 * file of a box that takes EMMs and --protect (a file's keys re-wrapped for
 * one chip). Files with keys are written mode 0600; keys are never printed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "headend/provision.h"
#include "lib/util.h"

struct prov_args {
	const char *db, *db_file, *keystore, *pfile, *card, *out, *emm_out, *pair_out, *id_out, *protect, *vkeys;
	int64_t now;
	uint32_t seq;
	uint64_t chip, stb_id;
};

static int check_decimal(const char *v)
{
	return v[0] && strspn(v, "0123456789") == strlen(v) ? 0 : CE_ARG;
}

#define A struct prov_args
static const struct opt prov_opts[] = {
	OPT_STRV("--card", "SERIAL", 0, A, card, check_decimal, "the card's serial (decimal), as the SMS holds it"),
	OPT_STR("--db", "URI", 0, A, db, "the SMS store (as castellan sms: SQLite path, sqlite:, postgresql://)"),
	OPT_STR("--db-file", "FILE", 0, A, db_file, "the store URI from FILE's first line (mode 600)"),
	OPT_STR("--keystore", "FILE", 0, A, keystore, "head-end keystore (castellan keys init)"),
	OPT_STR("--passphrase-file", "F", 0, A, pfile, "its passphrase (first line), else $" KEYSTORE_PASSPHRASE_ENV),
	OPT_STR("--out", "FILE", 0, A, out, "the cardless box's entitlement file (0600, never overwritten); with\n"
		"--protect: the chip's keys file"),
	OPT_STR("--emm-out", "FILE", 0, A, emm_out, "append the card's grant EMM (hex, one section a line: castellan\n"
		"emmg --emm-file, card emm)"),
	OPT_STR("--pair-emm-out", "FILE", 0, A, pair_out, "append the PAIR EMM that pairs the card with the box the SMS\n"
		"names (its chip id; SMS pair = 1), K_pair from --vendor-keys"),
	OPT_STR("--vendor-keys", "CSV", 0, A, vkeys, "a vendor's opened key file (chip_id,hex: castellan kms vendor open)"),
	OPT_NUM("--seq", "N", 0, A, seq, 1, UINT32_MAX, "EMMs: at least N (default: the store's next number for the card)"),
	OPT_NUM("--now", "UNIX", 0, A, now, 0, INT64_MAX / 1000, "the time the SMS grant is read at (default: now)"),
	OPT_STR("--identity-out", "FILE", 0, A, id_out, "write the card file of a box that takes EMMs (castellan stb\n"
		"--card): CA_system_id, serial, K_card; grants nothing"),
	OPT_NUM("--stb-id", "N", 0, A, stb_id, 1, UINT64_MAX, "with --identity-out: the box's STB id"),
	OPT_STR("--protect", "ENT", 0, A, protect, "re-wrap entitlement file ENT's keys for one chip: each K_pkg\n"
		"becomes E_{K_v(chip)}(K_pkg) (--vendor-keys, --chip, --out)"),
	OPT_NUM("--chip", "ID", 0, A, chip, 0, UINT64_MAX, "with --protect: the chip id"),
	OPT_END,
};
#undef A

static const struct opt_cmd prov_cmd = {
	.name = "provision",
	.synopsis = "--card SERIAL [--db URI | --db-file FILE] --keystore FILE (--out FILE | --emm-out FILE |\n"
		    "                           --pair-emm-out FILE --vendor-keys CSV) [options]\n"
		    "       castellan provision --card SERIAL --keystore FILE --identity-out FILE [--stb-id N]\n"
		    "       castellan provision --protect ENT --vendor-keys CSV --chip ID --out FILE",
	.about = "Issue to one card what the SMS grants it, and nothing else (TRAI Schedule III A.5): its packages\n"
		 "(mask and extended ids) and period in force at --now from its SMS subscriptions, its pairing from\n"
		 "its SMS row. Refused: a card the SMS does not know, not active, blacklisted or in a blacklisted\n"
		 "box, or with no package in force. Each grant appends a card.provision entry to the SMS audit\n"
		 "chain; EMMs take the card's sequence number from the store. Packages and periods are set in the\n"
		 "SMS only (castellan sms subscribe, REST, panel).",
	.opts = prov_opts,
	.footer = "docs/headend.md \"Provisioning from the SMS\"; docs/emm-format.md (card files, EMMs).",
};

/* The options that used to grant from the command line. */
static bool refuse_cmdline_grant(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--packages") == 0 || strcmp(argv[i], "--start") == 0 ||
		    strcmp(argv[i], "--finish") == 0) {
			fprintf(stderr, "castellan provision: %s refused: a card's packages and period come from the SMS only "
					"(castellan sms subscribe; TRAI Schedule III A.5)\n", argv[i]);
			return true;
		}
	return false;
}

static int from_sms(const struct prov_args *a, struct keystore *ks, uint64_t serial)
{
	struct provision_req q = { .ks = ks, .serial = serial, .who = "cli:provision", .vendor_csv = a->vkeys,
				   .min_seq = a->seq, .now_s = a->now };
	struct provision_result res;
	char why[600] = "", ext[24] = "";
	const char *path = a->out ? a->out : a->emm_out ? a->emm_out : a->pair_out;
	enum provision_kind kind = a->out ? PROVISION_ENTITLEMENT : a->emm_out ? PROVISION_EMM : PROVISION_PAIR_EMM;
	int r = provision_from_store("castellan provision", a->db, a->db_file, &q, kind, path, &res, why, sizeof(why));

	if (r == 1)
		return 1;
	if (r != 0) {
		fprintf(stderr, "castellan provision: %s\n", why[0] ? why : err_str(r));
		return 1;
	}
	if (res.g.grant.next)
		snprintf(ext, sizeof(ext), " +%zu", res.g.grant.next);
	if (a->out)
		printf("entitlement %s: card %" PRIu64 " from the SMS, packages %08" PRIX32 "%s, %" PRIu64 "..%" PRIu64
		       ", %zu package keys\n", path, serial, res.g.grant.packages, ext, res.g.grant.start_s,
		       res.g.grant.finish_s, res.nkeys);
	else if (a->emm_out)
		printf("EMM %s: card %" PRIu64 " from the SMS, seq %" PRIu32 ", packages %08" PRIX32 "%s%s, %zu bytes\n",
		       path, serial, res.seq, res.g.grant.packages, ext, res.stb_id ? ", paired" : "", res.bytes);
	else
		printf("PAIR EMM %s: card %" PRIu64 " paired with box %s (box id %" PRIu64 "), seq %" PRIu32 ", %zu bytes\n",
		       path, serial, res.g.chip_id, res.stb_id, res.seq, res.bytes);
	return 0;
}

int cmd_provision(int argc, char **argv)
{
	struct prov_args a = { 0 };
	static struct entitlement e;
	struct keystore *ks = NULL;
	char why[600];
	uint64_t serial = 0;
	int r, outs;

	if (!opt_wants_help(argc, argv, 1) && refuse_cmdline_grant(argc, argv))
		return 2;
	if ((r = opt_parse(&prov_cmd, &a, argc, argv, 1, NULL, NULL)) != OPT_GO)
		return r;
	if (a.protect) {
		if (!a.vkeys || !a.chip || !a.out || a.card || a.emm_out || a.pair_out || a.id_out) {
			fprintf(stderr, "castellan provision: --protect takes --vendor-keys, --chip and --out only\n");
			return 2;
		}
		r = provision_protect(a.protect, a.vkeys, a.chip, a.out, &e, why, sizeof(why));
		if (r == 0)
			printf("wrote %s: %zu package keys protected for chip 0x%016" PRIx64 " (CA_system_id 0x%04X)\n",
			       a.out, e.nkeys, a.chip, e.ca_system_id);
		else
			fprintf(stderr, "castellan provision: %s\n", why);
		entitlement_wipe(&e);
		return r == 0 ? 0 : 1;
	}
	outs = !!a.out + !!a.emm_out + !!a.pair_out + !!a.id_out;
	if (!a.card || !a.keystore || outs != 1 || (a.pair_out && !a.vkeys) || (a.stb_id && !a.id_out) || a.chip ||
	    parse_u64(a.card, UINT64_MAX, &serial) != 0) {
		fprintf(stderr, "castellan provision: give --card, --keystore and one of --out, --emm-out, --pair-emm-out "
				"(with --vendor-keys), --identity-out (castellan provision --help)\n");
		return 2;
	}
	if (cli_keystore_open("provision", a.keystore, a.pfile, &ks) != 0)
		return 1;
	if (a.id_out) {
		r = provision_identity(ks, serial, a.stb_id, a.id_out, why, sizeof(why));
		if (r == 0)
			printf("card %s: card %" PRIu64 ", CA_system_id 0x%04X%s\n", a.id_out, serial,
			       keystore_ca_system_id(ks), a.stb_id ? ", with STB id" : "");
		else
			fprintf(stderr, "castellan provision: %s\n", why);
		r = r == 0 ? 0 : 1;
	} else {
		r = from_sms(&a, ks, serial);
	}
	keystore_free(ks);
	return r;
}
