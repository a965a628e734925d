/*
 * ecmg.c - the ECMG server: libevent loop, one session per SCS connection,
 * channel/stream state machines, CW_provision -> ECM_response.
 *
 * Normative reference: ETSI TS 103 197 (ECMG<=>SCS); where the text was not
 * available we follow TSDuck's tsecmg (tests/data/simulcrypt/FACTS.md): one
 * channel per TCP connection, ECM_channel_id scoped to its connection (each
 * SCS allocates its own; TSDuck makes it unique across connections),
 * ECM_id unique across the ECMG (a box keeps replay state per ECM_id),
 * parse faults answered with the codec's channel_error/stream_error, a
 * channel_error/stream_error never answered with an error, disconnection
 * after ECMG_BAD_MSGS_BEFORE_CLOSE consecutive invalid messages.
 *
 * Framing: 5-byte header, then message_length bytes. A declared length over
 * ECMG_MAX_RX_MSG_BYTES is answered with message_too_long and its bytes are
 * skipped as they arrive (never buffered), so the session stays in sync.
 * The input buffer therefore never holds more than one maximal message plus
 * one socket read; the output buffer is capped at ECMG_MAX_TX_BUFFER_BYTES.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include "lib/bytes.h"
#include "lib/cursor.h"
#include "cas/ecm.h"
#include "cas/osd.h"
#include "cas/keys.h"
#include "headend/ecmg.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/netacl.h"
#include "lib/util.h"
#include "simulcrypt/framer.h"
#include "simulcrypt/simulcrypt.h"
#include "ts/ts.h"

#define MOD "ecmg"
#define ECMG_TX_BYTES 8192 /* one ECM_response: 1024-byte ECM in <= 6 packets + TLVs */
#define ECM_PKT_PID 0x1FFF /* the SCS puts ECM packets on its own ECM PID (as TSDuck's ECMG) */
#define ECMG_STREAM_LOGS 8 /* stream set-ups per connection logged at info level */

/* One ECM stream of a channel. */
struct stream {
	uint16_t id;               /* ECM_stream_id */
	uint16_t ecm_id;           /* ECM_id, unique in the ECMG */
	uint16_t nominal_cp;       /* nominal_CP_duration, 100 ms units */
	uint16_t cp_duration;      /* last CP_duration (or nominal) */
	uint8_t ac_len;            /* 0 until an access_criteria arrived */
	uint8_t ac[ECM_MAX_AC_BYTES];
	uint32_t ac_table_said;    /* last mask logged from the channels table */
	uint64_t ecms;
};

/* One peer address (all its connections): what it holds, for the quotas. */
struct peer {
	struct peer *prev, *next;
	uint8_t family;            /* 4, 6, or 0 for adopted sockets (one record for all) */
	uint8_t addr[16];
	uint32_t nconns, nchannels, nstreams;
};

/* One SCS connection = at most one ECM channel. */
struct conn {
	struct ecmg *g;
	struct conn *prev, *next;
	struct peer *pr;
	struct bufferevent *bev;
	struct event *resume;      /* continue reading after other connections ran */
	unsigned stream_logs;      /* stream set-ups logged at info level */
	bool eof_pending;          /* the peer closed; free once the buffered messages are handled */
	struct event *setup_timer; /* closes a connection that never sets a channel up */
	char peer[64];             /* "addr:port" for logs */
	bool has_channel;
	uint16_t channel_id;
	uint32_t super_cas_id;
	bool closing;              /* flush the output, then free */
	bool dead;                 /* free at the end of the current callback */
	bool in_cb;
	unsigned bad_in_row;
	struct sc_framer fr;       /* over rx; drops oversized messages as they arrive */
	struct stream *streams;
	size_t nstreams, cap_streams;
	uint64_t msgs_in, ecms, bad;
	struct sc_msg msg;         /* decode scratch (~3 KB, kept off the stack) */
	uint8_t tx[ECMG_TX_BYTES];
	uint8_t rx[ECMG_MAX_RX_MSG_BYTES];
};

struct counters {
	_Atomic uint64_t connections, connections_open, connections_refused, connections_denied, quota_refusals;
	_Atomic uint64_t channels, channels_open;
	_Atomic uint64_t streams, streams_open, cw_provisions, ecms, ecms_late, errors_sent;
	_Atomic uint64_t errors_received, bad_messages, timeouts, msgs_in, msgs_out, ecm_us_total;
};

struct ecmg {
	struct ecmg_config cfg;
	char listen[256];
	struct event_base *base;
	struct evconnlistener *lis;
	int stop_pipe[2];
	struct event *stop_ev;
	struct event *sig_int, *sig_term;
	uint16_t port;
	struct conn *conns;
	size_t nconns;
	struct peer *peers;
	struct netacl acl;
	size_t nstreams;           /* over every connection */
	uint64_t ecm_ids[65536 / 64]; /* ECM_ids in use, one bit each: no scan per stream_setup */
	uint64_t denied_log_ms;    /* last "peer not allowed" line (at most one a second) */
	uint64_t denied_quiet;     /* refusals not logged since */
	struct ecm_keycache *kc;   /* K_pkg of the current epoch (event thread only) */
	struct counters n;
};

#define CNT_ADD(g, f, v) atomic_fetch_add_explicit(&(g)->n.f, (uint64_t)(v), memory_order_relaxed)
#define CNT_SUB(g, f, v) atomic_fetch_sub_explicit(&(g)->n.f, (uint64_t)(v), memory_order_relaxed)
#define CNT_GET(g, f) atomic_load_explicit(&(g)->n.f, memory_order_relaxed)

void ecmg_config_init(struct ecmg_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = ECMG_DEFAULT_LISTEN;
	cfg->version = 2;
	cfg->cw_per_msg = 2;
	cfg->lead_cw = 1;
	cfg->delay_start_ms = 200;
	cfg->delay_stop_ms = 200;
	cfg->transition_delay_start_ms = -500;
	cfg->transition_delay_stop_ms = 0;
	cfg->ecm_rep_period_ms = 100;
	cfg->min_cp_duration = 10;
	cfg->max_comp_time_ms = 100;
	cfg->max_channels = 256;
	cfg->max_connections = 512;
	cfg->idle_timeout_ms = 300000;
	cfg->setup_timeout_ms = 10000;
}

/* ------------------------------------------------------------------ */
/* ECM_id index and per-peer accounting                                 */

static bool ecm_id_in_use(const struct ecmg *g, uint16_t ecm_id)
{
	return (g->ecm_ids[ecm_id / 64] >> (ecm_id % 64)) & 1u;
}

static void ecm_id_set(struct ecmg *g, uint16_t ecm_id, bool on)
{
	if (on)
		g->ecm_ids[ecm_id / 64] |= 1ull << (ecm_id % 64);
	else
		g->ecm_ids[ecm_id / 64] &= ~(1ull << (ecm_id % 64));
}

/* Forget every stream of c (channel closed or connection gone). */
static void conn_drop_streams(struct conn *c)
{
	struct ecmg *g = c->g;

	for (size_t i = 0; i < c->nstreams; i++)
		ecm_id_set(g, c->streams[i].ecm_id, false);
	CNT_SUB(g, streams_open, c->nstreams);
	g->nstreams -= c->nstreams;
	if (c->pr)
		c->pr->nstreams -= (uint32_t)c->nstreams;
	c->nstreams = 0;
}

static struct peer *peer_get(struct ecmg *g, uint8_t family, const uint8_t addr[16])
{
	struct peer *p;

	for (p = g->peers; p; p = p->next)
		if (p->family == family && memcmp(p->addr, addr, 16) == 0)
			return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->family = family;
	memcpy(p->addr, addr, 16);
	p->next = g->peers;
	if (g->peers)
		g->peers->prev = p;
	g->peers = p;
	return p;
}

static void peer_put(struct ecmg *g, struct peer *p)
{
	if (!p || --p->nconns)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		g->peers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

/* ------------------------------------------------------------------ */
/* connection lifetime                                                  */

static void conn_free(struct conn *c)
{
	struct ecmg *g = c->g;

	if (c->has_channel) {
		CNT_SUB(g, channels_open, 1);
		if (c->pr)
			c->pr->nchannels--;
	}
	conn_drop_streams(c);
	peer_put(g, c->pr);
	c->pr = NULL;
	CNT_SUB(g, connections_open, 1);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	g->nconns--;
	LOG_INFO(MOD, "%s: closed (channel %s%u, %llu messages, %llu ECMs, %llu invalid)", c->peer,
		c->has_channel ? "" : "none/", (unsigned)c->channel_id, (unsigned long long)c->msgs_in,
		(unsigned long long)c->ecms, (unsigned long long)c->bad);
	if (c->setup_timer)
		event_free(c->setup_timer);
	if (c->resume)
		event_free(c->resume);
	if (c->bev)
		bufferevent_free(c->bev);
	free(c->streams);
	free(c);
}

/* Free now, or at the end of the callback that is running. */
static void conn_kill(struct conn *c)
{
	if (c->in_cb)
		c->dead = true;
	else
		conn_free(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_kill(c);
}

/* Stop reading, flush what was queued, then free. */
static void conn_close_after_flush(struct conn *c)
{
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_kill(c);
}

static void conn_send(struct conn *c, const uint8_t *buf, size_t len)
{
	struct ecmg *g = c->g;

	if (c->dead)
		return;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) + len > ECMG_MAX_TX_BUFFER_BYTES) {
		LOG_WARN(MOD, "%s: peer does not read its answers; closing", c->peer);
		conn_kill(c);
		return;
	}
	if (bufferevent_write(c->bev, buf, len) != 0) {
		conn_kill(c);
		return;
	}
	CNT_ADD(g, msgs_out, 1);
}

/* Answer with channel_error or stream_error (the codec picks: stream_error
 * for a stream-level message that carries a stream id). */
static void send_error(struct conn *c, uint16_t msg_type, uint16_t channel_id, bool has_stream,
	uint16_t stream_id, uint16_t status, uint16_t info)
{
	struct sc_fault f = {
		.status = status, .info = info, .has_channel = true, .channel_id = channel_id,
		.has_stream = has_stream, .stream_id = stream_id, .has_type = true, .msg_type = msg_type,
	};
	size_t n;

	if (sc_build_error(SC_ECMG_SCS, c->g->cfg.version, &f, 0, c->tx, sizeof(c->tx), &n) != 0)
		return;
	LOG_DEBUG(MOD, "%s: %s for %s: %s", c->peer, has_stream ? "stream_error" : "channel_error",
		sc_msg_name(SC_ECMG_SCS, msg_type), sc_error_name(SC_ECMG_SCS, status));
	conn_send(c, c->tx, n);
	CNT_ADD(c->g, errors_sent, 1);
	metric_add_code(MET_ECM_ERRORS, status, sc_error_name(SC_ECMG_SCS, status));
}

/* ------------------------------------------------------------------ */
/* lookups                                                              */

static struct stream *find_stream(struct conn *c, uint16_t id)
{
	for (size_t i = 0; i < c->nstreams; i++)
		if (c->streams[i].id == id)
			return &c->streams[i];
	return NULL;
}

static size_t channels_open(const struct ecmg *g)
{
	size_t n = 0;

	for (const struct conn *c = g->conns; c; c = c->next)
		n += c->has_channel;
	return n;
}

/* ------------------------------------------------------------------ */
/* replies                                                              */

static void send_channel_status(struct conn *c)
{
	const struct ecmg_config *k = &c->g->cfg;
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, c->tx, sizeof(c->tx), k->version, SC_ECM_CHANNEL_STATUS);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, c->channel_id);
	sc_put_u8(&sw, SC_P_SECTION_TSPKT_FLAG, k->sections ? 0 : 1);
	sc_put_u16(&sw, SC_P_AC_DELAY_START, (uint16_t)k->delay_start_ms);
	sc_put_u16(&sw, SC_P_AC_DELAY_STOP, (uint16_t)k->delay_stop_ms);
	sc_put_u16(&sw, SC_P_DELAY_START, (uint16_t)k->delay_start_ms);
	sc_put_u16(&sw, SC_P_DELAY_STOP, (uint16_t)k->delay_stop_ms);
	sc_put_u16(&sw, SC_P_TRANSITION_DELAY_START, (uint16_t)k->transition_delay_start_ms);
	sc_put_u16(&sw, SC_P_TRANSITION_DELAY_STOP, (uint16_t)k->transition_delay_stop_ms);
	sc_put_u16(&sw, SC_P_ECM_REP_PERIOD, k->ecm_rep_period_ms);
	sc_put_u16(&sw, SC_P_MAX_STREAMS, k->max_streams);
	sc_put_u16(&sw, SC_P_MIN_CP_DURATION, k->min_cp_duration);
	sc_put_u8(&sw, SC_P_LEAD_CW, k->lead_cw);
	sc_put_u8(&sw, SC_P_CW_PER_MSG, k->cw_per_msg);
	sc_put_u16(&sw, SC_P_MAX_COMP_TIME, k->max_comp_time_ms);
	if (sc_finish(&sw, &n) == 0)
		conn_send(c, c->tx, n);
}

static void send_stream_msg(struct conn *c, uint16_t type, const struct stream *s, uint16_t stream_id)
{
	struct sc_writer sw;
	size_t n;

	sc_begin(&sw, c->tx, sizeof(c->tx), c->g->cfg.version, type);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, c->channel_id);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, stream_id);
	if (type == SC_ECM_STREAM_STATUS) {
		sc_put_u16(&sw, SC_P_ECM_ID, s->ecm_id);
		sc_put_u8(&sw, SC_P_AC_TRANSFER_MODE, 0); /* AC sent when it changes */
	}
	if (sc_finish(&sw, &n) == 0)
		conn_send(c, c->tx, n);
}

/* ------------------------------------------------------------------ */
/* message handlers (m is a decoded, schema-valid message)              */

static void on_channel_setup(struct conn *c, const struct sc_msg *m, uint16_t ch)
{
	struct ecmg *g = c->g;
	uint32_t scid = 0;

	if (sc_get_u32(m, SC_P_SUPER_CAS_ID, &scid) != 0)
		return; /* the schema guarantees it; unreachable */
	if (c->has_channel) {
		/* one channel per connection (TS 103 197 5.1; TSDuck: inv_channel_id) */
		send_error(c, m->type, ch, false, 0, SC_ECM_ERR_INV_CHANNEL_ID, SC_P_ECM_CHANNEL_ID);
		return;
	}
	if ((scid >> 16) != g->cfg.ca_system_id) {
		send_error(c, m->type, ch, false, 0, SC_ECM_ERR_INV_SUPER_CAS_ID, SC_P_SUPER_CAS_ID);
		return;
	}
	/* ECM_channel_id is scoped to its connection: each SCS numbers its
	 * own channels, so two scramblers may both use channel 1 (issue 16) */
	if (channels_open(g) >= g->cfg.max_channels) {
		send_error(c, m->type, ch, false, 0, SC_ECM_ERR_TOO_MANY_CHANNELS, 0);
		return;
	}
	if (c->pr && c->pr->nchannels >= g->cfg.max_channels_per_peer) {
		CNT_ADD(g, quota_refusals, 1);
		LOG_DEBUG(MOD, "%s: channel refused: its address holds %u channels (quota)", c->peer,
			(unsigned)c->pr->nchannels);
		send_error(c, m->type, ch, false, 0, SC_ECM_ERR_TOO_MANY_CHANNELS, 0);
		return;
	}
	c->has_channel = true;
	if (c->pr)
		c->pr->nchannels++;
	c->channel_id = ch;
	c->super_cas_id = scid;
	if (c->setup_timer)
		event_del(c->setup_timer);
	CNT_ADD(g, channels, 1);
	CNT_ADD(g, channels_open, 1);
	LOG_INFO(MOD, "%s: channel %u set up, Super_CAS_id 0x%08X", c->peer, (unsigned)ch, (unsigned)scid);
	send_channel_status(c);
}

static void on_stream_setup(struct conn *c, const struct sc_msg *m, uint16_t sid)
{
	struct ecmg *g = c->g;
	uint16_t ecm_id = 0, ncp = 0;
	size_t max = g->cfg.max_streams ? g->cfg.max_streams : ECMG_MAX_STREAMS_PER_CHANNEL;
	struct stream *s;

	if (sc_get_u16(m, SC_P_ECM_ID, &ecm_id) != 0 || sc_get_u16(m, SC_P_NOMINAL_CP_DURATION, &ncp) != 0)
		return; /* schema-guaranteed */
	if (find_stream(c, sid)) {
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_STREAM_ID_IN_USE, SC_P_ECM_STREAM_ID);
		return;
	}
	if (ecm_id_in_use(g, ecm_id)) {
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_ECM_ID_IN_USE, SC_P_ECM_ID);
		return;
	}
	if (c->nstreams >= max || c->nstreams >= ECMG_MAX_STREAMS_PER_CHANNEL) {
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_TOO_MANY_STM_CHAN, 0);
		return;
	}
	if (g->nstreams >= g->cfg.max_streams_total || (c->pr && c->pr->nstreams >= g->cfg.max_streams_per_peer)) {
		CNT_ADD(g, quota_refusals, 1);
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_TOO_MANY_STM_ECMG, 0);
		return;
	}
	if (ncp < g->cfg.min_cp_duration) {
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_INV_PARAM_VALUE,
			SC_P_NOMINAL_CP_DURATION);
		return;
	}
	if (c->nstreams == c->cap_streams) {
		size_t nc = c->cap_streams ? c->cap_streams * 2 : 4;
		struct stream *ns;

		if (nc > ECMG_MAX_STREAMS_PER_CHANNEL)
			nc = ECMG_MAX_STREAMS_PER_CHANNEL;
		ns = realloc(c->streams, nc * sizeof(*ns));
		if (!ns) {
			send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_OUT_OF_STORAGE, 0);
			return;
		}
		c->streams = ns;
		c->cap_streams = nc;
	}
	s = &c->streams[c->nstreams++];
	memset(s, 0, sizeof(*s));
	s->id = sid;
	s->ecm_id = ecm_id;
	s->nominal_cp = ncp;
	s->cp_duration = ncp;
	ecm_id_set(g, ecm_id, true);
	g->nstreams++;
	if (c->pr)
		c->pr->nstreams++;
	CNT_ADD(g, streams, 1);
	CNT_ADD(g, streams_open, 1);
	/* the first few per connection at info level, the rest at debug: a
	 * stream_setup flood does not flood the log */
	if (c->stream_logs < ECMG_STREAM_LOGS) {
		c->stream_logs++;
		LOG_INFO(MOD, "%s: channel %u stream %u set up, ECM_id %u, CP %u00 ms%s", c->peer,
			(unsigned)c->channel_id, (unsigned)sid, (unsigned)ecm_id, (unsigned)ncp,
			c->stream_logs == ECMG_STREAM_LOGS ? " (further stream set-ups at debug level)" : "");
	} else {
		LOG_DEBUG(MOD, "%s: channel %u stream %u set up, ECM_id %u, CP %u00 ms", c->peer,
			(unsigned)c->channel_id, (unsigned)sid, (unsigned)ecm_id, (unsigned)ncp);
	}
	send_stream_msg(c, SC_ECM_STREAM_STATUS, s, sid);
}

static void on_stream_close(struct conn *c, const struct sc_msg *m, uint16_t sid)
{
	struct stream *s = find_stream(c, sid);

	if (!s) {
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_INV_STREAM_ID, SC_P_ECM_STREAM_ID);
		return;
	}
	ecm_id_set(c->g, s->ecm_id, false);
	*s = c->streams[--c->nstreams];
	c->g->nstreams--;
	if (c->pr)
		c->pr->nstreams--;
	CNT_SUB(c->g, streams_open, 1);
	send_stream_msg(c, SC_ECM_STREAM_CLOSE_RESPONSE, NULL, sid);
}

/* The CP numbers an ECM for CP cp carries: lead_CW ahead, CW_per_msg of them. */
static uint16_t first_cw_cp(const struct ecmg_config *k, uint16_t cp)
{
	return (uint16_t)(cp + k->lead_cw - (k->cw_per_msg - 1));
}

static void on_cw_provision(struct conn *c, const struct sc_msg *m, uint16_t sid)
{
	struct ecmg *g = c->g;
	const struct ecmg_config *k = &g->cfg;
	struct stream *s = find_stream(c, sid);
	struct ecm_params p;
	uint8_t ecm[ECM_MAX_SECTION];
	uint8_t pkts[8 * TS_PACKET_BYTES];
	const uint8_t *dgram = ecm;
	size_t ecm_len = 0, dlen = 0, cw_len = 0, ncomb;
	uint16_t cp = 0, first;
	uint64_t t0 = now_mono_us(), now_ms, dt;
	struct sc_writer sw;
	size_t n;
	int r;

	memset(&p, 0, sizeof(p));
	CNT_ADD(g, cw_provisions, 1);
	metric_inc(MET_ECM_REQUESTS);
	if (!s) {
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_INV_STREAM_ID, SC_P_ECM_STREAM_ID);
		return;
	}
	if (sc_get_u16(m, SC_P_CP_NUMBER, &cp) != 0)
		return; /* schema-guaranteed */
	if (sc_count(m, SC_P_CW_ENCRYPTION) != 0) {
		/* CWs are protected by the ECM itself; an encrypted-CW scheme is not agreed */
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_INV_PARAM_VALUE, SC_P_CW_ENCRYPTION);
		return;
	}
	if (sc_count(m, SC_P_CP_DURATION)) {
		uint16_t d = 0;

		if (sc_get_u16(m, SC_P_CP_DURATION, &d) != 0 || d < k->min_cp_duration) {
			send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_INV_PARAM_VALUE, SC_P_CP_DURATION);
			return;
		}
		s->cp_duration = d;
	}
	if (sc_count(m, SC_P_ACCESS_CRITERIA)) {
		const struct sc_param *ac = sc_get_nth(m, SC_P_ACCESS_CRITERIA, 0);
		/* the package mask, then extended package ids (u16, ascending,
		 * >= 32): docs/ecm-format.md */
		if (!ac || ecm_ac_check(ac->val, ac->len) != 0) {
			send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_INV_PARAM_VALUE,
				SC_P_ACCESS_CRITERIA);
			return;
		}
		memcpy(s->ac, ac->val, ac->len);
		s->ac_len = (uint8_t)ac->len;
	}
	if (k->ac_lookup) {
		/* the channels table is the source of truth where it has the
		 * channel (service_id = ECM_id); docs/ecmg.md */
		uint32_t mask = 0, said = 0;

		if (k->ac_lookup(k->ac_ctx, s->ecm_id, &mask) == 0 && mask != 0) {
			if (s->ac_len >= 4)
				(void)cur_u32_at(s->ac, s->ac_len, 0, &said);
			if (mask != s->ac_table_said)
				LOG_INFO(MOD, "%s: ECM_id %u: packages %08X from the channels table%s", c->peer,
					(unsigned)s->ecm_id, (unsigned)mask, s->ac_len >= 4 && said != mask
					? " (the SCS's access_criteria differ: the table wins)" : "");
			s->ac_table_said = mask;
			put_be32(s->ac, mask);
			if (s->ac_len < 4)
				s->ac_len = 4;
		}
	}
	if (s->ac_len == 0) {
		/* access_criteria_transfer_mode 0: it must come at least once */
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_MISSING_PARAM, SC_P_ACCESS_CRITERIA);
		return;
	}
	/* Every CP_CW_combination: same CW size, 8 (CSA2) or 16 (CISSA) bytes. */
	ncomb = sc_count(m, SC_P_CP_CW_COMBINATION);
	for (size_t i = 0; i < ncomb; i++) {
		const struct sc_param *cc = sc_get_nth(m, SC_P_CP_CW_COMBINATION, i);
		size_t l = cc ? (size_t)cc->len - 2 : 0;

		if (!cc || (l != 8 && l != 16) || (cw_len && l != cw_len)) {
			send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_INV_PARAM_LENGTH,
				SC_P_CP_CW_COMBINATION);
			return;
		}
		cw_len = l;
	}
	/* The CWs this ECMG announced it carries must all be there (extra ones,
	 * e.g. TSDuck's fixed two when CW_per_msg is 1, are ignored). */
	p.alg = cw_len == 16 ? CW_ALG_CISSA : CW_ALG_CSA2;
	first = first_cw_cp(k, cp);
	for (unsigned i = 0; i < k->cw_per_msg; i++) {
		uint16_t want = (uint16_t)(first + i);
		const struct sc_param *hit = NULL;

		for (size_t j = 0; j < ncomb; j++) {
			const struct sc_param *cc = sc_get_nth(m, SC_P_CP_CW_COMBINATION, j);
			uint16_t cc_cp = 0;

			if (cur_u16_at(cc->val, cc->len, 0, &cc_cp) != 0 || cc_cp != want)
				continue;
			if (hit) { /* the same CP twice */
				send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_INV_PARAM_VALUE,
					SC_P_CP_CW_COMBINATION);
				goto out;
			}
			hit = cc;
		}
		if (!hit) {
			send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_NOT_ENOUGH_CW, SC_P_CP_CW_COMBINATION);
			goto out;
		}
		memcpy(want & 1 ? p.cw_odd : p.cw_even, hit->val + 2, cw_len);
		p.cw_mask |= want & 1 ? ECM_HAS_ODD : ECM_HAS_EVEN;
	}
	now_ms = now_wall_ms();
	p.ecm_id = s->ecm_id;
	p.ca_system_id = k->ca_system_id;
	p.cp_number = cp;
	p.timestamp_ms = now_ms;
	p.epoch = keystore_epoch_at(k->ks, now_ms / 1000);
	p.ac_len = s->ac_len;
	memcpy(p.ac, s->ac, s->ac_len);
	if (k->fp_lookup) { /* the fingerprint in force: the ECM's extension block */
		struct osd_fingerprint fp;
		uint32_t mask = 0;

		(void)cur_u32_at(p.ac, p.ac_len, 0, &mask); /* ac_len >= 4 here */
		if (k->fp_lookup(k->fp_ctx, s->ecm_id, mask, now_ms, &fp) == 0 &&
		    (r = ecm_ext_add_fingerprint(&p, &fp)) != 0)
			LOG_WARN(MOD, "%s: ECM_id %u: fingerprint %u left out: %s", c->peer, (unsigned)s->ecm_id,
				(unsigned)fp.fp_id, err_str(r));
	}
	if (k->usage_lookup) { /* C.6: the channel's copy control, under the same MACs */
		struct cas_usage u;

		if (k->usage_lookup(k->usage_ctx, s->ecm_id, &u) == 0 && (r = ecm_ext_add_usage(&p, &u)) != 0)
			LOG_WARN(MOD, "%s: ECM_id %u: usage rules left out: %s", c->peer, (unsigned)s->ecm_id, err_str(r));
	}
	r = ecm_build_cached(g->kc, &p, ecm, sizeof(ecm), &ecm_len);
	if (r != 0) {
		LOG_WARN(MOD, "%s: ECM for stream %u CP %u: %s", c->peer, (unsigned)sid, (unsigned)cp, err_str(r));
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_UNKNOWN, 0);
		goto out;
	}
	dlen = ecm_len;
	if (!k->sections) {
		uint8_t cc = 0x0F; /* first packet gets CC 0, as TSDuck's ECMG */
		size_t np = 0;

		if (ts_packetize(ecm, ecm_len, ECM_PKT_PID, &cc, pkts, sizeof(pkts) / TS_PACKET_BYTES, &np) != 0) {
			send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_UNKNOWN, 0);
			goto out;
		}
		dgram = pkts;
		dlen = np * TS_PACKET_BYTES;
	}
	sc_begin(&sw, c->tx, sizeof(c->tx), k->version, SC_ECM_ECM_RESPONSE);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, c->channel_id);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, sid);
	sc_put_u16(&sw, SC_P_CP_NUMBER, cp);
	sc_put_bytes(&sw, SC_P_ECM_DATAGRAM, dgram, dlen);
	if (sc_finish(&sw, &n) != 0) {
		send_error(c, m->type, c->channel_id, true, sid, SC_ECM_ERR_UNKNOWN, 0);
		goto out;
	}
	conn_send(c, c->tx, n);
	s->ecms++;
	c->ecms++;
	CNT_ADD(g, ecms, 1);
	dt = now_mono_us() - t0;
	CNT_ADD(g, ecm_us_total, dt);
	metric_observe_us(MET_ECM_DURATION, NULL, NULL, dt);
	if (dt > (uint64_t)k->max_comp_time_ms * 1000u)
		CNT_ADD(g, ecms_late, 1);
out:
	ecm_params_wipe(&p);
}

/* A message the codec accepted: apply the session rules. */
static void handle_msg(struct conn *c, const struct sc_msg *m)
{
	struct ecmg *g = c->g;
	uint16_t ch = 0, sid = 0;
	bool has_sid = sc_get_u16(m, SC_P_ECM_STREAM_ID, &sid) == 0;

	if (sc_get_u16(m, SC_P_ECM_CHANNEL_ID, &ch) != 0)
		return; /* every ECMG<=>SCS message has exactly one; the schema checked it */
	switch (m->type) {
	case SC_ECM_CHANNEL_ERROR:
	case SC_ECM_STREAM_ERROR: {
		uint16_t st = 0;

		/* never answered with an error (no ping-pong) */
		CNT_ADD(g, errors_received, 1);
		if (sc_get_u16(m, SC_P_ERROR_STATUS, &st) != 0)
			st = 0;
		LOG_DEBUG(MOD, "%s: SCS sent %s: %s", c->peer, sc_msg_name(SC_ECMG_SCS, m->type),
			sc_error_name(SC_ECMG_SCS, st));
		if (m->type == SC_ECM_CHANNEL_ERROR && st == SC_ECM_ERR_UNRECOVERABLE)
			conn_close_after_flush(c);
		return;
	}
	case SC_ECM_ECM_RESPONSE:
	case SC_ECM_STREAM_CLOSE_RESPONSE:
		/* ECMG -> SCS only */
		send_error(c, m->type, ch, has_sid, sid, SC_ECM_ERR_INV_MESSAGE_TYPE, 0);
		return;
	case SC_ECM_CHANNEL_SETUP:
		on_channel_setup(c, m, ch);
		return;
	default:
		break;
	}
	/* Everything else needs this connection's channel. */
	if (!c->has_channel || ch != c->channel_id) {
		send_error(c, m->type, ch, false, 0, SC_ECM_ERR_INV_CHANNEL_ID, SC_P_ECM_CHANNEL_ID);
		return;
	}
	switch (m->type) {
	case SC_ECM_CHANNEL_TEST:
		send_channel_status(c);
		break;
	case SC_ECM_CHANNEL_STATUS:
	case SC_ECM_STREAM_STATUS:
		break; /* the SCS answering a test: nothing to do */
	case SC_ECM_CHANNEL_CLOSE:
		LOG_INFO(MOD, "%s: channel %u closed by the SCS", c->peer, (unsigned)ch);
		conn_drop_streams(c);
		conn_close_after_flush(c);
		break;
	case SC_ECM_STREAM_SETUP:
		on_stream_setup(c, m, sid);
		break;
	case SC_ECM_STREAM_TEST: {
		const struct stream *s = find_stream(c, sid);

		if (s)
			send_stream_msg(c, SC_ECM_STREAM_STATUS, s, sid);
		else
			send_error(c, m->type, ch, true, sid, SC_ECM_ERR_INV_STREAM_ID, SC_P_ECM_STREAM_ID);
		break;
	}
	case SC_ECM_STREAM_CLOSE_REQUEST:
		on_stream_close(c, m, sid);
		break;
	case SC_ECM_CW_PROVISION:
		on_cw_provision(c, m, sid);
		break;
	default:
		send_error(c, m->type, ch, has_sid, sid, SC_ECM_ERR_INV_MESSAGE_TYPE, 0);
		break;
	}
}

/* A message that failed to decode (or was too long). raw_type is the
 * header's message_type even when the codec stopped before it (another
 * version's error is still an error: never answered, no ping-pong). */
static void bad_msg(struct conn *c, const struct sc_fault *f, uint16_t raw_type)
{
	size_t n;

	c->bad++;
	c->bad_in_row++;
	CNT_ADD(c->g, bad_messages, 1);
	if (raw_type != SC_ECM_CHANNEL_ERROR && raw_type != SC_ECM_STREAM_ERROR &&
	    sc_build_error(SC_ECMG_SCS, c->g->cfg.version, f, 0, c->tx, sizeof(c->tx), &n) == 0) {
		conn_send(c, c->tx, n);
		CNT_ADD(c->g, errors_sent, 1);
		metric_add_code(MET_ECM_ERRORS, f->status, sc_error_name(SC_ECMG_SCS, f->status));
	}
	if (c->bad_in_row >= ECMG_BAD_MSGS_BEFORE_CLOSE && !c->dead) {
		LOG_WARN(MOD, "%s: %u invalid messages in a row; closing", c->peer, c->bad_in_row);
		conn_close_after_flush(c);
	}
}

/* Take every complete message out of the input buffer. */
static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct ecmg *g = c->g;
	unsigned budget = ECMG_MSGS_PER_CALLBACK;
	bool more = false;

	c->in_cb = true;
	while (!c->dead && !c->closing) {
		if (budget == 0) {
			/* more may be buffered: let the other connections run first
			 * (a zero timer fires after the loop has polled again) */
			static const struct timeval now = { 0, 0 };

			more = true;
			if (c->resume)
				evtimer_add(c->resume, &now);
			break;
		}
		struct sc_fault f;
		size_t flen, room;
		uint8_t *p, *dst;
		int k = sc_framer_next(&c->fr, &p, &flen);

		if (k == SC_FRAME_NONE) {
			dst = sc_framer_room(&c->fr, false, &room);
			k = room ? evbuffer_remove(in, dst, room) : 0;
			if (k <= 0)
				break;
			sc_framer_fill(&c->fr, (size_t)k);
			continue;
		}
		c->msgs_in++;
		CNT_ADD(g, msgs_in, 1);
		if (k == SC_FRAME_TOO_LONG) {
			memset(&f, 0, sizeof(f));
			f.status = SC_ECM_ERR_MESSAGE_TOO_LONG;
			f.info = 3; /* the message_length field */
			f.has_channel = c->has_channel;
			f.channel_id = c->channel_id;
			f.has_type = true;
			(void)cur_u16_at(p, SC_HEADER_BYTES, 1, &f.msg_type);
			bad_msg(c, &f, f.msg_type);
			continue;
		}
		if (sc_decode(SC_ECMG_SCS, g->cfg.version, p, flen, &c->msg, &f) != 0) {
			uint16_t type = 0;

			(void)cur_u16_at(p, flen, 1, &type);
			bad_msg(c, &f, type);
		} else {
			c->bad_in_row = 0;
			handle_msg(c, &c->msg);
		}
		budget--;
	}
	c->in_cb = false;
	if (c->eof_pending && !more && !c->dead) {
		/* all handled: send what is queued, then close */
		c->closing = true;
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			c->dead = true;
	}
	if (c->dead)
		conn_free(c);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	conn_read_cb(c->bev, c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->closing &&
	    (evbuffer_get_length(bufferevent_get_input(bev)) > 0 || c->fr.len > c->fr.off)) {
		/* messages the read budget left in the buffer are still answered */
		static const struct timeval now = { 0, 0 };

		c->eof_pending = true;
		evtimer_add(c->resume, &now);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		CNT_ADD(c->g, timeouts, 1);
		LOG_INFO(MOD, "%s: idle for %u ms; closing", c->peer, (unsigned)c->g->cfg.idle_timeout_ms);
	} else if (what & BEV_EVENT_ERROR) {
		LOG_INFO(MOD, "%s: socket error: %s", c->peer, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
	conn_free(c);
}

static void setup_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (!c->has_channel) {
		CNT_ADD(c->g, timeouts, 1);
		LOG_INFO(MOD, "%s: no channel_setup within %u ms; closing", c->peer,
			(unsigned)c->g->cfg.setup_timeout_ms);
		conn_free(c);
	}
}

/* A new session on a connected socket (owned from here on); family/addr
 * name the peer for the quotas (family 0: an adopted socket). */
static int conn_add(struct ecmg *g, evutil_socket_t fd, const char *peer, uint8_t family, const uint8_t addr[16])
{
	struct conn *c;

	CNT_ADD(g, connections, 1);
	if (g->nconns >= g->cfg.max_connections) {
		CNT_ADD(g, connections_refused, 1);
		evutil_closesocket(fd);
		return CE_LIMIT;
	}
	c = calloc(1, sizeof(*c));
	if (!c || evutil_make_socket_nonblocking(fd) != 0 || !(c->pr = peer_get(g, family, addr))) {
		free(c);
		evutil_closesocket(fd);
		return CE_NOMEM;
	}
	c->pr->nconns++;
	sc_framer_init(&c->fr, c->rx, sizeof(c->rx), ECMG_MAX_RX_MSG_BYTES);
	c->g = g;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	{
		/* Each ECM_response is small and awaited: without this, Nagle holds
		 * a response until the previous one is ACKed (up to the peer's
		 * 40 ms delayed ACK when several streams share the connection).
		 * Fails harmlessly on a non-TCP socket. */
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c->bev = bufferevent_socket_new(g->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->resume = evtimer_new(g->base, resume_cb, c);
	if (!c->bev || !c->resume) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->resume)
			event_free(c->resume);
		peer_put(g, c->pr);
		free(c);
		return CE_NOMEM;
	}
	c->next = g->conns;
	if (g->conns)
		g->conns->prev = c;
	g->conns = c;
	g->nconns++;
	CNT_ADD(g, connections_open, 1);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/* stop reading while one maximal message is buffered (backpressure) */
	bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * ECMG_MAX_RX_MSG_BYTES);
	if (g->cfg.idle_timeout_ms) {
		struct timeval tv = { g->cfg.idle_timeout_ms / 1000, (g->cfg.idle_timeout_ms % 1000) * 1000 };

		bufferevent_set_timeouts(c->bev, &tv, NULL);
	}
	if (g->cfg.setup_timeout_ms) {
		struct timeval tv = { g->cfg.setup_timeout_ms / 1000, (g->cfg.setup_timeout_ms % 1000) * 1000 };

		c->setup_timer = evtimer_new(g->base, setup_timeout_cb, c);
		if (c->setup_timer)
			evtimer_add(c->setup_timer, &tv);
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	LOG_INFO(MOD, "%s: connected", c->peer);
	return 0;
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct ecmg *g = arg;
	char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?", peer[NI_MAXHOST + NI_MAXSERV + 2];
	uint8_t family = 0, addr[16];

	(void)lis;
	if (getnameinfo(sa, (socklen_t)salen, host, sizeof(host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(host, sizeof(host), "?");
	if (!netacl_allows(&g->acl, sa, (socklen_t)salen)) {
		/* before reading a byte; at most one log line a second */
		uint64_t now = now_mono_ms();

		CNT_ADD(g, connections_denied, 1);
		evutil_closesocket(fd);
		if (now - g->denied_log_ms >= 1000 || g->denied_log_ms == 0) {
			LOG_WARN(MOD, "%s: not in the allow list; closed (%llu more refused since the last line)", host,
				(unsigned long long)g->denied_quiet);
			g->denied_log_ms = now;
			g->denied_quiet = 0;
		} else {
			g->denied_quiet++;
		}
		return;
	}
	snprintf(peer, sizeof(peer), "%s:%s", host, serv);
	if (!netacl_peer_key(sa, (socklen_t)salen, &family, addr))
		family = 0;
	(void)conn_add(g, fd, peer, family, addr); /* counted; nothing more to do on failure */
}

int ecmg_adopt(struct ecmg *g, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint8_t family = 0, addr[16];

	if (!g || fd < 0)
		return CE_ARG;
	/* quotas by the peer's address when it has one (a TCP socket handed
	 * over); a socketpair's peers share one record */
	memset(addr, 0, sizeof(addr));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    !netacl_peer_key((struct sockaddr *)&ss, sl, &family, addr))
		family = 0;
	return conn_add(g, fd, "adopted", family, addr);
}

int ecmg_poll(struct ecmg *g)
{
	if (!g)
		return CE_ARG;
	return event_base_loop(g->base, EVLOOP_NONBLOCK) < 0 ? CE_IO : 0;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ecmg *g = arg;
	uint8_t b[16];

	while (read(fd, b, sizeof(b)) > 0)
		;
	event_base_loopbreak(g->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct ecmg *g = arg;

	LOG_INFO(MOD, "signal %d: shutting down", (int)sig);
	event_base_loopbreak(g->base);
}

/* ------------------------------------------------------------------ */
/* public API                                                           */

int ecmg_new(const struct ecmg_config *cfg, struct ecmg **out)
{
	struct ecmg *g = NULL;
	int r = CE_ARG;

	*out = NULL;
	if (!cfg || !cfg->ks) {
		LOG_ERR(MOD, "a keystore is required");
		return CE_ARG;
	}
	if (!sc_version_ok(SC_ECMG_SCS, cfg->version) || cfg->cw_per_msg < 1 || cfg->cw_per_msg > 2 ||
	    cfg->lead_cw > 2 || cfg->max_channels == 0 || cfg->max_connections == 0 ||
	    cfg->max_streams > ECMG_MAX_STREAMS_PER_CHANNEL) {
		LOG_ERR(MOD, "invalid configuration (version %u, CW_per_msg %u, lead_CW %u, max_streams %u)",
			(unsigned)cfg->version, (unsigned)cfg->cw_per_msg, (unsigned)cfg->lead_cw,
			(unsigned)cfg->max_streams);
		return CE_ARG;
	}
	if (cfg->ca_system_id && cfg->ca_system_id != keystore_ca_system_id(cfg->ks)) {
		LOG_ERR(MOD, "CA_system_id 0x%04X differs from the keystore's 0x%04X", (unsigned)cfg->ca_system_id,
			(unsigned)keystore_ca_system_id(cfg->ks));
		return CE_ARG;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return CE_NOMEM;
	g->stop_pipe[0] = g->stop_pipe[1] = -1;
	g->cfg = *cfg;
	snprintf(g->listen, sizeof(g->listen), "%s", cfg->listen ? cfg->listen : ECMG_DEFAULT_LISTEN);
	g->cfg.listen = g->listen;
	if (netacl_parse(cfg->allow, &g->acl) != 0) {
		LOG_ERR(MOD, "bad allow list '%s' (want CIDR[,CIDR...], e.g. 10.1.0.0/16,192.0.2.7)", cfg->allow);
		r = CE_ARG;
		goto fail;
	}
	g->cfg.allow = NULL; /* parsed; the caller's string is not kept */
	if (!g->cfg.max_channels_per_peer)
		g->cfg.max_channels_per_peer = g->cfg.max_channels / 4 ? g->cfg.max_channels / 4 : 1;
	if (!g->cfg.max_streams_per_peer)
		g->cfg.max_streams_per_peer = 4u * ECMG_MAX_STREAMS_PER_CHANNEL;
	if (!g->cfg.max_streams_total)
		g->cfg.max_streams_total = ECMG_DEFAULT_MAX_STREAMS_TOTAL;
	if (!g->cfg.ca_system_id)
		g->cfg.ca_system_id = keystore_ca_system_id(cfg->ks);
	if ((r = ecm_keycache_new(cfg->ks, &g->kc)) != 0)
		goto fail;
	r = CE_NOMEM;
	g->base = event_base_new();
	if (!g->base)
		goto fail;
	r = CE_IO;
	if (pipe2(g->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
		goto fail;
	r = CE_NOMEM;
	g->stop_ev = event_new(g->base, g->stop_pipe[0], EV_READ | EV_PERSIST, stop_cb, g);
	if (!g->stop_ev || event_add(g->stop_ev, NULL) != 0)
		goto fail;
	if (cfg->handle_signals) {
		g->sig_int = evsignal_new(g->base, SIGINT, signal_cb, g);
		g->sig_term = evsignal_new(g->base, SIGTERM, signal_cb, g);
		if (!g->sig_int || !g->sig_term || evsignal_add(g->sig_int, NULL) != 0 ||
		    evsignal_add(g->sig_term, NULL) != 0)
			goto fail;
	}
	*out = g;
	return 0;
fail:
	ecmg_free(g);
	return r;
}

int ecmg_start(struct ecmg *g)
{
	char host[256];
	char port_s[8];
	uint16_t port = 0;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r;

	if (!g || g->lis)
		return CE_ARG;
	if (addr_split(g->listen, host, sizeof(host), &port) != 0) {
		LOG_ERR(MOD, "bad listen address '%s' (want ADDR:PORT)", g->listen);
		return CE_ARG;
	}
	snprintf(port_s, sizeof(port_s), "%u", (unsigned)port);
	r = getaddrinfo(host[0] ? host : "0.0.0.0", port_s, &hints, &ai);
	if (r != 0 || !ai) {
		LOG_ERR(MOD, "cannot resolve '%s': %s", g->listen, gai_strerror(r));
		return CE_ARG;
	}
	g->lis = evconnlistener_new_bind(g->base, accept_cb, g,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, -1, ai->ai_addr,
		(int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (!g->lis) {
		LOG_ERR(MOD, "cannot listen on %s: %s", g->listen, strerror(errno));
		return CE_IO;
	}
	if (getsockname(evconnlistener_get_fd(g->lis), (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			g->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			g->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	LOG_INFO(MOD, "listening on %s (port %u), ECMG<=>SCS v%u, CA_system_id 0x%04X, %s, CW_per_msg %u, lead_CW %u",
		g->listen, (unsigned)g->port, (unsigned)g->cfg.version, (unsigned)g->cfg.ca_system_id,
		g->cfg.sections ? "sections" : "TS packets", (unsigned)g->cfg.cw_per_msg, (unsigned)g->cfg.lead_cw);
	return 0;
}

uint16_t ecmg_port(const struct ecmg *g)
{
	return g ? g->port : 0;
}

int ecmg_run(struct ecmg *g)
{
	int r;

	if (!g || !g->lis)
		return CE_ARG;
	r = event_base_dispatch(g->base);
	/* clean shutdown: stop accepting, close every session */
	evconnlistener_disable(g->lis);
	while (g->conns)
		conn_free(g->conns);
	return r < 0 ? CE_IO : 0;
}

void ecmg_stop(struct ecmg *g)
{
	ssize_t w;

	if (!g || g->stop_pipe[1] < 0)
		return;
	w = write(g->stop_pipe[1], "x", 1); /* async-signal-safe; a full pipe already means "stop" */
	(void)w;
}

void ecmg_stats(const struct ecmg *g, struct ecmg_stats *o)
{
	memset(o, 0, sizeof(*o));
	if (!g)
		return;
	o->connections = CNT_GET(g, connections);
	o->connections_open = CNT_GET(g, connections_open);
	o->connections_refused = CNT_GET(g, connections_refused);
	o->connections_denied = CNT_GET(g, connections_denied);
	o->quota_refusals = CNT_GET(g, quota_refusals);
	o->channels = CNT_GET(g, channels);
	o->channels_open = CNT_GET(g, channels_open);
	o->streams = CNT_GET(g, streams);
	o->streams_open = CNT_GET(g, streams_open);
	o->cw_provisions = CNT_GET(g, cw_provisions);
	o->ecms = CNT_GET(g, ecms);
	o->ecms_late = CNT_GET(g, ecms_late);
	o->errors_sent = CNT_GET(g, errors_sent);
	o->errors_received = CNT_GET(g, errors_received);
	o->bad_messages = CNT_GET(g, bad_messages);
	o->timeouts = CNT_GET(g, timeouts);
	o->msgs_in = CNT_GET(g, msgs_in);
	o->msgs_out = CNT_GET(g, msgs_out);
	o->ecm_us_total = CNT_GET(g, ecm_us_total);
}

void ecmg_free(struct ecmg *g)
{
	if (!g)
		return;
	while (g->conns)
		conn_free(g->conns);
	while (g->peers) {
		struct peer *p = g->peers; /* none left once every connection is gone */

		g->peers = p->next;
		free(p);
	}
	if (g->lis)
		evconnlistener_free(g->lis);
	if (g->sig_int)
		event_free(g->sig_int);
	if (g->sig_term)
		event_free(g->sig_term);
	if (g->stop_ev)
		event_free(g->stop_ev);
	if (g->stop_pipe[0] >= 0)
		close(g->stop_pipe[0]);
	if (g->stop_pipe[1] >= 0)
		close(g->stop_pipe[1]);
	if (g->base)
		event_base_free(g->base);
	ecm_keycache_free(g->kc);
	free(g);
}
