/*
 * chip.c - the emulated secure SoC: the inside (OTP, K_v, ladder, slots,
 * request handler) and the process boundary (framing, spawn, serve).
 * chip_link.c is the box side. chip.h has the formats; docs/secure-chip.md
 * the byte tables.
 *
 * Normative references: ETSI TS 103 162 (K-LAD: vendor-specific root from
 * the chip secret, AES-128 ladder levels), NIST SP 800-108 (kms_vendor_key),
 * RFC 3394 (key wrap), NIST SP 800-38D (GCM).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "lib/bytes.h"
#include "cas/ecm.h"
#include "cas/emm_vendor.h"
#include "cas/osd.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "lib/util.h"
#include "stb/chip.h"
#include "stb/chip_int.h"
#include "stb/descrambler.h"
#include "stb/pvr_key.h"

struct chip {
	struct chip_otp otp;
	bool vendor_set;
	uint32_t vendor_id;
	uint8_t kv[16];          /* K_v of the running module's vendor */
	bool csa2_reduce;
	struct descrambler *d;
	bool pvr_ready;          /* pvr: the recording keys (K_otp's branch), on first use */
	struct pvr_keys pvr;
};

void chip_otp_wipe(struct chip_otp *o)
{
	if (o)
		OPENSSL_cleanse(o, sizeof(*o));
}

int chip_new(const struct chip_otp *otp, bool csa2_reduce, struct chip **out)
{
	struct descrambler_config dc = { .csa2_reduce = csa2_reduce };
	struct chip *c;
	int r;

	*out = NULL;
	if (!otp)
		return CE_ARG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return CE_NOMEM;
	c->otp = *otp;
	c->csa2_reduce = csa2_reduce;
	if ((r = descrambler_new(&dc, &c->d)) != 0) {
		chip_free(c);
		return r;
	}
	*out = c;
	return 0;
}

static void chip_reset_slots(struct chip *c)
{
	struct descrambler_config dc = { .csa2_reduce = c->csa2_reduce };
	struct descrambler *d = NULL;

	if (descrambler_new(&dc, &d) != 0)
		return; /* keep the old one: CWs stay bound to the old vendor until memory returns */
	descrambler_free(c->d);
	c->d = d;
}

void chip_free(struct chip *c)
{
	if (!c)
		return;
	descrambler_free(c->d);
	pvr_keys_cleanup(&c->pvr);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* ---- AES primitives (one block ECB, RFC 3394 unwrap, GCM open) ---- */

int chip_aes_ecb(int enc, const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
	return crypto_aes_block(enc, key, 16, in, out);
}

/* ---- the ladder ---- */

/* Run chain ek and put the CW for parity into cw (len *cw_len). */
static int ladder(const struct chip *c, enum cw_alg alg, enum cw_parity parity, const uint8_t *ek, size_t len,
	uint8_t cw[CW_MAX_BYTES], size_t *cw_len)
{
	size_t klen = cw_alg_key_bytes(alg);
	uint8_t ks[16], blk[16];
	struct cur cu;
	uint8_t type = 0;
	int r = CE_FORMAT;

	*cw_len = 0;
	if (!klen)
		return CE_ARG;
	if (!c->vendor_set)
		return CE_STATE;
	cur_init(&cu, ek, len);
	(void)cur_u8(&cu, &type);
	if (type == CHIP_CHAIN_KLAD) {
		const uint8_t *ek2 = cur_ptr(&cu, 16), *ek1 = cur_ptr(&cu, 16);

		if ((r = cur_end(&cu)) != 0)
			goto out;
		if ((r = chip_aes_ecb(0, c->kv, ek2, ks)) != 0 || (r = chip_aes_ecb(0, ks, ek1, blk)) != 0)
			goto out;
		memcpy(cw, blk, klen);
		*cw_len = klen;
		r = 0;
	} else if (type == CHIP_CHAIN_ECM) {
		/* the whole ECM section: the chip checks the package's MAC of it
		 * (format v2) with the K_pkg it alone sees, so the host cannot
		 * feed it a re-sealed ECM either */
		const uint8_t *ek2, *sec;
		uint16_t pkg = 0, sec_len = 0;
		struct ecm_view v;
		struct ecm_cws cws;
		struct pkg_key k;

		ek2 = cur_ptr(&cu, 16);
		(void)cur_u16(&cu, &pkg);
		(void)cur_u16(&cu, &sec_len);
		sec = cur_ptr(&cu, sec_len);
		if ((r = cur_end(&cu)) != 0)
			goto out;
		if ((r = ecm_parse(sec, sec_len, &v)) != 0)
			goto out;
		r = CE_FORMAT;
		if (v.alg != alg || !(v.cw_mask & (parity == CW_EVEN ? ECM_HAS_EVEN : ECM_HAS_ODD)))
			goto out;
		memset(&k, 0, sizeof(k));
		k.epoch = v.epoch;
		k.pkg = pkg;
		if ((r = chip_aes_ecb(0, c->kv, ek2, k.key)) != 0) {
			pkg_key_wipe(&k);
			goto out;
		}
		r = ecm_open(&v, &k, &cws);
		pkg_key_wipe(&k);
		if (r != 0)
			goto out;
		if (cws.cw_len != klen) {
			ecm_cws_wipe(&cws);
			r = CE_FORMAT;
			goto out;
		}
		memcpy(cw, parity == CW_EVEN ? cws.even : cws.odd, klen);
		ecm_cws_wipe(&cws);
		*cw_len = klen;
		r = 0;
	} else if (type == CHIP_CHAIN_PAIRED) {
		static const uint8_t zero[16];
		const uint8_t *ecw;
		uint64_t serial = 0;

		(void)cur_u64(&cu, &serial);
		ecw = cur_ptr(&cu, 16);
		if ((r = cur_end(&cu)) != 0)
			goto out;
		r = CE_FORMAT;
		if (serial == 0)
			goto out;
		/* ks holds K_pair here: derived from this chip's K_v, never received */
		if ((r = chip_pairing_key(c->kv, serial, ks)) != 0 || (r = chip_aes_ecb(0, ks, ecw, blk)) != 0)
			goto out;
		/* the padding is the only redundancy: an 8-byte CW for another chip
		 * (or another card serial) fails it with probability 1 - 2^-64 */
		if (klen < 16 && CRYPTO_memcmp(blk + klen, zero, 16 - klen) != 0) {
			r = CE_MAC;
			goto out;
		}
		memcpy(cw, blk, klen);
		*cw_len = klen;
		r = 0;
	} else {
		r = CE_UNSUPPORTED;
	}
out:
	OPENSSL_cleanse(ks, sizeof(ks));
	OPENSSL_cleanse(blk, sizeof(blk));
	return r;
}

static int op_info(const struct chip *c, uint8_t *resp, size_t cap, size_t *resp_len)
{
	struct wbuf w;

	wbuf_init(&w, resp, cap);
	wbuf_u64(&w, c->otp.chip_id);
	wbuf_u8(&w, c->vendor_set ? 1 : 0);
	wbuf_u32(&w, c->vendor_id);
	wbuf_bytes(&w, c->otp.trust_root_hash, CHIP_HASH_BYTES);
	*resp_len = w.len;
	return wbuf_status(&w);
}

/* OPEN_EMM (chip.h): open a vendor EMM with K_emm from this chip's K_v and
 * answer the non-secret fields plus E_{K_v}(K_pkg) per package key. */
static int op_open_emm(const struct chip *c, struct cur *cu, uint8_t *resp, size_t cap, size_t *resp_len)
{
	struct emm_content *ct = calloc(1, sizeof(*ct));
	struct emm_view v;
	const uint8_t *sec;
	uint64_t serial = 0;
	size_t sec_len;
	uint8_t flags;
	struct wbuf w;
	int r;

	if (!ct)
		return CE_NOMEM;
	(void)cur_u64(cu, &serial);
	sec_len = cur_left(cu);
	if (sec_len > EMM_MAX_SECTION)
		(void)cur_fail(cu, CE_LIMIT);
	sec = cur_ptr(cu, sec_len);
	if ((r = cur_end(cu)) != 0)
		goto out;
	r = CE_STATE;
	if (!c->vendor_set)
		goto out;
	if ((r = emm_parse(sec, sec_len, serial, &v)) != 0 || (r = emm_vendor_open(&v, c->kv, ct)) != 0)
		goto out;
	for (size_t i = 0; i < ct->nkeys; i++)
		if ((r = chip_protect_key(c->kv, ct->keys[i].key)) != 0)
			goto out;
	flags = (uint8_t)((ct->has_grant ? 1u : 0u) | (ct->has_limits ? 2u : 0u));
	wbuf_init(&w, resp, cap);
	wbuf_u32(&w, v.seq);
	wbuf_u64(&w, v.timestamp_ms);
	wbuf_u16(&w, v.ca_system_id);
	wbuf_u8(&w, flags);
	wbuf_u32(&w, ct->cmds);
	wbuf_u64(&w, ct->pair_stb_id);
	if (ct->has_grant) {
		wbuf_u32(&w, ct->grant.packages);
		wbuf_u64(&w, ct->grant.start_s);
		wbuf_u64(&w, ct->grant.finish_s);
		wbuf_u8(&w, (uint8_t)ct->grant.next);
		for (size_t i = 0; i < ct->grant.next; i++)
			wbuf_u16(&w, ct->grant.ext[i]);
	}
	if (ct->has_limits) {
		wbuf_u8(&w, ct->limits.max_channels);
		wbuf_u32(&w, ct->limits.window_s);
		wbuf_u32(&w, ct->limits.block_s);
	}
	wbuf_u8(&w, (uint8_t)ct->nkeys);
	for (size_t i = 0; i < ct->nkeys; i++) {
		wbuf_u32(&w, ct->keys[i].epoch);
		wbuf_u16(&w, ct->keys[i].pkg);
		wbuf_bytes(&w, ct->keys[i].key, 16);
	}
	/* the OSD items (fingerprints, messages: nothing secret), re-encoded
	 * as the record they came in, so the host parses them with osd_parse */
	wbuf_u8(&w, (uint8_t)ct->nosd);
	for (size_t i = 0; i < ct->nosd && (r = wbuf_status(&w)) == 0; i++) {
		uint8_t item[OSD_MAX_BYTES];
		size_t n = 0;

		r = ct->osd[i].kind == OSD_KIND_FINGERPRINT ? osd_fp_encode(&ct->osd[i].u.fp, item, sizeof(item), &n)
			: osd_msg_encode(&ct->osd[i].u.msg, item, sizeof(item), &n);
		if (r != 0)
			goto out;
		wbuf_u16(&w, (uint16_t)n);
		wbuf_bytes(&w, item, n);
	}
	if ((r = wbuf_status(&w)) == 0)
		*resp_len = w.len;
out:
	emm_content_wipe(ct);
	free(ct);
	return r;
}

/* PVR_CRYPT (chip.h): a recording chunk sealed or opened under this chip's
 * recording key; the key never leaves, only sealed or opened bytes do. */
static int op_pvr_crypt(struct chip *c, struct cur *cu, uint8_t *resp, size_t cap, size_t *resp_len)
{
	const uint8_t *nonce, *aad, *tag, *data;
	uint16_t aad_len = 0, len = 0;
	uint32_t index = 0;
	uint8_t enc = 0, t[PVR_TAG_BYTES];
	int r;

	(void)cur_u8(cu, &enc);
	nonce = cur_ptr(cu, PVR_NONCE_BYTES);
	(void)cur_u32(cu, &index);
	(void)cur_u16(cu, &aad_len);
	if (aad_len > CHIP_PVR_MAX_AAD)
		(void)cur_fail(cu, CE_LIMIT);
	aad = cur_ptr(cu, aad_len);
	tag = cur_ptr(cu, PVR_TAG_BYTES);
	(void)cur_u16(cu, &len);
	if (len > CHIP_PVR_MAX_DATA)
		(void)cur_fail(cu, CE_LIMIT);
	data = cur_ptr(cu, len);
	if ((r = cur_end(cu)) != 0)
		return r;
	if (enc > 1 || cap < PVR_TAG_BYTES + (size_t)len)
		return CE_ARG;
	if (!c->pvr_ready) {
		if ((r = pvr_keys_init(&c->pvr, c->otp.root, sizeof(c->otp.root), c->otp.chip_id)) != 0)
			return r;
		c->pvr_ready = true;
	}
	memcpy(t, tag, PVR_TAG_BYTES);
	if (len)
		memcpy(resp + PVR_TAG_BYTES, data, len);
	if ((r = pvr_keys_crypt(&c->pvr, enc, nonce, index, aad, aad_len, resp + PVR_TAG_BYTES, len, t)) != 0)
		return r;
	memcpy(resp, t, PVR_TAG_BYTES);
	*resp_len = PVR_TAG_BYTES + (size_t)len;
	return 0;
}

int chip_handle(struct chip *c, enum chip_role role, uint8_t op, const uint8_t *body, size_t len,
	uint8_t *resp, size_t cap, size_t *resp_len)
{
	struct cur cu;
	uint16_t sid = 0, tag = 0, n16 = 0, chain_len = 0;
	uint8_t alg = 0, par = 0;
	uint32_t vid = 0;
	uint8_t cw[CW_MAX_BYTES];
	size_t cw_len = 0;
	int r;

	*resp_len = 0;
	if (!c || !resp || cap < CHIP_MAX_BODY || (!body && len))
		return CE_ARG;
	cur_init(&cu, body, len);
	switch (op) {
	case CHIP_OP_INFO:
		if ((r = cur_end(&cu)) != 0)
			return r;
		return op_info(c, resp, cap, resp_len);
	case CHIP_OP_SET_VENDOR:
		(void)cur_u32(&cu, &vid);
		if ((r = cur_end(&cu)) != 0)
			return r;
		if (role != CHIP_ROLE_CONTROL)
			return CE_STATE;
		chip_reset_slots(c);
		if ((r = kms_vendor_key(c->otp.root, vid, c->kv)) != 0) {
			c->vendor_set = false;
			return r;
		}
		c->vendor_id = vid;
		c->vendor_set = true;
		LOG_INFO("chip", "chip %016llx: vendor %08x active", (unsigned long long)c->otp.chip_id, vid);
		return 0;
	case CHIP_OP_CLEAR_VENDOR:
		if ((r = cur_end(&cu)) != 0)
			return r;
		if (role != CHIP_ROLE_CONTROL)
			return CE_STATE;
		chip_reset_slots(c);
		OPENSSL_cleanse(c->kv, sizeof(c->kv));
		c->vendor_set = false;
		c->vendor_id = 0;
		return 0;
	case CHIP_OP_LOAD_ECW: {
		const uint8_t *chain;

		(void)cur_u16(&cu, &sid);
		(void)cur_u16(&cu, &tag);
		(void)cur_u8(&cu, &alg);
		(void)cur_u8(&cu, &par);
		(void)cur_u16(&cu, &chain_len);
		chain = cur_ptr(&cu, chain_len);
		if ((r = cur_end(&cu)) != 0)
			return r;
		if (role != CHIP_ROLE_HOST || par > 1 || tag > 0x1FFF)
			return role != CHIP_ROLE_HOST ? CE_STATE : CE_ARG;
		if ((r = ladder(c, (enum cw_alg)alg, (enum cw_parity)par, chain, chain_len, cw, &cw_len)) == 0)
			r = descrambler_load_cw(c->d, sid, tag, (enum cw_alg)alg, (enum cw_parity)par, cw, cw_len);
		OPENSSL_cleanse(cw, sizeof(cw));
		return r;
	}
	case CHIP_OP_DESCRAMBLE: {
		uint8_t *pkts[CHIP_MAX_PKTS];
		const uint8_t *src;
		size_t done = 0, missing = 0;
		struct wbuf w;

		(void)cur_u16(&cu, &sid);
		(void)cur_u16(&cu, &tag);
		(void)cur_u16(&cu, &n16);
		if (n16 > CHIP_MAX_PKTS)
			(void)cur_fail(&cu, CE_LIMIT);
		src = cur_ptr(&cu, (size_t)n16 * 188u);
		if ((r = cur_end(&cu)) != 0)
			return r;
		if (role != CHIP_ROLE_HOST)
			return CE_STATE;
		memcpy(resp + 4, src, (size_t)n16 * 188u);
		for (size_t i = 0; i < n16; i++)
			pkts[i] = resp + 4 + i * 188u;
		r = descrambler_run(c->d, sid, tag, pkts, n16, &done, &missing);
		if (r != 0 && r != CE_FORMAT)
			return r;
		wbuf_init(&w, resp, 4);
		wbuf_u16(&w, (uint16_t)done);
		wbuf_u16(&w, (uint16_t)missing);
		*resp_len = 4 + (size_t)n16 * 188u;
		return 0;
	}
	case CHIP_OP_DROP:
		(void)cur_u16(&cu, &sid);
		if ((r = cur_end(&cu)) != 0)
			return r;
		if (role != CHIP_ROLE_HOST)
			return CE_STATE;
		descrambler_drop_service(c->d, sid);
		return 0;
	case CHIP_OP_OPEN_EMM:
		if (role != CHIP_ROLE_HOST)
			return CE_STATE;
		return op_open_emm(c, &cu, resp, cap, resp_len);
	case CHIP_OP_PVR_CRYPT:
		if (role != CHIP_ROLE_HOST)
			return CE_STATE;
		return op_pvr_crypt(c, &cu, resp, cap, resp_len);
	default:
		return CE_UNSUPPORTED;
	}
}

/* ---- framing ---- */

int chip_frame_read(int fd, uint8_t *op, uint8_t *body, size_t cap, size_t *len)
{
	uint8_t h[4];
	size_t n;
	int r;

	*len = 0;
	if ((r = fd_read_full(fd, h, 4)) != 0)
		return r;
	{
		uint16_t n16 = 0;

		(void)cur_u16_at(h, sizeof(h), 2, &n16);
		n = n16;
	}
	if (h[1] != 0 || n > cap)
		return CE_PROTO; /* a peer that breaks framing loses the channel */
	if ((r = fd_read_full(fd, body, n)) != 0)
		return r;
	*op = h[0];
	*len = n;
	return 0;
}

int chip_frame_write(int fd, uint8_t op, const uint8_t *body, size_t len)
{
	uint8_t h[4] = { op, 0, 0, 0 };
	int r;

	if (len > CHIP_MAX_BODY)
		return CE_ARG;
	put_be16(h + 2, (uint16_t)len);
	if ((r = fd_send_all(fd, h, 4)) != 0)
		return r;
	return len ? fd_send_all(fd, body, len) : 0;
}

/* One request on fd; CE_CLOSED / CE_PROTO / CE_IO end the channel. */
static int serve_one(struct chip *c, enum chip_role role, int fd, uint8_t *req, uint8_t *resp)
{
	size_t len = 0, rlen = 0;
	uint8_t op = 0;
	int r, st;

	if ((r = chip_frame_read(fd, &op, req, CHIP_MAX_BODY, &len)) != 0)
		return r;
	st = chip_handle(c, role, op, req, len, resp, CHIP_MAX_BODY, &rlen);
	r = chip_frame_write(fd, (uint8_t)(st < 0 ? -st : 0), resp, st == 0 ? rlen : 0);
	OPENSSL_cleanse(req, len);
	return r;
}

int chip_serve(struct chip *c, int ctl_fd, int host_fd)
{
	uint8_t *req = malloc(CHIP_MAX_BODY), *resp = malloc(CHIP_MAX_BODY);
	int fds[2] = { ctl_fd, host_fd };
	int r = 0;

	if (!req || !resp) {
		free(req);
		free(resp);
		return CE_NOMEM;
	}
	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = CE_IO;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (serve_one(c, i == 0 ? CHIP_ROLE_CONTROL : CHIP_ROLE_HOST, fds[i], req, resp) != 0)
				fds[i] = -1;
		}
	}
	secret_free(req, CHIP_MAX_BODY);
	secret_free(resp, CHIP_MAX_BODY);
	return r;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int chip_serve_unix(struct chip *c, const char *host_path, const char *ctl_path, volatile int *stop)
{
	int lfd[2] = { -1, -1 }, cfd[2] = { -1, -1 };
	uint8_t *req = malloc(CHIP_MAX_BODY), *resp = malloc(CHIP_MAX_BODY);
	int r = CE_IO;

	if (!req || !resp)
		goto out;
	lfd[0] = unix_listen(ctl_path);
	lfd[1] = unix_listen(host_path);
	if (lfd[0] < 0 || lfd[1] < 0) {
		LOG_ERR("chip", "cannot listen on %s / %s", host_path, ctl_path);
		goto out;
	}
	while (!stop || !*stop) {
		struct pollfd p[4];

		for (int i = 0; i < 2; i++) {
			p[i] = (struct pollfd){ cfd[i] >= 0 ? -1 : lfd[i], POLLIN, 0 };
			p[2 + i] = (struct pollfd){ cfd[i], POLLIN, 0 };
		}
		if (poll(p, 4, 200) < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd >= 0 && (p[i].revents & POLLIN))
				cfd[i] = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
			if (p[2 + i].fd >= 0 && (p[2 + i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    serve_one(c, i == 0 ? CHIP_ROLE_CONTROL : CHIP_ROLE_HOST, cfd[i], req, resp) != 0) {
				close(cfd[i]);
				cfd[i] = -1;
			}
		}
	}
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (lfd[i] >= 0)
			close(lfd[i]);
		if (cfd[i] >= 0)
			close(cfd[i]);
	}
	if (req)
		secret_free(req, CHIP_MAX_BODY);
	if (resp)
		secret_free(resp, CHIP_MAX_BODY);
	return r;
}

/* ---- chain builders ---- */

int chip_protect_key(const uint8_t kv[16], uint8_t key[16])
{
	uint8_t out[16];
	int r = chip_aes_ecb(1, kv, key, out);

	if (r == 0)
		memcpy(key, out, 16);
	OPENSSL_cleanse(out, sizeof(out));
	return r;
}

int chip_chain_klad(const uint8_t kv[16], const uint8_t ks[16], const uint8_t *cw, size_t cw_len, uint8_t *out,
	size_t cap, size_t *out_len)
{
	uint8_t blk[16] = { 0 };
	int r;

	*out_len = 0;
	if ((cw_len != 8 && cw_len != 16) || cap < 33)
		return CE_ARG;
	memcpy(blk, cw, cw_len);
	out[0] = CHIP_CHAIN_KLAD;
	if ((r = chip_aes_ecb(1, kv, ks, out + 1)) == 0 && (r = chip_aes_ecb(1, ks, blk, out + 17)) == 0)
		*out_len = 33;
	OPENSSL_cleanse(blk, sizeof(blk));
	return r;
}

int chip_pairing_key(const uint8_t kv[16], uint64_t serial, uint8_t out[16])
{
	/* one derivation for the chip and the head-end (crypto/kdf.h) */
	_Static_assert(sizeof(CHIP_PAIR_LABEL) == sizeof(KMS_PAIRING_KEY_LABEL), "one pairing label");
	return kms_pairing_key(kv, serial, out);
}

int chip_chain_paired(uint64_t serial, const uint8_t ecw[16], uint8_t *out, size_t cap, size_t *out_len)
{
	struct wbuf w;

	*out_len = 0;
	if (!ecw || !out || serial == 0 || cap < CHIP_CHAIN_PAIRED_BYTES)
		return CE_ARG;
	wbuf_init(&w, out, cap);
	wbuf_u8(&w, CHIP_CHAIN_PAIRED);
	wbuf_u64(&w, serial);
	wbuf_bytes(&w, ecw, 16);
	if (wbuf_status(&w) != 0)
		return CE_ARG;
	*out_len = w.len;
	return 0;
}
