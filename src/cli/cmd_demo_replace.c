/*
 * cmd_demo_replace.c - `castellan demo-replace`: changing CAS vendor while
 * the stream plays (issue 4, item 6; docs/replaceable-cas.md section 5).
 *
 * Real commands, as separate processes: the KMS (TA, certify, chip order,
 * black-box export, vendor A and B registration and key files), the black
 * box (OTP burn), two head-end keystores and two `castellan ecmg` (vendor A
 * 0x4ADC and vendor B 0x4AE1), the SMS (card, subscription, CSV export from
 * which both vendors' entitlements are issued), `castellan module sign` for
 * both client modules, `castellan module carousel` for B's, `castellan
 * scramble` with SimulCrypt of both ECMGs on every service, and `castellan
 * chip` (the box's secure chip, on unix sockets).
 * In this process, through the same libraries (said in the output): the
 * operator's module-signing certificate (cert_sign; the KMS does not export
 * its own key), the vendors' protection of package keys under K_v(chip)
 * (chip_protect_key), splicing the OTA carousel into the clear input, and the
 * box's demux loop: it follows PAT/PMT, runs the module the loader
 * (stb/loader.h) installed, collects B's module from the carousel (ota_rx),
 * installs it, switches at once (the last ECM of B's PID, already received,
 * is handed to B's client), descrambles every packet in the chip, and counts
 * per crypto-period against the clear input. Then ECMG A is stopped and a
 * second stretch is scrambled by B alone.
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
#include "cas/entitlement.h"
#include "headend/ota.h"
#include "kms/cert.h"
#include "kms/kms.h"
#include "kms/pk.h"
#include "lib/err.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/descrambler.h"
#include "stb/loader.h"
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

/* K_v of CHIP_ID from a vendor's opened key file (chip_id,key CSV). */
static int vendor_key(const char *csv, uint8_t kv[16])
{
	char line[256];
	FILE *f = fopen(csv, "r");
	int r = CE_NOT_FOUND;

	if (!f)
		return CE_IO;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ',');

		if (!c || strncmp(line, CHIP_ID, strlen(CHIP_ID)) != 0)
			continue;
		c[33] = '\0';
		r = hex_decode(c + 1, kv, 16);
		break;
	}
	secret_wipe(line, sizeof(line));
	fclose(f);
	return r;
}

/* The vendor's side: the box's entitlement with each package key replaced
 * by E_{K_v}(K_pkg), the form only this chip's ladder opens. */
static int protect_entitlement(const char *in, const char *csv, const char *out)
{
	struct entitlement *e = calloc(1, sizeof(*e));
	uint8_t kv[16];
	int r = CE_NOMEM;

	if (!e)
		return r;
	if ((r = vendor_key(csv, kv)) != 0 || (r = entitlement_load(in, e)) != 0)
		goto out;
	for (size_t i = 0; i < e->nkeys; i++)
		if ((r = chip_protect_key(kv, e->keys[i].key)) != 0)
			goto out;
	r = entitlement_save(e, out);
out:
	secret_wipe(kv, sizeof(kv));
	entitlement_wipe(e);
	free(e);
	return r;
}

/* The TA certifies the operator's module-signing key (in-process). */
static int certify_signer(const char *ta_key, const char *op_pub_path, const char *out)
{
	uint8_t ta_priv[32], buf[CERT_MAX_BYTES];
	struct cert c = { .role = CERT_ROLE_OPERATOR };
	size_t len = 0;
	const char *pass = getenv("CASTELLAN_TA_PASSPHRASE");
	uint64_t now = now_wall_ms() / 1000;
	int r;

	if (!pass)
		return CE_ARG;
	if ((r = pk_read_file(op_pub_path, c.subject_pub)) != 0 || (r = kms_ta_load(ta_key, pass, ta_priv)) != 0)
		return r;
	c.serial = 77;
	c.not_before = now - 3600;
	c.not_after = now + 365 * 86400ull;
	snprintf(c.name, sizeof(c.name), "Demo TV module signing");
	r = cert_sign(&c, ta_priv, buf, &len);
	secret_wipe(ta_priv, sizeof(ta_priv));
	if (r == 0)
		r = file_write_atomic(out, buf, len, 0644);
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

/* Every PAT packet gets the OTA program added; the carousel (PMT + sections)
 * goes in after packet `at`, repeated `reps` times. */
static int splice_ota(const uint8_t *in, size_t nin, const char *carousel_path, size_t at, int reps, const char *out)
{
	uint8_t *car = NULL, *o = NULL, psi[376], cc = 0;
	size_t ncar = 0, no = 0;
	struct pat pat;
	int r;

	if ((r = load_ts(carousel_path, &car, &ncar)) != 0)
		return r;
	o = malloc((nin + (ncar + 1) * (size_t)reps + 1) * TS_PACKET_BYTES);
	if (!o) {
		free(car);
		return CE_NOMEM;
	}
	if ((r = ota_psi_build(1, OTA_PROGRAM, OTA_PMT_PID, OTA_PID, psi)) != 0)
		goto out;
	for (size_t i = 0; i < nin; i++) {
		const uint8_t *p = in + i * TS_PACKET_BYTES;
		uint8_t *q = o + no++ * TS_PACKET_BYTES;
		struct ts_hdr h;

		memcpy(q, p, TS_PACKET_BYTES);
		if (ts_parse(p, &h) == 0 && h.pid == TS_PID_PAT && h.pusi && !h.has_af) {
			size_t off = 5 + p[4], len = 0;

			if (off + 3 <= TS_PACKET_BYTES) {
				size_t slen = 3 + (((p[off + 1] & 0x0F) << 8) | p[off + 2]);

				if (off + slen <= TS_PACKET_BYTES && pat_parse(p + off, slen, &pat) == 0 &&
				    pat.nprog < PAT_MAX_PROGRAMS) {
					pat.prog[pat.nprog].program = OTA_PROGRAM;
					pat.prog[pat.nprog++].pid = OTA_PMT_PID;
					if (pat_build(&pat, q + 5, TS_PACKET_BYTES - 5, &len) == 0) {
						q[4] = 0;
						memset(q + 5 + len, 0xFF, TS_PACKET_BYTES - 5 - len);
					} else {
						memcpy(q, p, TS_PACKET_BYTES);
					}
				}
			}
		}
		if (i >= at && i < at + (size_t)reps) {
			uint8_t *pm = o + no++ * TS_PACKET_BYTES;

			memcpy(pm, psi + TS_PACKET_BYTES, TS_PACKET_BYTES); /* the OTA PMT */
			pm[3] = (uint8_t)((pm[3] & 0xF0) | (cc & 0x0F));
			for (size_t k = 0; k < ncar; k++) {
				uint8_t *c = o + no++ * TS_PACKET_BYTES;

				memcpy(c, car + k * TS_PACKET_BYTES, TS_PACKET_BYTES);
				c[3] = (uint8_t)((c[3] & 0xF0) | ((cc * ncar + k) & 0x0F));
			}
			cc++;
		}
	}
	r = file_write_atomic(out, o, no * TS_PACKET_BYTES, 0644);
out:
	free(car);
	free(o);
	return r;
}

/* ---- the box ---- */

struct cp_row {
	unsigned phase;
	uint8_t parity;
	uint64_t scrambled, ok, bad;
	bool by_a, by_b;
};

struct rsvc {
	uint16_t program, pmt_pid;
	bool have_pmt;
	uint16_t ecm_pid[2];   /* vendor A, B (0 = none) */
	size_t nes;
	uint16_t es[PMT_MAX_ES];
};

struct box {
	struct chip_link *host, *ctl;
	struct loader *ld;
	struct cas_host h;
	struct ota_rx *ota;
	struct psi_asm *pat_asm, *pmt_asm, *ecm_asm; /* ecm_asm: [svc][vendor] */
	struct pmt *pmt;
	struct rsvc svc[MAX_SVC];
	size_t nsvc;
	int active;            /* 0 = A, 1 = B, -1 none */
	bool switched;
	uint64_t switch_pkt;   /* stream packet index of the switch */
	uint8_t *last_ecm[MAX_SVC][2];
	size_t last_ecm_len[MAX_SVC][2];
	uint64_t ecm_seen[2][2], ecm_ok[2][2]; /* [phase][vendor] */
	int last_refusal;
	uint64_t descramble_errors;
	unsigned phase;
	uint64_t pkt;
	/* clear reference: ES packets of each service in order */
	const uint8_t **ref[MAX_SVC];
	size_t nref[MAX_SVC], refpos[MAX_SVC];
	struct cp_row cp[MAX_CP];
	size_t ncp;
	int last_parity;
	int cur_ecm_svc, cur_ecm_vendor;
};

static int find_svc(struct box *b, uint16_t pid)
{
	for (size_t i = 0; i < b->nsvc; i++)
		if (b->svc[i].pmt_pid == pid)
			return (int)i;
	return -1;
}

static void hand_ecm(struct box *b, size_t s, int v)
{
	struct cas_client *c = loader_client(b->ld);
	int r;

	if (!c || v != b->active || !b->last_ecm[s][v])
		return;
	r = c->ops->ecm(c->self, &b->h, b->svc[s].program, b->last_ecm[s][v], b->last_ecm_len[s][v]);
	if (r == 0)
		b->ecm_ok[b->phase][v]++;
	else
		b->last_refusal = r;
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
	if (b->cur_ecm_svc >= 0) {
		size_t s = (size_t)b->cur_ecm_svc;
		int v = b->cur_ecm_vendor;
		uint8_t *copy;

		b->ecm_seen[b->phase][v]++;
		/* the box keeps the last ECM of each CA PID it knows */
		copy = realloc(b->last_ecm[s][v], len);
		if (!copy)
			return 0;
		memcpy(copy, sec, len);
		b->last_ecm[s][v] = copy;
		b->last_ecm_len[s][v] = len;
		hand_ecm(b, s, v);
		return 0;
	}
	int s = find_svc(b, pid);

	if (s < 0 || b->svc[s].have_pmt || pmt_parse(sec, len, b->pmt) != 0)
		return 0;
	struct rsvc *sv = &b->svc[s];
	struct ca_desc ca[8];
	size_t nca = 0;

	sv->have_pmt = true;
	for (size_t e = 0; e < b->pmt->nes && e < PMT_MAX_ES; e++)
		sv->es[sv->nes++] = b->pmt->es[e].pid;
	if (ca_desc_find(b->pmt->info, b->pmt->info_len, ca, 8, &nca) == 0)
		for (size_t k = 0; k < nca; k++) {
			if (ca[k].ca_system_id == VENDOR_A)
				sv->ecm_pid[0] = ca[k].ca_pid;
			if (ca[k].ca_system_id == VENDOR_B)
				sv->ecm_pid[1] = ca[k].ca_pid;
		}
	for (int v = 0; v < 2; v++)
		if (sv->ecm_pid[v])
			psi_asm_init(&b->ecm_asm[s * 2 + (size_t)v], sv->ecm_pid[v]);
	return 0;
}

static void count_es(struct box *b, size_t s, const uint8_t *before, uint8_t *p)
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

static int box_feed(struct box *b, uint8_t *p)
{
	struct ts_hdr h;
	uint8_t *mod = NULL;
	size_t mlen;
	uint32_t vid;

	b->pkt++;
	if (ts_parse(p, &h) != 0)
		return 0;
	if (ota_rx_feed(b->ota, p, 1) != 0)
		return 0;
	if (!b->switched && ota_rx_take(b->ota, &mod, &mlen, &vid) == 0) {
		int r = loader_install(b->ld, mod, mlen);

		free(mod);
		if (r != 0) {
			printf("  ! the loader refused the module from the carousel: %s\n", err_str(r));
			return r;
		}
		b->active = 1;
		b->switched = true;
		b->switch_pkt = b->pkt;
		/* B's client starts from the last ECM of B's PID the box has */
		for (size_t s = 0; s < b->nsvc; s++)
			hand_ecm(b, s, 1);
	}
	if (h.pid == TS_PID_PAT) {
		b->cur_ecm_svc = -1;
		return psi_asm_push(b->pat_asm, p, &h, sec_cb, b) < 0 ? 0 : 0;
	}
	for (size_t s = 0; s < b->nsvc; s++) {
		struct rsvc *sv = &b->svc[s];

		if (h.pid == sv->pmt_pid) {
			b->cur_ecm_svc = -1;
			(void)psi_asm_push(&b->pmt_asm[s], p, &h, sec_cb, b);
			return 0;
		}
		for (int v = 0; v < 2; v++)
			if (sv->ecm_pid[v] && h.pid == sv->ecm_pid[v]) {
				b->cur_ecm_svc = (int)s;
				b->cur_ecm_vendor = v;
				(void)psi_asm_push(&b->ecm_asm[s * 2 + (size_t)v], p, &h, sec_cb, b);
				b->cur_ecm_svc = -1;
				/* both services may share the PID: go on */
			}
		for (size_t e = 0; e < sv->nes; e++) {
			uint8_t before[4];

			if (sv->es[e] != h.pid || !h.has_payload || h.payload_len == 0)
				continue;
			memcpy(before, p, 4);
			if (h.scrambling != TS_SC_CLEAR && b->active >= 0)
				if (chip_link_descramble(b->host, sv->program, DESCR_TAG_SERVICE, p, 1, NULL, NULL) != 0)
					b->descramble_errors++;
			count_es(b, s, before, p);
			return 0;
		}
	}
	return 0;
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

static int box_run(struct box *b, const char *scrambled, const uint8_t *clear, size_t nclear)
{
	uint8_t *ts = NULL;
	size_t n = 0;
	int r;

	if ((r = load_ts(scrambled, &ts, &n)) != 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		r = box_feed(b, ts + i * TS_PACKET_BYTES);
		for (size_t s = 0; s < b->nsvc; s++) {
			size_t before = 0;
			const uint8_t **seen;

			if (!b->svc[s].have_pmt || b->ref[s])
				continue;
			/* align the reference: ES packets of s already passed */
			seen = es_ref(ts, i + 1, &b->svc[s], &before);
			free(seen);
			b->ref[s] = es_ref(clear, nclear, &b->svc[s], &b->nref[s]);
			b->refpos[s] = before;
		}
	}
	free(ts);
	return r;
}

static void box_free(struct box *b)
{
	loader_free(b->ld);
	chip_link_free(b->host);
	chip_link_free(b->ctl);
	ota_rx_free(b->ota);
	free(b->pat_asm);
	free(b->pmt_asm);
	free(b->ecm_asm);
	free(b->pmt);
	for (size_t s = 0; s < MAX_SVC; s++) {
		free(b->ref[s]);
		for (int v = 0; v < 2; v++)
			free(b->last_ecm[s][v]);
	}
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
	uint64_t now_s = now_wall_ms() / 1000;
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
			"order1.bbx", "otp", "A.csv", "B.csv", "op-mod.key", "op-mod.pub", "op-mod.cert", "sms.db" };

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
		if (protect_entitlement(ent, p[v ? 11 : 10], prot) != 0) {
			fprintf(stderr, "demo-replace: protecting %s failed\n", ent);
			goto fail;
		}
	}
	printf("  SMS export: access_criteria %s -> provisioned by A and by B, package keys protected\n"
	       "  under each vendor's K_v(chip) (in-process: chip_protect_key) -> box/keys-a.json, keys-b.json\n",
		mask);
	/* 4. operator signs both modules */
	printf("4. Operator signs A's and B's client modules (castellan module sign)\n");
	RUN(&d, "op-keygen.log", "kms", "keygen", "--type", "ed25519", "--out", p[12], "--pub", p[13]);
	if (certify_signer(p[0], p[13], p[14]) != 0) {
		fprintf(stderr, "demo-replace: TA certification of the module-signing key failed\n");
		goto fail;
	}
	{
		char ma[512], mb[512], ota[512];

		path_of(&d, "A.mod", ma, sizeof(ma));
		path_of(&d, "B.mod", mb, sizeof(mb));
		path_of(&d, "ota-B.ts", ota, sizeof(ota));
		RUN(&d, "signA.log", "module", "sign", "--vendor", "0x4ADC", "--version", "1", "--rollback", "1",
			"--ca-system-id", "0x4ADC", "--keys-file", "keys-a.json", "--ta-pub", p[1], "--cert", p[14], "--key",
			p[12], "--out", ma);
		RUN(&d, "signB.log", "module", "sign", "--vendor", "0x4AE1", "--version", "1", "--rollback", "1",
			"--ca-system-id", "0x4AE1", "--keys-file", "keys-b.json", "--ta-pub", p[1], "--cert", p[14], "--key",
			p[12], "--out", mb);
		RUN(&d, "carousel.log", "module", "carousel", mb, "--pid", "0x1FC0", "--out", ota);
		printf("  module signing key certified by the TA (in-process: cert_sign; the KMS does not export\n"
		       "  its own key); A.mod, B.mod signed; B.mod as a carousel on PID 0x1FC0 (ota-B.ts)\n");
	}
	/* 5. the head-end: two ECMGs, SimulCrypt */
	if (load_ts(d.input, &clear, &nclear) != 0 || nclear < 100) {
		fprintf(stderr, "demo-replace: cannot read %s\n", d.input);
		goto fail;
	}
	{
		char ota[512], spliced[512];

		path_of(&d, "ota-B.ts", ota, sizeof(ota));
		path_of(&d, "clear+ota.ts", spliced, sizeof(spliced));
		if (splice_ota(clear, nclear, ota, nclear * 2 / 5, 3, spliced) != 0)
			goto fail;
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
		scan.cur_ecm_svc = -1;
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
	b.active = -1;
	b.cur_ecm_svc = -1;
	b.last_parity = -1;
	b.pat_asm = calloc(1, sizeof(*b.pat_asm));
	b.pmt_asm = calloc(MAX_SVC, sizeof(*b.pmt_asm));
	b.ecm_asm = calloc(MAX_SVC * 2, sizeof(*b.ecm_asm));
	b.pmt = calloc(1, sizeof(*b.pmt));
	if (!b.pat_asm || !b.pmt_asm || !b.ecm_asm || !b.pmt)
		goto fail;
	psi_asm_init(b.pat_asm, TS_PID_PAT);
	if (chip_link_connect(sock, &b.host) != 0 || chip_link_connect(ctl, &b.ctl) != 0) {
		fprintf(stderr, "demo-replace: cannot reach the chip process\n");
		show_log(&d, "chip.log");
		goto fail;
	}
	chip_link_host(b.host, NULL, NULL, &b.h);
	{
		uint8_t *mod = NULL;
		size_t mlen = 0;
		char ma[512];
		int r;

		path_of(&d, "A.mod", ma, sizeof(ma));
		if (ota_rx_new(&b.ota) != 0 || loader_open(boxdir, b.ctl, NULL, NULL, &b.ld) != 0 ||
		    file_read_all(ma, MODULE_MAX_BYTES, &mod, &mlen) != 0)
			goto fail;
		r = loader_install(b.ld, mod, mlen);
		free(mod);
		if (r != 0) {
			fprintf(stderr, "demo-replace: the box refused A's module: %s\n", err_str(r));
			goto fail;
		}
		b.active = 0;
	}
	printf("6. Box: chip " CHIP_ID " in its own process (castellan chip), loader installed A.mod\n"
	       "   (in-process box loop: demux, loader, OTA collector; CWs only inside the chip)\n");
	{
		char out1[512], in1[512];
		uint8_t *ref = NULL;
		size_t nref = 0;

		path_of(&d, "scrambled-AB.ts", out1, sizeof(out1));
		path_of(&d, "clear+ota.ts", in1, sizeof(in1));
		if (load_ts(in1, &ref, &nref) != 0)
			goto fail;
		b.phase = 0;
		if (box_run(&b, out1, ref, nref) != 0) {
			free(ref);
			goto fail;
		}
		free(ref);
	}
	printf("7. B's module arrived over the air at packet %llu: %s; the box switched to B\n",
		(unsigned long long)b.switch_pkt, b.switched ? "verified and installed by the loader" : "NOT installed");
	if (!b.switched)
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
		for (size_t s = 0; s < MAX_SVC; s++) {
			free(b.ref[s]);
			b.ref[s] = NULL;
			b.refpos[s] = 0;
			b.nref[s] = 0;
			b.svc[s].have_pmt = false;
			b.svc[s].nes = 0;
			b.svc[s].ecm_pid[0] = b.svc[s].ecm_pid[1] = 0;
		}
		b.nsvc = 0;
		psi_asm_init(b.pat_asm, TS_PID_PAT);
		b.phase = 1;
		if (box_run(&b, out2, clear, nclear) != 0)
			goto fail;
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
		printf("\n  ECMs seen/accepted by the running client: SimulCrypt stretch A %llu/%llu, B %llu/%llu;"
		       " after A off: A %llu, B %llu/%llu\n",
			(unsigned long long)b.ecm_seen[0][0], (unsigned long long)b.ecm_ok[0][0],
			(unsigned long long)b.ecm_seen[0][1], (unsigned long long)b.ecm_ok[0][1],
			(unsigned long long)b.ecm_seen[1][0], (unsigned long long)b.ecm_seen[1][1],
			(unsigned long long)b.ecm_ok[1][1]);
		printf("  SimulCrypt stretch: %llu/%llu scrambled packets descrambled, %llu undescrambled across the switch\n",
			(unsigned long long)good[0], (unsigned long long)tot[0], (unsigned long long)badc[0]);
		printf("  after A off:        %llu/%llu scrambled packets descrambled by B, %llu undescrambled\n",
			(unsigned long long)good[1], (unsigned long long)tot[1], (unsigned long long)badc[1]);
		if (b.last_refusal)
			printf("  last ECM refusal: %s\n", err_str(b.last_refusal));
		if (tot[0] == 0 || tot[1] == 0 || badc[0] || badc[1] || b.ecm_seen[1][0] != 0 || b.ecm_ok[1][1] == 0)
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
