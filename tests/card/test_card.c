/*
 * test_card.c - the smartcard: the applet in-process (every status word,
 * chaining, the request counter and its recovery, pairing (software, and
 * to a box's secure chip: real chip processes, only the paired one opens
 * the card's CWs, in-process and through pcscd), personalization,
 * protection and erase, EEPROM power loss between each write step), the
 * personalization file, the smartcard CAS client, request-counter limits
 * set by EMM, the fuzz corpus replayed, the `castellan card` CLI life
 * cycle, and the real PC/SC path (pcscd + vpcd + `castellan card serve`,
 * skipped if not installed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include "lib/bytes.h"
#include "card/applet.h"
#include "card/eeprom.h"
#include "card/perso.h"
#include "card/pcscd_private.h"
#include "client/smartcard.h"
#include "card/vpcd.h"
#include "cas/ecm.h"
#include "cas/emm.h"
#include "cas/keys.h"
#include "cipher/cipher.h"
#include "crypto/kdf.h"
#include "lib/cursor.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/descrambler.h"
#include "ts/psi.h"
#include "ecmforge.h"
#include "testutil.h"

#define CASID 0x4ADC
#define EPOCH_S 3600u
#define SERIAL 2100000042ull
#define T0_MS 1700000000000ull
#define HOUR_MS (3600ull * 1000u)

static const uint8_t test_root[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t CW_E[8] = { 0x11, 0x12, 0x13, 0x36, 0x15, 0x16, 0x17, 0x42 };
static const uint8_t CW_O[8] = { 0x21, 0x22, 0x23, 0x66, 0x25, 0x26, 0x27, 0x72 };

struct fx {
	struct keystore *ks;
	struct emm_issuer *is;
	char dir[64];
	char ee_path[128];
	struct card_eeprom_file eef;
	struct card_eeprom ee;
	struct card_applet *a;
	struct card_transport t;
	uint32_t seq;
};

static uint16_t xfer(struct fx *f, uint8_t ins, const uint8_t *d, size_t n, uint8_t *out, size_t *out_len)
{
	uint8_t buf[CARD_MAX_RESP];
	size_t len = 0;
	uint16_t sw = 0;

	assert_int_equal(card_transceive(&f->t, ins, d, n, out ? out : buf, CARD_MAX_RESP, &len, &sw), 0);
	if (out_len)
		*out_len = len;
	return sw;
}

/* A raw APDU (for bad headers). */
static uint16_t raw(struct fx *f, const uint8_t *apdu, size_t n)
{
	uint8_t resp[CARD_MAX_RESP + 2];
	size_t r = card_applet_apdu(f->a, apdu, n, resp, sizeof(resp));

	assert_true(r >= 2);
	return tu_be16(resp + r - 2);
}

static void perso(struct fx *f, uint8_t maxch, uint32_t window_s)
{
	struct card_perso p;
	uint8_t rec[CARD_PERSO_BYTES];

	assert_int_equal(card_perso_issue(f->ks, SERIAL, maxch, window_s, 0, &p), 0);
	card_perso_encode(&p, rec);
	assert_int_equal(xfer(f, CARD_INS_PERSONALIZE, rec, sizeof(rec), NULL, NULL), SW_OK);
}

static size_t make_ecm(struct fx *f, uint16_t ecm_id, uint64_t ts_ms, uint32_t pkgs, uint8_t *sec)
{
	struct ecm_params p;
	size_t len = 0;

	memset(&p, 0, sizeof(p));
	p.alg = CW_ALG_CSA2;
	p.ecm_id = ecm_id;
	p.ca_system_id = CASID;
	p.timestamp_ms = ts_ms;
	p.epoch = keystore_epoch_at(f->ks, ts_ms / 1000u);
	p.ac_len = 4;
	put_be32(p.ac, pkgs);
	p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	memcpy(p.cw_even, CW_E, 8);
	memcpy(p.cw_odd, CW_O, 8);
	assert_int_equal(ecm_build(f->ks, &p, sec, ECM_MAX_SECTION, &len), 0);
	return len;
}

static uint16_t send_emm(struct fx *f, const uint8_t *sec, size_t len)
{
	return xfer(f, CARD_INS_EMM, sec, len, NULL, NULL);
}

static uint16_t grant(struct fx *f, uint32_t pkgs, uint64_t now_ms)
{
	struct emm_grant g;
	uint8_t sec[EMM_MAX_SECTION];
	size_t len = 0;

	memset(&g, 0, sizeof(g));
	g.packages = pkgs;
	g.start_s = now_ms / 1000u - 3600;
	g.finish_s = now_ms / 1000u + 3 * 3600;
	assert_int_equal(emm_build_unique(f->is, SERIAL, ++f->seq, &g, now_ms, sec, sizeof(sec), &len), 0);
	return send_emm(f, sec, len);
}

static uint16_t command(struct fx *f, uint32_t cmds, uint64_t stb, uint64_t now_ms)
{
	uint8_t sec[EMM_MAX_SECTION];
	size_t len = 0;

	assert_int_equal(emm_build_command(f->is, SERIAL, ++f->seq, cmds, stb, now_ms, sec, sizeof(sec), &len), 0);
	return send_emm(f, sec, len);
}

static uint16_t ecm(struct fx *f, uint16_t ecm_id, uint64_t ts_ms, uint32_t pkgs, uint8_t *out)
{
	uint8_t sec[ECM_MAX_SECTION];
	size_t len = make_ecm(f, ecm_id, ts_ms, pkgs, sec), n = 0;

	return xfer(f, CARD_INS_ECM, sec, len, out, &n);
}

static void info(struct fx *f, struct card_info *i)
{
	assert_int_equal(card_read_info(&f->t, i), 0);
}

static void fx_open_applet(struct fx *f)
{
	assert_int_equal(card_eeprom_file_init(&f->eef, f->ee_path, &f->ee), 0);
	assert_int_equal(card_applet_init(f->a, &f->ee), 0);
	card_local_transport(f->a, &f->t);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(keystore_from_root(CASID, EPOCH_S, test_root, &f->ks), 0);
	assert_int_equal(emm_issuer_new(f->ks, &f->is), 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/card-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->ee_path, sizeof(f->ee_path), "%s/eeprom", f->dir);
	f->a = calloc(1, sizeof(*f->a));
	assert_non_null(f->a);
	fx_open_applet(f);
	*state = f;
	return 0;
}

/* A personalized card with packages 0x3 (N = 2, window 60 s). */
static int setup_live(void **state)
{
	struct fx *f;

	setup(state);
	f = *state;
	perso(f, 2, 60);
	assert_int_equal(grant(f, 0x3, T0_MS), SW_OK);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	card_applet_wipe(f->a);
	free(f->a);
	emm_issuer_free(f->is);
	keystore_free(f->ks);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ---- blank card, personalization, protection, erase ---- */

static void test_blank_personalize_protect_erase(void **state)
{
	struct fx *f = *state;
	struct card_info i;
	struct card_perso p;
	uint8_t rec[CARD_PERSO_BYTES], tok[CARD_TOKEN_BYTES], out[CARD_MAX_RESP];

	info(f, &i);
	assert_int_equal(i.life, CARD_LIFE_BLANK);
	assert_int_equal(ecm(f, 1, T0_MS, 1, out), SW_STATE);
	assert_int_equal(grant(f, 1, T0_MS), SW_STATE);
	assert_int_equal(xfer(f, CARD_INS_PERSONALIZE, rec, 10, NULL, NULL), SW_WRONG_LENGTH);
	perso(f, 3, 120);
	info(f, &i);
	assert_int_equal(i.life, CARD_LIFE_PERSONALIZED);
	assert_true(i.protect);
	assert_int_equal(i.serial, SERIAL);
	assert_int_equal(i.ca_system_id, CASID);
	assert_int_equal(i.max_channels, 3);
	assert_int_equal(i.window_s, 120);
	assert_int_equal(i.block_s, CARD_DEFAULT_BLOCK_S);
	/* protected: cannot be re-programmed */
	assert_int_equal(card_perso_issue(f->ks, SERIAL + 1, 0, 0, 0, &p), 0);
	card_perso_encode(&p, rec);
	assert_int_equal(xfer(f, CARD_INS_PERSONALIZE, rec, sizeof(rec), NULL, NULL), SW_STATE);
	/* erase needs the head-end's token for this card */
	assert_int_equal(card_erase_token(p.k_card, SERIAL + 1, tok), 0); /* another card's token */
	assert_int_equal(xfer(f, CARD_INS_ERASE, tok, sizeof(tok), NULL, NULL), SW_BAD_MAC);
	assert_int_equal(xfer(f, CARD_INS_ERASE, tok, 5, NULL, NULL), SW_WRONG_LENGTH);
	info(f, &i);
	assert_int_equal(i.life, CARD_LIFE_PERSONALIZED);
	assert_int_equal(card_perso_issue(f->ks, SERIAL, 0, 0, 0, &p), 0);
	assert_int_equal(card_erase_token(p.k_card, SERIAL, tok), 0);
	assert_int_equal(xfer(f, CARD_INS_ERASE, tok, sizeof(tok), NULL, NULL), SW_OK);
	info(f, &i);
	assert_int_equal(i.life, CARD_LIFE_BLANK);
	assert_int_equal(i.serial, 0);
	/* erased state survives a power cycle, and the card can be programmed again */
	assert_int_equal(card_applet_reset(f->a), 0);
	info(f, &i);
	assert_int_equal(i.life, CARD_LIFE_BLANK);
	card_perso_encode(&p, rec);
	assert_int_equal(xfer(f, CARD_INS_PERSONALIZE, rec, sizeof(rec), NULL, NULL), SW_OK);
	/* bad personalization records */
	rec[0] = 9;
	assert_int_equal(card_perso_decode(rec, sizeof(rec), &p), CE_UNSUPPORTED);
}

/* ---- ECM -> CW, and every refusal ---- */

static void test_ecm_cw(void **state)
{
	struct fx *f = *state;
	uint8_t out[CARD_MAX_RESP];

	assert_int_equal(ecm(f, 1, T0_MS, 0x1, out), SW_OK);
	assert_int_equal(out[0], CARD_CW_CLEAR);
	assert_int_equal(out[1], CW_ALG_CSA2);
	assert_int_equal(out[2], ECM_HAS_EVEN | ECM_HAS_ODD);
	assert_int_equal(out[3], 8);
	assert_memory_equal(out + 4, CW_E, 8);
	assert_memory_equal(out + 20, CW_O, 8);
}

static void test_ecm_chained_many_packages(void **state)
{
	struct fx *f = *state;
	uint8_t sec[ECM_MAX_SECTION], out[CARD_MAX_RESP];
	size_t len = make_ecm(f, 7, T0_MS, 0xFFFF0002u, sec), n = 0;

	assert_true(len > 255); /* needs command chaining */
	assert_int_equal(xfer(f, CARD_INS_ECM, sec, len, out, &n), SW_OK);
	assert_memory_equal(out + 4, CW_E, 8);
}

/* Issue 12 item 9 in the card: a subscriber of package 2 re-seals an ECM of
 * packages 1 and 2 (its own CWs, ECM_id, a later time; package 2's wrap made
 * again). The card holds package 1 (and 0): it refuses the forgery with the
 * bad-MAC status and hands out no CW; the genuine ECM still works. */
static void test_ecm_forged_other_package(void **state)
{
	struct fx *f = *state;
	uint8_t sec[ECM_MAX_SECTION], forged[ECM_MAX_SECTION], out[CARD_MAX_RESP], evil[16];
	size_t len = make_ecm(f, 7, T0_MS, 0x6, sec), n = 0;
	struct pkg_key k2;

	assert_int_equal(keystore_package_key(f->ks, keystore_epoch_at(f->ks, T0_MS / 1000u), 2, &k2), 0);
	memset(evil, 0xEE, sizeof(evil));
	assert_true(tu_ecm_forge(sec, len, 2, k2.key, 0x0777, T0_MS + 5000, evil, true, forged));
	pkg_key_wipe(&k2);
	assert_int_equal(xfer(f, CARD_INS_ECM, forged, len, out, &n), SW_BAD_MAC);
	assert_int_equal(n, 0);
	assert_int_equal(xfer(f, CARD_INS_ECM, sec, len, out, &n), SW_OK);
	assert_memory_equal(out + 4, CW_E, 8);
}

static void test_status_words(void **state)
{
	struct fx *f = *state;
	uint8_t sec[ECM_MAX_SECTION], out[CARD_MAX_RESP], emm[EMM_MAX_SECTION];
	size_t len, elen = 0;
	struct card_info i;

	/* not entitled: package 2 only */
	assert_int_equal(ecm(f, 1, T0_MS, 0x4, out), SW_NOT_ENTITLED);
	/* expired: after finish (now + 3 h) */
	assert_int_equal(ecm(f, 1, T0_MS + 4 * HOUR_MS, 0x1, out), SW_EXPIRED);
	/* no key: an epoch two hours on is inside [start, finish] but keyless */
	assert_int_equal(ecm(f, 1, T0_MS + 2 * HOUR_MS + 1000, 0x1, out), SW_NO_KEY);
	/* bad MAC: one ciphertext byte flipped */
	len = make_ecm(f, 1, T0_MS, 0x1, sec);
	sec[len - 20] ^= 1;
	assert_int_equal(xfer(f, CARD_INS_ECM, sec, len, out, NULL), SW_BAD_MAC);
	/* malformed */
	assert_int_equal(xfer(f, CARD_INS_ECM, sec, 10, out, NULL), SW_BAD_DATA);
	/* replay: accept one, then one 2 minutes older */
	assert_int_equal(ecm(f, 1, T0_MS + 5 * 60000, 0x1, out), SW_OK);
	assert_int_equal(ecm(f, 1, T0_MS + 3 * 60000 - 1, 0x1, out), SW_REPLAY);
	/* EMM: replay of an accepted sequence number */
	assert_int_equal(emm_build_unique(f->is, SERIAL, f->seq, &(struct emm_grant){ .packages = 1,
		.start_s = T0_MS / 1000, .finish_s = T0_MS / 1000 + 60 }, T0_MS, emm, sizeof(emm), &elen), 0);
	assert_int_equal(send_emm(f, emm, elen), SW_REPLAY);
	/* EMM of another card */
	assert_int_equal(emm_build_command(f->is, SERIAL + 1, 100, EMM_CMD_BLOCK, 0, T0_MS, emm, sizeof(emm), &elen), 0);
	assert_int_equal(send_emm(f, emm, elen), SW_NOT_FOUND);
	/* EMM with a bad tag */
	assert_int_equal(emm_build_command(f->is, SERIAL, f->seq + 1, EMM_CMD_BLOCK, 0, T0_MS, emm, sizeof(emm), &elen), 0);
	emm[elen - 1] ^= 0x80;
	assert_int_equal(send_emm(f, emm, elen), SW_BAD_MAC);
	info(f, &i);
	assert_false(i.blocked); /* refused EMMs changed nothing */
	/* blocked from the head-end, then unblocked */
	assert_int_equal(command(f, EMM_CMD_BLOCK, 0, T0_MS), SW_OK);
	assert_int_equal(ecm(f, 1, T0_MS + 6 * 60000, 0x1, out), SW_BLOCKED);
	assert_int_equal(command(f, EMM_CMD_UNBLOCK, 0, T0_MS), SW_OK);
	assert_int_equal(ecm(f, 1, T0_MS + 6 * 60000, 0x1, out), SW_OK);
	/* APDU level */
	{
		static const uint8_t bad_cla[] = { 0x00, CARD_INS_INFO, 0, 0, 0 };
		static const uint8_t bad_ins[] = { 0x80, 0x77, 0, 0, 0 };
		static const uint8_t bad_p1[] = { 0x80, CARD_INS_INFO, 1, 0, 0 };
		static const uint8_t short3[] = { 0x80, CARD_INS_INFO, 0 };
		static const uint8_t bad_lc[] = { 0x80, CARD_INS_ECM, 0, 0, 9, 1, 2 };
		static const uint8_t bad_ext[] = { 0x80, CARD_INS_ECM, 0, 0, 0, 0, 9, 1 };
		static const uint8_t info_lc[] = { 0x80, CARD_INS_INFO, 0, 0, 1, 0 };
		static const uint8_t chain_info[] = { 0x90, CARD_INS_INFO, 0, 0, 0 };
		static const uint8_t chain_ecm[] = { 0x90, CARD_INS_ECM, 0, 0, 1, 0x80 };
		static const uint8_t last_emm[] = { 0x80, CARD_INS_EMM, 0, 0, 1, 0x82 };

		assert_int_equal(raw(f, bad_cla, sizeof(bad_cla)), SW_UNKNOWN_CLA);
		assert_int_equal(raw(f, bad_ins, sizeof(bad_ins)), SW_UNKNOWN_INS);
		assert_int_equal(raw(f, bad_p1, sizeof(bad_p1)), SW_WRONG_P1P2);
		assert_int_equal(raw(f, short3, sizeof(short3)), SW_WRONG_LENGTH);
		assert_int_equal(raw(f, bad_lc, sizeof(bad_lc)), SW_WRONG_LENGTH);
		assert_int_equal(raw(f, bad_ext, sizeof(bad_ext)), SW_WRONG_LENGTH);
		assert_int_equal(raw(f, info_lc, sizeof(info_lc)), SW_WRONG_LENGTH);
		assert_int_equal(raw(f, chain_info, sizeof(chain_info)), SW_CHAIN);
		assert_int_equal(raw(f, chain_ecm, sizeof(chain_ecm)), SW_OK);
		assert_int_equal(raw(f, last_emm, sizeof(last_emm)), SW_CHAIN); /* ECM chain interrupted */
	}
	/* an extended-length ECM APDU works too */
	{
		static uint8_t apdu[7 + ECM_MAX_SECTION + 2];
		size_t n = make_ecm(f, 1, T0_MS + 7 * 60000, 0x1, sec);

		apdu[0] = 0x80;
		apdu[1] = CARD_INS_ECM;
		apdu[4] = 0;
		put_be16(apdu + 5, (uint16_t)n);
		memcpy(apdu + 7, sec, n);
		assert_int_equal(raw(f, apdu, 7 + n + 2), SW_OK);
	}
	/* every SW maps to a CE code and back */
	assert_int_equal(card_sw_to_err(SW_COUNTER), CE_LIMIT);
	assert_int_equal(card_err_to_sw(CE_NOT_ENTITLED), SW_NOT_ENTITLED);
	assert_int_equal(card_sw_to_err(card_err_to_sw(CE_EXPIRED)), CE_EXPIRED);
}

/* ---- request counter ---- */

static void test_counter_limit_and_recovery(void **state)
{
	struct fx *f = *state;
	uint8_t out[CARD_MAX_RESP];
	struct card_info i;
	uint64_t t = T0_MS;

	assert_int_equal(ecm(f, 1, t, 1, out), SW_OK);
	assert_int_equal(ecm(f, 2, t + 1000, 1, out), SW_OK);
	assert_int_equal(ecm(f, 1, t + 10000, 1, out), SW_OK); /* same channels again: fine */
	assert_int_equal(ecm(f, 2, t + 10000, 1, out), SW_OK);
	/* a third channel inside the window: the card blocks itself */
	assert_int_equal(ecm(f, 3, t + 20000, 1, out), SW_COUNTER);
	info(f, &i);
	assert_true(i.blocked);
	assert_int_equal(i.blocked_until_ms, t + 20000 + CARD_DEFAULT_BLOCK_S * 1000ull);
	assert_int_equal(ecm(f, 1, t + 30000, 1, out), SW_BLOCKED);
	/* the block survives a power cycle */
	assert_int_equal(card_applet_reset(f->a), 0);
	assert_int_equal(ecm(f, 1, t + 40000, 1, out), SW_BLOCKED);
	/* recovery 1: an unblock EMM */
	assert_int_equal(command(f, EMM_CMD_UNBLOCK, 0, t), SW_OK);
	assert_int_equal(ecm(f, 1, t + 50000, 1, out), SW_OK);
	assert_int_equal(ecm(f, 2, t + 50000, 1, out), SW_OK);
	assert_int_equal(ecm(f, 3, t + 60000, 1, out), SW_COUNTER);
	/* recovery 2: a day later (card time from an authentic ECM) */
	assert_int_equal(grant(f, 1, t + 24 * HOUR_MS), SW_OK); /* keys for the next day */
	assert_int_equal(ecm(f, 1, t + 24 * HOUR_MS - 60000, 1, out), SW_BLOCKED);
	assert_int_equal(ecm(f, 1, t + 60000 + 24 * HOUR_MS, 1, out), SW_OK);
	info(f, &i);
	assert_false(i.blocked);
	/* sliding window: old channels drop out after window_s */
	t += 24 * HOUR_MS + 60000;
	assert_int_equal(ecm(f, 2, t + 10000, 1, out), SW_OK);
	assert_int_equal(ecm(f, 3, t + 62000, 1, out), SW_OK); /* 1 expired, {2, 3} */
	assert_int_equal(ecm(f, 4, t + 71000, 1, out), SW_OK); /* 2 expired, {3, 4} */
	/* a forged ECM for a new channel neither counts nor blocks */
	{
		uint8_t sec[ECM_MAX_SECTION];
		size_t n = make_ecm(f, 9, t + 72000, 1, sec);

		sec[n - 1] ^= 1;
		assert_int_equal(xfer(f, CARD_INS_ECM, sec, n, out, NULL), SW_BAD_MAC);
		info(f, &i);
		assert_false(i.blocked);
		assert_int_equal(i.nchan, 2);
	}
	/* reset-counter EMM */
	assert_int_equal(command(f, EMM_CMD_RESET_COUNTER, 0, t), SW_OK);
	info(f, &i);
	assert_int_equal(i.nchan, 0);
}

/* ---- request-counter limits set by EMM (EMM_T_COUNTER_LIMITS) ---- */

static uint16_t limits(struct fx *f, uint8_t maxch, uint32_t window_s, uint32_t block_s, uint64_t now_ms)
{
	struct emm_limits l = { .max_channels = maxch, .window_s = window_s, .block_s = block_s };
	uint8_t sec[EMM_MAX_SECTION];
	size_t len = 0;

	assert_int_equal(emm_build_limits(f->is, SERIAL, ++f->seq, &l, now_ms, sec, sizeof(sec), &len), 0);
	assert_int_equal(len, EMM_UNIQUE_OVERHEAD + 2 + EMM_LIMITS_BYTES);
	return send_emm(f, sec, len);
}

static void test_counter_limits_by_emm(void **state)
{
	struct fx *f = *state;
	uint8_t out[CARD_MAX_RESP];
	struct card_info i;
	uint64_t t = T0_MS;

	/* personalized with N = 2: raise it to 4 channels in 30 s, block 1 h */
	assert_int_equal(ecm(f, 1, t, 1, out), SW_OK);
	assert_int_equal(ecm(f, 2, t + 1000, 1, out), SW_OK);
	assert_int_equal(limits(f, 4, 30, 3600, t), SW_OK);
	info(f, &i);
	assert_int_equal(i.max_channels, 4);
	assert_int_equal(i.window_s, 30);
	assert_int_equal(i.block_s, 3600);
	assert_int_equal(i.nchan, 0); /* new rule, fresh window */
	for (uint16_t ch = 1; ch <= 4; ch++)
		assert_int_equal(ecm(f, ch, t + 2000 + ch, 1, out), SW_OK);
	/* the limits survive a power cycle */
	assert_int_equal(card_applet_reset(f->a), 0);
	info(f, &i);
	assert_int_equal(i.max_channels, 4);
	assert_int_equal(i.nchan, 4);
	/* the 5th channel inside 30 s blocks for block_s = 1 h (not the default day) */
	assert_int_equal(ecm(f, 5, t + 10000, 1, out), SW_COUNTER);
	info(f, &i);
	assert_true(i.blocked);
	assert_int_equal(i.blocked_until_ms, t + 10000 + 3600ull * 1000u);
	assert_int_equal(ecm(f, 1, t + 3600ull * 1000u, 1, out), SW_BLOCKED);
	assert_int_equal(ecm(f, 1, t + 10000 + 3600ull * 1000u, 1, out), SW_OK);
	/* lower it to N = 1: a second channel blocks at once, even after the
	 * old window (30 s) is over for the first */
	assert_int_equal(limits(f, 1, 30, 3600, t + 3600ull * 1000u), SW_OK);
	assert_int_equal(ecm(f, 1, t + 3611ull * 1000u, 1, out), SW_OK);
	assert_int_equal(ecm(f, 2, t + 3612ull * 1000u, 1, out), SW_COUNTER);
	/* a limits EMM does not lift a running block (UNBLOCK does) */
	assert_int_equal(limits(f, 8, 60, 60, t + 3600ull * 1000u), SW_OK);
	assert_int_equal(ecm(f, 1, t + 3613ull * 1000u, 1, out), SW_BLOCKED);
	assert_int_equal(command(f, EMM_CMD_UNBLOCK, 0, t + 3600ull * 1000u), SW_OK);
	assert_int_equal(ecm(f, 2, t + 3614ull * 1000u, 1, out), SW_OK);
	/* replayed: refused, limits unchanged */
	{
		struct emm_limits l = { .max_channels = 3, .window_s = 10, .block_s = 10 };
		uint8_t sec[EMM_MAX_SECTION];
		size_t len = 0;

		assert_int_equal(emm_build_limits(f->is, SERIAL, f->seq, &l, t, sec, sizeof(sec), &len), 0);
		assert_int_equal(send_emm(f, sec, len), SW_REPLAY);
		info(f, &i);
		assert_int_equal(i.max_channels, 8);
		/* another card's limits: not ours */
		assert_int_equal(emm_build_limits(f->is, SERIAL + 1, 99, &l, t, sec, sizeof(sec), &len), 0);
		assert_int_equal(send_emm(f, sec, len), SW_NOT_FOUND);
		/* tampered: bad MAC, nothing changes */
		assert_int_equal(emm_build_limits(f->is, SERIAL, f->seq + 1, &l, t, sec, sizeof(sec), &len), 0);
		sec[len - 1] ^= 0x01;
		assert_int_equal(send_emm(f, sec, len), SW_BAD_MAC);
		info(f, &i);
		assert_int_equal(i.max_channels, 8);
		assert_int_equal(i.window_s, 60);
	}
}

/* The record's bad cases: the builder refuses them, and authentic EMMs
 * carrying them (emm_build encodes as given) are refused by the parser and
 * by the card without a state change. */
static void test_counter_limits_bad(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint8_t maxch;
		uint32_t window_s, block_s;
	} bad[] = { { 0, 60, 60 }, { 17, 60, 60 }, { 255, 60, 60 }, { 2, 0, 60 }, { 0, 0, 0 } };
	static struct emm_content c, back;
	uint8_t sec[EMM_MAX_SECTION];
	struct emm_view v;
	struct card_info i;
	struct card_perso p;
	size_t len = 0;

	assert_int_equal(card_perso_issue(f->ks, SERIAL, 0, 0, 0, &p), 0);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct emm_limits l = { bad[k].maxch, bad[k].window_s, bad[k].block_s };

		assert_int_equal(emm_build_limits(f->is, SERIAL, f->seq + 1, &l, T0_MS, sec, sizeof(sec), &len), CE_ARG);
		memset(&c, 0, sizeof(c));
		c.has_limits = true;
		c.limits = l;
		assert_int_equal(emm_build(f->is, SERIAL, f->seq + 1, T0_MS, &c, sec, sizeof(sec), &len), 0);
		assert_int_equal(emm_parse(sec, len, SERIAL, &v), 0);
		assert_int_equal(emm_open(&v, p.k_card, &back), CE_RANGE);
		assert_int_equal(send_emm(f, sec, len), SW_BAD_DATA);
	}
	assert_int_equal(emm_build_limits(f->is, SERIAL, 1, NULL, T0_MS, sec, sizeof(sec), &len), CE_ARG);
	assert_int_equal(emm_build_limits(f->is, SERIAL, f->seq + 1,
		&(struct emm_limits){ .max_channels = 16, .window_s = 1 }, T0_MS, sec, 20, &len), CE_OVERFLOW);
	info(f, &i);
	assert_int_equal(i.max_channels, 2);
	assert_int_equal(i.window_s, 60);
	/* the good record round-trips, alone and with other records */
	memset(&c, 0, sizeof(c));
	c.has_limits = true;
	c.limits = (struct emm_limits){ .max_channels = 16, .window_s = UINT32_MAX, .block_s = 0 };
	c.cmds = EMM_CMD_RESET_COUNTER | EMM_CMD_UNBLOCK;
	assert_int_equal(emm_build(f->is, SERIAL, ++f->seq, T0_MS, &c, sec, sizeof(sec), &len), 0);
	assert_int_equal(emm_parse(sec, len, SERIAL, &v), 0);
	assert_int_equal(emm_open(&v, p.k_card, &back), 0);
	assert_true(back.has_limits);
	assert_int_equal(back.limits.max_channels, 16);
	assert_int_equal(back.limits.window_s, UINT32_MAX);
	assert_int_equal(back.limits.block_s, 0);
	assert_int_equal(back.cmds, EMM_CMD_RESET_COUNTER | EMM_CMD_UNBLOCK);
	assert_int_equal(send_emm(f, sec, len), SW_OK);
	info(f, &i);
	assert_int_equal(i.max_channels, 16);
	/* the cardless box state accepts the record and ignores it: seq consumed */
	{
		struct emm_card_state cs;

		memset(&cs, 0, sizeof(cs));
		cs.last_seq = f->seq - 1;
		assert_int_equal(emm_state_apply(&cs, &v, &back), 0);
		assert_int_equal(cs.last_seq, f->seq);
		assert_false(cs.blocked);
		assert_false(cs.has_ent);
		assert_int_equal(emm_state_apply(&cs, &v, &back), CE_REPLAY);
		emm_state_wipe(&cs);
	}
	emm_content_wipe(&back);
	emm_content_wipe(&c);
	secret_wipe(&p, sizeof(p));
}

/* ---- pairing ---- */

static uint64_t pair_now(void *ctx)
{
	(void)ctx;
	return T0_MS;
}

struct host_cap {
	uint8_t even[16], odd[16];
	size_t len;
	int nloads;
};

static int cap_load(void *ctx, uint16_t sid, enum cw_alg alg, enum cw_parity par, const uint8_t *cw, size_t len)
{
	struct host_cap *h = ctx;

	(void)sid;
	(void)alg;
	memcpy(par == CW_EVEN ? h->even : h->odd, cw, len);
	h->len = len;
	h->nloads++;
	return 0;
}

static void test_pairing(void **state)
{
	struct fx *f = *state;
	struct card_perso p;
	uint8_t out[CARD_MAX_RESP], kp[16], cw[16], sec[ECM_MAX_SECTION];
	struct host_cap h;
	struct cas_host host = { .ctx = &h, .load_cw = cap_load, .now_ms = pair_now };
	struct cas_client c;
	struct card_transport t;
	size_t n;

	assert_int_equal(command(f, EMM_CMD_PAIR, 77, T0_MS), SW_OK);
	assert_int_equal(ecm(f, 1, T0_MS, 1, out), SW_OK);
	assert_int_equal(out[0], CARD_CW_PAIRED);
	assert_memory_not_equal(out + 4, CW_E, 8); /* not in clear */
	assert_int_equal(card_perso_issue(f->ks, SERIAL, 0, 0, 0, &p), 0);
	assert_int_equal(card_pairing_key(p.k_card, 77, kp), 0);
	assert_int_equal(card_paired_cw_open(kp, out + 4, cw), 0);
	assert_memory_equal(cw, CW_E, 8);
	/* the right box (software pairing: its client was given K_pair(card, 77)) */
	card_local_transport(f->a, &t);
	assert_int_equal(smartcard_client_new(&t, &c), 0);
	/* a box without key ladder or pair key cannot use a paired card */
	n = make_ecm(f, 1, T0_MS + 1000, 1, sec);
	memset(&h, 0, sizeof(h));
	assert_int_equal(c.ops->ecm(c.self, &host, 101, sec, n), CE_UNSUPPORTED);
	assert_int_equal(smartcard_client_set_pair_key(&c, kp), 0);
	n = make_ecm(f, 1, T0_MS + 2000, 1, sec);
	assert_int_equal(c.ops->ecm(c.self, &host, 101, sec, n), 0);
	assert_memory_equal(h.even, CW_E, 8);
	assert_memory_equal(h.odd, CW_O, 8);
	/* another box (stb 78): what it loads is not the CW */
	assert_int_equal(card_pairing_key(p.k_card, 78, kp), 0);
	assert_int_equal(smartcard_client_set_pair_key(&c, kp), 0);
	n = make_ecm(f, 1, T0_MS + 3000, 1, sec);
	memset(&h, 0, sizeof(h));
	assert_int_equal(c.ops->ecm(c.self, &host, 101, sec, n), 0);
	assert_memory_not_equal(h.even, CW_E, 8);
	/* unpair: CWs in clear again */
	assert_int_equal(command(f, EMM_CMD_UNPAIR, 0, T0_MS), SW_OK);
	assert_int_equal(ecm(f, 1, T0_MS + 4000, 1, out), SW_OK);
	assert_int_equal(out[0], CARD_CW_CLEAR);
	assert_memory_equal(out + 4, CW_E, 8);
	cas_client_free(&c);
}

/* A v1 EEPROM image (before chip pairing: no pair_mode / K_pair) of a
 * software-paired card still loads, paired as before. */
static void test_pairing_eeprom_v1(void **state)
{
	struct fx *f = *state;
	struct card_perso p;
	struct card_info i;
	uint8_t out[CARD_MAX_RESP], kp[16], cw[16], *img, v1[CARD_EEPROM_BYTES];
	size_t len = 0, n;
	FILE *fp;

	assert_int_equal(command(f, EMM_CMD_PAIR, 77, T0_MS), SW_OK);
	img = tu_read(f->ee_path, &len);
	assert_memory_equal(img, "CSTLEE02", 8);
	/* v2 = v1 with pair_mode u8 | K_pair[16] after paired_stb_id (offset 66) */
	assert_int_equal(tu_be32(img + 66 + 4), 77);
	assert_int_equal(img[74], CARD_PAIR_SOFT);
	memcpy(v1, img, 74);
	memcpy(v1, "CSTLEE01", 8);
	memcpy(v1 + 74, img + 91, len - 4 - 91);
	n = 74 + len - 4 - 91;
	put_be32(v1 + n, crc32_mpeg(v1, n));
	n += 4;
	fp = fopen(f->ee_path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(v1, 1, n, fp), n);
	fclose(fp);
	free(img);
	assert_int_equal(card_applet_reset(f->a), 0);
	info(f, &i);
	assert_true(i.paired);
	assert_false(i.pair_chip);
	assert_int_equal(i.paired_stb_id, 77);
	assert_int_equal(ecm(f, 1, T0_MS, 1, out), SW_OK);
	assert_int_equal(out[0], CARD_CW_PAIRED);
	assert_int_equal(card_perso_issue(f->ks, SERIAL, 0, 0, 0, &p), 0);
	assert_int_equal(card_pairing_key(p.k_card, 77, kp), 0);
	assert_int_equal(card_paired_cw_open(kp, out + 4, cw), 0);
	assert_memory_equal(cw, CW_E, 8);
	/* the next write is a v2 image */
	assert_int_equal(grant(f, 0x3, T0_MS + 1000), SW_OK);
	img = tu_read(f->ee_path, &len);
	assert_memory_equal(img, "CSTLEE02", 8);
	free(img);
}

/* ---- pairing to a box's secure chip (src/stb/chip*): real chip processes ---- */

#define VENDOR 0x00004ADCu
#define NPKT 16

struct box {
	struct chip_otp otp;
	struct chip_link *ctl, *host;
	pid_t pid;
	struct cas_host h;
};

static uint64_t box_clock(void *ctx)
{
	(void)ctx;
	return T0_MS;
}

/* Box i: its own chip (its own OTP root), the CAS module's vendor set by
 * its loader, the host a CAS client gets on a ladder box (no load_cw). */
static void box_start(struct box *b, int i)
{
	memset(b, 0, sizeof(*b));
	b->otp.chip_id = 0x00000000B0C50000ull + (uint64_t)i;
	for (int k = 0; k < 16; k++)
		b->otp.root[k] = (uint8_t)(0x40 + 13 * k + 71 * i);
	assert_int_equal(chip_spawn(&b->otp, &b->ctl, &b->host, &b->pid), 0);
	assert_int_equal(chip_link_set_vendor(b->ctl, VENDOR), 0);
	chip_link_host(b->host, box_clock, NULL, &b->h);
	assert_null(b->h.load_cw);
}

static void box_stop(struct box *b)
{
	chip_link_free(b->ctl);
	chip_link_free(b->host);
	assert_int_equal(chip_wait(b->pid), 0);
	chip_otp_wipe(&b->otp);
}

/* The head-end side of a chip pairing: K_v(chip) from the vendor key file,
 * K_pair = chip_pairing_key(K_v, card serial), sent in a PAIR EMM. */
static size_t pair_emm(struct fx *f, const struct box *b, uint8_t *sec)
{
	uint8_t kv[16], kp[16];
	size_t len = 0;

	assert_int_equal(kms_vendor_key(b->otp.root, VENDOR, kv), 0);
	assert_int_equal(chip_pairing_key(kv, SERIAL, kp), 0);
	assert_int_equal(emm_build_pair(f->is, SERIAL, ++f->seq, b->otp.chip_id, kp, T0_MS, sec, EMM_MAX_SECTION, &len),
		0);
	secret_wipe(kv, sizeof(kv));
	secret_wipe(kp, sizeof(kp));
	return len;
}

/* Scramble clear packets with CW_E (even) and let box b's chip descramble
 * them: true if they come out clear. */
static bool box_descrambles(struct box *b, uint16_t sid)
{
	static uint8_t clear[NPKT * 188], buf[NPKT * 188];
	struct ts_cipher *c = ts_cipher_new(CW_ALG_CSA2, true);
	uint8_t *v[NPKT];
	size_t done = 0, missing = 0;

	assert_non_null(c);
	for (int i = 0; i < NPKT; i++) {
		uint8_t *p = clear + i * 188;

		p[0] = 0x47;
		p[1] = 0x41;
		p[2] = 0x00;
		p[3] = (uint8_t)(0x10 | (i & 15));
		for (int j = 4; j < 188; j++)
			p[j] = (uint8_t)(i * 7 + j);
		v[i] = buf + i * 188;
	}
	memcpy(buf, clear, sizeof(buf));
	assert_int_equal(ts_cipher_set_key(c, CW_EVEN, CW_E, 8), 0);
	assert_int_equal(ts_cipher_scramble(c, v, NPKT, CW_EVEN), 0);
	ts_cipher_free(c);
	assert_memory_not_equal(buf, clear, sizeof(buf));
	assert_int_equal(chip_link_descramble(b->host, sid, DESCR_TAG_SERVICE, buf, NPKT, &done, &missing), 0);
	return done == NPKT && memcmp(buf, clear, sizeof(buf)) == 0;
}

/* The card paired (by EMM) with box 1's chip, then put into box 1, box 2,
 * and a chipless box; power cycle; unpair. The card answers through the
 * smartcard client; CWs reach the chips as ladder chain 0x03. */
static void check_chip_pairing(struct fx *f, struct cas_client *c, bool in_process)
{
	struct box b1, b2;
	struct host_cap h;
	struct cas_host soft = { .ctx = &h, .load_cw = cap_load, .now_ms = pair_now };
	struct card_perso p;
	struct card_info i;
	uint8_t emm[EMM_MAX_SECTION], sec[ECM_MAX_SECTION], out[CARD_MAX_RESP], kv[16], kp[16], cw[16];
	size_t elen, n;

	box_start(&b1, 1);
	box_start(&b2, 2);
	/* before pairing the card answers clear CWs: a ladder box cannot take them */
	n = make_ecm(f, 1, T0_MS + 1000, 1, sec);
	assert_int_equal(c->ops->ecm(c->self, &b1.h, 101, sec, n), CE_UNSUPPORTED);

	elen = pair_emm(f, &b1, emm);
	assert_int_equal(c->ops->emm(c->self, emm, elen), 0);
	assert_int_equal(smartcard_client_info(c, &i), 0);
	assert_true(i.paired);
	assert_true(i.pair_chip);
	assert_int_equal(i.paired_stb_id, b1.otp.chip_id);

	/* box 1: its chip derives K_pair from its own OTP and descrambles */
	n = make_ecm(f, 1, T0_MS + 2000, 1, sec);
	assert_int_equal(c->ops->ecm(c->self, &b1.h, 101, sec, n), 0);
	assert_true(box_descrambles(&b1, 101));
	/* box 2: same card, same ECM: its chip refuses the CW (CSA2 padding
	 * does not open under its K_pair) and its packets stay scrambled */
	n = make_ecm(f, 1, T0_MS + 3000, 1, sec);
	assert_int_equal(c->ops->ecm(c->self, &b2.h, 101, sec, n), CE_MAC);
	assert_false(box_descrambles(&b2, 101));
	/* a chipless box with no pair key gets nothing; given a K_pair derived
	 * from another chip's K_v it loads garbage */
	memset(&h, 0, sizeof(h));
	n = make_ecm(f, 1, T0_MS + 4000, 1, sec);
	assert_int_equal(c->ops->ecm(c->self, &soft, 101, sec, n), CE_UNSUPPORTED);
	assert_int_equal(kms_vendor_key(b2.otp.root, VENDOR, kv), 0);
	assert_int_equal(chip_pairing_key(kv, SERIAL, kp), 0);
	assert_int_equal(smartcard_client_set_pair_key(c, kp), 0);
	n = make_ecm(f, 1, T0_MS + 5000, 1, sec);
	assert_int_equal(c->ops->ecm(c->self, &soft, 101, sec, n), 0);
	assert_memory_not_equal(h.even, CW_E, 8);
	secret_wipe(kv, sizeof(kv));
	secret_wipe(kp, sizeof(kp));

	if (in_process) {
		/* what leaves the card is not the CW; K_pair(chip 1) opens it */
		assert_int_equal(ecm(f, 1, T0_MS + 6000, 1, out), SW_OK);
		assert_int_equal(out[0], CARD_CW_PAIRED);
		assert_memory_not_equal(out + 4, CW_E, 8);
		assert_int_equal(kms_vendor_key(b1.otp.root, VENDOR, kv), 0);
		assert_int_equal(chip_pairing_key(kv, SERIAL, kp), 0);
		assert_int_equal(card_paired_cw_open(kp, out + 4, cw), 0);
		assert_memory_equal(cw, CW_E, 8);
		secret_wipe(kv, sizeof(kv));
		secret_wipe(kp, sizeof(kp));
		/* the card's K_pair is not K_card-derived any more */
		assert_int_equal(card_perso_issue(f->ks, SERIAL, 0, 0, 0, &p), 0);
		assert_int_equal(card_pairing_key(p.k_card, b1.otp.chip_id, kp), 0);
		assert_int_equal(card_paired_cw_open(kp, out + 4, cw), 0);
		assert_memory_not_equal(cw, CW_E, 8);
		/* power cycle: the pairing is in EEPROM */
		assert_int_equal(card_applet_reset(f->a), 0);
		info(f, &i);
		assert_true(i.pair_chip);
		n = make_ecm(f, 1, T0_MS + 7000, 1, sec);
		assert_int_equal(c->ops->ecm(c->self, &b1.h, 101, sec, n), 0);
		assert_true(box_descrambles(&b1, 101));
	}

	/* unpair: clear CWs again (a chipless box takes them, a ladder box cannot) */
	assert_int_equal(emm_build_command(f->is, SERIAL, ++f->seq, EMM_CMD_UNPAIR, 0, T0_MS, emm, sizeof(emm), &elen), 0);
	assert_int_equal(c->ops->emm(c->self, emm, elen), 0);
	assert_int_equal(smartcard_client_info(c, &i), 0);
	assert_false(i.paired);
	assert_false(i.pair_chip);
	n = make_ecm(f, 1, T0_MS + 8000, 1, sec);
	assert_int_equal(c->ops->ecm(c->self, &b1.h, 101, sec, n), CE_UNSUPPORTED);
	memset(&h, 0, sizeof(h));
	n = make_ecm(f, 1, T0_MS + 9000, 1, sec);
	assert_int_equal(c->ops->ecm(c->self, &soft, 101, sec, n), 0);
	assert_memory_equal(h.even, CW_E, 8);
	box_stop(&b1);
	box_stop(&b2);
}

static void test_pairing_chip(void **state)
{
	struct fx *f = *state;
	struct cas_client c;
	struct card_transport t;

	card_local_transport(f->a, &t);
	assert_int_equal(smartcard_client_new(&t, &c), 0);
	check_chip_pairing(f, &c, true);
	cas_client_free(&c);
}

/* An authentic unique EMM around any plaintext (the card's K_card). */
static size_t seal_plaintext(struct fx *f, uint32_t seq, const uint8_t *pt, size_t pt_len, uint8_t *sec)
{
	uint8_t kc[16], nonce[12] = { 9, 8, 7 }, tag[16];
	struct wbuf w;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl = 0;
	size_t total = EMM_UNIQUE_OVERHEAD + pt_len;

	assert_non_null(c);
	assert_int_equal(keystore_card_key(f->ks, SERIAL, kc), 0);
	wbuf_init(&w, sec, EMM_MAX_SECTION);
	wbuf_u8(&w, EMM_TABLE_UNIQUE);
	wbuf_u16(&w, (uint16_t)(0x7000 | (total - 3)));
	wbuf_u8(&w, EMM_FORMAT_V1);
	wbuf_u16(&w, CASID);
	wbuf_u64(&w, SERIAL);
	wbuf_u32(&w, seq);
	wbuf_u64(&w, T0_MS);
	wbuf_bytes(&w, nonce, 12);
	wbuf_u16(&w, (uint16_t)pt_len);
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, kc, nonce), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &outl, sec + 3, EMM_AAD_BYTES), 1);
	assert_int_equal(EVP_EncryptUpdate(c, sec + w.len, &outl, pt, (int)pt_len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, sec + w.len + pt_len, &outl), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
	EVP_CIPHER_CTX_free(c);
	memcpy(sec + w.len + pt_len, tag, 16);
	secret_wipe(kc, sizeof(kc));
	return total;
}

/* Bad PAIR records reach the card authenticated (emm_build encodes what it
 * is given) and are refused with nothing changed. */
static void test_pairing_bad(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *what;
		uint8_t pt[40];
		size_t len;
		uint16_t sw;
	} cases[] = {
		{ "pair key short", { EMM_T_PAIR, 23, 0, 0, 0, 0, 0, 0, 0, 9 }, 25, SW_BAD_DATA },
		{ "pair key long", { EMM_T_PAIR, 25, 0, 0, 0, 0, 0, 0, 0, 9 }, 27, SW_BAD_DATA },
		{ "pair key stb 0", { EMM_T_PAIR, 24 }, 26, SW_BAD_DATA },
		{ "pair key + unpair", { EMM_T_PAIR, 24, 0, 0, 0, 0, 0, 0, 0, 9, [26] = EMM_T_UNPAIR, 0 }, 28, SW_BAD_DATA },
		{ "pair twice", { EMM_T_PAIR, 8, 0, 0, 0, 0, 0, 0, 0, 9, EMM_T_PAIR, 24, 0, 0, 0, 0, 0, 0, 0, 9 }, 36,
			SW_BAD_DATA },
	};
	struct card_info before, after;
	uint8_t emm[EMM_MAX_SECTION];
	uint8_t k[16] = { 1 };
	size_t len = 0;

	info(f, &before);
	assert_false(before.paired);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t sw;

		len = seal_plaintext(f, f->seq + 1 + (uint32_t)i, cases[i].pt, cases[i].len, emm);
		if ((sw = xfer(f, CARD_INS_EMM, emm, len, NULL, NULL)) != cases[i].sw)
			fail_msg("%s: SW %04X want %04X", cases[i].what, sw, cases[i].sw);
	}
	info(f, &after);
	assert_int_equal(after.last_seq, before.last_seq); /* all refused, nothing changed */
	assert_false(after.paired);
	/* the same sealing with a good 24-byte record is accepted */
	{
		uint8_t pt[26] = { EMM_T_PAIR, 24, 0, 0, 0, 0, 0, 0, 0, 9, 0xAA };

		len = seal_plaintext(f, f->seq + 10, pt, sizeof(pt), emm);
		assert_int_equal(xfer(f, CARD_INS_EMM, emm, len, NULL, NULL), SW_OK);
		info(f, &after);
		assert_true(after.pair_chip);
		assert_int_equal(after.paired_stb_id, 9);
		f->seq += 10;
	}
	/* emm_build_pair refuses stb 0 / no key */
	assert_int_equal(emm_build_pair(f->is, SERIAL, 99, 0, k, T0_MS, emm, sizeof(emm), &len), CE_ARG);
	assert_int_equal(emm_build_pair(f->is, SERIAL, 99, 5, NULL, T0_MS, emm, sizeof(emm), &len), CE_ARG);
}

/* ---- the smartcard client in-process ---- */

static void test_client_local(void **state)
{
	struct fx *f = *state;
	struct host_cap h;
	struct cas_host host = { .ctx = &h, .load_cw = cap_load, .now_ms = pair_now };
	struct cas_client c;
	struct card_transport t;
	struct card_info i;
	uint8_t sec[ECM_MAX_SECTION], emm[EMM_MAX_SECTION];
	size_t n, elen = 0;

	memset(&h, 0, sizeof(h));
	card_local_transport(f->a, &t);
	assert_int_equal(smartcard_client_new(&t, &c), 0);
	assert_string_equal(c.ops->name, "smartcard");
	assert_int_equal(c.ops->ca_system_id(c.self), CASID);
	n = make_ecm(f, 1, T0_MS, 1, sec);
	assert_int_equal(c.ops->ecm(c.self, &host, 101, sec, n), 0);
	assert_int_equal(h.nloads, 2);
	assert_memory_equal(h.even, CW_E, 8);
	/* a repetition does not reach the card */
	assert_int_equal(c.ops->ecm(c.self, &host, 101, sec, n), 0);
	assert_int_equal(h.nloads, 2);
	n = make_ecm(f, 1, T0_MS, 4, sec);
	assert_int_equal(c.ops->ecm(c.self, &host, 102, sec, n), CE_NOT_ENTITLED);
	/* EMMs through the client, info refreshed */
	assert_int_equal(emm_build_command(f->is, SERIAL, ++f->seq, EMM_CMD_BLOCK, 0, T0_MS, emm, sizeof(emm), &elen), 0);
	assert_int_equal(c.ops->emm(c.self, emm, elen), 0);
	assert_int_equal(c.ops->emm(c.self, emm, elen), CE_REPLAY);
	assert_int_equal(smartcard_client_info(&c, &i), 0);
	assert_true(i.blocked);
	n = make_ecm(f, 1, T0_MS + 1000, 1, sec);
	assert_int_equal(c.ops->ecm(c.self, &host, 101, sec, n), CE_BLOCKED);
	cas_client_free(&c);
}

/* ---- EEPROM: atomic writes, power loss, corruption ---- */

static void test_power_loss_mid_emm(void **state)
{
	struct fx *f = *state;
	static const enum card_ee_step steps[] = { CARD_EE_STEP_HALF_WRITTEN, CARD_EE_STEP_BEFORE_FSYNC,
		CARD_EE_STEP_BEFORE_RENAME };
	uint8_t emm[EMM_MAX_SECTION], out[CARD_MAX_RESP];
	struct emm_grant g = { .packages = 0x4, .start_s = T0_MS / 1000 - 10, .finish_s = T0_MS / 1000 + 3600 };
	struct card_info i;
	size_t elen = 0;

	assert_int_equal(emm_build_unique(f->is, SERIAL, f->seq + 1, &g, T0_MS, emm, sizeof(emm), &elen), 0);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		pid_t pid;
		int st = 0;

		/* 1: the power is cut (SIGKILL) at this step of the EEPROM write */
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			f->eef.fail_at = steps[s];
			f->eef.fail_kill = 1;
			(void)send_emm(f, emm, elen);
			_exit(0); /* not reached */
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		/* power back: the old state, whole */
		fx_open_applet(f);
		info(f, &i);
		assert_int_equal(i.last_seq, f->seq);
		assert_int_equal(i.packages, 0x3);
		assert_int_equal(ecm(f, 1, T0_MS, 1, out), SW_OK);

		/* 2: the write fails and the card says so; nothing changed */
		f->eef.fail_at = steps[s];
		f->eef.fail_kill = 0;
		assert_int_equal(send_emm(f, emm, elen), SW_MEMORY);
		info(f, &i);
		assert_int_equal(i.packages, 0x3);
		f->eef.fail_at = CARD_EE_STEP_NONE;
	}
	/* and then the same EMM applies */
	assert_int_equal(send_emm(f, emm, elen), SW_OK);
	assert_int_equal(card_applet_reset(f->a), 0);
	info(f, &i);
	assert_int_equal(i.packages, 0x4);
	assert_int_equal(i.last_seq, f->seq + 1);
}

static void test_eeprom_corrupt(void **state)
{
	struct fx *f = *state;
	struct card_applet *b = calloc(1, sizeof(*b));
	struct card_state st;
	uint8_t *img;
	size_t len;

	assert_non_null(b);
	img = tu_read(f->ee_path, &len);
	assert_int_equal(card_state_decode(img, len, &st), 0);
	assert_int_equal(st.serial, SERIAL);
	/* every single-byte change is caught */
	for (size_t k = 0; k < len; k += 7) {
		img[k] ^= 0x01;
		assert_int_not_equal(card_state_decode(img, len, &st), 0);
		img[k] ^= 0x01;
	}
	assert_int_equal(card_state_decode(img, len - 1, &st), CE_CRC);
	assert_int_equal(card_state_decode(img, 3, &st), CE_TRUNCATED);
	img[len / 2] ^= 0xFF;
	assert_int_equal(file_write_atomic(f->ee_path, img, len, 0600), 0);
	assert_int_equal(card_applet_init(b, &f->ee), CE_CRC);
	free(img);
	free(b);
}

/* ---- personalization file ---- */

static void test_perso_file(void **state)
{
	struct fx *f = *state;
	struct card_perso p, back;
	uint8_t file[CARD_PERSO_FILE_BYTES];

	assert_int_equal(card_perso_issue(f->ks, SERIAL, 4, 300, 3600, &p), 0);
	assert_int_equal(card_perso_seal(&p, "transport secret", CARD_PERSO_MIN_LOG2N, file), 0);
	assert_int_equal(card_perso_open(file, sizeof(file), "transport secret", &back), 0);
	assert_memory_equal(&p, &back, sizeof(p));
	assert_int_equal(card_perso_open(file, sizeof(file), "wrong", &back), CE_MAC);
	assert_int_equal(card_perso_seal(&p, "x", 40, file), CE_RANGE);
	assert_int_equal(card_perso_seal(&p, "transport secret", CARD_PERSO_MIN_LOG2N, file), 0);
	/* table of bad files */
	{
		static const struct { size_t off; uint8_t x; int want; } bad[] = {
			{ 0, 0x01, CE_FORMAT }, { 8, 0x7F, CE_RANGE }, { 10, 0x01, CE_MAC }, { 30, 0x01, CE_MAC },
			{ 37, 0x01, CE_RANGE }, { 45, 0x01, CE_MAC }, { 90, 0x01, CE_MAC },
		};
		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			file[bad[k].off] ^= bad[k].x;
			assert_int_equal(card_perso_open(file, sizeof(file), "transport secret", &back), bad[k].want);
			file[bad[k].off] ^= bad[k].x;
		}
		assert_int_equal(card_perso_open(file, sizeof(file) - 1, "transport secret", &back), CE_TRUNCATED);
	}
}

/* ---- hostile APDUs never crash and always answer a status word ---- */

static void test_apdu_garbage(void **state)
{
	struct fx *f = *state;
	uint8_t apdu[600], resp[CARD_MAX_RESP + 2];
	uint32_t x = 12345;

	for (int k = 0; k < 3000; k++) {
		size_t n = (size_t)(k % 300);

		for (size_t j = 0; j < n; j++) {
			x = x * 1103515245u + 12345u;
			apdu[j] = (uint8_t)(x >> 16);
		}
		if (n > 1) {
			apdu[0] = (k & 1) ? 0x80 : 0x90;
			apdu[1] = (uint8_t)(0x10 * (1 + k % 5));
		}
		assert_true(card_applet_apdu(f->a, apdu, n, resp, sizeof(resp)) >= 2);
	}
	assert_int_equal(card_applet_apdu(f->a, apdu, 4, resp, 10), 0);
}

/* ---- the fuzz corpus (fuzz/corpus/apdu) replayed as fuzz_apdu.c does ---- */

struct mem_ee {
	uint8_t img[CARD_EEPROM_BYTES];
	size_t len;
};

static int mem_load(void *ctx, uint8_t *buf, size_t cap, size_t *len)
{
	struct mem_ee *m = ctx;

	if (m->len == 0)
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

	if (len > sizeof(m->img))
		return CE_IO;
	memcpy(m->img, buf, len);
	m->len = len;
	return 0;
}

/* One corpus input: a personalized card (the harness's), then the
 * length-prefixed APDUs. Returns the last status word; *last_len gets the
 * last response's length. Every answer is a whole response, and the
 * EEPROM image left behind always decodes. */
static uint16_t replay_apdus(struct card_applet *a, const uint8_t *data, size_t size, size_t *last_len)
{
	static struct mem_ee m;
	static struct card_state st;
	struct card_eeprom ee = { .ctx = &m, .load = mem_load, .store = mem_store };
	struct card_perso p = { .ca_system_id = 0x4ADC, .serial = 2100000042, .max_channels = 2, .window_s = 60,
		.block_s = 86400 };
	uint8_t apdu[5 + CARD_PERSO_BYTES] = { CARD_CLA, CARD_INS_PERSONALIZE, 0, 0, CARD_PERSO_BYTES };
	uint8_t resp[CARD_MAX_RESP + 2];
	size_t off = 0, n = 0;
	uint16_t sw = 0;

	memset(&m, 0, sizeof(m));
	memset(p.k_card, 0x5A, sizeof(p.k_card));
	assert_int_equal(card_applet_init(a, &ee), 0);
	card_perso_encode(&p, apdu + 5);
	n = card_applet_apdu(a, apdu, sizeof(apdu), resp, sizeof(resp));
	assert_int_equal(tu_be16(resp + n - 2), SW_OK);
	while (size - off >= 2) {
		size_t k = ((size_t)data[off] << 8) | data[off + 1];

		off += 2;
		if (k > size - off)
			k = size - off;
		n = card_applet_apdu(a, data + off, k, resp, sizeof(resp));
		assert_true(n >= 2 && n <= CARD_MAX_RESP + 2);
		sw = tu_be16(resp + n - 2);
		off += k;
	}
	*last_len = n;
	assert_int_equal(card_state_decode(m.img, m.len, &st), 0);
	assert_int_equal(card_applet_reset(a), 0); /* and loads */
	card_applet_wipe(a);
	return sw;
}

static void test_fuzz_corpus_apdu(void **state)
{
	/* seeds whose answer we know; any other file (a fuzzer finding) must
	 * only replay without a crash and leave a loadable EEPROM */
	static const struct {
		const char *name;
		uint16_t sw;
		size_t len;
	} known[] = {
		{ "info", SW_OK, CARD_INFO_BYTES + 2 },
		{ "chain", SW_BAD_DATA, 2 },
		{ "erase", SW_BAD_MAC, 2 },
		{ "ext-lc", SW_BAD_DATA, 2 },
		{ "chain-interrupted", SW_CHAIN, 2 },
		{ "bad-cla", SW_UNKNOWN_CLA, 2 },
		{ "personalize-again", SW_STATE, 2 },
	};
	struct card_applet *a = calloc(1, sizeof(*a));
	char dir[4096], path[4600];
	struct dirent *e;
	size_t nfiles = 0, nknown = 0;
	DIR *d;

	(void)state;
	assert_non_null(a);
	snprintf(dir, sizeof(dir), "%s", tu_testdata("../../fuzz/corpus/apdu"));
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		uint8_t *buf;
		size_t len = 0, last = 0;
		uint16_t sw;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		buf = tu_read(path, &len);
		sw = replay_apdus(a, buf, len, &last);
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
			if (strcmp(known[k].name, e->d_name) != 0)
				continue;
			if (sw != known[k].sw || last != known[k].len)
				fail_msg("corpus %s: SW %04X len %zu, want %04X len %zu", e->d_name, sw, last, known[k].sw,
					known[k].len);
			nknown++;
		}
		free(buf);
		nfiles++;
	}
	closedir(d);
	assert_int_equal(nknown, sizeof(known) / sizeof(known[0]));
	assert_true(nfiles >= nknown);
	free(a);
}

/* ---- CLI: issue -> program -> re-program refused -> erase -> program ---- */

/* Run a shell command; its stdout+stderr in out (NUL-terminated). Exit code. */
static int run_out(const char *cmd, char *out, size_t cap)
{
	char full[4096];
	FILE *p;
	size_t n = 0;
	int st;

	snprintf(full, sizeof(full), "%s 2>&1", cmd);
	p = popen(full, "r");
	assert_non_null(p);
	while (n + 1 < cap) {
		size_t k = fread(out + n, 1, cap - 1 - n, p);

		if (k == 0)
			break;
		n += k;
	}
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_issue_program_erase(void **state)
{
	struct fx *f = *state;
	const char *bin = getenv("CASTELLAN_BIN");
	char ks[160], perso_f[160], tf[160], ee[160], env[400], cmd[2048], out[4096], tok_hex[40];
	uint8_t kc[CARD_KEY_BYTES], tok[CARD_TOKEN_BYTES];
	struct stat sb;
	FILE *fp;

	if (!bin)
		skip();
	snprintf(ks, sizeof(ks), "%s/ks.bin", f->dir);
	snprintf(perso_f, sizeof(perso_f), "%s/card.perso", f->dir);
	snprintf(tf, sizeof(tf), "%s/transport", f->dir);
	snprintf(ee, sizeof(ee), "%s/cli.eeprom", f->dir);
	assert_int_equal(keystore_save(f->ks, ks, "pw"), 0);
	fp = fopen(tf, "w");
	assert_non_null(fp);
	fputs("transport secret\n", fp);
	fclose(fp);
	assert_int_equal(chmod(tf, 0600), 0);
	snprintf(env, sizeof(env), "CASTELLAN_PASSPHRASE=pw %s card", bin);

	snprintf(cmd, sizeof(cmd), "%s --help", env);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "castellan card program"));
	/* issue: card 2100000042, N = 3 in 90 s, block 600 s */
	snprintf(cmd, sizeof(cmd), "%s issue --keys %s --serial %llu --out %s --transport-file %s --max-channels 3 "
		"--window 90 --block 600", env, ks, SERIAL, perso_f, tf);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_int_equal(stat(perso_f, &sb), 0);
	assert_int_equal(sb.st_size, CARD_PERSO_FILE_BYTES);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* a wrong transport passphrase cannot program it */
	snprintf(cmd, sizeof(cmd), "CASTELLAN_TRANSPORT_PASSPHRASE=wrong %s program %s --eeprom %s", env, perso_f, ee);
	assert_int_not_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_int_equal(access(ee, F_OK), -1); /* card untouched: still blank, no image */
	/* program the blank card */
	snprintf(cmd, sizeof(cmd), "%s program %s --eeprom %s --transport-file %s", env, perso_f, ee, tf);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "programmed and protected"));
	snprintf(cmd, sizeof(cmd), "%s info --eeprom %s", env, ee);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "serial 2100000042"));
	assert_non_null(strstr(out, "protected"));
	assert_non_null(strstr(out, "at most 3 channels in 90 s (block 600 s)"));
	/* re-programming is refused (6985) and changes nothing */
	snprintf(cmd, sizeof(cmd), "%s program %s --eeprom %s --transport-file %s", env, perso_f, ee, tf);
	assert_int_not_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "6985"));
	assert_non_null(strstr(out, "erase it first"));
	/* a wrong erase token is refused (6982) */
	snprintf(cmd, sizeof(cmd), "%s erase --token 00112233445566778899aabbccddeeff --eeprom %s", env, ee);
	assert_int_not_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "6982"));
	snprintf(cmd, sizeof(cmd), "%s info --eeprom %s", env, ee);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "serial 2100000042"));
	/* the head-end's token (computed from the keystore) erases it */
	snprintf(cmd, sizeof(cmd), "%s erase --keys %s --eeprom %s", env, ks, ee);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "erased: blank"));
	snprintf(cmd, sizeof(cmd), "%s info --eeprom %s", env, ee);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "blank card"));
	/* programmed again, and erased with an explicit --token */
	snprintf(cmd, sizeof(cmd), "%s program %s --eeprom %s --transport-file %s", env, perso_f, ee, tf);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	assert_int_equal(keystore_card_key(f->ks, SERIAL, kc), 0);
	assert_int_equal(card_erase_token(kc, SERIAL, tok), 0);
	for (size_t k = 0; k < sizeof(tok); k++)
		snprintf(tok_hex + 2 * k, 3, "%02x", tok[k]);
	snprintf(cmd, sizeof(cmd), "%s erase --token %s --eeprom %s", env, tok_hex, ee);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 0);
	/* bad usage */
	snprintf(cmd, sizeof(cmd), "%s erase --eeprom %s", env, ee);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 2);
	snprintf(cmd, sizeof(cmd), "%s frobnicate", env);
	assert_int_equal(run_out(cmd, out, sizeof(out)), 2);
	secret_wipe(kc, sizeof(kc));
}

/* ---- the real PC/SC path ---- */

static bool have_pcsc(void)
{
	return pcscd_available();
}

static void test_pcsc_path(void **state)
{
	struct fx *f = *state;
	char port_s[16], eeprom[160];
	const char *bin = getenv("CASTELLAN_BIN");
	struct card_perso p;
	uint8_t rec[CARD_PERSO_BYTES], sec[ECM_MAX_SECTION];
	struct host_cap h;
	struct cas_host host = { .ctx = &h, .load_cw = cap_load, .now_ms = pair_now };
	struct cas_client c;
	struct pcscd_private pd;
	struct card_transport pt;
	pid_t serve;
	unsigned port;
	const char *reader;
	size_t n;
	int st, r;

	if (!have_pcsc() || !bin || geteuid() != 0) {
		printf("SKIP: pcscd / vsmartcard-vpcd not installed or not root (tools/bootstrap.sh installs them)\n");
		skip();
	}
	/* our own pcscd on its own socket and vpcd port: never the machine's
	 * or another test's (which made this test talk to a reader nobody
	 * served when two ran at once) */
	assert_int_equal(pcscd_private_start(f->dir, "Castellan test", NULL, 10000, &pd), 0);
	port = pd.port;
	reader = pd.reader;
	/* a programmed card in its EEPROM file, served through vpcd */
	assert_int_equal(card_perso_issue(f->ks, SERIAL, 0, 0, 0, &p), 0);
	card_perso_encode(&p, rec);
	assert_int_equal(xfer(f, CARD_INS_PERSONALIZE, rec, sizeof(rec), NULL, NULL), SW_OK);
	assert_int_equal(grant(f, 0x1, T0_MS), SW_OK);
	snprintf(eeprom, sizeof(eeprom), "%s", f->ee_path);
	snprintf(port_s, sizeof(port_s), "%u", port);
	serve = fork();
	assert_true(serve >= 0);
	if (serve == 0) {
		execl(bin, "castellan", "card", "serve", "--eeprom", eeprom, "--port", port_s, (char *)NULL);
		_exit(127);
	}
	/* a readiness wait (pcscd's reader, `card serve` connected), generous
	 * for a loaded machine; not a timing assertion */
	r = card_pcsc_open(reader, 30000, &pt);
	if (r == 0)
		r = smartcard_client_new(&pt, &c);
	if (r == 0) {
		memset(&h, 0, sizeof(h));
		n = make_ecm(f, 1, T0_MS, 1, sec);
		r = c.ops->ecm(c.self, &host, 101, sec, n);
		assert_int_equal(r, 0);
		assert_memory_equal(h.even, CW_E, 8);
		assert_memory_equal(h.odd, CW_O, 8);
		n = make_ecm(f, 1, T0_MS, 4, sec);
		assert_int_equal(c.ops->ecm(c.self, &host, 102, sec, n), CE_NOT_ENTITLED);
		/* pairing to a box's chip, EMMs and ECMs through pcscd */
		check_chip_pairing(f, &c, false);
		cas_client_free(&c);
	}
	kill(serve, SIGTERM);
	waitpid(serve, &st, 0);
	pcscd_private_stop(&pd);
	assert_int_equal(r, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blank_personalize_protect_erase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecm_cw, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_ecm_forged_other_package, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_ecm_chained_many_packages, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_status_words, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_counter_limit_and_recovery, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_counter_limits_by_emm, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_counter_limits_bad, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_pairing, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_pairing_eeprom_v1, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_pairing_chip, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_pairing_bad, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_client_local, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_power_loss_mid_emm, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_eeprom_corrupt, setup_live, teardown),
		cmocka_unit_test_setup_teardown(test_perso_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apdu_garbage, setup_live, teardown),
		cmocka_unit_test(test_fuzz_corpus_apdu),
		cmocka_unit_test_setup_teardown(test_cli_issue_program_erase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pcsc_path, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
