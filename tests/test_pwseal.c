/*
 * test_pwseal.c - lib/pwseal (passphrase-sealed files, AES-256-GCM, scrypt)
 * and cur_bytes_max, with the callers they replaced code in: files written
 * by the code before the merge (tests/data/pwseal/, made by `castellan keys
 * init` and `castellan kms init --scrypt-log2n 10`, passphrase "golden pass")
 * must still open, and parsers with a length from the input must stay inside
 * their buffers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "cas/keys.h"
#include "cas/cert.h"
#include "kms/kms.h"
#include "cas/module.h"
#include "lib/cursor.h"
#include "crypto/pwseal.h"
#include "lib/util.h"

#define GOLDEN_PASS "golden pass"

static void test_golden_keystore(void **state)
{
	size_t len = 0;
	uint8_t *f = tu_read(tu_testdata("pwseal/keystore.bin"), &len);
	struct keystore *ks = NULL;
	char fp[17];

	(void)state;
	assert_non_null(f);
	assert_int_equal(len, KEYSTORE_FILE_BYTES);
	assert_int_equal(keystore_decode(f, len, GOLDEN_PASS, &ks), 0);
	assert_int_equal(keystore_ca_system_id(ks), 0x4ADC);
	assert_int_equal(keystore_epoch_seconds(ks), 604800);
	keystore_fingerprint(ks, fp);
	assert_string_equal(fp, "418a4c979491a02e");
	keystore_free(ks);
	assert_int_equal(keystore_decode(f, len, "golden pasS", &ks), CE_PASSPHRASE);
	f[50] ^= 1; /* ciphertext */
	assert_int_equal(keystore_decode(f, len, GOLDEN_PASS, &ks), CE_PASSPHRASE);
	f[50] ^= 1;
	f[20] ^= 1; /* salt (AAD and KDF input) */
	assert_int_equal(keystore_decode(f, len, GOLDEN_PASS, &ks), CE_PASSPHRASE);
	f[20] ^= 1;
	f[8] = 30; /* log2(N) out of bounds: refused before scrypt runs */
	assert_int_equal(keystore_decode(f, len, GOLDEN_PASS, &ks), CE_FORMAT);
	assert_null(ks);
	free(f);
}

static void test_golden_kms_wrap(void **state)
{
	size_t len = 0, n = 0;
	uint8_t *f = tu_read(tu_testdata("pwseal/master.key"), &len);
	uint8_t sec[64], small[16];

	(void)state;
	assert_non_null(f);
	assert_int_equal(len, PWSEAL_BYTES(2, 32));
	assert_memory_equal(f, "CSTLWRP1", 8);
	assert_int_equal(kms_wrap_decode(f, len, GOLDEN_PASS, sec, sizeof(sec), &n), 0);
	assert_int_equal(n, 32);
	assert_int_equal(kms_wrap_decode(f, len, "wrong", sec, sizeof(sec), &n), CE_PASSPHRASE);
	assert_int_equal(n, 0);
	assert_int_equal(kms_wrap_decode(f, len, GOLDEN_PASS, small, sizeof(small), &n), CE_RANGE);
	assert_int_equal(kms_wrap_decode(f, len - 1, GOLDEN_PASS, sec, sizeof(sec), &n), CE_FORMAT);
	f[46] ^= 1; /* declared length no longer matches the file */
	assert_int_equal(kms_wrap_decode(f, len, GOLDEN_PASS, sec, sizeof(sec), &n), CE_FORMAT);
	f[46] ^= 1;
	f[0] = 'X';
	assert_int_equal(kms_wrap_decode(f, len, GOLDEN_PASS, sec, sizeof(sec), &n), CE_FORMAT);
	free(f);
}

static void copy_file(const char *from, const char *dir, const char *name)
{
	char path[512];
	size_t len = 0;
	uint8_t *b = tu_read(from, &len);

	assert_non_null(b);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(file_write_atomic(path, b, len, 0600), 0);
	free(b);
}

/* The whole KMS directory written before the merge opens: wrapped master key,
 * AES-256-GCM state, audit anchor. */
static void test_golden_kms_dir(void **state)
{
	char dir[] = "/tmp/castellan-pwseal-XXXXXX", sub[600], hex[65];
	struct kms *k = NULL;
	uint8_t pub[32];

	(void)state;
	assert_non_null(mkdtemp(dir));
	copy_file(tu_testdata("pwseal/master.key"), dir, "master.key");
	copy_file(tu_testdata("pwseal/state.bin"), dir, "state.bin");
	copy_file(tu_testdata("pwseal/audit.log"), dir, "audit.log");
	snprintf(sub, sizeof(sub), "%s/orders", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(kms_open(dir, GOLDEN_PASS, &k), 0);
	kms_public_key(k, pub);
	hex_encode(pub, 32, hex);
	assert_string_equal(hex, "280221d9d943ad41480d88f794e932eac422292a24c41bc8d07abb2d3336843c");
	kms_close(k);
	assert_int_equal(kms_open(dir, "nope", &k), CE_PASSPHRASE);
	for (const char *const *n = (const char *const[]){ "master.key", "state.bin", "audit.log", NULL }; *n; n++) {
		snprintf(sub, sizeof(sub), "%s/%s", dir, *n);
		unlink(sub);
	}
	snprintf(sub, sizeof(sub), "%s/orders", dir);
	rmdir(sub);
	rmdir(dir);
}

static void test_pwseal_round_trip_and_bad_cases(void **state)
{
	const uint8_t plain[5] = { 1, 2, 3, 4, 5 }, ext[3] = { 0xE1, 0xE2, 0xE3 };
	uint8_t buf[PWSEAL_BYTES(3, 5)], back[5], small[PWSEAL_BYTES(3, 5) - 1];
	struct pwseal_view v;

	(void)state;
	assert_int_equal(pwseal_seal("TESTSEAL", 10, 8, 1, "pw", ext, 3, plain, 5, small, sizeof(small)), CE_OVERFLOW);
	assert_int_equal(pwseal_seal("TESTSEAL", 10, 8, 1, "", ext, 3, plain, 5, buf, sizeof(buf)), CE_ARG);
	assert_int_equal(pwseal_seal("TESTSEAL", 10, 8, 1, "pw", ext, 3, plain, 5, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, "TESTSEAL", 8);
	assert_int_equal(buf[8], 10);
	assert_int_equal(tu_be32(buf + 9), 8);
	assert_int_equal(tu_be32(buf + 13), 1);
	assert_memory_equal(buf + 45, ext, 3);
	assert_memory_not_equal(buf + 48, plain, 5);
	assert_int_equal(pwseal_parse(buf, sizeof(buf), "TESTSEAL", 3, &v), 0);
	assert_int_equal(v.log2n, 10);
	assert_int_equal(v.ct_len, 5);
	assert_int_equal(v.aad_len, 48);
	assert_ptr_equal(v.ext, buf + 45);
	assert_ptr_equal(v.tag, buf + 53);
	assert_int_equal(pwseal_open(buf, &v, "pw", back), 0);
	assert_memory_equal(back, plain, 5);
	assert_int_equal(pwseal_open(buf, &v, "pX", back), CE_PASSPHRASE);
	assert_memory_equal(back, (uint8_t[5]){ 0 }, 5); /* wiped on failure */

	/* Every byte is covered: header and ext by the AAD, salt through the
	 * key, the rest by the tag. */
	for (size_t i = 8; i < sizeof(buf); i++) {
		if (i == 8 || (i >= 9 && i < 17))
			continue; /* scrypt parameters: bounded by the caller */
		buf[i] ^= 0x80;
		assert_int_equal(pwseal_parse(buf, sizeof(buf), "TESTSEAL", 3, &v), 0);
		assert_int_equal(pwseal_open(buf, &v, "pw", back), CE_PASSPHRASE);
		buf[i] ^= 0x80;
	}
	/* Shape errors. */
	static const struct {
		size_t len, ext_len;
		const char *magic;
	} bad[] = {
		{ 0, 0, "TESTSEAL" },
		{ PWSEAL_BYTES(0, 0) - 1, 0, "TESTSEAL" },
		{ PWSEAL_BYTES(3, 0) - 1, 3, "TESTSEAL" },
		{ sizeof(buf), sizeof(buf) + 1, "TESTSEAL" },
		{ sizeof(buf), 3, "TESTSEAm" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pwseal_parse(buf, bad[i].len, bad[i].magic, bad[i].ext_len, &v), CE_FORMAT);
	/* Empty plaintext is allowed. */
	assert_int_equal(pwseal_seal("TESTSEAL", 10, 8, 1, "pw", NULL, 0, NULL, 0, buf, PWSEAL_BYTES(0, 0)), 0);
	assert_int_equal(pwseal_parse(buf, PWSEAL_BYTES(0, 0), "TESTSEAL", 0, &v), 0);
	assert_int_equal(v.ct_len, 0);
	assert_int_equal(pwseal_open(buf, &v, "pw", NULL), 0);
}

static void test_cur_bytes_max(void **state)
{
	const uint8_t in[6] = { 9, 8, 7, 6, 5, 4 };
	uint8_t dst[8];
	struct cur c;

	(void)state;
	/* a declared length over the destination: CE_RANGE, nothing past cap */
	memset(dst, 0xEE, sizeof(dst));
	cur_init(&c, in, sizeof(in));
	assert_int_equal(cur_bytes_max(&c, dst, 4, 6), CE_RANGE);
	assert_memory_equal(dst, ((uint8_t[8]){ 0, 0, 0, 0, 0xEE, 0xEE, 0xEE, 0xEE }), 8);
	assert_int_equal(cur_end(&c), CE_RANGE);
	/* truncated input: zeroes only the n (<= cap) bytes asked for */
	memset(dst, 0xEE, sizeof(dst));
	cur_init(&c, in, 2);
	assert_int_equal(cur_bytes_max(&c, dst, 4, 3), CE_TRUNCATED);
	assert_memory_equal(dst, ((uint8_t[8]){ 0, 0, 0, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE }), 8);
	/* a sticky earlier error: still within cap */
	memset(dst, 0xEE, sizeof(dst));
	assert_int_equal(cur_bytes_max(&c, dst, 2, 200), CE_TRUNCATED);
	assert_memory_equal(dst, ((uint8_t[8]){ 0, 0, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE }), 8);
	/* fits */
	cur_init(&c, in, sizeof(in));
	assert_int_equal(cur_bytes_max(&c, dst, sizeof(dst), 6), 0);
	assert_memory_equal(dst, in, 6);
	assert_int_equal(cur_end(&c), 0);
}

/* Callers that read a length from the input and copy into a fixed field. */
static void test_length_from_input_callers(void **state)
{
	uint8_t buf[600];
	struct module_payload mp;
	struct cert ce;

	(void)state;
	/* module payload: kind | vendor u32 | ca u16 | L | name[L]; L = 255 > 128 */
	memset(buf, 'a', sizeof(buf));
	buf[0] = MODULE_KIND_LADDER;
	memset(buf + 1, 0, 6);
	for (unsigned l = MODULE_MAX_NAME + 1; l <= 255; l += 63) {
		buf[7] = (uint8_t)l;
		assert_int_equal(module_payload_parse(buf, 8 + l, &mp), CE_RANGE);  /* long enough */
		assert_int_equal(module_payload_parse(buf, 8 + 10, &mp), CE_RANGE); /* and short */
		assert_int_equal(mp.keys_file[0], '\0');
	}
	buf[7] = 0;
	assert_int_equal(module_payload_parse(buf, 8, &mp), CE_RANGE);
	buf[7] = 3;
	assert_int_equal(module_payload_parse(buf, 8 + 3, &mp), 0);
	assert_string_equal(mp.keys_file, "aaa");
	buf[7] = 4;
	assert_int_equal(module_payload_parse(buf, 8 + 3, &mp), CE_TRUNCATED);

	/* certificate: ... | name length u8 at offset 98 | name | sig[64] */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "CSTLCERT", 8);
	buf[98] = 255;
	assert_int_equal(cert_parse(buf, 99 + 255 + 64, &ce), CE_FORMAT);
	assert_int_equal(cert_parse(buf, 99 + 10, &ce), CE_FORMAT);
	assert_int_equal(ce.name[0], '\0');
	buf[98] = CERT_NAME_MAX + 1;
	assert_int_equal(cert_parse(buf, 99 + CERT_NAME_MAX + 1 + 64, &ce), CE_FORMAT);
	buf[98] = 0;
	assert_int_equal(cert_parse(buf, 99 + 64, &ce), CE_FORMAT);
}

static void test_hex_digit(void **state)
{
	(void)state;
	assert_int_equal(hex_digit('0'), 0);
	assert_int_equal(hex_digit('9'), 9);
	assert_int_equal(hex_digit('a'), 10);
	assert_int_equal(hex_digit('F'), 15);
	assert_int_equal(hex_digit('g'), -1);
	assert_int_equal(hex_digit('/'), -1);
	assert_int_equal(hex_digit('\0'), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_keystore),
		cmocka_unit_test(test_golden_kms_wrap),
		cmocka_unit_test(test_golden_kms_dir),
		cmocka_unit_test(test_pwseal_round_trip_and_bad_cases),
		cmocka_unit_test(test_cur_bytes_max),
		cmocka_unit_test(test_length_from_input_callers),
		cmocka_unit_test(test_hex_digit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
