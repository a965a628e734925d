/*
 * test_panel_keys.c - the web panel's narrow access to the keystore
 * (headend/panel_keys.h, web/web.h struct web_keys): the epoch facts are the
 * keystore's, the personalization file opens with its passphrase to the
 * card's K_card, and bad values are refused; without a keystore there are
 * no services (the panel answers 404 no_keystore).
 */
#include "testutil.h"
#include "card/perso.h"
#include "cas/keys.h"
#include "headend/panel_keys.h"

static void test_panel_keys(void **state)
{
	struct keystore *ks = NULL;
	struct web_keys k;
	struct web_epochs ep;
	struct card_perso p;
	uint8_t file[WEB_PERSO_FILE_MAX], kc[CARD_KEY_BYTES];
	size_t len = 0;
	char fp[17];
	(void)state;

	headend_panel_keys(NULL, &k);
	assert_null(k.epochs);
	assert_null(k.perso);
	assert_int_equal(keystore_generate(0x4ADC, 3600, &ks), 0);
	headend_panel_keys(ks, &k);
	assert_non_null(k.epochs);
	assert_non_null(k.perso);
	assert_int_equal(k.epochs(k.ctx, 7200 + 5, &ep), 0);
	assert_int_equal(ep.ca_system_id, 0x4ADC);
	assert_int_equal(ep.epoch_seconds, 3600);
	assert_int_equal(ep.epoch, keystore_epoch_at(ks, 7200 + 5));
	keystore_fingerprint(ks, fp);
	assert_string_equal(ep.fingerprint, fp);
	/* a personalization file: opens with the passphrase, to this card */
	assert_int_equal(k.perso(k.ctx, 1234567, 4, 60, 600, "transport-pass", file, sizeof(file), &len), 0);
	assert_int_equal(len, CARD_PERSO_FILE_BYTES);
	assert_int_equal(card_perso_open(file, len, "transport-pass", &p), 0);
	assert_int_equal(p.serial, 1234567);
	assert_int_equal(p.ca_system_id, 0x4ADC);
	assert_int_equal(p.max_channels, 4);
	assert_int_equal(p.window_s, 60);
	assert_int_equal(p.block_s, 600);
	assert_int_equal(keystore_card_key(ks, 1234567, kc), 0);
	assert_memory_equal(p.k_card, kc, CARD_KEY_BYTES);
	assert_int_not_equal(card_perso_open(file, len, "other-pass!", &p), 0);
	/* refusals: no room, no passphrase */
	assert_int_equal(k.perso(k.ctx, 1, 0, 0, 0, "transport-pass", file, CARD_PERSO_FILE_BYTES - 1, &len), CE_ARG);
	assert_int_equal(len, 0);
	assert_int_equal(k.perso(k.ctx, 1, 0, 0, 0, NULL, file, sizeof(file), &len), CE_ARG);
	secret_wipe(&p, sizeof(p));
	secret_wipe(kc, sizeof(kc));
	keystore_free(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_panel_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
