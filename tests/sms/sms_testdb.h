/*
 * sms_testdb.h - what the SMS suites (test_sms.c, test_rest.c, ...) share: the two store
 * backends (SQLite files in a temp dir; a real PostgreSQL server started
 * here with initdb + pg_ctl on a unix socket, as user postgres when run as
 * root, or the one in CASTELLAN_PG_URI), a fresh database per test, and a
 * fingerprint of a whole database to show that a refused change left it
 * unchanged. Define SMS_TEST_PG_PORT (a port of its own per test binary,
 * since meson runs them in parallel) before including.
 */
#ifndef CASTELLAN_SMS_TESTDB_H
#define CASTELLAN_SMS_TESTDB_H

#include <pwd.h>
#include <unistd.h>
#include <sys/stat.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include "testutil.h"
#include "pgtest.h"
#include "sms/csv.h"
#include "sms/store.h"

#ifndef SMS_TEST_PG_PORT
#error "define SMS_TEST_PG_PORT"
#endif

struct backend {
	const char *name;
	char uri[1024];
	bool available;
	const char *why;
};

static struct backend sqlite_be = { .name = "sqlite" };
static struct backend pg_be = { .name = "postgresql" };
static char pg_dir[256];
static char sqlite_dir[256];
static int sqlite_seq;

static int tdb_run(const char *cmd)
{
	return system(cmd) == 0 ? 0 : -1;
}

static void tdb_pg_start(void)
{
	const char *bin = pgt_bindir();

	if (getenv("CASTELLAN_PG_URI")) {
		snprintf(pg_be.uri, sizeof(pg_be.uri), "%s", getenv("CASTELLAN_PG_URI"));
		pg_be.available = true;
		return;
	}
	if (!bin) {
		pg_be.why = "PostgreSQL server binaries not found (apt-get install postgresql, or set CASTELLAN_PG_URI)";
		return;
	}
	snprintf(pg_dir, sizeof(pg_dir), "/tmp/castellan-pg-XXXXXX");
	if (!mkdtemp(pg_dir)) {
		pg_be.why = "mkdtemp failed";
		return;
	}
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("postgres");

		if (!pw || chown(pg_dir, pw->pw_uid, pw->pw_gid) != 0) {
			pg_be.why = "running as root without a postgres user";
			return;
		}
	}
	if ((pg_be.why = pgt_start(bin, pg_dir, SMS_TEST_PG_PORT, "-A trust")) != NULL)
		return;
	snprintf(pg_be.uri, sizeof(pg_be.uri), "postgres:host=%s port=%d dbname=postgres user=castellan", pg_dir,
		 SMS_TEST_PG_PORT);
	pg_be.available = true;
}

static void tdb_pg_stop(void)
{
	const char *bin = pgt_bindir();

	if (!pg_dir[0] || !bin)
		return;
	pgt_stop(bin, pg_dir);
	(void)tu_run("rm -rf %s", pg_dir);
}

static const char *tdb_fresh(struct backend *be)
{
	static char uri[1100];
	PGconn *c;
	PGresult *res;

	if (!be->available)
		skip();
	if (be == &sqlite_be) {
		snprintf(uri, sizeof(uri), "%s/t%d.db", sqlite_dir, ++sqlite_seq);
		return uri;
	}
	c = PQconnectdb(be->uri + strlen("postgres:"));
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	res = PQexec(c, "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	PQfinish(c);
	return be->uri;
}

static struct sms_store *tdb_open_fresh(void **state)
{
	struct backend *be = *state;
	struct sms_store *s = NULL;

	assert_int_equal(sms_store_open(tdb_fresh(be), &s), 0);
	assert_string_equal(sms_store_backend(s), be->name);
	return s;
}

/* ---- a fingerprint of the whole database ------------------------------ */

struct tdb_fp {
	EVP_MD_CTX *md;
	size_t n;
};

static int tdb_fp_out(void *ctx, const char *p, size_t n)
{
	EVP_DigestUpdate(((struct tdb_fp *)ctx)->md, p, n);
	return 0;
}

static int tdb_fp_audit(void *ctx, const struct sms_audit *a)
{
	struct tdb_fp *f = ctx;

	f->n++;
	EVP_DigestUpdate(f->md, a->what, strlen(a->what));
	return 0;
}

static int tdb_fp_pkg(void *ctx, const struct sms_package *p)
{
	struct tdb_fp *f = ctx;

	EVP_DigestUpdate(f->md, &p->id, sizeof(p->id));
	EVP_DigestUpdate(f->md, p->name, strlen(p->name) + 1);
	return 0;
}

static int tdb_fp_subr(void *ctx, const struct sms_subscriber *u)
{
	struct tdb_fp *f = ctx;

	EVP_DigestUpdate(f->md, &u->id, sizeof(u->id));
	EVP_DigestUpdate(f->md, u->name, strlen(u->name) + 1);
	EVP_DigestUpdate(f->md, u->info, strlen(u->info) + 1);
	return 0;
}

static int tdb_fp_chan(void *ctx, const struct sms_channel *c)
{
	struct tdb_fp *f = ctx;

	EVP_DigestUpdate(f->md, &c->service_id, sizeof(c->service_id));
	EVP_DigestUpdate(f->md, &c->access_criteria, sizeof(c->access_criteria));
	EVP_DigestUpdate(f->md, c->name, strlen(c->name) + 1);
	return 0;
}

/* Hex SHA-256 over cards (the CSV export: every field and package),
 * packages, subscribers, channels and the audit log. */
static void tdb_fingerprint(struct sms_store *s, char out[65])
{
	struct tdb_fp f = { .n = 0 };
	uint8_t h[32];
	size_t rows = 0;

	f.md = EVP_MD_CTX_new();
	assert_non_null(f.md);
	assert_int_equal(EVP_DigestInit_ex(f.md, EVP_sha256(), NULL), 1);
	assert_int_equal(csv_export(s, tdb_fp_out, &f, &rows), 0);
	assert_int_equal(sms_package_list(s, -1, 70000, tdb_fp_pkg, &f, NULL), 0);
	assert_int_equal(sms_subscriber_list(s, NULL, 0, 10000, tdb_fp_subr, &f, NULL), 0);
	assert_int_equal(sms_channel_list(s, -1, 70000, tdb_fp_chan, &f, NULL), 0);
	assert_int_equal(sms_audit_list(s, 100000, tdb_fp_audit, &f), 0);
	assert_int_equal(EVP_DigestFinal_ex(f.md, h, NULL), 1);
	EVP_MD_CTX_free(f.md);
	hex_encode(h, 32, out);
}

static int tdb_group_sqlite(void **state) { *state = &sqlite_be; return 0; }
static int tdb_group_pg(void **state) { *state = &pg_be; return 0; }

/* Run tests on SQLite, then on PostgreSQL; returns failures. */
static int tdb_run_both(const char *what, const struct CMUnitTest *tests, size_t n)
{
	char name[128], cmd[300];
	int fails = 0;

	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/castellan-%s-XXXXXX", what);
	if (!mkdtemp(sqlite_dir))
		return 1;
	sqlite_be.available = true;
	snprintf(name, sizeof(name), "%s on sqlite", what);
	fails += _cmocka_run_group_tests(name, tests, n, tdb_group_sqlite, NULL);
	tdb_pg_start();
	if (!pg_be.available)
		printf("SKIP: PostgreSQL tests: %s\n", pg_be.why);
	snprintf(name, sizeof(name), "%s on postgresql", what);
	fails += _cmocka_run_group_tests(name, tests, n, tdb_group_pg, NULL);
	tdb_pg_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sqlite_dir);
	(void)tdb_run(cmd);
	return fails;
}

#endif
