/*
 * metrics_http.c - GET /metrics on a thread of its own (metrics_http.h):
 * libevent evhttp on a private event_base; a pipe byte stops the loop.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/metrics_http.h"
#include "lib/util.h"

struct metrics_http {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct event *stop_ev;
	int stop_pipe[2];
	pthread_t tid;
	bool started;
	uint16_t port;
};

static void on_request(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	struct evbuffer *b = evbuffer_new();
	uint64_t t0 = now_mono_us();
	char *text = NULL;
	size_t len = 0;
	int status;

	(void)arg;
	if (!path || strcmp(path, "/metrics") != 0) {
		status = 404;
		evhttp_send_error(req, status, NULL);
	} else if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		status = 405;
		evhttp_send_error(req, status, NULL);
	} else if (!b || metrics_render(&text, &len) != 0 || evbuffer_add(b, text, len) != 0) {
		status = 500;
		evhttp_send_error(req, status, NULL);
	} else {
		status = 200;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", METRICS_CONTENT_TYPE);
		evhttp_send_reply(req, status, "OK", b);
	}
	metric_api_done(status == 404 ? "other" : "/metrics", status, t0);
	free(text);
	if (b)
		evbuffer_free(b);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void *run(void *arg)
{
	struct metrics_http *m = arg;

	event_base_dispatch(m->base);
	return NULL;
}

int metrics_http_start(const char *addr, struct metrics_http **out)
{
	struct metrics_http *m = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256];
	uint16_t port;
	int r = CE_NOMEM;

	*out = NULL;
	if (!addr || addr_split(addr, host, sizeof(host), &port) != 0)
		return CE_ARG;
	if (!(m = calloc(1, sizeof(*m))))
		return CE_NOMEM;
	m->stop_pipe[0] = m->stop_pipe[1] = -1;
	if (!(m->base = event_base_new()) || !(m->http = evhttp_new(m->base)))
		goto fail;
	evhttp_set_timeout(m->http, 10);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_gencb(m->http, on_request, m);
	if (!(m->sock = evhttp_bind_socket_with_handle(m->http, host[0] ? host : "0.0.0.0", port))) {
		LOG_ERR("metrics", "cannot listen on %s: %s", addr, strerror(errno));
		r = CE_IO;
		goto fail;
	}
	if (getsockname(evhttp_bound_socket_get_fd(m->sock), (struct sockaddr *)&ss, &sl) != 0) {
		r = CE_IO;
		goto fail;
	}
	m->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	if (pipe(m->stop_pipe) != 0) {
		r = CE_IO;
		goto fail;
	}
	if (!(m->stop_ev = event_new(m->base, m->stop_pipe[0], EV_READ, on_stop, m->base)) ||
	    event_add(m->stop_ev, NULL) != 0)
		goto fail;
	{
		/* The thread takes no signals: a SIGINT/SIGTERM must reach the
		 * main loop (a blocking read there returns EINTR). */
		sigset_t all, old;
		int e;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		e = pthread_create(&m->tid, NULL, run, m);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (e != 0) {
			r = CE_IO;
			goto fail;
		}
	}
	m->started = true;
	LOG_INFO("metrics", "Prometheus metrics on http://%s/metrics (port %u)", addr, (unsigned)m->port);
	*out = m;
	return 0;
fail:
	metrics_http_free(m);
	return r;
}

uint16_t metrics_http_port(const struct metrics_http *m)
{
	return m ? m->port : 0;
}

void metrics_http_free(struct metrics_http *m)
{
	if (!m)
		return;
	if (m->started) {
		char c = 0;

		if (write(m->stop_pipe[1], &c, 1) != 1)
			event_base_loopbreak(m->base); /* cannot fail short of a closed pipe */
		pthread_join(m->tid, NULL);
	}
	if (m->stop_ev)
		event_free(m->stop_ev);
	if (m->http)
		evhttp_free(m->http);
	if (m->base)
		event_base_free(m->base);
	for (int i = 0; i < 2; i++)
		if (m->stop_pipe[i] >= 0)
			close(m->stop_pipe[i]);
	free(m);
}
