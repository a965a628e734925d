/*
 * search.c - the search workers (search.h): a fixed set of threads, each
 * with its own store connection, taking jobs from one bounded FIFO under
 * a mutex; each job's deadline is armed on the worker's connection while
 * it runs; the result goes back to the submitter's loop through its pipe.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include "sms/search.h"
#include "lib/log.h"
#include "lib/util.h"

struct search_worker {
	struct sms_search_pool *p;
	struct sms_store *store;
	pthread_t tid;
	bool started;
};

struct sms_search_pool {
	struct sms_search_limits lim;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sms_search_job *head, *tail;
	unsigned queued, running;
	bool stopping;
	struct sms_search_stats stats;
	struct search_worker w[SMS_SEARCH_WORKERS_MAX];
};

static void notify(struct sms_search_job *j)
{
	/* 8 bytes into a pipe: atomic, and the queue bound keeps far below
	 * its 64 KiB, so it never blocks or is cut. */
	if (write(j->notify_fd, &j, sizeof(j)) != (ssize_t)sizeof(j))
		LOG_ERR("sms", "search: cannot hand a result back: %s", strerror(errno));
}

static void *worker_main(void *arg)
{
	struct search_worker *w = arg;
	struct sms_search_pool *p = w->p;

	/* Linux: the nice value is per thread. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SEARCH_NICE) != 0)
		LOG_WARN("sms", "search: cannot lower the search threads' priority: %s", strerror(errno));
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct sms_search_job *j;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping)
			break;
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		p->running++;
		pthread_mutex_unlock(&p->mu);
		if (now_mono_ms() >= j->deadline_ms) {
			j->expired = true;
		} else {
			if (sms_store_set_deadline(w->store, j->deadline_ms) != 0)
				LOG_WARN("sms", "search: no deadline on this connection");
			j->run(w->store, j);
			if (sms_store_set_deadline(w->store, 0) != 0)
				LOG_WARN("sms", "search: cannot clear the deadline");
		}
		pthread_mutex_lock(&p->mu);
		p->running--;
		if (j->expired)
			p->stats.expired++;
		else
			p->stats.run++;
		pthread_mutex_unlock(&p->mu);
		notify(j);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int sms_search_pool_new(const char *db_uri, const struct sms_search_limits *lim, struct sms_search_pool **out)
{
	struct sms_search_pool *p;
	int r;

	*out = NULL;
	if (!db_uri || (lim && lim->workers > SMS_SEARCH_WORKERS_MAX))
		return CE_ARG;
	if (!(p = calloc(1, sizeof(*p))))
		return CE_NOMEM;
	p->lim.workers = lim && lim->workers ? lim->workers : SMS_SEARCH_WORKERS_DEFAULT;
	p->lim.queue = lim && lim->queue ? lim->queue : SMS_SEARCH_QUEUE_DEFAULT;
	p->lim.deadline_ms = lim && lim->deadline_ms ? lim->deadline_ms : SMS_SEARCH_DEADLINE_MS_DEFAULT;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (unsigned i = 0; i < p->lim.workers; i++) {
		struct search_worker *w = &p->w[i];

		w->p = p;
		if ((r = sms_store_open(db_uri, &w->store)) != 0 || (r = sms_store_no_autocheckpoint(w->store)) != 0)
			goto fail;
		if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
			r = CE_IO;
			goto fail;
		}
		w->started = true;
	}
	*out = p;
	return 0;
fail:
	sms_search_pool_free(p);
	return r;
}

void sms_search_pool_free(struct sms_search_pool *p)
{
	struct sms_search_job *j;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	j = p->head;
	p->head = p->tail = NULL;
	p->queued = 0;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	while (j) {
		struct sms_search_job *next = j->next;

		j->cancelled = true;
		notify(j);
		j = next;
	}
	for (unsigned i = 0; i < SMS_SEARCH_WORKERS_MAX; i++) {
		if (p->w[i].started)
			pthread_join(p->w[i].tid, NULL);
		sms_store_close(p->w[i].store);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int sms_search_submit(struct sms_search_pool *p, struct sms_search_job *j)
{
	int r = 0;

	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		r = CE_STATE;
	} else if (p->queued >= p->lim.queue) {
		p->stats.refused++;
		r = CE_LIMIT;
	} else {
		j->next = NULL;
		j->cancelled = j->expired = false;
		j->deadline_ms = now_mono_ms() + p->lim.deadline_ms;
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		p->queued++;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return r;
}

void sms_search_pool_limits(const struct sms_search_pool *p, struct sms_search_limits *out)
{
	*out = p->lim;
}

void sms_search_pool_stats(struct sms_search_pool *p, struct sms_search_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->stats;
	pthread_mutex_unlock(&p->mu);
}
