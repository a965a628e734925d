/*
 * test_demo_audit.c - `castellan demo-audit` (src/cli/demo_audit.c) run as
 * an auditor runs it: every Schedule III item (A.1-A.13, B.1-B.12,
 * C.1-C.6) gets exactly one verdict in its --json file, the exit status
 * follows the FAILs, and the items whose features are built PASS on the
 * demo stream (a broken audit log check, reconcile, blacklist, pairing,
 * reports, box, or a fingerprint/message that does not reach the box's
 * report JSON intact turns its item to FAIL and this test with it: B.1 if
 * the repeats are not --repeat times --interval apart on the looped demo
 * stream, B.6 if a screen state of box B2 or its not-entitled service
 * lacks the fingerprint); the items not built stay FAIL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "testutil.h"

static const char *verdict_of(json_t *items, const char *id, int *count)
{
	const char *v = NULL;
	json_t *it;
	size_t i;

	*count = 0;
	json_array_foreach(items, i, it) {
		if (strcmp(json_string_value(json_object_get(it, "id")), id) == 0) {
			v = json_string_value(json_object_get(it, "verdict"));
			(*count)++;
		}
	}
	return v;
}

static void test_demo_audit(void **st)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char dir[] = "/tmp/test-demo-audit-XXXXXX", json[128], id[8];
	static const char *const must_pass[] = { "A.1", "A.2", "A.3", "A.4", "A.5", "A.6", "A.9", "A.10", "A.11",
		"A.12", "B.1", "B.2", "B.4", "B.5", "B.6", "B.7", "B.8", "B.9", "B.10", "B.11", "B.12", "C.1", "C.2",
		"C.3", "C.4", "C.6" };
	static const char *const skipped[] = { "A.7", "A.8", "B.3", "C.5" };
	/* not built or not shown by the demo run: must stay FAIL, not be claimed */
	static const char *const must_fail[] = { "A.13" };
	json_error_t e;
	json_t *doc, *items;
	int rc, count, fails = 0;

	(void)st;
	if (!bin)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(json, sizeof(json), "%s/audit.json", dir);
	rc = tu_run("'%s' demo-audit --input '%s' --json '%s' > '%s/out.txt' 2>&1", bin, tu_testdata("ts-clear-2svc.ts"),
		json, dir);
	doc = json_load_file(json, 0, &e);
	if (!doc)
		tu_run("cat '%s/out.txt'", dir);
	assert_non_null(doc);
	items = json_object_get(doc, "items");
	assert_int_equal(json_array_size(items), 13 + 12 + 6);
	for (int part = 0; part < 3; part++) {
		int n = part == 0 ? 13 : part == 1 ? 12 : 6;

		for (int k = 1; k <= n; k++) {
			const char *v;

			snprintf(id, sizeof(id), "%c.%d", "ABC"[part], k);
			v = verdict_of(items, id, &count);
			if (count != 1 || !v)
				fail_msg("item %s: %d verdicts", id, count);
			assert_true(strcmp(v, "PASS") == 0 || strcmp(v, "FAIL") == 0 || strcmp(v, "SKIP") == 0);
			fails += strcmp(v, "FAIL") == 0;
		}
	}
	for (size_t i = 0; i < sizeof(must_pass) / sizeof(must_pass[0]); i++) {
		const char *v = verdict_of(items, must_pass[i], &count);

		if (strcmp(v, "PASS") != 0) {
			tu_run("cat '%s/out.txt'", dir);
			fail_msg("%s: %s", must_pass[i], v);
		}
	}
	for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
		assert_string_equal(verdict_of(items, skipped[i], &count), "SKIP");
	for (size_t i = 0; i < sizeof(must_fail) / sizeof(must_fail[0]); i++)
		assert_string_equal(verdict_of(items, must_fail[i], &count), "FAIL");
	assert_int_equal(json_integer_value(json_object_get(doc, "fail")), fails);
	/* exit 1 while any item fails, 0 when none does */
	assert_int_equal(rc, fails ? 1 : 0);
	json_decref(doc);
	/* a usage error */
	assert_int_equal(tu_run("'%s' demo-audit --bogus >/dev/null 2>&1", bin), 2);
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_audit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
