/*
 * cmd_stb.c - `castellan stb`: the reference set-top box on a transport
 * stream (docs/stb.md, docs/replaceable-cas.md). The options fill one
 * struct box_config and client/box.c runs the box (client or chip and
 * loader, descrambling, OTA, report); this file parses, checks the option
 * combinations, reads the OTP image (kms/otp.h) for --chip-otp and opens
 * the --overlay-snapshot session (stb/overlay_tee.h).
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "client/box.h"
#include "kms/otp.h"
#include "lib/log.h"
#include "lib/sigstop.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/overlay_tee.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan stb --input URI --output URI\n"
		"                     (--entitlement FILE | --card FILE [--state FILE] |\n"
		"                      --cw HEX [--algo csa2|cissa] [--no-entropy-reduction] |\n"
		"                      (--chip-otp FILE | --chip-socket PATH --chip-control PATH)\n"
		"                      --module-dir DIR (--module FILE | --boot-vendor N)\n"
		"                      [--ota | --smartcard [READER]])\n"
		"                     [--service ID] [--report-json FILE] [--log-level L]\n"
		"                     [--overlay-snapshot DIR [--osd-json FILE]]\n\n"
		"The reference set-top box: follows PAT, PMT and CAT, hands the ECMs and EMMs of\n"
		"its CA_system_id to the CAS client, descrambles what the client unlocks and writes\n"
		"the whole stream out (descrambled services clear, the rest as it came). One report\n"
		"line per service goes to stderr at the end.\n\n"
		"  --input URI            TS source: PATH, file:PATH, - (stdin), udp://[group@][addr]:port\n"
		"  --output URI           TS sink: PATH, file:PATH, - (stdout), udp://host:port[?ttl=N&pkts=N]\n"
		"  --entitlement FILE     cardless client with this entitlement file (castellan provision)\n"
		"  --card FILE            cardless client with this card file (provision --identity-out):\n"
		"                         entitlements and package keys come from the EMMs in the stream\n"
		"  --state FILE           with --card: keep the card state (EMM sequence, entitlement, keys)\n"
		"                         in FILE (0600) across restarts\n"
		"  --smartcard [READER]   smartcard client: the card in PC/SC reader READER (name contains;\n"
		"                         default the first with a card), e.g. `castellan card serve`;\n"
		"                         with a chip (--chip-otp/--chip-socket, --module or --boot-vendor\n"
		"                         setting the vendor) a paired card's CWs load through the chip ladder\n"
		"  --cw HEX               fixed control word for every service, no ECMs (BISS-like):\n"
		"                         16 hex digits for csa2, 32 for cissa\n"
		"  --algo ALG             csa2 (default) or cissa, with --cw\n"
		"  --no-entropy-reduction use the CSA2 CW as given (default: bytes 3 and 7 are the\n"
		"                         checksums of the three bytes before them, as TSDuck does)\n"
		"  --chip-otp FILE        chip mode: run the secure chip (OTP image from castellan blackbox\n"
		"                         burn) in a child process; CWs never enter the box process\n"
		"  --chip-socket PATH     chip mode with a running `castellan chip`: its host socket ...\n"
		"  --chip-control PATH    ... and its control socket (the loader's channel)\n"
		"  --module-dir DIR       chip mode: the loader's state dir (loader.state, modules, the\n"
		"                         protected keys files the modules name)\n"
		"  --module FILE          verify and install this signed module (castellan module sign)\n"
		"  --boot-vendor N        or boot the module of vendor N stored in --module-dir\n"
		"  --ota                  collect modules from the stream's OTA carousel and install newer\n"
		"                         ones while playing (the client switches at once; docs/ota.md)\n"
		"  --service ID           only this service (program_number)\n"
		"  --report-json FILE     write the per-service counters as JSON\n"
		"  --overlay-snapshot DIR write PNG frames of every service's descrambled video into DIR\n"
		"                         with the fingerprints and messages of the report's \"osd\" items\n"
		"                         drawn on top (a service without items: its first frame)\n"
		"  --osd-json FILE        with --overlay-snapshot: draw these items too (an stb report with\n"
		"                         an \"osd\" array, or an array of items; docs/stb.md)\n"
		"  --log-level L          error | warn | info (default) | debug\n");
}

struct stb_cli {
	const char *input, *output, *entitlement, *cw_hex, *algo, *report_json, *card, *state;
	const char *overlay_dir, *osd_json; /* --overlay-snapshot, --osd-json */
	bool smartcard;            /* --smartcard [READER]: PC/SC card (docs/smartcard.md) */
	const char *reader;
	bool no_reduce, one_service;
	uint16_t service_id;
	/* chip mode */
	const char *chip_otp, *chip_socket, *chip_control, *module, *module_dir;
	bool have_boot_vendor, ota;
	uint32_t boot_vendor;
};

static int parse_args(int argc, char **argv, struct stb_cli *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;

		if (strcmp(a, "--input") == 0 && has_val) {
			o->input = argv[++i];
		} else if (strcmp(a, "--output") == 0 && has_val) {
			o->output = argv[++i];
		} else if (strcmp(a, "--entitlement") == 0 && has_val) {
			o->entitlement = argv[++i];
		} else if (strcmp(a, "--smartcard") == 0) {
			o->smartcard = true;
			if (has_val && strncmp(argv[i + 1], "--", 2) != 0)
				o->reader = argv[++i];
		} else if (strcmp(a, "--card") == 0 && has_val) {
			o->card = argv[++i];
		} else if (strcmp(a, "--state") == 0 && has_val) {
			o->state = argv[++i];
		} else if (strcmp(a, "--cw") == 0 && has_val) {
			o->cw_hex = argv[++i];
		} else if (strcmp(a, "--algo") == 0 && has_val) {
			o->algo = argv[++i];
		} else if (strcmp(a, "--no-entropy-reduction") == 0) {
			o->no_reduce = true;
		} else if (strcmp(a, "--service") == 0 && has_val) {
			uint64_t v;

			if (parse_u64(argv[++i], 0xFFFF, &v) != 0 || v == 0) {
				fprintf(stderr, "stb: bad --service '%s' (1..65535)\n", argv[i]);
				return 2;
			}
			o->one_service = true;
			o->service_id = (uint16_t)v;
		} else if (strcmp(a, "--chip-otp") == 0 && has_val) {
			o->chip_otp = argv[++i];
		} else if (strcmp(a, "--chip-socket") == 0 && has_val) {
			o->chip_socket = argv[++i];
		} else if (strcmp(a, "--chip-control") == 0 && has_val) {
			o->chip_control = argv[++i];
		} else if (strcmp(a, "--module") == 0 && has_val) {
			o->module = argv[++i];
		} else if (strcmp(a, "--module-dir") == 0 && has_val) {
			o->module_dir = argv[++i];
		} else if (strcmp(a, "--boot-vendor") == 0 && has_val) {
			uint64_t v;

			if (parse_u64(argv[++i], UINT32_MAX, &v) != 0) {
				fprintf(stderr, "stb: bad --boot-vendor '%s'\n", argv[i]);
				return 2;
			}
			o->have_boot_vendor = true;
			o->boot_vendor = (uint32_t)v;
		} else if (strcmp(a, "--ota") == 0) {
			o->ota = true;
		} else if (strcmp(a, "--report-json") == 0 && has_val) {
			o->report_json = argv[++i];
		} else if (strcmp(a, "--overlay-snapshot") == 0 && has_val) {
			o->overlay_dir = argv[++i];
		} else if (strcmp(a, "--osd-json") == 0 && has_val) {
			o->osd_json = argv[++i];
		} else if (strcmp(a, "--log-level") == 0 && has_val) {
			enum log_level l;

			if (log_level_parse(argv[++i], &l) != 0) {
				fprintf(stderr, "stb: bad --log-level '%s'\n", argv[i]);
				return 2;
			}
			log_set_level(l);
		} else {
			fprintf(stderr, "stb: unknown or incomplete option '%s'\n", a);
			return 2;
		}
	}
	if (!o->input || !o->output) {
		fprintf(stderr, "stb: --input and --output are required\n");
		return 2;
	}
	/* --smartcard with a chip: a paired card's CWs go through the chip ladder */
	if (!!o->entitlement + !!o->cw_hex + !!o->card + !!(o->smartcard || o->chip_otp || o->chip_socket) != 1) {
		fprintf(stderr, "stb: give exactly one of --entitlement, --card, --smartcard, --cw or a chip\n");
		return 2;
	}
	if (o->smartcard && o->ota) {
		fprintf(stderr, "stb: --ota does not go with --smartcard (the card is the CAS client)\n");
		return 2;
	}
	if (o->chip_otp || o->chip_socket) {
		if (o->chip_otp && o->chip_socket) {
			fprintf(stderr, "stb: --chip-otp or --chip-socket, not both\n");
			return 2;
		}
		if (o->chip_socket && !o->chip_control) {
			fprintf(stderr, "stb: --chip-socket needs --chip-control (the loader's channel)\n");
			return 2;
		}
		if (!o->module_dir || !o->module == !o->have_boot_vendor) {
			fprintf(stderr, "stb: chip mode needs --module-dir and one of --module or --boot-vendor\n");
			return 2;
		}
	} else if (o->chip_control || o->module || o->module_dir || o->have_boot_vendor || o->ota) {
		fprintf(stderr, "stb: --chip-control, --module, --module-dir, --boot-vendor and --ota go with a chip\n");
		return 2;
	}
	if (o->osd_json && !o->overlay_dir) {
		fprintf(stderr, "stb: --osd-json goes with --overlay-snapshot\n");
		return 2;
	}
	if (o->state && !o->card) {
		fprintf(stderr, "stb: --state goes with --card\n");
		return 2;
	}
	if (!o->cw_hex && (o->algo || o->no_reduce)) {
		fprintf(stderr, "stb: --algo and --no-entropy-reduction go with --cw\n");
		return 2;
	}
	return 0;
}

/* --cw / --algo into the config. 0 or 2 (said). */
static int fixed_cw(const struct stb_cli *o, struct box_config *c)
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
	static volatile sig_atomic_t stop;
	struct stb_cli o = { 0 };
	struct box_config c = { 0 };
	struct chip_otp otp = { 0 };
	int rc;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if ((rc = parse_args(argc, argv, &o)) != 0) {
		if (rc == 2)
			usage(stderr);
		return rc;
	}
	c.input = o.input;
	c.output = o.output;
	c.entitlement = o.entitlement;
	c.card = o.card;
	c.state = o.state;
	c.smartcard = o.smartcard;
	c.reader = o.reader;
	c.csa2_reduce = !o.no_reduce;
	c.one_service = o.one_service;
	c.service_id = o.service_id;
	c.chip_socket = o.chip_socket;
	c.chip_control = o.chip_control;
	c.module_dir = o.module_dir;
	c.module = o.module;
	c.have_boot_vendor = o.have_boot_vendor;
	c.boot_vendor = o.boot_vendor;
	c.ota = o.ota;
	c.report_json = o.report_json;
	c.stop = &stop;
	if (o.overlay_dir && (rc = overlay_tee_open(o.overlay_dir, o.osd_json, &c.overlay)) != 0) {
		if (rc == CE_ARG)
			usage(stderr);
		return rc == CE_ARG ? 2 : 1;
	}
	if ((o.cw_hex && (rc = fixed_cw(&o, &c)) != 0) || (o.chip_otp && (rc = chip_otp_read(o.chip_otp, &otp)) != 0))
		goto out;
	c.otp = o.chip_otp ? &otp : NULL;
	sigstop_catch(&stop, false);
	rc = box_run(&c) == 0 ? 0 : 1;
	sigstop_release();
out:
	secret_wipe(c.cw, sizeof(c.cw));
	chip_otp_wipe(&otp);
	overlay_tee_free(c.overlay);
	return rc;
}
