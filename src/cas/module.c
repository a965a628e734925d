/*
 * module.c - signed CAS client modules (module.h has the byte table).
 * Verification order is fixed so each refusal has one reason; signature
 * and hash comparisons are constant-time (pk_verify, CRYPTO_memcmp).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "cas/cert.h"
#include "cas/module.h"
#include "crypto/pk.h"
#include "lib/cursor.h"

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > MODULE_MAX_NAME || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

int module_parse(const uint8_t *buf, size_t len, struct module_view *v)
{
	struct cur c;
	const uint8_t *magic;
	uint8_t fmt = 0;
	uint32_t plen = 0;
	uint16_t clen = 0;
	int r;

	memset(v, 0, sizeof(*v));
	if (!buf)
		return CE_ARG;
	cur_init(&c, buf, len);
	magic = cur_ptr(&c, 8);
	(void)cur_u8(&c, &fmt);
	if (c.err)
		return c.err;
	if (memcmp(magic, MODULE_MAGIC, 8) != 0)
		return CE_FORMAT;
	if (fmt != MODULE_FORMAT)
		return CE_UNSUPPORTED;
	(void)cur_u32(&c, &v->m.vendor_id);
	(void)cur_u32(&c, &v->m.version);
	(void)cur_u32(&c, &v->m.rollback);
	(void)cur_bytes(&c, v->m.payload_sha256, 32);
	(void)cur_u32(&c, &plen);
	if (!c.err && (plen == 0 || plen > MODULE_MAX_PAYLOAD))
		(void)cur_fail(&c, CE_RANGE);
	v->payload = cur_ptr(&c, plen);
	v->payload_len = plen;
	v->ta_pub = cur_ptr(&c, 32);
	(void)cur_u16(&c, &clen);
	if (!c.err && (clen == 0 || clen > CERT_MAX_BYTES))
		(void)cur_fail(&c, CE_RANGE);
	v->cert = cur_ptr(&c, clen);
	v->cert_len = clen;
	v->signed_len = c.off;
	v->sig = cur_ptr(&c, 64);
	if ((r = cur_end(&c)) != 0) {
		memset(v, 0, sizeof(*v));
		return r;
	}
	return 0;
}

int module_payload_encode(const struct module_payload *p, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t n = strnlen(p->keys_file, sizeof(p->keys_file));
	struct wbuf w;

	*out_len = 0;
	if (p->kind != MODULE_KIND_LADDER || !name_ok(p->keys_file, n))
		return CE_ARG;
	wbuf_init(&w, out, cap);
	wbuf_u8(&w, p->kind);
	wbuf_u32(&w, p->vendor_id);
	wbuf_u16(&w, p->ca_system_id);
	wbuf_u8(&w, (uint8_t)n);
	wbuf_bytes(&w, p->keys_file, n);
	*out_len = w.len;
	return wbuf_status(&w);
}

int module_payload_parse(const uint8_t *buf, size_t len, struct module_payload *p)
{
	struct cur c;
	uint8_t n = 0;
	int r;

	memset(p, 0, sizeof(*p));
	cur_init(&c, buf, len);
	(void)cur_u8(&c, &p->kind);
	(void)cur_u32(&c, &p->vendor_id);
	(void)cur_u16(&c, &p->ca_system_id);
	(void)cur_u8(&c, &n);
	if (!c.err && n == 0)
		(void)cur_fail(&c, CE_RANGE);
	(void)cur_bytes_max(&c, p->keys_file, MODULE_MAX_NAME, n);
	if ((r = cur_end(&c)) != 0)
		goto fail;
	r = CE_FORMAT;
	if (p->kind != MODULE_KIND_LADDER || !name_ok(p->keys_file, n))
		goto fail;
	return 0;
fail:
	memset(p, 0, sizeof(*p));
	return r;
}

int module_sign(const struct module_manifest *m, const uint8_t *payload, size_t payload_len,
	const uint8_t ta_pub[32], const uint8_t *cert, size_t cert_len, const uint8_t op_priv[32], uint8_t **out,
	size_t *out_len)
{
	size_t cap = 91 + payload_len + cert_len + 64;
	uint8_t h[32];
	struct wbuf w;
	uint8_t *buf;
	int r;

	*out = NULL;
	*out_len = 0;
	if (!m || !payload || !ta_pub || !cert || !op_priv)
		return CE_ARG;
	if (payload_len == 0 || payload_len > MODULE_MAX_PAYLOAD || cert_len == 0 || cert_len > CERT_MAX_BYTES)
		return CE_RANGE;
	if (!(buf = malloc(cap)))
		return CE_NOMEM;
	SHA256(payload, payload_len, h);
	wbuf_init(&w, buf, cap);
	wbuf_bytes(&w, MODULE_MAGIC, 8);
	wbuf_u8(&w, MODULE_FORMAT);
	wbuf_u32(&w, m->vendor_id);
	wbuf_u32(&w, m->version);
	wbuf_u32(&w, m->rollback);
	wbuf_bytes(&w, h, 32);
	wbuf_u32(&w, (uint32_t)payload_len);
	wbuf_bytes(&w, payload, payload_len);
	wbuf_bytes(&w, ta_pub, 32);
	wbuf_u16(&w, (uint16_t)cert_len);
	wbuf_bytes(&w, cert, cert_len);
	if ((r = wbuf_status(&w)) != 0 || w.len + 64 != cap)
		goto fail;
	if ((r = pk_sign(op_priv, buf, w.len, buf + w.len)) != 0)
		goto fail;
	*out = buf;
	*out_len = cap;
	return 0;
fail:
	free(buf);
	return r ? r : CE_INTERNAL;
}

int module_verify(const uint8_t *buf, size_t len, const uint8_t trust_root_hash[32], uint64_t now_s,
	const uint8_t *crl, size_t crl_len, struct module_view *v, struct module_payload *p)
{
	struct module_payload pl;
	struct cert cert;
	uint8_t h[32];
	int r;

	if (p)
		memset(p, 0, sizeof(*p));
	if ((r = module_parse(buf, len, v)) != 0)
		return r;
	pk_hash(v->ta_pub, h);
	if (CRYPTO_memcmp(h, trust_root_hash, 32) != 0) {
		r = CE_MAC;
		goto fail;
	}
	if ((r = cert_verify(v->cert, v->cert_len, v->ta_pub, now_s, crl, crl_len, &cert)) != 0)
		goto fail;
	if (cert.role != CERT_ROLE_OPERATOR) {
		r = CE_MAC;
		goto fail;
	}
	if ((r = pk_verify(cert.subject_pub, buf, v->signed_len, v->sig)) != 0)
		goto fail;
	SHA256(v->payload, v->payload_len, h);
	if (CRYPTO_memcmp(h, v->m.payload_sha256, 32) != 0) {
		r = CE_MAC;
		goto fail;
	}
	if ((r = module_payload_parse(v->payload, v->payload_len, &pl)) != 0)
		goto fail;
	if (pl.vendor_id != v->m.vendor_id) {
		r = CE_FORMAT;
		goto fail;
	}
	if (p)
		*p = pl;
	return 0;
fail:
	memset(v, 0, sizeof(*v));
	return r;
}

int module_ladder_payload(uint32_t vendor, uint16_t ca_system_id, const char *keys_file, uint8_t *out, size_t cap,
	size_t *out_len)
{
	struct module_payload p = { .kind = MODULE_KIND_LADDER, .vendor_id = vendor, .ca_system_id = ca_system_id };

	*out_len = 0;
	if (strlen(keys_file) > MODULE_MAX_NAME)
		return CE_ARG;
	memcpy(p.keys_file, keys_file, strlen(keys_file) + 1);
	return module_payload_encode(&p, out, cap, out_len) != 0 ? CE_ARG : 0;
}
