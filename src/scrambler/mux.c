/*
 * mux.c - the EMMG/PDG<=>MUX server (see mux.h). One session per TCP
 * connection, one channel per session; data_provision also over UDP on the
 * same port. Sessions and queue live in struct mux, no globals.
 *
 * Session rules (docs/mux.md has the full table):
 *  - every message is decoded by sc_decode with the connection's version
 *    (the configured one, or the first message's when configured "any");
 *    a rejected message is answered with the codec's channel_error /
 *    stream_error, except error messages (never answer an error with an
 *    error); 3 invalid messages in a row close the connection;
 *  - state faults are answered with the interface's error_status:
 *    no channel / wrong data_channel_id -> inv_data_channel_id, wrong
 *    client_id -> inv_client_id, unknown stream -> inv_data_stream_id,
 *    data_id not the stream's -> inv_data_id, bad datagram ->
 *    inv_param_value (error_information = byte offset in the message),
 *    data beyond the grant -> exceeded_bw (data dropped).
 *
 * Reference: ETSI TS 103 197; tests/data/simulcrypt/FACTS.md section 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "scrambler/mux.h"
#include "simulcrypt/framer.h"
#include "simulcrypt/simulcrypt.h"
#include "ts/psi.h"
#include "ts/ts.h"

#define MOD "mux"
#define WBUF_BYTES 8192            /* replies waiting for a slow peer */
#define READ_BUDGET_BYTES (1u << 20) /* per connection per mux_poll */
#define UDP_BUDGET 256             /* datagrams per mux_poll */
#define SEC_MAX_PKTS 23            /* a 4096-byte section */
#define BW_BURST_S 2.0             /* a stream may run this far ahead */
#define BW_BURST_MIN_BYTES 16384.0
#define EXCEEDED_ERR_EVERY_US 1000000u

struct mux_stream {
	bool used;
	uint16_t stream_id;
	uint16_t data_id;
	uint8_t data_type;
	bool has_bw;                 /* a stream_BW_allocation was sent */
	uint16_t bw_kbps;
	double tokens;               /* bytes of TS it may still send */
	uint64_t tokens_us;
	uint64_t exceeded_err_us;    /* last exceeded_bw error sent */
};

struct mux_conn {
	int fd;                      /* -1: slot free */
	bool version_set;
	uint8_t version;
	bool chan_up;
	uint16_t channel_id;
	uint32_t client_id;
	bool packet_mode;            /* section_TSpkt_flag = 1 */
	struct mux_stream st[MUX_MAX_STREAMS_PER_CHAN];
	unsigned bad;                /* consecutive invalid messages */
	bool closing;                /* close once the replies are out */
	uint8_t *rbuf;               /* SC_MAX_MSG_BYTES */
	struct sc_framer fr;         /* over rbuf */
	size_t wlen;
	uint8_t wbuf[WBUF_BYTES];
	char peer[64];
};

struct mux {
	pthread_mutex_t *lock;
	struct mux_config cfg;
	int lfd;
	int ufd;
	uint16_t port;
	struct mux_conn conns[MUX_MAX_CONNS];
	uint8_t *q;                  /* queue_pkts * 188 */
	size_t qcap, qhead, qlen;
	uint8_t cc;
	uint64_t gen;
	struct mux_stats st;
	struct sc_msg *msg;          /* scratch: decoded message */
	uint8_t *ubuf;               /* scratch: one UDP datagram */
};

/* ------------------------------------------------------------------ */
/* datagram -> packets                                                  */

typedef void (*pkt_fn)(void *ctx, const uint8_t pkt[TS_PACKET_BYTES]);

/* Validate (fn NULL) or emit the packets of one datagram. */
static int dgram_walk(const uint8_t *d, size_t len, bool packet_mode, uint16_t pid, pkt_fn fn,
	void *ctx, size_t *npkts, size_t *nsec, size_t *bad_off)
{
	struct cur c;

	*npkts = 0;
	*nsec = 0;
	*bad_off = 0;
	if (len == 0)
		return CE_TRUNCATED;
	cur_init(&c, d, len);
	if (packet_mode) {
		if (len % TS_PACKET_BYTES != 0) {
			*bad_off = len - len % TS_PACKET_BYTES;
			return CE_TRAILING;
		}
		while (cur_left(&c) > 0) {
			size_t at = c.off;
			const uint8_t *p = cur_ptr(&c, TS_PACKET_BYTES);
			struct ts_hdr h;
			uint8_t pkt[TS_PACKET_BYTES];

			if (!p || ts_parse(p, &h) != 0 || h.tei) {
				*bad_off = at;
				return CE_FORMAT;
			}
			if (fn) {
				memcpy(pkt, p, TS_PACKET_BYTES);
				ts_set_pid(pkt, pid);
				fn(ctx, pkt);
			}
			(*npkts)++;
		}
		return 0;
	}
	while (cur_left(&c) > 0) {
		size_t at = c.off;
		uint8_t tid = 0;
		uint16_t sl = 0;
		struct cur sec;

		cur_u8(&c, &tid);
		cur_u16(&c, &sl);
		sl &= 0x0FFF;
		if (c.err || tid == 0xFF || (size_t)sl + 3 > PSI_MAX_SECTION) {
			*bad_off = at;
			return c.err ? c.err : CE_FORMAT;
		}
		if (cur_view(&c, sl, &sec) != 0) {
			*bad_off = at;
			return CE_TRUNCATED;
		}
		if (fn) {
			uint8_t pkts[SEC_MAX_PKTS * TS_PACKET_BYTES];
			size_t n = 0;
			uint8_t cc = 0;

			/* the section is contiguous in d: from its table_id on */
			if (ts_packetize(d + at, (size_t)sl + 3, pid, &cc, pkts, SEC_MAX_PKTS, &n) != 0) {
				*bad_off = at;
				return CE_INTERNAL;
			}
			for (size_t i = 0; i < n; i++)
				fn(ctx, pkts + i * TS_PACKET_BYTES);
		}
		*npkts += ts_packets_for((size_t)sl + 3);
		(*nsec)++;
	}
	return 0;
}

struct arr_ctx {
	uint8_t *out;
	size_t cap, n;
};

static void arr_put(void *ctx, const uint8_t pkt[TS_PACKET_BYTES])
{
	struct arr_ctx *a = ctx;

	if (a->n < a->cap)
		memcpy(a->out + a->n * TS_PACKET_BYTES, pkt, TS_PACKET_BYTES);
	a->n++;
}

int mux_datagram_pkts(const uint8_t *d, size_t len, bool packet_mode, uint16_t pid, uint8_t *out,
	size_t cap_pkts, size_t *npkts, size_t *nsections, size_t *bad_off)
{
	struct arr_ctx a = { out, cap_pkts, 0 };
	size_t n = 0, ns = 0, off = 0;
	int r;

	*npkts = 0;
	*nsections = 0;
	*bad_off = 0;
	if ((!d && len) || !out || pid > TS_PID_MAX)
		return CE_ARG;
	r = dgram_walk(d, len, packet_mode, pid, NULL, NULL, &n, &ns, &off);
	if (r != 0) {
		*bad_off = off;
		return r;
	}
	if (n > cap_pkts)
		return CE_OVERFLOW;
	r = dgram_walk(d, len, packet_mode, pid, arr_put, &a, &n, &ns, &off);
	if (r != 0)
		return r;
	*npkts = n;
	*nsections = ns;
	return 0;
}

/* ------------------------------------------------------------------ */
/* queue                                                                */

static void q_put(void *ctx, const uint8_t pkt[TS_PACKET_BYTES])
{
	struct mux *m = ctx;

	if (m->qlen == m->qcap) {
		m->qhead = (m->qhead + 1) % m->qcap;
		m->qlen--;
		m->st.pkts_dropped++;
	}
	memcpy(m->q + ((m->qhead + m->qlen) % m->qcap) * TS_PACKET_BYTES, pkt, TS_PACKET_BYTES);
	m->qlen++;
	m->st.pkts_in++;
}

/* ------------------------------------------------------------------ */
/* connections                                                          */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL, 0);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return CE_IO;
	return 0;
}

static uint32_t allocated_kbps(const struct mux *m)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		for (size_t j = 0; j < MUX_MAX_STREAMS_PER_CHAN; j++)
			if (m->conns[i].fd >= 0 && m->conns[i].st[j].used && m->conns[i].st[j].has_bw)
				sum += m->conns[i].st[j].bw_kbps;
	return sum;
}

static size_t count_streams(const struct mux *m)
{
	size_t n = 0;

	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		for (size_t j = 0; j < MUX_MAX_STREAMS_PER_CHAN; j++)
			if (m->conns[i].fd >= 0 && m->conns[i].st[j].used)
				n++;
	return n;
}

static void conn_close(struct mux *m, struct mux_conn *c, const char *why)
{
	if (c->fd < 0)
		return;
	LOG_INFO(MOD, "EMMG %s (client_id 0x%08x, channel %u) disconnected: %s", c->peer,
		c->client_id, c->channel_id, why);
	close(c->fd);
	if (c->chan_up)
		metric_link_id("mux", c->client_id, 0);
	if (c->chan_up)
		m->gen++;
	free(c->rbuf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	m->st.conns_closed++;
}

static void conn_flush(struct mux *m, struct mux_conn *c)
{
	size_t off = 0;

	while (off < c->wlen) {
		ssize_t w = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			c->wlen = 0;
			conn_close(m, c, "send failed");
			return;
		}
		off += (size_t)w;
	}
	memmove(c->wbuf, c->wbuf + off, c->wlen - off);
	c->wlen -= off;
}

static void conn_send(struct mux *m, struct mux_conn *c, const uint8_t *b, size_t n)
{
	if (c->fd < 0)
		return;
	if (n > sizeof(c->wbuf) - c->wlen) {
		conn_close(m, c, "peer does not read its replies");
		return;
	}
	memcpy(c->wbuf + c->wlen, b, n);
	c->wlen += n;
	conn_flush(m, c);
}

static uint8_t conn_version(const struct mux *m, const struct mux_conn *c)
{
	if (m->cfg.version)
		return m->cfg.version;
	return c->version_set ? c->version : 2;
}

/* channel_error (stream = false) or stream_error, TSDuck parameter order. */
static void send_error(struct mux *m, struct mux_conn *c, bool stream, uint16_t channel_id,
	uint16_t stream_id, uint32_t client_id, uint16_t status, uint16_t info)
{
	uint8_t b[64];
	struct sc_writer sw;
	size_t n = 0;

	sc_begin(&sw, b, sizeof(b), conn_version(m, c), stream ? SC_EMM_STREAM_ERROR : SC_EMM_CHANNEL_ERROR);
	sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, channel_id);
	if (stream)
		sc_put_u16(&sw, SC_P_DATA_STREAM_ID, stream_id);
	sc_put_u32(&sw, SC_P_CLIENT_ID, client_id);
	sc_put_u16(&sw, SC_P_ERROR_STATUS, status);
	sc_put_u16(&sw, SC_P_ERROR_INFORMATION, info);
	if (sc_finish(&sw, &n) != 0)
		return;
	LOG_DEBUG(MOD, "EMMG %s: %s %s (0x%04x) info %u", c->peer, stream ? "stream_error" : "channel_error",
		sc_error_name(SC_EMMG_MUX, status), status, info);
	m->st.errors_sent++;
	conn_send(m, c, b, n);
}

static void send_channel_status(struct mux *m, struct mux_conn *c)
{
	uint8_t b[64];
	struct sc_writer sw;
	size_t n = 0;

	sc_begin(&sw, b, sizeof(b), conn_version(m, c), SC_EMM_CHANNEL_STATUS);
	sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, c->channel_id);
	sc_put_u32(&sw, SC_P_CLIENT_ID, c->client_id);
	sc_put_u8(&sw, SC_P_SECTION_TSPKT_FLAG, c->packet_mode ? 1 : 0);
	if (sc_finish(&sw, &n) == 0)
		conn_send(m, c, b, n);
}

/* stream_status, stream_close_response or stream_BW_allocation. */
static void send_stream_msg(struct mux *m, struct mux_conn *c, uint16_t type, const struct mux_stream *s)
{
	uint8_t b[64];
	struct sc_writer sw;
	size_t n = 0;

	sc_begin(&sw, b, sizeof(b), conn_version(m, c), type);
	sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, c->channel_id);
	sc_put_u16(&sw, SC_P_DATA_STREAM_ID, s->stream_id);
	sc_put_u32(&sw, SC_P_CLIENT_ID, c->client_id);
	if (type == SC_EMM_STREAM_STATUS) {
		sc_put_u16(&sw, SC_P_DATA_ID, s->data_id);
		sc_put_u8(&sw, SC_P_DATA_TYPE, s->data_type);
	} else if (type == SC_EMM_STREAM_BW_ALLOCATION) {
		sc_put_u16(&sw, SC_P_BANDWIDTH, s->bw_kbps);
	}
	if (sc_finish(&sw, &n) == 0)
		conn_send(m, c, b, n);
}

static struct mux_stream *find_stream(struct mux_conn *c, uint16_t id)
{
	for (size_t j = 0; j < MUX_MAX_STREAMS_PER_CHAN; j++)
		if (c->st[j].used && c->st[j].stream_id == id)
			return &c->st[j];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* messages                                                             */

static void on_channel_setup(struct mux *m, struct mux_conn *c, const struct sc_msg *msg,
	uint16_t ch, uint32_t client)
{
	uint8_t flag = 0;

	if (c->chan_up) {
		send_error(m, c, false, ch, 0, client,
			ch == c->channel_id ? SC_EMM_ERR_CHANNEL_ID_IN_USE : SC_EMM_ERR_TOO_MANY_CHANNELS, 0);
		return;
	}
	if (sc_get_u8(msg, SC_P_SECTION_TSPKT_FLAG, &flag) != 0 || flag > 1) {
		send_error(m, c, false, ch, 0, client, SC_EMM_ERR_INV_PARAM_VALUE, SC_P_SECTION_TSPKT_FLAG);
		return;
	}
	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		const struct mux_conn *o = &m->conns[i];

		if (o != c && o->fd >= 0 && o->chan_up && o->client_id == client && o->channel_id == ch) {
			send_error(m, c, false, ch, 0, client, SC_EMM_ERR_CHANNEL_ID_IN_USE, 0);
			return;
		}
	}
	c->chan_up = true;
	c->channel_id = ch;
	c->client_id = client;
	metric_link_id("mux", client, 1);
	c->packet_mode = flag == 1;
	m->gen++;
	LOG_INFO(MOD, "EMMG %s: channel %u set up, client_id 0x%08x, %s, version %u", c->peer, ch, client,
		c->packet_mode ? "TS packets" : "sections", conn_version(m, c));
	send_channel_status(m, c);
}

static void on_stream_setup(struct mux *m, struct mux_conn *c, const struct sc_msg *msg, uint16_t sid)
{
	uint16_t data_id = 0;
	uint8_t type = 0;
	struct mux_stream *free_slot = NULL;

	if (sc_get_u16(msg, SC_P_DATA_ID, &data_id) != 0 || sc_get_u8(msg, SC_P_DATA_TYPE, &type) != 0)
		return; /* the codec guarantees both */
	if (find_stream(c, sid)) {
		send_error(m, c, true, c->channel_id, sid, c->client_id, SC_EMM_ERR_STREAM_ID_IN_USE, 0);
		return;
	}
	for (size_t j = 0; j < MUX_MAX_STREAMS_PER_CHAN; j++) {
		if (c->st[j].used && c->st[j].data_id == data_id) {
			send_error(m, c, true, c->channel_id, sid, c->client_id, SC_EMM_ERR_DATA_ID_IN_USE, 0);
			return;
		}
		if (!c->st[j].used && !free_slot)
			free_slot = &c->st[j];
	}
	if (type != 0x00) { /* this MUX carries EMMs only */
		send_error(m, c, true, c->channel_id, sid, c->client_id, SC_EMM_ERR_INV_PARAM_VALUE, SC_P_DATA_TYPE);
		return;
	}
	if (!free_slot) {
		send_error(m, c, true, c->channel_id, sid, c->client_id, SC_EMM_ERR_TOO_MANY_STM_CHAN, 0);
		return;
	}
	if (count_streams(m) >= MUX_MAX_STREAMS) {
		send_error(m, c, true, c->channel_id, sid, c->client_id, SC_EMM_ERR_TOO_MANY_STM_MUX, 0);
		return;
	}
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = true;
	free_slot->stream_id = sid;
	free_slot->data_id = data_id;
	free_slot->data_type = type;
	send_stream_msg(m, c, SC_EMM_STREAM_STATUS, free_slot);
}

static void on_bw_request(struct mux *m, struct mux_conn *c, const struct sc_msg *msg, struct mux_stream *s)
{
	uint16_t want = 0;
	bool has = sc_get_u16(msg, SC_P_BANDWIDTH, &want) == 0;
	uint32_t others = allocated_kbps(m) - (s->has_bw ? s->bw_kbps : 0);
	uint32_t room = m->cfg.max_kbps > others ? m->cfg.max_kbps - others : 0;
	uint32_t grant = has && want < room ? want : room;

	if (grant > 0xFFFF)
		grant = 0xFFFF;
	s->has_bw = true;
	s->bw_kbps = (uint16_t)grant;
	s->tokens = (double)grant * 1000.0 / 8.0 * BW_BURST_S;
	if (s->tokens < BW_BURST_MIN_BYTES)
		s->tokens = BW_BURST_MIN_BYTES;
	s->tokens_us = now_mono_us();
	LOG_INFO(MOD, "EMMG %s: stream %u asked %s%u kbit/s, granted %u of %u (total %u)", c->peer,
		s->stream_id, has ? "" : "(unstated) ", has ? want : 0, grant, m->cfg.max_kbps,
		others + grant);
	send_stream_msg(m, c, SC_EMM_STREAM_BW_ALLOCATION, s);
}

/* Police the grant: true if nbytes of TS may go. */
static bool bw_take(struct mux_stream *s, size_t nbytes)
{
	uint64_t now = now_mono_us();
	double rate = (double)s->bw_kbps * 1000.0 / 8.0; /* bytes per second */
	double burst = rate * BW_BURST_S;

	if (!s->has_bw)
		return true; /* no allocation asked: the queue bound still applies */
	if (burst < BW_BURST_MIN_BYTES)
		burst = BW_BURST_MIN_BYTES;
	s->tokens += rate * (double)(now - s->tokens_us) / 1e6;
	s->tokens_us = now;
	if (s->tokens > burst)
		s->tokens = burst;
	if ((double)nbytes > s->tokens)
		return false;
	s->tokens -= (double)nbytes;
	return true;
}

/* data_provision from TCP (udp false) or UDP; buf is the whole message. */
static void on_data(struct mux *m, struct mux_conn *c, const struct sc_msg *msg, const uint8_t *buf,
	bool udp)
{
	uint16_t sid = 0, data_id = 0;
	bool has_sid = sc_get_u16(msg, SC_P_DATA_STREAM_ID, &sid) == 0;
	struct mux_stream *s = NULL;
	size_t total = 0;

	if (sc_get_u16(msg, SC_P_DATA_ID, &data_id) != 0)
		return;
	if (has_sid) {
		s = find_stream(c, sid);
		if (!s) {
			send_error(m, c, true, c->channel_id, sid, c->client_id, SC_EMM_ERR_INV_DATA_STREAM_ID, 0);
			goto rejected;
		}
		if (s->data_id != data_id) {
			send_error(m, c, true, c->channel_id, sid, c->client_id, SC_EMM_ERR_INV_DATA_ID, data_id);
			goto rejected;
		}
	} else {
		for (size_t j = 0; j < MUX_MAX_STREAMS_PER_CHAN && !s; j++)
			if (c->st[j].used && c->st[j].data_id == data_id)
				s = &c->st[j];
		if (!s) {
			send_error(m, c, false, c->channel_id, 0, c->client_id, SC_EMM_ERR_INV_DATA_ID, data_id);
			goto rejected;
		}
	}
	/* validate every datagram before queueing any */
	for (size_t i = 0; i < msg->nparams; i++) {
		const struct sc_param *p = &msg->params[i];
		size_t n = 0, ns = 0, off = 0;

		if (p->type != SC_P_DATAGRAM)
			continue;
		if (dgram_walk(p->val, p->len, c->packet_mode, m->cfg.emm_pid, NULL, NULL, &n, &ns, &off) != 0) {
			size_t at = (size_t)(p->val - buf) + off;

			send_error(m, c, true, c->channel_id, s->stream_id, c->client_id,
				SC_EMM_ERR_INV_PARAM_VALUE, at > 0xFFFF ? 0xFFFF : (uint16_t)at);
			goto rejected;
		}
		total += n;
	}
	if (!bw_take(s, total * TS_PACKET_BYTES)) {
		uint64_t now = now_mono_us();

		m->st.bw_exceeded++;
		if (now - s->exceeded_err_us >= EXCEEDED_ERR_EVERY_US || s->exceeded_err_us == 0) {
			s->exceeded_err_us = now;
			send_error(m, c, true, c->channel_id, s->stream_id, c->client_id, SC_EMM_ERR_EXCEEDED_BW, 0);
		}
		goto rejected;
	}
	for (size_t i = 0; i < msg->nparams; i++) {
		const struct sc_param *p = &msg->params[i];
		size_t n = 0, ns = 0, off = 0;

		if (p->type != SC_P_DATAGRAM)
			continue;
		if (dgram_walk(p->val, p->len, c->packet_mode, m->cfg.emm_pid, q_put, m, &n, &ns, &off) == 0)
			m->st.sections_in += ns;
	}
	m->st.data_provisions++;
	return;
rejected:
	if (udp)
		m->st.udp_rejected++;
}

/* A message decoded with the connection's version; state checks here. */
static void on_msg(struct mux *m, struct mux_conn *c, const struct sc_msg *msg, const uint8_t *buf)
{
	uint32_t client = 0;
	uint16_t ch = 0, sid = 0;
	bool has_ch = sc_get_u16(msg, SC_P_DATA_CHANNEL_ID, &ch) == 0;
	bool has_sid = sc_get_u16(msg, SC_P_DATA_STREAM_ID, &sid) == 0;
	struct mux_stream *s = NULL;

	if (sc_get_u32(msg, SC_P_CLIENT_ID, &client) != 0)
		return; /* mandatory in every EMMG<=>MUX message: the codec checked */
	if (msg->type == SC_EMM_CHANNEL_ERROR || msg->type == SC_EMM_STREAM_ERROR) {
		uint16_t status = 0;

		m->st.errors_received++;
		if (sc_get_u16(msg, SC_P_ERROR_STATUS, &status) == 0)
			LOG_WARN(MOD, "EMMG %s sent %s: %s (0x%04x)", c->peer, sc_msg_name(SC_EMMG_MUX, msg->type),
				sc_error_name(SC_EMMG_MUX, status), status);
		return;
	}
	if (msg->type == SC_EMM_CHANNEL_SETUP) {
		on_channel_setup(m, c, msg, ch, client);
		return;
	}
	if (!c->chan_up || (has_ch && ch != c->channel_id)) {
		send_error(m, c, has_sid && msg->type >= 0x0100, ch, sid, client, SC_EMM_ERR_INV_DATA_CHANNEL_ID, 0);
		return;
	}
	if (client != c->client_id) {
		send_error(m, c, has_sid && msg->type >= 0x0100, ch, sid, client, SC_EMM_ERR_INV_CLIENT_ID, 0);
		return;
	}
	switch (msg->type) {
	case SC_EMM_CHANNEL_TEST:
		send_channel_status(m, c);
		return;
	case SC_EMM_CHANNEL_STATUS:
	case SC_EMM_STREAM_STATUS:
		return; /* answers to tests we do not send: nothing to do */
	case SC_EMM_CHANNEL_CLOSE:
		c->closing = true;
		return;
	case SC_EMM_STREAM_SETUP:
		on_stream_setup(m, c, msg, sid);
		return;
	case SC_EMM_DATA_PROVISION:
		on_data(m, c, msg, buf, false);
		return;
	default:
		break;
	}
	/* stream-level messages on an existing stream */
	s = find_stream(c, sid);
	if (!s) {
		send_error(m, c, true, ch, sid, client, SC_EMM_ERR_INV_DATA_STREAM_ID, 0);
		return;
	}
	switch (msg->type) {
	case SC_EMM_STREAM_TEST:
		send_stream_msg(m, c, SC_EMM_STREAM_STATUS, s);
		break;
	case SC_EMM_STREAM_CLOSE_REQUEST:
		send_stream_msg(m, c, SC_EMM_STREAM_CLOSE_RESPONSE, s);
		memset(s, 0, sizeof(*s));
		break;
	case SC_EMM_STREAM_BW_REQUEST:
		on_bw_request(m, c, msg, s);
		break;
	default: /* MUX -> EMMG messages (close_response, allocation) */
		send_error(m, c, true, ch, sid, client, SC_EMM_ERR_INV_MESSAGE_TYPE, 1);
		break;
	}
}

/* The version to decode a message of this connection with. */
static uint8_t expect_version(const struct mux *m, const struct mux_conn *c, const uint8_t *buf, size_t len)
{
	if (m->cfg.version)
		return m->cfg.version;
	if (c && c->version_set)
		return c->version;
	if (len > 0 && sc_version_ok(SC_EMMG_MUX, buf[0]))
		return buf[0];
	return 2; /* a bad first version: answered as version 2 */
}

static void handle_tcp_msg(struct mux *m, struct mux_conn *c, const uint8_t *buf, size_t len)
{
	struct sc_fault f;
	uint8_t v = expect_version(m, c, buf, len);

	if (sc_decode(SC_EMMG_MUX, v, buf, len, m->msg, &f) != 0) {
		uint8_t b[64];
		size_t n = 0;

		m->st.msgs_bad++;
		c->bad++;
		if (!(f.has_type && (f.msg_type == SC_EMM_CHANNEL_ERROR || f.msg_type == SC_EMM_STREAM_ERROR))) {
			if (sc_build_error(SC_EMMG_MUX, v, &f, f.has_client ? f.client_id : c->client_id, b,
				    sizeof(b), &n) == 0) {
				m->st.errors_sent++;
				conn_send(m, c, b, n);
			}
		}
		if (c->fd >= 0 && c->bad >= MUX_MAX_BAD_MSGS)
			c->closing = true;
		return;
	}
	c->bad = 0;
	m->st.msgs_in++;
	if (!c->version_set) {
		c->version_set = true;
		c->version = m->msg->version;
	}
	on_msg(m, c, m->msg, buf);
}

static void conn_read(struct mux *m, struct mux_conn *c)
{
	size_t budget = READ_BUDGET_BYTES;

	while (c->fd >= 0 && !c->closing && budget > 0) {
		size_t want, len;
		uint8_t *dst = sc_framer_room(&c->fr, true, &want), *msg;
		ssize_t r = recv(c->fd, dst, want, 0);

		if (r == 0) {
			conn_close(m, c, c->chan_up ? "closed by peer" : "closed by peer before channel_setup");
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(m, c, "receive failed");
			return;
		}
		sc_framer_fill(&c->fr, (size_t)r);
		budget = (size_t)r > budget ? 0 : budget - (size_t)r;
		if (sc_framer_next(&c->fr, &msg, &len) == SC_FRAME_MSG)
			handle_tcp_msg(m, c, msg, len);
	}
}

static void do_accept(struct mux *m)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept(m->lfd, (struct sockaddr *)&ss, &sl);
		struct mux_conn *c = NULL;
		char host[48] = "?", serv[8] = "?";
		int one = 1;

		if (fd < 0)
			return;
		for (size_t i = 0; i < MUX_MAX_CONNS && !c; i++)
			if (m->conns[i].fd < 0)
				c = &m->conns[i];
		if (!c || set_nonblock(fd) != 0) {
			m->st.conns_refused++;
			LOG_WARN(MOD, "EMMG connection refused: %d connections already", MUX_MAX_CONNS);
			close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->rbuf = malloc(SC_MAX_MSG_BYTES);
		if (!c->rbuf) {
			close(fd);
			c->fd = -1;
			m->st.conns_refused++;
			continue;
		}
		sc_framer_init(&c->fr, c->rbuf, SC_MAX_MSG_BYTES, SC_MAX_MSG_BYTES);
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
			    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
			memcpy(host, "?", 2);
			memcpy(serv, "?", 2);
		}
		snprintf(c->peer, sizeof(c->peer), "%s:%s", host, serv);
		m->st.conns_accepted++;
		LOG_INFO(MOD, "EMMG connected from %s", c->peer);
	}
}

static void udp_read(struct mux *m)
{
	for (int k = 0; k < UDP_BUDGET; k++) {
		ssize_t r = recv(m->ufd, m->ubuf, SC_MAX_MSG_BYTES, 0);
		struct sc_fault f;
		struct mux_conn *c = NULL;
		uint32_t client = 0;
		uint16_t ch = 0;
		bool has_ch;
		uint8_t v;

		if (r < 0)
			return;
		m->st.udp_datagrams++;
		v = expect_version(m, NULL, m->ubuf, (size_t)r);
		if (sc_decode(SC_EMMG_MUX, v, m->ubuf, (size_t)r, m->msg, &f) != 0 ||
		    m->msg->type != SC_EMM_DATA_PROVISION) {
			/* no reply path over UDP: counted */
			m->st.msgs_bad++;
			m->st.udp_rejected++;
			continue;
		}
		if (sc_get_u32(m->msg, SC_P_CLIENT_ID, &client) != 0)
			continue;
		has_ch = sc_get_u16(m->msg, SC_P_DATA_CHANNEL_ID, &ch) == 0;
		for (size_t i = 0; i < MUX_MAX_CONNS && !c; i++) {
			struct mux_conn *o = &m->conns[i];

			if (o->fd >= 0 && o->chan_up && o->client_id == client && (!has_ch || o->channel_id == ch))
				c = o;
		}
		if (!c || conn_version(m, c) != m->msg->version) {
			m->st.udp_rejected++;
			continue;
		}
		m->st.msgs_in++;
		on_data(m, c, m->msg, m->ubuf, true);
	}
}

/* ------------------------------------------------------------------ */
/* API                                                                  */

static int bind_both(struct mux *m, const char *listen_addr)
{
	char host[256];
	uint16_t port = 0;
	struct addrinfo hints, *ai = NULL;
	char pstr[8];
	int one = 1, r;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (addr_split(listen_addr, host, sizeof(host), &port) != 0)
		return CE_ARG;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(pstr, sizeof(pstr), "%u", port);
	if (getaddrinfo(host[0] ? host : NULL, pstr, &hints, &ai) != 0 || !ai)
		return CE_ARG;
	r = CE_IO;
	m->lfd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (m->lfd < 0)
		goto out;
	(void)setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->lfd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(m->lfd, 16) != 0 ||
	    set_nonblock(m->lfd) != 0)
		goto out;
	if (getsockname(m->lfd, (struct sockaddr *)&ss, &sl) != 0)
		goto out;
	m->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		: ((struct sockaddr_in *)&ss)->sin_port);
	/* UDP on the same port */
	m->ufd = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (m->ufd < 0)
		goto out;
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons(m->port);
	else
		((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(m->port);
	(void)setsockopt(m->ufd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	{
		int rcv = 1 << 20;

		(void)setsockopt(m->ufd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	}
	if (bind(m->ufd, ai->ai_addr, ai->ai_addrlen) != 0 || set_nonblock(m->ufd) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		LOG_ERR(MOD, "cannot listen on %s: %s", listen_addr, strerror(errno));
	freeaddrinfo(ai);
	return r;
}

int mux_new(const struct mux_config *cfg, struct mux **out)
{
	struct mux *m = NULL;
	int r;

	*out = NULL;
	if (!cfg || !cfg->listen)
		return CE_ARG;
	if (cfg->version && !sc_version_ok(SC_EMMG_MUX, cfg->version))
		return CE_ARG;
	if (cfg->emm_pid && (cfg->emm_pid < 0x20 || cfg->emm_pid >= TS_PID_NULL))
		return CE_RANGE;
	if (cfg->queue_pkts > MUX_MAX_QUEUE_PKTS || cfg->max_kbps > 0xFFFFu * MUX_MAX_STREAMS)
		return CE_RANGE;
	m = calloc(1, sizeof(*m));
	if (!m)
		return CE_NOMEM;
	m->lfd = m->ufd = -1;
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		m->conns[i].fd = -1;
	m->cfg = *cfg;
	m->cfg.listen = NULL; /* not kept: the caller's string */
	if (!m->cfg.emm_pid)
		m->cfg.emm_pid = MUX_DEFAULT_EMM_PID;
	if (!m->cfg.max_kbps)
		m->cfg.max_kbps = MUX_DEFAULT_MAX_KBPS;
	m->qcap = m->cfg.queue_pkts ? m->cfg.queue_pkts : MUX_DEFAULT_QUEUE_PKTS;
	m->cc = 15;
	m->lock = malloc(sizeof(*m->lock));
	m->q = malloc(m->qcap * TS_PACKET_BYTES);
	m->msg = malloc(sizeof(*m->msg));
	m->ubuf = malloc(SC_MAX_MSG_BYTES);
	if (!m->lock || !m->q || !m->msg || !m->ubuf) {
		free(m->lock);
		m->lock = NULL;
		r = CE_NOMEM;
		goto fail;
	}
	if (pthread_mutex_init(m->lock, NULL) != 0) {
		free(m->lock);
		m->lock = NULL;
		r = CE_NOMEM;
		goto fail;
	}
	if ((r = bind_both(m, cfg->listen)) != 0)
		goto fail;
	LOG_INFO(MOD, "listening for EMMGs on TCP and UDP port %u (EMM PID 0x%04x, %u kbit/s)", m->port,
		m->cfg.emm_pid, m->cfg.max_kbps);
	*out = m;
	return 0;
fail:
	mux_free(m);
	return r;
}

uint16_t mux_port(const struct mux *m)
{
	return m ? m->port : 0;
}

int mux_poll(struct mux *m, int timeout_ms)
{
	struct pollfd pfd[2 + MUX_MAX_CONNS];
	struct mux_conn *who[2 + MUX_MAX_CONNS];
	nfds_t n = 0;
	int r;

	if (!m)
		return CE_ARG;
	if (timeout_ms < 0)
		timeout_ms = 1000;
	pthread_mutex_lock(m->lock);
	pfd[n] = (struct pollfd){ .fd = m->lfd, .events = POLLIN };
	who[n++] = NULL;
	pfd[n] = (struct pollfd){ .fd = m->ufd, .events = POLLIN };
	who[n++] = NULL;
	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		struct mux_conn *c = &m->conns[i];

		if (c->fd < 0)
			continue;
		pfd[n] = (struct pollfd){ .fd = c->fd, .events = (short)(POLLIN | (c->wlen ? POLLOUT : 0)) };
		who[n++] = c;
	}
	pthread_mutex_unlock(m->lock);
	/* only this thread changes the sockets: the fds stay valid unlocked */
	r = poll(pfd, n, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : CE_IO;
	if (r == 0)
		return 0;
	pthread_mutex_lock(m->lock);
	if (pfd[0].revents & POLLIN)
		do_accept(m);
	if (pfd[1].revents & POLLIN)
		udp_read(m);
	for (nfds_t i = 2; i < n; i++) {
		struct mux_conn *c = who[i];

		if (c->fd != pfd[i].fd)
			continue;
		if ((pfd[i].revents & POLLOUT) && c->wlen)
			conn_flush(m, c);
		if (c->fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			conn_read(m, c);
	}
	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		struct mux_conn *c = &m->conns[i];

		if (c->fd >= 0 && c->closing) {
			conn_flush(m, c);
			if (c->fd >= 0)
				conn_close(m, c, c->bad >= MUX_MAX_BAD_MSGS ? "too many invalid messages" : "channel_close");
		}
	}
	pthread_mutex_unlock(m->lock);
	return 0;
}

int mux_take(struct mux *m, uint8_t *buf, size_t max_pkts, size_t *n)
{
	size_t k = 0;

	if (n)
		*n = 0;
	if (!m || !n || (!buf && max_pkts))
		return CE_ARG;
	pthread_mutex_lock(m->lock);
	while (k < max_pkts && m->qlen > 0) {
		uint8_t *p = buf + k * TS_PACKET_BYTES;
		struct ts_hdr h;

		memcpy(p, m->q + m->qhead * TS_PACKET_BYTES, TS_PACKET_BYTES);
		m->qhead = (m->qhead + 1) % m->qcap;
		m->qlen--;
		if (ts_parse(p, &h) == 0 && h.has_payload)
			m->cc = (uint8_t)((m->cc + 1) & 0x0F);
		ts_set_cc(p, m->cc);
		k++;
	}
	m->st.pkts_out += k;
	pthread_mutex_unlock(m->lock);
	*n = k;
	return 0;
}

size_t mux_queued(const struct mux *m)
{
	size_t n;

	if (!m)
		return 0;
	pthread_mutex_lock(m->lock);
	n = m->qlen;
	pthread_mutex_unlock(m->lock);
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t mux_clients(const struct mux *m, uint32_t *ids, size_t max, size_t *n)
{
	uint32_t all[MUX_MAX_CONNS];
	size_t k = 0, out = 0;
	uint64_t gen;

	*n = 0;
	if (!m)
		return 0;
	pthread_mutex_lock(m->lock);
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (m->conns[i].fd >= 0 && m->conns[i].chan_up)
			all[k++] = m->conns[i].client_id;
	gen = m->gen;
	pthread_mutex_unlock(m->lock);
	qsort(all, k, sizeof(all[0]), cmp_u32);
	for (size_t i = 0; i < k && out < max; i++)
		if (i == 0 || all[i] != all[i - 1])
			ids[out++] = all[i];
	*n = out;
	return gen;
}

void mux_stats(const struct mux *m, struct mux_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!m)
		return;
	pthread_mutex_lock(m->lock);
	*out = m->st;
	out->allocated_kbps = allocated_kbps(m);
	out->streams = count_streams(m);
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (m->conns[i].fd >= 0 && m->conns[i].chan_up)
			out->channels++;
	out->queued_pkts = m->qlen;
	pthread_mutex_unlock(m->lock);
}

void mux_free(struct mux *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (m->conns[i].fd >= 0)
			conn_close(m, &m->conns[i], "MUX shutting down");
	if (m->lfd >= 0)
		close(m->lfd);
	if (m->ufd >= 0)
		close(m->ufd);
	if (m->lock) {
		pthread_mutex_destroy(m->lock);
		free(m->lock);
	}
	free(m->q);
	free(m->msg);
	free(m->ubuf);
	free(m);
}
