/*
 * test_secret_src.c - where a secret comes from (cas/secret_src.h): the
 * file's first line wins over the variable, the file is refused when others
 * may read it, an unset or empty variable is "not found", a set one is
 * copied (the copy, not the environment's string).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "cas/secret_src.h"
#include "lib/err.h"
#include "lib/util.h"

#define ENV "CASTELLAN_TEST_SECRET_SRC"

static void put(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_env(void **state)
{
	char *p = NULL;

	(void)state;
	unsetenv(ENV);
	assert_int_equal(secret_get(NULL, ENV, &p), CE_NOT_FOUND);
	assert_null(p);
	assert_int_equal(secret_get(NULL, NULL, &p), CE_NOT_FOUND);
	setenv(ENV, "", 1);
	assert_int_equal(secret_get(NULL, ENV, &p), CE_NOT_FOUND);
	setenv(ENV, "env secret", 1);
	assert_int_equal(secret_get(NULL, ENV, &p), 0);
	assert_string_equal(p, "env secret");
	assert_ptr_not_equal(p, getenv(ENV));
	secret_free(p, strlen(p));
	unsetenv(ENV);
}

static void test_file(void **state)
{
	char dir[] = "/tmp/castellan-secret-XXXXXX", path[64];
	char *p = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	put(path, "file secret\nsecond line\n", 0600);
	setenv(ENV, "env secret", 1);
	assert_int_equal(secret_get(path, ENV, &p), 0); /* the file wins */
	assert_string_equal(p, "file secret");
	secret_free(p, strlen(p));
	p = NULL;
	put(path, "file secret\n", 0644); /* others may read it: refused */
	assert_int_equal(secret_get(path, ENV, &p), CE_BLOCKED);
	assert_null(p);
	assert_int_equal(unlink(path), 0);
	assert_int_not_equal(secret_get(path, ENV, &p), 0); /* missing: no fallback to the variable */
	assert_null(p);
	unsetenv(ENV);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
