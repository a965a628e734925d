/*
 * test_secaudit.c - regressions for the security review's small fixes
 * (docs/security.md, "Review findings"):
 *  - a database URI's password never reaches a log or an error message
 *    (sms_store_uri_redact, `castellan sms --db` with a bad postgresql:// URI);
 *  - the web panel's users (password hashes) are in the SMS store, which
 *    is created owner-only (no separate users file any more).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "sms/store.h"
#include "web/auth.h"
#include "lib/err.h"
#include "testutil.h"

static void tmpdir(char *dir, size_t cap)
{
	snprintf(dir, cap, "/tmp/castellan-secaudit-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void rmdir_all(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_uri_redact(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "sqlite:/var/lib/castellan/sms.db", "sqlite:/var/lib/castellan/sms.db" },
		{ "/plain/path.db", "/plain/path.db" },
		{ "postgresql://cas@db.local/sms", "postgresql://cas@db.local/sms" },
		{ "postgresql://cas:hunter2@db.local:5432/sms", "postgresql://cas:***@db.local:5432/sms" },
		{ "postgres://cas:p%40ss@db/sms?sslmode=require", "postgres://cas:***@db/sms?sslmode=require" },
		{ "postgresql://cas:p@ss@db/sms", "postgresql://cas:***@db/sms" },
		{ "postgresql://db/sms?user=cas&password=hunter2&sslmode=require",
		  "postgresql://db/sms?user=cas&password=***&sslmode=require" },
		{ "postgres:host=db user=cas password=hunter2 dbname=sms",
		  "postgres:host=db user=cas password=*** dbname=sms" },
		{ "postgres:password = 'hun ter\\'2' dbname=sms", "postgres:password=*** dbname=sms" },
		{ "postgres:PASSWORD=x", "postgres:password=***" },
		{ "postgres:host=db", "postgres:host=db" },
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sms_store_uri_redact(cases[i].in, out, sizeof(out));
		assert_string_equal(out, cases[i].want);
		assert_null(strstr(out, "hunter2"));
	}
	/* cut, still terminated, and never the password even when cut */
	sms_store_uri_redact("postgresql://cas:hunter2@db/sms", out, 20);
	assert_int_equal(strlen(out), 19);
	assert_null(strstr(out, "hunter"));
	sms_store_uri_redact(NULL, out, sizeof(out));
	assert_string_equal(out, "");
	sms_store_uri_redact("x", out, 1);
	assert_string_equal(out, "");
}

/* The real CLI, with a URI that cannot connect: the error names the
 * database without its password. */
static void test_cli_db_error_hides_password(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char dir[64], cmd[1024], errf[128];
	uint8_t *text;
	size_t len;
	int st;

	(void)state;
	if (!bin || access(bin, X_OK) != 0)
		skip();
	tmpdir(dir, sizeof(dir));
	snprintf(errf, sizeof(errf), "%s/err.txt", dir);
	/* port 1 on 127.0.0.1: refused at once */
	snprintf(cmd, sizeof(cmd),
		 "'%s' sms --db 'postgresql://cas:S3cretPw@127.0.0.1:1/sms?connect_timeout=2' init --admin a "
		 ">/dev/null 2>'%s'",
		 bin, errf);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	text = tu_read(errf, &len);
	assert_non_null(text);
	{
		char *s = calloc(1, len + 1); /* tu_read's bytes are not terminated */

		assert_non_null(s);
		memcpy(s, text, len);
		assert_non_null(strstr(s, "cas:***@127.0.0.1:1"));
		assert_null(strstr(s, "S3cretPw"));
		free(s);
	}
	free(text);
	rmdir_all(dir);
}

static const struct web_kdf fast_kdf = { 1024, 1, 1 };

/* The panel's users (password hashes) live in the SMS store now (schema 6):
 * an SQLite store is owner-only as it is created, and the hashes are not
 * in any file of the data folder but the store. */
static void test_users_in_private_store(void **state)
{
	char dir[64], path[128];
	struct sms_store *s = NULL;
	struct web_users *u = NULL;
	struct stat st;

	(void)state;
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/sms.db", dir);
	umask(022);
	assert_int_equal(sms_store_open(path, &s), 0);
	assert_int_equal(web_users_open(s, &fast_kdf, &u), 0);
	assert_int_equal(web_user_add(u, "admin", "a-long-enough-password", WEB_ROLE_ADMIN), 0);
	web_users_close(u);
	sms_store_close(s);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0077, 0);
	snprintf(path, sizeof(path), "%s/web.db", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	/* no store: no users */
	assert_int_equal(web_users_open(NULL, &fast_kdf, &u), CE_ARG);
	assert_null(u);
	rmdir_all(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_redact),
		cmocka_unit_test(test_cli_db_error_hides_password),
		cmocka_unit_test(test_users_in_private_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
