/*
 * entitlement.c - the entitlement file of one card (entitlement.h): issue
 * package keys for a subscription period, and the strict JSON codec.
 *
 * File (docs/key-files.md): one JSON object, exactly these members:
 *   "format": "castellan-entitlement-1", "ca_system_id": 0..65535,
 *   "card": decimal string (1..20 digits), "packages": 8 hex digits,
 *   "start"/"finish": unix seconds (integers, start <= finish),
 *   "keys": [ {"epoch": u32, "package": 0..31, "key": 32 hex digits}, ... ]
 * Every key's package must be in "packages", no (epoch, package) twice,
 * at most ENT_MAX_KEYS keys, at most ENT_MAX_FILE_BYTES bytes.
 *
 * Normative references: RFC 8259 (JSON); the free CAS's access_criteria
 * (8 hex digits, 32 packages) for "packages".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "cas/entitlement.h"
#include "lib/util.h"

#define ENT_FORMAT "castellan-entitlement-1"
#define ENT_MAX_CARD_DIGITS 20

void entitlement_wipe(struct entitlement *e)
{
	if (e)
		OPENSSL_cleanse(e, sizeof(*e));
}

const struct pkg_key *entitlement_find_key(const struct entitlement *e, uint32_t epoch, unsigned pkg)
{
	for (size_t i = 0; i < e->nkeys && i < ENT_MAX_KEYS; i++)
		if (e->keys[i].epoch == epoch && e->keys[i].pkg == pkg)
			return &e->keys[i];
	return NULL;
}

bool entitlement_has_pkg(const struct entitlement *e, unsigned pkg)
{
	if (pkg < CAS_MAX_PACKAGES)
		return (e->packages & (1u << pkg)) != 0;
	for (size_t i = 0; i < e->next && i < CAS_MAX_EXT_PACKAGES; i++)
		if (e->ext[i] == pkg)
			return true;
	return false;
}

int entitlement_issue(const struct keystore *ks, struct entitlement *e)
{
	uint64_t es, ef, nepochs;
	unsigned npk;
	int r;

	if (!ks || !e)
		return CE_ARG;
	OPENSSL_cleanse(e->keys, sizeof(e->keys));
	e->nkeys = 0;
	e->ca_system_id = keystore_ca_system_id(ks);
	if ((e->packages == 0 && e->next == 0) || e->next > CAS_MAX_EXT_PACKAGES)
		return CE_ARG;
	if (e->finish_s < e->start_s)
		return CE_RANGE;
	es = e->start_s / keystore_epoch_seconds(ks);
	ef = e->finish_s / keystore_epoch_seconds(ks);
	if (ef > UINT32_MAX)
		return CE_RANGE;
	npk = (unsigned)__builtin_popcount(e->packages) + (unsigned)e->next;
	nepochs = ef - es + 1;
	if (nepochs > ENT_MAX_KEYS || nepochs * npk > ENT_MAX_KEYS)
		return CE_LIMIT;
	for (uint64_t ep = es; ep <= ef; ep++) {
		for (unsigned pkg = 0; pkg < CAS_MAX_PACKAGES; pkg++) {
			if (!(e->packages & (1u << pkg)))
				continue;
			r = keystore_package_key(ks, (uint32_t)ep, pkg, &e->keys[e->nkeys]);
			if (r != 0) {
				OPENSSL_cleanse(e->keys, sizeof(e->keys));
				e->nkeys = 0;
				return r;
			}
			e->nkeys++;
		}
		for (size_t i = 0; i < e->next; i++) {
			if (e->ext[i] < CAS_MAX_PACKAGES ||
			    (r = keystore_package_key(ks, (uint32_t)ep, e->ext[i], &e->keys[e->nkeys])) != 0) {
				OPENSSL_cleanse(e->keys, sizeof(e->keys));
				e->nkeys = 0;
				return e->ext[i] < CAS_MAX_PACKAGES ? CE_ARG : r;
			}
			e->nkeys++;
		}
	}
	return 0;
}

/* The structural invariants shared by encode and decode. */
static int check_struct(const struct entitlement *e)
{
	if (e->finish_s < e->start_s || e->nkeys > ENT_MAX_KEYS || e->next > CAS_MAX_EXT_PACKAGES)
		return CE_FORMAT;
	if (e->start_s > INT64_MAX || e->finish_s > INT64_MAX)
		return CE_RANGE;
	for (size_t i = 0; i < e->nkeys; i++) {
		if (!entitlement_has_pkg(e, e->keys[i].pkg))
			return CE_FORMAT;
		for (size_t j = 0; j < i; j++)
			if (e->keys[j].epoch == e->keys[i].epoch && e->keys[j].pkg == e->keys[i].pkg)
				return CE_FORMAT;
	}
	return 0;
}

static int get_uint(json_t *o, const char *name, uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(o, name);
	json_int_t i;

	*out = 0;
	if (!v || !json_is_integer(v))
		return CE_FORMAT;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max)
		return CE_RANGE;
	*out = (uint64_t)i;
	return 0;
}

static const char *get_str(json_t *o, const char *name, size_t *len)
{
	json_t *v = json_object_get(o, name);

	*len = 0;
	if (!v || !json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

/* Only the allowed member names, each exactly once (jansson rejects
 * duplicates on load). */
static bool only_members(json_t *o, const char *const *names, size_t n)
{
	const char *k;
	json_t *v;

	if (json_object_size(o) != n)
		return false;
	json_object_foreach(o, k, v) {
		bool ok = false;

		for (size_t i = 0; i < n && !ok; i++)
			ok = strcmp(k, names[i]) == 0;
		if (!ok)
			return false;
	}
	return true;
}

int entitlement_decode(const char *json, size_t len, struct entitlement *e)
{
	static const char *const top[] = { "format", "ca_system_id", "card", "packages", "start", "finish", "keys" };
	static const char *const keyn[] = { "epoch", "package", "key" };
	json_error_t jerr;
	json_t *root = NULL, *keys, *k;
	const char *s;
	size_t sl, idx;
	uint64_t v;
	uint8_t pk[4];
	int r = CE_FORMAT;

	if (!e)
		return CE_ARG;
	memset(e, 0, sizeof(*e));
	if (!json)
		return CE_ARG;
	if (len > ENT_MAX_FILE_BYTES)
		return CE_LIMIT;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root) || !only_members(root, top, sizeof(top) / sizeof(top[0])))
		goto fail;
	s = get_str(root, "format", &sl);
	if (!s || sl != strlen(ENT_FORMAT) || strcmp(s, ENT_FORMAT) != 0)
		goto fail;
	if ((r = get_uint(root, "ca_system_id", UINT16_MAX, &v)) != 0)
		goto fail;
	e->ca_system_id = (uint16_t)v;
	r = CE_FORMAT;
	s = get_str(root, "card", &sl);
	if (!s || sl == 0 || sl > ENT_MAX_CARD_DIGITS || strspn(s, "0123456789") != sl)
		goto fail;
	if ((r = parse_u64(s, UINT64_MAX, &e->card_serial)) != 0)
		goto fail;
	r = CE_FORMAT;
	s = get_str(root, "packages", &sl);
	if (!s || sl != 8 || hex_decode(s, pk, sizeof(pk)) != 0)
		goto fail;
	e->packages = ((uint32_t)pk[0] << 24) | ((uint32_t)pk[1] << 16) | ((uint32_t)pk[2] << 8) | pk[3];
	if ((r = get_uint(root, "start", INT64_MAX, &e->start_s)) != 0 ||
	    (r = get_uint(root, "finish", INT64_MAX, &e->finish_s)) != 0)
		goto fail;
	r = CE_FORMAT;
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys))
		goto fail;
	if (json_array_size(keys) > ENT_MAX_KEYS) {
		r = CE_LIMIT;
		goto fail;
	}
	json_array_foreach(keys, idx, k) {
		struct pkg_key *pk2 = &e->keys[e->nkeys];

		r = CE_FORMAT;
		if (!json_is_object(k) || !only_members(k, keyn, sizeof(keyn) / sizeof(keyn[0])))
			goto fail;
		if ((r = get_uint(k, "epoch", UINT32_MAX, &v)) != 0)
			goto fail;
		pk2->epoch = (uint32_t)v;
		if ((r = get_uint(k, "package", CAS_MAX_PACKAGES - 1, &v)) != 0)
			goto fail;
		pk2->pkg = (uint8_t)v;
		r = CE_FORMAT;
		s = get_str(k, "key", &sl);
		if (!s || sl != 2 * PKG_KEY_BYTES || hex_decode(s, pk2->key, PKG_KEY_BYTES) != 0)
			goto fail;
		e->nkeys++;
	}
	if ((r = check_struct(e)) != 0)
		goto fail;
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	entitlement_wipe(e);
	return r ? r : CE_FORMAT;
}

/* Our own writer instead of json_dumps: the key hex then lives only in a
 * buffer we wipe, not in jansson's internal strings. */
int entitlement_encode(const struct entitlement *e, char **json)
{
	size_t cap, off = 0;
	char *buf;
	char hex[2 * PKG_KEY_BYTES + 1];
	int n, r;

	*json = NULL;
	if (!e)
		return CE_ARG;
	if ((r = check_struct(e)) != 0)
		return CE_ARG;
	cap = 512 + e->nkeys * 96;
	buf = malloc(cap);
	if (!buf)
		return CE_NOMEM;
	n = snprintf(buf, cap,
		"{\n  \"format\": \"%s\",\n  \"ca_system_id\": %u,\n  \"card\": \"%llu\",\n"
		"  \"packages\": \"%08X\",\n  \"start\": %llu,\n  \"finish\": %llu,\n  \"keys\": [",
		ENT_FORMAT, e->ca_system_id, (unsigned long long)e->card_serial, e->packages,
		(unsigned long long)e->start_s, (unsigned long long)e->finish_s);
	if (n < 0 || (size_t)n >= cap)
		goto overflow;
	off = (size_t)n;
	for (size_t i = 0; i < e->nkeys; i++) {
		hex_encode(e->keys[i].key, PKG_KEY_BYTES, hex);
		n = snprintf(buf + off, cap - off, "%s\n    {\"epoch\": %u, \"package\": %u, \"key\": \"%s\"}",
			i ? "," : "", e->keys[i].epoch, e->keys[i].pkg, hex);
		OPENSSL_cleanse(hex, sizeof(hex));
		if (n < 0 || (size_t)n >= cap - off)
			goto overflow;
		off += (size_t)n;
	}
	n = snprintf(buf + off, cap - off, "%s]\n}\n", e->nkeys ? "\n  " : "");
	if (n < 0 || (size_t)n >= cap - off)
		goto overflow;
	*json = buf;
	return 0;
overflow:
	secret_free(buf, cap);
	return CE_INTERNAL;
}

int entitlement_save(const struct entitlement *e, const char *path)
{
	char *text = NULL;
	int r;

	if ((r = entitlement_encode(e, &text)) != 0)
		return r;
	r = file_write_atomic(path, text, strlen(text), 0600);
	secret_free(text, strlen(text));
	return r;
}

int entitlement_load(const char *path, struct entitlement *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	memset(e, 0, sizeof(*e));
	if ((r = file_read_all(path, ENT_MAX_FILE_BYTES, &buf, &len)) != 0)
		return r;
	r = entitlement_decode((const char *)buf, len, e);
	secret_free(buf, len);
	return r;
}
