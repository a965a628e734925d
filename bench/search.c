/*
 * bench/search.c - the SMS text search (issue 16 item 13), by hand
 * (bench/search.sh drives it; not run by the tests).
 *
 *   bench_search query URI REPEAT TEXT...
 *       each TEXT as sms_card_search(SMS_SEARCH_ANY, limit 50) on the store
 *       at URI, REPEAT times: "text<TAB>cards<TAB>candidates<TAB>median ms
 *       <TAB>max ms" (first run included in max: a cold cache shows there).
 *   bench_search api PORT KEY SERIAL SECONDS SEARCHERS PATH
 *       one keep-alive connection sends GET /api.php?api_key=KEY&serial_no=
 *       SERIAL back to back for SECONDS while SEARCHERS threads each send
 *       GET PATH (a REST search, X-API-Key KEY) back to back on their own
 *       connections: "api n median_ms p99_ms max_ms | searches n median_ms
 *       max_ms statuses".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "lib/util.h"
#include "sms/store.h"

/* A decimal argument (1..1e9), -1 if not one. */
static int num_arg(const char *s)
{
	uint64_t v = 0;

	return parse_u64(s, 1000000000, &v) == 0 ? (int)v : -1;
}

/* Leading decimal digits of p (after spaces), as an HTTP header value. */
static size_t leading_num(const char *p)
{
	size_t v = 0;

	while (*p == ' ')
		p++;
	while (*p >= '0' && *p <= '9' && v < ((size_t)1 << 40))
		v = v * 10 + (size_t)(*p++ - '0');
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *us, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(us, n, sizeof(*us), cmp_u64);
	return (double)us[(size_t)(p * (double)(n - 1))] / 1000.0;
}

static int count_card(void *ctx, const struct sms_card *c)
{
	(void)c;
	++*(size_t *)ctx;
	return 0;
}

static int do_query(int argc, char **argv)
{
	struct sms_store *s = NULL;
	int repeat = num_arg(argv[3]);

	if (repeat < 1 || sms_store_open(argv[2], &s) != 0)
		return 1;
	for (int i = 4; i < argc; i++) {
		uint64_t us[1000];
		size_t cards = 0, cand = 0, n = 0;
		struct sms_card_filter f = { .state = -1 };
		double mx;

		for (int k = 0; k < repeat && k < 1000; k++) {
			uint64_t t0 = now_mono_us();
			int r = sms_card_search(s, &f, SMS_SEARCH_ANY, argv[i], 0, 50, count_card, &cards, &n);

			us[k] = now_mono_us() - t0;
			if (r != 0) {
				fprintf(stderr, "%s: %s\n", argv[i], err_str(r));
				break;
			}
		}
		if (sms_search_candidates(s, SMS_SEARCH_ANY, argv[i], 100000000, &cand) != 0)
			cand = 0;
		mx = pct_ms(us, (size_t)(repeat < 1000 ? repeat : 1000), 1.0);
		printf("%s\t%zu\t%zu\t%.2f\t%.2f\n", argv[i], n, cand, pct_ms(us, (size_t)(repeat < 1000 ? repeat : 1000), 0.5),
		       mx);
	}
	sms_store_close(s);
	return 0;
}

/* ---- HTTP --------------------------------------------------------------- */

static int port;
static const char *key;
static atomic_bool stop_all;

static int conn_open(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* One request on fd, its whole answer read (Content-Length); the status,
 * or -1 (the connection is then closed and reopened by the caller). */
static int http_once(int fd, const char *req, size_t len, char *buf, size_t cap)
{
	size_t got = 0, body = 0, hlen = 0;
	const char *e, *cl;

	if (write(fd, req, len) != (ssize_t)len)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		if (!hlen && (e = strstr(buf, "\r\n\r\n")) != NULL) {
			hlen = (size_t)(e - buf) + 4;
			cl = strcasestr(buf, "\r\nContent-Length:");
			body = cl && cl < e ? leading_num(cl + 17) : 0;
		}
		if (hlen && got >= hlen + body)
			return (int)leading_num(buf + 9);
		if (got + 1 >= cap)
			return -1;
	}
}

struct searcher {
	pthread_t t;
	const char *path;
	uint64_t us[100000];
	size_t n;
	unsigned ok, busy, timeout, other;
};

static void *search_loop(void *arg)
{
	struct searcher *s = arg;
	char req[2048], *buf = malloc(1 << 22);
	int fd = conn_open(), len;

	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: b\r\nX-API-Key: %s\r\n\r\n", s->path, key);
	while (!atomic_load(&stop_all) && buf) {
		uint64_t t0 = now_mono_us();
		int st = fd >= 0 ? http_once(fd, req, (size_t)len, buf, 1 << 22) : -1;

		if (st < 0) {
			if (fd >= 0)
				close(fd);
			fd = conn_open();
			s->other++;
			continue;
		}
		if (s->n < 100000)
			s->us[s->n++] = now_mono_us() - t0;
		if (st == 200)
			s->ok++;
		else if (st == 503 && strstr(buf, "search_busy"))
			s->busy++;
		else if (st == 503)
			s->timeout++;
		else
			s->other++;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int do_api(int argc, char **argv)
{
	static uint64_t us[4000000];
	int seconds, nsearch, fd, len;
	struct searcher *ss;
	char req[512], buf[65536];
	size_t n = 0, bad = 0, sn = 0;
	uint64_t end;

	if (argc < 8)
		return 2;
	port = num_arg(argv[2]);
	key = argv[3];
	seconds = num_arg(argv[5]);
	nsearch = num_arg(argv[6]) < 0 ? 0 : num_arg(argv[6]);
	if (port <= 0 || seconds <= 0)
		return 2;
	ss = calloc((size_t)(nsearch > 0 ? nsearch : 1), sizeof(*ss));
	for (int i = 0; i < nsearch; i++) {
		ss[i].path = argv[7];
		pthread_create(&ss[i].t, NULL, search_loop, &ss[i]);
	}
	if (nsearch)
		usleep(300000); /* the searches are going */
	len = snprintf(req, sizeof(req), "GET /api.php?api_key=%s&serial_no=%s HTTP/1.1\r\nHost: b\r\n\r\n", key, argv[4]);
	fd = conn_open();
	end = now_mono_ms() + (uint64_t)seconds * 1000;
	while (now_mono_ms() < end && fd >= 0 && n < 4000000) {
		uint64_t t0 = now_mono_us();
		int st = http_once(fd, req, (size_t)len, buf, sizeof(buf));

		us[n++] = now_mono_us() - t0;
		if (st != 200) {
			bad++;
			close(fd);
			fd = conn_open();
		}
	}
	if (fd >= 0)
		close(fd);
	atomic_store(&stop_all, true);
	printf("api %zu median %.3f p99 %.3f max %.3f bad %zu", n, pct_ms(us, n, 0.5), pct_ms(us, n, 0.99),
	       pct_ms(us, n, 1.0), bad);
	{
		uint64_t *all = calloc(100000 * (size_t)(nsearch ? nsearch : 1), sizeof(*all));
		unsigned ok = 0, busy = 0, to = 0, other = 0;

		for (int i = 0; i < nsearch; i++) {
			pthread_join(ss[i].t, NULL);
			memcpy(all + sn, ss[i].us, ss[i].n * sizeof(*all));
			sn += ss[i].n;
			ok += ss[i].ok;
			busy += ss[i].busy;
			to += ss[i].timeout;
			other += ss[i].other;
		}
		if (nsearch)
			printf(" | searches %zu median %.1f max %.1f ok %u busy %u timeout %u other %u", sn,
			       pct_ms(all, sn, 0.5), pct_ms(all, sn, 1.0), ok, busy, to, other);
		free(all);
	}
	printf("\n");
	free(ss);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "query") == 0)
		return do_query(argc, argv);
	if (argc >= 8 && strcmp(argv[1], "api") == 0)
		return do_api(argc, argv);
	fprintf(stderr, "usage: bench_search query URI REPEAT TEXT... | api PORT KEY SERIAL SECONDS SEARCHERS PATH\n");
	return 2;
}
