/*
 * http.c - evhttp server for the SMS APIs: routes /api.php to getapi.c and
 * answers like the free CAS's PHP did (200 + JSON, or 400 + error word,
 * Content-Type text/html; charset=UTF-8), and /api/v1/... to rest.c (the
 * JSON REST API). Bad API keys are counted here and summarised in the log,
 * never logged per request.
 *
 * Threads (sms_http_set_threads): the caller's loop accepts on the listening
 * socket, and so does each worker thread, on its own event_base, evhttp and
 * store connection, through a dup() of the same socket (the kernel hands a
 * new connection to one of them; a connection then stays on its thread).
 * The API handlers only touch the thread's own store and stats. The web
 * panel's hooks are not thread-safe: a worker that needs one first "parks"
 * the caller's loop (a byte on a pipe watched by that loop; its callback
 * waits on a condition variable until the worker is done), so hook code
 * never runs beside the caller's loop, and only one worker runs hooks at a
 * time. The caller's own requests call the hooks directly.
 *
 * Searches (sms_http_set_search): http_search.c hands REST text searches
 * to the search workers; each loop has a pipe their answers come back on.
 * The structs are in http_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdio.h>
#include <unistd.h>
#include <strings.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include "sms/http.h"
#include "sms/rest.h"
#include "sms/search.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/netacl.h"
#include "lib/url.h"
#include "lib/util.h"

#include "sms/http_int.h"

void http_stats_lock(struct http_thread *t)
{
	if (t->worker)
		pthread_mutex_lock(&t->mu);
}

void http_stats_unlock(struct http_thread *t)
{
	if (t->worker)
		pthread_mutex_unlock(&t->mu);
}

/* The caller's loop: a worker asks to park it. Wait here until it is done. */
static void on_park(evutil_socket_t fd, short ev, void *arg)
{
	struct sms_http *h = arg;
	char buf[64];

	(void)ev;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&h->park_mu);
	if (h->park_req) {
		h->park_req = false;
		h->parked = true;
		pthread_cond_broadcast(&h->park_cv);
		while (h->parked)
			pthread_cond_wait(&h->park_cv, &h->park_mu);
	}
	pthread_mutex_unlock(&h->park_mu);
}

/* A worker: park the caller's loop before calling a hook. false if the
 * server is stopping (then the request is answered 503). */
static bool park_enter(struct sms_http *h)
{
	bool ok;

	pthread_mutex_lock(&h->hook_mu);
	pthread_mutex_lock(&h->park_mu);
	h->park_req = true;
	if (write(h->park_pipe[1], "p", 1) < 0 && errno != EAGAIN)
		h->stopping = true;
	while (!h->parked && !h->stopping)
		pthread_cond_wait(&h->park_cv, &h->park_mu);
	ok = h->parked;
	h->park_req = false;
	pthread_mutex_unlock(&h->park_mu);
	if (!ok)
		pthread_mutex_unlock(&h->hook_mu);
	return ok;
}

static void park_leave(struct sms_http *h)
{
	pthread_mutex_lock(&h->park_mu);
	h->parked = false;
	pthread_cond_broadcast(&h->park_cv);
	pthread_mutex_unlock(&h->park_mu);
	pthread_mutex_unlock(&h->hook_mu);
}

/* The hooks as they are now (a worker: may change under it until parked). */
static struct sms_http_hooks hooks_now(struct http_thread *t)
{
	struct sms_http_hooks k;

	if (!t->worker)
		return t->h->hooks;
	pthread_mutex_lock(&t->h->park_mu);
	k = t->h->hooks;
	pthread_mutex_unlock(&t->h->park_mu);
	return k;
}


/* ---- the gate ------------------------------------------------------------
 *
 * libevent 2.1's evhttp decides nothing before it has read a whole request
 * (its new-request hook arrived in 2.2), so each connection's bufferevent is
 * ours (evhttp_set_bevcb) and a callback on its input buffer sees every byte
 * before evhttp's own read callback does. It copies the header of each
 * request as it arrives, judges it at the empty line (gate_judge), counts
 * the body by Content-Length, and runs the header and body deadlines. To
 * refuse a request it adds a line without a colon before the header's end:
 * evhttp then answers 400 itself and closes; to cap a body it sets the
 * connection's body limit, and evhttp answers 413 before reading any of it.
 * evhttp passes the connection as the bufferevent's callback argument (all
 * of 2.1); gate_attach checks that it is ours before using it. */

enum conn_phase { PH_IDLE, PH_HEADER, PH_BODY, PH_DONE };

struct http_conn {
	struct http_thread *t;
	struct http_conn *prev, *next;
	struct bufferevent *bev;
	struct evbuffer_cb_entry *cbe;
	struct evhttp_connection *evcon; /* NULL until attached */
	struct event *ev;                /* attach once, then the deadline timer */
	bool ref, timer_on;
	enum conn_phase phase;
	uint64_t added;                  /* bytes through the input buffer */
	uint64_t body_left;              /* PH_BODY: bytes of the body still to come */
	unsigned body_ms;
	size_t hlen, lstart;             /* bytes in hdr; where the current line starts */
	char *hdr;                       /* SMS_HTTP_HEADER_MAX bytes, the current request's header */
	char peer[64];
};

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static struct http_thread *gate_registry; /* evhttp's listener error callback gets the evhttp only */

static void gate_register(struct http_thread *t)
{
	pthread_mutex_lock(&gate_mu);
	t->reg_next = gate_registry;
	gate_registry = t;
	pthread_mutex_unlock(&gate_mu);
}

static void gate_unregister(struct http_thread *t)
{
	pthread_mutex_lock(&gate_mu);
	for (struct http_thread **p = &gate_registry; *p; p = &(*p)->reg_next)
		if (*p == t) {
			*p = t->reg_next;
			break;
		}
	pthread_mutex_unlock(&gate_mu);
}

static struct http_thread *gate_find(const struct evhttp *http)
{
	struct http_thread *t;

	pthread_mutex_lock(&gate_mu);
	for (t = gate_registry; t && t->http != http; t = t->reg_next)
		;
	pthread_mutex_unlock(&gate_mu);
	return t;
}

/* true: log now (*skipped: lines left out since the last one). */
static bool log_limit_ok(struct log_limit *l, uint64_t *skipped)
{
	uint64_t now = now_mono_ms();

	if (l->last_ms && now - l->last_ms < LOG_LIMIT_MS) {
		l->skipped++;
		return false;
	}
	*skipped = l->skipped;
	l->skipped = 0;
	l->last_ms = now ? now : 1;
	return true;
}

static void gate_count(struct http_thread *t, uint64_t *field)
{
	http_stats_lock(t);
	(*field)++;
	http_stats_unlock(t);
}

static void listener_update(struct http_thread *t)
{
	bool want = !t->paused_fd && t->nconns < t->h->lim.max_conns;

	t->paused_cap = t->nconns >= t->h->lim.max_conns;
	if (!t->lev)
		return;
	if (want)
		evconnlistener_enable(t->lev);
	else
		evconnlistener_disable(t->lev);
}

static void on_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct http_thread *t = arg;

	(void)fd;
	(void)ev;
	t->paused_fd = false;
	listener_update(t);
}

/* accept() failed (libevent retries EAGAIN/EINTR itself): out of
 * descriptors or memory. Pause instead of spinning on a readable socket. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct http_thread *t = gate_find(arg);
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, 200000 };
	uint64_t skipped = 0;

	if (!t) {
		evconnlistener_disable(lev);
		return;
	}
	t->paused_fd = true;
	listener_update(t);
	evtimer_add(t->resume_ev, &tv);
	gate_count(t, &t->stats.accept_paused);
	if (log_limit_ok(&t->log_accept, &skipped))
		LOG_WARN("sms", "http: accept: %s (%u connections open): accepting paused for 200 ms "
			 "(%llu more like this not logged)", strerror(e), t->nconns, (unsigned long long)skipped);
}

static void conn_free(struct http_conn *c)
{
	struct http_thread *t = c->t;

	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	t->nconns--;
	if (c->ev)
		event_free(c->ev);
	if (c->ref)
		bufferevent_decref(c->bev);
	free(c->hdr);
	free(c);
	listener_update(t);
}

/* evhttp frees the connection (before its bufferevent). */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;

	(void)evcon;
	if (c->cbe)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->cbe);
	c->cbe = NULL;
	conn_free(c);
}

static void deadline_start(struct http_conn *c, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(c->ev, &tv);
	c->timer_on = true;
}

static void deadline_stop(struct http_conn *c)
{
	if (c->timer_on)
		evtimer_del(c->ev);
	c->timer_on = false;
}

static void on_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conn *c = arg;
	struct http_thread *t = c->t;
	uint64_t skipped = 0;

	(void)fd;
	(void)ev;
	c->timer_on = false;
	gate_count(t, &t->stats.gate_deadline);
	if (log_limit_ok(&t->log_deadline, &skipped))
		LOG_WARN("sms", "http: %s: request %s not whole in time: connection closed (%llu more like this "
			 "not logged)", c->peer, c->phase == PH_BODY ? "body" : "header", (unsigned long long)skipped);
	/* Not evhttp_connection_free: a request of this connection may be in a
	 * handler's hands (a sign-in waiting for its KDF); shut the socket
	 * down and let evhttp see the end as a client's (it frees the
	 * connection, and hands a request in use over to its handler). */
	if (bufferevent_getfd(c->bev) >= 0)
		shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
	else
		evhttp_connection_free(c->evcon); /* on_conn_close frees c */
}

/* Learn the evhttp connection that owns our bufferevent; count the peer.
 * false: c is gone (freed) or the connection was closed. */
static bool gate_attach(struct http_conn *c)
{
	struct http_thread *t = c->t;
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;
	void *arg = NULL;
	char *addr = NULL;
	ev_uint16_t port = 0;
	unsigned same = 0;
	uint64_t skipped = 0;

	bufferevent_getcb(c->bev, &rcb, &wcb, &ecb, &arg);
	if (!arg || evhttp_connection_get_bufferevent(arg) != c->bev) {
		/* evhttp gave it up already (bufferevent_free clears the callbacks) */
		if (c->cbe)
			evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->cbe);
		c->cbe = NULL;
		conn_free(c);
		return false;
	}
	c->evcon = arg;
	evhttp_connection_set_closecb(c->evcon, on_conn_close, c);
	bufferevent_decref(c->bev);
	c->ref = false;
	evhttp_connection_get_peer(c->evcon, &addr, &port);
	snprintf(c->peer, sizeof(c->peer), "%s", addr ? addr : "?");
	for (struct http_conn *o = t->conns; o; o = o->next)
		same += o->evcon && strcmp(o->peer, c->peer) == 0;
	if (same > t->h->lim.max_conns_per_peer) {
		gate_count(t, &t->stats.gate_peer_cap);
		if (log_limit_ok(&t->log_peer, &skipped))
			LOG_WARN("sms", "http: %s: over %u connections from one address: closed (%llu more like this "
				 "not logged)", c->peer, t->h->lim.max_conns_per_peer, (unsigned long long)skipped);
		evhttp_connection_free(c->evcon);
		return false;
	}
	/* From on_input, the attach event may still be active: take it off
	 * before it becomes the deadline timer. */
	event_del(c->ev);
	event_assign(c->ev, evhttp_connection_get_base(c->evcon), -1, 0, on_deadline, c);
	c->phase = PH_HEADER;
	deadline_start(c, t->h->lim.header_ms);
	return true;
}

static void on_attach(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)ev;
	if (!c->evcon)
		(void)gate_attach(c);
}

/* A header line's name is name (case-insensitive)? *val: its value, OWS trimmed. */
static bool hdr_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t n = strlen(name);
	const char *v;
	size_t k;

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	v = line + n + 1;
	k = len - n - 1;
	while (k && (*v == ' ' || *v == '\t'))
		v++, k--;
	while (k && (v[k - 1] == ' ' || v[k - 1] == '\t'))
		k--;
	*val = v;
	*vlen = k;
	return true;
}

/* Is this (unterminated) API key valid on t's store? */
static bool gate_key_ok(struct http_thread *t, const char *v, size_t n)
{
	char key[128], user[SMS_NAME_MAX + 1];
	unsigned scopes = 0;
	bool ok;

	if (n == 0 || n >= sizeof(key))
		return false;
	memcpy(key, v, n);
	key[n] = '\0';
	ok = sms_apikey_check(t->store, key, &scopes, user) == 0;
	secret_wipe(key, sizeof(key));
	return ok;
}

static bool gate_session_ok(struct http_thread *t, const char *v, size_t n)
{
	struct sms_http *h = t->h;
	char ck[4096];
	bool ok = false;

	if (n == 0 || n >= sizeof(ck) || !hooks_now(t).has_session)
		return false;
	memcpy(ck, v, n);
	ck[n] = '\0';
	if (!t->worker)
		return h->hooks.has_session(h->hooks.ctx, ck);
	if (!park_enter(h))
		return false;
	if (h->hooks.has_session)
		ok = h->hooks.has_session(h->hooks.ctx, ck);
	park_leave(h);
	return ok;
}

int sms_http_head_parse(const char *hdr, size_t len, struct sms_http_head *out)
{
	const char *line = hdr, *end = hdr + len, *nl, *sp1, *sp2, *v;
	size_t ll, ml, vl;
	unsigned ncl = 0;

	memset(out, 0, sizeof(*out));
	if (!hdr || !(nl = memchr(hdr, '\n', len)))
		return -1;
	/* the request line: METHOD SP target SP HTTP/1.x */
	ll = (size_t)(nl - line);
	if (ll && line[ll - 1] == '\r')
		ll--;
	sp1 = memchr(line, ' ', ll);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - line)) : NULL;
	if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || (size_t)(line + ll - sp2 - 1) != 8 ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return -1;
	ml = (size_t)(sp1 - line);
	out->path = sp1 + 1;
	out->path_len = (size_t)(sp2 - out->path);
	for (size_t i = 0; i < out->path_len; i++)
		if (out->path[i] == '?') {
			out->path_len = i;
			break;
		}
	out->body_method = (ml == 4 && memcmp(line, "POST", 4) == 0) || (ml == 3 && memcmp(line, "PUT", 3) == 0) ||
			   (ml == 5 && memcmp(line, "PATCH", 5) == 0);
	for (line = nl + 1;; line = nl + 1) {
		if (line >= end || !(nl = memchr(line, '\n', (size_t)(end - line))))
			return -1; /* no empty line */
		ll = (size_t)(nl - line);
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break;
		if (line[0] == ' ' || line[0] == '\t' || !memchr(line, ':', ll))
			return -1; /* obsolete folding (RFC 9112 5.2), or no name */
		if (hdr_is(line, ll, "Content-Length", &v, &vl)) {
			uint64_t n = 0;

			if (++ncl > 1 || vl == 0 || vl > 18)
				return -1; /* twice (RFC 9112 6.3: request smuggling) */
			for (size_t i = 0; i < vl; i++) {
				if (v[i] < '0' || v[i] > '9')
					return -1;
				n = n * 10 + (uint64_t)(v[i] - '0');
			}
			out->content_length = n;
		} else if (hdr_is(line, ll, "Transfer-Encoding", &v, &vl)) {
			return -1; /* bodies carry a Content-Length here */
		} else if (hdr_is(line, ll, "X-API-Key", &v, &vl)) {
			out->api_key = v;
			out->api_key_len = vl;
		} else if (!out->api_key && hdr_is(line, ll, "Authorization", &v, &vl) && vl > 7 &&
			   strncasecmp(v, "Bearer ", 7) == 0) {
			out->api_key = v + 7;
			out->api_key_len = vl - 7;
			while (out->api_key_len && *out->api_key == ' ')
				out->api_key++, out->api_key_len--;
		} else if (hdr_is(line, ll, "Cookie", &v, &vl)) {
			out->cookie = v;
			out->cookie_len = vl;
		}
	}
	if (nl + 1 != end)
		return -1; /* the empty line ends the header */
	if (out->content_length && !out->body_method)
		return -1; /* a body evhttp would not read: the next request's bytes */
	return 0;
}

/* Judge one request's header (hdr[0..len), ending with its empty line).
 * 0 and *limit (body bytes allowed), *clen (its Content-Length), *body_ms;
 * -1: refuse with 400. */
static int gate_judge(struct http_thread *t, const char *hdr, size_t len, uint64_t *limit, uint64_t *clen,
		      unsigned *body_ms)
{
	struct sms_http_head hd;
	size_t rl = strlen(REST_PREFIX);
	bool is_import;

	*limit = 0;
	*clen = 0;
	*body_ms = t->h->lim.body_ms;
	if (sms_http_head_parse(hdr, len, &hd) != 0)
		return -1;
	*clen = hd.content_length;
	if (*clen == 0)
		return 0;
	if (hd.path_len >= rl && memcmp(hd.path, REST_PREFIX, rl) == 0) {
		is_import = hd.path_len == strlen(REST_PREFIX "import") && memcmp(hd.path, REST_PREFIX "import", hd.path_len) == 0;
		if ((hd.api_key && gate_key_ok(t, hd.api_key, hd.api_key_len)) ||
		    (!hd.api_key && hd.cookie && gate_session_ok(t, hd.cookie, hd.cookie_len))) {
			*limit = is_import ? SMS_HTTP_BODY_MAX : REST_JSON_MAX;
			if (is_import)
				*body_ms = t->h->lim.body_ms * 10;
		} else {
			*limit = SMS_HTTP_UNAUTH_BODY_MAX;
		}
	} else if (hd.path_len == 8 && memcmp(hd.path, "/api.php", 8) == 0) {
		*limit = SMS_HTTP_UNAUTH_BODY_MAX; /* a POST's body is read and ignored, as PHP's $_GET did */
	} else {
		*limit = SMS_HTTP_PANEL_BODY_MAX;
	}
	return 0;
}

/* Refuse the request whose header just ended at buffer offset hend: a line
 * without a colon before its empty line (eol bytes long); the body bytes
 * after it are dropped. evhttp answers 400 and closes. */
static void gate_refuse(struct http_conn *c, struct evbuffer *buf, size_t hend, size_t eol)
{
	size_t keep = hend - eol;
	char *tmp = malloc(keep + 32);

	gate_count(c->t, &c->t->stats.gate_refused);
	c->phase = PH_DONE;
	deadline_stop(c);
	if (!tmp) {
		evhttp_connection_free(c->evcon);
		return;
	}
	if (keep)
		evbuffer_copyout(buf, tmp, keep);
	memcpy(tmp + keep, "castellan-refused\r\n\r\n", 21);
	evbuffer_drain(buf, evbuffer_get_length(buf));
	evbuffer_add(buf, tmp, keep + 21);
	free(tmp);
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn *c = arg;
	size_t n = info->n_added, pos, blen;

	if (n == 0 || c->phase == PH_DONE)
		return;
	if (!c->evcon && !gate_attach(c))
		return;
	c->added += n;
	blen = evbuffer_get_length(buf);
	pos = blen - n;
	while (n > 0) {
		struct evbuffer_ptr p;
		size_t take, old;

		if (c->phase == PH_BODY) {
			if (c->body_left > n) {
				c->body_left -= n;
				return;
			}
			pos += (size_t)c->body_left;
			n -= (size_t)c->body_left;
			c->body_left = 0;
			c->phase = PH_IDLE;
			deadline_stop(c);
			continue;
		}
		if (c->phase == PH_IDLE) {
			c->phase = PH_HEADER;
			c->hlen = c->lstart = 0;
			deadline_start(c, c->t->h->lim.header_ms);
		}
		if (!c->hdr && !(c->hdr = malloc(SMS_HTTP_HEADER_MAX))) {
			evhttp_connection_free(c->evcon);
			return;
		}
		take = n < SMS_HTTP_HEADER_MAX - c->hlen ? n : SMS_HTTP_HEADER_MAX - c->hlen;
		if (take == 0) {
			gate_refuse(c, buf, blen, 0); /* over the header limit */
			return;
		}
		if (evbuffer_ptr_set(buf, &p, pos, EVBUFFER_PTR_SET) != 0 ||
		    evbuffer_copyout_from(buf, &p, c->hdr + c->hlen, take) != (ev_ssize_t)take) {
			evhttp_connection_free(c->evcon);
			return;
		}
		old = c->hlen;
		c->hlen += take;
		for (size_t i = old; i < c->hlen; i++) {
			size_t ll, eol;
			uint64_t limit, clen;
			unsigned body_ms;

			if (c->hdr[i] != '\n')
				continue;
			ll = i - c->lstart;
			eol = ll && c->hdr[i - 1] == '\r' ? 2 : 1;
			if (ll + 1 > eol) {
				c->lstart = i + 1;
				continue;
			}
			/* the empty line: the header is whole */
			if (c->lstart == 0 || gate_judge(c->t, c->hdr, i + 1, &limit, &clen, &body_ms) != 0) {
				gate_refuse(c, buf, pos + (i + 1 - old), eol);
				return;
			}
			evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)limit);
			if (clen > limit) {
				gate_count(c->t, &c->t->stats.gate_too_large);
				c->phase = PH_DONE; /* evhttp answers 413 and closes */
				deadline_stop(c);
				return;
			}
			pos += i + 1 - old;
			n -= i + 1 - old;
			deadline_stop(c);
			if (clen) {
				c->phase = PH_BODY;
				c->body_left = clen;
				deadline_start(c, body_ms);
			} else {
				c->phase = PH_IDLE;
			}
			take = 0;
			break;
		}
		if (take) {
			pos += take;
			n -= take;
		}
	}
}

/* evhttp_set_bevcb: a new connection's bufferevent, watched by the gate. */
static struct bufferevent *on_new_conn(struct event_base *base, void *arg)
{
	struct http_thread *t = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct http_conn *c;

	if (!bev)
		return NULL;
	if (!(c = calloc(1, sizeof(*c))) || !(c->ev = event_new(base, -1, 0, on_attach, c)) ||
	    !(c->cbe = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c))) {
		/* out of memory: no gate for this one (evhttp's own limits apply) */
		if (c && c->ev)
			event_free(c->ev);
		free(c);
		LOG_ERR("sms", "http: out of memory for a connection");
		return bev;
	}
	c->t = t;
	c->bev = bev;
	bufferevent_incref(bev); /* until gate_attach: evhttp may free it first */
	c->ref = true;
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	t->nconns++;
	event_active(c->ev, EV_TIMEOUT, 1);
	listener_update(t);
	return bev;
}

/* Free the connections evhttp_free left (never attached). */
static void gate_cleanup(struct http_thread *t)
{
	t->lev = NULL;
	while (t->conns) {
		struct http_conn *c = t->conns;

		c->cbe = NULL; /* its buffer is freed with the bufferevent */
		conn_free(c);
	}
}

static void reply(struct http_thread *t, struct evhttp_request *req, int status, const char *reason,
		  const char *body, size_t len)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/html; charset=UTF-8");
	if (t->out) {
		evbuffer_drain(t->out, evbuffer_get_length(t->out));
		evbuffer_add(t->out, body, len);
	}
	evhttp_send_reply(req, status, reason, t->out);
}

static void on_api_php(struct evhttp_request *req, void *arg)
{
	struct http_thread *t = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	enum getapi_word w = GETAPI_OK;
	size_t len = 0;
	uint64_t bad = 0, t0 = now_mono_us();
	int status = 500;

	/* PHP's $_GET is the URL's query whatever the method: the free CAS
	 * answered a POST with the parameters in the URL like a GET, and never
	 * read a body. */
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		http_stats_lock(t);
		t->stats.requests++;
		http_stats_unlock(t);
		reply(t, req, 405, "Method Not Allowed", "", 0);
		metric_api_done("/api.php", 405, t0);
		return;
	}
	getapi_handle(t->store, q ? q : "", q ? strlen(q) : 0, &status, t->body, &len, &w);
	http_stats_lock(t);
	t->stats.requests++;
	if (status == 500) {
		t->stats.internal_errors++;
	} else {
		t->stats.words[w]++;
		if (w == GETAPI_NOT_VALID_API_KEY && (t->stats.words[w] & (t->stats.words[w] - 1)) == 0)
			bad = t->stats.words[w];
	}
	http_stats_unlock(t);
	if (bad)
		LOG_WARN("sms", "GET API: %llu requests with a bad API key so far%s", (unsigned long long)bad,
			 t->worker ? " (on one HTTP thread)" : "");
	reply(t, req, status, status == 200 ? "OK" : status == 400 ? "Bad Request" : "Internal Server Error", t->body,
	      len);
	metric_api_done("/api.php", status, t0);
}

static enum rest_method rest_method_of(enum evhttp_cmd_type c)
{
	switch (c) {
	case EVHTTP_REQ_GET: return REST_GET;
	case EVHTTP_REQ_HEAD: return REST_HEAD;
	case EVHTTP_REQ_POST: return REST_POST;
	case EVHTTP_REQ_PUT: return REST_PUT;
	case EVHTTP_REQ_PATCH: return REST_PATCH;
	case EVHTTP_REQ_DELETE: return REST_DELETE;
	default: return REST_OTHER;
	}
}

/* The API key of a REST request: X-API-Key, else Authorization: Bearer. */
static const char *rest_key(struct evkeyvalq *hd)
{
	const char *k = evhttp_find_header(hd, "X-API-Key");
	const char *a;

	if (k)
		return k;
	a = evhttp_find_header(hd, "Authorization");
	if (a && strncasecmp(a, "Bearer ", 7) == 0) {
		a += 7;
		while (*a == ' ')
			a++;
		return a;
	}
	return NULL;
}

/* The auth hook for a REST request without an API key: its answer, 1 if
 * none (or not the hook's). A worker parks the caller's loop around it. */
static int rest_hook_auth(struct http_thread *t, struct evhttp_request *req, unsigned *scopes, char *who,
			  size_t who_cap)
{
	struct sms_http *h = t->h;
	int a = 1;

	if (!hooks_now(t).auth)
		return 1;
	if (!t->worker)
		return h->hooks.auth(h->hooks.ctx, req, scopes, who, who_cap);
	if (!park_enter(h)) {
		reply(t, req, 503, "Service Unavailable", "", 0);
		return -1;
	}
	if (h->hooks.auth)
		a = h->hooks.auth(h->hooks.ctx, req, scopes, who, who_cap);
	park_leave(h);
	return a;
}

/* Count, log and send a REST answer (frees rs->body). */
void http_rest_reply(struct http_thread *t, struct evhttp_request *req, const struct rest_req *rq,
		     struct rest_resp *rs, uint64_t t0)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	uint64_t unauth = 0;
	char route[48];

	http_stats_lock(t);
	t->stats.rest_requests++;
	if (rs->status == 500)
		t->stats.internal_errors++;
	else if (rs->status == 401 && (t->stats.rest_unauthorized++, (t->stats.rest_unauthorized &
					(t->stats.rest_unauthorized - 1)) == 0))
		unauth = t->stats.rest_unauthorized;
	if (rs->status >= 400)
		t->stats.rest_errors++;
	http_stats_unlock(t);
	if (unauth)
		LOG_WARN("sms", "REST API: %llu requests with a missing or bad API key so far%s",
			 (unsigned long long)unauth, t->worker ? " (on one HTTP thread)" : "");
	evhttp_add_header(out, "Content-Type", rs->content_type ? rs->content_type : "application/json");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (rs->status == 503)
		evhttp_add_header(out, "Retry-After", "1");
	if (t->out) {
		evbuffer_drain(t->out, evbuffer_get_length(t->out));
		if (rs->len)
			evbuffer_add(t->out, rs->body, rs->len);
	}
	evhttp_send_reply(req, rs->status, rs->status < 300 ? "OK" : rs->status < 500 ? "Client Error" : "Server Error",
			  rs->status == 204 ? NULL : t->out);
	free(rs->body);
	rs->body = NULL;
	/* The route's name, never the raw path: a label set per route, not per card. */
	snprintf(route, sizeof(route), REST_PREFIX "%s", rest_route_name(rq->path));
	metric_api_done(route, rs->status, t0);
}

static void on_rest(struct http_thread *t, struct evhttp_request *req, const struct evhttp_uri *uri)
{
	struct evkeyvalq *hd = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct rest_req rq = { 0 };
	struct rest_resp rs;
	char who[SMS_WHO_MAX + 1]; /* a web session's audit name (rq.auth_who) */
	uint64_t t0 = now_mono_us();

	rq.method = rest_method_of(evhttp_request_get_command(req));
	rq.path = evhttp_uri_get_path(uri);
	rq.query = evhttp_uri_get_query(uri);
	rq.api_key = rest_key(hd);
	if (!rq.api_key) {
		int a = rest_hook_auth(t, req, &rq.auth_scopes, who, sizeof(who));

		if (a < 0) {
			http_stats_lock(t);
			t->stats.rest_requests++;
			http_stats_unlock(t);
			return;
		}
		if (a == 0)
			rq.auth_who = who;
	}
	rq.content_type = evhttp_find_header(hd, "Content-Type");
	rq.body_len = in ? evbuffer_get_length(in) : 0;
	rq.body = rq.body_len ? (const char *)evbuffer_pullup(in, -1) : NULL;
	if (rq.body_len && !rq.body)
		rq.body_len = 0;
	if (rq.method == REST_GET && t->h->search && http_search_offload(t, req, &rq, t0))
		return;
	rest_handle(t->store, &rq, &rs);
	http_rest_reply(t, req, &rq, &rs, t0);
}

/* ---- GET /metrics ---------------------------------------------------------- */

bool sms_http_metrics_peer_ok(const struct sms_http *h, const struct sockaddr *sa)
{
	socklen_t len = !sa ? 0 : sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		: sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : 0;
	uint8_t fam, a[16];
	bool ok;

	if (!sa || !netacl_peer_key(sa, len, &fam, a))
		return false;
	if ((fam == 4 && a[0] == 127) || (fam == 6 && memcmp(a, &in6addr_loopback, 16) == 0))
		return true;
	pthread_mutex_lock(h->allow_mu);
	ok = h->allow.n > 0 && netacl_allows(&h->allow, sa, len); /* empty: loopback only */
	pthread_mutex_unlock(h->allow_mu);
	return ok;
}

static void on_metrics(struct http_thread *t, struct evhttp_request *req)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *key = rest_key(evhttp_request_get_input_headers(req));
	struct evbuffer *b = evbuffer_new();
	uint64_t t0 = now_mono_us();
	char *text = NULL;
	size_t len = 0;
	int status = 200;

	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		status = 405;
	} else if (key) {
		char user[SMS_NAME_MAX + 1];
		unsigned scopes = 0;
		int r = sms_apikey_check(t->store, key, &scopes, user);

		status = r == CE_NOT_FOUND ? 401 : r != 0 ? 500 : (scopes & (SMS_SCOPE_METRICS | SMS_SCOPE_ADMIN)) ? 200 : 403;
	} else if (!sms_http_metrics_peer_ok(t->h, evhttp_request_get_connection(req)
					       ? evhttp_connection_get_addr(evhttp_request_get_connection(req)) : NULL)) {
		status = 403;
	}
	if (status == 200 && (!b || metrics_render(&text, &len) != 0 || evbuffer_add(b, text, len) != 0))
		status = 500;
	if (status == 200) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", METRICS_CONTENT_TYPE);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
		evhttp_send_reply(req, 200, "OK", b);
	} else {
		reply(t, req, status, status == 401 ? "Unauthorized" : status == 403 ? "Forbidden" :
			      status == 405 ? "Method Not Allowed" : "Internal Server Error", "", 0);
	}
	free(text);
	if (b)
		evbuffer_free(b);
	metric_api_done("/metrics", status, t0);
}

int sms_http_set_metrics_allow(struct sms_http *h, const char *list)
{
	struct netacl acl;

	if (netacl_parse(list && *list ? list : NULL, &acl) != 0 || acl.n > SMS_METRICS_ALLOW_MAX)
		return CE_ARG;
	pthread_mutex_lock(h->allow_mu);
	h->allow = acl;
	pthread_mutex_unlock(h->allow_mu);
	return 0;
}

/* The fallback hook: 1 if it answered. */
static int other_hook(struct http_thread *t, struct evhttp_request *req)
{
	struct sms_http *h = t->h;
	int r = 0;

	if (!hooks_now(t).fallback)
		return 0;
	if (!t->worker)
		return h->hooks.fallback(h->hooks.ctx, req);
	if (!park_enter(h)) {
		reply(t, req, 503, "Service Unavailable", "", 0);
		return 1;
	}
	if (h->hooks.fallback)
		r = h->hooks.fallback(h->hooks.ctx, req);
	park_leave(h);
	return r;
}

static void on_other(struct evhttp_request *req, void *arg)
{
	struct http_thread *t = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (path && strcmp(path, "/metrics") == 0) {
		http_stats_lock(t);
		t->stats.requests++;
		http_stats_unlock(t);
		on_metrics(t, req);
		return;
	}
	if (path && strncmp(path, REST_PREFIX, strlen(REST_PREFIX)) == 0) {
		http_stats_lock(t);
		t->stats.requests++;
		http_stats_unlock(t);
		on_rest(t, req, uri);
		return;
	}
	http_stats_lock(t);
	t->stats.requests++;
	http_stats_unlock(t);
	if (other_hook(t, req))
		return;
	reply(t, req, 404, "Not Found", "NOT_FOUND", 9);
}

/* Limits, methods and routes of one loop's evhttp. */
static int thread_http(struct http_thread *t)
{
	t->out = evbuffer_new();
	t->http = evhttp_new(t->base);
	if (!t->out || !t->http)
		return CE_NOMEM;
	if (!(t->resume_ev = evtimer_new(t->base, on_resume, t)))
		return CE_NOMEM;
	/* The request line counts: room for a GET API query at its limit. */
	evhttp_set_max_headers_size(t->http, SMS_HTTP_HEADER_MAX);
	/* The gate sets each request's own limit at its header's end. */
	evhttp_set_max_body_size(t->http, SMS_HTTP_UNAUTH_BODY_MAX);
	evhttp_set_timeout(t->http, 30); /* idle keep-alive; the gate's deadlines run within */
	evhttp_set_bevcb(t->http, on_new_conn, t);
	gate_register(t);
	evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				   EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
	evhttp_set_cb(t->http, "/api.php", on_api_php, t);
	evhttp_set_gencb(t->http, on_other, t);
	if (http_pipe_nb(t->search_pipe) != 0)
		return CE_IO;
	if (!(t->search_ev = event_new(t->base, t->search_pipe[0], EV_READ | EV_PERSIST, http_on_search_done, t)) ||
	    event_add(t->search_ev, NULL) != 0)
		return CE_NOMEM;
	return 0;
}

struct event_base *sms_http_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *b;

	if (!cfg)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return b;
}

/* A listening socket on host:port (numeric or a name), SO_REUSEPORT set
 * before bind so that each HTTP thread can have its own socket on the same
 * port and the kernel spreads new connections evenly over them (one socket
 * shared by all threads gives most connections to whichever loop wakes
 * first: measured 59/41 over two threads). -1 on failure, errno set. */
static int listen_reuseport(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE },
			*ai = NULL;
	char ps[8];
	int fd = -1, one = 1;

	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	if (getaddrinfo(host[0] ? host : "0.0.0.0", ps, &hints, &ai) != 0 || !ai)
		return -1;
	/* SO_REUSEPORT would also let a second server of the same user share
	 * the port silently: bind once without it first, so a port in use is
	 * refused as it always was (a listener with SO_REUSEPORT makes a plain
	 * bind fail too). Port 0 picks a fresh port anyway. */
	if (port != 0) {
		int probe = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool free_port = probe >= 0 && setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
				 bind(probe, ai->ai_addr, ai->ai_addrlen) == 0;
		int e = errno;

		if (probe >= 0)
			close(probe);
		if (!free_port) {
			freeaddrinfo(ai);
			errno = e;
			return -1;
		}
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	*sl = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, sl) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Another socket on the address the first one got (its port resolved). */
static int listen_again(const struct sms_http *h)
{
	int fd = socket(h->bound.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&h->bound, h->bound_len) != 0 || listen(fd, 1024) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Raise the soft file limit to the hard one (systemd's default soft limit
 * is 1,024) and resolve the limits' defaults. */
static void limits_resolve(struct sms_http *h, const struct sms_http_limits *want)
{
	struct rlimit rl;
	uint64_t fds = 1024;
	unsigned threads = h->nthreads ? h->nthreads : 1, max;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rlim_t was = rl.rlim_cur;

			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
				LOG_INFO("sms", "http: file limit raised from %llu to %llu", (unsigned long long)was,
					 (unsigned long long)rl.rlim_max);
			else
				getrlimit(RLIMIT_NOFILE, &rl);
		}
		fds = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (uint64_t)rl.rlim_cur;
	}
	max = fds > 1024 + 64 ? 1024 : fds > 64 + 16 ? (unsigned)(fds - 64) : 16;
	if (want)
		h->lim = *want;
	if (!h->lim_set_conns)
		h->lim.max_conns = 0;
	h->lim.max_conns = h->lim.max_conns ? h->lim.max_conns : max / threads ? max / threads : 1;
	h->lim.max_conns_per_peer = h->lim.max_conns_per_peer ? h->lim.max_conns_per_peer : 64;
	h->lim.header_ms = h->lim.header_ms ? h->lim.header_ms : 10000;
	h->lim.body_ms = h->lim.body_ms ? h->lim.body_ms : 60000;
}

void sms_http_set_limits(struct sms_http *h, const struct sms_http_limits *lim)
{
	h->lim_set_conns = lim && lim->max_conns;
	limits_resolve(h, lim);
}

int sms_http_new(struct event_base *base, struct sms_store *store, const char *addr, struct sms_http **out)
{
	struct sms_http *h;
	char host[256];
	uint16_t port = 0;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r, fd;

	*out = NULL;
	if (!base || !store || !addr || addr_split(addr, host, sizeof(host), &port) != 0)
		return CE_ARG;
	h = calloc(1, sizeof(*h));
	if (!h)
		return CE_NOMEM;
	if (!(h->allow_mu = malloc(sizeof(*h->allow_mu)))) {
		free(h);
		return CE_NOMEM;
	}
	pthread_mutex_init(h->allow_mu, NULL);
	h->park_pipe[0] = h->park_pipe[1] = -1;
	h->main.search_pipe[0] = h->main.search_pipe[1] = -1;
	h->main.h = h;
	h->main.base = base;
	h->main.store = store;
	limits_resolve(h, NULL);
	if ((r = thread_http(&h->main)) != 0)
		goto fail;
	fd = listen_reuseport(host, port, &ss, &sl);
	if (fd < 0 || !(h->sock = evhttp_accept_socket_with_handle(h->main.http, fd))) {
		LOG_ERR("sms", "http: cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		r = CE_IO;
		goto fail;
	}
	h->main.lev = evhttp_bound_socket_get_listener(h->sock);
	evconnlistener_set_error_cb(h->main.lev, on_accept_error);
	h->bound = ss;
	h->bound_len = sl;
	/* No request waits for a WAL checkpoint's fsync (store.h). */
	if ((r = sms_store_bg_checkpoint(store, true)) != 0)
		goto fail;
	if (ss.ss_family == AF_INET)
		h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	LOG_INFO("sms", "http: GET and REST APIs on %s port %u", host[0] ? host : "*", (unsigned)h->port);
	*out = h;
	return 0;
fail:
	sms_http_free(h);
	return r;
}

static void on_stop(evutil_socket_t fd, short ev, void *arg)
{
	struct http_thread *t = arg;
	char b[16];

	(void)ev;
	while (read(fd, b, sizeof(b)) > 0)
		;
	event_base_loopbreak(t->base);
}

static void *worker_main(void *arg)
{
	struct http_thread *t = arg;

	event_base_dispatch(t->base);
	return NULL;
}

int http_pipe_nb(int p[2])
{
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		p[0] = p[1] = -1;
		return CE_IO;
	}
	return 0;
}

void http_close_pipe(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

/* Stop, join and free one worker (started or not). */
static void worker_free(struct http_thread *t)
{
	if (!t)
		return;
	if (t->started) {
		if (write(t->stop_pipe[1], "s", 1) < 0)
			LOG_WARN("sms", "http: cannot stop a worker thread");
		pthread_join(t->tid, NULL);
	}
	gate_unregister(t);
	t->lev = NULL;
	http_search_drain(t);
	if (t->http)
		evhttp_free(t->http);
	gate_cleanup(t);
	if (t->resume_ev)
		event_free(t->resume_ev);
	if (t->out)
		evbuffer_free(t->out);
	if (t->stop_ev)
		event_free(t->stop_ev);
	if (t->search_ev)
		event_free(t->search_ev);
	http_close_pipe(t->stop_pipe);
	http_close_pipe(t->search_pipe);
	sms_store_close(t->store);
	if (t->base)
		event_base_free(t->base);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int worker_new(struct sms_http *h, const char *db_uri, int listen_fd, struct http_thread **out)
{
	struct http_thread *t = calloc(1, sizeof(*t));
	int fd = -1, r;

	*out = NULL;
	if (!t)
		return CE_NOMEM;
	t->h = h;
	t->worker = true;
	t->stop_pipe[0] = t->stop_pipe[1] = -1;
	t->search_pipe[0] = t->search_pipe[1] = -1;
	pthread_mutex_init(&t->mu, NULL);
	if ((r = sms_store_open(db_uri, &t->store)) != 0 || (r = sms_store_no_autocheckpoint(t->store)) != 0)
		goto fail;
	r = CE_NOMEM;
	if (!(t->base = sms_http_base_new()))
		goto fail;
	if ((r = thread_http(t)) != 0 || (r = http_pipe_nb(t->stop_pipe)) != 0)
		goto fail;
	r = CE_NOMEM;
	if (!(t->stop_ev = event_new(t->base, t->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, t)) ||
	    event_add(t->stop_ev, NULL) != 0)
		goto fail;
	/* Its own SO_REUSEPORT socket; if the kernel refuses, a dup() of the
	 * first one (then the loops share one accept queue). */
	r = CE_IO;
	if ((fd = listen_again(h)) < 0 && (fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		goto fail;
	{
		struct evhttp_bound_socket *bs = evhttp_accept_socket_with_handle(t->http, fd);

		if (!bs) {
			close(fd);
			goto fail;
		}
		t->lev = evhttp_bound_socket_get_listener(bs);
		evconnlistener_set_error_cb(t->lev, on_accept_error);
	}
	if (pthread_create(&t->tid, NULL, worker_main, t) != 0)
		goto fail;
	t->started = true;
	*out = t;
	return 0;
fail:
	worker_free(t);
	return r;
}

int sms_http_set_threads(struct sms_http *h, const char *db_uri, unsigned threads)
{
	int fd, r;

	if (!h || !db_uri || threads < 1 || threads > SMS_HTTP_THREADS_MAX || h->workers)
		return CE_ARG;
	if (threads == 1)
		return 0;
	h->nthreads = threads;
	limits_resolve(h, &h->lim);
	if (!h->sync_ok) {
		pthread_mutex_init(&h->hook_mu, NULL);
		pthread_mutex_init(&h->park_mu, NULL);
		pthread_cond_init(&h->park_cv, NULL);
		h->sync_ok = true;
	}
	if ((r = http_pipe_nb(h->park_pipe)) != 0)
		return r;
	if (!(h->park_ev = event_new(h->main.base, h->park_pipe[0], EV_READ | EV_PERSIST, on_park, h)) ||
	    event_add(h->park_ev, NULL) != 0)
		return CE_NOMEM;
	if (!(h->workers = calloc(threads - 1, sizeof(*h->workers))))
		return CE_NOMEM;
	fd = evconnlistener_get_fd(evhttp_bound_socket_get_listener(h->sock));
	for (unsigned i = 0; i + 1 < threads; i++) {
		/* hooks_now and park_enter take park_mu: the worker sees h->hooks set before. */
		if ((r = worker_new(h, db_uri, fd, &h->workers[i])) != 0) {
			LOG_ERR("sms", "http: worker thread %u: %s", i + 1, err_str(r));
			return r;
		}
		h->nworkers++;
	}
	LOG_INFO("sms", "http: %u threads on port %u", threads, (unsigned)h->port);
	return 0;
}

void sms_http_free(struct sms_http *h)
{
	if (!h)
		return;
	if (h->sync_ok) {
		/* A worker waiting to park this loop gives up (its request: 503). */
		pthread_mutex_lock(&h->park_mu);
		h->stopping = true;
		pthread_cond_broadcast(&h->park_cv);
		pthread_mutex_unlock(&h->park_mu);
	}
	/* Searches first: running ones end (at their deadline at the
	 * latest), queued ones come back cancelled to the pipes drained below. */
	sms_search_pool_free(h->search);
	h->search = NULL;
	for (unsigned i = 0; i < h->nworkers; i++)
		worker_free(h->workers[i]);
	free(h->workers);
	if (h->park_ev)
		event_free(h->park_ev);
	http_close_pipe(h->park_pipe);
	gate_unregister(&h->main);
	h->main.lev = NULL;
	http_search_drain(&h->main);
	if (h->main.http)
		evhttp_free(h->main.http);
	gate_cleanup(&h->main);
	if (h->main.search_ev)
		event_free(h->main.search_ev);
	http_close_pipe(h->main.search_pipe);
	if (h->main.resume_ev)
		event_free(h->main.resume_ev);
	if (h->main.out)
		evbuffer_free(h->main.out);
	if (h->sync_ok) {
		pthread_mutex_destroy(&h->hook_mu);
		pthread_mutex_destroy(&h->park_mu);
		pthread_cond_destroy(&h->park_cv);
	}
	if (h->allow_mu) {
		pthread_mutex_destroy(h->allow_mu);
		free(h->allow_mu);
	}
	free(h);
}

void sms_http_set_hooks(struct sms_http *h, const struct sms_http_hooks *hooks)
{
	if (h->sync_ok)
		pthread_mutex_lock(&h->park_mu);
	if (hooks)
		h->hooks = *hooks;
	else
		memset(&h->hooks, 0, sizeof(h->hooks));
	if (h->sync_ok)
		pthread_mutex_unlock(&h->park_mu);
}

struct event_base *sms_http_base(const struct sms_http *h)
{
	return h->main.base;
}

uint16_t sms_http_port(const struct sms_http *h)
{
	return h->port;
}

static void stats_add(struct sms_http_stats *o, const struct sms_http_stats *s)
{
	o->requests += s->requests;
	for (size_t i = 0; i < GETAPI_NWORDS; i++)
		o->words[i] += s->words[i];
	o->internal_errors += s->internal_errors;
	o->rest_requests += s->rest_requests;
	o->rest_errors += s->rest_errors;
	o->rest_unauthorized += s->rest_unauthorized;
	o->gate_refused += s->gate_refused;
	o->gate_too_large += s->gate_too_large;
	o->gate_deadline += s->gate_deadline;
	o->gate_peer_cap += s->gate_peer_cap;
	o->accept_paused += s->accept_paused;
}

/* From the caller's loop thread, or from a hook (that loop is then parked). */
void sms_http_get_stats(const struct sms_http *h, struct sms_http_stats *out)
{
	memset(out, 0, sizeof(*out));
	stats_add(out, &h->main.stats);
	for (unsigned i = 0; i < h->nworkers; i++) {
		struct http_thread *t = h->workers[i];

		pthread_mutex_lock(&t->mu);
		stats_add(out, &t->stats);
		pthread_mutex_unlock(&t->mu);
	}
}
