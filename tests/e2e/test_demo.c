/*
 * test_demo.c - the README's demo (castellan-demo, scenario "scrambled")
 * judged by its results: exit status, its JSON summary, and the box
 * outputs it leaves, judged again here against the clear input with the
 * harness; the same with DVB-CISSA. Also the driver's option handling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "e2e.h"

static json_t *svc_of(json_t *sum, const char *box, size_t k)
{
	json_t *s = json_array_get(json_object_get(json_object_get(sum, "boxes"), box), k);

	assert_non_null(s);
	return s;
}

static void test_demo_scrambled(void **state)
{
	struct e2e e;
	json_t *sum = NULL, *live;
	struct e2e_ts clear, scr, box;
	struct e2e_svc svc[8];
	struct e2e_judge j;
	size_t n = 0;
	char path[1024];
	bool ok;

	(void)state;
	assert_int_equal(e2e_init(&e, "castellan-tdemo", NULL, NULL), 0);
	assert_int_equal(e2e_demo(&e, "scrambled", NULL, &sum), 0);
	assert_non_null(sum);
	assert_true(json_is_true(json_object_get(sum, "ok")));
	assert_string_equal(json_string_value(json_object_get(sum, "algo")), "csa2");
	/* box A: both services back; box B: the first, not the second */
	for (size_t k = 0; k < 2; k++) {
		assert_true(json_is_true(json_object_get(svc_of(sum, "A", k), "clear")));
		assert_int_equal(json_integer_value(json_object_get(svc_of(sum, "A", k), "package")), k + 1);
	}
	assert_true(json_is_true(json_object_get(svc_of(sum, "B", 0), "clear")));
	assert_true(json_is_true(json_object_get(svc_of(sum, "B", 1), "refused")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(svc_of(sum, "B", 1), "judge"), "wrong")), 0);
	/* over the air: box C started and stopped, never wrote a wrong packet */
	live = json_object_get(sum, "live");
	assert_true(json_is_number(json_object_get(live, "on_s")));
	assert_true(json_is_number(json_object_get(live, "off_s")));
	assert_int_equal(json_integer_value(json_object_get(live, "garbage")), 0);
	json_decref(sum);

	/* the files, judged here */
	assert_int_equal(e2e_ts_load(tu_testdata("ts-clear-2svc.ts"), &clear), 0);
	assert_int_equal(e2e_services(&clear, 0, svc, 8, &n), 0);
	assert_int_equal(e2e_ts_load(e2e_path(&e, "scrambled.ts", path, sizeof(path)), &scr), 0);
	assert_int_equal(e2e_ts_load(e2e_path(&e, "boxA.ts", path, sizeof(path)), &box), 0);
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(e2e_judge(&clear, &scr, &box, svc[k].pids, svc[k].npids, &j), 0);
		assert_true(e2e_judge_clear(&j));
		assert_int_equal(j.right, j.scrambled);
	}
	e2e_ts_free(&box);
	assert_int_equal(e2e_ts_load(e2e_path(&e, "boxB.ts", path, sizeof(path)), &box), 0);
	assert_int_equal(e2e_judge(&clear, &scr, &box, svc[0].pids, svc[0].npids, &j), 0);
	assert_true(e2e_judge_clear(&j));
	assert_int_equal(e2e_judge(&clear, &scr, &box, svc[1].pids, svc[1].npids, &j), 0);
	ok = e2e_judge_refused(&j) && j.right == 0 && j.wrong == 0;
	assert_true(ok);
	e2e_ts_free(&box);
	e2e_ts_free(&scr);
	e2e_ts_free(&clear);
	e2e_finish(&e, true);
}

/* The same story with DVB-CISSA (README: `castellan-demo --algo cissa`). */
static void test_demo_cissa(void **state)
{
	struct e2e e;
	json_t *sum = NULL;
	char *extra[] = { "--algo", "cissa", NULL };

	(void)state;
	assert_int_equal(e2e_init(&e, "castellan-tdemo", NULL, NULL), 0);
	assert_int_equal(e2e_demo(&e, "scrambled", extra, &sum), 0);
	assert_non_null(sum);
	assert_true(json_is_true(json_object_get(sum, "ok")));
	assert_string_equal(json_string_value(json_object_get(sum, "algo")), "cissa");
	assert_true(json_is_true(json_object_get(svc_of(sum, "A", 1), "clear")));
	assert_true(json_is_true(json_object_get(svc_of(sum, "B", 1), "refused")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sum, "live"), "garbage")), 0);
	json_decref(sum);
	e2e_finish(&e, true);
}

/* The driver's options: usage errors are 2 and start nothing. */
static void test_demo_args(void **state)
{
	static const struct {
		const char *args;
		int status;
	} cases[] = {
		{ "--help", 0 },
		{ "card --help", 0 },
		{ "replace --help", 0 },
		{ "no-such-scenario", 2 },
		{ "--algo des", 2 },
		{ "--algo", 2 },
		{ "--cp-duration 0", 2 },
		{ "--cp-duration x", 2 },
		{ "--no-such-option", 2 },
		{ "card --algo cissa", 2 },       /* not a card option */
		{ "replace --no-pcsc", 2 },
		{ "scrambled --no-pcsc", 2 },
		{ "--dir /nonexistent-castellan-dir", 1 },
	};
	const char *demo = getenv("CASTELLAN_DEMO");

	(void)state;
	assert_non_null(demo);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = tu_run("'%s' %s >/dev/null 2>&1", demo, cases[i].args);

		if (st != cases[i].status)
			fprintf(stderr, "case %zu '%s': exit %d, want %d\n", i, cases[i].args, st, cases[i].status);
		assert_int_equal(st, cases[i].status);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_args),
		cmocka_unit_test(test_demo_scrambled),
		cmocka_unit_test(test_demo_cissa),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
