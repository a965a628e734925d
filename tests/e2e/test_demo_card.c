/*
 * test_demo_card.c - `castellan-demo card` judged by its results: the card
 * in-process (--no-pcsc, said in the summary), then through pcscd + vpcd
 * when the machine has them and we are root: service 101 back
 * bit-identical, 102 left scrambled and refused as not entitled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "e2e.h"
#include "card/pcscd_private.h"

static void check_summary(json_t *sum, bool pcsc)
{
	json_t *svcs = json_object_get(sum, "services");

	assert_true(json_is_true(json_object_get(sum, "ok")));
	assert_int_equal(json_is_true(json_object_get(sum, "pcsc")), pcsc);
	assert_int_equal(json_array_size(svcs), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(svcs, 0), "program")), 101);
	assert_true(json_is_true(json_object_get(json_array_get(svcs, 0), "clear")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(svcs, 1), "program")), 102);
	assert_true(json_is_true(json_object_get(json_array_get(svcs, 1), "refused")));
	assert_true(json_is_true(json_object_get(sum, "refused_not_entitled")));
}

static void test_demo_card_in_process(void **state)
{
	struct e2e e;
	json_t *sum = NULL;
	char *extra[] = { "--no-pcsc", NULL };

	(void)state;
	assert_int_equal(e2e_init(&e, "castellan-tdemo-card", NULL, NULL), 0);
	assert_int_equal(e2e_demo(&e, "card", extra, &sum), 0);
	assert_non_null(sum);
	check_summary(sum, false);
	assert_string_equal(json_string_value(json_object_get(sum, "why")), "--no-pcsc");
	json_decref(sum);
	e2e_finish(&e, true);
}

static void test_demo_card_pcsc(void **state)
{
	struct e2e e;
	json_t *sum = NULL;

	(void)state;
	if (!pcscd_available() || geteuid() != 0) {
		printf("SKIP (PC/SC part): pcscd / vsmartcard-vpcd not installed or not root\n");
		skip();
	}
	assert_int_equal(e2e_init(&e, "castellan-tdemo-card", NULL, NULL), 0);
	assert_int_equal(e2e_demo(&e, "card", NULL, &sum), 0);
	assert_non_null(sum);
	if (!json_is_true(json_object_get(sum, "pcsc")))
		fail_msg("demo card fell back to the in-process card: %s", json_string_value(json_object_get(sum, "why")));
	check_summary(sum, true);
	json_decref(sum);
	e2e_finish(&e, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_card_in_process),
		cmocka_unit_test(test_demo_card_pcsc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
