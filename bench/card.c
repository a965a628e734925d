/*
 * card.c - smartcard benchmarks: ECM -> CW on the card in-process, the
 * same through pcscd (vpcd reader, the card served by a thread of this
 * process over the vpcd socket), and a bare APDU round trip (GET INFO)
 * through pcscd. Figures to argv[1] (or stdout); the pcscd ratio is
 * against the in-process run of this same process. Needs root to start
 * pcscd when none runs; without pcscd/vpcd only the in-process figure.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "card/applet.h"
#include "card/perso.h"
#include "card/smartcard.h"
#include "card/vpcd.h"
#include "cas/ecm.h"
#include "cas/emm.h"
#include "lib/cursor.h"
#include "lib/util.h"

#define N_LOCAL 2000
#define N_PCSC 500
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
