/*
 * otp.c - OTP image encode/decode (otp.h has the byte table).
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include "kms/otp.h"
#include "lib/cursor.h"
#include "lib/util.h"

#define OTP_BODY_BYTES (OTP_IMAGE_BYTES - 4)

void otp_image_wipe(struct otp_image *img)
{
	if (img)
		OPENSSL_cleanse(img, sizeof(*img));
}

int otp_encode(const struct otp_image *img, uint8_t out[OTP_IMAGE_BYTES])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	struct wbuf w;
	int r;

	if (!img || !out || img->version != OTP_VERSION)
		return CE_ARG;
	wbuf_init(&w, out, OTP_IMAGE_BYTES);
	wbuf_bytes(&w, OTP_MAGIC, 8);
	wbuf_u8(&w, img->version);
	wbuf_u64(&w, img->chip_id);
	wbuf_bytes(&w, img->root_key, OTP_ROOT_BYTES);
	wbuf_bytes(&w, img->trust_root_hash, OTP_TRUST_HASH_BYTES);
	SHA256(out, OTP_BODY_BYTES, md);
	wbuf_bytes(&w, md, 4);
	if ((r = wbuf_status(&w)) != 0 || w.len != OTP_IMAGE_BYTES) {
		OPENSSL_cleanse(out, OTP_IMAGE_BYTES);
		return r ? r : CE_INTERNAL;
	}
	return 0;
}

int otp_decode(const uint8_t *buf, size_t len, struct otp_image *out)
{
	uint8_t magic[8], check[4], md[SHA256_DIGEST_LENGTH];
	struct cur c;
	int r;

	if (!out)
		return CE_ARG;
	memset(out, 0, sizeof(*out));
	if (!buf || len != OTP_IMAGE_BYTES)
		return CE_FORMAT;
	cur_init(&c, buf, len);
	cur_bytes(&c, magic, sizeof(magic));
	cur_u8(&c, &out->version);
	cur_u64(&c, &out->chip_id);
	cur_bytes(&c, out->root_key, OTP_ROOT_BYTES);
	cur_bytes(&c, out->trust_root_hash, OTP_TRUST_HASH_BYTES);
	cur_bytes(&c, check, sizeof(check));
	if ((r = cur_end(&c)) != 0)
		r = CE_FORMAT;
	else if (memcmp(magic, OTP_MAGIC, 8) != 0)
		r = CE_FORMAT;
	else if (out->version != OTP_VERSION)
		r = CE_UNSUPPORTED;
	else {
		SHA256(buf, OTP_BODY_BYTES, md);
		if (CRYPTO_memcmp(md, check, 4) != 0)
			r = CE_CRC;
	}
	if (r != 0)
		otp_image_wipe(out);
	return r;
}

int otp_write_file(const char *path, const struct otp_image *img)
{
	uint8_t buf[OTP_IMAGE_BYTES];
	int r;

	if ((r = otp_encode(img, buf)) != 0)
		return r;
	r = file_write_atomic(path, buf, sizeof(buf), 0600);
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

int otp_read_file(const char *path, struct otp_image *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = file_read_all(path, 4096, &buf, &len)) != 0)
		return r == CE_LIMIT ? CE_FORMAT : r;
	r = otp_decode(buf, len, out);
	secret_free(buf, len);
	return r;
}
