/* log.c - see log.h. State is two variables that log_reset() restores. */
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include "err.h"
#include "log.h"

static enum log_level g_level = LOG_LEVEL_INFO;
static FILE *g_file;

void log_set_level(enum log_level level) { g_level = level; }
enum log_level log_get_level(void) { return g_level; }
void log_set_file(FILE *f) { g_file = f; }

void log_reset(void)
{
	g_level = LOG_LEVEL_INFO;
	g_file = NULL;
}

int log_level_parse(const char *s, enum log_level *out)
{
	static const char *names[] = { "error", "warn", "info", "debug" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (s && strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return CE_ARG;
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	static const char *tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	FILE *f = g_file ? g_file : stderr;
	struct timespec ts;
	struct tm tm;
	char when[32];
	va_list ap;

	if (level > g_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "%s.%03ldZ %-5s %s: ", when, ts.tv_nsec / 1000000L, tags[level], module);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
}
