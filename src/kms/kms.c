/*
 * kms.c - the operator KMS directory (kms.h): master key wrapping, the
 * encrypted state, chip orders, exports, the TA, revocation, signing CAS
 * client modules, the audit log.
 * References: RFC 7914 (scrypt), NIST SP 800-38D (GCM).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include "lib/bytes.h"
#include "cas/cert.h"
#include "crypto/kdf.h"
#include "kms/kms.h"
#include "cas/module.h"
#include "kms/p11.h"
#include "crypto/pk.h"
#include "kms/seal.h"
#include "lib/cursor.h"
#include "lib/fault.h"
#include "lib/log.h"
#include "crypto/pwseal.h"
#include "lib/util.h"

#define WRAP_MAGIC "CSTLWRP1"
#define P11W_MAGIC "CSTLP11W"
#define P11W_MAX 512
#define ORD_MAGIC "CSTLORD1"
#define ORD_HDR 28
#define STATE_AAD "castellan kms state v1"
#define STATE_VERSION 2 /* 2 added the audit anchor; 1 is still read */
#define STATE_MAX (256u * 1024u)

struct vendor {
	uint32_t id;
	uint8_t pub[32];
	uint8_t revoked;
};

struct kms {
	char *dir;
	uint8_t mk[32];       /* master key: secret */
	uint8_t sign_priv[32]; /* KMS / operator Ed25519: secret */
	uint8_t sign_pub[32];
	uint8_t has_ta;
	uint8_t ta_pub[32];
	uint32_t next_order;
	uint16_t cert_len;
	uint8_t cert[CERT_MAX_BYTES];
	uint64_t crl_number;
	size_t nvendors;
	struct vendor vendors[KMS_MAX_VENDORS];
	/* Audit anchor: the log must hold at least audit_n lines and line
	 * audit_n must hash to audit_head (0 lines: head 0^32). Kept in the
	 * encrypted state, so cutting lines off the log's end is caught. */
	uint64_t audit_n;
	uint8_t audit_head[32];
	bool progress;
};

/* ---- small helpers ---- */

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? CE_RANGE : 0;
}

static void progress(const struct kms *k, const char *what, size_t done, size_t total)
{
	if (!k->progress || total < 10000 || !isatty(2))
		return;
	if (done != total && done % (total / 100 ? total / 100 : 1) != 0)
		return;
	unsigned pct = (unsigned)(done * 100 / total), bars = pct / 4;
	char bar[26];
	for (unsigned i = 0; i < 25; i++)
		bar[i] = i < bars ? '#' : ' ';
	bar[25] = '\0';
	fprintf(stderr, "\r%s [%s] %3u%% %zu/%zu%s", what, bar, pct, done, total, done == total ? "\n" : "");
}

/* ---- wrapped secrets ---- */

/* A wrapped secret is a crypto/pwseal.h sealed file, magic "CSTLWRP1", with a
 * 2-byte ext holding the secret's length. */
int kms_wrap_encode(const uint8_t *secret, size_t len, const char *pass, unsigned log2n, uint8_t **out,
	size_t *out_len)
{
	uint8_t ext[2], *buf = NULL;
	size_t total = PWSEAL_BYTES(sizeof(ext), len);
	int r;

	*out = NULL;
	*out_len = 0;
	if (!secret || !pass || !*pass || len == 0 || len > 1024 || log2n < 10 || log2n > 20)
		return CE_ARG;
	if (!(buf = malloc(total)))
		return CE_NOMEM;
	put_be16(ext, (uint16_t)len);
	if ((r = pwseal_seal(WRAP_MAGIC, log2n, 8, 1, pass, ext, sizeof(ext), secret, len, buf, total)) != 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*out_len = total;
	return 0;
}

int kms_wrap_decode(const uint8_t *buf, size_t len, const char *pass, uint8_t *secret, size_t cap,
	size_t *secret_len)
{
	struct pwseal_view v;
	int r;

	*secret_len = 0;
	if (!buf || !pass || !*pass)
		return CE_ARG;
	if (pwseal_parse(buf, len, WRAP_MAGIC, 2, &v) != 0 || v.ct_len == 0)
		return CE_FORMAT;
	{
		struct cur e; /* ext: the secret's length u16 */
		uint16_t el = 0;

		cur_init(&e, v.ext, 2);
		if (cur_u16(&e, &el) != 0 || el != v.ct_len)
			return CE_FORMAT;
	}
	/* Bound the work a file can demand (keep it <= 256 MiB). */
	if (v.log2n < 10 || v.log2n > 18 || v.r < 1 || v.r > 16 || v.p != 1 ||
	    128ull * v.r * (1ull << v.log2n) > (256u << 20))
		return CE_FORMAT;
	if (v.ct_len > cap)
		return CE_RANGE;
	if ((r = pwseal_open(buf, &v, pass, secret)) == 0)
		*secret_len = v.ct_len;
	return r;
}

static int wrap_read(const char *path, const char *pass, uint8_t *secret, size_t want)
{
	uint8_t *buf = NULL;
	size_t len = 0, got = 0;
	int r;

	if ((r = file_read_all(path, 4096, &buf, &len)) != 0)
		return r == CE_LIMIT ? CE_FORMAT : r;
	r = kms_wrap_decode(buf, len, pass, secret, want, &got);
	free(buf);
	if (r == 0 && got != want) {
		OPENSSL_cleanse(secret, want);
		r = CE_FORMAT;
	}
	return r;
}

static int wrap_write(const char *path, const char *pass, unsigned log2n, const uint8_t *secret, size_t len)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int r;

	if ((r = kms_wrap_encode(secret, len, pass, log2n, &buf, &n)) != 0)
		return r;
	r = file_write_atomic(path, buf, n, 0600);
	free(buf);
	return r;
}

/* ---- state ---- */

static int state_save(const struct kms *k)
{
	size_t cap = 512 + CERT_MAX_BYTES + k->nvendors * 37, total;
	uint8_t *plain = malloc(cap), *file = NULL, nonce[12];
	char path[4096];
	struct wbuf w;
	int r = CE_NOMEM;

	if (!plain)
		return CE_NOMEM;
	wbuf_init(&w, plain, cap);
	wbuf_u8(&w, STATE_VERSION);
	wbuf_bytes(&w, k->sign_priv, 32);
	wbuf_u8(&w, k->has_ta);
	wbuf_bytes(&w, k->ta_pub, 32);
	wbuf_u32(&w, k->next_order);
	wbuf_u64(&w, k->crl_number);
	wbuf_u16(&w, k->cert_len);
	wbuf_bytes(&w, k->cert, k->cert_len);
	wbuf_u16(&w, (uint16_t)k->nvendors);
	for (size_t i = 0; i < k->nvendors; i++) {
		wbuf_u32(&w, k->vendors[i].id);
		wbuf_bytes(&w, k->vendors[i].pub, 32);
		wbuf_u8(&w, k->vendors[i].revoked);
	}
	wbuf_u64(&w, k->audit_n);
	wbuf_bytes(&w, k->audit_head, 32);
	if ((r = wbuf_status(&w)) != 0)
		goto out;
	total = 12 + w.len + 16;
	if (!(file = malloc(total))) {
		r = CE_NOMEM;
		goto out;
	}
	if (RAND_bytes(nonce, 12) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	memcpy(file, nonce, 12);
	if ((r = aes256_gcm(1, k->mk, nonce, (const uint8_t *)STATE_AAD, sizeof(STATE_AAD) - 1, plain, w.len, file + 12,
		     file + 12 + w.len)) != 0)
		goto out;
	if ((r = path_join(path, sizeof(path), k->dir, "state.bin")) != 0)
		goto out;
	r = file_write_atomic(path, file, total, 0600);
out:
	secret_free(plain, cap);
	free(file);
	return r;
}

static int state_load(struct kms *k)
{
	uint8_t *file = NULL, *plain = NULL, version = 0, tag[16];
	size_t len = 0;
	uint16_t nv = 0;
	char path[4096];
	struct cur c;
	int r;

	if ((r = path_join(path, sizeof(path), k->dir, "state.bin")) != 0)
		return r;
	if ((r = file_read_all(path, STATE_MAX, &file, &len)) != 0)
		return r;
	if (len < 12 + 16 + 1) {
		r = CE_FORMAT;
		goto out;
	}
	if (!(plain = malloc(len))) {
		r = CE_NOMEM;
		goto out;
	}
	/* nonce[12] | ciphertext | tag[16] */
	cur_init(&c, file, len);
	{
		const uint8_t *nonce = cur_ptr(&c, 12), *ct = cur_ptr(&c, len - 28);

		if (cur_bytes(&c, tag, 16) != 0 || cur_end(&c) != 0 || !nonce || !ct) {
			r = CE_FORMAT;
			goto out;
		}
		r = aes256_gcm(0, k->mk, nonce, (const uint8_t *)STATE_AAD, sizeof(STATE_AAD) - 1, ct, len - 28, plain,
			tag);
	}
	if (r != 0)
		goto out;
	cur_init(&c, plain, len - 28);
	cur_u8(&c, &version);
	if (!c.err && (version < 1 || version > STATE_VERSION))
		cur_fail(&c, CE_FORMAT);
	cur_bytes(&c, k->sign_priv, 32);
	cur_u8(&c, &k->has_ta);
	cur_bytes(&c, k->ta_pub, 32);
	cur_u32(&c, &k->next_order);
	cur_u64(&c, &k->crl_number);
	cur_u16(&c, &k->cert_len);
	cur_bytes_max(&c, k->cert, sizeof(k->cert), k->cert_len);
	cur_u16(&c, &nv);
	if (!c.err && nv > KMS_MAX_VENDORS)
		cur_fail(&c, CE_FORMAT);
	for (size_t i = 0; i < nv && !c.err; i++) {
		cur_u32(&c, &k->vendors[i].id);
		cur_bytes(&c, k->vendors[i].pub, 32);
		cur_u8(&c, &k->vendors[i].revoked);
	}
	k->nvendors = nv;
	if (version >= 2) {
		cur_u64(&c, &k->audit_n);
		cur_bytes(&c, k->audit_head, 32);
	}
	if ((r = cur_end(&c)) != 0) {
		r = CE_FORMAT;
		goto out;
	}
	r = pk_ed25519_public(k->sign_priv, k->sign_pub);
out:
	if (plain)
		secret_free(plain, len);
	free(file);
	return r;
}

/* ---- audit ---- */

static void audit_hash(const uint8_t prev[32], const char *body, size_t n, uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int l = 0;

	memset(out, 0, 32);
	if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(c, prev, 32) == 1 &&
	    EVP_DigestUpdate(c, body, n) == 1)
		(void)EVP_DigestFinal_ex(c, out, &l);
	EVP_MD_CTX_free(c);
}

/* kms.h. Any line that is not exactly the format audit_append writes
 * (numbers strict, the last line ended by '\n') is CE_MAC at *bad_line. */
int kms_audit_walk_buf(const uint8_t *buf, size_t len, size_t at_line, uint8_t at_hash[32], size_t *n,
	uint8_t head[32], size_t *bad_line)
{
	uint8_t prev[32] = {0}, h[32], want[32], stated[32];
	size_t line = 0;
	struct cur file;
	int r;

	*n = 0;
	*bad_line = 0;
	memset(head, 0, 32);
	memset(at_hash, 0, 32);
	cur_init(&file, buf, len);
	while (cur_left(&file) > 0) {
		struct cur ln, f_seq, f_at, f_ev;
		char hex[65], num[24];
		uint64_t seq = 0, at = 0;
		size_t body;

		line++;
		/* seq \t at \t event \t prev hash hex \t this hash hex \n; the hash
		 * covers "seq\tat\tevent" (audit_append writes no tab in events) */
		cur_until(&file, '\n', &ln);
		cur_until(&ln, '\t', &f_seq);
		cur_until(&ln, '\t', &f_at);
		cur_until(&ln, '\t', &f_ev);
		body = ln.err ? 0 : ln.off - 1;
		if (cur_text(&f_seq, num, sizeof(num)) != 0 || parse_u64(num, UINT64_MAX, &seq) != 0 || seq != line ||
		    cur_text(&f_at, num, sizeof(num)) != 0 || parse_u64(num, INT64_MAX, &at) != 0) {
			r = CE_MAC;
			goto bad;
		}
		cur_bytes(&ln, hex, 64);
		hex[64] = 0;
		if (ln.err || hex_decode(hex, stated, 32) != 0 || CRYPTO_memcmp(stated, prev, 32) != 0) {
			r = CE_MAC;
			goto bad;
		}
		{
			uint8_t tab = 0;

			cur_u8(&ln, &tab);
			if (tab != '\t')
				cur_fail(&ln, CE_FORMAT);
		}
		cur_bytes(&ln, hex, 64);
		if (cur_end(&ln) != 0 || hex_decode(hex, want, 32) != 0) {
			r = CE_MAC;
			goto bad;
		}
		audit_hash(prev, (const char *)ln.buf, body, h);
		if (CRYPTO_memcmp(h, want, 32) != 0) {
			r = CE_MAC;
			goto bad;
		}
		memcpy(prev, h, 32);
		if (line == at_line)
			memcpy(at_hash, h, 32);
	}
	*n = line;
	memcpy(head, prev, 32);
	return 0;
bad:
	*bad_line = line;
	return r;
}

static int audit_walk(const char *dir, size_t at_line, uint8_t at_hash[32], size_t *n, uint8_t head[32],
	size_t *bad_line)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char path[4096];
	int r;

	*n = 0;
	*bad_line = 0;
	memset(head, 0, 32);
	memset(at_hash, 0, 32);
	if ((r = path_join(path, sizeof(path), dir, "audit.log")) != 0)
		return r;
	r = file_read_all(path, KMS_AUDIT_MAX_BYTES, &buf, &len);
	if (r == CE_NOT_FOUND || (r != 0 && access(path, F_OK) != 0))
		return 0;
	if (r != 0)
		return r;
	r = kms_audit_walk_buf(buf, len, at_line, at_hash, n, head, bad_line);
	free(buf);
	return r;
}

int kms_audit_verify(const char *dir, size_t *n, size_t *bad_line)
{
	uint8_t head[32], at_hash[32];
	return audit_walk(dir, 0, at_hash, n, head, bad_line);
}

/* Walk and check the anchor (anchor_n, anchor_head): the log holds at
 * least anchor_n lines and line anchor_n is the anchored one. */
static int audit_walk_anchored(const char *dir, uint64_t anchor_n, const uint8_t anchor_head[32], size_t *n,
	uint8_t head[32], size_t *bad_line)
{
	uint8_t at_hash[32];
	int r;

	if (anchor_n > SIZE_MAX)
		return CE_RANGE;
	if ((r = audit_walk(dir, (size_t)anchor_n, at_hash, n, head, bad_line)) != 0)
		return r;
	if (*n < anchor_n) {
		LOG_ERR("kms", "audit log truncated: %zu entries, the KMS state anchors %llu", *n,
			(unsigned long long)anchor_n);
		*bad_line = *n + 1;
		return CE_MAC;
	}
	if (CRYPTO_memcmp(at_hash, anchor_head, 32) != 0) {
		LOG_ERR("kms", "audit log replaced: entry %llu is not the one the KMS state anchors",
			(unsigned long long)anchor_n);
		*bad_line = (size_t)anchor_n;
		return CE_MAC;
	}
	return 0;
}

/* Append one line after checking the chain and the anchor; the new line
 * count and head hash in *n_out, head_out. */
static int audit_append(const char *dir, const char *event, uint64_t anchor_n, const uint8_t anchor_head[32],
	size_t *n_out, uint8_t head_out[32])
{
	uint8_t head[32], h[32];
	char path[4096], line[48 + KMS_AUDIT_EVENT_MAX], hp[65], hh[65]; /* seq \t at \t event */
	size_t n = 0, bad = 0;
	int len, r;
	FILE *f;

	if (!event || strpbrk(event, "\t\n\r") || strlen(event) > KMS_AUDIT_EVENT_MAX)
		return CE_ARG;
	/* Refuse to extend a broken or cut chain. */
	if ((r = audit_walk_anchored(dir, anchor_n, anchor_head, &n, head, &bad)) != 0)
		return r;
	len = snprintf(line, sizeof(line), "%zu\t%llu\t%s", n + 1, (unsigned long long)time(NULL), event);
	if (len < 0 || (size_t)len >= sizeof(line))
		return CE_RANGE;
	audit_hash(head, line, (size_t)len, h);
	hex_encode(head, 32, hp);
	hex_encode(h, 32, hh);
	if ((r = path_join(path, sizeof(path), dir, "audit.log")) != 0)
		return r;
	if (!(f = fopen(path, "a")))
		return CE_IO;
	fprintf(f, "%s\t%s\t%s\n", line, hp, hh);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = CE_IO;
	if (fclose(f) != 0)
		r = CE_IO;
	if (r == 0) {
		*n_out = n + 1;
		memcpy(head_out, h, 32);
	}
	return r;
}

int kms_audit_append(const char *dir, const char *event)
{
	static const uint8_t zero[32];
	uint8_t head[32];
	size_t n = 0;

	return audit_append(dir, event, 0, zero, &n, head);
}

int kms_audit_check(const struct kms *k, size_t *n, size_t *bad_line)
{
	uint8_t head[32];

	return audit_walk_anchored(k->dir, k->audit_n, k->audit_head, n, head, bad_line);
}

static int audit(struct kms *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
/* Log one event, then move the anchor in the encrypted state to it. A
 * crash between the two leaves one unanchored line, which is accepted
 * and anchored by the next event. */
static int audit(struct kms *k, const char *fmt, ...)
{
	char ev[KMS_AUDIT_EVENT_MAX + 1]; /* longer is refused here, as audit_append would */
	uint8_t head[32];
	size_t n = 0;
	va_list ap;
	int len, r;

	va_start(ap, fmt);
	len = vsnprintf(ev, sizeof(ev), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(ev))
		return CE_RANGE;
	if ((r = audit_append(k->dir, ev, k->audit_n, k->audit_head, &n, head)) != 0)
		return r;
	k->audit_n = n;
	memcpy(k->audit_head, head, 32);
	return state_save(k);
}

/* ---- open / init ---- */

void kms_close(struct kms *k)
{
	if (!k)
		return;
	free(k->dir);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

void kms_set_progress(struct kms *k, bool on) { k->progress = on; }
void kms_public_key(const struct kms *k, uint8_t pub[32]) { memcpy(pub, k->sign_pub, 32); }

int kms_trust_root_hash(const struct kms *k, uint8_t out[32])
{
	if (!k->has_ta)
		return CE_NOT_FOUND;
	pk_hash(k->ta_pub, out);
	return 0;
}

static struct kms *kms_alloc(const char *dir)
{
	struct kms *k = calloc(1, sizeof(*k));

	if (k && !(k->dir = strdup(dir))) {
		free(k);
		k = NULL;
	}
	return k;
}

/* ---- master key on a PKCS#11 token ---- */

/* master.key when the master key is kept under a token key (docs/kms.md):
 * "CSTLP11W" | version u8 (1) | label_len u8 | token label | key id[16] |
 * iv[12] | len u16 | ciphertext[len] | tag[16]; AAD = all bytes before the
 * ciphertext; AES-256-GCM computed on the token. */
static int p11w_write(const char *path, const struct p11_config *cfg, const uint8_t mk[32])
{
	const char *token = cfg->token ? cfg->token : P11_DEFAULT_TOKEN;
	uint8_t buf[P11W_MAX], id[P11_KEY_ID_BYTES], iv[P11_IV_BYTES];
	struct p11 *p = NULL;
	bool made_key = false;
	size_t hdr;
	struct wbuf w;
	char label[64];
	int r;

	if (!*token || strlen(token) > P11_LABEL_MAX)
		return CE_ARG;
	if ((r = p11_open(cfg, &p)) != 0)
		return r;
	if (RAND_bytes(iv, sizeof(iv)) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	snprintf(label, sizeof(label), "castellan-kms-master-wrap");
	if ((r = p11_key_generate(p, label, id)) != 0)
		goto out;
	made_key = true;
	wbuf_init(&w, buf, sizeof(buf));
	wbuf_bytes(&w, P11W_MAGIC, 8);
	wbuf_u8(&w, 1);
	wbuf_u8(&w, (uint8_t)strlen(token));
	wbuf_bytes(&w, token, strlen(token));
	wbuf_bytes(&w, id, sizeof(id));
	wbuf_bytes(&w, iv, sizeof(iv));
	wbuf_u16(&w, 32);
	if ((r = wbuf_status(&w)) != 0)
		goto out;
	hdr = w.len;
	if ((r = p11_gcm_encrypt(p, id, iv, buf, hdr, mk, 32, buf + hdr)) != 0)
		goto out;
	if ((r = file_write_atomic(path, buf, hdr + 32 + 16, 0600)) != 0)
		goto out;
	made_key = false;
out:
	if (made_key && p11_key_destroy(p, id) != 0)
		LOG_WARN("kms", "could not remove the unused token key");
	p11_close(p);
	return r;
}

static int p11w_read(const char *path, const struct p11_config *cfg, uint8_t mk[32])
{
	uint8_t *buf = NULL;
	struct p11_wrapped w;
	struct p11_config c2;
	struct p11 *p = NULL;
	size_t len = 0;
	int r;

	if ((r = file_read_all(path, P11W_MAX, &buf, &len)) != 0)
		return r == CE_LIMIT ? CE_FORMAT : r;
	/* the one bounded parser of this file (fuzzed by fuzz/fuzz_p11.c) */
	if ((r = p11_wrapped_parse(buf, len, &w)) != 0)
		goto out;
	c2 = *cfg;
	c2.token = w.token; /* the token this KMS was created on */
	if ((r = p11_open(&c2, &p)) != 0)
		goto out;
	if ((r = p11_key_check(p, w.id)) == 0)
		r = p11_gcm_decrypt(p, w.id, w.iv, buf, w.aad_len, w.ct, w.ct_len + 16, mk);
	if (r == CE_NOT_FOUND)
		LOG_ERR("kms", "the master-key wrapping key is not on token \"%s\"", w.token);
out:
	p11_close(p);
	free(buf);
	return r;
}

int kms_master_kind(const char *dir, int *kind)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char path[4096];
	int r;

	*kind = 0;
	if ((r = path_join(path, sizeof(path), dir, "master.key")) != 0)
		return r;
	if ((r = file_read_all(path, P11W_MAX, &buf, &len)) != 0)
		return r == CE_LIMIT ? CE_FORMAT : r;
	if (len >= 8 && memcmp(buf, WRAP_MAGIC, 8) == 0)
		*kind = KMS_MASTER_PASSPHRASE;
	else if (len >= 8 && memcmp(buf, P11W_MAGIC, 8) == 0)
		*kind = KMS_MASTER_PKCS11;
	else
		r = CE_FORMAT;
	free(buf);
	return r;
}

/* One of pass / p11 is set. */
static int kms_create(const char *dir, const char *pass, unsigned scrypt_log2n, const struct p11_config *p11)
{
	char path[4096];
	struct kms *k = NULL;
	int r;

	if (!dir || (p11 ? !p11->pin : !pass || !*pass))
		return CE_ARG;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return CE_IO;
	if ((r = path_join(path, sizeof(path), dir, "master.key")) != 0)
		return r;
	if (access(path, F_OK) == 0)
		return CE_EXISTS;
	if (!(k = kms_alloc(dir)))
		return CE_NOMEM;
	if (RAND_bytes(k->mk, 32) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	if ((r = pk_ed25519_generate(k->sign_priv, k->sign_pub)) != 0)
		goto out;
	k->next_order = 1;
	if ((r = path_join(path, sizeof(path), dir, "orders")) != 0)
		goto out;
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		r = CE_IO;
		goto out;
	}
	if ((r = state_save(k)) != 0)
		goto out;
	if ((r = path_join(path, sizeof(path), dir, "master.key")) != 0)
		goto out;
	if ((r = p11 ? p11w_write(path, p11, k->mk) : wrap_write(path, pass, scrypt_log2n, k->mk, 32)) != 0)
		goto out;
	{
		char fp[17];
		hex_encode(k->sign_pub, 8, fp);
		r = audit(k, "init kms signing-key=%s master=%s", fp, p11 ? "pkcs11" : "passphrase");
	}
out:
	kms_close(k);
	return r;
}

int kms_init(const char *dir, const char *pass, unsigned scrypt_log2n)
{
	return kms_create(dir, pass, scrypt_log2n, NULL);
}

int kms_init_p11(const char *dir, const struct p11_config *cfg)
{
	return cfg ? kms_create(dir, NULL, 0, cfg) : CE_ARG;
}

static int kms_unlock(const char *dir, const char *pass, const struct p11_config *p11, struct kms **out)
{
	char path[4096];
	size_t n = 0, bad = 0;
	struct kms *k;
	int r, kind = 0;

	*out = NULL;
	if (!dir || (p11 ? !p11->pin : !pass))
		return CE_ARG;
	if ((r = kms_master_kind(dir, &kind)) != 0)
		return r;
	if (kind != (p11 ? KMS_MASTER_PKCS11 : KMS_MASTER_PASSPHRASE)) {
		LOG_ERR("kms", "%s: the master key is %s", dir,
			kind == KMS_MASTER_PKCS11 ? "on a PKCS#11 token (use --pkcs11)" : "passphrase-wrapped");
		return CE_UNSUPPORTED;
	}
	if (!(k = kms_alloc(dir)))
		return CE_NOMEM;
	if ((r = path_join(path, sizeof(path), dir, "master.key")) != 0 ||
	    (r = p11 ? p11w_read(path, p11, k->mk) : wrap_read(path, pass, k->mk, 32)) != 0 ||
	    (r = state_load(k)) != 0 || (r = kms_audit_check(k, &n, &bad)) != 0) {
		kms_close(k);
		return r;
	}
	*out = k;
	return 0;
}

int kms_open(const char *dir, const char *pass, struct kms **out)
{
	return kms_unlock(dir, pass, NULL, out);
}

int kms_open_p11(const char *dir, const struct p11_config *cfg, struct kms **out)
{
	*out = NULL;
	return cfg ? kms_unlock(dir, NULL, cfg, out) : CE_ARG;
}

/* ---- chip lists ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int kms_chips_parse(const uint8_t *buf, size_t len, uint64_t **ids, size_t *n, size_t *bad_line)
{
	size_t line = 0, cnt = 0, cap = 0;
	struct cur c;
	uint64_t *v = NULL;
	int r = 0;

	*ids = NULL;
	*n = 0;
	*bad_line = 0;
	if (!buf && len)
		return CE_ARG;
	cur_init(&c, buf, len);
	while (cur_left(&c) > 0) {
		struct cur ln, first;
		char tok[32];
		uint8_t b0 = 0;
		uint64_t id = 0;

		cur_line(&c, &ln);
		line++;
		/* one id a line; blank lines, # comments, a "chip_id" header, and
		 * spaces, tabs, a CR and trailing commas around the id are allowed */
		cur_trim(&ln, " \t", " \t,\r");
		first = ln;
		if (cur_left(&ln) == 0 || (cur_u8(&first, &b0) == 0 && b0 == '#'))
			continue;
		if (cur_text(&ln, tok, sizeof(tok)) != 0) {
			r = CE_FORMAT;
			goto bad;
		}
		if (line == 1 && strcmp(tok, "chip_id") == 0)
			continue;
		if (parse_u64(tok, UINT64_MAX, &id) != 0) {
			r = CE_FORMAT;
			goto bad;
		}
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			uint64_t *t;
			if (nc > SEAL_MAX_RECORDS)
				nc = SEAL_MAX_RECORDS;
			if (cnt >= nc) {
				r = CE_LIMIT;
				goto bad;
			}
			if (!(t = realloc(v, nc * sizeof(*v)))) {
				r = CE_NOMEM;
				goto bad;
			}
			v = t;
			cap = nc;
		}
		v[cnt++] = id;
	}
	if (cnt == 0) {
		r = CE_FORMAT;
		goto bad;
	}
	qsort(v, cnt, sizeof(*v), cmp_u64);
	for (size_t i = 1; i < cnt; i++)
		if (v[i] == v[i - 1]) {
			r = CE_EXISTS;
			line = 0;
			goto bad;
		}
	*ids = v;
	*n = cnt;
	return 0;
bad:
	*bad_line = line;
	free(v);
	return r;
}

int kms_chips_arg(const char *s, uint64_t **ids, size_t *n)
{
	uint8_t *buf = NULL;
	size_t len = 0, bad = 0;
	int r;

	*ids = NULL;
	*n = 0;
	if (s[0] == '@') {
		if ((r = file_read_all(s + 1, KMS_MAX_CHIPS_FILE_BYTES, &buf, &len)) != 0)
			return r;
	} else {
		len = strlen(s);
		if (!(buf = malloc(len + 1)))
			return CE_NOMEM;
		for (size_t i = 0; i < len; i++)
			buf[i] = s[i] == ',' ? '\n' : (uint8_t)s[i];
	}
	r = kms_chips_parse(buf, len, ids, n, &bad);
	free(buf);
	return r;
}

/* ---- orders ---- */

struct order {
	uint32_t number;
	size_t n;
	uint64_t *ids;
	uint8_t *roots; /* 16 * n, secret; NULL when only ids were read */
};

static void order_free(struct order *o)
{
	free(o->ids);
	if (o->roots)
		secret_free(o->roots, 16 * o->n);
	memset(o, 0, sizeof(*o));
}

static int order_path(const struct kms *k, uint32_t number, char *path, size_t cap)
{
	int n = snprintf(path, cap, "%s/orders/%06u.ord", k->dir, number);
	return n < 0 || (size_t)n >= cap ? CE_RANGE : 0;
}

/* Read an order; with_roots decrypts the root keys too. */
static int order_load(const struct kms *k, uint32_t number, bool with_roots, struct order *o)
{
	uint8_t *buf = NULL, magic[8], nonce[12], tag[16];
	const uint8_t *ct;
	uint32_t num = 0, cnt = 0;
	size_t len = 0;
	char path[4096];
	struct cur c;
	int r;

	memset(o, 0, sizeof(*o));
	if ((r = order_path(k, number, path, sizeof(path))) != 0)
		return r;
	if ((r = file_read_all(path, ORD_HDR + 24u * SEAL_MAX_RECORDS + 16, &buf, &len)) != 0)
		return r;
	cur_init(&c, buf, len);
	cur_bytes(&c, magic, 8);
	cur_u32(&c, &num);
	cur_u32(&c, &cnt);
	cur_bytes(&c, nonce, 12);
	if (c.err || memcmp(magic, ORD_MAGIC, 8) != 0 || num != number || cnt == 0 || cnt > SEAL_MAX_RECORDS ||
	    len != ORD_HDR + 24 * (size_t)cnt + 16) {
		r = CE_FORMAT;
		goto out;
	}
	o->number = num;
	o->n = cnt;
	if (!(o->ids = malloc(cnt * sizeof(uint64_t)))) {
		r = CE_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++)
		cur_u64(&c, &o->ids[i]);
	ct = cur_ptr(&c, 16 * (size_t)cnt); /* the roots, sealed; AAD: all before */
	cur_bytes(&c, tag, 16);
	if (cur_end(&c) != 0 || !ct) {
		r = CE_FORMAT;
		goto out;
	}
	if (with_roots) {
		if (!(o->roots = malloc(16 * (size_t)cnt))) {
			r = CE_NOMEM;
			goto out;
		}
		if ((r = aes256_gcm(0, k->mk, nonce, buf, ORD_HDR + 8 * (size_t)cnt, ct, 16 * (size_t)cnt, o->roots,
			     tag)) != 0)
			goto out;
	}
	r = 0;
out:
	free(buf);
	if (r != 0)
		order_free(o);
	return r;
}

int kms_order_import(struct kms *k, const uint8_t *csv, size_t len, uint32_t *order, size_t *count)
{
	uint64_t *ids = NULL;
	size_t n = 0, bad = 0, flen = 0;
	uint8_t *file = NULL, *roots = NULL, nonce[12];
	char path[4096];
	struct wbuf w;
	int r;

	*order = 0;
	*count = 0;
	if ((r = kms_chips_parse(csv, len, &ids, &n, &bad)) != 0) {
		LOG_ERR("kms", "chip list: line %zu: %s", bad, err_str(r));
		return r;
	}
	/* A chip must never get two root keys: check earlier orders. */
	for (uint32_t o = 1; o < k->next_order; o++) {
		struct order old;
		size_t i = 0, j = 0;
		if ((r = order_load(k, o, false, &old)) != 0)
			goto out;
		while (i < n && j < old.n) {
			if (ids[i] == old.ids[j]) {
				LOG_ERR("kms", "chip %016llx is already in order %u", (unsigned long long)ids[i], o);
				r = CE_EXISTS;
				break;
			}
			if (ids[i] < old.ids[j])
				i++;
			else
				j++;
		}
		order_free(&old);
		if (r != 0)
			goto out;
	}
	flen = ORD_HDR + 24 * n + 16;
	file = malloc(flen);
	roots = malloc(16 * n);
	if (!file || !roots) {
		r = CE_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i += 65536) {
		size_t m = n - i < 65536 ? n - i : 65536;
		if (RAND_bytes(roots + 16 * i, (int)(16 * m)) != 1) {
			r = CE_CRYPTO;
			goto out;
		}
		progress(k, "issuing root keys", i + m, n);
	}
	if (RAND_bytes(nonce, 12) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	wbuf_init(&w, file, flen);
	wbuf_bytes(&w, ORD_MAGIC, 8);
	wbuf_u32(&w, k->next_order);
	wbuf_u32(&w, (uint32_t)n);
	wbuf_bytes(&w, nonce, 12);
	for (size_t i = 0; i < n; i++)
		wbuf_u64(&w, ids[i]);
	if ((r = wbuf_status(&w)) != 0)
		goto out;
	if ((r = aes256_gcm(1, k->mk, nonce, file, w.len, roots, 16 * n, file + w.len, file + w.len + 16 * n)) != 0)
		goto out;
	/* Crash-safe order: log the issue first ("begin", anchored), write
	 * the order file, commit it (next_order in the state: an order exists
	 * only once this is saved), then log it done. A kill before the commit
	 * leaves a "begin" with no order (the next import takes the same
	 * number and its own "begin"); after it, the order has its "begin"
	 * line whatever happens to the "done" one. Never an order the log does
	 * not name. */
	if ((r = audit(k, "order import begin order=%u chips=%zu first=%016llx last=%016llx", k->next_order, n,
		       (unsigned long long)ids[0], (unsigned long long)ids[n - 1])) != 0)
		goto out;
	FAULT_POINT("kms.order.logged");
	if ((r = order_path(k, k->next_order, path, sizeof(path))) != 0 ||
	    (r = file_write_atomic(path, file, flen, 0600)) != 0)
		goto out;
	FAULT_POINT("kms.order.written");
	*order = k->next_order++;
	*count = n;
	if ((r = state_save(k)) != 0)
		goto out;
	FAULT_POINT("kms.order.saved");
	r = audit(k, "order import order=%u chips=%zu first=%016llx last=%016llx", *order, n,
		(unsigned long long)ids[0], (unsigned long long)ids[n - 1]);
out:
	free(ids);
	free(file);
	if (roots)
		secret_free(roots, 16 * n);
	return r;
}

int kms_blackbox_export(struct kms *k, uint32_t order, const uint8_t bb_pub[32], uint8_t **out, size_t *out_len)
{
	struct seal_header h = {.kind = SEAL_KIND_BLACKBOX, .order = order};
	struct seal_record *recs = NULL;
	struct order o = {0};
	char fid[33], bb[17];
	int r;

	*out = NULL;
	*out_len = 0;
	if ((r = kms_trust_root_hash(k, h.trust_root_hash)) != 0) {
		LOG_ERR("kms", "no trust authority yet: run kms operator certify first");
		return r;
	}
	if ((r = order_load(k, order, true, &o)) != 0)
		return r;
	if (!(recs = calloc(o.n, sizeof(*recs)))) {
		r = CE_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < o.n; i++) {
		recs[i].chip_id = o.ids[i];
		memcpy(recs[i].key, o.roots + 16 * i, 16);
	}
	h.count = (uint32_t)o.n;
	h.created_s = (uint64_t)time(NULL);
	memcpy(h.recipient_pub, bb_pub, 32);
	if (RAND_bytes(h.file_id, 16) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	if ((r = seal_build(&h, recs, k->sign_priv, out, out_len)) != 0)
		goto out;
	hex_encode(h.file_id, 16, fid);
	hex_encode(bb_pub, 8, bb);
	r = audit(k, "blackbox export order=%u chips=%zu file=%s to=%s", order, o.n, fid, bb);
out:
	seal_records_free(recs, o.n);
	order_free(&o);
	if (r != 0 && *out) {
		free(*out);
		*out = NULL;
		*out_len = 0;
	}
	return r;
}

static struct vendor *vendor_find(struct kms *k, uint32_t id)
{
	for (size_t i = 0; i < k->nvendors; i++)
		if (k->vendors[i].id == id)
			return &k->vendors[i];
	return NULL;
}

int kms_vendor_add(struct kms *k, uint32_t vendor_id, const uint8_t pub[32])
{
	char fp[17];
	int r;

	if (vendor_find(k, vendor_id))
		return CE_EXISTS;
	if (k->nvendors >= KMS_MAX_VENDORS)
		return CE_LIMIT;
	k->vendors[k->nvendors].id = vendor_id;
	memcpy(k->vendors[k->nvendors].pub, pub, 32);
	k->vendors[k->nvendors].revoked = 0;
	k->nvendors++;
	if ((r = state_save(k)) != 0)
		return r;
	hex_encode(pub, 8, fp);
	return audit(k, "vendor add id=0x%x pub=%s", vendor_id, fp);
}

int kms_revoke_vendor(struct kms *k, uint32_t vendor_id)
{
	struct vendor *v = vendor_find(k, vendor_id);
	int r;

	if (!v)
		return CE_NOT_FOUND;
	v->revoked = 1;
	if ((r = state_save(k)) != 0)
		return r;
	return audit(k, "vendor revoke id=0x%x", vendor_id);
}

static int cmp_rec(const void *a, const void *b)
{
	uint64_t x = ((const struct seal_record *)a)->chip_id, y = ((const struct seal_record *)b)->chip_id;
	return x < y ? -1 : x > y;
}

int kms_vendor_export(struct kms *k, uint32_t vendor_id, uint32_t order, uint8_t **out, size_t *out_len)
{
	struct seal_header h = {.kind = SEAL_KIND_VENDOR, .order = order, .vendor_id = vendor_id};
	struct seal_record *recs = NULL;
	struct kms_vkdf *kdf = NULL;
	struct vendor *v = vendor_find(k, vendor_id);
	size_t n = 0, cap = 0;
	char fid[33];
	int r;

	*out = NULL;
	*out_len = 0;
	if (!v)
		return CE_NOT_FOUND;
	if (v->revoked)
		return CE_BLOCKED;
	if ((r = kms_trust_root_hash(k, h.trust_root_hash)) != 0)
		return r;
	if ((r = kms_vkdf_new(&kdf)) != 0)
		return r;
	for (uint32_t o = order ? order : 1; o < (order ? order + 1 : k->next_order); o++) {
		struct order ord;
		struct seal_record *t;
		if ((r = order_load(k, o, true, &ord)) != 0)
			goto out;
		if (n + ord.n > SEAL_MAX_RECORDS || !(t = realloc(recs, (cap = n + ord.n) * sizeof(*recs)))) {
			order_free(&ord);
			r = n + ord.n > SEAL_MAX_RECORDS ? CE_LIMIT : CE_NOMEM;
			goto out;
		}
		recs = t;
		for (size_t i = 0; i < ord.n && r == 0; i++) {
			recs[n + i].chip_id = ord.ids[i];
			r = kms_vkdf_derive(kdf, ord.roots + 16 * i, vendor_id, recs[n + i].key);
			progress(k, "deriving vendor keys", i + 1, ord.n);
		}
		n += ord.n;
		order_free(&ord);
		if (r != 0)
			goto out;
	}
	if (n == 0) {
		r = CE_NOT_FOUND;
		goto out;
	}
	qsort(recs, n, sizeof(*recs), cmp_rec);
	h.count = (uint32_t)n;
	h.created_s = (uint64_t)time(NULL);
	memcpy(h.recipient_pub, v->pub, 32);
	if (RAND_bytes(h.file_id, 16) != 1) {
		r = CE_CRYPTO;
		goto out;
	}
	if ((r = seal_build(&h, recs, k->sign_priv, out, out_len)) != 0)
		goto out;
	hex_encode(h.file_id, 16, fid);
	r = audit(k, "vendor export id=0x%x order=%u chips=%zu file=%s", vendor_id, order, n, fid);
out:
	(void)cap;
	seal_records_free(recs, n);
	kms_vkdf_free(kdf);
	if (r != 0 && *out) {
		free(*out);
		*out = NULL;
		*out_len = 0;
	}
	return r;
}

/* ---- trust authority, certificates, revocation ---- */

int kms_ta_init(const char *path, const char *pass, unsigned scrypt_log2n, uint8_t pub[32])
{
	uint8_t priv[32];
	int r;

	if (access(path, F_OK) == 0)
		return CE_EXISTS;
	if ((r = pk_ed25519_generate(priv, pub)) != 0)
		return r;
	r = wrap_write(path, pass, scrypt_log2n, priv, 32);
	OPENSSL_cleanse(priv, sizeof(priv));
	return r;
}

int kms_ta_load(const char *path, const char *pass, uint8_t priv[32]) { return wrap_read(path, pass, priv, 32); }

int kms_operator_certify(struct kms *k, const uint8_t ta_priv[32], const char *name, uint32_t days, uint64_t serial,
	uint8_t *out, size_t *out_len)
{
	struct cert c = {.role = CERT_ROLE_OPERATOR, .serial = serial};
	uint64_t now = (uint64_t)time(NULL);
	int r;

	*out_len = 0;
	if (!name || strlen(name) > CERT_NAME_MAX || days == 0)
		return CE_ARG;
	memcpy(c.name, name, strlen(name) + 1);
	memcpy(c.subject_pub, k->sign_pub, 32);
	c.not_before = now;
	c.not_after = now + (uint64_t)days * 86400u;
	if ((r = cert_sign(&c, ta_priv, out, out_len)) != 0)
		return r;
	if ((r = pk_ed25519_public(ta_priv, k->ta_pub)) != 0)
		return r;
	k->has_ta = 1;
	memcpy(k->cert, out, *out_len);
	k->cert_len = (uint16_t)*out_len;
	if ((r = state_save(k)) != 0)
		return r;
	return audit(k, "operator certify serial=%llu name=%s days=%u", (unsigned long long)serial, c.name, days);
}

int kms_revoke_cert(struct kms *k, const uint8_t ta_priv[32], uint64_t serial, uint8_t **crl, size_t *crl_len)
{
	uint8_t *old = NULL, ta_pub[32];
	uint64_t *serials = NULL, num = 0, *all = NULL;
	size_t len = 0, n = 0;
	char path[4096];
	int r;

	*crl = NULL;
	*crl_len = 0;
	if ((r = pk_ed25519_public(ta_priv, ta_pub)) != 0 || (r = path_join(path, sizeof(path), k->dir, "crl.bin")) != 0)
		return r;
	if (file_read_all(path, 1u << 20, &old, &len) == 0) {
		r = crl_verify(old, len, ta_pub, &num, &serials, &n);
		free(old);
		if (r != 0)
			return r;
	}
	if (!(all = malloc((n + 1) * sizeof(*all)))) {
		free(serials);
		return CE_NOMEM;
	}
	if (n)
		memcpy(all, serials, n * sizeof(*all));
	all[n] = serial;
	free(serials);
	if ((r = crl_sign(ta_priv, num + 1, all, n + 1, crl, crl_len)) != 0)
		goto out;
	if ((r = file_write_atomic(path, *crl, *crl_len, 0644)) != 0)
		goto out;
	k->crl_number = num + 1;
	if ((r = state_save(k)) != 0)
		goto out;
	r = audit(k, "revoke cert serial=%llu crl=%llu", (unsigned long long)serial, (unsigned long long)(num + 1));
out:
	free(all);
	if (r != 0) {
		free(*crl);
		*crl = NULL;
		*crl_len = 0;
	}
	return r;
}

/* ---- CAS client modules ---- */

int kms_module_sign(struct kms *k, const struct module_manifest *m, const uint8_t *payload, size_t payload_len,
	uint8_t **out, size_t *out_len)
{
	struct module_payload pl;
	struct cert c;
	uint8_t *crl = NULL, h[32];
	size_t crl_len = 0;
	char path[4096], hh[17];
	int r;

	*out = NULL;
	*out_len = 0;
	if (!k || !m || !payload)
		return CE_ARG;
	if (payload_len == 0 || payload_len > MODULE_MAX_PAYLOAD)
		return CE_RANGE;
	if ((r = module_payload_parse(payload, payload_len, &pl)) != 0)
		return r;
	if (pl.vendor_id != m->vendor_id) {
		LOG_ERR("kms", "module payload names vendor 0x%x, the manifest 0x%x", pl.vendor_id, m->vendor_id);
		return CE_FORMAT;
	}
	if (!k->has_ta || k->cert_len == 0) {
		LOG_ERR("kms", "no operator certificate yet: run kms operator certify first");
		return CE_NOT_FOUND;
	}
	/* Refuse what a box would refuse: sign only under a certificate that
	 * is valid now and not in the TA's newest CRL this KMS holds. */
	if ((r = path_join(path, sizeof(path), k->dir, "crl.bin")) != 0)
		return r;
	r = file_read_all(path, 1u << 20, &crl, &crl_len);
	if (r == CE_NOT_FOUND) { /* no certificate revoked yet */
		crl = NULL;
		crl_len = 0;
	} else if (r != 0) {
		return r;
	}
	r = cert_verify(k->cert, k->cert_len, k->ta_pub, (uint64_t)time(NULL), crl, crl_len, &c);
	free(crl);
	if (r != 0) {
		LOG_ERR("kms", "operator certificate refused: %s", r == CE_BLOCKED ? "revoked by the CRL" : err_str(r));
		return r;
	}
	if (CRYPTO_memcmp(c.subject_pub, k->sign_pub, 32) != 0)
		return CE_MAC;
	if ((r = module_sign(m, payload, payload_len, k->ta_pub, k->cert, k->cert_len, k->sign_priv, out, out_len)) != 0)
		return r;
	SHA256(*out, *out_len, h);
	hex_encode(h, 8, hh);
	r = audit(k, "module sign vendor=0x%x version=%u rollback=%u cert=%llu bytes=%zu sha256=%s", m->vendor_id,
		m->version, m->rollback, (unsigned long long)c.serial, *out_len, hh);
	if (r != 0) {
		free(*out);
		*out = NULL;
		*out_len = 0;
	}
	return r;
}
