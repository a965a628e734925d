/*
 * scs.c - the SCS client of ECMG<=>SCS (ETSI TS 103 197): channels, ECM
 * streams, CW_provision / ECM_response, tests, errors, reconnection and
 * failover. See scs.h for the contract and docs/scrambler.md for the
 * operator's view. Message layout and codes: src/simulcrypt/simulcrypt.h.
 */
#include "lib/bytes.h"
#include "scrambler/scs.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "simulcrypt/framer.h"
#include "simulcrypt/simulcrypt.h"

#define MOD "scs"
#define STATUS_RAW_BYTES 512  /* a channel_status/stream_status kept to answer tests */
#define PROV_BYTES (SC_HEADER_BYTES + 4 * 6 + 4 + SCS_MAX_AC_BYTES + \
	SCS_MAX_CW_PER_MSG * (4 + 2 + SCS_MAX_CW_BYTES))

struct ecm_slot {
	bool have;
	uint16_t cp;
	uint8_t *data;
	size_t len;
};

struct scs_stream {
	struct scs_channel *ch;
	bool used;
	bool ready;                    /* stream_status received on this connection */
	uint16_t stream_id;
	uint16_t ecm_id;
	uint32_t nominal_cp_ms;
	bool got_status;
	bool got_close;
	uint8_t status_raw[STATUS_RAW_BYTES];
	size_t status_len;
	bool err_pending;              /* a stream_error not yet reported */
	uint16_t err_status;
	struct ecm_slot slots[SCS_ECM_SLOTS];
	size_t next_slot;
	/* the last CW_provision (holds CWs: wiped when replaced and on close) */
	uint8_t prov[PROV_BYTES];
	size_t prov_len;
	uint16_t prov_cp;
	bool prov_pending;             /* its ECM_response has not come yet */
};

struct scs_channel {
	struct scs_config cfg;
	int fd;
	bool connected;
	bool setup_done;
	bool ever_setup;
	uint8_t *in;                   /* SC_MAX_MSG_BYTES */
	struct sc_framer fr;           /* over in */
	struct sc_msg msg;
	struct scs_channel_status info;
	bool got_status;
	uint8_t status_raw[STATUS_RAW_BYTES];
	size_t status_len;
	bool chan_err_pending;
	unsigned bad_in_row;
	uint64_t last_rx_ms;
	bool test_outstanding;
	uint64_t test_sent_ms;
	uint64_t next_retry_ms;
	struct scs_stream streams[SCS_MAX_STREAMS];
	struct scs_stats stats;
};

/* ------------------------------------------------------------------ */
/* sockets                                                              */

static void drop(struct scs_channel *ch, const char *why)
{
	if (ch->fd >= 0) {
		close(ch->fd);
		ch->fd = -1;
	}
	if (ch->connected) {
		ch->stats.disconnects++;
		LOG_WARN(MOD, "channel %u: connection lost (%s)", ch->cfg.channel_id, why);
		metric_link("ecmg", ch->stats.on_backup ? ch->cfg.backup_addr : ch->cfg.main_addr, 0);
	}
	ch->connected = false;
	ch->setup_done = false;
	sc_framer_reset(&ch->fr);
	ch->test_outstanding = false;
	ch->next_retry_ms = 0; /* the first reconnection attempt is immediate */
	for (size_t i = 0; i < SCS_MAX_STREAMS; i++)
		ch->streams[i].ready = false;
}

/* Non-blocking TCP connect to "host:port" within timeout. fd or CE_*. */
static int tcp_connect(const char *addr, uint32_t timeout_ms)
{
	char host[SCS_ADDR_BYTES], port_s[8];
	struct addrinfo hints, *res = NULL, *ai;
	uint16_t port = 0;
	int fd = -1, r = CE_IO;

	if (addr_split(addr, host, sizeof(host), &port) != 0 || port == 0 || host[0] == '\0')
		return CE_ARG;
	snprintf(port_s, sizeof(port_s), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port_s, &hints, &res) != 0)
		return CE_IO;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		int one = 1, soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			r = 0;
			break;
		}
		if (errno == EINPROGRESS) {
			p.fd = fd;
			p.events = POLLOUT;
			p.revents = 0;
			if (poll(&p, 1, (int)timeout_ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
				r = 0;
				break;
			}
			r = CE_TIMEOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return r == 0 ? fd : (r == CE_TIMEOUT ? CE_TIMEOUT : CE_IO);
}

static int send_raw(struct scs_channel *ch, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	if (!ch->connected)
		return CE_CLOSED;
	while (off < len) {
		ssize_t n = send(ch->fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			struct pollfd p = { .fd = ch->fd, .events = POLLOUT };

			if (poll(&p, 1, (int)ch->cfg.response_ms) == 1)
				continue;
		}
		drop(ch, "send failed");
		return CE_CLOSED;
	}
	ch->stats.msgs_sent++;
	return 0;
}

static int send_msg(struct scs_channel *ch, struct sc_writer *sw)
{
	size_t len = 0;
	int r = sc_finish(sw, &len);

	if (r != 0)
		return r;
	return send_raw(ch, sw->w.buf, len);
}

static int send_channel_only(struct scs_channel *ch, uint16_t type)
{
	uint8_t buf[32];
	struct sc_writer sw;

	sc_begin(&sw, buf, sizeof(buf), ch->cfg.version, type);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch->cfg.channel_id);
	return send_msg(ch, &sw);
}

static int send_stream_only(struct scs_stream *st, uint16_t type)
{
	uint8_t buf[32];
	struct sc_writer sw;

	sc_begin(&sw, buf, sizeof(buf), st->ch->cfg.version, type);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, st->ch->cfg.channel_id);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, st->stream_id);
	return send_msg(st->ch, &sw);
}

static int send_error(struct scs_channel *ch, bool stream, uint16_t stream_id, uint16_t status,
	uint16_t info)
{
	uint8_t buf[48];
	struct sc_writer sw;

	sc_begin(&sw, buf, sizeof(buf), ch->cfg.version,
		stream ? SC_ECM_STREAM_ERROR : SC_ECM_CHANNEL_ERROR);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch->cfg.channel_id);
	if (stream)
		sc_put_u16(&sw, SC_P_ECM_STREAM_ID, stream_id);
	sc_put_u16(&sw, SC_P_ERROR_STATUS, status);
	sc_put_u16(&sw, SC_P_ERROR_INFORMATION, info);
	return send_msg(ch, &sw);
}

/* ------------------------------------------------------------------ */
/* received messages                                                    */

static struct scs_stream *find_stream(struct scs_channel *ch, uint16_t id)
{
	for (size_t i = 0; i < SCS_MAX_STREAMS; i++)
		if (ch->streams[i].used && ch->streams[i].stream_id == id)
			return &ch->streams[i];
	return NULL;
}

static void parse_channel_status(struct scs_channel *ch, const struct sc_msg *m)
{
	struct scs_channel_status *s = &ch->info;
	uint8_t u8 = 0;
	uint16_t v = 0, w = 0;

	memset(s, 0, sizeof(*s));
	if (sc_get_u8(m, SC_P_SECTION_TSPKT_FLAG, &u8) == 0)
		s->section_mode = u8 == 0;
	if (sc_get_u16(m, SC_P_DELAY_START, &v) == 0)
		s->delay_start_ms = (int16_t)v;
	if (sc_get_u16(m, SC_P_DELAY_STOP, &v) == 0)
		s->delay_stop_ms = (int16_t)v;
	if (sc_get_u16(m, SC_P_AC_DELAY_START, &v) == 0 && sc_get_u16(m, SC_P_AC_DELAY_STOP, &w) == 0) {
		s->has_ac_delays = true;
		s->ac_delay_start_ms = (int16_t)v;
		s->ac_delay_stop_ms = (int16_t)w;
	}
	if (sc_get_u16(m, SC_P_TRANSITION_DELAY_START, &v) == 0 &&
	    sc_get_u16(m, SC_P_TRANSITION_DELAY_STOP, &w) == 0) {
		s->has_transition_delays = true;
		s->transition_delay_start_ms = (int16_t)v;
		s->transition_delay_stop_ms = (int16_t)w;
	}
	if (sc_get_u16(m, SC_P_ECM_REP_PERIOD, &v) == 0)
		s->ecm_rep_period_ms = v;
	if (sc_get_u16(m, SC_P_MAX_STREAMS, &v) == 0)
		s->max_streams = v;
	if (sc_get_u16(m, SC_P_MIN_CP_DURATION, &v) == 0)
		s->min_cp_duration_ms = (uint32_t)v * 100u;
	if (sc_get_u8(m, SC_P_LEAD_CW, &u8) == 0)
		s->lead_cw = u8;
	if (sc_get_u8(m, SC_P_CW_PER_MSG, &u8) == 0)
		s->cw_per_msg = u8;
	if (sc_get_u16(m, SC_P_MAX_COMP_TIME, &v) == 0)
		s->max_comp_time_ms = v;
}

static void keep_raw(uint8_t *dst, size_t *dst_len, const uint8_t *buf, size_t len)
{
	if (len > STATUS_RAW_BYTES) {
		*dst_len = 0;
		return;
	}
	memcpy(dst, buf, len);
	*dst_len = len;
}

static void store_ecm(struct scs_stream *st, uint16_t cp, const uint8_t *d, size_t len)
{
	struct ecm_slot *slot = NULL;
	uint8_t *copy;

	for (size_t i = 0; i < SCS_ECM_SLOTS; i++)
		if (st->slots[i].have && st->slots[i].cp == cp)
			slot = &st->slots[i];
	if (!slot) {
		slot = &st->slots[st->next_slot];
		st->next_slot = (st->next_slot + 1) % SCS_ECM_SLOTS;
	}
	copy = malloc(len ? len : 1);
	if (!copy) {
		slot->have = false;
		return;
	}
	memcpy(copy, d, len);
	free(slot->data);
	slot->data = copy;
	slot->len = len;
	slot->cp = cp;
	slot->have = true;
}

/* Count a received channel_error / stream_error by its error_status. */
static void count_error_status(struct scs_channel *ch, uint16_t status)
{
	ch->stats.last_error_status = status;
	for (size_t i = 0; i < SCS_ERR_STATUS_SLOTS; i++) {
		if (ch->stats.errors_by_status[i].count == 0)
			ch->stats.errors_by_status[i].status = status;
		if (ch->stats.errors_by_status[i].status == status) {
			ch->stats.errors_by_status[i].count++;
			return;
		}
	}
	ch->stats.errors_other_status++;
}

/* A channel_error came: it fails the setup being waited for and every ECM
 * still expected on this channel. */
static void channel_error_in(struct scs_channel *ch, uint16_t status)
{
	ch->stats.channel_errors++;
	count_error_status(ch, status);
	ch->chan_err_pending = true;
	LOG_WARN(MOD, "channel %u: channel_error %s (0x%04x)", ch->cfg.channel_id,
		sc_error_name(SC_ECMG_SCS, status), status);
	for (size_t i = 0; i < SCS_MAX_STREAMS; i++) {
		struct scs_stream *s = &ch->streams[i];

		if (s->used && s->prov_pending) {
			s->err_pending = true;
			s->err_status = status;
		}
	}
}

/* An invalid message: answer with an error unless it is one itself. An
 * error we cannot accept (e.g. another protocol version, as in
 * captures/version-mismatch) still fails what we wait for, with the
 * error_status read under its own version when that decodes. */
static void bad_message(struct scs_channel *ch, const struct sc_fault *f, const uint8_t *raw,
	size_t raw_len)
{
	uint8_t buf[64];
	size_t n = 0;
	/* sc_decode stops at a wrong version byte: read the type ourselves */
	uint16_t type = f->has_type ? f->msg_type : 0;
	bool is_error;

	if (!f->has_type && raw)
		(void)cur_u16_at(raw, raw_len, 1, &type);
	is_error = type == SC_ECM_CHANNEL_ERROR || type == SC_ECM_STREAM_ERROR;

	if (is_error && raw && raw_len > 0) {
		uint16_t status = SC_ECM_ERR_UNKNOWN;

		if (sc_decode(SC_ECMG_SCS, raw[0], raw, raw_len, &ch->msg, NULL) == 0 &&
		    sc_get_u16(&ch->msg, SC_P_ERROR_STATUS, &status) != 0)
			status = SC_ECM_ERR_UNKNOWN;
		channel_error_in(ch, status);
	}

	ch->stats.bad_msgs++;
	ch->bad_in_row++;
	if (ch->stats.bad_msgs <= 3 || ch->stats.bad_msgs % 100 == 0)
		LOG_WARN(MOD, "channel %u: invalid message from the ECMG (%s, status 0x%04x; %llu so far)",
			ch->cfg.channel_id, err_str(f->err), f->status,
			(unsigned long long)ch->stats.bad_msgs);
	/* never answer an error with an error (captures/version-mismatch) */
	if (!is_error && sc_build_error(SC_ECMG_SCS, ch->cfg.version, f, 0, buf, sizeof(buf), &n) == 0)
		(void)send_raw(ch, buf, n);
	if (ch->connected && ch->bad_in_row >= SCS_MAX_BAD_IN_ROW)
		drop(ch, "too many invalid messages");
}

static void handle(struct scs_channel *ch, const uint8_t *buf, size_t len)
{
	struct sc_msg *m = &ch->msg;
	struct sc_fault f;
	struct scs_stream *st = NULL;
	uint16_t chan = 0, sid = 0, cp = 0, status = 0;
	const struct sc_param *p;

	ch->stats.msgs_received++;
	ch->last_rx_ms = now_mono_ms();
	if (sc_decode(SC_ECMG_SCS, ch->cfg.version, buf, len, m, &f) != 0) {
		bad_message(ch, &f, buf, len);
		return;
	}
	/* an error naming another channel (0: the ECMG could not read ours) is
	 * still taken, never answered */
	if ((sc_get_u16(m, SC_P_ECM_CHANNEL_ID, &chan) != 0 || chan != ch->cfg.channel_id) &&
	    m->type != SC_ECM_CHANNEL_ERROR && m->type != SC_ECM_STREAM_ERROR) {
		memset(&f, 0, sizeof(f));
		f.status = SC_ECM_ERR_INV_CHANNEL_ID;
		f.info = SC_P_ECM_CHANNEL_ID;
		f.has_type = true;
		f.msg_type = m->type;
		f.err = CE_PROTO;
		bad_message(ch, &f, NULL, 0);
		return;
	}
	if (sc_get_u16(m, SC_P_ECM_STREAM_ID, &sid) == 0) {
		st = find_stream(ch, sid);
		if (!st && m->type != SC_ECM_STREAM_ERROR) {
			if (m->type == SC_ECM_ECM_RESPONSE)
				ch->stats.ecm_unmatched++;
			ch->stats.bad_msgs++;
			(void)send_error(ch, true, sid, SC_ECM_ERR_INV_STREAM_ID, SC_P_ECM_STREAM_ID);
			return;
		}
	}
	ch->bad_in_row = 0;
	switch (m->type) {
	case SC_ECM_CHANNEL_STATUS:
		parse_channel_status(ch, m);
		keep_raw(ch->status_raw, &ch->status_len, buf, len);
		ch->got_status = true;
		ch->test_outstanding = false;
		break;
	case SC_ECM_CHANNEL_TEST:
		ch->stats.tests_answered++;
		if (ch->status_len > 0)
			(void)send_raw(ch, ch->status_raw, ch->status_len);
		break;
	case SC_ECM_CHANNEL_ERROR:
		if (sc_get_u16(m, SC_P_ERROR_STATUS, &status) != 0)
			status = SC_ECM_ERR_UNKNOWN;
		channel_error_in(ch, status);
		break;
	case SC_ECM_STREAM_STATUS:
		keep_raw(st->status_raw, &st->status_len, buf, len);
		st->got_status = true;
		break;
	case SC_ECM_STREAM_TEST:
		ch->stats.tests_answered++;
		if (st->status_len > 0)
			(void)send_raw(ch, st->status_raw, st->status_len);
		break;
	case SC_ECM_STREAM_CLOSE_RESPONSE:
		st->got_close = true;
		break;
	case SC_ECM_STREAM_ERROR:
		if (sc_get_u16(m, SC_P_ERROR_STATUS, &status) != 0)
			status = SC_ECM_ERR_UNKNOWN;
		ch->stats.stream_errors++;
		count_error_status(ch, status);
		LOG_WARN(MOD, "channel %u stream %u: stream_error %s (0x%04x)", ch->cfg.channel_id, sid,
			sc_error_name(SC_ECMG_SCS, status), status);
		if (st) {
			st->err_pending = true;
			st->err_status = status;
		}
		break;
	case SC_ECM_ECM_RESPONSE:
		p = sc_get_nth(m, SC_P_ECM_DATAGRAM, 0);
		if (sc_get_u16(m, SC_P_CP_NUMBER, &cp) != 0 || !p)
			break; /* the schema makes both mandatory */
		ch->stats.ecm_responses++;
		if (st->prov_len && cp != st->prov_cp) /* not the CP asked last: kept, counted */
			ch->stats.ecm_unmatched++;
		store_ecm(st, cp, p->val, p->len);
		if (st->prov_pending && st->prov_cp == cp)
			st->prov_pending = false;
		break;
	default:
		/* a request only an SCS sends (channel_setup, CW_provision, ...) */
		ch->stats.bad_msgs++;
		(void)send_error(ch, false, 0, SC_ECM_ERR_INV_MESSAGE_TYPE, 0);
		break;
	}
}

/* Read what is there (waiting at most timeout_ms), handle whole messages.
 * 0, or CE_CLOSED. */
static int pump(struct scs_channel *ch, int timeout_ms)
{
	struct pollfd p;
	ssize_t n;
	int pr;

	if (!ch->connected)
		return CE_CLOSED;
	p.fd = ch->fd;
	p.events = POLLIN;
	p.revents = 0;
	pr = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
	if (pr < 0 && errno != EINTR) {
		drop(ch, "poll failed");
		return CE_CLOSED;
	}
	if (pr <= 0)
		return 0;
	for (;;) {
		size_t room, flen;
		uint8_t *dst = sc_framer_room(&ch->fr, false, &room), *msg;

		n = recv(ch->fd, dst, room, 0);
		if (n == 0) {
			drop(ch, "closed by the ECMG");
			return CE_CLOSED;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			drop(ch, "receive failed");
			return CE_CLOSED;
		}
		sc_framer_fill(&ch->fr, (size_t)n);
		/* whole messages: the 16-bit length bounds one to SC_MAX_MSG_BYTES,
		 * which is the size of the buffer, so a message always fits */
		while (sc_framer_next(&ch->fr, &msg, &flen) == SC_FRAME_MSG) {
			handle(ch, msg, flen);
			if (!ch->connected)
				return CE_CLOSED;
		}
	}
}

/* Keep-alive: channel_test + stream_test when the line has been quiet for
 * test_ms; drop when the answer does not come within response_ms. */
static void keepalive(struct scs_channel *ch)
{
	uint64_t now = now_mono_ms();

	if (!ch->setup_done || ch->cfg.test_ms == UINT32_MAX)
		return;
	if (ch->test_outstanding) {
		if (ch->last_rx_ms <= ch->test_sent_ms && now - ch->test_sent_ms >= ch->cfg.response_ms)
			drop(ch, "no answer to channel_test");
		return;
	}
	if (now - ch->last_rx_ms < ch->cfg.test_ms)
		return;
	ch->test_outstanding = true;
	ch->test_sent_ms = now;
	if (send_channel_only(ch, SC_ECM_CHANNEL_TEST) == 0)
		ch->stats.tests_sent++;
	for (size_t i = 0; i < SCS_MAX_STREAMS && ch->connected; i++)
		if (ch->streams[i].used && ch->streams[i].ready &&
		    send_stream_only(&ch->streams[i], SC_ECM_STREAM_TEST) == 0)
			ch->stats.tests_sent++;
}

/* Pump until *flag or *flag2 is set, or timeout. 0, CE_TIMEOUT, CE_CLOSED. */
static int wait_flag(struct scs_channel *ch, const bool *flag, const bool *flag2, uint32_t timeout_ms)
{
	uint64_t deadline = now_mono_ms() + timeout_ms;

	for (;;) {
		uint64_t now;
		int r;

		if (*flag || (flag2 && *flag2))
			return 0;
		now = now_mono_ms();
		if (now >= deadline)
			return CE_TIMEOUT;
		if ((r = pump(ch, (int)(deadline - now))) != 0)
			return r;
	}
}

/* ------------------------------------------------------------------ */
/* setup                                                                */

static int stream_setup(struct scs_stream *st)
{
	struct scs_channel *ch = st->ch;
	uint8_t buf[64];
	struct sc_writer sw;
	uint32_t units = (st->nominal_cp_ms + 50u) / 100u;
	int r;

	st->got_status = false;
	st->err_pending = false;
	sc_begin(&sw, buf, sizeof(buf), ch->cfg.version, SC_ECM_STREAM_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch->cfg.channel_id);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, st->stream_id);
	sc_put_u16(&sw, SC_P_ECM_ID, st->ecm_id);
	sc_put_u16(&sw, SC_P_NOMINAL_CP_DURATION, (uint16_t)(units > 0xFFFF ? 0xFFFF : units));
	if ((r = send_msg(ch, &sw)) != 0)
		return r;
	r = wait_flag(ch, &st->got_status, &st->err_pending, ch->cfg.response_ms);
	if (r != 0)
		return r;
	if (st->err_pending) {
		st->err_pending = false;
		return CE_PROTO;
	}
	st->ready = true;
	return 0;
}

/* Connect to one address and set the channel up. */
static int setup_on(struct scs_channel *ch, const char *addr)
{
	uint8_t buf[64];
	struct sc_writer sw;
	int fd, r;

	fd = tcp_connect(addr, ch->cfg.connect_ms);
	if (fd < 0)
		return fd;
	ch->fd = fd;
	ch->connected = true;
	sc_framer_reset(&ch->fr);
	ch->bad_in_row = 0;
	ch->got_status = false;
	ch->chan_err_pending = false;
	ch->last_rx_ms = now_mono_ms();
	sc_begin(&sw, buf, sizeof(buf), ch->cfg.version, SC_ECM_CHANNEL_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch->cfg.channel_id);
	sc_put_u32(&sw, SC_P_SUPER_CAS_ID, ch->cfg.super_cas_id);
	if ((r = send_msg(ch, &sw)) != 0)
		goto fail;
	if ((r = wait_flag(ch, &ch->got_status, &ch->chan_err_pending, ch->cfg.response_ms)) != 0)
		goto fail;
	if (!ch->got_status) {
		r = CE_PROTO;
		goto fail;
	}
	ch->chan_err_pending = false;
	ch->setup_done = true;
	return 0;
fail:
	ch->connected = false; /* not counted as a disconnect: it never came up */
	drop(ch, "setup failed");
	return r;
}

/* Connect (main first, then backup), set up channel and streams, re-send
 * the CW_provisions still waiting. */
static int connect_all(struct scs_channel *ch)
{
	const char *addrs[2] = { ch->cfg.main_addr, ch->cfg.backup_addr };
	int r = CE_IO;

	for (size_t i = 0; i < 2; i++) {
		if (addrs[i][0] == '\0')
			continue;
		r = setup_on(ch, addrs[i]);
		if (r == 0) {
			ch->stats.on_backup = i == 1;
			if (i == 1)
				ch->stats.failovers++;
			if (i == 1)
				metric_inc(MET_FAILOVERS);
			break;
		}
		ch->stats.connect_failures++;
		LOG_WARN(MOD, "channel %u: %s ECMG %s: %s", ch->cfg.channel_id, i ? "backup" : "main",
			addrs[i], err_str(r));
	}
	if (r != 0)
		return r;
	ch->stats.connects++;
	if (ch->ever_setup)
		ch->stats.reconnects++;
	ch->ever_setup = true;
	metric_link("ecmg", addrs[ch->stats.on_backup ? 1 : 0], 1);
	LOG_INFO(MOD, "channel %u: set up with %s ECMG %s (v%u)", ch->cfg.channel_id,
		ch->stats.on_backup ? "backup" : "main",
		ch->stats.on_backup ? ch->cfg.backup_addr : ch->cfg.main_addr, ch->cfg.version);
	for (size_t i = 0; i < SCS_MAX_STREAMS; i++) {
		struct scs_stream *st = &ch->streams[i];

		if (!st->used)
			continue;
		if ((r = stream_setup(st)) != 0) {
			LOG_WARN(MOD, "channel %u: stream %u set up again: %s", ch->cfg.channel_id,
				st->stream_id, err_str(r));
			drop(ch, "stream setup failed");
			return r;
		}
		if (st->prov_pending && st->prov_len > 0) {
			if ((r = send_raw(ch, st->prov, st->prov_len)) != 0)
				return r;
			ch->stats.cw_provisions++;
		}
	}
	return 0;
}

/* Reconnect if down and the retry delay has passed. 0 or CE_CLOSED. */
static int ensure_connected(struct scs_channel *ch)
{
	uint64_t now = now_mono_ms();

	if (ch->connected && ch->setup_done)
		return 0;
	if (now < ch->next_retry_ms)
		return CE_CLOSED;
	if (connect_all(ch) == 0)
		return 0;
	ch->next_retry_ms = now_mono_ms() + ch->cfg.retry_ms;
	return CE_CLOSED;
}

/* ------------------------------------------------------------------ */
/* public API                                                           */

int scs_channel_new(const struct scs_config *cfg, struct scs_channel **out)
{
	struct scs_channel *ch;
	char host[SCS_ADDR_BYTES];
	uint16_t port = 0;

	*out = NULL;
	if (!cfg || addr_split(cfg->main_addr, host, sizeof(host), &port) != 0 || port == 0)
		return CE_ARG;
	if (cfg->backup_addr[0] && (addr_split(cfg->backup_addr, host, sizeof(host), &port) != 0 || port == 0))
		return CE_ARG;
	if (cfg->version != 0 && !sc_version_ok(SC_ECMG_SCS, cfg->version))
		return CE_ARG;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return CE_NOMEM;
	ch->in = malloc(SC_MAX_MSG_BYTES);
	if (!ch->in) {
		free(ch);
		return CE_NOMEM;
	}
	sc_framer_init(&ch->fr, ch->in, SC_MAX_MSG_BYTES, SC_MAX_MSG_BYTES);
	ch->cfg = *cfg;
	ch->cfg.main_addr[SCS_ADDR_BYTES - 1] = '\0';
	ch->cfg.backup_addr[SCS_ADDR_BYTES - 1] = '\0';
	if (!ch->cfg.version)
		ch->cfg.version = 2;
	if (!ch->cfg.connect_ms)
		ch->cfg.connect_ms = SCS_DEFAULT_CONNECT_MS;
	if (!ch->cfg.response_ms)
		ch->cfg.response_ms = SCS_DEFAULT_RESPONSE_MS;
	if (!ch->cfg.test_ms)
		ch->cfg.test_ms = SCS_DEFAULT_TEST_MS;
	if (!ch->cfg.retry_ms)
		ch->cfg.retry_ms = SCS_DEFAULT_RETRY_MS;
	ch->fd = -1;
	for (size_t i = 0; i < SCS_MAX_STREAMS; i++)
		ch->streams[i].ch = ch;
	*out = ch;
	return 0;
}

int scs_channel_open(struct scs_channel *ch)
{
	int r;

	if (!ch)
		return CE_ARG;
	if (ch->connected && ch->setup_done)
		return 0;
	r = connect_all(ch);
	if (r != 0)
		ch->next_retry_ms = now_mono_ms() + ch->cfg.retry_ms;
	return r;
}

const struct scs_channel_status *scs_channel_info(const struct scs_channel *ch)
{
	return &ch->info;
}

bool scs_channel_connected(const struct scs_channel *ch)
{
	return ch && ch->connected && ch->setup_done;
}

void scs_channel_stats(const struct scs_channel *ch, struct scs_stats *out)
{
	*out = ch->stats;
}

int scs_stream_open(struct scs_channel *ch, uint16_t stream_id, uint16_t ecm_id, uint32_t nominal_cp_ms,
	struct scs_stream **out)
{
	struct scs_stream *st = NULL;
	int r;

	*out = NULL;
	if (!ch)
		return CE_ARG;
	if (find_stream(ch, stream_id))
		return CE_EXISTS;
	for (size_t i = 0; i < SCS_MAX_STREAMS && !st; i++)
		if (!ch->streams[i].used)
			st = &ch->streams[i];
	if (!st)
		return CE_LIMIT;
	if ((r = ensure_connected(ch)) != 0)
		return r;
	memset(st, 0, sizeof(*st));
	st->ch = ch;
	st->stream_id = stream_id;
	st->ecm_id = ecm_id;
	st->nominal_cp_ms = nominal_cp_ms;
	st->used = true;
	if ((r = stream_setup(st)) != 0) {
		st->used = false;
		return r;
	}
	*out = st;
	return 0;
}

int scs_cw_provision(struct scs_stream *st, uint16_t cp, uint16_t first_cp, const uint8_t *cws,
	size_t cw_len, size_t ncw, const uint8_t *ac, size_t ac_len, uint32_t cp_duration_ms)
{
	struct scs_channel *ch;
	struct sc_writer sw;
	uint8_t comb[2 + SCS_MAX_CW_BYTES];
	size_t len = 0;
	int r;

	if (!st || !st->used || (!cws && ncw) || ncw > SCS_MAX_CW_PER_MSG || cw_len > SCS_MAX_CW_BYTES ||
	    (ncw && cw_len == 0) || ac_len > SCS_MAX_AC_BYTES || (ac_len && !ac))
		return CE_ARG;
	ch = st->ch;
	secret_wipe(st->prov, sizeof(st->prov));
	/* TSDuck's order: channel, stream, CP_number, CP_duration, AC, CWs */
	sc_begin(&sw, st->prov, sizeof(st->prov), ch->cfg.version, SC_ECM_CW_PROVISION);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch->cfg.channel_id);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, st->stream_id);
	sc_put_u16(&sw, SC_P_CP_NUMBER, cp);
	if (cp_duration_ms) {
		uint32_t units = (cp_duration_ms + 50u) / 100u;

		sc_put_u16(&sw, SC_P_CP_DURATION, (uint16_t)(units > 0xFFFF ? 0xFFFF : units));
	}
	if (ac_len)
		sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, ac, ac_len);
	for (size_t i = 0; i < ncw; i++) {
		put_be16(comb, (uint16_t)(first_cp + i));
		memcpy(comb + 2, cws + i * cw_len, cw_len);
		sc_put_bytes(&sw, SC_P_CP_CW_COMBINATION, comb, 2 + cw_len);
	}
	secret_wipe(comb, sizeof(comb));
	r = sc_finish(&sw, &len);
	if (r != 0) {
		secret_wipe(st->prov, sizeof(st->prov));
		st->prov_len = 0;
		st->prov_pending = false;
		return r;
	}
	st->prov_len = len;
	st->prov_cp = cp;
	st->prov_pending = true;
	st->err_pending = false;
	/* an ECM kept from 65536 CPs ago has the same number: forget it */
	for (size_t i = 0; i < SCS_ECM_SLOTS; i++)
		if (st->slots[i].have && st->slots[i].cp == cp)
			st->slots[i].have = false;
	if (!ch->connected || !ch->setup_done)
		return ensure_connected(ch); /* re-sends the pending provision */
	if ((r = send_raw(ch, st->prov, st->prov_len)) != 0)
		return r;
	ch->stats.cw_provisions++;
	return 0;
}

int scs_channel_poll(struct scs_channel *ch, int timeout_ms)
{
	int r;

	if (!ch)
		return CE_ARG;
	if ((r = ensure_connected(ch)) != 0)
		return r;
	keepalive(ch);
	return pump(ch, timeout_ms);
}

int scs_ecm_get(struct scs_stream *st, uint16_t cp, int timeout_ms, uint8_t *buf, size_t cap, size_t *len)
{
	struct scs_channel *ch;
	uint64_t deadline;
	bool first = true;

	*len = 0;
	if (!st || !st->used || !buf)
		return CE_ARG;
	ch = st->ch;
	deadline = now_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		uint64_t now;
		int wait;

		for (size_t i = 0; i < SCS_ECM_SLOTS; i++) {
			struct ecm_slot *s = &st->slots[i];

			if (s->have && s->cp == cp) {
				if (s->len > cap)
					return CE_OVERFLOW;
				memcpy(buf, s->data, s->len);
				*len = s->len;
				return 0;
			}
		}
		if (st->err_pending) {
			st->err_pending = false;
			return CE_PROTO;
		}
		now = now_mono_ms();
		if (!first && now >= deadline)
			return CE_TIMEOUT;
		if (!ch->connected || !ch->setup_done) {
			if (ensure_connected(ch) != 0)
				return CE_CLOSED;
			continue;
		}
		keepalive(ch);
		wait = first || now >= deadline ? 0 : (int)(deadline - now);
		first = false;
		(void)pump(ch, wait);
	}
}

uint16_t scs_stream_last_error(const struct scs_stream *st)
{
	return st ? st->err_status : 0;
}

static void stream_forget(struct scs_stream *st)
{
	for (size_t i = 0; i < SCS_ECM_SLOTS; i++)
		free(st->slots[i].data);
	secret_wipe(st->prov, sizeof(st->prov));
	memset(st, 0, offsetof(struct scs_stream, prov));
	st->prov_len = 0;
	st->prov_pending = false;
}

void scs_stream_close(struct scs_stream *st)
{
	struct scs_channel *ch;

	if (!st || !st->used)
		return;
	ch = st->ch;
	if (ch->connected && ch->setup_done && st->ready) {
		st->got_close = false;
		if (send_stream_only(st, SC_ECM_STREAM_CLOSE_REQUEST) == 0)
			(void)wait_flag(ch, &st->got_close, NULL, ch->cfg.response_ms);
	}
	stream_forget(st);
	st->ch = ch;
}

void scs_channel_free(struct scs_channel *ch)
{
	if (!ch)
		return;
	for (size_t i = 0; i < SCS_MAX_STREAMS; i++)
		scs_stream_close(&ch->streams[i]);
	if (ch->connected && ch->setup_done)
		(void)send_channel_only(ch, SC_ECM_CHANNEL_CLOSE);
	if (ch->fd >= 0)
		close(ch->fd);
	free(ch->in);
	secret_wipe(ch, sizeof(*ch));
	free(ch);
}
