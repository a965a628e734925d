/*
 * cmd_demo.c - `castellan demo`: the whole scrambled path on one machine.
 *
 * Runs the real commands as separate processes, as an operator would:
 *   keys init -> ecmg (TCP server on 127.0.0.1) -> scramble (SimulCrypt SCS,
 *   CSA2 or CISSA) -> provision two boxes -> stb for each box,
 * then checks the outcome itself: box A (packages 1 and 2) gets both services
 * back bit-identical to the input's elementary streams, box B (package 1
 * only) gets service 101 and cannot descramble service 102.
 * Exit 0 only if every expectation holds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/util.h"
#include "ts/psi.h"
#include "ts/ts.h"

#ifndef CASTELLAN_SOURCE_DIR
#define CASTELLAN_SOURCE_DIR "."
#endif

#define DEMO_MAX_ARGS 48
#define DEMO_MAX_SERVICES 2

struct demo {
	char dir[256];        /* work directory */
	char self[4096];      /* path of this executable */
	char *input;          /* clear TS */
	char *algo;           /* csa2 | cissa */
	unsigned cp_seconds;
	bool keep;            /* keep the work directory */
	pid_t ecmg_pid;
	uint16_t ecmg_port;
};

/* Per-service facts read from a TS: its ES PIDs. */
struct svc_info {
	uint16_t program;
	uint16_t pmt_pid;
	size_t npids;
	uint16_t pids[PMT_MAX_ES];
};

static void demo_path(const struct demo *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->dir, name);
}

/* Run `castellan args...` with stdout+stderr to log; wait. 0 if exit 0. */
static int run_cmd(const struct demo *d, const char *log_name, char *const args[])
{
	char log[512];
	pid_t pid;
	int status;

	demo_path(d, log_name, log, sizeof(log));
	pid = fork();
	if (pid < 0)
		return CE_IO;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(d->self, args);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return CE_IO;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : CE_INTERNAL;
}

static void print_log_tail(const struct demo *d, const char *log_name)
{
	char log[512], line[1024];
	FILE *f;

	demo_path(d, log_name, log, sizeof(log));
	f = fopen(log, "r");
	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", log_name);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

static int free_port(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	*port = 0;
	if (fd < 0)
		return CE_IO;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
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

static int start_ecmg(struct demo *d)
{
	char listen[64], ks[512], pf[512], log[512];
	pid_t pid;

	if (free_port(&d->ecmg_port) != 0)
		return CE_IO;
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", d->ecmg_port);
	demo_path(d, "headend.keystore", ks, sizeof(ks));
	demo_path(d, "passphrase", pf, sizeof(pf));
	demo_path(d, "ecmg.log", log, sizeof(log));
	pid = fork();
	if (pid < 0)
		return CE_IO;
	if (pid == 0) {
		char *args[] = { (char *)"castellan", (char *)"ecmg", (char *)"--listen", listen,
			(char *)"--keystore", ks, (char *)"--passphrase-file", pf, NULL };
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(d->self, args);
		_exit(127);
	}
	d->ecmg_pid = pid;
	for (int i = 0; i < 100; i++) {
		int status;

		if (port_open(d->ecmg_port))
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			d->ecmg_pid = 0;
			return CE_IO;
		}
		usleep(50 * 1000);
	}
	return CE_TIMEOUT;
}

static void stop_ecmg(struct demo *d)
{
	int status;

	if (d->ecmg_pid > 0) {
		kill(d->ecmg_pid, SIGTERM);
		for (int i = 0; i < 40; i++) {
			if (waitpid(d->ecmg_pid, &status, WNOHANG) == d->ecmg_pid) {
				d->ecmg_pid = 0;
				return;
			}
			usleep(50 * 1000);
		}
		kill(d->ecmg_pid, SIGKILL);
		waitpid(d->ecmg_pid, &status, 0);
		d->ecmg_pid = 0;
	}
}

/* Section callback collecting PAT then PMTs. */
struct psi_scan {
	struct pat pat;
	bool have_pat;
	struct pmt *pmt;
	struct svc_info svc[DEMO_MAX_SERVICES + 8];
	size_t nsvc;
};

static int scan_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct psi_scan *s = ctx;

	if (pid == TS_PID_PAT) {
		if (!s->have_pat && pat_parse(sec, len, &s->pat) == 0)
			s->have_pat = true;
		return 0;
	}
	for (size_t i = 0; i < s->nsvc; i++) {
		if (s->svc[i].pmt_pid != pid || s->svc[i].npids)
			continue;
		if (pmt_parse(sec, len, s->pmt) != 0 || s->pmt->program != s->svc[i].program)
			continue;
		for (size_t e = 0; e < s->pmt->nes && e < PMT_MAX_ES; e++)
			s->svc[i].pids[s->svc[i].npids++] = s->pmt->es[e].pid;
	}
	return 0;
}

/* Learn the services and their ES PIDs from a clear TS. */
static int scan_services(const uint8_t *ts, size_t npkts, struct psi_scan *s)
{
	struct psi_asm *pat_asm = NULL, *pmt_asm = NULL;
	int r = CE_FORMAT;

	memset(s->svc, 0, sizeof(s->svc));
	s->nsvc = 0;
	s->have_pat = false;
	s->pmt = calloc(1, sizeof(*s->pmt));
	pmt_asm = calloc(DEMO_MAX_SERVICES + 8, sizeof(*pmt_asm));
	pat_asm = calloc(1, sizeof(*pat_asm));
	if (!s->pmt || !pmt_asm || !pat_asm) {
		r = CE_NOMEM;
		goto out;
	}
	psi_asm_init(pat_asm, TS_PID_PAT);
	for (size_t i = 0; i < npkts; i++) {
		const uint8_t *p = ts + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		if (ts_parse(p, &h) != 0)
			continue;
		if (h.pid == TS_PID_PAT && !s->have_pat) {
			psi_asm_push(pat_asm, p, &h, scan_cb, s);
			if (s->have_pat) {
				for (size_t k = 0; k < s->pat.nprog && s->nsvc < DEMO_MAX_SERVICES + 8; k++) {
					if (s->pat.prog[k].program == 0)
						continue;
					s->svc[s->nsvc].program = s->pat.prog[k].program;
					s->svc[s->nsvc].pmt_pid = s->pat.prog[k].pid;
					psi_asm_init(&pmt_asm[s->nsvc], s->pat.prog[k].pid);
					s->nsvc++;
				}
			}
			continue;
		}
		for (size_t k = 0; k < s->nsvc; k++)
			if (h.pid == s->svc[k].pmt_pid)
				psi_asm_push(&pmt_asm[k], p, &h, scan_cb, s);
	}
	r = s->have_pat && s->nsvc ? 0 : CE_FORMAT;
out:
	free(pat_asm);
	free(pmt_asm);
	free(s->pmt);
	s->pmt = NULL;
	return r;
}

/* Compare the packets of the service's ES PIDs, in order, between the clear
 * input and a box output; count how many were scrambled in `scrambled`. */
struct svc_verdict {
	size_t pkts;        /* ES packets in the input */
	size_t equal;       /* identical in the box output */
	size_t scrambled;   /* scrambled in the scrambler output */
	bool identical;
};

static bool pid_in(const struct svc_info *s, uint16_t pid)
{
	for (size_t i = 0; i < s->npids; i++)
		if (s->pids[i] == pid)
			return true;
	return false;
}

/* Extract the ES packets of a service from a TS into a compact array.
 * Packets without payload (adaptation field only, e.g. PCR carriers) are
 * never scrambled (ISO/IEC 13818-1 transport_scrambling_control covers the
 * payload only), so they are left out of the comparison. */
static size_t es_packets(const uint8_t *ts, size_t npkts, const struct svc_info *s, const uint8_t **out,
	size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < npkts && n < cap; i++) {
		const uint8_t *p = ts + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		if (ts_parse(p, &h) == 0 && pid_in(s, h.pid) && h.has_payload && h.payload_len > 0)
			out[n++] = p;
	}
	return n;
}

static int verdict(const uint8_t *in, size_t nin, const uint8_t *scr, size_t nscr, const uint8_t *box,
	size_t nbox, const struct svc_info *s, struct svc_verdict *v)
{
	const uint8_t **a = calloc(nin + 1, sizeof(*a));
	const uint8_t **b = calloc(nbox + 1, sizeof(*b));
	const uint8_t **c = calloc(nscr + 1, sizeof(*c));
	size_t na, nb, nc;
	int r = CE_NOMEM;

	memset(v, 0, sizeof(*v));
	if (!a || !b || !c)
		goto out;
	na = es_packets(in, nin, s, a, nin);
	nb = es_packets(box, nbox, s, b, nbox);
	nc = es_packets(scr, nscr, s, c, nscr);
	v->pkts = na;
	for (size_t i = 0; i < nc; i++)
		if ((c[i][3] >> 6) != 0)
			v->scrambled++;
	for (size_t i = 0; i < na && i < nb; i++)
		if (memcmp(a[i], b[i], TS_PACKET_BYTES) == 0)
			v->equal++;
	v->identical = na > 0 && na == nb && v->equal == na;
	r = 0;
out:
	free(a);
	free(b);
	free(c);
	return r;
}

static int load_ts(const char *path, uint8_t **buf, size_t *npkts)
{
	size_t len;
	int r = file_read_all(path, 512u << 20, buf, &len);

	*npkts = r == 0 ? len / TS_PACKET_BYTES : 0;
	return r;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: castellan demo [--input CLEAR.ts] [--algo csa2|cissa] [--cp-duration S] [--keep]\n\n"
		"End-to-end demo on this machine: create a head-end keystore, start the ECMG,\n"
		"scramble a two-service transport stream over DVB SimulCrypt, provision two\n"
		"boxes (A: packages 1+2, B: package 1) and descramble with each. Succeeds only\n"
		"if box A gets both services back bit-identical and box B gets service 1 but\n"
		"not service 2.\n\n"
		"  --input FILE      clear TS with two services (default: tests/data/ts-clear-2svc.ts)\n"
		"  --algo ALG        csa2 (default) or cissa\n"
		"  --cp-duration S   crypto-period in seconds (default 4)\n"
		"  --keep            keep the work directory (keystore, TS files, logs)\n");
}

int cmd_demo(int argc, char **argv)
{
	static char default_input[4096];
	struct demo d = { .algo = "csa2", .cp_seconds = 4 };
	struct psi_scan scan;
	uint8_t *in = NULL, *scr = NULL, *boxa = NULL, *boxb = NULL;
	size_t nin = 0, nscr = 0, na = 0, nb = 0;
	char ks[512], pf[512], scrp[512], enta[512], entb[512], outa[512], outb[512];
	char listen[64], cp[16], start[24], finish[24], svc1[64], svc2[64], pass_hex[65];
	uint8_t pass[32];
	uint64_t t0_us, now_s;
	int rc = 1;
	bool ok = true;

	if (cli_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	snprintf(default_input, sizeof(default_input), "%s/tests/data/ts-clear-2svc.ts", CASTELLAN_SOURCE_DIR);
	d.input = default_input;
	for (int i = 1; i < argc; i++) {
		uint64_t v;

		if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
			d.input = argv[++i];
		} else if (strcmp(argv[i], "--algo") == 0 && i + 1 < argc) {
			d.algo = argv[++i];
			if (strcmp(d.algo, "csa2") != 0 && strcmp(d.algo, "cissa") != 0) {
				fprintf(stderr, "demo: --algo must be csa2 or cissa\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--cp-duration") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], 3600, &v) != 0 || v == 0) {
				fprintf(stderr, "demo: bad --cp-duration\n");
				return 2;
			}
			d.cp_seconds = (unsigned)v;
		} else if (strcmp(argv[i], "--keep") == 0) {
			d.keep = true;
		} else {
			usage(stderr);
			return 2;
		}
	}
	{
		ssize_t n = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);

		if (n <= 0) {
			fprintf(stderr, "demo: cannot find own executable\n");
			return 1;
		}
		d.self[n] = '\0';
	}
	snprintf(d.dir, sizeof(d.dir), "/tmp/castellan-demo-XXXXXX");
	if (!mkdtemp(d.dir)) {
		fprintf(stderr, "demo: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	t0_us = now_mono_us();
	printf("Castellan demo: %s scrambling over DVB SimulCrypt, crypto-period %u s\n", d.algo, d.cp_seconds);
	printf("  input    %s\n  work dir %s\n", d.input, d.dir);

	/* 1. head-end keystore, under a passphrase generated for this run */
	demo_path(&d, "passphrase", pf, sizeof(pf));
	demo_path(&d, "headend.keystore", ks, sizeof(ks));
	if (RAND_bytes(pass, sizeof(pass)) != 1)
		goto fail;
	hex_encode(pass, sizeof(pass), pass_hex);
	secret_wipe(pass, sizeof(pass));
	if (file_write_atomic(pf, pass_hex, strlen(pass_hex), 0600) != 0)
		goto fail;
	secret_wipe(pass_hex, sizeof(pass_hex));
	{
		char *args[] = { (char *)"castellan", (char *)"keys", (char *)"init", (char *)"--out", ks,
			(char *)"--ca-system-id", (char *)"0x4ADC", (char *)"--passphrase-file", pf, NULL };

		if (run_cmd(&d, "keys.log", args) != 0) {
			print_log_tail(&d, "keys.log");
			goto fail;
		}
	}
	/* 2. the ECMG, a TCP server on loopback */
	if (start_ecmg(&d) != 0) {
		fprintf(stderr, "demo: the ECMG did not start\n");
		print_log_tail(&d, "ecmg.log");
		goto fail;
	}
	printf("  head-end ECMG listening on 127.0.0.1:%u (CA_system_id 0x4ADC)\n", d.ecmg_port);

	/* 3. scramble: service 101 in package 1 (mask 00000001), 102 in package 2 */
	if (load_ts(d.input, &in, &nin) != 0 || scan_services(in, nin, &scan) != 0 || scan.nsvc < 2) {
		fprintf(stderr, "demo: %s is not a TS with two services\n", d.input);
		goto fail;
	}
	demo_path(&d, "scrambled.ts", scrp, sizeof(scrp));
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", d.ecmg_port);
	snprintf(cp, sizeof(cp), "%u", d.cp_seconds);
	snprintf(svc1, sizeof(svc1), "%u:ac=00000001", scan.svc[0].program);
	snprintf(svc2, sizeof(svc2), "%u:ac=00000002", scan.svc[1].program);
	{
		char *args[] = { (char *)"castellan", (char *)"scramble", (char *)"--input", d.input,
			(char *)"--output", scrp, (char *)"--service", svc1, (char *)"--service", svc2,
			(char *)"--ecmg", listen, (char *)"--super-cas-id", (char *)"0x4ADC0001",
			(char *)"--algo", d.algo, (char *)"--cp-duration", cp, NULL };

		if (run_cmd(&d, "scramble.log", args) != 0) {
			print_log_tail(&d, "scramble.log");
			goto fail;
		}
	}
	stop_ecmg(&d);
	if (load_ts(scrp, &scr, &nscr) != 0)
		goto fail;

	/* 4. two boxes: A has packages 1+2, B only package 1 */
	now_s = now_wall_ms() / 1000;
	snprintf(start, sizeof(start), "%llu", (unsigned long long)(now_s - 3600));
	snprintf(finish, sizeof(finish), "%llu", (unsigned long long)(now_s + 30 * 86400));
	demo_path(&d, "boxA.entitlement", enta, sizeof(enta));
	demo_path(&d, "boxB.entitlement", entb, sizeof(entb));
	demo_path(&d, "boxA.ts", outa, sizeof(outa));
	demo_path(&d, "boxB.ts", outb, sizeof(outb));
	for (int b = 0; b < 2; b++) {
		char *pargs[] = { (char *)"castellan", (char *)"provision", (char *)"--keystore", ks,
			(char *)"--passphrase-file", pf, (char *)"--card", (char *)(b ? "2100000002" : "2100000001"),
			(char *)"--packages", (char *)(b ? "00000001" : "00000003"), (char *)"--start", start,
			(char *)"--finish", finish, (char *)"--out", b ? entb : enta, NULL };
		char *sargs[] = { (char *)"castellan", (char *)"stb", (char *)"--input", scrp, (char *)"--output",
			b ? outb : outa, (char *)"--entitlement", b ? entb : enta, NULL };

		if (run_cmd(&d, b ? "provisionB.log" : "provisionA.log", pargs) != 0) {
			print_log_tail(&d, b ? "provisionB.log" : "provisionA.log");
			goto fail;
		}
		if (run_cmd(&d, b ? "boxB.log" : "boxA.log", sargs) != 0) {
			print_log_tail(&d, b ? "boxB.log" : "boxA.log");
			goto fail;
		}
	}
	if (load_ts(outa, &boxa, &na) != 0 || load_ts(outb, &boxb, &nb) != 0)
		goto fail;

	/* 5. the verdict, checked here against the clear input */
	printf("\n  %-28s %-34s %-34s\n", "", "box A (card 2100000001, pkg 1+2)", "box B (card 2100000002, pkg 1)");
	for (size_t k = 0; k < 2; k++) {
		struct svc_verdict va, vb;
		char la[64], lb[64];
		bool want_b = k == 0;

		if (verdict(in, nin, scr, nscr, boxa, na, &scan.svc[k], &va) != 0 ||
		    verdict(in, nin, scr, nscr, boxb, nb, &scan.svc[k], &vb) != 0)
			goto fail;
		snprintf(la, sizeof(la), "%s %zu/%zu pkts", va.identical ? "CLEAR, bit-identical" : "NOT clear",
			va.equal, va.pkts);
		snprintf(lb, sizeof(lb), "%s %zu/%zu pkts", vb.identical ? "CLEAR, bit-identical" :
			(vb.equal == 0 ? "stays scrambled" : "NOT clear"), vb.equal, vb.pkts);
		printf("  service %-5u (package %zu)    %-34s %-34s\n", scan.svc[k].program, k + 1, la, lb);
		if (va.scrambled == 0) {
			printf("    ! the scrambler left service %u in the clear\n", scan.svc[k].program);
			ok = false;
		}
		if (!va.identical || vb.identical != want_b || (!want_b && vb.equal != 0))
			ok = false;
	}
	printf("\n  what box B said:\n");
	{
		char log[512], line[512];
		FILE *f;

		demo_path(&d, "boxB.log", log, sizeof(log));
		f = fopen(log, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, "service"))
				printf("    %s", line);
		if (f)
			fclose(f);
	}
	printf("\n  %s in %.1f s\n", ok ? "DEMO PASSED: box A sees both services, box B only the one it pays for"
				      : "DEMO FAILED", (double)(now_mono_us() - t0_us) / 1e6);
	rc = ok ? 0 : 1;
	goto out;
fail:
	fprintf(stderr, "demo: failed (logs in %s)\n", d.dir);
	d.keep = true;
out:
	stop_ecmg(&d);
	free(in);
	free(scr);
	free(boxa);
	free(boxb);
	if (!d.keep && rc == 0) {
		char cmd[512];

		/* the work dir holds only files this run wrote */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "demo: could not remove %s\n", d.dir);
	} else if (rc == 0) {
		printf("  files kept in %s\n", d.dir);
	}
	return rc;
}
