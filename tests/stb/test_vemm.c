/*
 * test_vemm.c - vendor EMMs (cas/emm_vendor.h, CHIP_OP_OPEN_EMM): a card's
 * unique EMM sealed under K_emm = KBKDF(K_v(chip), "castellan emm key",
 * serial), built by the head-end from vendor B's key file, opened only by
 * chip X running vendor B. Refusals: chip X running vendor A, chip Y
 * running B, every key of vendor A's key file, K_card alone, a tampered
 * byte, the control channel, no vendor. End to end: the opened EMM's
 * protected package keys feed the ladder client, which descrambles; and
 * the ladder client taking the vendor EMM itself through the host's
 * open_emm: grant, keys, BLOCK, and its fingerprint and message delivered
 * to on_fingerprint / on_message (issue 13), refused ones delivering nothing;
 * and the box in chip mode putting them in its report.
 * Real chip processes (chip_spawn), real key files on disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
#include <openssl/rand.h>
#include <jansson.h>
#include "lib/bytes.h"
#include "client/chip_client.h"
#include "testutil.h"
#include "cas/ecm.h"
#include "cas/emm.h"
#include "cas/emm_vendor.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cas/osd.h"
#include "cipher/cipher.h"
#include "crypto/kdf.h"
#include "lib/cursor.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/descrambler.h"
#include "stb/stb.h"
#include "ts/psi.h"
#include "ts/ts.h"

#define CASID 0x4AE1
#define EPOCH_S 3600u
#define T0_MS 1700000000000ull
#define VENDOR_A 0x00004AE0u
#define VENDOR_B 0x00004AE1u
#define CHIP_X 0x0000CA57E11A0001ull
#define CHIP_Y 0x0000CA57E11A0002ull
#define SERIAL 2100000001ull
#define SERIAL_Y 2100000002ull
#define NCHIPS 8 /* chips in each key file: X, Y and six others */
#define NPKT 8

struct fx {
	char dir[64], a_csv[128], b_csv[128];
	struct chip_otp otp[NCHIPS]; /* [0] = X, [1] = Y */
	struct keystore *ks;          /* vendor B's head-end keystore */
	struct emm_issuer *is;
};

static uint64_t fixed_clock(void *ctx)
{
	return *(const uint64_t *)ctx;
}

static void make_otp(struct chip_otp *o, uint64_t id)
{
	memset(o, 0, sizeof(*o));
	o->chip_id = id;
	assert_int_equal(RAND_bytes(o->root, sizeof(o->root)), 1);
	memset(o->trust_root_hash, 0x5A, sizeof(o->trust_root_hash));
}

/* A vendor's opened key file: "chip_id,hex K_v" per line, as `castellan kms
 * vendor open --out` writes it (K_v from kms_vendor_key, the KMS's KDF). */
static void write_key_file(const struct fx *f, uint32_t vendor, const char *path)
{
	FILE *o = fopen(path, "w");

	assert_non_null(o);
	fprintf(o, "# chip_id,vendor_key\n");
	for (int i = 0; i < NCHIPS; i++) {
		uint8_t kv[16];

		assert_int_equal(kms_vendor_key(f->otp[i].root, vendor, kv), 0);
		fprintf(o, "0x%016llx,", (unsigned long long)f->otp[i].chip_id);
		for (int j = 0; j < 16; j++)
			fprintf(o, "%02x", kv[j]);
		fprintf(o, "\n");
		secret_wipe(kv, sizeof(kv));
	}
	assert_int_equal(fclose(o), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vemm-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->a_csv, sizeof(f->a_csv), "%s/A.csv", f->dir);
	snprintf(f->b_csv, sizeof(f->b_csv), "%s/B.csv", f->dir);
	for (int i = 0; i < NCHIPS; i++)
		make_otp(&f->otp[i], CHIP_X + (uint64_t)i);
	write_key_file(f, VENDOR_A, f->a_csv);
	write_key_file(f, VENDOR_B, f->b_csv);
	assert_int_equal(keystore_generate(CASID, EPOCH_S, &f->ks), 0);
	assert_int_equal(emm_issuer_new(f->ks, &f->is), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	emm_issuer_free(f->is);
	keystore_free(f->ks);
	(void)unlink(f->a_csv);
	(void)unlink(f->b_csv);
	(void)rmdir(f->dir);
	for (int i = 0; i < NCHIPS; i++)
		chip_otp_wipe(&f->otp[i]);
	free(f);
	return 0;
}

static const struct emm_grant grant = {
	.packages = 0x00000006u,
	.start_s = T0_MS / 1000u - 3600,
	.finish_s = T0_MS / 1000u + 3600,
};

/* Head-end: card `serial`'s grant EMM for `chip`, with the key file `csv`. */
static void build_vemm(struct fx *f, const char *csv, uint64_t chip, uint64_t serial, uint32_t seq, uint8_t *out,
	size_t *out_len)
{
	uint8_t plain[EMM_MAX_SECTION], kv[16];
	size_t n = 0;

	assert_int_equal(emm_build_unique(f->is, serial, seq, &grant, T0_MS, plain, sizeof(plain), &n), 0);
	assert_int_equal(emm_vendor_key_file(csv, chip, kv), 0);
	assert_int_equal(emm_vendor_seal(f->ks, kv, plain, n, out, EMM_MAX_SECTION, out_len), 0);
	assert_int_equal(*out_len, n);
	assert_memory_equal(out, plain, 3 + EMM_AAD_BYTES); /* same header */
	assert_memory_not_equal(out + 40, plain + 40, n - 40);
	secret_wipe(kv, sizeof(kv));
}

static void spawn(const struct chip_otp *otp, uint32_t vendor, struct chip_link **ctl, struct chip_link **host,
	pid_t *pid)
{
	assert_int_equal(chip_spawn(otp, ctl, host, pid), 0);
	if (vendor)
		assert_int_equal(chip_link_set_vendor(*ctl, vendor), 0);
}

static void unspawn(struct chip_link *ctl, struct chip_link *host, pid_t pid)
{
	chip_link_free(ctl);
	chip_link_free(host);
	assert_int_equal(chip_wait(pid), 0);
}

/* B's EMM for X opens on X running B; its keys come back as E_{K_v}(K_pkg). */
static void test_open_on_right_chip(void **state)
{
	struct fx *f = *state;
	static struct emm_content c;
	static struct emm_card_state st;
	uint8_t sec[EMM_MAX_SECTION], kv[16];
	struct chip_link *ctl, *host;
	struct emm_view v;
	size_t n = 0;
	pid_t pid;

	build_vemm(f, f->b_csv, CHIP_X, SERIAL, 5, sec, &n);
	spawn(&f->otp[0], VENDOR_B, &ctl, &host, &pid);
	assert_int_equal(chip_link_open_emm(host, sec, n, SERIAL, &v, &c), 0);
	assert_int_equal(v.serial, SERIAL);
	assert_int_equal(v.seq, 5);
	assert_int_equal(v.ca_system_id, CASID);
	assert_int_equal(v.timestamp_ms, T0_MS);
	assert_true(c.has_grant);
	assert_int_equal(c.grant.packages, grant.packages);
	assert_int_equal(c.grant.start_s, grant.start_s);
	assert_int_equal(c.grant.finish_s, grant.finish_s);
	assert_true(c.nkeys >= 2);
	assert_int_equal(kms_vendor_key(f->otp[0].root, VENDOR_B, kv), 0);
	for (size_t i = 0; i < c.nkeys; i++) {
		struct pkg_key k;

		/* what the box gets is E_{K_v}(K_pkg), never K_pkg */
		assert_int_equal(keystore_package_key(f->ks, c.keys[i].epoch, c.keys[i].pkg, &k), 0);
		assert_memory_not_equal(c.keys[i].key, k.key, 16);
		assert_int_equal(chip_protect_key(kv, k.key), 0);
		assert_memory_equal(c.keys[i].key, k.key, 16);
		pkg_key_wipe(&k);
	}
	secret_wipe(kv, sizeof(kv));
	/* the box applies it like any EMM: replay refused by the state */
	assert_int_equal(emm_state_apply(&st, &v, &c), 0);
	assert_int_equal(emm_state_apply(&st, &v, &c), CE_REPLAY);
	assert_int_equal(st.ent.packages, grant.packages);
	emm_content_wipe(&c);
	emm_state_wipe(&st);
	unspawn(ctl, host, pid);
}

/* The same chip running vendor A refuses B's EMM; chip Y running B too. */
static void test_wrong_vendor_wrong_chip(void **state)
{
	struct fx *f = *state;
	static struct emm_content c;
	uint8_t sec[EMM_MAX_SECTION];
	struct chip_link *ctl, *host, *ctl2, *host2;
	struct emm_view v;
	size_t n = 0;
	pid_t pid, pid2;

	build_vemm(f, f->b_csv, CHIP_X, SERIAL, 1, sec, &n);
	spawn(&f->otp[0], VENDOR_A, &ctl, &host, &pid);
	assert_int_equal(chip_link_open_emm(host, sec, n, SERIAL, &v, &c), CE_MAC);
	assert_int_equal(c.nkeys, 0);
	assert_false(c.has_grant);
	/* after the loader switches the chip to B, the same EMM opens */
	assert_int_equal(chip_link_set_vendor(ctl, VENDOR_B), 0);
	assert_int_equal(chip_link_open_emm(host, sec, n, SERIAL, &v, &c), 0);
	emm_content_wipe(&c);
	/* no module running: no K_v at all */
	assert_int_equal(chip_link_clear_vendor(ctl), 0);
	assert_int_equal(chip_link_open_emm(host, sec, n, SERIAL, &v, &c), CE_STATE);
	unspawn(ctl, host, pid);

	spawn(&f->otp[1], VENDOR_B, &ctl2, &host2, &pid2);
	assert_int_equal(chip_link_open_emm(host2, sec, n, SERIAL, &v, &c), CE_MAC);
	/* chip Y's own EMM (built for Y from B's file) opens on Y */
	build_vemm(f, f->b_csv, CHIP_Y, SERIAL, 2, sec, &n);
	assert_int_equal(chip_link_open_emm(host2, sec, n, SERIAL, &v, &c), 0);
	emm_content_wipe(&c);
	unspawn(ctl2, host2, pid2);
}

/* Every key in vendor A's key file, used every way it could be, fails on
 * B's EMM; so does K_card alone (the head-end keystore without K_v). */
static void test_a_key_file_cannot_open(void **state)
{
	struct fx *f = *state;
	static struct emm_content c;
	uint8_t sec[EMM_MAX_SECTION], kcard[16];
	char line[256];
	struct emm_view v;
	size_t n = 0;
	int tried = 0;
	FILE *in;

	build_vemm(f, f->b_csv, CHIP_X, SERIAL, 1, sec, &n);
	assert_int_equal(emm_parse(sec, n, SERIAL, &v), 0);
	in = fopen(f->a_csv, "r");
	assert_non_null(in);
	while (fgets(line, sizeof(line), in)) {
		char *comma = strchr(line, ',');
		uint8_t kv[16], kemm[16];

		if (line[0] == '#' || !comma)
			continue;
		comma[33] = '\0';
		assert_int_equal(hex_decode(comma + 1, kv, 16), 0);
		assert_int_equal(emm_vendor_open(&v, kv, &c), CE_MAC); /* as K_v */
		assert_int_equal(emm_open(&v, kv, &c), CE_MAC);        /* as the EMM key */
		for (uint64_t s = SERIAL - 2; s <= SERIAL + 2; s++) {  /* K_emm of nearby serials */
			assert_int_equal(emm_vendor_key(kv, s, kemm), 0);
			assert_int_equal(emm_open(&v, kemm, &c), CE_MAC);
		}
		tried++;
		secret_wipe(kv, sizeof(kv));
		secret_wipe(kemm, sizeof(kemm));
	}
	fclose(in);
	secret_wipe(line, sizeof(line));
	assert_int_equal(tried, NCHIPS);
	assert_int_equal(keystore_card_key(f->ks, SERIAL, kcard), 0);
	assert_int_equal(emm_open(&v, kcard, &c), CE_MAC);
	secret_wipe(kcard, sizeof(kcard));
	/* and B's own key for X does open it (the refusals above are not a broken EMM) */
	{
		uint8_t kv[16];

		assert_int_equal(emm_vendor_key_file(f->b_csv, CHIP_X, kv), 0);
		assert_int_equal(emm_vendor_open(&v, kv, &c), 0);
		assert_true(c.has_grant);
		emm_content_wipe(&c);
		secret_wipe(kv, sizeof(kv));
	}
}

/* Group EMM of two vendor EMMs (cards on chips X and Y): each chip opens
 * its own card's record and refuses the other's. */
static void test_group(void **state)
{
	struct fx *f = *state;
	static struct emm_content c;
	uint8_t ux[EMM_MAX_SECTION], uy[EMM_MAX_SECTION], grp[EMM_MAX_SECTION];
	const uint8_t *u[2] = { ux, uy };
	size_t lens[2], gl = 0;
	struct chip_link *ctl, *host;
	struct emm_view v;
	pid_t pid;

	build_vemm(f, f->b_csv, CHIP_X, SERIAL, 7, ux, &lens[0]);
	build_vemm(f, f->b_csv, CHIP_Y, SERIAL_Y, 7, uy, &lens[1]);
	assert_int_equal(emm_group_pack(u, lens, 2, grp, sizeof(grp), &gl), 0);
	spawn(&f->otp[0], VENDOR_B, &ctl, &host, &pid);
	assert_int_equal(chip_link_open_emm(host, grp, gl, SERIAL, &v, &c), 0);
	assert_int_equal(v.seq, 7);
	emm_content_wipe(&c);
	assert_int_equal(chip_link_open_emm(host, grp, gl, SERIAL_Y, &v, &c), CE_MAC);
	assert_int_equal(chip_link_open_emm(host, grp, gl, SERIAL + 99, &v, &c), CE_NOT_FOUND);
	unspawn(ctl, host, pid);
}

struct bad_row {
	const char *what;
	size_t off;     /* byte to flip (SIZE_MAX: none) */
	size_t len;     /* bytes sent */
	uint64_t serial;
	int want;
};

/* Bad requests: each gets its CE_* code from the chip, and the chip keeps
 * serving (the last row is the good EMM). */
static void test_bad_cases(void **state)
{
	struct fx *f = *state;
	static struct emm_content c;
	uint8_t sec[EMM_MAX_SECTION], bad[EMM_MAX_SECTION], resp[CHIP_MAX_BODY];
	uint8_t big[8 + EMM_MAX_SECTION + 1];
	struct chip_link *ctl, *host;
	struct chip *chip = NULL;
	struct emm_view v;
	size_t n = 0, rl = 0;
	pid_t pid;
	struct bad_row rows[6];

	build_vemm(f, f->b_csv, CHIP_X, SERIAL, 3, sec, &n);
	rows[0] = (struct bad_row){ "tag byte", n - 1, n, SERIAL, CE_MAC };
	rows[1] = (struct bad_row){ "ciphertext byte", 3 + EMM_AAD_BYTES, n, SERIAL, CE_MAC };
	rows[2] = (struct bad_row){ "seq in the AAD", 14, n, SERIAL, CE_MAC };
	rows[3] = (struct bad_row){ "truncated", SIZE_MAX, n - 1, SERIAL, CE_TRUNCATED };
	rows[4] = (struct bad_row){ "other card", SIZE_MAX, n, SERIAL + 1, CE_NOT_FOUND };
	rows[5] = (struct bad_row){ "good", SIZE_MAX, n, SERIAL, 0 };
	spawn(&f->otp[0], VENDOR_B, &ctl, &host, &pid);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int r;

		memcpy(bad, sec, n);
		if (rows[i].off != SIZE_MAX)
			bad[rows[i].off] ^= 0x01;
		r = chip_link_open_emm(host, bad, rows[i].len, rows[i].serial, &v, &c);
		if (r != rows[i].want)
			fail_msg("%s: got %d want %d", rows[i].what, r, rows[i].want);
		if (r != 0) {
			assert_int_equal(c.nkeys, 0);
		}
		emm_content_wipe(&c);
	}
	/* the control channel does not open EMMs */
	assert_int_equal(chip_link_open_emm(ctl, sec, n, SERIAL, &v, &c), CE_STATE);
	/* too big for the link */
	assert_int_equal(chip_link_open_emm(host, sec, EMM_MAX_SECTION + 1, SERIAL, &v, &c), CE_ARG);
	unspawn(ctl, host, pid);

	/* inside the chip directly: raw bodies the link would not send */
	assert_int_equal(chip_new(&f->otp[0], true, &chip), 0);
	put_be32(big, VENDOR_B);
	assert_int_equal(chip_handle(chip, CHIP_ROLE_CONTROL, CHIP_OP_SET_VENDOR, big, 4, resp, sizeof(resp), &rl), 0);
	assert_int_equal(chip_handle(chip, CHIP_ROLE_HOST, CHIP_OP_OPEN_EMM, big, 0, resp, sizeof(resp), &rl),
		CE_TRUNCATED);
	assert_int_equal(chip_handle(chip, CHIP_ROLE_HOST, CHIP_OP_OPEN_EMM, big, 8, resp, sizeof(resp), &rl),
		CE_TRUNCATED);
	memset(big, 0, sizeof(big));
	assert_int_equal(chip_handle(chip, CHIP_ROLE_HOST, CHIP_OP_OPEN_EMM, big, sizeof(big), resp, sizeof(resp),
		&rl), CE_LIMIT);
	assert_int_equal(rl, 0);
	chip_free(chip);
}

/* End to end: vendor EMM -> chip -> card state -> ladder client -> ECM
 * through the chip -> clear packets. */
static void test_end_to_end_descramble(void **state)
{
	struct fx *f = *state;
	static struct emm_content c;
	static struct emm_card_state st;
	uint8_t sec[EMM_MAX_SECTION], ecm[ECM_MAX_SECTION], clear[NPKT * 188], buf[NPKT * 188];
	struct chip_link *ctl, *host;
	struct cas_client cl;
	struct cas_host h;
	struct ecm_params p;
	struct ts_cipher *tc;
	uint8_t *pv[NPKT];
	uint64_t now = T0_MS + 1000;
	struct emm_view v;
	size_t n = 0, el = 0, done = 0;
	pid_t pid;

	build_vemm(f, f->b_csv, CHIP_X, SERIAL, 9, sec, &n);
	memset(&p, 0, sizeof(p));
	p.alg = CW_ALG_CISSA;
	p.ecm_id = 1;
	p.ca_system_id = CASID;
	p.cp_number = 3;
	p.timestamp_ms = T0_MS;
	p.epoch = (uint32_t)(T0_MS / 1000u / EPOCH_S);
	p.ac_len = 4;
	put_be32(p.ac, 0x00000002u);
	p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	assert_int_equal(RAND_bytes(p.cw_even, 16), 1);
	assert_int_equal(RAND_bytes(p.cw_odd, 16), 1);
	assert_int_equal(ecm_build(f->ks, &p, ecm, sizeof(ecm), &el), 0);
	for (int i = 0; i < NPKT; i++) {
		uint8_t *q = clear + i * 188;

		q[0] = 0x47;
		q[1] = 0x41;
		q[2] = 0x00;
		q[3] = (uint8_t)(0x10 | (i & 15));
		for (int j = 4; j < 188; j++)
			q[j] = (uint8_t)(i * 31 + j);
		pv[i] = buf + i * 188;
	}
	memcpy(buf, clear, sizeof(buf));
	tc = ts_cipher_new(CW_ALG_CISSA, true);
	assert_non_null(tc);
	assert_int_equal(ts_cipher_set_key(tc, CW_ODD, p.cw_odd, 16), 0);
	assert_int_equal(ts_cipher_scramble(tc, pv, NPKT, CW_ODD), 0);
	ts_cipher_free(tc);
	ecm_params_wipe(&p);

	spawn(&f->otp[0], VENDOR_B, &ctl, &host, &pid);
	assert_int_equal(chip_link_open_emm(host, sec, n, SERIAL, &v, &c), 0);
	assert_int_equal(emm_state_apply(&st, &v, &c), 0);
	emm_content_wipe(&c);
	chip_link_host(host, fixed_clock, &now, &h);
	assert_null(h.load_cw);
	assert_int_equal(ladder_client_from(&st.ent, &cl), 0);
	emm_state_wipe(&st);
	assert_int_equal(cl.ops->ecm(cl.self, &h, 101, ecm, el), 0);
	assert_int_equal(chip_link_descramble(host, 101, DESCR_TAG_SERVICE, buf, NPKT, &done, NULL), 0);
	assert_int_equal(done, NPKT);
	assert_memory_equal(buf, clear, sizeof(buf));
	cas_client_free(&cl);
	unspawn(ctl, host, pid);
}

/* ---- the ladder client takes vendor EMMs itself (issue 13: OSD on a chip box) ---- */

/* The box's host as stb.c builds it: the chip's (load_ecw, open_emm) plus
 * the OSD callbacks, which record what reaches the screen. */
struct osd_box {
	struct cas_host chip; /* chip_link_host */
	struct cas_host host; /* what the client gets */
	int nfp, nmsg;
	uint16_t fp_service;
	struct osd_fingerprint fp;
	char fp_text[64];
	struct osd_message msg;
};

static int ob_load_ecw(void *ctx, uint16_t sid, enum cw_alg alg, enum cw_parity par, const uint8_t *ek, size_t n)
{
	struct osd_box *b = ctx;

	return b->chip.load_ecw(b->chip.ctx, sid, alg, par, ek, n);
}

static uint64_t ob_now(void *ctx)
{
	struct osd_box *b = ctx;

	return b->chip.now_ms(b->chip.ctx);
}

static int ob_open_emm(void *ctx, const uint8_t *sec, size_t len, uint64_t serial, struct emm_view *v,
	struct emm_content *out)
{
	struct osd_box *b = ctx;

	return b->chip.open_emm(b->chip.ctx, sec, len, serial, v, out);
}

static void ob_fp(void *ctx, uint16_t service_id, const struct osd_fingerprint *fp, const char *text)
{
	struct osd_box *b = ctx;

	b->nfp++;
	b->fp_service = service_id;
	b->fp = *fp;
	snprintf(b->fp_text, sizeof(b->fp_text), "%s", text);
}

static void ob_msg(void *ctx, const struct osd_message *m)
{
	struct osd_box *b = ctx;

	b->nmsg++;
	b->msg = *m;
}

/* 150 characters: 2-, 3- and 4-byte UTF-8 */
static const char osd_text[] = "Wartung heute Nacht 02:00–03:00 · 今晚网络维护 · صيانة الشبكة 📡 — "
	"service interruption tonight, please keep your box switched on; the guide returns at 03:00.";

/* Head-end: a vendor EMM for card `serial` on `chip` with the grant and
 * these OSD items (as the carousel's emm_build_unique_osd), or without g
 * one item alone (emm_build_osd). */
static void build_vemm_osd(struct fx *f, uint64_t chip, uint64_t serial, uint32_t seq, const struct emm_grant *g,
	const struct osd_item *const *items, size_t nitems, uint8_t *out, size_t *out_len)
{
	uint8_t plain[EMM_MAX_SECTION], kv[16];
	size_t n = 0, sent = 0;

	if (g) {
		assert_int_equal(emm_build_unique_osd(f->is, serial, seq, g, NULL, items, nitems, &sent, T0_MS, plain,
			sizeof(plain), &n), 0);
		assert_int_equal(sent, nitems);
	} else { /* one item alone (emm_build_osd) */
		assert_int_equal(nitems, 1);
		assert_int_equal(emm_build_osd(f->is, serial, seq, items[0], T0_MS, plain, sizeof(plain), &n), 0);
	}
	assert_int_equal(emm_vendor_key_file(f->b_csv, chip, kv), 0);
	assert_int_equal(emm_vendor_seal(f->ks, kv, plain, n, out, EMM_MAX_SECTION, out_len), 0);
	secret_wipe(kv, sizeof(kv));
}

static void test_ladder_client_emm_osd(void **state)
{
	struct fx *f = *state;
	static struct osd_box b;
	struct osd_item fpi, mi, old;
	const struct osd_item *items[2] = { &fpi, &mi };
	const struct osd_item *olds[1] = { &old };
	uint8_t sec[EMM_MAX_SECTION], bad[EMM_MAX_SECTION], ecm[ECM_MAX_SECTION];
	struct chip_link *ctl, *host;
	struct entitlement e;
	struct cas_client cl;
	struct ecm_params p;
	uint64_t now = T0_MS + 1000;
	size_t n = 0, el = 0, chars = 0;
	pid_t pid;

	memset(&fpi, 0, sizeof(fpi));
	fpi.kind = OSD_KIND_FINGERPRINT;
	fpi.u.fp = (struct osd_fingerprint){ .flags = OSD_FP_SERIAL, .fp_id = 77, .x_pct = 12, .y_pct = 80,
		.fg = { 0xFF, 0xFF, 0x00 }, .bg = { 0, 0, 0, 0xC0 }, .font_px = 32, .duration_ms = 4000, .repeat = 3,
		.interval_s = 600, .service = 0 };
	memset(&mi, 0, sizeof(mi));
	mi.kind = OSD_KIND_MESSAGE;
	mi.u.msg = (struct osd_message){ .flags = OSD_MSG_FORCED | OSD_MSG_POPUP, .scope = OSD_SCOPE_INDIVIDUAL,
		.msg_id = 42, .expiry_s = T0_MS / 1000u + 86400, .duration_s = 45, .fg = { 0xFF, 0xFF, 0xFF },
		.bg = { 0x10, 0x10, 0x40, 0xD0 }, .font_px = 24 };
	assert_int_equal(osd_msg_set_text(&mi.u.msg, osd_text), 0);
	assert_int_equal(osd_text_check(osd_text, strlen(osd_text), &chars), 0);
	assert_true(chars >= 120);

	/* the box starts with no keys at all: everything comes in the EMM */
	memset(&e, 0, sizeof(e));
	e.ca_system_id = CASID;
	e.card_serial = SERIAL;
	e.start_s = grant.start_s;
	e.finish_s = grant.finish_s;
	spawn(&f->otp[0], VENDOR_B, &ctl, &host, &pid);
	memset(&b, 0, sizeof(b));
	chip_link_host(host, fixed_clock, &now, &b.chip);
	assert_non_null(b.chip.open_emm);
	b.host = (struct cas_host){ .ctx = &b, .load_ecw = ob_load_ecw, .now_ms = ob_now, .on_fingerprint = ob_fp,
		.on_message = ob_msg, .open_emm = ob_open_emm };
	assert_int_equal(ladder_client_from(&e, &cl), 0);
	build_vemm_osd(f, CHIP_X, SERIAL, 1, &grant, items, 2, sec, &n);

	/* no host yet: the client takes no EMMs, as before */
	assert_int_equal(cl.ops->emm(cl.self, sec, n), CE_UNSUPPORTED);
	cas_client_set_host(&cl, &b.host);

	/* altered in the air, another card's, another chip's: refused, nothing shown */
	memcpy(bad, sec, n);
	bad[n - 20] ^= 1;
	assert_int_equal(cl.ops->emm(cl.self, bad, n), CE_MAC);
	{
		uint8_t other[EMM_MAX_SECTION];
		size_t on = 0;

		build_vemm_osd(f, CHIP_X, SERIAL_Y, 1, &grant, items, 2, other, &on);
		assert_int_equal(cl.ops->emm(cl.self, other, on), CE_NOT_FOUND);
		build_vemm_osd(f, CHIP_Y, SERIAL, 1, &grant, items, 2, other, &on);
		assert_int_equal(cl.ops->emm(cl.self, other, on), CE_MAC);
	}
	assert_int_equal(b.nfp + b.nmsg, 0);

	/* the genuine one: opened in the chip, both items reach the screen */
	assert_int_equal(cl.ops->emm(cl.self, sec, n), 0);
	assert_int_equal(b.nfp, 1);
	assert_int_equal(b.fp_service, 0); /* a card's fingerprint: every service */
	assert_int_equal(b.fp.fp_id, 77);
	assert_int_equal(b.fp.x_pct, 12);
	assert_int_equal(b.fp.y_pct, 80);
	assert_memory_equal(b.fp.fg, fpi.u.fp.fg, 3);
	assert_memory_equal(b.fp.bg, fpi.u.fp.bg, 4);
	assert_int_equal(b.fp.font_px, 32);
	assert_int_equal(b.fp.repeat, 3);
	assert_string_equal(b.fp_text, "2100000001");
	assert_int_equal(b.nmsg, 1);
	assert_int_equal(b.msg.msg_id, 42);
	assert_int_equal(b.msg.text_len, strlen(osd_text));
	assert_string_equal(b.msg.text, osd_text);
	assert_int_equal(b.msg.flags, OSD_MSG_FORCED | OSD_MSG_POPUP);
	assert_int_equal(b.msg.duration_s, 45);

	/* the carousel repeating it: not applied again, not shown again */
	assert_int_equal(cl.ops->emm(cl.self, sec, n), CE_EXISTS);
	assert_int_equal(b.nfp, 1);
	assert_int_equal(b.nmsg, 1);

	/* the grant and its protected keys came with it: an ECM now opens in the chip */
	memset(&p, 0, sizeof(p));
	p.alg = CW_ALG_CISSA;
	p.ecm_id = 1;
	p.ca_system_id = CASID;
	p.cp_number = 3;
	p.timestamp_ms = T0_MS;
	p.epoch = (uint32_t)(T0_MS / 1000u / EPOCH_S);
	p.ac_len = 4;
	put_be32(p.ac, 0x00000002u);
	p.cw_mask = ECM_HAS_EVEN | ECM_HAS_ODD;
	assert_int_equal(RAND_bytes(p.cw_even, 16), 1);
	assert_int_equal(RAND_bytes(p.cw_odd, 16), 1);
	assert_int_equal(ecm_build(f->ks, &p, ecm, sizeof(ecm), &el), 0);
	ecm_params_wipe(&p);
	assert_int_equal(cl.ops->ecm(cl.self, &b.host, 101, ecm, el), 0);

	/* an expired message: authentic, applied, not shown */
	old = mi;
	old.u.msg.msg_id = 43;
	old.u.msg.expiry_s = T0_MS / 1000u - 1;
	build_vemm_osd(f, CHIP_X, SERIAL, 2, NULL, olds, 1, sec, &n);
	assert_int_equal(cl.ops->emm(cl.self, sec, n), 0);
	assert_int_equal(b.nmsg, 1);

	/* detached: applied, nothing delivered and no EMM taken */
	cas_client_set_host(&cl, NULL);
	assert_int_equal(cl.ops->emm(cl.self, sec, n), CE_UNSUPPORTED);
	cas_client_set_host(&cl, &b.host);

	/* a BLOCK command in a vendor EMM: the chip box stops opening ECMs */
	{
		uint8_t plain[EMM_MAX_SECTION], kv[16];
		size_t pn = 0;

		assert_int_equal(emm_build_command(f->is, SERIAL, 3, EMM_CMD_BLOCK, 0, T0_MS, plain, sizeof(plain), &pn), 0);
		assert_int_equal(emm_vendor_key_file(f->b_csv, CHIP_X, kv), 0);
		assert_int_equal(emm_vendor_seal(f->ks, kv, plain, pn, sec, sizeof(sec), &n), 0);
		secret_wipe(kv, sizeof(kv));
	}
	assert_int_equal(cl.ops->emm(cl.self, sec, n), 0);
	assert_int_equal(cl.ops->ecm(cl.self, &b.host, 101, ecm, el), CE_BLOCKED);
	/* an older EMM (the first one, seq 1) after seq 3: a replay, nothing shown */
	build_vemm_osd(f, CHIP_X, SERIAL, 1, &grant, items, 2, sec, &n);
	assert_int_equal(cl.ops->emm(cl.self, sec, n), CE_REPLAY);
	assert_int_equal(b.nfp, 1);
	assert_int_equal(b.nmsg, 1);
	cas_client_free(&cl);
	entitlement_wipe(&e);
	unspawn(ctl, host, pid);
}

/* The reference box in chip mode (stb_config.chip): a CAT naming the EMM
 * PID, then the card's vendor EMM; the box hands it to the ladder client,
 * which opens it through the chip (the box's open_emm), and the
 * fingerprint and the message are in the box's report as on any box. */
static const json_t *osd_event(const json_t *root, const char *kind, const char *text)
{
	const json_t *arr = json_object_get(root, "osd"), *e;
	size_t i;

	json_array_foreach(arr, i, e)
		if (strcmp(json_string_value(json_object_get(e, "kind")), kind) == 0 &&
		    strcmp(json_string_value(json_object_get(e, "text")), text) == 0)
			return e;
	return NULL;
}

static void test_box_reports_vendor_emm_osd(void **state)
{
	struct fx *f = *state;
	struct osd_item fpi, mi;
	const struct osd_item *items[2] = { &fpi, &mi };
	uint8_t sec[EMM_MAX_SECTION], csec[1024], pkts[64 * 188];
	struct ca_desc ca = { .ca_system_id = CASID, .ca_pid = 0x0100 };
	struct cat *cat = calloc(1, sizeof(*cat));
	struct stb_report *rep = calloc(1, sizeof(*rep));
	struct chip_link *ctl, *host;
	struct entitlement e;
	struct cas_client cl;
	struct stb_config cfg = { 0 };
	struct stb *box = NULL;
	uint64_t now = T0_MS + 1000;
	uint8_t cc_cat = 0x0F, cc_emm = 0x0F;
	size_t n = 0, cl_len = 0, np = 0, total = 0;
	pid_t pid;
	char *js = NULL;
	json_t *root;
	const json_t *ev;

	assert_non_null(cat);
	assert_non_null(rep);
	memset(&fpi, 0, sizeof(fpi));
	fpi.kind = OSD_KIND_FINGERPRINT;
	fpi.u.fp = (struct osd_fingerprint){ .flags = OSD_FP_SERIAL, .fp_id = 91, .x_pct = 30, .y_pct = 20,
		.fg = { 0x00, 0xFF, 0x00 }, .bg = { 0, 0, 0, 0x80 }, .font_px = 24, .duration_ms = 5000, .repeat = 1 };
	memset(&mi, 0, sizeof(mi));
	mi.kind = OSD_KIND_MESSAGE;
	mi.u.msg = (struct osd_message){ .flags = OSD_MSG_FORCED, .scope = OSD_SCOPE_GLOBAL, .msg_id = 5,
		.expiry_s = T0_MS / 1000u + 86400, .duration_s = 30, .fg = { 0xFF, 0xFF, 0xFF },
		.bg = { 0x10, 0x10, 0x40, 0xD0 }, .font_px = 24 };
	assert_int_equal(osd_msg_set_text(&mi.u.msg, osd_text), 0);
	build_vemm_osd(f, CHIP_X, SERIAL, 1, &grant, items, 2, sec, &n);
	assert_int_equal(ca_desc_append(cat->info, sizeof(cat->info), &cat->info_len, &ca), 0);
	assert_int_equal(cat_build(cat, csec, sizeof(csec), &cl_len), 0);
	assert_int_equal(ts_packetize(csec, cl_len, TS_PID_CAT, &cc_cat, pkts, 64, &np), 0);
	total = np;
	assert_int_equal(ts_packetize(sec, n, 0x0100, &cc_emm, pkts + total * 188, 64 - total, &np), 0);
	total += np;

	memset(&e, 0, sizeof(e));
	e.ca_system_id = CASID;
	e.card_serial = SERIAL;
	e.start_s = grant.start_s;
	e.finish_s = grant.finish_s;
	spawn(&f->otp[0], VENDOR_B, &ctl, &host, &pid);
	assert_int_equal(ladder_client_from(&e, &cl), 0);
	cfg.client = &cl;
	cfg.chip = host;
	cfg.now_ms = fixed_clock;
	cfg.clock_ctx = &now;
	assert_int_equal(stb_new(&cfg, &box), 0);
	assert_int_equal(stb_feed(box, pkts, total, pkts), 0);
	assert_int_equal(stb_report(box, rep), 0);
	assert_int_equal(rep->emm_accepted, 1);
	assert_int_equal(rep->emm_refused, 0);
	assert_int_equal(stb_report_json_osd(rep, box, &js), 0);
	root = json_loads(js, 0, NULL);
	assert_non_null(root);
	ev = osd_event(root, "fingerprint", "2100000001");
	assert_non_null(ev);
	assert_int_equal(json_integer_value(json_object_get(ev, "x_pct")), 30);
	ev = osd_event(root, "message", osd_text);
	assert_non_null(ev);
	assert_true(json_is_true(json_object_get(ev, "forced")));
	json_decref(root);
	free(js);
	stb_free(box);
	cas_client_free(&cl);
	unspawn(ctl, host, pid);
	free(rep);
	free(cat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_on_right_chip),
		cmocka_unit_test(test_wrong_vendor_wrong_chip),
		cmocka_unit_test(test_a_key_file_cannot_open),
		cmocka_unit_test(test_group),
		cmocka_unit_test(test_bad_cases),
		cmocka_unit_test(test_end_to_end_descramble),
		cmocka_unit_test(test_ladder_client_emm_osd),
		cmocka_unit_test(test_box_reports_vendor_emm_osd),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
