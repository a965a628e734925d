/*
 * audit_key.c - the audit key file (audit_key.h).
 */
#include <string.h>
#include "cas/keys.h"
#include "crypto/pk.h"
#include "crypto/pwseal.h"
#include "lib/util.h"
#include "sms/audit_key.h"

#define AUDIT_KEY_MAGIC "CSTLAUK1"
#define AUDIT_KEY_LOG2N 15

int sms_audit_key_write(const char *path, const uint8_t priv[32], const char *pass)
{
	uint8_t sealed[PWSEAL_BYTES(0, 32)];
	int r;

	if (!pass)
		return pk_write_file(path, priv, 1);
	if ((r = pwseal_seal(AUDIT_KEY_MAGIC, AUDIT_KEY_LOG2N, 8, 1, pass, NULL, 0, priv, 32, sealed, sizeof(sealed))) ==
	    0)
		r = file_write_atomic(path, sealed, sizeof(sealed), 0600);
	secret_wipe(sealed, sizeof(sealed));
	return r;
}

int sms_audit_key_load(const char *path, const char *passphrase_file, uint8_t priv[32])
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char *pass = NULL;
	struct pwseal_view v;
	int r;

	if (!path)
		return CE_ARG;
	if ((r = file_read_all(path, 4096, &buf, &len)) != 0)
		return r;
	if (len < 8 || memcmp(buf, AUDIT_KEY_MAGIC, 8) != 0) {
		secret_free(buf, len);
		return pk_read_file(path, priv);
	}
	/* the file says how much work scrypt does: capped before it runs */
	if ((r = pwseal_parse(buf, len, AUDIT_KEY_MAGIC, 0, &v)) != 0 || v.ct_len != 32 || v.log2n > 20 || v.r > 16 ||
	    v.p > 4) {
		r = r ? r : CE_FORMAT;
		goto out;
	}
	if ((r = passphrase_get(passphrase_file, &pass)) != 0)
		goto out;
	r = pwseal_open(buf, &v, pass, priv);
out:
	if (r != 0)
		secret_wipe(priv, 32);
	secret_free(buf, len);
	if (pass)
		secret_free(pass, strlen(pass));
	return r;
}

int sms_audit_keygen(const char *key_path, const char *pub_path, const char *pass, char kid_hex[17])
{
	uint8_t priv[32], pub[32], kid[32];
	int r;

	if ((r = pk_ed25519_generate(priv, pub)) == 0 && (r = sms_audit_key_write(key_path, priv, pass)) == 0)
		r = pk_write_file(pub_path, pub, 0);
	secret_wipe(priv, sizeof(priv));
	if (r != 0)
		return r;
	pk_hash(pub, kid);
	hex_encode(kid, 8, kid_hex);
	return 0;
}
