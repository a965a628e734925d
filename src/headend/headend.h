/*
 * headend.h - `castellan headend`: the SMS HTTP APIs, the ECMG, the EMMG
 * client with the EMM carousel, and the scheduler, in one process.
 *
 * Owns: the SMS database (opened, migrated, initialised on first start:
 * an admin user and an API key shown once), the wiring of the parts and
 * their threads, change detection (the store's change feed, card_changes,
 * is followed: every change to a card, made by this process's APIs, by
 * `castellan sms`, by a CSV import or by another node on the same
 * PostgreSQL base, puts that card at the head of the carousel), EMM
 * sequence numbers (kept in the store: an atomic increment per card, so
 * nodes sharing a base never reuse one), generator definitions (the
 * store's generators table, used when no address is given), and the status
 * counters (published to the store every HEADEND_STATUS_PUBLISH_MS for
 * GET /api/v1/status).
 *
 * Threads (no globals):
 *   - the caller's thread runs the libevent loop (headend_run): SMS HTTP
 *     (GET API /api.php and REST /api/v1/) on its own store connection;
 *   - the ECMG thread runs ecmg_run (its own libevent loop; it only reads
 *     the keystore);
 *   - the EMM thread: its own store connection (change feed, sequence
 *     numbers, status), the scheduler, the carousel and the EMMG client
 *     (blocking, paced).
 * headend_stop() may be called from any thread or a signal handler.
 *
 * Vendor EMMs: with cfg.vendor_keys, the file's K_v values are loaded at
 * start (sorted by chip id, wiped at free); a card whose store chip_id
 * (decimal or 0x hex) is in it gets every unique EMM re-sealed by
 * emm_vendor_seal under K_emm(K_v(chip), serial); other cards keep K_card.
 *
 * Files under data_dir: sms.db (SQLite store, unless db_uri says else),
 * admin-key (only if asked: cfg.admin_key_file). An emm-seq.db left by an
 * older build is moved into the store at start and renamed
 * emm-seq.db.imported.
 */
#ifndef CASTELLAN_HEADEND_H
#define CASTELLAN_HEADEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/vkeys.h"
#include "headend/carousel.h"
#include "headend/scheduler.h"

typedef struct json_t json_t;

struct keystore;

#define HEADEND_DEFAULT_HTTP "127.0.0.1:8080"
#define HEADEND_DEFAULT_ECMG "127.0.0.1:2222"
#define HEADEND_DEFAULT_EMM_KBPS 100u
#define HEADEND_FEED_POLL_MS 200u
#define HEADEND_FEED_BATCH 10000u   /* change rows read per poll; more: a full resync */
#define HEADEND_FEED_GAP_MS 5000u   /* wait this long for a missing feed id (uncommitted) */
#define HEADEND_FEED_KEEP_MS (24u * 3600u * 1000u)   /* feed rows kept this long */
#define HEADEND_FEED_PRUNE_EVERY_MS (3600u * 1000u)
#define HEADEND_STATUS_PUBLISH_MS 2000u /* node status to the store (GET /api/v1/status) */
#define HEADEND_MIN_CYCLE_MS 1000u  /* a small base is cycled at most once a second */
#define HEADEND_VENDOR_KEYS_MAX VKEYS_MAX /* chips in a --vendor-keys file at most (cas/vkeys.h) */

struct headend_config {
	const char *data_dir;        /* required; created if missing (0700) */
	const char *db_uri;          /* NULL = sqlite:<data_dir>/sms.db */
	const char *http_addr;       /* NULL = HEADEND_DEFAULT_HTTP; "" = no HTTP */
	const char *ecmg_addr;       /* NULL = the store's first enabled ECMG generator, else
	                              * HEADEND_DEFAULT_ECMG; "" = no ECMG */
	const char *ecmg_allow;      /* "CIDR[,CIDR...]": SCSs allowed on the ECMG (lib/netacl.h);
	                              * NULL = anyone who can reach ecmg_addr */
	const char *mux_addr;        /* "host:port" of the MUX; NULL = the store's first enabled
	                              * EMMG generator (its client_id and bandwidth too, unless
	                              * given), else none; "" = no EMMG (carousel idle) */
	const struct keystore *ks;   /* borrowed; required */
	uint32_t client_id;          /* EMMG client_id; 0 = CA_system_id << 16 | 1 */
	uint16_t emm_kbps;           /* asked of the MUX and the carousel's budget; 0 = default */
	uint16_t data_id;            /* EMMG data_id; 0 = 1 */
	bool emm_udp;                /* data_provision over UDP */
	bool no_group_emms;          /* carousel: one unique EMM section per card (no group EMMs) */
	const char *admin_key_file;  /* first start: write the admin key here (0600) instead of stdout */
	sched_clock_fn clock;        /* NULL = wall clock (tests inject one) */
	void *clock_ctx;
	bool handle_signals;         /* SIGINT/SIGTERM stop headend_run */
	uint32_t status_every_s;     /* log a status line this often; 0 = never */
	const char *web_root;        /* the web panel's files (web/); NULL = no panel (src/web/web.h) */
	const char *web_admin_password; /* panel first start: admin's password; NULL = random, printed */
	bool web_secure_cookies;     /* Secure on the panel's session cookie (behind TLS) */
	const char *kms_dir;         /* KMS directory shown read-only on the panel; NULL = none */
	const char *web_operator_nets; /* the panel's operator networks; NULL = default (web.h) */
	int (*kms_view)(const char *dir, json_t **out); /* its view (kms/view.h kms_view_json), given
				      * by the command: the head-end links no KMS */
	const char *node_name;       /* this node in GET /api/v1/status; NULL = "<host>:<data_dir>" */
	unsigned http_threads;       /* HTTP loops in all (sms_http_set_threads); 0 or 1 = the caller's only */
	unsigned search_workers;     /* REST text searches at once on their own threads (sms_http_set_search); 0: 2 */
	bool search_on_loop;         /* no search workers: searches run on the HTTP loops */
	unsigned search_deadline_ms; /* a search's deadline; 0: 5000 */
	const char *metrics_allow;   /* GET /metrics without a key beyond loopback (sms_http_set_metrics_allow) */
	const uint8_t *audit_key;    /* Ed25519 private key (32 bytes, borrowed): sign the audit chain's
	                              * head every audit_checkpoint_s (docs/audit.md); NULL = never */
	uint32_t audit_checkpoint_s; /* 0 = 600 */
	const char *audit_checkpoint_file; /* append each checkpoint's line here too; NULL = none */
	const char *vendor_keys;     /* a vendor's opened key file ("chip_id,K_v hex" a line, `castellan
	                              * kms vendor open --out`): cards whose chip_id is in it get vendor
	                              * EMMs (cas/emm_vendor.h); NULL = K_card EMMs for every card */
};

struct headend_stats {
	struct carousel_stats car;
	struct sched_stats sched;
	uint64_t audit_changes;      /* card changes seen in the change feed (name kept) */
	uint64_t resyncs;            /* feed overflow: whole-base resync */
	int64_t feed_last_id;        /* the feed is handled up to this id (-1: not yet read) */
	uint64_t feed_gaps_skipped;  /* missing feed ids given up on (rolled back) */
	int64_t sched_next_s;        /* next per-card scheduler event, SCHED_NO_EVENT if none */
	int64_t rotation_in_s;       /* seconds to the next key epoch */
	uint64_t emmg_connected;     /* 1 if the EMMG session is up */
	uint64_t emmg_sections;      /* sections the EMMG client sent */
	uint16_t emmg_kbps;          /* granted by the MUX */
	uint64_t http_requests;
	uint64_t ecms;
};

struct headend;

/* Open the store (first start: initialise it), bind HTTP and the ECMG.
 * 0, CE_ARG, CE_IO, CE_NOMEM, or the store's error. */
int headend_new(const struct headend_config *cfg, struct headend **out) WARN_UNUSED;
/* Run until headend_stop (or a signal with handle_signals): starts the ECMG
 * and EMM threads, runs the HTTP loop, joins the threads. 0, CE_IO, or the
 * error of a part that stopped the head-end (EMM thread, ECMG). */
int headend_run(struct headend *h) WARN_UNUSED;
void headend_stop(struct headend *h);
/* A new EMM bandwidth, kbit/s (SIGHUP): asked of the MUX with a
 * stream_BW_request if connected, and the carousel's budget (the MUX's
 * grant still caps it). Any thread; applied by the EMM thread between
 * ticks. 0 or CE_ARG (kbps 0). */
int headend_set_emm_kbps(struct headend *h, uint16_t kbps);
/* Replace the /metrics allow-list (sms_http_set_metrics_allow; NULL or ""
 * = loopback only) while running (SIGHUP). 0, CE_ARG (bad list: the old
 * one stays), CE_STATE (no HTTP listener). */
int headend_set_metrics_allow(struct headend *h, const char *list);
uint16_t headend_http_port(const struct headend *h);
uint16_t headend_ecmg_port(const struct headend *h);
/* Thread-safe snapshot. */
void headend_stats(struct headend *h, struct headend_stats *out);
void headend_free(struct headend *h);

#endif
