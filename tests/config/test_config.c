/*
 * test_config.c - `--config FILE` (src/lib/config.c): a command's options
 * read from its usage text, the INI parser with its table of bad files
 * (each error at its line, every error reported), argv merging (the
 * command line wins), the SIGHUP reload's decisions, and through the
 * binary: `headend --check-config` and a head-end run from a file with a
 * SIGHUP.
 */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "testutil.h"
#include "lib/config.h"

static void fx_usage(FILE *f)
{
	fprintf(f, "usage: castellan fx --data-dir DIR [--udp]\n\n"
		   "Prose mentioning --not-an-option here.\n"
		   "  --data-dir DIR         state\n"
		   "  --emm-kbps N           bandwidth\n"
		   "  --log-level LEVEL      error|warn|info|debug\n"
		   "  --udp                  send over UDP\n"
		   "  --service SPEC         repeat for more\n"
		   "  --nulls-only\n"
		   "  --http ADDR:PORT       listener\n"
		   "  --no-entropy-reduction CSA2: a switch whose text starts at the column\n"
		   "  --web-admin-password-file FILE  a value after a long name\n"
		   "    --indented X  not an option line\n");
}

static struct cli_opt opts[CLI_CONFIG_MAX_OPTS];
static size_t nopts;

static int setup(void **state)
{
	(void)state;
	return cli_opts_from_usage(fx_usage, opts, CLI_CONFIG_MAX_OPTS, &nopts);
}

static const struct cli_opt *opt(const char *name)
{
	for (size_t i = 0; i < nopts; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static void opts_from_usage(void **state)
{
	(void)state;
	assert_int_equal(nopts, 9);
	assert_true(opt("no-entropy-reduction")->is_switch);
	assert_false(opt("web-admin-password-file")->is_switch);
	assert_non_null(opt("data-dir"));
	assert_false(opt("data-dir")->is_switch);
	assert_false(opt("emm-kbps")->is_switch);
	assert_false(opt("http")->is_switch);
	assert_true(opt("udp")->is_switch);
	assert_true(opt("nulls-only")->is_switch);
	assert_null(opt("not-an-option"));
	assert_null(opt("indented"));
}

static void parse(const char *text, struct cli_config *c)
{
	assert_int_equal(cli_config_parse("fx", opts, nopts, text, strlen(text), c), 0);
}

/* One bad file each: the error, at its line. */
static void bad_files(void **state)
{
	static const struct {
		const char *text;
		unsigned line;
		const char *msg;
	} bad[] = {
		{ "bogus = 1\n", 1, "unknown key 'bogus'" },
		{ "data-dir = /d\n[other]\nhttp = x:1\n", 3, "unknown section [other]" },
		{ "data-dir\n", 1, "syntax error" },
		{ "; c\n[fx\ndata-dir = /d\n", 2, "syntax error" },
		{ "udp = maybe\n", 1, "'udp' is a switch" },
		{ "udp = truest\n", 1, "'udp' is a switch" },
		{ "\n\ndata-dir =\n", 3, "'data-dir' needs a value" },
		{ "data-dir = \"\"\n", 1, "'data-dir' needs a value" },
		{ "config = /etc/x\n", 1, "'config' cannot be set" },
		{ "check-config = true\n", 1, "'check-config' cannot be set" },
		{ "help = 1\n", 1, "'help' cannot be set" },
		{ "not-an-option = 1\n", 1, "unknown key" },
		{ "indented = 1\n", 1, "unknown key" },
		{ "= value\n", 1, "no key before '='" },
		{ "an-option-name-far-longer-than-any-key-could-be-at-all = 1\n", 1, "key too long" },
		{ "]\n", 1, "syntax error" },
		{ "data-dir = /d\nhttp = a\nhttp\n", 3, "syntax error" },
		{ "data-dir = /d\r\nbad line\r\n", 2, "syntax error" },
	};
	struct cli_config c;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse(bad[i].text, &c);
		if (c.nerr != 1 || c.err[0].line != bad[i].line || !strstr(c.err[0].msg, bad[i].msg))
			fail_msg("case %zu: %zu errors, first at line %u: %s", i, c.nerr, c.nerr ? c.err[0].line : 0,
				c.nerr ? c.err[0].msg : "-");
		cli_config_free(&c);
	}
}

/* A line longer than libinih's buffer, a NUL byte: refused at their line,
 * the lines after them still read. */
static void long_line_and_nul(void **state)
{
	char text[1024];
	struct cli_config c;
	(void)state;

	memset(text, 'a', sizeof(text));
	memcpy(text, "data-dir = /d\nhttp = ", 21);
	memcpy(text + 500, "\nudp = 1\n", 9);
	assert_int_equal(cli_config_parse("fx", opts, nopts, text, 509, &c), 0);
	assert_int_equal(c.nerr, 1);
	assert_int_equal(c.err[0].line, 2);
	assert_non_null(strstr(c.err[0].msg, "line too long"));
	assert_int_equal(c.n, 2);
	assert_string_equal(c.e[1].key, "udp");
	assert_int_equal(c.e[1].line, 3);
	cli_config_free(&c);

	memcpy(text, "data-dir = /d\nhttp = a\0b\nudp = 1\n", 33);
	assert_int_equal(cli_config_parse("fx", opts, nopts, text, 33, &c), 0);
	assert_int_equal(c.nerr, 1);
	assert_int_equal(c.err[0].line, 2);
	assert_non_null(strstr(c.err[0].msg, "NUL"));
	assert_int_equal(c.n, 2);
	cli_config_free(&c);
}

/* Every error of a file, in line order, syntax and key errors mixed. */
static void every_error(void **state)
{
	struct cli_config c;
	char *big;
	size_t off = 0;
	(void)state;

	parse("data-dir = /d\n"
	      "bogus = 1\n"
	      "emm-kbps = 5\n"
	      "no equals sign\n"
	      "udp = perhaps\n"
	      "http = h:1\n"
	      "[broken\n"
	      "log-level = info\n",
		&c);
	assert_int_equal(c.nerr, 4);
	assert_int_equal(c.err[0].line, 2);
	assert_int_equal(c.err[1].line, 4);
	assert_int_equal(c.err[2].line, 5);
	assert_int_equal(c.err[3].line, 7);
	assert_false(c.more_errors);
	/* the good keys are still read */
	assert_int_equal(c.n, 4);
	assert_string_equal(c.e[0].key, "data-dir");
	assert_string_equal(c.e[3].key, "log-level");
	assert_int_equal(c.e[3].line, 8);
	cli_config_free(&c);

	/* more errors than the table holds: the first ones, and "more" */
	big = malloc(100 * 8);
	assert_non_null(big);
	for (int i = 0; i < 100; i++)
		off += (size_t)snprintf(big + off, 8, "bad%02d\n", i);
	assert_int_equal(cli_config_parse("fx", opts, nopts, big, off, &c), 0);
	assert_int_equal(c.nerr, CLI_CONFIG_MAX_ERRORS);
	assert_true(c.more_errors);
	assert_int_equal(c.err[0].line, 1);
	assert_int_equal(c.err[CLI_CONFIG_MAX_ERRORS - 1].line, CLI_CONFIG_MAX_ERRORS);
	cli_config_free(&c);
	free(big);

	/* too large a file */
	big = calloc(1, CLI_CONFIG_MAX_BYTES + 1);
	assert_non_null(big);
	assert_int_equal(cli_config_parse("fx", opts, nopts, big, CLI_CONFIG_MAX_BYTES + 1, &c), CE_RANGE);
	cli_config_free(&c);
	free(big);
}

static void good_file(void **state)
{
	struct cli_config c;
	(void)state;

	parse("# comment\n"
	      "; comment\n"
	      "[fx]\n"
	      "  data_dir = /var/lib/x   \n"
	      "http = \"127.0.0.1:8080\"\n"
	      "udp = TRUE\n"
	      "nulls-only = off\n"
	      "log-level = debug ; inline comment\n"
	      "service = 1\n"
	      "service: 2\n",
		&c);
	assert_int_equal(c.nerr, 0);
	assert_int_equal(c.n, 6);
	assert_string_equal(c.e[0].key, "data-dir");
	assert_string_equal(c.e[0].value, "/var/lib/x");
	assert_int_equal(c.e[0].line, 4);
	assert_string_equal(c.e[1].value, "127.0.0.1:8080");
	assert_string_equal(c.e[2].key, "udp");
	assert_null(c.e[2].value);
	assert_string_equal(c.e[3].value, "debug");
	assert_string_equal(c.e[4].value, "1");
	assert_string_equal(c.e[5].value, "2");
	assert_int_equal(c.e[5].line, 10);
	cli_config_free(&c);

	/* an empty file, a file with only comments */
	parse("", &c);
	assert_int_equal(c.n + c.nerr, 0);
	cli_config_free(&c);
	parse("; nothing\n\n", &c);
	assert_int_equal(c.n + c.nerr, 0);
	cli_config_free(&c);
}

static char tmpdir[64];

static char *tpath(const char *name)
{
	static char p[4][128];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, name);
	return p[k];
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int tmp_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int tmp_teardown(void **state)
{
	(void)state;
	return tu_run("rm -rf '%s'", tmpdir) == 0 ? 0 : -1;
}

/* File first, then the command line: the later flag wins in the parser. */
static void argv_merge(void **state)
{
	struct cli_config_args ca;
	char *args[] = { (char *)"fx", (char *)"--config", NULL, (char *)"--emm-kbps", (char *)"9", NULL };
	char *bad[] = { (char *)"fx", (char *)"--config", NULL, NULL };
	char **argv = args;
	int argc = 5;
	static const char *const want[] = { "fx", "--data-dir", "/d", "--emm-kbps", "5", "--udp", "--emm-kbps", "9" };
	(void)state;

	write_file(tpath("a.conf"), "data-dir = /d\nemm-kbps = 5\nudp = yes\nnulls-only = no\n");
	args[2] = tpath("a.conf");
	assert_int_equal(cli_config_begin("fx", fx_usage, NULL, &argc, &argv, &ca), -1);
	assert_int_equal(argc, 8);
	for (int i = 0; i < argc; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[argc]);
	/* the command may wipe a value it read (scramble does --fixed-cw):
	 * the file as read stays whole, for SIGHUP's comparison */
	secret_wipe(argv[2], strlen(argv[2]));
	assert_string_equal(ca.cfg.e[0].value, "/d");
	cli_config_end(&ca);

	/* no --config: argv untouched */
	argv = bad;
	argc = 1;
	assert_int_equal(cli_config_begin("fx", fx_usage, NULL, &argc, &argv, &ca), -1);
	assert_true(argv == bad);
	cli_config_end(&ca);
	/* --config without a file, a missing file, a bad file, --check-config
	 * without a checker */
	argc = 2;
	assert_int_equal(cli_config_begin("fx", fx_usage, NULL, &argc, &argv, &ca), 2);
	cli_config_end(&ca);
	argc = 3;
	bad[2] = tpath("missing.conf");
	assert_int_equal(cli_config_begin("fx", fx_usage, NULL, &argc, &argv, &ca), 1);
	cli_config_end(&ca);
	write_file(tpath("bad.conf"), "bogus = 1\n");
	bad[2] = tpath("bad.conf");
	assert_int_equal(cli_config_begin("fx", fx_usage, NULL, &argc, &argv, &ca), 1);
	assert_true(argv == bad);
	cli_config_end(&ca);
	args[2] = tpath("a.conf");
	args[3] = (char *)"--check-config";
	argv = args;
	argc = 4;
	assert_int_equal(cli_config_begin("fx", fx_usage, NULL, &argc, &argv, &ca), 2);
	cli_config_end(&ca);
}

struct applied {
	int n;
	char key[32], value[32];
	int fail;
};

static int rec_apply(void *ctx, const char *key, const char *value)
{
	struct applied *a = ctx;

	if (a->fail)
		return CE_ARG;
	a->n++;
	snprintf(a->key, sizeof(a->key), "%s", key);
	snprintf(a->value, sizeof(a->value), "%s", value ? value : "(removed)");
	return 0;
}

/* SIGHUP's decisions: live keys applied when changed, not when the
 * command line gave them, nothing from a broken file; others only logged. */
static void reload(void **state)
{
	static const char *const live[] = { "log-level", "emm-kbps", NULL };
	struct cli_config_args ca;
	struct applied a = { 0 };
	char *args[] = { (char *)"fx", (char *)"--config", NULL, (char *)"--emm-kbps", (char *)"9", NULL };
	char **argv = args;
	int argc = 5;
	(void)state;

	write_file(tpath("r.conf"), "data-dir = /d\nlog-level = info\nemm-kbps = 5\n");
	args[2] = tpath("r.conf");
	assert_int_equal(cli_config_begin("fx", fx_usage, NULL, &argc, &argv, &ca), -1);
	assert_int_equal(cli_config_live(&ca, live, rec_apply, &a), 0);
	/* nothing changed */
	assert_int_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 0);
	/* log-level changed: applied; data-dir changed: restart (not applied) */
	write_file(tpath("r.conf"), "data-dir = /e\nlog-level = debug\nemm-kbps = 5\n");
	assert_int_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.key, "log-level");
	assert_string_equal(a.value, "debug");
	/* the same again: nothing new applied */
	assert_int_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 1);
	/* emm-kbps is on the command line: the file's change is not applied */
	write_file(tpath("r.conf"), "data-dir = /e\nlog-level = debug\nemm-kbps = 7\n");
	assert_int_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 1);
	/* a broken file: nothing applied, an error */
	write_file(tpath("r.conf"), "data-dir = /e\nlog-level = warn\nnonsense\n");
	assert_int_not_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 1);
	/* the callback refuses: retried at the next SIGHUP */
	write_file(tpath("r.conf"), "data-dir = /e\nlog-level = warn\n");
	a.fail = 1;
	assert_int_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 0 + 1);
	a.fail = 0;
	assert_int_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.value, "warn");
	/* a live key removed from the file: the command is told (NULL) */
	write_file(tpath("r.conf"), "data-dir = /e\n");
	assert_int_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.key, "log-level");
	assert_string_equal(a.value, "(removed)");
	/* the file gone: an error, the running values stay */
	assert_int_equal(unlink(tpath("r.conf")), 0);
	assert_int_not_equal(cli_config_reload(&ca), 0);
	assert_int_equal(a.n, 3);
	/* the thread: started and stopped cleanly */
	assert_int_equal(cli_config_reload_start(&ca, live, rec_apply, &a), 0);
	cli_config_end(&ca);
}

/* ---- through the binary ---- */

static const char *bin(void)
{
	return getenv("CASTELLAN_BIN");
}

static bool file_has(const char *path, const char *s)
{
	size_t n = 0;
	uint8_t *buf = NULL;
	bool r;

	if (file_read_all(path, 1u << 22, &buf, &n) != 0)
		return false;
	buf = realloc(buf, n + 1);
	if (!buf)
		return false;
	buf[n] = '\0';
	r = strstr((char *)buf, s) != NULL;
	free(buf);
	return r;
}

/* Every error with its line, from the parser of the file and from the
 * command's own option parser; a clean file passes. */
static void check_config_cli(void **state)
{
	(void)state;
	if (!bin())
		skip();
	write_file(tpath("h.conf"), "; head-end\n"
				    "[headend]\n"
				    "data-dir = /tmp/x\n"
				    "keystore = /tmp/ks\n"
				    "emm-kbps = lots\n"
				    "bogus = 1\n"
				    "udp = maybe\n"
				    "a line without equals\n"
				    "http-threads = 0\n"
				    "log-level = loud\n");
	assert_int_equal(tu_run("'%s' headend --config '%s' --check-config >'%s' 2>&1", bin(), tpath("h.conf"),
				 tpath("h.out")),
		1);
	assert_true(file_has(tpath("h.out"), "h.conf:5: castellan headend: bad value for --emm-kbps: 'lots'"));
	assert_true(file_has(tpath("h.out"), "h.conf:6: unknown key 'bogus'"));
	assert_true(file_has(tpath("h.out"), "h.conf:7: 'udp' is a switch"));
	assert_true(file_has(tpath("h.out"), "h.conf:8: syntax error"));
	assert_true(file_has(tpath("h.out"), "h.conf:9: castellan headend: bad value for --http-threads: '0'"));
	assert_true(file_has(tpath("h.out"), "h.conf:10: castellan headend: bad value for --log-level: 'loud'"));
	assert_true(file_has(tpath("h.out"), "h.conf: 6 errors"));
	/* clean; the required keys may come from the command line */
	write_file(tpath("ok.conf"), "data-dir = /tmp/x\nemm-kbps = 200\nno-group-emms = true\n");
	assert_int_equal(tu_run("'%s' headend --config '%s' --check-config >'%s' 2>&1", bin(), tpath("ok.conf"),
				 tpath("ok.out")),
		1);
	assert_true(file_has(tpath("ok.out"), "--data-dir and --keystore are required"));
	assert_int_equal(tu_run("'%s' headend --config '%s' --check-config --keystore /tmp/ks >'%s' 2>&1", bin(),
				 tpath("ok.conf"), tpath("ok.out")),
		0);
	assert_true(file_has(tpath("ok.out"), "OK (3 keys)"));
	/* a file error stops a run before anything starts */
	assert_int_equal(tu_run("'%s' headend --config '%s' >'%s' 2>&1", bin(), tpath("h.conf"), tpath("run.out")),
		1);
	assert_true(file_has(tpath("run.out"), "h.conf:6: unknown key 'bogus'"));
	/* every option in the head-end's --help is a key */
	assert_int_equal(tu_run("'%s' headend --help >'%s' 2>&1", bin(), tpath("help.out")), 0);
	assert_true(file_has(tpath("help.out"), "--config FILE"));
	assert_true(file_has(tpath("help.out"), "--check-config"));
}

static char help_path[256];

static void file_usage(FILE *f)
{
	size_t n = 0;
	uint8_t *buf = NULL;

	if (file_read_all(help_path, 1u << 20, &buf, &n) == 0)
		fwrite(buf, 1, n, f);
	free(buf);
}

/* The real commands' --help: which options are switches, and every key is
 * in docs/configuration.md. */
static void real_help(void **state)
{
	static const char *const hs[] = { "udp", "no-group-emms", "secure-cookies", "check-config", NULL };
	static const char *const ss[] = { "no-entropy-reduction", "nulls-only", "realtime", "live", NULL };
	const char *const *sw;
	struct cli_opt o[CLI_CONFIG_MAX_OPTS];
	size_t n = 0, nsw;
	char doc[512];
	(void)state;

	if (!bin())
		skip();
	snprintf(doc, sizeof(doc), "%s/../../docs/configuration.md", getenv("CASTELLAN_TESTDATA"));
	for (int c = 0; c < 2; c++) {
		const char *cmd = c ? "scramble" : "headend";

		sw = c ? ss : hs;
		snprintf(help_path, sizeof(help_path), "%s", tpath("help.txt"));
		assert_int_equal(tu_run("'%s' %s --help >'%s'", bin(), cmd, help_path), 0);
		assert_int_equal(cli_opts_from_usage(file_usage, o, CLI_CONFIG_MAX_OPTS, &n), 0);
		assert_true(n > 20);
		nsw = 0;
		for (size_t i = 0; i < n; i++) {
			bool want = false;
			char key[64];

			for (size_t k = 0; sw[k]; k++)
				want = want || strcmp(sw[k], o[i].name) == 0;
			if (o[i].is_switch != want)
				fail_msg("%s --%s: switch %d, want %d", cmd, o[i].name, o[i].is_switch, want);
			nsw += want;
			/* documented key by key */
			snprintf(key, sizeof(key), "| `%.48s` |", o[i].name);
			if (!file_has(doc, key))
				fail_msg("docs/configuration.md has no row for %s's key `%s`", cmd, o[i].name);
		}
		assert_int_equal(nsw, c ? 4 : 4);
	}
}

static bool wait_for(const char *path, const char *s, int max_s)
{
	for (int i = 0; i < max_s * 10; i++) {
		if (s ? file_has(path, s) : access(path, F_OK) == 0)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* The head-end from a file: the command line overrides a key, SIGHUP
 * applies log-level and emm-kbps and names what needs a restart. */
static void headend_from_file(void **state)
{
	char conf[2048];
	pid_t pid;
	int st;
	(void)state;

	if (!bin())
		skip();
	write_file(tpath("pw"), "test passphrase\n");
	assert_int_equal(chmod(tpath("pw"), 0600), 0);
	assert_int_equal(tu_run("'%s' keys init --out '%s' --ca-system-id 0x4ADC --passphrase-file '%s' >/dev/null 2>&1",
				 bin(), tpath("ks"), tpath("pw")),
		0);
	snprintf(conf, sizeof(conf),
		"[headend]\ndata-dir = %s\nkeystore = %s\npassphrase-file = %s\nhttp = 127.0.0.1:0\necmg = off\n"
		"web-root = off\nadmin-key-file = %s\nready-file = %s\nlog-level = info\nemm-kbps = 100\n"
		"status-every = 0\n",
		tpath("hd"), tpath("ks"), tpath("pw"), tpath("admin-key"), tpath("ready-file"));
	write_file(tpath("run.conf"), conf);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen(tpath("he.log"), "w", stderr) || dup2(2, 1) < 0)
			_exit(127);
		execl(bin(), "castellan", "headend", "--config", tpath("run.conf"), "--ready-file", tpath("ready-cli"),
			(char *)NULL);
		_exit(127);
	}
	/* the command line's --ready-file won over the file's */
	assert_true(wait_for(tpath("ready-cli"), NULL, 60));
	assert_int_not_equal(access(tpath("ready-file"), F_OK), 0);
	/* SIGHUP: two live changes, one that needs a restart */
	snprintf(conf, sizeof(conf),
		"[headend]\ndata-dir = %s\nkeystore = %s\npassphrase-file = %s\nhttp = 127.0.0.1:1\necmg = off\n"
		"web-root = off\nadmin-key-file = %s\nready-file = %s\nlog-level = debug\nemm-kbps = 250\n"
		"status-every = 0\nmetrics-allow = 10.0.0.0/8,192.0.2.7\n",
		tpath("hd"), tpath("ks"), tpath("pw"), tpath("admin-key"), tpath("ready-file"));
	write_file(tpath("run.conf"), conf);
	assert_int_equal(kill(pid, SIGHUP), 0);
	assert_true(wait_for(tpath("he.log"), "EMM bandwidth now 250 kbit/s", 60));
	assert_true(file_has(tpath("he.log"), "log-level = debug applied"));
	assert_true(file_has(tpath("he.log"), "metrics-allow = 10.0.0.0/8,192.0.2.7 applied"));
	assert_true(file_has(tpath("he.log"), "http changed in"));
	assert_false(file_has(tpath("he.log"), "data-dir changed"));
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Under systemd: the passphrase and the store URI as credentials
 * ($CREDENTIALS_DIRECTORY/passphrase, /db-uri), nothing of them in the
 * file or on the command line. */
static void headend_credentials(void **state)
{
	char conf[4096];
	pid_t pid;
	int st;
	(void)state;

	if (!bin())
		skip();
	assert_int_equal(mkdir(tpath("cred"), 0700), 0);
	write_file(tpath("cred/passphrase"), "credential passphrase\n");
	assert_int_equal(chmod(tpath("cred/passphrase"), 0400), 0);
	snprintf(conf, sizeof(conf), "sqlite:%s\n", tpath("cred.db"));
	write_file(tpath("cred/db-uri"), conf);
	assert_int_equal(chmod(tpath("cred/db-uri"), 0400), 0);
	assert_int_equal(tu_run("'%s' keys init --out '%s' --ca-system-id 0x4ADC --passphrase-file '%s' >/dev/null 2>&1",
				 bin(), tpath("ks"), tpath("cred/passphrase")),
		0);
	snprintf(conf, sizeof(conf),
		"data-dir = %s\nkeystore = %s\nhttp = 127.0.0.1:0\necmg = off\nweb-root = off\n"
		"admin-key-file = %s\nready-file = %s\nstatus-every = 0\n",
		tpath("hd"), tpath("ks"), tpath("admin-key"), tpath("ready"));
	write_file(tpath("c.conf"), conf);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen(tpath("c.log"), "w", stderr) || dup2(2, 1) < 0 ||
		    setenv("CREDENTIALS_DIRECTORY", tpath("cred"), 1) != 0 || unsetenv("CASTELLAN_PASSPHRASE") != 0 ||
		    unsetenv("CASTELLAN_DB") != 0)
			_exit(127);
		execl(bin(), "castellan", "headend", "--config", tpath("c.conf"), (char *)NULL);
		_exit(127);
	}
	assert_true(wait_for(tpath("ready"), NULL, 60));
	/* the store is the credential's, not data-dir's default */
	assert_int_equal(access(tpath("cred.db"), F_OK), 0);
	assert_int_not_equal(access(tpath("hd/sms.db"), F_OK), 0);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* without the credential the passphrase is missing: refused */
	assert_int_equal(tu_run("env -u CASTELLAN_PASSPHRASE -u CREDENTIALS_DIRECTORY '%s' headend --config '%s' >'%s' 2>&1",
				 bin(), tpath("c.conf"), tpath("c2.log")),
		1);
	assert_true(file_has(tpath("c2.log"), "passphrase"));
}

/* The scrambler from a file: a repeated key is a repeated option, and the
 * command line adds to it (one service from the file, one more given). */
static void scramble_from_file(void **state)
{
	char conf[16384];
	(void)state;

	if (!bin())
		skip();
	snprintf(conf, sizeof(conf),
		"[scramble]\ninput = %s\noutput = %s\nservice = 101\nfixed-cw = 0102030405060708\nstats-json = %s\n",
		tu_testdata("ts-clear-2svc.ts"), tpath("out.ts"), tpath("s.json"));
	write_file(tpath("s.conf"), conf);
	assert_int_equal(tu_run("'%s' scramble --config '%s' >/dev/null 2>&1", bin(), tpath("s.conf")), 0);
	assert_true(file_has(tpath("s.json"), "\"pkts_scrambled\": 795,"));
	assert_int_equal(tu_run("'%s' scramble --config '%s' --service 102 >/dev/null 2>&1", bin(), tpath("s.conf")),
		0);
	assert_true(file_has(tpath("s.json"), "\"pkts_scrambled\": 3876,"));
	/* a key scramble does not have */
	write_file(tpath("s2.conf"), "[scramble]\nemm-kbps = 5\n");
	assert_int_equal(tu_run("'%s' scramble --config '%s' >'%s' 2>&1", bin(), tpath("s2.conf"), tpath("s2.out")), 1);
	assert_true(file_has(tpath("s2.out"), "s2.conf:2: unknown key 'emm-kbps' (not an option of castellan scramble)"));
	/* a [headend] section in a scrambler's file */
	write_file(tpath("s3.conf"), "[headend]\nlog-level = info\n");
	assert_int_equal(tu_run("'%s' scramble --config '%s' >'%s' 2>&1", bin(), tpath("s3.conf"), tpath("s3.out")), 1);
	assert_true(file_has(tpath("s3.out"), "s3.conf:2: unknown section [headend] (use [scramble] or none)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(opts_from_usage),
		cmocka_unit_test(bad_files),
		cmocka_unit_test(long_line_and_nul),
		cmocka_unit_test(every_error),
		cmocka_unit_test(good_file),
		cmocka_unit_test_setup_teardown(argv_merge, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(reload, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(check_config_cli, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(real_help, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(headend_from_file, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(scramble_from_file, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(headend_credentials, tmp_setup, tmp_teardown),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
