/*
 * test_feed.c - the store's tables for the head-end (src/sms/store_feed.c,
 * schema 2): every card and subscription change writes exactly one change
 * feed row in its own transaction (a refused or rolled-back change writes
 * none), the bulk path writes one per card; EMM sequence numbers increase
 * atomically across two connections (two head-end nodes); the legacy import
 * never lowers a number; generator definitions with a table of bad ones;
 * node status. On SQLite and on a real PostgreSQL server (sms_testdb.h).
 */
#include <pthread.h>
#define SMS_TEST_PG_PORT 5438
#include "sms_testdb.h"
#include "sms/rest.h"

#define S1 2100000001ull
#define S2 2100000002ull

struct feed {
	struct sms_change c[64];
	size_t n;
};

static int feed_row(void *ctx, const struct sms_change *c)
{
	struct feed *f = ctx;

	if (f->n < 64)
		f->c[f->n++] = *c;
	return 0;
}

static void feed_read(struct sms_store *s, int64_t after, struct feed *f)
{
	size_t n = 0;

	memset(f, 0, sizeof(*f));
	assert_int_equal(sms_changes_since(s, after, 1000, feed_row, f, &n), 0);
	assert_int_equal(n, f->n);
}

/* One row per change, with the card and the reason, in order. */
static void test_feed_rows(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card c = { .serial = S1, .start = 100, .finish = 200 };
	struct sms_card_change ch = { .has_ac = true, .access_criteria = 0x3 };
	struct feed f;
	int64_t last = -1, sub = 0;
	static const struct { uint64_t serial; const char *reason; } want[] = {
		{ S1, "add" }, { S1, "change" }, { S1, "state" }, { S1, "subscribe" }, { S1, "unsubscribe" },
		{ S1, "subscriber" }, { S2, "add" }, { S2, "delete" },
	};

	assert_int_equal(sms_changes_last(s, &last), 0);
	assert_int_equal(last, 0);
	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	assert_int_equal(sms_card_change(s, S1, &ch, "t", NULL), 0);
	assert_int_equal(sms_card_set_state(s, S1, SMS_CARD_BLOCKED, "t"), 0);
	assert_int_equal(sms_subscribe(s, &(struct sms_subscription){ S1, 5, 100, 300 }, "t"), 0);
	assert_int_equal(sms_unsubscribe(s, S1, 5, "t"), 0);
	assert_int_equal(sms_subscriber_add(s, "Ann", "", "t", &sub), 0);
	assert_int_equal(sms_card_set_subscriber(s, S1, sub, "t"), 0);
	c.serial = S2;
	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	assert_int_equal(sms_card_delete(s, S2, "t"), 0);
	/* not about a card: no row */
	assert_int_equal(sms_channel_set(s, 101, "News", 1, "t"), 0);
	assert_int_equal(sms_package_add(s, 77, "Extra", "t"), 0);
	feed_read(s, 0, &f);
	assert_int_equal(f.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < f.n; i++) {
		assert_true(f.c[i].serial == want[i].serial);
		assert_string_equal(f.c[i].reason, want[i].reason);
		assert_true(f.c[i].at_ms > 0);
		if (i)
			assert_true(f.c[i].id > f.c[i - 1].id);
	}
	assert_int_equal(sms_changes_last(s, &last), 0);
	assert_true(last == f.c[f.n - 1].id);
	/* since: only the newer rows */
	feed_read(s, f.c[5].id, &f);
	assert_int_equal(f.n, 2);
	/* prune: everything older than the future */
	int64_t removed = 0;

	assert_int_equal(sms_changes_prune(s, INT64_MAX, &removed), 0);
	assert_int_equal(removed, sizeof(want) / sizeof(want[0]));
	feed_read(s, 0, &f);
	assert_int_equal(f.n, 0);
	/* ids go on above the pruned ones */
	assert_int_equal(sms_card_set_state(s, S1, SMS_CARD_ACTIVE, "t"), 0);
	feed_read(s, 0, &f);
	assert_int_equal(f.n, 1);
	assert_true(f.c[0].id > last);
	sms_store_close(s);
}

/* A refused or rolled-back change leaves no feed row. */
static void test_feed_atomic(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_card c = { .serial = S1 };
	struct sms_card_change ch = { .has_state = true, .state = (enum sms_card_state)7 };
	struct feed f;

	assert_int_equal(sms_card_add(s, &c, "t"), 0);
	assert_int_equal(sms_card_add(s, &c, "t"), CE_EXISTS);
	assert_int_equal(sms_card_change(s, S1, &ch, "t", NULL), CE_RANGE);
	assert_int_equal(sms_card_set_state(s, S2, SMS_CARD_BLOCKED, "t"), CE_NOT_FOUND);
	assert_int_equal(sms_unsubscribe(s, S1, 5, "t"), CE_NOT_FOUND);
	assert_int_equal(sms_subscribe(s, &(struct sms_subscription){ S2, 1, 1, 2 }, "t"), CE_NOT_FOUND);
	assert_int_equal(sms_card_delete(s, S2, "t"), CE_NOT_FOUND);
	/* a transaction rolled back takes its rows with it */
	assert_int_equal(sms_tx_begin(s), 0);
	assert_int_equal(sms_card_set_state(s, S1, SMS_CARD_BLOCKED, "t"), 0);
	assert_int_equal(sms_tx_end(s, CE_ARG), CE_ARG);
	feed_read(s, 0, &f);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.c[0].reason, "add");
	/* the bulk path: one row per card */
	{
		struct sms_bulk *b = NULL;

		assert_int_equal(sms_tx_begin(s), 0);
		assert_int_equal(sms_bulk_new(s, "t", &b), 0);
		for (uint64_t i = 0; i < 10; i++) {
			struct sms_card k = { .serial = 2200000000ull + i, .access_criteria = 1, .finish = 10 };

			assert_int_equal(sms_bulk_card_add(b, &k, NULL, 0), 0);
		}
		assert_int_equal(sms_bulk_flush(b), 0);
		sms_bulk_free(b);
		assert_int_equal(sms_tx_end(s, 0), 0);
	}
	feed_read(s, f.c[0].id, &f);
	assert_int_equal(f.n, 10);
	for (size_t i = 0; i < 10; i++) {
		assert_true(f.c[i].serial == 2200000000ull + i);
		assert_string_equal(f.c[i].reason, "import");
	}
	assert_int_equal(sms_changes_since(s, 0, 0, feed_row, &f, NULL), CE_RANGE);
	assert_int_equal(sms_changes_since(s, 0, 100001, feed_row, &f, NULL), CE_RANGE);
	sms_store_close(s);
}

static void test_emm_seq(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_emm_seq q;
	uint32_t v = 0;

	assert_int_equal(sms_emm_seq_get(s, S1, &q), CE_NOT_FOUND);
	assert_int_equal(sms_emm_seq_next(s, S1, 1, 1, 0xfedcba9876543210ull, false, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(sms_emm_seq_get(s, S1, &q), 0);
	assert_int_equal(q.seq, 1);
	assert_true(q.digest == 0xfedcba9876543210ull); /* all 64 bits round-trip */
	assert_false(q.blocked);
	/* stored + step when above the proposal */
	assert_int_equal(sms_emm_seq_next(s, S1, 2, 2, 7, true, &v), 0);
	assert_int_equal(v, 3);
	/* the proposal when above stored + step */
	assert_int_equal(sms_emm_seq_next(s, S1, 1, 50, 8, false, &v), 0);
	assert_int_equal(v, 50);
	/* import keeps the higher number */
	assert_int_equal(sms_emm_seq_import(s, &(struct sms_emm_seq){ .serial = S1, .seq = 10, .digest = 1, .blocked = true }), 0);
	assert_int_equal(sms_emm_seq_get(s, S1, &q), 0);
	assert_int_equal(q.seq, 50);
	assert_int_equal(q.digest, 8);
	assert_int_equal(sms_emm_seq_import(s, &(struct sms_emm_seq){ .serial = S2, .seq = 99, .digest = 5, .blocked = true }), 0);
	assert_int_equal(sms_emm_seq_get(s, S2, &q), 0);
	assert_int_equal(q.seq, 99);
	assert_true(q.blocked);
	/* a deleted card keeps its numbers (added again: continues above) */
	/* the top of the range */
	assert_int_equal(sms_emm_seq_import(s, &(struct sms_emm_seq){ .serial = S2, .seq = UINT32_MAX, .digest = 5, .blocked = false }), 0);
	assert_int_equal(sms_emm_seq_next(s, S2, 1, 1, 0, false, &v), CE_RANGE);
	assert_int_equal(sms_emm_seq_get(s, S2, &q), 0);
	assert_true(q.seq == UINT32_MAX); /* unchanged */
	/* bad calls */
	assert_int_equal(sms_emm_seq_next(s, 0, 1, 1, 0, false, &v), CE_ARG);
	assert_int_equal(sms_emm_seq_next(s, S1, 0, 1, 0, false, &v), CE_ARG);
	assert_int_equal(sms_emm_seq_next(s, S1, 3, 3, 0, false, &v), CE_ARG);
	assert_int_equal(sms_emm_seq_next(s, S1, 2, 1, 0, false, &v), CE_ARG);
	assert_int_equal(sms_emm_seq_next(s, (uint64_t)INT64_MAX + 1, 1, 1, 0, false, &v), CE_ARG);
	size_t n = 0;

	assert_int_equal(sms_emm_seq_list(s, 0, 10, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sms_emm_seq_list(s, S1, 10, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	sms_store_close(s);
}

/* Two nodes (two connections, two threads) numbering the same card: every
 * number handed out is distinct, and the last is the total. */
#define NODE_BUMPS 150
struct node_run {
	const char *uri;
	uint32_t got[NODE_BUMPS];
	int r;
};

static void *node_main(void *arg)
{
	struct node_run *nr = arg;
	struct sms_store *s = NULL;

	nr->r = sms_store_open(nr->uri, &s);
	for (int i = 0; i < NODE_BUMPS && nr->r == 0; i++) {
		/* each node proposes its own last + 1, as its carousel would */
		uint32_t want = i ? nr->got[i - 1] + 1 : 1;

		nr->r = sms_emm_seq_next(s, S1, 1, want, (uint64_t)i, false, &nr->got[i]);
		if (nr->r == CE_TIMEOUT)
			nr->r = 0, i--; /* SQLite busy: the other writer holds the lock */
	}
	sms_store_close(s);
	return NULL;
}

static void test_emm_seq_two_nodes(void **state)
{
	static struct node_run a, b;
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_emm_seq q;
	static uint8_t seen[2 * NODE_BUMPS + 1];
	pthread_t ta, tb;
	static char path[1100];

	memset(seen, 0, sizeof(seen));
	/* the same database as s (tdb_open_fresh's) */
	if ((struct backend *)*state == &sqlite_be) {
		snprintf(path, sizeof(path), "%s/t%d.db", sqlite_dir, sqlite_seq);
		a.uri = b.uri = path;
	} else {
		a.uri = b.uri = pg_be.uri;
	}
	assert_int_equal(pthread_create(&ta, NULL, node_main, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, node_main, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.r, 0);
	assert_int_equal(b.r, 0);
	for (int i = 0; i < NODE_BUMPS; i++) {
		assert_true(a.got[i] >= 1 && a.got[i] <= 2 * NODE_BUMPS);
		assert_true(b.got[i] >= 1 && b.got[i] <= 2 * NODE_BUMPS);
		assert_int_equal(seen[a.got[i]]++, 0);
		assert_int_equal(seen[b.got[i]]++, 0);
		if (i) {
			assert_true(a.got[i] > a.got[i - 1]);
			assert_true(b.got[i] > b.got[i - 1]);
		}
	}
	assert_int_equal(sms_emm_seq_get(s, S1, &q), 0);
	assert_int_equal(q.seq, 2 * NODE_BUMPS);
	sms_store_close(s);
}

static int gen_row(void *ctx, const struct sms_generator *g)
{
	(*(size_t *)ctx) += (size_t)g->kind + 1;
	return 0;
}

static void test_generators(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	struct sms_generator e = { .kind = SMS_GEN_ECMG, .name = "ecmg-a", .address = "0.0.0.0:2222",
				   .ca_system_id = 0x4AE1, .enabled = true };
	struct sms_generator m = { .kind = SMS_GEN_EMMG, .name = "emmg-a", .address = "mux1:3000",
				   .ca_system_id = 0x4AE1, .client_id = 0x4AE10001, .bandwidth_kbps = 300,
				   .enabled = false };
	struct sms_generator g, bad;
	int64_t ide = 0, idm = 0;
	size_t n = 0, sum = 0;
	char fp[65], fp2[65];

	assert_int_equal(sms_generator_first(s, SMS_GEN_ECMG, &g), CE_NOT_FOUND);
	assert_int_equal(sms_generator_add(s, &e, "t", &ide), 0);
	assert_int_equal(sms_generator_add(s, &m, "t", &idm), 0);
	assert_true(ide > 0 && idm > ide);
	assert_int_equal(sms_generator_get(s, idm, &g), 0);
	assert_int_equal(g.kind, SMS_GEN_EMMG);
	assert_string_equal(g.name, "emmg-a");
	assert_string_equal(g.address, "mux1:3000");
	assert_int_equal(g.ca_system_id, 0x4AE1);
	assert_true(g.client_id == 0x4AE10001u);
	assert_int_equal(g.bandwidth_kbps, 300);
	assert_false(g.enabled);
	assert_int_equal(sms_generator_first(s, SMS_GEN_ECMG, &g), 0);
	assert_true(g.id == ide);
	assert_int_equal(sms_generator_first(s, SMS_GEN_EMMG, &g), CE_NOT_FOUND); /* disabled */
	m.enabled = true;
	m.bandwidth_kbps = 500;
	assert_int_equal(sms_generator_update(s, idm, &m, "t"), 0);
	assert_int_equal(sms_generator_first(s, SMS_GEN_EMMG, &g), 0);
	assert_int_equal(g.bandwidth_kbps, 500);
	assert_int_equal(sms_generator_update(s, idm + 100, &m, "t"), CE_NOT_FOUND);
	assert_int_equal(sms_generator_list(s, -1, 0, 100, gen_row, &sum, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sum, 3);
	assert_int_equal(sms_generator_list(s, SMS_GEN_EMMG, 0, 100, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sms_generator_list(s, 2, 0, 100, NULL, NULL, &n), CE_RANGE);
	/* bad definitions change nothing */
	tdb_fingerprint(s, fp);
	static const struct { const char *why; int field; } cases[] = {
		{ "empty name", 0 }, { "empty address", 1 }, { "space in address", 2 }, { "emmg without bandwidth", 3 },
		{ "ecmg with bandwidth", 4 }, { "ecmg with client_id", 5 }, { "bad kind", 6 }, { "control byte", 7 },
		{ "bandwidth > 65535", 8 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad = cases[i].field == 3 || cases[i].field == 8 ? m : e;
		snprintf(bad.name, sizeof(bad.name), "bad%zu", i);
		switch (cases[i].field) {
		case 0: bad.name[0] = '\0'; break;
		case 1: bad.address[0] = '\0'; break;
		case 2: snprintf(bad.address, sizeof(bad.address), "a b:1"); break;
		case 3: bad.bandwidth_kbps = 0; break;
		case 4: bad.bandwidth_kbps = 10; break;
		case 5: bad.client_id = 1; break;
		case 6: bad.kind = (enum sms_gen_kind)5; break;
		case 7: bad.name[1] = '\n'; break;
		case 8: bad.bandwidth_kbps = 70000; break;
		}
		print_message("bad generator: %s\n", cases[i].why);
		assert_int_equal(sms_generator_add(s, &bad, "t", NULL), CE_RANGE);
		assert_int_equal(sms_generator_update(s, ide, &bad, "t"), CE_RANGE);
	}
	/* a duplicate name */
	assert_int_equal(sms_generator_add(s, &e, "t", NULL), CE_EXISTS);
	tdb_fingerprint(s, fp2);
	assert_string_equal(fp, fp2);
	sms_store_close(s);
}

static int ns_row(void *ctx, const char *node, int64_t updated_ms, const char *json)
{
	char *out = ctx;

	assert_true(updated_ms > 0);
	snprintf(out + strlen(out), 256 - strlen(out), "%s=%s;", node, json);
	return 0;
}

static void test_node_status(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	char out[256] = "";

	assert_int_equal(sms_node_status_put(s, "b", "{\"x\":1}"), 0);
	assert_int_equal(sms_node_status_put(s, "a", "{}"), 0);
	assert_int_equal(sms_node_status_put(s, "b", "{\"x\":2}"), 0);
	assert_int_equal(sms_node_status_put(s, "", "{}"), CE_RANGE);
	assert_int_equal(sms_node_status_list(s, ns_row, out), 0);
	assert_string_equal(out, "a={};b={\"x\":2};");
	sms_store_close(s);
}

/* ---- REST: /api/v1/generators and /api/v1/status (rest_handle) ---------- */

static int call(struct sms_store *s, enum rest_method m, const char *path, const char *query, const char *body,
		unsigned scopes, char *out, size_t cap)
{
	struct rest_req rq = { .method = m, .path = path, .query = query, .auth_who = "test", .auth_scopes = scopes,
			       .content_type = body ? "application/json" : NULL, .body = body,
			       .body_len = body ? strlen(body) : 0 };
	struct rest_resp rs = { 0 };

	rest_handle(s, &rq, &rs);
	snprintf(out, cap, "%.*s", (int)rs.len, rs.body ? rs.body : "");
	free(rs.body);
	return rs.status;
}

#define ALL (SMS_SCOPE_READ | SMS_SCOPE_WRITE | SMS_SCOPE_ADMIN)

static void test_rest_generators(void **state)
{
	struct sms_store *s = tdb_open_fresh(state);
	char out[4096], fp[65], fp2[65];
	static const char *const bad[] = {
		"{}",
		"{\"kind\":\"xmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":1}",
		"{\"kind\":\"ecmg\",\"name\":\"\",\"address\":\"h:1\",\"ca_system_id\":1}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h 1\",\"ca_system_id\":1}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":65536}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":1,\"bandwidth_kbps\":5}",
		"{\"kind\":\"emmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":1}",
		"{\"kind\":\"emmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":1,\"bandwidth_kbps\":70000}",
		"{\"kind\":\"emmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":1,\"bandwidth_kbps\":9,\"x\":1}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":1,\"enabled\":1}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":-1}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":\"0x\"}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":\"0x10000\"}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":\"0x4AG0\"}",
		"{\"kind\":\"ecmg\",\"name\":\"a\",\"address\":\"h:1\",\"ca_system_id\":\"4ADC\"}",
		"[1]",
		"{\"kind\":\"ecmg\"",
	};

	assert_int_equal(call(s, REST_POST, "/api/v1/generators", NULL,
			      "{\"kind\":\"emmg\",\"name\":\"emmg-1\",\"address\":\"mux:3000\",\"ca_system_id\":19169,"
			      "\"client_id\":1256259585,\"bandwidth_kbps\":300}", ALL, out, sizeof(out)), 201);
	assert_string_equal(out, "{\"id\":1,\"kind\":\"emmg\",\"name\":\"emmg-1\",\"address\":\"mux:3000\","
			    "\"ca_system_id\":19169,\"client_id\":1256259585,\"bandwidth_kbps\":300,\"enabled\":true}");
	assert_int_equal(call(s, REST_POST, "/api/v1/generators", NULL,
			      "{\"kind\":\"ecmg\",\"name\":\"ecmg-1\",\"address\":\"0.0.0.0:2222\",\"ca_system_id\":19169}",
			      ALL, out, sizeof(out)), 201);
	assert_int_equal(call(s, REST_GET, "/api/v1/generators", "kind=ecmg", NULL, SMS_SCOPE_READ, out, sizeof(out)),
			 200);
	assert_non_null(strstr(out, "\"name\":\"ecmg-1\""));
	assert_null(strstr(out, "emmg-1"));
	/* the CA_system_id as operators write it: a hex string */
	assert_int_equal(call(s, REST_POST, "/api/v1/generators", NULL,
			      "{\"kind\":\"ecmg\",\"name\":\"ecmg-hex\",\"address\":\"0.0.0.0:2223\",\"ca_system_id\":\"0x4ADC\"}",
			      ALL, out, sizeof(out)), 201);
	assert_non_null(strstr(out, "\"ca_system_id\":19164"));
	assert_int_equal(call(s, REST_PUT, "/api/v1/generators/1", NULL,
			      "{\"kind\":\"emmg\",\"name\":\"emmg-1\",\"address\":\"mux2:3000\",\"ca_system_id\":19169,"
			      "\"bandwidth_kbps\":400,\"enabled\":false}", ALL, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "\"address\":\"mux2:3000\""));
	assert_non_null(strstr(out, "\"enabled\":false"));
	assert_int_equal(call(s, REST_GET, "/api/v1/generators/1", NULL, NULL, SMS_SCOPE_READ, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "\"bandwidth_kbps\":400"));
	assert_non_null(strstr(out, "\"client_id\":0"));
	/* bad calls change nothing */
	tdb_fingerprint(s, fp);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(call(s, REST_POST, "/api/v1/generators", NULL, bad[i], ALL, out, sizeof(out)), 400);
		assert_int_equal(call(s, REST_PUT, "/api/v1/generators/1", NULL, bad[i], ALL, out, sizeof(out)), 400);
	}
	assert_int_equal(call(s, REST_POST, "/api/v1/generators", NULL,
			      "{\"kind\":\"ecmg\",\"name\":\"ecmg-1\",\"address\":\"h:1\",\"ca_system_id\":1}", ALL, out,
			      sizeof(out)), 409);
	assert_int_equal(call(s, REST_POST, "/api/v1/generators", NULL,
			      "{\"kind\":\"ecmg\",\"name\":\"e2\",\"address\":\"h:1\",\"ca_system_id\":1}",
			      SMS_SCOPE_READ | SMS_SCOPE_WRITE, out, sizeof(out)), 403);
	assert_int_equal(call(s, REST_PUT, "/api/v1/generators/99", NULL,
			      "{\"kind\":\"ecmg\",\"name\":\"e2\",\"address\":\"h:1\",\"ca_system_id\":1}", ALL, out,
			      sizeof(out)), 404);
	assert_int_equal(call(s, REST_GET, "/api/v1/generators/x", NULL, NULL, ALL, out, sizeof(out)), 404);
	assert_int_equal(call(s, REST_GET, "/api/v1/generators", "kind=x", NULL, ALL, out, sizeof(out)), 400);
	assert_int_equal(call(s, REST_DELETE, "/api/v1/generators/1", NULL, NULL, ALL, out, sizeof(out)), 405);
	tdb_fingerprint(s, fp2);
	assert_string_equal(fp, fp2);
	/* status: what the nodes published */
	assert_int_equal(call(s, REST_GET, "/api/v1/status", NULL, NULL, SMS_SCOPE_READ, out, sizeof(out)), 200);
	assert_string_equal(out, "{\"nodes\":[]}");
	assert_int_equal(sms_node_status_put(s, "n1", "{\"emmg\":{\"connected\":true}}"), 0);
	assert_int_equal(call(s, REST_GET, "/api/v1/status", NULL, NULL, SMS_SCOPE_READ, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "\"node\":\"n1\""));
	assert_non_null(strstr(out, "\"status\":{\"emmg\":{\"connected\":true}}"));
	assert_int_equal(call(s, REST_POST, "/api/v1/status", NULL, "{}", ALL, out, sizeof(out)), 405);
	sms_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feed_rows),
		cmocka_unit_test(test_feed_atomic),
		cmocka_unit_test(test_emm_seq),
		cmocka_unit_test(test_emm_seq_two_nodes),
		cmocka_unit_test(test_generators),
		cmocka_unit_test(test_node_status),
		cmocka_unit_test(test_rest_generators),
	};

	return tdb_run_both("feed", tests, sizeof(tests) / sizeof(tests[0]));
}
