/*
 * card.c - smartcard benchmarks: ECM -> CW on the card in-process, the
 * same through pcscd (vpcd reader, the card served by a thread of this
 * process over the vpcd socket), and a bare APDU round trip (GET INFO)
 * through pcscd. Figures to argv[1] (or stdout); the pcscd ratio is
 * against the in-process run of this same process. Needs root to start
 * pcscd when none runs; without pcscd/vpcd only the in-process figure.
 *
 * Full zapping time: a box (stb library) freshly tuned to a CSA2 service
 * (PAT, PMT with a CA_descriptor already seen) gets the ECM's packets and
 * the first scrambled packet in one stb_feed; the wall time of that call is
 * ECM arrival -> first descrambled packet out (PES start checked). Measured
 * with the cardless client, with the smartcard client on the card
 * in-process, and through pcscd; median and p99 of ZAP_N zaps each.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/bytes.h"
#include "client/cardless.h"
#include "card/applet.h"
#include "card/perso.h"
#include "client/smartcard.h"
#include "card/vpcd.h"
#include "cas/ecm.h"
#include "cas/emm.h"
#include "lib/cursor.h"
#include "lib/util.h"
#include "cas/client.h"
#include "cas/entitlement.h"
#include "cipher/cipher.h"
#include "stb/stb.h"
#include "ts/psi.h"
#include "ts/ts.h"

#define N_LOCAL 2000
#define N_PCSC 500
#define ZAP_N 300
#define SVC_PMT_PID 0x100
#define SVC_ES_PID 0x101
#define SVC_ECM_PID 0x200
#define SERIAL 2100000001ull
#define T0_MS 1700000000000ull

static const uint8_t root[32] = { 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7 };

struct mem_ee {
	uint8_t img[CARD_EEPROM_BYTES];
	size_t len;
};

static int mem_load(void *ctx, uint8_t *buf, size_t cap, size_t *len)
{
	struct mem_ee *m = ctx;

	if (!m->len)
		return CE_NOT_FOUND;
	if (m->len > cap)
		return CE_OVERFLOW;
	memcpy(buf, m->img, m->len);
	*len = m->len;
	return 0;
}

static int mem_store(void *ctx, const uint8_t *buf, size_t len)
{
	struct mem_ee *m = ctx;

	memcpy(m->img, buf, len);
	m->len = len;
	return 0;
}

static struct keystore *ks;
static struct mem_ee mem;
static struct card_applet card;
static volatile sig_atomic_t stop_serving;
static unsigned vpcd_port;

static int build_ecm(uint64_t ts, uint8_t *sec, size_t *len)
{
	struct ecm_params p;

	memset(&p, 0, sizeof(p));
	p.alg = CW_ALG_CSA2;
	p.ecm_id = 1;
	p.ca_system_id = 0x4ADC;
	p.timestamp_ms = ts;
	p.epoch = keystore_epoch_at(ks, ts / 1000);
	p.ac_len = 4;
	put_be32(p.ac, 1);
	p.cw_mask = 3;
	memset(p.cw_even, 1, 8);
	memset(p.cw_odd, 2, 8);
	return ecm_build(ks, &p, sec, ECM_MAX_SECTION, len);
}

/* us per ECM -> CW over transport t (n distinct ECMs, 100 ms apart). */
static double ecm_run(const struct card_transport *t, int n, uint64_t t0)
{
	static uint8_t secs[N_LOCAL][ECM_MAX_SECTION];
	static size_t lens[N_LOCAL];
	uint8_t out[CARD_MAX_RESP];
	size_t olen;
	uint16_t sw;
	uint64_t a, b;

	for (int i = 0; i < n; i++)
		if (build_ecm(t0 + (uint64_t)i * 100, secs[i], &lens[i]) != 0)
			return -1;
	a = now_mono_us();
	for (int i = 0; i < n; i++)
		if (card_transceive(t, CARD_INS_ECM, secs[i], lens[i], out, sizeof(out), &olen, &sw) != 0 || sw != SW_OK)
			return -1;
	b = now_mono_us();
	return (double)(b - a) / n;
}

static void *serve_thread(void *arg)
{
	(void)arg;
	while (!stop_serving) {
		int fd = vpcd_connect("127.0.0.1", (uint16_t)vpcd_port, 500);

		if (fd < 0)
			continue;
		if (vpcd_serve(fd, &card, &stop_serving, NULL) != 0)
			fprintf(stderr, "vpcd connection ended with an error\n");
		close(fd);
	}
	return NULL;
}

/* ------------------------------------------------------------ zapping */

static uint64_t zap_clock_ms; /* the box clock: the current ECM's time */

static uint64_t zap_now(void *ctx)
{
	(void)ctx;
	return zap_clock_ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* PAT + PMT (CA_descriptor 0x4ADC on the ECM PID) of service 1. */
static int zap_psi(uint8_t *pkts, size_t cap, size_t *n)
{
	static struct pmt pmt;
	struct pat pat;
	struct ca_desc ca = { .ca_system_id = 0x4ADC, .ca_pid = SVC_ECM_PID };
	uint8_t sec[1024], cc0 = 15, cc1 = 15;
	size_t len, k1 = 0, k2 = 0;

	memset(&pat, 0, sizeof(pat));
	memset(&pmt, 0, sizeof(pmt));
	pat.tsid = 1;
	pat.nprog = 1;
	pat.prog[0].program = 1;
	pat.prog[0].pid = SVC_PMT_PID;
	pmt.program = 1;
	pmt.pcr_pid = SVC_ES_PID;
	pmt.nes = 1;
	pmt.es[0].stream_type = 0x1B;
	pmt.es[0].pid = SVC_ES_PID;
	if (ca_desc_append(pmt.info, sizeof(pmt.info), &pmt.info_len, &ca) != 0 ||
	    pat_build(&pat, sec, sizeof(sec), &len) != 0 || ts_packetize(sec, len, 0, &cc0, pkts, cap, &k1) != 0 ||
	    pmt_build(&pmt, sec, sizeof(sec), &len) != 0 ||
	    ts_packetize(sec, len, SVC_PMT_PID, &cc1, pkts + k1 * 188, cap - k1, &k2) != 0)
		return -1;
	*n = k1 + k2;
	return 0;
}

/* One PES-start packet of the service, scrambled with the even CW the
 * ECMs carry (memset 1, CSA2 with entropy reduction as the box does). */
static int zap_scrambled_packet(uint8_t pkt[188])
{
	struct ts_cipher *c = ts_cipher_new(CW_ALG_CSA2, true);
	uint8_t cw[8], *pp = pkt;
	int r = -1;

	memset(cw, 1, sizeof(cw));
	memset(pkt, 0xA5, 188);
	pkt[0] = 0x47;
	pkt[1] = 0x40 | (SVC_ES_PID >> 8);
	pkt[2] = SVC_ES_PID & 0xFF;
	pkt[3] = 0x10;
	pkt[4] = 0;
	pkt[5] = 0;
	pkt[6] = 1;
	pkt[7] = 0xE0;
	if (c && ts_cipher_set_key(c, CW_EVEN, cw, 8) == 0 && ts_cipher_scramble(c, &pp, 1, CW_EVEN) == 0)
		r = 0;
	ts_cipher_free(c);
	return r;
}

/*
 * ZAP_N zaps with client c, ECM times t0, t0 + 100 ms, ... Each zap: a new
 * box, PSI fed (not timed), then [ECM packets | scrambled packet] in one
 * timed stb_feed. Median / p99 in us; -1 if a zap did not descramble.
 */
static int zap_run(struct cas_client *c, uint64_t t0, double *median_us, double *p99_us)
{
	static uint8_t psi[16 * 188], in[64 * 188], out[64 * 188];
	static double us[ZAP_N];
	struct stb_config cfg = { .client = c, .csa2_reduce = true, .now_ms = zap_now };
	uint8_t scr[188], sec[ECM_MAX_SECTION];
	size_t npsi = 0, len, necm;
	uint8_t cc;

	*median_us = *p99_us = -1;
	if (zap_psi(psi, 16, &npsi) != 0 || zap_scrambled_packet(scr) != 0)
		return -1;
	for (int i = 0; i < ZAP_N; i++) {
		struct stb *s = NULL;
		uint64_t a, b;
		int r;

		zap_clock_ms = t0 + (uint64_t)i * 100;
		cc = (uint8_t)(i & 15);
		if (build_ecm(zap_clock_ms, sec, &len) != 0 ||
		    ts_packetize(sec, len, SVC_ECM_PID, &cc, in, 63, &necm) != 0)
			return -1;
		memcpy(in + necm * 188, scr, 188);
		in[necm * 188 + 3] = (uint8_t)((in[necm * 188 + 3] & 0xF0) | (i & 15));
		if (stb_new(&cfg, &s) != 0)
			return -1;
		r = stb_feed(s, psi, npsi, out);
		a = now_mono_us();
		if (r == 0)
			r = stb_feed(s, in, necm + 1, out);
		b = now_mono_us();
		stb_free(s);
		/* the first scrambled packet came out clear: a PES start */
		if (r != 0 || (out[necm * 188 + 3] & 0xC0) != 0 || out[necm * 188 + 4] != 0 ||
		    out[necm * 188 + 5] != 0 || out[necm * 188 + 6] != 1)
			return -1;
		us[i] = (double)(b - a);
	}
	qsort(us, ZAP_N, sizeof(us[0]), cmp_double);
	*median_us = us[ZAP_N / 2];
	*p99_us = us[ZAP_N * 99 / 100];
	return 0;
}

/* Smartcard client over transport t (not closed: the client owns a copy
 * whose close we neutralize). */
static int zap_smartcard(const struct card_transport *t, uint64_t t0, double *med, double *p99)
{
	struct card_transport own = *t;
	struct cas_client c;
	int r;

	own.close = NULL;
	if (smartcard_client_new(&own, &c) != 0)
		return -1;
	r = zap_run(&c, t0, med, p99);
	cas_client_free(&c);
	return r;
}

static int zap_cardless(uint64_t t0, double *med, double *p99)
{
	struct entitlement *e = calloc(1, sizeof(*e));
	struct cas_client c;
	int r = -1;

	if (!e)
		return -1;
	e->ca_system_id = 0x4ADC;
	e->card_serial = SERIAL;
	e->packages = 1;
	e->start_s = T0_MS / 1000 - 60;
	e->finish_s = T0_MS / 1000 + 86400;
	if (entitlement_issue(ks, e) == 0 && cardless_client_from(e, &c) == 0) {
		r = zap_run(&c, t0, med, p99);
		cas_client_free(&c);
	}
	entitlement_wipe(e);
	free(e);
	return r;
}

int main(int argc, char **argv)
{
	FILE *out = argc > 1 ? fopen(argv[1], "w") : stdout;
	struct card_eeprom ee = { .ctx = &mem, .load = mem_load, .store = mem_store };
	struct card_transport t;
	struct card_perso p;
	struct emm_issuer *is = NULL;
	struct emm_grant g = { .packages = 1, .start_s = T0_MS / 1000 - 60, .finish_s = T0_MS / 1000 + 86400 };
	uint8_t rec[CARD_PERSO_BYTES], sec[EMM_MAX_SECTION], o[CARD_MAX_RESP];
	size_t len, olen;
	uint16_t sw;
	double local_us, pcsc_us = -1, rtt_us = -1;
	double zl_med = -1, zl_p99 = -1, zp_med = -1, zp_p99 = -1, zc_med = -1, zc_p99 = -1;
	pid_t pcscd = -1;
	const char *reader = "Castellan bench";
	char dir[] = "/tmp/card-bench-XXXXXX", conf[64], path[96];
	pthread_t th;

	if (!out || keystore_from_root(0x4ADC, 3600, root, &ks) != 0 || emm_issuer_new(ks, &is) != 0 ||
	    card_applet_init(&card, &ee) != 0 || card_perso_issue(ks, SERIAL, 0, 0, 0, &p) != 0)
		return 1;
	card_perso_encode(&p, rec);
	card_local_transport(&card, &t);
	if (card_transceive(&t, CARD_INS_PERSONALIZE, rec, sizeof(rec), o, sizeof(o), &olen, &sw) != 0 || sw != SW_OK ||
	    emm_build_unique(is, SERIAL, 1, &g, T0_MS, sec, sizeof(sec), &len) != 0 ||
	    card_transceive(&t, CARD_INS_EMM, sec, len, o, sizeof(o), &olen, &sw) != 0 || sw != SW_OK)
		return 1;
	local_us = ecm_run(&t, N_LOCAL, T0_MS);
	fprintf(out, "card_ecm_to_cw_inprocess_us %.1f\n", local_us);
	/* zapping: cardless, then the card in-process (ECM times after the
	 * ECM run's, before the pcscd runs': the card refuses older ECMs) */
	if (zap_cardless(T0_MS + 300000, &zc_med, &zc_p99) != 0 ||
	    zap_smartcard(&t, T0_MS + 300000, &zl_med, &zl_p99) != 0)
		fprintf(stderr, "zapping run failed\n");
	fprintf(out, "zap_ecm_to_first_packet_cardless_us median %.1f p99 %.1f\n", zc_med, zc_p99);
	fprintf(out, "zap_ecm_to_first_packet_smartcard_inprocess_us median %.1f p99 %.1f\n", zl_med, zl_p99);

	/* through pcscd */
	if (access("/usr/sbin/pcscd", X_OK) == 0 && access("/usr/lib/pcsc/drivers/serial/libifdvpcd.so", R_OK) == 0 &&
	    mkdtemp(dir)) {
		if (access("/run/pcscd/pcscd.comm", F_OK) == 0) {
			vpcd_port = VPCD_DEFAULT_PORT;
			reader = "Virtual PCD";
		} else if (geteuid() == 0) {
			FILE *f;

			vpcd_port = 38000 + (unsigned)(getpid() % 1000) * 2;
			snprintf(conf, sizeof(conf), "%s/conf", dir);
			mkdir(conf, 0700);
			snprintf(path, sizeof(path), "%s/vpcd", conf);
			if ((f = fopen(path, "w")) != NULL) {
				fprintf(f, "FRIENDLYNAME \"%s\"\nDEVICENAME /dev/null:0x%X\n"
					"LIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID 0x%X\n",
					reader, vpcd_port, vpcd_port);
				fclose(f);
			}
			if ((pcscd = fork()) == 0) {
				execl("/usr/sbin/pcscd", "pcscd", "--foreground", "--config", conf, (char *)NULL);
				_exit(127);
			}
		}
		if (vpcd_port && pthread_create(&th, NULL, serve_thread, NULL) == 0) {
			struct card_transport pt;

			if (card_pcsc_open(reader, 10000, &pt) == 0) {
				uint64_t a = now_mono_us();

				for (int i = 0; i < N_PCSC; i++)
					if (card_transceive(&pt, CARD_INS_INFO, NULL, 0, o, sizeof(o), &olen, &sw) != 0)
						break;
				rtt_us = (double)(now_mono_us() - a) / N_PCSC;
				pcsc_us = ecm_run(&pt, N_PCSC, T0_MS + 3600000);
				if (zap_smartcard(&pt, T0_MS + 3700000, &zp_med, &zp_p99) != 0)
					fprintf(stderr, "zapping through pcscd failed\n");
				card_transport_close(&pt);
			}
			stop_serving = 1;
			pthread_join(th, NULL);
		}
		if (pcscd > 0) {
			kill(pcscd, SIGTERM);
			waitpid(pcscd, NULL, 0);
		}
		snprintf(path, sizeof(path), "rm -rf %s", dir);
		if (system(path) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	if (pcsc_us > 0) {
		fprintf(out, "card_apdu_roundtrip_pcscd_us %.1f\n", rtt_us);
		fprintf(out, "card_ecm_to_cw_pcscd_us %.1f\n", pcsc_us);
		fprintf(out, "card_pcscd_over_inprocess_ratio %.2f\n", pcsc_us / local_us);
		fprintf(out, "zap_ecm_to_first_packet_smartcard_pcscd_us median %.1f p99 %.1f\n", zp_med, zp_p99);
		if (zc_med > 0)
			fprintf(out, "zap_smartcard_pcscd_over_cardless_ratio %.1f\n", zp_med / zc_med);

	} else {
		fprintf(out, "card_pcscd: skipped (pcscd / vsmartcard-vpcd not available)\n");
	}
	if (out != stdout)
		fclose(out);
	card_applet_wipe(&card);
	emm_issuer_free(is);
	keystore_free(ks);
	return 0;
}
