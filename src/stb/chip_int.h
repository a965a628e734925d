/*
 * chip_int.h - internals shared by chip.c (inside the chip) and
 * chip_link.c (the box side): framing and the one-block AES helper.
 * Not for other modules.
 */
#ifndef CASTELLAN_STB_CHIP_INT_H
#define CASTELLAN_STB_CHIP_INT_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

/* AES-128-ECB on one block (enc 1 / dec 0). 0 or CE_CRYPTO / CE_NOMEM. */
int chip_aes_ecb(int enc, const uint8_t key[16], const uint8_t in[16], uint8_t out[16]) WARN_UNUSED;
/* One frame: u8 op | u8 0 | u16 len | body. Read refuses len > cap
 * (CE_PROTO); CE_CLOSED at end of stream. */
int chip_frame_read(int fd, uint8_t *op, uint8_t *body, size_t cap, size_t *len) WARN_UNUSED;
int chip_frame_write(int fd, uint8_t op, const uint8_t *body, size_t len) WARN_UNUSED;

#endif
