/*
 * test_osd_store.c - fingerprint schedules and messages in the SMS store
 * (sms/store_osd.h, schema 5) on SQLite and PostgreSQL: add / list (all,
 * active at a time) / delete, refusals that leave the database unchanged,
 * every change in the hash-chained audit log (which still verifies), and
 * individual items queueing their card on the change feed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>
#define SMS_TEST_PG_PORT 5473
#include "sms_testdb.h"
#include "sms/store_osd.h"
#include "sms/store_usage.h"
#include "sms/rest.h"
#include <jansson.h>

#define NOW 1800000000ll
#define SERIAL 2100000001ull

static void fp_sample(struct sms_fingerprint *f, enum sms_fp_target t, uint64_t v)
{
	memset(f, 0, sizeof(*f));
	f->target = t;
	f->value = v;
	f->fp.flags = OSD_FP_SERIAL;
	f->fp.x_pct = 10;
	f->fp.y_pct = 20;
	f->fp.fg[0] = 0xFF;
	f->fp.bg[3] = 0x80;
	f->fp.font_px = 24;
	f->fp.duration_ms = 4000;
	f->fp.repeat = 2;
	f->fp.interval_s = 30;
	f->start_s = NOW - 10;
	f->end_s = NOW + 3600;
}

static void msg_sample(struct sms_message *m, uint8_t scope, uint64_t card, const char *text)
{
	memset(m, 0, sizeof(*m));
	m->card = card;
	m->msg.scope = scope;
	m->msg.group_id = scope == OSD_SCOPE_GROUP ? 3 : 0;
	m->msg.flags = OSD_MSG_FORCED;
	m->msg.duration_s = 20;
	m->msg.fg[0] = m->msg.fg[1] = m->msg.fg[2] = 0xFF;
	m->msg.bg[3] = 0xC0;
	m->msg.font_px = 22;
	m->msg.expiry_s = NOW + 86400;
	m->start_s = NOW - 5;
	assert_int_equal(osd_msg_set_text(&m->msg, text), 0);
}

struct seen {
	size_t n;
	int64_t ids[8];
	struct sms_fingerprint fp;
	char text[OSD_MAX_TEXT_BYTES + 1];
	uint8_t scope;
};

static int on_fp(void *ctx, const struct sms_fingerprint *f)
{
	struct seen *s = ctx;

	if (s->n < 8)
		s->ids[s->n] = f->id;
	s->n++;
	s->fp = *f;
	return 0;
}

static int on_msg(void *ctx, const struct sms_message *m)
{
	struct seen *s = ctx;

	if (s->n < 8)
		s->ids[s->n] = m->id;
	s->n++;
	snprintf(s->text, sizeof(s->text), "%s", m->msg.text);
	s->scope = m->msg.scope;
	return 0;
}

static int count_audit(void *ctx, const struct sms_audit_entry *e)
{
	size_t *n = ctx;

	if (strncmp(e->action, "fingerprint.", 12) == 0 || strncmp(e->action, "message.", 8) == 0)
		(*n)++;
	return 0;
}

static void test_osd_store(void **state)
{
	struct backend *be = *state;
	struct sms_store *s;
	struct sms_fingerprint f;
	struct sms_message m;
	struct sms_card card;
	struct seen seen;
	struct sms_audit_verify v;
	size_t n = 0;
	int64_t ch0 = 0, ch1 = 0, fid, mid;
	char before[65], after[65];
	char text[400];

	if (!be->available)
		skip();
	s = tdb_open_fresh(state);
	memset(&card, 0, sizeof(card));
	card.serial = SERIAL;
	card.start = NOW - 86400;
	card.finish = NOW + 86400;
	assert_int_equal(sms_card_add(s, &card, "test"), 0);

	/* a channel fingerprint, active now */
	fp_sample(&f, SMS_FP_SERVICE, 101);
	assert_int_equal(sms_fp_add(s, &f, "alice"), 0);
	assert_true(f.id > 0);
	assert_int_equal(f.fp.fp_id, (uint32_t)f.id);
	fid = f.id;
	/* a package one, active later */
	fp_sample(&f, SMS_FP_PACKAGE, 2);
	f.start_s = NOW + 7200;
	f.end_s = NOW + 9000;
	f.fp.flags = OSD_FP_SERIAL | OSD_FP_BOX | OSD_FP_RANDOM_POS;
	assert_int_equal(sms_fp_add(s, &f, "alice"), 0);
	/* a per-card covert one: queues the card on the change feed */
	assert_int_equal(sms_changes_last(s, &ch0), 0);
	fp_sample(&f, SMS_FP_CARD, SERIAL);
	f.fp.flags = OSD_FP_SERIAL | OSD_FP_COVERT | OSD_FP_ENCODED;
	assert_int_equal(sms_fp_add(s, &f, "alice"), 0);
	assert_int_equal(sms_changes_last(s, &ch1), 0);
	assert_true(ch1 > ch0);

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(sms_fp_list(s, -1, 100, on_fp, &seen, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(seen.ids[0], fid);
	assert_int_equal(seen.fp.target, SMS_FP_CARD);
	assert_int_equal(seen.fp.fp.flags, OSD_FP_SERIAL | OSD_FP_COVERT | OSD_FP_ENCODED);
	assert_int_equal(seen.fp.fp.fg[0], 0xFF);
	assert_int_equal(seen.fp.fp.bg[3], 0x80);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(sms_fp_list(s, NOW, 100, on_fp, &seen, &n), 0);
	assert_int_equal(n, 2); /* the package one starts later */
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(sms_fp_list(s, NOW + 8000, 100, on_fp, &seen, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(seen.fp.target, SMS_FP_PACKAGE);

	/* messages: a 200-byte UTF-8 one to everybody, a group one, one card's */
	memset(text, 0, sizeof(text));
	for (size_t i = 0; i + 2 < 200; i += 2)
		memcpy(text + i, "\xC3\xA9", 2); /* é x 99 */
	memcpy(text + 198, "!!", 2);
	msg_sample(&m, OSD_SCOPE_GLOBAL, 0, text);
	assert_int_equal(sms_msg_add(s, &m, "bob"), 0);
	msg_sample(&m, OSD_SCOPE_GROUP, 0, "Sport+ subscribers: new channel on 105");
	assert_int_equal(sms_msg_add(s, &m, "bob"), 0);
	msg_sample(&m, OSD_SCOPE_INDIVIDUAL, SERIAL, "Your payment is due");
	assert_int_equal(sms_msg_add(s, &m, "bob"), 0);
	mid = m.id;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(sms_msg_list(s, NOW, 100, on_msg, &seen, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(seen.text, "Your payment is due");
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(sms_msg_list(s, -1, 1, on_msg, &seen, &n), 0);
	assert_string_equal(seen.text, text); /* UTF-8 round trip through the database */
	assert_int_equal(sms_msg_list(s, NOW + 86401, 100, NULL, NULL, &n), 0);
	assert_int_equal(n, 0); /* all expired */

	/* refusals change nothing */
	tdb_fingerprint(s, before);
	fp_sample(&f, SMS_FP_SERVICE, 0);
	assert_int_equal(sms_fp_add(s, &f, "alice"), CE_RANGE);
	fp_sample(&f, SMS_FP_PACKAGE, 32);
	assert_int_equal(sms_fp_add(s, &f, "alice"), CE_RANGE);
	fp_sample(&f, SMS_FP_CARD, 999);
	assert_int_equal(sms_fp_add(s, &f, "alice"), CE_NOT_FOUND);
	fp_sample(&f, SMS_FP_SERVICE, 101);
	f.fp.x_pct = 101;
	assert_int_equal(sms_fp_add(s, &f, "alice"), CE_RANGE);
	fp_sample(&f, SMS_FP_SERVICE, 101);
	f.end_s = f.start_s - 1;
	assert_int_equal(sms_fp_add(s, &f, "alice"), CE_RANGE);
	msg_sample(&m, OSD_SCOPE_INDIVIDUAL, 0, "no card");
	assert_int_equal(sms_msg_add(s, &m, "bob"), CE_RANGE);
	msg_sample(&m, OSD_SCOPE_GLOBAL, SERIAL, "a card on a global message");
	assert_int_equal(sms_msg_add(s, &m, "bob"), CE_RANGE);
	msg_sample(&m, OSD_SCOPE_GLOBAL, 0, "expires before it starts");
	m.msg.expiry_s = (uint64_t)m.start_s - 1;
	assert_int_equal(sms_msg_add(s, &m, "bob"), CE_RANGE);
	msg_sample(&m, OSD_SCOPE_GLOBAL, 0, "ok");
	m.msg.text[0] = 0x07; /* a control character slipped in */
	assert_int_equal(sms_msg_add(s, &m, "bob"), CE_FORMAT);
	assert_int_equal(sms_fp_delete(s, 9999, "alice"), CE_NOT_FOUND);
	tdb_fingerprint(s, after);
	assert_string_equal(before, after);

	/* delete: gone, logged, the card queued again */
	assert_int_equal(sms_changes_last(s, &ch0), 0);
	assert_int_equal(sms_msg_delete(s, mid, "bob"), 0);
	assert_int_equal(sms_changes_last(s, &ch1), 0);
	assert_true(ch1 > ch0);
	assert_int_equal(sms_msg_delete(s, mid, "bob"), CE_NOT_FOUND);
	assert_int_equal(sms_fp_delete(s, fid, "alice"), 0);
	assert_int_equal(sms_msg_list(s, NOW, 100, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sms_fp_list(s, -1, 100, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);

	/* every command is in the chain, and the chain holds */
	n = 0;
	assert_int_equal(sms_audit_range(s, 0, 0, 100000, count_audit, &n, NULL), 0);
	assert_int_equal(n, 3 + 3 + 2);
	assert_int_equal(sms_audit_verify(s, NULL, &v), 0);
	assert_int_equal(v.bad_seq, 0);
	sms_store_close(s);
}

/* One REST request as a panel session with scopes (no API key needed). */
static int rest(struct sms_store *s, unsigned scopes, enum rest_method m, const char *path, const char *query,
	const char *json, json_t **out)
{
	struct rest_req rq = { .method = m, .path = path, .query = query, .auth_who = "panel:ops",
		.auth_scopes = scopes, .content_type = json ? "application/json" : NULL, .body = json,
		.body_len = json ? strlen(json) : 0 };
	struct rest_resp rs;

	rest_handle(s, &rq, &rs);
	if (out)
		*out = rs.len ? json_loadb(rs.body, rs.len, 0, NULL) : NULL;
	free(rs.body);
	return rs.status;
}

static void test_osd_rest(void **state)
{
	struct backend *be = *state;
	struct sms_store *s;
	struct sms_card card;
	json_t *j = NULL;
	char path[64], before[65], after[65];
	int64_t id;
	const unsigned rw = SMS_SCOPE_READ | SMS_SCOPE_WRITE;

	if (!be->available)
		skip();
	s = tdb_open_fresh(state);
	memset(&card, 0, sizeof(card));
	card.serial = SERIAL;
	assert_int_equal(sms_card_add(s, &card, "test"), 0);
	assert_int_equal(rest(s, rw, REST_POST, "/api/v1/fingerprints", NULL,
		"{\"target\":\"service\",\"value\":101,\"show\":\"both\",\"x_pct\":10,\"y_pct\":90,"
		"\"fg\":\"#00FF00\",\"repeat\":2,\"interval_s\":60}", &j), 201);
	assert_string_equal(json_string_value(json_object_get(j, "show")), "both");
	assert_string_equal(json_string_value(json_object_get(j, "fg")), "#00FF00");
	id = json_integer_value(json_object_get(j, "id"));
	assert_true(id > 0);
	json_decref(j);
	assert_int_equal(rest(s, rw, REST_POST, "/api/v1/messages", NULL,
		"{\"scope\":\"individual\",\"card\":2100000001,\"text\":\"Payment due \u2014 merci\","
		"\"popup\":true,\"forced\":true}", &j), 201);
	assert_string_equal(json_string_value(json_object_get(j, "text")), "Payment due \xE2\x80\x94 merci");
	json_decref(j);
	assert_int_equal(rest(s, SMS_SCOPE_READ, REST_GET, "/api/v1/messages", "active=1", NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
	json_decref(j);
	assert_int_equal(rest(s, SMS_SCOPE_READ, REST_GET, "/api/v1/fingerprints", NULL, NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
	json_decref(j);
	/* refusals: nothing changes */
	tdb_fingerprint(s, before);
	assert_int_equal(rest(s, SMS_SCOPE_READ, REST_POST, "/api/v1/messages", NULL,
		"{\"scope\":\"global\",\"text\":\"x\"}", NULL), 403);
	assert_int_equal(rest(s, rw, REST_POST, "/api/v1/messages", NULL, "{\"scope\":\"global\"}", NULL), 400);
	assert_int_equal(rest(s, rw, REST_POST, "/api/v1/messages", NULL,
		"{\"scope\":\"global\",\"text\":\"bell \\u0007\"}", NULL), 400);
	assert_int_equal(rest(s, rw, REST_POST, "/api/v1/messages", NULL,
		"{\"scope\":\"global\",\"text\":\"x\",\"colour\":1}", NULL), 400);
	assert_int_equal(rest(s, rw, REST_POST, "/api/v1/fingerprints", NULL,
		"{\"target\":\"service\",\"value\":101,\"x_pct\":101}", NULL), 400);
	assert_int_equal(rest(s, rw, REST_POST, "/api/v1/fingerprints", NULL,
		"{\"target\":\"card\",\"value\":999}", NULL), 404);
	assert_int_equal(rest(s, rw, REST_POST, "/api/v1/fingerprints", NULL,
		"{\"target\":\"service\",\"value\":101,\"covert\":true,\"duration_ms\":5000}", NULL), 400);
	assert_int_equal(rest(s, rw, REST_PUT, "/api/v1/fingerprints", NULL, "{}", NULL), 405);
	assert_int_equal(rest(s, rw, REST_DELETE, "/api/v1/fingerprints/99999", NULL, NULL, NULL), 404);
	tdb_fingerprint(s, after);
	assert_string_equal(before, after);
	snprintf(path, sizeof(path), "/api/v1/fingerprints/%lld", (long long)id);
	assert_int_equal(rest(s, rw, REST_DELETE, path, NULL, NULL, NULL), 204);
	assert_int_equal(rest(s, rw, REST_DELETE, path, NULL, NULL, NULL), 404);
	assert_string_equal(rest_route_name("/api/v1/messages/3"), "messages");
	sms_store_close(s);
}

/* `castellan sms --db DB ARGS`: stdout into out, the exit code. */
static int cli(const char *db, const char *args, char *out, size_t cap)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char cmd[2048];
	size_t got;
	FILE *f;
	int rc;

	if (!bin)
		skip();
	snprintf(cmd, sizeof(cmd), "%s sms --db %s %s 2>/dev/null", bin, db, args);
	f = popen(cmd, "r");
	assert_non_null(f);
	got = fread(out, 1, cap - 1, f);
	out[got] = '\0';
	rc = pclose(f);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The commands (SQLite only: the CLI reaches PostgreSQL the same way). */
static void test_osd_cli(void **state)
{
	struct backend *be = *state;
	char db[300], out[4096];
	struct sms_store *s = NULL;
	size_t n = 0;

	if (strcmp(be->name, "sqlite") != 0)
		skip();
	snprintf(db, sizeof(db), "sqlite:%s/osd-cli.db", sqlite_dir);
	assert_int_equal(cli(db, "init", out, sizeof(out)), 0);
	assert_int_equal(cli(db, "card add 2100000001", out, sizeof(out)), 0);
	assert_int_equal(cli(db, "fingerprint add --service 101 --show both --x 10 --y 80 --fg FFFF00 "
		"--bg 000000C0 --repeat 3 --interval 60", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "fingerprint 1 added"));
	assert_int_equal(cli(db, "fingerprint add --card 2100000001 --covert --encoded", out, sizeof(out)), 0);
	/* covert "few frames" for 5 s, two targets, a bad colour, an unknown card */
	assert_int_equal(cli(db, "fingerprint add --card 2100000001 --covert --duration-ms 5000", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "fingerprint add --service 1 --package 2", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "fingerprint add --service 1 --fg red", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "fingerprint add --card 99", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "fingerprint list", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "1 service 101 overt serial box pos 10,80 fg #FFFF00 bg #000000C0"));
	assert_non_null(strstr(out, "2 card 2100000001 covert encoded serial"));
	assert_int_equal(cli(db, "message add --global --text 'Maintenance ce soir \xE2\x80\x94 02:00' --popup --forced",
		out, sizeof(out)), 0);
	assert_int_equal(cli(db, "message add --card 2100000001 --text \"$(printf 'bell\\007')\"", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "message add --group 40 --text x", out, sizeof(out)), 1); /* packages 0..31 */
	assert_int_equal(cli(db, "message list --active", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "1 global 0 popup forced 30 s"));
	assert_int_equal(cli(db, "message delete 1", out, sizeof(out)), 0);
	assert_int_equal(cli(db, "message delete 1", out, sizeof(out)), 1);
	assert_int_equal(cli(db, "fingerprint frob", out, sizeof(out)), 1);
	/* what the commands did is in the store and its audit chain */
	assert_int_equal(sms_store_open(db, &s), 0);
	assert_int_equal(sms_fp_list(s, -1, 100, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(sms_audit_range(s, 0, 0, 100000, count_audit, &n, NULL), 0);
	assert_int_equal(n, 2 + 1 + 1);
	sms_store_close(s);
}

/* C.6: a channel's copy control (schema 8) through the store and REST, on
 * both backends: set, read back, default, bad values refused, audited. */
static void test_usage_rest(void **state)
{
	struct backend *be = *state;
	struct sms_store *s;
	struct cas_usage u = { .copy_control = CAS_COPY_NEVER }, got;
	json_t *j = NULL, *it;
	const unsigned rw = SMS_SCOPE_READ | SMS_SCOPE_WRITE;
	static const struct { const char *path, *body; int status; } bad[] = {
		{ "/api/v1/copy-control/0", "{\"copy_control\":\"copy_never\"}", 404 },
		{ "/api/v1/copy-control/65536", "{\"copy_control\":\"copy_never\"}", 404 },
		{ "/api/v1/copy-control/7", "{\"copy_control\":\"copy_no_more\"}", 400 },
		{ "/api/v1/copy-control/7", "{\"copy_control\":3}", 400 },
		{ "/api/v1/copy-control/7", "{}", 400 },
		{ "/api/v1/copy-control/7", "{\"copy_control\":\"copy_once\",\"retention_s\":316224001}", 400 },
		{ "/api/v1/copy-control/7", "{\"copy_control\":\"copy_once\",\"x\":1}", 400 },
	};

	if (!be->available)
		skip();
	s = tdb_open_fresh(state);
	assert_int_equal(sms_usage_get(s, 101, &got), CE_NOT_FOUND);
	assert_int_equal(got.copy_control, CAS_COPY_FREE);
	assert_int_equal(sms_usage_set(s, 0, &u, "t"), CE_RANGE);
	u.copy_control = CAS_COPY_NO_MORE;
	assert_int_equal(sms_usage_set(s, 101, &u, "t"), CE_RANGE);
	assert_int_equal(rest(s, rw, REST_PUT, "/api/v1/copy-control/102", NULL,
		"{\"copy_control\":\"copy_never\"}", &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "copy_control")), "copy_never");
	json_decref(j);
	assert_int_equal(rest(s, rw, REST_PUT, "/api/v1/copy-control/101", NULL,
		"{\"copy_control\":\"copy_once\",\"retention_s\":86400}", NULL), 200);
	assert_int_equal(sms_usage_get(s, 101, &got), 0);
	assert_int_equal(got.copy_control, CAS_COPY_ONCE);
	assert_int_equal(got.retention_s, 86400);
	assert_int_equal(rest(s, SMS_SCOPE_READ, REST_PUT, "/api/v1/copy-control/101", NULL,
		"{\"copy_control\":\"copy_free\"}", NULL), 403);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rest(s, rw, REST_PUT, bad[i].path, NULL, bad[i].body, NULL), bad[i].status);
	assert_int_equal(sms_usage_get(s, 7, &got), CE_NOT_FOUND);
	assert_int_equal(rest(s, SMS_SCOPE_READ, REST_GET, "/api/v1/copy-control", NULL, NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "items")), 2);
	it = json_array_get(json_object_get(j, "items"), 0);
	assert_int_equal(json_integer_value(json_object_get(it, "service_id")), 101);
	assert_int_equal(json_integer_value(json_object_get(it, "retention_s")), 86400);
	json_decref(j);
	/* copy_free with no limit is the default: the row goes */
	assert_int_equal(rest(s, rw, REST_PUT, "/api/v1/copy-control/101", NULL, "{\"copy_control\":\"copy_free\"}",
		NULL), 200);
	assert_int_equal(sms_usage_get(s, 101, &got), CE_NOT_FOUND);
	assert_int_equal(rest(s, rw, REST_DELETE, "/api/v1/copy-control/102", NULL, NULL, NULL), 405);
	sms_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_osd_store),
		cmocka_unit_test(test_osd_rest),
		cmocka_unit_test(test_osd_cli),
		cmocka_unit_test(test_usage_rest),
	};

	return tdb_run_both("osd-store", tests, sizeof(tests) / sizeof(tests[0]));
}
