/*
 * rest_int.h - what the files of the REST API (rest*.c) share, and nothing
 * outside them includes: the request context, the answer helpers, the
 * request and JSON-value readers, and one handler per route. rest.c
 * routes; rest_req.c reads requests; rest_valid.c checks JSON values;
 * rest_json.c writes answers; rest_<resource>.c answer one resource
 * family each. A new resource is a new rest_<thing>.c with one line in
 * rest.c's route table.
 *
 * Conventions: a handler sets x->resp exactly once (an answer or an
 * error); helpers that return bool have set the error answer when they
 * return false, so the handler only returns.
 */
#ifndef CASTELLAN_SMS_REST_INT_H
#define CASTELLAN_SMS_REST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "sms/rest.h"
#include "sms/jsonw.h"
#include "lib/err.h"

/* ---- the request context (rest.c fills it) ----------------------------- */

#define SEG_MAX 5 /* path segments after REST_PREFIX */

struct ctx {
	struct sms_store *s;
	const struct rest_req *req;
	struct rest_resp *resp;
	size_t nseg;
	char seg[SEG_MAX][65];
	size_t nparam;
	struct { char name[32]; char value[SMS_NAME_MAX + 2]; } param[REST_PARAMS_MAX];
	char who[SMS_WHO_MAX + 1];
	unsigned scopes;
};

/* A JSON list being filled by a store iterator: the items and the last id
 * (the next page's cursor). */
struct list_acc {
	json_t *items;
	uint64_t last;
};

/* A growing output buffer of at most CSV_FILE_MAX bytes (dyn_out). */
struct dynbuf {
	char *p;
	size_t len, cap;
};

/* ---- answers (rest_json.c) ---------------------------------------------- */

/* Replace the answer's body (body malloc'ed, taken; may be NULL). */
void set_body(struct rest_resp *resp, int status, const char *ctype, char *body, size_t len);
/* {"error":{"code":code,"message":...}} plus extra members (may be NULL,
 * stolen). */
void fail_x(struct rest_resp *resp, int status, const char *code, json_t *extra, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
#define fail(resp, status, code, ...) fail_x(resp, status, code, NULL, __VA_ARGS__)
/* 500 "internal", r logged (never answered). */
void internal(struct rest_resp *resp, int r);
/* Map a store error to an answer (404, 409, 400, or internal). */
void store_fail(struct rest_resp *resp, int r, const char *what);
/* A compact JSON answer; takes the reference of j (NULL: internal). */
void ok_json(struct rest_resp *resp, int status, json_t *j);
/* {"items":[...],"next_cursor":C|null}; takes items. */
void page_answer(struct ctx *x, json_t *items, size_t n, size_t limit, uint64_t last);

/* ---- JSON writers (rest_json.c) ----------------------------------------- */

extern const char *const state_names[3]; /* enum sms_card_state, in order */

/* A card's members without the closing brace (card_jw_cap bytes at most). */
void card_jw(struct jw *j, const struct sms_card *c);
size_t card_jw_cap(const struct sms_card *c);
/* {serial_no, package, start, finish}; NULL when out of memory. */
json_t *sub_json(const struct sms_subscription *s);

/* ---- reading the request (rest_req.c) ----------------------------------- */

/* The path into x->seg, the query into x->param: 0, or CE_FORMAT/CE_LIMIT. */
int parse_path(struct ctx *x);
int parse_query(struct ctx *x);
/* Only the named parameters (NULL-terminated) are allowed. */
bool params_only(struct ctx *x, const char *const *allowed);
/* The value of a parameter (the last one given), or NULL. */
const char *param(struct ctx *x, const char *name);
/* s is min..max decimal digits. */
bool all_digits(const char *s, size_t min, size_t max);
/* A decimal id in 0..max (strict digits, at most 19). */
bool id_parse(const char *s, uint64_t max, uint64_t *out);
/* limit (1..REST_LIST_MAX) and cursor of a list request. */
bool page_params(struct ctx *x, size_t *limit, uint64_t *cursor);
/* The caller holds scope (else 403). */
bool need(struct ctx *x, unsigned scope);
/* The Content-Type ct is want, parameters allowed. */
bool ctype_is(const char *ct, const char *want);
/* The JSON object of the body, or NULL with the answer set. */
json_t *body_json(struct ctx *x);
/* 400 answers naming a body member. */
void unknown_field(struct ctx *x, const char *key);
void bad_field(struct ctx *x, const char *key, const char *what);

/* ---- JSON values (rest_valid.c): true and *out set, or false ------------ */

bool j_serial(json_t *v, uint64_t *out);
bool j_text(json_t *v, char *dst, size_t cap);
bool j_time(json_t *v, int64_t *out);
bool j_mask(json_t *v, uint32_t *out);
bool j_uint(json_t *v, uint64_t max, uint64_t *out);
bool j_hex16(json_t *v, uint64_t *out);
bool j_state(json_t *v, enum sms_card_state *out);

/* ---- CSV out (rest_csv.c) ----------------------------------------------- */

/* A csv/report writer callback into a struct dynbuf: 0, CE_LIMIT, CE_NOMEM. */
int dyn_out(void *ctx, const char *p, size_t n);

/* ---- the routes (one handler per resource family) ----------------------- */

void r_cards(struct ctx *x);         /* rest_cards.c */
void r_subscriptions(struct ctx *x); /* rest_subscriptions.c */
void r_subscribers(struct ctx *x);   /* rest_subscribers.c */
void r_packages(struct ctx *x);      /* rest_packages.c */
void r_channels(struct ctx *x);      /* rest_packages.c */
void r_import(struct ctx *x);        /* rest_csv.c */
void r_export(struct ctx *x);        /* rest_csv.c */
void r_apikeys(struct ctx *x);       /* rest_keys.c */
void r_generators(struct ctx *x);    /* rest_generators.c */
void r_status(struct ctx *x);        /* rest_generators.c */
void r_blacklist(struct ctx *x);     /* rest_reports.c */
void r_reports(struct ctx *x);       /* rest_reports.c */
void r_fingerprints(struct ctx *x);  /* rest_osd.c */
void r_messages(struct ctx *x);      /* rest_osd.c */
void r_copy_control(struct ctx *x);  /* rest_usage.c */

#endif
