/*
 * stb.h - the reference set-top box: demultiplexer, CAS client host and
 * descrambler over a transport stream, with a per-service report.
 *
 * Owns: following PAT -> PMT of every service (or one), finding the
 * CA_descriptors (program and ES level) of the client's CA_system_id, so the
 * ECM PID of each service (of each component when ES-level), following
 * CAT -> EMM PIDs, reassembling ECM/EMM sections and handing them to the
 * CAS client (cas/client.h), descrambling each service's packets in batches
 * through the descrambler slots (stb/descrambler.h), and counting what
 * happened: packets, scrambled, descrambled, left scrambled, ECMs
 * seen/accepted/refused with the last reason, zapping time.
 *
 * Normative references: ISO/IEC 13818-1 (2.4.3 packets, 2.4.4 PSI, 2.6.16
 * CA_descriptor), ETSI TS 100 289 / TS 103 127 (CSA2 / CISSA), ETSI EN 300
 * 468, ETSI TR 101 290 (continuity / sync errors counted, not fatal).
 *
 * The stream is untrusted: every packet goes through ts_parse, every section
 * through the bounded PSI parsers; a bad packet is passed through unchanged
 * and counted. Output always has exactly the input's packets, in order:
 * descrambled packets with scrambling bits 00, everything else as it came.
 *
 * The box is single-threaded. The client is called synchronously; its
 * host.load_cw lands in the slot of the ECM being handed over.
 */
#ifndef CASTELLAN_STB_H
#define CASTELLAN_STB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "cas/client.h"
#include "cas/usage.h"
#include "cipher/cipher.h"
#include "stb/chip.h"
#include "stb/descrambler.h"
#include "ts/ts.h"

#define STB_MAX_SERVICES 64
#define STB_MAX_EMM_PIDS 16
#define STB_MAX_ECM_PIDS_PER_SERVICE 8
#define STB_BATCH_PKTS 512      /* packets per descrambler batch (the widest CSA2 engine, AVX-512) */
#define STB_NO_PID 0xFFFF

/*
 * A client whose ca_system_id is STB_CA_SYSTEM_NONE handles streams without
 * ECMs (fixed CW, BISS-like): the box follows no CA_descriptor and, as soon
 * as a service's PMT is known, calls ops->ecm(service_id, NULL, 0) once so
 * the client can load its keys for that service.
 */
#define STB_CA_SYSTEM_NONE 0x0000

struct ui_script;

struct stb_config {
	struct cas_client *client;  /* not owned; must outlive the stb */
	bool one_service;           /* only service_id (else every service) */
	uint16_t service_id;
	bool csa2_reduce;           /* CSA2 entropy reduction in the descrambler */
	uint64_t (*now_ms)(void *ctx); /* box clock for the client; NULL = wall */
	void *clock_ctx;
	/* Optional, for the report only: the card's package mask, so a refusal
	 * reads "ECM for packages 00000002, card has 00000001". */
	bool have_card_packages;
	uint32_t card_packages;
	/* Optional secure chip (stb/chip.h), not owned: when set, CWs are loaded
	 * and packets descrambled inside the chip over this HOST channel (the
	 * client's host is chip_link_host: load_ecw only) instead of the box's
	 * own descrambler. */
	struct chip_link *chip;
	/* Keep the last ECM section of every CA_descriptor PID, whatever its
	 * CA_system_id, so stb_set_client can hand a new client the ECM it
	 * needs at once (a CAS switch without a gap). */
	bool keep_all_ecms;
	/* Optional (stb/ui.h), not owned: the box's screen states on the
	 * stream clock, for the report's "ui_state" / "ui_states". */
	const struct ui_script *ui;
};

struct stb;

/* 0, CE_ARG, CE_NOMEM. *out NULL on error. */
int stb_new(const struct stb_config *cfg, struct stb **out) WARN_UNUSED;
void stb_free(struct stb *s);

/*
 * Feed npkts whole 188-byte packets (in and out may be the same buffer, or
 * must not overlap). out receives the same npkts packets, descrambled where
 * the box has the key. Sections and ECMs complete as their last packet
 * arrives; an ECM is applied before the packets after it are descrambled.
 * Returns 0, or CE_ARG / CE_NOMEM (never for bad stream content: that is
 * counted).
 */
int stb_feed(struct stb *s, const uint8_t *in, size_t npkts, uint8_t *out) WARN_UNUSED;

/*
 * Switch to another client (a module the loader just installed; not owned).
 * Batches are flushed first; the PMTs seen so far are re-read for the new
 * CA_system_id and, with keep_all_ecms, the last ECM of each of its ECM
 * PIDs is handed to it at once. Counters go on. 0, CE_ARG, CE_NOMEM.
 */
int stb_set_client(struct stb *s, struct cas_client *client) WARN_UNUSED;

/* The service whose component (ES PID) pid is, and its usage rules from
 * the last ECM the client accepted for it (*have false: none seen yet, *u
 * copy_free). 0, or CE_NOT_FOUND (not a component of a followed service). */
int stb_pid_usage(const struct stb *s, uint16_t pid, uint16_t *service_id, struct cas_usage *u, bool *have)
	WARN_UNUSED;
/* The recorder's counts for the report (rec_pkts, rec_refused_pkts). */
void stb_note_recorded(struct stb *s, uint16_t service_id, uint64_t kept, uint64_t refused);

/* The descrambler (for tests and benchmarks). */
struct descrambler *stb_descrambler(struct stb *s);

enum stb_svc_state {
	STB_SVC_CLEAR = 0,        /* no scrambled packets seen */
	STB_SVC_DESCRAMBLED,      /* every scrambled packet descrambled */
	STB_SVC_PARTIAL,          /* some descrambled, some left scrambled */
	STB_SVC_NOT_DESCRAMBLED,  /* scrambled packets, none descrambled */
	STB_SVC_WRONG_KEY,        /* "descrambled" but no PES start is valid */
};

struct stb_service_report {
	uint16_t service_id;
	uint16_t pmt_pid;           /* STB_NO_PID before the PAT named it */
	bool have_pmt;
	size_t necm_pids;
	uint16_t ecm_pids[STB_MAX_ECM_PIDS_PER_SERVICE]; /* matching CA_system_id */
	uint64_t packets;           /* packets of the service's components */
	uint64_t scrambled;         /* of those, arrived scrambled */
	uint64_t descrambled;
	uint64_t left_scrambled;    /* no key for their parity, or only the key
	                               of another crypto-period (nokey_pkts) */
	uint64_t nokey_pkts;        /* of those: the CW of their parity belonged
	                               to an earlier CP (ECMs refused or missing) */
	int64_t nokey_since_cp;     /* CP_number where the last such outage began, -1 */
	int nokey_reason;           /* why: the ECM refusal, or CE_TIMEOUT = no new ECM */
	uint16_t last_ecm_cp;       /* CP_number of the last accepted ECM */
	int64_t first_descrambled_pkt; /* stream packet index (0-based), -1 none */
	uint64_t ecm_seen, ecm_accepted, ecm_refused;
	int last_refusal;           /* CE_* of the last refused ECM, 0 none */
	bool refusal_has_pkgs;      /* the refused ECM parsed as a Castellan ECM */
	uint32_t refusal_ecm_pkgs;  /* its package mask */
	uint8_t refusal_ecm_next;   /* and its extended packages (ECM v3): how many, */
	uint16_t refusal_ecm_ext[4]; /* the first 4 of them */
	int64_t first_ecm_pkt;      /* packet index completing the first ECM, -1 */
	int64_t zapping_pkts;       /* first descrambled - first ECM, -1 unknown */
	int64_t zapping_ms;         /* same in stream time (PCR), -1 unknown */
	uint64_t first_cw_us;       /* wall time the client took on the first
	                               ECM that loaded a CW (ECM -> CW), 0 none */
	/* PUSI packets of PES components checked after descrambling: a right
	 * key gives 00 00 01; all bad means a wrong CW (fixed-CW mode). */
	uint64_t pes_starts, pes_starts_bad;
	enum stb_svc_state state;
	/* Usage rules (C.6) from the last ECM the client accepted for the
	 * service (cas/usage.h; none: copy_free), and what the recorder did
	 * with its packets (stb/pvr.h, stb_note_recorded). */
	bool have_usage;
	struct cas_usage usage;
	uint64_t rec_pkts, rec_refused_pkts;
};

struct stb_report {
	uint64_t packets;           /* all packets fed */
	uint64_t bad_packets;       /* failed ts_parse (sync, adaptation) */
	uint64_t tei_packets;       /* transport_error_indicator set */
	uint64_t section_errors;    /* dropped/invalid PSI, ECM or EMM sections */
	uint64_t emm_seen, emm_accepted, emm_refused, emm_not_addressed;
	uint64_t emm_repeats;       /* already applied (the carousel repeats EMMs):
	                               neither accepted again nor refused */
	uint16_t ca_system_id;      /* the client's */
	bool no_ecm;                /* fixed-CW client (STB_CA_SYSTEM_NONE) */
	size_t nemm_pids;
	uint16_t emm_pids[STB_MAX_EMM_PIDS];
	size_t nservices;
	struct stb_service_report svc[STB_MAX_SERVICES];
	uint32_t card_packages;
	bool have_card_packages;
};

/* Snapshot of the counters (struct stb_report is ~10 KB: heap or static).
 * 0 or CE_ARG. */
int stb_report(const struct stb *s, struct stb_report *out) WARN_UNUSED;
/* One readable line for a service, e.g.
 *   "service 101: descrambled 2866/2866 scrambled packets, first at packet 42 (zapping 12 ms)"
 *   "service 102: NOT descrambled: not entitled (ECM for packages 00000002, card has 00000001)"
 * into buf (always NUL-terminated). 0 or CE_OVERFLOW. */
int stb_report_line(const struct stb_report *r, const struct stb_service_report *svc, char *buf,
	size_t cap) WARN_UNUSED;
/* The report as JSON text (malloc'ed, caller frees). 0, CE_NOMEM. */
int stb_report_json(const struct stb_report *r, char **json) WARN_UNUSED;
/* The same with the "osd" array of s's showings (docs/stb.md "OSD"). */
int stb_report_json_osd(const struct stb_report *r, const struct stb *s, char **json) WARN_UNUSED;
/* Every fingerprint and message the box showed (stb/osd_log.h): valid
 * until stb_free. */
struct osd_log;
const struct osd_log *stb_osd_log(const struct stb *s);

/*
 * The fixed-CW client (BISS-like, TSDuck's descrambler --cw): CA_system_id
 * STB_CA_SYSTEM_NONE; loads cw (8 bytes CSA2, 16 CISSA) as both the even
 * and the odd key of every service the box finds. The CW is copied (wiped
 * on destroy). Free with cas_client_free. 0 or CE_ARG / CE_NOMEM.
 */
int stb_fixed_cw_client_new(enum cw_alg alg, const uint8_t *cw, size_t len, struct cas_client *out) WARN_UNUSED;

#endif
