/*
 * test_ecmg.c - the ECMG over real TCP sockets on 127.0.0.1: the ECMG runs
 * in a thread (ecmg_run) or as a child process (`castellan ecmg`).
 *
 * - replays the SCS side of TSDuck's captured exchanges (v2 TS packets, v3
 *   sections, v2 multi-stream over one connection per channel) and checks our
 *   answers against TSDuck's ECMG answers: same bytes for every message but
 *   ECM_response, and for ECM_response the same parameters, a datagram of
 *   whole TS packets (or one section) whose ECM parses (src/cas/ecm.h) and
 *   opens with the package keys to give back the CWs the SCS sent;
 * - many connections at once, each with its own channel and streams;
 * - every error path, table-driven, and whether the connection survives;
 * - idle/setup timeouts, limits, the child-process CLI and its clean exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/bytes.h"
#include "testutil.h"
#include "cas/ecm.h"
#include "cas/keys.h"
#include "headend/ecmg.h"
#include "lib/log.h"
#include "lib/util.h"
#include "simulcrypt/simulcrypt.h"
#include "ts/ts.h"

#define RX_TIMEOUT_S 5
#define SCID 0x4ADC0001u

static const uint8_t ROOT[KEYSTORE_ROOT_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

/* ------------------------------------------------------------------ */
/* fixture: an ECMG in a thread                                         */

struct fix {
	struct keystore *ks;
	struct ecmg *g;
	pthread_t th;
	uint16_t port;
	int run_rc;
};

static void *run_thread(void *arg)
{
	struct fix *f = arg;

	f->run_rc = ecmg_run(f->g);
	return NULL;
}

static struct fix *fix_start(void (*tweak)(struct ecmg_config *))
{
	struct fix *f = calloc(1, sizeof(*f));
	struct ecmg_config cfg;

	assert_non_null(f);
	assert_int_equal(keystore_from_root(0x4ADC, 0, ROOT, &f->ks), 0);
	ecmg_config_init(&cfg);
	cfg.listen = "127.0.0.1:0";
	cfg.ks = f->ks;
	if (tweak)
		tweak(&cfg);
	assert_int_equal(ecmg_new(&cfg, &f->g), 0);
	assert_int_equal(ecmg_start(f->g), 0);
	f->port = ecmg_port(f->g);
	assert_true(f->port != 0);
	assert_int_equal(pthread_create(&f->th, NULL, run_thread, f), 0);
	return f;
}

static void fix_stop(struct fix *f)
{
	ecmg_stop(f->g);
	assert_int_equal(pthread_join(f->th, NULL), 0);
	assert_int_equal(f->run_rc, 0);
	ecmg_free(f->g);
	keystore_free(f->ks);
	free(f);
}

/* ------------------------------------------------------------------ */
/* socket helpers                                                       */

/* Connect to 127.0.0.1:port from the local address src (any 127.x works on
 * Linux loopback): another "peer" for the per-peer limits. */
static int tcp_connect_from(const char *src, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in b = { .sin_family = AF_INET };
	struct timeval tv = { RX_TIMEOUT_S, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, src, &b.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { RX_TIMEOUT_S, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void send_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

/* Read exactly n bytes: 0, or -1 on EOF / error / timeout. */
static int recv_n(int fd, uint8_t *b, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, b, n, 0);

		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One whole message into buf; returns its length, fails the test on EOF. */
static size_t recv_msg(int fd, uint8_t *buf, size_t cap)
{
	size_t fl;

	assert_int_equal(recv_n(fd, buf, SC_HEADER_BYTES), 0);
	fl = sc_frame_len(buf);
	assert_true(fl <= cap);
	assert_int_equal(recv_n(fd, buf + SC_HEADER_BYTES, fl - SC_HEADER_BYTES), 0);
	return fl;
}

/* true if the peer closed the connection (EOF before the timeout). */
static bool peer_closed(int fd)
{
	uint8_t b[256];

	for (;;) {
		ssize_t r = recv(fd, b, sizeof(b), 0);

		if (r == 0)
			return true;
		if (r < 0)
			return errno == ECONNRESET;
	}
}

struct rx {
	uint8_t buf[8192];
	size_t len;
	struct sc_msg m;
};

static void recv_decode(int fd, uint8_t version, struct rx *rx)
{
	rx->len = recv_msg(fd, rx->buf, sizeof(rx->buf));
	assert_int_equal(sc_decode(SC_ECMG_SCS, version, rx->buf, rx->len, &rx->m, NULL), 0);
}

static uint16_t get16(const struct sc_msg *m, uint16_t p)
{
	uint16_t v = 0;

	assert_int_equal(sc_get_u16(m, p, &v), 0);
	return v;
}

/* ------------------------------------------------------------------ */
/* message builders (the SCS side)                                      */

static size_t mk_channel_setup(uint8_t *b, uint8_t ver, uint16_t ch, uint32_t scid)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, b, 256, ver, SC_ECM_CHANNEL_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u32(&sw, SC_P_SUPER_CAS_ID, scid);
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}

static size_t mk_ch(uint8_t *b, uint8_t ver, uint16_t type, uint16_t ch)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, b, 256, ver, type);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}

static size_t mk_st(uint8_t *b, uint8_t ver, uint16_t type, uint16_t ch, uint16_t st)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, b, 256, ver, type);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, st);
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}

static size_t mk_stream_setup(uint8_t *b, uint8_t ver, uint16_t ch, uint16_t st, uint16_t ecm_id, uint16_t ncp)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, b, 256, ver, SC_ECM_STREAM_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, st);
	sc_put_u16(&sw, SC_P_ECM_ID, ecm_id);
	sc_put_u16(&sw, SC_P_NOMINAL_CP_DURATION, ncp);
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}

/* CW_provision for cp with ncw CWs of cw_len bytes for cp, cp+1, ...;
 * CW bytes are derived from (stream, CP) so the test can recompute them. */
static void test_cw(uint16_t st, uint16_t cp, size_t cw_len, uint8_t *cw)
{
	for (size_t i = 0; i < cw_len; i++)
		cw[i] = (uint8_t)(st * 31 + cp * 7 + i * 13 + 1);
}

static size_t mk_cw_provision(uint8_t *b, uint8_t ver, uint16_t ch, uint16_t st, uint16_t cp, size_t ncw,
	size_t cw_len, const uint8_t *ac, size_t ac_len)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, b, 512, ver, SC_ECM_CW_PROVISION);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, st);
	sc_put_u16(&sw, SC_P_CP_NUMBER, cp);
	sc_put_u16(&sw, SC_P_CP_DURATION, 40);
	if (ac)
		sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, ac, ac_len);
	for (size_t i = 0; i < ncw; i++) {
		uint8_t comb[2 + CW_MAX_BYTES];

		put_be16(comb, (uint16_t)(cp + i));
		test_cw(st, (uint16_t)(cp + i), cw_len, comb + 2);
		sc_put_bytes(&sw, SC_P_CP_CW_COMBINATION, comb, 2 + cw_len);
	}
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}

/* ------------------------------------------------------------------ */
/* ECM checks                                                           */

/* The section inside an ECM_datagram (whole TS packets or one section). */
static size_t datagram_section(const struct sc_param *d, bool sections, uint8_t *sec, size_t cap)
{
	size_t len = 0, need;

	if (sections) {
		assert_true(d->len >= 3 && d->len <= cap);
		memcpy(sec, d->val, d->len);
		return d->len;
	}
	assert_true(d->len > 0 && d->len % TS_PACKET_BYTES == 0);
	assert_true(d->len / TS_PACKET_BYTES <= 6); /* a 1024-byte section fits 6 packets */
	for (size_t i = 0; i < d->len / TS_PACKET_BYTES; i++) {
		const uint8_t *p = d->val + i * TS_PACKET_BYTES;
		struct ts_hdr h;
		size_t off;

		assert_int_equal(ts_parse(p, &h), 0);
		assert_int_equal(p[0], 0x47);
		assert_int_equal(h.scrambling, 0);
		assert_int_equal(h.pusi, i == 0);
		off = h.payload_off + (i == 0 ? 1u + p[h.payload_off] : 0u);
		assert_true(off <= TS_PACKET_BYTES);
		assert_true(len + (TS_PACKET_BYTES - off) <= cap);
		memcpy(sec + len, p + off, TS_PACKET_BYTES - off);
		len += TS_PACKET_BYTES - off;
	}
	need = 3 + (((size_t)(sec[1] & 0x0F) << 8) | sec[2]);
	assert_true(need <= len);
	for (size_t i = need; i < len; i++)
		assert_int_equal(sec[i], 0xFF); /* stuffing */
	return need;
}

/* Check one ECM_response: parse the ECM, open it with every package key of
 * the mask and compare the CWs with the CP_CW_combinations sent. */
static void check_ecm(const struct keystore *ks, const struct sc_msg *resp, const struct sc_msg *prov,
	uint16_t ecm_id, uint32_t mask, bool sections)
{
	const struct sc_param *d = sc_get_nth(resp, SC_P_ECM_DATAGRAM, 0);
	uint8_t sec[2048];
	size_t slen;
	struct ecm_view v;
	uint16_t cp = get16(prov, SC_P_CP_NUMBER);
	unsigned opened = 0;

	assert_non_null(d);
	assert_int_equal(get16(resp, SC_P_CP_NUMBER), cp);
	slen = datagram_section(d, sections, sec, sizeof(sec));
	assert_int_equal(ecm_parse(sec, slen, &v), 0);
	assert_int_equal(v.table_id, cp & 1 ? ECM_TABLE_ODD : ECM_TABLE_EVEN);
	assert_int_equal(v.cp_number, cp);
	assert_int_equal(v.ecm_id, ecm_id);
	assert_int_equal(v.ca_system_id, 0x4ADC);
	assert_int_equal(v.package_mask, mask);
	assert_int_equal(v.cw_mask, ECM_HAS_EVEN | ECM_HAS_ODD);
	for (unsigned pkg = 0; pkg < 32; pkg++) {
		struct pkg_key k;
		struct ecm_cws cws;

		assert_int_equal(keystore_package_key(ks, v.epoch, pkg, &k), 0);
		if (!(mask & (1u << pkg))) {
			assert_int_equal(ecm_open(&v, &k, &cws), CE_NOT_ENTITLED);
			continue;
		}
		assert_int_equal(ecm_open(&v, &k, &cws), 0);
		for (size_t i = 0; i < sc_count(prov, SC_P_CP_CW_COMBINATION); i++) {
			const struct sc_param *c = sc_get_nth(prov, SC_P_CP_CW_COMBINATION, i);
			uint16_t ccp = tu_be16(c->val);

			assert_int_equal(cws.cw_len, c->len - 2u);
			assert_memory_equal(ccp & 1 ? cws.odd : cws.even, c->val + 2, c->len - 2u);
		}
		ecm_cws_wipe(&cws);
		pkg_key_wipe(&k);
		opened++;
	}
	assert_true(opened > 0);
}

/* ------------------------------------------------------------------ */
/* capture replay                                                       */

struct replay_conn {
	bool used;
	uint16_t channel;
	int fd;
	uint16_t ecm_id[8]; /* by stream id (< 8 in the captures) */
};

static struct replay_conn *conn_for(struct replay_conn *rc, size_t n, uint16_t ch, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (rc[i].used && rc[i].channel == ch)
			return &rc[i];
	for (size_t i = 0; i < n; i++) {
		if (!rc[i].used) {
			rc[i].used = true;
			rc[i].channel = ch;
			rc[i].fd = tcp_connect(port);
			return &rc[i];
		}
	}
	fail_msg("too many channels in the capture");
	return NULL;
}

static uint16_t expected_reply(uint16_t type)
{
	switch (type) {
	case SC_ECM_CHANNEL_SETUP:
	case SC_ECM_CHANNEL_TEST:
		return SC_ECM_CHANNEL_STATUS;
	case SC_ECM_STREAM_SETUP:
	case SC_ECM_STREAM_TEST:
		return SC_ECM_STREAM_STATUS;
	case SC_ECM_STREAM_CLOSE_REQUEST:
		return SC_ECM_STREAM_CLOSE_RESPONSE;
	case SC_ECM_CW_PROVISION:
		return SC_ECM_ECM_RESPONSE;
	default:
		return 0;
	}
}

static uint8_t g_version;
static bool g_sections;

static void tweak_replay(struct ecmg_config *c)
{
	c->version = g_version;
	c->sections = g_sections;
}

static void replay(const char *capture, uint8_t version, bool sections)
{
	struct tu_capmsg *cap;
	size_t ncap, ecms = 0;
	struct replay_conn rc[4] = { 0 };
	struct fix *f;
	struct rx *rx = calloc(1, sizeof(*rx));
	struct sc_msg *sm = calloc(1, sizeof(*sm)), *tm = calloc(1, sizeof(*tm));
	struct ecmg_stats st;

	assert_non_null(rx);
	assert_non_null(sm);
	assert_non_null(tm);
	g_version = version;
	g_sections = sections;
	f = fix_start(tweak_replay);
	cap = tu_capture_load(capture, &ncap);
	assert_true(ncap > 4);
	for (size_t i = 0; i < ncap; i++) {
		struct replay_conn *c;
		uint16_t ch, want;

		if (strcmp(cap[i].dir, "SCS>ECMG") != 0)
			continue;
		assert_int_equal(sc_decode(SC_ECMG_SCS, version, cap[i].bytes, cap[i].len, sm, NULL), 0);
		ch = get16(sm, SC_P_ECM_CHANNEL_ID);
		c = conn_for(rc, 4, ch, f->port);
		send_all(c->fd, cap[i].bytes, cap[i].len);
		if (sm->type == SC_ECM_STREAM_SETUP)
			c->ecm_id[get16(sm, SC_P_ECM_STREAM_ID) & 7] = get16(sm, SC_P_ECM_ID);
		want = expected_reply(sm->type);
		if (sm->type == SC_ECM_CHANNEL_CLOSE) {
			assert_true(peer_closed(c->fd)); /* we close after channel_close */
			continue;
		}
		assert_true(want != 0);
		recv_decode(c->fd, version, rx);
		assert_int_equal(rx->m.type, want);
		assert_int_equal(get16(&rx->m, SC_P_ECM_CHANNEL_ID), ch);
		/* TSDuck's answer, when the capture has it right after */
		if (i + 1 < ncap && strcmp(cap[i + 1].dir, "ECMG>SCS") == 0 &&
		    sc_decode(SC_ECMG_SCS, version, cap[i + 1].bytes, cap[i + 1].len, tm, NULL) == 0 &&
		    get16(tm, SC_P_ECM_CHANNEL_ID) == ch) {
			assert_int_equal(tm->type, rx->m.type);
			assert_int_equal(tm->nparams, rx->m.nparams);
			for (size_t p = 0; p < tm->nparams; p++)
				assert_int_equal(tm->params[p].type, rx->m.params[p].type);
			if (want != SC_ECM_ECM_RESPONSE) {
				/* same defaults as tsecmg: byte-identical */
				assert_int_equal(rx->len, cap[i + 1].len);
				assert_memory_equal(rx->buf, cap[i + 1].bytes, rx->len);
			} else if (!sections) {
				/* 2 packages: our ECM fits one TS packet, like TSDuck's */
				assert_int_equal(sc_get_nth(&rx->m, SC_P_ECM_DATAGRAM, 0)->len,
					sc_get_nth(tm, SC_P_ECM_DATAGRAM, 0)->len);
			}
		}
		if (want == SC_ECM_ECM_RESPONSE) {
			const struct sc_param *ac = sc_get_nth(sm, SC_P_ACCESS_CRITERIA, 0);

			assert_non_null(ac);
			check_ecm(f->ks, &rx->m, sm, c->ecm_id[get16(sm, SC_P_ECM_STREAM_ID) & 7], tu_be32(ac->val),
				sections);
			ecms++;
		}
	}
	ecmg_stats(f->g, &st);
	assert_int_equal(st.ecms, ecms);
	assert_int_equal(st.errors_sent, 0);
	assert_int_equal(st.bad_messages, 0);
	for (size_t i = 0; i < 4; i++)
		if (rc[i].used)
			close(rc[i].fd);
	tu_capture_free(cap, ncap);
	fix_stop(f);
	free(rx);
	free(sm);
	free(tm);
}

static void test_replay_v2(void **state)
{
	replay("simulcrypt/captures/ecmg-scs-v2.hex.txt", 2, false);
}

static void test_replay_v3_sections(void **state)
{
	replay("simulcrypt/captures/ecmg-scs-v3-sections.hex.txt", 3, true);
}

static void test_replay_v2_multistream(void **state)
{
	replay("simulcrypt/captures/ecmg-scs-v2-multistream.hex.txt", 2, false);
}

/* The v2 ECMG answers TSDuck's v3 channel_setup exactly as tsecmg did. */
static void test_version_mismatch_capture(void **state)
{
	struct tu_capmsg *cap;
	size_t ncap;
	struct fix *f = fix_start(NULL);
	uint8_t buf[512];
	size_t n;
	int fd = tcp_connect(f->port);

	cap = tu_capture_load("simulcrypt/captures/version-mismatch.hex.txt", &ncap);
	assert_true(ncap >= 2);
	assert_string_equal(cap[0].dir, "SCS>ECMG");
	send_all(fd, cap[0].bytes, cap[0].len);
	n = recv_msg(fd, buf, sizeof(buf));
	assert_int_equal(n, cap[1].len);
	assert_memory_equal(buf, cap[1].bytes, n);
	/* the v3 SCS's own channel_error is not answered (no ping-pong): the next
	 * thing we hear is the answer to a valid channel_test... of no channel */
	send_all(fd, cap[2].bytes, cap[2].len);
	n = mk_ch(buf, 2, SC_ECM_CHANNEL_SETUP, 0);
	n = mk_channel_setup(buf, 2, 7, SCID);
	send_all(fd, buf, n);
	n = recv_msg(fd, buf, sizeof(buf));
	assert_int_equal(tu_be16(buf + 1), SC_ECM_CHANNEL_STATUS);
	close(fd);
	tu_capture_free(cap, ncap);
	fix_stop(f);
}

/* ------------------------------------------------------------------ */
/* many SCS connections at once                                         */

#define NCONN 16

static void test_concurrent(void **state)
{
	struct fix *f = fix_start(NULL);
	int fd[NCONN];
	uint8_t b[512];
	struct rx *rx = calloc(1, sizeof(*rx));
	struct sc_msg *pm = calloc(1, sizeof(*pm));
	const uint8_t ac[4] = { 0, 0, 0, 0x05 };
	struct ecmg_stats st;
	size_t n;

	assert_non_null(rx);
	assert_non_null(pm);
	for (int i = 0; i < NCONN; i++) {
		fd[i] = tcp_connect(f->port);
		n = mk_channel_setup(b, 2, (uint16_t)(100 + i), SCID);
		send_all(fd[i], b, n);
	}
	for (int i = 0; i < NCONN; i++) {
		recv_decode(fd[i], 2, rx);
		assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
		assert_int_equal(get16(&rx->m, SC_P_ECM_CHANNEL_ID), 100 + i);
		for (uint16_t s = 0; s < 3; s++) {
			n = mk_stream_setup(b, 2, (uint16_t)(100 + i), s, (uint16_t)(1000 + i * 3 + s), 100);
			send_all(fd[i], b, n);
		}
	}
	for (int i = 0; i < NCONN; i++) {
		for (uint16_t s = 0; s < 3; s++) {
			recv_decode(fd[i], 2, rx);
			assert_int_equal(rx->m.type, SC_ECM_STREAM_STATUS);
			assert_int_equal(get16(&rx->m, SC_P_ECM_ID), 1000 + i * 3 + s);
		}
	}
	ecmg_stats(f->g, &st);
	assert_int_equal(st.channels_open, NCONN);
	assert_int_equal(st.streams_open, NCONN * 3);
	/* interleaved crypto-periods: every connection, every stream, 3 CPs */
	for (uint16_t cp = 0; cp < 3; cp++) {
		for (int i = 0; i < NCONN; i++)
			for (uint16_t s = 0; s < 3; s++) {
				n = mk_cw_provision(b, 2, (uint16_t)(100 + i), s, cp, 2, cp == 1 ? 16 : 8, ac, 4);
				send_all(fd[i], b, n);
			}
		for (int i = 0; i < NCONN; i++)
			for (uint16_t s = 0; s < 3; s++) {
				n = mk_cw_provision(b, 2, (uint16_t)(100 + i), s, cp, 2, cp == 1 ? 16 : 8, ac, 4);
				assert_int_equal(sc_decode(SC_ECMG_SCS, 2, b, n, pm, NULL), 0);
				recv_decode(fd[i], 2, rx);
				assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
				assert_int_equal(get16(&rx->m, SC_P_ECM_STREAM_ID), s);
				check_ecm(f->ks, &rx->m, pm, (uint16_t)(1000 + i * 3 + s), 5, false);
			}
	}
	ecmg_stats(f->g, &st);
	assert_int_equal(st.ecms, NCONN * 3 * 3);
	assert_int_equal(st.connections, NCONN);
	for (int i = 0; i < NCONN; i++)
		close(fd[i]);
	free(rx);
	free(pm);
	fix_stop(f);
}

/* ------------------------------------------------------------------ */
/* error paths                                                          */

enum prefix { P_NONE, P_CHANNEL, P_STREAM, P_STREAM_AC };

struct err_case {
	const char *name;
	enum prefix prefix;
	size_t (*build)(uint8_t *b);
	uint16_t reply_type;   /* SC_ECM_CHANNEL_ERROR / SC_ECM_STREAM_ERROR */
	uint16_t status;
	uint16_t info;         /* expected error_information, 0xFFFF = any */
};

static const uint8_t AC3[4] = { 0, 0, 0, 3 };

static size_t b_bad_version(uint8_t *b) { return mk_channel_setup(b, 3, 1, SCID); }
static size_t b_unknown_channel(uint8_t *b) { return mk_ch(b, 2, SC_ECM_CHANNEL_TEST, 9); }
static size_t b_stream_before_channel(uint8_t *b) { return mk_stream_setup(b, 2, 1, 1, 1, 100); }
static size_t b_bad_super_cas(uint8_t *b) { return mk_channel_setup(b, 2, 1, 0x12340001u); }
static size_t b_second_channel(uint8_t *b) { return mk_channel_setup(b, 2, 2, SCID); }
static size_t b_dup_stream(uint8_t *b) { return mk_stream_setup(b, 2, 1, 1, 2, 100); }
static size_t b_dup_ecm_id(uint8_t *b) { return mk_stream_setup(b, 2, 1, 2, 1, 100); }
static size_t b_short_cp(uint8_t *b) { return mk_stream_setup(b, 2, 1, 2, 2, 5); }
static size_t b_cw_unknown_stream(uint8_t *b) { return mk_cw_provision(b, 2, 1, 5, 0, 2, 8, AC3, 4); }
static size_t b_cw_one(uint8_t *b) { return mk_cw_provision(b, 2, 1, 1, 0, 1, 8, AC3, 4); }
static size_t b_cw_no_ac(uint8_t *b) { return mk_cw_provision(b, 2, 1, 1, 0, 2, 8, NULL, 0); }
static size_t b_cw_zero_ac(uint8_t *b)
{
	static const uint8_t z[4] = { 0 };

	return mk_cw_provision(b, 2, 1, 1, 0, 2, 8, z, 4);
}
static size_t b_cw_bad_len(uint8_t *b) { return mk_cw_provision(b, 2, 1, 1, 0, 2, 5, AC3, 4); }
static size_t b_close_unknown(uint8_t *b) { return mk_st(b, 2, SC_ECM_STREAM_CLOSE_REQUEST, 1, 4); }
static size_t b_stream_test_unknown(uint8_t *b) { return mk_st(b, 2, SC_ECM_STREAM_TEST, 1, 4); }
static size_t b_wrong_direction(uint8_t *b) { return mk_st(b, 2, SC_ECM_STREAM_CLOSE_RESPONSE, 1, 1); }
static size_t b_cw_encryption(uint8_t *b)
{
	struct sc_writer sw;
	size_t n;
	uint8_t comb[10] = { 0, 0 };

	sc_begin(&sw, b, 256, 2, SC_ECM_CW_PROVISION);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_CP_NUMBER, 0);
	sc_put_bytes(&sw, SC_P_CW_ENCRYPTION, "x", 1);
	sc_put_bytes(&sw, SC_P_CP_CW_COMBINATION, comb, sizeof(comb));
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}
static size_t b_truncated_tlv(uint8_t *b)
{
	/* channel_test whose only TLV claims 4 value bytes but has 2 */
	static const uint8_t m[] = { 2, 0x00, 0x02, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x04, 0x00, 0x01 };

	memcpy(b, m, sizeof(m));
	return sizeof(m);
}
static size_t b_unknown_type(uint8_t *b) { return mk_ch(b, 2, 0x0999, 1); }
static size_t b_missing_param(uint8_t *b)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, b, 256, 2, SC_ECM_CHANNEL_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}
static size_t b_bad_param_len(uint8_t *b)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, b, 256, 2, SC_ECM_CHANNEL_TEST);
	sc_put_u8(&sw, SC_P_ECM_CHANNEL_ID, 1); /* 1 byte instead of 2 */
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}
static size_t b_foreign_param(uint8_t *b)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, b, 256, 2, SC_ECM_CHANNEL_TEST);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_CP_NUMBER, 1); /* not allowed in channel_test */
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}
static size_t b_oversized(uint8_t *b)
{
	/* channel_test padded with a 5000-byte access_criteria: too long for us */
	struct sc_writer sw;
	size_t n;
	static uint8_t big[5000];

	sc_begin(&sw, b, 6000, 2, SC_ECM_CHANNEL_TEST);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, big, sizeof(big));
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}

static const struct err_case ERR_CASES[] = {
	{ "bad version", P_NONE, b_bad_version, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_PROTO_VERSION, 0 },
	{ "unknown channel", P_CHANNEL, b_unknown_channel, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_CHANNEL_ID, SC_P_ECM_CHANNEL_ID },
	{ "stream before channel", P_NONE, b_stream_before_channel, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_CHANNEL_ID, SC_P_ECM_CHANNEL_ID },
	{ "bad Super_CAS_id", P_NONE, b_bad_super_cas, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_SUPER_CAS_ID, SC_P_SUPER_CAS_ID },
	{ "second channel_setup", P_CHANNEL, b_second_channel, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_CHANNEL_ID, SC_P_ECM_CHANNEL_ID },
	{ "duplicate stream", P_STREAM, b_dup_stream, SC_ECM_STREAM_ERROR, SC_ECM_ERR_STREAM_ID_IN_USE, SC_P_ECM_STREAM_ID },
	{ "duplicate ECM_id", P_STREAM, b_dup_ecm_id, SC_ECM_STREAM_ERROR, SC_ECM_ERR_ECM_ID_IN_USE, SC_P_ECM_ID },
	{ "CP below min_CP_duration", P_STREAM, b_short_cp, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_PARAM_VALUE, SC_P_NOMINAL_CP_DURATION },
	{ "CW_provision unknown stream", P_STREAM, b_cw_unknown_stream, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_STREAM_ID, SC_P_ECM_STREAM_ID },
	{ "CW_provision one CW of two", P_STREAM, b_cw_one, SC_ECM_STREAM_ERROR, SC_ECM_ERR_NOT_ENOUGH_CW, SC_P_CP_CW_COMBINATION },
	{ "CW_provision never an AC", P_STREAM, b_cw_no_ac, SC_ECM_STREAM_ERROR, SC_ECM_ERR_MISSING_PARAM, SC_P_ACCESS_CRITERIA },
	{ "CW_provision empty package mask", P_STREAM, b_cw_zero_ac, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_PARAM_VALUE, SC_P_ACCESS_CRITERIA },
	{ "CW_provision 5-byte CW", P_STREAM, b_cw_bad_len, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_PARAM_LENGTH, SC_P_CP_CW_COMBINATION },
	{ "CW_provision CW_encryption", P_STREAM_AC, b_cw_encryption, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_PARAM_VALUE, SC_P_CW_ENCRYPTION },
	{ "close unknown stream", P_STREAM, b_close_unknown, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_STREAM_ID, SC_P_ECM_STREAM_ID },
	{ "test unknown stream", P_STREAM, b_stream_test_unknown, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_STREAM_ID, SC_P_ECM_STREAM_ID },
	{ "SCS sends an ECMG message", P_STREAM, b_wrong_direction, SC_ECM_STREAM_ERROR, SC_ECM_ERR_INV_MESSAGE_TYPE, 0xFFFF },
	{ "truncated TLV", P_CHANNEL, b_truncated_tlv, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_MESSAGE, 5 },
	{ "unknown message type", P_CHANNEL, b_unknown_type, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_MESSAGE_TYPE, 1 },
	{ "missing Super_CAS_id", P_NONE, b_missing_param, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_MISSING_PARAM, SC_P_SUPER_CAS_ID },
	{ "bad parameter length", P_CHANNEL, b_bad_param_len, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_PARAM_LENGTH, 5 },
	{ "parameter not allowed", P_CHANNEL, b_foreign_param, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_INV_PARAM_TYPE, 11 },
	{ "oversized message", P_CHANNEL, b_oversized, SC_ECM_CHANNEL_ERROR, SC_ECM_ERR_MESSAGE_TOO_LONG, 3 },
};

/* Set up the prefix state on fd (channel 1, stream 1 with ECM_id 1). */
static void do_prefix(int fd, enum prefix p, struct rx *rx)
{
	uint8_t b[512];
	size_t n;

	if (p == P_NONE)
		return;
	n = mk_channel_setup(b, 2, 1, SCID);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	if (p == P_CHANNEL)
		return;
	n = mk_stream_setup(b, 2, 1, 1, 1, 100);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_STREAM_STATUS);
	if (p == P_STREAM)
		return;
	n = mk_cw_provision(b, 2, 1, 1, 0, 2, 8, AC3, 4);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
}

static void test_error_table(void **state)
{
	struct fix *f = fix_start(NULL);
	struct rx *rx = calloc(1, sizeof(*rx));
	uint8_t *b = malloc(8192);
	struct ecmg_stats st;
	uint64_t sent = 0;

	assert_non_null(rx);
	assert_non_null(b);
	for (size_t i = 0; i < sizeof(ERR_CASES) / sizeof(ERR_CASES[0]); i++) {
		const struct err_case *c = &ERR_CASES[i];
		int fd = tcp_connect(f->port);
		size_t n;

		print_message("  error case: %s\n", c->name);
		do_prefix(fd, c->prefix, rx);
		n = c->build(b);
		send_all(fd, b, n);
		recv_decode(fd, 2, rx);
		assert_int_equal(rx->m.type, c->reply_type);
		assert_int_equal(get16(&rx->m, SC_P_ERROR_STATUS), c->status);
		if (c->info != 0xFFFF)
			assert_int_equal(get16(&rx->m, SC_P_ERROR_INFORMATION), c->info);
		sent++;
		/* the connection is kept and still in sync: a valid message works */
		if (c->prefix == P_NONE) {
			n = mk_channel_setup(b, 2, 1, SCID);
			send_all(fd, b, n);
			recv_decode(fd, 2, rx);
			assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
		} else {
			n = mk_ch(b, 2, SC_ECM_CHANNEL_TEST, 1);
			send_all(fd, b, n);
			recv_decode(fd, 2, rx);
			assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
			if (c->prefix >= P_STREAM) {
				n = mk_cw_provision(b, 2, 1, 1, 1, 2, 8, AC3, 4);
				send_all(fd, b, n);
				recv_decode(fd, 2, rx);
				assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
			}
		}
		close(fd);
	}
	ecmg_stats(f->g, &st);
	assert_int_equal(st.errors_sent, sent);
	free(rx);
	free(b);
	fix_stop(f);
}

/* The channel id is scoped to its connection (two SCS may both use 1);
 * too many channels; too many streams. */
static void tweak_limits(struct ecmg_config *c)
{
	c->max_streams = 2;
	c->max_channels = 2;
	c->max_channels_per_peer = 2; /* all test peers are 127.0.0.1 */
}

static void test_limits(void **state)
{
	struct fix *f = fix_start(tweak_limits);
	struct rx *rx = calloc(1, sizeof(*rx));
	uint8_t b[512];
	size_t n;
	int a = tcp_connect(f->port), c2 = tcp_connect(f->port), c3 = tcp_connect(f->port);

	assert_non_null(rx);
	do_prefix(a, P_CHANNEL, rx);
	n = mk_channel_setup(b, 2, 1, SCID); /* the same id as a's: fine on its own connection */
	send_all(c2, b, n);
	recv_decode(c2, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	assert_int_equal(get16(&rx->m, SC_P_ECM_CHANNEL_ID), 1);
	assert_int_equal(get16(&rx->m, SC_P_MAX_STREAMS), 2);
	n = mk_channel_setup(b, 2, 3, SCID);
	send_all(c3, b, n);
	recv_decode(c3, 2, rx);
	assert_int_equal(get16(&rx->m, SC_P_ERROR_STATUS), SC_ECM_ERR_TOO_MANY_CHANNELS);
	for (uint16_t s = 0; s < 3; s++) {
		n = mk_stream_setup(b, 2, 1, s, s, 100);
		send_all(a, b, n);
		recv_decode(a, 2, rx);
		assert_int_equal(rx->m.type, s < 2 ? SC_ECM_STREAM_STATUS : SC_ECM_STREAM_ERROR);
	}
	assert_int_equal(get16(&rx->m, SC_P_ERROR_STATUS), SC_ECM_ERR_TOO_MANY_STM_CHAN);
	/* a closed stream frees its id and its ECM_id */
	n = mk_st(b, 2, SC_ECM_STREAM_CLOSE_REQUEST, 1, 0);
	send_all(a, b, n);
	recv_decode(a, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_STREAM_CLOSE_RESPONSE);
	n = mk_stream_setup(b, 2, 1, 0, 0, 100);
	send_all(a, b, n);
	recv_decode(a, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_STREAM_STATUS);
	/* channel_close frees a channel for another connection */
	n = mk_ch(b, 2, SC_ECM_CHANNEL_CLOSE, 1);
	send_all(a, b, n);
	assert_true(peer_closed(a));
	n = mk_channel_setup(b, 2, 1, SCID);
	send_all(c3, b, n);
	recv_decode(c3, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	close(a);
	close(c2);
	close(c3);
	free(rx);
	fix_stop(f);
}

/* Issue 12 item 7: one peer cannot take every channel. A peer at
 * 127.0.0.2 opens channels until refused; the real scrambler at 127.0.0.1
 * must still get its channel (default per-peer quota: a quarter of
 * max_channels). */
static void tweak_8_channels(struct ecmg_config *c)
{
	c->max_channels = 8;
}

static void test_peer_channel_quota(void **state)
{
	struct fix *f = fix_start(tweak_8_channels);
	struct rx *rx = calloc(1, sizeof(*rx));
	uint8_t b[512];
	int flood[8], good;
	unsigned got = 0;
	size_t n;

	(void)state;
	assert_non_null(rx);
	for (int i = 0; i < 8; i++) {
		flood[i] = tcp_connect_from("127.0.0.2", f->port);
		n = mk_channel_setup(b, 2, (uint16_t)(10 + i), SCID);
		send_all(flood[i], b, n);
		recv_decode(flood[i], 2, rx);
		if (rx->m.type == SC_ECM_CHANNEL_STATUS)
			got++;
		else
			assert_int_equal(get16(&rx->m, SC_P_ERROR_STATUS), SC_ECM_ERR_TOO_MANY_CHANNELS);
	}
	assert_int_equal(got, 2);
	good = tcp_connect(f->port);
	n = mk_channel_setup(b, 2, 1, SCID);
	send_all(good, b, n);
	recv_decode(good, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	for (int i = 0; i < 8; i++)
		close(flood[i]);
	close(good);
	free(rx);
	fix_stop(f);
}

/* --allow: a peer outside the list is closed on accept, before any
 * message is read or answered; one inside works. Streams: the ECMG-wide
 * cap and the per-peer cap answer too_many_streams_ECMG. */
static void tweak_allow(struct ecmg_config *c)
{
	c->allow = "10.0.0.0/8, 127.0.0.2";
	c->max_streams_total = 3;
	c->max_streams_per_peer = 2;
	c->max_channels_per_peer = 4;
}

static void test_allow_and_stream_caps(void **state)
{
	struct fix *f = fix_start(tweak_allow);
	struct rx *rx = calloc(1, sizeof(*rx));
	struct ecmg_stats st;
	uint8_t b[512];
	size_t n;
	int out, in1, in2;

	(void)state;
	assert_non_null(rx);
	/* 127.0.0.1 is not listed: closed without an answer */
	out = tcp_connect(f->port);
	n = mk_channel_setup(b, 2, 1, SCID);
	send(out, b, n, MSG_NOSIGNAL); /* may fail: the ECMG may have closed already */
	assert_true(peer_closed(out));
	close(out);
	/* 127.0.0.2 is: a channel, then streams up to its quota of 2 */
	in1 = tcp_connect_from("127.0.0.2", f->port);
	in2 = tcp_connect_from("127.0.0.2", f->port);
	n = mk_channel_setup(b, 2, 1, SCID);
	send_all(in1, b, n);
	recv_decode(in1, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	n = mk_channel_setup(b, 2, 2, SCID);
	send_all(in2, b, n);
	recv_decode(in2, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	for (uint16_t s = 0; s < 3; s++) {
		n = mk_stream_setup(b, 2, (uint16_t)(1 + s % 2), s, (uint16_t)(100 + s), 100);
		send_all(s % 2 ? in2 : in1, b, n);
		recv_decode(s % 2 ? in2 : in1, 2, rx);
		if (s < 2) {
			assert_int_equal(rx->m.type, SC_ECM_STREAM_STATUS);
		} else {
			assert_int_equal(rx->m.type, SC_ECM_STREAM_ERROR);
			assert_int_equal(get16(&rx->m, SC_P_ERROR_STATUS), SC_ECM_ERR_TOO_MANY_STM_ECMG);
		}
	}
	/* the peer's streams are freed with its connection: ECM_id 100 too */
	close(in1);
	close(in2);
	in1 = tcp_connect_from("127.0.0.2", f->port);
	n = mk_channel_setup(b, 2, 3, SCID);
	send_all(in1, b, n);
	recv_decode(in1, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	for (uint16_t s = 0; s < 3; s++) {
		n = mk_stream_setup(b, 2, 3, s, (uint16_t)(100 + s), 100);
		send_all(in1, b, n);
		recv_decode(in1, 2, rx);
		assert_int_equal(rx->m.type, s < 2 ? SC_ECM_STREAM_STATUS : SC_ECM_STREAM_ERROR);
	}
	ecmg_stats(f->g, &st);
	assert_int_equal(st.connections_denied, 1);
	assert_int_equal(st.quota_refusals, 2);
	close(in1);
	free(rx);
	fix_stop(f);
}

/* A bad allow list is refused at ecmg_new; the standalone default listens
 * on the loopback only. */
static void test_allow_config(void **state)
{
	struct keystore *ks;
	struct ecmg_config cfg;
	struct ecmg *g = NULL;

	(void)state;
	assert_int_equal(keystore_from_root(0x4ADC, 0, ROOT, &ks), 0);
	ecmg_config_init(&cfg);
	assert_string_equal(cfg.listen, "127.0.0.1:2222");
	cfg.ks = ks;
	cfg.allow = "10.0.0.1/8";
	assert_int_equal(ecmg_new(&cfg, &g), CE_ARG);
	assert_null(g);
	cfg.allow = "10.0.0.0/8,";
	assert_int_equal(ecmg_new(&cfg, &g), CE_ARG);
	keystore_free(ks);
}

/* Issue 12 item 8: a stream_setup flood must not slow a good scrambler's
 * ECMs. 16 channels x FLOOD_BG streams are set up (from 16 addresses), then a
 * good client (127.0.0.1) measures its CW_provision -> ECM_response round
 * trip, quiet and while 4 connections (127.0.2.x) send stream_setups in a
 * closed loop of 64 in flight. The medians are compared in the same run
 * with a generous ratio (no absolute timing); the figures are printed (the
 * bench/RESULTS.md "ECMG under a stream_setup flood" table). FLOOD_BG is
 * the 1024 (CASTELLAN_FLOOD_STREAMS=N for fewer). Before the fix
 * (a scan of every stream per stream_setup, no read budget) the flooded
 * median was 2.7-3.3 ms against 20 us quiet: this assertion failed. */
#define FLOOD_CONNS 4
#define FLOOD_WINDOW 64
#define FLOOD_RTTS 300

struct flooder {
	uint16_t port;
	int k;
	atomic_bool *stop;
	_Atomic unsigned long long msgs;
	pthread_t th;
};

static void *flood_thread(void *arg)
{
	struct flooder *fl = arg;
	static const char *const src[FLOOD_CONNS] = { "127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.4" };
	uint8_t b[FLOOD_WINDOW * 64], r[8192];
	uint16_t ch = (uint16_t)(300 + fl->k), sid = 0;
	size_t n;
	int fd = tcp_connect_from(src[fl->k], fl->port);

	n = mk_channel_setup(b, 2, ch, SCID);
	send_all(fd, b, n);
	if (recv_msg(fd, r, sizeof(r)) == 0)
		return NULL;
	while (!atomic_load(fl->stop)) {
		n = 0;
		for (int j = 0; j < FLOOD_WINDOW; j++, sid++)
			n += mk_stream_setup(b + n, 2, ch, sid, (uint16_t)(20000 + fl->k * 10000 + sid % 10000), 100);
		send_all(fd, b, n);
		for (int j = 0; j < FLOOD_WINDOW; j++)
			(void)recv_msg(fd, r, sizeof(r));
		atomic_fetch_add(&fl->msgs, FLOOD_WINDOW);
	}
	close(fd);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* FLOOD_RTTS sequential CW_provision -> ECM_response round trips on fd:
 * the median and the max, in microseconds. */
static void rtts(int fd, struct rx *rx, uint16_t *cp, uint64_t *median, uint64_t *max)
{
	static uint64_t t[FLOOD_RTTS];
	const uint8_t ac[4] = { 0, 0, 0, 0x01 };
	uint8_t b[512];

	for (int i = 0; i < FLOOD_RTTS; i++) {
		size_t n = mk_cw_provision(b, 2, 1, 0, (*cp)++, 2, 8, ac, 4);
		uint64_t t0 = now_mono_us();

		send_all(fd, b, n);
		recv_decode(fd, 2, rx);
		t[i] = now_mono_us() - t0;
		assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
	}
	qsort(t, FLOOD_RTTS, sizeof(t[0]), cmp_u64);
	*median = t[FLOOD_RTTS / 2];
	*max = t[FLOOD_RTTS - 1];
}

static void test_stream_setup_flood(void **state)
{
	struct fix *f = fix_start(NULL);
	struct rx *rx = calloc(1, sizeof(*rx));
	struct flooder fl[FLOOD_CONNS];
	atomic_bool stop = false;
	const char *env = getenv("CASTELLAN_FLOOD_STREAMS");
	uint64_t env_n = 0;
	unsigned nbg = env && parse_u64(env, 1024, &env_n) == 0 && env_n > 0 ? (unsigned)env_n : 1024;
	uint64_t q_med, q_max, f_med, f_max, t0, dt;
	unsigned long long flood_msgs = 0, during = 0;
	uint8_t *b = malloc(1024 * 32);
	int bg[16], good;
	uint16_t cp = 0;
	size_t n;

	(void)state;
	assert_non_null(rx);
	assert_non_null(b);
	for (int i = 0; i < 16; i++) {
		char src[32];

		snprintf(src, sizeof(src), "127.0.1.%d", i + 1);
		bg[i] = tcp_connect_from(src, f->port);
		n = mk_channel_setup(b, 2, (uint16_t)(200 + i), SCID);
		send_all(bg[i], b, n);
		recv_decode(bg[i], 2, rx);
		assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
		n = 0;
		for (unsigned s = 0; s < nbg; s++)
			n += mk_stream_setup(b + n, 2, (uint16_t)(200 + i), (uint16_t)s, (uint16_t)(1 + i * 1024 + s), 100);
		send_all(bg[i], b, n);
		for (unsigned s = 0; s < nbg; s++) {
			recv_decode(bg[i], 2, rx);
			assert_int_equal(rx->m.type, SC_ECM_STREAM_STATUS);
		}
	}
	good = tcp_connect(f->port);
	n = mk_channel_setup(b, 2, 1, SCID);
	send_all(good, b, n);
	recv_decode(good, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	n = mk_stream_setup(b, 2, 1, 0, 60000, 100);
	send_all(good, b, n);
	recv_decode(good, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_STREAM_STATUS);

	rtts(good, rx, &cp, &q_med, &q_max);
	for (int k = 0; k < FLOOD_CONNS; k++) {
		fl[k].port = f->port;
		fl[k].k = k;
		fl[k].stop = &stop;
		atomic_init(&fl[k].msgs, 0);
		assert_int_equal(pthread_create(&fl[k].th, NULL, flood_thread, &fl[k]), 0);
	}
	usleep(200 * 1000); /* the flood under way */
	for (int k = 0; k < FLOOD_CONNS; k++)
		during -= atomic_load(&fl[k].msgs);
	t0 = now_mono_us();
	rtts(good, rx, &cp, &f_med, &f_max);
	dt = now_mono_us() - t0;
	for (int k = 0; k < FLOOD_CONNS; k++)
		during += atomic_load(&fl[k].msgs);
	atomic_store(&stop, true);
	for (int k = 0; k < FLOOD_CONNS; k++) {
		assert_int_equal(pthread_join(fl[k].th, NULL), 0);
		flood_msgs += atomic_load(&fl[k].msgs);
	}
	print_message("stream_setup flood: %u background streams; good client ECM round trip quiet median %llu us "
		      "max %llu us; flooded median %llu us max %llu us; %llu stream_setups answered to the "
		      "flooders in all (%.0f/s while measuring)\n",
		16 * nbg, (unsigned long long)q_med, (unsigned long long)q_max, (unsigned long long)f_med,
		(unsigned long long)f_max, flood_msgs, dt ? (double)during * 1e6 / (double)dt : 0.0);
	/* generous: the flood may cost the good client scheduling time on a
	 * shared machine, not the ECMG's work per stream_setup. Under the
	 * sanitizers (tools/test.sh's second pass) every message costs several
	 * times more and the medians say nothing about the design: the flood
	 * still runs there, for memory safety, without the comparison. */
	assert_true(flood_msgs > 0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	(void)f_med;
#else
	assert_true(f_med <= 20 * (q_med > 100 ? q_med : 100));
#endif
	close(good);
	for (int i = 0; i < 16; i++)
		close(bg[i]);
	free(b);
	free(rx);
	fix_stop(f);
}

/* 3 invalid messages in a row close the connection; an SCS error is never
 * answered. */
static void test_bad_in_row(void **state)
{
	struct fix *f = fix_start(NULL);
	struct rx *rx = calloc(1, sizeof(*rx));
	uint8_t b[512];
	size_t n;
	int fd = tcp_connect(f->port);
	struct ecmg_stats st;

	assert_non_null(rx);
	do_prefix(fd, P_CHANNEL, rx);
	/* a valid channel_error from the SCS: no answer; then a test is answered */
	{
		struct sc_fault flt = { .status = SC_ECM_ERR_UNKNOWN, .has_channel = true, .channel_id = 1 };

		assert_int_equal(sc_build_error(SC_ECMG_SCS, 2, &flt, 0, b, sizeof(b), &n), 0);
		send_all(fd, b, n);
	}
	n = mk_ch(b, 2, SC_ECM_CHANNEL_TEST, 1);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_CHANNEL_STATUS);
	for (int i = 0; i < 3; i++) {
		n = b_truncated_tlv(b);
		send_all(fd, b, n);
		recv_decode(fd, 2, rx);
		assert_int_equal(rx->m.type, SC_ECM_CHANNEL_ERROR);
	}
	assert_true(peer_closed(fd));
	close(fd);
	ecmg_stats(f->g, &st);
	assert_int_equal(st.errors_received, 1);
	assert_int_equal(st.bad_messages, 3);
	free(rx);
	fix_stop(f);
}

/* lead_CW 0 / CW_per_msg 1: the ECM carries only the current CW; TSDuck's
 * extra combination is ignored. */
static void tweak_one_cw(struct ecmg_config *c)
{
	c->cw_per_msg = 1;
	c->lead_cw = 0;
}

static void test_cw_per_msg_one(void **state)
{
	struct fix *f = fix_start(tweak_one_cw);
	struct rx *rx = calloc(1, sizeof(*rx));
	uint8_t b[512], sec[2048];
	size_t n, slen;
	int fd = tcp_connect(f->port);
	struct ecm_view v;
	struct pkg_key k;
	struct ecm_cws cws;
	uint8_t cw[8];

	assert_non_null(rx);
	do_prefix(fd, P_STREAM, rx);
	n = mk_cw_provision(b, 2, 1, 1, 7, 2, 8, AC3, 4);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
	slen = datagram_section(sc_get_nth(&rx->m, SC_P_ECM_DATAGRAM, 0), false, sec, sizeof(sec));
	assert_int_equal(ecm_parse(sec, slen, &v), 0);
	assert_int_equal(v.cw_mask, ECM_HAS_ODD);
	assert_int_equal(keystore_package_key(f->ks, v.epoch, 1, &k), 0);
	assert_int_equal(ecm_open(&v, &k, &cws), 0);
	test_cw(1, 7, 8, cw);
	assert_memory_equal(cws.odd, cw, 8);
	/* the announced values */
	n = mk_ch(b, 2, SC_ECM_CHANNEL_TEST, 1);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	{
		uint8_t lead = 9, per = 9;

		assert_int_equal(sc_get_u8(&rx->m, SC_P_LEAD_CW, &lead), 0);
		assert_int_equal(sc_get_u8(&rx->m, SC_P_CW_PER_MSG, &per), 0);
		assert_int_equal(lead, 0);
		assert_int_equal(per, 1);
	}
	close(fd);
	free(rx);
	fix_stop(f);
}

/* Issue 16 item 6: the channels table (ac_lookup) gives the packages of
 * ECM_id 101; an SCS that sends no access_criteria gets ECMs for them, and
 * one that sends others is overridden (the table wins); ECM_id 102 has no
 * channel: without access_criteria it still gets missing_param. */
static int table_ac(void *ctx, uint16_t ecm_id, uint32_t *mask)
{
	(void)ctx;
	*mask = ecm_id == 101 ? 0x00000006u : 0;
	return *mask ? 0 : CE_NOT_FOUND;
}

static void tweak_table(struct ecmg_config *c)
{
	c->ac_lookup = table_ac;
}

static uint32_t ecm_mask_of(const struct sc_msg *m)
{
	uint8_t sec[2048];
	size_t slen = datagram_section(sc_get_nth(m, SC_P_ECM_DATAGRAM, 0), false, sec, sizeof(sec));
	struct ecm_view v;

	assert_int_equal(ecm_parse(sec, slen, &v), 0);
	return v.package_mask;
}

static void test_ac_from_channels_table(void **state)
{
	struct fix *f = fix_start(tweak_table);
	struct rx *rx = calloc(1, sizeof(*rx));
	static const uint8_t ac1[4] = { 0, 0, 0, 1 };
	uint8_t b[512];
	size_t n;
	int fd = tcp_connect(f->port);

	(void)state;
	assert_non_null(rx);
	do_prefix(fd, P_CHANNEL, rx);
	n = mk_stream_setup(b, 2, 1, 1, 101, 100);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_STREAM_STATUS);
	n = mk_stream_setup(b, 2, 1, 2, 102, 100);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_STREAM_STATUS);
	/* no access_criteria: the table's packages */
	n = mk_cw_provision(b, 2, 1, 1, 0, 2, 8, NULL, 0);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
	assert_int_equal(ecm_mask_of(&rx->m), 0x00000006u);
	/* the SCS's differ: the table wins */
	n = mk_cw_provision(b, 2, 1, 1, 1, 2, 8, ac1, 4);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
	assert_int_equal(ecm_mask_of(&rx->m), 0x00000006u);
	/* no channel for ECM_id 102, no access_criteria: missing_param */
	n = mk_cw_provision(b, 2, 1, 2, 0, 2, 8, NULL, 0);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_STREAM_ERROR);
	assert_int_equal(get16(&rx->m, SC_P_ERROR_STATUS), SC_ECM_ERR_MISSING_PARAM);
	/* ... and with them, the SCS's */
	n = mk_cw_provision(b, 2, 1, 2, 0, 2, 8, ac1, 4);
	send_all(fd, b, n);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
	assert_int_equal(ecm_mask_of(&rx->m), 0x00000001u);
	close(fd);
	free(rx);
	fix_stop(f);
}

static void tweak_timeouts(struct ecmg_config *c)
{
	c->idle_timeout_ms = 300;
	c->setup_timeout_ms = 200;
}

static void test_timeouts(void **state)
{
	struct fix *f = fix_start(tweak_timeouts);
	struct rx *rx = calloc(1, sizeof(*rx));
	int a = tcp_connect(f->port), c;
	struct ecmg_stats st;

	assert_non_null(rx);
	assert_true(peer_closed(a)); /* never sent channel_setup */
	c = tcp_connect(f->port);
	do_prefix(c, P_CHANNEL, rx);
	assert_true(peer_closed(c)); /* then went silent */
	ecmg_stats(f->g, &st);
	assert_int_equal(st.timeouts, 2);
	assert_int_equal(st.connections_open, 0);
	assert_int_equal(st.channels_open, 0);
	close(a);
	close(c);
	free(rx);
	fix_stop(f);
}

static void test_config_checks(void **state)
{
	struct keystore *ks;
	struct ecmg_config cfg;
	struct ecmg *g = NULL;

	assert_int_equal(keystore_from_root(0x4ADC, 0, ROOT, &ks), 0);
	ecmg_config_init(&cfg);
	assert_int_equal(ecmg_new(&cfg, &g), CE_ARG); /* no keystore */
	cfg.ks = ks;
	cfg.version = 4;
	assert_int_equal(ecmg_new(&cfg, &g), CE_ARG);
	cfg.version = 3;
	cfg.cw_per_msg = 3;
	assert_int_equal(ecmg_new(&cfg, &g), CE_ARG);
	cfg.cw_per_msg = 2;
	cfg.ca_system_id = 0x0B00;
	assert_int_equal(ecmg_new(&cfg, &g), CE_ARG);
	cfg.ca_system_id = 0;
	cfg.listen = "127.0.0.1:notaport";
	assert_int_equal(ecmg_new(&cfg, &g), 0);
	assert_int_equal(ecmg_start(g), CE_ARG);
	ecmg_free(g);
	keystore_free(ks);
}

/* ------------------------------------------------------------------ */
/* single-threaded sessions (ecmg_adopt + ecmg_poll): the fuzz corpus     */

/* Feed one SCS byte stream through a socketpair, as fuzz/fuzz_ecmg.c does;
 * every answer must decode and the session must end. Returns the answers. */
static size_t drive(const struct keystore *ks, uint8_t version, const uint8_t *data, size_t size)
{
	static uint8_t rxb[1 << 17];
	struct sc_msg *m = calloc(1, sizeof(*m));
	struct ecmg_config cfg;
	struct ecmg *g = NULL;
	size_t have = 0, sent = 0, answers = 0;
	int sv[2];
	bool eof = false;

	assert_non_null(m);
	ecmg_config_init(&cfg);
	cfg.ks = ks;
	cfg.version = version;
	cfg.idle_timeout_ms = 0;
	cfg.setup_timeout_ms = 0;
	assert_int_equal(ecmg_new(&cfg, &g), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(ecmg_adopt(g, sv[0]), 0);
	if (size == 0)
		shutdown(sv[1], SHUT_WR);
	for (int round = 0; round < 100000 && !eof; round++) {
		ssize_t r;

		if (sent < size) {
			r = send(sv[1], data + sent, size - sent, MSG_NOSIGNAL);
			if (r > 0)
				sent += (size_t)r;
			if (sent == size)
				shutdown(sv[1], SHUT_WR);
		}
		assert_int_equal(ecmg_poll(g), 0);
		r = recv(sv[1], rxb + have, sizeof(rxb) - have, 0);
		if (r == 0)
			eof = true;
		if (r > 0)
			have += (size_t)r;
		while (have >= SC_HEADER_BYTES && sc_frame_len(rxb) <= have) {
			size_t fl = sc_frame_len(rxb);

			assert_int_equal(sc_decode(SC_ECMG_SCS, version, rxb, fl, m, NULL), 0);
			memmove(rxb, rxb + fl, have - fl);
			have -= fl;
			answers++;
		}
	}
	assert_true(eof);
	assert_int_equal(have, 0);
	close(sv[1]);
	ecmg_free(g);
	free(m);
	return answers;
}

static void test_fuzz_corpus(void **state)
{
	static const char *const seeds[] = { "ecmg-scs-v2", "ecmg-scs-v3-sections", "ecmg-scs-v2-multistream",
		"version-mismatch" };
	static const size_t want[] = { 9, 9, 18, 1 };
	struct keystore *ks;
	uint8_t *b = calloc(1, 16384);
	size_t n;

	assert_non_null(b);
	assert_int_equal(keystore_from_root(0x4ADC, 0, ROOT, &ks), 0);
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char rel[256];
		size_t len;
		uint8_t *d;

		snprintf(rel, sizeof(rel), "../../fuzz/corpus/ecmg/%s", seeds[i]);
		d = tu_read(tu_testdata(rel), &len);
		/* answers: every message but channel_close (and the peer's errors) */
		assert_int_equal(drive(ks, len && d[0] == 3 ? 3 : 2, d, len), want[i]);
		free(d);
	}
	/* hand-made streams: empty; a header cut short; an oversized message then
	 * a valid setup (skipped in sync); a message cut in its value */
	assert_int_equal(drive(ks, 2, b, 0), 0);
	assert_int_equal(drive(ks, 2, (const uint8_t *)"\x02\x00\x01", 3), 0);
	n = b_oversized(b);
	n += mk_channel_setup(b + n, 2, 1, SCID);
	assert_int_equal(drive(ks, 2, b, n), 2);
	n = mk_channel_setup(b, 2, 1, SCID);
	assert_int_equal(drive(ks, 2, b, n - 2), 0);
	keystore_free(ks);
	free(b);
}

/* ------------------------------------------------------------------ */
/* `castellan ecmg` as a child process                                  */

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_cli_child(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	char dir[] = "/tmp/castellan-ecmg-test-XXXXXX", ksp[256], pfp[256], logp[256], listen[64];
	struct keystore *ks;
	uint8_t *file = NULL, b[512];
	size_t flen, n;
	struct rx *rx;
	struct sc_msg *pm;
	uint16_t port = free_port();
	pid_t pid;
	int status, fd = -1;

	if (!bin)
		skip();
	rx = calloc(1, sizeof(*rx));
	pm = calloc(1, sizeof(*pm));
	assert_non_null(rx);
	assert_non_null(pm);
	assert_non_null(mkdtemp(dir));
	snprintf(ksp, sizeof(ksp), "%s/ks", dir);
	snprintf(pfp, sizeof(pfp), "%s/pass", dir);
	snprintf(logp, sizeof(logp), "%s/log", dir);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	assert_int_equal(keystore_from_root(0x4ADC, 0, ROOT, &ks), 0);
	assert_int_equal(keystore_encode_params(ks, "test pass", KEYSTORE_SCRYPT_MIN_LOG2N, 8, 1, &file, &flen), 0);
	assert_int_equal(file_write_atomic(ksp, file, flen, 0600), 0);
	assert_int_equal(file_write_atomic(pfp, "test pass\n", 10, 0600), 0);
	free(file);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		execl(bin, "castellan", "ecmg", "--listen", listen, "--keystore", ksp, "--passphrase-file", pfp,
			"--sections", (char *)NULL);
		_exit(127);
	}
	/* bounded wait for the port (not a timing assertion) */
	for (int i = 0; i < 200 && fd < 0; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
		int s = socket(AF_INET, SOCK_STREAM, 0);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
			struct timeval tv = { RX_TIMEOUT_S, 0 };

			setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			fd = s;
		} else {
			close(s);
			usleep(25000);
		}
	}
	assert_true(fd >= 0);
	do_prefix(fd, P_STREAM, rx);
	n = mk_cw_provision(b, 2, 1, 1, 4, 2, 16, AC3, 4);
	send_all(fd, b, n);
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, b, n, pm, NULL), 0);
	recv_decode(fd, 2, rx);
	assert_int_equal(rx->m.type, SC_ECM_ECM_RESPONSE);
	check_ecm(ks, &rx->m, pm, 1, 3, true);
	close(fd);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	{
		size_t ll;
		uint8_t *log = tu_read(logp, &ll);
		char *s = calloc(1, ll + 1);

		memcpy(s, log, ll);
		assert_non_null(strstr(s, "ecmg: stopped: 1 connections, 1 channels, 1 streams, 1 CW_provision, 1 ECMs"));
		assert_null(strstr(s, "test pass")); /* never the passphrase */
		free(s);
		free(log);
	}
	/* --help works and a bad option is a usage error */
	pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		dup2(nul, 2);
		execl(bin, "castellan", "ecmg", "--help", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		dup2(nul, 2);
		execl(bin, "castellan", "ecmg", "--keystore", ksp, "--version", "4", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 2);
	unlink(ksp);
	unlink(pfp);
	unlink(logp);
	rmdir(dir);
	keystore_free(ks);
	free(rx);
	free(pm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_v2),
		cmocka_unit_test(test_replay_v3_sections),
		cmocka_unit_test(test_replay_v2_multistream),
		cmocka_unit_test(test_version_mismatch_capture),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_peer_channel_quota),
		cmocka_unit_test(test_allow_and_stream_caps),
		cmocka_unit_test(test_allow_config),
		cmocka_unit_test(test_stream_setup_flood),
		cmocka_unit_test(test_bad_in_row),
		cmocka_unit_test(test_cw_per_msg_one),
		cmocka_unit_test(test_ac_from_channels_table),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_config_checks),
		cmocka_unit_test(test_fuzz_corpus),
		cmocka_unit_test(test_cli_child),
	};

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
