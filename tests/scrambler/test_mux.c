/*
 * test_mux.c - tests of the EMMG<=>MUX server (src/scrambler/mux.c) over
 * real TCP and UDP sockets on 127.0.0.1: replay the EMMG side of TSDuck's
 * captures and compare our answers with the captured MUX answers byte for
 * byte, check that the EMM packets carry the captured sections/packets with
 * consecutive continuity counters, reject a table of bad messages with the
 * right error_status, bound the queue, and run the scrambler with an EMMG
 * connected (EMMs on the EMM PID, CAT with the CA_descriptor).
 *
 * Reference: ETSI TS 103 197; tests/data/simulcrypt/FACTS.md section 3.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "testutil.h"
#include "headend/emmg.h"
#include "lib/log.h"
#include "scrambler/mux.h"
#include "scrambler/scrambler.h"
#include "simulcrypt/simulcrypt.h"
#include "ts/psi.h"
#include "ts/ts.h"

#define CAP(name) "simulcrypt/captures/" name ".hex.txt"
#define EMM_PID 0x1FF0
#define CLIENT 0x4ADC0001u

static struct mux *start_mux(uint8_t version, uint32_t max_kbps, size_t queue)
{
	struct mux_config c = { .listen = "127.0.0.1:0", .version = version, .emm_pid = EMM_PID,
		.max_kbps = max_kbps, .queue_pkts = queue };
	struct mux *m = NULL;

	assert_int_equal(mux_new(&c, &m), 0);
	assert_true(mux_port(m) != 0);
	return m;
}

static int tcp_to(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int udp_to(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void send_all(int fd, const uint8_t *b, size_t n)
{
	assert_int_equal(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Poll the MUX until one whole message is readable on fd; returns its
 * length (0 = connection closed, -1 = nothing within ~3 s). */
static ssize_t recv_msg(struct mux *m, int fd, uint8_t *buf, size_t cap)
{
	size_t have = 0;

	for (int i = 0; i < 300; i++) {
		size_t need = have < 5 ? 5 - have : sc_frame_len(buf) - have;
		ssize_t r;

		assert_int_equal(mux_poll(m, 10), 0);
		assert_true(have + need <= cap);
		r = recv(fd, buf + have, need, MSG_DONTWAIT);
		if (r == 0)
			return 0;
		if (r < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			continue;
		}
		have += (size_t)r;
		if (have >= 5 && have == sc_frame_len(buf))
			return (ssize_t)have;
		i--; /* progress: do not count it against the time */
	}
	return -1;
}

/* Nothing comes back (the MUX served the socket a few times). */
static void expect_silence(struct mux *m, int fd)
{
	uint8_t b[16];

	for (int i = 0; i < 5; i++)
		assert_int_equal(mux_poll(m, 5), 0);
	assert_int_equal(recv(fd, b, sizeof(b), MSG_DONTWAIT), -1);
}

static void poll_until_datagrams(struct mux *m, uint64_t n)
{
	struct mux_stats st;

	for (int i = 0; i < 300; i++) {
		mux_stats(m, &st);
		if (st.udp_datagrams >= n)
			return;
		assert_int_equal(mux_poll(m, 10), 0);
	}
	fail_msg("UDP datagram %llu never arrived", (unsigned long long)n);
}

/* All queued packets; checks PID and consecutive CCs. Caller frees. */
static uint8_t *take_all(struct mux *m, size_t *n)
{
	size_t cap = mux_queued(m) + 1, got = 0;
	uint8_t *b = malloc(cap * TS_PACKET_BYTES);

	assert_non_null(b);
	assert_int_equal(mux_take(m, b, cap, &got), 0);
	assert_int_equal(mux_queued(m), 0);
	for (size_t i = 0; i < got; i++) {
		struct ts_hdr h;

		assert_int_equal(ts_parse(b + i * TS_PACKET_BYTES, &h), 0);
		assert_int_equal(h.pid, EMM_PID);
		if (i > 0) {
			struct ts_hdr p;

			assert_int_equal(ts_parse(b + (i - 1) * TS_PACKET_BYTES, &p), 0);
			assert_int_equal(h.cc, (p.cc + 1) & 15);
		}
	}
	*n = got;
	return b;
}

/* Sections carried by packets on EMM_PID. */
struct secs {
	size_t n;
	size_t len[256];
	uint8_t sec[256][PSI_MAX_SECTION];
};

static int sec_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct secs *s = ctx;

	(void)pid;
	assert_true(s->n < 256);
	memcpy(s->sec[s->n], sec, len);
	s->len[s->n++] = len;
	return 0;
}

static void reassemble(const uint8_t *pkts, size_t n, struct secs *out)
{
	struct psi_asm a;

	psi_asm_init(&a, EMM_PID);
	out->n = 0;
	for (size_t i = 0; i < n; i++) {
		struct ts_hdr h;

		assert_int_equal(ts_parse(pkts + i * TS_PACKET_BYTES, &h), 0);
		assert_int_equal(psi_asm_push(&a, pkts + i * TS_PACKET_BYTES, &h, sec_cb, out), 0);
	}
}

/* Datagram parameters of the captured data_provisions, concatenated. */
static uint8_t *captured_datagrams(const struct tu_capmsg *msgs, size_t n, uint8_t version, size_t *len,
	size_t *count)
{
	static struct sc_msg m;
	uint8_t *out = malloc(1 << 20);
	size_t at = 0;

	assert_non_null(out);
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		struct sc_fault f;

		if (strncmp(msgs[i].dir, "EMMG>MUX", 8) != 0)
			continue;
		assert_int_equal(sc_decode(SC_EMMG_MUX, version, msgs[i].bytes, msgs[i].len, &m, &f), 0);
		if (m.type != SC_EMM_DATA_PROVISION)
			continue;
		for (size_t k = 0; k < sc_count(&m, SC_P_DATAGRAM); k++) {
			const struct sc_param *p = sc_get_nth(&m, SC_P_DATAGRAM, k);

			memcpy(out + at, p->val, p->len);
			at += p->len;
			(*count)++;
		}
	}
	*len = at;
	return out;
}

/* Replay the EMMG side of a capture; every MUX line must match ours. */
static void replay(const char *cap, uint8_t version, struct mux *m)
{
	size_t n = 0;
	struct tu_capmsg *msgs = tu_capture_load(cap, &n);
	int fd = tcp_to(mux_port(m)), ufd = udp_to(mux_port(m));
	static uint8_t buf[SC_MAX_MSG_BYTES];
	uint64_t udp_sent = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(msgs[i].dir, "EMMG>MUX/udp") == 0) {
			send_all(ufd, msgs[i].bytes, msgs[i].len);
			poll_until_datagrams(m, ++udp_sent);
		} else if (strcmp(msgs[i].dir, "EMMG>MUX") == 0) {
			send_all(fd, msgs[i].bytes, msgs[i].len);
		} else {
			ssize_t got = recv_msg(m, fd, buf, sizeof(buf));

			assert_string_equal(msgs[i].dir, "MUX>EMMG");
			if (got != (ssize_t)msgs[i].len || memcmp(buf, msgs[i].bytes, msgs[i].len) != 0)
				fail_msg("%s line %zu: our answer differs from TSDuck's (%zd bytes)", cap, i + 1, got);
		}
	}
	/* channel_close: the MUX closes the connection, sends nothing */
	assert_int_equal(recv_msg(m, fd, buf, sizeof(buf)), 0);
	(void)version;
	close(fd);
	close(ufd);
	tu_capture_free(msgs, n);
}

static void test_replay_v2_udp_sections(void **state)
{
	(void)state;
	struct mux *m = start_mux(0, 200, 0);
	size_t n = 0, npk = 0, dlen = 0, ndg = 0;
	struct tu_capmsg *msgs = tu_capture_load(CAP("emmg-mux-v2-udp-sections"), &n);
	uint8_t *dg = captured_datagrams(msgs, n, 2, &dlen, &ndg);
	static struct secs out;
	struct mux_stats st;
	uint8_t *pk;
	size_t at = 0;

	replay(CAP("emmg-mux-v2-udp-sections"), 2, m);
	mux_stats(m, &st);
	assert_int_equal(st.udp_rejected, 0);
	assert_int_equal(st.errors_sent, 0);
	assert_int_equal(st.sections_in, ndg);
	pk = take_all(m, &npk);
	reassemble(pk, npk, &out);
	/* every captured section comes out, whole and in order */
	assert_int_equal(out.n, ndg);
	for (size_t i = 0; i < out.n; i++) {
		assert_memory_equal(out.sec[i], dg + at, out.len[i]);
		at += out.len[i];
	}
	assert_int_equal(at, dlen);
	free(pk);
	free(dg);
	tu_capture_free(msgs, n);
	mux_free(m);
}

static void test_replay_v3_tcp_packets(void **state)
{
	(void)state;
	struct mux *m = start_mux(3, 200, 0);
	size_t n = 0, npk = 0, dlen = 0, ndg = 0, n2 = 0, dlen2 = 0, ndg2 = 0;
	struct tu_capmsg *msgs = tu_capture_load(CAP("emmg-mux-v3-tcp-packets"), &n);
	struct tu_capmsg *msgs2 = tu_capture_load(CAP("emmg-mux-v2-udp-sections"), &n2);
	uint8_t *dg = captured_datagrams(msgs, n, 3, &dlen, &ndg);
	uint8_t *dg2 = captured_datagrams(msgs2, n2, 2, &dlen2, &ndg2);
	static struct secs out;
	uint8_t *pk;
	size_t at = 0;

	replay(CAP("emmg-mux-v3-tcp-packets"), 3, m);
	pk = take_all(m, &npk);
	/* the captured packets, re-PIDed to the EMM PID, payload untouched */
	assert_int_equal(npk * TS_PACKET_BYTES, dlen);
	for (size_t i = 0; i < npk; i++) {
		assert_int_equal(pk[i * TS_PACKET_BYTES], 0x47);
		assert_int_equal(pk[i * TS_PACKET_BYTES + 1] & 0x40, dg[i * TS_PACKET_BYTES + 1] & 0x40);
		assert_memory_equal(pk + i * TS_PACKET_BYTES + 4, dg + i * TS_PACKET_BYTES + 4, 184);
	}
	/* and they carry the same EMM sections as the v2 capture's datagrams:
	 * TSDuck stopped after 6,000 bytes of packets, so the first 48 whole */
	reassemble(pk, npk, &out);
	assert_int_equal(out.n, 48);
	assert_true(out.n <= ndg2);
	for (size_t i = 0; i < out.n; i++) {
		assert_memory_equal(out.sec[i], dg2 + at, out.len[i]);
		at += out.len[i];
	}
	free(pk);
	free(dg);
	free(dg2);
	tu_capture_free(msgs, n);
	tu_capture_free(msgs2, n2);
	mux_free(m);
}

/* ------------------------------------------------------------ errors */

enum { CH = 3, ST = 4, DID = 7 };

static size_t mk(uint8_t *b, uint8_t ver, uint16_t type, int ch, int st, uint32_t client, int flag,
	int data_id, int data_type, const uint8_t *dg, size_t dglen)
{
	struct sc_writer sw;
	size_t n = 0;

	sc_begin(&sw, b, 4096, ver, type);
	if (ch >= 0)
		sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, (uint16_t)ch);
	if (st >= 0)
		sc_put_u16(&sw, SC_P_DATA_STREAM_ID, (uint16_t)st);
	sc_put_u32(&sw, SC_P_CLIENT_ID, client);
	if (flag >= 0)
		sc_put_u8(&sw, SC_P_SECTION_TSPKT_FLAG, (uint8_t)flag);
	if (data_id >= 0)
		sc_put_u16(&sw, SC_P_DATA_ID, (uint16_t)data_id);
	if (data_type >= 0)
		sc_put_u8(&sw, SC_P_DATA_TYPE, (uint8_t)data_type);
	if (dg)
		sc_put_bytes(&sw, SC_P_DATAGRAM, dg, dglen);
	assert_int_equal(sc_finish(&sw, &n), 0);
	return n;
}

static const uint8_t emm_sec[8] = { 0x82, 0x70, 0x05, 1, 2, 3, 4, 5 };
static const uint8_t bad_sec[8] = { 0x82, 0x70, 0x09, 1, 2, 3, 4, 5 };  /* says 12 bytes */
static const uint8_t short_pkt[100] = { 0x47 };

/* setup steps before the faulty message */
enum { NONE = 0, CHAN = 1, STREAM = 2 };

struct err_case {
	const char *name;
	uint8_t mux_version;   /* 0 = any */
	int setup;             /* NONE / CHAN / CHAN|STREAM */
	int packet_mode;
	uint8_t ver;           /* version of the faulty message */
	uint16_t type;
	int ch, st;
	uint32_t client;
	int flag, data_id, data_type;
	const uint8_t *dg;
	size_t dglen;
	const char *raw_hex;   /* instead of the fields above */
	uint16_t want_type;    /* SC_EMM_CHANNEL_ERROR / SC_EMM_STREAM_ERROR */
	uint16_t want_status;
	int want_info;         /* -1 = not checked */
};

static const struct err_case err_cases[] = {
	{ "bad client_id", 0, CHAN, 0, 2, SC_EMM_STREAM_SETUP, CH, ST, 0x4ADC0002, -1, DID, 0, NULL, 0, NULL,
	  SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_CLIENT_ID, -1 },
	{ "bad client_id in data", 0, CHAN | STREAM, 0, 2, SC_EMM_DATA_PROVISION, CH, ST, 0x12345678, -1, DID, -1,
	  emm_sec, 8, NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_CLIENT_ID, -1 },
	{ "data before stream_setup", 0, CHAN, 0, 2, SC_EMM_DATA_PROVISION, CH, ST, CLIENT, -1, DID, -1,
	  emm_sec, 8, NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_DATA_STREAM_ID, -1 },
	{ "data before channel_setup", 0, NONE, 0, 2, SC_EMM_DATA_PROVISION, CH, ST, CLIENT, -1, DID, -1,
	  emm_sec, 8, NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_DATA_CHANNEL_ID, -1 },
	{ "unknown data_id", 0, CHAN | STREAM, 0, 2, SC_EMM_DATA_PROVISION, CH, ST, CLIENT, -1, DID + 1, -1,
	  emm_sec, 8, NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_DATA_ID, DID + 1 },
	{ "unknown data_id, no stream id", 0, CHAN | STREAM, 0, 2, SC_EMM_DATA_PROVISION, CH, -1, CLIENT, -1,
	  DID + 1, -1, emm_sec, 8, NULL, SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_INV_DATA_ID, DID + 1 },
	{ "unknown stream in stream_test", 0, CHAN, 0, 2, SC_EMM_STREAM_TEST, CH, 9, CLIENT, -1, -1, -1, NULL, 0,
	  NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_DATA_STREAM_ID, -1 },
	{ "wrong data_channel_id", 0, CHAN, 0, 2, SC_EMM_CHANNEL_TEST, 9, -1, CLIENT, -1, -1, -1, NULL, 0, NULL,
	  SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_INV_DATA_CHANNEL_ID, -1 },
	{ "stream_setup twice", 0, CHAN | STREAM, 0, 2, SC_EMM_STREAM_SETUP, CH, ST, CLIENT, -1, DID + 1, 0, NULL,
	  0, NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_STREAM_ID_IN_USE, -1 },
	{ "data_id twice", 0, CHAN | STREAM, 0, 2, SC_EMM_STREAM_SETUP, CH, ST + 1, CLIENT, -1, DID, 0, NULL, 0,
	  NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_DATA_ID_IN_USE, -1 },
	{ "data_type private", 0, CHAN, 0, 2, SC_EMM_STREAM_SETUP, CH, ST, CLIENT, -1, DID, 1, NULL, 0, NULL,
	  SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_PARAM_VALUE, SC_P_DATA_TYPE },
	{ "section_TSpkt_flag 2", 0, NONE, 0, 2, SC_EMM_CHANNEL_SETUP, CH, -1, CLIENT, 2, -1, -1, NULL, 0, NULL,
	  SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_INV_PARAM_VALUE, SC_P_SECTION_TSPKT_FLAG },
	{ "channel_setup twice", 0, CHAN, 0, 2, SC_EMM_CHANNEL_SETUP, CH, -1, CLIENT, 0, -1, -1, NULL, 0, NULL,
	  SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_CHANNEL_ID_IN_USE, -1 },
	/* the section says 12 bytes, 8 are there: offset of the datagram value */
	{ "bad section length", 0, CHAN | STREAM, 0, 2, SC_EMM_DATA_PROVISION, CH, ST, CLIENT, -1, DID, -1,
	  bad_sec, 8, NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_PARAM_VALUE, 5 + 6 + 6 + 8 + 6 + 4 },
	{ "packet mode, 100-byte datagram", 0, CHAN | STREAM, 1, 2, SC_EMM_DATA_PROVISION, CH, ST, CLIENT, -1,
	  DID, -1, short_pkt, 100, NULL, SC_EMM_STREAM_ERROR, SC_EMM_ERR_INV_PARAM_VALUE, -1 },
	{ "wrong version after setup", 0, CHAN, 0, 3, SC_EMM_CHANNEL_TEST, CH, -1, CLIENT, -1, -1, -1, NULL, 0,
	  NULL, SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_INV_PROTO_VERSION, 0 },
	{ "version 6", 0, NONE, 0, 6, SC_EMM_CHANNEL_SETUP, CH, -1, CLIENT, 0, -1, -1, NULL, 0, NULL,
	  SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_INV_PROTO_VERSION, 0 },
	{ "v3 to a v2 MUX", 2, NONE, 0, 3, SC_EMM_CHANNEL_SETUP, CH, -1, CLIENT, 0, -1, -1, NULL, 0, NULL,
	  SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_INV_PROTO_VERSION, 0 },
	/* a TLV says 4 bytes, 2 are left: truncated parameter at offset 11 */
	{ "truncated TLV", 0, NONE, 0, 2, 0, 0, 0, 0, 0, 0, 0, NULL, 0, "020011000c000300020003000100044adc",
	  SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_INV_MESSAGE, 11 },
	{ "unknown message type", 0, NONE, 0, 2, 0, 0, 0, 0, 0, 0, 0, NULL, 0, "0203330000",
	  SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_INV_MESSAGE_TYPE, 1 },
	{ "unknown parameter", 0, NONE, 0, 2, 0, 0, 0, 0, 0, 0, 0, NULL, 0,
	  "020011001800030002000300010004 4adc0001000200010000990001ff", SC_EMM_CHANNEL_ERROR,
	  SC_EMM_ERR_INV_PARAM_TYPE, -1 },
	{ "missing client_id", 0, NONE, 0, 2, 0, 0, 0, 0, 0, 0, 0, NULL, 0, "020011000b00030002000300020001 00",
	  SC_EMM_CHANNEL_ERROR, SC_EMM_ERR_MISSING_PARAM, SC_P_CLIENT_ID },
};

static size_t hex_nospace(const char *h, uint8_t *out, size_t cap)
{
	char clean[512];
	size_t k = 0, n = 0;

	for (; *h && k + 1 < sizeof(clean); h++)
		if (*h != ' ')
			clean[k++] = *h;
	clean[k] = '\0';
	assert_int_equal(hex_decode_var(clean, out, cap, &n), 0);
	return n;
}

static void setup_session(struct mux *m, int fd, int steps, int packet_mode, uint8_t ver)
{
	uint8_t b[4096], r[256];
	size_t n;

	if (steps & CHAN) {
		n = mk(b, ver, SC_EMM_CHANNEL_SETUP, CH, -1, CLIENT, packet_mode, -1, -1, NULL, 0);
		send_all(fd, b, n);
		assert_true(recv_msg(m, fd, r, sizeof(r)) > 0);
		assert_int_equal(tu_be16(r + 1), SC_EMM_CHANNEL_STATUS);
	}
	if (steps & STREAM) {
		n = mk(b, ver, SC_EMM_STREAM_SETUP, CH, ST, CLIENT, -1, DID, 0, NULL, 0);
		send_all(fd, b, n);
		assert_true(recv_msg(m, fd, r, sizeof(r)) > 0);
		assert_int_equal(tu_be16(r + 1), SC_EMM_STREAM_STATUS);
	}
}

/* --allow (issue 12 item 7): an EMMG outside the list is closed on accept
 * (before any message) and its UDP datagrams are dropped; a bad list is
 * refused. */
static void test_allow(void **state)
{
	struct mux_config c = { .listen = "127.0.0.1:0", .emm_pid = EMM_PID, .allow = "10.0.0.0/8" };
	struct mux *m = NULL;
	struct mux_stats st;
	uint8_t b[4096];
	size_t n;
	int fd, ufd;

	(void)state;
	c.allow = "10.0.0.1/8";
	assert_int_equal(mux_new(&c, &m), CE_ARG);
	assert_null(m);
	c.allow = "10.0.0.0/8";
	assert_int_equal(mux_new(&c, &m), 0);
	fd = tcp_to(mux_port(m));
	n = mk(b, 3, SC_EMM_CHANNEL_SETUP, 1, -1, CLIENT, 0, -1, -1, NULL, 0);
	(void)send(fd, b, n, MSG_NOSIGNAL);
	for (int i = 0;; i++) {
		ssize_t r;

		assert_true(i < 300);
		assert_int_equal(mux_poll(m, 10), 0);
		r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			break; /* closed, no answer */
		assert_true(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	}
	close(fd);
	ufd = udp_to(mux_port(m));
	send_all(ufd, b, 8);
	poll_until_datagrams(m, 1);
	mux_stats(m, &st);
	assert_int_equal(st.peers_denied, 2);
	assert_int_equal(st.conns_accepted, 0);
	assert_int_equal(st.udp_rejected, 1);
	close(ufd);
	mux_free(m);
}

/* One address holds at most max_conns_per_peer of the 16 connections
 * (issue 12 item 7): the next one from it is closed, another address still
 * gets in. */
static void test_per_peer_cap(void **state)
{
	struct mux_config c = { .listen = "127.0.0.1:0", .emm_pid = EMM_PID, .max_conns_per_peer = 2 };
	struct sockaddr_in a = { .sin_family = AF_INET }, b = { .sin_family = AF_INET };
	struct mux *m = NULL;
	struct mux_stats st;
	int fd[3], other;

	(void)state;
	assert_int_equal(mux_new(&c, &m), 0);
	for (int i = 0; i < 3; i++) {
		fd[i] = tcp_to(mux_port(m));
		for (int k = 0; k < 5; k++)
			assert_int_equal(mux_poll(m, 5), 0);
	}
	mux_stats(m, &st);
	assert_int_equal(st.conns_accepted, 2);
	assert_int_equal(st.conns_refused, 1);
	/* 127.0.0.2 is another peer */
	other = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(other >= 0);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.2", &b.sin_addr), 1);
	assert_int_equal(bind(other, (struct sockaddr *)&b, sizeof(b)), 0);
	a.sin_port = htons(mux_port(m));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(other, (struct sockaddr *)&a, sizeof(a)), 0);
	for (int k = 0; k < 5; k++)
		assert_int_equal(mux_poll(m, 5), 0);
	mux_stats(m, &st);
	assert_int_equal(st.conns_accepted, 3);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	close(other);
	mux_free(m);
}

static void test_error_table(void **state)
{
	(void)state;
	static struct sc_msg dm;

	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		struct mux *m = start_mux(c->mux_version, 100, 0);
		int fd = tcp_to(mux_port(m));
		uint8_t b[4096], r[256];
		size_t n;
		ssize_t got;
		struct sc_fault f;
		uint16_t v = 0;
		struct mux_stats st;

		setup_session(m, fd, c->setup, c->packet_mode, 2);
		if (c->raw_hex)
			n = hex_nospace(c->raw_hex, b, sizeof(b));
		else
			n = mk(b, c->ver, c->type, c->ch, c->st, c->client, c->flag, c->data_id, c->data_type, c->dg,
				c->dglen);
		send_all(fd, b, n);
		got = recv_msg(m, fd, r, sizeof(r));
		if (got <= 0)
			fail_msg("%s: no answer", c->name);
		/* the error is a valid message in the MUX's version */
		if (sc_decode(SC_EMMG_MUX, r[0], r, (size_t)got, &dm, &f) != 0)
			fail_msg("%s: undecodable answer", c->name);
		if (dm.type != c->want_type)
			fail_msg("%s: got %s", c->name, sc_msg_name(SC_EMMG_MUX, dm.type));
		assert_int_equal(sc_get_u16(&dm, SC_P_ERROR_STATUS, &v), 0);
		if (v != c->want_status)
			fail_msg("%s: error_status 0x%04x, want 0x%04x", c->name, v, c->want_status);
		if (c->want_info >= 0) {
			assert_int_equal(sc_get_u16(&dm, SC_P_ERROR_INFORMATION, &v), 0);
			if (v != c->want_info)
				fail_msg("%s: error_information %u, want %d", c->name, v, c->want_info);
		}
		assert_int_equal(r[0], c->mux_version ? c->mux_version : 2);
		/* nothing was queued */
		mux_stats(m, &st);
		assert_int_equal(st.pkts_in, 0);
		close(fd);
		mux_free(m);
	}
}

static void test_tests_and_close(void **state)
{
	(void)state;
	struct mux *m = start_mux(0, 100, 0);
	int fd = tcp_to(mux_port(m));
	uint8_t b[4096], r[256], e[256];
	size_t n, en;
	struct mux_stats st;

	setup_session(m, fd, CHAN | STREAM, 0, 4);
	/* channel_test -> channel_status, stream_test -> stream_status (v4) */
	n = mk(b, 4, SC_EMM_CHANNEL_TEST, CH, -1, CLIENT, -1, -1, -1, NULL, 0);
	send_all(fd, b, n);
	assert_int_equal(recv_msg(m, fd, r, sizeof(r)), 24);
	en = mk(e, 4, SC_EMM_CHANNEL_STATUS, CH, -1, CLIENT, 0, -1, -1, NULL, 0);
	assert_memory_equal(r, e, en);
	n = mk(b, 4, SC_EMM_STREAM_TEST, CH, ST, CLIENT, -1, -1, -1, NULL, 0);
	send_all(fd, b, n);
	assert_true(recv_msg(m, fd, r, sizeof(r)) > 0);
	en = mk(e, 4, SC_EMM_STREAM_STATUS, CH, ST, CLIENT, -1, DID, 0, NULL, 0);
	assert_memory_equal(r, e, en);
	/* an error from the EMMG is never answered */
	send_all(fd, (const uint8_t *)"\x04\x00\x15\x00\x14\x00\x03\x00\x02\x00\x03\x00\x01\x00\x04\x4a\xdc\x00\x01"
		"\x70\x00\x00\x02\x00\x01", 25);
	expect_silence(m, fd);
	mux_stats(m, &st);
	assert_int_equal(st.errors_received, 1);
	/* three invalid messages in a row: disconnected */
	for (int i = 0; i < 3; i++)
		send_all(fd, (const uint8_t *)"\x04\x03\x33\x00\x00", 5);
	for (int i = 0; i < 3; i++) {
		ssize_t got = recv_msg(m, fd, r, sizeof(r));

		assert_true(got > 0);
		assert_int_equal(tu_be16(r + 1), SC_EMM_CHANNEL_ERROR);
	}
	assert_int_equal(recv_msg(m, fd, r, sizeof(r)), 0);
	mux_stats(m, &st);
	assert_int_equal(st.channels, 0);
	close(fd);
	mux_free(m);
}

static uint16_t bw_request(struct mux *m, int fd, int ch, uint32_t client, int kbps)
{
	uint8_t b[256], r[256];
	struct sc_writer sw;
	size_t n = 0;
	static struct sc_msg dm;
	struct sc_fault f;
	uint16_t v = 0xFFFF;

	sc_begin(&sw, b, sizeof(b), 2, SC_EMM_STREAM_BW_REQUEST);
	sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, (uint16_t)ch);
	sc_put_u16(&sw, SC_P_DATA_STREAM_ID, ST);
	sc_put_u32(&sw, SC_P_CLIENT_ID, client);
	if (kbps >= 0)
		sc_put_u16(&sw, SC_P_BANDWIDTH, (uint16_t)kbps);
	assert_int_equal(sc_finish(&sw, &n), 0);
	send_all(fd, b, n);
	n = (size_t)recv_msg(m, fd, r, sizeof(r));
	assert_int_equal(sc_decode(SC_EMMG_MUX, 2, r, n, &dm, &f), 0);
	assert_int_equal(dm.type, SC_EMM_STREAM_BW_ALLOCATION);
	assert_int_equal(sc_get_u16(&dm, SC_P_BANDWIDTH, &v), 0);
	return v;
}

static void test_bandwidth_and_clients(void **state)
{
	(void)state;
	struct mux *m = start_mux(0, 200, 0);
	int a = tcp_to(mux_port(m)), b = tcp_to(mux_port(m)), c = tcp_to(mux_port(m));
	uint8_t msg[256], r[256];
	uint32_t ids[8];
	size_t n = 0;
	uint64_t g0, g1;
	struct mux_stats st;

	g0 = mux_clients(m, ids, 8, &n);
	assert_int_equal(n, 0);
	setup_session(m, a, CHAN | STREAM, 0, 2);
	assert_int_equal(bw_request(m, a, CH, CLIENT, 150), 150);
	/* asking again replaces the stream's own grant */
	assert_int_equal(bw_request(m, a, CH, CLIENT, 500), 200);
	assert_int_equal(bw_request(m, a, CH, CLIENT, 120), 120);
	/* a second EMMG (another CA system) gets what is left */
	n = mk(msg, 2, SC_EMM_CHANNEL_SETUP, 1, -1, 0x0B000001, 1, -1, -1, NULL, 0);
	send_all(b, msg, n);
	assert_true(recv_msg(m, b, r, sizeof(r)) > 0);
	n = mk(msg, 2, SC_EMM_STREAM_SETUP, 1, ST, 0x0B000001, -1, 1, 0, NULL, 0);
	send_all(b, msg, n);
	assert_true(recv_msg(m, b, r, sizeof(r)) > 0);
	assert_int_equal(bw_request(m, b, 1, 0x0B000001, 100), 80);
	assert_int_equal(bw_request(m, b, 1, 0x0B000001, -1), 80);
	mux_stats(m, &st);
	assert_int_equal(st.allocated_kbps, 200);
	assert_int_equal(st.channels, 2);
	/* same client and channel on another connection: in use */
	n = mk(msg, 2, SC_EMM_CHANNEL_SETUP, CH, -1, CLIENT, 0, -1, -1, NULL, 0);
	send_all(c, msg, n);
	assert_true(recv_msg(m, c, r, sizeof(r)) > 0);
	assert_int_equal(tu_be16(r + 1), SC_EMM_CHANNEL_ERROR);
	assert_int_equal(tu_be16(r + 5 + 6 + 8 + 4), SC_EMM_ERR_CHANNEL_ID_IN_USE);
	g1 = mux_clients(m, ids, 8, &n);
	assert_true(g1 != g0);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], 0x0B000001);
	assert_int_equal(ids[1], CLIENT);
	/* closing frees the client and its bandwidth */
	close(b);
	for (int i = 0; i < 50 && mux_clients(m, ids, 8, &n) == g1; i++)
		assert_int_equal(mux_poll(m, 10), 0);
	mux_clients(m, ids, 8, &n);
	assert_int_equal(n, 1);
	mux_stats(m, &st);
	assert_int_equal(st.allocated_kbps, 120);
	close(a);
	close(c);
	mux_free(m);
}

static void test_queue_bound(void **state)
{
	(void)state;
	struct mux *m = start_mux(0, 100, 8);
	int fd = tcp_to(mux_port(m));
	uint8_t b[4096];
	size_t n;
	struct mux_stats st;
	uint8_t pk[8 * TS_PACKET_BYTES];
	static struct secs out;

	setup_session(m, fd, CHAN | STREAM, 0, 2);
	for (int i = 0; i < 20; i++) {
		uint8_t sec[8];

		memcpy(sec, emm_sec, sizeof(sec));
		sec[3] = (uint8_t)i;
		n = mk(b, 2, SC_EMM_DATA_PROVISION, CH, ST, CLIENT, -1, DID, -1, sec, sizeof(sec));
		send_all(fd, b, n);
	}
	for (int i = 0; i < 100; i++) {
		mux_stats(m, &st);
		if (st.data_provisions == 20)
			break;
		assert_int_equal(mux_poll(m, 10), 0);
	}
	assert_int_equal(st.data_provisions, 20);
	assert_int_equal(st.pkts_in, 20);
	assert_int_equal(st.pkts_dropped, 12);
	assert_int_equal(mux_queued(m), 8);
	/* the newest 8 are kept */
	assert_int_equal(mux_take(m, pk, 8, &n), 0);
	assert_int_equal(n, 8);
	reassemble(pk, n, &out);
	assert_int_equal(out.n, 8);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(out.sec[i][3], 12 + i);
	close(fd);
	mux_free(m);
}

static void test_datagram_parser(void **state)
{
	(void)state;
	uint8_t out[64 * TS_PACKET_BYTES], d[600];
	size_t n = 0, ns = 0, off = 0;

	/* two sections back to back, 5 and 200 bytes: 1 + 2 packets */
	memset(d, 0xAB, sizeof(d));
	d[0] = 0x82; d[1] = 0x70; d[2] = 2;
	d[5] = 0x83; d[6] = 0x70; d[7] = 197;
	assert_int_equal(mux_datagram_pkts(d, 205, false, EMM_PID, out, 64, &n, &ns, &off), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ns, 2);
	assert_int_equal(out[1] & 0x40, 0x40);
	assert_int_equal(out[4], 0); /* pointer_field */
	assert_int_equal(out[5], 0x82);
	/* bad cases */
	static const struct { size_t len; bool pm; int want; size_t off; } bad[] = {
		{ 0, false, CE_TRUNCATED, 0 },
		{ 2, false, CE_TRUNCATED, 0 },
		{ 204, false, CE_TRUNCATED, 5 },     /* second section short by one */
		{ 206, false, CE_TRUNCATED, 205 },   /* one byte after the sections */
		{ 100, true, CE_TRAILING, 0 },
		{ 376, true, CE_FORMAT, 0 },         /* not 0x47 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = mux_datagram_pkts(d, bad[i].len, bad[i].pm, EMM_PID, out, 64, &n, &ns, &off);

		if (r != bad[i].want || off != bad[i].off)
			fail_msg("bad case %zu: %d at %zu", i, r, off);
	}
	/* stuffing table_id and oversize section */
	d[0] = 0xFF;
	assert_int_equal(mux_datagram_pkts(d, 205, false, EMM_PID, out, 64, &n, &ns, &off), CE_FORMAT);
	d[0] = 0x82; d[1] = 0x7F; d[2] = 0xFF;
	assert_int_equal(mux_datagram_pkts(d, 205, false, EMM_PID, out, 64, &n, &ns, &off), CE_FORMAT);
	/* output capacity */
	d[1] = 0x70; d[2] = 2;
	assert_int_equal(mux_datagram_pkts(d, 205, false, EMM_PID, out, 2, &n, &ns, &off), CE_OVERFLOW);
	/* packet mode re-PIDs */
	memset(d, 0xFF, 376);
	d[0] = 0x47; d[1] = 0x5F; d[2] = 0xFF; d[3] = 0x10;
	d[188] = 0x47; d[189] = 0x1F; d[190] = 0xFF; d[191] = 0x11;
	assert_int_equal(mux_datagram_pkts(d, 376, true, EMM_PID, out, 64, &n, &ns, &off), 0);
	assert_int_equal(n, 2);
	assert_int_equal(((out[1] & 0x1F) << 8) | out[2], EMM_PID);
	assert_int_equal(((out[189] & 0x1F) << 8) | out[190], EMM_PID);
	/* the fuzz corpus (first byte: mode) parses */
	static const char *const corpus[] = { "../../fuzz/corpus/mux/sections-2", "../../fuzz/corpus/mux/packets-3" };
	for (size_t i = 0; i < 2; i++) {
		size_t len = 0;
		uint8_t *f = tu_read(tu_testdata(corpus[i]), &len);

		assert_int_equal(mux_datagram_pkts(f + 1, len - 1, f[0] & 1, EMM_PID, out, 64, &n, &ns, &off), 0);
		assert_true(n > 0);
		free(f);
	}
}

/* ------------------------------------------------- scrambler + EMMG */

struct emmg_thread {
	uint16_t port;
	size_t nsecs;
	volatile int sent;   /* 1 sent, -1 failed */
	volatile int done;
};

static uint8_t thr_secs[20][100];

static void *emmg_main(void *arg)
{
	struct emmg_thread *t = arg;
	struct emmg_config c;
	struct emmg *e = NULL;
	const uint8_t *p[20];
	size_t l[20], sent = 0;

	emmg_config_init(&c);
	snprintf(c.mux, sizeof(c.mux), "127.0.0.1:%u", t->port);
	c.client_id = CLIENT;
	c.bandwidth_kbps = 500;
	for (size_t i = 0; i < t->nsecs; i++) {
		p[i] = thr_secs[i];
		l[i] = sizeof(thr_secs[i]);
	}
	if (emmg_new(&c, &e) != 0 || emmg_connect(e) != 0 ||
	    emmg_send(e, p, l, t->nsecs, 10000, &sent) != 0 || sent != t->nsecs) {
		t->sent = -1;
		emmg_free(e);
		return NULL;
	}
	t->sent = 1;
	while (!t->done)
		if (emmg_poll(e, 10) != 0)
			break;
	emmg_free(e);
	return NULL;
}

struct outbuf {
	uint8_t *b;
	size_t n, cap;
};

static int out_cb(void *ctx, const uint8_t *pkts, size_t n)
{
	struct outbuf *o = ctx;

	if (o->n + n > o->cap)
		return CE_OVERFLOW;
	memcpy(o->b + o->n * TS_PACKET_BYTES, pkts, n * TS_PACKET_BYTES);
	o->n += n;
	return 0;
}

static void test_scrambler_emm_and_cat(void **state)
{
	(void)state;
	struct scrambler_config *cfg = calloc(1, sizeof(*cfg));
	struct scrambler *s = NULL;
	struct emmg_thread t = { .nsecs = 20 };
	pthread_t th;
	char listen[64];
	size_t inlen = 0;
	uint8_t *in = tu_read(tu_testdata("ts-clear-2svc.ts"), &inlen);
	size_t npk = inlen / TS_PACKET_BYTES;
	struct outbuf o = { .cap = npk * 2 };
	uint8_t *emm = malloc(npk * TS_PACKET_BYTES);
	size_t nemm = 0, ncat = 0, nca = 0;
	static struct secs out;
	struct psi_asm cat_asm;
	struct scrambler_stats st;
	struct cat *cat = calloc(1, sizeof(*cat));
	struct ca_desc ca[4];
	static uint8_t last_cat[PSI_MAX_SECTION];
	size_t last_cat_len = 0;

	assert_non_null(cfg);
	assert_non_null(emm);
	o.b = malloc(o.cap * TS_PACKET_BYTES);
	assert_non_null(o.b);
	for (size_t i = 0; i < 20; i++) {
		memset(thr_secs[i], (int)i, sizeof(thr_secs[i]));
		thr_secs[i][0] = (uint8_t)(0x82 + (i & 1));
		thr_secs[i][1] = 0x70;
		thr_secs[i][2] = 97;
	}
	/* port 0: the MUX binds a free port, read back after start (no race
	 * with another process taking a pre-probed port) */
	snprintf(listen, sizeof(listen), "127.0.0.1:0");
	scrambler_config_init(cfg);
	cfg->nservices = 1;
	cfg->services[0].service_id = 101;
	cfg->has_fixed_cw = true;
	cfg->fixed_cw_len = 8;
	memcpy(cfg->fixed_cw, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8);
	cfg->mux_listen = listen;
	cfg->emm_max_kbps = 500;
	assert_int_equal(scrambler_new(cfg, &s), 0);
	assert_int_equal(scrambler_start(s), 0);
	t.port = scrambler_mux_port(s);
	assert_int_not_equal(t.port, 0);
	assert_int_equal(pthread_create(&th, NULL, emmg_main, &t), 0);
	/* serve the MUX (an empty push polls it) until the EMMG has sent */
	for (int i = 0; i < 2000 && t.sent == 0; i++) {
		assert_int_equal(scrambler_push(s, NULL, 0, out_cb, &o), 0);
		usleep(2000);
	}
	assert_int_equal(t.sent, 1);
	for (int i = 0; i < 20; i++) { /* the last data_provision may still be in flight */
		assert_int_equal(scrambler_push(s, NULL, 0, out_cb, &o), 0);
		usleep(2000);
	}
	for (size_t i = 0; i < npk; i += 64) {
		size_t k = npk - i < 64 ? npk - i : 64;

		assert_int_equal(scrambler_push(s, in + i * TS_PACKET_BYTES, k, out_cb, &o), 0);
	}
	assert_int_equal(scrambler_flush(s, out_cb, &o), 0);
	t.done = 1;
	pthread_join(th, NULL);
	scrambler_stats(s, &st);
	/* collect EMM packets and the CAT */
	psi_asm_init(&cat_asm, TS_PID_CAT);
	for (size_t i = 0; i < o.n; i++) {
		const uint8_t *p = o.b + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		assert_int_equal(ts_parse(p, &h), 0);
		if (h.pid == EMM_PID)
			memcpy(emm + (nemm++) * TS_PACKET_BYTES, p, TS_PACKET_BYTES);
		if (h.pid == TS_PID_CAT) {
			struct secs *cs = calloc(1, sizeof(*cs));

			ncat++;
			assert_int_equal(psi_asm_push(&cat_asm, p, &h, sec_cb, cs), 0);
			if (cs->n) {
				last_cat_len = cs->len[cs->n - 1];
				memcpy(last_cat, cs->sec[cs->n - 1], last_cat_len);
			}
			free(cs);
		}
	}
	assert_int_equal(nemm, 20);
	assert_int_equal(st.emm_pkts, 20);
	reassemble(emm, nemm, &out); /* also checks PID; CCs below */
	for (size_t i = 1; i < nemm; i++)
		assert_int_equal(emm[i * TS_PACKET_BYTES + 3] & 15, (emm[(i - 1) * TS_PACKET_BYTES + 3] + 1) & 15);
	assert_int_equal(out.n, 20);
	for (size_t i = 0; i < 20; i++) {
		assert_int_equal(out.len[i], 100);
		assert_memory_equal(out.sec[i], thr_secs[i], 100);
	}
	assert_true(ncat > 0);
	assert_true(last_cat_len > 0);
	assert_int_equal(cat_parse(last_cat, last_cat_len, cat), 0);
	assert_int_equal(ca_desc_find(cat->info, cat->info_len, ca, 4, &nca), 0);
	assert_int_equal(nca, 1);
	assert_int_equal(ca[0].ca_system_id, 0x4ADC);
	assert_int_equal(ca[0].ca_pid, EMM_PID);
	assert_int_equal(st.pkts_out, o.n);
	/* the MUX counters in the scrambler's stats */
	assert_true(st.has_mux);
	assert_int_equal(st.mux.conns_accepted, 1);
	assert_true(st.mux.data_provisions >= 1);
	assert_int_equal(st.mux.sections_in, 20);
	assert_int_equal(st.mux.pkts_out, 20);
	scrambler_free(s);
	free(cat);
	free(emm);
	free(o.b);
	free(in);
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_v2_udp_sections),
		cmocka_unit_test(test_replay_v3_tcp_packets),
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_allow),
		cmocka_unit_test(test_per_peer_cap),
		cmocka_unit_test(test_tests_and_close),
		cmocka_unit_test(test_bandwidth_and_clients),
		cmocka_unit_test(test_queue_bound),
		cmocka_unit_test(test_datagram_parser),
		cmocka_unit_test(test_scrambler_emm_and_cat),
	};

	log_set_level(LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
