/*
 * http_int.h - what the SMS HTTP server's files share (internal to
 * src/sms/): one serving loop (struct http_thread) and the server (struct
 * sms_http), defined in http.c's terms; http_search.c hands REST text
 * searches to the search workers and answers them on the loop.
 */
#ifndef CASTELLAN_SMS_HTTP_INT_H
#define CASTELLAN_SMS_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "sms/http.h"
#include "sms/rest.h"
#include "sms/search.h"
#include "lib/netacl.h"

struct evconnlistener;
struct event;
struct evhttp;
struct evhttp_bound_socket;
struct evbuffer;
struct evhttp_request;

struct http_conn;

/* A log line that may repeat: at most one per LOG_LIMIT_MS, with a count
 * of those left out. */
#define LOG_LIMIT_MS 10000u
struct log_limit {
	uint64_t last_ms, skipped;
};

/* One serving loop: the caller's (sms_http.main) or a worker's. */
struct http_thread {
	struct sms_http *h;
	struct http_thread *reg_next; /* the registry (gate_registry) */
	struct evconnlistener *lev;   /* its listening socket */
	struct event *resume_ev;      /* accepting again after running out of descriptors */
	bool paused_fd, paused_cap;
	struct http_conn *conns;      /* every connection of this loop */
	unsigned nconns;
	struct log_limit log_accept, log_peer, log_deadline;
	struct event_base *base;   /* a worker's own; the caller's for main */
	struct evhttp *http;
	struct sms_store *store;   /* a worker's own; the caller's (borrowed) for main */
	bool worker;
	pthread_t tid;
	bool started;
	int stop_pipe[2];          /* worker: a byte stops its loop */
	struct event *stop_ev;
	pthread_mutex_t mu;        /* guards stats (read by sms_http_get_stats) */
	struct sms_http_stats stats;
	struct evbuffer *out;      /* reply body, reused */
	int search_pipe[2];        /* finished search jobs (their addresses) */
	struct event *search_ev;
	char body[GETAPI_BODY_MAX];
};

struct sms_http {
	struct http_thread main;
	struct evhttp_bound_socket *sock;
	uint16_t port;
	struct sockaddr_storage bound;  /* the listening address, port resolved */
	socklen_t bound_len;
	struct sms_http_hooks hooks; /* the web panel's, zero if none; written under park_mu */
	struct http_thread **workers;
	unsigned nworkers;
	struct netacl allow;         /* GET /metrics beyond loopback (sms_http_set_metrics_allow) */
	pthread_mutex_t *allow_mu;   /* allow: replaced live (SIGHUP) while threads read it */
	/* Parking the caller's loop while a worker runs a hook. */
	pthread_mutex_t hook_mu;     /* one worker in hooks at a time */
	pthread_mutex_t park_mu;
	pthread_cond_t park_cv;
	bool park_req, parked, stopping;
	int park_pipe[2];
	struct event *park_ev;
	bool sync_ok;                /* the mutexes and condition are initialised */
	struct sms_http_limits lim;  /* resolved: no zero left */
	bool lim_set_conns;          /* max_conns given by sms_http_set_limits */
	unsigned nthreads;
	struct sms_search_pool *search; /* sms_http_set_search; NULL: searches run on the loop */
};

/* http.c: the stats lock of a worker's loop (no-op on the caller's); a
 * REST answer counted, logged and sent (frees rs->body); non-blocking
 * close-on-exec pipes. */
void http_stats_lock(struct http_thread *t);
void http_stats_unlock(struct http_thread *t);
void http_rest_reply(struct http_thread *t, struct evhttp_request *req, const struct rest_req *rq,
		     struct rest_resp *rs, uint64_t t0);
int http_pipe_nb(int p[2]);
void http_close_pipe(int p[2]);

/* http_search.c: hand a REST request to the search workers if it is a
 * text search (true: it is theirs, answered later or 503 at once); the
 * loop's search pipe callback; free what came back unanswered (the loop
 * is gone). */
bool http_search_offload(struct http_thread *t, struct evhttp_request *req, const struct rest_req *rq, uint64_t t0);
void http_on_search_done(int fd, short ev, void *arg);
void http_search_drain(struct http_thread *t);

#endif
