/*
 * reconcile_print.c - the reconciliation as CSV or JSON text
 * (reconcile_print.h).
 */
#include <inttypes.h>
#include <string.h>
#include <jansson.h>
#include "headend/reconcile_print.h"

struct rec_out {
	bool json;
	json_t *items;
	FILE *f;
};

static int print_diff(void *ctx, const struct reconcile_diff *d)
{
	struct rec_out *o = ctx;

	if (o->json) {
		char ser[24];

		snprintf(ser, sizeof(ser), "%" PRIu64, d->serial);
		return json_array_append_new(o->items, json_pack("{s:s,s:s,s:s,s:s}", "serial_no", ser, "kind", d->kind,
								 "sms", d->sms, "cas", d->cas)) == 0 ? 0 : CE_NOMEM;
	}
	fprintf(o->f, "%" PRIu64 ",%s,\"%s\",\"%s\"\r\n", d->serial, d->kind, d->sms, d->cas);
	return 0;
}

int reconcile_print(struct sms_store *s, int64_t t, bool json, FILE *f, struct reconcile_stats *st)
{
	struct rec_out o = { .json = json, .f = f };
	int r;

	memset(st, 0, sizeof(*st));
	if (o.json && !(o.items = json_array()))
		return CE_NOMEM;
	if (!o.json)
		fprintf(f, "serial_no,kind,sms,cas\r\n");
	r = reconcile_run(s, t, print_diff, &o, st);
	if (r == 0 && o.json) {
		json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:O}", "at", (json_int_t)t, "sms_cards",
				      (json_int_t)st->sms_cards, "cas_cards", (json_int_t)st->cas_cards, "same",
				      (json_int_t)st->same, "differences", (json_int_t)st->diffs, "items", o.items);

		if (!j || json_dumpf(j, f, JSON_INDENT(1)) != 0)
			r = CE_IO;
		fputc('\n', f);
		json_decref(j);
	}
	json_decref(o.items);
	if (r == 0)
		fprintf(stderr, "reconcile at %" PRId64 ": %zu SMS cards, %zu CAS cards, %zu the same, %zu differences\n",
			t, st->sms_cards, st->cas_cards, st->same, st->diffs);
	return r;
}
