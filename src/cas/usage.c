/*
 * usage.c - usage rules (copy control, retention) and their ECM
 * extension-block entry. usage.h has the encoding; docs/ecm-format.md the
 * byte table. No crypto: the ECM's MACs authenticate the entry.
 */
#include <string.h>
#include "cas/ecm.h"
#include "cas/usage.h"
#include "lib/cursor.h"

const char *cas_copy_name(uint8_t cc)
{
	switch (cc) {
	case CAS_COPY_FREE: return "copy_free";
	case CAS_COPY_NO_MORE: return "copy_no_more";
	case CAS_COPY_ONCE: return "copy_once";
	case CAS_COPY_NEVER: return "copy_never";
	default: return "?";
	}
}

int cas_copy_parse(const char *name, uint8_t *cc)
{
	static const uint8_t settable[] = { CAS_COPY_FREE, CAS_COPY_ONCE, CAS_COPY_NEVER };

	if (!name || !cc)
		return CE_ARG;
	for (size_t i = 0; i < sizeof(settable); i++)
		if (strcmp(name, cas_copy_name(settable[i])) == 0) {
			*cc = settable[i];
			return 0;
		}
	return CE_ARG;
}

int cas_usage_check(const struct cas_usage *u)
{
	if (!u)
		return CE_ARG;
	if (u->copy_control != CAS_COPY_FREE && u->copy_control != CAS_COPY_ONCE && u->copy_control != CAS_COPY_NEVER)
		return CE_RANGE;
	if (u->retention_s > CAS_MAX_RETENTION_S)
		return CE_RANGE;
	return 0;
}

/* Walk the block: the usage entry (at most one), if any. The fingerprint
 * and reserved entries are ecm.c's business; only their framing matters. */
static int usage_walk(const uint8_t *ext, size_t len, struct cas_usage *u, bool *found)
{
	struct cur c;
	bool seen = false;

	if (len == 0 || len > ECM_MAX_EXT_BLOCK_BYTES)
		return CE_FORMAT;
	cur_init(&c, ext, len);
	while (cur_left(&c) > 0 && !c.err) {
		uint8_t tag = 0, n = 0;
		struct cur val;

		(void)cur_u8(&c, &tag);
		(void)cur_u8(&c, &n);
		if (cur_view(&c, n, &val) != 0)
			break;
		if (tag != ECM_EXT_USAGE)
			continue;
		if (seen || n != CAS_USAGE_BYTES)
			return CE_FORMAT;
		(void)cur_u8(&val, &u->copy_control);
		(void)cur_u32(&val, &u->retention_s);
		if (cur_end(&val) != 0 || cas_usage_check(u) != 0)
			return CE_FORMAT;
		seen = true;
	}
	if (c.err)
		return CE_FORMAT;
	*found = seen;
	return 0;
}

int ecm_ext_add_usage(struct ecm_params *p, const struct cas_usage *u)
{
	struct cas_usage old;
	bool have = false;
	struct wbuf w;
	int r;

	if (!p || !u || p->ext_block_len > ECM_MAX_EXT_BLOCK_BYTES)
		return CE_ARG;
	if ((r = cas_usage_check(u)) != 0)
		return r;
	if (p->ext_block_len && usage_walk(p->ext_block, p->ext_block_len, &old, &have) == 0 && have)
		return CE_EXISTS;
	if (2 + CAS_USAGE_BYTES > ECM_MAX_EXT_BLOCK_BYTES - p->ext_block_len)
		return CE_OVERFLOW;
	wbuf_init(&w, p->ext_block + p->ext_block_len, 2 + CAS_USAGE_BYTES);
	wbuf_u8(&w, ECM_EXT_USAGE);
	wbuf_u8(&w, CAS_USAGE_BYTES);
	wbuf_u8(&w, u->copy_control);
	wbuf_u32(&w, u->retention_s);
	if ((r = wbuf_status(&w)) != 0)
		return r;
	p->ext_block_len = (uint16_t)(p->ext_block_len + w.len);
	return 0;
}

int ecm_ext_usage(const struct ecm_view *v, struct cas_usage *u, bool *found)
{
	int r;

	if (found)
		*found = false;
	if (!v || !u || !found)
		return CE_ARG;
	memset(u, 0, sizeof(*u));
	if (v->ext_block_len == 0)
		return 0;
	if ((r = usage_walk(v->ext_block, v->ext_block_len, u, found)) != 0)
		memset(u, 0, sizeof(*u));
	return r;
}
