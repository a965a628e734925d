/*
 * vpcd.c - the vsmartcard vpcd socket protocol, card side (vpcd.h).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include "lib/bytes.h"
#include "card/vpcd.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "lib/util.h"

size_t vpcd_atr(uint8_t out[32])
{
	/* TS=3B (direct); T0=0x88: TD1 present, 8 historical bytes;
	 * TD1 = 0x80 -> TD2 present, T=0; TD2 = 0x01 -> T=1; then history, TCK. */
	static const uint8_t head[] = { 0x3B, 0x88, 0x80, 0x01, 'C', 'A', 'S', 'T', 'E', 'L', 'L', 'N' };
	uint8_t tck = 0;

	memcpy(out, head, sizeof(head));
	for (size_t i = 1; i < sizeof(head); i++)
		tck ^= head[i];
	out[sizeof(head)] = tck;
	return sizeof(head) + 1;
}

int vpcd_connect(const char *host, uint16_t port, unsigned connect_ms)
{
	struct addrinfo hints, *res = NULL;
	char portstr[8];
	uint64_t deadline = now_mono_ms() + connect_ms;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	if (getaddrinfo(host && *host ? host : "127.0.0.1", portstr, &hints, &res) != 0 || !res)
		return CE_IO;
	for (;;) {
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
			int one = 1;

			if (fd < 0)
				continue;
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				freeaddrinfo(res);
				return fd;
			}
			close(fd);
		}
		if (now_mono_ms() >= deadline)
			break;
		usleep(100 * 1000);
	}
	freeaddrinfo(res);
	return CE_TIMEOUT;
}

/* Read exactly n bytes: 0, CE_CLOSED (EOF before the first byte), CE_IO,
 * or 1 if *stop was raised while waiting. */
static int read_full(int fd, uint8_t *p, size_t n, volatile sig_atomic_t *stop, int first)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t k;
		int pr = poll(&pfd, 1, 200);

		if (stop && *stop)
			return 1;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return CE_IO;
		if (pr == 0)
			continue;
		k = read(fd, p + got, n - got);
		/* vpcd writes length and data separately without TCP_NODELAY:
		 * ACK at once so its Nagle wait does not meet our delayed ACK
		 * (40 ms per APDU otherwise). Linux resets QUICKACK: set it each time. */
		{
			int one = 1;

			(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return CE_IO;
		if (k == 0)
			return (first && got == 0) ? CE_CLOSED : CE_IO;
		got += (size_t)k;
	}
	return 0;
}

static int send_msg(int fd, const uint8_t *p, size_t n)
{
	uint8_t hdr[2];

	if (n > 0xFFFF)
		return CE_ARG;
	put_be16(hdr, (uint16_t)n);
	if (send(fd, hdr, 2, MSG_NOSIGNAL | MSG_MORE) != 2)
		return CE_IO;
	return fd_send_all(fd, p, n);
}

int vpcd_serve(int fd, struct card_applet *a, volatile sig_atomic_t *stop, uint64_t *napdus)
{
	static const size_t resp_cap = CARD_MAX_RESP + 2;
	uint8_t hdr[2], msg[VPCD_MAX_MSG], resp[CARD_MAX_RESP + 2], atr[32];
	int r;

	for (;;) {
		size_t len, rlen;
		uint16_t l16;

		if ((r = read_full(fd, hdr, 2, stop, 1)) != 0)
			return (r == 1 || r == CE_CLOSED) ? 0 : r;
		(void)cur_u16_at(hdr, sizeof(hdr), 0, &l16);
		len = l16;
		if (len == 0 || len > sizeof(msg))
			return CE_PROTO;
		if ((r = read_full(fd, msg, len, stop, 0)) != 0)
			return r == 1 ? 0 : r;
		if (len == 1) {
			switch (msg[0]) {
			case VPCD_CTRL_OFF:
			case VPCD_CTRL_RESET:
				if ((r = card_applet_reset(a)) != 0)
					LOG_WARN("card", "reload after reset: %s", err_str(r));
				break;
			case VPCD_CTRL_ON:
				break;
			case VPCD_CTRL_ATR:
				if ((r = send_msg(fd, atr, vpcd_atr(atr))) != 0)
					return r;
				break;
			default:
				return CE_PROTO;
			}
			continue;
		}
		rlen = card_applet_apdu(a, msg, len, resp, resp_cap);
		secret_wipe(msg, len);
		if ((r = send_msg(fd, resp, rlen)) != 0)
			return r;
		secret_wipe(resp, rlen);
		if (napdus)
			(*napdus)++;
	}
}
