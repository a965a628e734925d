/*
 * vkeys.h - a vendor's opened key file (`castellan kms vendor open --out
 * KEYS.csv`, docs/kms.md): K_v(chip) for each of the vendor's chips, one
 * "chip_id,32 hex digits" a line (chip_id decimal or 0x hex; '#' comments,
 * blank lines, CRLF line ends and, on the first line only, the header
 * "chip_id,key" that `kms vendor open` writes are accepted). The one parser of that file:
 * the head-end (--vendor-keys) and emm_vendor_key_file use it; every byte
 * goes through the cursor. fuzz/fuzz_vkeys.c drives vkeys_parse.
 */
#ifndef CASTELLAN_CAS_VKEYS_H
#define CASTELLAN_CAS_VKEYS_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define VKEYS_LINE_MAX 255 /* bytes of a line without its end */
#define VKEYS_MAX (1u << 24) /* chips in a file at most */

struct vkey {
	uint64_t chip;
	uint8_t kv[16]; /* secret */
};

/* Parse buf[0..len): *out (sorted by chip, calloc'ed; free with
 * vkeys_free), *n entries. A bad line, a line over VKEYS_LINE_MAX or a chip
 * twice refuses the whole file: CE_FORMAT with *bad_line its 1-based number
 * (0: a chip twice). CE_LIMIT over max entries, CE_NOMEM. */
int vkeys_parse(const uint8_t *buf, size_t len, size_t max, struct vkey **out, size_t *n,
	size_t *bad_line) WARN_UNUSED;
/* The same from a file (read whole, at most 64 bytes an entry + 1 MiB):
 * also CE_IO. */
int vkeys_load(const char *path, size_t max, struct vkey **out, size_t *n, size_t *bad_line) WARN_UNUSED;
/* The file for v[0..n): the header line, then "0x<16 hex>,<32 hex>\n" per
 * entry, what vkeys_parse reads back (`kms vendor open --out` writes it).
 * *out malloc'ed, *len bytes, secret: free with secret_free(*out, *len).
 * 0, CE_NOMEM, CE_LIMIT over VKEYS_MAX entries. */
int vkeys_format(const struct vkey *v, size_t n, char **out, size_t *len) WARN_UNUSED;
/* The entry of chip, NULL if none. */
const struct vkey *vkeys_find(const struct vkey *v, size_t n, uint64_t chip);
/* Wipe and free. */
void vkeys_free(struct vkey *v, size_t n);

#endif
