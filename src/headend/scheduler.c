/*
 * scheduler.c - the head-end's clock, per-card event heap, epoch watch and
 * the subscriptions -> grant rule (scheduler.h).
 */
#include <stdlib.h>
#include <string.h>
#include "headend/scheduler.h"
#include "lib/util.h"

/*
 * One pending event per card: an open-addressing table (linear probing,
 * backward-shift deletion, at most 70 % full) keyed by serial holds the
 * card's earliest pending time and its place in the heap; the heap holds
 * table indices, ordered by that time. A later or equal event for a card
 * already pending is ignored, an earlier one moves the card up the heap
 * (decrease-key): memory is bounded by the cards with a pending event,
 * whatever the number of carousel cycles. Times are kept as uint32 unix
 * seconds (until 2106; later ones are clamped to UINT32_MAX).
 */
struct sched_slot {
	uint64_t serial;   /* 0: empty */
	uint32_t when;     /* unix seconds */
	uint32_t pos;      /* index in heap */
};

struct sched {
	struct sched_config cfg;
	struct sched_slot *tab;
	size_t tab_size, used;      /* power of two; live slots */
	uint32_t *heap;             /* min-heap of table indices on tab[].when */
	size_t n, cap;
	bool have_epoch;
	uint32_t epoch;
	struct sched_stats st;
};

_Static_assert(SCHED_MAX_EVENTS <= UINT32_MAX / 2, "heap and table indices fit in uint32");

static uint64_t wall_clock(void *ctx)
{
	(void)ctx;
	return now_wall_ms();
}

int sched_new(const struct sched_config *cfg, struct sched **out)
{
	struct sched *s;

	*out = NULL;
	if (!cfg || cfg->epoch_seconds == 0)
		return CE_ARG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return CE_NOMEM;
	s->cfg = *cfg;
	if (!s->cfg.clock)
		s->cfg.clock = wall_clock;
	*out = s;
	return 0;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	free(s->tab);
	free(s->heap);
	free(s);
}

uint64_t sched_now_ms(const struct sched *s)
{
	return s->cfg.clock(s->cfg.clock_ctx);
}

static int64_t now_s(const struct sched *s)
{
	return (int64_t)(sched_now_ms(s) / 1000u);
}

/* ---- the table ---------------------------------------------------------- */

static size_t home(const struct sched *s, uint64_t serial)
{
	return (size_t)((serial * 0x9E3779B97F4A7C15ull) >> 32) & (s->tab_size - 1);
}

static size_t tab_find(const struct sched *s, uint64_t serial)
{
	size_t mask = s->tab_size - 1;

	if (!s->tab_size)
		return SIZE_MAX;
	for (size_t i = home(s, serial);; i = (i + 1) & mask) {
		if (s->tab[i].serial == serial)
			return i;
		if (s->tab[i].serial == 0)
			return SIZE_MAX;
	}
}

/* The first free slot of serial's probe sequence (the table has room). */
static size_t tab_free_slot(const struct sched *s, uint64_t serial)
{
	size_t i = home(s, serial), mask = s->tab_size - 1;

	while (s->tab[i].serial != 0)
		i = (i + 1) & mask;
	return i;
}

/* Double the table; every live slot moves, the heap follows it. */
static int tab_grow(struct sched *s)
{
	size_t nsize = s->tab_size ? s->tab_size * 2 : 1024;
	struct sched_slot *old = s->tab;
	size_t osize = s->tab_size;

	s->tab = calloc(nsize, sizeof(*s->tab));
	if (!s->tab) {
		s->tab = old;
		return CE_NOMEM;
	}
	s->tab_size = nsize;
	for (size_t i = 0; i < osize; i++) {
		size_t j;

		if (old[i].serial == 0)
			continue;
		j = tab_free_slot(s, old[i].serial);
		s->tab[j] = old[i];
		s->heap[old[i].pos] = (uint32_t)j;
	}
	free(old);
	return 0;
}

/* Empty slot i, shifting back the slots after it that probed past it. */
static void tab_delete(struct sched *s, size_t i)
{
	size_t mask = s->tab_size - 1, j = i;

	s->tab[i].serial = 0;
	s->used--;
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (s->tab[j].serial == 0)
			return;
		k = home(s, s->tab[j].serial);
		/* slot j stays if its home lies cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->tab[i] = s->tab[j];
		s->heap[s->tab[i].pos] = (uint32_t)i;
		s->tab[j].serial = 0;
		i = j;
	}
}

/* ---- the heap ----------------------------------------------------------- */

static uint32_t when_at(const struct sched *s, size_t hi)
{
	return s->tab[s->heap[hi]].when;
}

static void heap_set(struct sched *s, size_t hi, uint32_t slot)
{
	s->heap[hi] = slot;
	s->tab[slot].pos = (uint32_t)hi;
}

static void sift_up(struct sched *s, size_t i)
{
	uint32_t slot = s->heap[i], w = s->tab[slot].when;

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (when_at(s, p) <= w)
			break;
		heap_set(s, i, s->heap[p]);
		i = p;
	}
	heap_set(s, i, slot);
}

static void sift_down(struct sched *s, size_t i)
{
	uint32_t slot = s->heap[i], w = s->tab[slot].when;

	for (;;) {
		size_t l = 2 * i + 1, m;

		if (l >= s->n)
			break;
		m = l;
		if (l + 1 < s->n && when_at(s, l + 1) < when_at(s, l))
			m = l + 1;
		if (w <= when_at(s, m))
			break;
		heap_set(s, i, s->heap[m]);
		i = m;
	}
	heap_set(s, i, slot);
}

/* Room for one more pending card. 0, CE_LIMIT (counted), CE_NOMEM. */
static int reserve(struct sched *s)
{
	if (s->n >= SCHED_MAX_EVENTS) {
		s->st.events_dropped++;
		return CE_LIMIT;
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		uint32_t *nh;

		if (ncap > SCHED_MAX_EVENTS)
			ncap = SCHED_MAX_EVENTS;
		nh = realloc(s->heap, ncap * sizeof(*nh));
		if (!nh)
			return CE_NOMEM;
		s->heap = nh;
		s->cap = ncap;
	}
	if ((s->used + 1) * 10 > s->tab_size * 7)
		return tab_grow(s);
	return 0;
}

int sched_at(struct sched *s, uint64_t serial, int64_t when_s)
{
	uint32_t w;
	size_t i;
	int r;

	if (when_s == SCHED_NO_EVENT)
		return 0;
	if (serial == 0)
		return CE_ARG;
	w = when_s < 0 ? 0 : when_s > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)when_s;
	if ((i = tab_find(s, serial)) != SIZE_MAX) {
		if (w >= s->tab[i].when) {
			s->st.events_merged++; /* the pending one comes first */
			return 0;
		}
		s->tab[i].when = w;
		sift_up(s, s->tab[i].pos);
		s->st.events_moved++;
		return 0;
	}
	if ((r = reserve(s)) != 0)
		return r;
	i = tab_free_slot(s, serial);
	s->tab[i] = (struct sched_slot){ serial, w, 0 };
	s->used++;
	s->heap[s->n] = (uint32_t)i;
	sift_up(s, s->n++);
	s->st.events_added++;
	return 0;
}

size_t sched_due(struct sched *s, uint64_t *serials, size_t max)
{
	int64_t t = now_s(s);
	size_t k = 0;

	while (k < max && s->n > 0 && (int64_t)when_at(s, 0) <= t) {
		uint32_t root = s->heap[0];

		serials[k++] = s->tab[root].serial;
		if (--s->n > 0) {
			heap_set(s, 0, s->heap[s->n]);
			sift_down(s, 0);
		}
		tab_delete(s, root);
		s->st.events_fired++;
	}
	return k;
}

bool sched_rotation_due(struct sched *s, uint32_t *epoch)
{
	uint32_t e = (uint32_t)((uint64_t)now_s(s) / s->cfg.epoch_seconds);
	bool changed = s->have_epoch && e != s->epoch;

	s->have_epoch = true;
	s->epoch = e;
	if (changed)
		s->st.rotations++;
	if (epoch)
		*epoch = e;
	return changed;
}

int64_t sched_seconds_to_rotation(const struct sched *s)
{
	int64_t t = now_s(s), es = s->cfg.epoch_seconds;

	return es - t % es;
}

void sched_stats(const struct sched *s, struct sched_stats *out)
{
	*out = s->st;
	out->pending = s->n;
	out->bytes = s->tab_size * sizeof(*s->tab) + s->cap * sizeof(*s->heap);
}

void sched_grant_at(const struct sched_sub *subs, size_t n, int64_t now, struct emm_grant *g, int64_t *next_s)
{
	int64_t next = SCHED_NO_EVENT, start = INT64_MIN, finish = INT64_MAX;

	memset(g, 0, sizeof(*g));
	for (size_t i = 0; i < n; i++) {
		const struct sched_sub *u = &subs[i];

		if (u->start_s > now && u->start_s < next)
			next = u->start_s;
		if (u->finish_s > now && u->finish_s < next)
			next = u->finish_s;
		if (!(u->start_s <= now && now < u->finish_s))
			continue;
		if (u->package < 32) {
			g->packages |= 1u << u->package;
		} else if (g->next < EMM_MAX_EXT_PACKAGES && u->package <= 0xFFFF) {
			g->ext[g->next++] = (uint16_t)u->package;
		} else {
			continue; /* past the card's EMM_MAX_EXT_PACKAGES: left out, and its period too */
		}
		if (u->start_s > start)
			start = u->start_s;
		if (u->finish_s < finish)
			finish = u->finish_s;
	}
	/* Nothing in force: the period 0..0, the same at every call, so an
	 * unchanged card without packages keeps its EMM digest and sequence
	 * number from cycle to cycle (it was "now..now", which renumbered the
	 * card every cycle). No ECM time falls in it either way. */
	if (g->packages == 0 && g->next == 0)
		start = finish = 0;
	if (start < 0)
		start = 0;
	g->start_s = (uint64_t)start;
	g->finish_s = (uint64_t)finish;
	*next_s = next;
}

int64_t sched_next_event(const struct sched *s)
{
	return s->n > 0 ? (int64_t)when_at(s, 0) : SCHED_NO_EVENT;
}
