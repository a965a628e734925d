/*
 * cmd_demo_card.c - `castellan demo-card`: the box with a smartcard, end to
 * end on this machine (docs/smartcard.md "Demo").
 *
 * Steps: a head-end keystore; the ECMG (`castellan ecmg`); the two-service
 * test stream scrambled over SimulCrypt (`castellan scramble`, service 1 on
 * package 1, service 2 on package 2); a card issued and programmed with the
 * real commands (`castellan card issue`, `card program --eeprom`); an
 * entitlement EMM for package 1 sent to the card; then the card served to
 * pcscd through the vpcd reader (`castellan card serve`) and the box
 * (stb library + smartcard client over libpcsclite) descrambling the
 * stream. Succeeds only if service 1 is descrambled and service 2 is
 * refused as not entitled.
 *
 * Without pcscd or the vsmartcard vpcd driver (or without root to start a
 * pcscd of our own) it says so and runs the same card in-process, so the
 * demo still shows the card's behaviour; --no-pcsc forces that.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "card/applet.h"
#include "card/eeprom.h"
#include "card/pcscd_private.h"
#include "client/smartcard.h"
#include "card/vpcd.h"
#include "cas/emm.h"
#include "cas/keys.h"
#include "cli/cli.h"
#include "cli/demo_util.h"
#include "lib/util.h"
#include "stb/stb.h"

#define DC_CASID 0x4ADC
#define DC_SERIAL 2100000001ull

struct dc {
	char self[4096];
	char dir[64];
	char input[4096];
	bool keep, no_pcsc;
	pid_t ecmg, serve;
	struct pcscd_private pcscd;
};

static void dc_path(const struct dc *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->dir, name);
}

/* Run our own binary with args, output to log_name in the work dir. */
static pid_t dc_spawn(const struct dc *d, char *const args[], const char *log_name)
{
	char log[256];
	pid_t pid;

	dc_path(d, log_name, log, sizeof(log));
	fflush(NULL); /* the child must not print our buffered output again */
	pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "a", stdout);

		if (!f || dup2(fileno(stdout), 2) < 0)
			_exit(127);
		execv(args[0][0] == '/' ? args[0] : d->self, args);
		_exit(127);
	}
	return pid;
}

static int dc_wait(pid_t pid)
{
	int st = 0;

	if (pid <= 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void dc_stop(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		usleep(100 * 1000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static void dc_show_log(const struct dc *d, const char *log_name)
{
	char log[256], line[512];
	FILE *f;

	dc_path(d, log_name, log, sizeof(log));
	if (!(f = fopen(log, "r")))
		return;
	fprintf(stderr, "--- %s ---\n", log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* The head-end's entitlement EMM for package 1, straight into the card file
 * (what the EMM carousel would bring over the air). */
static int dc_grant(const char *ks_path, const char *pass, const char *eeprom)
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
 * namespace on its own socket and vpcd port (card/pcscd_private.h), so
 * nothing else on the machine (another demo, a test, the system's pcscd)
 * shares it. Otherwise the running system pcscd with its reader "Virtual
 * PCD" on the default port. 0 and *port / *reader, or a message in why. */
static int dc_pcscd(struct dc *d, uint16_t *port, const char **reader, char *why, size_t cap)
{
	char log[256];
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
	dc_path(d, "pcscd.log", log, sizeof(log));
	if ((r = pcscd_private_start(d->dir, "Castellan demo", log, 10000, &d->pcscd)) != 0) {
		snprintf(why, cap, "cannot start a pcscd of our own (%s; see pcscd.log with --keep)", err_str(r));
		return r;
	}
	*port = d->pcscd.port;
	*reader = d->pcscd.reader;
	return 0;
}

/* The box's output judged against the clear input, PID by PID (the k-th
 * packet of a PID in the output is the k-th of that PID in the input):
 * a packet the scrambler scrambled is either back to the clear one (right),
 * still scrambled (left), or neither (garbage: a wrong key). A PID is "all
 * right" / "all left" when every scrambled packet on it was. */
struct dc_verdict {
	size_t right, left, garbage;
	size_t pids_all_right, pids_all_left;
};

static int dc_judge(const uint8_t *clear, size_t nclear, const uint8_t *scr, const uint8_t *box, size_t n,
	struct dc_verdict *v)
{
	size_t *in_cnt = calloc(TS_PID_MAX + 1, sizeof(size_t)), *out_cnt = calloc(TS_PID_MAX + 1, sizeof(size_t));
	size_t *r = calloc(TS_PID_MAX + 1, sizeof(size_t)), *l = calloc(TS_PID_MAX + 1, sizeof(size_t));
	size_t *g = calloc(TS_PID_MAX + 1, sizeof(size_t));
	const uint8_t **pos = calloc(nclear + 1, sizeof(*pos));
	size_t *first = calloc(TS_PID_MAX + 2, sizeof(size_t));
	int rc = CE_NOMEM;

	memset(v, 0, sizeof(*v));
	if (!in_cnt || !out_cnt || !r || !l || !g || !pos || !first)
		goto out;
	/* the clear input's packets grouped by PID, in order */
	for (size_t i = 0; i < nclear; i++)
		in_cnt[((clear[i * 188 + 1] & 0x1F) << 8) | clear[i * 188 + 2]]++;
	for (size_t p = 0, acc = 0; p <= TS_PID_MAX; p++) {
		first[p] = acc;
		acc += in_cnt[p];
	}
	for (size_t i = 0; i < nclear; i++) {
		unsigned pid = ((clear[i * 188 + 1] & 0x1F) << 8) | clear[i * 188 + 2];

		pos[first[pid] + out_cnt[pid]++] = clear + i * 188;
	}
	memset(out_cnt, 0, (TS_PID_MAX + 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		const uint8_t *o = box + i * 188, *sp = scr + i * 188;
		unsigned pid = ((o[1] & 0x1F) << 8) | o[2];
		size_t k = out_cnt[pid]++;

		if ((sp[3] >> 6) == 0)
			continue; /* not scrambled by the scrambler */
		if (k < in_cnt[pid] && memcmp(o, pos[first[pid] + k], 188) == 0)
			r[pid]++;
		else if (memcmp(o, sp, 188) == 0)
			l[pid]++;
		else
			g[pid]++;
	}
	for (size_t p = 0; p <= TS_PID_MAX; p++) {
		v->right += r[p];
		v->left += l[p];
		v->garbage += g[p];
		if (r[p] && !l[p] && !g[p])
			v->pids_all_right++;
		if (l[p] && !r[p] && !g[p])
			v->pids_all_left++;
	}
	rc = 0;
out:
	free(in_cnt);
	free(out_cnt);
	free(r);
	free(l);
	free(g);
	free(pos);
	free(first);
	return rc;
}

/* The box: the whole file through the stb library with the card's client;
 * the verdict comes from its output against the clear input (dc_judge),
 * the report lines only say why. */
static int dc_box(struct cas_client *c, const uint8_t *clear, size_t nclear, const uint8_t *ts, size_t npkts,
	bool *ok)
{
	struct stb_config cfg = { .client = c, .csa2_reduce = true, .have_card_packages = true, .card_packages = 1 };
	struct stb_report *rep = calloc(1, sizeof(*rep));
	uint8_t *out = malloc(npkts * 188 + 1);
	struct stb *s = NULL;
	struct dc_verdict v;
	char line[512];
	bool svc_refused = false;
	int r = CE_NOMEM;

	*ok = false;
	if (!rep || !out || (r = stb_new(&cfg, &s)) != 0)
		goto out;
	for (size_t i = 0; i < npkts; i += STB_BATCH_PKTS) {
		size_t n = npkts - i < STB_BATCH_PKTS ? npkts - i : STB_BATCH_PKTS;

		if ((r = stb_feed(s, ts + i * 188, n, out + i * 188)) != 0)
			goto out;
	}
	if ((r = stb_report(s, rep)) != 0)
		goto out;
	for (size_t i = 0; i < rep->nservices; i++) {
		const struct stb_service_report *sv = &rep->svc[i];

		if (stb_report_line(rep, sv, line, sizeof(line)) == 0)
			printf("    %s\n", line);
		if (sv->state == STB_SVC_NOT_DESCRAMBLED && sv->last_refusal == CE_NOT_ENTITLED)
			svc_refused = true;
	}
	if ((r = dc_judge(clear, nclear, ts, out, npkts, &v)) != 0)
		goto out;
	printf("    against the clear input: %zu scrambled packets back bit-identical, %zu left scrambled, "
		"%zu wrong\n", v.right, v.left, v.garbage);
	/* service 101's components all back, 102's all still scrambled, none wrong */
	*ok = v.garbage == 0 && v.pids_all_right > 0 && v.pids_all_left > 0 && svc_refused;
out:
	stb_free(s);
	free(out);
	free(rep);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan demo-card [--input CLEAR.ts] [--no-pcsc] [--keep]\n\n"
		"The set-top box with a smartcard, on this machine: a head-end keystore, the ECMG,\n"
		"the two-service stream scrambled over DVB SimulCrypt (service 1 in package 1,\n"
		"service 2 in package 2), a card issued and programmed (`castellan card issue`,\n"
		"`card program`), an entitlement EMM for package 1 sent to it, then the card served\n"
		"to pcscd through the vsmartcard vpcd reader (`castellan card serve`) and the box\n"
		"descrambling through PC/SC. Succeeds only if the first service is descrambled and\n"
		"the second is refused as not entitled.\n\n"
		"As root it starts a pcscd of its own (its own socket and vpcd port, shared with\n"
		"nothing else); otherwise it uses the running pcscd's \"Virtual PCD\" reader.\n"
		"Without pcscd / vsmartcard-vpcd (or without root when no pcscd runs) it says so\n"
		"and runs the same card in-process instead.\n\n"
		"  --input FILE   clear TS with two services (default: tests/data/ts-clear-2svc.ts)\n"
		"  --no-pcsc      run the card in-process even if pcscd is there\n"
		"  --keep         keep the work directory (keystore, card, TS files, logs)\n");
}

int cmd_demo_card(int argc, char **argv)
{
	struct dc d;
	char ks[128], pf[128], tf[128], perso[128], eeprom[128], scr[128], listen[32], port_s[16], cmd[256];
	char why[256] = "";
	uint8_t pass[32], *ts = NULL;
	char pass_hex[65];
	const char *reader = NULL;
	struct keystore *k = NULL;
	struct cas_client client;
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *a = NULL;
	struct card_transport t;
	uint16_t ecmg_port = 0, vpcd_port = 0;
	size_t tslen = 0, clearlen = 0;
	uint8_t *clear = NULL;
	bool ok = false, have_client = false, pcsc = false;
	int rc = 1, r;

	memset(&d, 0, sizeof(d));
	memset(&client, 0, sizeof(client));
	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	snprintf(d.input, sizeof(d.input), "%s/tests/data/ts-clear-2svc.ts", CASTELLAN_SOURCE_DIR);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
			snprintf(d.input, sizeof(d.input), "%s", argv[++i]);
		else if (strcmp(argv[i], "--no-pcsc") == 0)
			d.no_pcsc = true;
		else if (strcmp(argv[i], "--keep") == 0)
			d.keep = true;
		else {
			usage(stderr);
			return 2;
		}
	}
	{
		ssize_t n = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);

		if (n <= 0) {
			fprintf(stderr, "demo-card: cannot find own executable\n");
			return 1;
		}
		d.self[n] = '\0';
	}
	snprintf(d.dir, sizeof(d.dir), "/tmp/castellan-demo-card-XXXXXX");
	if (!mkdtemp(d.dir)) {
		fprintf(stderr, "demo-card: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	printf("Castellan demo: a set-top box with a smartcard\n  input    %s\n  work dir %s\n", d.input, d.dir);

	/* 1. head-end keystore */
	dc_path(&d, "passphrase", pf, sizeof(pf));
	dc_path(&d, "transport", tf, sizeof(tf));
	dc_path(&d, "headend.keystore", ks, sizeof(ks));
	dc_path(&d, "card.perso", perso, sizeof(perso));
	dc_path(&d, "card.eeprom", eeprom, sizeof(eeprom));
	dc_path(&d, "scrambled.ts", scr, sizeof(scr));
	if (RAND_bytes(pass, sizeof(pass)) != 1)
		goto out;
	hex_encode(pass, sizeof(pass), pass_hex);
	secret_wipe(pass, sizeof(pass));
	if (file_write_atomic(pf, (const uint8_t *)pass_hex, 64, 0600) != 0 ||
	    file_write_atomic(tf, (const uint8_t *)pass_hex + 32, 32, 0600) != 0 ||
	    keystore_generate(DC_CASID, 3600, &k) != 0 || keystore_save(k, ks, pass_hex) != 0) {
		fprintf(stderr, "demo-card: cannot create the keystore\n");
		goto out;
	}
	printf("1. keystore %s (CA_system_id 0x%04X)\n", ks, DC_CASID);

	/* 2. ECMG, and the stream scrambled through it */
	if (demo_free_port(&ecmg_port) != 0)
		goto out;
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", ecmg_port);
	{
		char *args[] = { d.self, (char *)"ecmg", (char *)"--keystore", ks, (char *)"--passphrase-file", pf,
			(char *)"--listen", listen, NULL };

		d.ecmg = dc_spawn(&d, args, "ecmg.log");
	}
	for (int i = 0; i < 100 && !demo_port_open(ecmg_port); i++)
		usleep(50 * 1000);
	if (!demo_port_open(ecmg_port)) {
		fprintf(stderr, "demo-card: the ECMG did not start\n");
		dc_show_log(&d, "ecmg.log");
		goto out;
	}
	{
		char *args[] = { d.self, (char *)"scramble", (char *)"--input", d.input, (char *)"--output", scr,
			(char *)"--service", (char *)"101:ac=00000001", (char *)"--service", (char *)"102:ac=00000002",
			(char *)"--ecmg", listen, (char *)"--super-cas-id", (char *)"0x4ADC0001", (char *)"--cp-duration",
			(char *)"4", NULL };

		if (dc_wait(dc_spawn(&d, args, "scramble.log")) != 0) {
			fprintf(stderr, "demo-card: scrambling failed\n");
			dc_show_log(&d, "scramble.log");
			goto out;
		}
	}
	dc_stop(&d.ecmg);
	printf("2. scrambled over SimulCrypt: service 101 in package 1, 102 in package 2 -> %s\n", scr);

	/* 3. the card: issued by the head-end, programmed by the programming tool */
	{
		char serial[24];
		char *issue[] = { d.self, (char *)"card", (char *)"issue", (char *)"--keys", ks, (char *)"--passphrase-file",
			pf, (char *)"--serial", serial, (char *)"--out", perso, (char *)"--transport-file", tf, NULL };
		char *prog[] = { d.self, (char *)"card", (char *)"program", perso, (char *)"--eeprom", eeprom,
			(char *)"--transport-file", tf, NULL };

		snprintf(serial, sizeof(serial), "%llu", (unsigned long long)DC_SERIAL);
		if (dc_wait(dc_spawn(&d, issue, "card.log")) != 0 || dc_wait(dc_spawn(&d, prog, "card.log")) != 0) {
			fprintf(stderr, "demo-card: card issue / program failed\n");
			dc_show_log(&d, "card.log");
			goto out;
		}
	}
	if ((r = dc_grant(ks, pass_hex, eeprom)) != 0) {
		fprintf(stderr, "demo-card: entitlement EMM refused by the card: %s\n", err_str(r));
		goto out;
	}
	printf("3. card %llu issued, programmed (protected) and entitled to package 1 by EMM\n",
		(unsigned long long)DC_SERIAL);

	/* 4. the card behind pcscd, or in-process */
	if (!d.no_pcsc && dc_pcscd(&d, &vpcd_port, &reader, why, sizeof(why)) == 0) {
		char *args[] = { d.self, (char *)"card", (char *)"serve", (char *)"--eeprom", eeprom, (char *)"--port",
			port_s, NULL };

		snprintf(port_s, sizeof(port_s), "%u", vpcd_port);
		d.serve = dc_spawn(&d, args, "card-serve.log");
		if ((r = smartcard_client_new_pcsc(reader, &client)) != 0) {
			snprintf(why, sizeof(why), "no card in PC/SC reader \"%s\": %s", reader, err_str(r));
			dc_stop(&d.serve);
		} else {
			have_client = pcsc = true;
		}
	} else if (d.no_pcsc) {
		snprintf(why, sizeof(why), "--no-pcsc");
	}
	if (!have_client) {
		printf("   NOTE: not through PC/SC: %s.\n"
		       "   Running the same card in-process instead (no pcscd, no vpcd).\n",
			why);
		if (!(a = calloc(1, sizeof(*a))) || card_eeprom_file_init(&eef, eeprom, &ee) != 0 ||
		    card_applet_init(a, &ee) != 0)
			goto out;
		card_local_transport(a, &t);
		if ((r = smartcard_client_new(&t, &client)) != 0) {
			fprintf(stderr, "demo-card: card: %s\n", err_str(r));
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
	if (file_read_all(scr, 256u << 20, &ts, &tslen) != 0 || tslen % 188 != 0) {
		fprintf(stderr, "demo-card: cannot read %s\n", scr);
		goto out;
	}
	if (file_read_all(d.input, 256u << 20, &clear, &clearlen) != 0 || clearlen % 188 != 0) {
		fprintf(stderr, "demo-card: cannot read %s\n", d.input);
		goto out;
	}
	printf("5. the box:\n");
	if ((r = dc_box(&client, clear, clearlen / 188, ts, tslen / 188, &ok)) != 0) {
		fprintf(stderr, "demo-card: box: %s\n", err_str(r));
		goto out;
	}
	printf("%s: service 101 %s, service 102 refused (not entitled) %s\n", ok ? "PASS" : "FAIL",
		ok ? "descrambled with the card" : "?", pcsc ? "through pcscd" : "(card in-process)");
	rc = ok ? 0 : 1;
out:
	if (have_client)
		cas_client_free(&client);
	if (a) {
		card_applet_wipe(a);
		free(a);
	}
	dc_stop(&d.serve);
	dc_stop(&d.ecmg);
	pcscd_private_stop(&d.pcscd);
	keystore_free(k);
	free(ts);
	free(clear);
	secret_wipe(pass_hex, sizeof(pass_hex));
	if (!d.keep) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", d.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "demo-card: cannot remove %s\n", d.dir);
	} else {
		printf("work dir kept: %s\n", d.dir);
	}
	if (rc != 0 && !d.keep)
		fprintf(stderr, "demo-card: failed (run with --keep to inspect the logs)\n");
	return rc;
}
