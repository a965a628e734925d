/*
 * http_search.c - the SMS HTTP server's text searches (http_int.h): a
 * REST text search (GET /api/v1/cards with q=, info= or name=), once
 * authenticated on its loop if a panel session needs the hook, is copied
 * whole to the search workers (search.h); the loop goes on serving. The
 * worker's rest_handle answer comes back through the loop's search pipe
 * and is sent from the loop. A client that left meanwhile: evhttp has
 * detached the request, and sending frees it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sms/http_int.h"
#include "lib/log.h"
#include "lib/url.h"
#include "lib/util.h"

/* An API key longer than this is not a valid one: rest_handle refuses it on the loop. */
#define SEARCH_KEY_MAX 256

/* A copy of one REST request for a search worker, and its answer. */
struct http_search_job {
	struct sms_search_job job; /* first: the pool hands back its address */
	struct http_thread *t;
	struct evhttp_request *req;
	struct rest_req rq;
	struct rest_resp rs;
	uint64_t t0;
	char path[REST_PATH_MAX + 1];
	char query[REST_QUERY_MAX + 1];
	char key[SEARCH_KEY_MAX + 1];
	char who[SMS_WHO_MAX + 1];
};

/* GET /api/v1/cards with a text to look for (q, info or name): what the
 * workers take. Parameter names are compared decoded. */
static bool is_search(const struct rest_req *rq)
{
	const char *q = rq->query, *name, *value;
	size_t len = q ? strlen(q) : 0, nlen, vlen;

	if (!rq->path || strcmp(rq->path, REST_PREFIX "cards") != 0 || !q)
		return false;
	while (url_query_next(&q, &len, &name, &nlen, &value, &vlen)) {
		char n[8];

		if (vlen && url_decode(name, nlen, n, sizeof(n), false) == 0 &&
		    (strcmp(n, "q") == 0 || strcmp(n, "info") == 0 || strcmp(n, "name") == 0))
			return true;
	}
	return false;
}

static void search_run(struct sms_store *s, struct sms_search_job *j)
{
	struct http_search_job *h = (struct http_search_job *)j;

	rest_handle(s, &h->rq, &h->rs);
}

static void search_job_free(struct http_search_job *h)
{
	free(h->rs.body);
	secret_wipe(h->key, sizeof(h->key));
	free(h);
}

/* {"error":...} for a search the workers did not run. */
static void search_refused(struct rest_resp *rs, const char *code, const char *msg)
{
	char buf[320];
	int n = snprintf(buf, sizeof(buf), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);

	free(rs->body);
	rs->body = strdup(buf);
	rs->len = rs->body ? (size_t)n : 0;
	rs->status = 503;
	rs->content_type = "application/json";
	rs->error_code = code;
}

/* Hand the request to the workers: true if it is theirs now (answered
 * later by on_search_done, or at once with 503 if they are all busy). */
bool http_search_offload(struct http_thread *t, struct evhttp_request *req, const struct rest_req *rq, uint64_t t0)
{
	struct http_search_job *h;
	int r;

	if (!is_search(rq) || strlen(rq->path) > REST_PATH_MAX || strlen(rq->query) > REST_QUERY_MAX ||
	    (rq->api_key && strlen(rq->api_key) > SEARCH_KEY_MAX) || t->search_pipe[1] < 0)
		return false; /* rest_handle refuses these quickly on the loop */
	if (!(h = calloc(1, sizeof(*h))))
		return false;
	h->job.run = search_run;
	h->job.notify_fd = t->search_pipe[1];
	h->t = t;
	h->req = req;
	h->t0 = t0;
	h->rq = *rq;
	memcpy(h->path, rq->path, strlen(rq->path) + 1);
	memcpy(h->query, rq->query, strlen(rq->query) + 1);
	h->rq.path = h->path;
	h->rq.query = h->query;
	if (rq->api_key) {
		memcpy(h->key, rq->api_key, strlen(rq->api_key) + 1);
		h->rq.api_key = h->key;
	}
	if (rq->auth_who) {
		snprintf(h->who, sizeof(h->who), "%s", rq->auth_who);
		h->rq.auth_who = h->who;
	}
	h->rq.body = NULL;
	h->rq.body_len = 0;
	h->rq.content_type = NULL;
	if ((r = sms_search_submit(t->h->search, &h->job)) != 0) {
		search_refused(&h->rs, "search_busy", "too many searches at once: try again in a moment");
		http_rest_reply(t, req, &h->rq, &h->rs, t0);
		search_job_free(h);
	}
	return true;
}

/* The loop: finished searches. */
void http_on_search_done(int fd, short ev, void *arg)
{
	struct http_thread *t = arg;
	struct http_search_job *h;

	(void)ev;
	while (read(fd, &h, sizeof(h)) == (ssize_t)sizeof(h)) {
		if (h->job.cancelled)
			search_refused(&h->rs, "unavailable", "the server is stopping");
		else if (h->job.expired)
			search_refused(&h->rs, "search_timeout",
				       "the search waited past its deadline behind others: try again in a moment");
		if (h->rs.status == 0)
			search_refused(&h->rs, "internal", "no answer");
		http_rest_reply(t, h->req, &h->rq, &h->rs, h->t0);
		search_job_free(h);
	}
}

/* The loop is gone (sms_http_free): free what came back, unanswered (evhttp
 * frees the requests with their connections). */
void http_search_drain(struct http_thread *t)
{
	struct http_search_job *h;

	if (t->search_pipe[0] < 0)
		return;
	while (read(t->search_pipe[0], &h, sizeof(h)) == (ssize_t)sizeof(h))
		search_job_free(h);
}

int sms_http_set_search(struct sms_http *h, const char *db_uri, const struct sms_search_limits *lim)
{
	int r;

	if (!h || !db_uri || h->search || h->workers)
		return CE_ARG;
	if ((r = sms_search_pool_new(db_uri, lim, &h->search)) != 0)
		return r;
	{
		struct sms_search_limits l;

		sms_search_pool_limits(h->search, &l);
		LOG_INFO("sms", "search: %u workers, %u waiting at most, deadline %u ms", l.workers, l.queue,
			 l.deadline_ms);
	}
	return 0;
}

