/*
 * rest_csv.c - /api/v1/import and /api/v1/export (docs/api-rest.md,
 * csv.h): CSV in one transaction, CSV out into a growing buffer of at most
 * CSV_FILE_MAX bytes (dyn_out, also the reports' CSV writer).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"
#include "sms/csv.h"

int dyn_out(void *ctx, const char *p, size_t n)
{
	struct dynbuf *d = ctx;

	if (n > CSV_FILE_MAX - d->len)
		return CE_LIMIT;
	if (d->cap - d->len < n) {
		size_t nc = d->cap ? d->cap : 65536;
		char *q;

		while (nc - d->len < n)
			nc *= 2;
		if (!(q = realloc(d->p, nc)))
			return CE_NOMEM;
		d->p = q;
		d->cap = nc;
	}
	memcpy(d->p + d->len, p, n);
	d->len += n;
	return 0;
}

void r_import(struct ctx *x)
{
	struct csv_result res;
	int r;

	if (x->req->method != REST_POST) {
		fail(x->resp, 405, "method_not_allowed", "POST");
		return;
	}
	if (!need(x, SMS_SCOPE_WRITE))
		return;
	if (!ctype_is(x->req->content_type, "text/csv")) {
		fail(x->resp, 415, "unsupported_media_type", "send Content-Type: text/csv");
		return;
	}
	r = csv_import(x->s, x->req->body ? x->req->body : "", x->req->body_len, x->who, NULL, NULL, &res);
	if (r == CE_FORMAT || r == CE_LIMIT ||
	    ((r == CE_RANGE || r == CE_NOT_FOUND || r == CE_EXISTS || r == CE_BLOCKED) && res.line)) {
		json_t *e = json_pack("{s:I}", "line", (json_int_t)res.line);

		fail_x(x->resp, r == CE_LIMIT && !res.line ? 413 : 422, r == CE_LIMIT && !res.line ? "payload_too_large"
		       : "csv_invalid", e, "line %zu: %s; nothing was imported", res.line, res.why);
		return;
	}
	if (r != 0) {
		internal(x->resp, r);
		return;
	}
	ok_json(x->resp, 200, json_pack("{s:I,s:I,s:I}", "rows", (json_int_t)res.rows, "added", (json_int_t)res.added,
					"updated", (json_int_t)res.updated));
}

void r_export(struct ctx *x)
{
	struct dynbuf d = { 0 };
	size_t rows = 0;
	int r;

	if (x->req->method != REST_GET && x->req->method != REST_HEAD) {
		fail(x->resp, 405, "method_not_allowed", "GET");
		return;
	}
	if (!need(x, SMS_SCOPE_READ) || !params_only(x, (const char *const[]){ NULL }))
		return;
	if ((r = csv_export(x->s, dyn_out, &d, &rows)) != 0) {
		free(d.p);
		if (r == CE_LIMIT)
			fail(x->resp, 413, "payload_too_large", "the export is over %u bytes: use the CLI",
			     CSV_FILE_MAX);
		else
			internal(x->resp, r);
		return;
	}
	set_body(x->resp, 200, "text/csv; charset=utf-8", d.p, d.len);
	x->resp->error_code = NULL;
}

