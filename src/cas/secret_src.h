/*
 * secret_src.h - where a secret other than the keystore passphrase comes
 * from, written once: the first line of a file (--transport-file,
 * --pin-file, --ta-passphrase-file; passphrase_get's rules, cas/keys.h) or
 * else an environment variable. Used by `card` (the transport passphrase)
 * and kms/kms_tool.c (the PKCS#11 PIN, the trust authority's passphrase).
 */
#ifndef CASTELLAN_CAS_SECRET_SRC_H
#define CASTELLAN_CAS_SECRET_SRC_H

#include "lib/err.h"

/* path's first line (passphrase_get(path)) or, with path NULL, a copy of
 * $env: CE_NOT_FOUND when env is NULL, unset or empty. *out NULL on error;
 * the caller frees it with secret_free(p, strlen(p)). */
int secret_get(const char *path, const char *env, char **out) WARN_UNUSED;

#endif
