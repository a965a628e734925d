/*
 * web.c - the web panel's HTTP side (web.h): static files, /web/api/, and
 * the REST API's session authentication. Every answer of /web/api/ is JSON;
 * errors are {"error":{"code":C,"message":M}} like the REST API's.
 *
 * Security headers on every panel answer: a Content-Security-Policy that
 * allows only this origin's scripts and styles (no inline script), no
 * framing, nosniff, no referrer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/rand.h>
#include "web/web.h"
#include "web/session.h"
#include "sms/http.h"
#include "sms/store.h"
#include "lib/log.h"
#include "lib/util.h"

struct web {
	struct sms_http *http;
	struct sms_store *store;
	struct web_users *users;
	struct web_sessions *sessions;
	char root[1024];
	bool secure;
	web_status_fn status_fn;
	void *status_ctx;
	struct web_keys keys;	   /* the head-end's key services; epochs NULL = none */
	char kms_dir[1024];	   /* "" = no KMS view */
	int (*kms_view)(const char *dir, json_t **out);
	uint64_t logins_ok, logins_failed, csrf_refused;
};

/* ---- answers ------------------------------------------------------------ */

static void security_headers(struct evhttp_request *req)
{
	struct evkeyvalq *o = evhttp_request_get_output_headers(req);

	evhttp_add_header(o, "Content-Security-Policy",
			  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
			  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
	evhttp_add_header(o, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(o, "X-Frame-Options", "DENY");
	evhttp_add_header(o, "Referrer-Policy", "no-referrer");
}

static void send_json(struct evhttp_request *req, int status, json_t *j)
{
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *o = evhttp_request_get_output_headers(req);

	security_headers(req);
	evhttp_add_header(o, "Content-Type", "application/json");
	evhttp_add_header(o, "Cache-Control", "no-store");
	if (b && txt)
		evbuffer_add(b, txt, strlen(txt));
	evhttp_send_reply(req, status,
			  status < 300	 ? "OK"
			  : status < 500 ? "Client Error"
					 : "Server Error",
			  status == 204 ? NULL : b);
	if (b)
		evbuffer_free(b);
	free(txt);
	json_decref(j);
}

static void send_error(struct evhttp_request *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void send_error(struct evhttp_request *req, int status, const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_json(req, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* ---- sessions of a request ---------------------------------------------- */

static bool is_safe_method(struct evhttp_request *req)
{
	enum evhttp_cmd_type c = evhttp_request_get_command(req);

	return c == EVHTTP_REQ_GET || c == EVHTTP_REQ_HEAD;
}

/* The live session the request's cookie names, or NULL. */
static struct web_session *req_session(struct web *w, struct evhttp_request *req)
{
	const char *ck = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	char id[WEB_TOKEN_HEX + 2];

	if (!ck || web_cookie_find(ck, strlen(ck), WEB_COOKIE_NAME, id, sizeof(id)) != 0)
		return NULL;
	return web_session_find(w->sessions, id, now_mono_ms());
}

static bool csrf_checked(struct web *w, struct evhttp_request *req, const struct web_session *s)
{
	if (is_safe_method(req))
		return true;
	if (web_csrf_ok(s, evhttp_find_header(evhttp_request_get_input_headers(req), "X-CSRF-Token")))
		return true;
	w->csrf_refused++;
	if ((w->csrf_refused & (w->csrf_refused - 1)) == 0)
		LOG_WARN("web", "%llu requests refused for a missing or wrong CSRF token so far",
			 (unsigned long long)w->csrf_refused);
	send_error(req, 403, "csrf", "missing or wrong X-CSRF-Token");
	return false;
}

/* sms_http hook: a REST request without an API key. */
static int rest_auth(void *ctx, struct evhttp_request *req, unsigned *scopes, char *who, size_t who_cap)
{
	struct web *w = ctx;
	struct web_session *s = req_session(w, req);

	if (!s)
		return 1;
	if (!csrf_checked(w, req, s))
		return -1;
	*scopes = web_role_scopes(s->role);
	snprintf(who, who_cap, "web:%s", s->user);
	return 0;
}

static void set_cookie(struct web *w, struct evhttp_request *req, const char *value, bool clear)
{
	char c[256];

	snprintf(c, sizeof(c), "%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s", WEB_COOKIE_NAME, value,
		 w->secure ? "; Secure" : "", clear ? "; Max-Age=0" : "");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", c);
	secret_wipe(c, sizeof(c));
}

/* ---- request bodies ----------------------------------------------------- */

/* The request's JSON object body, or NULL (answered 400/415). */
static json_t *body_object(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	size_t n = in ? evbuffer_get_length(in) : 0;
	const char *p;
	json_error_t e;
	json_t *j;

	/* application/json only: a cross-site form cannot send it without a
	 * CORS preflight, which this server never grants. */
	if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';')) {
		send_error(req, 415, "unsupported_media_type", "send Content-Type: application/json");
		return NULL;
	}
	if (n > WEB_BODY_MAX) {
		send_error(req, 413, "too_large", "body over %u bytes", WEB_BODY_MAX);
		return NULL;
	}
	p = n ? (const char *)evbuffer_pullup(in, -1) : "";
	j = p ? json_loadb(p, n, JSON_REJECT_DUPLICATES, &e) : NULL;
	/* Bodies may hold passwords (sign-in, users) or a transport
	 * passphrase: wipe the request's copy now that it is parsed. */
	if (p && n) {
		secret_wipe((void *)(uintptr_t)p, n);
		evbuffer_drain(in, n);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		send_error(req, 400, "bad_json", "the body must be one JSON object");
		return NULL;
	}
	return j;
}

static const char *str_member(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Wipe a JSON string member in place (passwords once used). */
static void wipe_member(json_t *o, const char *k)
{
	const char *v = str_member(o, k);

	if (v)
		secret_wipe((void *)(uintptr_t)v, strlen(v));
}

/* One entry in the store's audit table as web:<user> (panel users' own
 * changes: the REST API audits its changes itself). */
static void web_audit(struct web *w, const char *user, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void web_audit(struct web *w, const char *user, const char *fmt, ...)
{
	char who[SMS_WHO_MAX + 1], what[512];
	va_list ap;
	int r;

	snprintf(who, sizeof(who), "web:%s", user);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if ((r = sms_audit_add_ev(w->store, who, "panel", "", what)) != 0)
		LOG_ERR("web", "audit entry of %s not written: %s", who, err_str(r));
}

/* ---- /web/api/ ---------------------------------------------------------- */

static json_t *session_json(const struct web_session *s)
{
	unsigned sc = web_role_scopes(s->role);

	return json_pack("{s:s,s:s,s:s,s:{s:b,s:b,s:b}}", "user", s->user, "role", web_role_name(s->role),
			 "csrf", s->csrf, "can", "read", (int)!!(sc & SMS_SCOPE_READ), "write",
			 (int)!!(sc & SMS_SCOPE_WRITE), "admin", (int)!!(sc & SMS_SCOPE_ADMIN));
}

static void api_login(struct web *w, struct evhttp_request *req)
{
	json_t *b = body_object(req);
	const char *user, *pw;
	enum web_role role;
	int64_t until = 0;
	struct web_session *s;
	int r;

	if (!b)
		return;
	user = str_member(b, "user");
	pw = str_member(b, "password");
	if (!user || !pw) {
		send_error(req, 400, "bad_request", "user and password are required");
		goto out;
	}
	r = web_user_check(w->users, user, pw, (int64_t)now_wall_ms(), &role, &until);
	if (r == CE_MAC || r == CE_BLOCKED) {
		w->logins_failed++;
		if ((w->logins_failed & (w->logins_failed - 1)) == 0)
			LOG_WARN("web", "%llu failed sign-ins so far", (unsigned long long)w->logins_failed);
		if (r == CE_BLOCKED)
			send_json(req, 423,
				  json_pack("{s:{s:s,s:s,s:I}}", "error", "code", "locked", "message",
					    "too many wrong passwords: try again later", "until_ms",
					    (json_int_t)until));
		else
			send_error(req, 401, "bad_credentials", "wrong user name or password");
		goto out;
	}
	if (r != 0) {
		send_error(req, 500, "internal", "%s", err_str(r));
		goto out;
	}
	if ((r = web_session_create(w->sessions, user, role, now_mono_ms(), &s)) != 0) {
		send_error(req, 500, "internal", "%s", err_str(r));
		goto out;
	}
	w->logins_ok++;
	LOG_INFO("web", "user %s signed in (%s)", user, web_role_name(role));
	set_cookie(w, req, s->id, false);
	send_json(req, 200, session_json(s));
out:
	if (pw)
		secret_wipe((void *)(uintptr_t)pw, strlen(pw));
	json_decref(b);
}

static int acc_user(void *ctx, const struct web_user_info *i)
{
	return json_array_append_new(ctx, json_pack("{s:s,s:s,s:i,s:I}", "name", i->name, "role",
						    web_role_name(i->role), "fails", (int)i->fails,
						    "locked_until_ms", (json_int_t)i->locked_until_ms)) == 0
		   ? 0
		   : CE_NOMEM;
}

static void answer_store(struct evhttp_request *req, int r)
{
	if (r == 0)
		send_json(req, 204, NULL);
	else if (r == CE_NOT_FOUND)
		send_error(req, 404, "not_found", "no such user");
	else if (r == CE_EXISTS)
		send_error(req, 409, "exists", "that user exists already");
	else if (r == CE_ARG)
		send_error(req, 400, "invalid_value",
			   "user names: 1 to %d of A-Z a-z 0-9 . _ -; passwords: %d to %d bytes",
			   WEB_USER_MAX, WEB_PASSWORD_MIN, WEB_PASSWORD_MAX);
	else
		send_error(req, 500, "internal", "%s", err_str(r));
}

/* /web/api/users[/NAME] */
static void api_users(struct web *w, struct evhttp_request *req, struct web_session *s, const char *name)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	json_t *b = NULL;
	enum web_role role;
	int r;

	/* A user may change their own password; everything else is admin. */
	if (s->role != WEB_ROLE_ADMIN && !(name && m == EVHTTP_REQ_PATCH && strcmp(name, s->user) == 0)) {
		send_error(req, 403, "forbidden", "admin role required");
		return;
	}
	if (!name && is_safe_method(req)) {
		json_t *a = json_array();

		if (!a || (r = web_user_list(w->users, acc_user, a)) != 0) {
			json_decref(a);
			send_error(req, 500, "internal", "listing users");
			return;
		}
		send_json(req, 200, json_pack("{s:o}", "items", a));
		return;
	}
	if (!name && m == EVHTTP_REQ_POST) {
		const char *n, *pw, *rl;

		if (!(b = body_object(req)))
			return;
		n = str_member(b, "name");
		pw = str_member(b, "password");
		rl = str_member(b, "role");
		if (!n || !pw || !rl || web_role_parse(rl, &role) != 0) {
			send_error(req, 400, "bad_request",
				   "name, password and role (admin, operator, read-only)");
			goto out;
		}
		r = web_user_add(w->users, n, pw, role);
		if (r == 0) {
			LOG_INFO("web", "%s added panel user %s (%s)", s->user, n, rl);
			web_audit(w, s->user, "panel user add %s role=%s", n, rl);
		}
		answer_store(req, r);
		goto out;
	}
	if (name && m == EVHTTP_REQ_PATCH) {
		const char *pw, *rl;
		json_t *unlock;
		char who[WEB_USER_MAX + 1];

		if (!(b = body_object(req)))
			return;
		snprintf(who, sizeof(who), "%s", s->user);
		pw = str_member(b, "password");
		rl = str_member(b, "role");
		unlock = json_object_get(b, "unlock");
		if ((rl && web_role_parse(rl, &role) != 0) || (!pw && !rl && !json_is_true(unlock))) {
			send_error(req, 400, "bad_request", "password, role or unlock:true");
			goto out;
		}
		if ((rl || json_is_true(unlock)) && s->role != WEB_ROLE_ADMIN) {
			send_error(req, 403, "forbidden", "admin role required");
			goto out;
		}
		if (pw && strcmp(name, who) == 0) {
			/* One's own password: prove the current one (a stolen
			 * session alone cannot take the account over). */
			const char *cur = str_member(b, "current_password");
			enum web_role cr;
			int64_t until;

			r = cur ? web_user_check(w->users, who, cur, (int64_t)now_wall_ms(), &cr, &until)
				: CE_MAC;
			if (r != 0) {
				send_error(req, 403, "current_password",
					   "the current password is wrong or missing");
				goto out;
			}
		}
		r = 0;
		if (pw)
			r = web_user_set_password(w->users, name, pw);
		if (r == 0 && rl)
			r = web_user_set_role(w->users, name, role);
		if (r == 0 && json_is_true(unlock))
			r = web_user_unlock(w->users, name);
		if (r == 0)
			web_audit(w, who, "panel user change %s%s%s%s%s", name, pw ? " password" : "",
				  rl ? " role=" : "", rl ? rl : "", json_is_true(unlock) ? " unlock" : "");
		if (r == 0 && (pw || rl)) {
			/* Other sessions of that user end; the caller's own stays. */
			LOG_INFO("web", "%s changed panel user %s%s%s", who, name, pw ? " password" : "",
				 rl ? " role" : "");
			if (strcmp(name, who) != 0 || rl)
				web_session_end_user(w->sessions, name);
		}
		answer_store(req, r);
		goto out;
	}
	if (name && m == EVHTTP_REQ_DELETE) {
		if (strcmp(name, s->user) == 0) {
			send_error(req, 409, "self", "you cannot delete yourself");
			return;
		}
		r = web_user_delete(w->users, name);
		if (r == 0) {
			LOG_INFO("web", "%s deleted panel user %s", s->user, name);
			web_audit(w, s->user, "panel user delete %s", name);
			web_session_end_user(w->sessions, name);
		}
		answer_store(req, r);
		return;
	}
	send_error(req, 405, "method_not_allowed", "GET, POST on users; PATCH, DELETE on users/NAME");
out:
	if (b) {
		wipe_member(b, "password");
		wipe_member(b, "current_password");
	}
	json_decref(b);
}

/* POST /web/api/apikeys {"user":U,"scopes":["read","write","admin"]}: the
 * key is in the answer, once. */
static void api_apikeys(struct web *w, struct evhttp_request *req, struct web_session *s)
{
	char key[65], who[SMS_WHO_MAX + 1];
	unsigned scopes = 0;
	const char *user;
	json_t *b, *sc, *v;
	size_t i;
	int64_t uid;
	int r;

	if (s->role != WEB_ROLE_ADMIN) {
		send_error(req, 403, "forbidden", "admin role required");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		send_error(req, 405, "method_not_allowed", "POST");
		return;
	}
	if (!(b = body_object(req)))
		return;
	user = str_member(b, "user");
	sc = json_object_get(b, "scopes");
	json_array_foreach(sc, i, v)
	{
		const char *t = json_string_value(v);

		scopes |= t && strcmp(t, "read") == 0	 ? SMS_SCOPE_READ
			  : t && strcmp(t, "write") == 0 ? SMS_SCOPE_WRITE
			  : t && strcmp(t, "admin") == 0 ? SMS_SCOPE_ADMIN
			  : t && strcmp(t, "metrics") == 0 ? SMS_SCOPE_METRICS
							 : 0x80000000u;
	}
	if (!user || !*user || !sms_name_fits(user) || !sms_text_valid(user) || !json_is_array(sc) ||
	    !scopes || (scopes & 0x80000000u)) {
		send_error(req, 400, "bad_request", "user and scopes (read, write, admin, metrics)");
		goto out;
	}
	snprintf(who, sizeof(who), "web:%s", s->user);
	r = sms_user_add(w->store, user, who, &uid);
	if (r == 0 || r == CE_EXISTS)
		r = sms_apikey_create(w->store, user, scopes, who, key);
	if (r != 0) {
		send_error(req, 500, "internal", "%s", err_str(r));
		goto out;
	}
	send_json(req, 201, json_pack("{s:s,s:s}", "user", user, "key", key));
	secret_wipe(key, sizeof(key));
out:
	json_decref(b);
}

/* GET /web/api/audit?who=W&q=TEXT&since_ms=T&limit=N: newest first. */
struct audit_acc {
	json_t *items;
	char who[SMS_WHO_MAX + 1], q[128];
	int64_t since_ms;
	size_t limit, n;
};

static int acc_audit(void *ctx, const struct sms_audit *a)
{
	struct audit_acc *x = ctx;

	if (x->n >= x->limit || a->at_ms < x->since_ms)
		return 0;
	if (x->who[0] && !strstr(a->who, x->who))
		return 0;
	if (x->q[0] && !strcasestr(a->what, x->q))
		return 0;
	x->n++;
	return json_array_append_new(x->items,
				     json_pack("{s:I,s:I,s:s,s:s}", "id", (json_int_t)a->id, "at_ms",
					       (json_int_t)a->at_ms, "who", a->who, "what", a->what)) == 0
		   ? 0
		   : CE_NOMEM;
}

static void api_audit(struct web *w, struct evhttp_request *req, struct web_session *s)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = evhttp_uri_get_query(uri);
	struct evkeyvalq params = {0};
	struct audit_acc x = {.limit = 200};
	const char *v;
	uint64_t u;
	int r;

	if (s->role != WEB_ROLE_ADMIN) {
		send_error(req, 403, "forbidden", "admin role required");
		return;
	}
	if (q && (strlen(q) > 1024 || evhttp_parse_query_str(q, &params) != 0)) {
		send_error(req, 400, "bad_request", "bad query");
		return;
	}
	if ((v = evhttp_find_header(&params, "who")))
		snprintf(x.who, sizeof(x.who), "%s", v);
	if ((v = evhttp_find_header(&params, "q")))
		snprintf(x.q, sizeof(x.q), "%s", v);
	if ((v = evhttp_find_header(&params, "since_ms")) && parse_u64(v, INT64_MAX, &u) == 0)
		x.since_ms = (int64_t)u;
	if ((v = evhttp_find_header(&params, "limit")) && parse_u64(v, 1000, &u) == 0 && u > 0)
		x.limit = (size_t)u;
	evhttp_clear_headers(&params);
	if (!(x.items = json_array())) {
		send_error(req, 500, "internal", "out of memory");
		return;
	}
	if ((r = sms_audit_list(w->store, WEB_AUDIT_SCAN, acc_audit, &x)) != 0) {
		json_decref(x.items);
		send_error(req, 500, "internal", "%s", err_str(r));
		return;
	}
	send_json(req, 200, json_pack("{s:o,s:i}", "items", x.items, "scanned_max", WEB_AUDIT_SCAN));
}

static void api_status(struct web *w, struct evhttp_request *req)
{
	struct sms_http_stats hs;
	size_t npkg = 0;
	json_t *o;

	sms_http_get_stats(w->http, &hs);
	if (sms_package_count(w->store, &npkg) != 0)
		npkg = 0;
	o = json_pack("{s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I,s:i},s:I}", "now_ms",
		      (json_int_t)now_wall_ms(), "packages", (json_int_t)npkg, "http", "requests",
		      (json_int_t)hs.requests, "rest_requests", (json_int_t)hs.rest_requests, "rest_errors",
		      (json_int_t)hs.rest_errors, "rest_unauthorized", (json_int_t)hs.rest_unauthorized,
		      "internal_errors", (json_int_t)hs.internal_errors, "web", "logins_ok",
		      (json_int_t)w->logins_ok, "logins_failed", (json_int_t)w->logins_failed, "csrf_refused",
		      (json_int_t)w->csrf_refused, "sessions", (int)web_session_count(w->sessions),
		      "getapi_ok", (json_int_t)hs.words[GETAPI_OK]);
	if (o && w->status_fn && w->status_fn(w->status_ctx, o) != 0)
		LOG_WARN("web", "status counters: the head-end's part failed");
	send_json(req, o ? 200 : 500, o);
}

/* GET /web/api/log?after=SEQ: the recent log lines (lib/log.h's ring). */
static void acc_log(void *ctx, unsigned long long seq, const char *line)
{
	json_t *a = ctx, *o;

	/* A line cut mid UTF-8 sequence is not valid JSON text: skip what
	 * jansson refuses rather than the whole answer. */
	if ((o = json_pack("{s:I,s:s}", "seq", (json_int_t)seq, "line", line)))
		json_array_append_new(a, o);
}

static void api_log(struct web *w, struct evhttp_request *req, struct web_session *s)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq params = {0};
	const char *v;
	uint64_t after = 0;
	json_t *a;

	(void)w;
	if (s->role != WEB_ROLE_ADMIN) {
		send_error(req, 403, "forbidden", "admin role required");
		return;
	}
	if (q && (strlen(q) > 256 || evhttp_parse_query_str(q, &params) != 0)) {
		send_error(req, 400, "bad_request", "bad query");
		return;
	}
	if ((v = evhttp_find_header(&params, "after")) && parse_u64(v, INT64_MAX, &after) != 0)
		after = 0;
	evhttp_clear_headers(&params);
	if (!(a = json_array())) {
		send_error(req, 500, "internal", "out of memory");
		return;
	}
	log_ring_read(after, acc_log, a);
	send_json(req, 200, json_pack("{s:o,s:i}", "items", a, "kept_max", LOG_RING_LINES));
}

/* GET /web/api/epochs: the key epoch in force and the next rotation. */
static void api_epochs(struct web *w, struct evhttp_request *req)
{
	uint64_t now_s = now_wall_ms() / 1000;
	struct web_epochs ep;
	uint32_t len, e;
	int r;

	if (!w->keys.epochs) {
		send_error(req, 404, "no_keystore", "this server has no keystore (castellan headend has)");
		return;
	}
	if ((r = w->keys.epochs(w->keys.ctx, now_s, &ep)) != 0) {
		send_error(req, 500, "internal", "%s", err_str(r));
		return;
	}
	len = ep.epoch_seconds;
	e = ep.epoch;
	send_json(req, 200,
		  json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:s}", "ca_system_id", (int)ep.ca_system_id,
			    "epoch_seconds", (json_int_t)len, "epoch", (json_int_t)e, "epoch_start_ms",
			    (json_int_t)((uint64_t)e * len * 1000u), "next_rotation_ms",
			    (json_int_t)(((uint64_t)e + 1) * len * 1000u), "now_ms", (json_int_t)now_wall_ms(),
			    "root_fingerprint", ep.fingerprint));
}

/* POST /web/api/perso {"serial":N,"passphrase":P,"max_channels"?,"window_s"?,
 * "block_s"?}: the card's personalization file (card/perso.h), admin only,
 * for an existing card. The passphrase is the transport passphrase the
 * programming tool will be given (10..256 bytes). */
static void api_perso(struct web *w, struct evhttp_request *req, struct web_session *s)
{
	uint8_t file[WEB_PERSO_FILE_MAX];
	size_t flen = 0;
	struct sms_card card;
	char disp[96];
	const char *pass;
	json_int_t serial, mc, win, blk;
	struct evbuffer *out;
	json_t *b;
	int r;

	if (s->role != WEB_ROLE_ADMIN) {
		send_error(req, 403, "forbidden", "admin role required");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		send_error(req, 405, "method_not_allowed", "POST");
		return;
	}
	if (!w->keys.perso) {
		send_error(req, 404, "no_keystore", "this server has no keystore (castellan headend has)");
		return;
	}
	if (!(b = body_object(req)))
		return;
	pass = str_member(b, "passphrase");
	serial = json_integer_value(json_object_get(b, "serial"));
	mc = json_integer_value(json_object_get(b, "max_channels"));
	win = json_integer_value(json_object_get(b, "window_s"));
	blk = json_integer_value(json_object_get(b, "block_s"));
	if (!json_is_integer(json_object_get(b, "serial")) || serial <= 0 || !pass || strlen(pass) < 10 ||
	    strlen(pass) > 256 || mc < 0 || mc > 255 || win < 0 || win > UINT32_MAX || blk < 0 || blk > UINT32_MAX) {
		send_error(req, 400, "bad_request",
			   "serial (a card), passphrase (10 to 256 bytes); max_channels, window_s, block_s optional");
		goto out;
	}
	if ((r = sms_card_get(w->store, (uint64_t)serial, &card)) != 0) {
		send_error(req, r == CE_NOT_FOUND ? 404 : 500, r == CE_NOT_FOUND ? "not_found" : "internal",
			   "card %lld: %s", (long long)serial, err_str(r));
		goto out;
	}
	if ((r = w->keys.perso(w->keys.ctx, (uint64_t)serial, (uint8_t)mc, (uint32_t)win, (uint32_t)blk, pass, file,
		     sizeof(file), &flen)) != 0) {
		send_error(req, r == CE_RANGE ? 400 : 500, r == CE_RANGE ? "invalid_value" : "internal", "%s",
			   err_str(r));
		goto out;
	}
	if (!(out = evbuffer_new()) || evbuffer_add(out, file, flen) != 0) {
		if (out)
			evbuffer_free(out);
		send_error(req, 500, "internal", "out of memory");
		goto out;
	}
	web_audit(w, s->user, "card perso %lld file issued", (long long)serial);
	LOG_INFO("web", "%s issued the personalization file of card %lld", s->user, (long long)serial);
	snprintf(disp, sizeof(disp), "attachment; filename=\"card-%lld.perso\"", (long long)serial);
	security_headers(req);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/octet-stream");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition", disp);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
out:
	if (b)
		wipe_member(b, "passphrase");
	json_decref(b);
}

/* GET /web/api/generators: the ECMG/EMMG definitions in the store
 * (read-only here; the head-end's REST API edits them). */
static int acc_gen(void *ctx, const struct sms_generator *g)
{
	return json_array_append_new(
		       ctx, json_pack("{s:I,s:s,s:s,s:s,s:i,s:I,s:I,s:b}", "id", (json_int_t)g->id, "kind",
				      g->kind == SMS_GEN_ECMG ? "ecmg" : "emmg", "name", g->name, "address",
				      g->address, "ca_system_id", (int)g->ca_system_id, "client_id",
				      (json_int_t)g->client_id, "bandwidth_kbps", (json_int_t)g->bandwidth_kbps,
				      "enabled", (int)g->enabled)) == 0
		       ? 0
		       : CE_NOMEM;
}

static void api_generators(struct web *w, struct evhttp_request *req)
{
	json_t *a = json_array();
	size_t n = 0;
	int r;

	if (!a || (r = sms_generator_list(w->store, -1, 0, 1000, acc_gen, a, &n)) != 0) {
		json_decref(a);
		send_error(req, 500, "internal", "listing generators");
		return;
	}
	send_json(req, 200, json_pack("{s:o}", "items", a));
}

/* GET /web/api/kms: the KMS directory, read-only, admin only (kms/view.h). */
static void api_kms(struct web *w, struct evhttp_request *req, struct web_session *s)
{
	json_t *o = NULL;
	int r;

	if (s->role != WEB_ROLE_ADMIN) {
		send_error(req, 403, "forbidden", "admin role required");
		return;
	}
	if (!is_safe_method(req)) {
		send_error(req, 405, "method_not_allowed", "GET");
		return;
	}
	if (!w->kms_dir[0]) {
		send_error(req, 404, "no_kms", "no KMS directory on this server (--kms-dir)");
		return;
	}
	if ((r = w->kms_view(w->kms_dir, &o)) != 0) {
		send_error(req, r == CE_NOT_FOUND ? 404 : 500, r == CE_NOT_FOUND ? "no_kms" : "internal",
			   "KMS directory: %s", err_str(r));
		return;
	}
	send_json(req, 200, o);
}

static void on_api(struct web *w, struct evhttp_request *req, const char *path)
{
	const char *rest = path + strlen(WEB_API_PREFIX);
	struct web_session *s;

	if (strcmp(rest, "login") == 0) {
		if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
			send_error(req, 405, "method_not_allowed", "POST");
			return;
		}
		api_login(w, req);
		return;
	}
	if (!(s = req_session(w, req))) {
		send_error(req, 401, "unauthorized", "sign in first");
		return;
	}
	if (!csrf_checked(w, req, s))
		return;
	if (strcmp(rest, "session") == 0 && is_safe_method(req)) {
		send_json(req, 200, session_json(s));
	} else if (strcmp(rest, "logout") == 0 && evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
		LOG_INFO("web", "user %s signed out", s->user);
		web_session_end(w->sessions, s);
		set_cookie(w, req, "", true);
		send_json(req, 204, NULL);
	} else if (strcmp(rest, "users") == 0) {
		api_users(w, req, s, NULL);
	} else if (strncmp(rest, "users/", 6) == 0 && web_user_name_valid(rest + 6)) {
		api_users(w, req, s, rest + 6);
	} else if (strcmp(rest, "apikeys") == 0) {
		api_apikeys(w, req, s);
	} else if (strcmp(rest, "audit") == 0 && is_safe_method(req)) {
		api_audit(w, req, s);
	} else if (strcmp(rest, "status") == 0 && is_safe_method(req)) {
		api_status(w, req);
	} else if (strcmp(rest, "log") == 0 && is_safe_method(req)) {
		api_log(w, req, s);
	} else if (strcmp(rest, "epochs") == 0 && is_safe_method(req)) {
		api_epochs(w, req);
	} else if (strcmp(rest, "generators") == 0 && is_safe_method(req)) {
		api_generators(w, req);
	} else if (strcmp(rest, "kms") == 0) {
		api_kms(w, req, s);
	} else if (strcmp(rest, "perso") == 0) {
		api_perso(w, req, s);
	} else {
		send_error(req, 404, "not_found", "no such resource");
	}
}

/* ---- static files ------------------------------------------------------- */

static const struct {
	const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"woff2", "font/woff2"},
};

int web_static_path(const char *root, const char *url_path, char *out, size_t cap, const char **ctype)
{
	size_t n = url_path ? strlen(url_path) : 0, seg = 0, segs = 0;
	const char *rel, *dot = NULL;
	int k;

	*ctype = NULL;
	if (cap)
		out[0] = '\0';
	if (n == 0 || url_path[0] != '/' || n > WEB_PATH_MAX)
		return CE_NOT_FOUND;
	rel = strcmp(url_path, "/") == 0 ? "/index.html" : url_path;
	for (const char *p = rel + 1;; p++) {
		char c = *p;

		if (c == '/' || c == '\0') {
			if (seg == 0)
				return CE_NOT_FOUND; /* "//" or a trailing '/' */
			if (++segs > 4)
				return CE_NOT_FOUND;
			seg = 0;
			if (c == '\0')
				break;
			dot = NULL;
			continue;
		}
		if (seg == 0 && c == '.')
			return CE_NOT_FOUND; /* "..", ".hidden" */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return CE_NOT_FOUND;
		if (c == '.')
			dot = p;
		seg++;
	}
	if (!dot)
		return CE_NOT_FOUND;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(dot + 1, types[i].ext) == 0)
			*ctype = types[i].type;
	}
	if (!*ctype)
		return CE_NOT_FOUND;
	k = snprintf(out, cap, "%s%s", root, rel);
	if (k < 0 || (size_t)k >= cap) {
		*ctype = NULL;
		return CE_NOT_FOUND;
	}
	return 0;
}

static void on_static(struct web *w, struct evhttp_request *req, const char *path)
{
	char file[1400];
	const char *ct;
	struct stat st;
	struct evbuffer *b = NULL;
	struct evkeyvalq *o = evhttp_request_get_output_headers(req);
	int fd = -1;

	if (!is_safe_method(req)) {
		send_error(req, 405, "method_not_allowed", "GET");
		return;
	}
	if (web_static_path(w->root, path, file, sizeof(file), &ct) != 0)
		goto not_found;
	/* O_NOFOLLOW: a symlink planted in web/ is not followed out of it. */
	fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)WEB_FILE_MAX)
		goto not_found;
	if (!(b = evbuffer_new()) || evbuffer_add_file(b, fd, 0, st.st_size) != 0) {
		if (b)
			evbuffer_free(b);
		else
			close(fd);
		send_error(req, 500, "internal", "cannot read the file");
		return;
	}
	fd = -1; /* the evbuffer owns it now */
	security_headers(req);
	evhttp_add_header(o, "Content-Type", ct);
	evhttp_add_header(o, "Cache-Control", "no-cache");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
	return;
not_found:
	if (fd >= 0)
		close(fd);
	send_error(req, 404, "not_found", "no such file");
}

/* sms_http hook: everything but /api.php and /api/v1/. */
static int fallback(void *ctx, struct evhttp_request *req)
{
	struct web *w = ctx;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (!path)
		return 0;
	if (strncmp(path, WEB_API_PREFIX, strlen(WEB_API_PREFIX)) == 0)
		on_api(w, req, path);
	else
		on_static(w, req, path);
	return 1;
}

/* ---- setup -------------------------------------------------------------- */

static int first_start(struct web *w, const char *password)
{
	char pw[33];
	uint8_t rnd[12];
	size_t n = 0;
	int r;

	if ((r = web_users_count(w->users, &n)) != 0 || n > 0)
		return r;
	if (password) {
		r = web_user_add(w->users, "admin", password, WEB_ROLE_ADMIN);
		if (r == 0)
			printf("web: first start: panel user admin created with the given password\n");
		return r;
	}
	/* 96 random bits, as 24 hex digits: typed once, then changed. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return CE_CRYPTO;
	hex_encode(rnd, sizeof(rnd), pw);
	r = web_user_add(w->users, "admin", pw, WEB_ROLE_ADMIN);
	if (r == 0) {
		printf("web: first start: panel user admin, password (shown once, change it after signing "
		       "in): %s\n",
		       pw);
		fflush(stdout);
	}
	secret_wipe(pw, sizeof(pw));
	secret_wipe(rnd, sizeof(rnd));
	return r;
}

int web_new(struct sms_http *http, struct sms_store *store, const struct web_config *cfg, struct web **out)
{
	struct sms_http_hooks hk;
	struct web *w;
	int r = CE_ARG;

	*out = NULL;
	if (!http || !store || !cfg || !cfg->root || !cfg->users_path)
		return CE_ARG;
	if (!(w = calloc(1, sizeof(*w))))
		return CE_NOMEM;
	w->http = http;
	w->store = store;
	w->secure = cfg->secure_cookies;
	if (snprintf(w->root, sizeof(w->root), "%s", cfg->root) >= (int)sizeof(w->root))
		goto fail;
	if (cfg->kms_dir) {
		struct stat st;

		if (!cfg->kms_view) {
			LOG_ERR("web", "--kms-dir given without a KMS view");
			r = CE_ARG;
			goto fail;
		}
		w->kms_view = cfg->kms_view;
		if (snprintf(w->kms_dir, sizeof(w->kms_dir), "%s", cfg->kms_dir) >= (int)sizeof(w->kms_dir))
			goto fail;
		if (stat(cfg->kms_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			LOG_ERR("web", "--kms-dir %s is not a directory", cfg->kms_dir);
			r = CE_NOT_FOUND;
			goto fail;
		}
	}
	if ((r = web_users_open(cfg->users_path, cfg->kdf, &w->users)) != 0 ||
	    (r = web_sessions_new(&w->sessions)) != 0 || (r = first_start(w, cfg->admin_password)) != 0)
		goto fail;
	hk = (struct sms_http_hooks){rest_auth, fallback, w};
	sms_http_set_hooks(http, &hk);
	LOG_INFO("web", "panel served from %s", w->root);
	*out = w;
	return 0;
fail:
	web_free(w);
	return r;
}

void web_free(struct web *w)
{
	if (!w)
		return;
	if (w->sessions) /* fully attached: detach */
		sms_http_set_hooks(w->http, NULL);
	web_sessions_free(w->sessions);
	web_users_close(w->users);
	free(w);
}

void web_set_status_fn(struct web *w, web_status_fn fn, void *ctx)
{
	w->status_fn = fn;
	w->status_ctx = ctx;
}

void web_set_keys(struct web *w, const struct web_keys *k)
{
	if (k)
		w->keys = *k;
	else
		memset(&w->keys, 0, sizeof(w->keys));
}
