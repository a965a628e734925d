/*
 * eeprom.h - the card's persistent memory, as the applet sees it: one image
 * that is read at power-on and replaced as a whole.
 *
 * The contract is the one a card OS gives with its transaction mechanism:
 * store() either replaces the whole image or, if power is lost or it fails,
 * leaves the previous one intact. The file backend below does it with a
 * temp file + fsync + rename + directory fsync; it is outside the applet
 * (it uses the OS) and has a fault hook so tests can cut "power" between
 * its steps.
 */
#ifndef CASTELLAN_CARD_EEPROM_H
#define CASTELLAN_CARD_EEPROM_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

struct card_eeprom {
	void *ctx;
	/* Read the image into buf: 0, CE_NOT_FOUND (never written: a blank
	 * card), CE_OVERFLOW (larger than cap), CE_IO. */
	int (*load)(void *ctx, uint8_t *buf, size_t cap, size_t *len);
	/* Replace the image atomically: 0 or CE_IO (old image intact). */
	int (*store)(void *ctx, const uint8_t *buf, size_t len);
};

/* Fault hook steps of the file backend (tests). */
enum card_ee_step {
	CARD_EE_STEP_NONE = 0,
	CARD_EE_STEP_HALF_WRITTEN,   /* half the temp file written */
	CARD_EE_STEP_BEFORE_FSYNC,   /* temp written, not synced */
	CARD_EE_STEP_BEFORE_RENAME,  /* temp synced, not renamed */
};

struct card_eeprom_file {
	char path[1024];
	char tmp[1040];
	enum card_ee_step fail_at;   /* stop there (tests) */
	int fail_kill;               /* 1: SIGKILL ourselves there (power cut), 0: return CE_IO */
};

/* Bind f to path and fill ee with its operations. 0 or CE_ARG (path too long). */
int card_eeprom_file_init(struct card_eeprom_file *f, const char *path, struct card_eeprom *ee) WARN_UNUSED;

#endif
