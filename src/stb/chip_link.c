/*
 * chip_link.c - the box side of the chip boundary: spawn the chip process,
 * connect to `castellan chip`, send requests, and the cas_host a ladder
 * client gets (load_ecw only). Nothing here ever sees a key or a CW: the
 * requests carry protected chains and scrambled packets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "lib/bytes.h"
#include "cas/emm.h"
#include "cas/osd.h"
#include "lib/cursor.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/chip_int.h"
#include "stb/descrambler.h"

struct chip_link {
	int fd;
	uint16_t tag;                 /* slot tag for load_ecw via the host */
	uint64_t (*clock)(void *);
	void *clock_ctx;
	uint8_t buf[CHIP_MAX_BODY];   /* request / response body */
};

static struct chip_link *link_new(int fd)
{
	struct chip_link *l = malloc(sizeof(*l));

	if (!l)
		return NULL;
	l->fd = fd;
	l->tag = DESCR_TAG_SERVICE;
	l->clock = NULL;
	l->clock_ctx = NULL;
	return l;
}

void chip_link_free(struct chip_link *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

/* Send l->buf[0..len) as op; the response body lands in l->buf. */
static int call(struct chip_link *l, uint8_t op, size_t len, size_t *rlen)
{
	uint8_t st = 0;
	int r;

	*rlen = 0;
	if ((r = chip_frame_write(l->fd, op, l->buf, len)) != 0)
		return r;
	if ((r = chip_frame_read(l->fd, &st, l->buf, sizeof(l->buf), rlen)) != 0)
		return r;
	return st == 0 ? 0 : -(int)st;
}

int chip_spawn(const struct chip_otp *otp, struct chip_link **ctl, struct chip_link **host, pid_t *pid)
{
	int a[2] = { -1, -1 }, b[2] = { -1, -1 };
	pid_t p;

	*ctl = *host = NULL;
	*pid = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) != 0)
		return CE_IO;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) != 0) {
		close(a[0]);
		close(a[1]);
		return CE_IO;
	}
	p = fork();
	if (p < 0) {
		close(a[0]); close(a[1]); close(b[0]); close(b[1]);
		return CE_IO;
	}
	if (p == 0) {
		struct chip *c = NULL;
		int r;

		close(a[0]);
		close(b[0]);
		/* the chip keeps only its two channels (and stdio): an inherited
		 * channel of another chip (or any box fd) would keep that one alive */
		{
			unsigned lo = (unsigned)(a[1] < b[1] ? a[1] : b[1]), hi = (unsigned)(a[1] < b[1] ? b[1] : a[1]);

			if (lo > 3)
				(void)close_range(3, lo - 1, 0);
			if (hi > lo + 1)
				(void)close_range(lo + 1, hi - 1, 0);
			(void)close_range(hi + 1, ~0u, 0);
		}
		r = chip_new(otp, true, &c);
		if (r == 0)
			r = chip_serve(c, a[1], b[1]);
		chip_free(c);
		_exit(r == 0 ? 0 : 1);
	}
	close(a[1]);
	close(b[1]);
	*ctl = link_new(a[0]);
	*host = link_new(b[0]);
	*pid = p;
	if (!*ctl || !*host) {
		if (*ctl) chip_link_free(*ctl); else close(a[0]);
		if (*host) chip_link_free(*host); else close(b[0]);
		*ctl = *host = NULL;
		(void)chip_wait(p);
		*pid = -1;
		return CE_NOMEM;
	}
	return 0;
}

int chip_wait(pid_t pid)
{
	int st = 0;

	if (pid <= 0)
		return CE_ARG;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return CE_IO;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : CE_INTERNAL;
}

int chip_link_connect(const char *path, struct chip_link **out)
{
	struct sockaddr_un sa;
	int fd;

	*out = NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return CE_ARG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CE_IO;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return CE_IO;
	}
	if (!(*out = link_new(fd))) {
		close(fd);
		return CE_NOMEM;
	}
	return 0;
}

int chip_link_info(struct chip_link *l, struct chip_info *out)
{
	struct cur c;
	size_t n = 0;
	uint8_t vs = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = call(l, CHIP_OP_INFO, 0, &n)) != 0)
		return r;
	cur_init(&c, l->buf, n);
	(void)cur_u64(&c, &out->chip_id);
	(void)cur_u8(&c, &vs);
	(void)cur_u32(&c, &out->vendor_id);
	(void)cur_bytes(&c, out->trust_root_hash, CHIP_HASH_BYTES);
	out->vendor_set = vs != 0;
	return cur_end(&c);
}

int chip_link_set_vendor(struct chip_link *l, uint32_t vendor_id)
{
	size_t n;

	put_be32(l->buf, vendor_id);
	return call(l, CHIP_OP_SET_VENDOR, 4, &n);
}

int chip_link_clear_vendor(struct chip_link *l)
{
	size_t n;

	return call(l, CHIP_OP_CLEAR_VENDOR, 0, &n);
}

int chip_link_load_ecw(struct chip_link *l, uint16_t service_id, uint16_t tag, enum cw_alg alg,
	enum cw_parity parity, const uint8_t *ek, size_t ek_len)
{
	struct wbuf w;
	size_t n;
	int r;

	if (!ek || ek_len > CHIP_MAX_CHAIN)
		return CE_ARG;
	wbuf_init(&w, l->buf, sizeof(l->buf));
	wbuf_u16(&w, service_id);
	wbuf_u16(&w, tag);
	wbuf_u8(&w, (uint8_t)alg);
	wbuf_u8(&w, (uint8_t)parity);
	wbuf_u16(&w, (uint16_t)ek_len);
	wbuf_bytes(&w, ek, ek_len);
	if ((r = wbuf_status(&w)) != 0)
		return r;
	return call(l, CHIP_OP_LOAD_ECW, w.len, &n);
}

int chip_link_descramble(struct chip_link *l, uint16_t service_id, uint16_t tag, uint8_t *pkts, size_t n,
	size_t *done, size_t *missing)
{
	size_t rn = 0;
	int r;

	if (done)
		*done = 0;
	if (missing)
		*missing = 0;
	if (n > CHIP_MAX_PKTS || (!pkts && n))
		return CE_ARG;
	put_be16(l->buf, service_id);
	put_be16(l->buf + 2, tag);
	put_be16(l->buf + 4, (uint16_t)n);
	memcpy(l->buf + 6, pkts, n * 188u);
	if ((r = call(l, CHIP_OP_DESCRAMBLE, 6 + n * 188u, &rn)) != 0)
		return r;
	if (rn != 4 + n * 188u)
		return CE_PROTO;
	memcpy(pkts, l->buf + 4, n * 188u);
	{
		uint16_t d = 0, m = 0;

		(void)cur_u16_at(l->buf, rn, 0, &d);
		(void)cur_u16_at(l->buf, rn, 2, &m);
		if (done)
			*done = d;
		if (missing)
			*missing = m;
	}
	return 0;
}

int chip_link_drop(struct chip_link *l, uint16_t service_id)
{
	size_t n;

	put_be16(l->buf, service_id);
	return call(l, CHIP_OP_DROP, 2, &n);
}

int chip_link_open_emm(struct chip_link *l, const uint8_t *sec, size_t len, uint64_t serial, struct emm_view *v,
	struct emm_content *out)
{
	struct cur c;
	size_t n = 0;
	uint8_t flags = 0, nkeys = 0, next = 0, nosd = 0;
	int r;

	if (v)
		memset(v, 0, sizeof(*v));
	if (out)
		memset(out, 0, sizeof(*out));
	if (!l || !sec || !v || !out || len > EMM_MAX_SECTION)
		return CE_ARG;
	put_be32(l->buf, (uint32_t)(serial >> 32));
	put_be32(l->buf + 4, (uint32_t)serial);
	memcpy(l->buf + 8, sec, len);
	if ((r = call(l, CHIP_OP_OPEN_EMM, 8 + len, &n)) != 0)
		return r;
	cur_init(&c, l->buf, n);
	v->table_id = sec[0];
	v->serial = serial;
	(void)cur_u32(&c, &v->seq);
	(void)cur_u64(&c, &v->timestamp_ms);
	(void)cur_u16(&c, &v->ca_system_id);
	(void)cur_u8(&c, &flags);
	(void)cur_u32(&c, &out->cmds);
	(void)cur_u64(&c, &out->pair_stb_id);
	out->has_grant = (flags & 1) != 0;
	out->has_limits = (flags & 2) != 0;
	if (out->has_grant) {
		(void)cur_u32(&c, &out->grant.packages);
		(void)cur_u64(&c, &out->grant.start_s);
		(void)cur_u64(&c, &out->grant.finish_s);
		(void)cur_u8(&c, &next);
		if (next > EMM_MAX_EXT_PACKAGES)
			(void)cur_fail(&c, CE_LIMIT);
		else
			out->grant.next = next;
		for (size_t i = 0; i < out->grant.next; i++)
			(void)cur_u16(&c, &out->grant.ext[i]);
	}
	if (out->has_limits) {
		(void)cur_u8(&c, &out->limits.max_channels);
		(void)cur_u32(&c, &out->limits.window_s);
		(void)cur_u32(&c, &out->limits.block_s);
	}
	(void)cur_u8(&c, &nkeys);
	if (nkeys > EMM_MAX_KEYS || (flags & ~3u))
		(void)cur_fail(&c, CE_FORMAT);
	else
		out->nkeys = nkeys;
	for (size_t i = 0; i < out->nkeys; i++) {
		(void)cur_u32(&c, &out->keys[i].epoch);
		(void)cur_u16(&c, &out->keys[i].pkg);
		(void)cur_bytes(&c, out->keys[i].key, PKG_KEY_BYTES);
	}
	(void)cur_u8(&c, &nosd);
	if (nosd > EMM_MAX_OSD)
		(void)cur_fail(&c, CE_LIMIT);
	for (size_t i = 0; i < nosd && c.err == 0; i++) {
		uint16_t ilen = 0;
		const uint8_t *item;
		int pr;

		(void)cur_u16(&c, &ilen);
		if (!(item = cur_ptr(&c, ilen)))
			break;
		if ((pr = osd_parse(item, ilen, &out->osd[i])) != 0)
			(void)cur_fail(&c, pr);
		else
			out->nosd = i + 1;
	}
	if ((r = cur_end(&c)) != 0) {
		memset(v, 0, sizeof(*v));
		emm_content_wipe(out);
	}
	return r;
}

static int host_load_ecw(void *ctx, uint16_t service_id, enum cw_alg alg, enum cw_parity parity, const uint8_t *ek,
	size_t ek_len)
{
	struct chip_link *l = ctx;

	return chip_link_load_ecw(l, service_id, l->tag, alg, parity, ek, ek_len);
}

static int host_open_emm(void *ctx, const uint8_t *sec, size_t len, uint64_t serial, struct emm_view *v,
	struct emm_content *out)
{
	return chip_link_open_emm(ctx, sec, len, serial, v, out);
}

static uint64_t host_now(void *ctx)
{
	struct chip_link *l = ctx;

	return l->clock ? l->clock(l->clock_ctx) : now_wall_ms();
}

void chip_link_host(struct chip_link *l, uint64_t (*clock)(void *), void *clock_ctx, struct cas_host *host)
{
	l->clock = clock;
	l->clock_ctx = clock_ctx;
	memset(host, 0, sizeof(*host));
	host->ctx = l;
	host->load_cw = NULL; /* by construction: a ladder box has no clear-CW path */
	host->load_ecw = host_load_ecw;
	host->now_ms = host_now;
	host->open_emm = host_open_emm; /* vendor EMMs: opened inside the chip */
}

void chip_link_set_tag(struct chip_link *l, uint16_t tag)
{
	l->tag = tag;
}

int chip_link_pvr_crypt(struct chip_link *l, int enc, const uint8_t nonce[16], uint32_t index, const uint8_t *aad,
	size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[16])
{
	struct wbuf w;
	size_t n = 0;
	int r;

	if (!l || !nonce || !tag || (enc != 0 && enc != 1) || aad_len > CHIP_PVR_MAX_AAD || len > CHIP_PVR_MAX_DATA ||
	    (aad_len && !aad) || (len && !buf))
		return CE_ARG;
	wbuf_init(&w, l->buf, sizeof(l->buf));
	wbuf_u8(&w, (uint8_t)enc);
	wbuf_bytes(&w, nonce, 16);
	wbuf_u32(&w, index);
	wbuf_u16(&w, (uint16_t)aad_len);
	wbuf_bytes(&w, aad, aad_len);
	if (enc)
		wbuf_fill(&w, 0, 16);
	else
		wbuf_bytes(&w, tag, 16);
	wbuf_u16(&w, (uint16_t)len);
	wbuf_bytes(&w, buf, len);
	if (wbuf_status(&w) != 0)
		return CE_ARG;
	r = call(l, CHIP_OP_PVR_CRYPT, w.len, &n);
	if (r == 0 && n != 16 + len)
		r = CE_PROTO;
	if (r == 0) {
		if (enc)
			memcpy(tag, l->buf, 16);
		if (len)
			memcpy(buf, l->buf + 16, len);
	}
	OPENSSL_cleanse(l->buf, n > w.len ? n : w.len);
	return r;
}
