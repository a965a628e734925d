/*
 * card.c - the card identity file (card.h): issue from the keystore, strict
 * JSON codec (exactly the known members, each of the right type and range).
 *
 * Normative references: RFC 8259 (JSON); docs/emm-format.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "cas/card.h"
#include "lib/util.h"

#define CARD_FORMAT "castellan-card-1"
#define CARD_MAX_DIGITS 20

void card_identity_wipe(struct card_identity *c)
{
	if (c)
		OPENSSL_cleanse(c, sizeof(*c));
}

int card_issue(const struct keystore *ks, uint64_t serial, struct card_identity *c)
{
	int r;

	if (!ks || !c)
		return CE_ARG;
	memset(c, 0, sizeof(*c));
	c->ca_system_id = keystore_ca_system_id(ks);
	c->serial = serial;
	if ((r = keystore_card_key(ks, serial, c->key)) != 0)
		card_identity_wipe(c);
	return r;
}

static int get_serial(json_t *o, const char *name, uint64_t *out)
{
	json_t *v = json_object_get(o, name);
	const char *s;
	size_t n;

	*out = 0;
	if (!v || !json_is_string(v))
		return CE_FORMAT;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n > CARD_MAX_DIGITS || strspn(s, "0123456789") != n)
		return CE_FORMAT;
	return parse_u64(s, UINT64_MAX, out) == 0 ? 0 : CE_RANGE;
}

int card_decode(const char *json, size_t len, struct card_identity *c)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	const char *k;
	size_t want = 4;
	int r = CE_FORMAT;

	if (!c)
		return CE_ARG;
	memset(c, 0, sizeof(*c));
	if (!json)
		return CE_ARG;
	if (len > CARD_MAX_FILE_BYTES)
		return CE_LIMIT;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root))
		goto fail;
	if (json_object_get(root, "stb_id"))
		want = 5;
	json_object_foreach(root, k, v) {
		if (strcmp(k, "format") && strcmp(k, "ca_system_id") && strcmp(k, "card") && strcmp(k, "card_key") &&
		    strcmp(k, "stb_id"))
			goto fail;
	}
	if (json_object_size(root) != want)
		goto fail;
	v = json_object_get(root, "format");
	if (!json_is_string(v) || json_string_length(v) != strlen(CARD_FORMAT) ||
	    strcmp(json_string_value(v), CARD_FORMAT) != 0)
		goto fail;
	v = json_object_get(root, "ca_system_id");
	if (!json_is_integer(v))
		goto fail;
	if (json_integer_value(v) < 0 || json_integer_value(v) > UINT16_MAX) {
		r = CE_RANGE;
		goto fail;
	}
	c->ca_system_id = (uint16_t)json_integer_value(v);
	if ((r = get_serial(root, "card", &c->serial)) != 0)
		goto fail;
	if (want == 5 && (r = get_serial(root, "stb_id", &c->stb_id)) != 0)
		goto fail;
	r = CE_FORMAT;
	v = json_object_get(root, "card_key");
	if (!json_is_string(v) || json_string_length(v) != 2 * CARD_KEY_BYTES ||
	    hex_decode(json_string_value(v), c->key, CARD_KEY_BYTES) != 0)
		goto fail;
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	card_identity_wipe(c);
	return r;
}

int card_encode(const struct card_identity *c, char **json)
{
	char hex[2 * CARD_KEY_BYTES + 1], stb[48] = "";
	size_t cap = 512;
	char *buf;
	int n;

	*json = NULL;
	if (!c)
		return CE_ARG;
	buf = malloc(cap);
	if (!buf)
		return CE_NOMEM;
	if (c->stb_id)
		snprintf(stb, sizeof(stb), ",\n  \"stb_id\": \"%llu\"", (unsigned long long)c->stb_id);
	hex_encode(c->key, CARD_KEY_BYTES, hex);
	n = snprintf(buf, cap,
		"{\n  \"format\": \"%s\",\n  \"ca_system_id\": %u,\n  \"card\": \"%llu\",\n  \"card_key\": \"%s\"%s\n}\n",
		CARD_FORMAT, c->ca_system_id, (unsigned long long)c->serial, hex, stb);
	OPENSSL_cleanse(hex, sizeof(hex));
	if (n < 0 || (size_t)n >= cap) {
		secret_free(buf, cap);
		return CE_INTERNAL;
	}
	*json = buf;
	return 0;
}

int card_save(const struct card_identity *c, const char *path)
{
	char *text = NULL;
	int r;

	if ((r = card_encode(c, &text)) != 0)
		return r;
	r = file_write_atomic(path, text, strlen(text), 0600);
	secret_free(text, strlen(text));
	return r;
}

int card_load(const char *path, struct card_identity *c)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = file_read_all(path, CARD_MAX_FILE_BYTES, &buf, &len)) != 0)
		return r == CE_LIMIT ? CE_FORMAT : r;
	r = card_decode((const char *)buf, len, c);
	secret_free(buf, len);
	return r;
}
