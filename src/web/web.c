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
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "web/web.h"
#include "web/session.h"
#include "sms/http.h"
#include "sms/store.h"
#include "lib/log.h"
#include "lib/util.h"

/* Sign-in lock-out, in memory: WEB_LOCKOUT_FAILS wrong passwords in a row
 * for one (client address, user) lock that pair for WEB_LOCKOUT_MS, known
 * name or not; from outside the operator networks, WEB_OUTSIDE_FAILS for
 * one user from any addresses lock that user for every outside address,
 * while the operator networks keep their way in. */
#define WEB_LOCK_SLOTS 4096
#define WEB_OUTSIDE_FAILS 20
#define WEB_OPNETS_MAX 16
struct lock_entry {
	char key[64 + WEB_USER_MAX + 2]; /* address "\n" user; "" = free */
	unsigned fails;
	uint64_t first_ms, until_ms, used_ms; /* wall clock */
};

struct web_net {
	int family;
	uint8_t addr[16];
	unsigned prefix;
};

/* The KDF of sign-ins runs on WEB_SIGNIN_WORKERS threads, at most
 * WEB_SIGNIN_INFLIGHT sign-ins at once (more: 503 and Retry-After), so the
 * HTTP loop never waits for scrypt. A finished job comes back to the loop
 * through a pipe. */
#define WEB_SIGNIN_WORKERS 2
#define WEB_SIGNIN_INFLIGHT 8
struct signin_job {
	struct web *w;
	struct evhttp_request *req;
	json_t *body; /* holds user and password; the password is wiped at the end */
	const char *user, *pw;
	char addr[64];
	bool outside;
	struct web_pw_rec rec;
	int result;
	struct signin_job *next;
};

struct signin_pool {
	pthread_t th[WEB_SIGNIN_WORKERS];
	unsigned nth;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct signin_job *head, *tail;
	bool stop;
	int done_pipe[2];
	struct event *done_ev;
	unsigned inflight;
};

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
	uint64_t logins_ok, logins_failed, csrf_refused, logins_busy;
	struct event_base *base;   /* the HTTP server's main loop (sign-ins finish there) */
	struct lock_entry *locks;  /* WEB_LOCK_SLOTS */
	struct web_net opnets[WEB_OPNETS_MAX];
	size_t nopnets;
	struct signin_pool *pool;
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

/* The live session the request's cookie names, or NULL. The user is
 * looked up again on every request (the users file may have been changed by
 * `castellan web role/passwd/deluser`, another process): a deleted user, a
 * changed role or a changed password ends the session. */
static struct web_session *req_session(struct web *w, struct evhttp_request *req)
{
	const char *ck = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	char id[WEB_TOKEN_HEX + 2];
	struct web_session *s;
	struct web_user_info u;
	int r;

	if (!ck || web_cookie_find(ck, strlen(ck), WEB_COOKIE_NAME, id, sizeof(id)) != 0)
		return NULL;
	if (!(s = web_session_find(w->sessions, id, now_mono_ms())))
		return NULL;
	r = web_user_get(w->users, s->user, &u);
	if (r == 0 && u.role == s->role && CRYPTO_memcmp(u.pw_stamp, s->pw_stamp, sizeof(u.pw_stamp)) == 0)
		return s;
	if (r == 0 || r == CE_NOT_FOUND)
		LOG_INFO("web", "session of %s ended: the user was %s", s->user,
			 r ? "deleted" : u.role != s->role ? "given another role" : "given another password");
	else
		LOG_ERR("web", "session of %s refused: users file: %s", s->user, err_str(r));
	web_session_end(w->sessions, s);
	return NULL;
}

/* Stamp a new session with its user's current password stamp. */
static void session_stamp(struct web *w, struct web_session *s)
{
	struct web_user_info u;

	if (web_user_get(w->users, s->user, &u) == 0)
		memcpy(s->pw_stamp, u.pw_stamp, sizeof(s->pw_stamp));
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

/* sms_http hook, the gate: does a Cookie header name a live session? */
static bool has_session(void *ctx, const char *ck)
{
	struct web *w = ctx;
	char id[WEB_TOKEN_HEX + 2];

	return web_cookie_find(ck, strlen(ck), WEB_COOKIE_NAME, id, sizeof(id)) == 0 &&
	       web_session_find(w->sessions, id, now_mono_ms()) != NULL;
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

/* ---- sign-in: lock-out by address and user, the KDF off the loop -------- */

static void peer_of(struct evhttp_request *req, char *out, size_t cap)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	char *a = NULL;
	ev_uint16_t port = 0;

	if (c)
		evhttp_connection_get_peer(c, &a, &port);
	snprintf(out, cap, "%s", a ? a : "?");
}

/* "CIDR[,CIDR...]" into w->opnets. CE_FORMAT on a bad one. */
static int opnets_parse(struct web *w, const char *list)
{
	const char *p = list;

	w->nopnets = 0;
	while (p && *p) {
		const char *e = strchr(p, ','), *sl;
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char buf[64];
		struct web_net *nt;
		uint64_t pre = 0;

		if (n == 0 || n >= sizeof(buf) || w->nopnets == WEB_OPNETS_MAX)
			return CE_FORMAT;
		memcpy(buf, p, n);
		buf[n] = '\0';
		nt = &w->opnets[w->nopnets];
		memset(nt, 0, sizeof(*nt));
		sl = strchr(buf, '/');
		if (sl)
			buf[sl - buf] = '\0';
		if (inet_pton(AF_INET, buf, nt->addr) == 1)
			nt->family = AF_INET;
		else if (inet_pton(AF_INET6, buf, nt->addr) == 1)
			nt->family = AF_INET6;
		else
			return CE_FORMAT;
		nt->prefix = nt->family == AF_INET ? 32 : 128;
		if (sl) {
			if (parse_u64(sl + 1, nt->prefix, &pre) != 0)
				return CE_FORMAT;
			nt->prefix = (unsigned)pre;
		}
		w->nopnets++;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

static bool in_opnets(const struct web *w, const char *addr)
{
	uint8_t a[16];
	int fam = inet_pton(AF_INET, addr, a) == 1 ? AF_INET : inet_pton(AF_INET6, addr, a) == 1 ? AF_INET6 : 0;

	for (size_t i = 0; fam && i < w->nopnets; i++) {
		const struct web_net *n = &w->opnets[i];
		unsigned full = n->prefix / 8, rest = n->prefix % 8;

		if (n->family != fam || memcmp(a, n->addr, full) != 0)
			continue;
		if (rest == 0 || ((a[full] ^ n->addr[full]) & (uint8_t)(0xFF << (8 - rest))) == 0)
			return true;
	}
	return false;
}

/* The entry of key (created if create; the least recently used is reused). */
static struct lock_entry *lock_find(struct web *w, const char *addr, const char *user, uint64_t now, bool create)
{
	char key[sizeof(w->locks[0].key)];
	struct lock_entry *free_e = NULL, *old = NULL;

	snprintf(key, sizeof(key), "%s\n%s", addr, user);
	for (size_t i = 0; i < WEB_LOCK_SLOTS; i++) {
		struct lock_entry *e = &w->locks[i];

		if (e->key[0] && strcmp(e->key, key) == 0) {
			e->used_ms = now;
			return e;
		}
		if (!e->key[0] && !free_e)
			free_e = e;
		if (e->key[0] && (!old || e->used_ms < old->used_ms))
			old = e;
	}
	if (!create)
		return NULL;
	if (!free_e)
		free_e = old;
	memset(free_e, 0, sizeof(*free_e));
	snprintf(free_e->key, sizeof(free_e->key), "%s", key);
	free_e->used_ms = now;
	return free_e;
}

/* Locked now? *until: when it ends. */
static bool lock_check(struct web *w, const char *addr, const char *user, bool outside, uint64_t now, uint64_t *until)
{
	struct lock_entry *e = lock_find(w, addr, user, now, false), *g = outside ? lock_find(w, "*", user, now, false)
										  : NULL;

	*until = 0;
	if (e && e->until_ms > now)
		*until = e->until_ms;
	if (g && g->until_ms > now && g->until_ms > *until)
		*until = g->until_ms;
	return *until != 0;
}

/* One wrong password: true if it locks. */
static bool lock_fail_one(struct lock_entry *e, unsigned max, uint64_t now)
{
	if (now - e->first_ms > WEB_LOCKOUT_MS || e->fails == 0) {
		e->fails = 0;
		e->first_ms = now;
	}
	if (++e->fails < max)
		return false;
	e->fails = 0;
	e->until_ms = now + WEB_LOCKOUT_MS;
	return true;
}

static bool lock_fail(struct web *w, const char *addr, const char *user, bool outside, uint64_t now)
{
	bool locked = lock_fail_one(lock_find(w, addr, user, now, true), WEB_LOCKOUT_FAILS, now);

	if (locked)
		LOG_WARN("web", "sign-in as %s from %s locked for %u minutes after %u wrong passwords", user, addr,
			 WEB_LOCKOUT_MS / 60000u, WEB_LOCKOUT_FAILS);
	if (outside && lock_fail_one(lock_find(w, "*", user, now, true), WEB_OUTSIDE_FAILS, now))
		LOG_WARN("web", "sign-in as %s locked for %u minutes from outside the operator networks after %u "
			 "wrong passwords from there", user, WEB_LOCKOUT_MS / 60000u, WEB_OUTSIDE_FAILS);
	return locked;
}

static void lock_clear_user(struct web *w, const char *user)
{
	size_t n = strlen(user);

	for (size_t i = 0; i < WEB_LOCK_SLOTS; i++) {
		const char *nl = strchr(w->locks[i].key, '\n');

		if (nl && strlen(nl + 1) == n && memcmp(nl + 1, user, n) == 0)
			memset(&w->locks[i], 0, sizeof(w->locks[i]));
	}
}

static void send_locked(struct evhttp_request *req, uint64_t until)
{
	send_json(req, 423, json_pack("{s:{s:s,s:s,s:I}}", "error", "code", "locked", "message",
				      "too many wrong passwords: try again later", "until_ms", (json_int_t)until));
}

/* On the loop: answer a sign-in whose KDF has run. Frees job. */
static void signin_finish(struct signin_job *j)
{
	struct web *w = j->w;
	struct evhttp_request *req = j->req;
	uint64_t now = now_wall_ms(), until = 0;
	struct web_session *s;
	int r;

	if (j->result == CE_MAC) {
		w->logins_failed++;
		if ((w->logins_failed & (w->logins_failed - 1)) == 0)
			LOG_WARN("web", "%llu failed sign-ins so far", (unsigned long long)w->logins_failed);
		if (lock_fail(w, j->addr, j->user, j->outside, now) ||
		    lock_check(w, j->addr, j->user, j->outside, now, &until))
			send_locked(req, until ? until : now + WEB_LOCKOUT_MS);
		else
			send_error(req, 401, "bad_credentials", "wrong user name or password");
	} else if (j->result != 0) {
		send_error(req, 500, "internal", "%s", err_str(j->result));
	} else if ((r = web_session_create(w->sessions, j->user, j->rec.role, now_mono_ms(), &s)) != 0) {
		send_error(req, 500, "internal", "%s", err_str(r));
	} else {
		struct lock_entry *e = lock_find(w, j->addr, j->user, now, false);

		if (e)
			memset(e, 0, sizeof(*e));
		session_stamp(w, s);
		w->logins_ok++;
		LOG_INFO("web", "user %s signed in (%s)", j->user, web_role_name(j->rec.role));
		set_cookie(w, req, s->id, false);
		send_json(req, 200, session_json(s));
	}
	if (j->pw)
		secret_wipe((void *)(uintptr_t)j->pw, strlen(j->pw));
	json_decref(j->body);
	secret_wipe(&j->rec, sizeof(j->rec));
	free(j);
}

static void *signin_worker(void *arg)
{
	struct signin_pool *p = arg;

	/* Below the HTTP loop: under a sign-in flood the scheduler still runs
	 * the loop first (Linux: a thread's own nice value). */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0)
		LOG_WARN("web", "sign-in worker: cannot lower its priority");
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct signin_job *j;

		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->result = web_pw_verify(&j->rec, j->pw);
		/* a pointer: one atomic write on a pipe */
		while (write(p->done_pipe[1], &j, sizeof(j)) < 0 && errno == EINTR)
			;
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void on_signin_done(evutil_socket_t fd, short ev, void *arg)
{
	struct web *w = arg;
	struct signin_job *j;

	(void)ev;
	while (read(fd, &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		w->pool->inflight--;
		signin_finish(j);
	}
}

static void pool_free(struct web *w)
{
	struct signin_pool *p = w->pool;
	struct signin_job *j;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	/* finished ones, then never started ones: answered 503 */
	while (p->done_pipe[0] >= 0 && read(p->done_pipe[0], &j, sizeof(j)) == (ssize_t)sizeof(j)) {
		j->result = CE_CLOSED;
		signin_finish(j);
	}
	while ((j = p->head) != NULL) {
		p->head = j->next;
		j->result = CE_CLOSED;
		signin_finish(j);
	}
	if (p->done_ev)
		event_free(p->done_ev);
	for (int i = 0; i < 2; i++)
		if (p->done_pipe[i] >= 0)
			close(p->done_pipe[i]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
	w->pool = NULL;
}

static int pool_new(struct web *w)
{
	struct signin_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return CE_NOMEM;
	w->pool = p;
	p->done_pipe[0] = p->done_pipe[1] = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pipe2(p->done_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return CE_IO;
	if (!(p->done_ev = event_new(w->base, p->done_pipe[0], EV_READ | EV_PERSIST, on_signin_done, w)) ||
	    event_add(p->done_ev, NULL) != 0)
		return CE_NOMEM;
	for (; p->nth < WEB_SIGNIN_WORKERS; p->nth++)
		if (pthread_create(&p->th[p->nth], NULL, signin_worker, p) != 0)
			return CE_NOMEM;
	return 0;
}

static void api_login(struct web *w, struct evhttp_request *req)
{
	struct signin_job *j = NULL;
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	uint64_t now = now_wall_ms(), until = 0;
	json_t *b = body_object(req);
	int r;

	if (!b)
		return;
	if (!(j = calloc(1, sizeof(*j)))) {
		send_error(req, 500, "internal", "out of memory");
		goto out;
	}
	j->w = w;
	j->req = req;
	j->body = b;
	j->user = str_member(b, "user");
	j->pw = str_member(b, "password");
	if (!j->user || !j->pw) {
		send_error(req, 400, "bad_request", "user and password are required");
		goto out;
	}
	peer_of(req, j->addr, sizeof(j->addr));
	j->outside = !in_opnets(w, j->addr);
	/* the same for every name, known or not: no database write, one KDF */
	if (lock_check(w, j->addr, j->user, j->outside, now, &until)) {
		w->logins_failed++;
		send_locked(req, until);
		goto out;
	}
	if ((r = web_user_lookup(w->users, j->user, &j->rec)) != 0) {
		send_error(req, 500, "internal", "%s", err_str(r));
		goto out;
	}
	if (w->pool && c && evhttp_connection_get_base(c) == w->base) {
		struct signin_pool *p = w->pool;

		if (p->inflight >= WEB_SIGNIN_INFLIGHT) {
			w->logins_busy++;
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
			send_error(req, 503, "busy", "too many sign-ins at once: try again in a second");
			goto out;
		}
		p->inflight++;
		pthread_mutex_lock(&p->mu);
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		return;
	}
	/* another HTTP thread's request (--http-threads): the KDF here */
	j->result = web_pw_verify(&j->rec, j->pw);
	signin_finish(j);
	return;
out:
	if (j) {
		if (j->pw)
			secret_wipe((void *)(uintptr_t)j->pw, strlen(j->pw));
		secret_wipe(&j->rec, sizeof(j->rec));
		free(j);
	}
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
		if (r == 0 && json_is_true(unlock)) {
			r = web_user_unlock(w->users, name);
			lock_clear_user(w, name);
		}
		if (r == 0)
			web_audit(w, who, "panel user change %s%s%s%s%s", name, pw ? " password" : "",
				  rl ? " role=" : "", rl ? rl : "", json_is_true(unlock) ? " unlock" : "");
		if (r == 0 && (pw || rl)) {
			/* Other sessions of that user end; the caller's own stays. */
			LOG_INFO("web", "%s changed panel user %s%s%s", who, name, pw ? " password" : "",
				 rl ? " role" : "");
			if (strcmp(name, who) != 0 || rl) {
				web_session_end_user(w->sessions, name);
			} else {
				/* One's own password: one's other sessions end, this one stays. */
				web_session_end_user_except(w->sessions, name, s);
				session_stamp(w, s);
			}
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
	if (!http || !store || !cfg || !cfg->root)
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
	if (opnets_parse(w, cfg->operator_nets ? cfg->operator_nets : WEB_OPERATOR_NETS_DEFAULT) != 0) {
		LOG_ERR("web", "operator networks: not CIDR[,CIDR...]: %s", cfg->operator_nets);
		r = CE_ARG;
		goto fail;
	}
	w->base = sms_http_base(http);
	r = CE_NOMEM;
	if (!(w->locks = calloc(WEB_LOCK_SLOTS, sizeof(*w->locks))))
		goto fail;
	if ((r = web_users_open(store, cfg->kdf, &w->users)) != 0)
		goto fail;
	/* An older node's own users file moves into the store before the first
	 * start's check, so its users are kept and no new admin is made. */
	if (cfg->legacy_users_path) {
		size_t moved = 0, skipped = 0;

		if ((r = web_users_import_file(w->users, cfg->legacy_users_path, &moved, &skipped)) != 0) {
			LOG_ERR("web", "cannot move the users of %s into the store: %s", cfg->legacy_users_path,
				err_str(r));
			goto fail;
		}
	}
	if ((r = web_sessions_new(&w->sessions)) != 0 || (r = first_start(w, cfg->admin_password)) != 0 ||
	    (r = pool_new(w)) != 0)
		goto fail;
	hk = (struct sms_http_hooks){.auth = rest_auth, .has_session = has_session, .fallback = fallback, .ctx = w};
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
	pool_free(w);
	free(w->locks);
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
