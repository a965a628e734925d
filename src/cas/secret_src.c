/*
 * secret_src.c - a secret from a file or the environment (secret_src.h).
 */
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
