/*
 * test_rest.c - the REST API (src/sms/rest.h) over real HTTP to the evhttp
 * server (src/sms/http.h), on SQLite and on a real PostgreSQL server
 * (sms_testdb.h): cards, subscribers, packages, channels, subscriptions,
 * bulk calls, pagination and filters, keys and scopes, CSV over HTTP, the
 * OpenAPI document, and a table of bad requests each answered with its
 * status and stable error code while the database stays unchanged.
 */
#include <fcntl.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <jansson.h>
#define SMS_TEST_PG_PORT 5434
#include "sms_testdb.h"
#include "sms/http.h"
#include "sms/rest.h"

struct srv {
	struct event_base *base;
	struct sms_store *store;
	struct sms_http *http;
	char admin[65], rw[65], ro[65];
};

static void srv_start(void **state, struct srv *sv)
{
	memset(sv, 0, sizeof(*sv));
	sv->store = tdb_open_fresh(state);
	assert_int_equal(sms_user_add(sv->store, "billing", "test", NULL), 0);
	assert_int_equal(sms_user_add(sv->store, "ops", "test", NULL), 0);
	assert_int_equal(sms_apikey_create(sv->store, "ops", 7, "test", sv->admin), 0);
	assert_int_equal(sms_apikey_create(sv->store, "billing", SMS_SCOPE_READ | SMS_SCOPE_WRITE, "test", sv->rw), 0);
	assert_int_equal(sms_apikey_create(sv->store, "billing", SMS_SCOPE_READ, "test", sv->ro), 0);
	assert_int_equal(sms_package_add(sv->store, 40, "sports extra", "test"), 0);
	sv->base = event_base_new();
	assert_non_null(sv->base);
	assert_int_equal(sms_http_new(sv->base, sv->store, "127.0.0.1:0", &sv->http), 0);
}

static void srv_stop(struct srv *sv)
{
	sms_http_free(sv->http);
	event_base_free(sv->base);
	sms_store_close(sv->store);
}

struct answer {
	int status;
	char ctype[128];
	char *body; /* malloc'ed, NUL-terminated */
	size_t len;
	json_t *json;
};

static void answer_free(struct answer *a)
{
	free(a->body);
	json_decref(a->json);
	memset(a, 0, sizeof(*a));
}

/* One HTTP/1.0 request on a fresh connection; the server's loop runs here
 * between non-blocking writes and reads (bounded: a hung server fails). */
static void http_req(struct srv *sv, const char *method, const char *path, const char *headers, const char *ctype,
		     const char *body, size_t blen, struct answer *a)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(sms_http_port(sv->http)) };
	size_t hcap = 4096 + strlen(path) + strlen(headers), cap = 1 << 16, got = 0, sent = 0, total;
	char *req = malloc(hcap + blen), *resp = malloc(cap);
	int fd = socket(AF_INET, SOCK_STREAM, 0), hl;
	bool done = false;
	const char *sep;

	memset(a, 0, sizeof(*a));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	hl = snprintf(req, hcap, "%s %s HTTP/1.0\r\nHost: sms\r\n%s%s%s%sContent-Length: %zu\r\n\r\n", method, path,
		      headers, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", blen);
	assert_true(hl > 0 && (size_t)hl < hcap);
	if (blen)
		memcpy(req + hl, body, blen);
	total = (size_t)hl + blen;
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	for (int i = 0; i < 200000 && !done; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };

		event_base_loop(sv->base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 1) <= 0)
			continue;
		if (sent < total && (p.revents & POLLOUT)) {
			ssize_t n = write(fd, req + sent, total - sent);

			if (n > 0)
				sent += (size_t)n;
		}
		if (p.revents & (POLLIN | POLLHUP)) {
			ssize_t n;

			if (cap - got < 4096) {
				cap *= 2;
				resp = realloc(resp, cap);
			}
			n = read(fd, resp + got, cap - 1 - got);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				done = true;
			else if (n > 0)
				got += (size_t)n;
		}
	}
	close(fd);
	free(req);
	assert_true(done);
	resp[got] = '\0';
	assert_int_equal(strncmp(resp, "HTTP/1.", 7), 0);
	a->status = tu_http_status(resp);
	sep = strstr(resp, "\r\n\r\n");
	assert_non_null(sep);
	{
		const char *ct = strcasestr(resp, "\r\nContent-Type: ");

		if (ct && ct < sep)
			snprintf(a->ctype, sizeof(a->ctype), "%.*s", (int)strcspn(ct + 16, "\r\n"), ct + 16);
	}
	a->len = got - (size_t)(sep + 4 - resp);
	a->body = malloc(a->len + 1);
	memcpy(a->body, sep + 4, a->len);
	a->body[a->len] = '\0';
	free(resp);
	if (strncmp(a->ctype, "application/json", 16) == 0 && a->len)
		a->json = json_loads(a->body, 0, NULL);
}

/* A JSON request with a key in X-API-Key. */
static int call(struct srv *sv, const char *key, const char *method, const char *path, const char *json,
		struct answer *a)
{
	char hd[200] = "";

	if (key)
		snprintf(hd, sizeof(hd), "X-API-Key: %s\r\n", key);
	http_req(sv, method, path, hd, json ? "application/json" : NULL, json ? json : "", json ? strlen(json) : 0, a);
	return a->status;
}

static const char *jstr(json_t *o, const char *path)
{
	json_t *v = o;
	char buf[128];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && v; t = strtok_r(NULL, ".", &save)) {
		uint64_t ix = 0;

		if (json_is_array(v))
			assert_int_equal(parse_u64(t, SIZE_MAX, &ix), 0);
		v = json_is_array(v) ? json_array_get(v, (size_t)ix) : json_object_get(v, t);
	}
	assert_non_null(v);
	return json_is_string(v) ? json_string_value(v) : json_is_true(v) ? "true" : json_is_false(v) ? "false" : "?";
}

static json_int_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void expect_error(struct answer *a, int status, const char *code)
{
	if (a->status != status || !a->json || strcmp(jstr(a->json, "error.code"), code) != 0)
		fail_msg("expected %d %s, got %d %s", status, code, a->status, a->body);
	assert_non_null(json_object_get(json_object_get(a->json, "error"), "message"));
	assert_string_equal(a->ctype, "application/json");
}

struct audit_find {
	const char *needle;
	char who[SMS_WHO_MAX + 1];
};

static int audit_cb(void *ctx, const struct sms_audit *e)
{
	struct audit_find *f = ctx;

	if (strstr(e->what, f->needle) && !f->who[0])
		snprintf(f->who, sizeof(f->who), "%s", e->who);
	return 0;
}

/* ---- cards ------------------------------------------------------------- */

static void test_cards(void **state)
{
	struct srv sv;
	struct answer a;
	char path[128];

	srv_start(state, &sv);
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/cards",
			      "{\"serial_no\":\"2100000000\",\"chip_id\":\"C1\",\"name\":\"Ann\",\"info\":\"Lisbon\","
			      "\"pair\":true,\"start\":1700000000,\"finish\":1800000000,\"access_criteria\":\"0000000f\"}",
			      &a), 201);
	assert_string_equal(jstr(a.json, "serial_no"), "2100000000");
	assert_string_equal(jstr(a.json, "access_criteria"), "0000000F");
	assert_string_equal(jstr(a.json, "pair"), "true");
	assert_string_equal(jstr(a.json, "state"), "active");
	assert_int_equal(json_array_size(json_object_get(a.json, "subscriptions")), 4);
	answer_free(&a);
	/* Serial as a number too; a duplicate is a conflict. */
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/cards", "{\"serial_no\":2100000001}", &a), 201);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/cards", "{\"serial_no\":2100000001}", &a), 409);
	expect_error(&a, 409, "conflict");
	answer_free(&a);

	/* Read back, with Authorization: Bearer. */
	{
		char hd[128];

		snprintf(hd, sizeof(hd), "Authorization: Bearer %s\r\n", sv.ro);
		http_req(&sv, "GET", "/api/v1/cards/2100000000", hd, NULL, "", 0, &a);
		assert_int_equal(a.status, 200);
		assert_string_equal(jstr(a.json, "name"), "Ann");
		assert_string_equal(jstr(a.json, "info"), "Lisbon");
		assert_int_equal(jint(a.json, "finish"), 1800000000);
		assert_int_equal(jint(json_array_get(json_object_get(a.json, "subscriptions"), 3), "package"), 3);
		answer_free(&a);
	}

	/* PATCH: several fields at once, one transaction, audited with the key. */
	assert_int_equal(call(&sv, sv.rw, "PATCH", "/api/v1/cards/2100000000",
			      "{\"state\":\"blocked\",\"pair\":0,\"access_criteria\":\"00000001\",\"name\":\"Ann B\"}",
			      &a), 200);
	assert_string_equal(jstr(a.json, "state"), "blocked");
	assert_string_equal(jstr(a.json, "pair"), "false");
	assert_string_equal(jstr(a.json, "access_criteria"), "00000001");
	assert_string_equal(jstr(a.json, "name"), "Ann B");
	answer_free(&a);
	{
		struct audit_find f = { .needle = "card 2100000000 set" };

		assert_int_equal(sms_audit_list(sv.store, 100, audit_cb, &f), 0);
		assert_int_equal(strncmp(f.who, "rest:billing:", 13), 0);
		assert_int_equal(strlen(f.who), 13 + 8);
	}
	/* A subscriber shared by two cards. */
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/subscribers", "{\"name\":\"Family\",\"info\":\"x\"}", &a),
			 201);
	{
		char body[64];
		json_int_t id = jint(a.json, "id");

		answer_free(&a);
		snprintf(body, sizeof(body), "{\"subscriber_id\":%lld}", (long long)id);
		assert_int_equal(call(&sv, sv.rw, "PATCH", "/api/v1/cards/2100000001", body, &a), 200);
		assert_string_equal(jstr(a.json, "name"), "Family");
		answer_free(&a);
		snprintf(path, sizeof(path), "/api/v1/subscribers/%lld", (long long)id);
		assert_int_equal(call(&sv, sv.rw, "PATCH", path, "{\"info\":\"Porto\"}", &a), 200);
		assert_string_equal(jstr(a.json, "info"), "Porto");
		assert_string_equal(jstr(a.json, "name"), "Family");
		answer_free(&a);
		assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/subscribers?name=Family", NULL, &a), 200);
		assert_int_equal(json_array_size(json_object_get(a.json, "items")), 1);
		answer_free(&a);
	}
	assert_int_equal(call(&sv, sv.rw, "PATCH", "/api/v1/cards/2100000001", "{\"subscriber_id\":999}", &a), 404);
	answer_free(&a);

	/* DELETE needs admin. */
	assert_int_equal(call(&sv, sv.rw, "DELETE", "/api/v1/cards/2100000001", NULL, &a), 403);
	expect_error(&a, 403, "forbidden");
	/* names the scope and how to get a key with it */
	assert_non_null(strstr(jstr(a.json, "error.message"), "--scopes admin"));
	answer_free(&a);
	assert_int_equal(call(&sv, sv.admin, "DELETE", "/api/v1/cards/2100000001", NULL, &a), 204);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards/2100000001", NULL, &a), 404);
	expect_error(&a, 404, "not_found");
	answer_free(&a);
	srv_stop(&sv);
}

/* GET card and the card list are written without jansson (rest.c card_jw):
 * the same bytes as jansson's dump of the parsed answers, and GET card is
 * the list's object for that card plus "subscriptions", for text that
 * needs escaping. */
static void test_card_bytes_as_jansson(void **state)
{
	struct srv sv;
	struct answer a, l;
	json_t *item;
	char *ref;

	srv_start(state, &sv);
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/cards",
			      "{\"serial_no\":\"2100000077\",\"chip_id\":\"0x1/2\",\"name\":\"A \\\"q\\\" \\\\ b/c\","
			      "\"info\":\"caf\\u00e9 \\u20ac \\ud83d\\ude00 <&>\",\"pair\":true,\"start\":5,"
			      "\"finish\":1800000000,\"access_criteria\":\"80000005\"}",
			      &a), 201);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards/2100000077", NULL, &a), 200);
	assert_non_null(a.json);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards?serial_prefix=2100000077", NULL, &l), 200);
	/* the list is written by the same card writer: jansson's bytes too */
	ref = json_dumps(l.json, JSON_COMPACT);
	assert_string_equal(l.body, ref);
	free(ref);
	item = json_array_get(json_object_get(l.json, "items"), 0);
	assert_non_null(item);
	json_object_set(item, "subscriptions", json_object_get(a.json, "subscriptions"));
	assert_int_equal(json_array_size(json_object_get(item, "subscriptions")), 3);
	ref = json_dumps(item, JSON_COMPACT);
	assert_string_equal(a.body, ref);
	free(ref);
	answer_free(&l);
	answer_free(&a);
	srv_stop(&sv);
}

/* A card with more subscriptions than one page and than GET card's first
 * read (REST_SUBS_INLINE): GET card answers every one; the subscriptions
 * list pages through all of them and says null only on the last page,
 * also when that page is exactly full (issue 14: pagination never lies). */
static void test_card_many_subscriptions(void **state)
{
	const size_t total = REST_SUBS_INLINE + 44; /* 300 */
	struct srv sv;
	struct answer a;
	struct sms_card c = { .serial = 2100000500 };
	struct sms_package pk;
	char path[160], cursor[32] = "", name[32];
	size_t seen = 0, pages = 0;
	uint32_t expect = 0;

	srv_start(state, &sv);
	assert_int_equal(sms_card_add(sv.store, &c, "test"), 0);
	assert_int_equal(sms_tx_begin(sv.store), 0);
	for (uint32_t p = 0; p < total; p++) {
		struct sms_subscription sub = { .serial = c.serial, .package = p, .start = 1, .finish = 2 };

		int r;

		snprintf(name, sizeof(name), "p%u", p);
		/* some exist already (0..31, the fixture's): adding one would
		 * fail, and on PostgreSQL a failed statement aborts the
		 * transaction, so look first */
		r = sms_package_get(sv.store, p, &pk) == 0 ? 0 : sms_package_add(sv.store, p, name, "test");
		assert_int_equal(r, 0);
		assert_int_equal(sms_subscribe(sv.store, &sub, "test"), 0);
	}
	assert_int_equal(sms_tx_end(sv.store, 0), 0);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards/2100000500", NULL, &a), 200);
	assert_int_equal(json_array_size(json_object_get(a.json, "subscriptions")), total);
	answer_free(&a);
	for (;;) {
		json_t *items, *next;
		bool last;

		snprintf(path, sizeof(path), "/api/v1/cards/2100000500/subscriptions?limit=100%s%s",
			 cursor[0] ? "&cursor=" : "", cursor);
		assert_int_equal(call(&sv, sv.ro, "GET", path, NULL, &a), 200);
		items = json_object_get(a.json, "items");
		for (size_t i = 0; i < json_array_size(items); i++)
			assert_int_equal(jint(json_array_get(items, i), "package"), expect++);
		seen += json_array_size(items);
		pages++;
		next = json_object_get(a.json, "next_cursor");
		last = json_is_null(next);
		if (seen < total) {
			assert_true(json_is_string(next)); /* more left: never null */
			snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
		} else {
			assert_true(last); /* 300 = 3 full pages: null on the third */
		}
		answer_free(&a); /* next points into it */
		if (last || pages > 5)
			break;
	}
	assert_int_equal(seen, total);
	assert_int_equal(pages, 3);
	/* limits: a bad limit or an unknown parameter is refused */
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards/2100000500/subscriptions?limit=0", NULL, &a), 400);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards/2100000500/subscriptions?x=1", NULL, &a), 400);
	answer_free(&a);
	srv_stop(&sv);
}

static void test_list_filters(void **state)
{
	struct srv sv;
	struct answer a;
	char path[160], cursor[32] = "";
	size_t total = 0;

	srv_start(state, &sv);
	for (uint64_t i = 0; i < 25; i++) {
		struct sms_card c = { .serial = (i < 20 ? 2100000100 : 3100000100) + i, .state = i % 5 == 0 };

		snprintf(c.name, sizeof(c.name), "%s", i % 2 ? "odd" : "even");
		assert_int_equal(sms_card_add(sv.store, &c, "test"), 0);
	}
	/* Pages of 10 over the 2100... prefix: 10, 10 (then nothing). */
	for (int page = 0; page < 5; page++) {
		json_t *next;

		snprintf(path, sizeof(path), "/api/v1/cards?serial_prefix=21&limit=10%s%s", cursor[0] ? "&cursor=" : "",
			 cursor);
		assert_int_equal(call(&sv, sv.ro, "GET", path, NULL, &a), 200);
		total += json_array_size(json_object_get(a.json, "items"));
		next = json_object_get(a.json, "next_cursor");
		if (json_is_null(next)) {
			answer_free(&a);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
		answer_free(&a);
	}
	assert_int_equal(total, 20);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards?name=odd&state=active&limit=1000", NULL, &a), 200);
	/* odd i: 1,3,...,23 (12); blocked ones are i%5==0: 5, 15 -> 10 left. */
	assert_int_equal(json_array_size(json_object_get(a.json, "items")), 10);
	assert_true(json_is_null(json_object_get(a.json, "next_cursor")));
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards?serial_prefix=3100000120&state=blocked", NULL, &a), 200);
	assert_int_equal(json_array_size(json_object_get(a.json, "items")), 1);
	assert_string_equal(jstr(a.json, "items.0.serial_no"), "3100000120");
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/packages?limit=1000", NULL, &a), 200);
	assert_int_equal(json_array_size(json_object_get(a.json, "items")), 33);
	assert_string_equal(jstr(a.json, "items.32.name"), "sports extra");
	answer_free(&a);
	srv_stop(&sv);
}

/* Text searches: the same answers on the loop and on the search workers
 * (sms_http_set_search), the <3-character rule, literal text, errors. */
static void test_search_workers(void **state)
{
	struct backend *be = *state;
	struct srv sv;
	struct answer a;
	char uri[1100], *loop_body[16] = { NULL };
	static const char *const paths[] = {
		"/api/v1/cards?q=augusta", "/api/v1/cards?q=AUGUSTA&limit=1", "/api/v1/cards?info=lisboa",
		"/api/v1/cards?q=li", "/api/v1/cards?q=50%25%20off", "/api/v1/cards?q=50x%20off",
		"/api/v1/cards?q=%22NEAR(", "/api/v1/cards?name=Li", "/api/v1/cards?q=augusta&state=blocked",
	};
	static const size_t want[] = { 2, 1, 2, 2, 1, 0, 1, 1, 1 };

	srv_start(state, &sv);
	if (be == &sqlite_be)
		snprintf(uri, sizeof(uri), "%s/t%d.db", sqlite_dir, sqlite_seq);
	else
		snprintf(uri, sizeof(uri), "%s", be->uri);
	for (uint64_t i = 0; i < 6; i++) {
		static const char *const nm[] = { "Ann Smith", "Li", "50% Off_Ltd", "x \"NEAR(y)", "Bob", "li" };
		static const char *const in[] = { "Rua Augusta 12, Lisboa", "", "", "", "RUA AUGUSTA 14, LISBOA", "" };
		struct sms_card c = { .serial = 2100000100 + i, .state = i == 4 };

		snprintf(c.name, sizeof(c.name), "%s", nm[i]);
		snprintf(c.info, sizeof(c.info), "%s", in[i]);
		assert_int_equal(sms_card_add(sv.store, &c, "test"), 0);
	}
	for (int round = 0; round < 2; round++) {
		if (round == 1) /* now on the workers */
			assert_int_equal(sms_http_set_search(sv.http, uri, NULL), 0);
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			assert_int_equal(call(&sv, sv.ro, "GET", paths[i], NULL, &a), 200);
			if (json_array_size(json_object_get(a.json, "items")) != want[i])
				fail_msg("%s: %zu items, want %zu", paths[i], json_array_size(json_object_get(a.json, "items")),
					 want[i]);
			if (round == 0) {
				loop_body[i] = strdup(a.body);
			} else { /* byte for byte the loop's answer */
				assert_string_equal(a.body, loop_body[i]);
				free(loop_body[i]);
			}
			answer_free(&a);
		}
		assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards?info=ab", NULL, &a), 400);
		assert_string_equal(jstr(a.json, "error.code"), "query_too_short");
		answer_free(&a);
		assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards?q=augusta&info=lisboa", NULL, &a), 400);
		answer_free(&a);
		assert_int_equal(call(&sv, "0000", "GET", "/api/v1/cards?q=augusta", NULL, &a), 401);
		answer_free(&a);
		assert_int_equal(call(&sv, NULL, "GET", "/api/v1/cards?q=augusta", NULL, &a), 401);
		answer_free(&a);
	}
	/* /api.php goes on beside them */
	{
		char path[200];

		snprintf(path, sizeof(path), "/api.php?api_key=%s&serial_no=2100000101", sv.ro);
		assert_int_equal(call(&sv, NULL, "GET", path, NULL, &a), 200);
		assert_non_null(strstr(a.body, "2100000101"));
		answer_free(&a);
	}
	srv_stop(&sv);
}

/* ---- subscriptions, packages, channels --------------------------------- */

static void test_subscriptions_bulk(void **state)
{
	struct srv sv;
	struct answer a;
	struct sms_card c;
	char before[65], after[65];
	static const char bulk[] = "{\"subscribe\":["
				   "{\"serial_no\":\"2100000000\",\"package\":40,\"start\":1,\"finish\":2},"
				   "{\"serial_no\":\"2100000001\",\"package\":3,\"start\":1,\"finish\":2}],"
				   "\"unsubscribe\":[{\"serial_no\":\"2100000000\",\"package\":0},"
				   "{\"serial_no\":\"2100000000\",\"package\":7}]}";

	srv_start(state, &sv);
	for (uint64_t s = 2100000000; s < 2100000002; s++) {
		struct sms_card n = { .serial = s };

		assert_int_equal(sms_card_add(sv.store, &n, "test"), 0);
	}
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/subscriptions",
			      "{\"serial_no\":2100000000,\"package\":0,\"start\":10,\"finish\":20}", &a), 200);
	assert_int_equal(jint(a.json, "finish"), 20);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/subscriptions/bulk", bulk, &a), 200);
	assert_int_equal(jint(a.json, "subscribed"), 2);
	assert_int_equal(jint(a.json, "unsubscribed"), 1);
	answer_free(&a);
	/* Repeating it is harmless (idempotent). */
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/subscriptions/bulk", bulk, &a), 200);
	assert_int_equal(jint(a.json, "unsubscribed"), 0);
	answer_free(&a);
	assert_int_equal(sms_card_get(sv.store, 2100000001, &c), 0);
	assert_int_equal(c.access_criteria, 0x8);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards/2100000000/subscriptions", NULL, &a), 200);
	assert_int_equal(json_array_size(json_object_get(a.json, "items")), 1);
	assert_int_equal(jint(json_array_get(json_object_get(a.json, "items"), 0), "package"), 40);
	answer_free(&a);

	/* One bad item (no such card) refuses the whole call: nothing changes. */
	tdb_fingerprint(sv.store, before);
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/subscriptions/bulk",
			      "{\"subscribe\":[{\"serial_no\":\"2100000001\",\"package\":5,\"start\":1,\"finish\":2},"
			      "{\"serial_no\":\"2199999999\",\"package\":5,\"start\":1,\"finish\":2}]}", &a), 404);
	expect_error(&a, 404, "not_found");
	assert_string_equal(jstr(a.json, "error.at"), "subscribe[1]");
	answer_free(&a);
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/subscriptions/bulk",
			      "{\"subscribe\":[{\"serial_no\":\"2100000001\",\"package\":5,\"start\":1,\"finish\":2},"
			      "{\"serial_no\":\"2100000001\",\"package\":6,\"start\":3,\"finish\":2}]}", &a), 400);
	expect_error(&a, 400, "invalid_value");
	answer_free(&a);
	tdb_fingerprint(sv.store, after);
	assert_string_equal(before, after);

	assert_int_equal(call(&sv, sv.rw, "DELETE", "/api/v1/subscriptions/2100000000/40", NULL, &a), 204);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.rw, "DELETE", "/api/v1/subscriptions/2100000000/40", NULL, &a), 404);
	answer_free(&a);

	/* Packages and channels need admin to change. */
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/packages", "{\"id\":41,\"name\":\"movies\"}", &a), 403);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.admin, "POST", "/api/v1/packages", "{\"id\":41,\"name\":\"movies\"}", &a), 201);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.admin, "POST", "/api/v1/packages", "{\"id\":42,\"name\":\"movies\"}", &a), 409);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/packages/41", NULL, &a), 200);
	assert_string_equal(jstr(a.json, "name"), "movies");
	answer_free(&a);
	assert_int_equal(call(&sv, sv.admin, "PUT", "/api/v1/channels/101",
			      "{\"name\":\"News 24\",\"access_criteria\":\"00000003\"}", &a), 200);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/channels/101", NULL, &a), 200);
	assert_string_equal(jstr(a.json, "name"), "News 24");
	assert_string_equal(jstr(a.json, "access_criteria"), "00000003");
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/channels", NULL, &a), 200);
	assert_int_equal(json_array_size(json_object_get(a.json, "items")), 1);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.admin, "DELETE", "/api/v1/channels/101", NULL, &a), 204);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/channels/101", NULL, &a), 404);
	answer_free(&a);
	srv_stop(&sv);
}

/* ---- CSV over HTTP, OpenAPI -------------------------------------------- */

static void test_csv_http(void **state)
{
	static const char csv[] = "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state,packages\r\n"
				  "2100000000,\"Ann, A\",Lisbon,00000003,1,1700000000,1800000000,C1,active,40\r\n"
				  "2100000001,Bob,,,,1700000000,1900000000,,,sports extra\r\n";
	struct srv sv;
	struct answer a;
	char hd[128], before[65], after[65];

	srv_start(state, &sv);
	snprintf(hd, sizeof(hd), "X-API-Key: %s\r\n", sv.rw);
	http_req(&sv, "POST", "/api/v1/import", hd, "text/csv", csv, sizeof(csv) - 1, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(jint(a.json, "rows"), 2);
	assert_int_equal(jint(a.json, "added"), 2);
	answer_free(&a);
	http_req(&sv, "GET", "/api/v1/export", hd, NULL, "", 0, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.ctype, "text/csv; charset=utf-8");
	assert_string_equal(a.body, "serial_no,name,info,access_criteria,pair,start,finish,chip_id,state,packages\r\n"
				    "2100000000,\"Ann, A\",Lisbon,00000003,1,1700000000,1800000000,C1,active,40\r\n"
				    "2100000001,Bob,,00000000,0,1700000000,1900000000,,active,40\r\n");
	answer_free(&a);

	tdb_fingerprint(sv.store, before);
	{
		static const char bad[] = "serial_no,name\r\n2100000000,Changed\r\n2100000009,New\r\nabc,Bad\r\n";

		http_req(&sv, "POST", "/api/v1/import", hd, "text/csv", bad, sizeof(bad) - 1, &a);
	}
	expect_error(&a, 422, "csv_invalid");
	assert_int_equal(jint(json_object_get(a.json, "error"), "line"), 4);
	assert_non_null(strstr(jstr(a.json, "error.message"), "line 4: serial_no"));
	answer_free(&a);
	http_req(&sv, "POST", "/api/v1/import", hd, "application/json", "{}", 2, &a);
	expect_error(&a, 415, "unsupported_media_type");
	answer_free(&a);
	tdb_fingerprint(sv.store, after);
	assert_string_equal(before, after);

	/* The OpenAPI document, without a key, byte for byte docs/openapi.yaml. */
	{
		size_t len;
		uint8_t *doc = tu_read(tu_testdata("../../docs/openapi.yaml"), &len);

		http_req(&sv, "GET", "/api/v1/openapi.yaml", "", NULL, "", 0, &a);
		assert_int_equal(a.status, 200);
		assert_string_equal(a.ctype, "application/yaml");
		assert_int_equal(a.len, len);
		assert_memory_equal(a.body, doc, len);
		assert_non_null(strstr(a.body, "openapi: 3."));
		free(doc);
		answer_free(&a);
	}
	srv_stop(&sv);
}

/* ---- blacklist: REST, the GET API and CSV all refuse ---------------------- */

static void test_blacklist_http(void **state)
{
	struct srv sv;
	struct answer a;
	char hd[128], path[256], before[65], after[65];
	struct sms_card c = { .serial = 2100000001 };

	srv_start(state, &sv);
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-1");
	assert_int_equal(sms_card_add(sv.store, &c, "test"), 0);
	c.serial = 2100000002;
	snprintf(c.chip_id, sizeof(c.chip_id), "BOX-2");
	assert_int_equal(sms_card_add(sv.store, &c, "test"), 0);
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/blacklist",
			      "{\"kind\":\"card\",\"id\":\"2100000001\",\"reason\":\"cloned\"}", &a), 201);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.rw, "POST", "/api/v1/blacklist", "{\"kind\":\"box\",\"id\":\"BOX-9\"}", &a), 201);
	answer_free(&a);
	call(&sv, sv.rw, "POST", "/api/v1/blacklist", "{\"kind\":\"card\",\"id\":\"2100000001\"}", &a);
	expect_error(&a, 409, "conflict");
	answer_free(&a);
	call(&sv, sv.ro, "POST", "/api/v1/blacklist", "{\"kind\":\"card\",\"id\":\"2100000002\"}", &a);
	assert_int_equal(a.status, 403);
	answer_free(&a);
	call(&sv, sv.rw, "POST", "/api/v1/blacklist", "{\"kind\":\"stb\",\"id\":\"X\"}", &a);
	expect_error(&a, 400, "invalid_value");
	answer_free(&a);
	call(&sv, sv.rw, "POST", "/api/v1/blacklist", "{\"kind\":\"card\",\"id\":\"12ab\"}", &a);
	expect_error(&a, 400, "invalid_value");
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/blacklist", NULL, &a), 200);
	assert_int_equal(json_array_size(json_object_get(a.json, "items")), 2);
	assert_string_equal(jstr(a.json, "items.0.kind"), "box");
	assert_string_equal(jstr(a.json, "items.1.id"), "2100000001");
	assert_non_null(strstr(jstr(a.json, "items.1.who"), "rest:billing:"));
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/cards/2100000001", NULL, &a), 200);
	assert_string_equal(jstr(a.json, "state"), "blocked");
	answer_free(&a);

	tdb_fingerprint(sv.store, before);
	/* REST: activate, grant, subscribe, re-add: 409 blacklisted */
	call(&sv, sv.rw, "PATCH", "/api/v1/cards/2100000001", "{\"state\":\"active\"}", &a);
	expect_error(&a, 409, "blacklisted");
	answer_free(&a);
	call(&sv, sv.rw, "PATCH", "/api/v1/cards/2100000001", "{\"access_criteria\":\"00000001\"}", &a);
	expect_error(&a, 409, "blacklisted");
	answer_free(&a);
	call(&sv, sv.rw, "POST", "/api/v1/subscriptions", "{\"serial_no\":2100000001,\"package\":0,\"start\":10,"
	     "\"finish\":20}", &a);
	expect_error(&a, 409, "blacklisted");
	answer_free(&a);
	call(&sv, sv.rw, "PATCH", "/api/v1/cards/2100000002", "{\"chip_id\":\"BOX-9\"}", &a);
	expect_error(&a, 409, "blacklisted");
	answer_free(&a);
	call(&sv, sv.rw, "POST", "/api/v1/cards", "{\"serial_no\":\"2100000003\",\"chip_id\":\"BOX-9\"}", &a);
	expect_error(&a, 409, "blacklisted");
	answer_free(&a);
	/* the GET API (the free CAS's): a grant refused with its own word */
	snprintf(path, sizeof(path), "/api.php?api_key=%s&serial_no=2100000001&set[access_criteria]=00000001", sv.rw);
	http_req(&sv, "GET", path, "", NULL, "", 0, &a);
	assert_int_equal(a.status, 400);
	assert_string_equal(a.body, "SMARTCARD_BLACKLISTED");
	answer_free(&a);
	snprintf(path, sizeof(path), "/api.php?api_key=%s&serial_no=2100000001&set[finish]=1900000000", sv.rw);
	http_req(&sv, "GET", path, "", NULL, "", 0, &a);
	assert_string_equal(a.body, "SMARTCARD_BLACKLISTED");
	answer_free(&a);
	/* CSV: an update granting the card, a new card in the blacklisted box */
	snprintf(hd, sizeof(hd), "X-API-Key: %s\r\n", sv.rw);
	{
		static const char up[] = "serial_no,access_criteria\r\n2100000001,00000003\r\n";
		static const char nw[] = "serial_no,chip_id\r\n2100000005,BOX-5\r\n2100000006,BOX-9\r\n";

		http_req(&sv, "POST", "/api/v1/import", hd, "text/csv", up, sizeof(up) - 1, &a);
		expect_error(&a, 422, "csv_invalid");
		assert_non_null(strstr(jstr(a.json, "error.message"), "blacklisted"));
		answer_free(&a);
		http_req(&sv, "POST", "/api/v1/import", hd, "text/csv", nw, sizeof(nw) - 1, &a);
		expect_error(&a, 422, "csv_invalid");
		assert_non_null(strstr(jstr(a.json, "error.message"), "blacklisted"));
		answer_free(&a);
	}
	tdb_fingerprint(sv.store, after);
	assert_string_equal(before, after); /* every refusal left the base as it was */
	/* the GET API still reads the card, and a name change is allowed */
	snprintf(path, sizeof(path), "/api.php?api_key=%s&serial_no=2100000001&set[name]=Pirate", sv.rw);
	http_req(&sv, "GET", path, "", NULL, "", 0, &a);
	assert_int_equal(a.status, 200);
	answer_free(&a);
	srv_stop(&sv);
}

/* ---- reports over HTTP ---------------------------------------------------- */

static void test_reports_http(void **state)
{
	struct srv sv;
	struct answer a;
	char hd[128];
	struct sms_card c = { .serial = 2100000001 };
	struct sms_subscription u = { 2100000001, 40, 1, 4000000000 };

	srv_start(state, &sv);
	assert_int_equal(sms_card_add(sv.store, &c, "test"), 0);
	assert_int_equal(sms_subscribe(sv.store, &u, "test"), 0);
	assert_int_equal(sms_channel_set(sv.store, 7, "seven", 0x1, "test"), 0);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/reports", NULL, &a), 200);
	assert_int_equal(json_array_size(json_object_get(a.json, "reports")), 11);
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/reports/summary", NULL, &a), 200);
	assert_string_equal(jstr(a.json, "report"), "summary");
	assert_int_equal(jint(json_array_get(json_object_get(a.json, "rows"), 1), "cards"), 1); /* active */
	answer_free(&a);
	snprintf(hd, sizeof(hd), "X-API-Key: %s\r\n", sv.ro);
	http_req(&sv, "GET", "/api/v1/reports/active?package=40&format=csv", hd, NULL, "", 0, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.ctype, "text/csv; charset=utf-8");
	assert_string_equal(a.body, "serial_no,since,until\r\n2100000001,1,4000000000\r\n");
	answer_free(&a);
	/* the CAS side (report_cas.h): nothing sent yet, so the SMS's card on package 40 is the difference */
	http_req(&sv, "GET", "/api/v1/reports/cas-match?format=csv", hd, NULL, "", 0, &a);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body, "kind,id,name,cas_cards,sms_cards,difference\r\nchannel,7,seven,0,0,0\r\n"));
	assert_non_null(strstr(a.body, "\r\npackage,40,"));
	assert_non_null(strstr(strstr(a.body, "\r\npackage,40,"), ",0,1,-1\r\n"));
	answer_free(&a);
	assert_int_equal(call(&sv, sv.ro, "GET", "/api/v1/reports/cas-channels", NULL, &a), 200);
	assert_string_equal(jstr(json_array_get(json_object_get(a.json, "rows"), 0), "packages"), "00000001");
	assert_int_equal(jint(json_array_get(json_object_get(a.json, "rows"), 0), "cards"), 0);
	answer_free(&a);
	call(&sv, sv.ro, "GET", "/api/v1/reports/nope", NULL, &a);
	expect_error(&a, 404, "not_found");
	answer_free(&a);
	call(&sv, sv.ro, "GET", "/api/v1/reports/active", NULL, &a);
	expect_error(&a, 400, "missing_parameter");
	answer_free(&a);
	call(&sv, sv.ro, "GET", "/api/v1/reports/summary?when=1", NULL, &a);
	expect_error(&a, 400, "unknown_parameter");
	answer_free(&a);
	call(&sv, sv.ro, "GET", "/api/v1/reports/monthly?month=2023-13", NULL, &a);
	expect_error(&a, 400, "invalid_value");
	answer_free(&a);
	call(&sv, sv.ro, "GET", "/api/v1/reports/card?card=2100000099", NULL, &a);
	expect_error(&a, 404, "not_found");
	answer_free(&a);
	call(&sv, NULL, "GET", "/api/v1/reports/summary", NULL, &a);
	assert_int_equal(a.status, 401);
	answer_free(&a);
	srv_stop(&sv);
}

/* ---- bad requests ------------------------------------------------------ */

enum keykind { K_NONE, K_BAD, K_RO, K_RW, K_ADMIN };

struct bad_req {
	enum keykind key;
	const char *method, *path, *ctype, *body;
	int status;
	const char *code;
};

static void test_bad_requests(void **state)
{
	static char big[REST_JSON_MAX + 16];
	static char longq[REST_QUERY_MAX + 64];
	const struct bad_req cases[] = {
		{ K_NONE, "GET", "/api/v1/cards", NULL, NULL, 401, "unauthorized" },
		{ K_BAD, "GET", "/api/v1/cards", NULL, NULL, 401, "unauthorized" },
		{ K_RO, "POST", "/api/v1/cards", "application/json", "{\"serial_no\":5}", 403, "forbidden" },
		{ K_RO, "POST", "/api/v1/subscriptions/bulk", "application/json", "{}", 403, "forbidden" },
		{ K_RW, "PUT", "/api/v1/channels/5", "application/json", "{\"access_criteria\":\"00000001\"}", 403,
		  "forbidden" },
		{ K_RO, "POST", "/api/v1/import", "text/csv", "serial_no\r\n5\r\n", 403, "forbidden" },
		{ K_RW, "GET", "/api/v1/nosuch", NULL, NULL, 404, "not_found" },
		{ K_RW, "GET", "/api/v1/cards/", NULL, NULL, 404, "not_found" },
		{ K_RW, "GET", "/api/v1/cards/21000x", NULL, NULL, 404, "not_found" },
		{ K_RW, "GET", "/api/v1/cards/0", NULL, NULL, 404, "not_found" },
		{ K_RW, "GET", "/api/v1/cards/99999999999999999999", NULL, NULL, 404, "not_found" },
		{ K_RW, "GET", "/api/v1/cards/2100000000/x/y/z/w", NULL, NULL, 404, "not_found" },
		{ K_RW, "GET", "/api/v1/cards/%32100000000", NULL, NULL, 404, "not_found" },
		{ K_RW, "PUT", "/api/v1/cards/2100000000", "application/json", "{}", 405, "method_not_allowed" },
		{ K_RW, "OPTIONS", "/api/v1/cards", NULL, NULL, 405, "method_not_allowed" },
		{ K_RW, "GET", "/api/v1/cards?limit=0", NULL, NULL, 400, "invalid_value" },
		{ K_RW, "GET", "/api/v1/cards?limit=1001", NULL, NULL, 400, "invalid_value" },
		{ K_RW, "GET", "/api/v1/cards?cursor=abc", NULL, NULL, 400, "invalid_value" },
		{ K_RW, "GET", "/api/v1/cards?serial_prefix=21x", NULL, NULL, 400, "invalid_value" },
		{ K_RW, "GET", "/api/v1/cards?state=frozen", NULL, NULL, 400, "invalid_value" },
		{ K_RW, "GET", "/api/v1/cards?lmit=5", NULL, NULL, 400, "unknown_parameter" },
		{ K_RW, "GET", "/api/v1/cards?limit=%zz", NULL, NULL, 400, "bad_request" },
		{ K_RW, "GET", longq, NULL, NULL, 400, "bad_request" },
		{ K_RW, "POST", "/api/v1/cards", "text/plain", "{\"serial_no\":5}", 415, "unsupported_media_type" },
		{ K_RW, "POST", "/api/v1/cards", NULL, "{\"serial_no\":5}", 415, "unsupported_media_type" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "{\"serial_no\":5", 400, "invalid_json" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "[1,2]", 400, "invalid_json" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "", 400, "invalid_json" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "{\"serial_no\":5,\"serial_no\":6}", 400,
		  "invalid_json" },
		/* the gate answers from the header, before the body is read (code NULL: its page) */
		{ K_RW, "POST", "/api/v1/cards", "application/json", big, 413, NULL },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "{\"name\":\"x\"}", 400, "invalid_value" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "{\"serial_no\":0}", 400, "invalid_value" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "{\"serial_no\":-4}", 400, "invalid_value" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "{\"serial_no\":\"9223372036854775808\"}", 400,
		  "invalid_value" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "{\"serial_no\":5,\"colour\":1}", 400,
		  "unknown_field" },
		{ K_RW, "POST", "/api/v1/cards", "application/json", "{\"serial_no\":2100000000}", 409, "conflict" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"pair\":2}", 400, "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"pair\":\"1\"}", 400,
		  "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"start\":-1}", 400, "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"start\":1.5}", 400,
		  "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"start\":9,\"finish\":8}", 400,
		  "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"finish\":5}", 400,
		  "invalid_value" }, /* before the card's start */
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"access_criteria\":\"FFFFFFFFF\"}",
		  400, "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"access_criteria\":16}", 400,
		  "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"state\":\"gone\"}", 400,
		  "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"name\":\"a\\u0001b\"}", 400,
		  "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"name\":\"a\\u0000b\"}", 400,
		  "invalid_json" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"subscriber_id\":1,\"name\":\"x\"}",
		  400, "invalid_value" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000000", "application/json", "{\"serial_no\":\"2100000005\"}", 400,
		  "unknown_field" },
		{ K_RW, "PATCH", "/api/v1/cards/2100000099", "application/json", "{\"pair\":1}", 404, "not_found" },
		{ K_RW, "POST", "/api/v1/subscriptions", "application/json", "{\"serial_no\":2100000000,\"package\":1}",
		  400, "invalid_value" },
		{ K_RW, "POST", "/api/v1/subscriptions", "application/json",
		  "{\"serial_no\":2100000000,\"package\":65536,\"start\":1,\"finish\":2}", 400, "invalid_value" },
		{ K_RW, "POST", "/api/v1/subscriptions", "application/json",
		  "{\"serial_no\":2100000000,\"package\":999,\"start\":1,\"finish\":2}", 404, "not_found" },
		{ K_RW, "POST", "/api/v1/subscriptions/bulk", "application/json", "{\"subscribe\":{}}", 400,
		  "invalid_value" },
		{ K_RW, "POST", "/api/v1/subscriptions/bulk", "application/json", "{\"subscribe\":[5]}", 400,
		  "invalid_value" },
		{ K_RW, "POST", "/api/v1/subscriptions/bulk", "application/json", "{\"other\":[]}", 400,
		  "invalid_value" },
		{ K_ADMIN, "POST", "/api/v1/packages", "application/json", "{\"id\":41,\"name\":\"123\"}", 400,
		  "invalid_value" },
		{ K_ADMIN, "POST", "/api/v1/packages", "application/json", "{\"id\":41,\"name\":\"a;b\"}", 400,
		  "invalid_value" },
		{ K_ADMIN, "POST", "/api/v1/packages", "application/json", "{\"id\":40,\"name\":\"dup\"}", 409,
		  "conflict" },
		{ K_ADMIN, "POST", "/api/v1/packages", "application/json", "{\"id\":41,\"nom\":\"x\"}", 400,
		  "unknown_field" },
		{ K_ADMIN, "PUT", "/api/v1/channels/65536", "application/json", "{\"access_criteria\":\"00000001\"}", 404,
		  "not_found" },
		{ K_ADMIN, "PUT", "/api/v1/channels/7", "application/json", "{\"name\":\"x\"}", 400, "invalid_value" },
		{ K_ADMIN, "DELETE", "/api/v1/channels/7", NULL, NULL, 404, "not_found" },
		{ K_RW, "GET", "/api/v1/subscribers/0", NULL, NULL, 404, "not_found" },
		{ K_RW, "POST", "/api/v1/import", "text/csv", "serial_no\r\n\"5\r\n", 422, "csv_invalid" },
		{ K_RW, "GET", "/api/v1/export?x=1", NULL, NULL, 400, "unknown_parameter" },
		{ K_NONE, "POST", "/api/v1/openapi.yaml", NULL, NULL, 405, "method_not_allowed" },
	};
	struct srv sv;
	char before[65], after[65];

	memset(big, ' ', sizeof(big) - 1);
	memcpy(longq, "/api/v1/cards?name=", 19);
	memset(longq + 19, 'a', sizeof(longq) - 20);
	srv_start(state, &sv);
	{
		struct sms_card c = { .serial = 2100000000, .start = 100, .finish = 200 };

		assert_int_equal(sms_card_add(sv.store, &c, "test"), 0);
	}
	tdb_fingerprint(sv.store, before);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_req *c = &cases[i];
		const char *key = c->key == K_RO ? sv.ro : c->key == K_RW ? sv.rw : c->key == K_ADMIN ? sv.admin
				: c->key == K_BAD ? "0000000000000000000000000000000000000000000000000000000000000000" : NULL;
		char hd[128] = "";
		struct answer a;

		if (key)
			snprintf(hd, sizeof(hd), "X-API-Key: %s\r\n", key);
		http_req(&sv, c->method, c->path, hd, c->ctype, c->body ? c->body : "", c->body ? strlen(c->body) : 0,
			 &a);
		if (a.status != c->status ||
		    (c->code && (!a.json || strcmp(jstr(a.json, "error.code"), c->code) != 0)))
			fail_msg("case %zu (%s %.60s): expected %d %s, got %d %.300s", i, c->method, c->path, c->status,
				 c->code ? c->code : "", a.status, a.body);
		answer_free(&a);
	}
	tdb_fingerprint(sv.store, after);
	assert_string_equal(before, after);
	/* Unknown paths outside /api/v1 stay the GET API server's 404. */
	{
		struct answer a;

		http_req(&sv, "GET", "/api/v2/cards", "", NULL, "", 0, &a);
		assert_int_equal(a.status, 404);
		assert_string_equal(a.body, "NOT_FOUND");
		answer_free(&a);
	}
	{
		struct sms_http_stats st;

		sms_http_get_stats(sv.http, &st);
		assert_int_equal(st.rest_unauthorized, 2);
		/* one case is the gate's (413 before the handler) */
		assert_true(st.rest_errors + st.gate_too_large >= sizeof(cases) / sizeof(cases[0]));
		assert_int_equal(st.gate_too_large, 1);
	}
	srv_stop(&sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cards),
		cmocka_unit_test(test_card_bytes_as_jansson),
		cmocka_unit_test(test_card_many_subscriptions),
		cmocka_unit_test(test_list_filters),
		cmocka_unit_test(test_search_workers),
		cmocka_unit_test(test_subscriptions_bulk),
		cmocka_unit_test(test_csv_http),
		cmocka_unit_test(test_blacklist_http),
		cmocka_unit_test(test_reports_http),
		cmocka_unit_test(test_bad_requests),
	};

	return tdb_run_both("rest", tests, sizeof(tests) / sizeof(tests[0]));
}
