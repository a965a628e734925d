/*
 * emmg.c - the EMMG client of the EMMG/PDG<=>MUX interface (see emmg.h).
 *
 * The TCP socket is non-blocking; every wait is a poll() bounded by the
 * caller's timeout. Replies are read frame by frame (5-byte header, then
 * message_length bytes) and decoded by the codec with the configured
 * version; 3 undecodable messages in a row close the connection. Pacing is
 * a token bucket in TS bytes at the granted rate (burst: half a second, or
 * one message).
 *
 * Reference: ETSI TS 103 197; tests/data/simulcrypt/FACTS.md section 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "headend/emmg.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "simulcrypt/framer.h"
#include "simulcrypt/simulcrypt.h"
#include "ts/psi.h"
#include "ts/ts.h"

#define MOD "emmg"
#define MAX_BAD_MSGS 3
#define SEC_MAX_PKTS 23
#define BURST_S 0.5

struct emmg {
	struct emmg_config cfg;
	int fd;
	int ufd;
	bool up;                 /* session set up */
	uint16_t granted_kbps;
	bool unlimited;
	double tokens;
	uint64_t tokens_us;
	uint8_t cc;              /* packet mode: CC of our packets */
	uint64_t next_try_us;
	uint32_t backoff_ms;
	uint32_t last_wait_ms;     /* the wait scheduled after the last failure */
	unsigned bad;
	struct sc_framer fr;     /* over rbuf */
	uint8_t *rbuf;           /* SC_MAX_MSG_BYTES */
	uint8_t *obuf;           /* one outgoing data_provision */
	uint8_t *data;           /* its datagram payload */
	struct sc_msg *msg;
	struct emmg_stats st;
};

void emmg_config_init(struct emmg_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->channel_id = 1;
	cfg->stream_id = 1;
	cfg->data_id = 1;
	cfg->version = 2;
	cfg->packet_pid = TS_PID_NULL;
	cfg->bandwidth_kbps = EMMG_DEFAULT_KBPS;
	cfg->timeout_ms = EMMG_DEFAULT_TIMEOUT_MS;
	cfg->reconnect_ms = EMMG_DEFAULT_RECONNECT_MS;
}

int emmg_new(const struct emmg_config *cfg, struct emmg **out)
{
	struct emmg *e;
	char host[EMMG_ADDR_BYTES];
	uint16_t port = 0;

	*out = NULL;
	if (!cfg || memchr(cfg->mux, 0, sizeof(cfg->mux)) == NULL)
		return CE_ARG;
	if (addr_split(cfg->mux, host, sizeof(host), &port) != 0 || host[0] == '\0' || port == 0)
		return CE_ARG;
	if (!sc_version_ok(SC_EMMG_MUX, cfg->version) || cfg->packet_pid > TS_PID_MAX)
		return CE_ARG;
	e = calloc(1, sizeof(*e));
	if (!e)
		return CE_NOMEM;
	e->cfg = *cfg;
	if (!e->cfg.timeout_ms)
		e->cfg.timeout_ms = EMMG_DEFAULT_TIMEOUT_MS;
	if (!e->cfg.reconnect_ms)
		e->cfg.reconnect_ms = EMMG_DEFAULT_RECONNECT_MS;
	e->backoff_ms = e->cfg.reconnect_ms;
	e->fd = e->ufd = -1;
	e->cc = 15;
	e->rbuf = malloc(SC_MAX_MSG_BYTES);
	e->obuf = malloc(SC_MAX_MSG_BYTES);
	e->data = malloc(EMMG_TCP_MSG_BYTES + SEC_MAX_PKTS * TS_PACKET_BYTES);
	e->msg = malloc(sizeof(*e->msg));
	if (!e->rbuf || !e->obuf || !e->data || !e->msg) {
		emmg_free(e);
		return CE_NOMEM;
	}
	sc_framer_init(&e->fr, e->rbuf, SC_MAX_MSG_BYTES, SC_MAX_MSG_BYTES);
	*out = e;
	return 0;
}

static void drop(struct emmg *e, const char *why)
{
	if (e->fd >= 0) {
		if (e->up) {
			e->st.disconnects++;
			LOG_WARN(MOD, "connection to MUX %s lost: %s", e->cfg.mux, why);
		}
		close(e->fd);
	}
	if (e->ufd >= 0)
		close(e->ufd);
	e->fd = e->ufd = -1;
	e->up = false;
	metric_link("emmg", e->cfg.mux, 0);
	sc_framer_reset(&e->fr);
	e->bad = 0;
}

static int remaining_ms(uint64_t deadline_us)
{
	uint64_t now = now_mono_us();

	return now >= deadline_us ? 0 : (int)((deadline_us - now + 999) / 1000);
}

static int send_all(struct emmg *e, const uint8_t *b, size_t n)
{
	uint64_t deadline = now_mono_us() + (uint64_t)e->cfg.timeout_ms * 1000u;
	size_t off = 0;

	while (off < n) {
		ssize_t w = send(e->fd, b + off, n - off, MSG_NOSIGNAL);

		if (w >= 0) {
			off += (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd p = { .fd = e->fd, .events = POLLOUT };
			int ms = remaining_ms(deadline);

			if (ms == 0) {
				drop(e, "send timed out");
				return CE_TIMEOUT;
			}
			(void)poll(&p, 1, ms);
			continue;
		}
		drop(e, "send failed");
		return CE_CLOSED;
	}
	return 0;
}

/* Build and send a message with the session ids. What it carries depends on
 * the type (TSDuck's parameter order). */
static int send_msg(struct emmg *e, uint16_t type)
{
	uint8_t b[128];
	struct sc_writer sw;
	size_t n = 0;
	int r;
	bool stream = type >= 0x0100;

	sc_begin(&sw, b, sizeof(b), e->cfg.version, type);
	sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, e->cfg.channel_id);
	if (stream)
		sc_put_u16(&sw, SC_P_DATA_STREAM_ID, e->cfg.stream_id);
	sc_put_u32(&sw, SC_P_CLIENT_ID, e->cfg.client_id);
	if (type == SC_EMM_CHANNEL_SETUP || type == SC_EMM_CHANNEL_STATUS)
		sc_put_u8(&sw, SC_P_SECTION_TSPKT_FLAG, e->cfg.packet_mode ? 1 : 0);
	if (type == SC_EMM_STREAM_SETUP || type == SC_EMM_STREAM_STATUS) {
		sc_put_u16(&sw, SC_P_DATA_ID, e->cfg.data_id);
		sc_put_u8(&sw, SC_P_DATA_TYPE, 0x00); /* EMM */
	}
	if (type == SC_EMM_STREAM_BW_REQUEST && e->cfg.bandwidth_kbps)
		sc_put_u16(&sw, SC_P_BANDWIDTH, e->cfg.bandwidth_kbps);
	if ((r = sc_finish(&sw, &n)) != 0)
		return r;
	return send_all(e, b, n);
}

/* One decoded message from the MUX: answer tests, note errors and
 * allocations. Returns its type. */
static uint16_t on_msg(struct emmg *e, const struct sc_msg *m)
{
	uint16_t v = 0;

	switch (m->type) {
	case SC_EMM_CHANNEL_TEST:
		e->st.tests_answered++;
		(void)send_msg(e, SC_EMM_CHANNEL_STATUS);
		break;
	case SC_EMM_STREAM_TEST:
		e->st.tests_answered++;
		(void)send_msg(e, SC_EMM_STREAM_STATUS);
		break;
	case SC_EMM_CHANNEL_ERROR:
	case SC_EMM_STREAM_ERROR:
		e->st.errors_received++;
		if (sc_get_u16(m, SC_P_ERROR_STATUS, &v) == 0)
			e->st.last_error_status = v;
		LOG_WARN(MOD, "MUX sent %s: %s (0x%04x)", sc_msg_name(SC_EMMG_MUX, m->type),
			sc_error_name(SC_EMMG_MUX, v), v);
		break;
	case SC_EMM_STREAM_BW_ALLOCATION:
		if (sc_get_u16(m, SC_P_BANDWIDTH, &v) == 0) {
			e->granted_kbps = v;
			e->unlimited = false;
		} else {
			e->granted_kbps = 0;
			e->unlimited = true;
		}
		break;
	default:
		break;
	}
	return m->type;
}

/* Read what is there, waiting up to timeout_ms for the first byte. For each
 * complete message: decode, on_msg; stops after a message of type `want`
 * (0 = none) and returns 1 then; 0 when the time is up; CE_CLOSED. */
static int pump(struct emmg *e, int timeout_ms, uint16_t want)
{
	uint64_t deadline = now_mono_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000u;

	for (;;) {
		size_t need, len;
		uint8_t *dst = sc_framer_room(&e->fr, true, &need), *msg;
		ssize_t r;

		if (e->fd < 0)
			return CE_CLOSED;
		r = recv(e->fd, dst, need, MSG_DONTWAIT);
		if (r == 0) {
			drop(e, "closed by the MUX");
			return CE_CLOSED;
		}
		if (r < 0) {
			struct pollfd p = { .fd = e->fd, .events = POLLIN };
			int ms;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				drop(e, "receive failed");
				return CE_CLOSED;
			}
			ms = remaining_ms(deadline);
			if (ms == 0 || poll(&p, 1, ms) <= 0)
				return 0;
			continue;
		}
		sc_framer_fill(&e->fr, (size_t)r);
		if (sc_framer_next(&e->fr, &msg, &len) == SC_FRAME_MSG) {
			struct sc_fault f;

			if (sc_decode(SC_EMMG_MUX, e->cfg.version, msg, len, e->msg, &f) != 0) {
				/* a MUX refusing our version answers in its own: read
				 * its error (never answered) so the caller learns why */
				if (f.status == SC_EMM_ERR_INV_PROTO_VERSION &&
				    sc_version_ok(SC_EMMG_MUX, msg[0]) &&
				    sc_decode(SC_EMMG_MUX, msg[0], msg, len, e->msg, &f) == 0 &&
				    (e->msg->type == SC_EMM_CHANNEL_ERROR || e->msg->type == SC_EMM_STREAM_ERROR)) {
					LOG_WARN(MOD, "MUX %s answers in version %u, we speak %u", e->cfg.mux,
						msg[0], e->cfg.version);
					(void)on_msg(e, e->msg);
				}
				e->st.bad_msgs++;
				if (++e->bad >= MAX_BAD_MSGS) {
					drop(e, "too many invalid messages");
					return CE_CLOSED;
				}
				continue;
			}
			e->bad = 0;
			if (on_msg(e, e->msg) == want && want != 0)
				return 1;
			if (e->fd < 0)
				return CE_CLOSED;
		}
	}
}

/* Send a request and wait for its answer; an error message is CE_PROTO. */
static int transact(struct emmg *e, uint16_t type, uint16_t answer)
{
	uint64_t deadline = now_mono_us() + (uint64_t)e->cfg.timeout_ms * 1000u;
	uint64_t errs = e->st.errors_received;
	int r;

	if ((r = send_msg(e, type)) != 0)
		return r;
	for (;;) {
		r = pump(e, remaining_ms(deadline), answer);
		if (r < 0)
			return r;
		if (e->st.errors_received != errs)
			return CE_PROTO;
		if (r == 1)
			return 0;
		if (remaining_ms(deadline) == 0)
			return CE_TIMEOUT;
	}
}

static int tcp_connect(struct emmg *e)
{
	char host[EMMG_ADDR_BYTES], pstr[8];
	uint16_t port = 0;
	struct addrinfo hints, *ai = NULL, *a;
	int r = CE_IO, one = 1;

	if (addr_split(e->cfg.mux, host, sizeof(host), &port) != 0)
		return CE_ARG;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(pstr, sizeof(pstr), "%u", port);
	if (getaddrinfo(host, pstr, &hints, &ai) != 0)
		return CE_IO;
	for (a = ai; a && r != 0; a = a->ai_next) {
		int fd = socket(a->ai_family, SOCK_STREAM, 0);
		struct pollfd p;
		int err = 0;
		socklen_t el = sizeof(err);

		if (fd < 0)
			continue;
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK) != 0)
			goto next;
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			if (errno != EINPROGRESS)
				goto next;
			p = (struct pollfd){ .fd = fd, .events = POLLOUT };
			if (poll(&p, 1, (int)e->cfg.timeout_ms) != 1 ||
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
				goto next;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (e->cfg.udp) {
			/* data_provision goes to the same address and port over UDP */
			e->ufd = socket(a->ai_family, SOCK_DGRAM, 0);
			if (e->ufd < 0 || connect(e->ufd, a->ai_addr, a->ai_addrlen) != 0) {
				if (e->ufd >= 0)
					close(e->ufd);
				e->ufd = -1;
				goto next;
			}
		}
		e->fd = fd;
		r = 0;
		continue;
next:
		close(fd);
	}
	freeaddrinfo(ai);
	return r;
}

int emmg_connect(struct emmg *e)
{
	int r;

	if (!e)
		return CE_ARG;
	drop(e, "reconnecting");
	if ((r = tcp_connect(e)) != 0)
		goto fail;
	if ((r = transact(e, SC_EMM_CHANNEL_SETUP, SC_EMM_CHANNEL_STATUS)) != 0)
		goto fail;
	if ((r = transact(e, SC_EMM_STREAM_SETUP, SC_EMM_STREAM_STATUS)) != 0)
		goto fail;
	if ((r = transact(e, SC_EMM_STREAM_BW_REQUEST, SC_EMM_STREAM_BW_ALLOCATION)) != 0)
		goto fail;
	e->up = true;
	e->st.connects++;
	metric_link("emmg", e->cfg.mux, 1);
	e->backoff_ms = e->cfg.reconnect_ms;
	e->tokens = 0;
	e->tokens_us = now_mono_us();
	if (e->unlimited)
		LOG_INFO(MOD, "connected to MUX %s, client_id 0x%08x: bandwidth unlimited", e->cfg.mux,
			e->cfg.client_id);
	else
		LOG_INFO(MOD, "connected to MUX %s, client_id 0x%08x: %u kbit/s granted (%u asked)",
			e->cfg.mux, e->cfg.client_id, e->granted_kbps, e->cfg.bandwidth_kbps);
	return 0;
fail:
	e->st.connect_failures++;
	LOG_WARN(MOD, "setting up the session with MUX %s failed: %s", e->cfg.mux, err_str(r));
	drop(e, err_str(r));
	return r;
}

int emmg_set_bandwidth(struct emmg *e, uint16_t kbps)
{
	int r;

	if (!e)
		return CE_ARG;
	e->cfg.bandwidth_kbps = kbps;
	if (!e->up)
		return 0;
	if ((r = transact(e, SC_EMM_STREAM_BW_REQUEST, SC_EMM_STREAM_BW_ALLOCATION)) != 0) {
		LOG_WARN(MOD, "stream_BW_request for %u kbit/s: %s", (unsigned)kbps, err_str(r));
		drop(e, err_str(r));
		return r;
	}
	if (e->unlimited)
		LOG_INFO(MOD, "MUX %s: bandwidth unlimited (%u kbit/s asked)", e->cfg.mux, (unsigned)kbps);
	else
		LOG_INFO(MOD, "MUX %s: %u kbit/s granted (%u asked)", e->cfg.mux, e->granted_kbps, (unsigned)kbps);
	return 0;
}

bool emmg_connected(const struct emmg *e)
{
	return e && e->up;
}

uint16_t emmg_bandwidth(const struct emmg *e)
{
	return e ? e->granted_kbps : 0;
}

/* TS bytes a section costs on the EMM PID. */
static size_t ts_cost(size_t len)
{
	return ts_packets_for(len) * TS_PACKET_BYTES;
}

/* Wait until cost bytes may go (token bucket); false when the deadline
 * comes first. Serves the connection meanwhile. */
static int pace(struct emmg *e, size_t cost, uint64_t deadline)
{
	double rate = (double)e->granted_kbps * 1000.0 / 8.0;

	if (e->unlimited)
		return 0;
	if (rate <= 0)
		return CE_LIMIT; /* nothing granted */
	for (;;) {
		uint64_t now = now_mono_us();
		double burst = rate * BURST_S;
		int ms, r;

		if (burst < (double)cost)
			burst = (double)cost;
		e->tokens += rate * (double)(now - e->tokens_us) / 1e6;
		e->tokens_us = now;
		if (e->tokens > burst)
			e->tokens = burst;
		if (e->tokens >= (double)cost) {
			e->tokens -= (double)cost;
			return 0;
		}
		ms = (int)(((double)cost - e->tokens) / rate * 1000.0) + 1;
		if (now >= deadline)
			return CE_TIMEOUT;
		if (ms > remaining_ms(deadline))
			ms = remaining_ms(deadline);
		if ((r = pump(e, ms, 0)) < 0)
			return r;
	}
}

/* Packet mode: append the packets of one section to the datagram payload. */
static size_t add_section(struct emmg *e, size_t at, const uint8_t *sec, size_t len)
{
	size_t n = 0;

	if (ts_packetize(sec, len, e->cfg.packet_pid, &e->cc, e->data + at, SEC_MAX_PKTS, &n) != 0)
		return 0;
	return n * TS_PACKET_BYTES;
}

static bool section_ok(const uint8_t *sec, size_t len)
{
	return sec && len >= 3 && len <= PSI_MAX_SECTION && sec[0] != 0xFF &&
		(size_t)(((sec[1] & 0x0F) << 8) | sec[2]) + 3 == len;
}

int emmg_send(struct emmg *e, const uint8_t *const *secs, const size_t *lens, size_t n, int timeout_ms,
	size_t *sent)
{
	uint64_t deadline = now_mono_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000u;
	size_t max_payload = e && e->cfg.udp ? EMMG_UDP_MSG_BYTES : EMMG_TCP_MSG_BYTES;
	size_t i = 0;
	int r = 0;

	if (sent)
		*sent = 0;
	if (!e || !sent || (n && (!secs || !lens)))
		return CE_ARG;
	for (size_t k = 0; k < n; k++)
		if (!section_ok(secs[k], lens[k]))
			return CE_ARG;
	if (!e->up) {
		uint64_t now = now_mono_us();

		if (now < e->next_try_us)
			return CE_CLOSED;
		if ((r = emmg_connect(e)) != 0) {
			e->next_try_us = now_mono_us() + (uint64_t)e->backoff_ms * 1000u;
			e->last_wait_ms = e->backoff_ms;
			e->backoff_ms = e->backoff_ms * 2 > EMMG_MAX_RECONNECT_MS ? EMMG_MAX_RECONNECT_MS
				: e->backoff_ms * 2;
			return r == CE_PROTO || r == CE_TIMEOUT ? r : CE_CLOSED;
		}
	}
	while (i < n) {
		size_t j = i, payload = 0, cost = 0, len = 0;
		struct sc_writer sw;

		/* as many sections as fit in one message (at least one) */
		while (j < n) {
			size_t add = e->cfg.packet_mode ? ts_cost(lens[j]) : lens[j];

			if (j > i && payload + add > max_payload)
				break;
			payload += add;
			cost += ts_cost(lens[j]);
			j++;
		}
		if ((r = pace(e, cost, deadline)) != 0)
			break;
		if (!e->up) {
			r = CE_CLOSED;
			break;
		}
		sc_begin(&sw, e->obuf, SC_MAX_MSG_BYTES, e->cfg.version, SC_EMM_DATA_PROVISION);
		sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, e->cfg.channel_id);
		sc_put_u16(&sw, SC_P_DATA_STREAM_ID, e->cfg.stream_id);
		sc_put_u32(&sw, SC_P_CLIENT_ID, e->cfg.client_id);
		sc_put_u16(&sw, SC_P_DATA_ID, e->cfg.data_id);
		if (e->cfg.packet_mode) {
			/* TSDuck: one datagram with all the packets of the message */
			size_t at = 0;

			for (size_t k = i; k < j; k++)
				at += add_section(e, at, secs[k], lens[k]);
			sc_put_bytes(&sw, SC_P_DATAGRAM, e->data, at);
		} else {
			/* TSDuck: one datagram parameter per section */
			for (size_t k = i; k < j; k++)
				sc_put_bytes(&sw, SC_P_DATAGRAM, secs[k], lens[k]);
		}
		if ((r = sc_finish(&sw, &len)) != 0)
			break;
		if (e->cfg.udp) {
			if (send(e->ufd, e->obuf, len, 0) < 0 && errno != ECONNREFUSED) {
				drop(e, "UDP send failed");
				r = CE_IO;
				break;
			}
		} else if ((r = send_all(e, e->obuf, len)) != 0) {
			break;
		}
		e->st.data_provisions++;
		e->st.sections_sent += j - i;
		metric_add(MET_EMM_SENT, NULL, NULL, j - i);
		e->st.bytes_sent += payload;
		i = j;
		*sent = i;
	}
	if (r == 0 && e->up) /* answer what came in meanwhile, without waiting */
		r = pump(e, 0, 0) < 0 ? CE_CLOSED : 0;
	return r;
}

int emmg_poll(struct emmg *e, int timeout_ms)
{
	if (!e)
		return CE_ARG;
	if (!e->up)
		return CE_CLOSED;
	return pump(e, timeout_ms, 0) < 0 ? CE_CLOSED : 0;
}

int emmg_send_loop(struct emmg *e, const uint8_t *const *secs, const size_t *lens, size_t n, uint64_t loops,
	const volatile int *stop)
{
	uint64_t done = 0;

	while (!*stop && (loops == 0 || done < loops)) {
		size_t at = 0;

		while (at < n && !*stop) {
			size_t sent = 0;
			int r = emmg_send(e, secs + at, lens + at, n - at, 500, &sent);

			at += sent;
			if (r == CE_TIMEOUT || r == 0)
				continue;
			if (r == CE_ARG || r == CE_LIMIT)
				return r;
			usleep(100000); /* connection trouble: emmg_send reconnects with back-off */
		}
		if (at == n)
			done++;
	}
	return 0;
}

int emmg_close(struct emmg *e)
{
	int r = 0;

	if (!e)
		return CE_ARG;
	if (e->up) {
		r = transact(e, SC_EMM_STREAM_CLOSE_REQUEST, SC_EMM_STREAM_CLOSE_RESPONSE);
		if (e->fd >= 0) {
			int r2 = send_msg(e, SC_EMM_CHANNEL_CLOSE);

			if (r == 0)
				r = r2;
		}
		e->up = false; /* a polite close is not a disconnect */
	}
	drop(e, "closed");
	return r;
}

void emmg_stats(const struct emmg *e, struct emmg_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (e) {
		*out = e->st;
		out->retry_wait_ms = e->up ? 0 : e->last_wait_ms;
	}
}

void emmg_retry_now(struct emmg *e)
{
	if (e)
		e->next_try_us = 0;
}

void emmg_free(struct emmg *e)
{
	if (!e)
		return;
	drop(e, "freed");
	free(e->rbuf);
	free(e->obuf);
	free(e->data);
	free(e->msg);
	free(e);
}
