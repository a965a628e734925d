/*
 * test_framer.c - the SimulCrypt stream framer (simulcrypt/framer.h) the
 * ECMG, EMMG, SCS and MUX share: messages split at every byte, several in
 * one read, exact reads that never take the next message's bytes, and an
 * oversized message reported once and skipped while the stream stays in sync.
 */
#include "testutil.h"
#include "simulcrypt/framer.h"

/* A message of type `type` with body_len bytes of body (all `fill`). */
static size_t make_msg(uint8_t *out, uint16_t type, size_t body_len, uint8_t fill)
{
	out[0] = 2;
	out[1] = (uint8_t)(type >> 8);
	out[2] = (uint8_t)type;
	out[3] = (uint8_t)(body_len >> 8);
	out[4] = (uint8_t)body_len;
	memset(out + 5, fill, body_len);
	return 5 + body_len;
}

/* Feed stream through f in reads of at most `step` bytes; record each
 * message's type and length (too long: length | 1 << 31). */
static size_t run(struct sc_framer *f, bool exact, const uint8_t *stream, size_t n, size_t step, uint32_t *types,
	uint32_t *lens, size_t max)
{
	size_t at = 0, got = 0;

	for (;;) {
		uint8_t *msg;
		size_t len, room;
		int k;

		while ((k = sc_framer_next(f, &msg, &len)) != SC_FRAME_NONE) {
			assert_true(got < max);
			types[got] = (uint32_t)(msg[1] << 8 | msg[2]);
			lens[got++] = (uint32_t)len | (k == SC_FRAME_TOO_LONG ? 1u << 31 : 0);
			if (k == SC_FRAME_MSG)
				assert_int_equal(len, 5 + (size_t)(msg[3] << 8 | msg[4]));
		}
		if (at == n)
			return got;
		uint8_t *dst = sc_framer_room(f, exact, &room);
		assert_true(room > 0);
		if (room > step)
			room = step;
		if (room > n - at)
			room = n - at;
		memcpy(dst, stream + at, room);
		sc_framer_fill(f, room);
		at += room;
	}
}

static void test_framer_splits(void **state)
{
	static uint8_t stream[3 * 70000], buf[SC_MAX_MSG_BYTES];
	static const size_t steps[] = { 1, 2, 5, 6, 7, 100, 4096, SC_MAX_MSG_BYTES };
	uint32_t types[8], lens[8];
	struct sc_framer f;
	size_t n = 0;
	(void)state;

	n += make_msg(stream + n, 0x0201, 40, 0xAA);
	n += make_msg(stream + n, 0x0202, 0, 0);
	n += make_msg(stream + n, 0x0003, 65535, 0x55); /* the largest */
	n += make_msg(stream + n, 0x0104, 3, 0x11);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		for (int exact = 0; exact < 2; exact++) {
			sc_framer_init(&f, buf, sizeof(buf), SC_MAX_MSG_BYTES);
			assert_int_equal(run(&f, exact, stream, n, steps[i], types, lens, 8), 4);
			assert_int_equal(types[0], 0x0201);
			assert_int_equal(lens[0], 45);
			assert_int_equal(types[1], 0x0202);
			assert_int_equal(lens[1], 5);
			assert_int_equal(types[2], 0x0003);
			assert_int_equal(lens[2], 65540);
			assert_int_equal(types[3], 0x0104);
			assert_int_equal(lens[3], 8);
		}
}

/* Exact rooms never reach past the message being assembled. */
static void test_framer_exact(void **state)
{
	uint8_t buf[64], *msg;
	struct sc_framer f;
	size_t room, len;
	(void)state;

	sc_framer_init(&f, buf, sizeof(buf), sizeof(buf));
	(void)sc_framer_room(&f, true, &room);
	assert_int_equal(room, 5);
	make_msg(sc_framer_room(&f, true, &room), 0x0201, 10, 1);
	sc_framer_fill(&f, 5);
	assert_int_equal(sc_framer_next(&f, &msg, &len), SC_FRAME_NONE);
	(void)sc_framer_room(&f, true, &room);
	assert_int_equal(room, 10);
	sc_framer_fill(&f, 10);
	assert_int_equal(sc_framer_next(&f, &msg, &len), SC_FRAME_MSG);
	assert_int_equal(len, 15);
	assert_int_equal(msg[5], 1);
	assert_int_equal(sc_framer_next(&f, &msg, &len), SC_FRAME_NONE);
	(void)sc_framer_room(&f, false, &room);
	assert_int_equal(room, sizeof(buf));
	sc_framer_reset(&f);
	assert_int_equal(f.len, 0);
}

/* Over max_msg: reported once with its header, skipped, then in sync. */
static void test_framer_too_long(void **state)
{
	static uint8_t stream[3 * 5000], buf[4096];
	static const size_t steps[] = { 1, 3, 5, 64, 4096 };
	uint32_t types[8], lens[8];
	struct sc_framer f;
	size_t n = 0;
	(void)state;

	n += make_msg(stream + n, 0x0201, 20, 0xAA);
	n += make_msg(stream + n, 0x0202, 4092, 0xBB); /* 4097 bytes: one too many */
	n += make_msg(stream + n, 0x0003, 4091, 0xCC); /* 4096: exactly the limit */
	n += make_msg(stream + n, 0x0104, 1, 0xDD);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		for (int exact = 0; exact < 2; exact++) {
			sc_framer_init(&f, buf, sizeof(buf), 4096);
			assert_int_equal(run(&f, exact, stream, n, steps[i], types, lens, 8), 4);
			assert_int_equal(types[0], 0x0201);
			assert_int_equal(lens[0], 25);
			assert_int_equal(types[1], 0x0202);
			assert_int_equal(lens[1], 4097u | 1u << 31);
			assert_int_equal(types[2], 0x0003);
			assert_int_equal(lens[2], 4096);
			assert_int_equal(types[3], 0x0104);
			assert_int_equal(lens[3], 6);
		}
	/* max_msg above the buffer is lowered to the buffer */
	sc_framer_init(&f, buf, 100, 4096);
	assert_int_equal(f.max_msg, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framer_splits),
		cmocka_unit_test(test_framer_exact),
		cmocka_unit_test(test_framer_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
