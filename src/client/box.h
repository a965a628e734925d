/*
 * box.h - the reference set-top box as one run: `castellan stb` fills a
 * box_config from its options and calls box_run (docs/stb.md,
 * docs/replaceable-cas.md). The runner builds the CAS client (cardless
 * with an entitlement or card file, PC/SC smartcard, fixed CW), or in chip
 * mode starts or connects the secure chip, opens the module loader and its
 * first module, and with ota collects newer modules from the stream's
 * carousel (ts/ota.h) and switches to them while playing. It reads the TS,
 * descrambles (stb.h), writes it out, and at the end prints the report
 * lines on stderr, writes the report JSON and finishes the overlay session.
 * With record it also records for this box (stb/pvr_box.h); with playback
 * it only plays a recording of this box back to output.
 *
 * Messages go to stderr prefixed "stb: "; CWs and keys never do.
 */
#ifndef CASTELLAN_CLIENT_BOX_H
#define CASTELLAN_CLIENT_BOX_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cipher/cipher.h"
#include "lib/err.h"

struct chip_otp;
struct overlay_tee;
struct ui_script;

/* What the box runs with. Exactly one client: entitlement, card,
 * smartcard, fixed_cw, or a chip (otp or chip_socket; with smartcard too,
 * the card is the client and the module only sets the chip's vendor). The
 * caller checks the combinations (cmd_stb.c); strings are not copied. */
struct box_config {
	const char *input, *output;   /* ts/tsio.h URIs */
	const char *record;           /* also record for this box (stb/pvr_box.h) or NULL */
	const char *playback;         /* play this recording to output instead (no input) */
	const char *entitlement;      /* cardless client with this entitlement file */
	const char *card, *state;     /* cardless client from a card file; state file or NULL */
	bool smartcard;               /* PC/SC card client ... */
	const char *reader;           /* ... in the reader whose name contains this (NULL: first) */
	bool fixed_cw;                /* one fixed CW for every service */
	enum cw_alg alg;
	uint8_t cw[CW_MAX_BYTES];     /* secret: the caller wipes it */
	size_t cw_len;
	bool csa2_reduce;             /* CSA2 entropy reduction */
	bool one_service;             /* only service_id */
	uint16_t service_id;
	/* chip mode */
	struct chip_otp *otp;         /* spawn the chip with this OTP (box_run wipes it once
	                               * the chip has it), or ... */
	const char *chip_socket, *chip_control; /* ... connect a running `castellan chip` */
	const char *module_dir;       /* the loader's state dir (made 0700 if absent) */
	const char *module;           /* install this signed module, or ... */
	bool have_boot_vendor;        /* ... boot the stored one of boot_vendor */
	uint32_t boot_vendor;
	bool ota;                     /* install newer modules from the stream's carousel */
	/* output */
	const char *report_json;      /* write the report JSON here (NULL: no) */
	struct overlay_tee *overlay;  /* --overlay-snapshot session (not owned) or NULL */
	const struct ui_script *ui;   /* the box's screen states (stb/ui.h; not owned) or NULL */
	volatile sig_atomic_t *stop;  /* set (by a signal) to end the run; may be NULL */
};

/* Run the box until the input ends or *stop. 0, or CE_* (said on stderr). */
int box_run(const struct box_config *cfg) WARN_UNUSED;

#endif
