/*
 * test_e2e.c - the end-to-end harness itself (e2e.h): the HTTP client on
 * a table of answers, good and bad; ports and readiness; processes and
 * their logs; the TS judge, the service scan and the watch on built
 * streams whose every packet's fate is known.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "e2e.h"
#include "lib/err.h"
#include "ts/ts.h"

/* A one-connection server on a free loopback port: reads the request,
 * writes answer, closes. */
static pid_t serve_once(const char *answer, uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t pid;

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(listen(fd, 1), 0);
	*port = ntohs(a.sin_port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char req[4096];
		int c = accept(fd, NULL, NULL);

		signal(SIGPIPE, SIG_IGN); /* a client that only connects and closes */
		if (c >= 0) {
			ssize_t k = read(c, req, sizeof(req));

			k = write(c, answer, strlen(answer));
			(void)k;
			close(c);
		}
		_exit(0);
	}
	close(fd);
	return pid;
}

static void test_http_get(void **state)
{
	static const struct {
		const char *answer;
		int status;
		const char *body;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nOK:1", 200, "OK:1" },
		{ "HTTP/1.0 404 Not Found\r\n\r\n{\"error\":1}", 404, "{\"error\":1}" },
		{ "HTTP/1.1 200 OK\r\n", 200, "" },        /* no blank line: no body */
		{ "HTTP/1.1 20x OK\r\n\r\n", -1, "" },      /* not a status */
		{ "HTTP/1.1 2", -1, "" },                   /* cut in the status */
		{ "HTTP/1.1200 OK\r\n\r\n", -1, "" },       /* no space */
		{ "HTTX/1.1 200 OK\r\n\r\n", -1, "" },      /* not HTTP */
		{ "garbage", -1, "" },
		{ "", -1, "" },                             /* closed without a word */
	};
	char body[64];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pid_t pid = serve_once(cases[i].answer, &port);
		int st = e2e_http_get(port, "/api.php?x=1", body, sizeof(body));

		if (st != cases[i].status)
			fprintf(stderr, "case %zu: status %d, want %d\n", i, st, cases[i].status);
		assert_int_equal(st, cases[i].status);
		if (st >= 0)
			assert_string_equal(body, cases[i].body);
		assert_int_equal(e2e_wait(pid), 0);
	}
	/* a body longer than the caller's buffer is cut, NUL-terminated */
	{
		pid_t pid = serve_once("HTTP/1.1 200 OK\r\n\r\n0123456789", &port);
		char small[5];

		assert_int_equal(e2e_http_get(port, "/", small, sizeof(small)), 200);
		assert_string_equal(small, "0123");
		assert_int_equal(e2e_wait(pid), 0);
	}
	/* nobody listening */
	assert_int_equal(e2e_free_port(&port), 0);
	assert_int_equal(e2e_http_get(port, "/", body, sizeof(body)), -1);
}

/* A one-connection server answering 200 with the whole request it read
 * (headers and a Content-Length body) as the body. */
static pid_t serve_echo(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t pid;

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(listen(fd, 1), 0);
	*port = ntohs(a.sin_port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const char hdr[] = "HTTP/1.0 200 OK\r\n\r\n";
		char req[8192];
		size_t got = 0, want = 0;
		int c = accept(fd, NULL, NULL);
		ssize_t k;

		if (c < 0)
			_exit(1);
		while (got < sizeof(req) - 1 && (k = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
			char *end, *cl;

			got += (size_t)k;
			req[got] = '\0';
			if (!(end = strstr(req, "\r\n\r\n")))
				continue;
			want = (size_t)(end + 4 - req);
			if ((cl = strstr(req, "Content-Length: ")) && cl < end) {
				char num[24];
				uint64_t v = 0;

				snprintf(num, sizeof(num), "%.*s", (int)strcspn(cl + 16, "\r"), cl + 16);
				if (parse_u64(num, 1 << 20, &v) != 0)
					_exit(1);
				want += (size_t)v;
			}
			if (got >= want)
				break;
		}
		k = write(c, hdr, sizeof(hdr) - 1);
		k = write(c, req, got);
		(void)k;
		close(c);
		_exit(0);
	}
	close(fd);
	return pid;
}

static void test_http_request(void **state)
{
	static const char body[] = "{\"serial_no\":\"2100000001\"}";
	char got[4096], want[128];
	uint16_t port;
	pid_t pid;

	(void)state;
	pid = serve_echo(&port);
	assert_int_equal(e2e_http(port, "POST", "/api/v1/cards", "X-API-Key: k\r\n", body, got, sizeof(got)), 200);
	assert_int_equal(strncmp(got, "POST /api/v1/cards HTTP/1.0\r\nHost: 127.0.0.1\r\n", 46), 0);
	assert_non_null(strstr(got, "\r\nX-API-Key: k\r\n"));
	assert_non_null(strstr(got, "\r\nContent-Type: application/json\r\n"));
	snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", strlen(body));
	assert_non_null(strstr(got, want));
	snprintf(want, sizeof(want), "\r\n\r\n%s", body);
	assert_non_null(strstr(got, want)); /* the body after the blank line, whole */
	assert_int_equal(e2e_wait(pid), 0);
	/* no body: no Content-Length */
	pid = serve_echo(&port);
	assert_int_equal(e2e_http(port, "DELETE", "/x", NULL, NULL, got, sizeof(got)), 200);
	assert_int_equal(strncmp(got, "DELETE /x HTTP/1.0\r\n", 20), 0);
	assert_null(strstr(got, "Content-Length"));
	assert_int_equal(e2e_wait(pid), 0);
}

/* The head-end through the harness: started on free ports, the admin key
 * read, the REST API answering with it and refusing without it. */
static void test_headend(void **state)
{
	struct e2e e;
	struct e2e_headend h;
	char ks[1024], pf[1024], body[4096], hdr[128];

	(void)state;
	assert_int_equal(e2e_init(&e, "castellan-te2e", NULL, NULL), 0);
	assert_int_equal(e2e_passphrase(&e, "passphrase", NULL), 0);
	assert_int_equal(E2E_RUN(&e, "keys.log", "keys", "init", "--out", e2e_path(&e, "ks", ks, sizeof(ks)),
				 "--ca-system-id", "0x4ADC", "--passphrase-file", e2e_path(&e, "passphrase", pf, sizeof(pf))),
		0);
	assert_int_equal(e2e_headend_start(&e, "ks", "passphrase", (char *const[]){ "--mux", "off", NULL }, 30000, &h), 0);
	assert_true(h.pid > 0);
	assert_int_equal(strlen(h.admin_key), 64);
	assert_true(e2e_port_open(h.ecmg_port));
	snprintf(hdr, sizeof(hdr), "X-API-Key: %s\r\n", h.admin_key);
	assert_int_equal(e2e_http(h.http_port, "GET", "/api/v1/cards", hdr, NULL, body, sizeof(body)), 200);
	assert_int_equal(e2e_http(h.http_port, "GET", "/api/v1/cards", NULL, NULL, body, sizeof(body)), 401);
	e2e_headend_stop(&h);
	assert_int_equal(h.pid, 0);
	assert_false(e2e_port_open(h.http_port));
	assert_int_equal(h.admin_key[0], 0);
	e2e_finish(&e, true);
}

static void test_ports_and_ready(void **state)
{
	struct e2e e;
	uint16_t port = 0;
	char ready[1024];
	pid_t pid;

	(void)state;
	assert_int_equal(e2e_free_port(&port), 0);
	assert_true(port > 0);
	assert_false(e2e_port_open(port));
	pid = serve_once("HTTP/1.1 200 OK\r\n\r\n", &port);
	assert_true(e2e_port_open(port)); /* listening: connect succeeds (the backlog holds it) */
	assert_int_equal(e2e_wait_ready(pid, NULL, &port, 1, 5000), 0);
	assert_int_equal(e2e_wait(pid), 0);
	/* a process that exits before it is ready: CE_IO, not a wait to the end */
	assert_int_equal(e2e_init(&e, "castellan-te2e", NULL, NULL), 0);
	{
		char *argv[] = { "/bin/true", NULL };

		assert_int_equal(e2e_free_port(&port), 0);
		pid = e2e_spawn(&e, "true.log", argv, -1, -1);
		assert_true(pid > 0);
		assert_int_equal(e2e_wait_ready(pid, NULL, &port, 1, 60000), CE_IO);
	}
	/* a ready file that never comes: the bound */
	assert_int_equal(e2e_wait_ready(0, e2e_path(&e, "never", ready, sizeof(ready)), NULL, 0, 100), CE_TIMEOUT);
	/* and one that is there */
	assert_int_equal(file_write_atomic(e2e_path(&e, "ready", ready, sizeof(ready)), "1", 1, 0600), 0);
	assert_int_equal(e2e_wait_ready(0, ready, NULL, 0, 100), 0);
	e2e_finish(&e, true);
}

static bool file_has(const char *path, const char *needle)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	bool has;

	if (file_read_all(path, 1 << 20, &buf, &len) != 0)
		return false;
	has = memmem(buf, len, needle, strlen(needle)) != NULL;
	free(buf);
	return has;
}

static void test_processes_and_logs(void **state)
{
	struct e2e e;
	char log[1024], dir[1024], pass[65];
	struct stat st;
	pid_t pid;

	(void)state;
	assert_int_equal(e2e_init(&e, "castellan-te2e", NULL, "/nonexistent-castellan-dir"), CE_NOT_FOUND);
	assert_int_equal(e2e_init(&e, "castellan-te2e", NULL, NULL), 0);
	snprintf(dir, sizeof(dir), "%s", e.dir);
	/* the castellan binary, its output in the log */
	assert_int_equal(E2E_RUN(&e, "version.log", "--version"), 0);
	assert_true(file_has(e2e_path(&e, "version.log", log, sizeof(log)), "castellan "));
	assert_int_equal(E2E_RUN(&e, "bad.log", "no-such-command"), CE_INTERNAL);
	assert_true(file_has(e2e_path(&e, "bad.log", log, sizeof(log)), "unknown command"));
	/* exit statuses; a stopped process is reaped */
	{
		char *argv[] = { "castellan", "no-such-command", NULL };
		char *sleeper[] = { "/bin/sleep", "600", NULL };

		assert_int_equal(e2e_wait(e2e_spawn(&e, "bad.log", argv, -1, -1)), 2);
		pid = e2e_spawn(&e, "sleep.log", sleeper, -1, -1);
		assert_true(pid > 0);
		e2e_stop(&pid, 5000);
		assert_int_equal(pid, 0);
	}
	/* the passphrase file: 64 hex chars, 0600 */
	assert_int_equal(e2e_passphrase(&e, "pass", pass), 0);
	assert_int_equal(strlen(pass), 64);
	assert_int_equal(stat(e2e_path(&e, "pass", log, sizeof(log)), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(file_has(log, pass));
	/* a failed run keeps its work dir; a passed one removes it */
	e2e_finish(&e, false);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(e2e_init(&e, "castellan-te2e", NULL, dir), 0);
	assert_false(e.own_dir);
	e2e_finish(&e, true);
	assert_int_equal(stat(dir, &st), 0); /* not ours: kept */
	assert_int_equal(tu_run("rm -rf '%s'", dir), 0);
	assert_int_equal(e2e_init(&e, "castellan-te2e", NULL, NULL), 0);
	snprintf(dir, sizeof(dir), "%s", e.dir);
	assert_int_equal(E2E_RUN(&e, "version.log", "--version"), 0);
	e2e_finish(&e, true);
	assert_int_not_equal(stat(dir, &st), 0);
}

/* A packet on pid: payload filled with fill, scrambling bits sc. */
static void pkt(uint8_t *p, uint16_t pid, uint8_t sc, uint8_t fill)
{
	memset(p, fill, TS_PACKET_BYTES);
	p[0] = 0x47;
	p[1] = (uint8_t)(pid >> 8);
	p[2] = (uint8_t)pid;
	p[3] = (uint8_t)(sc << 6 | 0x10);
}

static void test_judge(void **state)
{
	/* clear: 8 packets on 0x100 and 4 on 0x200; the scrambler scrambles
	 * 0x100's packets 1-6 and 0x200's 0-3; the box gets 0x100's 1-3 right,
	 * leaves 4-5, writes 6 wrong; 0x200's all right */
	struct e2e_ts clear = { calloc(12, TS_PACKET_BYTES), 12 }, scr = { calloc(12, TS_PACKET_BYTES), 12 };
	struct e2e_ts box = { calloc(12, TS_PACKET_BYTES), 12 }, shorter = { box.buf, 11 };
	struct e2e_judge j;
	uint16_t p100 = 0x100, p200 = 0x200;

	(void)state;
	for (int i = 0; i < 12; i++) {
		uint16_t pid = i < 8 ? 0x100 : 0x200;
		bool scrambled = i < 8 ? (i >= 1 && i <= 6) : true;

		pkt(clear.buf + i * TS_PACKET_BYTES, pid, 0, (uint8_t)i);
		pkt(scr.buf + i * TS_PACKET_BYTES, pid, scrambled ? TS_SC_EVEN : 0, scrambled ? (uint8_t)(0x80 + i) : (uint8_t)i);
		if (i == 4 || i == 5)
			memcpy(box.buf + i * TS_PACKET_BYTES, scr.buf + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
		else if (i == 6)
			pkt(box.buf + i * TS_PACKET_BYTES, pid, 0, 0xEE);
		else
			memcpy(box.buf + i * TS_PACKET_BYTES, clear.buf + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
	}
	assert_int_equal(e2e_judge(&clear, &scr, &box, NULL, 0, &j), 0);
	assert_int_equal(j.packets, 12);
	assert_int_equal(j.same, 9);
	assert_int_equal(j.scrambled, 10);
	assert_int_equal(j.right, 7);
	assert_int_equal(j.left, 2);
	assert_int_equal(j.wrong, 1);
	assert_int_equal(j.pids_all_right, 1); /* 0x200 */
	assert_int_equal(j.pids_all_left, 0);
	assert_false(e2e_judge_clear(&j));
	assert_false(e2e_judge_refused(&j));
	assert_int_equal(e2e_judge(&clear, &scr, &box, &p200, 1, &j), 0);
	assert_int_equal(j.packets, 4);
	assert_true(e2e_judge_clear(&j));
	assert_int_equal(e2e_judge(&clear, &scr, &box, &p100, 1, &j), 0);
	assert_int_equal(j.right, 3);
	assert_int_equal(j.wrong, 1);
	/* a box that left everything scrambled: refused */
	assert_int_equal(e2e_judge(&clear, &scr, &scr, &p100, 1, &j), 0);
	assert_true(e2e_judge_refused(&j));
	assert_false(e2e_judge_clear(&j));
	assert_int_equal(j.pids_all_left, 1);
	/* a box output of another length than its input: refused */
	assert_int_equal(e2e_judge(&clear, &scr, &shorter, NULL, 0, &j), CE_FORMAT);
	/* nothing scrambled: neither clear nor refused (the scrambler did nothing) */
	assert_int_equal(e2e_judge(&clear, &clear, &clear, NULL, 0, &j), 0);
	assert_int_equal(j.scrambled, 0);
	assert_false(e2e_judge_clear(&j));
	assert_false(e2e_judge_refused(&j));
	free(clear.buf);
	free(scr.buf);
	free(box.buf);
}

static void test_ts_files(void **state)
{
	struct e2e e;
	struct e2e_ts t, none;
	struct e2e_svc svc[8];
	struct e2e_watch w;
	char path[1024];
	uint8_t junk[TS_PACKET_BYTES + 10];
	size_t n = 0, ok, bad;

	(void)state;
	/* the demo's input: services 101 and 102, each with its components */
	assert_int_equal(e2e_ts_load(tu_testdata("ts-clear-2svc.ts"), &t), 0);
	assert_true(t.n > 1000);
	assert_int_equal(e2e_services(&t, 0, svc, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(svc[0].program, 101);
	assert_int_equal(svc[1].program, 102);
	assert_true(svc[0].npids >= 1 && svc[1].npids >= 1);
	assert_int_equal(e2e_services(&t, 101, svc, 8, &n), 0); /* skip a program */
	assert_int_equal(n, 1);
	assert_int_equal(svc[0].program, 102);
	assert_true(e2e_pcr_span_ms(&t) > 0);
	/* bad files: missing, a partial packet, no PAT */
	assert_int_equal(e2e_init(&e, "castellan-te2e", NULL, NULL), 0);
	assert_int_not_equal(e2e_ts_load(e2e_path(&e, "missing.ts", path, sizeof(path)), &none), 0);
	memset(junk, 0x47, sizeof(junk));
	assert_int_equal(file_write_atomic(e2e_path(&e, "partial.ts", path, sizeof(path)), junk, sizeof(junk), 0600), 0);
	assert_int_equal(e2e_ts_load(path, &none), CE_FORMAT);
	assert_null(none.buf);
	pkt(junk, 0x100, 0, 1);
	none.buf = junk;
	none.n = 1;
	assert_int_equal(e2e_services(&none, 0, svc, 8, &n), CE_FORMAT);
	/* the watch: the clear file itself is all ok; a scrambled copy none */
	assert_int_equal(file_write_atomic(e2e_path(&e, "box.ts", path, sizeof(path)), t.buf, t.n * TS_PACKET_BYTES, 0600), 0);
	assert_int_equal(e2e_services(&t, 0, svc, 8, &n), 0);
	assert_int_equal(e2e_watch_init(&w, path, &t, svc[0].pids[0]), 0);
	e2e_watch_look(&w, &ok, &bad);
	assert_true(ok > 0);
	assert_int_equal(bad, 0);
	e2e_watch_look(&w, &ok, &bad); /* nothing new */
	assert_int_equal(ok + bad, 0);
	e2e_watch_free(&w);
	for (size_t i = 0; i < t.n; i++) {
		uint8_t *p = t.buf + i * TS_PACKET_BYTES;

		if ((((p[1] & 0x1F) << 8) | p[2]) == svc[0].pids[0])
			memset(p + 4, 0xA5, TS_PACKET_BYTES - 4); /* payload not the input's */
	}
	assert_int_equal(file_write_atomic(path, t.buf, t.n * TS_PACKET_BYTES, 0600), 0);
	{
		struct e2e_ts orig;

		assert_int_equal(e2e_ts_load(tu_testdata("ts-clear-2svc.ts"), &orig), 0);
		assert_int_equal(e2e_watch_init(&w, path, &orig, svc[0].pids[0]), 0);
		e2e_watch_look(&w, &ok, &bad);
		assert_int_equal(ok, 0);
		assert_true(bad > 0);
		assert_true(w.garbage > 0); /* marked clear, not the input's */
		e2e_watch_free(&w);
		e2e_ts_free(&orig);
	}
	e2e_ts_free(&t);
	e2e_finish(&e, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_get),
		cmocka_unit_test(test_http_request),
		cmocka_unit_test(test_headend),
		cmocka_unit_test(test_ports_and_ready),
		cmocka_unit_test(test_processes_and_logs),
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_ts_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
