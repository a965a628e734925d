/*
 * test_perso_log2n.c - the personalization file's scrypt cost: log2n 15
 * (above OpenSSL's default 32 MiB scrypt memory cap) seals and opens, and
 * the file format is unchanged: a file sealed by card_perso_seal decrypts
 * with a key derived here directly from its header (scrypt N, r = 8, p = 1).
 */
#include <string.h>
#include <openssl/evp.h>
#include "testutil.h"
#include "card/perso.h"
#include "crypto/pwseal.h"

static void sample(struct card_perso *p)
{
	memset(p, 0, sizeof(*p));
	p->ca_system_id = 0x4AE1;
	p->serial = 2100000001ull;
	for (size_t i = 0; i < sizeof(p->k_card); i++)
		p->k_card[i] = (uint8_t)(0xA0 + i);
	p->max_channels = 2;
	p->window_s = 60;
	p->block_s = 600;
}

static void test_log2n_15_seals_and_opens(void **state)
{
	struct card_perso p, q;
	uint8_t file[CARD_PERSO_FILE_BYTES];

	(void)state;
	sample(&p);
	assert_int_equal(card_perso_seal(&p, "transport pass", 15, file), 0);
	assert_int_equal(file[8], 15);
	assert_int_equal(card_perso_open(file, sizeof(file), "transport pass", &q), 0);
	assert_int_equal(q.serial, p.serial);
	assert_int_equal(q.ca_system_id, p.ca_system_id);
	assert_memory_equal(q.k_card, p.k_card, sizeof(p.k_card));
	assert_int_equal(card_perso_open(file, sizeof(file), "wrong pass", &q), CE_MAC);
	/* still refused above the format's limit */
	assert_int_equal(card_perso_seal(&p, "transport pass", CARD_PERSO_MAX_LOG2N + 1, file), CE_RANGE);
}

/* Format unchanged: key = scrypt(pass, file[9..24], 2^file[8], 8, 1) with
 * OpenSSL directly, AES-256-GCM(nonce file[25..36], AAD file[0..38]). */
static void test_format_unchanged(void **state)
{
	struct card_perso p, q;
	uint8_t file[CARD_PERSO_FILE_BYTES], key[32], pt[CARD_PERSO_BYTES], want[CARD_PERSO_BYTES];
	const char *pass = "transport pass";

	(void)state;
	sample(&p);
	assert_int_equal(card_perso_seal(&p, pass, 12, file), 0);
	assert_memory_equal(file, "CSTLPF01", 8);
	assert_int_equal(EVP_PBE_scrypt(pass, strlen(pass), file + 9, 16, 1u << 12, 8, 1, 0, key, 32), 1);
	assert_int_equal(aes256_gcm(0, key, file + 25, file, 39, file + 39, CARD_PERSO_BYTES, pt, file + 75), 0);
	card_perso_encode(&p, want);
	assert_memory_equal(pt, want, sizeof(want));
	assert_int_equal(card_perso_open(file, sizeof(file), pass, &q), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_unchanged),
		cmocka_unit_test(test_log2n_15_seals_and_opens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
