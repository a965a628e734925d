/*
 * test_http_gate.c - issue 12 items 1, 2 and 5: the HTTP server judged by
 * hostile clients. Each test first states the attack as it worked before
 * the gate (sms/http.c), then what must happen now:
 *   - bodies: an unauthenticated 100 MiB POST was read whole before the
 *     401; now 413 from the header alone, per-route limits;
 *   - duplicate Content-Length (first won), Transfer-Encoding, a body on
 *     GET, folded headers: now 400 and closed;
 *   - a header dribbled one byte at a time kept the connection for ever
 *     (the 30 s timeout restarted on every byte): now closed at a deadline;
 *   - 400 half-sent requests under RLIMIT_NOFILE 256: accept() failed in a
 *     busy loop, the log grew per attempt and a good /api.php call was never
 *     answered: now it is, with little CPU and a short log.
 * The server runs in a forked child (its own file limit); all waits are
 * bounded, and no assertion is on a speed.
 */
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <event2/event.h>
#include "sms/http.h"
#include "sms/rest.h"
#include "sms/store.h"
#include "lib/util.h"

#define SOFT_HALF ((rlim_t)1 << 40)

static unsigned gsrv_max_conns; /* the next server's max_conns (0: default) */

struct gsrv {
	pid_t pid;
	uint16_t port;
	uint64_t nofile_after; /* the child's soft RLIMIT_NOFILE once the server is up */
	char key[65];
	char dir[64], log[128];
};

static void gsrv_child(struct gsrv *g, int wfd, rlim_t nofile, unsigned header_ms)
{
	struct rlimit now;
	struct sms_store *st = NULL;
	struct sms_http *h = NULL;
	struct event_base *base;
	struct sms_card c = { .serial = 2100000000, .start = 1700000000, .finish = 1800000000 };
	char db[128], key[65];

	/* the server dies with the test, even when a check fails first */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || !freopen(g->log, "w", stderr))
		_exit(2);
	if (nofile) {
		/* nofile | SOFT_HALF: soft limit half the hard one (the server raises it) */
		struct rlimit rl = { nofile & SOFT_HALF ? (nofile & ~SOFT_HALF) / 2 : nofile, nofile & ~SOFT_HALF };

		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			_exit(3);
	}
	snprintf(db, sizeof(db), "%s/sms.db", g->dir);
	if (sms_store_open(db, &st) != 0 || sms_card_add(st, &c, "test") != 0 ||
	    sms_user_add(st, "billing", "test", NULL) != 0 ||
	    sms_apikey_create(st, "billing", SMS_SCOPE_READ | SMS_SCOPE_WRITE, "test", key) != 0)
		_exit(4);
	if (!(base = sms_http_base_new()) || sms_http_new(base, st, "127.0.0.1:0", &h) != 0)
		_exit(5);
	if (header_ms || gsrv_max_conns)
		sms_http_set_limits(h, &(struct sms_http_limits){ .header_ms = header_ms, .max_conns = gsrv_max_conns });
	if (getrlimit(RLIMIT_NOFILE, &now) != 0 ||
	    dprintf(wfd, "%u %s %llu\n", (unsigned)sms_http_port(h), key, (unsigned long long)now.rlim_cur) < 0)
		_exit(6);
	close(wfd);
	event_base_dispatch(base);
	_exit(0);
}

static void gsrv_start(struct gsrv *g, rlim_t nofile, unsigned header_ms)
{
	int p[2];
	char line[128] = "";
	size_t got = 0;
	unsigned port = 0;

	memset(g, 0, sizeof(*g));
	snprintf(g->dir, sizeof(g->dir), "/tmp/castellan-gate-XXXXXX");
	assert_non_null(mkdtemp(g->dir));
	snprintf(g->log, sizeof(g->log), "%s/server.log", g->dir);
	assert_int_equal(pipe(p), 0);
	g->pid = fork();
	assert_true(g->pid >= 0);
	if (g->pid == 0) {
		close(p[0]);
		gsrv_child(g, p[1], nofile, header_ms);
	}
	close(p[1]);
	while (got < sizeof(line) - 1 && !strchr(line, '\n')) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		ssize_t n;

		assert_true(poll(&pf, 1, 20000) == 1); /* bounded: 20 s to start */
		n = read(p[0], line + got, sizeof(line) - 1 - got);
		assert_true(n > 0);
		got += (size_t)n;
		line[got] = '\0';
	}
	close(p[0]);
	{
		char *sp = strchr(line, ' '), *sp2, *nl = strchr(line, '\n');
		uint64_t v = 0;

		assert_non_null(sp);
		assert_non_null(nl);
		*sp = '\0';
		*nl = '\0';
		sp2 = strchr(sp + 1, ' ');
		assert_non_null(sp2);
		*sp2 = '\0';
		assert_int_equal(parse_u64(line, 65535, &v), 0);
		port = (unsigned)v;
		assert_int_equal(strlen(sp + 1), 64);
		memcpy(g->key, sp + 1, 65);
		assert_int_equal(parse_u64(sp2 + 1, UINT64_MAX, &g->nofile_after), 0);
	}
	g->port = (uint16_t)port;
}

static void gsrv_stop(struct gsrv *g)
{
	char cmd[160];

	kill(g->pid, SIGKILL);
	waitpid(g->pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g->dir);
	assert_int_equal(system(cmd), 0);
}

/* A connection to the server, from src (NULL: 127.0.0.1). -1 on failure. */
static int gconnect(const struct gsrv *g, const char *src)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(g->port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (src) {
		struct sockaddr_in b = { .sin_family = AF_INET };

		inet_pton(AF_INET, src, &b.sin_addr);
		if (bind(fd, (struct sockaddr *)&b, sizeof(b)) != 0) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read an answer until the server closes or wait_ms pass: the status (0:
 * none), *closed whether the server closed. */
static int gread(int fd, int wait_ms, char *out, size_t cap, bool *closed)
{
	size_t got = 0;
	uint64_t end = now_mono_ms() + (uint64_t)wait_ms;

	*closed = false;
	out[0] = '\0';
	while (now_mono_ms() < end) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pf, 1, 50) <= 0)
			continue;
		n = read(fd, out + got, cap - 1 - got);
		if (n <= 0) {
			*closed = true;
			break;
		}
		got += (size_t)n;
		out[got] = '\0';
		if (got == cap - 1)
			break;
	}
	return tu_http_status(out);
}

/* One raw request on a new connection: its status (0: none in 5 s). */
static int graw(const struct gsrv *g, const char *req, char *out, size_t cap, bool *closed)
{
	int fd = gconnect(g, NULL), st;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	st = gread(fd, 5000, out, cap, closed);
	close(fd);
	return st;
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* ---- item 5 and the other header checks: a table of bad headers ---------- */

struct bad_hdr {
	const char *what;
	const char *req; /* KEY: a valid API key */
};

/* Each would get another answer from the handler (401, 200, 415) if it
 * got there: only the gate's refusal answers 400 and closes. */
static const struct bad_hdr bad_hdrs[] = {
	{ "Content-Length twice (first used to win)",
	  "POST /api/v1/cards?k=KEY HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
	  "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}" },
	{ "Content-Length twice, the same value",
	  "POST /api/v1/cards?k=KEY HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
	  "Content-Length: 2\r\ncontent-length: 2\r\n\r\n{}" },
	{ "Content-Length twice on the GET API",
	  "GET /api.php?api_key=KEY&serial_no=2100000000 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
	  "Content-Length: 0\r\n\r\n" },
	{ "a body on GET (would be read as the next request)",
	  "GET /api.php?api_key=KEY&serial_no=2100000000 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nGET /" },
	{ "Transfer-Encoding", "POST /api/v1/cards HTTP/1.1\r\nHost: a\r\nX-API-Key: KEY\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
	{ "Content-Length and Transfer-Encoding",
	  "POST /api/v1/cards?k=KEY HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n{}" },
	{ "Content-Length not a number", "POST /api/v1/cards HTTP/1.1\r\nHost: a\r\nX-API-Key: KEY\r\n"
	  "Content-Length: 2x\r\n\r\n{}" },
	{ "Content-Length negative", "POST /api/v1/cards HTTP/1.1\r\nHost: a\r\nX-API-Key: KEY\r\n"
	  "Content-Length: -1\r\n\r\n{}" },
	{ "folded header line",
	  "GET /api.php?api_key=KEY&serial_no=2100000000 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n continued\r\n\r\n" },
	{ "header line without a colon", "GET /api.php?api_key=KEY&serial_no=2100000000 HTTP/1.1\r\nHost a\r\n\r\n" },
};

static void test_bad_headers(void **state)
{
	struct gsrv g;
	char req[1024], out[4096];
	bool closed;
	int bad = 0;

	(void)state;
	gsrv_start(&g, 0, 0);
	/* the control: a good request on the same server */
	snprintf(req, sizeof(req), "GET /api.php?api_key=%s&serial_no=2100000000 HTTP/1.1\r\nHost: a\r\n"
		 "Connection: close\r\n\r\n", g.key);
	assert_int_equal(graw(&g, req, out, sizeof(out), &closed), 200);
	for (size_t i = 0; i < sizeof(bad_hdrs) / sizeof(bad_hdrs[0]); i++) {
		int st;
		const char *k = strstr(bad_hdrs[i].req, "KEY");

		assert_non_null(k);
		snprintf(req, sizeof(req), "%.*s%s%s", (int)(k - bad_hdrs[i].req), bad_hdrs[i].req, g.key, k + 3);
		st = graw(&g, req, out, sizeof(out), &closed);
		if (st != 400 || !closed) {
			printf("%s: expected 400 and closed, got %d%s\n", bad_hdrs[i].what, st,
			       closed ? "" : " (still open)");
			bad++;
		}
	}
	gsrv_stop(&g);
	assert_int_equal(bad, 0);
}

/* ---- item 1: bodies are judged from the header ---------------------------- */

static void test_body_limits(void **state)
{
	struct gsrv g;
	char req[1024], out[4096];
	bool closed;
	int fd;

	(void)state;
	gsrv_start(&g, 0, 0);
	/* 100 MiB announced without a key: 413 at once, nothing of it read */
	assert_int_equal(graw(&g, "POST /api/v1/cards HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
			 "Content-Length: 104857600\r\n\r\n", out, sizeof(out), &closed), 413);
	assert_true(closed);
	/* a bad key is no key */
	snprintf(req, sizeof(req), "POST /api/v1/import HTTP/1.1\r\nHost: a\r\nX-API-Key: %064d\r\n"
		 "Content-Type: text/csv\r\nContent-Length: 104857600\r\n\r\n", 0);
	assert_int_equal(graw(&g, req, out, sizeof(out), &closed), 413);
	/* a good key: JSON up to 1 MiB */
	snprintf(req, sizeof(req), "POST /api/v1/cards HTTP/1.1\r\nHost: a\r\nX-API-Key: %s\r\n"
		 "Content-Type: application/json\r\nContent-Length: %u\r\n\r\n", g.key, REST_JSON_MAX + 1);
	assert_int_equal(graw(&g, req, out, sizeof(out), &closed), 413);
	/* the panel's paths: 64 KiB, whoever asks */
	assert_int_equal(graw(&g, "POST /web/api/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
			 "Content-Length: 65537\r\n\r\n", out, sizeof(out), &closed), 413);
	/* the GET API reads a POST's body only to ignore it: 4 KiB */
	snprintf(req, sizeof(req), "POST /api.php?api_key=%s HTTP/1.1\r\nHost: a\r\nContent-Length: 4097\r\n\r\n",
		 g.key);
	assert_int_equal(graw(&g, req, out, sizeof(out), &closed), 413);
	/* a small body without a key still reaches the API: its 401 */
	assert_int_equal(graw(&g, "POST /api/v1/cards HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
			 "Connection: close\r\nContent-Length: 2\r\n\r\n{}", out, sizeof(out), &closed), 401);
	/* an authenticated CSV import may be larger: the server waits for it */
	fd = gconnect(&g, NULL);
	assert_true(fd >= 0);
	snprintf(req, sizeof(req), "POST /api/v1/import HTTP/1.1\r\nHost: a\r\nX-API-Key: %s\r\n"
		 "Content-Type: text/csv\r\nContent-Length: %u\r\n\r\nserial_no\r\n", g.key, (2u << 20) + 11);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	assert_int_equal(gread(fd, 500, out, sizeof(out), &closed), 0);
	assert_false(closed);
	close(fd);
	gsrv_stop(&g);
}

/* ---- item 2: deadlines, caps, out of descriptors --------------------------- */

/* A header sent one byte per 100 ms: closed at the 1 s header deadline, not
 * kept while bytes keep coming (before: the read timeout restarted on
 * every byte, 30 s each). */
static void test_header_deadline(void **state)
{
	static const char req[] = "GET /api.php?api_key=0000000000000000000000000000000000000000000000000000000000"
				  "000000&serial_no=2100000000 HTTP/1.1\r\nHost: a\r\n\r\n";
	struct gsrv g;
	size_t sent = 0;
	bool closed = false;
	char out[256];
	int fd;

	(void)state;
	gsrv_start(&g, 0, 1000);
	fd = gconnect(&g, NULL);
	assert_true(fd >= 0);
	while (sent + 4 < sizeof(req) - 1) { /* bounded: about 14 s if never closed */
		if (write(fd, req + sent, 1) != 1)
			break;
		sent++;
		(void)gread(fd, 100, out, sizeof(out), &closed);
		if (closed)
			break;
	}
	close(fd);
	if (!closed)
		fail_msg("the server kept a dribbled header for %zu bytes (%zu ms)", sent, sent * 100);
	printf("dribbled header closed after %zu bytes (about %zu ms; deadline 1000 ms)\n", sent, sent * 100);
	gsrv_stop(&g);
}

/* The child's CPU time (user + system), in clock ticks. */
static uint64_t child_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	assert_non_null(p);
	/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	for (int field = 0; field < 13; field++) {
		char *e;

		p = strchr(p + 1, ' ');
		assert_non_null(p);
		if (field == 11)
			ut = strtoul(p + 1, &e, 10);
		else if (field == 12)
			st = strtoul(p + 1, &e, 10);
	}
	return (uint64_t)ut + st;
}

/* 400 half-sent requests against a server whose file limit is 256: a good
 * /api.php call from another address is still answered; the server does
 * not spin and its log stays short. */
static void test_flood_low_nofile(void **state)
{
	enum { N = 400 };
	static int fds[N];
	struct gsrv g;
	char req[512], out[4096];
	bool closed;
	int fd, st, opened = 0;
	uint64_t cpu0, cpu1, t0, t1;
	struct stat sb;

	(void)state;
	gsrv_start(&g, 256, 0);
	for (int i = 0; i < N; i++) {
		fds[i] = gconnect(&g, NULL);
		if (fds[i] >= 0) {
			opened++;
			if (write(fds[i], "GET /api.php?api_key=x HTTP/1.1\r\nHost: a\r\n", 42) < 0) {
				/* the server closed it already (over the per-peer cap) */
			}
		}
	}
	assert_true(opened > 256);
	usleep(300000);
	cpu0 = child_cpu(g.pid);
	t0 = now_mono_ms();
	fd = gconnect(&g, "127.0.0.2");
	assert_true(fd >= 0);
	snprintf(req, sizeof(req), "GET /api.php?api_key=%s&serial_no=2100000000 HTTP/1.1\r\nHost: a\r\n"
		 "Connection: close\r\n\r\n", g.key);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	st = gread(fd, 8000, out, sizeof(out), &closed);
	close(fd);
	usleep(1000000);
	cpu1 = child_cpu(g.pid);
	t1 = now_mono_ms();
	assert_int_equal(stat(g.log, &sb), 0);
	printf("flood: %d connections held open, good call answered %d; server CPU %.0f %% over %.1f s; log %lld "
	       "bytes\n", opened, st, 100.0 * (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) /
	       ((double)(t1 - t0) / 1000.0), (double)(t1 - t0) / 1000.0, (long long)sb.st_size);
	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	assert_int_equal(st, 200);
	/* generous: a busy accept loop is ~100 % of a core */
	assert_true((double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) < 0.5 * (double)(t1 - t0) / 1000.0);
	assert_true(sb.st_size < 64 * 1024);
	gsrv_stop(&g);
}

/* Every way a connection ends gives its slot back: with 4 slots, 40
 * connections ended in every way, then a good call is still answered (a
 * slot kept would pause accepting for good). */
static void test_slots_come_back(void **state)
{
	static const char *const reqs[] = {
		"GET /api.php?api_key=KEY&serial_no=2100000000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET /api.php?api_key=KEY&serial_no=2100000000 HTTP/1.0\r\n\r\n",
		"POST /api/v1/cards HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"POST /api/v1/cards HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",
		"GET /api.php?api_key=KEY HTTP/1.1\r\nHost: a\r\n", /* half a header: the deadline */
		"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n", /* keep-alive: the client closes */
		"",                                                /* connect and close */
	};
	struct gsrv g;
	char req[512], out[4096];
	bool closed;

	(void)state;
	gsrv_max_conns = 4;
	gsrv_start(&g, 0, 500);
	gsrv_max_conns = 0;
	for (int round = 0; round < 40; round++) {
		const char *r = reqs[round % (sizeof(reqs) / sizeof(reqs[0]))], *k = strstr(r, "KEY");
		int fd = gconnect(&g, NULL);

		assert_true(fd >= 0);
		if (k)
			snprintf(req, sizeof(req), "%.*s%s%s", (int)(k - r), r, g.key, k + 3);
		else
			snprintf(req, sizeof(req), "%s", r);
		if (req[0])
			assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
		(void)gread(fd, req[0] ? 1500 : 0, out, sizeof(out), &closed);
		close(fd);
	}
	snprintf(req, sizeof(req), "GET /api.php?api_key=%s&serial_no=2100000000 HTTP/1.1\r\nHost: a\r\n"
		 "Connection: close\r\n\r\n", g.key);
	assert_int_equal(graw(&g, req, out, sizeof(out), &closed), 200);
	gsrv_stop(&g);
}

/* The server raises its soft file limit to the hard one (systemd gives
 * 1,024 soft). */
static void test_nofile_raised(void **state)
{
	struct gsrv g;

	(void)state;
	gsrv_start(&g, 512 | SOFT_HALF, 0);
	assert_int_equal(g.nofile_after, 512);
	gsrv_stop(&g);
}

/* The gate's parser alone: a table of headers, with what it must find. */
static void test_head_parse_table(void **state)
{
	static const struct {
		const char *h;
		int r;
		const char *path, *key, *cookie;
		uint64_t cl;
	} cases[] = {
		{ "GET /api.php?a=1 HTTP/1.1\r\nHost: a\r\n\r\n", 0, "/api.php", NULL, NULL, 0 },
		{ "GET / HTTP/1.0\n\n", 0, "/", NULL, NULL, 0 },
		{ "POST /api/v1/cards HTTP/1.1\r\nX-API-Key:  k1 \r\nContent-Length: 12\r\n\r\n", 0, "/api/v1/cards", "k1",
		  NULL, 12 },
		{ "PUT /x HTTP/1.1\r\nAuthorization: Bearer   k2\r\nContent-Length: 0\r\n\r\n", 0, "/x", "k2", NULL, 0 },
		{ "PATCH /x HTTP/1.1\r\nX-API-Key: k3\r\nAuthorization: Bearer k4\r\n\r\n", 0, "/x", "k3", NULL, 0 },
		{ "GET /x HTTP/1.1\r\nCookie: castellan_session=ab\r\n\r\n", 0, "/x", NULL, "castellan_session=ab", 0 },
		{ "DELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, "/x", NULL, NULL, 0 },
		/* refused */
		{ "", -1, NULL, NULL, NULL, 0 },
		{ "GET / HTTP/1.1\r\n", -1, NULL, NULL, NULL, 0 },               /* no empty line */
		{ "GET / HTTP/1.1\r\nHost: a\r\n", -1, NULL, NULL, NULL, 0 },
		{ "GET / HTTP/1.1\r\n\r\nGET", -1, NULL, NULL, NULL, 0 },        /* bytes after the header */
		{ "GET /\r\n\r\n", -1, NULL, NULL, NULL, 0 },                    /* HTTP/0.9 */
		{ "GET / HTTP/2.0\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "GET  / HTTP/1.1\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ " GET / HTTP/1.1\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "GET / HTTP/1.1 \r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "POST / HTTP/1.1\r\nContent-Length: 1 1\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "HEAD / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "OPTIONS / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", -1, NULL, NULL, NULL, 0 },
		{ "GET / HTTP/1.1\r\nnocolon\r\n\r\n", -1, NULL, NULL, NULL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sms_http_head hd;
		int r = sms_http_head_parse(cases[i].h, strlen(cases[i].h), &hd);

		if (r != cases[i].r)
			fail_msg("case %zu: %d, expected %d", i, r, cases[i].r);
		if (r != 0)
			continue;
		assert_int_equal(hd.path_len, strlen(cases[i].path));
		assert_memory_equal(hd.path, cases[i].path, hd.path_len);
		assert_int_equal(hd.content_length, cases[i].cl);
		if (cases[i].key) {
			assert_non_null(hd.api_key);
			assert_int_equal(hd.api_key_len, strlen(cases[i].key));
			assert_memory_equal(hd.api_key, cases[i].key, hd.api_key_len);
		} else {
			assert_null(hd.api_key);
		}
		if (cases[i].cookie) {
			assert_int_equal(hd.cookie_len, strlen(cases[i].cookie));
			assert_memory_equal(hd.cookie, cases[i].cookie, hd.cookie_len);
		} else {
			assert_null(hd.cookie);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_parse_table),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_body_limits),
		cmocka_unit_test(test_header_deadline),
		cmocka_unit_test(test_flood_low_nofile),
		cmocka_unit_test(test_nofile_raised),
		cmocka_unit_test(test_slots_come_back),
	};

	return cmocka_run_group_tests_name("http_gate", tests, group_setup, NULL);
}
