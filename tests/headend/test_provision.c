/*
 * test_provision.c - `castellan provision` grants from the SMS store only
 * (src/headend/provision.c; TRAI Schedule III A.5, issue 13 item 5): a table
 * of cards it must refuse (not in the SMS, blocked, retired, blacklisted,
 * in a blacklisted box, nothing in force, pairing it cannot honour), with
 * no file written and no audit entry; a good card gets exactly the SMS's
 * packages (mask and extended), period, pairing and the store's sequence
 * numbers, each grant with its card.provision entry in an intact chain,
 * never a key; `sms reconcile` agrees with the EMM it issued; and the
 * command refuses packages from its command line. On SQLite and on
 * PostgreSQL (sms_testdb.h), a fresh store per test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define SMS_TEST_PG_PORT 5491
#include "sms/sms_testdb.h"
#include "cas/card.h"
#include "cas/emm.h"
#include "crypto/kdf.h"
#include "headend/provision.h"
#include "headend/reconcile.h"
#include "lib/util.h"

#define GOOD 2100000001ull
#define PAIRED 2100000009ull
#define BOX 0x0000000000000abcull
#define EPOCH_S 3600u

struct fx {
	char dir[64], db[1100], vk[128];
	struct sms_store *s;
	struct keystore *ks;
	int64_t now;
	uint8_t kv[16];
};

static const char *fpath(const struct fx *f, const char *name)
{
	static char ring[8][256];
	static unsigned k;
	char *p = ring[k++ % 8];

	snprintf(p, sizeof(ring[0]), "%s/%s", f->dir, name);
	return p;
}

static void add_card(struct fx *f, uint64_t serial, const char *chip, bool pair, int64_t from, int64_t to,
		     const uint32_t *pkgs, size_t n)
{
	struct sms_card c = { .serial = serial, .pair = pair, .start = from, .finish = to };

	snprintf(c.chip_id, sizeof(c.chip_id), "%s", chip ? chip : "");
	assert_int_equal(sms_card_add(f->s, &c, "test"), 0);
	for (size_t i = 0; i < n; i++) {
		struct sms_subscription sub = { serial, pkgs[i], from, to };

		assert_int_equal(sms_subscribe(f->s, &sub, "test"), 0);
	}
}

static int setup(void **state)
{
	static struct fx f;
	static const uint32_t p01[] = { 0, 1, 40 }, p0[] = { 0 };
	FILE *o;

	struct backend *be = *state;

	memset(&f, 0, sizeof(f));
	snprintf(f.db, sizeof(f.db), "%s", tdb_fresh(be));
	snprintf(f.dir, sizeof(f.dir), "/tmp/castellan-prov-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	assert_int_equal(sms_store_open(f.db, &f.s), 0);
	assert_string_equal(sms_store_backend(f.s), be->name);
	assert_int_equal(keystore_generate(0x4ADC, EPOCH_S, &f.ks), 0);
	f.now = (int64_t)(now_wall_ms() / 1000u);
	assert_int_equal(sms_package_add(f.s, 40, "extended forty", "test"), 0);
	add_card(&f, GOOD, NULL, false, f.now - 3600, f.now + 86400, p01, 3);
	add_card(&f, 2100000002, NULL, false, f.now - 3600, f.now + 86400, p0, 1);
	assert_int_equal(sms_card_set_state(f.s, 2100000002, SMS_CARD_BLOCKED, "test"), 0);
	add_card(&f, 2100000003, NULL, false, f.now - 3600, f.now + 86400, p0, 1);
	assert_int_equal(sms_card_set_state(f.s, 2100000003, SMS_CARD_RETIRED, "test"), 0);
	add_card(&f, 2100000004, NULL, false, f.now - 3600, f.now + 86400, p0, 1);
	assert_int_equal(sms_blacklist_add(f.s, SMS_BL_CARD, "2100000004", "pirated", "test"), 0);
	add_card(&f, 2100000005, "0x77", false, f.now - 3600, f.now + 86400, p0, 1);
	assert_int_equal(sms_blacklist_add(f.s, SMS_BL_BOX, "0x77", "pirate box", "test"), 0);
	add_card(&f, 2100000006, NULL, false, f.now - 3600, f.now + 86400, NULL, 0);           /* no package */
	add_card(&f, 2100000007, NULL, false, f.now - 7 * 86400, f.now - 86400, p0, 1);        /* expired */
	add_card(&f, 2100000008, NULL, true, f.now - 3600, f.now + 86400, p0, 1);              /* pair, no box */
	assert_int_equal(sms_blacklist_add(f.s, SMS_BL_CARD, "2100000010", "never sold", "test"), 0);
	{
		char chip[24];

		snprintf(chip, sizeof(chip), "0x%016llx", (unsigned long long)BOX);
		add_card(&f, PAIRED, chip, true, f.now - 3600, f.now + 86400, p0, 1);
	}
	/* a vendor key file holding K_v of BOX only */
	for (int i = 0; i < 16; i++)
		f.kv[i] = (uint8_t)(0xA0 + i);
	snprintf(f.vk, sizeof(f.vk), "%s/vendor.csv", f.dir);
	o = fopen(f.vk, "w");
	assert_non_null(o);
	fprintf(o, "0x%016llx,", (unsigned long long)BOX);
	for (int i = 0; i < 16; i++)
		fprintf(o, "%02x", f.kv[i]);
	fprintf(o, "\n");
	assert_int_equal(fclose(o), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	sms_store_close(f->s);
	keystore_free(f->ks);
	assert_int_equal(tu_run("rm -rf '%s'", f->dir), 0);
	return 0;
}

struct count {
	size_t provisions, bad_details;
	uint64_t serial;
	char last[512];
};

static int count_entry(void *ctx, const struct sms_audit_entry *e)
{
	struct count *c = ctx;
	char obj[40];

	if (strcmp(e->action, PROVISION_AUDIT_ACTION) != 0)
		return 0;
	snprintf(obj, sizeof(obj), "card:%llu", (unsigned long long)c->serial);
	if (c->serial && strcmp(e->object, obj) != 0)
		return 0;
	c->provisions++;
	snprintf(c->last, sizeof(c->last), "%s", e->details);
	if (strcmp(e->who, "test:provision") != 0 || !strstr(e->details, "from the SMS"))
		c->bad_details++;
	return 0;
}

/* card.provision entries (of serial; 0 = all), the last one's details. */
static size_t provisions(const struct fx *f, uint64_t serial, char *last, size_t cap)
{
	struct count c = { .serial = serial };
	size_t n = 0;

	assert_int_equal(sms_audit_range(f->s, 0, 0, 100000, count_entry, &c, &n), 0);
	assert_int_equal(c.bad_details, 0);
	if (last)
		snprintf(last, cap, "%s", c.last);
	return c.provisions;
}

static struct provision_req req(const struct fx *f, uint64_t serial)
{
	return (struct provision_req){ .store = f->s, .ks = f->ks, .serial = serial, .now_s = f->now,
				       .who = "test:provision", .vendor_csv = f->vk };
}

/* The last line of a hex EMM file, opened with the card's K_card. */
static void open_last_emm(const struct fx *f, const char *path, uint64_t serial, struct emm_view *v,
			  struct emm_content *c)
{
	static uint8_t sec[EMM_MAX_SECTION];
	size_t len = 0, sl = 0, off;
	uint8_t *hex = tu_read(path, &len), kc[CARD_KEY_BYTES];

	assert_non_null(hex);
	assert_true(len > 2 && hex[len - 1] == '\n');
	hex[len - 1] = '\0';
	for (off = len - 1; off > 0 && hex[off - 1] != '\n'; off--)
		;
	assert_int_equal(hex_decode_var((const char *)hex + off, sec, sizeof(sec), &sl), 0);
	free(hex);
	assert_int_equal(emm_parse(sec, sl, serial, v), 0);
	assert_int_equal(keystore_card_key(f->ks, serial, kc), 0);
	assert_int_equal(emm_open(v, kc, c), 0);
	secret_wipe(kc, sizeof(kc));
}

/* Every card the SMS does not let it provision: refused with the right
 * code, nothing written, nothing audited, no sequence number spent. */
static void test_refused(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint64_t serial;
		int ent, emm, pair;
		const char *why;
	} cases[] = {
		{ 2100000099, CE_NOT_FOUND, CE_NOT_FOUND, CE_NOT_FOUND, "not in the SMS" },
		{ 2100000002, CE_STATE, CE_STATE, CE_STATE, "blocked in the SMS" },
		{ 2100000003, CE_STATE, CE_STATE, CE_STATE, "retired in the SMS" },
		{ 2100000004, CE_BLOCKED, CE_BLOCKED, CE_BLOCKED, "is blacklisted" },
		{ 2100000010, CE_BLOCKED, CE_BLOCKED, CE_BLOCKED, "is blacklisted" },
		{ 2100000005, CE_BLOCKED, CE_BLOCKED, CE_BLOCKED, "blacklisted in the SMS" },
		{ 2100000006, CE_NOT_ENTITLED, CE_NOT_ENTITLED, CE_NOT_ENTITLED, "no package in force" },
		{ 2100000007, CE_NOT_ENTITLED, CE_NOT_ENTITLED, CE_NOT_ENTITLED, "no package in force" },
		{ 2100000008, CE_STATE, CE_STATE, CE_STATE, "" },      /* pairing: no box named */
		{ GOOD, 0, 0, CE_STATE, "does not pair it" },          /* PAIR: the SMS says pair = 0 */
	};
	size_t before = provisions(f, 0, NULL, 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct provision_req q = req(f, cases[i].serial);
		struct provision_result res;
		struct sms_emm_seq sq;
		char why[600];
		int r;

		if (cases[i].ent != 0) {
			r = provision_entitlement(&q, fpath(f, "refused.json"), &res, why, sizeof(why));
			if (r != cases[i].ent)
				fprintf(stderr, "case %zu (%llu) entitlement: %d %s\n", i,
					(unsigned long long)cases[i].serial, r, why);
			assert_int_equal(r, cases[i].ent);
			assert_non_null(strstr(why, cases[i].why));
			r = provision_emm(&q, fpath(f, "refused.hex"), &res, why, sizeof(why));
			assert_int_equal(r, cases[i].emm);
		}
		r = provision_pair_emm(&q, fpath(f, "refused.hex"), &res, why, sizeof(why));
		if (r != cases[i].pair)
			fprintf(stderr, "case %zu (%llu) pair: %d %s\n", i, (unsigned long long)cases[i].serial, r, why);
		assert_int_equal(r, cases[i].pair);
		assert_non_null(strstr(why, cases[i].why));
		assert_int_equal(access(fpath(f, "refused.json"), F_OK), -1);
		assert_int_equal(access(fpath(f, "refused.hex"), F_OK), -1);
		assert_int_equal(sms_emm_seq_get(f->s, cases[i].serial, &sq), CE_NOT_FOUND);
	}
	assert_int_equal(provisions(f, 0, NULL, 0), before);
}

/* The good card: exactly the SMS's grant, in a file and in EMMs, each
 * audited; the EMM's seq is the store's; reconcile agrees. */
static int diff_of(void *ctx, const struct reconcile_diff *d)
{
	if (d->serial == GOOD)
		(*(int *)ctx)++;
	return 0;
}

static void test_grants_the_sms(void **state)
{
	struct fx *f = *state;
	struct provision_req q = req(f, GOOD);
	struct provision_result res;
	static struct entitlement e;
	struct emm_view v;
	struct emm_content c;
	struct sms_audit_verify av;
	struct reconcile_stats st;
	struct pkg_key k;
	char why[600], last[512];
	int diffs = 0;

	/* the entitlement file: packages 0 and 1 and the SMS period (a file
	 * holds packages 0..31: 40 is left out, and the audit says so) */
	assert_int_equal(provision_entitlement(&q, fpath(f, "box.json"), &res, why, sizeof(why)), 0);
	assert_int_equal(entitlement_load(fpath(f, "box.json"), &e), 0);
	assert_int_equal(e.card_serial, GOOD);
	assert_int_equal(e.packages, 0x3);
	assert_int_equal(e.next, 0);
	assert_int_equal(e.start_s, (uint64_t)(f->now - 3600));
	assert_int_equal(e.finish_s, (uint64_t)(f->now + 86400));
	assert_false(entitlement_has_pkg(&e, 2));
	assert_false(entitlement_has_pkg(&e, 40));
	assert_int_equal(keystore_package_key(f->ks, keystore_epoch_at(f->ks, (uint64_t)f->now), 1, &k), 0);
	assert_non_null(entitlement_find_key(&e, keystore_epoch_at(f->ks, (uint64_t)f->now), 1));
	assert_memory_equal(entitlement_find_key(&e, keystore_epoch_at(f->ks, (uint64_t)f->now), 1)->key, k.key,
			    PKG_KEY_BYTES);
	assert_int_equal(provisions(f, GOOD, last, sizeof(last)), 1);
	assert_non_null(strstr(last, "entitlement file from the SMS: packages=00000003 ext=-"));
	assert_non_null(strstr(last, "ext_left_out=40"));
	/* not overwritten, not audited twice */
	assert_int_equal(provision_entitlement(&q, fpath(f, "box.json"), &res, why, sizeof(why)), CE_EXISTS);
	assert_int_equal(provisions(f, GOOD, NULL, 0), 1);

	/* the grant EMM: seq 1 from the store, then 2, then at least 10 */
	assert_int_equal(provision_emm(&q, fpath(f, "emm.hex"), &res, why, sizeof(why)), 0);
	assert_int_equal(res.seq, 1);
	open_last_emm(f, fpath(f, "emm.hex"), GOOD, &v, &c);
	assert_int_equal(v.seq, 1);
	assert_true(c.has_grant);
	assert_int_equal(c.grant.packages, 0x3);
	assert_int_equal(c.grant.next, 1);
	assert_int_equal(c.grant.ext[0], 40);
	assert_int_equal(c.grant.start_s, (uint64_t)(f->now - 3600));
	assert_int_equal(c.grant.finish_s, (uint64_t)(f->now + 86400));
	assert_int_equal(c.cmds & EMM_CMD_PAIR, 0);
	emm_content_wipe(&c);
	assert_int_equal(provision_emm(&q, fpath(f, "emm.hex"), &res, why, sizeof(why)), 0);
	assert_int_equal(res.seq, 2);
	q.min_seq = 10;
	assert_int_equal(provision_emm(&q, fpath(f, "emm.hex"), &res, why, sizeof(why)), 0);
	assert_int_equal(res.seq, 10);
	assert_int_equal(provisions(f, GOOD, last, sizeof(last)), 4);
	assert_non_null(strstr(last, "grant EMM from the SMS: packages=00000003 ext=40"));
	assert_non_null(strstr(last, "seq=10"));
	/* the CAS side (emm_seq) now says what the SMS says */
	assert_int_equal(reconcile_run(f->s, f->now, diff_of, &diffs, &st), 0);
	assert_int_equal(diffs, 0);

	/* a change in the SMS is what the next provision issues */
	assert_int_equal(sms_unsubscribe(f->s, GOOD, 1, "test"), 0);
	q.min_seq = 0;
	assert_int_equal(provision_emm(&q, fpath(f, "emm.hex"), &res, why, sizeof(why)), 0);
	open_last_emm(f, fpath(f, "emm.hex"), GOOD, &v, &c);
	assert_int_equal(c.grant.packages, 0x1);
	emm_content_wipe(&c);

	/* the chain holds, every entry ours */
	assert_int_equal(sms_audit_verify(f->s, NULL, &av), 0);
	assert_int_equal(av.bad_seq, 0);
	entitlement_wipe(&e);
}

/* A card the SMS pairs with a box: the grant EMM carries PAIR for the
 * SMS's box with K_pair from the vendor file; the PAIR EMM alone too; an
 * entitlement file (clear keys) is refused; no vendor file: refused. */
static void test_paired(void **state)
{
	struct fx *f = *state;
	struct provision_req q = req(f, PAIRED);
	struct provision_result res;
	struct emm_view v;
	struct emm_content c;
	uint8_t kp[16];
	char why[600], last[512];

	assert_int_equal(provision_entitlement(&q, fpath(f, "p.json"), &res, why, sizeof(why)), CE_STATE);
	assert_non_null(strstr(why, "paired"));
	q.vendor_csv = NULL;
	assert_int_equal(provision_emm(&q, fpath(f, "p.hex"), &res, why, sizeof(why)), CE_NOT_FOUND);
	assert_non_null(strstr(why, "--vendor-keys"));
	assert_int_equal(access(fpath(f, "p.hex"), F_OK), -1);
	q.vendor_csv = f->vk;
	assert_int_equal(kms_pairing_key(f->kv, PAIRED, kp), 0);
	assert_int_equal(provision_emm(&q, fpath(f, "p.hex"), &res, why, sizeof(why)), 0);
	assert_int_equal(res.stb_id, BOX);
	open_last_emm(f, fpath(f, "p.hex"), PAIRED, &v, &c);
	assert_int_equal(c.grant.packages, 0x1);
	assert_true(c.cmds & EMM_CMD_PAIR);
	assert_int_equal(c.pair_stb_id, BOX);
	assert_true(c.has_pair_key);
	assert_memory_equal(c.pair_key, kp, 16);
	emm_content_wipe(&c);
	assert_int_equal(provision_pair_emm(&q, fpath(f, "p.hex"), &res, why, sizeof(why)), 0);
	assert_int_equal(res.seq, 2);
	open_last_emm(f, fpath(f, "p.hex"), PAIRED, &v, &c);
	assert_true(c.cmds & EMM_CMD_PAIR);
	assert_int_equal(c.pair_stb_id, BOX);
	assert_memory_equal(c.pair_key, kp, 16);
	emm_content_wipe(&c);
	assert_int_equal(provisions(f, PAIRED, last, sizeof(last)), 2);
	assert_non_null(strstr(last, "PAIR EMM"));
	assert_non_null(strstr(last, "box=0x0000000000000abc"));
	/* no key material in the log: neither K_pair nor K_v in hex */
	{
		char hp[33], hv[33];

		hex_encode(kp, 16, hp);
		hex_encode(f->kv, 16, hv);
		assert_null(strstr(last, hp));
		assert_null(strstr(last, hv));
	}
	secret_wipe(kp, sizeof(kp));
}

/* The command: packages from its command line refused (exit 2), a card
 * not in the SMS refused (exit 1), a good one issued from the SMS. */
static void test_cli(void **state)
{
	struct fx *f = *state;
	const char *bin = getenv("CASTELLAN_BIN");
	char *db = strdup(f->db);

	if (!bin) {
		free(db);
		skip();
	}
	assert_int_equal(keystore_save(f->ks, fpath(f, "ks"), "provision test pass 2026"), 0);
	assert_int_equal(tu_run("CASTELLAN_PASSPHRASE='provision test pass 2026' %s provision --db '%s' --keystore %s "
		"--card 2100000001 --packages 00000003 --start 1 --finish 2000000000 --out %s 2>/dev/null", bin, db,
		fpath(f, "ks"), fpath(f, "cli.json")), 2);
	assert_int_equal(tu_run("CASTELLAN_PASSPHRASE='provision test pass 2026' %s provision --db '%s' --keystore %s "
		"--card 2100000001 --finish 2000000000 --emm-out %s 2>/dev/null", bin, db, fpath(f, "ks"),
		fpath(f, "cli.hex")), 2);
	assert_int_equal(tu_run("CASTELLAN_PASSPHRASE='provision test pass 2026' %s provision --db '%s' --keystore %s "
		"--card 2100000099 --out %s 2>&1 | grep -q 'not in the SMS'", bin, db, fpath(f, "ks"),
		fpath(f, "cli.json")), 0);
	assert_int_equal(access(fpath(f, "cli.json"), F_OK), -1);
	assert_int_equal(access(fpath(f, "cli.hex"), F_OK), -1);
	assert_int_equal(tu_run("CASTELLAN_PASSPHRASE='provision test pass 2026' %s provision --db '%s' --keystore %s "
		"--card 2100000001 --out %s | grep -q 'from the SMS'", bin, db, fpath(f, "ks"), fpath(f, "cli.json")), 0);
	assert_int_equal(tu_run("%s provision --help | grep -q -- --db", bin), 0);
	assert_int_equal(tu_run("%s provision --help | grep -q -- --packages", bin), 1);
	free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grants_the_sms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
	};

	(void)tdb_fingerprint; /* sms_testdb.h's, not needed here */
	(void)tdb_open_fresh;
	return tdb_run_both("provision", tests, sizeof(tests) / sizeof(tests[0]));
}
