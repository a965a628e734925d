/*
 * e2e_net.c - the harness's loopback network side: free ports, readiness
 * waits, and an HTTP/1.0 GET client for the head-end's APIs. See e2e.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "e2e.h"
#include "lib/cursor.h"
#include "lib/err.h"
#include "lib/util.h"

static int loopback_socket(uint16_t port, struct sockaddr_in *a)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

int e2e_free_port(uint16_t *port)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd = loopback_socket(0, &a);

	*port = 0;
	if (fd < 0)
		return CE_IO;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		close(fd);
		return CE_IO;
	}
	*port = ntohs(a.sin_port);
	close(fd);
	return 0;
}

bool e2e_port_open(uint16_t port)
{
	struct sockaddr_in a;
	int fd = loopback_socket(port, &a);
	bool ok;

	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

int e2e_wait_ready(pid_t pid, const char *file, const uint16_t *ports, size_t nports, unsigned timeout_ms)
{
	uint64_t t0 = now_mono_ms();

	for (;;) {
		struct stat st;
		bool ready = !file || stat(file, &st) == 0;

		for (size_t i = 0; ready && i < nports; i++)
			ready = e2e_port_open(ports[i]);
		if (ready)
			return 0;
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
			return CE_IO;
		if (now_mono_ms() - t0 >= timeout_ms)
			return CE_TIMEOUT;
		usleep(50 * 1000);
	}
}

/* "HTTP/1.x NNN ...\r\n...\r\n\r\nbody": the status (-1 if not an HTTP
 * status line) and the body's offset (len if there is no blank line). */
static int parse_response(const uint8_t *buf, size_t len, size_t *body)
{
	static const char proto[] = "HTTP/1.";
	struct cur c;
	uint8_t v = 0, sp = 0;
	const uint8_t *p;
	int st = 0;

	cur_init(&c, buf, len);
	p = cur_ptr(&c, sizeof(proto) - 1);
	if (!p || memcmp(p, proto, sizeof(proto) - 1) != 0)
		return -1;
	(void)cur_skip(&c, 1); /* minor version */
	(void)cur_u8(&c, &sp);
	for (int i = 0; i < 3; i++) {
		if (cur_u8(&c, &v) != 0 || v < '0' || v > '9')
			return -1;
		st = st * 10 + (v - '0');
	}
	if (sp != ' ')
		return -1;
	*body = len;
	for (size_t i = c.off; i + 4 <= len; i++) {
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			*body = i + 4;
			break;
		}
	}
	return st;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

int e2e_http(uint16_t port, const char *method, const char *path, const char *headers, const char *req_body,
	char *body, size_t cap)
{
	struct sockaddr_in a;
	char req[4096];
	uint8_t buf[16384];
	size_t got = 0, off = 0, blen = req_body ? strlen(req_body) : 0;
	ssize_t k;
	int fd, n, st;

	if (cap)
		body[0] = '\0';
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s", method, path, headers ? headers : "");
	if (n >= 0 && (size_t)n < sizeof(req) && req_body)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
			blen);
	if (n >= 0 && (size_t)n < sizeof(req))
		n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	if (n < 0 || (size_t)n >= sizeof(req))
		return -1;
	if ((fd = loopback_socket(port, &a)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || !write_all(fd, req, (size_t)n) ||
	    (blen && !write_all(fd, req_body, blen))) {
		close(fd);
		return -1;
	}
	while (got < sizeof(buf) && ((k = read(fd, buf + got, sizeof(buf) - got)) > 0 || (k < 0 && errno == EINTR)))
		if (k > 0)
			got += (size_t)k;
	close(fd);
	if ((st = parse_response(buf, got, &off)) < 0)
		return -1;
	if (cap)
		snprintf(body, cap, "%.*s", (int)(got - off), (const char *)buf + off);
	return st;
}

int e2e_http_get(uint16_t port, const char *path, char *body, size_t cap)
{
	return e2e_http(port, "GET", path, NULL, NULL, body, cap);
}
