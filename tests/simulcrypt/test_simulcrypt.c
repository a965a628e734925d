/*
 * test_simulcrypt.c - tests of the SimulCrypt codec (src/simulcrypt) against
 * TSDuck's captured exchanges (tests/data/simulcrypt/captures): decode and
 * re-encode every captured message, build messages field by field in
 * TSDuck's parameter order and compare with the captured bytes, reproduce
 * the version-mismatch exchange, and reject a table of bad messages with the
 * exact error_status / error_information of each interface.
 *
 * Reference: ETSI TS 103 197; tests/data/simulcrypt/FACTS.md.
 */
#include <dirent.h>
#include "testutil.h"
#include "simulcrypt/simulcrypt.h"

#define CAP(name) "simulcrypt/captures/" name ".hex.txt"

static uint8_t *hexbuf(const char *hex, size_t *len)
{
	size_t cap = strlen(hex) / 2 + 1;
	uint8_t *b = malloc(cap);

	assert_non_null(b);
	assert_int_equal(hex_decode_var(hex, b, cap, len), 0);
	return b;
}

/* Compare built bytes with one captured line. */
static void assert_same(const uint8_t *got, size_t got_len, const struct tu_capmsg *want)
{
	assert_int_equal(got_len, want->len);
	assert_memory_equal(got, want->bytes, want->len);
}

/* ---------------------------------------------------------------- captures */

struct capfile {
	const char *name;
	enum sc_iface iface;
	uint8_t version;     /* of the messages not marked below */
	const char *other;   /* direction prefix sent with other_version */
	uint8_t other_version;
	size_t nmsgs;
};

static const struct capfile capfiles[] = {
	{ CAP("ecmg-scs-v2"), SC_ECMG_SCS, 2, NULL, 0, 19 },
	{ CAP("ecmg-scs-v3-sections"), SC_ECMG_SCS, 3, NULL, 0, 19 },
	{ CAP("ecmg-scs-v2-multistream"), SC_ECMG_SCS, 2, NULL, 0, 36 },
	/* ECMG configured v2, SCS configured v3. */
	{ CAP("version-mismatch"), SC_ECMG_SCS, 2, "SCS>", 3, 7 },
	{ CAP("emmg-mux-v2-udp-sections"), SC_EMMG_MUX, 2, NULL, 0, 21 },
	{ CAP("emmg-mux-v3-tcp-packets"), SC_EMMG_MUX, 3, NULL, 0, 21 },
};

static void test_captures_decode_reencode(void **state)
{
	(void)state;
	static uint8_t out[SC_MAX_MSG_BYTES];
	static struct sc_msg m;

	for (size_t f = 0; f < sizeof(capfiles) / sizeof(capfiles[0]); f++) {
		const struct capfile *cf = &capfiles[f];
		size_t n = 0;
		struct tu_capmsg *msgs = tu_capture_load(cf->name, &n);

		assert_int_equal(n, cf->nmsgs);
		for (size_t i = 0; i < n; i++) {
			struct sc_fault fault;
			size_t olen = 0;
			uint8_t v = cf->version;

			if (cf->other && strncmp(msgs[i].dir, cf->other, strlen(cf->other)) == 0)
				v = cf->other_version;
			assert_int_equal(sc_frame_len(msgs[i].bytes), msgs[i].len);
			if (sc_decode(cf->iface, v, msgs[i].bytes, msgs[i].len, &m, &fault) != 0)
				fail_msg("%s msg %zu (%s): status 0x%04x info %u", cf->name, i,
					msgs[i].dir, fault.status, fault.info);
			assert_int_equal(m.version, v);
			assert_string_not_equal(sc_msg_name(cf->iface, m.type), "unknown");
			for (size_t p = 0; p < m.nparams; p++)
				assert_string_not_equal(sc_param_name(cf->iface, m.params[p].type), "unknown");
			assert_int_equal(sc_encode_msg(&m, out, sizeof(out), &olen), 0);
			assert_int_equal(olen, msgs[i].len);
			assert_memory_equal(out, msgs[i].bytes, olen);
			/* The other interface's decoder must not accept most of these:
			 * message type codes do not overlap. */
			assert_int_not_equal(sc_decode(cf->iface == SC_ECMG_SCS ? SC_EMMG_MUX : SC_ECMG_SCS,
				v, msgs[i].bytes, msgs[i].len, &m, NULL), 0);
		}
		tu_capture_free(msgs, n);
	}
}

/* ------------------------------------------------------ builds, ECMG<=>SCS */

static void test_build_ecmg_v2(void **state)
{
	(void)state;
	size_t n = 0, len = 0;
	struct tu_capmsg *c = tu_capture_load(CAP("ecmg-scs-v2"), &n);
	static uint8_t buf[4096];
	static struct sc_msg m;
	struct sc_writer sw;
	static const uint8_t ac[] = { 0x00, 0x00, 0x00, 0x03 };
	static const uint8_t cw0[] = { 0x00, 0x00, 0x2c, 0xeb, 0xc5, 0xa9, 0xd5, 0x35, 0xa4, 0x80 };
	static const uint8_t cw1[] = { 0x00, 0x01, 0x06, 0x1f, 0xde, 0xe5, 0xb2, 0x62, 0x0b, 0x06 };
	const struct sc_param *dg;

	assert_int_equal(n, 19);

	/* channel_setup: ECM_channel_id, Super_CAS_id */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_CHANNEL_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u32(&sw, SC_P_SUPER_CAS_ID, 0x4ADC0001);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[0]);

	/* channel_status with all its parameters, in TSDuck's order. */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_CHANNEL_STATUS);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u8(&sw, SC_P_SECTION_TSPKT_FLAG, 1);
	sc_put_u16(&sw, SC_P_AC_DELAY_START, 200);
	sc_put_u16(&sw, SC_P_AC_DELAY_STOP, 200);
	sc_put_u16(&sw, SC_P_DELAY_START, 200);
	sc_put_u16(&sw, SC_P_DELAY_STOP, 200);
	sc_put_u16(&sw, SC_P_TRANSITION_DELAY_START, (uint16_t)(int16_t)-500);
	sc_put_u16(&sw, SC_P_TRANSITION_DELAY_STOP, 0);
	sc_put_u16(&sw, SC_P_ECM_REP_PERIOD, 100);
	sc_put_u16(&sw, SC_P_MAX_STREAMS, 0);
	sc_put_u16(&sw, SC_P_MIN_CP_DURATION, 10);
	sc_put_u8(&sw, SC_P_LEAD_CW, 1);
	sc_put_u8(&sw, SC_P_CW_PER_MSG, 2);
	sc_put_u16(&sw, SC_P_MAX_COMP_TIME, 100);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[1]);

	/* stream_setup: channel, stream, ECM_id, nominal_CP_duration */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_STREAM_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_ID, 1);
	sc_put_u16(&sw, SC_P_NOMINAL_CP_DURATION, 40);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[2]);

	/* stream_status */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_STREAM_STATUS);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_ID, 1);
	sc_put_u8(&sw, SC_P_AC_TRANSFER_MODE, 0);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[3]);

	/* CW_provision: channel, stream, CP_number, CP_duration,
	 * access_criteria, CP_CW_combination x 2 */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_CW_PROVISION);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_CP_NUMBER, 0);
	sc_put_u16(&sw, SC_P_CP_DURATION, 40);
	sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, ac, sizeof(ac));
	sc_put_bytes(&sw, SC_P_CP_CW_COMBINATION, cw0, sizeof(cw0));
	sc_put_bytes(&sw, SC_P_CP_CW_COMBINATION, cw1, sizeof(cw1));
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[4]);

	/* ECM_response: channel, stream, CP_number, ECM_datagram (the
	 * datagram bytes are TSDuck's fake ECM, taken from the capture). */
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, c[5].bytes, c[5].len, &m, NULL), 0);
	dg = sc_get_nth(&m, SC_P_ECM_DATAGRAM, 0);
	assert_non_null(dg);
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_ECM_RESPONSE);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_CP_NUMBER, 0);
	sc_put_bytes(&sw, SC_P_ECM_DATAGRAM, dg->val, dg->len);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[5]);

	/* stream_close_request / response, channel_close */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_STREAM_CLOSE_REQUEST);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[16]);
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_STREAM_CLOSE_RESPONSE);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[17]);
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_CHANNEL_CLOSE);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[18]);

	tu_capture_free(c, n);
}

/* The same channel_status in v3 differs only in the version byte and the
 * section_TSpkt_flag: the version is the caller's, never hard-coded. */
static void test_build_ecmg_v3_status(void **state)
{
	(void)state;
	size_t n = 0, len = 0;
	struct tu_capmsg *c = tu_capture_load(CAP("ecmg-scs-v3-sections"), &n);
	uint8_t buf[256];
	struct sc_writer sw;

	sc_begin(&sw, buf, sizeof(buf), 3, SC_ECM_CHANNEL_SETUP);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u32(&sw, SC_P_SUPER_CAS_ID, 0x4ADC0001);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[0]);

	sc_begin(&sw, buf, sizeof(buf), 3, SC_ECM_CHANNEL_STATUS);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u8(&sw, SC_P_SECTION_TSPKT_FLAG, 0);
	sc_put_u16(&sw, SC_P_AC_DELAY_START, 200);
	sc_put_u16(&sw, SC_P_AC_DELAY_STOP, 200);
	sc_put_u16(&sw, SC_P_DELAY_START, 200);
	sc_put_u16(&sw, SC_P_DELAY_STOP, 200);
	sc_put_u16(&sw, SC_P_TRANSITION_DELAY_START, 0xFE0C);
	sc_put_u16(&sw, SC_P_TRANSITION_DELAY_STOP, 0);
	sc_put_u16(&sw, SC_P_ECM_REP_PERIOD, 100);
	sc_put_u16(&sw, SC_P_MAX_STREAMS, 0);
	sc_put_u16(&sw, SC_P_MIN_CP_DURATION, 10);
	sc_put_u8(&sw, SC_P_LEAD_CW, 1);
	sc_put_u8(&sw, SC_P_CW_PER_MSG, 2);
	sc_put_u16(&sw, SC_P_MAX_COMP_TIME, 100);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[1]);
	tu_capture_free(c, n);
}

/* ------------------------------------------------------ builds, EMMG<=>MUX */

static void build_emmg_common(const struct tu_capmsg *c, uint8_t v, uint8_t flag)
{
	uint8_t buf[256];
	size_t len = 0;
	struct sc_writer sw;
	const uint16_t setup_types[2] = { SC_EMM_CHANNEL_SETUP, SC_EMM_CHANNEL_STATUS };
	const uint16_t stream_types[2] = { SC_EMM_STREAM_SETUP, SC_EMM_STREAM_STATUS };
	const uint16_t bw_types[2] = { SC_EMM_STREAM_BW_REQUEST, SC_EMM_STREAM_BW_ALLOCATION };

	for (int k = 0; k < 2; k++) {
		/* channel_setup / channel_status: data_channel_id, client_id, flag */
		sc_begin(&sw, buf, sizeof(buf), v, setup_types[k]);
		sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, 3);
		sc_put_u32(&sw, SC_P_CLIENT_ID, 0x4ADC0001);
		sc_put_u8(&sw, SC_P_SECTION_TSPKT_FLAG, flag);
		assert_int_equal(sc_finish(&sw, &len), 0);
		assert_same(buf, len, &c[0 + k]);

		/* stream_setup / stream_status */
		sc_begin(&sw, buf, sizeof(buf), v, stream_types[k]);
		sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, 3);
		sc_put_u16(&sw, SC_P_DATA_STREAM_ID, 4);
		sc_put_u32(&sw, SC_P_CLIENT_ID, 0x4ADC0001);
		sc_put_u16(&sw, SC_P_DATA_ID, 7);
		sc_put_u8(&sw, SC_P_DATA_TYPE, 0);
		assert_int_equal(sc_finish(&sw, &len), 0);
		assert_same(buf, len, &c[2 + k]);

		/* stream_BW_request / stream_BW_allocation, 50 kbit/s */
		sc_begin(&sw, buf, sizeof(buf), v, bw_types[k]);
		sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, 3);
		sc_put_u16(&sw, SC_P_DATA_STREAM_ID, 4);
		sc_put_u32(&sw, SC_P_CLIENT_ID, 0x4ADC0001);
		sc_put_u16(&sw, SC_P_BANDWIDTH, 50);
		assert_int_equal(sc_finish(&sw, &len), 0);
		assert_same(buf, len, &c[4 + k]);
	}
}

static void build_data_provisions(const struct tu_capmsg *c, size_t n, uint8_t v)
{
	static struct sc_msg m;
	static uint8_t buf[SC_MAX_MSG_BYTES];
	size_t len = 0, built = 0;

	for (size_t i = 0; i < n; i++) {
		struct sc_writer sw;

		if (strncmp(c[i].dir, "EMMG>MUX", 8) != 0 || tu_be16(c[i].bytes + 1) != SC_EMM_DATA_PROVISION)
			continue;
		assert_int_equal(sc_decode(SC_EMMG_MUX, v, c[i].bytes, c[i].len, &m, NULL), 0);
		sc_begin(&sw, buf, sizeof(buf), v, SC_EMM_DATA_PROVISION);
		sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, 3);
		sc_put_u16(&sw, SC_P_DATA_STREAM_ID, 4);
		sc_put_u32(&sw, SC_P_CLIENT_ID, 0x4ADC0001);
		sc_put_u16(&sw, SC_P_DATA_ID, 7);
		for (size_t k = 0; k < sc_count(&m, SC_P_DATAGRAM); k++) {
			const struct sc_param *p = sc_get_nth(&m, SC_P_DATAGRAM, k);

			assert_non_null(p);
			sc_put_bytes(&sw, SC_P_DATAGRAM, p->val, p->len);
		}
		assert_int_equal(sc_finish(&sw, &len), 0);
		assert_same(buf, len, &c[i]);
		built++;
	}
	assert_int_equal(built, 12);
}

static void test_build_emmg(void **state)
{
	(void)state;
	size_t n = 0, len = 0;
	struct tu_capmsg *c = tu_capture_load(CAP("emmg-mux-v2-udp-sections"), &n);
	uint8_t buf[64];
	struct sc_writer sw;

	build_emmg_common(c, 2, 0);
	build_data_provisions(c, n, 2);
	/* close sequence: data_channel_id, data_stream_id, client_id */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_EMM_STREAM_CLOSE_REQUEST);
	sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, 3);
	sc_put_u16(&sw, SC_P_DATA_STREAM_ID, 4);
	sc_put_u32(&sw, SC_P_CLIENT_ID, 0x4ADC0001);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[n - 3]);
	sc_begin(&sw, buf, sizeof(buf), 2, SC_EMM_CHANNEL_CLOSE);
	sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, 3);
	sc_put_u32(&sw, SC_P_CLIENT_ID, 0x4ADC0001);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_same(buf, len, &c[n - 1]);
	tu_capture_free(c, n);

	c = tu_capture_load(CAP("emmg-mux-v3-tcp-packets"), &n);
	build_emmg_common(c, 3, 1);
	build_data_provisions(c, n, 3);
	tu_capture_free(c, n);
}

/* ------------------------------------------------------------ typed values */

static void test_typed_values_ecmg(void **state)
{
	(void)state;
	static struct sc_msg m;
	const char *files[2] = { CAP("ecmg-scs-v2"), CAP("ecmg-scs-v3-sections") };

	for (int f = 0; f < 2; f++) {
		uint8_t v = (uint8_t)(2 + f);
		size_t n = 0, ncwp = 0, nresp = 0;
		struct tu_capmsg *c = tu_capture_load(files[f], &n);
		uint32_t u32 = 0;
		uint16_t u16 = 0;
		uint8_t u8 = 0;

		assert_int_equal(sc_decode(SC_ECMG_SCS, v, c[0].bytes, c[0].len, &m, NULL), 0);
		assert_int_equal(m.type, SC_ECM_CHANNEL_SETUP);
		assert_int_equal(sc_get_u32(&m, SC_P_SUPER_CAS_ID, &u32), 0);
		assert_int_equal(u32, 0x4ADC0001);
		assert_int_equal(sc_get_u16(&m, SC_P_ECM_CHANNEL_ID, &u16), 0);
		assert_int_equal(u16, 1);

		assert_int_equal(sc_decode(SC_ECMG_SCS, v, c[1].bytes, c[1].len, &m, NULL), 0);
		assert_int_equal(m.type, SC_ECM_CHANNEL_STATUS);
		assert_int_equal(sc_get_u8(&m, SC_P_SECTION_TSPKT_FLAG, &u8), 0);
		assert_int_equal(u8, f == 0 ? 1 : 0);
		assert_int_equal(sc_get_u8(&m, SC_P_CW_PER_MSG, &u8), 0);
		assert_int_equal(u8, 2);
		assert_int_equal(sc_get_u8(&m, SC_P_LEAD_CW, &u8), 0);
		assert_int_equal(u8, 1);
		assert_int_equal(sc_get_u16(&m, SC_P_TRANSITION_DELAY_START, &u16), 0);
		assert_int_equal((int16_t)u16, -500);
		assert_int_equal(sc_get_u16(&m, SC_P_MAX_COMP_TIME, &u16), 0);
		assert_int_equal(u16, 100);

		for (size_t i = 2; i < n; i++) {
			const struct sc_param *p;

			assert_int_equal(sc_decode(SC_ECMG_SCS, v, c[i].bytes, c[i].len, &m, NULL), 0);
			if (m.type == SC_ECM_CW_PROVISION) {
				assert_int_equal(sc_get_u16(&m, SC_P_CP_NUMBER, &u16), 0);
				assert_int_equal(u16, ncwp);
				assert_int_equal(sc_count(&m, SC_P_CP_CW_COMBINATION), 2);
				p = sc_get_nth(&m, SC_P_CP_CW_COMBINATION, 1);
				assert_non_null(p);
				assert_int_equal(p->len, 10); /* CP number + 8-byte CSA CW */
				assert_int_equal(tu_be16(p->val), ncwp + 1);
				assert_null(sc_get_nth(&m, SC_P_CP_CW_COMBINATION, 2));
				assert_int_equal(sc_get_u16(&m, SC_P_CP_DURATION, &u16), 0);
				assert_int_equal(u16, 40);
				p = sc_get_nth(&m, SC_P_ACCESS_CRITERIA, 0);
				assert_non_null(p);
				assert_int_equal(p->len, 4);
				assert_int_equal(tu_be32(p->val), 3);
				ncwp++;
			} else if (m.type == SC_ECM_ECM_RESPONSE) {
				assert_int_equal(sc_get_u16(&m, SC_P_CP_NUMBER, &u16), 0);
				assert_int_equal(u16, nresp);
				p = sc_get_nth(&m, SC_P_ECM_DATAGRAM, 0);
				assert_non_null(p);
				if (f == 0) {
					assert_int_equal(p->len, 188);
					assert_int_equal(p->val[0], 0x47);
				} else {
					assert_int_equal(p->len, 40);
					assert_int_equal(p->val[0], 0x80 | (nresp & 1));
				}
				nresp++;
			}
		}
		assert_int_equal(ncwp, 6);
		assert_int_equal(nresp, 6);
		tu_capture_free(c, n);
	}
}

static void test_typed_values_emmg(void **state)
{
	(void)state;
	static struct sc_msg m;
	const char *files[2] = { CAP("emmg-mux-v2-udp-sections"), CAP("emmg-mux-v3-tcp-packets") };

	for (int f = 0; f < 2; f++) {
		uint8_t v = (uint8_t)(2 + f);
		size_t n = 0, bytes = 0, udp = 0;
		struct tu_capmsg *c = tu_capture_load(files[f], &n);
		uint32_t u32 = 0;
		uint16_t u16 = 0;
		uint8_t u8 = 0;

		assert_int_equal(sc_decode(SC_EMMG_MUX, v, c[0].bytes, c[0].len, &m, NULL), 0);
		assert_int_equal(sc_get_u32(&m, SC_P_CLIENT_ID, &u32), 0);
		assert_int_equal(u32, 0x4ADC0001);
		assert_int_equal(sc_get_u8(&m, SC_P_SECTION_TSPKT_FLAG, &u8), 0);
		assert_int_equal(u8, f);
		assert_int_equal(sc_decode(SC_EMMG_MUX, v, c[5].bytes, c[5].len, &m, NULL), 0);
		assert_int_equal(m.type, SC_EMM_STREAM_BW_ALLOCATION);
		assert_int_equal(sc_get_u16(&m, SC_P_BANDWIDTH, &u16), 0);
		assert_int_equal(u16, 50);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(sc_decode(SC_EMMG_MUX, v, c[i].bytes, c[i].len, &m, NULL), 0);
			if (m.type != SC_EMM_DATA_PROVISION)
				continue;
			if (strstr(c[i].dir, "/udp"))
				udp++;
			assert_int_equal(sc_get_u16(&m, SC_P_DATA_ID, &u16), 0);
			assert_int_equal(u16, 7);
			assert_int_equal(sc_get_u16(&m, SC_P_DATA_STREAM_ID, &u16), 0);
			assert_int_equal(u16, 4);
			for (size_t k = 0; k < sc_count(&m, SC_P_DATAGRAM); k++) {
				const struct sc_param *p = sc_get_nth(&m, SC_P_DATAGRAM, k);

				if (f == 0) {
					/* one 120-byte EMM section per datagram */
					assert_int_equal(p->len, 120);
					assert_true(p->val[0] >= 0x82 && p->val[0] <= 0x8F);
					bytes += p->len;
				} else {
					/* whole TS packets */
					assert_int_equal(p->len % 188, 0);
					for (size_t o = 0; o < p->len; o += 188)
						assert_int_equal(p->val[o], 0x47);
				}
			}
		}
		if (f == 0) {
			assert_int_equal(bytes, 6000);
			assert_int_equal(udp, 12);
		} else {
			assert_int_equal(udp, 0);
		}
		tu_capture_free(c, n);
	}
}

/* --------------------------------------------------------- version mismatch */

static void test_version_mismatch(void **state)
{
	(void)state;
	size_t n = 0, len = 0;
	struct tu_capmsg *c = tu_capture_load(CAP("version-mismatch"), &n);
	static struct sc_msg m;
	struct sc_fault fault;
	uint8_t buf[64];

	assert_int_equal(n, 7);
	/* The v2 ECMG decodes the v3 channel_setup. */
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, c[0].bytes, c[0].len, &m, &fault), CE_UNSUPPORTED);
	assert_int_equal(fault.status, SC_ECM_ERR_INV_PROTO_VERSION);
	assert_int_equal(fault.info, 0);
	assert_false(fault.has_channel); /* TSDuck stops at the version byte */
	assert_string_equal(sc_error_name(SC_ECMG_SCS, fault.status), "inv_proto_version");
	/* ... and answers 02 0005 0012 | 000e 0002 0000 | 7000 0002 0002 | 7001 0002 0000 */
	assert_int_equal(sc_build_error(SC_ECMG_SCS, 2, &fault, 0, buf, sizeof(buf), &len), 0);
	assert_same(buf, len, &c[1]);
	/* The v3 SCS rejects that v2 channel_error the same way and its answer
	 * is the same bytes with version 3. */
	assert_int_equal(sc_decode(SC_ECMG_SCS, 3, c[1].bytes, c[1].len, &m, &fault), CE_UNSUPPORTED);
	assert_int_equal(sc_build_error(SC_ECMG_SCS, 3, &fault, 0, buf, sizeof(buf), &len), 0);
	assert_same(buf, len, &c[2]);
	/* Every later message is one of these two. */
	for (size_t i = 3; i < n; i++)
		assert_same(c[i].bytes, c[i].len, &c[1 + (i - 1) % 2]);
	/* Decoded with the right version, the error reads back. */
	{
		uint16_t st = 0, inf = 0, ch = 1;

		assert_int_equal(sc_decode(SC_ECMG_SCS, 2, c[1].bytes, c[1].len, &m, &fault), 0);
		assert_int_equal(m.type, SC_ECM_CHANNEL_ERROR);
		assert_int_equal(sc_get_u16(&m, SC_P_ERROR_STATUS, &st), 0);
		assert_int_equal(sc_get_u16(&m, SC_P_ERROR_INFORMATION, &inf), 0);
		assert_int_equal(sc_get_u16(&m, SC_P_ECM_CHANNEL_ID, &ch), 0);
		assert_int_equal(st, 2);
		assert_int_equal(inf, 0);
		assert_int_equal(ch, 0);
	}
	tu_capture_free(c, n);
}

/* ------------------------------------------------------------ bad messages */

struct bad_case {
	const char *what;
	enum sc_iface iface;
	uint8_t version;
	const char *hex;
	int err;
	uint16_t status;
	uint16_t info;
	int has_channel; /* -1 = don't check */
	uint16_t channel_id;
};

#define E SC_ECMG_SCS
#define M SC_EMMG_MUX
static const struct bad_case bad_cases[] = {
	{ "empty", E, 2, "", CE_TRUNCATED, 0x0001, 0, 0, 0 },
	{ "header 3 bytes", E, 2, "020001", CE_TRUNCATED, 0x0001, 1, 0, 0 },
	{ "header 4 bytes", M, 2, "02001100", CE_TRUNCATED, 0x0001, 1, 0, 0 },
	{ "wrong version v3 on v2", E, 2, "030001000e000e00020001000100044adc0001",
		CE_UNSUPPORTED, 0x0002, 0, 0, 0 },
	{ "wrong version v1 on EMMG v2", M, 2, "0100110013000300020003000100044adc00010002000100",
		CE_UNSUPPORTED, 0x0002, 0, 0, 0 },
	{ "length field too long", E, 2, "020001000f000e00020001000100044adc0001",
		CE_TRUNCATED, 0x0001, 1, 0, 0 },
	{ "length field too short", E, 2, "020001000d000e00020001000100044adc0001",
		CE_TRAILING, 0x0001, 1, 0, 0 },
	{ "TLV runs past end", E, 2, "020001000e000e00020001000100054adc0001",
		CE_TRUNCATED, 0x0001, 11, 1, 1 },
	{ "TLV header cut", E, 2, "0200010008000e000200010001", CE_TRUNCATED, 0x0001, 11, 1, 1 },
	{ "unknown message type ECMG", E, 2, "0200060006000e00020001", CE_UNSUPPORTED, 0x0003, 1, 0, 0 },
	{ "ECMG type on EMMG", M, 2, "020001000e000e00020001000100044adc0001",
		CE_UNSUPPORTED, 0x0003, 1, 0, 0 },
	{ "unknown parameter ECMG (inv_param_type 0x000E)", E, 2,
		"0200010014000e00020001000100044adc000100990002abcd", CE_FORMAT, 0x000E, 19, 1, 1 },
	{ "unknown parameter EMMG (inv_param_type 0x000A)", M, 2,
		"0200140014000300020003000100044adc000100990002abcd", CE_FORMAT, 0x000A, 19, 1, 3 },
	{ "known param not allowed in message", E, 2,
		"020001000c000e00020001000f00020001", CE_FORMAT, 0x000E, 11, 1, 1 },
	{ "Super_CAS_id 3 bytes (ECMG 0x000F)", E, 2, "020001000d000e00020001000100034adc00",
		CE_FORMAT, 0x000F, 11, 1, 1 },
	{ "client_id 2 bytes (EMMG 0x000B)", M, 2, "020014000c00030002000300010002abcd",
		CE_FORMAT, 0x000B, 11, 1, 3 },
	{ "zero-length ECM_channel_id", E, 2, "0200040004000e0000", CE_FORMAT, 0x000F, 5, 0, 0 },
	{ "missing Super_CAS_id (ECMG 0x0010)", E, 2, "0200010006000e00020001",
		CE_PROTO, 0x0010, 0x0001, 1, 1 },
	{ "missing client_id (EMMG 0x000C)", M, 2, "0200140006000300020003",
		CE_PROTO, 0x000C, 0x0001, 1, 3 },
	{ "missing datagram in data_provision", M, 2,
		"0202110014000100044adc00010008000200070003000200ff",
		CE_PROTO, 0x000C, 0x0005, 1, 0xff },
	{ "ECM_channel_id twice", E, 2, "020004000c000e00020001000e00020002", CE_PROTO, 0x0010, 0x000E, 1, 1 },
	{ "two missing: lowest tag reported", E, 2, "0201010006000e00020001", CE_PROTO, 0x0010, 0x000F, 1, 1 },
	{ "two ECM_datagram", E, 2,
		"020202001a000e00020001000f0002000100120002000000150000"
		"00150000", CE_PROTO, 0x0010, 0x0015, 1, 1 },
	{ "stream id readable after fault", E, 2,
		"020102000f000e00020007000f00020009007700", CE_TRUNCATED, 0x0001, 17, 1, 7 },
};
#undef E
#undef M

static void test_bad_messages(void **state)
{
	(void)state;
	static struct sc_msg m;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *b = &bad_cases[i];
		size_t len = 0;
		uint8_t *buf = hexbuf(b->hex, &len);
		struct sc_fault f;
		int r = sc_decode(b->iface, b->version, buf, len, &m, &f);

		if (r != b->err || f.status != b->status || f.info != b->info)
			fail_msg("case '%s': r=%d status=0x%04x info=%u (want %d 0x%04x %u)", b->what,
				r, f.status, f.info, b->err, b->status, b->info);
		assert_int_equal(f.err, r);
		assert_int_equal(m.nparams, 0);
		if (b->has_channel >= 0) {
			if ((int)f.has_channel != b->has_channel)
				fail_msg("case '%s': has_channel %d", b->what, f.has_channel);
			if (b->has_channel)
				assert_int_equal(f.channel_id, b->channel_id);
		}
		/* fault may be NULL */
		assert_int_equal(sc_decode(b->iface, b->version, buf, len, &m, NULL), b->err);
		free(buf);
	}
}

/* More than SC_MAX_PARAMS parameters, and a message too long for the
 * 16-bit length field. */
static void test_limits(void **state)
{
	(void)state;
	static uint8_t buf[SC_MAX_MSG_BYTES + 16];
	static uint8_t src[SC_MAX_MSG_BYTES + 16];
	static struct sc_msg m;
	struct sc_writer sw;
	struct sc_fault f;
	size_t len = 0;

	/* channel_error with 1 + 128 error_status: 129 params */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_CHANNEL_ERROR);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 5);
	for (int i = 0; i < SC_MAX_PARAMS - 1; i++)
		sc_put_u16(&sw, SC_P_ERROR_STATUS, 1);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, len, &m, &f), 0);
	assert_int_equal(m.nparams, SC_MAX_PARAMS);
	assert_int_equal(sc_count(&m, SC_P_ERROR_STATUS), SC_MAX_PARAMS - 1);

	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_CHANNEL_ERROR);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 5);
	for (int i = 0; i < SC_MAX_PARAMS; i++)
		sc_put_u16(&sw, SC_P_ERROR_STATUS, 1);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, len, &m, &f), CE_LIMIT);
	assert_int_equal(f.status, SC_ECM_ERR_INV_MESSAGE);
	assert_int_equal(f.info, SC_HEADER_BYTES + 6 * SC_MAX_PARAMS);
	assert_true(f.has_channel);
	assert_int_equal(f.channel_id, 5);
	assert_int_equal(sc_decode(SC_EMMG_MUX, 2, buf, len, &m, &f), CE_UNSUPPORTED);

	/* a buffer longer than any message: message_too_long */
	memset(buf, 0, sizeof(buf));
	buf[0] = 2;
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, SC_MAX_MSG_BYTES + 1, &m, &f), CE_LIMIT);
	assert_int_equal(f.status, SC_ECM_ERR_MESSAGE_TOO_LONG);
	assert_int_equal(f.info, 3);
	assert_int_equal(sc_decode(SC_EMMG_MUX, 2, buf, SC_MAX_MSG_BYTES + 1, &m, &f), CE_LIMIT);
	assert_int_equal(f.status, SC_EMM_ERR_MESSAGE_TOO_LONG);

	/* The largest message: one ECM_datagram of 65535 - 22 bytes. */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_ECM_RESPONSE);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_CP_NUMBER, 1);
	sc_put_bytes(&sw, SC_P_ECM_DATAGRAM, src, 65535 - 22);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_int_equal(len, SC_MAX_MSG_BYTES);
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, len, &m, &f), 0);
	/* one byte more does not fit the length field */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_ECM_RESPONSE);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
	sc_put_u16(&sw, SC_P_ECM_STREAM_ID, 1);
	sc_put_u16(&sw, SC_P_CP_NUMBER, 1);
	sc_put_bytes(&sw, SC_P_ECM_DATAGRAM, src, 65535 - 21);
	assert_int_equal(sc_finish(&sw, &len), CE_RANGE);
	assert_int_equal(len, 0);
	/* a parameter over 65535 bytes */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_ECM_RESPONSE);
	sc_put_bytes(&sw, SC_P_ECM_DATAGRAM, src, 65536);
	assert_int_equal(sc_finish(&sw, &len), CE_RANGE);
}

/* ------------------------------------------------------ writer / accessors */

static void test_writer_overflow(void **state)
{
	(void)state;
	uint8_t buf[16];
	struct sc_writer sw;
	size_t len = 99;
	static struct sc_msg m;

	/* exactly fits: 5 + 6 + 4 = 15 */
	sc_begin(&sw, buf, 15, 2, SC_ECM_CHANNEL_TEST);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 7);
	sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, NULL, 0);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_int_equal(len, 15);
	assert_int_equal(tu_be16(buf + 3), 10);
	/* channel_test does not allow access_criteria */
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, len, &m, NULL), CE_FORMAT);

	sc_begin(&sw, buf, 14, 2, SC_ECM_CHANNEL_TEST);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 7);
	sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, NULL, 0);
	sc_put_u8(&sw, SC_P_LEAD_CW, 1); /* ignored after overflow */
	assert_int_equal(sc_finish(&sw, &len), CE_OVERFLOW);
	assert_int_equal(len, 0);

	sc_begin(&sw, buf, 4, 2, SC_ECM_CHANNEL_TEST);
	assert_int_equal(sc_finish(&sw, &len), CE_OVERFLOW);

	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_CHANNEL_TEST);
	sc_put_bytes(&sw, SC_P_ACCESS_CRITERIA, NULL, 3);
	assert_int_equal(sc_finish(&sw, &len), CE_ARG);

	/* sc_encode_msg into too small a buffer */
	sc_begin(&sw, buf, sizeof(buf), 2, SC_ECM_CHANNEL_TEST);
	sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 7);
	assert_int_equal(sc_finish(&sw, &len), 0);
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, len, &m, NULL), 0);
	{
		uint8_t small[10];

		assert_int_equal(sc_encode_msg(&m, small, sizeof(small), &len), CE_OVERFLOW);
		assert_int_equal(len, 0);
	}
}

static void test_accessors(void **state)
{
	(void)state;
	static struct sc_msg m;
	size_t len = 0;
	uint8_t *buf;
	uint8_t u8 = 9;
	uint16_t u16 = 9;
	uint32_t u32 = 9;

	buf = hexbuf("020201002a000e00020001000f000200010012000200050013000200"
		     "28000d00000014000a0005aaaaaaaaaaaaaaaa", &len);
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, buf, len, &m, NULL), 0);
	assert_int_equal(m.nparams, 6);
	assert_int_equal(sc_get_u16(&m, SC_P_CP_NUMBER, &u16), 0);
	assert_int_equal(u16, 5);
	assert_int_equal(sc_get_u8(&m, SC_P_CP_NUMBER, &u8), CE_FORMAT);
	assert_int_equal(u8, 0);
	assert_int_equal(sc_get_u32(&m, SC_P_CP_NUMBER, &u32), CE_FORMAT);
	assert_int_equal(u32, 0);
	assert_int_equal(sc_get_u16(&m, SC_P_SUPER_CAS_ID, &u16), CE_NOT_FOUND);
	assert_int_equal(u16, 0);
	assert_int_equal(sc_count(&m, SC_P_ACCESS_CRITERIA), 1);
	assert_int_equal(sc_get_nth(&m, SC_P_ACCESS_CRITERIA, 0)->len, 0);
	assert_int_equal(sc_count(&m, SC_P_CP_CW_COMBINATION), 1);
	assert_null(sc_get_nth(&m, SC_P_CP_CW_COMBINATION, 1));
	assert_int_equal(sc_count(&m, SC_P_CW_ENCRYPTION), 0);
	free(buf);
}

static void test_build_error_variants(void **state)
{
	(void)state;
	static struct sc_msg m;
	struct sc_fault f;
	uint8_t out[64];
	size_t len = 0, blen = 0, elen = 0;
	uint8_t *bad, *exp;

	/* ECMG: CW_provision with an unknown parameter -> stream_error */
	bad = hexbuf("0202010018000e00020001000f00020009001200020000009900020000", &blen);
	assert_int_equal(sc_decode(SC_ECMG_SCS, 3, bad, blen, &m, &f), CE_UNSUPPORTED);
	assert_int_equal(sc_decode(SC_ECMG_SCS, 2, bad, blen, &m, &f), CE_FORMAT);
	assert_true(f.has_stream);
	assert_int_equal(sc_build_error(SC_ECMG_SCS, 2, &f, 0, out, sizeof(out), &len), 0);
	exp = hexbuf("0201060018000e00020001000f0002000970000002000e700100020017", &elen);
	assert_int_equal(len, elen);
	assert_memory_equal(out, exp, elen);
	free(bad);
	free(exp);

	/* EMMG: stream_BW_request with 3-byte bandwidth -> stream_error with
	 * data_channel_id, data_stream_id, client_id, status 0x000B */
	bad = hexbuf("020117001b000300020003000400020004000100044adc0001000600030000ff", &blen);
	assert_int_equal(sc_decode(SC_EMMG_MUX, 2, bad, blen, &m, &f), CE_FORMAT);
	assert_int_equal(f.status, SC_EMM_ERR_INV_PARAM_LENGTH);
	assert_true(f.has_client);
	assert_int_equal(f.client_id, 0x4ADC0001);
	assert_int_equal(sc_build_error(SC_EMMG_MUX, 2, &f, f.client_id, out, sizeof(out), &len), 0);
	exp = hexbuf("0201160020000300020003000400020004000100044adc00017000000200"
		     "0b700100020019", &elen);
	assert_int_equal(len, elen);
	assert_memory_equal(out, exp, elen);
	assert_int_equal(sc_decode(SC_EMMG_MUX, 2, out, len, &m, NULL), 0);
	free(bad);
	free(exp);

	/* EMMG channel-level: channel_test missing client_id -> channel_error */
	bad = hexbuf("0200120006000300020003", &blen);
	assert_int_equal(sc_decode(SC_EMMG_MUX, 5, bad, blen, &m, &f), CE_UNSUPPORTED);
	assert_int_equal(sc_decode(SC_EMMG_MUX, 2, bad, blen, &m, &f), CE_PROTO);
	assert_int_equal(sc_build_error(SC_EMMG_MUX, 2, &f, 0x12345678, out, sizeof(out), &len), 0);
	exp = hexbuf("02001500" "1a" "00030002000300010004123456787000000200" "0c" "700100020001", &elen);
	assert_int_equal(len, elen);
	assert_memory_equal(out, exp, elen);
	assert_int_equal(sc_decode(SC_EMMG_MUX, 2, out, len, &m, NULL), 0);
	free(bad);
	free(exp);

	/* too small an output buffer */
	assert_int_equal(sc_build_error(SC_EMMG_MUX, 2, &f, 0, out, 10, &len), CE_OVERFLOW);
	assert_int_equal(len, 0);
	assert_int_equal(sc_build_error(SC_EMMG_MUX, 2, NULL, 0, out, sizeof(out), &len), CE_ARG);
}

static void test_names_versions(void **state)
{
	(void)state;
	assert_string_equal(sc_msg_name(SC_ECMG_SCS, SC_ECM_CW_PROVISION), "CW_provision");
	assert_string_equal(sc_msg_name(SC_EMMG_MUX, SC_EMM_DATA_PROVISION), "data_provision");
	assert_string_equal(sc_msg_name(SC_EMMG_MUX, SC_ECM_CW_PROVISION), "unknown");
	assert_string_equal(sc_param_name(SC_ECMG_SCS, SC_P_ECM_CHANNEL_ID), "ECM_channel_id");
	assert_string_equal(sc_param_name(SC_EMMG_MUX, 0x0003), "data_channel_id");
	assert_string_equal(sc_param_name(SC_ECMG_SCS, 0x0003), "delay_start");
	assert_string_equal(sc_param_name(SC_EMMG_MUX, 0x0009), "unknown");
	assert_string_equal(sc_error_name(SC_ECMG_SCS, 0x000E), "inv_param_type");
	assert_string_equal(sc_error_name(SC_EMMG_MUX, 0x000A), "inv_param_type");
	assert_string_equal(sc_error_name(SC_EMMG_MUX, 0x000E), "inv_client_id");
	assert_string_equal(sc_error_name(SC_ECMG_SCS, 0x0000), "unknown");
	assert_false(sc_version_ok(SC_ECMG_SCS, 1));
	assert_true(sc_version_ok(SC_ECMG_SCS, 2));
	assert_true(sc_version_ok(SC_ECMG_SCS, 3));
	assert_false(sc_version_ok(SC_ECMG_SCS, 4));
	assert_false(sc_version_ok(SC_EMMG_MUX, 0));
	for (uint8_t v = 1; v <= 5; v++)
		assert_true(sc_version_ok(SC_EMMG_MUX, v));
	assert_false(sc_version_ok(SC_EMMG_MUX, 6));
}

/* A message built at every accepted version decodes only at that version. */
static void test_every_version(void **state)
{
	(void)state;
	static struct sc_msg m;
	uint8_t buf[64];
	size_t len = 0;

	for (int iface = 0; iface < 2; iface++) {
		for (unsigned v = 0; v < 8; v++) {
			struct sc_writer sw;
			struct sc_fault f;

			if (!sc_version_ok((enum sc_iface)iface, (uint8_t)v))
				continue;
			sc_begin(&sw, buf, sizeof(buf), (uint8_t)v,
				iface == SC_ECMG_SCS ? SC_ECM_CHANNEL_TEST : SC_EMM_CHANNEL_TEST);
			if (iface == SC_ECMG_SCS) {
				sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, 1);
			} else {
				sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, 1);
				sc_put_u32(&sw, SC_P_CLIENT_ID, 1);
			}
			assert_int_equal(sc_finish(&sw, &len), 0);
			assert_int_equal(buf[0], v);
			assert_int_equal(sc_decode((enum sc_iface)iface, (uint8_t)v, buf, len, &m, &f), 0);
			assert_int_equal(sc_decode((enum sc_iface)iface, (uint8_t)(v + 1), buf, len, &m, &f),
				CE_UNSUPPORTED);
			assert_int_equal(f.status, 0x0002);
		}
	}
}

/* Replay the fuzz corpus (seeds and any finding kept there). */
static void test_fuzz_corpus_replay(void **state)
{
	(void)state;
	char dir[8192];
	DIR *d;
	struct dirent *e;
	size_t count = 0;
	static struct sc_msg m;
	static uint8_t out[SC_MAX_MSG_BYTES];

	/* tests/data/.. is tests/, so this is <source>/fuzz/corpus/simulcrypt */
	snprintf(dir, sizeof(dir), "%s/../fuzz/corpus/simulcrypt", tu_testdata(".."));
	d = opendir(dir);
	if (!d)
		fail_msg("no corpus at %s", dir);
	while ((e = readdir(d)) != NULL) {
		char path[8192 + 512];
		size_t len = 0, olen = 0;
		uint8_t *data;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		data = tu_read(path, &len);
		for (int iface = 0; iface < 2; iface++) {
			if (len && sc_decode((enum sc_iface)iface, data[0], data, len, &m, NULL) == 0) {
				assert_int_equal(sc_encode_msg(&m, out, sizeof(out), &olen), 0);
				assert_int_equal(olen, len);
				assert_memory_equal(out, data, len);
			}
		}
		free(data);
		count++;
	}
	closedir(d);
	assert_true(count > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captures_decode_reencode),
		cmocka_unit_test(test_build_ecmg_v2),
		cmocka_unit_test(test_build_ecmg_v3_status),
		cmocka_unit_test(test_build_emmg),
		cmocka_unit_test(test_typed_values_ecmg),
		cmocka_unit_test(test_typed_values_emmg),
		cmocka_unit_test(test_version_mismatch),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_writer_overflow),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_build_error_variants),
		cmocka_unit_test(test_names_versions),
		cmocka_unit_test(test_every_version),
		cmocka_unit_test(test_fuzz_corpus_replay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
