/* test_metrics.c - the metrics registry (lib/metrics.h): counters, labels,
 * gauges and link changes, histogram buckets, the exact text of the
 * exposition (escaping, cumulative buckets), the series cap, concurrent
 * updates from several threads, reset; and the head-end's /metrics
 * allow-list rule (sms_http_metrics_peer_ok). The format is checked with a
 * real Prometheus parser by tests/headend/test_metrics_scrape.py. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/event.h>
#include "testutil.h"
#include "lib/metrics.h"
#include "sms/http.h"

static int reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

static char *render(void)
{
	char *t = NULL;
	size_t n = 0;

	assert_int_equal(metrics_render(&t, &n), 0);
	assert_int_equal(strlen(t), n);
	return t;
}

static void has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("missing from the exposition: '%s'", line);
}

static void test_counters_and_labels(void **state)
{
	char *t;

	(void)state;
	metric_inc(MET_ECM_REQUESTS);
	metric_add(MET_ECM_REQUESTS, NULL, NULL, 41);
	metric_add_code(MET_ECM_ERRORS, 0x000B, "unknown_ECM_stream_id");
	metric_add_code(MET_ECM_ERRORS, 0x000B, "unknown_ECM_stream_id");
	metric_add_code(MET_ECM_ERRORS, 0x7000, "unknown_error");
	metric_add(MET_API_REQUESTS, "/api.php", "200", 3);
	assert_int_equal(metric_value(MET_ECM_REQUESTS, NULL, NULL), 42);
	assert_int_equal(metric_value(MET_ECM_ERRORS, "0x000B", "unknown_ECM_stream_id"), 2);
	assert_int_equal(metric_value(MET_API_REQUESTS, "/api.php", "404"), 0);
	t = render();
	has(t, "# HELP castellan_ecm_requests_total ");
	has(t, "# TYPE castellan_ecm_requests_total counter\ncastellan_ecm_requests_total 42\n");
	has(t, "castellan_ecm_errors_total{code=\"0x000B\",error=\"unknown_ECM_stream_id\"} 2\n");
	has(t, "castellan_ecm_errors_total{code=\"0x7000\",error=\"unknown_error\"} 1\n");
	has(t, "castellan_api_requests_total{route=\"/api.php\",status=\"200\"} 3\n");
	/* Unlabelled families are there at 0 before any update. */
	has(t, "castellan_ecmg_failovers_total 0\n");
	has(t, "castellan_scrambled_packets_total 0\n");
	free(t);
	metrics_reset();
	assert_int_equal(metric_value(MET_ECM_REQUESTS, NULL, NULL), 0);
	assert_int_equal(metric_value(MET_ECM_ERRORS, "0x000B", "unknown_ECM_stream_id"), 0);
	t = render();
	assert_null(strstr(t, "castellan_ecm_errors_total{"));
	free(t);
}

static void test_gauges_links_escaping(void **state)
{
	char *t;

	(void)state;
	metric_link("emmg", "mux.example:4000", 0);
	metric_link("emmg", "mux.example:4000", 1);
	metric_link("emmg", "mux.example:4000", 1); /* no change: not counted */
	metric_link("emmg", "mux.example:4000", 0);
	metric_link_id("mux", 0x4ADC0001, 1);
	assert_int_equal(metric_value(MET_LINK_UP, "emmg", "mux.example:4000"), 0);
	assert_int_equal(metric_value(MET_LINK_CHANGES, "emmg", "up"), 1);
	assert_int_equal(metric_value(MET_LINK_CHANGES, "emmg", "down"), 1);
	metric_set(MET_LINK_UP, "ecmg", "a\"b\\c\nd", 1);
	t = render();
	has(t, "# TYPE castellan_link_up gauge\n");
	has(t, "castellan_link_up{kind=\"emmg\",peer=\"mux.example:4000\"} 0\n");
	has(t, "castellan_link_up{kind=\"mux\",peer=\"0x4ADC0001\"} 1\n");
	has(t, "castellan_link_up{kind=\"ecmg\",peer=\"a\\\"b\\\\c\\nd\"} 1\n");
	free(t);
}

static void test_histogram(void **state)
{
	char *t;

	(void)state;
	metric_observe_us(MET_ECM_DURATION, NULL, NULL, 50);      /* <= 0.0001 */
	metric_observe_us(MET_ECM_DURATION, NULL, NULL, 100);     /* <= 0.0001: bounds are inclusive */
	metric_observe_us(MET_ECM_DURATION, NULL, NULL, 3000);    /* <= 0.005 */
	metric_observe_us(MET_ECM_DURATION, NULL, NULL, 2000000); /* over 1 s: +Inf only */
	metric_observe_us(MET_API_DURATION, "/api/v1/cards", NULL, 700);
	t = render();
	has(t, "# TYPE castellan_ecm_request_duration_seconds histogram\n");
	has(t, "castellan_ecm_request_duration_seconds_bucket{le=\"0.000100\"} 2\n");
	has(t, "castellan_ecm_request_duration_seconds_bucket{le=\"0.002500\"} 2\n");
	has(t, "castellan_ecm_request_duration_seconds_bucket{le=\"0.005000\"} 3\n");
	has(t, "castellan_ecm_request_duration_seconds_bucket{le=\"1.000000\"} 3\n");
	has(t, "castellan_ecm_request_duration_seconds_bucket{le=\"+Inf\"} 4\n");
	has(t, "castellan_ecm_request_duration_seconds_sum 2.003150\n");
	has(t, "castellan_ecm_request_duration_seconds_count 4\n");
	has(t, "castellan_api_request_duration_seconds_bucket{route=\"/api/v1/cards\",le=\"0.001000\"} 1\n");
	has(t, "castellan_api_request_duration_seconds_count{route=\"/api/v1/cards\"} 1\n");
	/* A family without observations still shows its buckets at 0. */
	has(t, "castellan_carousel_cycle_seconds_bucket{le=\"+Inf\"} 0\n");
	free(t);
}

static void test_series_cap(void **state)
{
	char v[16];

	(void)state;
	for (int i = 0; i < METRICS_SERIES_MAX + 10; i++) {
		snprintf(v, sizeof(v), "%d", i);
		metric_add(MET_API_REQUESTS, "/x", v, 1);
	}
	assert_int_equal(metric_value(MET_API_REQUESTS, "/x", "0"), 1);
	snprintf(v, sizeof(v), "%d", METRICS_SERIES_MAX - 1);
	assert_int_equal(metric_value(MET_API_REQUESTS, "/x", v), 1);
	snprintf(v, sizeof(v), "%d", METRICS_SERIES_MAX);
	assert_int_equal(metric_value(MET_API_REQUESTS, "/x", v), 0);
	assert_int_equal(metric_value(MET_DROPPED_SERIES, NULL, NULL), 10);
}

#define THREADS 4
#define PER_THREAD 200000

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metric_inc(MET_SCRAMBLED_PKTS);
		if (i % 1000 == 0)
			metric_add(MET_API_REQUESTS, "/api.php", i % 2000 ? "400" : "200", 1);
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[THREADS];

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	/* Exact: no update lost, and one series per label set however many threads created it. */
	assert_int_equal(metric_value(MET_SCRAMBLED_PKTS, NULL, NULL), (uint64_t)THREADS * PER_THREAD);
	assert_int_equal(metric_value(MET_API_REQUESTS, "/api.php", "200") +
			 metric_value(MET_API_REQUESTS, "/api.php", "400"), THREADS * (PER_THREAD / 1000));
}

static struct sockaddr_storage sa_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static bool peer_ok(const struct sms_http *h, const char *ip)
{
	struct sockaddr_storage ss = sa_of(ip);

	return sms_http_metrics_peer_ok(h, (const struct sockaddr *)&ss);
}

static void test_allow_list(void **state)
{
	static const char *const bad[] = {
		"10.0.0.0/33", "fd00::/129", "10.0.0.1,", ",10.0.0.1", "10.0.0.1,,10.0.0.2", "host.example",
		"10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "1.2.3.4/8/8",
		"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", /* not addresses either, but over the count first */
	};
	struct event_base *base = event_base_new();
	struct sms_store *st = NULL;
	struct sms_http *h = NULL;
	char db[256];

	(void)state;
	snprintf(db, sizeof(db), "/tmp/castellan-test-metrics-%d.db", (int)getpid());
	unlink(db);
	assert_non_null(base);
	assert_int_equal(sms_store_open(db, &st), 0);
	assert_int_equal(sms_http_new(base, st, "127.0.0.1:0", &h), 0);
	/* Loopback only by default. */
	assert_true(peer_ok(h, "127.0.0.1"));
	assert_true(peer_ok(h, "127.9.9.9"));
	assert_true(peer_ok(h, "::1"));
	assert_true(peer_ok(h, "::ffff:127.0.0.1"));
	assert_false(peer_ok(h, "10.1.2.3"));
	assert_false(peer_ok(h, "fd00::5"));
	assert_false(sms_http_metrics_peer_ok(h, NULL));
	assert_int_equal(sms_http_set_metrics_allow(h, "10.0.0.0/8,192.168.1.7,fd00::/8,172.16.0.0/12"), 0);
	assert_true(peer_ok(h, "10.1.2.3"));
	assert_true(peer_ok(h, "::ffff:10.200.0.1"));
	assert_false(peer_ok(h, "11.0.0.1"));
	assert_true(peer_ok(h, "192.168.1.7"));
	assert_false(peer_ok(h, "192.168.1.8"));
	assert_true(peer_ok(h, "172.31.255.255"));
	assert_false(peer_ok(h, "172.32.0.0"));
	assert_true(peer_ok(h, "fd12::1"));
	assert_false(peer_ok(h, "fe80::1"));
	/* A bad list changes nothing. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sms_http_set_metrics_allow(h, bad[i]) != CE_ARG)
			fail_msg("allow-list '%s' accepted", bad[i]);
	assert_true(peer_ok(h, "10.1.2.3"));
	assert_int_equal(sms_http_set_metrics_allow(h, "0.0.0.0/0"), 0);
	assert_true(peer_ok(h, "8.8.8.8"));
	assert_false(peer_ok(h, "2001:db8::1")); /* an IPv4 prefix says nothing of IPv6 */
	assert_int_equal(sms_http_set_metrics_allow(h, ""), 0);
	assert_false(peer_ok(h, "8.8.8.8"));
	sms_http_free(h);
	sms_store_close(st);
	event_base_free(base);
	unlink(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_counters_and_labels, reset),
		cmocka_unit_test_setup(test_gauges_links_escaping, reset),
		cmocka_unit_test_setup(test_histogram, reset),
		cmocka_unit_test_setup(test_series_cap, reset),
		cmocka_unit_test_setup(test_threads, reset),
		cmocka_unit_test(test_allow_list),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
