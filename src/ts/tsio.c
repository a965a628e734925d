/*
 * tsio.c - TS input/output endpoints: files, stdin/stdout, UDP unicast and
 * multicast (see tsio.h for the URI grammar and docs/ts-io.md).
 *
 * References: ISO/IEC 13818-1 2.4.3 (188-byte packets, sync byte 0x47);
 * ETSI TS 102 034 7.1 (MPEG-2 TS over UDP: up to 7 packets a datagram);
 * RFC 3550 (RTP header, 12 bytes, stripped on input when present).
 *
 * Input keeps one byte buffer [start, end). A packet is taken when the byte
 * at start is 0x47. Otherwise the input has lost sync: it counts a resync and
 * scans for a 0x47 that is followed 188 bytes later by another 0x47 (or by
 * the end of input), skipping (and counting) the bytes in between. Each UDP
 * datagram is handled on its own: a partial packet left at the end of one is
 * dropped, never glued to the next.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "lib/util.h"
#include "ts/tsio.h"

#define IN_BUF_BYTES (128u * 1024u)  /* >= one max UDP datagram + a packet */
#define OUT_FILE_PKTS 64             /* file output buffer */
#define HOST_MAX 256

enum ts_kind { TS_KIND_FILE, TS_KIND_STDIO, TS_KIND_UDP };

struct ts_in {
	enum ts_kind kind;
	int fd;
	int timeout_ms;
	bool eof;
	bool synced;      /* false after a lost sync until a packet is taken */
	uint16_t port;
	size_t start, end;
	struct ts_io_stats st;
	uint8_t buf[IN_BUF_BYTES];
};

struct ts_out {
	enum ts_kind kind;
	int fd;
	size_t pkts_per_write; /* packets per datagram / per file write */
	size_t nbuf;           /* packets buffered */
	struct sockaddr_storage dst;
	socklen_t dst_len;
	struct ts_io_stats st;
	uint8_t buf[OUT_FILE_PKTS * TS_PACKET_BYTES];
};

/* ---- URI helpers ---- */

struct udp_uri {
	char pre[HOST_MAX];  /* the part before '@' ("" if none) */
	char host[HOST_MAX]; /* the address part (may be "") */
	uint16_t port;
	int ttl;             /* -1: not given */
	int pkts;            /* -1: not given */
};

static int parse_query(char *q, struct udp_uri *u)
{
	char *save = NULL;

	for (char *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		uint64_t v;

		if (!eq)
			return CE_ARG;
		*eq = '\0';
		if (strcmp(kv, "ttl") == 0) {
			if (parse_u64(eq + 1, 255, &v) != 0 || v == 0)
				return CE_ARG;
			u->ttl = (int)v;
		} else if (strcmp(kv, "pkts") == 0) {
			if (parse_u64(eq + 1, TS_UDP_MAX_PKTS, &v) != 0 || v == 0)
				return CE_ARG;
			u->pkts = (int)v;
		} else {
			return CE_ARG;
		}
	}
	return 0;
}

/* "udp://[pre@]host:port[?query]" */
static int parse_udp_uri(const char *uri, struct udp_uri *u)
{
	char tmp[2 * HOST_MAX + 64];
	char *at, *q, *hp;
	int r;

	memset(u, 0, sizeof(*u));
	u->ttl = -1;
	u->pkts = -1;
	if (strncmp(uri, "udp://", 6) != 0)
		return CE_ARG;
	if (strlen(uri + 6) >= sizeof(tmp))
		return CE_ARG;
	memcpy(tmp, uri + 6, strlen(uri + 6) + 1);
	q = strchr(tmp, '?');
	if (q) {
		*q++ = '\0';
		if ((r = parse_query(q, u)) != 0)
			return r;
	}
	hp = tmp;
	at = strchr(tmp, '@');
	if (at) {
		size_t pl = (size_t)(at - tmp);

		if (pl >= sizeof(u->pre))
			return CE_ARG;
		memcpy(u->pre, tmp, pl);
		u->pre[pl] = '\0';
		hp = at + 1;
	}
	if (!strchr(hp, ':'))
		return CE_ARG; /* the port is required */
	if (addr_split(hp, u->host, sizeof(u->host), &u->port) != 0)
		return CE_ARG;
	return 0;
}

static int resolve(const char *host, uint16_t port, bool passive,
	struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints, *res = NULL;
	char ps[8];
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	hints.ai_family = (host && host[0]) ? AF_UNSPEC : AF_INET;
	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	r = getaddrinfo((host && host[0]) ? host : NULL, ps, &hints, &res);
	if (r != 0 || !res)
		return CE_NOT_FOUND;
	if (res->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(res);
		return CE_INTERNAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static bool is_mcast4(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

	return ss->ss_family == AF_INET && IN_MULTICAST(ntohl(a->sin_addr.s_addr));
}

static bool is_mcast6(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

	return ss->ss_family == AF_INET6 && IN6_IS_ADDR_MULTICAST(&a->sin6_addr);
}

static int parse_ipv4(const char *s, struct in_addr *a)
{
	return inet_pton(AF_INET, s, a) == 1 ? 0 : CE_ARG;
}

static const char *file_path(const char *uri)
{
	return strncmp(uri, "file:", 5) == 0 ? uri + 5 : uri;
}

/* ---- input ---- */

static int udp_in_open(const char *uri, struct ts_in *in)
{
	struct udp_uri u;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	struct in_addr group = { 0 }, iface = { htonl(INADDR_ANY) };
	bool join = false;
	int one = 1, fd = -1, r;
	int rcvbuf = 4 * 1024 * 1024;

	if ((r = parse_udp_uri(uri, &u)) != 0)
		return r;
	if (u.ttl >= 0 || u.pkts >= 0)
		return CE_ARG; /* output options */
	if (u.pre[0]) {
		/* group@iface:port: join group on iface, bind the group */
		if (parse_ipv4(u.pre, &group) != 0 || !IN_MULTICAST(ntohl(group.s_addr)))
			return CE_ARG;
		if (u.host[0] && parse_ipv4(u.host, &iface) != 0)
			return CE_ARG;
		join = true;
		memset(&ss, 0, sizeof(ss));
		{
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			a->sin_family = AF_INET;
			a->sin_addr = group;
			a->sin_port = htons(u.port);
		}
		sl = sizeof(struct sockaddr_in);
	} else {
		if ((r = resolve(u.host, u.port, true, &ss, &sl)) != 0)
			return r;
		if (is_mcast6(&ss))
			return CE_UNSUPPORTED;
		if (is_mcast4(&ss)) {
			join = true;
			group = ((struct sockaddr_in *)&ss)->sin_addr;
		}
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CE_IO;
	if (join)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
		r = CE_IO;
		goto fail;
	}
	if (join) {
		struct ip_mreq mr;

		mr.imr_multiaddr = group;
		mr.imr_interface = iface;
		if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0) {
			r = CE_IO;
			goto fail;
		}
	}
	{
		struct sockaddr_storage b;
		socklen_t bl = sizeof(b);

		if (getsockname(fd, (struct sockaddr *)&b, &bl) == 0)
			in->port = ntohs(b.ss_family == AF_INET6 ?
				((struct sockaddr_in6 *)&b)->sin6_port :
				((struct sockaddr_in *)&b)->sin_port);
	}
	in->fd = fd;
	in->kind = TS_KIND_UDP;
	return 0;
fail:
	close(fd);
	return r;
}

int ts_in_open(const char *uri, struct ts_in **out)
{
	struct ts_in *in;
	int r;

	if (out)
		*out = NULL;
	if (!uri || !out || !uri[0])
		return CE_ARG;
	in = calloc(1, sizeof(*in));
	if (!in)
		return CE_NOMEM;
	in->fd = -1;
	in->timeout_ms = -1;
	in->synced = true;
	if (strcmp(uri, "-") == 0) {
		in->kind = TS_KIND_STDIO;
		in->fd = STDIN_FILENO;
	} else if (strncmp(uri, "udp://", 6) == 0) {
		if ((r = udp_in_open(uri, in)) != 0)
			goto fail;
	} else if (strstr(uri, "://")) {
		r = CE_ARG;
		goto fail;
	} else {
		in->kind = TS_KIND_FILE;
		in->fd = open(file_path(uri), O_RDONLY | O_CLOEXEC);
		if (in->fd < 0) {
			r = errno == ENOENT ? CE_NOT_FOUND : CE_IO;
			goto fail;
		}
	}
	*out = in;
	return 0;
fail:
	free(in);
	return r;
}

void ts_in_set_timeout_ms(struct ts_in *in, int timeout_ms)
{
	if (in)
		in->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

/* Wait for readability. 0, CE_TIMEOUT, CE_IO. */
static int in_wait(struct ts_in *in)
{
	struct pollfd pfd = { .fd = in->fd, .events = POLLIN };
	int r;

	if (in->timeout_ms < 0)
		return 0;
	do {
		r = poll(&pfd, 1, in->timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return CE_IO;
	return r == 0 ? CE_TIMEOUT : 0;
}

/* Get more bytes into the buffer. 0 (maybe eof set), CE_TIMEOUT, CE_IO. */
static int in_fill(struct ts_in *in)
{
	ssize_t got;
	int r;

	if (in->kind == TS_KIND_UDP) {
		/* a datagram stands alone: drop any leftover partial packet */
		in->st.dropped_bytes += in->end - in->start;
		in->start = in->end = 0;
	} else if (in->start > 0) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	if (in->end == sizeof(in->buf))
		return CE_INTERNAL; /* cannot happen: the scan always consumes */
	if ((r = in_wait(in)) != 0)
		return r;
	do {
		got = read(in->fd, in->buf + in->end, sizeof(in->buf) - in->end);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return CE_IO;
	in->st.bytes += (uint64_t)got;
	if (in->kind == TS_KIND_UDP) {
		in->st.datagrams++;
		/* RTP (RFC 3550): version 2, 12-byte header before the packets */
		if (got >= 12 + TS_PACKET_BYTES && (got - 12) % TS_PACKET_BYTES == 0 &&
		    (in->buf[0] & 0xC0) == 0x80 && in->buf[12] == TS_SYNC) {
			in->start = 12;
			in->st.dropped_bytes += 12;
		}
		in->end = (size_t)got;
		return 0;
	}
	if (got == 0)
		in->eof = true;
	in->end += (size_t)got;
	return 0;
}

/* Skip to the next plausible sync byte. Returns true when the buffer start
 * is now on a packet, false when more data is needed. */
static bool in_resync(struct ts_in *in)
{
	bool final = in->eof || in->kind == TS_KIND_UDP;

	if (in->synced) {
		in->synced = false;
		in->st.resyncs++;
	}
	for (size_t k = in->start; k < in->end; k++) {
		if (in->buf[k] != TS_SYNC)
			continue;
		if (k + TS_PACKET_BYTES < in->end) {
			if (in->buf[k + TS_PACKET_BYTES] != TS_SYNC)
				continue;
		} else if (!final && k + TS_PACKET_BYTES > in->end) {
			/* cannot confirm yet: keep from k, read more */
			in->st.dropped_bytes += k - in->start;
			in->start = k;
			return false;
		}
		in->st.dropped_bytes += k - in->start;
		in->start = k;
		return true;
	}
	in->st.dropped_bytes += in->end - in->start;
	in->start = in->end;
	return false;
}

int ts_in_read(struct ts_in *in, uint8_t *pkts, size_t max_pkts, size_t *n)
{
	size_t got = 0;
	int r;

	if (n)
		*n = 0;
	if (!in || !n || (!pkts && max_pkts))
		return CE_ARG;
	while (got < max_pkts) {
		if (in->end - in->start >= TS_PACKET_BYTES) {
			if (in->buf[in->start] != TS_SYNC && !in_resync(in))
				continue;
			if (in->end - in->start < TS_PACKET_BYTES)
				continue;
			in->synced = true;
			memcpy(pkts + got * TS_PACKET_BYTES, in->buf + in->start, TS_PACKET_BYTES);
			in->start += TS_PACKET_BYTES;
			in->st.packets++;
			got++;
			continue;
		}
		if (got > 0)
			break; /* return what is ready */
		if (in->eof) {
			in->st.dropped_bytes += in->end - in->start;
			in->start = in->end = 0;
			break;
		}
		if ((r = in_fill(in)) != 0)
			return r;
	}
	*n = got;
	return 0;
}

void ts_in_stats(const struct ts_in *in, struct ts_io_stats *st)
{
	if (st)
		memset(st, 0, sizeof(*st));
	if (in && st)
		*st = in->st;
}

uint16_t ts_in_port(const struct ts_in *in)
{
	return in ? in->port : 0;
}

int ts_in_fd(const struct ts_in *in)
{
	return in ? in->fd : -1;
}

void ts_in_close(struct ts_in *in)
{
	if (!in)
		return;
	if (in->fd >= 0 && in->kind != TS_KIND_STDIO)
		close(in->fd);
	free(in);
}

/* ---- output ---- */

static int udp_out_open(const char *uri, struct ts_out *o)
{
	struct udp_uri u;
	int fd = -1, r;

	if ((r = parse_udp_uri(uri, &u)) != 0)
		return r;
	if (!u.host[0] || u.port == 0)
		return CE_ARG;
	if ((r = resolve(u.host, u.port, false, &o->dst, &o->dst_len)) != 0)
		return r;
	if (is_mcast6(&o->dst))
		return CE_UNSUPPORTED;
	fd = socket(o->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CE_IO;
	if (u.pre[0]) {
		struct sockaddr_storage src;
		socklen_t sl;

		if ((r = resolve(u.pre, 0, true, &src, &sl)) != 0)
			goto fail;
		if (src.ss_family != o->dst.ss_family || bind(fd, (struct sockaddr *)&src, sl) != 0) {
			r = CE_IO;
			goto fail;
		}
		if (is_mcast4(&o->dst)) {
			struct in_addr ifa = ((struct sockaddr_in *)&src)->sin_addr;

			if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof(ifa)) != 0) {
				r = CE_IO;
				goto fail;
			}
		}
	}
	if (u.ttl > 0) {
		int ttl = u.ttl;
		int ok;

		if (is_mcast4(&o->dst))
			ok = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl));
		else if (o->dst.ss_family == AF_INET)
			ok = setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
		else
			ok = setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl));
		if (ok != 0) {
			r = CE_IO;
			goto fail;
		}
	}
	o->pkts_per_write = u.pkts > 0 ? (size_t)u.pkts : TS_UDP_MAX_PKTS;
	o->fd = fd;
	o->kind = TS_KIND_UDP;
	return 0;
fail:
	close(fd);
	return r;
}

int ts_out_open(const char *uri, struct ts_out **out)
{
	struct ts_out *o;
	int r;

	if (out)
		*out = NULL;
	if (!uri || !out || !uri[0])
		return CE_ARG;
	o = calloc(1, sizeof(*o));
	if (!o)
		return CE_NOMEM;
	o->fd = -1;
	o->pkts_per_write = OUT_FILE_PKTS;
	if (strcmp(uri, "-") == 0) {
		o->kind = TS_KIND_STDIO;
		o->fd = STDOUT_FILENO;
	} else if (strncmp(uri, "udp://", 6) == 0) {
		if ((r = udp_out_open(uri, o)) != 0)
			goto fail;
	} else if (strstr(uri, "://")) {
		r = CE_ARG;
		goto fail;
	} else {
		o->kind = TS_KIND_FILE;
		o->fd = open(file_path(uri), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (o->fd < 0) {
			r = CE_IO;
			goto fail;
		}
	}
	*out = o;
	return 0;
fail:
	free(o);
	return r;
}

int ts_out_flush(struct ts_out *o)
{
	size_t len;
	int r;

	if (!o)
		return CE_ARG;
	if (o->nbuf == 0)
		return 0;
	len = o->nbuf * TS_PACKET_BYTES;
	o->nbuf = 0;
	if (o->kind == TS_KIND_UDP) {
		ssize_t s;

		do {
			s = sendto(o->fd, o->buf, len, 0, (struct sockaddr *)&o->dst, o->dst_len);
		} while (s < 0 && errno == EINTR);
		if (s != (ssize_t)len) {
			/* no listener, full buffer, route gone: a broadcast does
			 * not stop for that; count it */
			o->st.send_errors++;
			return 0;
		}
		o->st.datagrams++;
		o->st.bytes += len;
		return 0;
	}
	if ((r = fd_write_all(o->fd, o->buf, len)) != 0)
		return r;
	o->st.bytes += len;
	return 0;
}

int ts_out_write(struct ts_out *o, const uint8_t *pkts, size_t n)
{
	int r;

	if (!o || (!pkts && n))
		return CE_ARG;
	for (size_t i = 0; i < n; i++)
		if (pkts[i * TS_PACKET_BYTES] != TS_SYNC)
			return CE_FORMAT;
	for (size_t i = 0; i < n; i++) {
		memcpy(o->buf + o->nbuf * TS_PACKET_BYTES, pkts + i * TS_PACKET_BYTES, TS_PACKET_BYTES);
		o->nbuf++;
		o->st.packets++;
		if (o->nbuf == o->pkts_per_write && (r = ts_out_flush(o)) != 0)
			return r;
	}
	return 0;
}

void ts_out_stats(const struct ts_out *o, struct ts_io_stats *st)
{
	if (st)
		memset(st, 0, sizeof(*st));
	if (o && st)
		*st = o->st;
}

int ts_out_close(struct ts_out *o)
{
	int r;

	if (!o)
		return 0;
	r = ts_out_flush(o);
	if (o->fd >= 0 && o->kind != TS_KIND_STDIO) {
		if (close(o->fd) != 0 && r == 0)
			r = CE_IO;
	}
	free(o);
	return r;
}
