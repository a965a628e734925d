/*
 * utf8.h - one strict UTF-8 decoder for every text check and writer
 * (SMS text validation, the JSON writers): no overlong forms, no
 * surrogates, nothing above U+10FFFF.
 */
#ifndef CASTELLAN_LIB_UTF8_H
#define CASTELLAN_LIB_UTF8_H

#include <stdint.h>

/* The code point that starts at p (NUL-terminated: a truncated sequence
 * stops at the NUL): its length in bytes (1..4) and *cp, or 0 if the bytes
 * there are not valid UTF-8. */
int utf8_next(const unsigned char *p, uint32_t *cp);

#endif
