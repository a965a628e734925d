/*
 * test_audit_file.c - the audit chain to and from files (sms/audit_file.h)
 * on SQLite: the CSV export (header, one row per entry, quoted fields, the
 * checkpoint rows, a range) and the checkpoint file: good lines match,
 * blank lines pass, a table of bad lines each refused with its number, a
 * checkpoint of another log found out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "crypto/pk.h"
#include "sms/audit_file.h"
#include "sms/store.h"

struct fx {
	char dir[64];
	struct sms_store *s;
	uint8_t priv[32], pub[32];
	char cp_line[300];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char uri[128];
	struct sms_card c = { .serial = 2100000001 };
	struct sms_audit_checkpoint cp;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/castellan-tauf-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(uri, sizeof(uri), "sqlite:%s/s.db", f->dir);
	assert_int_equal(sms_store_open(uri, &f->s), 0);
	assert_int_equal(sms_card_add(f->s, &c, "ops, \"J\""), 0); /* a comma and quotes: CSV quoting */
	c.serial = 2100000002;
	assert_int_equal(sms_card_add(f->s, &c, "test"), 0);
	assert_int_equal(pk_ed25519_generate(f->priv, f->pub), 0);
	assert_int_equal(sms_audit_checkpoint(f->s, f->priv, "test", true, &cp), 0);
	assert_int_equal(sms_audit_checkpoint_line(&cp, f->cp_line, sizeof(f->cp_line)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	sms_store_close(f->s);
	tu_run("rm -rf '%s'", f->dir);
	free(f);
	return 0;
}

static char *export_text(struct sms_store *s, int64_t from, int64_t to, bool json)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	assert_non_null(m);
	assert_int_equal(sms_audit_export(s, from, to, json, m), 0);
	assert_int_equal(fclose(m), 0);
	return text;
}

static size_t count(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_export(void **state)
{
	struct fx *f = *state;
	struct sms_audit_verify v;
	char *csv = export_text(f->s, 0, 0, false), *part;
	json_t *j;

	assert_int_equal(sms_audit_verify(f->s, f->pub, &v), 0);
	assert_int_equal(strncmp(csv, "record,seq,at_ms,who,action,object,details,snapshot,prev_hash,hash\n", 67), 0);
	assert_int_equal(count(csv, "\nentry,"), (size_t)v.entries);
	assert_int_equal(count(csv, "\ncheckpoint,"), 1);
	assert_non_null(strstr(csv, ",\"ops, \"\"J\"\"\",")); /* quoted, quotes doubled */
	/* a range: entries 2..2 only */
	part = export_text(f->s, 2, 2, false);
	assert_int_equal(count(part, "\nentry,"), 1);
	assert_non_null(strstr(part, "\nentry,2,"));
	free(part);
	free(csv);
	/* JSON: the same entries, the definitions an auditor needs */
	part = export_text(f->s, 0, 0, true);
	assert_non_null(j = json_loads(part, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(j, "format")), "castellan-audit-1");
	assert_int_equal(json_array_size(json_object_get(j, "entries")), (size_t)v.entries);
	assert_int_equal(json_array_size(json_object_get(j, "checkpoints")), 1);
	json_decref(j);
	free(part);
	assert_int_equal(sms_audit_export(f->s, -1, 0, false, stdout), CE_ARG);
}

static void test_checkpoint_file(void **state)
{
	struct fx *f = *state;
	struct sms_audit_verify v;
	size_t matched, bad;
	char buf[800];
	static const char *const bad_lines[] = {
		"x\n",
		"1 2 3\n",
		"1 1700000000000 00 0011223344556677 00\n",  /* hash too short */
	};

	/* the line, a blank line, the line again (a file appended twice) */
	snprintf(buf, sizeof(buf), "%s\n%s", f->cp_line, f->cp_line);
	assert_int_equal(sms_audit_verify(f->s, f->pub, &v), 0);
	assert_int_equal(sms_audit_check_file(f->s, (const uint8_t *)buf, strlen(buf), f->pub, &v, &matched, &bad), 0);
	assert_int_equal(matched, 2);
	assert_int_equal(v.bad_seq, 0);
	/* an empty file: nothing to match */
	assert_int_equal(sms_audit_check_file(f->s, (const uint8_t *)"", 0, f->pub, &v, &matched, &bad), 0);
	assert_int_equal(matched, 0);
	for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		snprintf(buf, sizeof(buf), "%s%s", f->cp_line, bad_lines[i]);
		assert_int_equal(sms_audit_verify(f->s, f->pub, &v), 0);
		assert_int_equal(sms_audit_check_file(f->s, (const uint8_t *)buf, strlen(buf), f->pub, &v, &matched, &bad),
			CE_FORMAT);
		assert_int_equal(bad, 2);
		assert_int_equal(matched, 1);
	}
	/* a line longer than any checkpoint, a NUL in a line */
	memset(buf, '1', 500);
	buf[500] = '\0';
	assert_int_equal(sms_audit_check_file(f->s, (const uint8_t *)buf, 500, f->pub, &v, &matched, &bad), CE_FORMAT);
	assert_int_equal(bad, 1);
	assert_int_equal(sms_audit_check_file(f->s, (const uint8_t *)"1\0002\n", 4, f->pub, &v, &matched, &bad),
		CE_FORMAT);
	assert_int_equal(bad, 1);
	/* a checkpoint whose hash is not the log's at that entry: the log is found out */
	{
		char *sp = strchr(strchr(f->cp_line, ' ') + 1, ' ') + 1; /* the hash */

		snprintf(buf, sizeof(buf), "%s", f->cp_line);
		buf[sp - f->cp_line] = buf[sp - f->cp_line] == '0' ? '1' : '0';
		assert_int_equal(sms_audit_verify(f->s, NULL, &v), 0);
		assert_int_equal(sms_audit_check_file(f->s, (const uint8_t *)buf, strlen(buf), NULL, &v, &matched, &bad), 0);
		assert_int_not_equal(v.bad_seq, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_export, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
