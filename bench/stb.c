/*
 * bench/stb.c - the set-top box's two numbers (DESIGN.md section 4):
 *   1. ECM -> CW: from handing one ECM section to the cardless client to
 *      the CW being in the descrambler slot (in-process, median / p99);
 *   2. descramble throughput through the whole box (demux + section
 *      assembly + batches), CSA2 and CISSA, on TSDuck's scrambled captures,
 *      next to the raw ts_cipher_descramble speed on the same packets.
 * Prints a markdown section on stdout. Usage: bench_stb [SHARED_DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "client/cardless.h"
#include "cas/client.h"
#include "cas/ecm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "lib/util.h"
#include "stb/descrambler.h"
#include "stb/stb.h"

#define N_ECMS 4000
#define T_NOW_MS 1750000000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t fixed_clock(void *ctx)
{
	(void)ctx;
	return T_NOW_MS;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int bench_ecm(void)
{
	struct keystore *ks = NULL;
	struct entitlement *e = calloc(1, sizeof(*e));
	struct cas_client c = { 0 };
	struct descrambler *d = NULL;
	struct descrambler_config dc = { .csa2_reduce = true, .now_ms = fixed_clock };
	struct cas_host host;
	uint8_t (*ecm)[ECM_MAX_SECTION] = calloc(N_ECMS, ECM_MAX_SECTION);
	size_t *len = calloc(N_ECMS, sizeof(*len));
	uint64_t *lat = calloc(N_ECMS, sizeof(*lat));
	size_t ok = 0;
	int r = 1;

	if (!e || !ecm || !len || !lat)
		goto out;
	if (keystore_generate(0x4ADC, 0, &ks) != 0)
		goto out;
	e->ca_system_id = 0x4ADC;
	e->card_serial = 2100000001;
	e->packages = 0x00000001;
	e->start_s = T_NOW_MS / 1000 - 86400;
	e->finish_s = T_NOW_MS / 1000 + 86400;
	if (entitlement_issue(ks, e) != 0 || cardless_client_from(e, &c) != 0)
		goto out;
	for (size_t i = 0; i < N_ECMS; i++) {
		struct ecm_params p;

		memset(&p, 0, sizeof(p));
		p.alg = CW_ALG_CSA2;
		p.ecm_id = 1;
		p.ca_system_id = 0x4ADC;
		p.cp_number = (uint16_t)i;
		p.timestamp_ms = T_NOW_MS - 2 * N_ECMS + i;
		p.epoch = keystore_epoch_at(ks, T_NOW_MS / 1000);
		p.ac_len = 4;
		p.ac[3] = 1;
		p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
		for (size_t k = 0; k < 8; k++) {
			p.cw_even[k] = (uint8_t)(i * 7 + k);
			p.cw_odd[k] = (uint8_t)(i * 13 + k);
		}
		if (ecm_build(ks, &p, ecm[i], ECM_MAX_SECTION, &len[i]) != 0)
			goto out;
		ecm_params_wipe(&p);
	}
	if (descrambler_new(&dc, &d) != 0)
		goto out;
	descrambler_host(d, &host);
	descrambler_set_tag(d, 0x0200);
	for (size_t i = 0; i < N_ECMS; i++) {
		uint64_t loads = descrambler_loads(d), t0 = now_ns();

		if (c.ops->ecm(c.self, &host, 101, ecm[i], len[i]) != 0 || descrambler_loads(d) == loads)
			continue;
		lat[ok++] = now_ns() - t0;
	}
	if (ok == 0)
		goto out;
	qsort(lat, ok, sizeof(*lat), cmp_u64);
	printf("### ECM to CW (cardless client, in-process)\n\n");
	printf("From handing one ECM section to the client (`ops->ecm`) to both CWs in the descrambler slot: "
		"ECM parse, package-key lookup, RFC 3394 unwrap, AES-128-GCM open, two `load_cw` (CSA2 key "
		"schedule). %zu distinct ECMs, one package.\n\n", ok);
	printf("| ECMs | median | p99 | max | goal |\n|---|---|---|---|---|\n");
	printf("| %zu | %.2f µs | %.2f µs | %.2f µs | < 20 µs |\n\n", ok, lat[ok / 2] / 1000.0,
		lat[(ok * 99) / 100] / 1000.0, lat[ok - 1] / 1000.0);
	r = 0;
out:
	if (r)
		printf("### ECM to CW\n\nfailed to run (keystore/client setup).\n\n");
	cas_client_free(&c);
	descrambler_free(d);
	keystore_free(ks);
	if (e)
		entitlement_wipe(e);
	free(e);
	free(ecm);
	free(len);
	free(lat);
	return r;
}

/* Throughput of the box on one capture; raw cipher speed on its scrambled packets. */
static int bench_tput(const char *dir, const char *file, enum cw_alg alg, const uint8_t *cw)
{
	char path[4096];
	uint8_t *in = NULL, *out = NULL;
	size_t len, npkts, nscr = 0;
	struct cas_client c = { 0 };
	struct stb *box = NULL;
	struct stb_config cfg = { .client = &c, .csa2_reduce = true };
	uint64_t t0, dt, bytes = 0, scr_bytes = 0;
	double box_mbps, raw_mbps;
	int r = 1;

	snprintf(path, sizeof(path), "%s/simulcrypt/captures/%s", dir, file);
	if (file_read_all(path, 64u << 20, &in, &len) != 0) {
		printf("| %s | (capture %s not found) | | |\n", cw_alg_name(alg), path);
		return 1;
	}
	npkts = len / TS_PACKET_BYTES;
	out = malloc(npkts * TS_PACKET_BYTES);
	if (!out || stb_fixed_cw_client_new(alg, cw, cw_alg_key_bytes(alg), &c) != 0 || stb_new(&cfg, &box) != 0)
		goto out;
	for (size_t i = 0; i < npkts; i++)
		if (in[i * TS_PACKET_BYTES + 3] >> 6)
			nscr++;
	t0 = now_ns();
	do {
		for (size_t off = 0; off < npkts; off += 512) {
			size_t n = npkts - off < 512 ? npkts - off : 512;

			if (stb_feed(box, in + off * TS_PACKET_BYTES, n, out + off * TS_PACKET_BYTES) != 0)
				goto out;
		}
		bytes += npkts * TS_PACKET_BYTES;
		scr_bytes += nscr * TS_PACKET_BYTES;
		dt = now_ns() - t0;
	} while (dt < 2000000000ull);
	box_mbps = (double)bytes * 8 / ((double)dt / 1e9) / 1e6;
	{
		/* raw: the scrambled packets only, 128 per call, fresh copies */
		struct ts_cipher *tc = ts_cipher_new(alg, true);
		uint8_t *scr = malloc(nscr * TS_PACKET_BYTES + 1), *work = malloc(nscr * TS_PACKET_BYTES + 1);
		uint8_t **ptrs = calloc(nscr + 1, sizeof(*ptrs));
		uint64_t rb = 0;
		size_t k = 0;

		if (!tc || !scr || !work || !ptrs || ts_cipher_set_key(tc, CW_EVEN, cw, cw_alg_key_bytes(alg)) != 0 ||
		    ts_cipher_set_key(tc, CW_ODD, cw, cw_alg_key_bytes(alg)) != 0) {
			ts_cipher_free(tc);
			free(scr);
			free(work);
			free(ptrs);
			goto out;
		}
		for (size_t i = 0; i < npkts; i++)
			if (in[i * TS_PACKET_BYTES + 3] >> 6)
				memcpy(scr + (k++) * TS_PACKET_BYTES, in + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
		for (size_t i = 0; i < nscr; i++)
			ptrs[i] = work + i * TS_PACKET_BYTES;
		t0 = now_ns();
		do {
			memcpy(work, scr, nscr * TS_PACKET_BYTES);
			for (size_t off = 0; off < nscr; off += STB_BATCH_PKTS) {
				size_t n = nscr - off < STB_BATCH_PKTS ? nscr - off : STB_BATCH_PKTS;

				(void)ts_cipher_descramble(tc, ptrs + off, n, NULL, NULL);
			}
			rb += nscr * TS_PACKET_BYTES;
			dt = now_ns() - t0;
		} while (dt < 2000000000ull);
		raw_mbps = (double)rb * 8 / ((double)dt / 1e9) / 1e6;
		ts_cipher_free(tc);
		free(scr);
		free(work);
		free(ptrs);
	}
	printf("| %s | %.0f Mbit/s (%.0f Mbit/s of scrambled packets, %.0f%% of the stream) | %.0f Mbit/s |\n",
		cw_alg_name(alg), box_mbps, box_mbps * (double)nscr / (double)npkts, 100.0 * (double)nscr / (double)npkts,
		raw_mbps);
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
	static const uint8_t cw_csa2[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF };
	static const uint8_t cw_cissa[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF };
	const char *dir = argc > 1 ? argv[1] : getenv("CASTELLAN_TESTDATA");
	int r = 0;

	if (!dir)
		dir = "tests/data";
	printf("## Set-top box (bench/stb.c)\n\n");
	r |= bench_ecm();
	printf("### Descrambling through the box (one core)\n\n");
	printf("TSDuck's 1 MB captures (service 101 scrambled, 102 clear, PSI, nulls) fed in 512-packet chunks "
		"through `stb_feed` with a fixed-CW client, for 2 s; the raw column runs `ts_cipher_descramble` "
		"on the scrambled packets alone, %d per call.\n\n", STB_BATCH_PKTS);
	printf("| cipher | through the box (whole TS) | raw cipher |\n|---|---|---|\n");
	r |= bench_tput(dir, "ts-csa2-svc101-cw0123456789abcdef.ts", CW_ALG_CSA2, cw_csa2);
	r |= bench_tput(dir, "ts-cissa-svc101-cw00112233445566778899aabbccddeeff.ts", CW_ALG_CISSA, cw_cissa);
	printf("\n");
	return r ? 1 : 0;
}
