/*
 * secret_src.h - where a command's secrets come from, written once: the
 * first line of a file (--passphrase-file, --transport-file, --pin-file;
 * passphrase_get's rules, cas/keys.h) or else an environment variable, and
 * the head-end keystore opened with its passphrase, the reason for a
 * failure said on stderr in the words that name the fix. Used by `card`
 * and `kms`; the other commands' copies can move here.
 */
#ifndef CASTELLAN_CAS_SECRET_SRC_H
#define CASTELLAN_CAS_SECRET_SRC_H

#include "lib/err.h"

struct keystore;

/* path's first line (passphrase_get(path)) or, with path NULL, a copy of
 * $env: CE_NOT_FOUND when env is NULL, unset or empty. *out NULL on error;
 * the caller frees it with secret_free(p, strlen(p)). */
int secret_get(const char *path, const char *env, char **out) WARN_UNUSED;
/* The keystore at path with the passphrase of passphrase_get(pfile). On
 * failure says on stderr "WHO: passphrase: <why> (give --passphrase-file or
 * set $CASTELLAN_PASSPHRASE)" or "WHO: keystore PATH: <error>". 0 or CE_*;
 * *out NULL on error, keystore_free it. */
int keystore_open_pass(const char *who, const char *path, const char *pfile, struct keystore **out) WARN_UNUSED;

#endif
