/*
 * kms_tool.c - the KMS's secrets, opening, output files, the work of each
 * `castellan kms` subcommand and the vendor's side of a key file
 * (kms_tool.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "cas/cert.h"
#include "cas/keys.h"
#include "cas/module.h"
#include "cas/secret_src.h"
#include "cas/vkeys.h"
#include "crypto/pk.h"
#include "kms/kms.h"
#include "kms/kms_tool.h"
#include "kms/p11.h"
#include "kms/seal.h"
#include "lib/cursor.h"
#include "lib/util.h"

int kms_pass_get(const char *file, const char *env, char **pass)
{
	int r;

	*pass = NULL;
	if (!file && env && getenv(env))
		return *getenv(env) ? secret_get(NULL, env, pass) : CE_ARG;
	r = passphrase_get(file, pass);
	if (r != 0) {
		char pwhy[600];

		fprintf(stderr, "kms: passphrase: %s (give --passphrase-file or set $%s)\n",
			passphrase_why(file, r, pwhy, sizeof(pwhy)), env ? env : KEYSTORE_PASSPHRASE_ENV);
	}
	return r;
}

int kms_pin_get(const char *file, char **pin)
{
	int r = secret_get(file, P11_PIN_ENV, pin);

	if (r != 0)
		fprintf(stderr, "kms: token PIN: %s (give --pin-file or set $%s)\n", err_str(r), P11_PIN_ENV);
	return r;
}

void kms_secret_free(char *p)
{
	if (p)
		secret_free(p, strlen(p));
}

int kms_open_dir(const struct kms_open_params *p, struct kms **k)
{
	char *pass = NULL;
	int r, kind = 0;

	*k = NULL;
	if (!p->dir) {
		fprintf(stderr, "kms: --dir is required\n");
		return CE_ARG;
	}
	if (kms_master_kind(p->dir, &kind) == 0 && kind == KMS_MASTER_PKCS11) {
		struct p11_config cfg = { .module = p->pkcs11_module };

		if ((r = kms_pin_get(p->pin_file, &pass)) != 0)
			return r;
		cfg.pin = pass;
		r = kms_open_p11(p->dir, &cfg, k);
	} else {
		if ((r = kms_pass_get(p->passphrase_file, NULL, &pass)) != 0)
			return r;
		r = kms_open(p->dir, pass, k);
	}
	kms_secret_free(pass);
	if (r != 0)
		fprintf(stderr, "kms: cannot open %s: %s\n", p->dir, err_str(r));
	else
		kms_set_progress(*k, true);
	return r;
}

int kms_ta_open(const char *path, const char *ta_passphrase_file, uint8_t priv[32])
{
	char *pass = NULL;
	int r;

	if (!path) {
		fprintf(stderr, "kms: --ta TA.key is required\n");
		return CE_ARG;
	}
	if ((r = kms_pass_get(ta_passphrase_file, KMS_TA_PASSPHRASE_ENV, &pass)) != 0)
		return r;
	r = kms_ta_load(path, pass, priv);
	kms_secret_free(pass);
	if (r != 0)
		fprintf(stderr, "kms: trust authority key %s: %s\n", path, err_str(r));
	return r;
}

int kms_write_new(const char *path, const uint8_t *buf, size_t len)
{
	int r;

	if (!path) {
		fprintf(stderr, "kms: --out is required\n");
		return CE_ARG;
	}
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "kms: %s exists: refusing to overwrite\n", path);
		return CE_EXISTS;
	}
	if ((r = file_write_atomic(path, buf, len, 0644)) != 0)
		fprintf(stderr, "kms: cannot write %s: %s\n", path, err_str(r));
	return r;
}

int kms_module_sign_file(const struct kms_open_params *p, const struct module_manifest *m, const uint8_t *payload,
	size_t payload_len, const char *out, size_t *mod_len)
{
	struct kms *k = NULL;
	uint8_t *mod = NULL;
	int r;

	*mod_len = 0;
	if (access(out, F_OK) == 0) {
		fprintf(stderr, "kms: %s exists: refusing to overwrite\n", out);
		return CE_EXISTS;
	}
	if ((r = kms_open_dir(p, &k)) != 0)
		return r;
	r = kms_module_sign(k, m, payload, payload_len, &mod, mod_len);
	if (r == CE_BLOCKED)
		fprintf(stderr, "kms: module sign refused: the operator certificate is revoked (DIR/crl.bin)\n");
	else if (r != 0)
		fprintf(stderr, "kms: module sign refused: %s\n", err_str(r));
	if (r == 0)
		r = kms_write_new(out, mod, *mod_len);
	free(mod);
	kms_close(k);
	return r;
}

int kms_operator_certify_file(const struct kms_open_params *p, const char *ta, const char *ta_pfile, const char *name,
	uint32_t days, uint64_t serial, const char *out)
{
	struct kms *k = NULL;
	uint8_t priv[32], cert[CERT_MAX_BYTES];
	size_t len = 0;
	int r;

	if ((r = kms_open_dir(p, &k)) == 0 && (r = kms_ta_open(ta, ta_pfile, priv)) == 0) {
		r = kms_operator_certify(k, priv, name, days, serial, cert, &len);
		secret_wipe(priv, sizeof(priv));
		if (r == 0)
			r = kms_write_new(out, cert, len);
	}
	kms_close(k);
	return r;
}

int kms_revoke_cert_file(const struct kms_open_params *p, const char *ta, const char *ta_pfile, uint64_t serial,
	const char *out)
{
	struct kms *k = NULL;
	uint8_t priv[32], *crl = NULL;
	size_t len = 0;
	int r;

	if ((r = kms_open_dir(p, &k)) == 0 && (r = kms_ta_open(ta, ta_pfile, priv)) == 0) {
		r = kms_revoke_cert(k, priv, serial, &crl, &len);
		secret_wipe(priv, sizeof(priv));
		if (r == 0 && out)
			r = file_write_atomic(out, crl, len, 0644);
	}
	free(crl);
	kms_close(k);
	return r;
}

int kms_blackbox_export_file(const struct kms_open_params *p, uint32_t order, const char *to_pub_file,
	const char *out, size_t *len)
{
	struct kms *k = NULL;
	uint8_t key[32], *buf = NULL;
	int r;

	*len = 0;
	if ((r = pk_read_file(to_pub_file, key)) != 0) {
		fprintf(stderr, "kms: black-box key %s: %s\n", to_pub_file, err_str(r));
		return r;
	}
	if ((r = kms_open_dir(p, &k)) == 0 && (r = kms_blackbox_export(k, order, key, &buf, len)) == 0)
		r = kms_write_new(out, buf, *len);
	free(buf);
	kms_close(k);
	return r;
}

int kms_vendor_add_file(const struct kms_open_params *p, uint32_t id, const char *pub_file)
{
	struct kms *k = NULL;
	uint8_t key[32];
	int r = CE_ARG;

	if (!pub_file || (r = pk_read_file(pub_file, key)) != 0) {
		fprintf(stderr, "kms: --pub VENDOR.pub: %s\n", err_str(r));
		return r;
	}
	if ((r = kms_open_dir(p, &k)) == 0)
		r = kms_vendor_add(k, id, key);
	kms_close(k);
	return r;
}

int kms_vendor_export_file(const struct kms_open_params *p, uint32_t id, uint32_t order, const char *out, size_t *len)
{
	struct kms *k = NULL;
	uint8_t *buf = NULL;
	int r;

	*len = 0;
	if ((r = kms_open_dir(p, &k)) == 0 && (r = kms_vendor_export(k, id, order, &buf, len)) == 0)
		r = kms_write_new(out, buf, *len);
	free(buf);
	kms_close(k);
	return r;
}

int kms_vendor_open_file(const char *file, const char *keyf, const char *kmsf, uint32_t want_id, const char *out)
{
	uint8_t *buf = NULL, priv[32], kms_pub[32];
	struct seal_record *recs = NULL;
	struct seal_header h = {0};
	struct vkey *vk = NULL;
	char *csv = NULL, hex[65];
	size_t len = 0, cap = 0, used = 0;
	int r;

	if ((r = pk_read_file(kmsf, kms_pub)) != 0) {
		fprintf(stderr, "kms: KMS public key %s: %s\n", kmsf, err_str(r));
		return r;
	}
	if ((r = pk_read_file(keyf, priv)) != 0) {
		fprintf(stderr, "kms: vendor key %s: %s\n", keyf, err_str(r));
		return r;
	}
	if ((r = file_read_all(file, SEAL_FILE_BYTES(SEAL_MAX_RECORDS), &buf, &len)) != 0) {
		fprintf(stderr, "kms: cannot read %s: %s\n", file, err_str(r));
		goto out;
	}
	r = seal_open(buf, len, kms_pub, priv, &h, &recs);
	if (r == CE_MAC)
		fprintf(stderr, "kms: %s refused: not signed by this KMS, or altered\n", file);
	else if (r == CE_PASSPHRASE)
		fprintf(stderr, "kms: %s refused: not encrypted to this vendor key\n", file);
	else if (r != 0)
		fprintf(stderr, "kms: %s refused: %s\n", file, err_str(r));
	if (r != 0)
		goto out;
	if (h.kind != SEAL_KIND_VENDOR || (want_id && h.vendor_id != want_id)) {
		fprintf(stderr, "kms: %s refused: %s\n", file,
			h.kind != SEAL_KIND_VENDOR ? "a black-box file, not a vendor key file" : "another vendor's file");
		r = CE_FORMAT;
		goto out;
	}
	printf("vendor key file: vendor 0x%x, order %u%s, %u chips\n", h.vendor_id, h.order,
		h.order ? "" : " (all)", h.count);
	hex_encode(h.file_id, 16, hex);
	printf("file id: %s\ncreated: %llu\n", hex, (unsigned long long)h.created_s);
	hex_encode(h.signer_pub, 32, hex);
	printf("signer (KMS Ed25519): %s\n", hex);
	hex_encode(h.trust_root_hash, 32, hex);
	printf("trust-root hash: %s\nsignature verified, keys decrypted\n", hex);
	if (out) {
		if (access(out, F_OK) == 0) {
			fprintf(stderr, "kms: %s exists: refusing to overwrite\n", out);
			r = CE_EXISTS;
			goto out;
		}
		if (!(vk = calloc(h.count + 1, sizeof(*vk)))) {
			r = CE_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < h.count; i++) {
			vk[i].chip = recs[i].chip_id;
			memcpy(vk[i].kv, recs[i].key, 16);
		}
		if ((r = vkeys_format(vk, h.count, &csv, &cap)) != 0)
			goto out;
		used = cap;
		if ((r = file_write_atomic(out, csv, used, 0600)) != 0) {
			fprintf(stderr, "kms: cannot write %s: %s\n", out, err_str(r));
			goto out;
		}
		printf("%u vendor keys written to %s\n", h.count, out);
	}
	r = 0;
out:
	secret_wipe(priv, sizeof(priv));
	if (csv)
		secret_free(csv, cap);
	if (vk)
		secret_free(vk, (h.count + 1) * sizeof(*vk));
	seal_records_free(recs, h.count);
	free(buf);
	return r;
}


int kms_tool_init(const struct kms_init_params *ip, uint8_t pub[32])
{
	const struct kms_open_params *p = ip->open;
	struct kms *k = NULL;
	char *pass = NULL;
	int r;

	if (ip->pkcs11) {
		struct p11_config cfg = { .module = p->pkcs11_module, .token = ip->token };

		if (kms_pin_get(p->pin_file, &pass) != 0)
			return 1;
		cfg.pin = pass;
		r = kms_init_p11(p->dir, &cfg);
	} else {
		if (kms_pass_get(p->passphrase_file, NULL, &pass) != 0)
			return 1;
		r = kms_init(p->dir, pass, ip->log2n);
	}
	kms_secret_free(pass);
	if (r == 0 && (r = kms_open_dir(p, &k)) == 0) {
		kms_public_key(k, pub);
		kms_close(k);
	}
	return r;
}

int kms_keygen_files(const char *type, const char *out, const char *pub_file)
{
	uint8_t priv[32], pub[32];
	int r = strcmp(type, "x25519") == 0 ? pk_x25519_generate(priv, pub) : pk_ed25519_generate(priv, pub);

	if (r == 0 && access(out, F_OK) == 0)
		r = CE_EXISTS;
	if (r == 0 && (r = pk_write_file(out, priv, 1)) == 0)
		r = pk_write_file(pub_file, pub, 0);
	secret_wipe(priv, sizeof(priv));
	return r;
}

int kms_ta_init_files(const char *out, const char *pub_file, const char *ta_pfile, unsigned log2n, uint8_t pub[32])
{
	char *pass = NULL;
	int r;

	if (kms_pass_get(ta_pfile, KMS_TA_PASSPHRASE_ENV, &pass) != 0)
		return 1;
	r = kms_ta_init(out, pass, log2n, pub);
	kms_secret_free(pass);
	if (r == 0)
		r = pk_write_file(pub_file, pub, 0);
	return r;
}

int kms_serial_random(uint64_t *s)
{
	uint8_t b[8];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return CE_CRYPTO;
	(void)cur_u64_at(b, sizeof(b), 0, s);
	*s >>= 1;
	if (*s == 0)
		*s = 1;
	return 0;
}

int kms_pub_get(const struct kms_open_params *p, uint8_t pub[32])
{
	struct kms *k = NULL;
	int r;

	if ((r = kms_open_dir(p, &k)) == 0)
		kms_public_key(k, pub);
	kms_close(k);
	return r;
}

int kms_order_import_file(const struct kms_open_params *p, const char *csv, uint32_t *order, size_t *n)
{
	struct kms *k = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = file_read_all(csv, KMS_MAX_CHIPS_FILE_BYTES, &buf, &len)) != 0) {
		fprintf(stderr, "kms: cannot read %s: %s\n", csv, err_str(r));
		return 1;
	}
	if ((r = kms_open_dir(p, &k)) == 0)
		r = kms_order_import(k, buf, len, order, n);
	free(buf);
	kms_close(k);
	return r;
}

int kms_revoke_vendor_dir(const struct kms_open_params *p, uint32_t vendor)
{
	struct kms *k = NULL;
	int r;

	if ((r = kms_open_dir(p, &k)) == 0)
		r = kms_revoke_vendor(k, vendor);
	kms_close(k);
	return r;
}

int kms_module_sign_params(const struct kms_open_params *p, const struct kms_module_params *mp,
	struct module_manifest *m, size_t *mod_len)
{
	uint8_t pl[256], *plbuf = NULL;
	size_t pl_len = 0;
	int r;

	*mod_len = 0;
	memset(m, 0, sizeof(*m));
	m->vendor_id = mp->vendor;
	m->version = mp->version;
	m->rollback = mp->rollback;
	if (!mp->payload_file) {
		if (module_ladder_payload(m->vendor_id, mp->casid, mp->keys_file, pl, sizeof(pl), &pl_len) != 0) {
			fprintf(stderr, "kms: --keys-file must be 1..%d of [A-Za-z0-9._-], not starting with '.'\n",
				MODULE_MAX_NAME);
			return 2;
		}
	} else if ((r = file_read_all(mp->payload_file, MODULE_MAX_PAYLOAD, &plbuf, &pl_len)) != 0) {
		fprintf(stderr, "kms: cannot read %s: %s\n", mp->payload_file, err_str(r));
		return 1;
	}
	r = kms_module_sign_file(p, m, plbuf ? plbuf : pl, pl_len, mp->out, mod_len);
	free(plbuf);
	return r == 0 ? 0 : 1;
}

bool kms_secret_at_hand(const struct kms_open_params *p)
{
	return p->passphrase_file || getenv(KEYSTORE_PASSPHRASE_ENV) || p->pin_file || getenv(P11_PIN_ENV);
}

int kms_audit_anchor_check(const struct kms_open_params *p)
{
	struct kms *k = NULL;
	int r;

	if ((r = kms_open_dir(p, &k)) == 0)
		kms_close(k);
	return r;
}
