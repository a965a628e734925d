/*
 * http.h - the SMS's HTTP front end (libevent evhttp): the free CAS's GET
 * API at /api.php (getapi.h) and the JSON REST API under /api/v1/ (rest.h).
 *
 * Runs on the caller's event_base (the head-end's loop) and uses the given
 * store from that loop's thread only; sms_http_set_threads adds worker
 * threads, each with its own loop and store connection, accepting on the
 * same socket. Limits: request line and headers
 * GETAPI_QUERY_MAX + 16 KiB, bodies SMS_HTTP_BODY_MAX (a larger one is answered 413 by evhttp
 * before it is read whole; JSON bodies are further limited to
 * REST_JSON_MAX), query GETAPI_QUERY_MAX / REST_QUERY_MAX.
 */
#ifndef CASTELLAN_SMS_HTTP_H
#define CASTELLAN_SMS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sms/getapi.h"
#include "sms/store.h"
#include "sms/search.h"

struct event_base;
struct sms_http;

#define SMS_HTTP_BODY_MAX (128u << 20) /* an authenticated CSV import over HTTP; larger: the CLI */
#define SMS_HTTP_PANEL_BODY_MAX (64u << 10) /* the web panel's paths (sign-in included) */
#define SMS_HTTP_UNAUTH_BODY_MAX (4u << 10) /* /api/v1/ without a valid API key or session; /api.php */
#define SMS_HTTP_HEADER_MAX (GETAPI_QUERY_MAX + 16384) /* request line (a GET API query at its limit) and headers */

/* The gate (http.c): every connection's bytes are read by a small parser of
 * its own before evhttp, so that each request is judged from its header
 * alone: Content-Length given twice, Transfer-Encoding, a body on GET,
 * HEAD, DELETE or OPTIONS, folded or malformed header lines: 400 and the
 * connection closed; a Content-Length over the route's limit (above): 413
 * before any byte of the body is read, and closed. The header must be whole
 * header_ms after its first byte, the body body_ms after the header's end
 * (deadlines, not idle timeouts: a byte now and then does not extend
 * them); then the connection is closed. Connections are capped per HTTP
 * thread (max_conns: accepting pauses at the cap) and per peer address on
 * each thread (max_conns_per_peer: more are closed at once). When accept() runs out of
 * descriptors, accepting pauses for 200 ms (no busy loop); repeated log
 * lines are limited to one per 10 s with a count. */
struct sms_http_limits {
	unsigned max_conns;           /* 0: default (min(1024, RLIMIT_NOFILE - 64) / threads) */
	unsigned max_conns_per_peer;  /* 0: default 64 */
	unsigned header_ms;           /* 0: default 10 000 */
	unsigned body_ms;             /* 0: default 60 000 (600 000 for a CSV import) */
};
/* Before sms_http_set_threads. */
void sms_http_set_limits(struct sms_http *h, const struct sms_http_limits *lim);

/* The gate's parser of one request header, hdr[0..len): the request line
 * (METHOD SP target SP HTTP/1.x), header lines, and the empty line that
 * ends it at len (CRLF or LF line ends). 0 and *out (pointers into hdr,
 * not NUL-terminated; path without its query); -1 refused (400): no or a
 * malformed request line, a line without ':' or folded, Content-Length
 * twice / empty / not 1-18 digits, Transfer-Encoding, a Content-Length on
 * a method without a body, bytes after the empty line. Fuzzed by
 * fuzz/fuzz_http_head.c; table of cases in tests/sms/test_http_gate.c. */
struct sms_http_head {
	const char *path;
	size_t path_len;
	bool body_method;          /* POST, PUT, PATCH */
	uint64_t content_length;   /* 0 if none */
	const char *api_key;       /* X-API-Key, else Authorization: Bearer; NULL if none */
	size_t api_key_len;
	const char *cookie;
	size_t cookie_len;
};
int sms_http_head_parse(const char *hdr, size_t len, struct sms_http_head *out) WARN_UNUSED;

struct sms_http_stats {
	uint64_t requests;                  /* every request answered */
	uint64_t words[GETAPI_NWORDS];      /* /api.php answers by word (OK = 200) */
	uint64_t internal_errors;           /* 500 answers */
	uint64_t rest_requests;             /* /api/v1/... requests */
	uint64_t rest_errors;               /* of which answered 4xx/5xx */
	uint64_t rest_unauthorized;         /* of which 401 (no or bad API key) */
	uint64_t gate_refused;              /* 400 by the gate (header checks) */
	uint64_t gate_too_large;            /* 413 by the gate (body over the route's limit) */
	uint64_t gate_deadline;             /* connections closed at a deadline */
	uint64_t gate_peer_cap;             /* connections closed over the per-peer cap */
	uint64_t accept_paused;             /* accept paused: out of descriptors */
};

/* An event base for a loop that serves HTTP (the caller's, and each worker
 * thread's): epoll with libevent's change list, so the read/write event
 * changes evhttp makes around each request are folded into one epoll_ctl
 * per loop pass instead of four per request (measured: ~22 % less CPU per
 * REST request). libevent warns that the change list is unsafe with fds
 * cloned by dup(); the only dup()ed fd here is the listening socket, which
 * is never closed while a loop runs. NULL if out of memory. */
struct event_base *sms_http_base_new(void);

/* Listen on addr ("host:port", "[v6]:port" or ":port"; port 0 picks a free
 * one, see sms_http_port). store is borrowed: it must outlive the server.
 * Free with sms_http_free. 0, CE_ARG (bad address) or CE_IO (bind). */
int sms_http_new(struct event_base *base, struct sms_store *store, const char *addr,
		 struct sms_http **out) WARN_UNUSED;
void sms_http_free(struct sms_http *h);

/* Hooks for the web panel (src/web/web.h), both optional. auth: a REST
 * request without an API key; 0 and *scopes, who filled: authenticated
 * (a session); 1: not the hook's (401 as usual); -1: refused, the hook has
 * answered the request. fallback: any path but /api.php and /api/v1/; 1 if
 * it answered, 0 for the usual 404. */
struct evhttp_request;
struct sms_http_hooks {
	int (*auth)(void *ctx, struct evhttp_request *req, unsigned *scopes, char *who, size_t who_cap);
	/* The gate, before a REST body is read: does this Cookie header name a
	 * live session? (Optional: without it, cookies do not authenticate
	 * a body over SMS_HTTP_UNAUTH_BODY_MAX.) */
	bool (*has_session)(void *ctx, const char *cookie);
	int (*fallback)(void *ctx, struct evhttp_request *req);
	void *ctx;
};
void sms_http_set_hooks(struct sms_http *h, const struct sms_http_hooks *hooks);

/* Serve with `threads` loops in all (1: the caller's only, the default):
 * starts threads - 1 worker threads, each opening its own store on db_uri
 * (the database of the store given to sms_http_new) and accepting on the
 * same listening socket. /api.php and REST requests with an API key run on
 * the worker that accepted them; the hooks are called with the caller's loop
 * paused, so they need no locking. Call once, after sms_http_new, from the
 * caller's loop thread. 0, CE_ARG, or the store's / CE_IO / CE_NOMEM (then
 * free h: it may have started some workers). */
#define SMS_HTTP_THREADS_MAX 64
int sms_http_set_threads(struct sms_http *h, const char *db_uri, unsigned threads) WARN_UNUSED;
/* Run the REST API's text searches (GET /api/v1/cards with q=, info= or
 * name=) on search workers (search.h), each with its own connection to
 * db_uri, instead of on the loop that received them: the loops keep
 * serving /api.php and the rest meanwhile. A search over the bound is
 * answered 503 search_busy at once; one past its deadline 503
 * search_timeout (Retry-After: 1 on both). lim NULL: the defaults. Call
 * before sms_http_set_threads. Without it, searches run on the loop. */
int sms_http_set_search(struct sms_http *h, const char *db_uri, const struct sms_search_limits *lim) WARN_UNUSED;
uint16_t sms_http_port(const struct sms_http *h);
/* The caller's loop (given to sms_http_new). */
struct event_base *sms_http_base(const struct sms_http *h);

/* GET /metrics (metrics.h's registry, Prometheus text format) is answered
 * to a peer on loopback, to a peer in the allow-list, and to a request with
 * an API key of the `metrics` (or `admin`) scope in X-API-Key or
 * Authorization: Bearer; else 403 (401 for a bad key). list: comma-
 * separated addresses or CIDR prefixes ("10.1.2.3,192.168.0.0/24,fd00::/8"),
 * at most SMS_METRICS_ALLOW_MAX, parsed by lib/netacl (host bits past a
 * prefix are refused: "10.0.0.1/8"); "" or NULL empties it. Any time, from any
 * thread (the head-end's SIGHUP replaces it while requests are served).
 * 0 or CE_ARG (nothing changed). */
#define SMS_METRICS_ALLOW_MAX 16
int sms_http_set_metrics_allow(struct sms_http *h, const char *list) WARN_UNUSED;
/* The rule without a key: sa on loopback (127/8, ::1) or in the allow-list;
 * an IPv4-mapped IPv6 address counts as its IPv4 address. NULL: false. */
struct sockaddr;
bool sms_http_metrics_peer_ok(const struct sms_http *h, const struct sockaddr *sa);
/* The sum over all threads. */
void sms_http_get_stats(const struct sms_http *h, struct sms_http_stats *out);

#endif
