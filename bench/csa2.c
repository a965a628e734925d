/*
 * bench/csa2.c - Castellan's own DVB-CSA2 engine against Debian's libdvbcsa
 * (bitslice API, dvbcsa_bs_encrypt/decrypt, full batches), every figure
 * next to libdvbcsa measured in the same process, alternately:
 *   1. raw engines (avx512, avx2, sse2, portable: those this CPU runs), both
 *      directions, 2048 payloads of 184 bytes;
 *   2. the whole scrambler: `castellan scramble --fixed-cw` run as a child
 *      process on 40 x tests/data/ts-clear-2svc.ts (services 101 and 102),
 *      output to /dev/null, default engine and forced AVX2, default
 *      --max-delay-ms and 10000 ms; its CPU time (user + sys) from wait4;
 *   3. the box: stb_feed with a fixed-CW client on TSDuck's CSA2 capture.
 * Mbit/s count 188-byte packets: for the scrambler and the box, those that
 * were scrambled / descrambled (pkts_scrambled from --stats-json), and the
 * whole TS too. CPU time, not wall time (the machine is shared); each row
 * is the median of ROUNDS rounds, the ratio the median of the per-round
 * ratios (engine and reference measured back to back in each round).
 * Usage: bench_csa2 [RESULTS_FILE [CASTELLAN_BIN [TESTDATA_DIR]]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <dvbcsa/dvbcsa.h>
#include "cas/client.h"
#include "cipher/cipher.h"
#include "cipher/csa2_bs.h"
#include "lib/util.h"
#include "stb/stb.h"
#include "ts/ts.h"

#define NPKT 2048
#define ROUNDS 7
#define MIN_NS 150000000ull
#define LOOPS 40
#define PKT 188

static const uint8_t cw[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF };

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint8_t payload[NPKT][184];

/* libdvbcsa bitslice, full batches: Mbit/s of 188-byte packets */
static double ref_mbps(bool enc)
{
	static struct dvbcsa_bs_batch_s batch[1025];
	struct dvbcsa_bs_key_s *k = dvbcsa_bs_key_alloc();
	unsigned bs = dvbcsa_bs_batch_size();
	uint64_t t0 = cpu_ns(), t, n = 0;

	dvbcsa_bs_key_set(cw, k);
	do {
		for (size_t i = 0; i < NPKT; i += bs) {
			for (unsigned j = 0; j < bs; j++) {
				batch[j].data = payload[i + j];
				batch[j].len = 184;
			}
			batch[bs].data = NULL;
			if (enc)
				dvbcsa_bs_encrypt(k, batch, 184);
			else
				dvbcsa_bs_decrypt(k, batch, 184);
		}
		n += NPKT;
		t = cpu_ns() - t0;
	} while (t < MIN_NS);
	dvbcsa_bs_key_free(k);
	return (double)n * PKT * 8 / ((double)t / 1e9) / 1e6;
}

static double engine_mbps(const struct csa2_impl *im, bool enc)
{
	static struct cipher_payload pl[NPKT];
	void *work = aligned_alloc(64, (im->work_bytes + 63) & ~(size_t)63);
	struct csa2_key k;
	uint64_t t0, t, n = 0;

	if (!work)
		return -1;
	csa2_key_set(&k, cw);
	for (size_t i = 0; i < NPKT; i++) {
		pl[i].p = payload[i];
		pl[i].len = 184;
	}
	t0 = cpu_ns();
	do {
		for (size_t i = 0; i < NPKT; i += im->lanes)
			im->run(&k, pl + i, im->lanes, enc, work);
		n += NPKT;
		t = cpu_ns() - t0;
	} while (t < MIN_NS);
	free(work);
	return (double)n * PKT * 8 / ((double)t / 1e9) / 1e6;
}

/* One `castellan scramble` run: CPU seconds of the child, scrambled packets. */
static int run_scramble(const char *bin, const char *in, const char *engine, const char *delay, double *cpu_s,
			unsigned long long *scrambled)
{
	char stats[] = "/tmp/bench_csa2_stats_XXXXXX";
	int fd = mkstemp(stats), status = 0;
	pid_t pid;
	struct rusage ru;
	uint8_t *txt = NULL;
	size_t len = 0;
	const char *p;

	if (fd < 0)
		return -1;
	close(fd);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 2); /* the counters it prints at the end */
		if (engine)
			setenv("CASTELLAN_CSA_IMPL", engine, 1);
		else
			unsetenv("CASTELLAN_CSA_IMPL");
		execl(bin, bin, "scramble", "--input", in, "--output", "/dev/null", "--service", "101", "--service",
		      "102", "--fixed-cw", "0123456789abcdef", "--max-delay-ms", delay, "--stats-json", stats,
		      "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		unlink(stats);
		return -1;
	}
	*cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		 (double)ru.ru_stime.tv_usec / 1e6;
	*scrambled = 0;
	if (file_read_all(stats, 1u << 20, &txt, &len) != 0 || !(txt = realloc(txt, len + 1))) {
		unlink(stats);
		return -1;
	}
	txt[len] = 0;
	p = strstr((char *)txt, "\"pkts_scrambled\"");
	if (p) { /* "pkts_scrambled":N, */
		const char *num = p + strlen("\"pkts_scrambled\"") + 1;
		char *end = NULL;
		unsigned long long v;

		num += strspn(num, " ");
		v = *num >= '0' && *num <= '9' ? strtoull(num, &end, 10) : 0;
		*scrambled = end && end != num && (*end == ',' || *end == '}' || *end == '\n') ? v : 0;
	}
	free(txt);
	unlink(stats);
	return *scrambled ? 0 : -1;
}

/* The box on TSDuck's CSA2 capture: Mbit/s of descrambled packets and of
 * the whole TS, per CPU second. */
static int box_mbps(const char *dir, double *scr_mbps, double *ts_mbps)
{
	char path[4096];
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0, npkts, nscr = 0;
	struct cas_client c = { 0 };
	struct stb *box = NULL;
	struct stb_config cfg = { .client = &c, .csa2_reduce = true };
	uint64_t t0, t, loops = 0;
	int r = -1;

	snprintf(path, sizeof(path), "%s/simulcrypt/captures/ts-csa2-svc101-cw0123456789abcdef.ts", dir);
	if (file_read_all(path, 64u << 20, &in, &len) != 0)
		return -1;
	npkts = len / PKT;
	out = malloc(npkts * PKT);
	if (!out || stb_fixed_cw_client_new(CW_ALG_CSA2, cw, 8, &c) != 0 || stb_new(&cfg, &box) != 0)
		goto out;
	for (size_t i = 0; i < npkts; i++)
		if (in[i * PKT + 3] >> 6)
			nscr++;
	t0 = cpu_ns();
	do {
		for (size_t off = 0; off < npkts; off += 4096) {
			size_t n = npkts - off < 4096 ? npkts - off : 4096;

			if (stb_feed(box, in + off * PKT, n, out + off * PKT) != 0)
				goto out;
		}
		loops++;
		t = cpu_ns() - t0;
	} while (t < 2 * MIN_NS);
	*scr_mbps = (double)(loops * nscr) * PKT * 8 / ((double)t / 1e9) / 1e6;
	*ts_mbps = (double)(loops * npkts) * PKT * 8 / ((double)t / 1e9) / 1e6;
	r = 0;
out:
	stb_free(box);
	cas_client_free(&c);
	free(in);
	free(out);
	return r;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "avx512", "avx2", "sse2", "portable" };
	FILE *o = argc > 1 ? fopen(argv[1], "w") : stdout;
	char bin[4096], tmp[] = "/tmp/bench_csa2_in_XXXXXX", la[64] = "unknown";
	const char *dir = argc > 3 ? argv[3] : "tests/data";
	uint8_t *ts = NULL;
	size_t tslen = 0;
	double startup_s = 0;
	FILE *f;
	int fd;

	if (!o)
		return 1;
	if (argc > 2) {
		snprintf(bin, sizeof(bin), "%s", argv[2]);
	} else {
		char self[4000];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (n <= 0)
			return 1;
		self[n] = 0;
		*strrchr(self, '/') = 0;
		snprintf(bin, sizeof(bin), "%s/../src/cli/castellan", self);
	}
	for (size_t i = 0; i < NPKT; i++)
		for (size_t j = 0; j < 184; j++)
			payload[i][j] = (uint8_t)(i * 131 + j * 7 + (i >> 3));
	if ((f = fopen("/proc/loadavg", "r")) != NULL) {
		if (fgets(la, sizeof(la), f))
			la[strcspn(la, " ")] = 0;
		fclose(f);
	}
	fprintf(o, "## DVB-CSA2: own bitslice engine vs libdvbcsa (bench/csa2.c)\n\n");
	fprintf(o, "CPU time of one core (thread or child process), median of %d rounds; each round measures the\n"
		   "row and Debian's libdvbcsa %s bitslice (batch %u) back to back, the ratio is the median of the\n"
		   "per-round ratios. Load average at start: %s. Default engine here: %s.\n\n",
		ROUNDS, "1.1.0", dvbcsa_bs_batch_size(), la, csa2_impl_default()->name);

	/* 1. raw engines */
	fprintf(o, "### Raw engine, 184-byte payloads (Mbit/s of 188-byte packets)\n\n");
	fprintf(o, "| engine | batch | direction | engine Mbit/s | libdvbcsa bs Mbit/s | engine / libdvbcsa |\n");
	fprintf(o, "|---|---:|---|---:|---:|---:|\n");
	for (size_t ni = 0; ni < 4; ni++) {
		const struct csa2_impl *im = csa2_impl_by_name(names[ni]);

		if (!im) {
			fprintf(o, "| %s | - | - | not on this CPU | | |\n", names[ni]);
			continue;
		}
		for (int enc = 1; enc >= 0; enc--) {
			double e[ROUNDS], r[ROUNDS], q[ROUNDS];

			for (int k = 0; k < ROUNDS; k++) {
				r[k] = ref_mbps(enc);
				e[k] = engine_mbps(im, enc);
				q[k] = e[k] / r[k];
			}
			fprintf(o, "| %s | %u | %s | %.0f | %.0f | %.2f |\n", im->name, im->lanes,
				enc ? "scramble" : "descramble", median(e, ROUNDS), median(r, ROUNDS), median(q, ROUNDS));
			fflush(o);
		}
	}

	/* 2. the scrambler, as a child process */
	fd = mkstemp(tmp);
	if (fd < 0 || file_read_all("tests/data/ts-clear-2svc.ts", 64u << 20, &ts, &tslen) != 0)
		goto box;
	for (int l = 0; l < LOOPS; l++)
		if (write(fd, ts, tslen) != (ssize_t)tslen)
			goto box;
	close(fd);
	fd = -1;
	fprintf(o, "\n### Whole scrambler: `castellan scramble --fixed-cw` (2 services, %d x ts-clear-2svc.ts, %.0f MB)\n\n",
		LOOPS, (double)tslen * LOOPS / 1e6);
	{
		/* the process's fixed cost (dynamic linking, set-up): the same
		 * command on an empty input */
		char empty[] = "/tmp/bench_csa2_empty_XXXXXX";
		int efd = mkstemp(empty);
		unsigned long long dummy = 0;
		double c[ROUNDS];
		int k;

		if (efd >= 0)
			close(efd);
		for (k = 0; k < ROUNDS && efd >= 0; k++) {
			c[k] = 0;
			(void)run_scramble(bin, empty, NULL, "200", &c[k], &dummy); /* 0 scrambled: "fails" */
		}
		startup_s = efd >= 0 ? median(c, ROUNDS) : 0;
		unlink(empty);
	}
	fprintf(o, "Start-up (the same command on an empty file: dynamic linking, set-up): %.1f ms of CPU; the last two\n"
		   "columns leave it out (a head-end scrambler runs for months).\n\n", startup_s * 1e3);
	fprintf(o, "| engine | --max-delay-ms | scrambled packets | Mbit/s of scrambled packets | whole TS Mbit/s | "
		   "libdvbcsa bs Mbit/s | scrambled Mbit/s / libdvbcsa | same without start-up | ratio without start-up |\n"
		   "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	{
		static const char *const eng[] = { NULL, "avx2", "portable" };
		static const char *const delay[] = { "200", "10000" };

		for (int ei = 0; ei < 3; ei++) {
			if (eng[ei] && !csa2_impl_by_name(eng[ei]))
				continue;
			for (int di = 0; di < 2; di++) {
				double s[ROUNDS], w[ROUNDS], r[ROUNDS], q[ROUNDS], s2[ROUNDS], q2[ROUNDS];
				unsigned long long np = 0;
				int ok = 1;

				if (ei == 2 && di == 1)
					continue;
				for (int k = 0; k < ROUNDS && ok; k++) {
					double cpu = 0;

					r[k] = ref_mbps(true);
					if (run_scramble(bin, tmp, eng[ei], delay[di], &cpu, &np) != 0) {
						ok = 0;
						break;
					}
					s[k] = (double)np * PKT * 8 / cpu / 1e6;
					w[k] = (double)tslen * LOOPS * 8 / cpu / 1e6;
					q[k] = s[k] / r[k];
					s2[k] = (double)np * PKT * 8 / (cpu - startup_s) / 1e6;
					q2[k] = s2[k] / r[k];
				}
				if (!ok) {
					fprintf(o, "| %s | %s | FAILED to run %s | | | | |\n", eng[ei] ? eng[ei] : "default",
						delay[di], bin);
					continue;
				}
				fprintf(o, "| %s | %s | %llu | %.0f | %.0f | %.0f | %.2f | %.0f | %.2f |\n",
					eng[ei] ? eng[ei] : csa2_impl_default()->name, delay[di], np, median(s, ROUNDS),
					median(w, ROUNDS), median(r, ROUNDS), median(q, ROUNDS), median(s2, ROUNDS),
					median(q2, ROUNDS));
				fflush(o);
			}
		}
	}
	unlink(tmp);
box:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(ts);
	/* 3. the box */
	{
		double s[ROUNDS], w[ROUNDS], r[ROUNDS], q[ROUNDS];
		int k;

		for (k = 0; k < ROUNDS; k++) {
			r[k] = ref_mbps(false);
			if (box_mbps(dir, &s[k], &w[k]) != 0)
				break;
			q[k] = s[k] / r[k];
		}
		fprintf(o, "\n### Box descrambling: `stb_feed`, fixed-CW client, TSDuck's CSA2 capture (15 %% scrambled)\n\n");
		if (k < ROUNDS) {
			fprintf(o, "FAILED (capture not found under %s?)\n\n", dir);
		} else {
			fprintf(o, "| engine | Mbit/s of descrambled packets | whole TS Mbit/s | libdvbcsa bs decrypt Mbit/s | "
				   "descrambled Mbit/s / libdvbcsa |\n|---|---:|---:|---:|---:|\n");
			fprintf(o, "| %s | %.0f | %.0f | %.0f | %.2f |\n\n", csa2_impl_default()->name, median(s, ROUNDS),
				median(w, ROUNDS), median(r, ROUNDS), median(q, ROUNDS));
		}
	}
	if (o != stdout)
		fclose(o);
	return 0;
}
