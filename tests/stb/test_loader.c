/*
 * test_loader.c - signed modules and the box loader: a good module runs
 * (ECMs open through the chip under its vendor), and every refusal of the
 * issue is tested against a real chip process and a real state directory:
 * tampering, wrong signer, untrusted root, revoked or expired certificate,
 * rollback (also across a reboot), a module whose client cannot start, and
 * a table of malformed modules.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/bytes.h"
#include "testutil.h"
#include "cas/ecm.h"
#include "cas/entitlement.h"
#include "cas/keys.h"
#include "cas/cert.h"
#include "crypto/kdf.h"
#include "cas/module.h"
#include "crypto/pk.h"
#include "lib/cursor.h"
#include "stb/chip.h"
#include "client/loader.h"

#define CASID 0x4AE1
#define VENDOR 0x00000A01u
#define T0_S 1700000000ull

struct world {
	char dir[256];
	uint8_t ta_priv[32], ta_pub[32], op_priv[32], op_pub[32];
	uint8_t cert[CERT_MAX_BYTES];
	size_t cert_len;
	struct chip_otp otp;
	struct chip_link *ctl, *host;
	pid_t pid;
	struct keystore *ks;
	uint64_t now_ms;
	struct loader *l;
};

static uint64_t clock_fn(void *ctx)
{
	return ((struct world *)ctx)->now_ms;
}

static void make_cert(const uint8_t ta_priv[32], const uint8_t sub_pub[32], uint64_t serial, uint64_t nb,
	uint64_t na, uint8_t *out, size_t *len)
{
	struct cert c;

	memset(&c, 0, sizeof(c));
	c.role = CERT_ROLE_OPERATOR;
	c.serial = serial;
	c.not_before = nb;
	c.not_after = na;
	memcpy(c.subject_pub, sub_pub, 32);
	snprintf(c.name, sizeof(c.name), "operator %llu", (unsigned long long)serial);
	assert_int_equal(cert_sign(&c, ta_priv, out, len), 0);
}

static void write_keys(struct world *w, const char *name, uint32_t vendor)
{
	static struct entitlement e;
	char path[512];
	uint8_t kv[16];

	memset(&e, 0, sizeof(e));
	e.ca_system_id = CASID;
	e.card_serial = 2100000001ull;
	e.packages = 1;
	e.start_s = T0_S - 3600;
	e.finish_s = T0_S + 3600;
	assert_int_equal(entitlement_issue(w->ks, &e), 0);
	assert_int_equal(kms_vendor_key(w->otp.root, vendor, kv), 0);
	for (size_t i = 0; i < e.nkeys; i++)
		assert_int_equal(chip_protect_key(kv, e.keys[i].key), 0);
	snprintf(path, sizeof(path), "%s/%s", w->dir, name);
	unlink(path);
	assert_int_equal(entitlement_save(&e, path), 0);
	entitlement_wipe(&e);
}

static uint8_t *make_module(struct world *w, uint32_t vendor, uint32_t version, uint32_t rollback,
	const char *keys, const uint8_t *op_priv, const uint8_t *cert, size_t cert_len, const uint8_t *ta_pub,
	size_t *len)
{
	struct module_manifest m = { .vendor_id = vendor, .version = version, .rollback = rollback };
	struct module_payload p = { .kind = MODULE_KIND_LADDER, .vendor_id = vendor, .ca_system_id = CASID };
	uint8_t pl[256], *out = NULL;
	size_t pl_len;

	snprintf(p.keys_file, sizeof(p.keys_file), "%s", keys);
	assert_int_equal(module_payload_encode(&p, pl, sizeof(pl), &pl_len), 0);
	assert_int_equal(module_sign(&m, pl, pl_len, ta_pub ? ta_pub : w->ta_pub, cert ? cert : w->cert,
		cert ? cert_len : w->cert_len, op_priv ? op_priv : w->op_priv, &out, len), 0);
	return out;
}

static int setup(void **state)
{
	static struct world w;

	memset(&w, 0, sizeof(w));
	snprintf(w.dir, sizeof(w.dir), "/tmp/castellan-loader-%d", (int)getpid());
	assert_int_equal(system("true"), 0);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w.dir);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(mkdir(w.dir, 0700), 0);
	assert_int_equal(pk_ed25519_generate(w.ta_priv, w.ta_pub), 0);
	assert_int_equal(pk_ed25519_generate(w.op_priv, w.op_pub), 0);
	make_cert(w.ta_priv, w.op_pub, 7, T0_S - 86400, T0_S + 86400 * 365, w.cert, &w.cert_len);
	w.otp.chip_id = 0x1122334455667788ull;
	for (int i = 0; i < 16; i++)
		w.otp.root[i] = (uint8_t)(i * 13 + 1);
	pk_hash(w.ta_pub, w.otp.trust_root_hash);
	assert_int_equal(chip_spawn(&w.otp, &w.ctl, &w.host, &w.pid), 0);
	assert_int_equal(keystore_generate(CASID, 3600, &w.ks), 0);
	w.now_ms = T0_S * 1000u;
	write_keys(&w, "keys-a.json", VENDOR);
	assert_int_equal(loader_open(w.dir, w.ctl, clock_fn, &w, &w.l), 0);
	*state = &w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char cmd[300];

	loader_free(w->l);
	chip_link_free(w->ctl);
	chip_link_free(w->host);
	assert_int_equal(chip_wait(w->pid), 0);
	keystore_free(w->ks);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
	assert_int_equal(system(cmd), 0);
	secret_wipe(w->ta_priv, 32);
	secret_wipe(w->op_priv, 32);
	chip_otp_wipe(&w->otp);
	return 0;
}

/* An ECM for package 0 opens through the running module and the chip. */
static int run_ecm(struct world *w, struct cas_client *cl)
{
	struct ecm_params p;
	struct cas_host h;
	uint8_t sec[ECM_MAX_SECTION];
	size_t len;
	int r;

	memset(&p, 0, sizeof(p));
	p.alg = CW_ALG_CSA2;
	p.ecm_id = 9;
	p.ca_system_id = CASID;
	p.timestamp_ms = w->now_ms;
	p.epoch = (uint32_t)(w->now_ms / 1000u / 3600u);
	p.ac_len = 4;
	put_be32(p.ac, 1);
	p.cw_mask = ECM_HAS_EVEN;
	memset(p.cw_even, 0x42, 8);
	assert_int_equal(ecm_build(w->ks, &p, sec, sizeof(sec), &len), 0);
	chip_link_host(w->host, clock_fn, w, &h);
	r = cl->ops->ecm(cl->self, &h, 1, sec, len);
	w->now_ms += 1000;
	return r;
}

static void test_install_and_refusals(void **state)
{
	struct world *w = *state;
	struct module_manifest m;
	uint8_t *mod, *bad, other_priv[32], other_pub[32], cert2[CERT_MAX_BYTES];
	size_t len, blen, cert2_len;

	assert_null(loader_client(w->l));
	assert_int_equal(loader_active(w->l, &m), CE_NOT_FOUND);
	mod = make_module(w, VENDOR, 1, 1, "keys-a.json", NULL, NULL, 0, NULL, &len);
	assert_int_equal(loader_install(w->l, mod, len), 0);
	assert_int_equal(loader_active(w->l, &m), 0);
	assert_int_equal(m.version, 1);
	assert_non_null(loader_client(w->l));
	assert_int_equal(run_ecm(w, loader_client(w->l)), 0);
	assert_int_equal(loader_rollback(w->l, VENDOR), 1);

	/* tampering: any byte of payload, manifest, certificate or signature */
	{
		static const size_t at[] = { 0, 9, 15, 19, 30, 58, 100, 150 };

		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			uint8_t *t = malloc(len);

			memcpy(t, mod, len);
			t[at[i] < len ? at[i] : len - 1] ^= 0x04;
			assert_int_not_equal(loader_install(w->l, t, len), 0);
			t[len - 1 - i] ^= 0x80; /* and the signature end */
			assert_int_not_equal(loader_install(w->l, t, len), 0);
			free(t);
		}
		bad = malloc(len);
		memcpy(bad, mod, len);
		bad[len - 1] ^= 1;
		assert_int_equal(loader_install(w->l, bad, len), CE_MAC);
		free(bad);
	}
	/* wrong signer: signed by a key the certificate does not name */
	assert_int_equal(pk_ed25519_generate(other_priv, other_pub), 0);
	bad = make_module(w, VENDOR, 2, 2, "keys-a.json", other_priv, NULL, 0, NULL, &blen);
	assert_int_equal(loader_install(w->l, bad, blen), CE_MAC);
	free(bad);
	/* a certificate from another trust authority (self-made) */
	make_cert(other_priv, other_pub, 8, T0_S - 10, T0_S + 86400, cert2, &cert2_len);
	bad = make_module(w, VENDOR, 2, 2, "keys-a.json", other_priv, cert2, cert2_len, other_pub, &blen);
	assert_int_equal(loader_install(w->l, bad, blen), CE_MAC);
	free(bad);
	bad = make_module(w, VENDOR, 2, 2, "keys-a.json", other_priv, cert2, cert2_len, NULL, &blen);
	assert_int_equal(loader_install(w->l, bad, blen), CE_MAC);
	free(bad);
	/* expired operator certificate */
	make_cert(w->ta_priv, w->op_pub, 9, T0_S - 86400, T0_S - 10, cert2, &cert2_len);
	bad = make_module(w, VENDOR, 2, 2, "keys-a.json", NULL, cert2, cert2_len, NULL, &blen);
	assert_int_equal(loader_install(w->l, bad, blen), CE_EXPIRED);
	free(bad);
	/* a good signature, but its client cannot start: the last good stays */
	bad = make_module(w, VENDOR, 2, 2, "missing.json", NULL, NULL, 0, NULL, &blen);
	assert_int_equal(loader_install(w->l, bad, blen), CE_NOT_FOUND);
	free(bad);

	/* after every refusal the first module still runs, counter unchanged */
	assert_int_equal(loader_active(w->l, &m), 0);
	assert_int_equal(m.version, 1);
	assert_int_equal(loader_rollback(w->l, VENDOR), 1);
	assert_int_equal(run_ecm(w, loader_client(w->l)), 0);
	secret_wipe(other_priv, 32);
	free(mod);
}

static void test_rollback_and_reboot(void **state)
{
	struct world *w = *state;
	struct module_manifest m;
	uint8_t *m1, *m3, *m2;
	size_t l1, l3, l2;

	m1 = make_module(w, VENDOR, 10, 1, "keys-a.json", NULL, NULL, 0, NULL, &l1);
	m3 = make_module(w, VENDOR, 30, 3, "keys-a.json", NULL, NULL, 0, NULL, &l3);
	m2 = make_module(w, VENDOR, 20, 2, "keys-a.json", NULL, NULL, 0, NULL, &l2);
	assert_int_equal(loader_install(w->l, m1, l1), 0);
	assert_int_equal(loader_install(w->l, m3, l3), 0);
	assert_int_equal(loader_install(w->l, m2, l2), CE_REPLAY);
	assert_int_equal(loader_install(w->l, m1, l1), CE_REPLAY);
	assert_int_equal(loader_install(w->l, m3, l3), 0); /* same counter: re-install is fine */

	/* power cycle: a new chip process, a new loader on the same state */
	loader_free(w->l);
	chip_link_free(w->ctl);
	chip_link_free(w->host);
	assert_int_equal(chip_wait(w->pid), 0);
	assert_int_equal(chip_spawn(&w->otp, &w->ctl, &w->host, &w->pid), 0);
	assert_int_equal(loader_open(w->dir, w->ctl, clock_fn, w, &w->l), 0);
	assert_int_equal(loader_rollback(w->l, VENDOR), 3);
	assert_int_equal(loader_boot(w->l, VENDOR), 0);
	assert_int_equal(loader_active(w->l, &m), 0);
	assert_int_equal(m.version, 30);
	assert_int_equal(run_ecm(w, loader_client(w->l)), 0);
	assert_int_equal(loader_install(w->l, m2, l2), CE_REPLAY);

	/* the stored module altered at rest: boot refuses it */
	{
		char path[512];
		uint8_t *buf;
		size_t n;

		snprintf(path, sizeof(path), "%s/module-%08x.bin", w->dir, VENDOR);
		buf = tu_read(path, &n);
		buf[20] ^= 1;
		assert_int_equal(file_write_atomic(path, buf, n, 0600), 0);
		free(buf);
		assert_int_equal(loader_boot(w->l, VENDOR), CE_MAC);
		assert_int_equal(loader_boot(w->l, 0x0BADu), CE_NOT_FOUND);
	}
	free(m1);
	free(m2);
	free(m3);
}

static void test_revocation(void **state)
{
	struct world *w = *state;
	uint8_t *mod, *crl = NULL, *crl0 = NULL, other_priv[32], other_pub[32];
	size_t len, crl_len, crl0_len;
	uint64_t serials[] = { 3, 7 };

	mod = make_module(w, VENDOR, 1, 1, "keys-a.json", NULL, NULL, 0, NULL, &len);
	assert_int_equal(loader_install(w->l, mod, len), 0);
	assert_int_equal(crl_sign(w->ta_priv, 1, NULL, 0, &crl0, &crl0_len), 0);
	assert_int_equal(loader_install_crl(w->l, w->ta_pub, crl0, crl0_len), 0);
	assert_non_null(loader_client(w->l));
	/* a CRL from someone else's TA */
	assert_int_equal(pk_ed25519_generate(other_priv, other_pub), 0);
	assert_int_equal(crl_sign(other_priv, 5, serials, 2, &crl, &crl_len), 0);
	assert_int_equal(loader_install_crl(w->l, other_pub, crl, crl_len), CE_MAC);
	assert_int_equal(loader_install_crl(w->l, w->ta_pub, crl, crl_len), CE_MAC);
	free(crl);
	/* the real one revokes our operator (serial 7): the module stops */
	assert_int_equal(crl_sign(w->ta_priv, 2, serials, 2, &crl, &crl_len), 0);
	assert_int_equal(loader_install_crl(w->l, w->ta_pub, crl, crl_len), 0);
	assert_null(loader_client(w->l));
	assert_int_equal(loader_install(w->l, mod, len), CE_BLOCKED);
	/* an older CRL cannot un-revoke */
	assert_int_equal(loader_install_crl(w->l, w->ta_pub, crl0, crl0_len), CE_REPLAY);
	assert_int_equal(loader_install(w->l, mod, len), CE_BLOCKED);
	/* and the revocation survives a reopen */
	loader_free(w->l);
	assert_int_equal(loader_open(w->dir, w->ctl, clock_fn, w, &w->l), 0);
	assert_int_equal(loader_boot(w->l, VENDOR), CE_BLOCKED);
	free(crl);
	free(crl0);
	free(mod);
	secret_wipe(other_priv, 32);
}

static void test_module_bad_cases(void **state)
{
	struct world *w = *state;
	struct module_view v;
	struct module_payload p;
	uint8_t *mod, *t;
	size_t len;
	struct {
		const char *what;
		size_t at;    /* byte to set */
		int val;      /* -1: no change */
		long dlen;    /* length change */
		int want;
	} cases[] = {
		{ "empty", 0, -1, -100000, CE_TRUNCATED },
		{ "magic", 0, 'X', 0, CE_FORMAT },
		{ "format 2", 8, 2, 0, CE_UNSUPPORTED },
		{ "intact", 0, -1, 0, 0 },
		{ "payload length 0", 56, 0, 0, CE_RANGE },
		{ "payload length huge", 54, 0x7F, 0, CE_RANGE },
		{ "one byte short", 0, -1, -1, CE_TRUNCATED },
		{ "trailing byte", 0, -1, 1, CE_TRAILING },
	};

	mod = make_module(w, VENDOR, 1, 1, "keys-a.json", NULL, NULL, 0, NULL, &len);
	assert_int_equal(module_parse(mod, len, &v), 0);
	assert_int_equal(v.m.vendor_id, VENDOR);
	assert_int_equal(module_verify(mod, len, w->otp.trust_root_hash, T0_S, NULL, 0, &v, &p), 0);
	assert_string_equal(p.keys_file, "keys-a.json");
	assert_int_equal(p.ca_system_id, CASID);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].dlen < -(long)len ? 0 : (size_t)((long)len + cases[i].dlen);
		int r;

		t = calloc(1, len + 8);
		memcpy(t, mod, len);
		if (cases[i].val >= 0)
			t[cases[i].at] = (uint8_t)cases[i].val;
		r = module_parse(t, n, &v);
		if (r != cases[i].want)
			fail_msg("%s: got %d want %d", cases[i].what, r, cases[i].want);
		free(t);
	}
	/* payload table */
	{
		static const struct {
			const char *hex;
			int want;
		} pc[] = {
			{ "0100000a014ae1016b", 0 },
			{ "0200000a014ae1016b", CE_FORMAT },    /* unknown kind */
			{ "0100000a014ae1002f", CE_RANGE },     /* name length 0 */
			{ "0100000a014ae1012f", CE_FORMAT },    /* '/' in the name */
			{ "0100000a014ae1012e", CE_FORMAT },    /* "." */
			{ "0100000a014ae1026b", CE_TRUNCATED },
			{ "0100000a014ae1016b00", CE_TRAILING },
			{ "01", CE_TRUNCATED },
			/* fuzz/corpus/module/regress-payload-name-len-255: a name length
			 * over the buffer once made the zeroing of a failed read overflow */
			{ "0100003a0a0168e1ff6b6501", CE_RANGE },
		};
		for (size_t i = 0; i < sizeof(pc) / sizeof(pc[0]); i++) {
			uint8_t b[64];
			size_t n;

			assert_int_equal(hex_decode_var(pc[i].hex, b, sizeof(b), &n), 0);
			if (module_payload_parse(b, n, &p) != pc[i].want)
				fail_msg("payload case %zu", i);
		}
	}
	free(mod);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_install_and_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_and_reboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revocation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_module_bad_cases, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
