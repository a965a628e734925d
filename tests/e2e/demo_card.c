/*
 * demo_card.c - `castellan-demo card`: the box with a smartcard, end to
 * end on this machine (docs/smartcard.md "Demo").
 *
 * A head-end keystore; the ECMG (`castellan ecmg`); the two-service stream
 * scrambled over SimulCrypt (`castellan scramble`, service 1 on package 1,
 * service 2 on package 2); a card issued and programmed with the real
 * commands (`castellan card issue`, `card program --eeprom`); an entitlement
 * EMM for package 1 sent to the card; then the card served to pcscd through
 * the vpcd reader (`castellan card serve`) and the box (stb library +
 * smartcard client over libpcsclite) descrambling the stream. Succeeds only
 * if service 1 comes back bit-identical and service 2 stays scrambled,
 * refused as not entitled.
 *
 * Without pcscd or the vsmartcard vpcd driver (or without root to start a
 * pcscd of our own) it says so and runs the same card in-process;
 * --no-pcsc forces that. The summary says which ("pcsc", "why").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "card/applet.h"
#include "card/eeprom.h"
#include "card/pcscd_private.h"
#include "card/vpcd.h"
#include "cas/emm.h"
#include "cas/keys.h"
#include "client/smartcard.h"
#include "demo.h"
#include "lib/err.h"
#include "lib/util.h"
#include "stb/stb.h"

#define DC_CASID 0x4ADC
#define DC_SERIAL 2100000001ull
#define DC_PCSC_WAIT_MS 30000u

/* The head-end's entitlement EMM for package 1, straight into the card file
 * (what the EMM carousel would bring over the air). */
static int grant(const char *ks_path, const char *pass, const char *eeprom)
{
	struct keystore *ks = NULL;
	struct emm_issuer *is = NULL;
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *a = calloc(1, sizeof(*a));
	struct card_transport t;
	uint64_t now = now_wall_ms();
	struct emm_grant g = { .packages = 0x1, .start_s = now / 1000u - 3600, .finish_s = now / 1000u + 30 * 86400 };
	uint8_t sec[EMM_MAX_SECTION], out[CARD_MAX_RESP];
	size_t len = 0, n = 0;
	uint16_t sw = 0;
	int r = CE_NOMEM;

	if (!a)
		return r;
	if ((r = keystore_load(ks_path, pass, &ks)) != 0 || (r = emm_issuer_new(ks, &is)) != 0 ||
	    (r = card_eeprom_file_init(&eef, eeprom, &ee)) != 0 || (r = card_applet_init(a, &ee)) != 0 ||
	    (r = emm_build_unique(is, DC_SERIAL, 1, &g, now, sec, sizeof(sec), &len)) != 0)
		goto out;
	card_local_transport(a, &t);
	if ((r = card_transceive(&t, CARD_INS_EMM, sec, len, out, sizeof(out), &n, &sw)) == 0)
		r = card_sw_to_err(sw);
out:
	card_applet_wipe(a);
	free(a);
	emm_issuer_free(is);
	keystore_free(ks);
	return r;
}

/* pcscd with a vpcd reader. As root: one of our own, in its own mount
 * namespace on its own socket and vpcd port (card/pcscd_private.h), shared
 * with nothing else on the machine. Otherwise the running system pcscd with
 * its reader "Virtual PCD" on the default port. 0, or why it can't. */
static int find_pcscd(struct e2e *e, struct pcscd_private *pd, uint16_t *port, const char **reader, char *why,
	size_t cap)
{
	char log[1024];
	int r;

	if (!pcscd_available()) {
		snprintf(why, cap, "pcscd or the vsmartcard vpcd driver is not installed "
				   "(apt-get install pcscd libpcsclite1 vsmartcard-vpcd, or tools/bootstrap.sh)");
		return CE_NOT_FOUND;
	}
	if (geteuid() != 0) {
		if (access(PCSCD_SYSTEM_SOCKET, F_OK) == 0) {
			*port = VPCD_DEFAULT_PORT;
			*reader = "Virtual PCD";
			return 0;
		}
		snprintf(why, cap, "pcscd is not running and starting one needs root (sudo pcscd)");
		return CE_STATE;
	}
	if ((r = pcscd_private_start(e->dir, "Castellan demo", e2e_path(e, "pcscd.log", log, sizeof(log)), 10000, pd)) != 0) {
		snprintf(why, cap, "cannot start a pcscd of our own (%s; see pcscd.log with --keep)", err_str(r));
		return r;
	}
	*port = pd->port;
	*reader = pd->reader;
	return 0;
}

/* The box: the whole file through the stb library with the card's client,
 * judged per service against the clear input; the report says why. */
static int run_box(struct e2e *e, struct cas_client *c, const struct e2e_ts *clear, const struct e2e_ts *scr, bool *ok)
{
	struct stb_config cfg = { .client = c, .csa2_reduce = true, .have_card_packages = true, .card_packages = 1 };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct e2e_ts box = { .buf = malloc(scr->n * TS_PACKET_BYTES + 1), .n = scr->n };
	struct e2e_svc svc[8];
	struct e2e_judge j[2];
	size_t nsvc = 0;
	struct stb *s = NULL;
	char line[512];
	bool refused = false;
	json_t *js = json_array();
	int r = CE_NOMEM;

	*ok = false;
	json_object_set_new(e->summary, "services", js);
	if (!rep || !box.buf || (r = stb_new(&cfg, &s)) != 0)
		goto out;
	for (size_t i = 0; i < scr->n; i += STB_BATCH_PKTS) {
		size_t n = scr->n - i < STB_BATCH_PKTS ? scr->n - i : STB_BATCH_PKTS;

		if ((r = stb_feed(s, scr->buf + i * TS_PACKET_BYTES, n, box.buf + i * TS_PACKET_BYTES)) != 0)
			goto out;
	}
	if ((r = stb_report(s, rep)) != 0)
		goto out;
	for (size_t i = 0; i < rep->nservices; i++) {
		const struct stb_service_report *sv = &rep->svc[i];

		if (stb_report_line(rep, sv, line, sizeof(line)) == 0)
			printf("    %s\n", line);
		if (sv->service_id == 102 && sv->state == STB_SVC_NOT_DESCRAMBLED && sv->last_refusal == CE_NOT_ENTITLED)
			refused = true;
	}
	if ((r = e2e_services(clear, 0, svc, 8, &nsvc)) != 0 || nsvc < 2)
		goto out;
	for (int k = 0; k < 2; k++) {
		if ((r = e2e_judge(clear, scr, &box, svc[k].pids, svc[k].npids, &j[k])) != 0)
			goto out;
		json_array_append_new(js, json_pack("{si so sb sb}", "program", svc[k].program, "judge",
			e2e_judge_json(&j[k]), "clear", e2e_judge_clear(&j[k]), "refused", e2e_judge_refused(&j[k])));
	}
	json_object_set_new(e->summary, "refused_not_entitled", json_boolean(refused));
	printf("    against the clear input: service %u %zu/%zu scrambled packets back bit-identical, service %u %zu/%zu "
	       "left scrambled, %zu wrong\n", svc[0].program, j[0].right, j[0].scrambled, svc[1].program, j[1].left,
		j[1].scrambled, j[0].wrong + j[1].wrong);
	*ok = e2e_judge_clear(&j[0]) && e2e_judge_refused(&j[1]) && refused;
out:
	stb_free(s);
	e2e_ts_free(&box);
	free(rep);
	return r;
}

int demo_card(struct e2e *e, const struct demo_args *a)
{
	char ks[1024], pf[1024], tf[1024], perso[1024], eeprom[1024], scr[1024], listen[32], port_s[16], serial[24];
	char why[256] = "", pass_hex[65];
	const char *reader = NULL;
	struct keystore *k = NULL;
	struct cas_client client;
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *ap = NULL;
	struct card_transport t, pcsc_t;
	struct pcscd_private pd;
	struct e2e_ts clear = { 0 }, ts = { 0 };
	uint16_t ecmg_port = 0, vpcd_port = 0;
	pid_t ecmg = 0, serve = 0;
	bool ok = false, have_client = false, pcsc = false;
	int r;

	memset(&client, 0, sizeof(client));
	memset(&pd, 0, sizeof(pd));
	printf("Castellan demo: a set-top box with a smartcard\n  input    %s\n  work dir %s\n", a->input, e->dir);
	e2e_path(e, "passphrase", pf, sizeof(pf));
	e2e_path(e, "transport", tf, sizeof(tf));
	e2e_path(e, "headend.keystore", ks, sizeof(ks));
	e2e_path(e, "card.perso", perso, sizeof(perso));
	e2e_path(e, "card.eeprom", eeprom, sizeof(eeprom));
	e2e_path(e, "scrambled.ts", scr, sizeof(scr));
	/* 1. head-end keystore; the card's transport key is half the passphrase */
	if (e2e_passphrase(e, "passphrase", pass_hex) != 0 ||
	    file_write_atomic(tf, (const uint8_t *)pass_hex + 32, 32, 0600) != 0 ||
	    keystore_generate(DC_CASID, 3600, &k) != 0 || keystore_save(k, ks, pass_hex) != 0) {
		fprintf(stderr, "castellan-demo card: cannot create the keystore\n");
		goto out;
	}
	printf("1. keystore %s (CA_system_id 0x%04X)\n", ks, DC_CASID);
	/* 2. ECMG, and the stream scrambled through it */
	if (e2e_free_port(&ecmg_port) != 0)
		goto out;
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", ecmg_port);
	{
		char *args[] = { "castellan", "ecmg", "--keystore", ks, "--passphrase-file", pf, "--listen", listen, NULL };

		ecmg = e2e_spawn(e, "ecmg.log", args, -1, -1);
	}
	if (e2e_wait_ready(ecmg, NULL, &ecmg_port, 1, 10000) != 0) {
		fprintf(stderr, "castellan-demo card: the ECMG did not start\n");
		e2e_show_log(e, "ecmg.log");
		goto out;
	}
	if (E2E_RUN(e, "scramble.log", "scramble", "--input", a->input, "--output", scr, "--service", "101:ac=00000001",
		    "--service", "102:ac=00000002", "--ecmg", listen, "--super-cas-id", "0x4ADC0001", "--cp-duration",
		    "4") != 0)
		goto out;
	e2e_stop(&ecmg, 5000);
	printf("2. scrambled over SimulCrypt: service 101 in package 1, 102 in package 2 -> %s\n", scr);
	/* 3. the card: issued by the head-end, programmed by the programming tool */
	snprintf(serial, sizeof(serial), "%llu", (unsigned long long)DC_SERIAL);
	if (E2E_RUN(e, "card.log", "card", "issue", "--keys", ks, "--passphrase-file", pf, "--serial", serial, "--out",
		    perso, "--transport-file", tf) != 0 ||
	    E2E_RUN(e, "card.log", "card", "program", perso, "--eeprom", eeprom, "--transport-file", tf) != 0)
		goto out;
	if ((r = grant(ks, pass_hex, eeprom)) != 0) {
		fprintf(stderr, "castellan-demo card: entitlement EMM refused by the card: %s\n", err_str(r));
		goto out;
	}
	printf("3. card %s issued, programmed (protected) and entitled to package 1 by EMM\n", serial);
	/* 4. the card behind pcscd, or in-process */
	if (a->no_pcsc) {
		snprintf(why, sizeof(why), "--no-pcsc");
	} else if (find_pcscd(e, &pd, &vpcd_port, &reader, why, sizeof(why)) == 0) {
		char *args[] = { "castellan", "card", "serve", "--eeprom", eeprom, "--port", port_s, NULL };

		snprintf(port_s, sizeof(port_s), "%u", vpcd_port);
		serve = e2e_spawn(e, "card-serve.log", args, -1, -1);
		/* a readiness wait, long enough for a loaded machine: pcscd's reader
		 * appears, `card serve` connects to it, the card is powered */
		if ((r = card_pcsc_open(reader, DC_PCSC_WAIT_MS, &pcsc_t)) != 0 ||
		    (r = smartcard_client_new(&pcsc_t, &client)) != 0) {
			snprintf(why, sizeof(why), "no card in PC/SC reader \"%s\": %s", reader, err_str(r));
			e2e_stop(&serve, 5000);
		} else {
			have_client = pcsc = true;
		}
	}
	json_object_set_new(e->summary, "pcsc", json_boolean(pcsc));
	json_object_set_new(e->summary, "why", pcsc ? json_null() : json_string(why));
	if (!have_client) {
		printf("   NOTE: not through PC/SC: %s.\n"
		       "   Running the same card in-process instead (no pcscd, no vpcd).\n", why);
		if (!(ap = calloc(1, sizeof(*ap))) || card_eeprom_file_init(&eef, eeprom, &ee) != 0 ||
		    card_applet_init(ap, &ee) != 0)
			goto out;
		card_local_transport(ap, &t);
		if ((r = smartcard_client_new(&t, &client)) != 0) {
			fprintf(stderr, "castellan-demo card: card: %s\n", err_str(r));
			goto out;
		}
		have_client = true;
	}
	printf("4. card %s\n", pcsc ? "served to pcscd by `castellan card serve`; the box talks to it through libpcsclite"
				    : "in this process");
	if (pcsc)
		printf("   reader \"%s\" (vpcd port %u); by hand:\n"
		       "     castellan card serve --eeprom %s --port %u &\n"
		       "     castellan stb --smartcard \"%s\" --input %s --output out.ts\n",
			reader, vpcd_port, eeprom, vpcd_port, reader, scr);
	/* 5. the box */
	if (e2e_ts_load(scr, &ts) != 0 || e2e_ts_load(a->input, &clear) != 0) {
		fprintf(stderr, "castellan-demo card: cannot read %s or %s\n", scr, a->input);
		goto out;
	}
	printf("5. the box:\n");
	if ((r = run_box(e, &client, &clear, &ts, &ok)) != 0) {
		fprintf(stderr, "castellan-demo card: box: %s\n", err_str(r));
		ok = false;
		goto out;
	}
	printf("%s: service 101 %s, service 102 refused (not entitled) %s\n", ok ? "PASS" : "FAIL",
		ok ? "descrambled with the card" : "?", pcsc ? "through pcscd" : "(card in-process)");
out:
	if (have_client)
		cas_client_free(&client);
	if (ap) {
		card_applet_wipe(ap);
		free(ap);
	}
	e2e_stop(&serve, 5000);
	e2e_stop(&ecmg, 5000);
	pcscd_private_stop(&pd);
	keystore_free(k);
	e2e_ts_free(&ts);
	e2e_ts_free(&clear);
	secret_wipe(pass_hex, sizeof(pass_hex));
	if (!ok)
		fprintf(stderr, "castellan-demo card: failed (logs in %s)\n", e->dir);
	return ok ? 0 : 1;
}
