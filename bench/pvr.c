/*
 * bench/pvr.c - the recorder's cost (C.6, stb/pvr.h): the box on TSDuck's
 * CSA2-scrambled capture (fixed CW) as it plays, then the same with
 * --record's path on every packet it gives back: filter, AES-128-GCM chunk
 * sealing under the box's recording key and the file write; once with the
 * key in this process (a cardless box's device key) and once with the key
 * in a spawned secure chip (a request per 64-packet chunk). Playback (check
 * every tag, then decrypt again and hand the packets on) is timed too.
 * The file is on /dev/shm (tmpfs): the figure is the box's CPU, not a disk.
 * Prints a markdown section. Usage: bench_pvr [TESTDATA_DIR] [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/pvr.h"
#include "stb/stb.h"

#define CAP "simulcrypt/captures/ts-csa2-svc101-cw0123456789abcdef.ts"
#define FEED_PKTS 512

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int null_sink(void *ctx, const uint8_t *p, size_t n)
{
	(void)p;
	*(size_t *)ctx += n;
	return 0;
}

/* One pass of the box over in (npkts); with k, recording to path. ns. */
static uint64_t run(const uint8_t *in, size_t npkts, uint8_t *out, const struct pvr_keyer *k, const char *path)
{
	static const uint8_t cw[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF };
	struct cas_client c = { 0 };
	struct stb_config cfg = { .csa2_reduce = true };
	struct stb *box = NULL;
	struct pvr_rec *rec = NULL;
	struct pvr_rec_stats st;
	uint64_t t0;

	if (stb_fixed_cw_client_new(CW_ALG_CSA2, cw, sizeof(cw), &c) != 0)
		exit(1);
	cfg.client = &c;
	if (stb_new(&cfg, &box) != 0 || (k && pvr_rec_open(path, k, 0, 1, &rec) != 0))
		exit(1);
	t0 = now_ns();
	for (size_t off = 0; off < npkts; off += FEED_PKTS) {
		size_t n = npkts - off < FEED_PKTS ? npkts - off : FEED_PKTS;

		if (stb_feed(box, in + off * 188, n, out + off * 188) != 0 ||
		    (rec && pvr_rec_feed(rec, box, out + off * 188, n) != 0))
			exit(1);
	}
	if (rec && pvr_rec_close(rec, &st) != 0)
		exit(1);
	t0 = now_ns() - t0;
	stb_free(box);
	cas_client_free(&c);
	return t0;
}

static uint64_t play(const struct pvr_keyer *k, const char *path, size_t *pkts)
{
	FILE *f = fopen(path, "rb");
	uint64_t t0 = now_ns();

	*pkts = 0;
	if (!f || pvr_play(k, f, 2, null_sink, pkts, NULL) != 0)
		exit(1);
	t0 = now_ns() - t0;
	fclose(f);
	return t0;
}

static double mbps(size_t pkts, uint64_t ns) { return ns ? (double)pkts * 188 * 8 / ((double)ns / 1e9) / 1e6 : 0; }

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/data";
	uint64_t rounds = 20;
	char cap[4096], path[] = "/dev/shm/bench-pvr-XXXXXX"; /* tmpfs: CPU, not the disk */
	uint8_t *one = NULL, *in, *out, key[16];
	size_t len = 0, npkts, played = 0;
	uint64_t best[4] = { UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX }, bplay = UINT64_MAX;
	struct pvr_keyer kdev, kchip;
	struct chip_link *ctl = NULL, *host = NULL;
	struct chip_otp otp = { .chip_id = 0x77 };
	pid_t pid;
	int fd;

	if (argc > 2 && (parse_u64(argv[2], 10000, &rounds) != 0 || rounds == 0))
		return 2;
	snprintf(cap, sizeof(cap), "%s/%s", dir, CAP);
	if (file_read_all(cap, 64u << 20, &one, &len) != 0 || len % 188) {
		fprintf(stderr, "bench_pvr: cannot read %s\n", cap);
		return 1;
	}
	/* the capture 20 times over: a few MB, past the caches' easy cases */
	npkts = len / 188 * 20;
	in = malloc(npkts * 188);
	out = malloc(npkts * 188);
	if (!in || !out)
		return 1;
	for (size_t i = 0; i < 20; i++)
		memcpy(in + i * len, one, len);
	memset(key, 0x5A, sizeof(key));
	memset(otp.root, 0x3C, sizeof(otp.root));
	if ((fd = mkstemp(path)) < 0)
		return 1;
	close(fd);
	if (pvr_keyer_device(key, sizeof(key), 1, &kdev) != 0 || chip_spawn(&otp, &ctl, &host, &pid) != 0 ||
	    pvr_keyer_chip(host, &kchip) != 0)
		return 1;
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t t[3] = { run(in, npkts, out, NULL, NULL), 0, run(in, npkts, out, &kchip, path) }, tp;

		t[1] = run(in, npkts, out, &kdev, path);
		tp = play(&kdev, path, &played);
		for (int i = 0; i < 3; i++)
			best[i] = t[i] < best[i] ? t[i] : best[i];
		bplay = tp < bplay ? tp : bplay;
	}
	printf("## Recording (C.6: stb --record, bench/pvr.c)\n\n");
	printf("Box on TSDuck's CSA2 capture x20 (%zu packets, fixed CW, 512-packet feeds), best of %llu:\n\n", npkts,
		(unsigned long long)rounds);
	printf("| path | time (ms) | Mbit/s of TS | vs playing only |\n|---|---|---|---|\n");
	printf("| descramble only (box output) | %.1f | %.0f | 1.00 |\n", best[0] / 1e6, mbps(npkts, best[0]));
	printf("| descramble + record, key in the box (device key) | %.1f | %.0f | %.2f |\n", best[1] / 1e6,
		mbps(npkts, best[1]), (double)best[1] / (double)best[0]);
	printf("| descramble + record, key in the chip process | %.1f | %.0f | %.2f |\n", best[2] / 1e6,
		mbps(npkts, best[2]), (double)best[2] / (double)best[0]);
	printf("| playback (verify every tag, then decrypt; %zu packets) | %.1f | %.0f | |\n\n", played, bplay / 1e6,
		mbps(played, bplay));
	unlink(path);
	pvr_keyer_free(&kdev);
	pvr_keyer_free(&kchip);
	chip_link_free(ctl);
	chip_link_free(host);
	(void)chip_wait(pid);
	free(one);
	free(in);
	free(out);
	return 0;
}
