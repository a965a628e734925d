/* log.c - see log.h. State is two variables that log_reset() restores, and
 * the ring of recent lines (under its mutex). */
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include "err.h"
#include "log.h"

static enum log_level g_level = LOG_LEVEL_INFO;
static FILE *g_file;

static struct {
	pthread_mutex_t mu;
	unsigned long long seq; /* lines ever written; line seq is at (seq - 1) % LOG_RING_LINES */
	char line[LOG_RING_LINES][LOG_RING_LINE_MAX];
} g_ring = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void ring_put(const char *line)
{
	pthread_mutex_lock(&g_ring.mu);
	snprintf(g_ring.line[g_ring.seq % LOG_RING_LINES], LOG_RING_LINE_MAX, "%s", line);
	g_ring.seq++;
	pthread_mutex_unlock(&g_ring.mu);
}

void log_ring_read(unsigned long long after, void (*fn)(void *ctx, unsigned long long seq, const char *line),
		   void *ctx)
{
	unsigned long long first, end;

	pthread_mutex_lock(&g_ring.mu);
	end = g_ring.seq;
	first = end > LOG_RING_LINES ? end - LOG_RING_LINES : 0;
	if (first < after)
		first = after;
	for (unsigned long long q = first; q < end; q++)
		fn(ctx, q + 1, g_ring.line[q % LOG_RING_LINES]);
	pthread_mutex_unlock(&g_ring.mu);
}

void log_set_level(enum log_level level) { g_level = level; }
enum log_level log_get_level(void) { return g_level; }
void log_set_file(FILE *f) { g_file = f; }

void log_reset(void)
{
	g_level = LOG_LEVEL_INFO;
	g_file = NULL;
	pthread_mutex_lock(&g_ring.mu);
	g_ring.seq = 0;
	pthread_mutex_unlock(&g_ring.mu);
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
	char when[32], line[LOG_RING_LINE_MAX];
	int n;
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
	n = snprintf(line, sizeof(line), "%s.%03ldZ %-5s %s: ", when, ts.tv_nsec / 1000000L, tags[level], module);
	if (n > 0 && (size_t)n < sizeof(line)) {
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	ring_put(line);
}
