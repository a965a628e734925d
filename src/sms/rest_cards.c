/*
 * rest_cards.c - /api/v1/cards (docs/api-rest.md): the card list (one growing
 * buffer of card_jw), a card with its subscriptions, create, update and
 * delete, and /cards/SERIAL/subscriptions.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"

/* The card list, written with card_jw into one growing buffer:
 * {"items":[card,...],"next_cursor":C|null}. */
struct card_page {
	char *buf;
	size_t cap, len, n;
	uint64_t last;
};

static int page_room(struct card_page *p, size_t need)
{
	char *nb;
	size_t ncap;

	if (p->cap - p->len >= need)
		return 0;
	ncap = (p->cap + need) * 2;
	if (!(nb = realloc(p->buf, ncap)))
		return CE_NOMEM;
	p->buf = nb;
	p->cap = ncap;
	return 0;
}

static int acc_card(void *ctx, const struct sms_card *c)
{
	struct card_page *p = ctx;
	struct jw j;
	size_t n;
	int r;

	if ((r = page_room(p, card_jw_cap(c) + 2)) != 0)
		return r;
	jw_init(&j, p->buf + p->len, p->cap - p->len, JW_JANSSON);
	if (p->n)
		jw_lit(&j, ",");
	card_jw(&j, c);
	jw_lit(&j, "}");
	if ((r = jw_end(&j, &n)) != 0)
		return r;
	p->len += n;
	p->n++;
	p->last = c->serial;
	return 0;
}

static void cards_list(struct ctx *x)
{
	static const char *const ok[] = { "limit", "cursor", "serial_prefix", "name", "state", "info", "q", NULL };
	struct sms_card_filter f = { .state = -1 };
	const char *info = NULL, *q = NULL;
	struct card_page a = { NULL, 0, 0, 0, 0 };
	const char *v;
	size_t limit, n = 0;
	uint64_t cursor;
	int r;

	if (!params_only(x, ok) || !page_params(x, &limit, &cursor))
		goto out;
	if ((v = param(x, "serial_prefix")) != NULL) {
		if (!all_digits(v, 1, 19)) {
			fail(x->resp, 400, "invalid_value", "serial_prefix: 1 to 19 digits");
			goto out;
		}
		snprintf(f.serial_prefix, sizeof(f.serial_prefix), "%s", v);
	}
	if ((v = param(x, "name")) != NULL) {
		if (!sms_name_fits(v)) {
			fail(x->resp, 400, "invalid_value", "name: longer than %d characters", SMS_NAME_CHARS);
			goto out;
		}
		snprintf(f.name, sizeof(f.name), "%s", v);
	}
	if ((v = param(x, "state")) != NULL) {
		for (f.state = 0; f.state < 3 && strcmp(v, state_names[f.state]) != 0; f.state++)
			;
		if (f.state == 3) {
			fail(x->resp, 400, "invalid_value", "state: active, blocked or retired");
			goto out;
		}
	}
	if ((info = param(x, "info")) != NULL && (strlen(info) > SMS_NAME_MAX || !sms_text_valid(info))) {
		fail(x->resp, 400, "invalid_value", "info: at most %d bytes of text", SMS_NAME_MAX);
		goto out;
	}
	if ((q = param(x, "q")) != NULL && (strlen(q) > SMS_NAME_MAX || !sms_text_valid(q) || (info && *info))) {
		fail(x->resp, 400, "invalid_value", "q: at most %d bytes of text, and not with info", SMS_NAME_MAX);
		goto out;
	}
	if ((r = page_room(&a, 64)) != 0) {
		internal(x->resp, r);
		goto out;
	}
	memcpy(a.buf, "{\"items\":[", 10);
	a.len = 10;
	/* Text searches (store_search.c; http.c runs them on the search workers). */
	r = q && *q ? sms_card_search(x->s, &f, SMS_SEARCH_ANY, q, cursor, limit, acc_card, &a, &n)
		    : sms_card_find_info(x->s, &f, info, cursor, limit, acc_card, &a, &n);
	if (r == 0)
		r = page_room(&a, 48);
	if (r == CE_ARG) { /* store.h: info text under SMS_SEARCH_MIN_CHARS characters */
		fail(x->resp, 400, "query_too_short", "info: at least %d characters (q: shorter text matches whole names)",
		     SMS_SEARCH_MIN_CHARS);
		goto out;
	}
	if (r == CE_TIMEOUT) {
		fail(x->resp, 503, "search_timeout", "the search ran past its deadline: narrow it (more text, "
		     "serial_prefix, state)");
		goto out;
	}
	if (r != 0) {
		internal(x->resp, r);
		goto out;
	}
	/* next_cursor as page_answer writes it */
	if (n == limit)
		a.len += (size_t)snprintf(a.buf + a.len, a.cap - a.len, "],\"next_cursor\":\"%" PRIu64 "\"}", a.last);
	else
		a.len += (size_t)snprintf(a.buf + a.len, a.cap - a.len, "],\"next_cursor\":null}");
	set_body(x->resp, 200, "application/json", a.buf, a.len);
	x->resp->error_code = NULL;
	return;
out:
	free(a.buf);
}

/* Card fields of a POST or PATCH body. */
struct card_in {
	uint64_t serial;
	bool has_serial, has_sub;
	int64_t subscriber_id;
	struct sms_card_change ch;
};

static bool card_fields(struct ctx *x, json_t *o, bool create, struct card_in *in)
{
	const char *k;
	json_t *v;
	uint64_t u;

	in->serial = 0;
	in->has_serial = in->has_sub = false;
	in->subscriber_id = 0;
	sms_card_change_init(&in->ch); /* not a memset of its 65 KiB of text buffers */
	json_object_foreach(o, k, v) {
		struct sms_card_change *ch = &in->ch;

		if (strcmp(k, "serial_no") == 0 && create) {
			if (!j_serial(v, &in->serial))
				return bad_field(x, k, "a decimal serial 1..2^63-1 (string or number)"), false;
			in->has_serial = true;
		} else if (strcmp(k, "name") == 0) {
			if (!j_text(v, ch->name, sizeof(ch->name)))
				return bad_field(x, k, "UTF-8 text of at most 255 bytes, no control characters"), false;
			ch->has_name = true;
		} else if (strcmp(k, "info") == 0) {
			if (!j_text(v, ch->info, sizeof(ch->info)))
				return bad_field(x, k, "UTF-8 text of at most 1023 bytes, no control characters"), false;
			ch->has_info = true;
		} else if (strcmp(k, "chip_id") == 0) {
			if (!j_text(v, ch->chip_id, sizeof(ch->chip_id)))
				return bad_field(x, k, "text of at most 64 bytes"), false;
			ch->has_chip = true;
		} else if (strcmp(k, "pair") == 0) {
			if (json_is_boolean(v))
				ch->pair = json_is_true(v);
			else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
				ch->pair = json_integer_value(v) == 1;
			else
				return bad_field(x, k, "true, false, 0 or 1"), false;
			ch->has_pair = true;
		} else if (strcmp(k, "start") == 0) {
			if (!j_time(v, &ch->start))
				return bad_field(x, k, "UNIX seconds, 0..99999999999"), false;
			ch->has_start = true;
		} else if (strcmp(k, "finish") == 0) {
			if (!j_time(v, &ch->finish))
				return bad_field(x, k, "UNIX seconds, 0..99999999999"), false;
			ch->has_finish = true;
		} else if (strcmp(k, "access_criteria") == 0) {
			if (!j_mask(v, &ch->access_criteria))
				return bad_field(x, k, "8 hex digits"), false;
			ch->has_ac = true;
		} else if (strcmp(k, "state") == 0) {
			if (!j_state(v, &ch->state))
				return bad_field(x, k, "active, blocked or retired"), false;
			ch->has_state = true;
		} else if (strcmp(k, "subscriber_id") == 0) {
			if (!j_uint(v, INT64_MAX, &u))
				return bad_field(x, k, "a subscriber id, or 0 for none"), false;
			in->subscriber_id = (int64_t)u;
			in->has_sub = true;
		} else {
			unknown_field(x, k);
			return false;
		}
	}
	if (in->ch.has_start && in->ch.has_finish && in->ch.finish < in->ch.start)
		return bad_field(x, "finish", "before start"), false;
	if (create && !in->has_serial)
		return bad_field(x, "serial_no", "required"), false;
	if (in->has_sub && (in->ch.has_name || in->ch.has_info))
		return bad_field(x, "subscriber_id", "give either subscriber_id or name/info"), false;
	return true;
}

/* A card and its subscriptions: written straight with jsonw (the same
 * bytes as json_dumps of the card object plus "subscriptions", checked by
 * tests/sms/test_rest.c), the hot path of the REST API. */
static void card_answer(struct ctx *x, int status, uint64_t serial)
{
	struct sms_subscription stack_subs[REST_SUBS_INLINE], *subs = stack_subs, *heap = NULL;
	struct sms_card c;
	struct jw j;
	size_t n = 0, cap, len;
	char *body;
	int r;

	/* One query: the card, its subscriber and its subscriptions; a card
	 * with more than REST_SUBS_INLINE of them is read again whole (every
	 * subscription is answered, never the first ones only). */
	r = sms_card_get_subs(x->s, serial, &c, subs, REST_SUBS_INLINE, &n);
	if (r == CE_OVERFLOW) {
		if (!(heap = malloc(SMS_PACKAGES_MAX * sizeof(*heap)))) {
			internal(x->resp, CE_NOMEM);
			return;
		}
		subs = heap;
		r = sms_card_get_subs(x->s, serial, &c, subs, SMS_PACKAGES_MAX, &n);
	}
	if (r != 0) {
		free(heap);
		store_fail(x->resp, r == CE_OVERFLOW ? CE_INTERNAL : r, "card");
		return;
	}
	cap = card_jw_cap(&c) + 80 * n;
	if (!(body = malloc(cap))) {
		free(heap);
		internal(x->resp, CE_NOMEM);
		return;
	}
	jw_init(&j, body, cap, JW_JANSSON);
	card_jw(&j, &c);
	jw_lit(&j, ",\"subscriptions\":[");
	for (size_t i = 0; i < n; i++) {
		jw_lit(&j, i ? ",{\"package\":" : "{\"package\":");
		jw_u64(&j, subs[i].package);
		jw_lit(&j, ",\"start\":");
		jw_i64(&j, subs[i].start);
		jw_lit(&j, ",\"finish\":");
		jw_i64(&j, subs[i].finish);
		jw_lit(&j, "}");
	}
	jw_lit(&j, "]}");
	free(heap);
	if (jw_end(&j, &len) != 0) {
		free(body);
		internal(x->resp, CE_OVERFLOW);
		return;
	}
	set_body(x->resp, status, "application/json", body, len);
	x->resp->error_code = NULL;
}

static void card_create(struct ctx *x)
{
	json_t *j = body_json(x);
	struct card_in in;
	struct sms_card c = { 0 };
	int r;

	if (!j)
		return;
	if (!card_fields(x, j, true, &in))
		goto out;
	c.serial = in.serial;
	memcpy(c.chip_id, in.ch.chip_id, sizeof(c.chip_id));
	memcpy(c.name, in.ch.name, sizeof(c.name));
	memcpy(c.info, in.ch.info, sizeof(c.info));
	c.state = in.ch.has_state ? in.ch.state : SMS_CARD_ACTIVE;
	c.pair = in.ch.pair;
	c.start = in.ch.start;
	c.finish = in.ch.finish;
	if ((r = sms_tx_begin(x->s)) != 0) {
		internal(x->resp, r);
		goto out;
	}
	r = sms_card_add(x->s, &c, x->who);
	if (r == 0 && in.ch.has_ac) {
		struct sms_card_change ac = { .has_ac = true, .access_criteria = in.ch.access_criteria };

		r = sms_card_change(x->s, c.serial, &ac, x->who, NULL);
	}
	if (r == 0 && in.has_sub && in.subscriber_id)
		r = sms_card_set_subscriber(x->s, c.serial, in.subscriber_id, x->who);
	if ((r = sms_tx_end(x->s, r)) != 0) {
		store_fail(x->resp, r, r == CE_NOT_FOUND ? "subscriber" : "card");
		goto out;
	}
	card_answer(x, 201, c.serial);
out:
	json_decref(j);
}

static void card_update(struct ctx *x, uint64_t serial)
{
	json_t *j = body_json(x);
	struct card_in in;
	struct sms_card cur;
	int r;

	if (!j)
		return;
	if (!card_fields(x, j, false, &in))
		goto out;
	if ((r = sms_tx_begin(x->s)) != 0) {
		internal(x->resp, r);
		goto out;
	}
	r = sms_card_change(x->s, serial, &in.ch, x->who, &cur);
	if (r == 0 && in.ch.has_start != in.ch.has_finish && cur.finish < cur.start)
		r = CE_RANGE;
	if (r == 0 && in.has_sub) {
		r = sms_card_set_subscriber(x->s, serial, in.subscriber_id, x->who);
		if (r == CE_NOT_FOUND) {
			r = sms_tx_end(x->s, r); /* rolls back */
			fail(x->resp, 404, "not_found", "subscriber not found");
			goto out;
		}
	}
	if ((r = sms_tx_end(x->s, r)) != 0) {
		store_fail(x->resp, r, "card");
		goto out;
	}
	card_answer(x, 200, serial);
out:
	json_decref(j);
}

void r_cards(struct ctx *x)
{
	uint64_t serial;
	enum rest_method m = x->req->method;

	if (x->nseg == 1) {
		if (m == REST_GET || m == REST_HEAD) {
			if (need(x, SMS_SCOPE_READ))
				cards_list(x);
		} else if (m == REST_POST) {
			if (need(x, SMS_SCOPE_WRITE))
				card_create(x);
		} else {
			fail(x->resp, 405, "method_not_allowed", "GET or POST");
		}
		return;
	}
	if (!id_parse(x->seg[1], INT64_MAX, &serial) || serial == 0) {
		fail(x->resp, 404, "not_found", "card not found (serials are decimal)");
		return;
	}
	if (x->nseg == 3 && strcmp(x->seg[2], "subscriptions") == 0) {
		static const char *const ok[] = { "limit", "cursor", NULL };
		struct sms_subscription *subs;
		struct sms_card c;
		json_t *arr;
		size_t n = 0, limit, i, shown = 0;
		uint64_t cursor;
		char next[24];
		int r;

		if (m != REST_GET && m != REST_HEAD) {
			fail(x->resp, 405, "method_not_allowed", "GET");
			return;
		}
		if (!need(x, SMS_SCOPE_READ) || !params_only(x, ok) || !page_params(x, &limit, &cursor))
			return;
		/* Every subscription of the card (at most one a package), then the
		 * page: packages from cursor on; next_cursor is null only when
		 * nothing is left after it. */
		if (!(subs = malloc(SMS_PACKAGES_MAX * sizeof(*subs)))) {
			internal(x->resp, CE_NOMEM);
			return;
		}
		if ((r = sms_card_get_subs(x->s, serial, &c, subs, SMS_PACKAGES_MAX, &n)) != 0) {
			free(subs);
			store_fail(x->resp, r == CE_OVERFLOW ? CE_INTERNAL : r, "card");
			return;
		}
		arr = json_array();
		for (i = 0; i < n && subs[i].package < cursor; i++)
			;
		for (; i < n && shown < limit; i++, shown++)
			json_array_append_new(arr, sub_json(&subs[i]));
		snprintf(next, sizeof(next), "%" PRIu64, i < n ? (uint64_t)subs[i - 1].package + 1 : 0);
		free(subs);
		ok_json(x->resp, 200, json_pack("{s:o,s:o}", "items", arr, "next_cursor", i < n ? json_string(next)
				 : json_null()));
		return;
	}
	if (x->nseg != 2) {
		fail(x->resp, 404, "not_found", "no such resource");
		return;
	}
	if (m == REST_GET || m == REST_HEAD) {
		if (need(x, SMS_SCOPE_READ))
			card_answer(x, 200, serial);
	} else if (m == REST_PATCH) {
		if (need(x, SMS_SCOPE_WRITE))
			card_update(x, serial);
	} else if (m == REST_DELETE) {
		int r;

		if (!need(x, SMS_SCOPE_ADMIN))
			return;
		if ((r = sms_card_delete(x->s, serial, x->who)) != 0)
			store_fail(x->resp, r, "card");
		else
			set_body(x->resp, 204, "application/json", NULL, 0);
	} else {
		fail(x->resp, 405, "method_not_allowed", "GET, PATCH or DELETE");
	}
}

