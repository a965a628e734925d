/*
 * dburi.h - where a command's SMS store URI comes from, in one place for
 * every command that opens the store (sms, web serve, headend).
 *
 * A PostgreSQL URI may carry a password ("postgresql://u:PW@h/db",
 * "postgres:... password=PW"). On the command line it is readable by every
 * local user (ps, /proc/PID/cmdline), so the URI can also come from a file
 * or the environment. Precedence, first found wins:
 *
 *   1. --db URI          the command line (a warning if it holds a password)
 *   2. --db-file FILE    the first line of FILE
 *   3. $CREDENTIALS_DIRECTORY/db-uri  a systemd credential (LoadCredential=
 *                        db-uri:FILE in the unit), read by the FILE rules
 *   4. $CASTELLAN_DB     the environment (readable only by the same user)
 *   5. the command's default (e.g. sqlite:DIR/sms.db)
 *
 * FILE rules (like ssh for private keys): a regular file, no permission bit
 * for group or others (chmod 600 / 400), 1..DBURI_FILE_MAX_BYTES bytes. The
 * URI is the first line: up to the first '\n' (or the end of the file), a
 * trailing '\r' dropped; the rest of the file is ignored. An empty first
 * line, or a NUL or another '\r' in it, is refused. The URI is never logged: messages
 * show it through sms_store_uri_redact (password replaced by "***").
 */
#ifndef CASTELLAN_SMS_DBURI_H
#define CASTELLAN_SMS_DBURI_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define DBURI_FILE_MAX_BYTES 4096 /* a --db-file larger than this is refused */
#define DBURI_ENV "CASTELLAN_DB"
#define DBURI_CREDENTIAL "db-uri" /* in $CREDENTIALS_DIRECTORY */

enum dburi_source {
	DBURI_FROM_NONE = 0,
	DBURI_FROM_OPTION,  /* --db */
	DBURI_FROM_FILE,    /* --db-file */
	DBURI_FROM_ENV,     /* $CASTELLAN_DB */
	DBURI_FROM_DEFAULT, /* the command's default */
	DBURI_FROM_CREDENTIAL, /* $CREDENTIALS_DIRECTORY/db-uri (systemd) */
};

/* The resolved URI: a NUL-terminated copy the caller owns. Wipe with
 * dburi_cleanup on every path (it may hold a password). */
struct dburi {
	char uri[DBURI_FILE_MAX_BYTES + 1];
	enum dburi_source source;
};

/* The first line of buf[0..len) into out (cap bytes, NUL-terminated).
 * 0, CE_LIMIT (len > DBURI_FILE_MAX_BYTES or the line does not fit in cap),
 * CE_FORMAT (empty first line, or a NUL or '\r' in it). out is "" on error. */
int dburi_parse(const uint8_t *buf, size_t len, char *out, size_t cap) WARN_UNUSED;

/* Read FILE by the rules above into out (cap bytes). 0 or CE_NOT_FOUND,
 * CE_IO (unreadable, not a regular file), CE_BLOCKED (group/others have
 * permission bits), CE_LIMIT (too large), CE_FORMAT (empty first line / NUL).
 * Nothing is printed; out is wiped and "" on error. */
int dburi_read_file(const char *path, char *out, size_t cap) WARN_UNUSED;

/* Resolve by the precedence above. db: the --db value or NULL; db_file:
 * the --db-file value or NULL; def: the default, or NULL when the caller
 * applies its own (then 0 with out->uri "" and DBURI_FROM_NONE if nothing
 * else is given). On failure prints one line
 * "PROG: --db-file FILE: why" on stderr (prog like "castellan sms") and
 * returns the CE_* code; out->uri is "" then. */
int dburi_resolve(const char *prog, const char *db, const char *db_file, const char *def,
		  struct dburi *out) WARN_UNUSED;

/* Resolve as above with the SMS commands' default ($CASTELLAN_SMS_DB, else
 * ./castellan-sms.db) and open the store: 0, or the error said on stderr
 * ("PROG: cannot open URI-without-password: why") and its CE_* code. The
 * URI is wiped either way. */
struct sms_store;
int dburi_store_open(const char *prog, const char *db, const char *db_file, struct sms_store **out) WARN_UNUSED;

/* "--db", "--db-file", "$CASTELLAN_DB", "default". */
const char *dburi_source_name(enum dburi_source s);

/* Wipe the URI (secret_wipe). Safe on a zeroed struct, idempotent. */
void dburi_cleanup(struct dburi *u);

#endif
