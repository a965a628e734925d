/*
 * e2e_ts.c - the harness's TS checks: services from PAT/PMT, a box's output
 * judged against the clear input, the clear input fed at its own pace, a
 * growing box output watched. See e2e.h.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "e2e.h"
#include "lib/err.h"
#include "lib/util.h"
#include "ts/ts.h"

#define PKT TS_PACKET_BYTES

static uint16_t pid_of(const uint8_t *p)
{
	return (uint16_t)(((p[1] & 0x1F) << 8) | p[2]);
}

int e2e_ts_load(const char *path, struct e2e_ts *t)
{
	size_t len = 0;
	int r;

	t->buf = NULL;
	t->n = 0;
	if ((r = file_read_all(path, 512u << 20, &t->buf, &len)) != 0)
		return r;
	if (len % PKT != 0) {
		e2e_ts_free(t);
		return CE_FORMAT;
	}
	t->n = len / PKT;
	return 0;
}

void e2e_ts_free(struct e2e_ts *t)
{
	free(t->buf);
	t->buf = NULL;
	t->n = 0;
}

struct scan {
	struct pat pat;
	bool have_pat;
	uint16_t skip;
	struct pmt *pmt;
	struct e2e_svc *svc;
	size_t cap, n;
	struct psi_asm *pmt_asm;
};

static int scan_cb(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct scan *s = ctx;

	if (pid == TS_PID_PAT) {
		if (s->have_pat || pat_parse(sec, len, &s->pat) != 0)
			return 0;
		s->have_pat = true;
		for (size_t k = 0; k < s->pat.nprog && s->n < s->cap; k++) {
			if (s->pat.prog[k].program == 0 || s->pat.prog[k].program == s->skip)
				continue;
			memset(&s->svc[s->n], 0, sizeof(s->svc[0]));
			s->svc[s->n].program = s->pat.prog[k].program;
			s->svc[s->n].pmt_pid = s->pat.prog[k].pid;
			psi_asm_init(&s->pmt_asm[s->n], s->pat.prog[k].pid);
			s->n++;
		}
		return 0;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct e2e_svc *v = &s->svc[i];

		if (v->pmt_pid != pid || v->npids || pmt_parse(sec, len, s->pmt) != 0 || s->pmt->program != v->program)
			continue;
		for (size_t e = 0; e < s->pmt->nes && e < PMT_MAX_ES; e++)
			v->pids[v->npids++] = s->pmt->es[e].pid;
	}
	return 0;
}

int e2e_services(const struct e2e_ts *t, uint16_t skip_program, struct e2e_svc *svc, size_t cap, size_t *n)
{
	struct scan s = { .skip = skip_program, .svc = svc, .cap = cap };
	struct psi_asm *pat_asm = calloc(1, sizeof(*pat_asm));
	size_t with_pmt = 0;
	int r = CE_NOMEM;

	*n = 0;
	s.pmt = calloc(1, sizeof(*s.pmt));
	s.pmt_asm = calloc(cap + 1, sizeof(*s.pmt_asm));
	if (!pat_asm || !s.pmt || !s.pmt_asm)
		goto out;
	psi_asm_init(pat_asm, TS_PID_PAT);
	for (size_t i = 0; i < t->n; i++) {
		const uint8_t *p = t->buf + i * PKT;
		struct ts_hdr h;

		if (ts_parse(p, &h) != 0)
			continue;
		if (h.pid == TS_PID_PAT && !s.have_pat)
			(void)psi_asm_push(pat_asm, p, &h, scan_cb, &s);
		for (size_t k = 0; k < s.n; k++)
			if (h.pid == svc[k].pmt_pid && !svc[k].npids)
				(void)psi_asm_push(&s.pmt_asm[k], p, &h, scan_cb, &s);
	}
	for (size_t k = 0; k < s.n; k++)
		with_pmt += svc[k].npids ? 1 : 0;
	*n = s.n;
	r = s.have_pat && with_pmt ? 0 : CE_FORMAT;
out:
	free(pat_asm);
	free(s.pmt);
	free(s.pmt_asm);
	return r;
}

static bool pid_wanted(const uint16_t *pids, size_t npids, uint16_t pid)
{
	if (!pids)
		return true;
	for (size_t i = 0; i < npids; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

int e2e_judge(const struct e2e_ts *clear, const struct e2e_ts *scr, const struct e2e_ts *box, const uint16_t *pids,
	size_t npids, struct e2e_judge *j)
{
	size_t *cnt = calloc(TS_PID_MAX + 1, sizeof(size_t)), *seen = calloc(TS_PID_MAX + 1, sizeof(size_t));
	size_t *first = calloc(TS_PID_MAX + 2, sizeof(size_t));
	size_t *right = calloc(TS_PID_MAX + 1, sizeof(size_t)), *other = calloc(TS_PID_MAX + 1, sizeof(size_t));
	const uint8_t **pos = calloc(clear->n + 1, sizeof(*pos));
	int r = CE_NOMEM;

	memset(j, 0, sizeof(*j));
	if (!cnt || !seen || !first || !right || !other || !pos)
		goto out;
	r = CE_FORMAT;
	if (scr->n != box->n)
		goto out;
	/* the clear packets grouped by PID, in order */
	for (size_t i = 0; i < clear->n; i++)
		cnt[pid_of(clear->buf + i * PKT)]++;
	for (size_t p = 0, acc = 0; p <= TS_PID_MAX; p++) {
		first[p] = acc;
		acc += cnt[p];
	}
	for (size_t i = 0; i < clear->n; i++) {
		uint16_t pid = pid_of(clear->buf + i * PKT);

		pos[first[pid] + seen[pid]++] = clear->buf + i * PKT;
	}
	memset(seen, 0, (TS_PID_MAX + 1) * sizeof(size_t));
	for (size_t i = 0; i < box->n; i++) {
		const uint8_t *o = box->buf + i * PKT, *sp = scr->buf + i * PKT;
		uint16_t pid = pid_of(o);
		size_t k = seen[pid]++;
		bool same = k < cnt[pid] && memcmp(o, pos[first[pid] + k], PKT) == 0;
		struct ts_hdr h;

		if (!pid_wanted(pids, npids, pid) || ts_parse(o, &h) != 0 || !h.has_payload || h.payload_len == 0)
			continue;
		j->packets++;
		j->same += same;
		if ((sp[3] >> 6) == 0)
			continue; /* not scrambled by the scrambler */
		j->scrambled++;
		if (same) {
			j->right++;
			right[pid]++;
		} else if (memcmp(o, sp, PKT) == 0) {
			j->left++;
			other[pid] |= 1;
		} else {
			j->wrong++;
			other[pid] |= 2;
		}
	}
	for (size_t p = 0; p <= TS_PID_MAX; p++) {
		if (right[p] && !other[p])
			j->pids_all_right++;
		if (other[p] == 1 && !right[p])
			j->pids_all_left++;
	}
	r = 0;
out:
	free(cnt);
	free(seen);
	free(first);
	free(right);
	free(other);
	free(pos);
	return r;
}

bool e2e_judge_clear(const struct e2e_judge *j)
{
	return j->scrambled > 0 && j->packets > 0 && j->same == j->packets;
}

bool e2e_judge_refused(const struct e2e_judge *j)
{
	return j->scrambled > 0 && j->left == j->scrambled;
}

json_t *e2e_judge_json(const struct e2e_judge *j)
{
	return json_pack("{sI sI sI sI sI sI}", "packets", (json_int_t)j->packets, "same", (json_int_t)j->same,
		"scrambled", (json_int_t)j->scrambled, "right", (json_int_t)j->right, "left", (json_int_t)j->left,
		"wrong", (json_int_t)j->wrong);
}

uint64_t e2e_pcr_span_ms(const struct e2e_ts *t)
{
	uint64_t first = 0, last = 0;
	int pcr_pid = -1;

	for (size_t i = 0; i < t->n; i++) {
		const uint8_t *p = t->buf + i * PKT;
		uint64_t base;

		/* adaptation field of 7+ bytes with the PCR flag */
		if (!(p[3] & 0x20) || p[4] < 7 || !(p[5] & 0x10) || (pcr_pid >= 0 && pid_of(p) != pcr_pid))
			continue;
		base = ((uint64_t)p[6] << 25) | ((uint64_t)p[7] << 17) | ((uint64_t)p[8] << 9) | ((uint64_t)p[9] << 1) |
		       (p[10] >> 7);
		if (pcr_pid < 0) {
			pcr_pid = pid_of(p);
			first = base;
		}
		last = base;
	}
	return last > first ? (last - first) / 90 : 0;
}

#define FEED_CHUNK 200 /* packets per write */

pid_t e2e_feeder(const struct e2e_ts *t, int fd, unsigned loops)
{
	uint64_t span = e2e_pcr_span_ms(t);
	pid_t pid;

	if (span == 0)
		span = t->n * PKT * 8 / 10000; /* 10 Mbit/s */
	if (t->n == 0)
		return -1;
	pid = fork();
	if (pid != 0)
		return pid;
	signal(SIGPIPE, SIG_DFL);
	for (unsigned k = 0; k < loops; k++) {
		for (size_t i = 0; i < t->n; i += FEED_CHUNK) {
			size_t n = t->n - i < FEED_CHUNK ? t->n - i : FEED_CHUNK, left = n * PKT;
			const uint8_t *p = t->buf + i * PKT;
			uint64_t us = span * 1000u * n / t->n;
			struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };

			while (left) {
				ssize_t w = write(fd, p, left);

				if (w <= 0)
					_exit(0);
				p += w;
				left -= (size_t)w;
			}
			nanosleep(&ts, NULL);
		}
	}
	_exit(0);
}

static int cmp_payload(const void *a, const void *b)
{
	return memcmp(*(const uint8_t *const *)a, *(const uint8_t *const *)b, PKT - 4);
}

/* A packet with payload and no adaptation field on pid. */
static bool plain_payload(const uint8_t *p, uint16_t pid)
{
	return p[0] == 0x47 && pid_of(p) == pid && (p[3] & 0x10) && !(p[3] & 0x20);
}

int e2e_watch_init(struct e2e_watch *w, const char *path, const struct e2e_ts *clear, uint16_t pid)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->pid = pid;
	if (!(w->clear = calloc(clear->n + 1, sizeof(*w->clear))))
		return CE_NOMEM;
	for (size_t i = 0; i < clear->n; i++)
		if (plain_payload(clear->buf + i * PKT, pid))
			w->clear[w->nclear++] = clear->buf + i * PKT + 4;
	qsort(w->clear, w->nclear, sizeof(*w->clear), cmp_payload);
	return w->nclear ? 0 : CE_NOT_FOUND;
}

void e2e_watch_free(struct e2e_watch *w)
{
	free(w->clear);
	w->clear = NULL;
}

void e2e_watch_look(struct e2e_watch *w, size_t *ok, size_t *bad)
{
	uint8_t buf[PKT * 512];
	int fd = open(w->path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	*ok = *bad = 0;
	if (fd < 0)
		return;
	while ((n = pread(fd, buf, sizeof(buf), w->pos)) >= PKT) {
		size_t np = (size_t)n / PKT;

		for (size_t i = 0; i < np; i++) {
			const uint8_t *p = buf + i * PKT, *key = p + 4;

			if (!plain_payload(p, w->pid))
				continue;
			if (bsearch(&key, w->clear, w->nclear, sizeof(*w->clear), cmp_payload)) {
				(*ok)++;
			} else {
				(*bad)++;
				if ((p[3] >> 6) == 0)
					w->garbage++;
			}
		}
		w->pos += (off_t)(np * PKT);
	}
	close(fd);
}

double e2e_watch_until(struct e2e_watch *w, bool want, unsigned timeout_s)
{
	uint64_t t0 = now_mono_us();

	while (now_mono_us() - t0 < (uint64_t)timeout_s * 1000000u) {
		size_t ok, bad;

		usleep(100 * 1000);
		e2e_watch_look(w, &ok, &bad);
		if (ok + bad >= 3 && (want ? (ok > 0 && bad == 0) : (ok == 0)))
			return (double)(now_mono_us() - t0) / 1e6;
	}
	return -1.0;
}
