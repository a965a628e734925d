/*
 * cmd_demo_replace.c - `castellan demo-replace`: changing CAS vendor while
 * the stream plays (issue 4; docs/replaceable-cas.md section 5).
 *
 * Real commands, as separate processes: the KMS (TA, certify, chip order,
 * black-box export, vendor A and B registration and key files), the black
 * box (OTP burn), two head-end keystores and two `castellan ecmg` (vendor A
 * 0x4ADC and vendor B 0x4AE1), the SMS (card, subscription, CSV export from
 * which both vendors' entitlements are issued), `castellan provision
 * --protect` (each vendor protects the package keys for the box's chip),
 * `castellan kms module sign` for both client modules (the KMS operator
 * key, certified by the TA, signs; it never leaves the KMS), `castellan module
 * carousel --into` (B's module multiplexed into the clear input),
 * `castellan scramble` with SimulCrypt of both ECMGs on every service,
 * `castellan chip` (the box's secure chip, on unix sockets) and the box
 * itself, `castellan stb --chip-socket ... --module A.mod --ota`: its loader
 * runs A's module, its OTA collector completes B's, the loader installs it
 * and the box switches to B at once (the last ECM of B's PID it kept).
 * In this process: only the check of the box's output against the clear
 * input, per crypto-period. Then ECMG A is stopped, B
 * alone scrambles, and the box boots B's stored module.
 * Exit 0 only if no scrambled packet was left undescrambled or wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/rand.h>
#include "cli/cli.h"
#include <jansson.h>
#include "lib/err.h"
#include "lib/util.h"
#include "ts/psi.h"
#include "ts/ts.h"

#ifndef CASTELLAN_SOURCE_DIR
#define CASTELLAN_SOURCE_DIR "."
#endif

#define VENDOR_A 0x4ADCu
#define VENDOR_B 0x4AE1u
#define CHIP_ID "0x0000ca57e11a0001"
#define CARD "2100000001"
#define ECM_PID_A 0x1F10
#define ECM_PID_B 0x1F20
#define OTA_PID 0x1FC0
#define OTA_PMT_PID 0x1FC1
#define OTA_PROGRAM 0x0FF0
#define MAX_SVC 4
#define MAX_CP 256

struct rdemo {
	char dir[256];
	char self[4096];
	const char *input;
	pid_t ecmg[2];
	uint16_t port[2];
	pid_t chip;
	bool keep;
};

static void path_of(const struct rdemo *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->dir, name);
}

static pid_t spawn(const struct rdemo *d, const char *log_name, char *const args[])
{
	char log[512];
	pid_t pid;

	path_of(d, log_name, log, sizeof(log));
	fflush(stdout);
	pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execv(d->self, args);
	_exit(127);
}

static void show_log(const struct rdemo *d, const char *log_name)
{
	char log[512], line[1024];
	FILE *f;

	path_of(d, log_name, log, sizeof(log));
	f = fopen(log, "r");
	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", log_name);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* Run castellan with args (NULL-terminated, args[0] = "castellan"); 0 if exit 0. */
static int run(const struct rdemo *d, const char *log_name, char *const args[])
{
	int status;
	pid_t pid = spawn(d, log_name, args);

	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return CE_IO;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	show_log(d, log_name);
	return CE_INTERNAL;
}

#define RUN(d, log, ...)                                                                                 \
	do {                                                                                             \
		char *a_[] = { (char *)"castellan", __VA_ARGS__, NULL };                                 \
		if (run((d), (log), a_) != 0) {                                                          \
			fprintf(stderr, "demo-replace: step %s failed\n", (log));                          \
			goto fail;                                                                       \
		}                                                                                        \
	} while (0)

static void stop(pid_t *pid)
{
	int status;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 60; i++) {
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		usleep(50 * 1000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, &status, 0);
	*pid = 0;
}

static int free_port(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return CE_IO;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		close(fd);
		return CE_IO;
	}
	*port = ntohs(a.sin_port);
	close(fd);
	return 0;
}

static bool port_open(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static int start_ecmg(struct rdemo *d, int v, char *ks, char *pf)
{
	char listen[64];
	const char *log = v ? "ecmgB.log" : "ecmgA.log";

	if (free_port(&d->port[v]) != 0)
		return CE_IO;
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", d->port[v]);
	char *args[] = { (char *)"castellan", (char *)"ecmg", (char *)"--keystore", ks,
		(char *)"--passphrase-file", pf, (char *)"--listen", listen, (char *)"--min-cp-duration",
		(char *)"2", NULL };
	d->ecmg[v] = spawn(d, log, args);
	for (int i = 0; i < 200; i++) {
		int status;

		if (port_open(d->port[v]))
			return 0;
		if (waitpid(d->ecmg[v], &status, WNOHANG) == d->ecmg[v]) {
			d->ecmg[v] = 0;
			show_log(d, log);
			return CE_IO;
		}
		usleep(50 * 1000);
	}
	return CE_TIMEOUT;
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
		if (col_serial < 0 || col_ac < 0 || col_serial >= n || col_ac >= n)
			continue;
		if (strcmp(cells[col_serial], CARD) == 0 && strlen(cells[col_ac]) == 8) {
			memcpy(mask, cells[col_ac], 9);
			r = 0;
		}
	}
	fclose(f);
	return r;
}

/* ---- the clear input with B's carousel spliced in ---- */

static int load_ts(const char *path, uint8_t **buf, size_t *npkts)
{
	size_t len;
	int r = file_read_all(path, 256u << 20, buf, &len);

	*npkts = r == 0 ? len / TS_PACKET_BYTES : 0;
	return r;
}

/* ---- checking the box's output against the clear input ---- */

struct cp_row {
	unsigned phase;
	uint8_t parity;
	uint64_t scrambled, ok, bad;
	bool by_a, by_b;
};

struct rsvc {
	uint16_t program, pmt_pid;
	bool have_pmt;
	size_t nes;
	uint16_t es[PMT_MAX_ES];
};

struct box {
	struct psi_asm *pat_asm, *pmt_asm;
	struct pmt *pmt;
	struct rsvc svc[MAX_SVC];
	size_t nsvc;
	int active;            /* client that handled the packet: 0 = A, 1 = B */
	unsigned phase;
	/* clear reference: ES packets of each service in order */
	const uint8_t **ref[MAX_SVC];
	size_t nref[MAX_SVC], refpos[MAX_SVC];
	struct cp_row cp[MAX_CP];
	size_t ncp;
	int last_parity;
};

static int find_svc(struct box *b, uint16_t pid)
{
	for (size_t i = 0; i < b->nsvc; i++)
		if (b->svc[i].pmt_pid == pid)
			return (int)i;
	return -1;
}

static int sec_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct box *b = ctx;

	if (pid == TS_PID_PAT) {
		struct pat pat;

		if (b->nsvc || pat_parse(sec, len, &pat) != 0)
			return 0;
		for (size_t k = 0; k < pat.nprog && b->nsvc < MAX_SVC; k++) {
			if (pat.prog[k].program == 0 || pat.prog[k].program == OTA_PROGRAM)
				continue;
			b->svc[b->nsvc].program = pat.prog[k].program;
			b->svc[b->nsvc].pmt_pid = pat.prog[k].pid;
			psi_asm_init(&b->pmt_asm[b->nsvc], pat.prog[k].pid);
			b->nsvc++;
		}
		return 0;
	}
	int s = find_svc(b, pid);

	if (s < 0 || b->svc[s].have_pmt || pmt_parse(sec, len, b->pmt) != 0)
		return 0;
	struct rsvc *sv = &b->svc[s];

	sv->have_pmt = true;
	for (size_t e = 0; e < b->pmt->nes && e < PMT_MAX_ES; e++)
		sv->es[sv->nes++] = b->pmt->es[e].pid;
	return 0;
}

static void count_es(struct box *b, size_t s, const uint8_t *before, const uint8_t *p)
{
	struct cp_row *row;
	int par = before[3] >> 6;
	bool ok;

	if (par == TS_SC_CLEAR) {
		b->refpos[s]++;
		return;
	}
	if (par != b->last_parity || b->ncp == 0 || b->cp[b->ncp - 1].phase != b->phase) {
		if (b->ncp < MAX_CP)
			b->ncp++;
		memset(&b->cp[b->ncp - 1], 0, sizeof(b->cp[0]));
		b->cp[b->ncp - 1].phase = b->phase;
		b->cp[b->ncp - 1].parity = (uint8_t)par;
		b->last_parity = par;
	}
	row = &b->cp[b->ncp - 1];
	row->scrambled++;
	ok = b->refpos[s] < b->nref[s] && memcmp(b->ref[s][b->refpos[s]], p, TS_PACKET_BYTES) == 0;
	if (ok)
		row->ok++;
	else
		row->bad++;
	if (b->active == 0)
		row->by_a = true;
	if (b->active == 1)
		row->by_b = true;
	b->refpos[s]++;
}

static const uint8_t **es_ref(const uint8_t *ts, size_t n, const struct rsvc *sv, size_t *count)
{
	const uint8_t **a = calloc(n + 1, sizeof(*a));
	size_t k = 0;

	if (!a)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = ts + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		if (ts_parse(p, &h) != 0 || !h.has_payload || h.payload_len == 0)
			continue;
		for (size_t e = 0; e < sv->nes; e++)
			if (sv->es[e] == h.pid)
				a[k++] = p;
	}
	*count = k;
	return a;
}

/* The box's input (scrambled) and output, packet for packet (castellan stb
 * keeps every packet in order), against the clear reference. Packets from
 * switch_pkt on were handled by B's client. */
static int check_run(struct box *b, const char *in_path, const char *out_path, const uint8_t *clear, size_t nclear,
	uint64_t switch_pkt)
{
	uint8_t *in = NULL, *out = NULL;
	size_t n = 0, nout = 0;
	int r;

	if ((r = load_ts(in_path, &in, &n)) != 0 || (r = load_ts(out_path, &out, &nout)) != 0 || n != nout) {
		free(in);
		free(out);
		return r ? r : CE_FORMAT;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = in + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		b->active = (uint64_t)i >= switch_pkt ? 1 : 0;
		if (ts_parse(p, &h) != 0)
			continue;
		if (h.pid == TS_PID_PAT)
			(void)psi_asm_push(b->pat_asm, p, &h, sec_cb, b);
		for (size_t s = 0; s < b->nsvc; s++) {
			struct rsvc *sv = &b->svc[s];

			if (h.pid == sv->pmt_pid)
				(void)psi_asm_push(&b->pmt_asm[s], p, &h, sec_cb, b);
			for (size_t e = 0; e < sv->nes && b->ref[s]; e++)
				if (sv->es[e] == h.pid && h.has_payload && h.payload_len > 0)
					count_es(b, s, p, out + i * TS_PACKET_BYTES);
			if (sv->have_pmt && !b->ref[s]) {
				size_t before = 0;
				const uint8_t **seen = es_ref(in, i + 1, sv, &before);

				/* align the reference: ES packets of s already passed */
				free(seen);
				b->ref[s] = es_ref(clear, nclear, sv, &b->nref[s]);
				b->refpos[s] = before;
			}
		}
	}
	free(in);
	free(out);
	return 0;
}

static void box_reset(struct box *b)
{
	for (size_t s = 0; s < MAX_SVC; s++) {
		free(b->ref[s]);
		b->ref[s] = NULL;
		b->refpos[s] = b->nref[s] = 0;
		memset(&b->svc[s], 0, sizeof(b->svc[s]));
	}
	b->nsvc = 0;
	psi_asm_init(b->pat_asm, TS_PID_PAT);
}

static void box_free(struct box *b)
{
	free(b->pat_asm);
	free(b->pmt_asm);
	free(b->pmt);
	for (size_t s = 0; s < MAX_SVC; s++)
		free(b->ref[s]);
}

/* "installed at packet N" from a castellan stb log; UINT64_MAX if none. */
static uint64_t switch_packet(const struct rdemo *d, const char *log_name)
{
	char log[512], line[1024];
	uint64_t at = UINT64_MAX;
	FILE *f;

	path_of(d, log_name, log, sizeof(log));
	if (!(f = fopen(log, "r")))
		return at;
	while (fgets(line, sizeof(line), f)) {
		const char *k = strstr(line, "installed at packet ");
		uint64_t v;

		line[strcspn(line, ";\n")] = '\0';
		if (k && parse_u64(k + strlen("installed at packet "), UINT64_MAX, &v) == 0)
			at = v;
	}
	fclose(f);
	return at;
}

/* ECMs seen / accepted over every service of a castellan stb --report-json. */
static int ecm_counts(const char *path, uint64_t *seen, uint64_t *ok)
{
	json_t *root = json_load_file(path, 0, NULL), *svcs, *v;
	size_t i;

	*seen = *ok = 0;
	if (!root)
		return CE_FORMAT;
	svcs = json_object_get(root, "services");
	json_array_foreach(svcs, i, v) {
		*seen += (uint64_t)json_integer_value(json_object_get(v, "ecm_seen"));
		*ok += (uint64_t)json_integer_value(json_object_get(v, "ecm_accepted"));
	}
	json_decref(root);
	return 0;
}

/* Sections (PUSI packets) on pid in a TS file. */
static uint64_t count_pid(const char *path, uint16_t pid)
{
	uint8_t *ts = NULL;
	size_t n = 0;
	uint64_t k = 0;

	if (load_ts(path, &ts, &n) != 0)
		return UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		struct ts_hdr h;

		if (ts_parse(ts + i * TS_PACKET_BYTES, &h) == 0 && h.pid == pid && h.pusi)
			k++;
	}
	free(ts);
	return k;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan demo-replace [--input CLEAR.ts] [--keep]\n\n"
		"Change CAS vendor on a running box (docs/replaceable-cas.md, section 5):\n"
		"the KMS orders chips and the black box burns their OTPs; vendor A (CA_system_id\n"
		"0x4ADC) and vendor B (0x4AE1) get their key files and run one ECMG each; the\n"
		"operator signs both client modules; the scrambler runs SimulCrypt with both ECMGs\n"
		"on every service; the box (its chip as a separate `castellan chip` process) runs\n"
		"A's module; the SMS's entitlements are issued to B; B's module goes over the air\n"
		"in a carousel in the stream, the box's loader installs it and switches to B while\n"
		"the stream plays; then ECMG A is stopped and B alone scrambles. Prints a table per\n"
		"crypto-period; exits 0 only if no scrambled packet was left undescrambled.\n\n"
		"  --input FILE   clear TS (default tests/data/ts-clear-2svc.ts)\n"
		"  --keep         keep the work directory (keys, TS files, logs)\n");
}

int cmd_demo_replace(int argc, char **argv)
{
	static char def_input[4096];
	struct rdemo d = { 0 };
	struct box b;
	char pf[512], pass_hex[65], p[16][512], mask[9] = "", start[24], finish[24], casA[64], casB[64];
	char svc[MAX_SVC][32], sock[512], ctl[512], boxdir[512], otp[600];
	uint8_t pass[32], *clear = NULL;
	size_t nclear = 0;
	uint64_t now_s = now_wall_ms() / 1000, switch_at = UINT64_MAX, ecm_seen[2] = { 0 }, ecm_ok[2] = { 0 };
	uint64_t a_ecms = UINT64_MAX;
	int rc = 1;
	bool ok = true;

	memset(&b, 0, sizeof(b));
	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	snprintf(def_input, sizeof(def_input), "%s/tests/data/ts-clear-2svc.ts", CASTELLAN_SOURCE_DIR);
	d.input = def_input;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
			d.input = argv[++i];
		} else if (strcmp(argv[i], "--keep") == 0) {
			d.keep = true;
		} else {
			usage(stderr);
			return 2;
		}
	}
	{
		ssize_t n = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);

		if (n <= 0)
			return 1;
		d.self[n] = '\0';
	}
	snprintf(d.dir, sizeof(d.dir), "/tmp/castellan-replace-XXXXXX");
	if (!mkdtemp(d.dir)) {
		fprintf(stderr, "demo-replace: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	printf("Castellan demo-replace: switching a box from CAS vendor A to vendor B on air\n");
	printf("  input %s\n  work dir %s\n", d.input, d.dir);
	/* one generated passphrase for every keystore of this run (env for the KMS/TA) */
	if (RAND_bytes(pass, sizeof(pass)) != 1)
		goto fail;
	hex_encode(pass, sizeof(pass), pass_hex);
	secret_wipe(pass, sizeof(pass));
	path_of(&d, "passphrase", pf, sizeof(pf));
	if (file_write_atomic(pf, pass_hex, 64, 0600) != 0)
		goto fail;
	setenv("CASTELLAN_PASSPHRASE", pass_hex, 1);
	setenv("CASTELLAN_TA_PASSPHRASE", pass_hex, 1);
	secret_wipe(pass_hex, sizeof(pass_hex));
	{
		const char *names[] = { "ta.key", "ta.pub", "kms", "kms.pub", "op.cert", "bb.key", "bb.pub", "chips.csv",
			"order1.bbx", "otp", "A.csv", "B.csv", "unused12", "unused13", "unused14", "sms.db" };

		for (int i = 0; i < 16; i++)
			path_of(&d, names[i], p[i], sizeof(p[i]));
	}
	/* 1. KMS, TA, chip order, black box */
	printf("\n1. KMS: chip order, root keys burned by the black box (castellan kms / blackbox)\n");
	RUN(&d, "ta.log", "kms", "ta", "init", "--out", p[0], "--pub", p[1]);
	RUN(&d, "kms-init.log", "kms", "init", "--dir", p[2], "--scrypt-log2n", "12");
	RUN(&d, "kms-pub.log", "kms", "pub", "--dir", p[2], "--out", p[3]);
	RUN(&d, "certify.log", "kms", "operator", "certify", "--dir", p[2], "--ta", p[0], "--name", "Demo TV", "--out",
		p[4]);
	RUN(&d, "bb-keygen.log", "blackbox", "keygen", "--out", p[5], "--pub", p[6]);
	if (file_write_atomic(p[7], CHIP_ID "\n0x0000ca57e11a0002\n0x0000ca57e11a0003\n", 57, 0644) != 0)
		goto fail;
	RUN(&d, "order.log", "kms", "order", "import", "--dir", p[2], p[7]);
	RUN(&d, "bb-export.log", "kms", "blackbox", "export", "--dir", p[2], "--order", "1", "--to", p[6], "--out", p[8]);
	RUN(&d, "burn.log", "blackbox", "burn", "--file", p[8], "--key", p[5], "--kms-pub", p[3], "--chips", "all",
		"--out-dir", p[9]);
	printf("  order 1: 3 chips; OTP images burned in %s (the chip maker saw only ciphertext)\n", p[9]);
	/* 2. vendors A and B: key files, keystores */
	printf("2. Vendors: A = 0x4ADC, B = 0x4AE1; each gets a key file with only its K_v(chip)\n");
	for (int v = 0; v < 2; v++) {
		char key[512], pub[512], kvf[512], ks[512], log[32];
		char id[8];

		snprintf(id, sizeof(id), "%s", v ? "0x4AE1" : "0x4ADC");

		path_of(&d, v ? "vB.key" : "vA.key", key, sizeof(key));
		path_of(&d, v ? "vB.pub" : "vA.pub", pub, sizeof(pub));
		path_of(&d, v ? "vendorB.kvf" : "vendorA.kvf", kvf, sizeof(kvf));
		path_of(&d, v ? "B.keystore" : "A.keystore", ks, sizeof(ks));
		snprintf(log, sizeof(log), "vendor%c.log", v ? 'B' : 'A');
		RUN(&d, log, "kms", "keygen", "--type", "x25519", "--out", key, "--pub", pub);
		RUN(&d, log, "kms", "vendor", "add", "--dir", p[2], "--id", id, "--pub", pub);
		RUN(&d, log, "kms", "vendor", "export", "--dir", p[2], "--id", id, "--out", kvf);
		RUN(&d, log, "kms", "vendor", "open", "--file", kvf, "--key", key, "--kms-pub", p[3], "--id", id,
			"--out", p[v ? 11 : 10]);
		RUN(&d, log, "keys", "init", "--out", ks, "--ca-system-id", id, "--passphrase-file", pf);
		printf("  vendor %c: %s (key file), %s (head-end keystore, CA_system_id %s)\n", v ? 'B' : 'A', kvf, ks,
			id);
	}
	/* 3. SMS: the subscriber; entitlements for A and B from its export */
	printf("3. SMS: card " CARD " (chip " CHIP_ID ") subscribed to package 0; entitlements copied to A and B\n");
	snprintf(start, sizeof(start), "%llu", (unsigned long long)(now_s - 3600));
	snprintf(finish, sizeof(finish), "%llu", (unsigned long long)(now_s + 30 * 86400));
	{
		char db[600], csv[512];

		snprintf(db, sizeof(db), "sqlite:%s", p[15]);
		path_of(&d, "sms-export.csv", csv, sizeof(csv));
		RUN(&d, "sms.log", "sms", "--db", db, "init");
		RUN(&d, "sms-card.log", "sms", "--db", db, "card", "add", CARD, "--chip", CHIP_ID);
		RUN(&d, "sms-sub.log", "sms", "--db", db, "subscribe", CARD, "--packages", "0", "--start", start,
			"--finish", finish);
		RUN(&d, "sms-export.log", "sms", "--db", db, "export", csv);
		if (sms_packages(csv, mask) != 0) {
			fprintf(stderr, "demo-replace: card " CARD " not in the SMS export\n");
			goto fail;
		}
	}
	path_of(&d, "box", boxdir, sizeof(boxdir));
	if (mkdir(boxdir, 0700) != 0)
		goto fail;
	for (int v = 0; v < 2; v++) {
		char ks[512], ent[512], prot[600];

		path_of(&d, v ? "B.keystore" : "A.keystore", ks, sizeof(ks));
		path_of(&d, v ? "entB.json" : "entA.json", ent, sizeof(ent));
		snprintf(prot, sizeof(prot), "%s/%s", boxdir, v ? "keys-b.json" : "keys-a.json");
		RUN(&d, v ? "provB.log" : "provA.log", "provision", "--keystore", ks, "--passphrase-file", pf, "--card",
			CARD, "--packages", mask, "--start", start, "--finish", finish, "--out", ent);
		RUN(&d, v ? "protB.log" : "protA.log", "provision", "--protect", ent, "--vendor-keys", p[v ? 11 : 10],
			"--chip", CHIP_ID, "--out", prot);
	}
	printf("  SMS export: access_criteria %s -> provisioned by A and by B, package keys protected\n"
	       "  under each vendor's K_v(chip) (castellan provision --protect) -> box/keys-a.json, keys-b.json\n",
		mask);
	/* 4. operator signs both modules */
	printf("4. Operator signs A's and B's client modules in the KMS (castellan kms module sign)\n");
	{
		char ma[512], mb[512], ota[512];

		path_of(&d, "A.mod", ma, sizeof(ma));
		path_of(&d, "B.mod", mb, sizeof(mb));
		path_of(&d, "ota-B.ts", ota, sizeof(ota));
		RUN(&d, "signA.log", "kms", "module", "sign", "--dir", p[2], "--vendor", "0x4ADC", "--version", "1",
			"--rollback", "1", "--ca-system-id", "0x4ADC", "--keys-file", "keys-a.json", "--out", ma);
		RUN(&d, "signB.log", "kms", "module", "sign", "--dir", p[2], "--vendor", "0x4AE1", "--version", "1",
			"--rollback", "1", "--ca-system-id", "0x4AE1", "--keys-file", "keys-b.json", "--out", mb);
		RUN(&d, "verifyA.log", "module", "verify", "--ta-pub", p[1], ma);
		RUN(&d, "carousel.log", "module", "carousel", mb, "--pid", "0x1FC0", "--out", ota);
		printf("  A.mod, B.mod signed by the KMS operator key under its TA certificate (op.cert, embedded;\n"
		       "  audited in kms/audit.log); B.mod as a carousel on PID 0x1FC0 (ota-B.ts)\n");
	}
	/* 5. the head-end: two ECMGs, SimulCrypt */
	if (load_ts(d.input, &clear, &nclear) != 0 || nclear < 100) {
		fprintf(stderr, "demo-replace: cannot read %s\n", d.input);
		goto fail;
	}
	{
		char mb[512], spliced[512], in0[4096], at[24];

		path_of(&d, "B.mod", mb, sizeof(mb));
		path_of(&d, "clear+ota.ts", spliced, sizeof(spliced));
		snprintf(in0, sizeof(in0), "%s", d.input);
		snprintf(at, sizeof(at), "%zu", nclear * 2 / 5);
		RUN(&d, "carousel-mux.log", "module", "carousel", mb, "--pid", "0x1FC0", "--out", spliced, "--into", in0,
			"--program", "0x0FF0", "--pmt-pid", "0x1FC1", "--start-packet", at, "--cycles", "3");
	}
	for (int v = 0; v < 2; v++) {
		char ks[512];

		path_of(&d, v ? "B.keystore" : "A.keystore", ks, sizeof(ks));
		if (start_ecmg(&d, v, ks, pf) != 0) {
			fprintf(stderr, "demo-replace: ECMG %c did not start\n", v ? 'B' : 'A');
			goto fail;
		}
	}
	printf("5. Head-end: ECMG A on 127.0.0.1:%u, ECMG B on 127.0.0.1:%u; scrambler SimulCrypt A+B\n", d.port[0],
		d.port[1]);
	{
		/* services from the input's PAT */
		struct box scan;
		size_t ns;

		memset(&scan, 0, sizeof(scan));
		scan.pat_asm = calloc(1, sizeof(*scan.pat_asm));
		scan.pmt_asm = calloc(MAX_SVC, sizeof(*scan.pmt_asm));
		if (!scan.pat_asm || !scan.pmt_asm) {
			free(scan.pat_asm);
			free(scan.pmt_asm);
			goto fail;
		}
		psi_asm_init(scan.pat_asm, TS_PID_PAT);
		for (size_t i = 0; i < nclear && !scan.nsvc; i++) {
			struct ts_hdr h;

			if (ts_parse(clear + i * TS_PACKET_BYTES, &h) == 0 && h.pid == TS_PID_PAT)
				(void)psi_asm_push(scan.pat_asm, clear + i * TS_PACKET_BYTES, &h, sec_cb, &scan);
		}
		ns = scan.nsvc;
		for (size_t s = 0; s < ns; s++)
			snprintf(svc[s], sizeof(svc[s]), "%u:ac=00000001", scan.svc[s].program);
		free(scan.pat_asm);
		free(scan.pmt_asm);
		if (ns < 2) {
			fprintf(stderr, "demo-replace: the input needs two services\n");
			goto fail;
		}
	}
	snprintf(casA, sizeof(casA), "127.0.0.1:%u", d.port[0]);
	snprintf(casB, sizeof(casB), "127.0.0.1:%u", d.port[1]);
	{
		char in1[512], out1[512];

		path_of(&d, "clear+ota.ts", in1, sizeof(in1));
		path_of(&d, "scrambled-AB.ts", out1, sizeof(out1));
		RUN(&d, "scramble-AB.log", "scramble", "--input", in1, "--output", out1, "--service", svc[0], "--service",
			svc[1], "--ecmg", casA, "--super-cas-id", "0x4ADC0001", "--ecm-pid", "0x1F10", "--ecmg", casB,
			"--super-cas-id", "0x4AE10001", "--ecm-pid", "0x1F20", "--cp-duration", "0.25", "--policy", "all");
	}
	/* 6. the box: chip process, loader, A's module */
	path_of(&d, "box/chip.sock", sock, sizeof(sock));
	path_of(&d, "box/chip.ctl", ctl, sizeof(ctl));
	snprintf(otp, sizeof(otp), "%s/0000ca57e11a0001.otp", p[9]);
	{
		char *args[] = { (char *)"castellan", (char *)"chip", (char *)"--otp", otp, (char *)"--socket", sock,
			(char *)"--control", ctl, NULL };
		struct stat st;

		d.chip = spawn(&d, "chip.log", args);
		for (int i = 0; i < 100 && (stat(sock, &st) != 0 || stat(ctl, &st) != 0); i++)
			usleep(50 * 1000);
	}
	b.last_parity = -1;
	b.pat_asm = calloc(1, sizeof(*b.pat_asm));
	b.pmt_asm = calloc(MAX_SVC, sizeof(*b.pmt_asm));
	b.pmt = calloc(1, sizeof(*b.pmt));
	if (!b.pat_asm || !b.pmt_asm || !b.pmt)
		goto fail;
	psi_asm_init(b.pat_asm, TS_PID_PAT);
	printf("6. Box: chip " CHIP_ID " in its own process (castellan chip); the box is `castellan stb\n"
	       "   --chip-socket --module A.mod --ota`: its loader runs A.mod, CWs only inside the chip\n");
	{
		char in1[512], out1[512], ma[512], rep1[512];

		path_of(&d, "scrambled-AB.ts", in1, sizeof(in1));
		path_of(&d, "box-AB.ts", out1, sizeof(out1));
		path_of(&d, "A.mod", ma, sizeof(ma));
		path_of(&d, "box-AB.json", rep1, sizeof(rep1));
		RUN(&d, "stb-AB.log", "stb", "--input", in1, "--output", out1, "--chip-socket", sock, "--chip-control", ctl,
			"--module-dir", boxdir, "--module", ma, "--ota", "--report-json", rep1);
		switch_at = switch_packet(&d, "stb-AB.log");
		if (ecm_counts(rep1, &ecm_seen[0], &ecm_ok[0]) != 0)
			goto fail;
		b.phase = 0;
		if (check_run(&b, in1, out1, clear, nclear, switch_at) != 0)
			goto fail;
	}
	printf("7. B's module arrived over the air at packet %llu: %s; the box switched to B\n",
		(unsigned long long)(switch_at == UINT64_MAX ? 0 : switch_at),
		switch_at != UINT64_MAX ? "verified and installed by the loader" : "NOT installed");
	if (switch_at == UINT64_MAX)
		ok = false;
	/* 8. A off */
	stop(&d.ecmg[0]);
	printf("8. Vendor A switched off: ECMG A stopped; the scrambler runs with B only\n");
	{
		char out2[512], in0[4096];

		snprintf(in0, sizeof(in0), "%s", d.input);
		path_of(&d, "scrambled-B.ts", out2, sizeof(out2));
		RUN(&d, "scramble-B.log", "scramble", "--input", in0, "--output", out2, "--service", svc[0],
			"--service", svc[1], "--ecmg", casB, "--super-cas-id", "0x4AE10001", "--ecm-pid", "0x1F20",
			"--cp-duration", "0.25");
		box_reset(&b);
		b.phase = 1;
		{
			char out3[512], rep2[512];

			path_of(&d, "box-B.ts", out3, sizeof(out3));
			path_of(&d, "box-B.json", rep2, sizeof(rep2));
			printf("   the box restarts: `castellan stb --boot-vendor 0x4AE1` (B's module from box/)\n");
			RUN(&d, "stb-B.log", "stb", "--input", out2, "--output", out3, "--chip-socket", sock,
				"--chip-control", ctl, "--module-dir", boxdir, "--boot-vendor", "0x4AE1", "--report-json",
				rep2);
			if (ecm_counts(rep2, &ecm_seen[1], &ecm_ok[1]) != 0)
				goto fail;
			if (check_run(&b, out2, out3, clear, nclear, 0) != 0)
				goto fail;
			a_ecms = count_pid(out2, ECM_PID_A);
		}
	}
	/* 9. the verdict */
	{
		uint64_t tot[2] = { 0 }, good[2] = { 0 }, badc[2] = { 0 };

		printf("\n  crypto-periods as the box saw them (ES packets of every service):\n");
		printf("  %-4s %-22s %-6s %-10s %-12s %-10s %s\n", "CP", "stretch", "parity", "scrambled", "descrambled",
			"left/bad", "client");
		for (size_t i = 0; i < b.ncp; i++) {
			const struct cp_row *c = &b.cp[i];

			printf("  %-4zu %-22s %-6s %-10llu %-12llu %-10llu %s\n", i + 1,
				c->phase ? "B only (A off)" : "SimulCrypt A+B", c->parity == TS_SC_EVEN ? "even" : "odd",
				(unsigned long long)c->scrambled, (unsigned long long)c->ok, (unsigned long long)c->bad,
				c->by_a && c->by_b ? "A -> B (switch)" : c->by_b ? "B" : c->by_a ? "A" : "-");
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
		if (tot[0] == 0 || tot[1] == 0 || badc[0] || badc[1] || a_ecms != 0 || ecm_ok[1] == 0)
			ok = false;
	}
	printf("\n  %s\n", ok ? "DEMO PASSED: the box switched from A to B while the stream played, no packet"
				" went undescrambled; A is off and B carries the box"
			      : "DEMO FAILED");
	rc = ok ? 0 : 1;
	goto out;
fail:
	fprintf(stderr, "demo-replace: failed (logs in %s)\n", d.dir);
	d.keep = true;
out:
	box_free(&b);
	stop(&d.ecmg[0]);
	stop(&d.ecmg[1]);
	stop(&d.chip);
	free(clear);
	unsetenv("CASTELLAN_PASSPHRASE");
	unsetenv("CASTELLAN_TA_PASSPHRASE");
	if (!d.keep && rc == 0) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "demo-replace: could not remove %s\n", d.dir);
	} else {
		printf("  files kept in %s\n", d.dir);
	}
	return rc;
}
