/*
 * dburi.c - the SMS store URI of a command: --db, --db-file, $CASTELLAN_DB
 * or the default (dburi.h has the rules). The file is read through one
 * open descriptor (fstat then read: the checked file is the read file),
 * bounded to DBURI_FILE_MAX_BYTES, and every copy of the URI is wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sms/dburi.h"
#include "lib/util.h"
#include "sms/store.h"

#define STR_(x) #x
#define STR(x) STR_(x)

int dburi_parse(const uint8_t *buf, size_t len, char *out, size_t cap)
{
	size_t n = 0;

	if (!out || cap == 0)
		return CE_ARG;
	out[0] = '\0';
	if (!buf && len)
		return CE_ARG;
	if (len > DBURI_FILE_MAX_BYTES)
		return CE_LIMIT;
	while (n < len && buf[n] != '\n')
		n++;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0)
		return CE_FORMAT;
	/* A NUL would cut the URI short; a stray CR (a line end of another
	 * system, or a paste) is never part of one. */
	if (memchr(buf, '\0', n) || memchr(buf, '\r', n))
		return CE_FORMAT;
	if (n >= cap)
		return CE_LIMIT;
	memcpy(out, buf, n);
	out[n] = '\0';
	return 0;
}

int dburi_read_file(const char *path, char *out, size_t cap)
{
	uint8_t buf[DBURI_FILE_MAX_BYTES + 1];
	size_t len = 0;
	struct stat st;
	int fd, r = CE_IO;

	if (!out || cap == 0)
		return CE_ARG;
	out[0] = '\0';
	if (!path || !*path)
		return CE_ARG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? CE_NOT_FOUND : CE_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	if ((st.st_mode & 077) != 0) {
		r = CE_BLOCKED;
		goto out;
	}
	if (st.st_size > DBURI_FILE_MAX_BYTES) {
		r = CE_LIMIT;
		goto out;
	}
	/* Read one byte past the cap: a file that grew since fstat is refused too. */
	while (len < sizeof(buf)) {
		ssize_t got = read(fd, buf + len, sizeof(buf) - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			goto out;
		if (got == 0)
			break;
		len += (size_t)got;
	}
	r = dburi_parse(buf, len, out, cap);
out:
	secret_wipe(buf, sizeof(buf));
	if (r != 0)
		secret_wipe(out, cap);
	close(fd);
	return r;
}

static int put(struct dburi *out, const char *s, enum dburi_source src)
{
	size_t n = strlen(s);

	if (n >= sizeof(out->uri))
		return CE_LIMIT;
	memcpy(out->uri, s, n + 1);
	out->source = src;
	return 0;
}

static const char *file_why(int r)
{
	switch (r) {
	case CE_NOT_FOUND:
		return "no such file";
	case CE_BLOCKED:
		return "permissions are too open: group or others have access to a file that may hold "
		       "the database password (chmod 600 it)";
	case CE_LIMIT:
		return "too large (over " STR(DBURI_FILE_MAX_BYTES) " bytes)";
	case CE_FORMAT:
		return "the first line is empty or holds a NUL or CR byte (it must be the store URI)";
	default:
		return "cannot read it (not a regular file, or no permission)";
	}
}

int dburi_resolve(const char *prog, const char *db, const char *db_file, const char *def, struct dburi *out)
{
	const char *env = getenv(DBURI_ENV), *cred_dir = getenv("CREDENTIALS_DIRECTORY");
	char shown[2 * DBURI_FILE_MAX_BYTES]; /* "***" may be longer than what it hides */
	int r;

	if (!out)
		return CE_ARG;
	secret_wipe(out, sizeof(*out));
	if (!prog)
		prog = "castellan";
	if (db) {
		if (!*db) {
			fprintf(stderr, "%s: --db: empty URI\n", prog);
			return CE_ARG;
		}
		if ((r = put(out, db, DBURI_FROM_OPTION)) != 0) {
			fprintf(stderr, "%s: --db: longer than %d bytes\n", prog, DBURI_FILE_MAX_BYTES);
			return r;
		}
		/* The redacted form differs only if there is a password to hide. */
		sms_store_uri_redact(db, shown, sizeof(shown));
		if (strcmp(shown, db) != 0)
			fprintf(stderr, "%s: warning: the --db URI holds a password, which every local user can "
				"read in the process list; use --db-file FILE (mode 600) or $%s\n", prog, DBURI_ENV);
		secret_wipe(shown, sizeof(shown));
		return 0;
	}
	if (db_file) {
		if ((r = dburi_read_file(db_file, out->uri, sizeof(out->uri))) != 0) {
			fprintf(stderr, "%s: --db-file %s: %s\n", prog, db_file, file_why(r));
			return r;
		}
		out->source = DBURI_FROM_FILE;
		return 0;
	}
	if (cred_dir && *cred_dir) {
		char cp[4200];

		snprintf(cp, sizeof(cp), "%s/%s", cred_dir, DBURI_CREDENTIAL);
		if (access(cp, F_OK) == 0) {
			if ((r = dburi_read_file(cp, out->uri, sizeof(out->uri))) != 0) {
				fprintf(stderr, "%s: credential %s: %s\n", prog, cp, file_why(r));
				return r;
			}
			out->source = DBURI_FROM_CREDENTIAL;
			return 0;
		}
	}
	if (env && *env) {
		if ((r = put(out, env, DBURI_FROM_ENV)) != 0)
			fprintf(stderr, "%s: $%s: longer than %d bytes\n", prog, DBURI_ENV, DBURI_FILE_MAX_BYTES);
		return r;
	}
	if (def && *def) {
		if ((r = put(out, def, DBURI_FROM_DEFAULT)) != 0)
			fprintf(stderr, "%s: default store path too long\n", prog);
		return r;
	}
	return 0; /* DBURI_FROM_NONE: the caller applies its own default */
}

const char *dburi_source_name(enum dburi_source s)
{
	switch (s) {
	case DBURI_FROM_OPTION:
		return "--db";
	case DBURI_FROM_FILE:
		return "--db-file";
	case DBURI_FROM_ENV:
		return "$" DBURI_ENV;
	case DBURI_FROM_CREDENTIAL:
		return "credential " DBURI_CREDENTIAL;
	case DBURI_FROM_DEFAULT:
		return "default";
	default:
		return "none";
	}
}

void dburi_cleanup(struct dburi *u)
{
	if (u)
		secret_wipe(u, sizeof(*u));
}

int dburi_store_open(const char *prog, const char *db, const char *db_file, struct sms_store **out)
{
	const char *def = getenv("CASTELLAN_SMS_DB");
	struct dburi uri;
	int r;

	*out = NULL;
	if ((r = dburi_resolve(prog, db, db_file, def && *def ? def : "castellan-sms.db", &uri)) != 0)
		return r;
	if ((r = sms_store_open(uri.uri, out)) != 0) {
		char shown[1024];

		sms_store_uri_redact(uri.uri, shown, sizeof(shown));
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, shown, err_str(r));
		secret_wipe(shown, sizeof(shown));
	}
	dburi_cleanup(&uri);
	return r;
}
