/*
 * web.h - the web panel on the SMS HTTP server (sms/http.h): static files
 * of web/ at "/", the panel's own small JSON API under /web/api/ (sign-in,
 * sign-out, session, panel users, API keys, audit log, status counters),
 * and session authentication of the REST API /api/v1/ so the panel's
 * pages use the REST API directly (no second back-end for cards,
 * subscriptions, packages, channels, CSV).
 *
 * docs/web-panel.md is the operator's reference. Registered through
 * sms_http_set_hooks; runs on the HTTP server's event loop thread.
 *
 * First start: when the store holds no panel user, an "admin" is created
 * with cfg->admin_password, or with a random password printed once on
 * stdout. There is never a default password.
 */
#ifndef CASTELLAN_WEB_WEB_H
#define CASTELLAN_WEB_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "web/auth.h"

struct sms_http;
struct sms_store;
struct web;
typedef struct json_t json_t;

#define WEB_API_PREFIX "/web/api/"
#define WEB_BODY_MAX (64u * 1024u) /* bytes of a /web/api/ request body */
#define WEB_FILE_MAX (8u << 20)	   /* bytes of one static file */
#define WEB_PATH_MAX 256	   /* bytes of a static file's URL path */
#define WEB_AUDIT_SCAN 5000	   /* audit entries searched by one filter request */
#define WEB_OPERATOR_NETS_DEFAULT "127.0.0.0/8,::1/128"

struct web_config {
	const char *root;	    /* the web/ folder; required */
	const char *legacy_users_path; /* an older separate users file (DATA_DIR/web.db) moved into the
					* store at start (web_users_import_file); NULL or missing = none */
	const char *admin_password; /* first start; NULL = random, printed once */
	const struct web_kdf *kdf;  /* NULL = WEB_KDF_DEFAULT */
	bool secure_cookies;	    /* add Secure to the cookie (panel behind TLS) */
	const char *operator_nets;  /* CIDR[,CIDR...]: the operator's networks, which keep a way in when
				     * a user is locked out from elsewhere; NULL = WEB_OPERATOR_NETS_DEFAULT */
	const char *kms_dir;	    /* an operator KMS directory shown read-only at GET
				     * /web/api/kms (kms/view.h); NULL = none (404 no_kms) */
	/* The view of kms_dir as JSON (kms_view_json of kms/view.h, given by
	 * the command that links the KMS): the panel itself links no KMS. */
	int (*kms_view)(const char *dir, json_t **out);
};

/* Status counters for the dashboard: fn adds members to obj (a JSON
 * object) and returns 0. Called on the HTTP thread for GET /web/api/status. */
typedef int (*web_status_fn)(void *ctx, json_t *obj);

/* Attach the panel to http (store: the HTTP server's, borrowed). */
int web_new(struct sms_http *http, struct sms_store *store, const struct web_config *cfg,
	    struct web **out) WARN_UNUSED;
/* Detach from the HTTP server and free. */
void web_free(struct web *w);
void web_set_status_fn(struct web *w, web_status_fn fn, void *ctx);
/* The head-end's key services, a narrow interface: the panel never holds
 * the keystore, it asks for the two things it shows (headend/panel_keys.c
 * implements them over the keystore). */
#define WEB_PERSO_FILE_MAX 256 /* bytes of a personalization file */
struct web_epochs {
	uint16_t ca_system_id;
	uint32_t epoch_seconds; /* length of a key epoch */
	uint32_t epoch;		/* the epoch in force at now_s */
	char fingerprint[17];	/* of the root key (hex, 8 bytes) */
};
struct web_keys {
	void *ctx;
	/* GET /web/api/epochs. 0 or an error. */
	int (*epochs)(void *ctx, uint64_t now_s, struct web_epochs *out);
	/* POST /web/api/perso: card serial's personalization file sealed under
	 * passphrase into out (cap bytes, *len written). 0, CE_RANGE (a bad
	 * value), other errors. */
	int (*perso)(void *ctx, uint64_t serial, uint8_t max_channels, uint32_t window_s, uint32_t block_s,
		const char *passphrase, uint8_t *out, size_t cap, size_t *len);
};
/* Enables GET /web/api/epochs and POST /web/api/perso (404 no_keystore
 * without). k is copied; its ctx is borrowed and outlives w. NULL = none. */
void web_set_keys(struct web *w, const struct web_keys *k);

/* The file under root that a URL path names ("/" -> index.html), into out
 * (cap bytes), and its Content-Type. CE_NOT_FOUND for anything refused:
 * "..", hidden names, '%' or '\\', segments outside [A-Za-z0-9._-], more
 * than 4 segments, over WEB_PATH_MAX, an extension without a known type. */
int web_static_path(const char *root, const char *url_path, char *out, size_t cap,
		    const char **ctype) WARN_UNUSED;

#endif
