/*
 * getapi.c - the free CAS's GET API: bounded query parsing (PHP's rules for
 * names, %XX and '+'), strict validation of set[] values, and the JSON
 * answer with PHP json_encode's escaping (compact, "\/", \uXXXX for
 * non-ASCII) so an integration that compared bodies still matches.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/getapi.h"
#include "sms/jsonw.h"
#include "lib/log.h"
#include "lib/url.h"
#include "lib/util.h"

static const char *const words[] = {
#define GW_STR(name, text) text,
	GETAPI_ERRORS(GW_STR)
#undef GW_STR
};

const char *getapi_word_str(enum getapi_word w)
{
	return (unsigned)w < GETAPI_NWORDS ? words[w] : "BAD_REQUEST";
}

/* ---- parsing ----------------------------------------------------------- */

/* URL-decode src[0..n) into dst (cap bytes, NUL-terminated) as PHP does
 * (lib/url.h); *nul set if the decoded text holds a NUL byte (%00).
 * Returns the decoded length, or (size_t)-1 if it did not fit (dst then
 * holds what fitted). */
static size_t php_decode(const char *src, size_t n, char *dst, size_t cap, bool *nul)
{
	size_t len = 0;
	int r = url_decode_len(src, n, dst, cap, true, &len);

	*nul = memchr(dst, '\0', len) != NULL;
	return r == 0 ? len : (size_t)-1;
}

/* A top-level value (api_key, serial_no): one that did not fit or held
 * %00 becomes "", never a valid key or serial. */
static void decode_plain(const char *src, size_t n, char *dst, size_t cap)
{
	bool nul;

	if (php_decode(src, n, dst, cap, &nul) == (size_t)-1 || nul)
		dst[0] = '\0';
}

static void add_set(struct getapi_req *r, const char *inner, const char *value, size_t vlen, bool nested)
{
	struct getapi_set *s = NULL;
	char *dst = r->text + r->text_len;
	size_t n;

	/* PHP: a repeated key keeps its first position and takes the last value. */
	for (size_t i = 0; i < r->nset; i++)
		if (strcmp(r->set[i].name, inner) == 0)
			s = &r->set[i];
	if (!s) {
		s = &r->set[r->nset++];
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%.29s", inner);
	}
	/* Decoded is never longer than encoded, and the query and the number
	 * of parameters are capped: text[] always has room. */
	n = php_decode(value, vlen, dst, sizeof(r->text) - r->text_len, &s->has_nul);
	if (n == (size_t)-1) { /* unreachable (see above): refused like %00, never stored cut */
		n = strlen(dst);
		s->has_nul = true;
	}
	s->value = dst;
	r->text_len += n + 1;
	if (nested) /* set[x][y]: x's value is an array, never valid */
		snprintf(s->name, sizeof(s->name), "%s[]", inner);
}

int getapi_parse(const char *q, size_t len, struct getapi_req *out)
{
	const char *seg, *val;
	size_t nparams = 0, klen, vlen;

	/* Not a memset of the whole request: set[i] is cleared when it is
	 * taken, text[] is written before it is pointed to. */
	out->has_key = out->has_serial = false;
	out->api_key[0] = out->serial_no[0] = '\0';
	out->nset = 0;
	out->text_len = 0;
	if (len > GETAPI_QUERY_MAX)
		return CE_LIMIT;
	while (url_query_next(&q, &len, &seg, &klen, &val, &vlen)) {
		char key[300];
		bool key_nul;

		if (++nparams > GETAPI_PARAMS_MAX)
			return CE_LIMIT;
		if (php_decode(seg, klen, key, sizeof(key), &key_nul) == (size_t)-1)
			return CE_LIMIT;
		/* PHP turns ' ' and '.' in the base name into '_'. */
		for (char *p = key; *p && *p != '['; p++)
			if (*p == ' ' || *p == '.')
				*p = '_';
		if (strncmp(key, "set[", 4) == 0 && key_nul) {
			add_set(out, "?", val, vlen, false); /* %00 in the name: never a known one */
		} else if (strncmp(key, "set[", 4) == 0) {
			char *inner = key + 4, *close = strchr(inner, ']');
			bool nested;

			if (!close)
				continue; /* PHP: "set[x" is a plain name "set_x" */
			*close = '\0';
			nested = close[1] == '[';
			if (strlen(inner) >= sizeof(out->set[0].name) - 2)
				inner = (char *)"?"; /* too long to be a known name */
			add_set(out, inner, val, vlen, nested);
		} else if (key_nul) {
			continue; /* "api_key%00x": not a name this API reads */
		} else if (strcmp(key, "api_key") == 0) {
			out->has_key = true;
			decode_plain(val, vlen, out->api_key, sizeof(out->api_key));
		} else if (strcmp(key, "serial_no") == 0) {
			out->has_serial = true;
			decode_plain(val, vlen, out->serial_no, sizeof(out->serial_no));
		}
	}
	return 0;
}

/* ---- validation -------------------------------------------------------- */

static bool all_digits(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* s->name is base or base"[]" (an array value: refused). */
static bool named(const struct getapi_set *s, const char *base, bool *array)
{
	size_t n = strlen(base);

	if (strncmp(s->name, base, n) != 0 || (s->name[n] && strcmp(s->name + n, "[]") != 0))
		return false;
	*array = s->name[n] != '\0';
	return true;
}

enum getapi_word getapi_validate(const struct getapi_req *req, struct sms_card_change *ch)
{
	sms_card_change_init(ch);
	for (size_t i = 0; i < req->nset; i++) {
		const struct getapi_set *s = &req->set[i];
		const char *v = s->value;
		bool arr = false;
		uint64_t n;

		/* A value with %00 (or an array) is refused by its field's word:
		 * never stored cut short at the NUL. */
		if (named(s, "name", &arr)) {
			if (arr || s->has_nul || !sms_name_fits(v) || !sms_text_valid(v))
				return GETAPI_NAME_ERROR;
			ch->has_name = true;
			memcpy(ch->name, v, strlen(v) + 1);
		} else if (named(s, "info", &arr)) {
			if (arr || s->has_nul || strlen(v) > SMS_INFO_MAX || !sms_text_valid(v))
				return GETAPI_INFO_ERROR;
			ch->has_info = true;
			memcpy(ch->info, v, strlen(v) + 1);
		} else if (named(s, "access_criteria", &arr)) {
			uint8_t b[4];

			if (arr || s->has_nul || strlen(v) != 8 || hex_decode(v, b, 4) != 0)
				return GETAPI_ACCESS_CRITERIA_ERROR;
			ch->has_ac = true;
			ch->access_criteria = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
		} else if (named(s, "pair", &arr)) {
			if (arr || s->has_nul || (strcmp(v, "0") != 0 && strcmp(v, "1") != 0))
				return GETAPI_PAIR_ERROR;
			ch->has_pair = true;
			ch->pair = v[0] == '1';
		} else if (named(s, "start", &arr)) {
			if (arr || s->has_nul || !all_digits(v, 10) || parse_u64(v, INT64_MAX, &n) != 0)
				return GETAPI_START_ERROR;
			ch->has_start = true;
			ch->start = (int64_t)n;
		} else if (named(s, "finish", &arr)) {
			if (arr || s->has_nul || !all_digits(v, 10) || parse_u64(v, INT64_MAX, &n) != 0)
				return GETAPI_FINISH_ERROR;
			ch->has_finish = true;
			ch->finish = (int64_t)n;
		} else {
			return GETAPI_UNKNOWN_SET_PARAMETER;
		}
	}
	return GETAPI_OK;
}

/* ---- JSON -------------------------------------------------------------- */

int getapi_card_json(const struct sms_card *c, char *body, size_t cap, size_t *len)
{
	struct jw j;
	char num[32];

	/* PHP's values are all strings, numbers included. */
	jw_init(&j, body, cap, JW_PHP);
	jw_lit(&j, "{\"serial_no\":\"");
	jw_u64(&j, c->serial);
	jw_lit(&j, "\",\"name\":");
	jw_str(&j, c->name);
	jw_lit(&j, ",\"info\":");
	jw_str(&j, c->info);
	snprintf(num, sizeof(num), "%08" PRIX32, c->access_criteria);
	jw_lit(&j, ",\"access_criteria\":\"");
	jw_lit(&j, num);
	jw_lit(&j, c->pair ? "\",\"pair\":\"1" : "\",\"pair\":\"0");
	jw_lit(&j, "\",\"start\":\"");
	jw_i64(&j, c->start);
	jw_lit(&j, "\",\"finish\":\"");
	jw_i64(&j, c->finish);
	jw_lit(&j, "\"}");
	return jw_end(&j, len);
}

/* ---- the request ------------------------------------------------------- */

static void answer_word(enum getapi_word w, int *status, char *body, size_t *len, enum getapi_word *word)
{
	const char *t = getapi_word_str(w);

	*status = 400;
	*word = w;
	*len = strlen(t);
	memcpy(body, t, *len);
}

static bool serial_parse(const char *s, uint64_t *out)
{
	size_t n = strlen(s);

	*out = 0;
	if (n == 0 || n > 19 || !all_digits(s, n))
		return false;
	return parse_u64(s, INT64_MAX, out) == 0 && *out != 0;
}

void getapi_handle(struct sms_store *st, const char *query, size_t len, int *status, char *body,
		   size_t *body_len, enum getapi_word *word)
{
	struct getapi_req *req = NULL;
	struct sms_card_change ch;
	struct sms_card card;
	char user[SMS_NAME_MAX + 1], who[SMS_WHO_MAX + 1];
	unsigned scopes = 0;
	uint64_t serial;
	enum getapi_word w;
	int r;

	*body_len = 0;
	req = malloc(sizeof(*req));
	if (!req) {
		r = CE_NOMEM;
		goto internal;
	}
	if (getapi_parse(query, len, req) != 0) {
		answer_word(GETAPI_BAD_REQUEST, status, body, body_len, word);
		goto out;
	}
	r = req->has_key ? sms_apikey_check(st, req->api_key, &scopes, user) : CE_NOT_FOUND;
	if (r != 0 && r != CE_NOT_FOUND)
		goto internal;
	if (r == CE_NOT_FOUND || !(scopes & SMS_SCOPE_READ) || (req->nset && !(scopes & SMS_SCOPE_WRITE))) {
		answer_word(GETAPI_NOT_VALID_API_KEY, status, body, body_len, word);
		goto out;
	}
	if (!req->has_serial || !serial_parse(req->serial_no, &serial) ||
	    (r = sms_card_get(st, serial, &card)) == CE_NOT_FOUND) {
		answer_word(GETAPI_SMARDCARD_NOT_FOUND, status, body, body_len, word);
		goto out;
	}
	if (r != 0)
		goto internal;
	if (req->nset) {
		if ((w = getapi_validate(req, &ch)) != GETAPI_OK) {
			answer_word(w, status, body, body_len, word);
			goto out;
		}
		snprintf(who, sizeof(who), "getapi:%.56s", user);
		r = sms_card_change(st, serial, &ch, who, &card);
		if (r == CE_NOT_FOUND) {
			answer_word(GETAPI_SMARDCARD_NOT_FOUND, status, body, body_len, word);
			goto out;
		}
		if (r == CE_BLOCKED) {
			answer_word(GETAPI_SMARTCARD_BLACKLISTED, status, body, body_len, word);
			goto out;
		}
		if (r != 0)
			goto internal;
	}
	if ((r = getapi_card_json(&card, body, GETAPI_BODY_MAX, body_len)) != 0)
		goto internal;
	*status = 200;
	*word = GETAPI_OK;
	goto out;
internal:
	LOG_ERR("sms", "GET API: %s", err_str(r));
	*status = 500;
	*word = GETAPI_BAD_REQUEST;
	*body_len = strlen("INTERNAL_ERROR");
	memcpy(body, "INTERNAL_ERROR", *body_len);
out:
	if (req)
		secret_wipe(req->api_key, sizeof(req->api_key));
	free(req);
}
