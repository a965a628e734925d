/*
 * demo_replace.c - `castellan-demo replace`: changing CAS vendor while the
 * stream plays (issue 4; docs/replaceable-cas.md section 5).
 *
 * Real commands, as separate processes: the KMS (TA, certify, chip order,
 * black-box export, vendor A and B registration and key files), the black
 * box (OTP burn), two head-end keystores and two `castellan ecmg` (vendor A
 * 0x4ADC and vendor B 0x4AE1), the SMS (card, subscription, CSV export from
 * which both vendors' entitlements are issued), `castellan provision
 * --protect` (each vendor protects the package keys for the box's chip),
 * `castellan kms module sign` for both client modules, `castellan module
 * carousel --into` (B's module multiplexed into the clear input),
 * `castellan scramble` with SimulCrypt of both ECMGs on every service,
 * `castellan chip` (the box's secure chip, on unix sockets) and the box,
 * `castellan stb --chip-socket ... --module A.mod --ota`: its loader runs
 * A's module, its OTA collector completes B's, the loader installs it and
 * the box switches to B. Then ECMG A is stopped, B alone scrambles, and the
 * box boots B's stored module.
 * In this process: only the check of the box's output against the clear
 * input, per crypto-period. Succeeds only if no scrambled packet was left
 * undescrambled or wrong, the switch happened and no ECM of A remains.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "demo.h"
#include "lib/err.h"
#include "lib/util.h"
#include "ts/ts.h"

#define CHIP_ID "0x0000ca57e11a0001"
#define CARD "2100000001"
#define ECM_PID_A 0x1F10
#define OTA_PROGRAM 0x0FF0
#define MAX_SVC 4
#define MAX_CP 256

/* ---- the box's output against the clear input, per crypto-period ---- */

struct cp_row {
	unsigned phase;          /* 0: SimulCrypt A+B, 1: B only */
	uint8_t parity;
	uint64_t scrambled, ok, bad;
	bool by_a, by_b;
};

struct cp_table {
	struct cp_row cp[MAX_CP];
	size_t ncp;
	int last_parity;
};

/* The ES packets (with payload) of a service in a TS, in order. */
static const uint8_t **es_packets(const struct e2e_ts *t, const struct e2e_svc *sv, size_t *count)
{
	const uint8_t **a = calloc(t->n + 1, sizeof(*a));

	*count = 0;
	if (!a)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		const uint8_t *p = t->buf + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		if (ts_parse(p, &h) != 0 || !h.has_payload || h.payload_len == 0)
			continue;
		for (size_t e = 0; e < sv->npids; e++)
			if (sv->pids[e] == h.pid)
				a[(*count)++] = p;
	}
	return a;
}

/* The box read in_path and wrote out_path, packet for packet; packets from
 * switch_pkt on were handled by B's client. Each scrambled ES packet is
 * counted in the row of its crypto-period: ok if it came out as the clear
 * input's. */
static int check_run(struct cp_table *t, unsigned phase, const char *in_path, const char *out_path,
	const struct e2e_ts *clear, uint64_t switch_pkt)
{
	struct e2e_ts in = { 0 }, out = { 0 };
	struct e2e_svc svc[MAX_SVC];
	const uint8_t **ref[MAX_SVC] = { 0 };
	size_t nref[MAX_SVC] = { 0 }, pos[MAX_SVC] = { 0 }, nsvc = 0;
	int r;

	if ((r = e2e_ts_load(in_path, &in)) != 0 || (r = e2e_ts_load(out_path, &out)) != 0)
		goto out;
	r = CE_FORMAT;
	if (in.n != out.n || e2e_services(&in, OTA_PROGRAM, svc, MAX_SVC, &nsvc) != 0)
		goto out;
	r = CE_NOMEM;
	for (size_t s = 0; s < nsvc; s++)
		if (!(ref[s] = es_packets(clear, &svc[s], &nref[s])))
			goto out;
	for (size_t i = 0; i < in.n; i++) {
		const uint8_t *p = in.buf + i * TS_PACKET_BYTES, *o = out.buf + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		if (ts_parse(p, &h) != 0 || !h.has_payload || h.payload_len == 0)
			continue;
		for (size_t s = 0; s < nsvc; s++) {
			for (size_t e = 0; e < svc[s].npids; e++) {
				int par = p[3] >> 6;
				struct cp_row *row;

				if (svc[s].pids[e] != h.pid)
					continue;
				if (par != TS_SC_CLEAR) {
					if (par != t->last_parity || t->ncp == 0 || t->cp[t->ncp - 1].phase != phase) {
						if (t->ncp < MAX_CP)
							t->ncp++;
						memset(&t->cp[t->ncp - 1], 0, sizeof(t->cp[0]));
						t->cp[t->ncp - 1].phase = phase;
						t->cp[t->ncp - 1].parity = (uint8_t)par;
						t->last_parity = par;
					}
					row = &t->cp[t->ncp - 1];
					row->scrambled++;
					if (pos[s] < nref[s] && memcmp(ref[s][pos[s]], o, TS_PACKET_BYTES) == 0)
						row->ok++;
					else
						row->bad++;
					if ((uint64_t)i >= switch_pkt)
						row->by_b = true;
					else
						row->by_a = true;
				}
				pos[s]++;
			}
		}
	}
	r = 0;
out:
	for (size_t s = 0; s < MAX_SVC; s++)
		free(ref[s]);
	e2e_ts_free(&in);
	e2e_ts_free(&out);
	return r;
}

/* access_criteria of CARD from an SMS CSV export (header names the columns). */
static int sms_packages(const char *csv, char mask[9])
{
	char line[2048];
	int col_serial = -1, col_ac = -1, r = CE_NOT_FOUND;
	FILE *f = fopen(csv, "r");

	if (!f)
		return CE_IO;
	for (int ln = 0; fgets(line, sizeof(line), f); ln++) {
		char *rest = line, *cells[32] = { 0 };
		int n = 0;

		line[strcspn(line, "\r\n")] = '\0';
		while (rest && n < 32)
			cells[n++] = strsep(&rest, ",");
		if (ln == 0) {
			for (int i = 0; i < n; i++) {
				if (strcmp(cells[i], "serial_no") == 0)
					col_serial = i;
				if (strcmp(cells[i], "access_criteria") == 0)
					col_ac = i;
			}
			continue;
		}
		if (col_serial >= 0 && col_ac >= 0 && col_serial < n && col_ac < n &&
		    strcmp(cells[col_serial], CARD) == 0 && strlen(cells[col_ac]) == 8) {
			memcpy(mask, cells[col_ac], 9);
			r = 0;
		}
	}
	fclose(f);
	return r;
}

/* "installed at packet N" from a castellan stb log; UINT64_MAX if none. */
static uint64_t switch_packet(const struct e2e *e, const char *log)
{
	char path[1024], line[1024];
	uint64_t at = UINT64_MAX;
	FILE *f = fopen(e2e_path(e, log, path, sizeof(path)), "r");

	while (f && fgets(line, sizeof(line), f)) {
		const char *k = strstr(line, "installed at packet ");
		uint64_t v;

		line[strcspn(line, ";\n")] = '\0';
		if (k && parse_u64(k + strlen("installed at packet "), UINT64_MAX, &v) == 0)
			at = v;
	}
	if (f)
		fclose(f);
	return at;
}

/* ECMs seen / accepted over every service of a castellan stb --report-json. */
static int ecm_counts(const char *path, uint64_t *seen, uint64_t *ok)
{
	json_t *root = json_load_file(path, 0, NULL), *v;
	size_t i;

	*seen = *ok = 0;
	if (!root)
		return CE_FORMAT;
	json_array_foreach(json_object_get(root, "services"), i, v) {
		*seen += (uint64_t)json_integer_value(json_object_get(v, "ecm_seen"));
		*ok += (uint64_t)json_integer_value(json_object_get(v, "ecm_accepted"));
	}
	json_decref(root);
	return 0;
}

/* Sections (PUSI packets) on pid in a TS file. */
static uint64_t count_sections(const char *path, uint16_t pid)
{
	struct e2e_ts t;
	uint64_t k = 0;

	if (e2e_ts_load(path, &t) != 0)
		return UINT64_MAX;
	for (size_t i = 0; i < t.n; i++) {
		struct ts_hdr h;

		if (ts_parse(t.buf + i * TS_PACKET_BYTES, &h) == 0 && h.pid == pid && h.pusi)
			k++;
	}
	e2e_ts_free(&t);
	return k;
}

static json_t *totals_json(uint64_t scrambled, uint64_t ok, uint64_t bad)
{
	return json_pack("{sI sI sI}", "scrambled", (json_int_t)scrambled, "descrambled", (json_int_t)ok,
		"undescrambled", (json_int_t)bad);
}

/* Steps 1-4: KMS, vendors, SMS, signed modules. */
static int setup(struct e2e *e, char *pf)
{
	char p[12][1024], mask[9] = "", start[24], finish[24], boxdir[1024], db[1100];
	uint64_t now_s = now_wall_ms() / 1000;
	static const char *const names[] = { "ta.key", "ta.pub", "kms", "kms.pub", "op.cert", "bb.key", "bb.pub",
		"chips.csv", "order1.bbx", "otp", "A.csv", "B.csv" };

	for (int i = 0; i < 12; i++)
		e2e_path(e, names[i], p[i], sizeof(p[i]));
	/* 1. KMS, TA, chip order, black box */
	printf("\n1. KMS: chip order, root keys burned by the black box (castellan kms / blackbox)\n");
	if (E2E_RUN(e, "ta.log", "kms", "ta", "init", "--out", p[0], "--pub", p[1]) ||
	    E2E_RUN(e, "kms-init.log", "kms", "init", "--dir", p[2], "--scrypt-log2n", "12") ||
	    E2E_RUN(e, "kms-pub.log", "kms", "pub", "--dir", p[2], "--out", p[3]) ||
	    E2E_RUN(e, "certify.log", "kms", "operator", "certify", "--dir", p[2], "--ta", p[0], "--name", "Demo TV",
		    "--out", p[4]) ||
	    E2E_RUN(e, "bb-keygen.log", "blackbox", "keygen", "--out", p[5], "--pub", p[6]) ||
	    file_write_atomic(p[7], CHIP_ID "\n0x0000ca57e11a0002\n0x0000ca57e11a0003\n", 57, 0644) ||
	    E2E_RUN(e, "order.log", "kms", "order", "import", "--dir", p[2], p[7]) ||
	    E2E_RUN(e, "bb-export.log", "kms", "blackbox", "export", "--dir", p[2], "--order", "1", "--to", p[6],
		    "--out", p[8]) ||
	    E2E_RUN(e, "burn.log", "blackbox", "burn", "--file", p[8], "--key", p[5], "--kms-pub", p[3], "--chips",
		    "all", "--out-dir", p[9]))
		return CE_INTERNAL;
	printf("  order 1: 3 chips; OTP images burned in %s (the chip maker saw only ciphertext)\n", p[9]);
	/* 2. vendors A and B: key files, keystores */
	printf("2. Vendors: A = 0x4ADC, B = 0x4AE1; each gets a key file with only its K_v(chip)\n");
	for (int v = 0; v < 2; v++) {
		char key[1024], pub[1024], kvf[1024], ks[1024], log[32], id[8], name[16];

		snprintf(id, sizeof(id), "%s", v ? "0x4AE1" : "0x4ADC");
		snprintf(log, sizeof(log), "vendor%c.log", 'A' + v);
		snprintf(name, sizeof(name), "v%c.key", 'A' + v);
		e2e_path(e, name, key, sizeof(key));
		snprintf(name, sizeof(name), "v%c.pub", 'A' + v);
		e2e_path(e, name, pub, sizeof(pub));
		snprintf(name, sizeof(name), "vendor%c.kvf", 'A' + v);
		e2e_path(e, name, kvf, sizeof(kvf));
		snprintf(name, sizeof(name), "%c.keystore", 'A' + v);
		e2e_path(e, name, ks, sizeof(ks));
		if (E2E_RUN(e, log, "kms", "keygen", "--type", "x25519", "--out", key, "--pub", pub) ||
		    E2E_RUN(e, log, "kms", "vendor", "add", "--dir", p[2], "--id", id, "--pub", pub) ||
		    E2E_RUN(e, log, "kms", "vendor", "export", "--dir", p[2], "--id", id, "--out", kvf) ||
		    E2E_RUN(e, log, "kms", "vendor", "open", "--file", kvf, "--key", key, "--kms-pub", p[3], "--id", id,
			    "--out", p[10 + v]) ||
		    E2E_RUN(e, log, "keys", "init", "--out", ks, "--ca-system-id", id, "--passphrase-file", pf))
			return CE_INTERNAL;
		printf("  vendor %c: %s (key file), %s (head-end keystore, CA_system_id %s)\n", 'A' + v, kvf, ks, id);
	}
	/* 3. SMS: the subscriber; entitlements for A and B from its export */
	printf("3. SMS: card " CARD " (chip " CHIP_ID ") subscribed to package 0; entitlements copied to A and B\n");
	snprintf(start, sizeof(start), "%llu", (unsigned long long)(now_s - 3600));
	snprintf(finish, sizeof(finish), "%llu", (unsigned long long)(now_s + 30 * 86400));
	snprintf(db, sizeof(db), "sqlite:%s/sms.db", e->dir);
	{
		char csv[1024];

		e2e_path(e, "sms-export.csv", csv, sizeof(csv));
		if (E2E_RUN(e, "sms.log", "sms", "--db", db, "init") ||
		    E2E_RUN(e, "sms-card.log", "sms", "--db", db, "card", "add", CARD, "--chip", CHIP_ID) ||
		    E2E_RUN(e, "sms-sub.log", "sms", "--db", db, "subscribe", CARD, "--packages", "0", "--start", start,
			    "--finish", finish) ||
		    E2E_RUN(e, "sms-export.log", "sms", "--db", db, "export", csv))
			return CE_INTERNAL;
		if (sms_packages(csv, mask) != 0) {
			fprintf(stderr, "castellan-demo replace: card " CARD " not in the SMS export\n");
			return CE_NOT_FOUND;
		}
	}
	if (mkdir(e2e_path(e, "box", boxdir, sizeof(boxdir)), 0700) != 0)
		return CE_IO;
	for (int v = 0; v < 2; v++) {
		char ks[1024], ent[1024], prot[1100], name[16], log[16];

		snprintf(name, sizeof(name), "%c.keystore", 'A' + v);
		e2e_path(e, name, ks, sizeof(ks));
		snprintf(name, sizeof(name), "ent%c.json", 'A' + v);
		e2e_path(e, name, ent, sizeof(ent));
		snprintf(prot, sizeof(prot), "%s/keys-%c.json", boxdir, 'a' + v);
		snprintf(log, sizeof(log), "prov%c.log", 'A' + v);
		/* the grant the SMS holds, issued by each vendor's head-end (TRAI A.5) */
		if (E2E_RUN(e, log, "provision", "--db", db, "--keystore", ks, "--passphrase-file", pf, "--card", CARD,
			    "--out", ent))
			return CE_INTERNAL;
		snprintf(log, sizeof(log), "prot%c.log", 'A' + v);
		if (E2E_RUN(e, log, "provision", "--protect", ent, "--vendor-keys", p[10 + v], "--chip", CHIP_ID, "--out",
			    prot))
			return CE_INTERNAL;
	}
	printf("  SMS export: access_criteria %s -> provisioned from the SMS by A and by B, package keys protected\n"
	       "  under each vendor's K_v(chip) (castellan provision --protect) -> box/keys-a.json, keys-b.json\n",
		mask);
	/* 4. operator signs both modules */
	printf("4. Operator signs A's and B's client modules in the KMS (castellan kms module sign)\n");
	{
		char ma[1024], mb[1024], ota[1024];

		e2e_path(e, "A.mod", ma, sizeof(ma));
		e2e_path(e, "B.mod", mb, sizeof(mb));
		e2e_path(e, "ota-B.ts", ota, sizeof(ota));
		if (E2E_RUN(e, "signA.log", "kms", "module", "sign", "--dir", p[2], "--vendor", "0x4ADC", "--version", "1",
			    "--rollback", "1", "--ca-system-id", "0x4ADC", "--keys-file", "keys-a.json", "--out", ma) ||
		    E2E_RUN(e, "signB.log", "kms", "module", "sign", "--dir", p[2], "--vendor", "0x4AE1", "--version", "1",
			    "--rollback", "1", "--ca-system-id", "0x4AE1", "--keys-file", "keys-b.json", "--out", mb) ||
		    E2E_RUN(e, "verifyA.log", "module", "verify", "--ta-pub", p[1], ma) ||
		    E2E_RUN(e, "carousel.log", "module", "carousel", mb, "--pid", "0x1FC0", "--out", ota))
			return CE_INTERNAL;
	}
	printf("  A.mod, B.mod signed by the KMS operator key under its TA certificate (op.cert, embedded;\n"
	       "  audited in kms/audit.log); B.mod as a carousel on PID 0x1FC0 (ota-B.ts)\n");
	return 0;
}

int demo_replace(struct e2e *e, const struct demo_args *a)
{
	static struct cp_table t;
	char pf[1024], pass_hex[65], svc[MAX_SVC][32], sock[1024], ctl[1024], boxdir[1024], otp[1024];
	char casA[32], casB[32], mb[1024], spliced[1024], at[24], scr1[1024], out1[1024], ma[1024], rep1[1024];
	char scr2[1024], out2[1024], rep2[1024];
	struct e2e_ts clear = { 0 };
	struct e2e_svc sv[MAX_SVC];
	size_t nsv = 0;
	uint16_t port[2] = { 0 };
	pid_t ecmg[2] = { 0 }, chip = 0;
	uint64_t switch_at = UINT64_MAX, ecm_seen[2] = { 0 }, ecm_ok[2] = { 0 }, a_ecms = UINT64_MAX;
	uint64_t tot[2] = { 0 }, good[2] = { 0 }, badc[2] = { 0 };
	bool ok = false;
	json_t *cps = json_array();

	memset(&t, 0, sizeof(t));
	t.last_parity = -1;
	json_object_set_new(e->summary, "cps", cps);
	printf("Castellan demo (replace): switching a box from CAS vendor A to vendor B on air\n");
	printf("  input %s\n  work dir %s\n", a->input, e->dir);
	if (e2e_ts_load(a->input, &clear) != 0 || e2e_services(&clear, OTA_PROGRAM, sv, MAX_SVC, &nsv) != 0 || nsv < 2) {
		fprintf(stderr, "castellan-demo replace: %s is not a TS with two services\n", a->input);
		goto out;
	}
	for (size_t s = 0; s < 2; s++)
		snprintf(svc[s], sizeof(svc[s]), "%u:ac=00000001", sv[s].program);
	/* one generated passphrase for every keystore of this run (env for the KMS/TA) */
	if (e2e_passphrase(e, "passphrase", pass_hex) != 0)
		goto out;
	e2e_path(e, "passphrase", pf, sizeof(pf));
	setenv("CASTELLAN_PASSPHRASE", pass_hex, 1);
	setenv("CASTELLAN_TA_PASSPHRASE", pass_hex, 1);
	secret_wipe(pass_hex, sizeof(pass_hex));
	if (setup(e, pf) != 0)
		goto out;
	/* 5. the head-end: B's module spliced into the input; two ECMGs, SimulCrypt */
	e2e_path(e, "B.mod", mb, sizeof(mb));
	e2e_path(e, "clear+ota.ts", spliced, sizeof(spliced));
	snprintf(at, sizeof(at), "%zu", clear.n * 2 / 5);
	if (E2E_RUN(e, "carousel-mux.log", "module", "carousel", mb, "--pid", "0x1FC0", "--out", spliced, "--into",
		    a->input, "--program", "0x0FF0", "--pmt-pid", "0x1FC1", "--start-packet", at, "--cycles", "3"))
		goto out;
	for (int v = 0; v < 2; v++) {
		char ks[1024], listen[32], name[16];

		snprintf(name, sizeof(name), "%c.keystore", 'A' + v);
		if (e2e_free_port(&port[v]) != 0)
			goto out;
		snprintf(listen, sizeof(listen), "127.0.0.1:%u", port[v]);
		char *args[] = { "castellan", "ecmg", "--keystore", e2e_path(e, name, ks, sizeof(ks)), "--passphrase-file",
			pf, "--listen", listen, "--min-cp-duration", "2", NULL };

		ecmg[v] = e2e_spawn(e, v ? "ecmgB.log" : "ecmgA.log", args, -1, -1);
		if (e2e_wait_ready(ecmg[v], NULL, &port[v], 1, 10000) != 0) {
			fprintf(stderr, "castellan-demo replace: ECMG %c did not start\n", 'A' + v);
			e2e_show_log(e, v ? "ecmgB.log" : "ecmgA.log");
			goto out;
		}
	}
	printf("5. Head-end: ECMG A on 127.0.0.1:%u, ECMG B on 127.0.0.1:%u; scrambler SimulCrypt A+B\n", port[0],
		port[1]);
	snprintf(casA, sizeof(casA), "127.0.0.1:%u", port[0]);
	snprintf(casB, sizeof(casB), "127.0.0.1:%u", port[1]);
	e2e_path(e, "scrambled-AB.ts", scr1, sizeof(scr1));
	if (E2E_RUN(e, "scramble-AB.log", "scramble", "--input", spliced, "--output", scr1, "--service", svc[0],
		    "--service", svc[1], "--ecmg", casA, "--super-cas-id", "0x4ADC0001", "--ecm-pid", "0x1F10", "--ecmg",
		    casB, "--super-cas-id", "0x4AE10001", "--ecm-pid", "0x1F20", "--cp-duration", "0.25", "--policy",
		    "all"))
		goto out;
	/* 6. the box: chip process, loader, A's module */
	e2e_path(e, "box", boxdir, sizeof(boxdir));
	e2e_path(e, "box/chip.sock", sock, sizeof(sock));
	e2e_path(e, "box/chip.ctl", ctl, sizeof(ctl));
	snprintf(otp, sizeof(otp), "%s/otp/0000ca57e11a0001.otp", e->dir);
	{
		char *args[] = { "castellan", "chip", "--otp", otp, "--socket", sock, "--control", ctl, NULL };

		chip = e2e_spawn(e, "chip.log", args, -1, -1);
		if (e2e_wait_ready(chip, sock, NULL, 0, 5000) != 0 || e2e_wait_ready(chip, ctl, NULL, 0, 5000) != 0) {
			fprintf(stderr, "castellan-demo replace: the chip did not start\n");
			e2e_show_log(e, "chip.log");
			goto out;
		}
	}
	printf("6. Box: chip " CHIP_ID " in its own process (castellan chip); the box is `castellan stb\n"
	       "   --chip-socket --module A.mod --ota`: its loader runs A.mod, CWs only inside the chip\n");
	e2e_path(e, "box-AB.ts", out1, sizeof(out1));
	e2e_path(e, "A.mod", ma, sizeof(ma));
	e2e_path(e, "box-AB.json", rep1, sizeof(rep1));
	if (E2E_RUN(e, "stb-AB.log", "stb", "--input", scr1, "--output", out1, "--chip-socket", sock, "--chip-control",
		    ctl, "--module-dir", boxdir, "--module", ma, "--ota", "--report-json", rep1) ||
	    ecm_counts(rep1, &ecm_seen[0], &ecm_ok[0]) != 0)
		goto out;
	switch_at = switch_packet(e, "stb-AB.log");
	if (check_run(&t, 0, scr1, out1, &clear, switch_at) != 0)
		goto out;
	printf("7. B's module arrived over the air at packet %llu: %s; the box switched to B\n",
		(unsigned long long)(switch_at == UINT64_MAX ? 0 : switch_at),
		switch_at != UINT64_MAX ? "verified and installed by the loader" : "NOT installed");
	/* 8. A off */
	e2e_stop(&ecmg[0], 3000);
	printf("8. Vendor A switched off: ECMG A stopped; the scrambler runs with B only\n");
	e2e_path(e, "scrambled-B.ts", scr2, sizeof(scr2));
	e2e_path(e, "box-B.ts", out2, sizeof(out2));
	e2e_path(e, "box-B.json", rep2, sizeof(rep2));
	if (E2E_RUN(e, "scramble-B.log", "scramble", "--input", a->input, "--output", scr2, "--service", svc[0],
		    "--service", svc[1], "--ecmg", casB, "--super-cas-id", "0x4AE10001", "--ecm-pid", "0x1F20",
		    "--cp-duration", "0.25"))
		goto out;
	printf("   the box restarts: `castellan stb --boot-vendor 0x4AE1` (B's module from box/)\n");
	if (E2E_RUN(e, "stb-B.log", "stb", "--input", scr2, "--output", out2, "--chip-socket", sock, "--chip-control",
		    ctl, "--module-dir", boxdir, "--boot-vendor", "0x4AE1", "--report-json", rep2) ||
	    ecm_counts(rep2, &ecm_seen[1], &ecm_ok[1]) != 0 || check_run(&t, 1, scr2, out2, &clear, 0) != 0)
		goto out;
	a_ecms = count_sections(scr2, ECM_PID_A);
	/* 9. the verdict */
	printf("\n  crypto-periods as the box saw them (ES packets of every service):\n");
	printf("  %-4s %-22s %-6s %-10s %-12s %-10s %s\n", "CP", "stretch", "parity", "scrambled", "descrambled",
		"left/bad", "client");
	for (size_t i = 0; i < t.ncp; i++) {
		const struct cp_row *c = &t.cp[i];
		const char *client = c->by_a && c->by_b ? "A -> B (switch)" : c->by_b ? "B" : c->by_a ? "A" : "-";

		printf("  %-4zu %-22s %-6s %-10llu %-12llu %-10llu %s\n", i + 1,
			c->phase ? "B only (A off)" : "SimulCrypt A+B", c->parity == TS_SC_EVEN ? "even" : "odd",
			(unsigned long long)c->scrambled, (unsigned long long)c->ok, (unsigned long long)c->bad, client);
		json_array_append_new(cps, json_pack("{si ss sI sI sI ss}", "phase", c->phase, "parity",
			c->parity == TS_SC_EVEN ? "even" : "odd", "scrambled", (json_int_t)c->scrambled, "descrambled",
			(json_int_t)c->ok, "undescrambled", (json_int_t)c->bad, "client",
			c->by_a && c->by_b ? "A->B" : c->by_b ? "B" : c->by_a ? "A" : "-"));
		tot[c->phase] += c->scrambled;
		good[c->phase] += c->ok;
		badc[c->phase] += c->bad;
	}
	printf("\n  ECMs seen/accepted by the running client (castellan stb reports): SimulCrypt stretch"
	       " %llu/%llu (A's, then B's);\n  after A off: A %llu, B %llu/%llu\n",
		(unsigned long long)ecm_seen[0], (unsigned long long)ecm_ok[0], (unsigned long long)a_ecms,
		(unsigned long long)ecm_seen[1], (unsigned long long)ecm_ok[1]);
	printf("  SimulCrypt stretch: %llu/%llu scrambled packets descrambled, %llu undescrambled across the switch\n",
		(unsigned long long)good[0], (unsigned long long)tot[0], (unsigned long long)badc[0]);
	printf("  after A off:        %llu/%llu scrambled packets descrambled by B, %llu undescrambled\n",
		(unsigned long long)good[1], (unsigned long long)tot[1], (unsigned long long)badc[1]);
	ok = switch_at != UINT64_MAX && tot[0] && tot[1] && !badc[0] && !badc[1] && a_ecms == 0 && ecm_ok[1] > 0;
out:
	json_object_set_new(e->summary, "switch_packet",
		switch_at == UINT64_MAX ? json_null() : json_integer((json_int_t)switch_at));
	json_object_set_new(e->summary, "simulcrypt", totals_json(tot[0], good[0], badc[0]));
	json_object_set_new(e->summary, "b_only", totals_json(tot[1], good[1], badc[1]));
	json_object_set_new(e->summary, "ecm", json_pack("{sI sI sI sI sI}", "simulcrypt_seen", (json_int_t)ecm_seen[0],
		"simulcrypt_accepted", (json_int_t)ecm_ok[0], "b_only_seen", (json_int_t)ecm_seen[1], "b_only_accepted",
		(json_int_t)ecm_ok[1], "a_sections_after_off", a_ecms == UINT64_MAX ? (json_int_t)-1 : (json_int_t)a_ecms));
	printf("\n  %s\n", ok ? "DEMO PASSED: the box switched from A to B while the stream played, no packet"
			      " went undescrambled; A is off and B carries the box" : "DEMO FAILED");
	if (!ok)
		fprintf(stderr, "castellan-demo replace: failed (logs in %s)\n", e->dir);
	e2e_stop(&ecmg[0], 3000);
	e2e_stop(&ecmg[1], 3000);
	e2e_stop(&chip, 3000);
	e2e_ts_free(&clear);
	unsetenv("CASTELLAN_PASSPHRASE");
	unsetenv("CASTELLAN_TA_PASSPHRASE");
	return ok ? 0 : 1;
}
