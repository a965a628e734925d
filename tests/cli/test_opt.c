/*
 * test_opt.c - the option table module (src/lib/opt.c): strict numbers and
 * their ranges, a missing value, an unknown or missing required option, a
 * repeated option, positional arguments, a secret never echoed, and --help
 * generated from the same table (every option in it, in the layout
 * lib/config.c reads switches from).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/opt.h"
#include "lib/config.h"

struct t_args {
	const char *name, *secret;
	bool verbose;
	uint8_t small;
	int16_t offset;
	uint32_t big;
	uint64_t huge;
	int mode;
	uint8_t colour[3];
	int calls;
	char seen[64];
};

static int add_tag(void *base, const char *v)
{
	struct t_args *a = base;

	if (strcmp(v, "bad") == 0)
		return -1;
	a->calls++;
	strncat(a->seen, v, sizeof(a->seen) - strlen(a->seen) - 1);
	return 0;
}

static int no_x(const char *v)
{
	return strchr(v, 'x') ? -1 : 0;
}

static const struct opt_choice modes[] = { { "fast", 1 }, { "slow", 7 }, { NULL, 0 } };

#define A struct t_args
static const struct opt t_opts[] = {
	OPT_STRV("--name", "NAME", OPT_REQUIRED, A, name, no_x, "a name without x"),
	OPT_FLAG("--verbose", A, verbose, "say more"),
	OPT_NUM("--small", "N", 0, A, small, 1, 200, "1..200"),
	OPT_NUM("--offset", "MS", 0, A, offset, INT16_MIN, INT16_MAX, "may be negative\nsecond line"),
	OPT_NUM("--big", "N", 0, A, big, 0, UINT32_MAX, "32 bits"),
	OPT_NUM("--huge", "N", 0, A, huge, 0, UINT64_MAX, "64 bits"),
	OPT_CHOICE("--mode", "fast|slow", A, mode, modes, "how"),
	OPT_FN("--tag", "T", 0, add_tag, "repeatable"),
	OPT_HEX("--colour", "RRGGBB", A, colour, "three bytes in hex"),
	OPT_STR("--secret", "HEX", OPT_SECRET, A, secret, "never echoed"),
	OPT_FLAG("--a-rather-long-switch-name", A, verbose, "wraps to its own line"),
	OPT_END,
};
#undef A

static const struct opt_cmd t_cmd = {
	.name = "tst",
	.about = "A test command.",
	.opts = t_opts,
	.args = "FILE",
	.min_args = 1,
	.max_args = 2,
};

static char err_text[4096];
static char *owned[32]; /* the words of the last parse: a's pointers point into them */

/* opt_parse on the words given (argv[0] "tst"), stderr caught into err_text. */
static int parse(struct t_args *a, const char **args, int *nargs, ...)
{
	char *argv[32];
	int argc = 0, fd, saved, r;
	char tmpl[] = "/tmp/test-opt-XXXXXX";
	va_list ap;
	ssize_t n;

	for (size_t i = 0; i < 32; i++) {
		free(owned[i]);
		owned[i] = NULL;
	}
	memset(a, 0, sizeof(*a));
	argv[argc++] = (char *)"tst";
	va_start(ap, nargs);
	for (char *w; (w = va_arg(ap, char *)) != NULL && argc < 31; argc++) {
		owned[argc] = strdup(w);
		argv[argc] = owned[argc];
	}
	va_end(ap);
	argv[argc] = NULL;
	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	r = opt_parse(&t_cmd, a, argc, argv, 1, args, nargs);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, err_text, sizeof(err_text) - 1);
	err_text[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmpl);
	return r;
}

static void test_good(void **state)
{
	struct t_args a;
	const char *args[2];
	int n = 0;
	(void)state;

	assert_int_equal(parse(&a, args, &n, "--name", "n1", "in.ts", "--verbose", "--small", "0x10", "--offset", "-200",
			       "--big", "4294967295", "--huge", "18446744073709551615", "--mode", "slow", "--tag", "a",
			       "--tag", "b", "out.ts", "--colour", "#0a0B0c", NULL),
		OPT_GO);
	assert_string_equal(a.name, "n1");
	assert_true(a.verbose);
	assert_int_equal(a.small, 16);
	assert_int_equal(a.offset, -200);
	assert_int_equal(a.big, UINT32_MAX);
	assert_true(a.huge == UINT64_MAX);
	assert_int_equal(a.mode, 7);
	assert_int_equal(a.calls, 2); /* every occurrence, in order */
	assert_string_equal(a.seen, "ab");
	assert_memory_equal(a.colour, "\x0a\x0b\x0c", 3);
	assert_int_equal(n, 2);
	assert_string_equal(args[0], "in.ts");
	assert_string_equal(args[1], "out.ts");
	assert_string_equal(err_text, "");
	/* "--" ends the options: a later word that looks like one is a file */
	assert_int_equal(parse(&a, args, &n, "--name", "n", "--", "--verbose", NULL), OPT_GO);
	assert_false(a.verbose);
	assert_string_equal(args[0], "--verbose");
}

/* Bad values: each refused with exit 2 and the message naming the option and the value. */
static void test_bad_values(void **state)
{
	static const struct {
		const char *opt, *val;
	} bad[] = {
		{ "--small", "0" },          /* below the range */
		{ "--small", "201" },        /* above */
		{ "--small", "12x" },        /* not a whole number */
		{ "--small", "" },
		{ "--small", " 5" },
		{ "--small", "-1" },
		{ "--offset", "32768" },
		{ "--offset", "-32769" },
		{ "--big", "4294967296" },
		{ "--huge", "18446744073709551616" },
		{ "--mode", "medium" },
		{ "--mode", "FAST" },
		{ "--tag", "bad" },           /* the command's own parser said no */
		{ "--name", "xx" },           /* the check said no */
		{ "--colour", "0a0b" },       /* too short */
		{ "--colour", "0a0b0c0d" },   /* too long */
		{ "--colour", "0a0bzz" },
	};
	struct t_args a;
	const char *args[2];
	int n;
	char want[200];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&a, args, &n, "--name", "n", bad[i].opt, bad[i].val, "f", NULL), 2);
		snprintf(want, sizeof(want), "castellan tst: bad value for %s: '%s'", bad[i].opt, bad[i].val);
		if (!strstr(err_text, want))
			fail_msg("%s %s: got '%s'", bad[i].opt, bad[i].val, err_text);
	}
	/* a secret's value is never echoed, and wiped from argv once taken */
	assert_int_equal(parse(&a, args, &n, "--name", "n", "--secret", "00112233", "f", NULL), OPT_GO);
	assert_string_equal(a.secret, ""); /* its argv string, wiped */
}

static void test_usage_errors(void **state)
{
	struct t_args a;
	const char *args[2];
	int n;
	(void)state;

	assert_int_equal(parse(&a, args, &n, "--name", "n", "f", "--small", NULL), 2);
	assert_non_null(strstr(err_text, "castellan tst: --small needs a value"));
	assert_int_equal(parse(&a, args, &n, "--name", "n", "f", "--bogus", "1", NULL), 2);
	assert_non_null(strstr(err_text, "castellan tst: unknown option '--bogus'"));
	assert_int_equal(parse(&a, args, &n, "--name", "n", "f", "-v", NULL), 2);
	assert_non_null(strstr(err_text, "unknown option '-v'"));
	assert_int_equal(parse(&a, args, &n, "f", NULL), 2);
	assert_non_null(strstr(err_text, "castellan tst: --name NAME is required"));
	assert_int_equal(parse(&a, args, &n, "--name", "n", NULL), 2);
	assert_non_null(strstr(err_text, "castellan tst: missing FILE"));
	assert_int_equal(parse(&a, args, &n, "--name", "n", "f1", "f2", "f3", NULL), 2);
	assert_non_null(strstr(err_text, "unexpected argument 'f3'"));
}

/* Given twice, the last value counts (a config file's key, then the
 * command line that overrides it). */
static void test_repeated(void **state)
{
	struct t_args a;
	const char *args[2];
	int n;
	(void)state;

	assert_int_equal(parse(&a, args, &n, "--name", "first", "--small", "5", "--small", "9", "--name", "second", "f",
			       NULL),
		OPT_GO);
	assert_int_equal(a.small, 9);
	assert_string_equal(a.name, "second");
	/* a bad value is refused even when a good one follows */
	assert_int_equal(parse(&a, args, &n, "--name", "n", "--small", "500", "--small", "9", "f", NULL), 2);
}

static void help_to(FILE *f)
{
	opt_help(f, &t_cmd);
}

static void test_help(void **state)
{
	struct t_args a;
	const char *args[2];
	int n;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct cli_opt o[CLI_CONFIG_MAX_OPTS];
	size_t no = 0;
	(void)state;

	assert_non_null(f);
	opt_help(f, &t_cmd);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(text, "usage: castellan tst --name NAME [options] FILE\n"));
	assert_non_null(strstr(text, "A test command."));
	for (size_t i = 0; t_opts[i].name; i++) {
		char line[80];

		snprintf(line, sizeof(line), "\n  %s%s%s ", t_opts[i].name, t_opts[i].arg ? " " : "",
			 t_opts[i].arg ? t_opts[i].arg : "");
		if (!strstr(text, line) && !(snprintf(line, sizeof(line), "\n  %s\n", t_opts[i].name), strstr(text, line)))
			fail_msg("--help lacks %s:\n%s", t_opts[i].name, text);
		if (!strchr(t_opts[i].help, '\n'))
			assert_non_null(strstr(text, t_opts[i].help));
	}
	/* a help's second line continues at the column */
	assert_non_null(strstr(text, "may be negative\n"));
	assert_non_null(strstr(text, "  second line\n"));
	/* lib/config.c reads the same text: the switches are switches */
	assert_int_equal(cli_opts_from_usage(help_to, o, CLI_CONFIG_MAX_OPTS, &no), 0);
	assert_int_equal(no, 11);
	for (size_t i = 0; i < no; i++) {
		bool sw = strcmp(o[i].name, "verbose") == 0 || strcmp(o[i].name, "a-rather-long-switch-name") == 0;

		if (o[i].is_switch != sw)
			fail_msg("--%s: switch %d", o[i].name, o[i].is_switch);
	}
	free(text);
	/* --help anywhere: exit 0, nothing parsed, nothing said on stderr */
	assert_int_equal(parse(&a, args, &n, "--small", "bogus", "--help", NULL), 0);
	assert_string_equal(err_text, "");
}

/* A table whose field cannot hold its range is refused at the first run. */
static void test_bad_table(void **state)
{
	static const struct opt bad[] = {
		OPT_NUM("--small", "N", 0, struct t_args, small, 0, 256, "does not fit a byte"),
		OPT_END,
	};
	static const struct opt_cmd c = { .name = "bad", .opts = bad };
	struct t_args a = { 0 };
	char *argv[] = { (char *)"bad", NULL };
	int fd = open("/dev/null", O_WRONLY), saved = dup(2);
	(void)state;

	dup2(fd, 2);
	assert_int_equal(opt_parse(&c, &a, 1, argv, 1, NULL, NULL), 1);
	dup2(saved, 2);
	close(saved);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_repeated),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_bad_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
