/*
 * test_emmg.c - tests of the EMMG client (src/headend/emmg.c) over real
 * sockets: against our MUX (src/scrambler/mux.c, served by a thread) over
 * TCP and UDP, sections and TS packets, versions 2 and 3; the bytes it
 * sends match TSDuck's EMMG in the capture; pacing; answering a MUX's tests
 * and errors (a scripted MUX in a thread); reconnecting after the MUX went
 * away; a version the MUX refuses.
 *
 * Reference: ETSI TS 103 197; tests/data/simulcrypt/FACTS.md section 3.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "lib/bytes.h"
#include "testutil.h"
#include "headend/emmg.h"
#include "lib/log.h"
#include "scrambler/mux.h"
#include "simulcrypt/simulcrypt.h"
#include "ts/psi.h"
#include "ts/ts.h"

#define CLIENT 0x4ADC0001u
#define EMM_PID 0x1FF0
#define NSEC 30

struct runner {
	struct mux *m;
	pthread_t th;
	volatile int stop;
};

static void *run_mux(void *arg)
{
	struct runner *r = arg;

	while (!r->stop)
		if (mux_poll(r->m, 10) != 0)
			break;
	return NULL;
}

static void runner_start(struct runner *r, const char *listen, uint8_t version, uint32_t kbps)
{
	struct mux_config c = { .listen = listen, .version = version, .emm_pid = EMM_PID, .max_kbps = kbps };

	r->stop = 0;
	assert_int_equal(mux_new(&c, &r->m), 0);
	assert_int_equal(pthread_create(&r->th, NULL, run_mux, r), 0);
}

static void runner_stop(struct runner *r)
{
	r->stop = 1;
	pthread_join(r->th, NULL);
	mux_free(r->m);
	r->m = NULL;
}

static uint8_t secs[NSEC][120];
static const uint8_t *sp[NSEC];
static size_t sl[NSEC];

static void make_sections(void)
{
	for (size_t i = 0; i < NSEC; i++) {
		memset(secs[i], (int)i, sizeof(secs[i]));
		secs[i][0] = (uint8_t)(0x82 + i % 14);
		secs[i][1] = 0x70;
		secs[i][2] = 117;
		sp[i] = secs[i];
		sl[i] = sizeof(secs[i]);
	}
}

struct got {
	size_t n;
	uint8_t sec[64][PSI_MAX_SECTION];
	size_t len[64];
};

static int sec_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct got *g = ctx;

	(void)pid;
	if (g->n < 64) {
		memcpy(g->sec[g->n], sec, len);
		g->len[g->n] = len;
	}
	g->n++;
	return 0;
}

/* Take from the MUX until want sections came out (bounded wait). */
static void collect(struct mux *m, struct got *g, size_t want)
{
	static struct psi_asm a;
	uint8_t pk[64 * TS_PACKET_BYTES];

	psi_asm_init(&a, EMM_PID);
	g->n = 0;
	for (int i = 0; i < 500 && g->n < want; i++) {
		size_t n = 0;

		assert_int_equal(mux_take(m, pk, 64, &n), 0);
		for (size_t k = 0; k < n; k++) {
			struct ts_hdr h;

			assert_int_equal(ts_parse(pk + k * TS_PACKET_BYTES, &h), 0);
			assert_int_equal(h.pid, EMM_PID);
			assert_int_equal(psi_asm_push(&a, pk + k * TS_PACKET_BYTES, &h, sec_cb, g), 0);
		}
		if (n == 0)
			usleep(10000);
	}
}

static void session(bool udp, bool packet_mode, uint8_t version)
{
	struct runner r;
	struct emmg_config c;
	struct emmg *e = NULL;
	size_t sent = 0;
	static struct got g;
	struct mux_stats st;
	struct emmg_stats es;

	make_sections();
	runner_start(&r, "127.0.0.1:0", 0, 100);
	emmg_config_init(&c);
	snprintf(c.mux, sizeof(c.mux), "127.0.0.1:%u", mux_port(r.m));
	c.client_id = CLIENT;
	c.version = version;
	c.udp = udp;
	c.packet_mode = packet_mode;
	c.bandwidth_kbps = 150; /* more than the MUX has */
	assert_int_equal(emmg_new(&c, &e), 0);
	assert_int_equal(emmg_connect(e), 0);
	assert_true(emmg_connected(e));
	assert_int_equal(emmg_bandwidth(e), 100);
	assert_int_equal(emmg_send(e, sp, sl, NSEC, 20000, &sent), 0);
	assert_int_equal(sent, NSEC);
	collect(r.m, &g, NSEC);
	assert_int_equal(g.n, NSEC);
	for (size_t i = 0; i < NSEC; i++) {
		assert_int_equal(g.len[i], sizeof(secs[i]));
		assert_memory_equal(g.sec[i], secs[i], sizeof(secs[i]));
	}
	emmg_stats(e, &es);
	assert_int_equal(es.sections_sent, NSEC);
	assert_int_equal(es.errors_received, 0);
	assert_int_equal(emmg_close(e), 0);
	for (int i = 0; i < 100; i++) {
		mux_stats(r.m, &st);
		if (st.channels == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(st.channels, 0);
	assert_int_equal(st.errors_sent, 0);
	assert_int_equal(st.udp_rejected, 0);
	assert_int_equal(st.udp_datagrams > 0, udp);
	emmg_free(e);
	runner_stop(&r);
}

static void test_tcp_sections_v2(void **state)
{
	(void)state;
	session(false, false, 2);
}

static void test_udp_packets_v3(void **state)
{
	(void)state;
	session(true, true, 3);
}

static void test_udp_sections_v5(void **state)
{
	(void)state;
	session(true, false, 5);
}

/* ------------------------------------------- scripted MUX in a thread */

struct script {
	int lfd;
	uint16_t port;
	volatile int ok;        /* 1 = the EMMG answered both tests as expected */
	uint8_t first[4][64];   /* what the EMMG sent first (setup messages) */
	size_t first_len[4];
};

static ssize_t read_msg(int fd, uint8_t *b, size_t cap)
{
	size_t have = 0;

	while (have < 5 || have < sc_frame_len(b)) {
		size_t need = have < 5 ? 5 - have : sc_frame_len(b) - have;
		ssize_t r;

		if (have + need > cap)
			return -1;
		r = recv(fd, b + have, need, 0);
		if (r <= 0)
			return r;
		have += (size_t)r;
	}
	return (ssize_t)have;
}

static void reply(int fd, uint16_t type, bool stream, int extra)
{
	uint8_t b[128];
	struct sc_writer sw;
	size_t n = 0;

	sc_begin(&sw, b, sizeof(b), 2, type);
	sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, 1);
	if (stream)
		sc_put_u16(&sw, SC_P_DATA_STREAM_ID, 1);
	sc_put_u32(&sw, SC_P_CLIENT_ID, CLIENT);
	if (type == SC_EMM_CHANNEL_STATUS)
		sc_put_u8(&sw, SC_P_SECTION_TSPKT_FLAG, 0);
	if (type == SC_EMM_STREAM_STATUS) {
		sc_put_u16(&sw, SC_P_DATA_ID, 1);
		sc_put_u8(&sw, SC_P_DATA_TYPE, 0);
	}
	if (type == SC_EMM_STREAM_BW_ALLOCATION && extra >= 0)
		sc_put_u16(&sw, SC_P_BANDWIDTH, (uint16_t)extra);
	if (type == SC_EMM_CHANNEL_ERROR)
		sc_put_u16(&sw, SC_P_ERROR_STATUS, (uint16_t)extra);
	assert_int_equal(sc_finish(&sw, &n), 0);
	assert_int_equal(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void *scripted_mux(void *arg)
{
	struct script *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	uint8_t b[256];
	static const uint16_t answers[3] = { SC_EMM_CHANNEL_STATUS, SC_EMM_STREAM_STATUS,
		SC_EMM_STREAM_BW_ALLOCATION };
	ssize_t n;

	if (fd < 0)
		return NULL;
	for (int i = 0; i < 3; i++) {
		n = read_msg(fd, b, sizeof(b));
		if (n <= 0 || n > 64)
			goto out;
		memcpy(s->first[i], b, (size_t)n);
		s->first_len[i] = (size_t)n;
		reply(fd, answers[i], i > 0, -1); /* no bandwidth: unlimited */
	}
	reply(fd, SC_EMM_CHANNEL_TEST, false, 0);
	n = read_msg(fd, b, sizeof(b));
	if (n <= 0 || tu_be16(b + 1) != SC_EMM_CHANNEL_STATUS)
		goto out;
	reply(fd, SC_EMM_STREAM_TEST, true, 0);
	n = read_msg(fd, b, sizeof(b));
	if (n <= 0 || tu_be16(b + 1) != SC_EMM_STREAM_STATUS)
		goto out;
	reply(fd, SC_EMM_CHANNEL_ERROR, false, SC_EMM_ERR_UNKNOWN);
	s->ok = 1;
out:
	usleep(100000);
	close(fd);
	return NULL;
}

static void test_tests_errors_and_bytes(void **state)
{
	(void)state;
	struct script s = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	pthread_t th;
	struct emmg_config c;
	struct emmg *e = NULL;
	struct emmg_stats es;
	size_t n = 0;
	struct tu_capmsg *cap = tu_capture_load("simulcrypt/captures/emmg-mux-v2-udp-sections.hex.txt", &n);
	uint8_t *ours;
	int r = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s.lfd, 1), 0);
	assert_int_equal(getsockname(s.lfd, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(pthread_create(&th, NULL, scripted_mux, &s), 0);
	emmg_config_init(&c);
	snprintf(c.mux, sizeof(c.mux), "127.0.0.1:%u", ntohs(a.sin_port));
	c.client_id = CLIENT;
	assert_int_equal(emmg_new(&c, &e), 0);
	assert_int_equal(emmg_connect(e), 0);
	assert_int_equal(emmg_bandwidth(e), 0); /* unlimited */
	for (int i = 0; i < 300 && r == 0; i++)
		r = emmg_poll(e, 10);
	assert_int_equal(r, CE_CLOSED);
	pthread_join(th, NULL);
	assert_int_equal(s.ok, 1);
	emmg_stats(e, &es);
	assert_int_equal(es.tests_answered, 2);
	assert_int_equal(es.errors_received, 1);
	assert_int_equal(es.last_error_status, SC_EMM_ERR_UNKNOWN);
	assert_int_equal(es.disconnects, 1);
	/* with TSDuck's ids, our setup messages are TSDuck's bytes */
	for (size_t k = 0; k < 3; k++) {
		ours = s.first[k];
		/* ours: channel 1 stream 1 data_id 1 bandwidth 100; TSDuck's capture:
		 * channel 3 stream 4 data_id 7 bandwidth 50 -> patch the ids */
		if (k >= 1) {
			put_be16(ours + 9, 3);
			put_be16(ours + 15, 4);
		} else {
			put_be16(ours + 9, 3);
		}
		if (k == 1)
			put_be16(ours + 29, 7);
		if (k == 2)
			put_be16(ours + 29, 50);
		assert_int_equal(s.first_len[k], cap[k * 2].len);
		assert_memory_equal(ours, cap[k * 2].bytes, cap[k * 2].len);
	}
	tu_capture_free(cap, n);
	emmg_free(e);
	close(s.lfd);
}

static void test_reconnect(void **state)
{
	(void)state;
	struct runner r;
	struct emmg_config c;
	struct emmg *e = NULL;
	char listen[64];
	size_t sent = 0;
	static struct got g;
	struct emmg_stats es;
	int rc = CE_CLOSED;

	make_sections();
	runner_start(&r, "127.0.0.1:0", 0, 100);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", mux_port(r.m));
	emmg_config_init(&c);
	snprintf(c.mux, sizeof(c.mux), "%s", listen);
	c.client_id = CLIENT;
	c.reconnect_ms = 20;
	assert_int_equal(emmg_new(&c, &e), 0);
	assert_int_equal(emmg_connect(e), 0);
	runner_stop(&r); /* the MUX goes away */
	runner_start(&r, listen, 0, 100);
	for (int i = 0; i < 200 && rc != 0; i++) {
		rc = emmg_send(e, sp, sl, 5, 5000, &sent);
		if (rc != 0)
			usleep(10000);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(sent, 5);
	collect(r.m, &g, 5);
	assert_int_equal(g.n, 5);
	emmg_stats(e, &es);
	assert_int_equal(es.connects, 2);
	assert_true(es.disconnects >= 1);
	emmg_free(e);
	runner_stop(&r);
}

static void test_refused_and_paced(void **state)
{
	(void)state;
	struct runner r;
	struct emmg_config c;
	struct emmg *e = NULL;
	struct emmg_stats es;
	size_t sent = 99;
	uint8_t bad[4] = { 0x82, 0x70, 0x05, 0 };
	const uint8_t *bp[1] = { bad };
	size_t bl[1] = { sizeof(bad) };

	make_sections();
	runner_start(&r, "127.0.0.1:0", 2, 8);
	emmg_config_init(&c);
	snprintf(c.mux, sizeof(c.mux), "127.0.0.1:%u", mux_port(r.m));
	c.client_id = CLIENT;
	c.version = 3; /* the MUX runs version 2 only */
	assert_int_equal(emmg_new(&c, &e), 0);
	assert_int_equal(emmg_connect(e), CE_PROTO);
	emmg_stats(e, &es);
	assert_int_equal(es.last_error_status, SC_EMM_ERR_INV_PROTO_VERSION);
	assert_false(emmg_connected(e));
	emmg_free(e);
	/* version 2: 8 kbit/s granted; 30 sections (5.6 KB of TS) cannot go in 50 ms */
	c.version = 2;
	assert_int_equal(emmg_new(&c, &e), 0);
	assert_int_equal(emmg_connect(e), 0);
	assert_int_equal(emmg_bandwidth(e), 8);
	assert_int_equal(emmg_send(e, sp, sl, NSEC, 50, &sent), CE_TIMEOUT);
	assert_true(sent < NSEC);
	/* a section whose length field disagrees is refused before sending */
	assert_int_equal(emmg_send(e, bp, bl, 1, 50, &sent), CE_ARG);
	assert_int_equal(sent, 0);
	emmg_free(e);
	/* bad configurations */
	emmg_config_init(&c);
	assert_int_equal(emmg_new(&c, &e), CE_ARG); /* no address */
	snprintf(c.mux, sizeof(c.mux), "127.0.0.1:1");
	c.version = 6;
	assert_int_equal(emmg_new(&c, &e), CE_ARG);
	runner_stop(&r);
}

/* A new bandwidth mid-session (the head-end's SIGHUP): a stream_BW_request
 * on the open stream, the MUX's grant taken (capped at its maximum), data
 * still flows; not connected, it is asked at the next connect. */
static void test_set_bandwidth(void **state)
{
	struct runner r;
	struct emmg_config c;
	struct emmg *e = NULL;
	size_t sent = 0;
	static struct got g;
	struct emmg_stats es;
	(void)state;

	make_sections();
	runner_start(&r, "127.0.0.1:0", 2, 100);
	emmg_config_init(&c);
	snprintf(c.mux, sizeof(c.mux), "127.0.0.1:%u", mux_port(r.m));
	c.client_id = CLIENT;
	c.bandwidth_kbps = 50;
	assert_int_equal(emmg_new(&c, &e), 0);
	assert_int_equal(emmg_set_bandwidth(NULL, 10), CE_ARG);
	assert_int_equal(emmg_set_bandwidth(e, 40), 0); /* not connected: asked at connect */
	assert_int_equal(emmg_connect(e), 0);
	assert_int_equal(emmg_bandwidth(e), 40);
	assert_int_equal(emmg_set_bandwidth(e, 80), 0);
	assert_true(emmg_connected(e));
	assert_int_equal(emmg_bandwidth(e), 80);
	assert_int_equal(emmg_set_bandwidth(e, 500), 0); /* more than the MUX has */
	assert_int_equal(emmg_bandwidth(e), 100);
	assert_int_equal(emmg_send(e, sp, sl, NSEC, 20000, &sent), 0);
	assert_int_equal(sent, NSEC);
	collect(r.m, &g, NSEC);
	assert_int_equal(g.n, NSEC);
	emmg_stats(e, &es);
	assert_int_equal(es.errors_received, 0);
	assert_int_equal(es.connects, 1);
	emmg_free(e);
	runner_stop(&r);
}

/* Issue 16 item 3: the reconnect back-off is the documented 1 s doubling
 * to 30 s, also when the MUX answers the setup with an error (a second
 * node's channel_id_in_use; here inv_proto_version). The waits are read
 * from the client, never timed: emmg_retry_now makes each attempt due. */
static void test_reconnect_backoff(void **state)
{
	(void)state;
	struct runner r;
	struct emmg_config c;
	struct emmg *e = NULL;
	struct emmg_stats es;
	size_t sent = 0;
	static const uint32_t want[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };

	make_sections();
	runner_start(&r, "127.0.0.1:0", 2, 8);
	emmg_config_init(&c);
	snprintf(c.mux, sizeof(c.mux), "127.0.0.1:%u", mux_port(r.m));
	c.client_id = CLIENT;
	c.version = 3; /* the MUX runs version 2 only: every setup is refused */
	c.timeout_ms = 300;
	assert_int_equal(emmg_new(&c, &e), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(emmg_send(e, sp, sl, 1, 100, &sent), CE_PROTO);
		emmg_stats(e, &es);
		assert_int_equal(es.connect_failures, i + 1);
		assert_int_equal(es.retry_wait_ms, want[i]);
		/* within the wait: no attempt at all */
		assert_int_equal(emmg_send(e, sp, sl, 1, 100, &sent), CE_CLOSED);
		emmg_stats(e, &es);
		assert_int_equal(es.connect_failures, i + 1);
		emmg_retry_now(e);
	}
	emmg_free(e);
	runner_stop(&r);
}

/* `castellan emmg --emm-file`: the section file read through the cursor,
 * (ts/secfile.h), one whole section a line; blank lines, # comments,
 * leading spaces and tabs and a CR line end are allowed, and a refusal
 * names the file's real line. */
static void test_emm_file_lines(void **state)
{
	static const struct { const char *text; const char *want; } cases[] = {
		{ "# c\n\n  82700a00000000000000000000\r\n\t82700a00000000000000000000\n", "2 sections from" },
		{ "# c\n\n82700a0000000000000000000000\n", "line 3: not one whole section" }, /* 11 bytes, says 10 */
		{ "82700a000000000000000000\n", "line 1: not one whole section" },         /* short */
		{ "8270\n", "line 1: not one whole section" },                             /* no length */
		{ "82700a0000000000000000000g\n", "line 1: not one whole section" },        /* not hex */
		{ "# only a comment\n\n", "holds no section" },
	};
	const char *bin = getenv("CASTELLAN_BIN");
	char dir[] = "/tmp/castellan-emmfile-XXXXXX", path[64];
	(void)state;

	if (!bin) {
		skip();
		return;
	}
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/emm.txt", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(file_write_atomic(path, cases[i].text, strlen(cases[i].text), 0600), 0);
		/* a MUX that is not there: the file is read (and refused) first */
		if (tu_run("timeout 2 %s emmg --mux 127.0.0.1:1 --client-id 1 --emm-file %s 2>&1 | grep -q '%s'", bin,
			   path, cases[i].want) != 0)
			fail_msg("case %zu: no '%s'", i, cases[i].want);
	}
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_sections_v2),
		cmocka_unit_test(test_udp_packets_v3),
		cmocka_unit_test(test_udp_sections_v5),
		cmocka_unit_test(test_tests_errors_and_bytes),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_refused_and_paced),
		cmocka_unit_test(test_set_bandwidth),
		cmocka_unit_test(test_reconnect_backoff),
		cmocka_unit_test(test_emm_file_lines),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
