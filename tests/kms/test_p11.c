/*
 * test_p11.c - the KMS master key on a PKCS#11 token (src/kms/p11.c,
 * kms_init_p11), against a real SoftHSM2 token created in a temp dir
 * (SOFTHSM2_CONF -> a conf whose directories.tokendir is ours). Skipped,
 * with a message, only when SoftHSM2 is not installed.
 */
#include "testutil.h"
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kms/kms.h"
#include "kms/p11.h"
#include "crypto/pk.h"

#define SOFTHSM_UTIL "softhsm2-util"

struct tok {
	char dir[64];     /* temp dir: conf, tokens/, pin files, kms/ */
	char conf[128];
	char tokens[128];
	char kdir[128];
};

static bool softhsm_present(void)
{
	return access(P11_DEFAULT_MODULE, R_OK) == 0 && tu_run("command -v " SOFTHSM_UTIL " >/dev/null 2>&1") == 0;
}

/* A fresh token "castellan", user PIN 1234, SO PIN 5678, in a temp dir. */
static void tok_new(struct tok *t)
{
	char buf[512];
	int n;

	snprintf(t->dir, sizeof(t->dir), "/tmp/test_p11.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->conf, sizeof(t->conf), "%s/softhsm2.conf", t->dir);
	snprintf(t->tokens, sizeof(t->tokens), "%s/tokens", t->dir);
	snprintf(t->kdir, sizeof(t->kdir), "%s/kms", t->dir);
	assert_int_equal(mkdir(t->tokens, 0700), 0);
	n = snprintf(buf, sizeof(buf), "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		t->tokens);
	assert_int_equal(file_write_atomic(t->conf, buf, (size_t)n, 0600), 0);
	assert_int_equal(setenv("SOFTHSM2_CONF", t->conf, 1), 0);
	assert_int_equal(tu_run(SOFTHSM_UTIL " --init-token --free --label castellan --pin 1234 --so-pin 5678 >/dev/null"),
		0);
	snprintf(buf, sizeof(buf), "%s/pin", t->dir);
	assert_int_equal(file_write_atomic(buf, "1234\n", 5, 0600), 0);
	snprintf(buf, sizeof(buf), "%s/badpin", t->dir);
	assert_int_equal(file_write_atomic(buf, "4321\n", 5, 0600), 0);
}

static void tok_free(struct tok *t)
{
	assert_int_equal(tu_run("rm -rf '%s'", t->dir), 0);
	unsetenv("SOFTHSM2_CONF");
}

/* p11.c alone: login refusals, a token key that cannot be read, GCM on the
 * token round-trips and refuses any altered byte. */
static void p11_token_ops(void **state)
{
	struct p11_config cfg = {.pin = "1234"}, bad = cfg;
	static const uint8_t aad[] = "header";
	uint8_t id[P11_KEY_ID_BYTES], other[P11_KEY_ID_BYTES] = {0}, iv[P11_IV_BYTES] = {1, 2, 3};
	uint8_t mk[32], ct[48], back[32];
	struct p11 *p = NULL;
	struct tok t;
	(void)state;

	if (!softhsm_present()) {
		print_message("SKIP: SoftHSM2 not installed (apt-get install softhsm2)\n");
		skip();
	}
	tok_new(&t);
	bad.pin = "0000";
	assert_int_equal(p11_open(&bad, &p), CE_PASSPHRASE);
	assert_null(p);
	bad = cfg;
	bad.token = "no-such-token";
	assert_int_equal(p11_open(&bad, &p), CE_NOT_FOUND);
	bad = cfg;
	bad.module = "/nonexistent/libpkcs11.so";
	assert_int_equal(p11_open(&bad, &p), CE_NOT_FOUND);
	bad = cfg;
	bad.pin = NULL;
	assert_int_equal(p11_open(&bad, &p), CE_ARG);
	bad = cfg;
	bad.token = "a-label-longer-than-thirty-two-bytes";
	assert_int_equal(p11_open(&bad, &p), CE_ARG);

	assert_int_equal(p11_open(&cfg, &p), 0);
	assert_int_equal(p11_key_generate(p, "test key", id), 0);
	assert_int_equal(p11_key_check(p, id), 0);
	assert_int_equal(p11_key_check(p, other), CE_NOT_FOUND);
	for (size_t i = 0; i < 32; i++)
		mk[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(p11_gcm_encrypt(p, id, iv, aad, sizeof(aad), mk, 32, ct), 0);
	assert_memory_not_equal(ct, mk, 32);
	assert_int_equal(p11_gcm_decrypt(p, id, iv, aad, sizeof(aad), ct, 48, back), 0);
	assert_memory_equal(back, mk, 32);
	/* every single-bit change (ciphertext, tag, IV, AAD) is refused */
	for (size_t i = 0; i < 48; i += 5) {
		ct[i] ^= 0x01;
		assert_int_equal(p11_gcm_decrypt(p, id, iv, aad, sizeof(aad), ct, 48, back), CE_MAC);
		ct[i] ^= 0x01;
	}
	iv[11] ^= 1;
	assert_int_equal(p11_gcm_decrypt(p, id, iv, aad, sizeof(aad), ct, 48, back), CE_MAC);
	iv[11] ^= 1;
	assert_int_equal(p11_gcm_decrypt(p, id, iv, aad, sizeof(aad) - 1, ct, 48, back), CE_MAC);
	assert_int_equal(p11_gcm_decrypt(p, other, iv, aad, sizeof(aad), ct, 48, back), CE_NOT_FOUND);
	assert_int_equal(p11_gcm_decrypt(p, id, iv, aad, sizeof(aad), ct, 15, back), CE_ARG);
	assert_int_equal(p11_key_destroy(p, id), 0);
	assert_int_equal(p11_gcm_decrypt(p, id, iv, aad, sizeof(aad), ct, 48, back), CE_NOT_FOUND);
	p11_close(p);
	tok_free(&t);
}

/* The CLI end to end: init on the token, normal operations, and the
 * keystore on disk is useless without the token and its PIN. */
static void kms_on_token_cli(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	struct p11_config cfg = {.pin = "1234"};
	struct kms *k = NULL;
	uint8_t *mkf = NULL;
	size_t mkl = 0;
	char path[256];
	struct tok t;
	(void)state;

	if (!softhsm_present()) {
		print_message("SKIP: SoftHSM2 not installed (apt-get install softhsm2)\n");
		skip();
	}
	if (!bin)
		skip();
	tok_new(&t);
	/* init: no PIN -> refused; a PIN on argv is not an option */
	assert_int_equal(tu_run("env -u " P11_PIN_ENV " %s kms init --dir %s --pkcs11 2>/dev/null", bin, t.kdir), 1);
	assert_int_equal(tu_run("%s kms init --dir %s --pkcs11 --pin-file %s/badpin 2>/dev/null", bin, t.kdir, t.dir), 1);
	assert_int_equal(tu_run("%s kms init --dir %s --pkcs11 --pkcs11-token other --pin-file %s/pin 2>/dev/null", bin,
		t.kdir, t.dir), 1);
	assert_int_equal(tu_run("%s kms init --dir %s --pkcs11 --pin-file %s/pin > %s/init.txt", bin, t.kdir, t.dir,
		t.dir), 0);
	assert_int_equal(tu_run("grep -q 'signing key (Ed25519 public)' %s/init.txt", t.dir), 0);
	snprintf(path, sizeof(path), "%s/master.key", t.kdir);
	mkf = tu_read(path, &mkl);
	assert_memory_equal(mkf, "CSTLP11W", 8);
	assert_int_equal(mkl, 8 + 1 + 1 + 9 + 16 + 12 + 2 + 32 + 16);
	assert_memory_equal(mkf + 10, "castellan", 9);

	/* normal operations with the PIN from a file or the environment */
	assert_int_equal(tu_run("printf '0x2001\\n0x2002\\n0x2003\\n' > %s/chips.csv", t.dir), 0);
	assert_int_equal(tu_run("%s kms order import --dir %s --pin-file %s/pin %s/chips.csv >/dev/null", bin, t.kdir,
		t.dir, t.dir), 0);
	assert_int_equal(tu_run("%s kms keygen --type x25519 --out %s/v.key --pub %s/v.pub", bin, t.dir, t.dir), 0);
	assert_int_equal(tu_run(P11_PIN_ENV "=1234 %s kms vendor add --dir %s --id 0x4ADC --pub %s/v.pub >/dev/null", bin,
		t.kdir, t.dir), 0);
	assert_int_equal(tu_run("%s kms pub --dir %s --pin-file %s/pin --out %s/kms.pub >/dev/null", bin, t.kdir, t.dir,
		t.dir), 0);
	assert_int_equal(tu_run("%s kms audit verify --dir %s --pin-file %s/pin | grep -q 'anchor: intact'", bin, t.kdir,
		t.dir), 0);

	/* wrong PIN, no PIN, a passphrase instead: refused */
	assert_int_equal(tu_run("%s kms pub --dir %s --pin-file %s/badpin 2>/dev/null", bin, t.kdir, t.dir), 1);
	assert_int_equal(tu_run("env -u " P11_PIN_ENV " %s kms pub --dir %s 2>/dev/null", bin, t.kdir), 1);
	assert_int_equal(kms_open(t.kdir, "1234", &k), CE_UNSUPPORTED);
	cfg.pin = "4321";
	assert_int_equal(kms_open_p11(t.kdir, &cfg, &k), CE_PASSPHRASE);
	cfg.pin = "1234";
	assert_int_equal(kms_open_p11(t.kdir, &cfg, &k), 0);
	kms_close(k);
	k = NULL;

	/* token removed: refused; put back: works again */
	assert_int_equal(tu_run("mv %s %s.away && mkdir %s", t.tokens, t.tokens, t.tokens), 0);
	assert_int_equal(kms_open_p11(t.kdir, &cfg, &k), CE_NOT_FOUND);
	assert_int_equal(tu_run("%s kms pub --dir %s --pin-file %s/pin 2>/dev/null", bin, t.kdir, t.dir), 1);
	/* another token with the same label and PIN: the key is not there */
	assert_int_equal(tu_run(SOFTHSM_UTIL " --init-token --free --label castellan --pin 1234 --so-pin 5678 >/dev/null"),
		0);
	assert_int_equal(kms_open_p11(t.kdir, &cfg, &k), CE_NOT_FOUND);
	assert_int_equal(tu_run("rm -rf %s && mv %s.away %s", t.tokens, t.tokens, t.tokens), 0);
	assert_int_equal(tu_run("%s kms pub --dir %s --pin-file %s/pin >/dev/null", bin, t.kdir, t.dir), 0);

	/* an altered master.key is refused by the token's GCM */
	mkf[mkl - 20] ^= 0x01;
	assert_int_equal(file_write_atomic(path, mkf, mkl, 0600), 0);
	assert_int_equal(kms_open_p11(t.kdir, &cfg, &k), CE_MAC);
	mkf[mkl - 20] ^= 0x01;
	mkf[40] ^= 0x01; /* the IV */
	assert_int_equal(file_write_atomic(path, mkf, mkl, 0600), 0);
	assert_int_equal(kms_open_p11(t.kdir, &cfg, &k), CE_MAC);
	mkf[40] ^= 0x01;
	mkf[20] ^= 0x01; /* the key id: no such key on the token */
	assert_int_equal(file_write_atomic(path, mkf, mkl, 0600), 0);
	assert_int_equal(kms_open_p11(t.kdir, &cfg, &k), CE_NOT_FOUND);
	mkf[20] ^= 0x01;
	/* bad-input table for the token-wrapped master.key */
	{
		static const struct { size_t off; uint8_t val; size_t len_delta; int want; } bad[] = {
			{8, 2, 0, CE_UNSUPPORTED},  /* version */
			{9, 0, 0, CE_FORMAT},       /* label length 0 */
			{9, 33, 0, CE_FORMAT},      /* label length > 32 */
			{9, 200, 0, CE_FORMAT},     /* label runs past the end */
			{48, 31, 0, CE_FORMAT},     /* secret length != 32 (low byte of u16 at 47) */
			{0, 'X', 0, CE_FORMAT},     /* magic */
			{0, 'C', 1, CE_FORMAT},     /* one byte short */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			uint8_t b[256];
			memcpy(b, mkf, mkl);
			b[bad[i].off] = bad[i].val;
			assert_int_equal(file_write_atomic(path, b, mkl - bad[i].len_delta, 0600), 0);
			if (kms_open_p11(t.kdir, &cfg, &k) != bad[i].want)
				fail_msg("bad case %zu", i);
		}
		assert_int_equal(file_write_atomic(path, mkf, mkl, 0600), 0);
	}
	assert_int_equal(kms_open_p11(t.kdir, &cfg, &k), 0);
	kms_close(k);
	free(mkf);
	tok_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(p11_token_ops),
		cmocka_unit_test(kms_on_token_cli),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
