/*
 * launch.h - `castellan headend` from its parsed options to a running
 * head-end's handle: the "off" addresses, the search workers, the store's
 * URI (--db / --db-file / $CASTELLAN_DB), the keystore, the audit key and
 * the panel's KMS page, then headend_new. The command keeps the option
 * table, the SIGHUP reload thread, the ready file and headend_run.
 */
#ifndef CASTELLAN_HEADEND_LAUNCH_H
#define CASTELLAN_HEADEND_LAUNCH_H

#include <stdint.h>
#include "headend/headend.h"
#include "sms/dburi.h"

struct keystore;

struct headend_launch {
	struct headend_config cfg; /* as the options set it; completed by headend_launch */
	const char *db, *db_file;  /* the store (dburi_resolve; NULL: sqlite:DATA_DIR/sms.db) */
	const char *audit_key;     /* the audit key's file (sms/audit_key.h), or NULL */
	const char *pfile;         /* the passphrase file of the audit key (and the keystore's) */
	const char *web_root;      /* the panel's files; "off": no panel */
	uint32_t search_workers;   /* UINT32_MAX: not given */
	int (*kms_view)(const char *dir, json_t **out); /* with cfg.kms_dir: the panel's KMS page */
	int (*open_ks)(void *ctx, struct keystore **ks); /* the keystore (says why on failure) */
	void *ks_ctx;
	/* Held for the head-end's life; headend_launch_cleanup frees them. */
	struct dburi uri;
	struct keystore *ks;
	uint8_t audit_priv[32];
};

/* Complete l->cfg from the rest of l (an address "off": none), resolve
 * the store, open the keystore (l->open_ks) and the audit key, ignore
 * SIGPIPE and create the head-end into *out. 0 or CE_* (said on stderr,
 * "headend: ..."). */
int headend_launch(struct headend_launch *l, struct headend **out) WARN_UNUSED;

/* Free what headend_launch holds (after headend_free): the keystore, the
 * store URI, the audit key (wiped). */
void headend_launch_cleanup(struct headend_launch *l);

/* SIGHUP's live change of a head-end's config key (config.h): emm-kbps
 * (1..65535) or metrics-allow (value NULL: removed from the file; for
 * metrics-allow loopback only, for emm-kbps CE_UNSUPPORTED: the value
 * stays). CE_NOT_FOUND for any other key (the caller's own, e.g.
 * log-level); CE_ARG for a bad value. */
int headend_apply_live(struct headend *h, const char *key, const char *value) WARN_UNUSED;

#endif
