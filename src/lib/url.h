/*
 * url.h - the one URL query reader of Castellan: the REST API (sms/rest_req.c)
 * and the GET API (sms/getapi.c, PHP-compatible) both split and decode
 * their query strings here.
 *
 * A query is "name=value" segments joined by '&'; '+' decodes to a space and
 * %XX to a byte (RFC 3986 2.1, HTML form encoding). Strict mode (REST)
 * refuses a malformed escape and %00. PHP mode reproduces PHP's urldecode:
 * a malformed escape stays as it is, and a value that does not fit is cut.
 */
#ifndef CASTELLAN_LIB_URL_H
#define CASTELLAN_LIB_URL_H

#include <stdbool.h>
#include <stddef.h>
#include "lib/err.h"

/* Decode src[0..n) into dst (cap bytes, always NUL-terminated when cap > 0).
 * 0, CE_FORMAT (strict: bad escape or %00), CE_LIMIT (did not fit: PHP mode
 * leaves what fitted). */
int url_decode(const char *src, size_t n, char *dst, size_t cap, bool php) WARN_UNUSED;
/* The same, and *len gets the bytes written before the NUL terminator: in
 * PHP mode a %00 decodes to a NUL byte inside them, which a caller that
 * must refuse it (the GET API) finds with memchr. */
int url_decode_len(const char *src, size_t n, char *dst, size_t cap, bool php, size_t *len) WARN_UNUSED;

/* The next non-empty segment of *q (*len bytes): name[0..*nlen) and
 * value[0..*vlen) (value empty, pointing after the name, without '=').
 * Advances *q and *len past it and its '&'. false when none is left. */
bool url_query_next(const char **q, size_t *len, const char **name, size_t *nlen, const char **value,
	size_t *vlen);

#endif
