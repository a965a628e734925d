/*
 * loader.c - verify, anti-rollback, activate, persist (loader.h). The
 * running module is replaced only when the new one is fully up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include "client/chip_client.h"
#include "cas/entitlement.h"
#include "cas/cert.h"
#include "crypto/pk.h"
#include "lib/cursor.h"
#include "lib/log.h"
#include "lib/util.h"
#include "client/loader.h"

#define LDS_MAGIC "CSTLLDS1"
#define PATH_CAP 4096

struct lds_vendor {
	uint32_t vendor, rollback, version;
};

struct loader {
	char dir[PATH_CAP / 2];
	struct chip_link *ctl;
	uint64_t (*clock)(void *);
	void *clock_ctx;
	uint8_t trust_hash[32];
	uint64_t crl_number;
	size_t nv;
	struct lds_vendor v[LOADER_MAX_VENDORS];
	uint8_t *crl;            /* crl.bin contents, or NULL */
	size_t crl_len;
	bool active;
	struct module_manifest m;
	uint64_t cert_serial;
	struct cas_client client;
};

static uint64_t box_now_s(const struct loader *l)
{
	return (l->clock ? l->clock(l->clock_ctx) : now_wall_ms()) / 1000u;
}

static int path_of(const struct loader *l, const char *name, char *out)
{
	int n = snprintf(out, PATH_CAP, "%s/%s", l->dir, name);

	return n < 0 || n >= PATH_CAP ? CE_RANGE : 0;
}

static int state_load(struct loader *l)
{
	char p[PATH_CAP];
	uint8_t *buf = NULL, n = 0, ver = 0;
	size_t len = 0;
	struct cur c;
	int r;

	if ((r = path_of(l, "loader.state", p)) != 0)
		return r;
	r = file_read_all(p, 4096, &buf, &len);
	if (r != 0)
		return r == CE_NOT_FOUND ? 0 : r; /* fresh box */
	cur_init(&c, buf, len);
	if (len < 8 || memcmp(buf, LDS_MAGIC, 8) != 0)
		(void)cur_fail(&c, CE_FORMAT);
	(void)cur_skip(&c, 8);
	(void)cur_u8(&c, &ver);
	(void)cur_u64(&c, &l->crl_number);
	(void)cur_u8(&c, &n);
	if (!c.err && (ver != 1 || n > LOADER_MAX_VENDORS))
		(void)cur_fail(&c, CE_FORMAT);
	for (size_t i = 0; i < n && !c.err; i++) {
		(void)cur_u32(&c, &l->v[i].vendor);
		(void)cur_u32(&c, &l->v[i].rollback);
		(void)cur_u32(&c, &l->v[i].version);
	}
	l->nv = n;
	r = cur_end(&c);
	free(buf);
	if (r != 0)
		LOG_ERR("loader", "corrupt loader.state: %s", err_str(r));
	return r;
}

static int state_save(const struct loader *l)
{
	uint8_t buf[32 + LOADER_MAX_VENDORS * 12];
	char p[PATH_CAP];
	struct wbuf w;
	int r;

	wbuf_init(&w, buf, sizeof(buf));
	wbuf_bytes(&w, LDS_MAGIC, 8);
	wbuf_u8(&w, 1);
	wbuf_u64(&w, l->crl_number);
	wbuf_u8(&w, (uint8_t)l->nv);
	for (size_t i = 0; i < l->nv; i++) {
		wbuf_u32(&w, l->v[i].vendor);
		wbuf_u32(&w, l->v[i].rollback);
		wbuf_u32(&w, l->v[i].version);
	}
	if ((r = wbuf_status(&w)) != 0 || (r = path_of(l, "loader.state", p)) != 0)
		return r;
	return file_write_atomic(p, buf, w.len, 0600);
}

static struct lds_vendor *vendor_find(struct loader *l, uint32_t vendor)
{
	for (size_t i = 0; i < l->nv; i++)
		if (l->v[i].vendor == vendor)
			return &l->v[i];
	return NULL;
}

uint32_t loader_rollback(const struct loader *l, uint32_t vendor_id)
{
	for (size_t i = 0; i < l->nv; i++)
		if (l->v[i].vendor == vendor_id)
			return l->v[i].rollback;
	return 0;
}

int loader_open(const char *state_dir, struct chip_link *ctl, uint64_t (*clock)(void *), void *clock_ctx,
	struct loader **out)
{
	struct chip_info info;
	struct loader *l;
	char p[PATH_CAP];
	int r;

	*out = NULL;
	if (!state_dir || !ctl || strlen(state_dir) >= sizeof(l->dir))
		return CE_ARG;
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		return CE_IO;
	if (!(l = calloc(1, sizeof(*l))))
		return CE_NOMEM;
	memcpy(l->dir, state_dir, strlen(state_dir) + 1);
	l->ctl = ctl;
	l->clock = clock;
	l->clock_ctx = clock_ctx;
	if ((r = chip_link_info(ctl, &info)) != 0)
		goto fail;
	memcpy(l->trust_hash, info.trust_root_hash, 32);
	if ((r = state_load(l)) != 0)
		goto fail;
	if ((r = path_of(l, "crl.bin", p)) != 0)
		goto fail;
	if (file_read_all(p, 1u << 20, &l->crl, &l->crl_len) != 0) {
		l->crl = NULL;
		l->crl_len = 0;
	}
	*out = l;
	return 0;
fail:
	loader_free(l);
	return r;
}

void loader_free(struct loader *l)
{
	if (!l)
		return;
	cas_client_free(&l->client);
	free(l->crl);
	free(l);
}

/* Build the client a verified payload describes. */
static int make_client(struct loader *l, const struct module_payload *p, struct cas_client *out)
{
	struct entitlement *e = malloc(sizeof(*e));
	char path[PATH_CAP];
	int r;

	memset(out, 0, sizeof(*out));
	if (!e)
		return CE_NOMEM;
	if ((r = path_of(l, p->keys_file, path)) != 0 || (r = entitlement_load(path, e)) != 0)
		goto out;
	if (e->ca_system_id != p->ca_system_id) {
		r = CE_FORMAT;
		goto out;
	}
	r = ladder_client_from(e, out);
out:
	entitlement_wipe(e);
	free(e);
	return r;
}

/* Verify, rollback-check and bring up; on success the new module runs. */
static int activate(struct loader *l, const uint8_t *mod, size_t len, bool booting)
{
	struct module_view v;
	struct module_payload p;
	struct cert cert;
	struct cas_client nc;
	struct lds_vendor *sv;
	int r;

	memset(&nc, 0, sizeof(nc));
	if ((r = module_verify(mod, len, l->trust_hash, box_now_s(l), l->crl, l->crl_len, &v, &p)) != 0) {
		LOG_WARN("loader", "module refused: %s", err_str(r));
		return r;
	}
	sv = vendor_find(l, v.m.vendor_id);
	if (sv && v.m.rollback < sv->rollback) {
		LOG_WARN("loader", "module of vendor %08x refused: rollback counter %u < %u", v.m.vendor_id,
			v.m.rollback, sv->rollback);
		return CE_REPLAY;
	}
	if (!sv && l->nv >= LOADER_MAX_VENDORS)
		return CE_LIMIT;
	if ((r = cert_parse(v.cert, v.cert_len, &cert)) != 0)
		return r;
	if ((r = make_client(l, &p, &nc)) != 0) {
		LOG_WARN("loader", "module of vendor %08x: client not built: %s", v.m.vendor_id, err_str(r));
		return r;
	}
	if ((r = chip_link_set_vendor(l->ctl, v.m.vendor_id)) != 0) {
		cas_client_free(&nc);
		if (l->active && chip_link_set_vendor(l->ctl, l->m.vendor_id) != 0)
			LOG_ERR("loader", "chip: previous vendor not restored");
		return r;
	}
	if (!booting) {
		char name[32], path[PATH_CAP];

		(void)snprintf(name, sizeof(name), "module-%08x.bin", v.m.vendor_id);
		if ((r = path_of(l, name, path)) == 0)
			r = file_write_atomic(path, mod, len, 0600);
		if (r != 0) {
			cas_client_free(&nc);
			if ((l->active ? chip_link_set_vendor(l->ctl, l->m.vendor_id) : chip_link_clear_vendor(l->ctl)) != 0)
				LOG_ERR("loader", "chip: previous vendor not restored");
			return r;
		}
	}
	if (!sv) {
		sv = &l->v[l->nv++];
		sv->vendor = v.m.vendor_id;
		sv->rollback = 0;
	}
	if (v.m.rollback > sv->rollback || !booting) {
		sv->rollback = v.m.rollback;
		sv->version = v.m.version;
		if ((r = state_save(l)) != 0)
			LOG_ERR("loader", "loader.state not written: %s", err_str(r));
	}
	cas_client_free(&l->client);
	l->client = nc;
	l->m = v.m;
	l->cert_serial = cert.serial;
	l->active = true;
	LOG_INFO("loader", "running module: vendor %08x version %u rollback %u", v.m.vendor_id, v.m.version,
		v.m.rollback);
	return 0;
}

int loader_install(struct loader *l, const uint8_t *mod, size_t len)
{
	if (!l || !mod || len > MODULE_MAX_BYTES)
		return CE_ARG;
	return activate(l, mod, len, false);
}

int loader_boot(struct loader *l, uint32_t vendor_id)
{
	char name[32], path[PATH_CAP];
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	(void)snprintf(name, sizeof(name), "module-%08x.bin", vendor_id);
	if ((r = path_of(l, name, path)) != 0)
		return r;
	if ((r = file_read_all(path, MODULE_MAX_BYTES, &buf, &len)) != 0)
		return r;
	r = activate(l, buf, len, true);
	free(buf);
	return r;
}

int loader_install_crl(struct loader *l, const uint8_t ta_pub[32], const uint8_t *crl, size_t len)
{
	uint64_t number = 0, *serials = NULL;
	uint8_t h[32], *copy = NULL;
	char path[PATH_CAP];
	size_t n = 0;
	int r;

	if (!l || !ta_pub || !crl)
		return CE_ARG;
	pk_hash(ta_pub, h);
	if (CRYPTO_memcmp(h, l->trust_hash, 32) != 0)
		return CE_MAC;
	if ((r = crl_verify(crl, len, ta_pub, &number, &serials, &n)) != 0)
		return r;
	if (number < l->crl_number || (number == l->crl_number && l->crl)) {
		r = number == l->crl_number ? 0 : CE_REPLAY;
		goto out;
	}
	if (!(copy = malloc(len))) {
		r = CE_NOMEM;
		goto out;
	}
	memcpy(copy, crl, len);
	if ((r = path_of(l, "crl.bin", path)) != 0 || (r = file_write_atomic(path, crl, len, 0600)) != 0)
		goto out;
	free(l->crl);
	l->crl = copy;
	copy = NULL;
	l->crl_len = len;
	l->crl_number = number;
	if ((r = state_save(l)) != 0)
		goto out;
	for (size_t i = 0; l->active && i < n; i++) {
		if (serials[i] == l->cert_serial) {
			LOG_WARN("loader", "running module's certificate revoked: module stopped");
			cas_client_free(&l->client);
			l->active = false;
			if (chip_link_clear_vendor(l->ctl) != 0)
				LOG_ERR("loader", "chip: vendor not cleared");
		}
	}
	r = 0;
out:
	free(copy);
	free(serials);
	return r;
}

struct cas_client *loader_client(struct loader *l)
{
	return l && l->active ? &l->client : NULL;
}

int loader_active(const struct loader *l, struct module_manifest *m)
{
	memset(m, 0, sizeof(*m));
	if (!l || !l->active)
		return CE_NOT_FOUND;
	*m = l->m;
	return 0;
}
