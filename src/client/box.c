/*
 * box.c - the reference set-top box as one run (box.h): client, chip and
 * loader, the read/descramble/write loop, OTA, report.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cas/client.h"
#include "cas/entitlement.h"
#include "cas/module.h"
#include "client/box.h"
#include "client/cardless.h"
#include "client/loader.h"
#include "client/smartcard.h"
#include "lib/log.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/overlay_tee.h"
#include "stb/pvr_box.h"
#include "stb/stb.h"
#include "ts/ota.h"
#include "ts/ts.h"
#include "ts/tsio.h"

#define BOX_CHUNK_PKTS 512
#define BOX_READ_TIMEOUT_MS 500

/* Build the client; fills scfg's card facts. 0 or CE_* (said). */
static int make_client(const struct box_config *o, struct cas_client *client, struct stb_config *scfg)
{
	struct entitlement *e;
	int r;

	if (o->fixed_cw) {
		if ((r = stb_fixed_cw_client_new(o->alg, o->cw, o->cw_len, client)) != 0)
			fprintf(stderr, "stb: %s\n", err_str(r));
		return r;
	}
	if (o->smartcard) {
		if ((r = smartcard_client_new_pcsc(o->reader, client)) != 0)
			fprintf(stderr, "stb: smartcard%s%s: %s\n", o->reader ? " in " : "", o->reader ? o->reader : "",
				err_str(r));
		return r;
	}
	if (o->card) {
		if ((r = cardless_client_new_card(o->card, o->state, client)) != 0)
			fprintf(stderr, "stb: card %s%s%s: %s\n", o->card, o->state ? ", state " : "",
				o->state ? o->state : "", err_str(r));
		return r;
	}
	if (!(e = calloc(1, sizeof(*e))))
		return CE_NOMEM;
	r = entitlement_load(o->entitlement, e);
	if (r == 0)
		r = cardless_client_from(e, client);
	if (r == 0) {
		scfg->have_card_packages = true;
		scfg->card_packages = e->packages;
		LOG_INFO("stb", "card %llu, packages %08X, CA_system_id 0x%04X", (unsigned long long)e->card_serial,
			(unsigned)e->packages, e->ca_system_id);
	}
	entitlement_wipe(e);
	free(e);
	if (r != 0)
		fprintf(stderr, "stb: entitlement %s: %s\n", o->entitlement, err_str(r));
	return r;
}

/* Chip mode: the chip's two channels, the loader, the OTA collector. */
struct box_chip {
	struct chip_link *ctl, *host;
	pid_t pid;           /* spawned chip, 0 if connected */
	struct loader *ld;
	struct ota_rx *ota;
	uint64_t installs;
};

static int chip_setup(const struct box_config *o, struct box_chip *c)
{
	struct module_manifest m;
	int r;

	if (o->otp) {
		r = chip_spawn(o->otp, &c->ctl, &c->host, &c->pid);
		chip_otp_wipe(o->otp); /* K_otp lives in the chip's process only */
	} else if ((r = chip_link_connect(o->chip_socket, &c->host)) == 0)
		r = chip_link_connect(o->chip_control, &c->ctl);
	if (r != 0) {
		fprintf(stderr, "stb: chip: %s\n", err_str(r));
		return r;
	}
	if (mkdir(o->module_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "stb: --module-dir %s: %s\n", o->module_dir, strerror(errno));
		return CE_IO;
	}
	if ((r = loader_open(o->module_dir, c->ctl, NULL, NULL, &c->ld)) != 0) {
		fprintf(stderr, "stb: loader %s: %s\n", o->module_dir, err_str(r));
		return r;
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
		r = r ? r : CE_NOT_FOUND;
		fprintf(stderr, "stb: module %s refused by the loader: %s\n", o->module ? o->module : "(stored)",
			err_str(r));
		return r;
	}
	fprintf(stderr, "stb: loader runs module vendor 0x%08x version %u (rollback %u)\n", m.vendor_id, m.version,
		m.rollback);
	if (o->ota && (r = ota_rx_new(&c->ota)) != 0)
		return r;
	return 0;
}

static void chip_teardown(struct box_chip *c)
{
	ota_rx_free(c->ota);
	loader_free(c->ld);
	chip_link_free(c->ctl);
	chip_link_free(c->host);
	if (c->pid > 0)
		(void)chip_wait(c->pid);
}

/* ota: a module completed in the carousel -> the loader; a newer one
 * that installs becomes the client at once. Refusals are reported, the
 * running module stays. 0 or CE_NOMEM/CE_ARG (the box cannot go on). */
static int ota_poll(struct box_chip *c, struct stb *box, const uint8_t *pkts, size_t n, uint64_t at)
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

/* The read -> descramble -> (OTA) -> write -> tee loop, until the input
 * ends or *stop. 0 or CE_* (said). */
static int play(const struct box_config *o, struct stb *box, struct box_chip *chip, struct pvr_box *rec,
	struct ts_in *in, struct ts_out *out, uint8_t *buf)
{
	uint64_t fed = 0;
	int r;

	while (!(o->stop && *o->stop)) {
		size_t n = 0;

		r = ts_in_read(in, buf, BOX_CHUNK_PKTS, &n);
		if (r == CE_TIMEOUT)
			continue;
		if (r != 0) {
			fprintf(stderr, "stb: read %s: %s\n", o->input, err_str(r));
			return r;
		}
		if (n == 0)
			break;
		if ((r = stb_feed(box, buf, n, buf)) != 0) {
			fprintf(stderr, "stb: %s\n", err_str(r));
			return r;
		}
		fed += n;
		if (rec && (r = pvr_box_feed(rec, box, buf, n)) != 0)
			return r; /* said */
		/* the carousel is clear: its packets are the same after stb_feed */
		if (chip->ota && (r = ota_poll(chip, box, buf, n, fed)) != 0) {
			fprintf(stderr, "stb: %s\n", err_str(r));
			return r;
		}
		if ((r = ts_out_write(out, buf, n)) != 0) {
			fprintf(stderr, "stb: write %s: %s\n", o->output, err_str(r));
			return r;
		}
		if (o->overlay && (r = overlay_tee_write(o->overlay, buf, n)) != 0)
			return r;
	}
	return 0;
}

/* The end: counters and one line per service on stderr, the report JSON
 * (--report-json and the overlay's "osd" items). 0 or CE_* (said). */
static int report(const struct box_config *o, struct stb *box, struct ts_in *in)
{
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct ts_io_stats ist;
	char *json = NULL;
	int r = CE_NOMEM;

	if (!rep || (r = stb_report(box, rep)) != 0)
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
		fprintf(stderr, "stb: no service found (no PAT/PMT%s)\n", o->one_service ? " for --service" : "");
	for (size_t i = 0; i < rep->nservices; i++) {
		char line[512];

		if (stb_report_line(rep, &rep->svc[i], line, sizeof(line)) == 0 || line[0])
			fprintf(stderr, "%s\n", line);
	}
	r = 0;
	if (!o->report_json && !o->overlay)
		goto out;
	if ((r = stb_report_json_osd(rep, box, &json)) != 0 ||
	    (o->report_json && (r = file_write_atomic(o->report_json, json, strlen(json), 0644)) != 0)) {
		fprintf(stderr, "stb: report %s: %s\n", o->report_json ? o->report_json : "(overlay)", err_str(r));
		goto out;
	}
	if (o->overlay)
		r = overlay_tee_finish(o->overlay, json, o->ui);
out:
	free(json);
	free(rep);
	return r;
}

int box_run(const struct box_config *o)
{
	struct stb_config scfg = { 0 };
	struct cas_client client = { 0 };
	struct box_chip chip = { 0 };
	struct stb *box = NULL;
	struct ts_in *in = NULL;
	struct ts_out *out = NULL;
	struct pvr_box *rec = NULL;
	uint8_t *buf = NULL;
	int r;

	if (o->otp || o->chip_socket) {
		if ((r = chip_setup(o, &chip)) != 0)
			goto out;
		scfg.client = loader_client(chip.ld);
		scfg.chip = chip.host;
		if (o->smartcard) {
			/* the card is the client; the module only sets the chip's vendor (K_v) */
			if ((r = make_client(o, &client, &scfg)) != 0)
				goto out;
			scfg.client = &client;
		}
		scfg.keep_all_ecms = o->ota;
	} else {
		if ((r = make_client(o, &client, &scfg)) != 0)
			goto out;
		scfg.client = &client;
	}
	if (o->playback) { /* an exit status: 0 or 1, said */
		r = pvr_box_playback(o->playback, chip.host, o->card, o->output) == 0 ? 0 : CE_IO;
		goto out;
	}
	if (o->record && (r = pvr_box_record(o->record, chip.host, o->card, o->service_id, &rec)) != 0) {
		r = r < 0 ? r : CE_IO; /* said */
		goto out;
	}
	scfg.one_service = o->one_service;
	scfg.service_id = o->service_id;
	scfg.csa2_reduce = o->csa2_reduce;
	scfg.ui = o->ui;
	r = CE_NOMEM;
	if (!(buf = malloc((size_t)BOX_CHUNK_PKTS * TS_PACKET_BYTES)))
		goto out;
	if ((r = stb_new(&scfg, &box)) != 0) {
		fprintf(stderr, "stb: %s\n", err_str(r));
		goto out;
	}
	if ((r = ts_in_open(o->input, &in)) != 0) {
		fprintf(stderr, "stb: input %s: %s\n", o->input, err_str(r));
		goto out;
	}
	if ((r = ts_out_open(o->output, &out)) != 0) {
		fprintf(stderr, "stb: output %s: %s\n", o->output, err_str(r));
		goto out;
	}
	ts_in_set_timeout_ms(in, BOX_READ_TIMEOUT_MS);
	LOG_INFO("stb", "client %s, CA_system_id 0x%04X, %s -> %s", scfg.client->ops->name,
		scfg.client->ops->ca_system_id(scfg.client->self), o->input, o->output);
	if ((r = play(o, box, &chip, rec, in, out, buf)) != 0)
		goto out;
	r = ts_out_close(out);
	out = NULL;
	if (r != 0) {
		fprintf(stderr, "stb: close %s: %s\n", o->output, err_str(r));
		goto out;
	}
	if (rec) {
		r = pvr_box_finish(rec); /* frees it */
		rec = NULL;
		if (r != 0)
			goto out;
	}
	r = report(o, box, in);
out:
	pvr_box_abort(rec);
	if (out)
		(void)ts_out_close(out);
	ts_in_close(in);
	stb_free(box);
	if (client.ops)
		cas_client_free(&client);
	chip_teardown(&chip);
	free(buf);
	return r;
}
