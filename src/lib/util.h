/*
 * util.h - small helpers shared by every part: hex, time, strict number
 * parsing (instead of atoi/strtol without checks), secret wiping, files.
 */
#ifndef CASTELLAN_UTIL_H
#define CASTELLAN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"

/* Hex -> bytes. Accepts upper/lower case, no separators. Exactly out_len
 * bytes must be encoded. 0 or CE_FORMAT. */
int hex_decode(const char *hex, uint8_t *out, size_t out_len) WARN_UNUSED;
/* Hex -> bytes of any length up to cap; *out_len set. */
int hex_decode_var(const char *hex, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* One hex digit (either case) -> 0..15, or -1 if c is not one. */
int hex_digit(char c);
/* bytes -> lower-case hex; out must hold 2*len+1. */
void hex_encode(const uint8_t *in, size_t len, char *out);

/* Strict unsigned parse: whole string, decimal or 0x-hex, <= max. */
int parse_u64(const char *s, uint64_t max, uint64_t *out) WARN_UNUSED;
/* Strict signed parse: whole string, optional '-', decimal or 0x-hex,
 * within [lo, hi]. 0, CE_FORMAT, CE_RANGE (*out 0 on error). */
int parse_s64(const char *s, int64_t lo, int64_t hi, int64_t *out) WARN_UNUSED;
/* parse_s64 for machine-written text (log lines, snapshots, SQL results):
 * decimal digits only, an optional leading '-'; no hex, sign '+', spaces. */
int parse_dec_s64(const char *s, int64_t lo, int64_t hi, int64_t *out) WARN_UNUSED;

/* Monotonic clock in microseconds / milliseconds; wall clock in ms. */
uint64_t now_mono_us(void);
uint64_t now_mono_ms(void);
uint64_t now_wall_ms(void);

/* Wipe a secret (OPENSSL_cleanse). */
void secret_wipe(void *p, size_t n);

/* Whole writes and reads on a blocking descriptor, EINTR retried:
 * fd_write_all with write(2), fd_send_all with send(2) and MSG_NOSIGNAL (a
 * closed peer is CE_IO, not SIGPIPE); 0 or CE_IO. fd_read_full: exactly n
 * bytes, CE_CLOSED at end of file before them, CE_IO on an error. */
int fd_write_all(int fd, const void *p, size_t n) WARN_UNUSED;
int fd_send_all(int fd, const void *p, size_t n) WARN_UNUSED;
int fd_read_full(int fd, void *p, size_t n) WARN_UNUSED;

/* Read a whole file (up to max_bytes) into a malloc'ed buffer. The caller
 * frees with free() (or secret_free for secrets). */
int file_read_all(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len) WARN_UNUSED;
/* Write a file atomically with exactly the given mode: a temporary of a
 * random name, created O_EXCL|O_NOFOLLOW and chmod-ed before any byte is
 * written, fsync, rename. 0, CE_IO, CE_CRYPTO, CE_ARG (path too long, or
 * path exists and is not a regular file or a symlink). */
int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode) WARN_UNUSED;
/* Make a database-like file owner-only: create it empty with mode 0600 if
 * it is missing (before SQLite opens it: its journal and WAL files take the
 * same mode), or take group and other permissions off an existing regular
 * file. Refuses a symbolic link at path when creating. CE_IO on failure
 * (errno kept). */
int file_make_private(const char *path) WARN_UNUSED;
/* Wipe then free. */
void secret_free(void *p, size_t n);

/* Split "host:port" or "[v6]:port" or ":port" into parts. host may come back
 * empty (any address). */
int addr_split(const char *s, char *host, size_t host_cap, uint16_t *port) WARN_UNUSED;

#endif
