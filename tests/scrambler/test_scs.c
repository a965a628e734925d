/*
 * test_scs.c - the SCS client (src/scrambler/scs.h) over real TCP.
 *
 * A scripted ECMG (a thread on 127.0.0.1) plays the ECMG side of TSDuck's
 * captures (tests/data/simulcrypt/captures) byte for byte and records what our
 * client sends; with the capture's CWs, CP numbers and access criteria our
 * requests must equal TSDuck's scrambler's, byte for byte. Then: errors
 * (channel_error at setup, stream_error for a CW_provision, the
 * version-mismatch capture), a table of invalid messages each answered
 * with the right error_status and survived, a garbage flood (dropped after
 * 3), channel_test/stream_test answered, keep-alive tests sent, a
 * disconnect mid-stream (reconnect, setup again, CW_provision re-sent),
 * failover to the backup, and end-to-end scrambles through a real
 * `castellan ecmg` child when the binary has that command (also one where
 * the ECMG starts after the scrambler).
 * Reference: ETSI TS 103 197.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "testutil.h"
#include "lib/cursor.h"
#include "simulcrypt/simulcrypt.h"
#include "scrambler/scs.h"

#define CAP_V2 "simulcrypt/captures/ecmg-scs-v2.hex.txt"
#define CAP_V3 "simulcrypt/captures/ecmg-scs-v3-sections.hex.txt"
#define CAP_MISMATCH "simulcrypt/captures/version-mismatch.hex.txt"
#define IO_MS 5000

/* ------------------------------------------------------------------ */
/* sockets of the scripted ECMG                                         */

static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port with nothing listening. */
static uint16_t dead_port(void)
{
	uint16_t port;
	int fd = listen_any(&port);

	close(fd);
	return port;
}

static int accept_to(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, IO_MS) != 1)
		return -1;
	return accept(lfd, NULL, NULL);
}

static bool read_n(int fd, uint8_t *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, IO_MS) != 1)
			return false;
		r = recv(fd, buf + off, n - off, 0);
		if (r <= 0)
			return false;
		off += (size_t)r;
	}
	return true;
}

/* One whole message; len 0 on EOF/timeout. */
static size_t read_msg(int fd, uint8_t *buf, size_t cap)
{
	size_t flen;

	if (!read_n(fd, buf, SC_HEADER_BYTES))
		return 0;
	flen = sc_frame_len(buf);
	if (flen > cap || !read_n(fd, buf + SC_HEADER_BYTES, flen - SC_HEADER_BYTES))
		return 0;
	return flen;
}

static void write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* ------------------------------------------------------------------ */
/* the scripted ECMG: plays a capture, records the SCS side             */

#define MAX_REC 64

struct script {
	int lfd;
	struct tu_capmsg *cap;
	size_t ncap;
	size_t upto;           /* play capture lines [0, upto) */
	/* recorded SCS messages */
	uint8_t *rec[MAX_REC];
	size_t rec_len[MAX_REC];
	size_t nrec;
	bool mismatch;         /* a received message differed in length header */
	pthread_t th;
};

static void rec_add(struct script *s, const uint8_t *b, size_t n)
{
	if (s->nrec == MAX_REC)
		return;
	s->rec[s->nrec] = malloc(n);
	memcpy(s->rec[s->nrec], b, n);
	s->rec_len[s->nrec++] = n;
}

static void *script_run(void *arg)
{
	struct script *s = arg;
	uint8_t *buf = malloc(SC_MAX_MSG_BYTES);
	int fd = accept_to(s->lfd);

	if (fd >= 0) {
		for (size_t i = 0; i < s->upto; i++) {
			if (strncmp(s->cap[i].dir, "ECMG>", 5) == 0) {
				write_all(fd, s->cap[i].bytes, s->cap[i].len);
			} else {
				size_t n = read_msg(fd, buf, SC_MAX_MSG_BYTES);

				if (n == 0)
					break;
				rec_add(s, buf, n);
			}
		}
		/* then whatever the client still sends, until it closes */
		for (;;) {
			size_t n = read_msg(fd, buf, SC_MAX_MSG_BYTES);

			if (n == 0)
				break;
			rec_add(s, buf, n);
		}
		close(fd);
	}
	free(buf);
	return NULL;
}

static void script_start(struct script *s, const char *capture, uint16_t *port)
{
	memset(s, 0, sizeof(*s));
	s->cap = tu_capture_load(capture, &s->ncap);
	s->upto = s->ncap;
	s->lfd = listen_any(port);
	assert_int_equal(pthread_create(&s->th, NULL, script_run, s), 0);
}

static void cfg_init(struct scs_config *c, uint16_t port, uint8_t version)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->main_addr, sizeof(c->main_addr), "127.0.0.1:%u", port);
	c->super_cas_id = 0x4ADC0001;
	c->channel_id = 1;
	c->version = version;
	c->test_ms = UINT32_MAX; /* no keep-alive: the capture has none */
	c->response_ms = 3000;
}

/* The i-th message of a direction in a capture. */
static const struct tu_capmsg *cap_nth(const struct script *s, const char *dir, size_t nth)
{
	for (size_t i = 0; i < s->ncap; i++)
		if (strcmp(s->cap[i].dir, dir) == 0 && nth-- == 0)
			return &s->cap[i];
	fail_msg("no %s message %zu", dir, nth);
	return NULL;
}

/* CP_CW_combination values of a captured CW_provision -> cws. */
static size_t cap_cws(const struct tu_capmsg *m, uint8_t version, uint8_t *cws, uint16_t *first_cp)
{
	struct sc_msg *msg = malloc(sizeof(*msg));
	size_t n;

	assert_int_equal(sc_decode(SC_ECMG_SCS, version, m->bytes, m->len, msg, NULL), 0);
	n = sc_count(msg, SC_P_CP_CW_COMBINATION);
	for (size_t i = 0; i < n; i++) {
		const struct sc_param *p = sc_get_nth(msg, SC_P_CP_CW_COMBINATION, i);

		assert_int_equal(p->len, 10);
		if (i == 0)
			*first_cp = tu_be16(p->val);
		memcpy(cws + i * 8, p->val + 2, 8);
	}
	free(msg);
	return n;
}

static const struct sc_param *cap_datagram(const struct tu_capmsg *m, uint8_t version, struct sc_msg *msg)
{
	assert_int_equal(sc_decode(SC_ECMG_SCS, version, m->bytes, m->len, msg, NULL), 0);
	return sc_get_nth(msg, SC_P_ECM_DATAGRAM, 0);
}

/* ------------------------------------------------------------------ */
/* (1) interop: a whole TSDuck session, byte for byte                   */

static void run_capture(const char *capture, uint8_t version, bool section_mode)
{
	struct script s;
	struct scs_config c;
	struct scs_channel *ch = NULL;
	struct scs_stream *st = NULL;
	const struct scs_channel_status *info;
	struct sc_msg *msg = malloc(sizeof(*msg));
	static const uint8_t ac[4] = { 0, 0, 0, 3 };
	uint8_t ecm[4096];
	uint16_t port;
	size_t nscs = 0;

	script_start(&s, capture, &port);
	cfg_init(&c, port, version);
	assert_int_equal(scs_channel_new(&c, &ch), 0);
	assert_int_equal(scs_channel_open(ch), 0);
	info = scs_channel_info(ch);
	assert_int_equal(info->section_mode, section_mode);
	assert_int_equal(info->delay_start_ms, 200);
	assert_int_equal(info->delay_stop_ms, 200);
	assert_true(info->has_transition_delays);
	assert_int_equal(info->transition_delay_start_ms, -500);
	assert_int_equal(info->ecm_rep_period_ms, 100);
	assert_int_equal(info->min_cp_duration_ms, 1000);
	assert_int_equal(info->lead_cw, 1);
	assert_int_equal(info->cw_per_msg, 2);
	assert_int_equal(info->max_comp_time_ms, 100);
	assert_int_equal(scs_stream_open(ch, 1, 1, 4000, &st), 0);
	for (uint16_t cp = 0; cp < 6; cp++) {
		uint8_t cws[16];
		uint16_t first = 0;
		size_t n = cap_cws(cap_nth(&s, "SCS>ECMG", 2 + cp), version, cws, &first), len = 0;
		const struct sc_param *dg;

		assert_int_equal(n, 2);
		assert_int_equal(first, cp);
		assert_int_equal(scs_cw_provision(st, cp, first, cws, 8, n, ac, 4, 4000), 0);
		assert_int_equal(scs_ecm_get(st, cp, IO_MS, ecm, sizeof(ecm), &len), 0);
		dg = cap_datagram(cap_nth(&s, "ECMG>SCS", 2 + cp), version, msg);
		assert_int_equal(len, dg->len);
		assert_memory_equal(ecm, dg->val, len);
		/* asked again: the same ECM, without the network */
		assert_int_equal(scs_ecm_get(st, cp, 0, ecm, sizeof(ecm), &len), 0);
		assert_int_equal(len, dg->len);
	}
	scs_stream_close(st);
	{
		struct scs_stats stats;

		scs_channel_stats(ch, &stats);
		assert_int_equal(stats.connects, 1);
		assert_int_equal(stats.cw_provisions, 6);
		assert_int_equal(stats.ecm_responses, 6);
		assert_int_equal(stats.bad_msgs, 0);
		assert_int_equal(stats.ecm_unmatched, 0);
	}
	scs_channel_free(ch);
	pthread_join(s.th, NULL);
	/* every SCS message of the capture, in order, byte for byte */
	for (size_t i = 0; i < s.ncap; i++) {
		if (strcmp(s.cap[i].dir, "SCS>ECMG") != 0)
			continue;
		assert_true(nscs < s.nrec);
		assert_int_equal(s.rec_len[nscs], s.cap[i].len);
		assert_memory_equal(s.rec[nscs], s.cap[i].bytes, s.cap[i].len);
		nscs++;
	}
	assert_int_equal(nscs, s.nrec);
	assert_int_equal(nscs, 10);
	close(s.lfd);
	for (size_t i = 0; i < s.nrec; i++)
		free(s.rec[i]);
	tu_capture_free(s.cap, s.ncap);
	free(msg);
}

static void test_capture_v2(void **state)
{
	(void)state;
	run_capture(CAP_V2, 2, false);
}

static void test_capture_v3_sections(void **state)
{
	(void)state;
	run_capture(CAP_V3, 3, true);
}

/* TSDuck ECMG v2, our SCS v3: the v2 channel_error fails the setup with its
 * error_status and is not answered (TSDuck answers it: captures loop). */
static void test_version_mismatch(void **state)
{
	struct script s;
	struct scs_config c;
	struct scs_channel *ch = NULL;
	struct scs_stats st;
	uint16_t port;

	(void)state;
	script_start(&s, CAP_MISMATCH, &port);
	s.upto = 2; /* our channel_setup, its channel_error */
	cfg_init(&c, port, 3);
	assert_int_equal(scs_channel_new(&c, &ch), 0);
	assert_int_equal(scs_channel_open(ch), CE_PROTO);
	scs_channel_stats(ch, &st);
	assert_int_equal(st.last_error_status, SC_ECM_ERR_INV_PROTO_VERSION);
	assert_int_equal(st.channel_errors, 1);
	assert_false(scs_channel_connected(ch));
	scs_channel_free(ch);
	pthread_join(s.th, NULL);
	assert_int_equal(s.nrec, 1); /* only the channel_setup, no error back */
	assert_int_equal(s.rec_len[0], s.cap[0].len);
	assert_memory_equal(s.rec[0], s.cap[0].bytes, s.cap[0].len);
	close(s.lfd);
	for (size_t i = 0; i < s.nrec; i++)
		free(s.rec[i]);
	tu_capture_free(s.cap, s.ncap);
}

/* ------------------------------------------------------------------ */
/* (2) errors, bad input, tests, reconnect, failover                    */

/* A hand-driven ECMG connection: the test thread drives both sides, using
 * the client's blocking calls only where the server side was sent first. */
struct peer {
	int lfd, fd;
	uint16_t port;
	struct tu_capmsg *cap;
	size_t ncap;
};

static void peer_send_cap(struct peer *p, size_t line)
{
	write_all(p->fd, p->cap[line].bytes, p->cap[line].len);
}

/* Server thread for setup only: answers channel_setup and stream_setup
 * with the capture's status messages. */
static void *setup_server(void *arg)
{
	struct peer *p = arg;
	uint8_t buf[512];

	p->fd = accept_to(p->lfd);
	if (p->fd < 0)
		return NULL;
	if (read_msg(p->fd, buf, sizeof(buf)) == 0)
		return NULL;
	peer_send_cap(p, 1);
	if (read_msg(p->fd, buf, sizeof(buf)) == 0)
		return NULL;
	peer_send_cap(p, 3);
	return NULL;
}

/* Listen, connect a client with one stream set up. */
static struct scs_channel *peer_open(struct peer *p, struct scs_config *c, struct scs_stream **st)
{
	struct scs_channel *ch = NULL;
	pthread_t th;

	memset(p, 0, sizeof(*p));
	p->cap = tu_capture_load(CAP_V2, &p->ncap);
	p->lfd = listen_any(&p->port);
	p->fd = -1;
	cfg_init(c, p->port, 2);
	c->response_ms = 500; /* the peer never answers stream_close_request */
	assert_int_equal(pthread_create(&th, NULL, setup_server, p), 0);
	assert_int_equal(scs_channel_new(c, &ch), 0);
	assert_int_equal(scs_channel_open(ch), 0);
	assert_int_equal(scs_stream_open(ch, 1, 1, 4000, st), 0);
	pthread_join(th, NULL);
	assert_true(p->fd >= 0);
	return ch;
}

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->lfd >= 0)
		close(p->lfd);
	tu_capture_free(p->cap, p->ncap);
}

static const uint8_t CWS[16] = { 1, 2, 3, 6, 5, 6, 7, 18, 9, 10, 11, 30, 13, 14, 15, 42 };
static const uint8_t AC[4] = { 0, 0, 0, 1 };

static void test_channel_error_at_setup(void **state)
{
	struct scs_config c;
	struct scs_channel *ch = NULL;
	struct scs_stats st;
	uint16_t port;
	int lfd = listen_any(&port), fd;
	/* channel_error, channel 1, inv_Super_CAS_id */
	static const uint8_t err[] = { 0x02, 0x00, 0x05, 0x00, 0x0c, 0x00, 0x0e, 0x00, 0x02, 0x00, 0x01,
		0x70, 0x00, 0x00, 0x02, 0x00, 0x05 };
	uint8_t buf[512];
	pid_t pid;

	(void)state;
	cfg_init(&c, port, 2);
	assert_int_equal(scs_channel_new(&c, &ch), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = accept_to(lfd);
		if (fd >= 0 && read_msg(fd, buf, sizeof(buf)) > 0)
			write_all(fd, err, sizeof(err));
		while (fd >= 0 && read_msg(fd, buf, sizeof(buf)) > 0)
			;
		_exit(0);
	}
	assert_int_equal(scs_channel_open(ch), CE_PROTO);
	scs_channel_stats(ch, &st);
	assert_int_equal(st.channel_errors, 1);
	assert_int_equal(st.last_error_status, SC_ECM_ERR_INV_SUPER_CAS_ID);
	assert_int_equal(st.connects, 0);
	assert_int_equal(st.connect_failures, 1);
	scs_channel_free(ch);
	waitpid(pid, NULL, 0);
	close(lfd);
}

static void test_stream_error(void **state)
{
	struct peer p;
	struct scs_config c;
	struct scs_stream *st = NULL;
	struct scs_channel *ch = peer_open(&p, &c, &st);
	uint8_t buf[4096];
	size_t len = 0;
	struct scs_stats stats;
	/* stream_error channel 1 stream 1, not_enough_CW */
	static const uint8_t err[] = { 0x02, 0x01, 0x06, 0x00, 0x12, 0x00, 0x0e, 0x00, 0x02, 0x00, 0x01,
		0x00, 0x0f, 0x00, 0x02, 0x00, 0x01, 0x70, 0x00, 0x00, 0x02, 0x00, 0x0b };

	(void)state;
	assert_int_equal(scs_cw_provision(st, 0, 0, CWS, 8, 2, AC, 4, 4000), 0);
	assert_true(read_msg(p.fd, buf, sizeof(buf)) > 0);
	assert_int_equal(tu_be16(buf + 1), SC_ECM_CW_PROVISION);
	write_all(p.fd, err, sizeof(err));
	assert_int_equal(scs_ecm_get(st, 0, IO_MS, buf, sizeof(buf), &len), CE_PROTO);
	assert_int_equal(scs_stream_last_error(st), SC_ECM_ERR_NOT_ENOUGH_CW);
	scs_channel_stats(ch, &stats);
	assert_int_equal(stats.stream_errors, 1);
	assert_true(scs_channel_connected(ch));
	/* the error was reported once: now it is a plain wait */
	assert_int_equal(scs_ecm_get(st, 0, 0, buf, sizeof(buf), &len), CE_TIMEOUT);
	/* an error is never answered */
	{
		struct pollfd pf = { .fd = p.fd, .events = POLLIN };

		assert_int_equal(poll(&pf, 1, 50), 0);
	}
	scs_channel_free(ch);
	peer_close(&p);
}

/* Invalid messages from the ECMG: each answered with the right error and
 * survived (one bad message does not drop the channel). */
struct bad_case {
	const char *name;
	uint8_t bytes[64];
	size_t len;
	uint16_t reply_type;   /* 0 = no reply expected */
	uint16_t reply_status;
};

static const struct bad_case BAD[] = {
	{ "wrong version", { 0x07, 0x02, 0x02, 0x00, 0x00 }, 5, SC_ECM_CHANNEL_ERROR,
	  SC_ECM_ERR_INV_PROTO_VERSION },
	{ "unknown type", { 0x02, 0x09, 0x99, 0x00, 0x06, 0x00, 0x0e, 0x00, 0x02, 0x00, 0x01 }, 11,
	  SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_MESSAGE_TYPE },
	{ "TLV overruns message", { 0x02, 0x00, 0x02, 0x00, 0x06, 0x00, 0x0e, 0x00, 0x09, 0x00, 0x01 }, 11,
	  SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_MESSAGE },
	{ "missing parameter", { 0x02, 0x00, 0x02, 0x00, 0x00 }, 5, SC_ECM_CHANNEL_ERROR,
	  SC_ECM_ERR_MISSING_PARAM },
	{ "other channel", { 0x02, 0x00, 0x02, 0x00, 0x06, 0x00, 0x0e, 0x00, 0x02, 0x00, 0x07 }, 11,
	  SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_CHANNEL_ID },
	{ "ECM for unknown stream", { 0x02, 0x02, 0x02, 0x00, 0x19, 0x00, 0x0e, 0x00, 0x02, 0x00, 0x01,
	  0x00, 0x0f, 0x00, 0x02, 0x00, 0x09, 0x00, 0x12, 0x00, 0x02, 0x00, 0x00, 0x00, 0x15, 0x00, 0x03,
	  0xaa, 0xbb, 0xcc }, 30, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_STREAM_ID },
	{ "request only an SCS sends", { 0x02, 0x00, 0x04, 0x00, 0x06, 0x00, 0x0e, 0x00, 0x02, 0x00, 0x01 },
	  11, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_MESSAGE_TYPE },
	{ "channel_error other version", { 0x05, 0x00, 0x05, 0x00, 0x00 }, 5, 0, 0 },
};

static void test_bad_messages(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(BAD) / sizeof(BAD[0]); k++) {
		const struct bad_case *b = &BAD[k];
		struct peer p;
		struct scs_config c;
		struct scs_stream *st = NULL;
		struct scs_channel *ch = peer_open(&p, &c, &st);
		uint8_t buf[4096], ecm[4096];
		size_t len = 0;
		struct scs_stats stats;

		print_message("bad case: %s\n", b->name);
		assert_int_equal(scs_cw_provision(st, 0, 0, CWS, 8, 2, AC, 4, 4000), 0);
		assert_true(read_msg(p.fd, buf, sizeof(buf)) > 0);
		write_all(p.fd, b->bytes, b->len);
		assert_int_equal(scs_ecm_get(st, 0, 100, ecm, sizeof(ecm), &len),
			b->reply_type ? CE_TIMEOUT : CE_PROTO);
		if (b->reply_type) {
			struct sc_msg *m = malloc(sizeof(*m));
			uint16_t status = 0;
			size_t n = read_msg(p.fd, buf, sizeof(buf));

			assert_true(n > 0);
			assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, n, m, NULL), 0);
			assert_int_equal(m->type, b->reply_type);
			assert_int_equal(sc_get_u16(m, SC_P_ERROR_STATUS, &status), 0);
			assert_int_equal(status, b->reply_status);
			free(m);
		}
		scs_channel_stats(ch, &stats);
		assert_true(stats.bad_msgs + stats.channel_errors >= 1);
		/* still alive: the ECM of the capture comes through */
		peer_send_cap(&p, 5);
		assert_int_equal(scs_ecm_get(st, 0, IO_MS, ecm, sizeof(ecm), &len), 0);
		assert_int_equal(len, 188);
		assert_int_equal(ecm[0], 0x47);
		assert_true(scs_channel_connected(ch));
		scs_channel_free(ch);
		peer_close(&p);
	}
}

/* Garbage: three invalid messages in a row drop the connection; the
 * client reports it and does not crash; reconnecting fails (no ECMG). */
static void test_garbage_flood(void **state)
{
	struct peer p;
	struct scs_config c;
	struct scs_stream *st = NULL;
	struct scs_channel *ch = peer_open(&p, &c, &st);
	uint8_t junk[300], buf[4096];
	size_t len = 0;
	struct scs_stats stats;

	(void)state;
	close(p.lfd);
	p.lfd = -1;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	/* three 5-byte-header frames of junk, then raw junk */
	for (int k = 0; k < 3; k++) {
		uint8_t h[5] = { 0x66, 0x12, 0x34, 0x00, 0x10 };

		write_all(p.fd, h, 5);
		write_all(p.fd, junk, 0x10);
	}
	write_all(p.fd, junk, sizeof(junk));
	assert_int_equal(scs_ecm_get(st, 0, IO_MS, buf, sizeof(buf), &len), CE_CLOSED);
	scs_channel_stats(ch, &stats);
	assert_int_equal(stats.bad_msgs, 3);
	assert_int_equal(stats.disconnects, 1);
	assert_false(scs_channel_connected(ch));
	scs_channel_free(ch);
	peer_close(&p);
}

/* channel_test / stream_test from the ECMG are answered with the last
 * status; with a short test period the client sends its own tests. */
static void test_tests(void **state)
{
	struct peer p;
	struct scs_config c;
	struct scs_stream *st = NULL;
	struct scs_channel *ch = peer_open(&p, &c, &st);
	static const uint8_t ctest[] = { 0x02, 0x00, 0x02, 0x00, 0x06, 0x00, 0x0e, 0x00, 0x02, 0x00, 0x01 };
	static const uint8_t stest[] = { 0x02, 0x01, 0x02, 0x00, 0x0c, 0x00, 0x0e, 0x00, 0x02, 0x00, 0x01,
		0x00, 0x0f, 0x00, 0x02, 0x00, 0x01 };
	uint8_t buf[512];
	size_t n;
	bool got_ctest = false, got_stest = false;
	struct scs_stats stats;

	(void)state;
	write_all(p.fd, ctest, sizeof(ctest));
	write_all(p.fd, stest, sizeof(stest));
	assert_int_equal(scs_channel_poll(ch, 200), 0);
	(void)scs_channel_poll(ch, 50);
	n = read_msg(p.fd, buf, sizeof(buf));
	assert_int_equal(n, p.cap[1].len); /* channel_status as received */
	assert_memory_equal(buf, p.cap[1].bytes, n);
	n = read_msg(p.fd, buf, sizeof(buf));
	assert_int_equal(n, p.cap[3].len); /* stream_status as received */
	assert_memory_equal(buf, p.cap[3].bytes, n);
	scs_channel_stats(ch, &stats);
	assert_int_equal(stats.tests_answered, 2);
	scs_channel_free(ch);
	peer_close(&p);

	/* keep-alive: test period 1 ms, the client sends channel_test + stream_test */
	ch = peer_open(&p, &c, &st);
	scs_channel_free(ch);
	peer_close(&p);
	memset(&p, 0, sizeof(p));
	{
		pthread_t th;

		p.cap = tu_capture_load(CAP_V2, &p.ncap);
		p.lfd = listen_any(&p.port);
		cfg_init(&c, p.port, 2);
		c.test_ms = 1;
		assert_int_equal(pthread_create(&th, NULL, setup_server, &p), 0);
		assert_int_equal(scs_channel_new(&c, &ch), 0);
		assert_int_equal(scs_channel_open(ch), 0);
		assert_int_equal(scs_stream_open(ch, 1, 1, 4000, &st), 0);
		pthread_join(th, NULL);
	}
	for (int i = 0; i < 200 && !(got_ctest && got_stest); i++) {
		struct pollfd pf = { .fd = p.fd, .events = POLLIN };

		(void)scs_channel_poll(ch, 5);
		if (poll(&pf, 1, 5) == 1 && (n = read_msg(p.fd, buf, sizeof(buf))) > 0) {
			got_ctest |= tu_be16(buf + 1) == SC_ECM_CHANNEL_TEST;
			got_stest |= tu_be16(buf + 1) == SC_ECM_STREAM_TEST;
		}
	}
	assert_true(got_ctest);
	assert_true(got_stest);
	scs_channel_stats(ch, &stats);
	assert_true(stats.tests_sent >= 2);
	scs_channel_free(ch);
	peer_close(&p);
}

/* The ECMG drops the connection after a CW_provision: the client
 * reconnects, sets channel and stream up again, re-sends the same
 * CW_provision, and gets its ECM. */
struct reconnect_srv {
	struct peer *p;
	uint8_t prov1[512];
	size_t prov1_len;
	uint8_t prov2[512];
	size_t prov2_len;
	uint16_t types2[3];
};

static void *reconnect_server(void *arg)
{
	struct reconnect_srv *r = arg;
	struct peer *p = r->p;
	uint8_t buf[512];

	/* connection 1 is already set up by peer_open: read the provision, drop */
	r->prov1_len = read_msg(p->fd, r->prov1, sizeof(r->prov1));
	close(p->fd);
	/* connection 2 */
	p->fd = accept_to(p->lfd);
	if (p->fd < 0)
		return NULL;
	if (read_msg(p->fd, buf, sizeof(buf)) == 0)
		return NULL;
	r->types2[0] = tu_be16(buf + 1);
	peer_send_cap(p, 1);
	if (read_msg(p->fd, buf, sizeof(buf)) == 0)
		return NULL;
	r->types2[1] = tu_be16(buf + 1);
	peer_send_cap(p, 3);
	r->prov2_len = read_msg(p->fd, r->prov2, sizeof(r->prov2));
	r->types2[2] = tu_be16(r->prov2 + 1);
	peer_send_cap(p, 5); /* ECM_response CP 0 */
	return NULL;
}

static void test_reconnect(void **state)
{
	struct peer p;
	struct scs_config c;
	struct scs_stream *st = NULL;
	struct scs_channel *ch = peer_open(&p, &c, &st);
	struct reconnect_srv r = { .p = &p };
	pthread_t th;
	uint8_t ecm[4096];
	size_t len = 0;
	struct scs_stats stats;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, reconnect_server, &r), 0);
	assert_int_equal(scs_cw_provision(st, 0, 0, CWS, 8, 2, AC, 4, 4000), 0);
	assert_int_equal(scs_ecm_get(st, 0, IO_MS, ecm, sizeof(ecm), &len), 0);
	pthread_join(th, NULL);
	assert_int_equal(len, 188);
	assert_int_equal(r.types2[0], SC_ECM_CHANNEL_SETUP);
	assert_int_equal(r.types2[1], SC_ECM_STREAM_SETUP);
	assert_int_equal(r.types2[2], SC_ECM_CW_PROVISION);
	assert_int_equal(r.prov1_len, r.prov2_len);
	assert_memory_equal(r.prov1, r.prov2, r.prov1_len);
	scs_channel_stats(ch, &stats);
	assert_int_equal(stats.disconnects, 1);
	assert_int_equal(stats.reconnects, 1);
	assert_int_equal(stats.connects, 2);
	assert_int_equal(stats.cw_provisions, 2);
	scs_channel_free(ch);
	peer_close(&p);
}

/* Main down: the client sets the channel up on the backup. */
static void test_failover(void **state)
{
	struct script s;
	struct scs_config c;
	struct scs_channel *ch = NULL;
	struct scs_stream *st = NULL;
	struct scs_stats stats;
	uint16_t port, dead = dead_port();

	(void)state;
	script_start(&s, CAP_V2, &port);
	s.upto = 4;
	cfg_init(&c, dead, 2);
	snprintf(c.backup_addr, sizeof(c.backup_addr), "127.0.0.1:%u", port);
	assert_int_equal(scs_channel_new(&c, &ch), 0);
	assert_int_equal(scs_channel_open(ch), 0);
	assert_int_equal(scs_stream_open(ch, 1, 1, 4000, &st), 0);
	scs_channel_stats(ch, &stats);
	assert_true(stats.on_backup);
	assert_int_equal(stats.failovers, 1);
	assert_int_equal(stats.connect_failures, 1);
	assert_int_equal(stats.connects, 1);
	scs_channel_free(ch);
	pthread_join(s.th, NULL);
	assert_true(s.nrec >= 2);
	assert_memory_equal(s.rec[0], s.cap[0].bytes, s.cap[0].len);
	close(s.lfd);
	for (size_t i = 0; i < s.nrec; i++)
		free(s.rec[i]);
	tu_capture_free(s.cap, s.ncap);
}

static void test_bad_config(void **state)
{
	struct scs_config c;
	struct scs_channel *ch = NULL;
	struct scs_stream *st = NULL;
	uint8_t buf[8];
	size_t len = 9;

	(void)state;
	cfg_init(&c, 2222, 2);
	snprintf(c.main_addr, sizeof(c.main_addr), "nohostport");
	assert_int_equal(scs_channel_new(&c, &ch), CE_ARG);
	cfg_init(&c, 2222, 4);
	assert_int_equal(scs_channel_new(&c, &ch), CE_ARG);
	cfg_init(&c, 0, 2);
	assert_int_equal(scs_channel_new(&c, &ch), CE_ARG);
	cfg_init(&c, dead_port(), 2);
	c.retry_ms = 60000;
	assert_int_equal(scs_channel_new(&c, &ch), 0);
	assert_int_not_equal(scs_channel_open(ch), 0);
	assert_int_equal(scs_stream_open(ch, 1, 1, 1000, &st), CE_CLOSED);
	assert_int_equal(scs_cw_provision(NULL, 0, 0, CWS, 8, 2, AC, 4, 0), CE_ARG);
	assert_int_equal(scs_ecm_get(NULL, 0, 0, buf, sizeof(buf), &len), CE_ARG);
	assert_int_equal(len, 0);
	scs_channel_free(ch);
	scs_channel_free(NULL);
	scs_stream_close(NULL);
}

/* ------------------------------------------------------------------ */
/* (3) end to end through a real `castellan ecmg`                      */

static int run_wait(char *const argv[], const char *log)
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		FILE *f = log ? freopen(log, "w", stderr) : NULL;

		(void)f;
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_e2e_castellan_ecmg(void **state)
{
	const char *env = getenv("CASTELLAN_BIN");
	char bin[4096], inp[4096];
	char dir[] = "/tmp/castellan-scs-XXXXXX", ks[256], pf[256], out[256], listen[64], stats[256];
	char *help[] = { bin, (char *)"ecmg", (char *)"--help", NULL };
	pid_t ecmg;
	uint16_t port = dead_port();
	uint8_t *ts;
	size_t len, nscr = 0, necm = 0;
	int rc;

	(void)state;
	snprintf(bin, sizeof(bin), "%s", env ? env : "");
	snprintf(inp, sizeof(inp), "%s", tu_testdata("ts-clear-2svc.ts"));
	if (!env || run_wait(help, "/dev/null") != 0) {
		print_message("castellan ecmg not built: skipped\n");
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(ks, sizeof(ks), "%s/ks", dir);
	snprintf(pf, sizeof(pf), "%s/pass", dir);
	snprintf(out, sizeof(out), "%s/out.ts", dir);
	snprintf(stats, sizeof(stats), "%s/stats.json", dir);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	assert_int_equal(file_write_atomic(pf, "test-passphrase-scs", 19, 0600), 0);
	{
		char *a[] = { bin, (char *)"keys", (char *)"init", (char *)"--out", ks,
			(char *)"--ca-system-id", (char *)"0x4ADC", (char *)"--passphrase-file", pf, NULL };

		assert_int_equal(run_wait(a, NULL), 0);
	}
	ecmg = fork();
	assert_true(ecmg >= 0);
	if (ecmg == 0) {
		char *a[] = { bin, (char *)"ecmg", (char *)"--listen", listen, (char *)"--keystore", ks,
			(char *)"--passphrase-file", pf, NULL };

		if (!freopen("/dev/null", "w", stderr))
			_exit(126);
		execv(bin, a);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) { /* bounded wait for the port */
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		bool up;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (up)
			break;
		usleep(50000);
	}
	{
		char *a[] = { bin, (char *)"scramble", (char *)"--input",
			inp, (char *)"--output", out,
			(char *)"--service", (char *)"101:ac=00000001", (char *)"--service", (char *)"102:ac=00000002",
			(char *)"--ecmg", listen, (char *)"--super-cas-id", (char *)"0x4ADC0001",
			(char *)"--cp-duration", (char *)"1", (char *)"--stats-json", stats, NULL };

		rc = run_wait(a, NULL);
	}
	kill(ecmg, SIGTERM);
	waitpid(ecmg, NULL, 0);
	assert_int_equal(rc, 0);
	ts = tu_read(out, &len);
	assert_int_equal(len % 188, 0);
	for (size_t i = 0; i < len / 188; i++) {
		const uint8_t *p = ts + i * 188;
		uint16_t pid = (uint16_t)(((p[1] & 0x1F) << 8) | p[2]);

		if ((pid == 0x100 || pid == 0x101 || pid == 0x102 || pid == 0x103) && (p[3] >> 6) >= 2)
			nscr++;
		if (pid == 0x1002 || pid == 0x1003)
			necm++;
	}
	assert_true(nscr > 1000);
	assert_true(necm >= 4);
	free(ts);
	{
		uint8_t *js = tu_read(stats, &len);

		/* every stream got ECMs through SimulCrypt, no timeouts */
		assert_non_null(memmem(js, len, "\"ecm_response_received\"", 23));
		assert_null(memmem(js, len, "\"timeouts\": 1", 13));
		free(js);
	}
	unlink(ks);
	unlink(pf);
	unlink(out);
	unlink(stats);
	rmdir(dir);
}

/* `castellan scramble` starts while its ECMG is down (nothing listens on
 * the port); the input comes through a pipe, paced. The ECMG starts a
 * moment later: the scrambler's retry finds it, and the output carries
 * ECMs and scrambled packets; the stats show the stream open after failed
 * attempts. (Descrambling with these ECMs needs the subscriber side; the
 * CW/ECM matching after a late start is checked with the fake ECM source
 * in test_scrambler.c, test_ecmg_down_at_start.) */
static void test_e2e_ecmg_late(void **state)
{
	const char *env = getenv("CASTELLAN_BIN");
	char bin[4096];
	char dir[] = "/tmp/castellan-late-XXXXXX", ks[256], pf[256], out[256], listen[64], stats[256];
	char *help[] = { bin, (char *)"ecmg", (char *)"--help", NULL };
	pid_t ecmg, scr;
	uint16_t port = dead_port();
	uint8_t *in, *ts, *js;
	size_t inlen = 0, len, nscr = 0, necm = 0, first = 0, nclear = 0;
	int pfd[2], status = 0;

	(void)state;
	snprintf(bin, sizeof(bin), "%s", env ? env : "");
	if (!env || run_wait(help, "/dev/null") != 0) {
		print_message("castellan ecmg not built: skipped\n");
		skip();
	}
	in = tu_read(tu_testdata("ts-clear-2svc.ts"), &inlen);
	assert_non_null(mkdtemp(dir));
	snprintf(ks, sizeof(ks), "%s/ks", dir);
	snprintf(pf, sizeof(pf), "%s/pass", dir);
	snprintf(out, sizeof(out), "%s/out.ts", dir);
	snprintf(stats, sizeof(stats), "%s/stats.json", dir);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	assert_int_equal(file_write_atomic(pf, "test-passphrase-scs", 19, 0600), 0);
	{
		char *a[] = { bin, (char *)"keys", (char *)"init", (char *)"--out", ks,
			(char *)"--ca-system-id", (char *)"0x4ADC", (char *)"--passphrase-file", pf, NULL };

		assert_int_equal(run_wait(a, NULL), 0);
	}
	assert_int_equal(pipe(pfd), 0);
	scr = fork();
	assert_true(scr >= 0);
	if (scr == 0) {
		char *a[] = { bin, (char *)"scramble", (char *)"--input", (char *)"-", (char *)"--output", out,
			(char *)"--service", (char *)"101", (char *)"--ecmg", listen, (char *)"--super-cas-id",
			(char *)"0x4ADC0001", (char *)"--cp-duration", (char *)"0.2", (char *)"--ecmg-retry-ms",
			(char *)"50", (char *)"--stats-json", stats, NULL };

		dup2(pfd[0], 0);
		close(pfd[0]);
		close(pfd[1]);
		if (!freopen("/dev/null", "w", stderr))
			_exit(126);
		execv(bin, a);
		_exit(127);
	}
	close(pfd[0]);
	/* a quarter of the input with no ECMG */
	first = (inlen / 188 / 4) * 188;
	assert_int_equal(write(pfd[1], in, first), (ssize_t)first);
	usleep(200000);
	ecmg = fork();
	assert_true(ecmg >= 0);
	if (ecmg == 0) {
		char *a[] = { bin, (char *)"ecmg", (char *)"--listen", listen, (char *)"--keystore", ks,
			(char *)"--passphrase-file", pf, (char *)"--min-cp-duration", (char *)"1", NULL };

		close(pfd[1]);
		if (!freopen("/dev/null", "w", stderr))
			_exit(126);
		execv(bin, a);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) { /* bounded wait: the ECMG opens its keystore */
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		bool up;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (up)
			break;
		usleep(50000);
	}
	/* the rest, paced (about 3 s) so the retry back-off (50 ms doubling,
	 * at most 4 s apart) finds the ECMG before the end */
	for (size_t off = first; off < inlen; off += 64 * 188) {
		size_t n = inlen - off < 64 * 188 ? inlen - off : 64 * 188;

		assert_int_equal(write(pfd[1], in + off, n), (ssize_t)n);
		usleep(60000);
	}
	close(pfd[1]);
	assert_true(waitpid(scr, &status, 0) == scr);
	kill(ecmg, SIGTERM);
	waitpid(ecmg, NULL, 0);
	/* the packets before the ECMG came were withheld: the output is not
	 * the whole programme, and the exit status says so */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	ts = tu_read(out, &len);
	assert_int_equal(len % 188, 0);
	for (size_t i = 0; i < len / 188; i++) {
		const uint8_t *p = ts + i * 188;
		uint16_t pid = (uint16_t)(((p[1] & 0x1F) << 8) | p[2]);

		if ((pid == 0x100 || pid == 0x101) && (p[3] >> 6) >= 2)
			nscr++;
		if ((pid == 0x100 || pid == 0x101) && (p[3] >> 6) == 0 && (p[3] & 0x10))
			nclear++;
		if (pid == 0x1002)
			necm++;
	}
	print_message("late ECMG: %zu scrambled, %zu clear, %zu ECM packets\n", nscr, nclear, necm);
	assert_true(nscr > 100);
	assert_true(necm >= 2);
	assert_int_equal(nclear, 0); /* never in clear */
	free(ts);
	js = tu_read(stats, &len);
	assert_non_null(memmem(js, len, "\"open\": true", 12));
	assert_non_null(memmem(js, len, "\"connected\": true", 17));
	assert_null(memmem(js, len, "\"open_failures\": 0,", 19));
	assert_null(memmem(js, len, "\"pkts_withheld\": 0,", 19));
	assert_non_null(memmem(js, len, "\"clear_pkts_failure\": 0,", 24));
	free(js);
	free(in);
	unlink(ks);
	unlink(pf);
	unlink(out);
	unlink(stats);
	rmdir(dir);
}

/* Issue 16 item 1 through the command: `castellan scramble` from a file
 * with its ECMG unreachable for the whole run exits non-zero, leaves no
 * payload of the pay service in clear, and counts what it withheld. */
static void test_e2e_no_ecmg_fails_closed(void **state)
{
	const char *env = getenv("CASTELLAN_BIN");
	char bin[4096], inp[4096];
	char dir[] = "/tmp/castellan-noecmg-XXXXXX", out[256], listen[64], stats[256];
	uint16_t port = dead_port();
	uint8_t *ts, *js;
	size_t len, nclear = 0, nwithheld = 0;
	int rc;

	(void)state;
	if (!env) {
		print_message("CASTELLAN_BIN not set: skipped\n");
		skip();
	}
	snprintf(bin, sizeof(bin), "%s", env);
	snprintf(inp, sizeof(inp), "%s", tu_testdata("ts-clear-2svc.ts"));
	assert_non_null(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s/out.ts", dir);
	snprintf(stats, sizeof(stats), "%s/stats.json", dir);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	{
		char *a[] = { bin, (char *)"scramble", (char *)"--input", inp, (char *)"--output", out,
			(char *)"--service", (char *)"101", (char *)"--ecmg", listen, (char *)"--super-cas-id",
			(char *)"0x4ADC0001", (char *)"--cp-duration", (char *)"0.5", (char *)"--ecm-timeout-ms",
			(char *)"1000", (char *)"--stats-json", stats, NULL };

		rc = run_wait(a, "/dev/null");
	}
	assert_int_equal(rc, 1);
	ts = tu_read(out, &len);
	for (size_t i = 0; i < len / 188; i++) {
		const uint8_t *p = ts + i * 188;
		uint16_t pid = (uint16_t)(((p[1] & 0x1F) << 8) | p[2]);

		if (pid != 0x100 && pid != 0x101)
			continue;
		if (p[3] & 0x10)
			nclear++;
		else
			nwithheld++;
	}
	assert_int_equal(nclear, 0);
	assert_true(nwithheld > 500); /* 839 payload packets on 0x100, 0x101 */
	js = tu_read(stats, &len);
	assert_null(memmem(js, len, "\"pkts_withheld\": 0,", 19));
	assert_non_null(memmem(js, len, "\"cp_changes\": 0,", 16));
	free(js);
	free(ts);
	unlink(out);
	unlink(stats);
	rmdir(dir);
}

/* Issue 16 item 5: two scramblers on one `castellan ecmg`, both with the
 * default ECM_channel_id 1 (scoped to each connection), the second with
 * --ecm-id 3 (the first uses 1): the second gets its ECMs, exits 0, and
 * nothing is withheld. Before: channel_id_in_use, then ECM_id_in_use. */
static void test_e2e_two_scramblers_one_ecmg(void **state)
{
	const char *env = getenv("CASTELLAN_BIN");
	char bin[4096], inp[4096];
	char dir[] = "/tmp/castellan-two-XXXXXX", ks[256], pf[256], out1[256], out2[256], listen[64], stats[256];
	char *help[] = { bin, (char *)"ecmg", (char *)"--help", NULL };
	pid_t ecmg, scr1;
	uint16_t port = dead_port();
	uint8_t *in, *js;
	size_t inlen = 0, len;
	int pfd[2], rc;

	(void)state;
	snprintf(bin, sizeof(bin), "%s", env ? env : "");
	snprintf(inp, sizeof(inp), "%s", tu_testdata("ts-clear-2svc.ts"));
	if (!env || run_wait(help, "/dev/null") != 0) {
		print_message("castellan ecmg not built: skipped\n");
		skip();
	}
	in = tu_read(inp, &inlen);
	assert_non_null(mkdtemp(dir));
	snprintf(ks, sizeof(ks), "%s/ks", dir);
	snprintf(pf, sizeof(pf), "%s/pass", dir);
	snprintf(out1, sizeof(out1), "%s/out1.ts", dir);
	snprintf(out2, sizeof(out2), "%s/out2.ts", dir);
	snprintf(stats, sizeof(stats), "%s/stats.json", dir);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	assert_int_equal(file_write_atomic(pf, "test-passphrase-scs", 19, 0600), 0);
	{
		char *a[] = { bin, (char *)"keys", (char *)"init", (char *)"--out", ks,
			(char *)"--ca-system-id", (char *)"0x4ADC", (char *)"--passphrase-file", pf, NULL };

		assert_int_equal(run_wait(a, NULL), 0);
	}
	ecmg = fork();
	assert_true(ecmg >= 0);
	if (ecmg == 0) {
		char *a[] = { bin, (char *)"ecmg", (char *)"--listen", listen, (char *)"--keystore", ks,
			(char *)"--passphrase-file", pf, NULL };

		if (!freopen("/dev/null", "w", stderr))
			_exit(126);
		execv(bin, a);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) { /* bounded wait for the port */
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		bool up;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (up)
			break;
		usleep(50000);
	}
	/* scrambler 1: live from a pipe, channel 1, ECM_ids 1 and 2; it holds
	 * its channel and streams while the pipe stays open */
	assert_int_equal(pipe(pfd), 0);
	scr1 = fork();
	assert_true(scr1 >= 0);
	if (scr1 == 0) {
		char *a[] = { bin, (char *)"scramble", (char *)"--input", (char *)"-", (char *)"--output", out1,
			(char *)"--service", (char *)"101", (char *)"--service", (char *)"102", (char *)"--ecmg", listen,
			(char *)"--super-cas-id", (char *)"0x4ADC0001", (char *)"--cp-duration", (char *)"1", NULL };

		dup2(pfd[0], 0);
		close(pfd[0]);
		close(pfd[1]);
		if (!freopen("/dev/null", "w", stderr))
			_exit(126);
		execv(bin, a);
		_exit(127);
	}
	close(pfd[0]);
	assert_int_equal(write(pfd[1], in, 188 * 600), 188 * 600); /* it sets its streams up */
	usleep(500000);
	/* scrambler 2: same ECMG, default channel id 1, ECM_id 3 */
	{
		char *a[] = { bin, (char *)"scramble", (char *)"--input", inp, (char *)"--output", out2,
			(char *)"--service", (char *)"101", (char *)"--ecmg", listen, (char *)"--super-cas-id",
			(char *)"0x4ADC0001", (char *)"--ecm-id", (char *)"3", (char *)"--cp-duration", (char *)"1",
			(char *)"--stats-json", stats, NULL };

		rc = run_wait(a, "/dev/null");
	}
	close(pfd[1]);
	waitpid(scr1, NULL, 0);
	kill(ecmg, SIGTERM);
	waitpid(ecmg, NULL, 0);
	assert_int_equal(rc, 0);
	js = tu_read(stats, &len);
	assert_non_null(memmem(js, len, "\"ecm_id\": 3", 11));
	assert_non_null(memmem(js, len, "\"pkts_withheld\": 0,", 19));
	assert_non_null(memmem(js, len, "\"cp_failures\": 0,", 17));
	assert_non_null(memmem(js, len, "\"channel_errors\": 0,", 20));
	free(js);
	free(in);
	unlink(ks);
	unlink(pf);
	unlink(out1);
	unlink(out2);
	unlink(stats);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capture_v2),
		cmocka_unit_test(test_capture_v3_sections),
		cmocka_unit_test(test_version_mismatch),
		cmocka_unit_test(test_channel_error_at_setup),
		cmocka_unit_test(test_stream_error),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_garbage_flood),
		cmocka_unit_test(test_tests),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_e2e_castellan_ecmg),
		cmocka_unit_test(test_e2e_no_ecmg_fails_closed),
		cmocka_unit_test(test_e2e_two_scramblers_one_ecmg),
		cmocka_unit_test(test_e2e_ecmg_late),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
