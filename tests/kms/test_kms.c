/*
 * test_kms.c - the operator KMS (src/kms): vendor-key KDF known answers,
 * OTP images, sealed key files, certificates, audit chain, black-box burn,
 * CAS client modules signed by the KMS (kms_module_sign, kms module sign).
 */
#include "lib/bytes.h"
#include "testutil.h"
#include <openssl/evp.h>
#include "cas/keys.h"
#include "crypto/kdf.h"
#include "kms/otp.h"
#include "lib/cursor.h"
#include "kms/blackbox.h"
#include "cas/cert.h"
#include "kms/kms.h"
#include "cas/module.h"
#include "crypto/pk.h"
#include "kms/seal.h"
#include "kms/kms_tool.h"
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Vectors computed independently with python3-cryptography's CMAC over the
 * SP 800-108 counter-mode input 00000001 | label | 00 | vendor_id BE | 00000080. */
static void kdf_kat(void **state)
{
	static const struct { const char *root; uint32_t vid; const char *kv; } v[] = {
		{"000102030405060708090a0b0c0d0e0f", 1, "2254d60b11b44f164bbe427c7fe14c09"},
		{"2b7e151628aed2a6abf7158809cf4f3c", 0x4ADC, "c67827164928832f59dea82cd8618ff0"},
		{"2b7e151628aed2a6abf7158809cf4f3c", 0x4ADD, "84879ad426ba2dcba84316a18c1ebe52"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t root[16], want[16], got[16];
		struct kms_vkdf *k = NULL;

		assert_int_equal(hex_decode(v[i].root, root, 16), 0);
		assert_int_equal(hex_decode(v[i].kv, want, 16), 0);
		assert_int_equal(kms_vendor_key(root, v[i].vid, got), 0);
		assert_memory_equal(got, want, 16);
		assert_int_equal(kms_vkdf_new(&k), 0);
		memset(got, 0, 16);
		assert_int_equal(kms_vkdf_derive(k, root, v[i].vid, got), 0);
		assert_memory_equal(got, want, 16);
		kms_vkdf_free(k);
	}
}

static void otp_roundtrip_and_bad(void **state)
{
	struct otp_image img = {.version = OTP_VERSION, .chip_id = 0x0102030405060708ull}, back;
	uint8_t buf[OTP_IMAGE_BYTES], bad[OTP_IMAGE_BYTES + 1];
	(void)state;
	memset(img.root_key, 0xA5, 16);
	memset(img.trust_root_hash, 0x3C, 32);
	assert_int_equal(otp_encode(&img, buf), 0);
	assert_memory_equal(buf, "CSTLOTP1", 8);
	assert_int_equal(otp_decode(buf, sizeof(buf), &back), 0);
	assert_memory_equal(&back, &img, sizeof(img));
	/* bad-input table */
	assert_int_equal(otp_decode(buf, sizeof(buf) - 1, &back), CE_FORMAT);
	memcpy(bad, buf, sizeof(buf));
	bad[OTP_IMAGE_BYTES] = 0;
	assert_int_equal(otp_decode(bad, sizeof(bad), &back), CE_FORMAT);
	memcpy(bad, buf, sizeof(buf));
	bad[0] ^= 1;
	assert_int_equal(otp_decode(bad, OTP_IMAGE_BYTES, &back), CE_FORMAT);
	memcpy(bad, buf, sizeof(buf));
	bad[8] = 2;
	assert_int_equal(otp_decode(bad, OTP_IMAGE_BYTES, &back), CE_UNSUPPORTED);
	for (size_t i = 9; i < OTP_IMAGE_BYTES; i++) {
		memcpy(bad, buf, sizeof(buf));
		bad[i] ^= 0x10;
		assert_int_equal(otp_decode(bad, OTP_IMAGE_BYTES, &back), CE_CRC);
		assert_int_equal(back.chip_id, 0);
	}
	assert_int_equal(otp_decode(NULL, 0, &back), CE_FORMAT);
}


/* A fresh KMS with a TA, one order of 5 chips, vendors A and B. */
struct fx {
	char dir[256], kdir[300], ledger[300], otp[300];
	struct kms *k;
	uint8_t ta_priv[32], ta_pub[32], kms_pub[32], bb_priv[32], bb_pub[32];
	uint8_t va_priv[32], va_pub[32], vb_priv[32], vb_pub[32];
};

static struct fx *fx_new(void)
{
	static const char csv[] = "chip_id\n0x1001\n0x1002\r\n0x1003\n# comment\n\n4100\n0x1005\n";
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t cert[CERT_MAX_BYTES];
	size_t len = 0, n = 0;
	uint32_t order = 0;

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_kms.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->kdir, sizeof(f->kdir), "%s/kms", f->dir);
	snprintf(f->ledger, sizeof(f->ledger), "%s/ledger", f->dir);
	snprintf(f->otp, sizeof(f->otp), "%s/otp", f->dir);
	assert_int_equal(kms_init(f->kdir, "pw", 10), 0);
	assert_int_equal(kms_init(f->kdir, "pw", 10), CE_EXISTS);
	assert_int_equal(kms_open(f->kdir, "wrong", &f->k), CE_PASSPHRASE);
	assert_int_equal(kms_open(f->kdir, "pw", &f->k), 0);
	kms_public_key(f->k, f->kms_pub);
	assert_int_equal(pk_ed25519_generate(f->ta_priv, f->ta_pub), 0);
	assert_int_equal(kms_operator_certify(f->k, f->ta_priv, "Operator", 30, 77, cert, &len), 0);
	assert_int_equal(kms_order_import(f->k, (const uint8_t *)csv, sizeof(csv) - 1, &order, &n), 0);
	assert_int_equal(order, 1);
	assert_int_equal(n, 5);
	assert_int_equal(pk_x25519_generate(f->bb_priv, f->bb_pub), 0);
	assert_int_equal(pk_x25519_generate(f->va_priv, f->va_pub), 0);
	assert_int_equal(pk_x25519_generate(f->vb_priv, f->vb_pub), 0);
	assert_int_equal(kms_vendor_add(f->k, 0xA, f->va_pub), 0);
	assert_int_equal(kms_vendor_add(f->k, 0xB, f->vb_pub), 0);
	assert_int_equal(kms_vendor_add(f->k, 0xB, f->vb_pub), CE_EXISTS);
	return f;
}

static void fx_free(struct fx *f)
{
	char cmd[512];
	kms_close(f->k);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return 1;
	return 0;
}

/* The whole story: burn, derive from OTP, compare with the vendor file;
 * every refusal of the black box; vendor A's file says nothing of B. */
static void blackbox_and_vendor_story(void **state)
{
	struct fx *f = fx_new();
	uint8_t *bb = NULL, *va = NULL, *vb = NULL, *alt = NULL, wrong[32], wrong_pub[32];
	size_t bbl = 0, val = 0, vbl = 0, burned = 0;
	struct seal_header h;
	struct seal_record *ra = NULL, *rb = NULL;
	const uint64_t want[] = {0x1001, 0x1004}, unknown[] = {0x1001, 0x9999};
	char path[400];
	(void)state;

	assert_int_equal(kms_blackbox_export(f->k, 1, f->bb_pub, &bb, &bbl), 0);
	assert_int_equal(bbl, SEAL_FILE_BYTES(5));
	assert_int_equal(kms_blackbox_export(f->k, 2, f->bb_pub, &alt, &val), CE_NOT_FOUND);
	/* wrong black-box key, wrong signer, altered bytes: nothing written */
	assert_int_equal(pk_x25519_generate(wrong, wrong_pub), 0);
	assert_int_equal(blackbox_burn(bb, bbl, f->kms_pub, wrong, want, 2, f->otp, f->ledger, &burned), CE_PASSPHRASE);
	assert_int_equal(blackbox_burn(bb, bbl, f->ta_pub, f->bb_priv, want, 2, f->otp, f->ledger, &burned), CE_MAC);
	alt = malloc(bbl);
	for (size_t i = 0; i < bbl; i += 7) {
		memcpy(alt, bb, bbl);
		alt[i] ^= 0x01;
		int r = blackbox_burn(alt, bbl, f->kms_pub, f->bb_priv, want, 2, f->otp, f->ledger, &burned);
		assert_true(r == CE_MAC || r == CE_FORMAT || r == CE_RANGE || r == CE_UNSUPPORTED);
		assert_int_equal(burned, 0);
	}
	free(alt);
	alt = NULL;
	/* a chip it was not sent */
	assert_int_equal(blackbox_burn(bb, bbl, f->kms_pub, f->bb_priv, unknown, 2, f->otp, f->ledger, &burned),
		CE_NOT_FOUND);
	assert_int_equal(access(f->ledger, F_OK), -1);
	/* the real burn, then the replay */
	assert_int_equal(blackbox_burn(bb, bbl, f->kms_pub, f->bb_priv, want, 2, f->otp, f->ledger, &burned), 0);
	assert_int_equal(burned, 2);
	assert_int_equal(blackbox_burn(bb, bbl, f->kms_pub, f->bb_priv, want, 1, f->otp, f->ledger, &burned), CE_REPLAY);

	/* vendor files: A's file opens only with A's key, and gives A's K_v */
	assert_int_equal(kms_vendor_export(f->k, 0xA, 0, &va, &val), 0);
	assert_int_equal(kms_vendor_export(f->k, 0xB, 1, &vb, &vbl), 0);
	assert_int_equal(kms_vendor_export(f->k, 0xC, 0, &alt, &bbl), CE_NOT_FOUND);
	assert_int_equal(seal_open(va, val, f->kms_pub, f->vb_priv, &h, &ra), CE_PASSPHRASE);
	assert_int_equal(seal_open(va, val, f->kms_pub, f->va_priv, &h, &ra), 0);
	assert_int_equal(h.vendor_id, 0xA);
	assert_int_equal(seal_open(vb, vbl, f->kms_pub, f->vb_priv, &h, &rb), 0);
	for (size_t c = 0; c < 2; c++) {
		struct otp_image img;
		uint8_t ka[16], kb[16], th[32];
		snprintf(path, sizeof(path), "%s/%016llx.otp", f->otp, (unsigned long long)want[c]);
		assert_int_equal(otp_read_file(path, &img), 0);
		assert_int_equal(img.chip_id, want[c]);
		pk_hash(f->ta_pub, th);
		assert_memory_equal(img.trust_root_hash, th, 32);
		/* what the chip derives from its OTP equals what each vendor got */
		assert_int_equal(kms_vendor_key(img.root_key, 0xA, ka), 0);
		assert_int_equal(kms_vendor_key(img.root_key, 0xB, kb), 0);
		size_t i = want[c] == 0x1001 ? 0 : 3;
		assert_int_equal(ra[i].chip_id, want[c]);
		assert_memory_equal(ra[i].key, ka, 16);
		assert_memory_equal(rb[i].key, kb, 16);
		/* A's keys are not B's, and no root key is in any exported file */
		assert_memory_not_equal(ka, kb, 16);
		for (size_t j = 0; j < 5; j++) {
			assert_memory_not_equal(ra[j].key, kb, 16);
			assert_memory_not_equal(rb[j].key, ka, 16);
		}
		assert_false(contains(bb, SEAL_FILE_BYTES(5), img.root_key, 16));
		assert_false(contains(va, val, img.root_key, 16));
		assert_false(contains(vb, vbl, img.root_key, 16));
		assert_false(contains(va, val, ka, 16));
		otp_image_wipe(&img);
	}
	/* the keystore files hold no root key in clear either */
	{
		size_t ol = 0;
		uint8_t *ord;
		struct otp_image img;
		snprintf(path, sizeof(path), "%s/orders/000001.ord", f->kdir);
		ord = tu_read(path, &ol);
		snprintf(path, sizeof(path), "%s/%016llx.otp", f->otp, 0x1001ull);
		assert_int_equal(otp_read_file(path, &img), 0);
		assert_false(contains(ord, ol, img.root_key, 16));
		free(ord);
	}
	/* revoked vendor: no more exports */
	assert_int_equal(kms_revoke_vendor(f->k, 0xA), 0);
	assert_int_equal(kms_vendor_export(f->k, 0xA, 0, &alt, &bbl), CE_BLOCKED);
	/* the same chip cannot be ordered twice */
	{
		uint32_t o = 0;
		size_t n = 0;
		assert_int_equal(kms_order_import(f->k, (const uint8_t *)"0x2000\n0x1003\n", 14, &o, &n), CE_EXISTS);
	}
	seal_records_free(ra, 5);
	seal_records_free(rb, 5);
	free(bb);
	free(va);
	free(vb);
	fx_free(f);
}

static void certs_and_crl(void **state)
{
	struct fx *f = fx_new();
	uint8_t cert[CERT_MAX_BYTES], *crl = NULL, other[32], opub[32];
	size_t len = 0, crl_len = 0;
	struct cert c;
	uint64_t now;
	(void)state;

	assert_int_equal(kms_operator_certify(f->k, f->ta_priv, "Operator", 30, 78, cert, &len), 0);
	/* Checked at the certificate's own times, not at a clock read before
	 * it was issued (a second boundary between the two made it "not yet
	 * valid"): valid from not_before to not_after inclusive. */
	assert_int_equal(cert_parse(cert, len, &c), 0);
	now = c.not_before;
	assert_int_equal(c.not_after, now + 30 * 86400ull);
	assert_int_equal(cert_verify(cert, len, f->ta_pub, now, NULL, 0, &c), 0);
	assert_memory_equal(c.subject_pub, f->kms_pub, 32);
	assert_int_equal(cert_verify(cert, len, f->ta_pub, now - 1, NULL, 0, &c), CE_EXPIRED);
	assert_int_equal(cert_verify(cert, len, f->ta_pub, now + 30 * 86400ull, NULL, 0, &c), 0);
	assert_int_equal(cert_verify(cert, len, f->ta_pub, now + 30 * 86400ull + 1, NULL, 0, &c), CE_EXPIRED);
	assert_int_equal(cert_verify(cert, len, f->ta_pub, now + 31 * 86400ull, NULL, 0, &c), CE_EXPIRED);
	assert_int_equal(pk_ed25519_generate(other, opub), 0);
	assert_int_equal(cert_verify(cert, len, opub, now, NULL, 0, &c), CE_MAC);
	cert[20] ^= 1;
	assert_int_equal(cert_verify(cert, len, f->ta_pub, now, NULL, 0, &c), CE_MAC);
	cert[20] ^= 1;
	assert_int_equal(kms_revoke_cert(f->k, f->ta_priv, 78, &crl, &crl_len), 0);
	assert_int_equal(cert_verify(cert, len, f->ta_pub, now, crl, crl_len, &c), CE_BLOCKED);
	crl[crl_len - 1] ^= 1;
	assert_int_equal(cert_verify(cert, len, f->ta_pub, now, crl, crl_len, &c), CE_MAC);
	free(crl);
	/* bad certificate table */
	assert_int_equal(cert_parse(cert, len - 1, &c), CE_FORMAT);
	assert_int_equal(cert_parse(cert, 10, &c), CE_FORMAT);
	cert[98] = 0; /* name length 0 */
	assert_int_equal(cert_parse(cert, len, &c), CE_FORMAT);
	cert[98] = 200;
	assert_int_equal(cert_parse(cert, len, &c), CE_FORMAT);
	fx_free(f);
}

static void audit_chain(void **state)
{
	struct fx *f = fx_new();
	size_t n = 0, bad = 0, len = 0;
	char path[400];
	uint8_t *buf;
	(void)state;

	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(n, 6); /* init, certify, order begin and done, 2 vendors */
	snprintf(path, sizeof(path), "%s/audit.log", f->kdir);
	buf = tu_read(path, &len);
	/* tamper with one character of the third entry's event */
	{
		uint8_t *p = buf;
		for (int l = 0; l < 2; l++)
			p = (uint8_t *)memchr(p, '\n', len - (size_t)(p - buf)) + 1;
		p[15] ^= 0x01;
		assert_int_equal(file_write_atomic(path, buf, len, 0600), 0);
		assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), CE_MAC);
		assert_int_equal(bad, 3);
		assert_int_equal(kms_audit_append(f->kdir, "more"), CE_MAC);
		p[15] ^= 0x01;
	}
	/* drop the first line: the chain no longer starts at zero */
	{
		size_t skip = 0;
		while (skip < len && buf[skip] != '\n')
			skip++;
		skip++;
		assert_int_equal(file_write_atomic(path, buf + skip, len - skip, 0600), 0);
		assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), CE_MAC);
		assert_int_equal(bad, 1);
	}
	assert_int_equal(file_write_atomic(path, buf, len, 0600), 0);
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(kms_audit_append(f->kdir, "bad\tevent"), CE_ARG);
	free(buf);
	fx_free(f);
}

/* audit_walk reads the log through the cursor and takes only the format
 * audit_append writes: lines forged with a correct hash chain but a broken
 * format are refused at their line, and a well-formed forged line passes
 * (so the forging below is right). The fixture's log has 6 lines (its
 * order logs begin and done), the forged one is line 7. */
static void audit_forged_lines(void **state)
{
	static const struct { const char *body; int want; } cases[] = {
		{ "7\t1700000000\tok", 0 },
		{ "7\t1700000000\tev\tx", CE_MAC },         /* a tab in the event */
		{ "7\t-1\tev", CE_MAC },                    /* a negative time */
		{ "7\t17x\tev", CE_MAC },                   /* a time that is not a number */
		{ "7\t99999999999999999999\tev", CE_MAC },  /* a time past INT64_MAX */
		{ "+7\t1\tev", CE_MAC },                    /* a sign before seq */
		{ " 7\t1\tev", CE_MAC },                    /* a space before seq */
		{ "7\t1", CE_MAC },                          /* two fields */
		{ "8\t1\tev", CE_MAC },                     /* seq not the line number */
		{ "", CE_MAC },                               /* an empty line */
	};
	struct fx *f = fx_new();
	size_t n = 0, bad = 0, len = 0;
	char path[400];
	uint8_t *buf;
	(void)state;

	snprintf(path, sizeof(path), "%s/audit.log", f->kdir);
	buf = tu_read(path, &len);
	assert_true(len > 65 && buf[len - 1] == '\n');
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t prev[32], h[32];
		char hp[65], hh[65], line[512], *all;
		unsigned int hl = 0;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		int ll;

		memcpy(hh, buf + len - 65, 64); /* the head: the last line's hash */
		hh[64] = 0;
		assert_int_equal(hex_decode(hh, prev, 32), 0);
		assert_non_null(md);
		assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
		assert_int_equal(EVP_DigestUpdate(md, prev, 32), 1);
		assert_int_equal(EVP_DigestUpdate(md, cases[i].body, strlen(cases[i].body)), 1);
		assert_int_equal(EVP_DigestFinal_ex(md, h, &hl), 1);
		EVP_MD_CTX_free(md);
		hex_encode(prev, 32, hp);
		hex_encode(h, 32, hh);
		ll = snprintf(line, sizeof(line), "%s\t%s\t%s\n", cases[i].body, hp, hh);
		all = malloc(len + (size_t)ll);
		assert_non_null(all);
		memcpy(all, buf, len);
		memcpy(all + len, line, (size_t)ll);
		assert_int_equal(file_write_atomic(path, all, len + (size_t)ll, 0600), 0);
		if (kms_audit_verify(f->kdir, &n, &bad) != cases[i].want || (cases[i].want && bad != 7) ||
		    (!cases[i].want && n != 7))
			fail_msg("case %zu: %s", i, cases[i].body);
		/* the same line without its final newline is refused too */
		assert_int_equal(file_write_atomic(path, all, len + (size_t)ll - 1, 0600), 0);
		assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), CE_MAC);
		assert_int_equal(bad, 7);
		free(all);
	}
	assert_int_equal(file_write_atomic(path, buf, len, 0600), 0);
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	free(buf);
	fx_free(f);
}

/* The anchor in the encrypted state catches what the chain alone cannot:
 * lines cut off the end, a deleted log, a log rebuilt from scratch. */
static void audit_anchor(void **state)
{
	struct fx *f = fx_new();
	struct kms *k = NULL;
	size_t n = 0, bad = 0, len = 0, cut;
	char path[400];
	uint8_t *buf;
	(void)state;

	assert_int_equal(kms_audit_check(f->k, &n, &bad), 0);
	assert_int_equal(n, 6);
	snprintf(path, sizeof(path), "%s/audit.log", f->kdir);
	buf = tu_read(path, &len);
	/* cut the last line: still a valid chain, but not the anchored one */
	for (cut = len - 1; cut > 0 && buf[cut - 1] != '\n'; cut--)
		;
	assert_int_equal(file_write_atomic(path, buf, cut, 0600), 0);
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(n, 5);
	assert_int_equal(kms_audit_check(f->k, &n, &bad), CE_MAC);
	assert_int_equal(bad, 6);
	assert_int_equal(kms_open(f->kdir, "pw", &k), CE_MAC);
	assert_null(k);
	/* deleted log */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(kms_open(f->kdir, "pw", &k), CE_MAC);
	/* a forged log of the same length */
	for (int i = 0; i < 6; i++)
		assert_int_equal(kms_audit_append(f->kdir, "forged"), 0);
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(kms_audit_check(f->k, &n, &bad), CE_MAC);
	assert_int_equal(bad, 6);
	assert_int_equal(kms_open(f->kdir, "pw", &k), CE_MAC);
	/* the real log back; one unanchored line after it (a crash between
	 * the append and the state save) is accepted, then anchored */
	assert_int_equal(file_write_atomic(path, buf, len, 0600), 0);
	assert_int_equal(kms_audit_append(f->kdir, "unanchored"), 0);
	assert_int_equal(kms_open(f->kdir, "pw", &k), 0);
	assert_int_equal(kms_revoke_vendor(k, 0xB), 0);
	kms_close(k);
	k = NULL;
	free(buf);
	buf = tu_read(path, &len);
	for (cut = len - 1; cut > 0 && buf[cut - 1] != '\n'; cut--)
		;
	assert_int_equal(file_write_atomic(path, buf, cut, 0600), 0);
	assert_int_equal(kms_open(f->kdir, "pw", &k), CE_MAC);
	assert_int_equal(file_write_atomic(path, buf, len, 0600), 0);
	assert_int_equal(kms_open(f->kdir, "pw", &k), 0);
	assert_int_equal(kms_audit_check(k, &n, &bad), 0);
	assert_int_equal(n, 8);
	kms_close(k);
	free(buf);
	fx_free(f);
}

/* `kms vendor open`: the vendor's side of a vendor key file, and every
 * refusal; plus `kms audit verify` seeing a cut log through the CLI. */
static void vendor_open_cli(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	struct fx *f;
	uint8_t *file = NULL, *bbf = NULL, *csv;
	struct seal_header h;
	struct seal_record *recs = NULL;
	size_t len = 0, bbl = 0, cl = 0;
	char d[300], line[64], kh[33];
	(void)state;

	if (!bin)
		skip();
	f = fx_new();
	snprintf(d, sizeof(d), "%s", f->dir);
	assert_int_equal(kms_vendor_export(f->k, 0xA, 0, &file, &len), 0);
	assert_int_equal(kms_blackbox_export(f->k, 1, f->bb_pub, &bbf, &bbl), 0);
	assert_int_equal(tu_run("mkdir -p %s/v", d), 0);
	{
		char p[400];
		snprintf(p, sizeof(p), "%s/v/a.seal", d);
		assert_int_equal(file_write_atomic(p, file, len, 0644), 0);
		snprintf(p, sizeof(p), "%s/v/bb.seal", d);
		assert_int_equal(file_write_atomic(p, bbf, bbl, 0644), 0);
		file[len - 100] ^= 1;
		snprintf(p, sizeof(p), "%s/v/alt.seal", d);
		assert_int_equal(file_write_atomic(p, file, len, 0644), 0);
		snprintf(p, sizeof(p), "%s/v/short.seal", d);
		assert_int_equal(file_write_atomic(p, file, 100, 0644), 0);
		file[len - 100] ^= 1;
		snprintf(p, sizeof(p), "%s/v/a.key", d);
		assert_int_equal(pk_write_file(p, f->va_priv, 1), 0);
		snprintf(p, sizeof(p), "%s/v/b.key", d);
		assert_int_equal(pk_write_file(p, f->vb_priv, 1), 0);
		snprintf(p, sizeof(p), "%s/v/bb.key", d);
		assert_int_equal(pk_write_file(p, f->bb_priv, 1), 0);
		snprintf(p, sizeof(p), "%s/v/kms.pub", d);
		assert_int_equal(pk_write_file(p, f->kms_pub, 0), 0);
		snprintf(p, sizeof(p), "%s/v/ta.pub", d);
		assert_int_equal(pk_write_file(p, f->ta_pub, 0), 0);
	}
	assert_int_equal(tu_run("%s kms vendor open --help | grep -q 'vendor open'", bin), 0);
	assert_int_equal(tu_run("%s kms vendor open --file %s/v/a.seal --key %s/v/a.key --kms-pub %s/v/kms.pub --id 0xA "
		"--out %s/v/a.csv > %s/v/open.txt", bin, d, d, d, d, d), 0);
	assert_int_equal(tu_run("grep -q 'vendor 0xa, order 0 (all), 5 chips' %s/v/open.txt", d), 0);
	assert_int_equal(tu_run("grep -q 'signature verified' %s/v/open.txt", d), 0);
	/* the CSV holds exactly what seal_open gives the vendor */
	assert_int_equal(seal_open(file, len, f->kms_pub, f->va_priv, &h, &recs), 0);
	{
		char p[400];
		snprintf(p, sizeof(p), "%s/v/a.csv", d);
		csv = tu_read(p, &cl);
	}
	assert_int_equal(cl, 12 + 5 * 52);
	assert_memory_equal(csv, "chip_id,key\n", 12);
	for (size_t i = 0; i < 5; i++) {
		hex_encode(recs[i].key, 16, kh);
		snprintf(line, sizeof(line), "0x%016llx,%s\n", (unsigned long long)recs[i].chip_id, kh);
		assert_memory_equal(csv + 12 + 52 * i, line, 52);
	}
	/* refusals (exit 1) and usage errors (exit 2) */
	{
		static const struct { const char *file, *key, *pub, *extra; } bad[] = {
			{"a.seal", "b.key", "kms.pub", ""},              /* other vendor's key */
			{"a.seal", "a.key", "ta.pub", ""},               /* other signer */
			{"alt.seal", "a.key", "kms.pub", ""},            /* altered */
			{"short.seal", "a.key", "kms.pub", ""},          /* truncated */
			{"bb.seal", "bb.key", "kms.pub", ""},            /* a black-box file */
			{"a.seal", "a.key", "kms.pub", "--id 0xB"},      /* another vendor id */
			{"a.seal", "a.key", "kms.pub", "--out"},         /* output exists */
			{"none", "a.key", "kms.pub", ""},                /* no file */
			{"a.seal", "a.seal", "kms.pub", ""},             /* not a key file */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const char *extra = bad[i].extra;
			char out[400] = "";
			if (strcmp(extra, "--out") == 0)
				snprintf(out, sizeof(out), "%s/v/a.csv", d);
			if (tu_run("%s kms vendor open --file %s/v/%s --key %s/v/%s --kms-pub %s/v/%s %s %s >/dev/null 2>&1", bin,
				d, bad[i].file, d, bad[i].key, d, bad[i].pub, extra, out) != 1)
				fail_msg("vendor open case %zu not refused", i);
		}
		assert_int_equal(tu_run("%s kms vendor open --file %s/v/a.seal --key %s/v/a.key 2>/dev/null", bin, d, d), 2);
	}
	/* audit verify through the CLI: the chain alone cannot see a cut
	 * log, the anchor (with the passphrase) can */
	assert_int_equal(tu_run("printf 'pw\\n' > %s/v/pf && chmod 600 %s/v/pf", d, d), 0);
	assert_int_equal(tu_run("%s kms audit verify --dir %s --passphrase-file %s/v/pf | grep -q 'anchor: intact'", bin,
		f->kdir, d), 0);
	assert_int_equal(tu_run("sed -i '$d' %s/audit.log", f->kdir), 0);
	assert_int_equal(tu_run("env -u " KEYSTORE_PASSPHRASE_ENV " %s kms audit verify --dir %s | grep -q 'anchor not checked'",
		bin, f->kdir), 0);
	assert_int_equal(tu_run("%s kms audit verify --dir %s --passphrase-file %s/v/pf >/dev/null 2>&1", bin, f->kdir,
		d), 1);
	assert_int_equal(tu_run("%s kms pub --dir %s --passphrase-file %s/v/pf 2>&1 | grep -q 'truncated'", bin, f->kdir,
		d), 0);
	seal_records_free(recs, h.count);
	free(csv);
	free(file);
	free(bbf);
	fx_free(f);
}

/* A ladder payload for vendor vid. */
static size_t ladder_payload(uint32_t vid, const char *keys, uint8_t *buf, size_t cap)
{
	struct module_payload p = {.kind = MODULE_KIND_LADDER, .vendor_id = vid, .ca_system_id = 0x4ADC};
	size_t len = 0;

	snprintf(p.keys_file, sizeof(p.keys_file), "%s", keys);
	assert_int_equal(module_payload_encode(&p, buf, cap, &len), 0);
	return len;
}

/* The last line of dir/audit.log (static buffer). */
static const char *audit_last(const char *dir)
{
	static char last[1024];
	char path[400];
	uint8_t *buf;
	size_t len = 0, a;

	snprintf(path, sizeof(path), "%s/audit.log", dir);
	buf = tu_read(path, &len);
	assert_true(len > 1 && buf[len - 1] == '\n');
	for (a = len - 1; a > 0 && buf[a - 1] != '\n'; a--)
		;
	assert_true(len - a < sizeof(last));
	memcpy(last, buf + a, len - a - 1);
	last[len - a - 1] = '\0';
	free(buf);
	return last;
}

/* kms_module_sign: a module the box's check (module_verify, as the loader
 * runs it) accepts under the OTP trust root, signed by the KMS's own key
 * with its certificate embedded; every refusal; the audit entry. */
static void module_sign_lib(void **state)
{
	struct fx *f = fx_new();
	struct module_manifest m = {.vendor_id = 0xA, .version = 3, .rollback = 2};
	struct module_view v;
	struct module_payload p;
	struct cert c;
	uint8_t pl[256], trust[32], *mod = NULL, *crl = NULL, cert[CERT_MAX_BYTES], junk[8] = {1, 2, 3};
	size_t pl_len = ladder_payload(0xA, "keys-a.json", pl, sizeof(pl)), len = 0, crl_len = 0, n = 0, bad = 0, cl = 0;
	uint64_t now = (uint64_t)time(NULL);
	char crlp[400];
	(void)state;

	pk_hash(f->ta_pub, trust);
	assert_int_equal(kms_module_sign(f->k, &m, pl, pl_len, &mod, &len), 0);
	assert_non_null(mod);
	assert_int_equal(module_verify(mod, len, trust, now, NULL, 0, &v, &p), 0);
	assert_int_equal(v.m.vendor_id, 0xA);
	assert_int_equal(v.m.version, 3);
	assert_int_equal(v.m.rollback, 2);
	assert_int_equal(p.ca_system_id, 0x4ADC);
	assert_string_equal(p.keys_file, "keys-a.json");
	assert_memory_equal(v.ta_pub, f->ta_pub, 32);
	/* the embedded certificate names the KMS key, which made the signature */
	assert_int_equal(cert_verify(v.cert, v.cert_len, f->ta_pub, now, NULL, 0, &c), 0);
	assert_int_equal(c.serial, 77);
	assert_memory_equal(c.subject_pub, f->kms_pub, 32);
	assert_int_equal(pk_verify(f->kms_pub, mod, v.signed_len, v.sig), 0);
	/* another trust root, an altered byte: refused as a box would */
	trust[0] ^= 1;
	assert_int_equal(module_verify(mod, len, trust, now, NULL, 0, &v, &p), CE_MAC);
	trust[0] ^= 1;
	mod[14] ^= 1; /* version */
	assert_int_equal(module_verify(mod, len, trust, now, NULL, 0, &v, &p), CE_MAC);
	mod[14] ^= 1;
	/* audited: init, certify, order (begin, done), 2 vendors, the module */
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(n, 7);
	assert_non_null(strstr(audit_last(f->kdir), "\tmodule sign vendor=0xa version=3 rollback=2 cert=77 bytes="));
	assert_int_equal(kms_audit_check(f->k, &n, &bad), 0);
	free(mod);
	mod = NULL;

	/* refusals: nothing signed, nothing audited */
	m.vendor_id = 0xB; /* payload names 0xA */
	assert_int_equal(kms_module_sign(f->k, &m, pl, pl_len, &mod, &len), CE_FORMAT);
	m.vendor_id = 0xA;
	assert_int_not_equal(kms_module_sign(f->k, &m, junk, sizeof(junk), &mod, &len), 0);
	assert_int_equal(kms_module_sign(f->k, &m, pl, 0, &mod, &len), CE_RANGE);
	assert_int_equal(kms_module_sign(f->k, NULL, pl, pl_len, &mod, &len), CE_ARG);
	assert_null(mod);
	assert_int_equal(len, 0);
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(n, 7);

	/* the operator certificate revoked: the KMS refuses to sign */
	assert_int_equal(kms_revoke_cert(f->k, f->ta_priv, 77, &crl, &crl_len), 0);
	assert_int_equal(kms_module_sign(f->k, &m, pl, pl_len, &mod, &len), CE_BLOCKED);
	assert_null(mod);
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(n, 8); /* the revocation only */
	/* even with crl.bin gone from the KMS, the box holding the CRL refuses
	 * what it signs */
	snprintf(crlp, sizeof(crlp), "%s/crl.bin", f->kdir);
	assert_int_equal(unlink(crlp), 0);
	assert_int_equal(kms_module_sign(f->k, &m, pl, pl_len, &mod, &len), 0);
	assert_int_equal(module_verify(mod, len, trust, now, crl, crl_len, &v, &p), CE_BLOCKED);
	assert_int_equal(module_verify(mod, len, trust, now, NULL, 0, &v, &p), 0);
	free(mod);
	mod = NULL;
	/* a crl.bin not signed by this TA is not ignored */
	crl[crl_len - 1] ^= 1;
	assert_int_equal(file_write_atomic(crlp, crl, crl_len, 0644), 0);
	assert_int_equal(kms_module_sign(f->k, &m, pl, pl_len, &mod, &len), CE_MAC);
	crl[crl_len - 1] ^= 1;
	assert_int_equal(file_write_atomic(crlp, crl, crl_len, 0644), 0);
	/* a new certificate (new serial) signs again, and the box accepts it
	 * with the CRL that revoked the old one */
	assert_int_equal(kms_operator_certify(f->k, f->ta_priv, "Operator", 30, 78, cert, &cl), 0);
	assert_int_equal(kms_module_sign(f->k, &m, pl, pl_len, &mod, &len), 0);
	/* the box checks at a time the new certificate is valid: its
	 * not_before, not the clock read when the test began (seconds of
	 * signing and scrypt earlier, so "not yet valid" across a second) */
	assert_int_equal(cert_parse(cert, cl, &c), 0);
	assert_true(c.not_before >= now);
	assert_int_equal(module_verify(mod, len, trust, c.not_before - 1, crl, crl_len, &v, &p), CE_EXPIRED);
	now = c.not_before;
	assert_int_equal(module_verify(mod, len, trust, now, crl, crl_len, &v, &p), 0);
	assert_non_null(strstr(audit_last(f->kdir), "cert=78"));
	free(mod);
	free(crl);
	fx_free(f);
}

/* A KMS the TA never certified has nothing to embed. */
static void module_sign_uncertified(void **state)
{
	char dir[64], kdir[128], cmd[200];
	struct module_manifest m = {.vendor_id = 0xA, .version = 1, .rollback = 1};
	struct kms *k = NULL;
	uint8_t pl[256], *mod = NULL;
	size_t pl_len = ladder_payload(0xA, "k.json", pl, sizeof(pl)), len = 0, n = 0, bad = 0;
	(void)state;

	snprintf(dir, sizeof(dir), "/tmp/test_kms.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(kdir, sizeof(kdir), "%s/kms", dir);
	assert_int_equal(kms_init(kdir, "pw", 10), 0);
	assert_int_equal(kms_open(kdir, "pw", &k), 0);
	assert_int_equal(kms_module_sign(k, &m, pl, pl_len, &mod, &len), CE_NOT_FOUND);
	assert_null(mod);
	assert_int_equal(kms_audit_verify(kdir, &n, &bad), 0);
	assert_int_equal(n, 1);
	kms_close(k);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* kms_tool.c's subcommand work (cmd_kms.c calls these): a random serial
 * in 1..2^63-1, keygen refusing an existing private key file, module sign
 * refusing a bad keys-file name (exit 2) before any KMS is opened, and
 * the secret-at-hand test. */
static void kms_tool_fns(void **state)
{
	struct kms_open_params op = { .dir = "/nonexistent-kms" };
	struct kms_module_params mp = { .vendor = 1, .version = 1, .rollback = 1, .casid = 0x4AE1,
		.keys_file = ".hidden", .out = "/nonexistent-kms/m.bin" };
	struct module_manifest m;
	char dir[64], priv[128], pub[128], cmd[200];
	uint64_t s = 0;
	size_t len = 1;
	(void)state;

	for (int i = 0; i < 32; i++) {
		assert_int_equal(kms_serial_random(&s), 0);
		assert_true(s >= 1 && s < (1ull << 63));
	}
	snprintf(dir, sizeof(dir), "/tmp/test_kms_tool.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(priv, sizeof(priv), "%s/a.key", dir);
	snprintf(pub, sizeof(pub), "%s/a.pub", dir);
	assert_int_equal(kms_keygen_files("x25519", priv, pub), 0);
	assert_int_equal(access(pub, F_OK), 0);
	assert_int_equal(kms_keygen_files("ed25519", priv, pub), CE_EXISTS);
	assert_int_equal(kms_module_sign_params(&op, &mp, &m, &len), 2);
	assert_int_equal(len, 0);
	assert_int_equal(m.vendor_id, 1);
	assert_false(kms_secret_at_hand(&op) && !getenv(KEYSTORE_PASSPHRASE_ENV) && !getenv("CASTELLAN_PKCS11_PIN"));
	op.pin_file = pub;
	assert_true(kms_secret_at_hand(&op));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* `castellan kms module sign` end to end: `module verify` (the box's check)
 * accepts its output under the TA; wrong passphrase, revoked certificate,
 * usage errors refused; the audit entry. */
static void module_sign_cli(void **state)
{
	const char *bin = getenv("CASTELLAN_BIN");
	struct fx *f;
	uint8_t *crl = NULL, pl[256], *mod;
	size_t crl_len = 0, n = 0, bad = 0, len = 0, pl_len;
	struct kms *k = NULL;
	struct module_view v;
	char d[300], p[400];
	(void)state;

	if (!bin)
		skip();
	f = fx_new();
	kms_close(f->k); /* the CLI opens it */
	f->k = NULL;
	snprintf(d, sizeof(d), "%s", f->dir);
	assert_int_equal(tu_run("printf 'pw\\n' > %s/pf && printf 'nope\\n' > %s/bad && chmod 600 %s/pf %s/bad", d, d, d, d), 0);
	snprintf(p, sizeof(p), "%s/ta.pub", d);
	assert_int_equal(pk_write_file(p, f->ta_pub, 0), 0);
	pl_len = ladder_payload(0xB, "keys-b.json", pl, sizeof(pl));
	snprintf(p, sizeof(p), "%s/b.payload", d);
	assert_int_equal(file_write_atomic(p, pl, pl_len, 0644), 0);

	assert_int_equal(tu_run("%s kms module sign --help | grep -q 'module sign'", bin), 0);
	assert_int_equal(tu_run("env -u " KEYSTORE_PASSPHRASE_ENV " %s kms module sign --dir %s --passphrase-file %s/pf "
		"--vendor 0xA --version 2 --rollback 1 --ca-system-id 0x4ADC --keys-file keys-a.json --out %s/a.mod "
		"> %s/sign.txt", bin, f->kdir, d, d, d), 0);
	assert_int_equal(tu_run("grep -q 'module signed by the KMS: vendor 0x0000000a version 2 rollback 1' %s/sign.txt",
		d), 0);
	assert_int_equal(tu_run("%s module verify --ta-pub %s/ta.pub %s/a.mod | grep -q '^OK'", bin, d, d), 0);
	assert_int_equal(tu_run("%s module verify --ta-pub %s/ta.pub %s/a.mod | grep -q 'keys file keys-a.json'", bin, d,
		d), 0);
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(n, 7);
	assert_non_null(strstr(audit_last(f->kdir), "\tmodule sign vendor=0xa version=2 rollback=1 cert=77"));
	/* --payload: the raw payload bytes, signed as they are */
	assert_int_equal(tu_run("%s kms module sign --dir %s --passphrase-file %s/pf --vendor-id 0xB --version 1 "
		"--rollback 1 --payload %s/b.payload --out %s/b.mod >/dev/null", bin, f->kdir, d, d, d), 0);
	snprintf(p, sizeof(p), "%s/b.mod", d);
	mod = tu_read(p, &len);
	assert_int_equal(module_parse(mod, len, &v), 0);
	assert_int_equal(v.payload_len, pl_len);
	assert_memory_equal(v.payload, pl, pl_len);
	free(mod);

	/* refusals (exit 1, no file, no audit entry) and usage errors (exit 2) */
	{
		static const struct { const char *args; int status; } bad_cases[] = {
			{"--passphrase-file @/bad --vendor 0xA --version 3 --rollback 1 --ca-system-id 1 --keys-file k --out @/x.mod", 1},
			{"--passphrase-file @/pf --vendor 0xA --version 3 --rollback 1 --payload @/b.payload --out @/x.mod", 1},
			{"--passphrase-file @/pf --vendor 0xA --version 3 --rollback 1 --payload @/none --out @/x.mod", 1},
			{"--passphrase-file @/pf --vendor 0xA --version 3 --rollback 1 --ca-system-id 1 --keys-file k --out @/a.mod", 1},
			{"--passphrase-file @/pf --vendor 0xA --version 3 --rollback 1 --ca-system-id 1 --keys-file ../k --out @/x.mod", 2},
			{"--passphrase-file @/pf --vendor 0xA --version 3 --rollback 1 --ca-system-id 1 --keys-file k", 2},
			{"--passphrase-file @/pf --vendor 0xA --version 3 --rollback 1 --out @/x.mod", 2},
			{"--passphrase-file @/pf --vendor 0xA --version 3 --rollback 1 --keys-file k --payload @/b.payload --ca-system-id 1 --out @/x.mod", 2},
			{"--passphrase-file @/pf --vendor 0x1FFFFFFFF --version 3 --rollback 1 --ca-system-id 1 --keys-file k --out @/x.mod", 2},
			{"--passphrase-file @/pf --version 3 --rollback 1 --ca-system-id 1 --keys-file k --out @/x.mod", 2},
		};
		for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
			char args[800] = "", cmd[1200];
			size_t al = 0;
			/* every '@' in the case is the work dir */
			for (const char *c = bad_cases[i].args; *c && al + sizeof(d) + 1 < sizeof(args); c++) {
				if (*c == '@')
					al += (size_t)snprintf(args + al, sizeof(args) - al, "%s", d);
				else
					args[al++] = *c;
			}
			args[al] = '\0';
			snprintf(cmd, sizeof(cmd), "%s kms module sign --dir %s %s >/dev/null 2>&1", bin, f->kdir, args);
			if (tu_run("%s", cmd) != bad_cases[i].status)
				fail_msg("module sign case %zu: not status %d", i, bad_cases[i].status);
			assert_int_equal(tu_run("test ! -e %s/x.mod", d), 0);
		}
	}
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(n, 8);
	/* revoke the operator certificate: the KMS refuses to sign, and the
	 * module it signed before is refused by a box with the CRL */
	assert_int_equal(kms_open(f->kdir, "pw", &k), 0);
	assert_int_equal(kms_revoke_cert(k, f->ta_priv, 77, &crl, &crl_len), 0);
	kms_close(k);
	snprintf(p, sizeof(p), "%s/ta.crl", d);
	assert_int_equal(file_write_atomic(p, crl, crl_len, 0644), 0);
	assert_int_equal(tu_run("%s kms module sign --dir %s --passphrase-file %s/pf --vendor 0xA --version 3 --rollback 1 "
		"--ca-system-id 0x4ADC --keys-file keys-a.json --out %s/c.mod 2>%s/revoked.txt", bin, f->kdir, d, d, d), 1);
	assert_int_equal(tu_run("grep -q 'revoked' %s/revoked.txt && test ! -e %s/c.mod", d, d), 0);
	assert_int_equal(tu_run("%s module verify --ta-pub %s/ta.pub --crl %s/ta.crl %s/a.mod | grep -q 'REFUSED'", bin, d, d,
		d), 0);
	assert_int_equal(kms_audit_verify(f->kdir, &n, &bad), 0);
	assert_int_equal(n, 9); /* the revocation only */
	free(crl);
	fx_free(f);
}

static void bad_inputs(void **state)
{
	static const struct { const char *csv; int r; size_t line; } t[] = {
		{"", CE_FORMAT, 0},
		{"chip_id\n", CE_FORMAT, 1},
		{"12\nabc\n", CE_FORMAT, 2},
		{"12\n-1\n", CE_FORMAT, 2},
		{"12\n18446744073709551616\n", CE_FORMAT, 2},
		{"12\n0x\n", CE_FORMAT, 2},
		{"12\n1 2\n", CE_FORMAT, 2},
		{"12\n0xc\n", CE_EXISTS, 0},
		{"1\n2\n3\nchip_id\n", CE_FORMAT, 4},
		{"123456789012345678901234567890123\n", CE_FORMAT, 1},
	};
	uint64_t *ids = NULL;
	size_t n = 0, bad = 0, len = 0;
	uint8_t sec[64], buf[2048], *w = NULL, *file = NULL;
	struct seal_header h;
	(void)state;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(kms_chips_parse((const uint8_t *)t[i].csv, strlen(t[i].csv), &ids, &n, &bad), t[i].r);
		assert_null(ids);
		if (t[i].line)
			assert_int_equal(bad, t[i].line);
	}
	assert_int_equal(kms_chips_parse((const uint8_t *)"0x20,\n 7 \n", 10, &ids, &n, &bad), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], 7);
	free(ids);
	/* wrapped secrets */
	memset(sec, 7, 32);
	assert_int_equal(kms_wrap_encode(sec, 32, "pw", 10, &w, &len), 0);
	assert_int_equal(kms_wrap_decode(w, len, "pw", buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 32);
	assert_int_equal(kms_wrap_decode(w, len, "px", buf, sizeof(buf), &n), CE_PASSPHRASE);
	assert_int_equal(kms_wrap_decode(w, len - 1, "pw", buf, sizeof(buf), &n), CE_FORMAT);
	w[8] = 30; /* scrypt N = 2^30: refused before any work */
	assert_int_equal(kms_wrap_decode(w, len, "pw", buf, sizeof(buf), &n), CE_FORMAT);
	free(w);
	/* sealed files: the parser's table */
	{
		uint8_t priv[32], pub[32];
		struct seal_record rec[2] = {{1, {0}}, {2, {0}}};
		struct seal_header in = {.kind = SEAL_KIND_BLACKBOX, .count = 2};
		assert_int_equal(pk_ed25519_generate(priv, pub), 0);
		assert_int_equal(pk_x25519_generate(sec, in.recipient_pub), 0);
		assert_int_equal(seal_build(&in, rec, priv, &file, &len), 0);
		assert_int_equal(seal_parse(file, len, &h), 0);
		assert_int_equal(seal_parse(file, len - 1, &h), CE_FORMAT);
		assert_int_equal(seal_parse(file, 100, &h), CE_FORMAT);
		memcpy(buf, file, len);
		buf[8] = 9;
		assert_int_equal(seal_parse(buf, len, &h), CE_UNSUPPORTED);
		memcpy(buf, file, len);
		buf[9] = 3;
		assert_int_equal(seal_parse(buf, len, &h), CE_FORMAT);
		memcpy(buf, file, len);
		buf[17] = 1; /* vendor id in a black-box file */
		assert_int_equal(seal_parse(buf, len, &h), CE_FORMAT);
		memcpy(buf, file, len);
		put_be32(buf + 182, 0);
		assert_int_equal(seal_parse(buf, len, &h), CE_RANGE);
		memcpy(buf, file, len);
		put_be32(buf + 182, 0xFFFFFFFFu);
		assert_int_equal(seal_parse(buf, len, &h), CE_RANGE);
		memcpy(buf, file, len);
		put_be32(buf + 182, 3);
		assert_int_equal(seal_parse(buf, len, &h), CE_FORMAT);
		memcpy(buf, file, len);
		memcpy(buf + 194, buf + 186, 8); /* ids not increasing */
		assert_int_equal(seal_parse(buf, len, &h), CE_FORMAT);
		free(file);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kdf_kat),
		cmocka_unit_test(otp_roundtrip_and_bad),
		cmocka_unit_test(blackbox_and_vendor_story),
		cmocka_unit_test(certs_and_crl),
		cmocka_unit_test(audit_chain),
		cmocka_unit_test(audit_forged_lines),
		cmocka_unit_test(audit_anchor),
		cmocka_unit_test(vendor_open_cli),
		cmocka_unit_test(bad_inputs),
		cmocka_unit_test(module_sign_lib),
		cmocka_unit_test(module_sign_uncertified),
		cmocka_unit_test(module_sign_cli),
		cmocka_unit_test(kms_tool_fns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
