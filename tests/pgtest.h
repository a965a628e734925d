/*
 * pgtest.h - a throwaway PostgreSQL server for the test suites that need a
 * real one (sms/sms_testdb.h, dburi/test_dburi.c): find the server binaries
 * (the newest /usr/lib/postgresql/N/bin, or $CASTELLAN_PG_BINDIR), initdb a
 * cluster in a folder of the caller's, start it listening only on a unix
 * socket in that folder, stop it. When run as root the server runs as user
 * postgres (pgt_as); the caller chowns its folder to that user first.
 */
#ifndef CASTELLAN_PGTEST_H
#define CASTELLAN_PGTEST_H

#include <dirent.h>
#include <unistd.h>
#include "testutil.h"

/* The folder of initdb and pg_ctl, or NULL if there is no server here. */
static inline const char *pgt_bindir(void)
{
	static char best[320];
	int best_v = -1;
	DIR *d;
	struct dirent *e;

	if (getenv("CASTELLAN_PG_BINDIR"))
		return getenv("CASTELLAN_PG_BINDIR");
	if (!(d = opendir("/usr/lib/postgresql")))
		return NULL;
	while ((e = readdir(d)) != NULL) {
		char p[600];
		uint64_t u = 0;
		int v = parse_u64(e->d_name, 1000, &u) == 0 ? (int)u : 0; /* "15", "16": a version */

		snprintf(p, sizeof(p), "/usr/lib/postgresql/%s/bin/initdb", e->d_name);
		if (v > best_v && access(p, X_OK) == 0) {
			best_v = v;
			snprintf(best, sizeof(best), "/usr/lib/postgresql/%s/bin", e->d_name);
		}
	}
	closedir(d);
	return best_v >= 0 ? best : NULL;
}

/* The prefix that runs a server command as user postgres when we are root. */
static inline const char *pgt_as(void)
{
	return geteuid() == 0 ? "runuser -u postgres -- " : "";
}

/* initdb a cluster in dir/data (superuser castellan, auth = initdb's
 * authentication options, e.g. "-A trust"), then start it on a unix socket
 * in dir with the given port (logs in dir/initdb.log, dir/server.log).
 * NULL, or why it failed. */
static inline const char *pgt_start(const char *bin, const char *dir, int port, const char *auth)
{
	if (tu_run("%s%s/initdb -D %s/data %s -U castellan -E UTF8 --no-sync >%s/initdb.log 2>&1", pgt_as(), bin,
		   dir, auth, dir) != 0)
		return "initdb failed (see initdb.log in the cluster's folder)";
	if (tu_run("%s%s/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o \"-p %d -k %s -c listen_addresses='' "
		   "-c fsync=off\" start >/dev/null 2>&1", pgt_as(), bin, dir, dir, port, dir) != 0)
		return "pg_ctl start failed (see server.log in the cluster's folder)";
	return NULL;
}

/* Stop the cluster in dir/data at once (the caller removes dir). */
static inline void pgt_stop(const char *bin, const char *dir)
{
	(void)tu_run("%s%s/pg_ctl -D %s/data -m immediate -w stop >/dev/null 2>&1", pgt_as(), bin, dir);
}

#endif
