/*
 * metrics.c - the metrics registry (metrics.h): per-family series tables,
 * per-thread shards of relaxed atomics, and the text exposition.
 *
 * A series is published by storing its pointer and then (release) the
 * family's count; readers load the count (acquire) and scan. Series are
 * only freed by metrics_reset, which tests call between runs.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/metrics.h"
#include "lib/util.h"

#define SHARDS 8 /* per-thread slots of every counter / histogram */

enum metric_kind { COUNTER, GAUGE, HISTOGRAM };

const uint64_t metrics_buckets_ecm[] = { 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
					 1000000, 0 };
const uint64_t metrics_buckets_api[] = { 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
					 1000000, 5000000, 0 };
const uint64_t metrics_buckets_cycle[] = { 1000000, 5000000, 10000000, 30000000, 60000000, 120000000, 300000000,
					   600000000, 1800000000, 3600000000, 0 };

struct family_def {
	const char *name, *help, *labels;
	enum metric_kind kind;
	const uint64_t *buckets;
};

static const struct family_def defs[MET_N] = {
#define MET_DEF(id, k, n, l, b, h) [id] = { .name = n, .help = h, .labels = l, .kind = k, .buckets = b },
	METRICS(MET_DEF)
#undef MET_DEF
};

/* One thread's slot: its own cache line(s). */
struct shard {
	_Alignas(64) _Atomic uint64_t count; /* counter value; histogram count */
	_Atomic uint64_t sum_us;
	_Atomic uint64_t bucket[METRICS_BUCKETS_MAX + 1]; /* not cumulative; last = +Inf */
};

struct series {
	uint64_t hash; /* of the label values (label_hash): compared before the strings */
	char a[METRICS_LABEL_MAX + 1], b[METRICS_LABEL_MAX + 1];
	_Atomic int64_t gauge;
	struct shard sh[SHARDS];
};

struct family {
	struct series base;                            /* the family without labels */
	_Atomic(struct series *) s[METRICS_SERIES_MAX]; /* with labels */
	_Atomic size_t n;
};

static struct family fams[MET_N];
static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned next_shard;
static _Thread_local int my_shard = -1;

static inline struct shard *shard_of(struct series *s)
{
	if (my_shard < 0)
		my_shard = (int)(atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % SHARDS);
	return &s->sh[my_shard];
}

static bool same(const char *stored, const char *v)
{
	size_t n = v ? strnlen(v, METRICS_LABEL_MAX) : 0;

	return strncmp(stored, v ? v : "", n) == 0 && stored[n] == '\0';
}

/* FNV-1a over the kept bytes of a, a separator, and b. */
static uint64_t label_hash(const char *a, const char *b)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; a && a[i] && i < METRICS_LABEL_MAX; i++)
		h = (h ^ (unsigned char)a[i]) * 0x100000001b3u;
	h = (h ^ 0xFFu) * 0x100000001b3u;
	for (size_t i = 0; b && b[i] && i < METRICS_LABEL_MAX; i++)
		h = (h ^ (unsigned char)b[i]) * 0x100000001b3u;
	return h;
}

/* The series for labels (a, b); NULL if the family is full. */
static struct series *series_get(enum metric_id id, const char *a, const char *b)
{
	struct family *f = &fams[id];
	struct series *s = NULL;
	uint64_t h;
	size_t n;

	if (!defs[id].labels[0])
		return &f->base;
	h = label_hash(a, b);
	n = atomic_load_explicit(&f->n, memory_order_acquire);
	for (size_t i = 0; i < n; i++) {
		s = atomic_load_explicit(&f->s[i], memory_order_relaxed);
		if (s->hash == h && same(s->a, a) && same(s->b, b))
			return s;
	}
	pthread_mutex_lock(&create_mu);
	n = atomic_load_explicit(&f->n, memory_order_relaxed);
	for (size_t i = 0; i < n; i++) { /* another thread may have added it */
		s = atomic_load_explicit(&f->s[i], memory_order_relaxed);
		if (same(s->a, a) && same(s->b, b))
			goto out;
	}
	s = NULL;
	if (n < METRICS_SERIES_MAX && (s = aligned_alloc(64, sizeof(*s))) != NULL) {
		memset(s, 0, sizeof(*s));
		s->hash = h;
		snprintf(s->a, sizeof(s->a), "%s", a ? a : "");
		snprintf(s->b, sizeof(s->b), "%s", b ? b : "");
		atomic_store_explicit(&f->s[n], s, memory_order_relaxed);
		atomic_store_explicit(&f->n, n + 1, memory_order_release);
	}
out:
	pthread_mutex_unlock(&create_mu);
	if (!s && id != MET_DROPPED_SERIES)
		metric_inc(MET_DROPPED_SERIES);
	return s;
}

void metric_add(enum metric_id id, const char *a, const char *b, uint64_t n)
{
	struct series *s;

	if ((unsigned)id >= MET_N || !(s = series_get(id, a, b)))
		return;
	atomic_fetch_add_explicit(&shard_of(s)->count, n, memory_order_relaxed);
}

void metric_add_code(enum metric_id id, unsigned code, const char *name)
{
	char c[8];

	snprintf(c, sizeof(c), "0x%04X", code & 0xFFFFu);
	metric_add(id, c, name, 1);
}

void metric_set(enum metric_id id, const char *a, const char *b, int64_t v)
{
	struct series *s;

	if ((unsigned)id >= MET_N || !(s = series_get(id, a, b)))
		return;
	atomic_store_explicit(&s->gauge, v, memory_order_relaxed);
}

void metric_observe_us(enum metric_id id, const char *a, const char *b, uint64_t us)
{
	const uint64_t *bk = (unsigned)id < MET_N ? defs[id].buckets : NULL;
	struct series *s;
	struct shard *h;
	size_t i = 0;

	if (!bk || !(s = series_get(id, a, b)))
		return;
	while (i < METRICS_BUCKETS_MAX && bk[i] && us > bk[i])
		i++;
	if (i < METRICS_BUCKETS_MAX && !bk[i])
		i = METRICS_BUCKETS_MAX; /* over the last bound: +Inf */
	h = shard_of(s);
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void metric_api_done(const char *route, int status, uint64_t t0_us)
{
	char st[12];

	snprintf(st, sizeof(st), "%d", status);
	metric_add(MET_API_REQUESTS, route, st, 1);
	metric_observe_us(MET_API_DURATION, route, NULL, now_mono_us() - t0_us);
}

void metric_link(const char *kind, const char *peer, int up)
{
	struct series *s = series_get(MET_LINK_UP, kind, peer);
	int64_t old;

	if (!s)
		return;
	old = atomic_exchange_explicit(&s->gauge, up ? 1 : 0, memory_order_relaxed);
	if (old != (up ? 1 : 0))
		metric_add(MET_LINK_CHANGES, kind, up ? "up" : "down", 1);
}

void metric_link_id(const char *kind, uint32_t id, int up)
{
	char p[12];

	snprintf(p, sizeof(p), "0x%08" PRIX32, id);
	metric_link(kind, p, up);
}

static uint64_t sum_count(const struct series *s)
{
	uint64_t v = 0;

	for (int i = 0; i < SHARDS; i++)
		v += atomic_load_explicit(&s->sh[i].count, memory_order_relaxed);
	return v;
}

uint64_t metric_value(enum metric_id id, const char *a, const char *b)
{
	struct family *f;
	size_t n;

	if ((unsigned)id >= MET_N)
		return 0;
	f = &fams[id];
	if (!defs[id].labels[0])
		return defs[id].kind == GAUGE ? (uint64_t)atomic_load(&f->base.gauge) : sum_count(&f->base);
	n = atomic_load_explicit(&f->n, memory_order_acquire);
	for (size_t i = 0; i < n; i++) {
		struct series *s = atomic_load_explicit(&f->s[i], memory_order_relaxed);

		if (same(s->a, a) && same(s->b, b))
			return defs[id].kind == GAUGE ? (uint64_t)atomic_load(&s->gauge) : sum_count(s);
	}
	return 0;
}

/* ---- exposition ---------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		{
			size_t cap = o->cap * 2 + (size_t)n;
			char *p = realloc(o->p, cap);

			if (!p) {
				o->oom = true;
				return;
			}
			o->p = p;
			o->cap = cap;
		}
	}
}

/* A label value escaped as the format asks: \\, \" and \n. */
static void put_value(struct out *o, const char *v)
{
	put(o, "\"");
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(o, "\\%c", *v);
		else if (*v == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *v);
	}
	put(o, "\"");
}

/* {a="..",b=".."[,le=".."]} or nothing. */
static void put_labels(struct out *o, enum metric_id id, const struct series *s, const char *le)
{
	const char *l = defs[id].labels, *comma = strchr(l, ',');

	if (!l[0] && !le)
		return;
	put(o, "{");
	if (l[0]) {
		put(o, "%.*s=", comma ? (int)(comma - l) : (int)strlen(l), l);
		put_value(o, s->a);
		if (comma) {
			put(o, ",%s=", comma + 1);
			put_value(o, s->b);
		}
	}
	if (le)
		put(o, "%s%s", l[0] ? ",le=" : "le=", le);
	put(o, "}");
}

static void put_series(struct out *o, enum metric_id id, const struct series *s)
{
	const struct family_def *d = &defs[id];

	if (d->kind == GAUGE) {
		put(o, "%s", d->name);
		put_labels(o, id, s, NULL);
		put(o, " %" PRId64 "\n", atomic_load_explicit(&s->gauge, memory_order_relaxed));
	} else if (d->kind == COUNTER) {
		put(o, "%s", d->name);
		put_labels(o, id, s, NULL);
		put(o, " %" PRIu64 "\n", sum_count(s));
	} else {
		uint64_t cum = 0, sum = 0;
		char le[40];

		for (int k = 0; k < SHARDS; k++)
			sum += atomic_load_explicit(&s->sh[k].sum_us, memory_order_relaxed);
		for (size_t i = 0; i <= METRICS_BUCKETS_MAX; i++) {
			bool inf = i == METRICS_BUCKETS_MAX;

			if (!inf && !d->buckets[i]) {
				i = METRICS_BUCKETS_MAX - 1; /* skip the unused bounds */
				continue;
			}
			for (int k = 0; k < SHARDS; k++)
				cum += atomic_load_explicit(&s->sh[k].bucket[i], memory_order_relaxed);
			if (inf)
				snprintf(le, sizeof(le), "\"+Inf\"");
			else
				snprintf(le, sizeof(le), "\"%" PRIu64 ".%06" PRIu64 "\"", d->buckets[i] / 1000000,
					 d->buckets[i] % 1000000);
			put(o, "%s_bucket", d->name);
			put_labels(o, id, s, le);
			put(o, " %" PRIu64 "\n", cum);
		}
		put(o, "%s_sum", d->name);
		put_labels(o, id, s, NULL);
		put(o, " %" PRIu64 ".%06" PRIu64 "\n", sum / 1000000, sum % 1000000);
		put(o, "%s_count", d->name);
		put_labels(o, id, s, NULL);
		put(o, " %" PRIu64 "\n", cum); /* = the +Inf bucket, read once (shards move meanwhile) */
	}
}

int metrics_render(char **out, size_t *len)
{
	struct out o = { .cap = 8192 };

	*out = NULL;
	*len = 0;
	if (!(o.p = malloc(o.cap)))
		return CE_NOMEM;
	o.p[0] = '\0';
	for (int id = 0; id < MET_N; id++) {
		const struct family_def *d = &defs[id];
		struct family *f = &fams[id];

		put(&o, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
		    d->kind == COUNTER ? "counter" : d->kind == GAUGE ? "gauge" : "histogram");
		if (!d->labels[0]) {
			put_series(&o, (enum metric_id)id, &f->base);
			continue;
		}
		for (size_t i = 0, n = atomic_load_explicit(&f->n, memory_order_acquire); i < n; i++)
			put_series(&o, (enum metric_id)id, atomic_load_explicit(&f->s[i], memory_order_relaxed));
	}
	if (o.oom) {
		free(o.p);
		return CE_NOMEM;
	}
	*out = o.p;
	*len = o.len;
	return 0;
}

void metrics_reset(void)
{
	pthread_mutex_lock(&create_mu);
	for (int id = 0; id < MET_N; id++) {
		struct family *f = &fams[id];
		size_t n = atomic_load(&f->n);

		atomic_store(&f->n, 0);
		for (size_t i = 0; i < n; i++) {
			free(atomic_load(&f->s[i]));
			atomic_store(&f->s[i], NULL);
		}
		memset(&f->base, 0, sizeof(f->base));
	}
	pthread_mutex_unlock(&create_mu);
}
