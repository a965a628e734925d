/*
 * test_osd_e2e.c - issue 13 end to end: fingerprints and messages go from
 * the SMS store, through the head-end (its ECMG over SimulCrypt to
 * `castellan scramble`, its EMM carousel to our MUX), to the reference box
 * (cardless client in card mode), and appear in the box's report:
 *   - a channel fingerprint scheduled for service 101 rides in every ECM
 *     of the service (the ECM extension block) and is shown, with the
 *     geometry and colours the SMS set, at a stream time read from PCR;
 *   - a per-card covert fingerprint and an individual 133-character
 *     pop-up message ride in the card's EMM with its grant; the covert one
 *     shows the card's covert code, not its serial;
 *   - the same stream with the fingerprint block stripped from every ECM
 *     (the section re-framed, nothing else changed): the box gets no CW
 *     (every ECM refused, nothing descrambled) and shows no fingerprint.
 *   - a chip box (secure chip + ladder client): the head-end with the
 *     vendor's key file seals the card's EMM, fingerprint and message
 *     included, under the chip's K_emm; the box in chip mode reports both,
 *     and a chip running another vendor refuses the EMM and shows nothing.
 * Bounded waits only (the carousel's first EMM), no timed assertion.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "he_fixture.h"
#include "cas/card.h"
#include "cas/ecm.h"
#include "cas/osd.h"
#include "client/cardless.h"
#include "client/chip_client.h"
#include "cas/emm_vendor.h"
#include "crypto/kdf.h"
#include "stb/chip.h"
#include <openssl/rand.h>
#include "lib/bytes.h"
#include "lib/cursor.h"
#include "lib/util.h"
#include "sms/store.h"
#include "sms/store_osd.h"
#include "stb/osd_log.h"
#include "stb/stb.h"

#define CASID 0x4ADC
#define EPOCH_S 3600u
#define SERIAL 2100000042ull
#define ECM_PID_FIRST 0x1000 /* the scrambler's ECM PIDs start above the PMTs: found from the PMT */

static const char msg_text[] =
	"Cher abonné : votre abonnement « Sport+ » expire le 31/12. Renouvelez-le au 0800 000 000 — "
	"merci de votre fidélité ! 日本語のテキストも表示できます。";

static int run_wait(char *const argv[])
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The card's EMMs seen by the MUX that open for it and carry OSD items
 * (at least want of them): copied into out (unique or group sections). */
static size_t wait_card_emms(struct mux_runner *mr, const struct keystore *ks, size_t want, uint8_t out[][EMM_MAX_SECTION],
	size_t *lens, size_t max)
{
	struct emm_content *ct = calloc(1, sizeof(*ct));
	uint8_t k[CARD_KEY_BYTES];
	size_t seen = 0, got = 0;

	assert_non_null(ct);
	assert_int_equal(keystore_card_key(ks, SERIAL, k), 0);
	for (int tries = 0; tries < 600 && got == 0; tries++) { /* 30 s at most */
		pthread_mutex_lock(&mr->mu);
		for (; seen < mr->n && got < max; seen++) {
			const uint8_t *sec = mr->sec[seen % HE_RING];
			size_t len = mr->len[seen % HE_RING];
			struct emm_view v;

			if (emm_parse(sec, len, SERIAL, &v) != 0 || emm_open(&v, k, ct) != 0)
				continue;
			if (ct->nosd >= want && ct->has_grant) {
				memcpy(out[got], sec, len);
				lens[got++] = len;
			}
			emm_content_wipe(ct);
		}
		pthread_mutex_unlock(&mr->mu);
		if (got == 0)
			usleep(50000);
	}
	secret_wipe(k, sizeof(k));
	free(ct);
	return got;
}

/* Packets of a CAT naming the EMM PID, then of the EMM sections. */
static size_t emm_packets(const uint8_t secs[][EMM_MAX_SECTION], const size_t *lens, size_t n, uint8_t *out,
	size_t cap_pkts)
{
	struct cat *cat = calloc(1, sizeof(*cat));
	struct ca_desc ca = { .ca_system_id = CASID, .ca_pid = HE_EMM_PID };
	uint8_t sec[1024];
	size_t len = 0, np = 0, total = 0;
	uint8_t cc_cat = 0x0F, cc_emm = 0x0F;

	assert_non_null(cat);
	assert_int_equal(ca_desc_append(cat->info, sizeof(cat->info), &cat->info_len, &ca), 0);
	assert_int_equal(cat_build(cat, sec, sizeof(sec), &len), 0);
	assert_int_equal(ts_packetize(sec, len, TS_PID_CAT, &cc_cat, out, cap_pkts, &np), 0);
	total = np;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ts_packetize(secs[i], lens[i], HE_EMM_PID, &cc_emm, out + total * TS_PACKET_BYTES,
			cap_pkts - total, &np), 0);
		total += np;
	}
	free(cat);
	return total;
}

/* Strip the extension block from every ECM section of pid in ts (in
 * place): the ECM is re-framed as if the head-end had never put the
 * fingerprint in, everything else (CWs, MACs) as it was. Returns how many
 * ECMs were stripped. One-packet ECMs only (ours are: < 184 bytes). */
static size_t strip_fingerprints(uint8_t *ts, size_t npkts, uint16_t pid)
{
	size_t n = 0;

	for (size_t i = 0; i < npkts; i++) {
		uint8_t *p = ts + i * TS_PACKET_BYTES, *sec;
		struct ts_hdr h;
		size_t len, ext_off, ext;

		if (ts_parse(p, &h) != 0 || h.pid != pid || !h.pusi)
			continue;
		sec = p + h.payload_off + 1 + p[h.payload_off];
		len = 3u + (((size_t)(sec[1] & 0x0F) << 8) | sec[2]);
		ext_off = 3 + 20 + 1 + sec[23] + 1 + 1 + ECM_NONCE_BYTES;
		if (!(sec[24 + sec[23]] & ECM_HAS_EXT_BLOCK))
			continue;
		ext = 2u + tu_be16(sec + ext_off);
		memmove(sec + ext_off, sec + ext_off + ext, len - ext_off - ext);
		memset(sec + len - ext, 0xFF, ext); /* stuffing */
		sec[24 + sec[23]] &= (uint8_t)~ECM_HAS_EXT_BLOCK;
		put_be16(sec + 1, (uint16_t)((tu_be16(sec + 1) & 0xF000) | (len - ext - 3)));
		n++;
	}
	return n;
}

/* Run the box over emm_pkts then ts; the report JSON (caller frees). */
static json_t *run_box(const char *card_path, const uint8_t *emm_pkts, size_t nemm, const uint8_t *ts, size_t npkts)
{
	struct cas_client c;
	struct stb_config cfg = { 0 };
	struct stb *s = NULL;
	struct stb_report *rep = calloc(1, sizeof(*rep));
	uint8_t *buf = malloc((nemm + npkts) * TS_PACKET_BYTES);
	size_t first_pcr = 0;
	char *js = NULL;
	json_t *root;

	assert_non_null(rep);
	assert_non_null(buf);
	/* the EMMs go in after the stream's first PCR (so they have a stream time) */
	for (size_t i = 0; i < npkts; i++) {
		struct ts_hdr h;

		if (ts_parse(ts + i * TS_PACKET_BYTES, &h) == 0 && h.has_pcr) {
			first_pcr = i + 1;
			break;
		}
	}
	memcpy(buf, ts, first_pcr * TS_PACKET_BYTES);
	memcpy(buf + first_pcr * TS_PACKET_BYTES, emm_pkts, nemm * TS_PACKET_BYTES);
	memcpy(buf + (first_pcr + nemm) * TS_PACKET_BYTES, ts + first_pcr * TS_PACKET_BYTES,
		(npkts - first_pcr) * TS_PACKET_BYTES);
	assert_int_equal(cardless_client_new_card(card_path, NULL, &c), 0);
	cfg.client = &c;
	assert_int_equal(stb_new(&cfg, &s), 0);
	assert_int_equal(stb_feed(s, buf, nemm + npkts, buf), 0);
	assert_int_equal(stb_report(s, rep), 0);
	assert_int_equal(stb_report_json_osd(rep, s, &js), 0);
	root = json_loads(js, 0, NULL);
	assert_non_null(root);
	free(js);
	stb_free(s);
	cas_client_free(&c);
	free(rep);
	free(buf);
	return root;
}

static const json_t *svc_json(const json_t *root, int sid)
{
	const json_t *svcs = json_object_get(root, "services"), *v;
	size_t i;

	json_array_foreach(svcs, i, v)
		if (json_integer_value(json_object_get(v, "service_id")) == sid)
			return v;
	return NULL;
}

/* The osd event of kind with text, or NULL. */
static const json_t *osd_find(const json_t *root, const char *kind, const char *text)
{
	const json_t *arr = json_object_get(root, "osd"), *e;
	size_t i;

	json_array_foreach(arr, i, e)
		if (strcmp(json_string_value(json_object_get(e, "kind")), kind) == 0 &&
		    strcmp(json_string_value(json_object_get(e, "text")), text) == 0)
			return e;
	return NULL;
}

static void test_osd_end_to_end(void **state)
{
	static struct mux_runner mr;
	static uint8_t emms[8][EMM_MAX_SECTION];
	const char *env = getenv("CASTELLAN_BIN");
	char dir[] = "/tmp/castellan-osd-e2e-XXXXXX";
	char db[600], keyf[600], mux[64], listen[64], out[600], card_path[600], bin[4096], inp[4096], q[700];
	char code[OSD_COVERT_CODE_CHARS + 1], serial_s[32];
	struct keystore *ks = NULL;
	struct sms_store *st = NULL;
	struct headend *h = NULL;
	struct headend_config hc;
	struct sms_card card;
	struct sms_fingerprint f;
	struct sms_message *m = calloc(1, sizeof(*m));
	struct card_identity ci;
	size_t lens[8], nemm, npkts, len, nstripped;
	uint8_t *ts, *emm_pkts = malloc(4096 * TS_PACKET_BYTES);
	int64_t now = (int64_t)(now_wall_ms() / 1000u);
	int64_t fp_ecm_id, fp_card_id;
	json_t *root;
	const json_t *e, *svc;
	pthread_t th;
	int rc;

	(void)state;
	assert_non_null(m);
	assert_non_null(emm_pkts);
	snprintf(bin, sizeof(bin), "%s", env ? env : "");
	if (!env || access(bin, X_OK) != 0) {
		print_message("castellan not built: skipped\n");
		skip();
	}
	snprintf(inp, sizeof(inp), "%s", tu_testdata("ts-clear-2svc.ts"));
	assert_non_null(mkdtemp(dir));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);

	/* the SMS: a card subscribed to package 0, and what the operator schedules */
	snprintf(db, sizeof(db), "sqlite:%s/sms.db", dir);
	assert_int_equal(sms_store_open(db, &st), 0);
	memset(&card, 0, sizeof(card));
	card.serial = SERIAL;
	card.start = now - 86400;
	card.finish = now + 86400;
	assert_int_equal(sms_card_add(st, &card, "test"), 0);
	assert_int_equal(sms_subscribe(st, &(struct sms_subscription){ SERIAL, 0, now - 3600, now + 86400 }, "test"), 0);
	memset(&f, 0, sizeof(f));
	f.target = SMS_FP_SERVICE;
	f.value = 101;
	f.fp = (struct osd_fingerprint){ .flags = OSD_FP_SERIAL, .x_pct = 12, .y_pct = 80, .fg = { 0xFF, 0xFF, 0x00 },
		.bg = { 0, 0, 0, 0xC0 }, .font_px = 28, .duration_ms = 5000, .repeat = 1, .service = 101 };
	f.start_s = now - 60;
	f.end_s = now + 3600;
	assert_int_equal(sms_fp_add(st, &f, "test"), 0);
	fp_ecm_id = f.id;
	memset(&f, 0, sizeof(f));
	f.target = SMS_FP_CARD;
	f.value = SERIAL;
	f.fp = (struct osd_fingerprint){ .flags = OSD_FP_SERIAL | OSD_FP_COVERT | OSD_FP_ENCODED, .x_pct = 50,
		.y_pct = 50, .fg = { 0x80, 0x80, 0x80 }, .bg = { 0, 0, 0, 0 }, .font_px = 16, .duration_ms = 120,
		.repeat = 1 };
	f.start_s = now - 60;
	f.end_s = now + 3600;
	assert_int_equal(sms_fp_add(st, &f, "test"), 0);
	fp_card_id = f.id;
	m->card = SERIAL;
	m->msg.scope = OSD_SCOPE_INDIVIDUAL;
	m->msg.flags = OSD_MSG_POPUP | OSD_MSG_FORCED;
	m->msg.duration_s = 20;
	m->msg.fg[0] = m->msg.fg[1] = m->msg.fg[2] = 0xFF;
	m->msg.bg[2] = 0x80;
	m->msg.bg[3] = 0xE0;
	m->msg.font_px = 26;
	m->msg.expiry_s = (uint64_t)now + 86400;
	m->start_s = now - 60;
	assert_int_equal(osd_msg_set_text(&m->msg, msg_text), 0);
	assert_int_equal(sms_msg_add(st, m, "test"), 0);
	sms_store_close(st);

	/* the box's card file */
	assert_int_equal(card_issue(ks, SERIAL, &ci), 0);
	snprintf(card_path, sizeof(card_path), "%s/card.json", dir);
	assert_int_equal(card_save(&ci, card_path), 0);
	assert_int_equal(osd_covert_code(ci.key, (uint32_t)fp_card_id, code), 0);

	/* the head-end: ECMG on a free port, EMMs to our MUX */
	he_mux_start(&mr, 500, mux, sizeof(mux));
	snprintf(keyf, sizeof(keyf), "%s/admin-key", dir);
	he_config(&hc, dir, ks, keyf, mux, 200);
	hc.ecmg_addr = "127.0.0.1:0";
	assert_int_equal(headend_new(&hc, &h), 0);
	assert_int_equal(pthread_create(&th, NULL, he_headend_main, h), 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", headend_ecmg_port(h));

	/* the card's EMM: grant + covert fingerprint + message */
	nemm = wait_card_emms(&mr, ks, 2, emms, lens, 8);
	assert_true(nemm >= 1);

	/* the scrambler, its ECMs from the head-end's ECMG */
	snprintf(out, sizeof(out), "%s/out.ts", dir);
	{
		char *a[] = { bin, (char *)"scramble", (char *)"--input", inp, (char *)"--output", out,
			(char *)"--service", (char *)"101:ac=00000001", (char *)"--ecm-id", (char *)"101", (char *)"--ecmg", listen,
			(char *)"--super-cas-id", (char *)"0x4ADC0001", (char *)"--cp-duration", (char *)"1", NULL };

		rc = run_wait(a);
	}
	headend_stop(h);
	pthread_join(th, NULL);
	headend_free(h);
	he_mux_stop(&mr);
	assert_int_equal(rc, 0);
	ts = tu_read(out, &len);
	assert_non_null(ts);
	npkts = len / TS_PACKET_BYTES;
	nemm = emm_packets((const uint8_t (*)[EMM_MAX_SECTION])emms, lens, nemm, emm_pkts, 4096);

	/* the box */
	root = run_box(card_path, emm_pkts, nemm, ts, npkts);
	svc = svc_json(root, 101);
	assert_non_null(svc);
	/* descrambled from the first ECM after the EMM on (the one before it: not entitled yet) */
	assert_true(json_integer_value(json_object_get(svc, "descrambled")) > 500);
	assert_true(json_integer_value(json_object_get(svc, "ecm_accepted")) >= 4);
	snprintf(serial_s, sizeof(serial_s), "%llu", (unsigned long long)SERIAL);
	/* the channel fingerprint, from the ECMs */
	e = osd_find(root, "fingerprint", serial_s);
	assert_non_null(e);
	assert_true(json_is_true(json_object_get(e, "overt")));
	assert_int_equal(json_integer_value(json_object_get(e, "service")), 101);
	assert_int_equal(json_integer_value(json_object_get(e, "x_pct")), 12);
	assert_int_equal(json_integer_value(json_object_get(e, "y_pct")), 80);
	assert_string_equal(json_string_value(json_object_get(e, "fg")), "#FFFF00");
	assert_string_equal(json_string_value(json_object_get(e, "bg")), "#000000C0");
	assert_int_equal(json_integer_value(json_object_get(e, "font_px")), 28);
	assert_int_equal(json_integer_value(json_object_get(e, "duration_ms")), 5000);
	assert_true(json_integer_value(json_object_get(e, "start_ms")) >= 0);
	assert_string_equal(json_string_value(json_object_get(e, "style")), "overlay");
	assert_int_equal(json_integer_value(json_object_get(e, "id")), fp_ecm_id);
	/* the card's covert fingerprint, from its EMM: the code, not the serial */
	e = osd_find(root, "fingerprint", code);
	assert_non_null(e);
	assert_false(json_is_true(json_object_get(e, "overt")));
	assert_int_equal(json_integer_value(json_object_get(e, "service")), 0);
	assert_true(json_is_true(json_object_get(e, "covert_encoded")));
	/* the message, from the same EMM */
	e = osd_find(root, "message", msg_text);
	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "style")), "popup");
	assert_true(json_is_true(json_object_get(e, "forced")));
	assert_int_equal(json_integer_value(json_object_get(e, "duration_ms")), 20000);
	assert_string_equal(json_string_value(json_object_get(e, "bg")), "#000080E0");
	assert_true(json_integer_value(json_object_get(e, "start_ms")) >= 0);
	json_decref(root);

	/* stripped: every ECM of the service without its fingerprint block */
	{
		uint16_t ecm_pid = 0;

		for (size_t i = 0; i < npkts && !ecm_pid; i++) { /* the PID whose sections are ECMs with a block */
			struct ts_hdr hh;
			const uint8_t *p = ts + i * TS_PACKET_BYTES, *sec;

			if (ts_parse(p, &hh) != 0 || !hh.pusi || hh.pid < 0x20 || hh.pid == HE_EMM_PID)
				continue;
			sec = p + hh.payload_off + 1 + p[hh.payload_off];
			if ((sec[0] == ECM_TABLE_EVEN || sec[0] == ECM_TABLE_ODD) && sec[3] == ECM_FORMAT_VERSION)
				ecm_pid = hh.pid;
		}
		assert_true(ecm_pid != 0);
		nstripped = strip_fingerprints(ts, npkts, ecm_pid);
		assert_true(nstripped >= 4);
	}
	root = run_box(card_path, emm_pkts, nemm, ts, npkts);
	svc = svc_json(root, 101);
	assert_non_null(svc);
	assert_int_equal(json_integer_value(json_object_get(svc, "descrambled")), 0);
	assert_int_equal(json_integer_value(json_object_get(svc, "ecm_accepted")), 0);
	assert_string_equal(json_string_value(json_object_get(svc, "last_refusal")), err_str(CE_MAC));
	assert_null(osd_find(root, "fingerprint", serial_s));
	assert_non_null(osd_find(root, "message", msg_text)); /* the EMM side is untouched */
	json_decref(root);

	free(ts);
	free(emm_pkts);
	free(m);
	keystore_free(ks);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}


/* ---- the chip box: the head-end's vendor EMMs (--vendor-keys) ---- */

#define CHIP_SERIAL 2100000043ull
#define CHIP_ID 0x0000CA57E11A0001ull
#define CHIP_VENDOR 0x00004ADCu

static uint64_t chip_clock(void *ctx)
{
	return *(const uint64_t *)ctx;
}

/* The card's vendor EMMs seen by the MUX that open under K_emm(kv) with a
 * grant and at least want OSD items (copied into out). */
static size_t wait_vendor_emms(struct mux_runner *mr, const uint8_t kv[16], size_t want,
	uint8_t out[][EMM_MAX_SECTION], size_t *lens, size_t max)
{
	struct emm_content *ct = calloc(1, sizeof(*ct));
	size_t seen = 0, got = 0;

	assert_non_null(ct);
	for (int tries = 0; tries < 600 && got == 0; tries++) { /* 30 s at most */
		pthread_mutex_lock(&mr->mu);
		for (; seen < mr->n && got < max; seen++) {
			const uint8_t *sec = mr->sec[seen % HE_RING];
			size_t len = mr->len[seen % HE_RING];
			struct emm_view v;

			if (emm_parse(sec, len, CHIP_SERIAL, &v) != 0 || emm_vendor_open(&v, kv, ct) != 0)
				continue;
			if (ct->nosd >= want && ct->has_grant) {
				memcpy(out[got], sec, len);
				lens[got++] = len;
			}
			emm_content_wipe(ct);
		}
		pthread_mutex_unlock(&mr->mu);
		if (got == 0)
			usleep(50000);
	}
	free(ct);
	return got;
}

/* SMS (a card in chip CHIP_ID's box, its fingerprint and message) ->
 * head-end with the vendor's key file (the card's EMMs sealed under
 * K_emm(K_v(chip))) -> MUX -> the reference box in chip mode: a real chip
 * process running the vendor opens the EMM, the ladder client applies it
 * and the box reports the fingerprint (the serial) and the message. The
 * same EMM on a chip running another vendor: refused, nothing shown. */
static void test_osd_chip_box(void **state)
{
	static struct mux_runner mr;
	static uint8_t emms[4][EMM_MAX_SECTION];
	char dir[] = "/tmp/castellan-osd-chip-XXXXXX";
	char db[600], keyf[600], mux[64], vk[600], q[700], serial_s[32];
	struct keystore *ks = NULL;
	struct sms_store *st = NULL;
	struct headend *h = NULL;
	struct headend_config hc;
	struct sms_card card;
	struct sms_fingerprint f;
	struct sms_message *m = calloc(1, sizeof(*m));
	struct chip_otp otp;
	uint8_t kv[16];
	size_t lens[4], nemm, npk;
	uint8_t *pkts = malloc(512 * TS_PACKET_BYTES);
	int64_t now = (int64_t)(now_wall_ms() / 1000u);
	uint64_t box_now = (uint64_t)now * 1000u;
	pthread_t th;
	FILE *o;

	(void)state;
	assert_non_null(m);
	assert_non_null(pkts);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &ks), 0);
	memset(&otp, 0, sizeof(otp));
	otp.chip_id = CHIP_ID;
	assert_int_equal(RAND_bytes(otp.root, sizeof(otp.root)), 1);
	memset(otp.trust_root_hash, 0x5A, sizeof(otp.trust_root_hash));
	assert_int_equal(kms_vendor_key(otp.root, CHIP_VENDOR, kv), 0);
	snprintf(vk, sizeof(vk), "%s/vendor.csv", dir);
	o = fopen(vk, "w");
	assert_non_null(o);
	fprintf(o, "0x%016llx,", (unsigned long long)CHIP_ID);
	for (int i = 0; i < 16; i++)
		fprintf(o, "%02x", kv[i]);
	fprintf(o, "\n");
	assert_int_equal(fclose(o), 0);

	snprintf(db, sizeof(db), "sqlite:%s/sms.db", dir);
	assert_int_equal(sms_store_open(db, &st), 0);
	memset(&card, 0, sizeof(card));
	card.serial = CHIP_SERIAL;
	card.start = now - 86400;
	card.finish = now + 86400;
	snprintf(card.chip_id, sizeof(card.chip_id), "0x%016llx", (unsigned long long)CHIP_ID);
	assert_int_equal(sms_card_add(st, &card, "test"), 0);
	assert_int_equal(sms_subscribe(st, &(struct sms_subscription){ CHIP_SERIAL, 0, now - 3600, now + 86400 }, "test"),
		0);
	memset(&f, 0, sizeof(f));
	f.target = SMS_FP_CARD;
	f.value = CHIP_SERIAL;
	f.fp = (struct osd_fingerprint){ .flags = OSD_FP_SERIAL, .x_pct = 40, .y_pct = 60, .fg = { 0x00, 0xFF, 0xFF },
		.bg = { 0, 0, 0, 0xA0 }, .font_px = 30, .duration_ms = 3000, .repeat = 1 };
	f.start_s = now - 60;
	f.end_s = now + 3600;
	assert_int_equal(sms_fp_add(st, &f, "test"), 0);
	m->card = CHIP_SERIAL;
	m->msg.scope = OSD_SCOPE_INDIVIDUAL;
	m->msg.flags = OSD_MSG_FORCED;
	m->msg.duration_s = 20;
	m->msg.fg[0] = m->msg.fg[1] = m->msg.fg[2] = 0xFF;
	m->msg.bg[3] = 0xE0;
	m->msg.font_px = 26;
	m->msg.expiry_s = (uint64_t)now + 86400;
	m->start_s = now - 60;
	assert_int_equal(osd_msg_set_text(&m->msg, msg_text), 0);
	assert_int_equal(sms_msg_add(st, m, "test"), 0);
	sms_store_close(st);

	he_mux_start(&mr, 500, mux, sizeof(mux));
	snprintf(keyf, sizeof(keyf), "%s/admin-key", dir);
	he_config(&hc, dir, ks, keyf, mux, 200);
	hc.vendor_keys = vk;
	assert_int_equal(headend_new(&hc, &h), 0);
	assert_int_equal(pthread_create(&th, NULL, he_headend_main, h), 0);
	nemm = wait_vendor_emms(&mr, kv, 2, emms, lens, 4);
	headend_stop(h);
	pthread_join(th, NULL);
	headend_free(h);
	he_mux_stop(&mr);
	assert_true(nemm >= 1);
	{ /* a vendor EMM, not a K_card one */
		struct emm_view v;
		struct emm_content *ct = calloc(1, sizeof(*ct));
		uint8_t kc[CARD_KEY_BYTES];

		assert_non_null(ct);
		assert_int_equal(keystore_card_key(ks, CHIP_SERIAL, kc), 0);
		assert_int_equal(emm_parse(emms[0], lens[0], CHIP_SERIAL, &v), 0);
		assert_int_equal(emm_open(&v, kc, ct), CE_MAC);
		secret_wipe(kc, sizeof(kc));
		free(ct);
	}
	npk = emm_packets((const uint8_t (*)[EMM_MAX_SECTION])emms, lens, nemm, pkts, 512);
	snprintf(serial_s, sizeof(serial_s), "%llu", (unsigned long long)CHIP_SERIAL);

	for (int pass = 0; pass < 2; pass++) { /* 0: the chip runs the vendor; 1: another vendor */
		struct chip_link *ctl = NULL, *host = NULL;
		struct entitlement e;
		struct cas_client c;
		struct stb_config cfg = { 0 };
		struct stb *s = NULL;
		struct stb_report *rep = calloc(1, sizeof(*rep));
		uint8_t *buf = malloc(npk * TS_PACKET_BYTES);
		char *js = NULL;
		json_t *root;
		const json_t *ev;
		pid_t pid;

		assert_non_null(rep);
		assert_non_null(buf);
		memcpy(buf, pkts, npk * TS_PACKET_BYTES);
		assert_int_equal(chip_spawn(&otp, &ctl, &host, &pid), 0);
		assert_int_equal(chip_link_set_vendor(ctl, pass == 0 ? CHIP_VENDOR : CHIP_VENDOR + 1), 0);
		memset(&e, 0, sizeof(e)); /* the module's keys file: no keys, the EMM brings them */
		e.ca_system_id = CASID;
		e.card_serial = CHIP_SERIAL;
		e.start_s = (uint64_t)now - 86400;
		e.finish_s = (uint64_t)now + 86400;
		assert_int_equal(ladder_client_from(&e, &c), 0);
		cfg.client = &c;
		cfg.chip = host;
		cfg.now_ms = chip_clock;
		cfg.clock_ctx = &box_now;
		assert_int_equal(stb_new(&cfg, &s), 0);
		assert_int_equal(stb_feed(s, buf, npk, buf), 0);
		assert_int_equal(stb_report(s, rep), 0);
		assert_int_equal(stb_report_json_osd(rep, s, &js), 0);
		root = json_loads(js, 0, NULL);
		assert_non_null(root);
		if (pass == 0) {
			assert_true(rep->emm_accepted >= 1);
			ev = osd_find(root, "fingerprint", serial_s);
			assert_non_null(ev);
			assert_int_equal(json_integer_value(json_object_get(ev, "service")), 0);
			assert_int_equal(json_integer_value(json_object_get(ev, "x_pct")), 40);
			assert_int_equal(json_integer_value(json_object_get(ev, "y_pct")), 60);
			assert_string_equal(json_string_value(json_object_get(ev, "fg")), "#00FFFF");
			assert_string_equal(json_string_value(json_object_get(ev, "bg")), "#000000A0");
			ev = osd_find(root, "message", msg_text);
			assert_non_null(ev);
			assert_true(json_is_true(json_object_get(ev, "forced")));
		} else {
			assert_int_equal(rep->emm_accepted, 0);
			assert_true(rep->emm_refused >= 1);
			assert_int_equal(json_array_size(json_object_get(root, "osd")), 0);
		}
		json_decref(root);
		free(js);
		stb_free(s);
		cas_client_free(&c);
		chip_link_free(ctl);
		chip_link_free(host);
		assert_int_equal(chip_wait(pid), 0);
		free(rep);
		free(buf);
	}
	chip_otp_wipe(&otp);
	secret_wipe(kv, sizeof(kv));
	free(pkts);
	free(m);
	keystore_free(ks);
	snprintf(q, sizeof(q), "rm -rf '%s'", dir);
	assert_int_equal(system(q), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_osd_end_to_end),
		cmocka_unit_test(test_osd_chip_box),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
