/*
 * auth_legacy.c - moving an older separate panel users file (web.db, the
 * panel's own SQLite file before SMS schema 6) into the SMS store
 * (auth.h web_users_import_file). The file is opened read-only and its
 * rows copied as they are (scrypt cost, salt, hash, role, lock-out), so
 * every password keeps working; then the file is renamed so it is read
 * once. The old table, for reference:
 *   users (name TEXT PRIMARY KEY, role INTEGER 0..2, kdf_n, kdf_r, kdf_p
 *          INTEGER, salt BLOB(16), hash BLOB(32), fails INTEGER,
 *          locked_until INTEGER unix ms)
 * Rows that do not fit (bad name, role, sizes) are skipped and logged.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "web/auth.h"
#include "sms/store.h"
#include "lib/log.h"
#include "lib/util.h"

int web_users_import_file(struct web_users *u, const char *path, size_t *imported, size_t *skipped)
{
	char done[1100];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct sms_panel_user p;
	int r = CE_IO, rc;

	*imported = *skipped = 0;
	memset(&p, 0, sizeof(p));
	if (!path || access(path, F_OK) != 0)
		return 0;
	if (snprintf(done, sizeof(done), "%s.imported", path) >= (int)sizeof(done))
		return CE_ARG;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		LOG_ERR("web", "users file %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT name, role, kdf_n, kdf_r, kdf_p, salt, hash, fails, locked_until"
				   " FROM users ORDER BY name", -1, &st, NULL) != SQLITE_OK) {
		LOG_ERR("web", "users file %s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(st, 0);
		int64_t n = sqlite3_column_int64(st, 2), rr = sqlite3_column_int64(st, 3),
			pp = sqlite3_column_int64(st, 4), role = sqlite3_column_int64(st, 1);

		memset(&p, 0, sizeof(p));
		if (!name || !web_user_name_valid((const char *)name) || role < 0 || role > WEB_ROLE_ADMIN ||
		    n <= 0 || rr <= 0 || pp <= 0 || n > (1 << 20) || rr > 32 || pp > 16 ||
		    sqlite3_column_bytes(st, 5) != SMS_PANEL_SALT_BYTES ||
		    sqlite3_column_bytes(st, 6) != SMS_PANEL_HASH_BYTES) {
			LOG_WARN("web", "users file %s: a row that does not fit skipped", path);
			(*skipped)++;
			continue;
		}
		snprintf(p.name, sizeof(p.name), "%s", (const char *)name);
		p.role = (int)role;
		p.kdf_n = (uint64_t)n;
		p.kdf_r = (uint32_t)rr;
		p.kdf_p = (uint32_t)pp;
		memcpy(p.salt, sqlite3_column_blob(st, 5), SMS_PANEL_SALT_BYTES);
		memcpy(p.hash, sqlite3_column_blob(st, 6), SMS_PANEL_HASH_BYTES);
		p.has_secret = true;
		p.fails = (unsigned)(sqlite3_column_int64(st, 7) & 0xffff);
		p.locked_until_ms = sqlite3_column_int64(st, 8);
		r = sms_panel_user_add(web_users_store(u), &p);
		if (r == CE_EXISTS) {
			LOG_WARN("web", "users file %s: user %s is in the store already: the store's kept", path,
				 p.name);
			(*skipped)++;
		} else if (r != 0) {
			goto out;
		} else {
			(*imported)++;
		}
	}
	if (rc != SQLITE_DONE) {
		LOG_ERR("web", "users file %s: %s", path, sqlite3_errmsg(db));
		r = CE_IO;
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_close(db);
	db = NULL;
	if (rename(path, done) != 0) {
		LOG_ERR("web", "users moved into the store, but %s cannot be renamed: %s", path, strerror(errno));
		r = CE_IO;
		goto out;
	}
	LOG_INFO("web", "users file %s moved into the store: %zu users, %zu skipped; the file is now %s", path,
		 *imported, *skipped, done);
	r = 0;
out:
	secret_wipe(&p, sizeof(p));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}
