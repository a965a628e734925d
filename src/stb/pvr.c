/*
 * pvr.c - the box's recorder and player with copy protection (pvr.h has
 * the format and the rules; docs/stb.md "Recording").
 * Normative references: ISO/IEC 13818-1 2.4.3 (the packets recorded),
 * NIST SP 800-38D (GCM), DTCP / CI Plus copy control information (the
 * meaning of copy_free / copy_once / copy_never).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "lib/cursor.h"
#include "lib/log.h"
#include "stb/chip.h"
#include "stb/pvr.h"
#include "stb/stb.h"
#include "ts/ts.h"

#define PKT TS_PACKET_BYTES

/* ---- keyers ---- */

static int dev_crypt(void *ctx, int enc, const uint8_t nonce[PVR_NONCE_BYTES], uint32_t index, const uint8_t *aad,
	size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[PVR_TAG_BYTES])
{
	return pvr_keys_crypt(ctx, enc, nonce, index, aad, aad_len, buf, len, tag);
}

static void dev_destroy(void *ctx)
{
	pvr_keys_cleanup(ctx);
	free(ctx);
}

int pvr_keyer_device(const uint8_t *key, size_t len, uint64_t box_id, struct pvr_keyer *out)
{
	struct pvr_keys *k;
	int r;

	if (!out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	if (!(k = calloc(1, sizeof(*k))))
		return CE_NOMEM;
	if ((r = pvr_keys_init(k, key, len, box_id)) != 0) {
		free(k);
		return r;
	}
	*out = (struct pvr_keyer){ .ctx = k, .source = PVR_SRC_DEVICE, .box_id = box_id, .crypt = dev_crypt,
		.destroy = dev_destroy };
	return 0;
}

static int chip_crypt(void *ctx, int enc, const uint8_t nonce[PVR_NONCE_BYTES], uint32_t index, const uint8_t *aad,
	size_t aad_len, uint8_t *buf, size_t len, uint8_t tag[PVR_TAG_BYTES])
{
	return chip_link_pvr_crypt(ctx, enc, nonce, index, aad, aad_len, buf, len, tag);
}

int pvr_keyer_chip(struct chip_link *l, struct pvr_keyer *out)
{
	struct chip_info ci;
	int r;

	if (!out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	if (!l)
		return CE_ARG;
	if ((r = chip_link_info(l, &ci)) != 0)
		return r;
	*out = (struct pvr_keyer){ .ctx = l, .source = PVR_SRC_CHIP, .box_id = ci.chip_id, .crypt = chip_crypt };
	return 0;
}

void pvr_keyer_free(struct pvr_keyer *k)
{
	if (!k)
		return;
	if (k->destroy)
		k->destroy(k->ctx);
	memset(k, 0, sizeof(*k));
}

/* ---- header ---- */

static int header_write(const struct pvr_info *h, uint8_t out[PVR_HEADER_BYTES])
{
	struct wbuf w;

	wbuf_init(&w, out, PVR_HEADER_AUTH_BYTES);
	wbuf_bytes(&w, PVR_MAGIC, 8);
	wbuf_u8(&w, PVR_VERSION);
	wbuf_u8(&w, h->source);
	wbuf_u16(&w, h->service_id);
	wbuf_u64(&w, h->box_id);
	wbuf_u8(&w, h->copy_control);
	wbuf_u8(&w, 0);
	wbuf_u16(&w, PVR_CHUNK_PKTS);
	wbuf_u32(&w, h->retention_s);
	wbuf_u64(&w, h->created_ms);
	wbuf_u64(&w, h->packets);
	wbuf_u32(&w, h->chunks);
	wbuf_bytes(&w, h->nonce, PVR_NONCE_BYTES);
	return wbuf_status(&w);
}

int pvr_header_parse(const uint8_t *buf, size_t len, struct pvr_info *out)
{
	uint8_t magic[8], version = 0, reserved = 0;
	uint16_t chunk_pkts = 0;
	struct cur c;
	int r;

	if (!out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	if (!buf && len)
		return CE_ARG;
	cur_init(&c, buf, len < PVR_HEADER_AUTH_BYTES ? len : PVR_HEADER_AUTH_BYTES);
	(void)cur_bytes(&c, magic, sizeof(magic));
	(void)cur_u8(&c, &version);
	(void)cur_u8(&c, &out->source);
	(void)cur_u16(&c, &out->service_id);
	(void)cur_u64(&c, &out->box_id);
	(void)cur_u8(&c, &out->copy_control);
	(void)cur_u8(&c, &reserved);
	(void)cur_u16(&c, &chunk_pkts);
	(void)cur_u32(&c, &out->retention_s);
	(void)cur_u64(&c, &out->created_ms);
	(void)cur_u64(&c, &out->packets);
	(void)cur_u32(&c, &out->chunks);
	(void)cur_bytes(&c, out->nonce, PVR_NONCE_BYTES);
	if ((r = cur_end(&c)) != 0 || len < PVR_HEADER_BYTES)
		r = r ? r : CE_TRUNCATED;
	else if (memcmp(magic, PVR_MAGIC, 8) != 0 || version != PVR_VERSION || reserved != 0 ||
		 chunk_pkts != PVR_CHUNK_PKTS || (out->source != PVR_SRC_CHIP && out->source != PVR_SRC_DEVICE))
		r = CE_FORMAT;
	else if ((out->copy_control != CAS_COPY_FREE && out->copy_control != CAS_COPY_NO_MORE) ||
		 out->retention_s > CAS_MAX_RETENTION_S || out->chunks == 0 || out->chunks > PVR_MAX_CHUNKS ||
		 out->packets > (uint64_t)out->chunks * PVR_CHUNK_PKTS ||
		 (out->chunks > 1 && out->packets <= (uint64_t)(out->chunks - 1) * PVR_CHUNK_PKTS))
		r = CE_RANGE;
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/* ---- recording ---- */

struct pvr_rec {
	const struct pvr_keyer *k;
	int fd;
	char *path;
	struct pvr_info h;
	bool any_once;
	size_t n;                                  /* packets in buf */
	uint8_t buf[PVR_CHUNK_HEAD_BYTES + PVR_CHUNK_PKTS * PKT + PVR_TAG_BYTES];
	struct pvr_rec_stats st;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return CE_IO;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int pvr_rec_open(const char *path, const struct pvr_keyer *k, uint16_t service_id, uint64_t now_ms,
	struct pvr_rec **out)
{
	static const uint8_t zero[PVR_HEADER_BYTES];
	struct pvr_rec *r;
	int rc = CE_NOMEM;

	if (!out)
		return CE_ARG;
	*out = NULL;
	if (!path || !k || !k->crypt)
		return CE_ARG;
	if (!(r = calloc(1, sizeof(*r))) || !(r->path = strdup(path)))
		goto fail;
	r->k = k;
	r->h.source = k->source;
	r->h.box_id = k->box_id;
	r->h.service_id = service_id;
	r->h.created_ms = now_ms;
	rc = CE_CRYPTO;
	if (RAND_bytes(r->h.nonce, PVR_NONCE_BYTES) != 1)
		goto fail;
	rc = CE_IO;
	r->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (r->fd < 0)
		goto fail;
	if ((rc = write_all(r->fd, zero, sizeof(zero))) != 0) { /* the header goes here at close */
		pvr_rec_abort(r);
		return rc;
	}
	*out = r;
	return 0;
fail:
	if (r)
		free(r->path);
	free(r);
	return rc;
}

/* Seal and write the buffered packets as chunk h.chunks. */
static int flush_chunk(struct pvr_rec *r, bool last)
{
	uint8_t *p = r->buf;
	size_t len = r->n * PKT;
	struct wbuf w;
	int rc;

	if (r->h.chunks >= PVR_MAX_CHUNKS)
		return CE_LIMIT;
	wbuf_init(&w, p, PVR_CHUNK_HEAD_BYTES);
	wbuf_u32(&w, r->h.chunks);
	wbuf_u16(&w, (uint16_t)r->n);
	wbuf_u8(&w, last ? PVR_LAST : 0);
	wbuf_u8(&w, 0);
	if ((rc = wbuf_status(&w)) != 0)
		return rc;
	if ((rc = r->k->crypt(r->k->ctx, 1, r->h.nonce, r->h.chunks, p, PVR_CHUNK_HEAD_BYTES, p + PVR_CHUNK_HEAD_BYTES,
		     len, p + PVR_CHUNK_HEAD_BYTES + len)) != 0)
		return rc;
	if ((rc = write_all(r->fd, p, PVR_CHUNK_HEAD_BYTES + len + PVR_TAG_BYTES)) != 0)
		return rc;
	r->h.chunks++;
	r->h.packets += r->n;
	r->n = 0;
	return 0;
}

int pvr_rec_feed(struct pvr_rec *r, struct stb *box, const uint8_t *pkts, size_t n)
{
	int rc;

	if (!r || (!pkts && n))
		return CE_ARG;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = pkts + i * PKT;
		uint16_t pid = (uint16_t)(((p[1] & 0x1F) << 8) | p[2]), sid = 0;
		struct cas_usage u = { 0 };
		bool have = false, svc;

		svc = box && stb_pid_usage(box, pid, &sid, &u, &have) == 0;
		if (p[0] != 0x47 || (p[3] & 0xC0) != 0) {
			r->st.dropped_scrambled++; /* no key: never recorded */
			continue;
		}
		if (svc && have && u.copy_control == CAS_COPY_NEVER) {
			r->st.refused_copy_never++;
			stb_note_recorded(box, sid, 0, 1);
			continue;
		}
		if (svc) {
			stb_note_recorded(box, sid, 1, 0);
			if (have && u.copy_control == CAS_COPY_ONCE)
				r->any_once = true;
			if (have && u.retention_s && (!r->h.retention_s || u.retention_s < r->h.retention_s))
				r->h.retention_s = u.retention_s;
		}
		/* a full chunk goes out when the next packet comes, so the chunk
		 * flagged last is never empty (unless the recording is) */
		if (r->n == PVR_CHUNK_PKTS && (rc = flush_chunk(r, false)) != 0)
			return rc;
		memcpy(r->buf + PVR_CHUNK_HEAD_BYTES + r->n * PKT, p, PKT);
		r->n++;
	}
	return 0;
}

void pvr_rec_abort(struct pvr_rec *r)
{
	if (!r)
		return;
	if (r->fd >= 0) {
		close(r->fd);
		(void)unlink(r->path);
	}
	OPENSSL_cleanse(r->buf, sizeof(r->buf));
	free(r->path);
	free(r);
}

int pvr_rec_close(struct pvr_rec *r, struct pvr_rec_stats *st)
{
	uint8_t hdr[PVR_HEADER_BYTES];
	int rc;

	if (st)
		memset(st, 0, sizeof(*st));
	if (!r)
		return CE_ARG;
	r->h.copy_control = r->any_once ? CAS_COPY_NO_MORE : CAS_COPY_FREE;
	if ((rc = flush_chunk(r, true)) != 0 || (rc = header_write(&r->h, hdr)) != 0)
		goto fail;
	if ((rc = r->k->crypt(r->k->ctx, 1, r->h.nonce, PVR_HEADER_INDEX, hdr, PVR_HEADER_AUTH_BYTES, NULL, 0,
		     hdr + PVR_HEADER_AUTH_BYTES)) != 0)
		goto fail;
	rc = CE_IO;
	if (pwrite(r->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || fsync(r->fd) != 0)
		goto fail;
	if (close(r->fd) != 0) {
		r->fd = -1;
		(void)unlink(r->path);
		goto fail;
	}
	r->fd = -1;
	r->st.packets = r->h.packets;
	r->st.chunks = r->h.chunks;
	r->st.copy_control = r->h.copy_control;
	r->st.retention_s = r->h.retention_s;
	if (st)
		*st = r->st;
	pvr_rec_abort(r);
	return 0;
fail:
	pvr_rec_abort(r);
	return rc;
}

/* ---- playback ---- */

/* Read exactly n bytes: 0, CE_TRUNCATED (end of file first), CE_IO. */
static int read_exact(FILE *f, uint8_t *p, size_t n)
{
	size_t got = fread(p, 1, n, f);

	if (got == n)
		return 0;
	return ferror(f) ? CE_IO : CE_TRUNCATED;
}

/* One pass over the chunks: check every tag; with sink, hand the packets
 * on. buf holds one chunk. */
static int chunks_pass(const struct pvr_keyer *k, FILE *f, const struct pvr_info *h, uint8_t *buf,
	int (*sink)(void *, const uint8_t *, size_t), void *ctx)
{
	uint64_t total = 0;
	int rc;

	for (uint32_t i = 0; i < h->chunks; i++) {
		uint32_t index = 0;
		uint16_t npkts = 0;
		uint8_t flags = 0, reserved = 0;
		bool last = i + 1 == h->chunks;
		struct cur c;
		size_t len;

		if ((rc = read_exact(f, buf, PVR_CHUNK_HEAD_BYTES)) != 0)
			return rc;
		cur_init(&c, buf, PVR_CHUNK_HEAD_BYTES);
		(void)cur_u32(&c, &index);
		(void)cur_u16(&c, &npkts);
		(void)cur_u8(&c, &flags);
		(void)cur_u8(&c, &reserved);
		if ((rc = cur_end(&c)) != 0)
			return rc;
		if (index != i || reserved != 0 || flags != (last ? PVR_LAST : 0) || npkts > PVR_CHUNK_PKTS ||
		    (npkts == 0 && h->chunks != 1) || (!last && npkts != PVR_CHUNK_PKTS))
			return CE_FORMAT;
		len = (size_t)npkts * PKT;
		if ((rc = read_exact(f, buf + PVR_CHUNK_HEAD_BYTES, len + PVR_TAG_BYTES)) != 0)
			return rc;
		if ((rc = k->crypt(k->ctx, 0, h->nonce, i, buf, PVR_CHUNK_HEAD_BYTES, buf + PVR_CHUNK_HEAD_BYTES, len,
			     buf + PVR_CHUNK_HEAD_BYTES + len)) != 0)
			return rc;
		total += npkts;
		if (sink && npkts && (rc = sink(ctx, buf + PVR_CHUNK_HEAD_BYTES, npkts)) != 0)
			return rc;
	}
	if (total != h->packets)
		return CE_FORMAT;
	if (fgetc(f) != EOF)
		return CE_TRAILING;
	return ferror(f) ? CE_IO : 0;
}

int pvr_play(const struct pvr_keyer *k, FILE *f, uint64_t now_ms, int (*sink)(void *ctx, const uint8_t *pkts,
	size_t n), void *ctx, struct pvr_info *info)
{
	uint8_t hdr[PVR_HEADER_BYTES];
	struct pvr_info h;
	uint8_t *buf = NULL;
	int rc;

	if (info)
		memset(info, 0, sizeof(*info));
	if (!k || !k->crypt || !f || !sink)
		return CE_ARG;
	if ((rc = read_exact(f, hdr, sizeof(hdr))) != 0 || (rc = pvr_header_parse(hdr, sizeof(hdr), &h)) != 0)
		return rc;
	if (info)
		*info = h;
	/* another box's recording: refused before any key is tried */
	if (h.source != k->source || h.box_id != k->box_id)
		return CE_NOT_ENTITLED;
	if ((rc = k->crypt(k->ctx, 0, h.nonce, PVR_HEADER_INDEX, hdr, PVR_HEADER_AUTH_BYTES, NULL, 0,
		     hdr + PVR_HEADER_AUTH_BYTES)) != 0)
		return rc;
	if (h.retention_s && (now_ms < h.created_ms || (now_ms - h.created_ms) / 1000u > h.retention_s))
		return CE_EXPIRED;
	if (!(buf = malloc(PVR_CHUNK_HEAD_BYTES + PVR_CHUNK_PKTS * PKT + PVR_TAG_BYTES)))
		return CE_NOMEM;
	/* every tag first, so a tampered or truncated file plays nothing */
	if ((rc = chunks_pass(k, f, &h, buf, NULL, NULL)) != 0)
		goto out;
	if (fseek(f, (long)sizeof(hdr), SEEK_SET) != 0) {
		rc = CE_IO;
		goto out;
	}
	rc = chunks_pass(k, f, &h, buf, sink, ctx);
out:
	OPENSSL_cleanse(buf, PVR_CHUNK_HEAD_BYTES + PVR_CHUNK_PKTS * PKT + PVR_TAG_BYTES);
	free(buf);
	return rc;
}
