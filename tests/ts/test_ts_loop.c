/*
 * test_ts_loop.c - ts_loop (src/ts/ts_loop.h): a stream repeated end to end
 * keeps one clock (PCR at the input's rate across every seam, PTS/DTS
 * moved by the same period) and every PID's continuity; bad inputs are
 * refused. The real stream: tests/data/ts-clear-2svc.ts.
 */
#include "testutil.h"
#include "lib/util.h"
#include "ts/ts.h"
#include "ts/ts_loop.h"

#define PKT TS_PACKET_BYTES

/* One packet on pid with cc; pcr >= 0 puts a PCR in; pts >= 0 starts a
 * video PES with PTS (and DTS = pts - 3600). */
static void mk(uint8_t *p, uint16_t pid, uint8_t cc, int64_t pcr, int64_t pts)
{
	size_t at = 4;

	memset(p, 0xFF, PKT);
	p[0] = TS_SYNC;
	p[1] = (uint8_t)((pts >= 0 ? 0x40 : 0) | pid >> 8);
	p[2] = (uint8_t)pid;
	p[3] = (uint8_t)(0x10 | cc);
	if (pcr >= 0) {
		uint64_t base = (uint64_t)pcr / 300, ext = (uint64_t)pcr % 300;

		p[3] |= 0x20;
		p[4] = 7;
		p[5] = 0x10;
		p[6] = (uint8_t)(base >> 25);
		p[7] = (uint8_t)(base >> 17);
		p[8] = (uint8_t)(base >> 9);
		p[9] = (uint8_t)(base >> 1);
		p[10] = (uint8_t)((base & 1) << 7 | 0x7E | ext >> 8);
		p[11] = (uint8_t)ext;
		at = 12;
	}
	if (pts >= 0) {
		uint64_t v[2] = { (uint64_t)pts, (uint64_t)pts - 3600 };
		uint8_t *q = p + at;

		q[0] = 0; q[1] = 0; q[2] = 1; q[3] = 0xE0; q[4] = 0; q[5] = 0;
		q[6] = 0x80; q[7] = 0xC0; q[8] = 10;
		for (int k = 0; k < 2; k++) {
			uint8_t *s = q + 9 + 5 * k;

			s[0] = (uint8_t)((k ? 0x10 : 0x30) | (v[k] >> 29 & 0x0E) | 1);
			s[1] = (uint8_t)(v[k] >> 22);
			s[2] = (uint8_t)((v[k] >> 14 & 0xFE) | 1);
			s[3] = (uint8_t)(v[k] >> 7);
			s[4] = (uint8_t)((v[k] << 1 & 0xFE) | 1);
		}
	}
}

static uint64_t pts_at(const uint8_t *s)
{
	return (uint64_t)(s[0] >> 1 & 7) << 30 | (uint64_t)(s[1] << 7 | s[2] >> 1) << 15 | (uint64_t)(s[3] << 7 | s[4] >> 1);
}

/* 10 packets: PCR on 0x100 every other packet, 2700 ticks per packet
 * (10 ms per PCR), a PES start with PTS on 0x100 at packet 0 and 6, PID
 * 0x101 with payload, PID 0x102 adaptation only (keeps its CC). */
static size_t synth(uint8_t *b)
{
	size_t n = 0;
	uint8_t cc100 = 3, cc101 = 14;

	for (int i = 0; i < 10; i++) {
		int64_t pts = i == 0 ? 900000 : i == 6 ? 903600 : -1;

		if (i % 2 == 0)
			mk(b + PKT * n++, 0x100, cc100++ & 15, 1000000 + (int64_t)i * 2700, pts);
		else
			mk(b + PKT * n++, 0x101, cc101++ & 15, -1, -1);
	}
	return n;
}

static void test_loop_synth(void **st)
{
	uint8_t in[10 * PKT], *out = NULL;
	size_t n = synth(in), len = 0;
	uint64_t period_ms = 0, prev_pcr = 0;
	int last_cc[0x200];

	(void)st;
	assert_int_equal(ts_loop(in, n * PKT, 3, 1u << 20, &out, &len, &period_ms), 0);
	assert_int_equal(len, 3 * n * PKT);
	assert_int_equal(period_ms, 1); /* 10 packets at 2700 ticks = 27000 = 1 ms */
	for (int i = 0; i < 0x200; i++)
		last_cc[i] = -1;
	for (size_t i = 0; i < len / PKT; i++) {
		struct ts_hdr h;

		assert_int_equal(ts_parse(out + i * PKT, &h), 0);
		if (last_cc[h.pid] >= 0)
			assert_int_equal(h.cc, (last_cc[h.pid] + 1) & 15); /* continuity across both seams */
		last_cc[h.pid] = h.cc;
		if (h.has_pcr) {
			if (prev_pcr)
				assert_int_equal(h.pcr - prev_pcr, 2 * 2700); /* one rate, seams included */
			prev_pcr = h.pcr;
		}
	}
	/* copy 2's first PES: PTS and DTS moved on by 2 periods (2 * 27000 / 300 = 180) */
	assert_int_equal(pts_at(out + 2 * n * PKT + 12 + 9), 900000 + 180);
	assert_int_equal(pts_at(out + 2 * n * PKT + 12 + 14), 900000 - 3600 + 180);
	/* copy 0 untouched */
	assert_memory_equal(out, in, n * PKT);
	free(out);
}

static void test_loop_bad(void **st)
{
	uint8_t in[10 * PKT], one_pcr[2 * PKT], back[2 * PKT], *out = (uint8_t *)1;
	size_t n = synth(in), len = 7;
	uint64_t pm = 7;
	static const struct {
		const char *what;
		size_t len;
		unsigned times;
		size_t max;
		int want;
	} cases[] = {
		{ "not whole packets", 10 * PKT - 1, 2, 1u << 20, CE_FORMAT },
		{ "empty", 0, 2, 1u << 20, CE_FORMAT },
		{ "zero times", 10 * PKT, 0, 1u << 20, CE_ARG },
		{ "too many times", 10 * PKT, TS_LOOP_TIMES_MAX + 1, 1u << 20, CE_ARG },
		{ "over max_bytes", 10 * PKT, 3, 3 * 10 * PKT - 1, CE_LIMIT },
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = ts_loop(in, cases[i].len, cases[i].times, cases[i].max, &out, &len, &pm);

		if (r != cases[i].want)
			fail_msg("%s: got %d want %d", cases[i].what, r, cases[i].want);
		assert_null(out);
		assert_int_equal(len, 0);
		assert_int_equal(pm, 0);
		out = (uint8_t *)1;
	}
	/* a bad sync byte in the middle */
	in[5 * PKT] = 0x46;
	assert_int_equal(ts_loop(in, n * PKT, 2, 1u << 20, &out, &len, NULL), CE_FORMAT);
	assert_null(out);
	/* one PCR only: no period */
	mk(one_pcr, 0x100, 0, 5000, -1);
	mk(one_pcr + PKT, 0x101, 0, -1, -1);
	assert_int_equal(ts_loop(one_pcr, sizeof(one_pcr), 2, 1u << 20, &out, &len, NULL), CE_FORMAT);
	/* PCR going backwards */
	mk(back, 0x100, 0, 5000, -1);
	mk(back + PKT, 0x100, 1, 4000, -1);
	assert_int_equal(ts_loop(back, sizeof(back), 2, 1u << 20, &out, &len, NULL), CE_FORMAT);
	assert_null(ts_loop(NULL, 0, 1, 1, &out, &len, NULL) == CE_ARG ? NULL : "no CE_ARG");
}

/* The demo stream looped 3 times: 3x the packets, a period close to its
 * PCR span, and the stream time (first PCR PID) grows steadily. */
static void test_loop_demo_stream(void **st)
{
	uint8_t *in = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	uint64_t period_ms = 0, first = 0, last = 0;
	int pid = -1;

	(void)st;
	assert_int_equal(file_read_all(tu_testdata("ts-clear-2svc.ts"), 64u << 20, &in, &len), 0);
	assert_int_equal(ts_loop(in, len, 3, 64u << 20, &out, &olen, &period_ms), 0);
	assert_true(period_ms > 500 && period_ms < 2000);
	for (size_t i = 0; i < olen / PKT; i++) {
		struct ts_hdr h;

		assert_int_equal(ts_parse(out + i * PKT, &h), 0);
		if (!h.has_pcr || (pid >= 0 && h.pid != pid))
			continue;
		if (pid < 0) {
			pid = h.pid;
			first = h.pcr;
		}
		assert_true(h.pcr >= last); /* never backwards, seams included */
		assert_true(last == 0 || h.pcr - last < 27000000u / 5);
		last = h.pcr;
	}
	assert_true((last - first) / 27000u > 2 * period_ms);
	free(in);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_synth),
		cmocka_unit_test(test_loop_bad),
		cmocka_unit_test(test_loop_demo_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
