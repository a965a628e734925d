/*
 * log.h - levelled logging to stderr (or a FILE the caller chooses).
 *
 * Never log a key, CW or passphrase: log key ids or fingerprints instead.
 * Bad input from the network is counted by the caller and summarized, not
 * logged per packet. log_reset() restores the defaults (for tests).
 */
#ifndef CASTELLAN_LOG_H
#define CASTELLAN_LOG_H

#include <stdio.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_file(FILE *f); /* NULL = stderr */
void log_reset(void);
/* Parse "error"|"warn"|"info"|"debug"; 0 or CE_ARG. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_ERR(mod, ...)   log_msg(LOG_LEVEL_ERROR, mod, __VA_ARGS__)
#define LOG_WARN(mod, ...)  log_msg(LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define LOG_INFO(mod, ...)  log_msg(LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define LOG_DEBUG(mod, ...) log_msg(LOG_LEVEL_DEBUG, mod, __VA_ARGS__)

/* Recent lines kept in memory for the web panel's system log view: every
 * line written (at the level in force) also goes to a ring of the last
 * LOG_RING_LINES lines, each cut at LOG_RING_LINE_MAX bytes. Thread-safe.
 * log_ring_read calls fn for each kept line, oldest first, with a sequence
 * number that grows by one per line (lines with seq <= after are skipped).
 * log_reset() empties the ring. */
#define LOG_RING_LINES 512
#define LOG_RING_LINE_MAX 256
void log_ring_read(unsigned long long after, void (*fn)(void *ctx, unsigned long long seq, const char *line),
		   void *ctx);

#endif
