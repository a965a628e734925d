/*
 * cmd_stb.c - `castellan stb`: the reference set-top box on a transport
 * stream. Reads a TS (file, "-", udp://), descrambles the services it has
 * keys for (cardless client with an entitlement file, or a fixed CW) and
 * writes the whole TS out; prints one report line per service on stderr
 * and, with --report-json, the full counters. docs/stb.md.
 * Chip mode (--chip-otp / --chip-socket): the box of the replaceable CAS
 * (docs/replaceable-cas.md): CWs live in the secure chip (stb/chip.h), the
 * client is the signed module the loader (client/loader.h) runs, and with
 * --ota newer modules from the stream's carousel are installed while it
 * plays. --smartcard with a chip: the card is the client and the module only
 * sets the chip's vendor, so a card paired with this chip (PAIR EMM,
 * docs/smartcard.md) has its CW blocks opened by the chip ladder.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include "client/cardless.h"
#include "cas/client.h"
#include "cas/entitlement.h"
#include "client/smartcard.h"
#include "cipher/cipher.h"
#include "cli/cli.h"
#include "headend/ota.h"
#include "kms/otp.h"
#include "lib/log.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/overlay.h"
#include "stb/pvr_box.h"
#include "client/loader.h"
#include "stb/stb.h"
#include "stb/ui.h"
#include "ts/tsio.h"

#define STB_CLI_CHUNK_PKTS 512
/* --overlay-snapshot keeps the descrambled stream for the decoder up to this */
#define STB_OVERLAY_TEE_MAX_BYTES (2ull << 30)
#define STB_OVERLAY_TEE_NAME ".stb-descrambled.ts"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

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
		"                     [--overlay-snapshot DIR [--osd-json FILE]] [--ui-states SCRIPT] [--record FILE]\n"
		"       castellan stb --playback FILE --output URI (--card FILE | a chip)\n\n"
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
		"  --ui-states SCRIPT     the box's screen states on the stream clock, e.g.\n"
		"                         0:live,2:menu,4:epg,6:settings,8:standby (seconds; also not_entitled);\n"
		"                         fingerprints and messages stay on top in every state (docs/stb.md)\n"
		"  --record FILE          also record the descrambled services for this box only (chip or\n"
		"                         --card key; copy_never services are left out; docs/stb.md)\n"
		"  --playback FILE        play a recording of this box to --output (another box's: refused)\n"
		"  --log-level L          error | warn | info (default) | debug\n");
}

struct stb_cli {
	const char *input, *output, *entitlement, *cw_hex, *algo, *report_json, *card, *state;
	const char *overlay_dir, *osd_json; /* --overlay-snapshot, --osd-json */
	struct ui_script ui;       /* --ui-states (stb/ui.h) */
	const char *record, *playback;     /* stb/pvr_box.h */
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
		} else if (strcmp(a, "--record") == 0 && has_val) {
			o->record = argv[++i];
		} else if (strcmp(a, "--playback") == 0 && has_val) {
			o->playback = argv[++i];
		} else if (strcmp(a, "--osd-json") == 0 && has_val) {
			o->osd_json = argv[++i];
		} else if (strcmp(a, "--ui-states") == 0 && has_val) {
			if (ui_script_parse(argv[++i], &o->ui) != 0) {
				fprintf(stderr, "stb: bad --ui-states '%s' (S:STATE,... in increasing seconds)\n", argv[i]);
				return 2;
			}
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
	if ((!o->input == !o->playback) || !o->output || (o->playback && o->record)) {
		fprintf(stderr, "stb: --output and one of --input or --playback are required\n");
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

/* Build the client; fills cfg's card facts. 0 or an exit status. */
static int make_client(const struct stb_cli *o, struct cas_client *client, struct stb_config *cfg)
{
	int r;

	if (o->cw_hex) {
		enum cw_alg alg = CW_ALG_CSA2;
		uint8_t cw[CW_MAX_BYTES];
		size_t klen;

		if (o->algo && cw_alg_parse(o->algo, &alg) != 0) {
			fprintf(stderr, "stb: --algo must be csa2 or cissa\n");
			return 2;
		}
		klen = cw_alg_key_bytes(alg);
		if (strlen(o->cw_hex) != 2 * klen || hex_decode(o->cw_hex, cw, klen) != 0) {
			fprintf(stderr, "stb: --cw must be %zu hex digits for %s\n", 2 * klen, cw_alg_name(alg));
			secret_wipe(cw, sizeof(cw));
			return 2;
		}
		r = stb_fixed_cw_client_new(alg, cw, klen, client);
		secret_wipe(cw, sizeof(cw));
		if (r != 0) {
			fprintf(stderr, "stb: %s\n", err_str(r));
			return 1;
		}
		return 0;
	}
	if (o->smartcard) {
		r = smartcard_client_new_pcsc(o->reader, client);
		if (r != 0) {
			fprintf(stderr, "stb: smartcard%s%s: %s\n", o->reader ? " in " : "", o->reader ? o->reader : "",
				err_str(r));
			return 1;
		}
		return 0;
	}
	if (o->card) {
		r = cardless_client_new_card(o->card, o->state, client);
		if (r != 0) {
			fprintf(stderr, "stb: card %s%s%s: %s\n", o->card, o->state ? ", state " : "",
				o->state ? o->state : "", err_str(r));
			return 1;
		}
		return 0;
	}
	{
		struct entitlement *e = calloc(1, sizeof(*e));

		if (!e)
			return 1;
		r = entitlement_load(o->entitlement, e);
		if (r == 0)
			r = cardless_client_from(e, client);
		if (r == 0) {
			cfg->have_card_packages = true;
			cfg->card_packages = e->packages;
			LOG_INFO("stb", "card %llu, packages %08X, CA_system_id 0x%04X",
				(unsigned long long)e->card_serial, (unsigned)e->packages, e->ca_system_id);
		}
		entitlement_wipe(e);
		free(e);
		if (r != 0) {
			fprintf(stderr, "stb: entitlement %s: %s\n", o->entitlement, err_str(r));
			return 1;
		}
	}
	return 0;
}

/* Chip mode: the chip's two channels, the loader, the first module. */
struct stb_chip {
	struct chip_link *ctl, *host;
	pid_t pid;           /* spawned chip, 0 if connected */
	struct loader *ld;
	struct ota_rx *ota;
	uint64_t installs;
};

static int chip_setup(const struct stb_cli *o, struct stb_chip *c)
{
	struct module_manifest m;
	int r;

	if (o->chip_otp) {
		struct otp_image img;
		struct chip_otp otp;

		if ((r = otp_read_file(o->chip_otp, &img)) != 0) {
			fprintf(stderr, "stb: OTP %s: %s\n", o->chip_otp, err_str(r));
			return 1;
		}
		memset(&otp, 0, sizeof(otp));
		otp.chip_id = img.chip_id;
		memcpy(otp.root, img.root_key, sizeof(otp.root));
		memcpy(otp.trust_root_hash, img.trust_root_hash, sizeof(otp.trust_root_hash));
		otp_image_wipe(&img);
		r = chip_spawn(&otp, &c->ctl, &c->host, &c->pid);
		chip_otp_wipe(&otp);
	} else if ((r = chip_link_connect(o->chip_socket, &c->host)) == 0) {
		r = chip_link_connect(o->chip_control, &c->ctl);
	}
	if (r != 0) {
		fprintf(stderr, "stb: chip: %s\n", err_str(r));
		return 1;
	}
	if (mkdir(o->module_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "stb: --module-dir %s: %s\n", o->module_dir, strerror(errno));
		return 1;
	}
	if ((r = loader_open(o->module_dir, c->ctl, NULL, NULL, &c->ld)) != 0) {
		fprintf(stderr, "stb: loader %s: %s\n", o->module_dir, err_str(r));
		return 1;
	}
	if (o->module) {
		uint8_t *mod = NULL;
		size_t len = 0;

		if ((r = file_read_all(o->module, MODULE_MAX_BYTES, &mod, &len)) == 0)
			r = loader_install(c->ld, mod, len);
		free(mod);
	} else {
		r = loader_boot(c->ld, o->boot_vendor);
	}
	if (r != 0 || loader_active(c->ld, &m) != 0) {
		fprintf(stderr, "stb: module %s refused by the loader: %s\n", o->module ? o->module : "(stored)",
			err_str(r ? r : CE_NOT_FOUND));
		return 1;
	}
	fprintf(stderr, "stb: loader runs module vendor 0x%08x version %u (rollback %u)\n", m.vendor_id, m.version,
		m.rollback);
	if (o->ota && (r = ota_rx_new(&c->ota)) != 0)
		return 1;
	return 0;
}

static void chip_teardown(struct stb_chip *c)
{
	ota_rx_free(c->ota);
	loader_free(c->ld);
	chip_link_free(c->ctl);
	chip_link_free(c->host);
	if (c->pid > 0)
		(void)chip_wait(c->pid);
}

/* --ota: a module completed in the carousel -> the loader; a newer one
 * that installs becomes the client at once. Refusals are reported, the
 * running module stays. 0 or CE_NOMEM/CE_ARG (the box cannot go on). */
static int ota_poll(struct stb_chip *c, struct stb *box, const uint8_t *pkts, size_t n, uint64_t at)
{
	struct module_manifest cur, m;
	struct module_view v;
	uint8_t *mod = NULL;
	size_t len = 0;
	uint32_t vid = 0;
	int r;

	if ((r = ota_rx_feed(c->ota, pkts, n)) != 0)
		return r;
	if (ota_rx_take(c->ota, &mod, &len, &vid) != 0)
		return 0;
	if (module_parse(mod, len, &v) == 0 && loader_active(c->ld, &cur) == 0 && cur.vendor_id == v.m.vendor_id &&
	    cur.version == v.m.version) {
		free(mod);
		return 0; /* the module already running */
	}
	r = loader_install(c->ld, mod, len);
	free(mod);
	if (r != 0) {
		fprintf(stderr, "stb: OTA module of vendor 0x%08x refused by the loader at packet %llu: %s\n", vid,
			(unsigned long long)at, err_str(r));
		return 0;
	}
	if ((r = stb_set_client(box, loader_client(c->ld))) != 0)
		return r;
	c->installs++;
	if (loader_active(c->ld, &m) == 0)
		fprintf(stderr, "stb: OTA module vendor 0x%08x version %u installed at packet %llu; client switched\n",
			m.vendor_id, m.version, (unsigned long long)at);
	return 0;
}

/* --overlay-snapshot: the items of --osd-json, and the descrambled stream
 * kept in DIR for the decoder (removed at the end). */
struct stb_overlay {
	struct osd_list extra;
	char tee_path[4096];
	FILE *tee;
	uint64_t tee_bytes;
	bool tee_full;
};

static int overlay_setup(const struct stb_cli *o, struct stb_overlay *ov)
{
	uint8_t *doc = NULL;
	size_t len = 0;
	long bad = -1;
	int r, n;

	if (!o->overlay_dir)
		return 0;
	if (o->osd_json) {
		if ((r = file_read_all(o->osd_json, OSD_JSON_MAX_BYTES, &doc, &len)) != 0) {
			fprintf(stderr, "stb: --osd-json %s: %s\n", o->osd_json, err_str(r));
			return 2;
		}
		r = osd_list_from_json(&ov->extra, (const char *)doc, len, &bad);
		free(doc);
		if (r != 0) {
			if (bad >= 0)
				fprintf(stderr, "stb: --osd-json %s: item %ld: %s\n", o->osd_json, bad, err_str(r));
			else
				fprintf(stderr, "stb: --osd-json %s: %s\n", o->osd_json, err_str(r));
			return 2;
		}
	}
	if (mkdir(o->overlay_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "stb: --overlay-snapshot %s: %s\n", o->overlay_dir, strerror(errno));
		return 1;
	}
	n = snprintf(ov->tee_path, sizeof(ov->tee_path), "%s/%s", o->overlay_dir, STB_OVERLAY_TEE_NAME);
	if (n < 0 || (size_t)n >= sizeof(ov->tee_path) || !(ov->tee = fopen(ov->tee_path, "wb"))) {
		fprintf(stderr, "stb: --overlay-snapshot %s: cannot write %s\n", o->overlay_dir, STB_OVERLAY_TEE_NAME);
		ov->tee_path[0] = '\0';
		return 1;
	}
	return 0;
}

static int overlay_tee(struct stb_overlay *ov, const uint8_t *pkts, size_t n)
{
	size_t bytes = n * TS_PACKET_BYTES;

	if (!ov->tee || ov->tee_full)
		return 0;
	if (ov->tee_bytes + bytes > STB_OVERLAY_TEE_MAX_BYTES) {
		ov->tee_full = true;
		return 0;
	}
	if (fwrite(pkts, 1, bytes, ov->tee) != bytes)
		return CE_IO;
	ov->tee_bytes += bytes;
	return 0;
}

static void overlay_cleanup(struct stb_overlay *ov)
{
	if (ov->tee)
		(void)fclose(ov->tee);
	ov->tee = NULL;
	if (ov->tee_path[0])
		(void)unlink(ov->tee_path);
	ov->tee_path[0] = '\0';
	osd_list_cleanup(&ov->extra);
}

/* The box's own OSD items (the "osd" array of its report JSON; items it
 * cannot draw are counted and skipped) and --osd-json's, drawn on the
 * descrambled stream's frames. 0 or 1. */
static int overlay_finish(const struct stb_cli *o, struct stb_overlay *ov, const char *json)
{
	struct overlay_result *res = calloc(1, sizeof(*res));
	struct overlay_opts opts = { 0 };
	struct ui_snapshot ui = { 0 };
	struct osd_list l;
	size_t skipped = 0;
	int r = CE_NOMEM;

	osd_list_init(&l);
	if (!res)
		goto out;
	r = fclose(ov->tee) == 0 ? 0 : CE_IO;
	ov->tee = NULL;
	if (r != 0) {
		fprintf(stderr, "stb: overlay: %s: %s\n", ov->tee_path, err_str(r));
		goto out;
	}
	if ((r = osd_list_from_json_skip(&l, json, strlen(json), &skipped)) != 0) {
		fprintf(stderr, "stb: overlay: the report's osd items: %s\n", err_str(r));
		goto out;
	}
	if (skipped)
		fprintf(stderr, "stb: overlay: %zu of the box's OSD items not drawable (bad field), skipped\n", skipped);
	for (size_t i = 0; i < ov->extra.n && r == 0; i++)
		r = osd_list_add(&l, &ov->extra.v[i]);
	if (r == 0 && (r = ui_snapshot_init(&ui, &o->ui, &l, &opts)) == 0) /* the box's states under the items */
		r = overlay_snapshot(ov->tee_path, &l, o->overlay_dir, &opts, res);
	if (r != 0) {
		fprintf(stderr, "stb: overlay snapshot %s: %s\n", o->overlay_dir, err_str(r));
		goto out;
	}
	fprintf(stderr, "stb: overlay snapshot: %u PNG in %s, %zu OSD items%s\n", res->pngs, o->overlay_dir, l.n,
		ov->tee_full ? " (only the first 2 GiB of the stream decoded)" : "");
	for (size_t i = 0; i < res->nservices; i++) {
		const struct overlay_service_result *s = &res->svc[i];

		if (!s->has_video)
			fprintf(stderr, "stb: overlay service %u: no video stream\n", s->service_id);
		else if (s->frames == 0)
			fprintf(stderr, "stb: overlay service %u: no decodable video (still scrambled?); %u PNG of its items "
				"on the black not-entitled screen\n", s->service_id, s->pngs);
		else
			fprintf(stderr, "stb: overlay service %u: %llu frames decoded, %u PNG, %u items drawn, "
				"%u not shown before the video ended\n", s->service_id, (unsigned long long)s->frames,
				s->pngs, s->items_drawn, s->items_missed);
	}
out:
	ui_snapshot_cleanup(&ui);
	osd_list_cleanup(&l);
	free(res);
	return r == 0 ? 0 : 1;
}

int cmd_stb(int argc, char **argv)
{
	struct stb_cli o = { 0 };
	struct stb_config cfg = { 0 };
	struct cas_client client = { 0 };
	struct stb *box = NULL;
	struct ts_in *in = NULL;
	struct ts_out *out = NULL;
	struct stb_report *rep = NULL;
	struct ts_io_stats ist;
	struct stb_chip chip = { 0 };
	struct stb_overlay ov = { 0 };
	struct pvr_box *rec = NULL;
	bool chip_mode;
	uint64_t fed = 0;
	uint8_t *buf = NULL;
	int rc = 1, r;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	if ((rc = parse_args(argc, argv, &o)) != 0) {
		if (rc == 2)
			usage(stderr);
		return rc;
	}
	osd_list_init(&ov.extra);
	if ((rc = overlay_setup(&o, &ov)) != 0) {
		if (rc == 2)
			usage(stderr);
		goto out;
	}
	rc = 1;
	chip_mode = o.chip_otp || o.chip_socket;
	if (chip_mode) {
		if (chip_setup(&o, &chip) != 0)
			goto out;
		cfg.client = loader_client(chip.ld);
		cfg.chip = chip.host;
		if (o.smartcard) {
			/* the card is the client; the module only sets the chip's vendor (K_v) */
			if ((r = make_client(&o, &client, &cfg)) != 0) {
				rc = r;
				goto out;
			}
			cfg.client = &client;
		}
		cfg.keep_all_ecms = o.ota;
	} else {
		if ((r = make_client(&o, &client, &cfg)) != 0) {
			rc = r;
			goto out;
		}
		cfg.client = &client;
	}
	if (o.playback) {
		rc = pvr_box_playback(o.playback, chip.host, o.card, o.output);
		goto out;
	}
	if (o.record && pvr_box_record(o.record, chip.host, o.card, o.service_id, &rec) != 0)
		goto out;
	cfg.one_service = o.one_service;
	cfg.service_id = o.service_id;
	cfg.csa2_reduce = !o.no_reduce;
	cfg.ui = &o.ui;
	buf = malloc((size_t)STB_CLI_CHUNK_PKTS * TS_PACKET_BYTES);
	rep = calloc(1, sizeof(*rep));
	if (!buf || !rep)
		goto out;
	if ((r = stb_new(&cfg, &box)) != 0) {
		fprintf(stderr, "stb: %s\n", err_str(r));
		goto out;
	}
	if ((r = ts_in_open(o.input, &in)) != 0) {
		fprintf(stderr, "stb: input %s: %s\n", o.input, err_str(r));
		goto out;
	}
	if ((r = ts_out_open(o.output, &out)) != 0) {
		fprintf(stderr, "stb: output %s: %s\n", o.output, err_str(r));
		goto out;
	}
	ts_in_set_timeout_ms(in, 500);
	g_stop = 0;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	LOG_INFO("stb", "client %s, CA_system_id 0x%04X, %s -> %s", cfg.client->ops->name,
		cfg.client->ops->ca_system_id(cfg.client->self), o.input, o.output);
	while (!g_stop) {
		size_t n = 0;

		r = ts_in_read(in, buf, STB_CLI_CHUNK_PKTS, &n);
		if (r == CE_TIMEOUT)
			continue;
		if (r != 0) {
			fprintf(stderr, "stb: read %s: %s\n", o.input, err_str(r));
			goto out;
		}
		if (n == 0)
			break;
		if ((r = stb_feed(box, buf, n, buf)) != 0) {
			fprintf(stderr, "stb: %s\n", err_str(r));
			goto out;
		}
		fed += n;
		if (rec && pvr_box_feed(rec, box, buf, n) != 0)
			goto out;
		/* the carousel is clear: its packets are the same after stb_feed */
		if (chip.ota && (r = ota_poll(&chip, box, buf, n, fed)) != 0) {
			fprintf(stderr, "stb: %s\n", err_str(r));
			goto out;
		}
		if ((r = ts_out_write(out, buf, n)) != 0) {
			fprintf(stderr, "stb: write %s: %s\n", o.output, err_str(r));
			goto out;
		}
		if ((r = overlay_tee(&ov, buf, n)) != 0) {
			fprintf(stderr, "stb: overlay: write %s: %s\n", ov.tee_path, err_str(r));
			goto out;
		}
	}
	r = ts_out_close(out);
	out = NULL;
	if (r != 0) {
		fprintf(stderr, "stb: close %s: %s\n", o.output, err_str(r));
		goto out;
	}
	if (rec && (r = pvr_box_finish(rec), rec = NULL, r != 0))
		goto out;
	if (stb_report(box, rep) != 0)
		goto out;
	ts_in_stats(in, &ist);
	fprintf(stderr, "stb: %llu packets (%llu invalid, %llu resyncs, %llu section errors); "
		"EMMs %llu seen, %llu accepted, %llu repeats, %llu not for this card, %llu refused\n",
		(unsigned long long)rep->packets, (unsigned long long)rep->bad_packets,
		(unsigned long long)ist.resyncs, (unsigned long long)rep->section_errors,
		(unsigned long long)rep->emm_seen, (unsigned long long)rep->emm_accepted,
		(unsigned long long)rep->emm_repeats, (unsigned long long)rep->emm_not_addressed,
		(unsigned long long)rep->emm_refused);
	if (rep->nservices == 0)
		fprintf(stderr, "stb: no service found (no PAT/PMT%s)\n", o.one_service ? " for --service" : "");
	for (size_t i = 0; i < rep->nservices; i++) {
		char line[512];

		if (stb_report_line(rep, &rep->svc[i], line, sizeof(line)) == 0 || line[0])
			fprintf(stderr, "%s\n", line);
	}
	/* one report JSON for --report-json and the overlay's "osd" items */
	if (o.report_json || ov.tee) {
		char *json = NULL;

		if ((r = stb_report_json_osd(rep, box, &json)) != 0 ||
		    (o.report_json && (r = file_write_atomic(o.report_json, json, strlen(json), 0644)) != 0)) {
			fprintf(stderr, "stb: report %s: %s\n", o.report_json ? o.report_json : "(overlay)", err_str(r));
			free(json);
			goto out;
		}
		r = ov.tee ? overlay_finish(&o, &ov, json) : 0;
		free(json);
		if (r != 0)
			goto out;
	}
	rc = 0;
out:
	pvr_box_abort(rec);
	overlay_cleanup(&ov);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (out)
		(void)ts_out_close(out);
	ts_in_close(in);
	stb_free(box);
	if (client.ops)
		cas_client_free(&client);
	chip_teardown(&chip);
	free(buf);
	free(rep);
	return rc;
}
