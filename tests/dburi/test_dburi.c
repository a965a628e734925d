/*
 * test_dburi.c - the SMS store URI from --db, --db-file, $CASTELLAN_DB or
 * the default (src/sms/dburi.c): the first-line parser's bad cases, the
 * file rules (mode, size, empty, no newline), the precedence table, and
 * the real `castellan` binary: `sms --db-file F init / card add / card
 * list` on SQLite and on a PostgreSQL server started here with password
 * (SCRAM) authentication, and a running `web serve --db-file` with several
 * HTTP threads (and `headend --db-file`) whose /proc/PID/cmdline, output
 * and log never hold the password while the REST API answers from the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "testutil.h"
#include "pgtest.h"
#include "sms/dburi.h"

#define PG_PORT 5449 /* its own: meson runs the suites in parallel */
#define PG_PASSWORD "Dbfile-S3cret-pw_71"

static char tmp[64];      /* this run's scratch folder */
static char pg_dir[128];  /* the PostgreSQL cluster, "" if none */
static char pg_conninfo[512];
static const char *pg_why = "not started";

/* ---- helpers ------------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0); /* not subject to the umask */
	close(fd);
}

static void write_str(const char *path, const char *s, mode_t mode)
{
	write_file(path, s, strlen(s), mode);
}

/* The whole file as a NUL-terminated string ("" if missing). Caller frees. */
static char *slurp(const char *path)
{
	uint8_t *b = NULL;
	size_t n = 0;
	char *s;

	if (file_read_all(path, 1u << 20, &b, &n) != 0)
		return calloc(1, 1);
	s = calloc(1, n + 1);
	assert_non_null(s);
	memcpy(s, b, n);
	free(b);
	/* /proc/PID/cmdline separates arguments with NULs: make them spaces */
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0')
			s[i] = ' ';
	return s;
}

static const char *bin(void)
{
	const char *b = getenv("CASTELLAN_BIN");

	if (!b || access(b, X_OK) != 0)
		skip();
	return b;
}

static const char *path_in(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tmp, name);
	return buf;
}

/* ---- dburi_parse: the first line ------------------------------------------ */

static void test_parse_table(void **state)
{
	static const struct {
		const char *in;
		size_t len; /* 0: strlen(in) */
		int want;
		const char *out;
	} cases[] = {
		{ "sqlite:/var/lib/sms.db\n", 0, 0, "sqlite:/var/lib/sms.db" },
		{ "sqlite:/a.db", 0, 0, "sqlite:/a.db" },                   /* no newline */
		{ "postgres:host=h password=x\r\n", 0, 0, "postgres:host=h password=x" },
		{ "sqlite:/a.db\nsecond line ignored\n", 0, 0, "sqlite:/a.db" },
		{ "  spaced uri \t\n", 0, 0, "  spaced uri \t" },             /* kept as written */
		{ "", 0, CE_FORMAT, "" },                                     /* empty file */
		{ "\n", 0, CE_FORMAT, "" },                                   /* empty first line */
		{ "\r\n", 0, CE_FORMAT, "" },
		{ "\nsqlite:/a.db\n", 0, CE_FORMAT, "" },                     /* URI not on line 1 */
		{ "sqlite:/a\0.db\n", 14, CE_FORMAT, "" },                    /* NUL inside */
		{ "sqlite:/a.db\r\r\n", 0, CE_FORMAT, "" },                   /* CR left after CRLF */
		{ "\r\r\n\n", 0, CE_FORMAT, "" },                             /* fuzz_dburi finding */
		{ "sqlite:/a\r.db\n", 0, CE_FORMAT, "" },
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);

		memset(out, 'X', sizeof(out));
		assert_int_equal(dburi_parse((const uint8_t *)cases[i].in, len, out, sizeof(out)), cases[i].want);
		assert_string_equal(out, cases[i].out);
	}
}

static void test_parse_bounds(void **state)
{
	uint8_t big[DBURI_FILE_MAX_BYTES + 1];
	char out[DBURI_FILE_MAX_BYTES + 1], small[8];

	(void)state;
	memset(big, 'a', sizeof(big));
	/* exactly the maximum, no newline: accepted whole */
	assert_int_equal(dburi_parse(big, DBURI_FILE_MAX_BYTES, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), DBURI_FILE_MAX_BYTES);
	/* one byte more: refused even though the line would fit in a larger buffer */
	assert_int_equal(dburi_parse(big, sizeof(big), out, sizeof(out)), CE_LIMIT);
	assert_string_equal(out, "");
	/* a line that does not fit the caller's buffer */
	assert_int_equal(dburi_parse((const uint8_t *)"12345678\n", 9, small, sizeof(small)), CE_LIMIT);
	assert_int_equal(dburi_parse((const uint8_t *)"1234567\n", 8, small, sizeof(small)), 0);
	assert_string_equal(small, "1234567");
	assert_int_equal(dburi_parse(NULL, 3, small, sizeof(small)), CE_ARG);
	assert_int_equal(dburi_parse(big, 3, NULL, 0), CE_ARG);
}

/* Every file of fuzz/corpus/dburi (fuzzer findings are kept there as
 * regressions): the parser's result keeps the fuzz target's invariants. */
static void test_fuzz_corpus(void **state)
{
	char dir[4200], path[4600], out[DBURI_FILE_MAX_BYTES + 1], back[DBURI_FILE_MAX_BYTES + 1];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/../../fuzz/corpus/dburi", tu_testdata("."));
	if (!(d = opendir(dir)))
		fail_msg("no corpus at %s", dir);
	while ((de = readdir(d)) != NULL) {
		uint8_t *buf;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		buf = tu_read(path, &len);
		if (dburi_parse(buf, len, out, sizeof(out)) == 0) {
			size_t k = strlen(out);

			assert_true(k > 0 && k <= len && memcmp(out, buf, k) == 0);
			assert_int_equal(dburi_parse((const uint8_t *)out, k, back, sizeof(back)), 0);
			assert_string_equal(out, back);
		} else {
			assert_string_equal(out, "");
		}
		free(buf);
		n++;
	}
	closedir(d);
	assert_true(n >= 5);
}

/* ---- dburi_read_file: the file rules --------------------------------------- */

static void test_read_file_table(void **state)
{
	static const struct {
		const char *text;
		mode_t mode;
		int want;
		const char *uri;
	} cases[] = {
		{ "sqlite:/x.db\n", 0600, 0, "sqlite:/x.db" },
		{ "sqlite:/x.db\n", 0400, 0, "sqlite:/x.db" },
		{ "sqlite:/x.db", 0600, 0, "sqlite:/x.db" },  /* no newline */
		{ "sqlite:/x.db\n", 0640, CE_BLOCKED, "" },   /* group-readable */
		{ "sqlite:/x.db\n", 0604, CE_BLOCKED, "" },   /* world-readable */
		{ "sqlite:/x.db\n", 0620, CE_BLOCKED, "" },   /* group-writable: could be swapped */
		{ "sqlite:/x.db\n", 0644, CE_BLOCKED, "" },
		{ "", 0600, CE_FORMAT, "" },                  /* empty */
		{ "\n\n", 0600, CE_FORMAT, "" },
	};
	char path[128], out[DBURI_FILE_MAX_BYTES + 1];

	(void)state;
	path_in(path, sizeof(path), "rf");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_str(path, cases[i].text, cases[i].mode);
		memset(out, 'X', sizeof(out));
		assert_int_equal(dburi_read_file(path, out, sizeof(out)), cases[i].want);
		assert_string_equal(out, cases[i].uri);
		if (cases[i].want != 0) /* wiped, not only terminated */
			for (size_t k = 0; k < 16; k++)
				assert_int_equal(out[k], 0);
	}
}

static void test_read_file_size_and_kind(void **state)
{
	char path[128], link[128], out[DBURI_FILE_MAX_BYTES + 1];
	static char big[DBURI_FILE_MAX_BYTES + 2];

	(void)state;
	path_in(path, sizeof(path), "sz");
	memset(big, 'u', sizeof(big));
	write_file(path, big, DBURI_FILE_MAX_BYTES, 0600); /* 4 KiB: accepted */
	assert_int_equal(dburi_read_file(path, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), DBURI_FILE_MAX_BYTES);
	big[10] = '\n'; /* 4 KiB + 1 with a short first line: the file is still too large */
	write_file(path, big, DBURI_FILE_MAX_BYTES + 1, 0600);
	assert_int_equal(dburi_read_file(path, out, sizeof(out)), CE_LIMIT);
	/* a symlink to a private file is followed (the target's mode counts) */
	write_str(path, "sqlite:/via-link.db\n", 0600);
	path_in(link, sizeof(link), "sz-link");
	(void)unlink(link);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(dburi_read_file(link, out, sizeof(out)), 0);
	assert_string_equal(out, "sqlite:/via-link.db");
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(dburi_read_file(link, out, sizeof(out)), CE_BLOCKED);
	/* missing, a directory, a FIFO-like non-file */
	path_in(path, sizeof(path), "does-not-exist");
	assert_int_equal(dburi_read_file(path, out, sizeof(out)), CE_NOT_FOUND);
	assert_int_equal(dburi_read_file(tmp, out, sizeof(out)), CE_IO);
	assert_int_equal(dburi_read_file("/dev/null", out, sizeof(out)), CE_IO);
	assert_int_equal(dburi_read_file("", out, sizeof(out)), CE_ARG);
}

/* ---- precedence -------------------------------------------------------------- */

static void test_precedence_table(void **state)
{
	char good[128], bad[128], longdb[DBURI_FILE_MAX_BYTES + 2];
	enum { NOF = 0, GOOD, BAD };
	static const struct {
		const char *db;
		int file;
		const char *env; /* NULL: unset */
		const char *def;
		int want;
		const char *uri;
		enum dburi_source src;
	} cases[] = {
		{ "sqlite:/opt.db", GOOD, "sqlite:/env.db", "sqlite:/def.db", 0, "sqlite:/opt.db", DBURI_FROM_OPTION },
		{ "sqlite:/opt.db", BAD, NULL, NULL, 0, "sqlite:/opt.db", DBURI_FROM_OPTION }, /* file not read */
		{ NULL, GOOD, "sqlite:/env.db", "sqlite:/def.db", 0, "sqlite:/file.db", DBURI_FROM_FILE },
		{ NULL, NOF, "sqlite:/env.db", "sqlite:/def.db", 0, "sqlite:/env.db", DBURI_FROM_ENV },
		{ NULL, NOF, "", "sqlite:/def.db", 0, "sqlite:/def.db", DBURI_FROM_DEFAULT }, /* empty = unset */
		{ NULL, NOF, NULL, "sqlite:/def.db", 0, "sqlite:/def.db", DBURI_FROM_DEFAULT },
		{ NULL, NOF, NULL, NULL, 0, "", DBURI_FROM_NONE },
		/* a bad file is an error: never a silent fall-back to $CASTELLAN_DB or the default */
		{ NULL, BAD, "sqlite:/env.db", "sqlite:/def.db", CE_BLOCKED, "", DBURI_FROM_NONE },
		{ "", NOF, "sqlite:/env.db", NULL, CE_ARG, "", DBURI_FROM_NONE },
	};
	struct dburi u;

	(void)state;
	path_in(good, sizeof(good), "prec-good");
	path_in(bad, sizeof(bad), "prec-bad");
	write_str(good, "sqlite:/file.db\n", 0600);
	write_str(bad, "sqlite:/file.db\n", 0640);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *f = cases[i].file == GOOD ? good : cases[i].file == BAD ? bad : NULL;

		if (cases[i].env)
			setenv(DBURI_ENV, cases[i].env, 1);
		else
			unsetenv(DBURI_ENV);
		memset(&u, 'X', sizeof(u));
		assert_int_equal(dburi_resolve("test", cases[i].db, f, cases[i].def, &u), cases[i].want);
		assert_string_equal(u.uri, cases[i].uri);
		assert_int_equal(u.source, cases[i].src);
		dburi_cleanup(&u);
		for (size_t k = 0; k < sizeof(u.uri); k++)
			assert_int_equal(u.uri[k], 0);
	}
	/* over the limit on the command line and in the environment */
	memset(longdb, 'a', sizeof(longdb) - 1);
	longdb[sizeof(longdb) - 1] = '\0';
	unsetenv(DBURI_ENV);
	assert_int_equal(dburi_resolve("test", longdb, NULL, NULL, &u), CE_LIMIT);
	setenv(DBURI_ENV, longdb, 1);
	assert_int_equal(dburi_resolve("test", NULL, NULL, "d", &u), CE_LIMIT);
	unsetenv(DBURI_ENV);
	assert_string_equal(dburi_source_name(DBURI_FROM_FILE), "--db-file");
	dburi_cleanup(&u);
}

/* ---- the real binary on SQLite ----------------------------------------------- */

static void test_cli_sqlite(void **state)
{
	const char *b = bin();
	char f[128], db[128], out[128], err[128], uri[200];
	char *text;

	(void)state;
	unsetenv(DBURI_ENV);
	unsetenv("CASTELLAN_SMS_DB");
	path_in(f, sizeof(f), "cli.uri");
	path_in(db, sizeof(db), "cli.db");
	path_in(out, sizeof(out), "cli.out");
	path_in(err, sizeof(err), "cli.err");
	snprintf(uri, sizeof(uri), "sqlite:%s", db); /* no trailing newline */
	write_str(f, uri, 0600);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' init >'%s' 2>'%s'", b, f, out, err), 0);
	assert_int_equal(access(db, F_OK), 0);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' card add 2100000042 --name 'From File' >>'%s' 2>>'%s'",
				b, f, out, err), 0);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' card list >'%s' 2>>'%s'", b, f, out, err), 0);
	text = slurp(out);
	assert_non_null(strstr(text, "2100000042"));
	assert_non_null(strstr(text, "From File"));
	free(text);
	/* $CASTELLAN_DB alone reaches the same store; --db beats it */
	assert_int_equal(tu_run("CASTELLAN_DB='%s' '%s' sms card list >'%s' 2>>'%s'", uri, b, out, err), 0);
	text = slurp(out);
	assert_non_null(strstr(text, "2100000042"));
	free(text);
	assert_int_equal(tu_run("CASTELLAN_DB='%s' '%s' sms --db '%s/other.db' card list >'%s' 2>>'%s'",
				uri, b, tmp, out, err), 0);
	text = slurp(out);
	assert_null(strstr(text, "2100000042"));
	free(text);
	/* a CRLF file with a comment line after the URI */
	snprintf(uri, sizeof(uri), "sqlite:%s\r\n# written by ops\n", db);
	write_str(f, uri, 0400);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' card list >'%s' 2>>'%s'", b, f, out, err), 0);
	text = slurp(out);
	assert_non_null(strstr(text, "2100000042"));
	free(text);
}

static void test_cli_refusals(void **state)
{
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		mode_t mode;
		const char *says;
	} cases[] = {
		{ "sqlite:@DB@\n", 0, 0640, "too open" },
		{ "sqlite:@DB@\n", 0, 0644, "too open" },
		{ "", 0, 0600, "first line is empty" },
		{ "\nsqlite:@DB@\n", 0, 0600, "first line is empty" },
		{ NULL, DBURI_FILE_MAX_BYTES + 1, 0600, "too large" },
	};
	const char *b = bin();
	char f[128], db[128], err[128], text[DBURI_FILE_MAX_BYTES + 200];

	(void)state;
	unsetenv(DBURI_ENV);
	path_in(f, sizeof(f), "ref.uri");
	path_in(db, sizeof(db), "refused.db");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e;
		const char *at;
		size_t n;

		path_in(err, sizeof(err), "ref.err");
		if (cases[i].text) {
			at = strstr(cases[i].text, "@DB@");
			if (at)
				snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - cases[i].text), cases[i].text, db,
					 at + 4);
			else
				snprintf(text, sizeof(text), "%s", cases[i].text);
			n = strlen(text);
		} else {
			memset(text, 'a', cases[i].len);
			memcpy(text, "sqlite:", 7);
			n = cases[i].len;
		}
		write_file(f, text, n, cases[i].mode);
		/* $CASTELLAN_DB is set: a refused file must not fall back to it */
		assert_int_equal(tu_run("CASTELLAN_DB='sqlite:%s' '%s' sms --db-file '%s' init >/dev/null 2>'%s'", db, b,
					f, err), 1);
		e = slurp(err);
		assert_non_null(strstr(e, cases[i].says));
		assert_non_null(strstr(e, "--db-file"));
		free(e);
		assert_int_equal(access(db, F_OK), -1); /* nothing opened or created */
	}
	/* the same rule in every command that opens the store */
	write_str(f, "sqlite:/nowhere.db\n", 0644);
	for (int k = 0; k < 2; k++) {
		char *e;

		if (k == 0)
			assert_int_equal(tu_run("'%s' web --data '%s/wd' serve --http 127.0.0.1:0 --db-file '%s' "
						">/dev/null 2>'%s'", b, tmp, f, err), 1);
		else /* refused before the keystore is even looked at */
			assert_int_equal(tu_run("'%s' headend --data-dir '%s/hd' --keystore /nonexistent --db-file "
						"'%s' >/dev/null 2>'%s'", b, tmp, f, err), 1);
		e = slurp(err);
		assert_non_null(strstr(e, "too open"));
		assert_null(strstr(e, "keystore"));
		free(e);
	}
	/* --help says it */
	assert_int_equal(tu_run("'%s' sms --help | grep -q -- --db-file", b), 0);
	assert_int_equal(tu_run("'%s' web --help | grep -q -- --db-file", b), 0);
	assert_int_equal(tu_run("'%s' headend --help | grep -q -- --db-file", b), 0);
}

/* ---- PostgreSQL with a password ---------------------------------------------- */

/* A cluster whose only role has a password and whose socket requires it. */
static void pg_start(void)
{
	const char *bindir = pgt_bindir();
	char pwf[200], auth[300];

	if (!bindir) {
		pg_why = "PostgreSQL server binaries not found";
		return;
	}
	snprintf(pg_dir, sizeof(pg_dir), "%s/pg", tmp);
	if (mkdir(pg_dir, 0700) != 0) {
		pg_why = "mkdir";
		goto fail;
	}
	snprintf(pwf, sizeof(pwf), "%s/pwfile", pg_dir);
	write_str(pwf, PG_PASSWORD "\n", 0600);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("postgres");

		if (!pw || chown(pg_dir, pw->pw_uid, pw->pw_gid) != 0 || chown(pwf, pw->pw_uid, pw->pw_gid) != 0 ||
		    chmod(tmp, 0711) != 0) {
			pg_why = "running as root without a postgres user";
			goto fail;
		}
	}
	snprintf(auth, sizeof(auth), "-A scram-sha-256 --pwfile=%s", pwf);
	if ((pg_why = pgt_start(bindir, pg_dir, PG_PORT, auth)) != NULL)
		goto fail;
	snprintf(pg_conninfo, sizeof(pg_conninfo), "host=%s port=%d dbname=postgres user=castellan", pg_dir, PG_PORT);
	return;
fail:
	(void)tu_run("rm -rf '%s'", pg_dir);
	pg_dir[0] = '\0';
}

static void pg_stop(void)
{
	const char *bindir = pgt_bindir();

	if (!pg_dir[0] || !bindir)
		return;
	pgt_stop(bindir, pg_dir);
}

static void test_cli_postgres_password(void **state)
{
	const char *b = bin();
	char f[128], out[128], err[128], uri[800];
	char *o, *e;

	(void)state;
	if (pg_why) {
		printf("SKIP: PostgreSQL with a password: %s\n", pg_why);
		skip();
	}
	unsetenv(DBURI_ENV);
	path_in(f, sizeof(f), "pg.uri");
	path_in(out, sizeof(out), "pg.out");
	path_in(err, sizeof(err), "pg.err");
	/* the server really wants the password: none, or a wrong one, is refused */
	snprintf(uri, sizeof(uri), "postgres:%s\n", pg_conninfo);
	write_str(f, uri, 0600);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' init >'%s' 2>'%s'", b, f, out, err), 1);
	snprintf(uri, sizeof(uri), "postgres:%s password=wrong-one\n", pg_conninfo);
	write_str(f, uri, 0600);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' init >'%s' 2>'%s'", b, f, out, err), 1);
	e = slurp(err);
	assert_null(strstr(e, "wrong-one"));
	assert_non_null(strstr(e, "password=***"));
	free(e);
	/* the conninfo form with the password */
	snprintf(uri, sizeof(uri), "postgres:%s password=" PG_PASSWORD "\n", pg_conninfo);
	write_str(f, uri, 0600);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' init >'%s' 2>'%s'", b, f, out, err), 0);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' card add 2100000077 --name PgFile >>'%s' 2>>'%s'", b, f, out,
				err), 0);
	/* the URI form (password in the userinfo), read the card back */
	snprintf(uri, sizeof(uri), "postgresql://castellan:" PG_PASSWORD "@/postgres?host=%s&port=%d\n", pg_dir,
		 PG_PORT);
	write_str(f, uri, 0600);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' card list >>'%s' 2>>'%s'", b, f, out, err), 0);
	o = slurp(out);
	e = slurp(err);
	assert_non_null(strstr(o, "postgresql database ready"));
	assert_non_null(strstr(o, "2100000077"));
	assert_null(strstr(o, PG_PASSWORD));
	assert_null(strstr(e, PG_PASSWORD));
	free(o);
	free(e);
}

/* ---- web serve: the password stays out of the process list -------------------- */

/* Start argv (argv[0] the binary, argv[1] the command) with its output in
 * log and wait (bounded: 30 s) for the "http=PORT" of its --ready-file;
 * the test fails if it never comes. The child's pid. */
static pid_t start_ready(const char *const argv[], const char *log, const char *ready, unsigned *port)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char *a[32]; /* execv's argv is not const */
		size_t n;

		if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(127);
		for (n = 0; argv[n] && n + 1 < sizeof(a) / sizeof(a[0]); n++)
			if (!(a[n] = strdup(argv[n])))
				_exit(127);
		a[n] = NULL;
		execv(a[0], a);
		_exit(127);
	}
	*port = 0;
	for (int i = 0; i < 300 && !*port; i++) {
		FILE *rf = fopen(ready, "r");

		if (rf) {
			if (fscanf(rf, "http=%u", port) != 1)
				*port = 0;
			fclose(rf);
		}
		if (!*port)
			usleep(100000);
	}
	if (!*port) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("%s --db-file did not start", argv[1]);
	}
	return pid;
}

static void test_web_serve_cmdline(void **state)
{
	const char *b = bin();
	char f[128], data[128], ready[128], log[128], out[128], uri[800], key[80] = "", proc[64];
	char *o, *cmdline, *p;
	const char *secret;
	bool pg = pg_why == NULL;
	unsigned port = 0;
	pid_t pid;
	int st;

	(void)state;
	unsetenv(DBURI_ENV);
	path_in(f, sizeof(f), "web.uri");
	path_in(data, sizeof(data), "webdata");
	path_in(ready, sizeof(ready), "web.ready");
	path_in(log, sizeof(log), "web.log");
	path_in(out, sizeof(out), "web.out");
	if (pg) {
		secret = PG_PASSWORD;
		snprintf(uri, sizeof(uri), "postgres:%s password=" PG_PASSWORD "\n", pg_conninfo);
	} else { /* without PostgreSQL: a path nobody else should see stands in for the secret */
		printf("SKIP: web serve on PostgreSQL (%s): running it on SQLite\n", pg_why);
		secret = "Hidden-Path-71";
		snprintf(uri, sizeof(uri), "sqlite:%s/Hidden-Path-71.db\n", tmp);
	}
	write_str(f, uri, 0600);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' init --admin ops >'%s' 2>/dev/null", b, f, out), 0);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' card add 2100000099 --name WebFile >/dev/null 2>&1", b, f), 0);
	o = slurp(out);
	p = strstr(o, "): ");
	assert_non_null(p);
	snprintf(key, sizeof(key), "%.64s", p + 3);
	free(o);
	assert_int_equal(strlen(key), 64);

	const char *argv[] = { b, "web", "--data", data, "serve", "--http", "127.0.0.1:0", "--db-file", f,
			       "--http-threads", "3", "--ready-file", ready, NULL };

	pid = start_ready(argv, log, ready, &port);
	/* what every local user sees: /proc/PID/cmdline and ps */
	snprintf(proc, sizeof(proc), "/proc/%d/cmdline", (int)pid);
	cmdline = slurp(proc);
	assert_non_null(strstr(cmdline, "--db-file"));
	assert_null(strstr(cmdline, secret));
	assert_null(strstr(cmdline, "password"));
	free(cmdline);
	assert_int_equal(tu_run("ps -ww -o args= -p %d | grep -q -- --db-file", (int)pid), 0);
	assert_int_not_equal(tu_run("ps -ww -eo args= | grep -v grep | grep -q -- '%s'", secret), 0);
	/* the store works from every HTTP thread (each reopened it from the file's URI) */
	for (int i = 0; i < 6; i++)
		assert_int_equal(tu_run("curl -sf -H 'X-API-Key: %s' http://127.0.0.1:%u/api/v1/cards/2100000099 "
					"| grep -q WebFile", key, port), 0);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	o = slurp(log);
	assert_null(strstr(o, secret));
	free(o);
	secret_wipe(key, sizeof(key));
}

/* The head-end too: its HTTP worker threads and carousel reopen the store
 * from the URI it read from the file. */
static void test_headend_db_file(void **state)
{
	const char *b = bin();
	char f[128], data[128], ready[128], log[128], out[128], ks[128], pf[128], uri[800], key[80], proc[64];
	char *o, *p;
	const char *secret = pg_why == NULL ? PG_PASSWORD : "Hidden-Headend-72";
	unsigned port = 0;
	pid_t pid;
	int st;

	(void)state;
	unsetenv(DBURI_ENV);
	path_in(f, sizeof(f), "he.uri");
	path_in(data, sizeof(data), "hedata");
	path_in(ready, sizeof(ready), "he.ready");
	path_in(log, sizeof(log), "he.log");
	path_in(out, sizeof(out), "he.out");
	path_in(ks, sizeof(ks), "he.ks");
	path_in(pf, sizeof(pf), "he.pass");
	if (pg_why == NULL)
		snprintf(uri, sizeof(uri), "postgresql://castellan:" PG_PASSWORD "@/postgres?host=%s&port=%d\n", pg_dir,
			 PG_PORT);
	else
		snprintf(uri, sizeof(uri), "sqlite:%s/Hidden-Headend-72.db\n", tmp);
	write_str(f, uri, 0600);
	write_str(pf, "a passphrase for this test\n", 0600);
	assert_int_equal(tu_run("'%s' keys init --out '%s' --ca-system-id 0x4ADC --passphrase-file '%s' >/dev/null 2>&1",
				b, ks, pf), 0);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' init >/dev/null 2>&1", b, f), 0);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' card add 2100000123 --name HeadendFile >/dev/null 2>&1", b, f), 0);
	assert_int_equal(tu_run("'%s' sms --db-file '%s' key add he-reader --scopes read >'%s' 2>/dev/null", b, f, out), 0);
	o = slurp(out);
	p = strstr(o, "): ");
	assert_non_null(p);
	snprintf(key, sizeof(key), "%.64s", p + 3);
	free(o);
	const char *argv[] = { b, "headend", "--data-dir", data, "--keystore", ks, "--passphrase-file", pf,
			       "--db-file", f, "--http", "127.0.0.1:0", "--ecmg", "off", "--web-root", "off",
			       "--http-threads", "2", "--status-every", "0", "--ready-file", ready, NULL };

	pid = start_ready(argv, log, ready, &port);
	snprintf(proc, sizeof(proc), "/proc/%d/cmdline", (int)pid);
	o = slurp(proc);
	assert_non_null(strstr(o, "--db-file"));
	assert_null(strstr(o, secret));
	free(o);
	for (int i = 0; i < 4; i++)
		assert_int_equal(tu_run("curl -sf -H 'X-API-Key: %s' http://127.0.0.1:%u/api/v1/cards/2100000123 "
					"| grep -q HeadendFile", key, port), 0);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	o = slurp(log);
	assert_null(strstr(o, secret));
	free(o);
	secret_wipe(key, sizeof(key));
}

/* ---- setup ------------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/castellan-dburi-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	pg_start();
	if (pg_why)
		printf("SKIP: PostgreSQL tests: %s\n", pg_why);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pg_stop();
	(void)tu_run("rm -rf '%s'", tmp);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_bounds),
		cmocka_unit_test(test_fuzz_corpus),
		cmocka_unit_test(test_read_file_table),
		cmocka_unit_test(test_read_file_size_and_kind),
		cmocka_unit_test(test_precedence_table),
		cmocka_unit_test(test_cli_sqlite),
		cmocka_unit_test(test_cli_refusals),
		cmocka_unit_test(test_cli_postgres_password),
		cmocka_unit_test(test_web_serve_cmdline),
		cmocka_unit_test(test_headend_db_file),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
