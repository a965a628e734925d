/*
 * secret_src.c - secrets from a file or the environment, and the keystore
 * opened with its passphrase (secret_src.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cas/keys.h"
#include "cas/secret_src.h"
#include "lib/util.h"

int secret_get(const char *path, const char *env, char **out)
{
	const char *v;

	*out = NULL;
	if (path)
		return passphrase_get(path, out);
	v = env ? getenv(env) : NULL;
	if (!v || !*v)
		return CE_NOT_FOUND;
	*out = strdup(v);
	return *out ? 0 : CE_NOMEM;
}

int keystore_open_pass(const char *who, const char *path, const char *pfile, struct keystore **out)
{
	char *pass = NULL;
	int r;

	*out = NULL;
	if ((r = passphrase_get(pfile, &pass)) != 0) {
		char why[600];

		fprintf(stderr, "%s: passphrase: %s (give --passphrase-file or set $%s)\n", who,
			passphrase_why(pfile, r, why, sizeof(why)), KEYSTORE_PASSPHRASE_ENV);
		return r;
	}
	r = keystore_load(path, pass, out);
	secret_free(pass, strlen(pass));
	if (r != 0)
		fprintf(stderr, "%s: keystore %s: %s\n", who, path, err_str(r));
	return r;
}
