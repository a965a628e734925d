/*
 * secfile.h - a file of PSI sections in hex, one whole section a line (what
 * `castellan emmg --emm-file` sends, `castellan card emm` hands to a card
 * and `castellan provision --pair-emm-out` appends to). '#' comment lines,
 * blank lines, leading and trailing blanks and CRLF line ends are
 * accepted. The one parser of that file: every byte goes through the
 * cursor; fuzz/fuzz_secfile.c drives secfile_parse.
 */
#ifndef CASTELLAN_TS_SECFILE_H
#define CASTELLAN_TS_SECFILE_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define SECFILE_MAX_BYTES (64u << 20) /* a file, at most */
#define SECFILE_MAX_SECTIONS 65536u   /* sections in a file, at most */

struct secfile {
	size_t n;
	uint8_t **sec;  /* n sections, each malloc'ed */
	size_t *len;
};

/* Parse buf[0..len): every section into *out (free with secfile_free). A
 * line that is not the hex of one whole section (3 bytes at least, its
 * section_length matching, at most PSI_MAX_SECTION bytes) refuses the whole
 * file: CE_FORMAT with *bad_line its 1-based number; a file without a
 * section is CE_FORMAT with *bad_line 0. CE_LIMIT over max sections,
 * CE_NOMEM. On failure *out is empty. */
int secfile_parse(const uint8_t *buf, size_t len, size_t max, struct secfile *out, size_t *bad_line) WARN_UNUSED;
/* The same from a file (at most SECFILE_MAX_BYTES): also CE_IO. */
int secfile_load(const char *path, size_t max, struct secfile *out, size_t *bad_line) WARN_UNUSED;
void secfile_free(struct secfile *s);

#endif
