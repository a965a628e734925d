/*
 * scheduler.c - the head-end's clock, per-card event heap, epoch watch and
 * the subscriptions -> grant rule (scheduler.h).
 */
#include <stdlib.h>
#include <string.h>
#include "headend/scheduler.h"
#include "lib/util.h"

struct sched_ev {
	int64_t when_s;
	uint64_t serial;
};

struct sched {
	struct sched_config cfg;
	struct sched_ev *heap;      /* min-heap on when_s */
	size_t n, cap;
	bool have_epoch;
	uint32_t epoch;
	struct sched_stats st;
};

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

int sched_at(struct sched *s, uint64_t serial, int64_t when_s)
{
	size_t i;

	if (when_s == SCHED_NO_EVENT)
		return 0;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		struct sched_ev *nh;

		if (ncap > SCHED_MAX_EVENTS)
			ncap = SCHED_MAX_EVENTS;
		if (s->n >= ncap) {
			s->st.events_dropped++;
			return CE_LIMIT;
		}
		nh = realloc(s->heap, ncap * sizeof(*nh));
		if (!nh)
			return CE_NOMEM;
		s->heap = nh;
		s->cap = ncap;
	}
	i = s->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (s->heap[p].when_s <= when_s)
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = (struct sched_ev){ when_s, serial };
	s->st.events_added++;
	return 0;
}

static void heap_pop(struct sched *s)
{
	struct sched_ev last = s->heap[--s->n];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l >= s->n)
			break;
		m = l;
		if (l + 1 < s->n && s->heap[l + 1].when_s < s->heap[l].when_s)
			m = l + 1;
		if (last.when_s <= s->heap[m].when_s)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (s->n)
		s->heap[i] = last;
}

size_t sched_due(struct sched *s, uint64_t *serials, size_t max)
{
	int64_t t = now_s(s);
	size_t k = 0;

	while (k < max && s->n > 0 && s->heap[0].when_s <= t) {
		serials[k++] = s->heap[0].serial;
		heap_pop(s);
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
		}
		if (u->start_s > start)
			start = u->start_s;
		if (u->finish_s < finish)
			finish = u->finish_s;
	}
	if (g->packages == 0 && g->next == 0) {
		start = finish = now < 0 ? 0 : now;
	}
	if (start < 0)
		start = 0;
	g->start_s = (uint64_t)start;
	g->finish_s = (uint64_t)finish;
	*next_s = next;
}

int64_t sched_next_event(const struct sched *s)
{
	return s->n > 0 ? s->heap[0].when_s : SCHED_NO_EVENT;
}
