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

#endif
