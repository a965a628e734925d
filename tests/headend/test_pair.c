/*
 * test_pair.c - issue 16 item 9: `set[pair]=1` through the GET API makes a
 * smartcard work in its box only, by keys, end to end:
 *
 *   head-end (SMS on SQLite, GET API, vendor key file of two box chips X
 *   and Y, EMMs to our MUX)  ->  the card's EMMs off the MUX  ->  the card
 *   applet (in-process, personalized like `castellan card program`)  ->
 *   its ECM answers  ->  the box chips X and Y (in-process, from their OTP).
 *
 * 1. pair=1 and no box known for the card (no chip id): the card gets its
 *    grant but no package key; no CW at all (NO_KEY), in any box.
 * 2. the card's chip id set to X: its EMM carries PAIR(X, K_pair) with
 *    K_pair = KBKDF(K_v(X), serial); the card then answers only in the
 *    paired form; chip X loads the CW (it derives the same K_pair from its
 *    own OTP), chip Y refuses it (CE_MAC: its K_pair differs).
 * 3. set[pair]=0: UNPAIR goes out, the card answers clear CWs again.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "he_fixture.h"
#include "card/applet.h"
#include "card/perso.h"
#include "card/eeprom.h"
#include "client/smartcard.h"
#include "cas/ecm.h"
#include "crypto/kdf.h"
#include "lib/bytes.h"
#include "lib/cursor.h"
#include "sms/store.h"
#include "stb/chip.h"

#define CASID 0x4ADC
#define EPOCH_S 3600u
#define VENDOR 0x00004AE1u
#define CHIP_X 0x0000CA57E11A0001ull
#define CHIP_Y 0x0000CA57E11A0002ull
#define SERIAL 2100000123ull

static const uint8_t CW_E[8] = { 0x11, 0x22, 0x33, 0x66, 0x55, 0x66, 0x77, 0x22 };
static const uint8_t CW_O[8] = { 0x99, 0x88, 0x77, 0x88, 0x55, 0x44, 0x33, 0xAA };

static int http_get(uint16_t port, const char *path, char *out, size_t cap)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char req[2048], buf[8192];
	size_t got = 0;
	int fd, st = 0, n;
	ssize_t k;
	const char *sp, *body;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	assert_int_equal(write(fd, req, (size_t)n), n);
	while (got < sizeof(buf) - 1 && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)k;
	buf[got] = '\0';
	close(fd);
	sp = strchr(buf, ' ');
	assert_non_null(sp);
	for (int i = 1; i <= 3; i++)
		st = st * 10 + (sp[i] - '0');
	body = strstr(buf, "\r\n\r\n");
	snprintf(out, cap, "%s", body ? body + 4 : "");
	return st;
}

/* The card in-process: applet on an EEPROM file, personalized. */
struct card {
	char ee_path[300];
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *a;
	struct card_transport t;
};

static uint16_t xfer(struct card *c, uint8_t ins, const uint8_t *d, size_t n, uint8_t *out, size_t *out_len)
{
	uint8_t buf[CARD_MAX_RESP];
	size_t len = 0;
	uint16_t sw = 0;

	assert_int_equal(card_transceive(&c->t, ins, d, n, out ? out : buf, CARD_MAX_RESP, &len, &sw), 0);
	if (out_len)
		*out_len = len;
	return sw;
}

static void card_open(struct card *c, const struct keystore *ks, const char *dir)
{
	struct card_perso p;
	uint8_t rec[CARD_PERSO_BYTES];

	memset(c, 0, sizeof(*c));
	snprintf(c->ee_path, sizeof(c->ee_path), "%s/card.eeprom", dir);
	c->a = calloc(1, sizeof(*c->a));
	assert_non_null(c->a);
	assert_int_equal(card_eeprom_file_init(&c->eef, c->ee_path, &c->ee), 0);
	assert_int_equal(card_applet_init(c->a, &c->ee), 0);
	card_local_transport(c->a, &c->t);
	assert_int_equal(card_perso_issue(ks, SERIAL, 4, 60, 0, &p), 0);
	card_perso_encode(&p, rec);
	assert_int_equal(xfer(c, CARD_INS_PERSONALIZE, rec, sizeof(rec), NULL, NULL), SW_OK);
	secret_wipe(&p, sizeof(p));
}

static void card_close(struct card *c)
{
	card_applet_wipe(c->a);
	free(c->a);
}

/* Feed the card every EMM of SERIAL the MUX saw since *seen (K_card ones:
 * a smartcard reads no other); until one with a grant whose keys count is
 * want_keys and whose PAIR/UNPAIR commands are want_cmds was accepted (20 s
 * at most). */
static int feed_until(struct mux_runner *mr, const struct keystore *ks, struct card *c, size_t *seen,
	size_t want_keys, uint32_t want_cmds, struct emm_content *last)
{
	uint8_t k[CARD_KEY_BYTES];
	int found = 0;

	assert_int_equal(keystore_card_key(ks, SERIAL, k), 0);
	for (int tries = 0; tries < 2000 && !found; tries++) {
		pthread_mutex_lock(&mr->mu);
		while (*seen < mr->n && !found) {
			size_t i = *seen % HE_RING;
			struct emm_view v;
			struct emm_content ct;

			(*seen)++;
			if (emm_parse(mr->sec[i], mr->len[i], SERIAL, &v) != 0 || emm_open(&v, k, &ct) != 0)
				continue;
			/* the card takes each new EMM (repeats: REPLAY, harmless) */
			uint16_t sw = xfer(c, CARD_INS_EMM, mr->sec[i], mr->len[i], NULL, NULL);

			if (sw == SW_OK && ct.has_grant && ct.nkeys == want_keys &&
			    (ct.cmds & (EMM_CMD_PAIR | EMM_CMD_UNPAIR)) == want_cmds) {
				found = 1;
				*last = ct;
			}
			emm_content_wipe(&ct);
		}
		pthread_mutex_unlock(&mr->mu);
		if (!found)
			usleep(10000);
	}
	secret_wipe(k, sizeof(k));
	return found ? 0 : CE_TIMEOUT;
}

/* The ECM of a channel in package 1, now. */
static size_t make_ecm(const struct keystore *ks, uint64_t now_ms, uint16_t ecm_id, uint8_t *sec)
{
	struct ecm_params p;
	size_t len = 0;

	memset(&p, 0, sizeof(p));
	p.alg = CW_ALG_CSA2;
	p.ecm_id = ecm_id;
	p.ca_system_id = CASID;
	p.timestamp_ms = now_ms;
	p.epoch = keystore_epoch_at(ks, now_ms / 1000u);
	p.ac_len = 4;
	put_be32(p.ac, 1);
	p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	memcpy(p.cw_even, CW_E, 8);
	memcpy(p.cw_odd, CW_O, 8);
	assert_int_equal(ecm_build(ks, &p, sec, ECM_MAX_SECTION, &len), 0);
	return len;
}

/* A box's chip from its OTP, running VENDOR. */
static struct chip *box_chip(uint64_t chip_id, uint8_t root_byte)
{
	struct chip_otp otp;
	struct chip *ch = NULL;
	static uint8_t resp[CHIP_MAX_BODY];
	uint8_t body[4];
	size_t rl = 0;

	memset(&otp, 0, sizeof(otp));
	otp.chip_id = chip_id;
	memset(otp.root, root_byte, sizeof(otp.root));
	assert_int_equal(chip_new(&otp, false, &ch), 0);
	chip_otp_wipe(&otp);
	put_be32(body, VENDOR);
	assert_int_equal(chip_handle(ch, CHIP_ROLE_CONTROL, CHIP_OP_SET_VENDOR, body, 4, resp, sizeof(resp), &rl), 0);
	return ch;
}

/* Hand the card's paired block of the even CW to the chip as the box does
 * (chain 0x03): 0 if the chip loaded it. */
static int chip_load(struct chip *ch, const uint8_t blk[16])
{
	static uint8_t resp[CHIP_MAX_BODY];
	uint8_t body[8 + CHIP_CHAIN_PAIRED_BYTES];
	size_t n = 0, rl = 0;

	put_be16(body, 101);                 /* service */
	put_be16(body + 2, 0x1FFF);          /* whole service */
	body[4] = CW_ALG_CSA2;
	body[5] = CW_EVEN;
	put_be16(body + 6, CHIP_CHAIN_PAIRED_BYTES);
	assert_int_equal(chip_chain_paired(SERIAL, blk, body + 8, CHIP_CHAIN_PAIRED_BYTES, &n), 0);
	assert_int_equal(n, CHIP_CHAIN_PAIRED_BYTES);
	return chip_handle(ch, CHIP_ROLE_HOST, CHIP_OP_LOAD_ECW, body, sizeof(body), resp, sizeof(resp), &rl);
}

static void test_pair_get_api(void **state)
{
	static struct mux_runner mr;
	char dir[] = "/tmp/castellan-hepair-XXXXXX";
	char path[512], vk[512], mux[64], key[80], q[1024], body[4096], db[600];
	uint8_t kv[2][16], root[2][CHIP_ROOT_BYTES], sec[ECM_MAX_SECTION], out[CARD_MAX_RESP], kp[16], cw[16];
	struct keystore *ks = NULL;
	struct headend_config hc;
	struct headend *h = NULL;
	struct sms_store *s = NULL;
	struct sms_card_change ch;
	struct emm_content last;
	struct card card;
	struct chip *x, *y;
	pthread_t th;
	size_t seen = 0, n = 0, elen;
	FILE *o;
	uint64_t now_ms = now_wall_ms();
	int64_t now = (int64_t)(now_ms / 1000u);

	(void)state;
	assert_non_null(mkdtemp(dir));
	he_mux_start(&mr, 500, mux, sizeof(mux));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	/* the vendor's opened key file: K_v of chips X and Y (their OTP roots
	 * are all 0x5X bytes, as box_chip burns them) */
	snprintf(vk, sizeof(vk), "%s/vendor.csv", dir);
	o = fopen(vk, "w");
	assert_non_null(o);
	for (int i = 0; i < 2; i++) {
		memset(root[i], 0x51 + i, sizeof(root[i]));
		assert_int_equal(kms_vendor_key(root[i], VENDOR, kv[i]), 0);
		fprintf(o, "0x%016llx,", (unsigned long long)(i ? CHIP_Y : CHIP_X));
		for (int j = 0; j < 16; j++)
			fprintf(o, "%02x", kv[i][j]);
		fprintf(o, "\n");
	}
	assert_int_equal(fclose(o), 0);
	snprintf(path, sizeof(path), "%s/admin-key", dir);
	he_config(&hc, dir, ks, path, mux, 200);
	hc.http_addr = "127.0.0.1:0";
	hc.vendor_keys = vk;
	assert_int_equal(headend_new(&hc, &h), 0);
	{
		size_t klen = 0;
		uint8_t *kb = tu_read(path, &klen);

		assert_non_null(kb);
		assert_int_equal(klen, 64);
		memcpy(key, kb, 64);
		key[64] = '\0';
		free(kb);
	}
	snprintf(db, sizeof(db), "sqlite:%s/sms.db", dir);
	assert_int_equal(sms_store_open(db, &s), 0);
	struct sms_card c = { .serial = SERIAL, .start = now - 3600, .finish = now + 30 * 86400 };

	assert_int_equal(sms_card_add(s, &c, "test"), 0);
	assert_int_equal(pthread_create(&th, NULL, he_headend_main, h), 0);
	card_open(&card, ks, dir);
	x = box_chip(CHIP_X, 0x51);
	y = box_chip(CHIP_Y, 0x52);

	/* 1. package 1 with pairing required, no box known: grant, no key */
	snprintf(q, sizeof(q), "/api.php?api_key=%s&serial_no=%llu&set[access_criteria]=00000001&set[pair]=1", key,
		(unsigned long long)SERIAL);
	assert_int_equal(http_get(headend_http_port(h), q, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"pair\":\"1\""));
	assert_int_equal(feed_until(&mr, ks, &card, &seen, 0, 0, &last), 0);
	assert_int_equal(last.grant.packages, 1);
	elen = make_ecm(ks, now_wall_ms(), 7, sec);
	assert_int_equal(xfer(&card, CARD_INS_ECM, sec, elen, out, &n), SW_NO_KEY);

	/* 2. the card's box is chip X: PAIR(X, K_pair(X)) and the keys */
	sms_card_change_init(&ch);
	ch.has_chip = true;
	snprintf(ch.chip_id, sizeof(ch.chip_id), "0x%016llx", (unsigned long long)CHIP_X);
	assert_int_equal(sms_card_change(s, SERIAL, &ch, "test", NULL), 0);
	assert_int_equal(feed_until(&mr, ks, &card, &seen, 2, EMM_CMD_PAIR, &last), 0);
	assert_int_equal(last.pair_stb_id, CHIP_X);
	assert_true(last.has_pair_key);
	assert_int_equal(kms_pairing_key(kv[0], SERIAL, kp), 0);
	assert_memory_equal(last.pair_key, kp, 16);
	elen = make_ecm(ks, now_wall_ms(), 8, sec);
	assert_int_equal(xfer(&card, CARD_INS_ECM, sec, elen, out, &n), SW_OK);
	assert_int_equal(out[0], CARD_CW_PAIRED); /* never a clear CW */
	assert_memory_not_equal(out + 4, CW_E, 8);
	/* in box X: the chip derives K_pair from its OTP and loads the CW;
	 * the block opens to the CW under what chip X derives */
	assert_int_equal(chip_load(x, out + 4), 0);
	assert_int_equal(chip_pairing_key(kv[0], SERIAL, kp), 0);
	assert_int_equal(card_paired_cw_open(kp, out + 4, cw), 0);
	assert_memory_equal(cw, CW_E, 8);
	/* in box Y: another K_pair, the chip refuses the block */
	assert_int_equal(chip_load(y, out + 4), CE_MAC);
	assert_int_equal(chip_pairing_key(kv[1], SERIAL, kp), 0);
	assert_true(card_paired_cw_open(kp, out + 4, cw) != 0 || memcmp(cw, CW_E, 8) != 0);

	/* 3. set[pair]=0: UNPAIR, clear CWs again (any box) */
	snprintf(q, sizeof(q), "/api.php?api_key=%s&serial_no=%llu&set[pair]=0", key, (unsigned long long)SERIAL);
	assert_int_equal(http_get(headend_http_port(h), q, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"pair\":\"0\""));
	/* the card row names chip X, which the vendor file has: without
	 * pairing its EMMs go vendor-sealed (the chip's own card); a smartcard
	 * reads only K_card ones, so take the chip id away first */
	sms_card_change_init(&ch);
	ch.has_chip = true;
	ch.chip_id[0] = '\0';
	assert_int_equal(sms_card_change(s, SERIAL, &ch, "test", NULL), 0);
	assert_int_equal(feed_until(&mr, ks, &card, &seen, 2, EMM_CMD_UNPAIR, &last), 0);
	elen = make_ecm(ks, now_wall_ms(), 9, sec);
	assert_int_equal(xfer(&card, CARD_INS_ECM, sec, elen, out, &n), SW_OK);
	assert_int_equal(out[0], CARD_CW_CLEAR);
	assert_memory_equal(out + 4, CW_E, 8);

	emm_content_wipe(&last);
	chip_free(x);
	chip_free(y);
	card_close(&card);
	headend_stop(h);
	pthread_join(th, NULL);
	headend_free(h);
	sms_store_close(s);
	he_mux_stop(&mr);
	keystore_free(ks);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pair_get_api),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
