/*
 * cmd_stb.c - `castellan stb`: the reference set-top box on a transport
 * stream (docs/stb.md, docs/replaceable-cas.md). The options fill one
 * struct box_config and client/box.c runs the box (client or chip and
 * loader, descrambling, OTA, report); this file parses (one option table),
 * checks the combinations the table cannot say, reads the OTP image
 * (kms/otp.h) for --chip-otp and opens the --overlay-snapshot session
 * (stb/overlay_tee.h). A new option: a field in struct box_config (or
 * stb_args), one line in stb_opts, its use in client/box.c.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "client/box.h"
#include "kms/otp.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/overlay_tee.h"
#include "stb/ui.h"

struct stb_args {
	struct box_config box;     /* what client/box.c runs */
	const char *cw_hex, *algo, *chip_otp, *overlay_dir, *osd_json;
	bool no_reduce;
	struct ui_script ui;       /* --ui-states (stb/ui.h) */
};

static int set_smartcard(void *base, const char *v)
{
	(void)v;
	((struct stb_args *)base)->box.smartcard = true;
	return 0;
}

static int set_ui_states(void *base, const char *v)
{
	return ui_script_parse(v, &((struct stb_args *)base)->ui);
}

static int set_boot_vendor(void *base, const char *v)
{
	struct stb_args *a = base;
	uint64_t n;

	if (parse_u64(v, UINT32_MAX, &n) != 0)
		return CE_ARG;
	a->box.have_boot_vendor = true;
	a->box.boot_vendor = (uint32_t)n;
	return 0;
}

#define A struct stb_args
static const struct opt stb_opts[] = {
	OPT_STR("--input", "URI", 0, A, box.input,
		"TS source: PATH, file:PATH, - (stdin), udp://[group@][addr]:port"),
	OPT_STR("--output", "URI", OPT_REQUIRED, A, box.output,
		"TS sink: PATH, file:PATH, - (stdout), udp://host:port[?ttl=N&pkts=N]"),
	OPT_STR("--entitlement", "FILE", 0, A, box.entitlement,
		"cardless client with this entitlement file (castellan provision)"),
	OPT_STR("--card", "FILE", 0, A, box.card, "cardless client with this card file (provision --identity-out):\n"
		"entitlements and package keys come from the EMMs in the stream"),
	OPT_STR("--state", "FILE", 0, A, box.state, "with --card: keep the card state (EMM sequence, entitlement, keys)\n"
		"in FILE (0600) across restarts"),
	OPT_FN("--smartcard", NULL, OPT_SWITCH, set_smartcard, "[READER] smartcard client: the card in PC/SC reader READER "
		"(name\ncontains; default the first with a card), e.g. `castellan card serve`;\nwith a chip (--chip-otp/"
		"--chip-socket, --module or --boot-vendor\nsetting the vendor) a paired card's CWs load through the chip ladder"),
	OPT_STR("--cw", "HEX", 0, A, cw_hex, "fixed control word for every service, no ECMs (BISS-like):\n"
		"16 hex digits for csa2, 32 for cissa"),
	OPT_STR("--algo", "ALG", 0, A, algo, "csa2 (default) or cissa, with --cw"),
	OPT_FLAG("--no-entropy-reduction", A, no_reduce, "use the CSA2 CW as given (default: bytes 3 and 7 are the\n"
		"checksums of the three bytes before them, as TSDuck does)"),
	OPT_STR("--chip-otp", "FILE", 0, A, chip_otp, "chip mode: run the secure chip (OTP image from castellan blackbox\n"
		"burn) in a child process; CWs never enter the box process"),
	OPT_STR("--chip-socket", "PATH", 0, A, box.chip_socket, "chip mode with a running `castellan chip`: its host socket ..."),
	OPT_STR("--chip-control", "PATH", 0, A, box.chip_control, "... and its control socket (the loader's channel)"),
	OPT_STR("--module-dir", "DIR", 0, A, box.module_dir, "chip mode: the loader's state dir (loader.state, modules, the\n"
		"protected keys files the modules name)"),
	OPT_STR("--module", "FILE", 0, A, box.module, "verify and install this signed module (castellan module sign)"),
	OPT_FN("--boot-vendor", "N", 0, set_boot_vendor, "or boot the module of vendor N stored in --module-dir"),
	OPT_FLAG("--ota", A, box.ota, "collect modules from the stream's OTA carousel and install newer\n"
		"ones while playing (the client switches at once; docs/ota.md)"),
	OPT_NUM("--service", "ID", 0, A, box.service_id, 1, 0xFFFF, "only this service (program_number)"),
	OPT_STR("--report-json", "FILE", 0, A, box.report_json, "write the per-service counters as JSON"),
	OPT_STR("--overlay-snapshot", "DIR", 0, A, overlay_dir, "write PNG frames of every service's descrambled video into DIR\n"
		"with the fingerprints and messages of the report's \"osd\" items\ndrawn on top (a service without items: "
		"its first frame)"),
	OPT_STR("--osd-json", "FILE", 0, A, osd_json, "with --overlay-snapshot: draw these items too (an stb report with\n"
		"an \"osd\" array, or an array of items; docs/stb.md)"),
	OPT_STR("--record", "FILE", 0, A, box.record, "also record the descrambled services for this box only (chip or\n"
		"--card key; copy_never services are left out; docs/stb.md)"),
	OPT_STR("--playback", "FILE", 0, A, box.playback, "play a recording of this box to --output (another box's: refused)"),
	OPT_FN("--ui-states", "SCRIPT", 0, set_ui_states, "the box's screen states on the stream clock, e.g.\n"
		"0:live,2:menu,4:epg,6:settings,8:standby (seconds; also not_entitled);\n"
		"fingerprints and messages stay on top in every state (docs/stb.md)"),
	CLI_OPT_LOG_LEVEL,
	OPT_END,
};
#undef A

static const struct opt_cmd stb_cmd = {
	.name = "stb",
	.synopsis = "--input URI --output URI\n"
		"                     (--entitlement FILE | --card FILE [--state FILE] |\n"
		"                      --cw HEX [--algo csa2|cissa] [--no-entropy-reduction] |\n"
		"                      (--chip-otp FILE | --chip-socket PATH --chip-control PATH)\n"
		"                      --module-dir DIR (--module FILE | --boot-vendor N)\n"
		"                      [--ota | --smartcard [READER]])\n"
		"                     [--service ID] [--report-json FILE] [--log-level L]\n"
		"                     [--overlay-snapshot DIR [--osd-json FILE]] [--ui-states SCRIPT] [--record FILE]\n"
		"       castellan stb --playback FILE --output URI (--card FILE | a chip)",
	.about = "The reference set-top box: follows PAT, PMT and CAT, hands the ECMs and EMMs of\n"
		 "its CA_system_id to the CAS client, descrambles what the client unlocks and writes\n"
		 "the whole stream out (descrambled services clear, the rest as it came). One report\n"
		 "line per service goes to stderr at the end.",
	.opts = stb_opts,
	.args = "[READER]",
	.max_args = 1,
};

/* --smartcard [READER]: a word right after --smartcard is its reader. */
static int smartcard_reader(int argc, char **argv, const char *arg, struct box_config *c)
{
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--smartcard") == 0 && argv[i + 1] == arg) {
			c->reader = arg;
			return 0;
		}
	}
	fprintf(stderr, "castellan stb: unexpected argument '%s' (see castellan stb --help)\n", arg);
	return 2;
}

/* The combinations the table cannot say. 0 or 2 (said). */
static int check_combos(const struct stb_args *a)
{
	const struct box_config *c = &a->box;

	if (!c->input == !c->playback || (c->playback && c->record)) {
		fprintf(stderr, "stb: --output and one of --input or --playback are required\n");
		return 2;
	}
	/* --smartcard with a chip: a paired card's CWs go through the chip ladder */
	if (!!c->entitlement + !!a->cw_hex + !!c->card + !!(c->smartcard || a->chip_otp || c->chip_socket) != 1) {
		fprintf(stderr, "stb: give exactly one of --entitlement, --card, --smartcard, --cw or a chip\n");
		return 2;
	}
	if (c->smartcard && c->ota) {
		fprintf(stderr, "stb: --ota does not go with --smartcard (the card is the CAS client)\n");
		return 2;
	}
	if (a->chip_otp || c->chip_socket) {
		if (a->chip_otp && c->chip_socket) {
			fprintf(stderr, "stb: --chip-otp or --chip-socket, not both\n");
			return 2;
		}
		if (c->chip_socket && !c->chip_control) {
			fprintf(stderr, "stb: --chip-socket needs --chip-control (the loader's channel)\n");
			return 2;
		}
		if (!c->module_dir || !c->module == !c->have_boot_vendor) {
			fprintf(stderr, "stb: chip mode needs --module-dir and one of --module or --boot-vendor\n");
			return 2;
		}
	} else if (c->chip_control || c->module || c->module_dir || c->have_boot_vendor || c->ota) {
		fprintf(stderr, "stb: --chip-control, --module, --module-dir, --boot-vendor and --ota go with a chip\n");
		return 2;
	}
	if (a->osd_json && !a->overlay_dir) {
		fprintf(stderr, "stb: --osd-json goes with --overlay-snapshot\n");
		return 2;
	}
	if (c->state && !c->card) {
		fprintf(stderr, "stb: --state goes with --card\n");
		return 2;
	}
	if (!a->cw_hex && (a->algo || a->no_reduce)) {
		fprintf(stderr, "stb: --algo and --no-entropy-reduction go with --cw\n");
		return 2;
	}
	return 0;
}

/* --cw / --algo into the config. 0 or 2 (said). */
static int fixed_cw(const struct stb_args *o, struct box_config *c)
{
	c->alg = CW_ALG_CSA2;
	if (o->algo && cw_alg_parse(o->algo, &c->alg) != 0) {
		fprintf(stderr, "stb: --algo must be csa2 or cissa\n");
		return 2;
	}
	c->cw_len = cw_alg_key_bytes(c->alg);
	if (strlen(o->cw_hex) != 2 * c->cw_len || hex_decode(o->cw_hex, c->cw, c->cw_len) != 0) {
		fprintf(stderr, "stb: --cw must be %zu hex digits for %s\n", 2 * c->cw_len, cw_alg_name(c->alg));
		return 2;
	}
	c->fixed_cw = true;
	return 0;
}

/* --chip-otp: the chip's OTP image (castellan blackbox burn). 0 or 1. */
static int chip_otp_read(const char *path, struct chip_otp *otp)
{
	struct otp_image img;
	int r;

	if ((r = otp_read_file(path, &img)) != 0) {
		fprintf(stderr, "stb: OTP %s: %s\n", path, err_str(r));
		return 1;
	}
	memset(otp, 0, sizeof(*otp));
	otp->chip_id = img.chip_id;
	memcpy(otp->root, img.root_key, sizeof(otp->root));
	memcpy(otp->trust_root_hash, img.trust_root_hash, sizeof(otp->trust_root_hash));
	otp_image_wipe(&img);
	return 0;
}

int cmd_stb(int argc, char **argv)
{
	struct stb_args a = { 0 };
	struct box_config *c = &a.box;
	struct chip_otp otp = { 0 };
	const char *arg = NULL;
	int n = 0, rc;

	if ((rc = opt_parse(&stb_cmd, &a, argc, argv, 1, &arg, &n)) != OPT_GO)
		return rc;
	if ((n && (rc = smartcard_reader(argc, argv, arg, c)) != 0) || (rc = check_combos(&a)) != 0)
		return rc;
	c->one_service = c->service_id != 0;
	c->csa2_reduce = !a.no_reduce;
	c->ui = &a.ui;
	if (a.overlay_dir && (rc = overlay_tee_open(a.overlay_dir, a.osd_json, &c->overlay)) != 0)
		return rc == CE_ARG ? 2 : 1;
	if ((a.cw_hex && (rc = fixed_cw(&a, c)) != 0) || (a.chip_otp && (rc = chip_otp_read(a.chip_otp, &otp)) != 0))
		goto out;
	c->otp = a.chip_otp ? &otp : NULL;
	c->stop = cli_stop_on_signals();
	signal(SIGPIPE, SIG_DFL); /* as before: a closed --output pipe ends the box */
	rc = box_run(c) == 0 ? 0 : 1;
out:
	secret_wipe(c->cw, sizeof(c->cw));
	chip_otp_wipe(&otp);
	overlay_tee_free(c->overlay);
	return rc;
}
