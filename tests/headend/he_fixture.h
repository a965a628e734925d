/*
 * he_fixture.h - what the head-end suites (test_headend.c, test_hemem.c,
 * test_carousel_group.c) share:
 *   - a fake clock (struct fake_clock, fake_now) for sched/carousel/headend;
 *   - our MUX on 127.0.0.1 with a thread that reassembles the EMM PID's
 *     sections into a ring of the last HE_RING (struct mux_runner);
 *   - a head-end config (he_config) and a thread running headend_run;
 *   - the box side: open one EMM section as card serial's cardless box
 *     would (he_box_open), and wait for a box fed from the MUX ring to
 *     reach a set of packages (he_wait_box).
 * All static inline: each suite uses a part.
 */
#ifndef CASTELLAN_HE_FIXTURE_H
#define CASTELLAN_HE_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "testutil.h"
#include "cas/emm.h"
#include "cas/keys.h"
#include "headend/headend.h"
#include "scrambler/mux.h"
#include "ts/psi.h"
#include "ts/ts.h"

/* ---- fake clock ------------------------------------------------------- */

struct fake_clock {
	_Atomic uint64_t ms;
};

static inline uint64_t fake_now(void *ctx)
{
	return atomic_load(&((struct fake_clock *)ctx)->ms);
}

/* ---- the box side ------------------------------------------------------ */

/* Card serial's cardless box: parse sec (the view into *vout if vout),
 * open it with K_card, apply it to st (if st). 0 or the first failure. */
static inline int he_box_open(const struct keystore *ks, const uint8_t *sec, size_t len, uint64_t serial,
			      struct emm_card_state *st, struct emm_view *vout)
{
	struct emm_view v;
	struct emm_content ct;
	uint8_t k[CARD_KEY_BYTES];
	int r;

	if ((r = emm_parse(sec, len, serial, &v)) != 0)
		return r;
	if (vout)
		*vout = v;
	assert_int_equal(keystore_card_key(ks, serial, k), 0);
	r = emm_open(&v, k, &ct);
	secret_wipe(k, sizeof(k));
	if (r != 0)
		return r;
	r = st ? emm_state_apply(st, &v, &ct) : 0;
	emm_content_wipe(&ct);
	return r;
}

/* ---- our MUX and what came out of it ----------------------------------- */

#define HE_EMM_PID 0x1FF0
#define HE_RING 1024 /* sections kept */

struct mux_runner {
	struct mux *m;
	pthread_t th;
	atomic_int stop;
	struct psi_asm a;
	pthread_mutex_t mu;
	size_t n; /* sections seen; section i is at i % HE_RING while i + HE_RING > n */
	uint8_t sec[HE_RING][EMM_MAX_SECTION];
	size_t len[HE_RING];
};

static inline int he_mr_sec(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct mux_runner *r = ctx;

	(void)pid;
	if (len <= EMM_MAX_SECTION) {
		pthread_mutex_lock(&r->mu);
		memcpy(r->sec[r->n % HE_RING], sec, len);
		r->len[r->n % HE_RING] = len;
		r->n++;
		pthread_mutex_unlock(&r->mu);
	}
	return 0;
}

static inline void *he_mux_main(void *arg)
{
	struct mux_runner *r = arg;
	static uint8_t pk[256 * TS_PACKET_BYTES]; /* one runner at a time */

	while (!atomic_load(&r->stop)) {
		size_t n = 0;

		if (mux_poll(r->m, 10) != 0 || mux_take(r->m, pk, 256, &n) != 0)
			break;
		for (size_t k = 0; k < n; k++) {
			struct ts_hdr h;

			if (ts_parse(pk + k * TS_PACKET_BYTES, &h) == 0)
				(void)psi_asm_push(&r->a, pk + k * TS_PACKET_BYTES, &h, he_mr_sec, r);
		}
	}
	return NULL;
}

/* A MUX on 127.0.0.1 (any port) granting max_kbps, and its thread; its
 * address "127.0.0.1:port" into addr. */
static inline void he_mux_start(struct mux_runner *r, uint32_t max_kbps, char *addr, size_t cap)
{
	struct mux_config mc = { .listen = "127.0.0.1:0", .emm_pid = HE_EMM_PID, .max_kbps = max_kbps };

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	psi_asm_init(&r->a, HE_EMM_PID);
	assert_int_equal(mux_new(&mc, &r->m), 0);
	assert_int_equal(pthread_create(&r->th, NULL, he_mux_main, r), 0);
	snprintf(addr, cap, "127.0.0.1:%u", mux_port(r->m));
}

static inline void he_mux_stop(struct mux_runner *r)
{
	atomic_store(&r->stop, 1);
	pthread_join(r->th, NULL);
	mux_free(r->m);
	pthread_mutex_destroy(&r->mu);
}

/* A head-end on data dir dir with keystore ks, its admin key written to
 * keyf, its EMMs at emm_kbps to the MUX at mux; no HTTP or ECMG listener
 * (the caller sets http_addr, ecmg_addr and the rest after). */
static inline void he_config(struct headend_config *hc, const char *dir, const struct keystore *ks,
			     const char *keyf, const char *mux, uint16_t emm_kbps)
{
	memset(hc, 0, sizeof(*hc));
	hc->data_dir = dir;
	hc->http_addr = "";
	hc->ecmg_addr = "";
	hc->mux_addr = mux;
	hc->ks = ks;
	hc->emm_kbps = emm_kbps;
	hc->admin_key_file = keyf;
}

/* pthread body: headend_run(arg), which must end with 0. */
static inline void *he_headend_main(void *arg)
{
	assert_int_equal(headend_run(arg), 0);
	return NULL;
}

/* Apply what the MUX saw for serial to box (from *seen on); 0 once box has
 * packages == want, CE_TIMEOUT after 30 s. With h and worst: *worst is the
 * most scheduler events pending seen meanwhile. */
static inline int he_wait_box(struct mux_runner *mr, const struct keystore *ks, uint64_t serial,
			      struct emm_card_state *box, uint32_t want, size_t *seen, struct headend *h, size_t *worst)
{
	uint8_t k[CARD_KEY_BYTES];
	struct headend_stats hs;
	int rc = CE_TIMEOUT;

	assert_int_equal(keystore_card_key(ks, serial, k), 0);
	for (int tries = 0; tries < 3000; tries++) {
		pthread_mutex_lock(&mr->mu);
		if (mr->n - *seen > HE_RING)
			*seen = mr->n - HE_RING; /* overwritten: the cycle sends it again */
		while (*seen < mr->n) {
			struct emm_view v;
			struct emm_content ct;
			size_t i = *seen % HE_RING;

			(*seen)++;
			if (emm_parse(mr->sec[i], mr->len[i], serial, &v) != 0 || emm_open(&v, k, &ct) != 0)
				continue;
			int ar = emm_state_apply(box, &v, &ct);

			assert_true(ar == 0 || ar == CE_REPLAY);
			emm_content_wipe(&ct);
		}
		pthread_mutex_unlock(&mr->mu);
		if (h && worst) {
			headend_stats(h, &hs);
			if (hs.sched.pending > *worst)
				*worst = hs.sched.pending;
		}
		if (box->has_ent && box->ent.packages == want) {
			rc = 0;
			break;
		}
		usleep(10000);
	}
	secret_wipe(k, sizeof(k));
	return rc;
}

#endif
