/*
 * jsonw.h - a bounded JSON writer for the API answers on the hot path
 * (GET /api.php, REST GET card): no allocation, no tree. Two string
 * escapings: PHP's json_encode (the GET API's drop-in: "\/" and \uXXXX for
 * non-ASCII) and jansson's json_dumps(JSON_COMPACT) (the REST API's other
 * answers, so both paths write the same bytes). Overflow is sticky: the
 * writer stops and jw_end says CE_OVERFLOW.
 */
#ifndef CASTELLAN_SMS_JSONW_H
#define CASTELLAN_SMS_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jw_style { JW_PHP, JW_JANSSON };

struct jw {
	char *buf;
	size_t cap, len;
	bool overflow;
	enum jw_style style;
};

void jw_init(struct jw *j, char *buf, size_t cap, enum jw_style style);
void jw_raw(struct jw *j, const char *s, size_t n);
void jw_lit(struct jw *j, const char *s);          /* NUL-terminated, unescaped */
void jw_str(struct jw *j, const char *s);          /* a quoted, escaped string */
void jw_i64(struct jw *j, int64_t v);
void jw_u64(struct jw *j, uint64_t v);
/* 0 and *len, or CE_OVERFLOW. */
int jw_end(const struct jw *j, size_t *len);

#endif
