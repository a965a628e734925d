/*
 * test_demo_replace.c - `castellan-demo replace` (issue 4 item 6) judged by
 * its results: the summary (B's module installed over the air, a
 * crypto-period handled by A then B, no scrambled packet left in either
 * stretch, no ECM of A after A is off, B's ECMs accepted) and the box's
 * output after A is off, judged again here against the clear input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "e2e.h"

static json_int_t num(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(json_object_get(o, a), b);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void test_demo_replace(void **state)
{
	struct e2e e;
	json_t *sum = NULL, *row;
	struct e2e_ts clear, scr, box;
	struct e2e_judge j;
	char path[1024];
	size_t i;
	bool switched = false;

	(void)state;
	assert_int_equal(e2e_init(&e, "castellan-tdemo-replace", NULL, NULL), 0);
	assert_int_equal(e2e_demo(&e, "replace", NULL, &sum), 0);
	assert_non_null(sum);
	assert_true(json_is_true(json_object_get(sum, "ok")));
	assert_true(json_is_integer(json_object_get(sum, "switch_packet")));
	json_array_foreach(json_object_get(sum, "cps"), i, row)
		if (strcmp(json_string_value(json_object_get(row, "client")), "A->B") == 0)
			switched = true;
	assert_true(switched);
	assert_true(num(sum, "simulcrypt", "scrambled") > 0);
	assert_int_equal(num(sum, "simulcrypt", "undescrambled"), 0);
	assert_true(num(sum, "b_only", "scrambled") > 0);
	assert_int_equal(num(sum, "b_only", "undescrambled"), 0);
	assert_int_equal(num(sum, "ecm", "a_sections_after_off"), 0);
	assert_true(num(sum, "ecm", "b_only_accepted") > 0);
	json_decref(sum);

	/* after A off: every scrambled packet back, none left, none wrong */
	assert_int_equal(e2e_ts_load(tu_testdata("ts-clear-2svc.ts"), &clear), 0);
	assert_int_equal(e2e_ts_load(e2e_path(&e, "scrambled-B.ts", path, sizeof(path)), &scr), 0);
	assert_int_equal(e2e_ts_load(e2e_path(&e, "box-B.ts", path, sizeof(path)), &box), 0);
	assert_int_equal(e2e_judge(&clear, &scr, &box, NULL, 0, &j), 0);
	assert_true(j.scrambled > 0);
	assert_int_equal(j.right, j.scrambled);
	e2e_ts_free(&clear);
	e2e_ts_free(&scr);
	e2e_ts_free(&box);
	e2e_finish(&e, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_replace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
