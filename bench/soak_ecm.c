/*
 * bench/soak_ecm.c - the ECM side of bench/soak.sh: NCONN SimulCrypt
 * connections (one channel each) with PER streams on each against a running
 * ECMG (castellan headend or castellan ecmg), every stream sending one
 * CW_provision per PERIOD_MS, staggered evenly (open loop: a CP runs on its
 * own clock), for DURATION seconds, from one polling thread. Every WINDOW
 * seconds prints one line:
 *
 *   t=SECONDS sent=N got=N errors=N missing=N p50_us=X p99_us=X max_us=X
 *
 * errors: any answer that is not an ECM_response (channel/stream errors) or
 * an unparsable one; missing: a CP whose ECM had not come back when the
 * stream's next CP was due. A broken connection ends the run (exit 2).
 *
 * Usage: bench_soak_ecm PORT DURATION_S [WINDOW_S [NCONN [PER [PERIOD_MS [SUPER_CAS_ID]]]]]
 *        (decimal; defaults 10, 50, 20, 1000, 1255931905 = 0x4ADC0001: 1,000 streams,
 *        1,000 ECMs/s)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench_net.h"
#include "lib/bytes.h"
#include "lib/util.h"
#include "simulcrypt/simulcrypt.h"

#define MAX_CONNS 256

struct conn {
	int fd;
	uint16_t ch;
	size_t rxlen;
	uint8_t rx[65536];
};

/* A big-endian u16 at p (callers check the bounds). */
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int recv_msg(int fd, uint8_t *buf, size_t cap)
{
	size_t fl;

	if (recv_n(fd, buf, SC_HEADER_BYTES) != 0)
		return -1;
	fl = sc_frame_len(buf);
	if (fl > cap || fl < SC_HEADER_BYTES || recv_n(fd, buf + SC_HEADER_BYTES, fl - SC_HEADER_BYTES) != 0)
		return -1;
	return rd16(buf + 1);
}

static int open_session(uint16_t port, uint32_t scid, uint16_t ch, uint16_t per, uint16_t ecm_id0)
{
	uint8_t b[512];
	struct sc_writer sw;
	size_t n = 0;
	int fd = tcp_connect(port);

	if (fd < 0)
		return -1;
	sc_begin(&sw, b, sizeof(b), 2, SC_ECM_CHANNEL_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u32(&sw, SC_P_SUPER_CAS_ID, scid);
	if (sc_finish(&sw, &n) != 0 || send_all(fd, b, n) != 0 || recv_msg(fd, b, sizeof(b)) != SC_ECM_CHANNEL_STATUS)
		goto fail;
	for (uint16_t i = 0; i < per; i++) {
		sc_begin(&sw, b, sizeof(b), 2, SC_ECM_STREAM_SETUP);
		sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
		sc_put_u16(&sw, SC_P_ECM_STREAM_ID, (uint16_t)(i + 1));
		sc_put_u16(&sw, SC_P_ECM_ID, (uint16_t)(ecm_id0 + i));
		sc_put_u16(&sw, SC_P_NOMINAL_CP_DURATION, 100);
		if (sc_finish(&sw, &n) != 0 || send_all(fd, b, n) != 0 ||
		    recv_msg(fd, b, sizeof(b)) != SC_ECM_STREAM_STATUS)
			goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static size_t mk_cw(uint8_t *b, uint16_t ch, uint16_t sid, uint16_t cp)
{
	struct sc_writer sw;
	uint8_t comb[10] = { 0 }, ac[4] = { 0, 0, 0, 3 };
	size_t n = 0;

	sc_begin(&sw, b, 256, 2, SC_ECM_CW_PROVISION);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, sid);
	sc_put_u16(&sw, SC_P_CP_NUMBER, cp);
	sc_put_u16(&sw, SC_P_CP_DURATION, 100);
	sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, ac, 4);
	for (int i = 0; i < 2; i++) {
		put_be16(comb, (uint16_t)(cp + i));
		for (int j = 2; j < 10; j++)
			comb[j] = (uint8_t)(0x11 * (cp + i + 1) + sid + j);
		sc_put_bytes(&sw, SC_P_CP_CW_COMBINATION, comb, sizeof(comb));
	}
	return sc_finish(&sw, &n) == 0 ? n : 0;
}

static int resp_ids(const uint8_t *f, size_t len, uint16_t *sid, uint16_t *cp)
{
	int got = 0;

	for (size_t o = SC_HEADER_BYTES; o + 4 <= len;) {
		uint16_t t = rd16(f + o), l = rd16(f + o + 2);

		if (o + 4 + l > len)
			break;
		if (t == SC_P_ECM_STREAM_ID && l == 2) {
			*sid = rd16(f + o + 4);
			got |= 1;
		} else if (t == SC_P_CP_NUMBER && l == 2) {
			*cp = rd16(f + o + 4);
			got |= 2;
		}
		o += 4 + l;
	}
	return got == 3 ? 0 : -1;
}

static unsigned long arg(int argc, char **argv, int i, unsigned long dflt)
{
	uint64_t v;

	if (argc <= i)
		return dflt;
	return parse_u64(argv[i], UINT32_MAX, &v) == 0 ? (unsigned long)v : 0; /* 0: refused below */
}

int main(int argc, char **argv)
{
	uint16_t port;
	unsigned long dur_s, win_s, nconn, per, period_ms;
	uint32_t scid;
	size_t ns, sent = 0, win_cap;
	struct conn *cs = NULL;
	struct pollfd pf[MAX_CONNS];
	uint64_t (*sent_at)[4] = NULL, t0, period_ns, win_start, end;
	uint32_t *lat = NULL;
	size_t nlat = 0, w_sent = 0, w_err = 0, w_miss = 0;
	uint8_t b[512];
	int rc = 2;

	if (argc < 3) {
		fprintf(stderr, "usage: bench_soak_ecm PORT DURATION_S [WINDOW_S [NCONN [PER [PERIOD_MS [SUPER_CAS_ID]]]]]\n");
		return 1;
	}
	port = (uint16_t)arg(argc, argv, 1, 0);
	dur_s = arg(argc, argv, 2, 60);
	win_s = arg(argc, argv, 3, 10);
	nconn = arg(argc, argv, 4, 50);
	per = arg(argc, argv, 5, 20);
	period_ms = arg(argc, argv, 6, 1000);
	scid = (uint32_t)arg(argc, argv, 7, 0x4ADC0001ul);
	if (!port || !scid || !win_s || !nconn || nconn > MAX_CONNS || !per || per > 1024 || !period_ms) {
		fprintf(stderr, "bench_soak_ecm: bad arguments\n");
		return 1;
	}
	ns = nconn * per;
	period_ns = (uint64_t)period_ms * 1000000u;
	win_cap = ns * (win_s * 1000 / period_ms + 2) * 2;
	cs = calloc(nconn, sizeof(*cs));
	sent_at = calloc(ns, sizeof(*sent_at));
	lat = calloc(win_cap, sizeof(*lat));
	if (!cs || !sent_at || !lat)
		goto out;
	for (size_t c = 0; c < nconn; c++)
		cs[c].fd = -1;
	for (size_t c = 0; c < nconn; c++) {
		cs[c].ch = (uint16_t)(3000 + c);
		cs[c].fd = open_session(port, scid, cs[c].ch, (uint16_t)per, (uint16_t)(8000 + c * per));
		if (cs[c].fd < 0) {
			fprintf(stderr, "bench_soak_ecm: channel %zu: setup failed\n", c);
			goto out;
		}
		pf[c].fd = cs[c].fd;
		pf[c].events = POLLIN;
	}
	t0 = win_start = now_ns();
	end = t0 + (uint64_t)dur_s * 1000000000ull;
	for (;;) {
		uint64_t now = now_ns();
		int pr;

		if (now >= win_start + (uint64_t)win_s * 1000000000ull || now >= end) {
			uint32_t p50 = 0, p99 = 0, mx = 0;

			if (nlat) {
				qsort(lat, nlat, sizeof(*lat), cmp_u32);
				p50 = lat[nlat / 2];
				p99 = lat[nlat * 99 / 100];
				mx = lat[nlat - 1];
			}
			printf("t=%.0f sent=%zu got=%zu errors=%zu missing=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
			       (double)(now - t0) / 1e9, w_sent, nlat, w_err, w_miss, p50 / 1000.0, p99 / 1000.0,
			       mx / 1000.0);
			fflush(stdout);
			nlat = w_sent = w_err = w_miss = 0;
			win_start = now;
			if (now >= end)
				break;
		}
		while (t0 + sent * period_ns / ns <= now) {
			size_t i = sent % ns, c = i / per;
			uint16_t cp = (uint16_t)(sent / ns), sid = (uint16_t)(i % per + 1);
			size_t n = mk_cw(b, cs[c].ch, sid, cp);

			if (sent >= ns && sent_at[i][(cp - 1) & 3]) {
				w_miss++;
				sent_at[i][(cp - 1) & 3] = 0;
			}
			sent_at[i][cp & 3] = now_ns();
			if (!n || send_all(cs[c].fd, b, n) != 0) {
				fprintf(stderr, "bench_soak_ecm: send on channel %zu failed\n", c);
				goto out;
			}
			sent++;
			w_sent++;
		}
		pr = poll(pf, (nfds_t)nconn, 1);
		if (pr < 0)
			continue;
		for (size_t c = 0; c < nconn && pr > 0; c++) {
			struct conn *k = &cs[c];
			ssize_t r;
			size_t o = 0;

			if (!(pf[c].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			r = recv(k->fd, k->rx + k->rxlen, sizeof(k->rx) - k->rxlen, 0);
			if (r <= 0) {
				fprintf(stderr, "bench_soak_ecm: channel %zu: connection closed\n", c);
				goto out;
			}
			k->rxlen += (size_t)r;
			while (k->rxlen - o >= SC_HEADER_BYTES) {
				size_t fl = sc_frame_len(k->rx + o);
				uint16_t sid = 0, cp = 0;
				uint64_t t = now_ns();

				if (fl < SC_HEADER_BYTES || fl > sizeof(k->rx)) {
					fprintf(stderr, "bench_soak_ecm: channel %zu: bad frame\n", c);
					goto out;
				}
				if (k->rxlen - o < fl)
					break;
				if (rd16(k->rx + o + 1) != SC_ECM_ECM_RESPONSE ||
				    resp_ids(k->rx + o, fl, &sid, &cp) != 0 || sid < 1 || sid > per) {
					w_err++;
				} else {
					size_t i = c * per + (sid - 1);

					if (sent_at[i][cp & 3]) {
						uint64_t d = t - sent_at[i][cp & 3];

						if (nlat < win_cap)
							lat[nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
						sent_at[i][cp & 3] = 0;
					} else {
						w_err++; /* an answer to nothing outstanding */
					}
				}
				o += fl;
			}
			memmove(k->rx, k->rx + o, k->rxlen - o);
			k->rxlen -= o;
		}
	}
	rc = 0;
out:
	for (size_t c = 0; cs && c < nconn; c++)
		if (cs[c].fd >= 0)
			close(cs[c].fd);
	free(cs);
	free(sent_at);
	free(lat);
	return rc;
}
