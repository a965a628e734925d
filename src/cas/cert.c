/*
 * cert.c - TA-signed operator certificates and CRLs (cert.h has the tables).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "cas/cert.h"
#include "crypto/pk.h"
#include "lib/cursor.h"

#define CERT_MAGIC "CSTLCERT"
#define CRL_MAGIC "CSTLCRL1"

static int name_ok(const char *s, size_t n)
{
	if (n < 1 || n > CERT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

int cert_sign(struct cert *c, const uint8_t ta_priv[32], uint8_t *out, size_t *out_len)
{
	uint8_t ta_pub[32];
	size_t nl;
	struct wbuf w;
	int r;

	*out_len = 0;
	if (!c || !ta_priv || !out)
		return CE_ARG;
	nl = strnlen(c->name, CERT_NAME_MAX + 1);
	if (!name_ok(c->name, nl) || c->role != CERT_ROLE_OPERATOR || c->not_after < c->not_before)
		return CE_ARG;
	if ((r = pk_ed25519_public(ta_priv, ta_pub)) != 0)
		return r;
	pk_hash(ta_pub, c->issuer_hash);
	wbuf_init(&w, out, CERT_MAX_BYTES);
	wbuf_bytes(&w, CERT_MAGIC, 8);
	wbuf_u8(&w, 1);
	wbuf_u8(&w, c->role);
	wbuf_u64(&w, c->serial);
	wbuf_u64(&w, c->not_before);
	wbuf_u64(&w, c->not_after);
	wbuf_bytes(&w, c->subject_pub, 32);
	wbuf_bytes(&w, c->issuer_hash, 32);
	wbuf_u8(&w, (uint8_t)nl);
	wbuf_bytes(&w, c->name, nl);
	if ((r = wbuf_status(&w)) != 0)
		return r;
	if ((r = pk_sign(ta_priv, out, w.len, out + w.len)) != 0)
		return r;
	*out_len = w.len + 64;
	return 0;
}

int cert_parse(const uint8_t *buf, size_t len, struct cert *out)
{
	uint8_t magic[8], version = 0, nl = 0;
	struct cur c;

	memset(out, 0, sizeof(*out));
	if (!buf)
		return CE_FORMAT;
	cur_init(&c, buf, len);
	cur_bytes(&c, magic, 8);
	cur_u8(&c, &version);
	cur_u8(&c, &out->role);
	cur_u64(&c, &out->serial);
	cur_u64(&c, &out->not_before);
	cur_u64(&c, &out->not_after);
	cur_bytes(&c, out->subject_pub, 32);
	cur_bytes(&c, out->issuer_hash, 32);
	cur_u8(&c, &nl);
	if (nl < 1)
		cur_fail(&c, CE_FORMAT);
	cur_bytes_max(&c, out->name, CERT_NAME_MAX, nl);
	cur_skip(&c, 64);
	if (cur_end(&c) != 0 || memcmp(magic, CERT_MAGIC, 8) != 0 || !name_ok(out->name, nl) ||
	    out->role != CERT_ROLE_OPERATOR) {
		memset(out, 0, sizeof(*out));
		return version != 1 && !c.err && memcmp(magic, CERT_MAGIC, 8) == 0 ? CE_UNSUPPORTED : CE_FORMAT;
	}
	if (version != 1) {
		memset(out, 0, sizeof(*out));
		return CE_UNSUPPORTED;
	}
	return 0;
}

int cert_verify(const uint8_t *buf, size_t len, const uint8_t ta_pub[32], uint64_t now_s, const uint8_t *crl,
	size_t crl_len, struct cert *out)
{
	uint8_t h[32];
	uint64_t num = 0, *serials = NULL;
	size_t n = 0;
	int r;

	if ((r = cert_parse(buf, len, out)) != 0)
		return r;
	pk_hash(ta_pub, h);
	if (CRYPTO_memcmp(h, out->issuer_hash, 32) != 0 || pk_verify(ta_pub, buf, len - 64, buf + len - 64) != 0) {
		r = CE_MAC;
		goto out;
	}
	if (now_s < out->not_before || now_s > out->not_after) {
		r = CE_EXPIRED;
		goto out;
	}
	if (crl) {
		if ((r = crl_verify(crl, crl_len, ta_pub, &num, &serials, &n)) != 0)
			goto out;
		for (size_t i = 0; i < n; i++)
			if (serials[i] == out->serial)
				r = CE_BLOCKED;
	}
out:
	free(serials);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int crl_sign(const uint8_t ta_priv[32], uint64_t number, const uint64_t *serials, size_t n, uint8_t **out,
	size_t *out_len)
{
	uint8_t ta_pub[32], h[32], *buf = NULL;
	uint64_t *s = NULL;
	size_t m = 0, len;
	struct wbuf w;
	int r = CE_NOMEM;

	*out = NULL;
	*out_len = 0;
	if (n > CERT_CRL_MAX)
		return CE_LIMIT;
	if ((r = pk_ed25519_public(ta_priv, ta_pub)) != 0)
		return r;
	pk_hash(ta_pub, h);
	s = malloc((n ? n : 1) * sizeof(*s));
	if (!s)
		return CE_NOMEM;
	if (n)
		memcpy(s, serials, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || s[m - 1] != s[i])
			s[m++] = s[i];
	len = 61 + 8 * m + 64;
	buf = malloc(len);
	if (!buf)
		goto out;
	wbuf_init(&w, buf, len);
	wbuf_bytes(&w, CRL_MAGIC, 8);
	wbuf_u8(&w, 1);
	wbuf_bytes(&w, h, 32);
	wbuf_u64(&w, number);
	wbuf_u64(&w, (uint64_t)time(NULL));
	wbuf_u32(&w, (uint32_t)m);
	for (size_t i = 0; i < m; i++)
		wbuf_u64(&w, s[i]);
	if ((r = wbuf_status(&w)) != 0 || (r = pk_sign(ta_priv, buf, w.len, buf + w.len)) != 0)
		goto out;
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	free(s);
	free(buf);
	return r;
}

static int crl_parse_h(const uint8_t *buf, size_t len, uint8_t issuer[32], uint64_t *number, uint64_t **serials,
	size_t *n)
{
	uint8_t magic[8], version = 0;
	uint64_t created = 0, *s = NULL;
	uint32_t cnt = 0;
	struct cur c;

	*serials = NULL;
	*n = 0;
	*number = 0;
	if (!buf)
		return CE_FORMAT;
	cur_init(&c, buf, len);
	cur_bytes(&c, magic, 8);
	cur_u8(&c, &version);
	cur_bytes(&c, issuer, 32);
	cur_u64(&c, number);
	cur_u64(&c, &created);
	cur_u32(&c, &cnt);
	if (c.err || memcmp(magic, CRL_MAGIC, 8) != 0)
		return CE_FORMAT;
	if (version != 1)
		return CE_UNSUPPORTED;
	/* Cap the declared count, and check it against the bytes present,
	 * before allocating. */
	if (cnt > CERT_CRL_MAX || cur_left(&c) != 8 * (size_t)cnt + 64)
		return CE_FORMAT;
	s = malloc((cnt ? cnt : 1) * sizeof(*s));
	if (!s)
		return CE_NOMEM;
	for (uint32_t i = 0; i < cnt; i++) {
		cur_u64(&c, &s[i]);
		if (i > 0 && s[i] <= s[i - 1])
			cur_fail(&c, CE_FORMAT);
	}
	cur_skip(&c, 64);
	if (cur_end(&c) != 0) {
		free(s);
		return CE_FORMAT;
	}
	*serials = s;
	*n = cnt;
	return 0;
}

int crl_parse(const uint8_t *buf, size_t len, uint64_t *number, uint64_t **serials, size_t *n)
{
	uint8_t issuer[32];
	return crl_parse_h(buf, len, issuer, number, serials, n);
}

int crl_verify(const uint8_t *buf, size_t len, const uint8_t ta_pub[32], uint64_t *number, uint64_t **serials,
	size_t *n)
{
	uint8_t issuer[32], h[32];
	int r = crl_parse_h(buf, len, issuer, number, serials, n);

	if (r != 0)
		return r;
	pk_hash(ta_pub, h);
	if (CRYPTO_memcmp(h, issuer, 32) != 0 || pk_verify(ta_pub, buf, len - 64, buf + len - 64) != 0) {
		free(*serials);
		*serials = NULL;
		*n = 0;
		return CE_MAC;
	}
	return 0;
}
