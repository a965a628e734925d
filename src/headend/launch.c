/*
 * launch.c - `castellan headend`'s parsed options to a head-end (launch.h).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "cas/keys.h"
#include "headend/launch.h"
#include "lib/util.h"
#include "sms/audit_key.h"

/* "off" given for an address: none. */
static const char *off(const char *v, const char *none)
{
	return v && strcmp(v, "off") == 0 ? none : v;
}

int headend_launch(struct headend_launch *l, struct headend **out)
{
	struct headend_config *c = &l->cfg;
	int r;

	*out = NULL;
	c->http_addr = off(c->http_addr, "");
	c->ecmg_addr = off(c->ecmg_addr, "");
	c->mux_addr = off(c->mux_addr, "");
	c->web_root = off(l->web_root, NULL);
	if (c->kms_dir)
		c->kms_view = l->kms_view;
	if (l->search_workers != UINT32_MAX) {
		c->search_workers = l->search_workers;
		c->search_on_loop = l->search_workers == 0;
	}
	/* NULL default: headend_new falls back to sqlite:DIR/sms.db itself. */
	if ((r = dburi_resolve("headend", l->db, l->db_file, NULL, &l->uri)) != 0)
		return r;
	c->db_uri = l->uri.uri[0] ? l->uri.uri : NULL;
	if ((r = l->open_ks(l->ks_ctx, &l->ks)) != 0)
		return r;
	c->ks = l->ks;
	if (l->audit_key) {
		if ((r = sms_audit_key_load(l->audit_key, l->pfile, l->audit_priv)) != 0) {
			fprintf(stderr, "headend: audit key %s: %s\n", l->audit_key, err_str(r));
			return r;
		}
		c->audit_key = l->audit_priv;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((r = headend_new(c, out)) != 0)
		fprintf(stderr, "headend: %s\n", err_str(r));
	return r;
}

void headend_launch_cleanup(struct headend_launch *l)
{
	keystore_free(l->ks);
	l->ks = NULL;
	secret_wipe(l->audit_priv, sizeof(l->audit_priv));
	dburi_cleanup(&l->uri);
}

int headend_apply_live(struct headend *h, const char *key, const char *value)
{
	uint64_t v;

	if (strcmp(key, "metrics-allow") == 0) /* removed from the file: loopback only */
		return headend_set_metrics_allow(h, value);
	if (strcmp(key, "emm-kbps") != 0)
		return CE_NOT_FOUND;
	if (!value)
		return CE_UNSUPPORTED; /* removed from the file: the value stays */
	if (parse_u64(value, 65535, &v) != 0 || v == 0)
		return CE_ARG;
	return headend_set_emm_kbps(h, (uint16_t)v);
}
