/*
 * simulcrypt.c - DVB SimulCrypt message codec (ETSI TS 103 197): the
 * ECMG<=>SCS and EMMG/PDG<=>MUX message schemas, the validating decoder, the
 * writer, error replies and name tables (see simulcrypt.h for the contract).
 *
 * The tables below are the only description of the protocols: one parameter
 * size table per interface {type, min len, max len} and one schema per
 * message type {parameter, min count, max count}. The version byte changes
 * nothing else (TSDuck does the same; strict equality on reception).
 *
 * Fault mapping follows TSDuck's analyzer (tests/data/simulcrypt/FACTS.md):
 *   empty buffer                         inv_message       info 0
 *   header version != expected           inv_proto_version info 0
 *   buffer > 5 + 65535 bytes             message_too_long  info 3
 *   header short / length != buffer      inv_message       info 1
 *   message_type unknown                 inv_message_type  info 1
 *   TLV header or value past the end     inv_message       info = TLV offset
 *   more than SC_MAX_PARAMS parameters   inv_message       info = TLV offset
 *   parameter not allowed in the message inv_param_type    info = TLV offset
 *   parameter length out of range        inv_param_length  info = TLV offset
 *   count below min or above max         missing_param     info = tag
 *     (the lowest violating tag, as TSDuck walks its sorted table)
 *
 * Reference: ETSI TS 103 197; facts in tests/data/simulcrypt/FACTS.md §1-§5.
 */
#include <string.h>
#include "simulcrypt.h"

#define SC_N 0xFFFF /* "any number" of occurrences */

struct sc_psize {
	uint16_t type;
	uint16_t min_len;
	uint16_t max_len;
	const char *name;
};

struct sc_pcard {
	uint16_t type;
	uint16_t min_count;
	uint16_t max_count;
};

struct sc_mspec {
	uint16_t type;
	const char *name;
	const struct sc_pcard *params;
	size_t nparams;
};

/* ---- ECMG<=>SCS (FACTS.md 2.2, 2.3) ---- */

static const struct sc_psize ecm_sizes[] = {
	{ SC_P_SUPER_CAS_ID, 4, 4, "Super_CAS_id" },
	{ SC_P_SECTION_TSPKT_FLAG, 1, 1, "section_TSpkt_flag" },
	{ SC_P_DELAY_START, 2, 2, "delay_start" },
	{ SC_P_DELAY_STOP, 2, 2, "delay_stop" },
	{ SC_P_TRANSITION_DELAY_START, 2, 2, "transition_delay_start" },
	{ SC_P_TRANSITION_DELAY_STOP, 2, 2, "transition_delay_stop" },
	{ SC_P_ECM_REP_PERIOD, 2, 2, "ECM_rep_period" },
	{ SC_P_MAX_STREAMS, 2, 2, "max_streams" },
	{ SC_P_MIN_CP_DURATION, 2, 2, "min_CP_duration" },
	{ SC_P_LEAD_CW, 1, 1, "lead_CW" },
	{ SC_P_CW_PER_MSG, 1, 1, "CW_per_msg" },
	{ SC_P_MAX_COMP_TIME, 2, 2, "max_comp_time" },
	{ SC_P_ACCESS_CRITERIA, 0, 0xFFFF, "access_criteria" },
	{ SC_P_ECM_CHANNEL_ID, 2, 2, "ECM_channel_id" },
	{ SC_P_ECM_STREAM_ID, 2, 2, "ECM_stream_id" },
	{ SC_P_NOMINAL_CP_DURATION, 2, 2, "nominal_CP_duration" },
	{ SC_P_AC_TRANSFER_MODE, 1, 1, "access_criteria_transfer_mode" },
	{ SC_P_CP_NUMBER, 2, 2, "CP_number" },
	{ SC_P_CP_DURATION, 2, 2, "CP_duration" },
	{ SC_P_CP_CW_COMBINATION, 2, 0xFFFF, "CP_CW_combination" },
	{ SC_P_ECM_DATAGRAM, 0, 0xFFFF, "ECM_datagram" },
	{ SC_P_AC_DELAY_START, 2, 2, "AC_delay_start" },
	{ SC_P_AC_DELAY_STOP, 2, 2, "AC_delay_stop" },
	{ SC_P_CW_ENCRYPTION, 0, 0xFFFF, "CW_encryption" },
	{ SC_P_ECM_ID, 2, 2, "ECM_id" },
	{ SC_P_ERROR_STATUS, 2, 2, "error_status" },
	{ SC_P_ERROR_INFORMATION, 2, 2, "error_information" },
};

static const struct sc_pcard ecm_channel_setup[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 }, { SC_P_SUPER_CAS_ID, 1, 1 },
};
static const struct sc_pcard ecm_channel_only[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 },
};
static const struct sc_pcard ecm_channel_status[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 },
	{ SC_P_SECTION_TSPKT_FLAG, 1, 1 },
	{ SC_P_AC_DELAY_START, 0, 1 },
	{ SC_P_AC_DELAY_STOP, 0, 1 },
	{ SC_P_DELAY_START, 1, 1 },
	{ SC_P_DELAY_STOP, 1, 1 },
	{ SC_P_TRANSITION_DELAY_START, 0, 1 },
	{ SC_P_TRANSITION_DELAY_STOP, 0, 1 },
	{ SC_P_ECM_REP_PERIOD, 1, 1 },
	{ SC_P_MAX_STREAMS, 1, 1 },
	{ SC_P_MIN_CP_DURATION, 1, 1 },
	{ SC_P_LEAD_CW, 1, 1 },
	{ SC_P_CW_PER_MSG, 1, 1 },
	{ SC_P_MAX_COMP_TIME, 1, 1 },
};
static const struct sc_pcard ecm_channel_error[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 },
	{ SC_P_ERROR_STATUS, 1, SC_N },
	{ SC_P_ERROR_INFORMATION, 0, SC_N },
};
static const struct sc_pcard ecm_stream_setup[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 },
	{ SC_P_ECM_STREAM_ID, 1, 1 },
	{ SC_P_ECM_ID, 1, 1 },
	{ SC_P_NOMINAL_CP_DURATION, 1, 1 },
};
static const struct sc_pcard ecm_stream_only[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 }, { SC_P_ECM_STREAM_ID, 1, 1 },
};
static const struct sc_pcard ecm_stream_status[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 },
	{ SC_P_ECM_STREAM_ID, 1, 1 },
	{ SC_P_ECM_ID, 1, 1 },
	{ SC_P_AC_TRANSFER_MODE, 1, 1 },
};
static const struct sc_pcard ecm_stream_error[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 },
	{ SC_P_ECM_STREAM_ID, 1, 1 },
	{ SC_P_ERROR_STATUS, 1, SC_N },
	{ SC_P_ERROR_INFORMATION, 0, SC_N },
};
static const struct sc_pcard ecm_cw_provision[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 },
	{ SC_P_ECM_STREAM_ID, 1, 1 },
	{ SC_P_CP_NUMBER, 1, 1 },
	{ SC_P_CW_ENCRYPTION, 0, 1 },
	{ SC_P_CP_CW_COMBINATION, 0, SC_N },
	{ SC_P_CP_DURATION, 0, 1 },
	{ SC_P_ACCESS_CRITERIA, 0, 1 },
};
static const struct sc_pcard ecm_ecm_response[] = {
	{ SC_P_ECM_CHANNEL_ID, 1, 1 },
	{ SC_P_ECM_STREAM_ID, 1, 1 },
	{ SC_P_CP_NUMBER, 1, 1 },
	{ SC_P_ECM_DATAGRAM, 1, 1 },
};

#define MSPEC(code, name, tab) { code, name, tab, sizeof(tab) / sizeof(tab[0]) }

static const struct sc_mspec ecm_msgs[] = {
	MSPEC(SC_ECM_CHANNEL_SETUP, "channel_setup", ecm_channel_setup),
	MSPEC(SC_ECM_CHANNEL_TEST, "channel_test", ecm_channel_only),
	MSPEC(SC_ECM_CHANNEL_STATUS, "channel_status", ecm_channel_status),
	MSPEC(SC_ECM_CHANNEL_CLOSE, "channel_close", ecm_channel_only),
	MSPEC(SC_ECM_CHANNEL_ERROR, "channel_error", ecm_channel_error),
	MSPEC(SC_ECM_STREAM_SETUP, "stream_setup", ecm_stream_setup),
	MSPEC(SC_ECM_STREAM_TEST, "stream_test", ecm_stream_only),
	MSPEC(SC_ECM_STREAM_STATUS, "stream_status", ecm_stream_status),
	MSPEC(SC_ECM_STREAM_CLOSE_REQUEST, "stream_close_request", ecm_stream_only),
	MSPEC(SC_ECM_STREAM_CLOSE_RESPONSE, "stream_close_response", ecm_stream_only),
	MSPEC(SC_ECM_STREAM_ERROR, "stream_error", ecm_stream_error),
	MSPEC(SC_ECM_CW_PROVISION, "CW_provision", ecm_cw_provision),
	MSPEC(SC_ECM_ECM_RESPONSE, "ECM_response", ecm_ecm_response),
};

/* ---- EMMG/PDG<=>MUX (FACTS.md 3.2, 3.3) ---- */

static const struct sc_psize emm_sizes[] = {
	{ SC_P_CLIENT_ID, 4, 4, "client_id" },
	{ SC_P_SECTION_TSPKT_FLAG, 1, 1, "section_TSpkt_flag" },
	{ SC_P_DATA_CHANNEL_ID, 2, 2, "data_channel_id" },
	{ SC_P_DATA_STREAM_ID, 2, 2, "data_stream_id" },
	{ SC_P_DATAGRAM, 0, 0xFFFF, "datagram" },
	{ SC_P_BANDWIDTH, 2, 2, "bandwidth" },
	{ SC_P_DATA_TYPE, 1, 1, "data_type" },
	{ SC_P_DATA_ID, 2, 2, "data_id" },
	{ SC_P_ERROR_STATUS, 2, 2, "error_status" },
	{ SC_P_ERROR_INFORMATION, 2, 2, "error_information" },
};

static const struct sc_pcard emm_channel_setup[] = {
	{ SC_P_CLIENT_ID, 1, 1 },
	{ SC_P_DATA_CHANNEL_ID, 1, 1 },
	{ SC_P_SECTION_TSPKT_FLAG, 1, 1 },
};
static const struct sc_pcard emm_channel_only[] = {
	{ SC_P_CLIENT_ID, 1, 1 }, { SC_P_DATA_CHANNEL_ID, 1, 1 },
};
static const struct sc_pcard emm_channel_error[] = {
	{ SC_P_CLIENT_ID, 1, 1 },
	{ SC_P_DATA_CHANNEL_ID, 1, 1 },
	{ SC_P_ERROR_STATUS, 1, SC_N },
	{ SC_P_ERROR_INFORMATION, 0, SC_N },
};
static const struct sc_pcard emm_stream_setup[] = {
	{ SC_P_CLIENT_ID, 1, 1 },
	{ SC_P_DATA_CHANNEL_ID, 1, 1 },
	{ SC_P_DATA_STREAM_ID, 1, 1 },
	{ SC_P_DATA_ID, 1, 1 },
	{ SC_P_DATA_TYPE, 1, 1 },
};
static const struct sc_pcard emm_stream_only[] = {
	{ SC_P_CLIENT_ID, 1, 1 },
	{ SC_P_DATA_CHANNEL_ID, 1, 1 },
	{ SC_P_DATA_STREAM_ID, 1, 1 },
};
static const struct sc_pcard emm_stream_error[] = {
	{ SC_P_CLIENT_ID, 1, 1 },
	{ SC_P_DATA_CHANNEL_ID, 1, 1 },
	{ SC_P_DATA_STREAM_ID, 1, 1 },
	{ SC_P_ERROR_STATUS, 1, SC_N },
	{ SC_P_ERROR_INFORMATION, 0, SC_N },
};
static const struct sc_pcard emm_stream_bw[] = {
	{ SC_P_CLIENT_ID, 1, 1 },
	{ SC_P_DATA_CHANNEL_ID, 1, 1 },
	{ SC_P_DATA_STREAM_ID, 1, 1 },
	{ SC_P_BANDWIDTH, 0, 1 },
};
static const struct sc_pcard emm_data_provision[] = {
	{ SC_P_CLIENT_ID, 1, 1 },
	{ SC_P_DATA_CHANNEL_ID, 0, 1 },
	{ SC_P_DATA_STREAM_ID, 0, 1 },
	{ SC_P_DATA_ID, 1, 1 },
	{ SC_P_DATAGRAM, 1, SC_N },
};

static const struct sc_mspec emm_msgs[] = {
	MSPEC(SC_EMM_CHANNEL_SETUP, "channel_setup", emm_channel_setup),
	MSPEC(SC_EMM_CHANNEL_TEST, "channel_test", emm_channel_only),
	MSPEC(SC_EMM_CHANNEL_STATUS, "channel_status", emm_channel_setup),
	MSPEC(SC_EMM_CHANNEL_CLOSE, "channel_close", emm_channel_only),
	MSPEC(SC_EMM_CHANNEL_ERROR, "channel_error", emm_channel_error),
	MSPEC(SC_EMM_STREAM_SETUP, "stream_setup", emm_stream_setup),
	MSPEC(SC_EMM_STREAM_TEST, "stream_test", emm_stream_only),
	MSPEC(SC_EMM_STREAM_STATUS, "stream_status", emm_stream_setup),
	MSPEC(SC_EMM_STREAM_CLOSE_REQUEST, "stream_close_request", emm_stream_only),
	MSPEC(SC_EMM_STREAM_CLOSE_RESPONSE, "stream_close_response", emm_stream_only),
	MSPEC(SC_EMM_STREAM_ERROR, "stream_error", emm_stream_error),
	MSPEC(SC_EMM_STREAM_BW_REQUEST, "stream_BW_request", emm_stream_bw),
	MSPEC(SC_EMM_STREAM_BW_ALLOCATION, "stream_BW_allocation", emm_stream_bw),
	MSPEC(SC_EMM_DATA_PROVISION, "data_provision", emm_data_provision),
};

/* Longest schema: the per-message occurrence counters are sized by it. */
#define SC_MAX_SCHEMA 16
_Static_assert(sizeof(ecm_channel_status) / sizeof(ecm_channel_status[0]) <= SC_MAX_SCHEMA,
	"schema longer than the counters");

struct sc_names {
	uint16_t code;
	const char *name;
};

static const struct sc_names ecm_errors[] = {
	{ 0x0001, "inv_message" }, { 0x0002, "inv_proto_version" },
	{ 0x0003, "inv_message_type" }, { 0x0004, "message_too_long" },
	{ 0x0005, "inv_Super_CAS_id" }, { 0x0006, "inv_channel_id" },
	{ 0x0007, "inv_stream_id" }, { 0x0008, "too_many_channels" },
	{ 0x0009, "too_many_stm_chan" }, { 0x000A, "too_many_stm_ecmg" },
	{ 0x000B, "not_enough_CW" }, { 0x000C, "out_of_storage" },
	{ 0x000D, "out_of_compute" }, { 0x000E, "inv_param_type" },
	{ 0x000F, "inv_param_length" }, { 0x0010, "missing_param" },
	{ 0x0011, "inv_param_value" }, { 0x0012, "inv_ECM_id" },
	{ 0x0013, "channel_id_in_use" }, { 0x0014, "stream_id_in_use" },
	{ 0x0015, "ECM_id_in_use" }, { 0x7000, "unknown_error" },
	{ 0x7001, "unrecoverable_error" },
};

static const struct sc_names emm_errors[] = {
	{ 0x0001, "inv_message" }, { 0x0002, "inv_proto_version" },
	{ 0x0003, "inv_message_type" }, { 0x0004, "message_too_long" },
	{ 0x0005, "inv_data_stream_id" }, { 0x0006, "inv_data_channel_id" },
	{ 0x0007, "too_many_channels" }, { 0x0008, "too_many_stm_chan" },
	{ 0x0009, "too_many_stm_mux" }, { 0x000A, "inv_param_type" },
	{ 0x000B, "inv_param_length" }, { 0x000C, "missing_param" },
	{ 0x000D, "inv_param_value" }, { 0x000E, "inv_client_id" },
	{ 0x000F, "exceeded_bw" }, { 0x0010, "inv_data_id" },
	{ 0x0011, "channel_id_in_use" }, { 0x0012, "stream_id_in_use" },
	{ 0x0013, "data_id_in_use" }, { 0x0014, "client_id_in_use" },
	{ 0x7000, "unknown_error" }, { 0x7001, "unrecoverable_error" },
};

/* The parse-fault kinds, mapped per interface to error_status. */
enum sc_fault_kind {
	SC_F_INV_MESSAGE,
	SC_F_INV_PROTO_VERSION,
	SC_F_INV_MESSAGE_TYPE,
	SC_F_MESSAGE_TOO_LONG,
	SC_F_INV_PARAM_TYPE,
	SC_F_INV_PARAM_LENGTH,
	SC_F_MISSING_PARAM,
};

static const uint16_t fault_status[2][7] = {
	[SC_ECMG_SCS] = { SC_ECM_ERR_INV_MESSAGE, SC_ECM_ERR_INV_PROTO_VERSION,
		SC_ECM_ERR_INV_MESSAGE_TYPE, SC_ECM_ERR_MESSAGE_TOO_LONG,
		SC_ECM_ERR_INV_PARAM_TYPE, SC_ECM_ERR_INV_PARAM_LENGTH,
		SC_ECM_ERR_MISSING_PARAM },
	[SC_EMMG_MUX] = { SC_EMM_ERR_INV_MESSAGE, SC_EMM_ERR_INV_PROTO_VERSION,
		SC_EMM_ERR_INV_MESSAGE_TYPE, SC_EMM_ERR_MESSAGE_TOO_LONG,
		SC_EMM_ERR_INV_PARAM_TYPE, SC_EMM_ERR_INV_PARAM_LENGTH,
		SC_EMM_ERR_MISSING_PARAM },
};

static bool iface_ok(enum sc_iface iface)
{
	return iface == SC_ECMG_SCS || iface == SC_EMMG_MUX;
}

static const struct sc_mspec *find_msg(enum sc_iface iface, uint16_t type)
{
	const struct sc_mspec *t = iface == SC_ECMG_SCS ? ecm_msgs : emm_msgs;
	size_t n = iface == SC_ECMG_SCS ? sizeof(ecm_msgs) / sizeof(ecm_msgs[0])
					: sizeof(emm_msgs) / sizeof(emm_msgs[0]);

	for (size_t i = 0; i < n; i++)
		if (t[i].type == type)
			return &t[i];
	return NULL;
}

static const struct sc_psize *find_size(enum sc_iface iface, uint16_t ptype)
{
	const struct sc_psize *t = iface == SC_ECMG_SCS ? ecm_sizes : emm_sizes;
	size_t n = iface == SC_ECMG_SCS ? sizeof(ecm_sizes) / sizeof(ecm_sizes[0])
					: sizeof(emm_sizes) / sizeof(emm_sizes[0]);

	for (size_t i = 0; i < n; i++)
		if (t[i].type == ptype)
			return &t[i];
	return NULL;
}

/* Index of ptype in the message's schema, or -1. */
static int schema_index(const struct sc_mspec *ms, uint16_t ptype)
{
	for (size_t i = 0; i < ms->nparams; i++)
		if (ms->params[i].type == ptype)
			return (int)i;
	return -1;
}

size_t sc_frame_len(const uint8_t hdr[SC_HEADER_BYTES])
{
	uint16_t n = 0;

	(void)cur_u16_at(hdr, SC_HEADER_BYTES, 3, &n);
	return SC_HEADER_BYTES + (size_t)n;
}

bool sc_version_ok(enum sc_iface iface, uint8_t version)
{
	if (iface == SC_ECMG_SCS)
		return version >= 2 && version <= 3;
	if (iface == SC_EMMG_MUX)
		return version >= 1 && version <= 5;
	return false;
}

/*
 * Best-effort reading of the ids of a faulty message whose type is known:
 * walk the TLVs while they are well formed and take the first occurrence of
 * each id with the right size. Never fails.
 */
static void fault_ids(enum sc_iface iface, const uint8_t *params, size_t len,
	struct sc_fault *f)
{
	struct cur c;
	uint16_t ch_tag = iface == SC_ECMG_SCS ? SC_P_ECM_CHANNEL_ID : SC_P_DATA_CHANNEL_ID;
	uint16_t st_tag = iface == SC_ECMG_SCS ? SC_P_ECM_STREAM_ID : SC_P_DATA_STREAM_ID;

	cur_init(&c, params, len);
	while (cur_left(&c) > 0) {
		uint16_t t, l;
		const uint8_t *v;

		cur_u16(&c, &t);
		cur_u16(&c, &l);
		v = cur_ptr(&c, l);
		if (!v)
			return;
		if (t == ch_tag && l == 2 && !f->has_channel) {
			f->has_channel = true;
			(void)cur_u16_at(v, l, 0, &f->channel_id);
		} else if (t == st_tag && l == 2 && !f->has_stream) {
			f->has_stream = true;
			(void)cur_u16_at(v, l, 0, &f->stream_id);
		} else if (iface == SC_EMMG_MUX && t == SC_P_CLIENT_ID && l == 4 && !f->has_client) {
			f->has_client = true;
			(void)cur_u32_at(v, l, 0, &f->client_id);
		}
	}
}

int sc_decode(enum sc_iface iface, uint8_t expect_version, const uint8_t *buf, size_t len,
	struct sc_msg *msg, struct sc_fault *fault)
{
	struct sc_fault f;
	struct cur c, pc;
	const struct sc_mspec *ms = NULL;
	const uint8_t *params = NULL;
	uint16_t counts[SC_MAX_SCHEMA] = { 0 };
	uint16_t mlen = 0;
	enum sc_fault_kind kind = SC_F_INV_MESSAGE;
	uint32_t info = 0;
	int r = CE_INTERNAL;

	memset(&f, 0, sizeof(f));
	if (fault)
		memset(fault, 0, sizeof(*fault));
	if (!msg || !iface_ok(iface) || (!buf && len)) {
		r = CE_ARG;
		if (fault)
			fault->err = r;
		return r;
	}
	msg->version = 0;
	msg->type = 0;
	msg->nparams = 0;

	cur_init(&c, buf, len);
	if (cur_u8(&c, &msg->version) != 0) {
		kind = SC_F_INV_MESSAGE, info = 0, r = CE_TRUNCATED;
		goto fail;
	}
	if (msg->version != expect_version) {
		/* Like TSDuck: stop here, the rest is another version's layout. */
		kind = SC_F_INV_PROTO_VERSION, info = 0, r = CE_UNSUPPORTED;
		goto fail;
	}
	if (len > SC_MAX_MSG_BYTES) {
		kind = SC_F_MESSAGE_TOO_LONG, info = 3, r = CE_LIMIT;
		goto fail;
	}
	cur_u16(&c, &msg->type);
	if (cur_u16(&c, &mlen) != 0) {
		kind = SC_F_INV_MESSAGE, info = 1, r = CE_TRUNCATED;
		goto fail;
	}
	f.has_type = true;
	f.msg_type = msg->type;
	if (mlen != cur_left(&c)) {
		kind = SC_F_INV_MESSAGE, info = 1;
		r = mlen > cur_left(&c) ? CE_TRUNCATED : CE_TRAILING;
		goto fail;
	}
	ms = find_msg(iface, msg->type);
	if (!ms) {
		kind = SC_F_INV_MESSAGE_TYPE, info = 1, r = CE_UNSUPPORTED;
		goto fail;
	}
	params = buf + SC_HEADER_BYTES;
	if (cur_view(&c, mlen, &pc) != 0) { /* cannot fail: mlen == left */
		r = CE_INTERNAL;
		goto fail;
	}
	while (cur_left(&pc) > 0) {
		size_t at = SC_HEADER_BYTES + pc.off;
		uint16_t pt, pl;
		const uint8_t *val;
		const struct sc_psize *ps;
		int idx;

		cur_u16(&pc, &pt);
		cur_u16(&pc, &pl);
		val = cur_ptr(&pc, pl);
		if (!val) {
			kind = SC_F_INV_MESSAGE, info = (uint32_t)at, r = CE_TRUNCATED;
			goto fail;
		}
		idx = schema_index(ms, pt);
		ps = find_size(iface, pt);
		if (idx < 0 || !ps) {
			kind = SC_F_INV_PARAM_TYPE, info = (uint32_t)at, r = CE_FORMAT;
			goto fail;
		}
		if (pl < ps->min_len || pl > ps->max_len) {
			kind = SC_F_INV_PARAM_LENGTH, info = (uint32_t)at, r = CE_FORMAT;
			goto fail;
		}
		if (msg->nparams >= SC_MAX_PARAMS) {
			kind = SC_F_INV_MESSAGE, info = (uint32_t)at, r = CE_LIMIT;
			goto fail;
		}
		msg->params[msg->nparams].type = pt;
		msg->params[msg->nparams].len = pl;
		msg->params[msg->nparams].val = val;
		msg->nparams++;
		if (counts[idx] < UINT16_MAX)
			counts[idx]++;
	}
	if ((r = cur_end(&pc)) != 0 || (r = cur_end(&c)) != 0) {
		kind = SC_F_INV_MESSAGE, info = 1;
		goto fail;
	}
	/* Cardinality: report the lowest violating tag, as TSDuck does. */
	{
		bool bad = false;
		uint16_t tag = 0;

		for (size_t i = 0; i < ms->nparams; i++) {
			const struct sc_pcard *pc2 = &ms->params[i];

			if (counts[i] < pc2->min_count || counts[i] > pc2->max_count) {
				if (!bad || pc2->type < tag)
					tag = pc2->type;
				bad = true;
			}
		}
		if (bad) {
			kind = SC_F_MISSING_PARAM, info = tag, r = CE_PROTO;
			goto fail;
		}
	}
	return 0;

fail:
	f.status = fault_status[iface][kind];
	f.info = (uint16_t)(info > UINT16_MAX ? UINT16_MAX : info);
	f.err = r;
	if (ms && params)
		fault_ids(iface, params, mlen, &f);
	if (fault)
		*fault = f;
	msg->nparams = 0;
	return r;
}

/* ---- accessors ---- */

const struct sc_param *sc_get_nth(const struct sc_msg *m, uint16_t ptype, size_t nth)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->nparams && i < SC_MAX_PARAMS; i++) {
		if (m->params[i].type != ptype)
			continue;
		if (nth == 0)
			return &m->params[i];
		nth--;
	}
	return NULL;
}

size_t sc_count(const struct sc_msg *m, uint16_t ptype)
{
	size_t n = 0;

	if (!m)
		return 0;
	for (size_t i = 0; i < m->nparams && i < SC_MAX_PARAMS; i++)
		if (m->params[i].type == ptype)
			n++;
	return n;
}

static int get_sized(const struct sc_msg *m, uint16_t ptype, size_t size, const uint8_t **val)
{
	const struct sc_param *p = sc_get_nth(m, ptype, 0);

	*val = NULL;
	if (!p)
		return CE_NOT_FOUND;
	if (p->len != size || !p->val)
		return CE_FORMAT;
	*val = p->val;
	return 0;
}

int sc_get_u8(const struct sc_msg *m, uint16_t ptype, uint8_t *v)
{
	const uint8_t *p;
	int r;

	*v = 0;
	if ((r = get_sized(m, ptype, 1, &p)) != 0)
		return r;
	*v = p[0];
	return 0;
}

int sc_get_u16(const struct sc_msg *m, uint16_t ptype, uint16_t *v)
{
	const uint8_t *p;
	int r;

	*v = 0;
	if ((r = get_sized(m, ptype, 2, &p)) != 0)
		return r;
	return cur_u16_at(p, 2, 0, v);
}

int sc_get_u32(const struct sc_msg *m, uint16_t ptype, uint32_t *v)
{
	const uint8_t *p;
	int r;

	*v = 0;
	if ((r = get_sized(m, ptype, 4, &p)) != 0)
		return r;
	return cur_u32_at(p, 4, 0, v);
}

/* ---- writer ---- */

void sc_begin(struct sc_writer *sw, void *buf, size_t cap, uint8_t version, uint16_t type)
{
	wbuf_init(&sw->w, buf, cap);
	wbuf_u8(&sw->w, version);
	wbuf_u16(&sw->w, type);
	sw->len_at = wbuf_reserve(&sw->w, 2);
}

static void put_tlv_head(struct sc_writer *sw, uint16_t ptype, size_t len)
{
	if (len > UINT16_MAX) {
		if (!sw->w.err)
			sw->w.err = CE_RANGE;
		return;
	}
	wbuf_u16(&sw->w, ptype);
	wbuf_u16(&sw->w, (uint16_t)len);
}

void sc_put_u8(struct sc_writer *sw, uint16_t ptype, uint8_t v)
{
	put_tlv_head(sw, ptype, 1);
	wbuf_u8(&sw->w, v);
}

void sc_put_u16(struct sc_writer *sw, uint16_t ptype, uint16_t v)
{
	put_tlv_head(sw, ptype, 2);
	wbuf_u16(&sw->w, v);
}

void sc_put_u32(struct sc_writer *sw, uint16_t ptype, uint32_t v)
{
	put_tlv_head(sw, ptype, 4);
	wbuf_u32(&sw->w, v);
}

void sc_put_bytes(struct sc_writer *sw, uint16_t ptype, const void *val, size_t len)
{
	if (len && !val) {
		if (!sw->w.err)
			sw->w.err = CE_ARG;
		return;
	}
	put_tlv_head(sw, ptype, len);
	if (len)
		wbuf_bytes(&sw->w, val, len);
}

int sc_finish(struct sc_writer *sw, size_t *out_len)
{
	size_t body;
	int r;

	*out_len = 0;
	if ((r = wbuf_status(&sw->w)) != 0)
		return r;
	if (sw->w.len < SC_HEADER_BYTES)
		return CE_OVERFLOW;
	body = sw->w.len - SC_HEADER_BYTES;
	if (body > UINT16_MAX)
		return CE_RANGE;
	wbuf_patch_u16(&sw->w, sw->len_at, (uint16_t)body);
	if ((r = wbuf_status(&sw->w)) != 0)
		return r;
	*out_len = sw->w.len;
	return 0;
}

int sc_encode_msg(const struct sc_msg *m, void *buf, size_t cap, size_t *out_len)
{
	struct sc_writer sw;

	*out_len = 0;
	if (!m || m->nparams > SC_MAX_PARAMS)
		return CE_ARG;
	sc_begin(&sw, buf, cap, m->version, m->type);
	for (size_t i = 0; i < m->nparams; i++)
		sc_put_bytes(&sw, m->params[i].type, m->params[i].val, m->params[i].len);
	return sc_finish(&sw, out_len);
}

/* Stream-level messages: 0x01xx stream management and 0x02xx data. */
static bool stream_level(enum sc_iface iface, const struct sc_fault *f)
{
	return f->has_type && f->has_stream && f->msg_type >= 0x0100 &&
		find_msg(iface, f->msg_type) != NULL;
}

int sc_build_error(enum sc_iface iface, uint8_t version, const struct sc_fault *fault,
	uint32_t client_id, void *buf, size_t cap, size_t *out_len)
{
	struct sc_writer sw;
	uint16_t ch, st;
	bool stream;

	*out_len = 0;
	if (!fault || !iface_ok(iface))
		return CE_ARG;
	ch = fault->has_channel ? fault->channel_id : 0;
	st = fault->has_stream ? fault->stream_id : 0;
	stream = stream_level(iface, fault);
	if (iface == SC_ECMG_SCS) {
		sc_begin(&sw, buf, cap, version, stream ? SC_ECM_STREAM_ERROR : SC_ECM_CHANNEL_ERROR);
		sc_put_u16(&sw, SC_P_ECM_CHANNEL_ID, ch);
		if (stream)
			sc_put_u16(&sw, SC_P_ECM_STREAM_ID, st);
	} else {
		/* TSDuck order: data_channel_id, [data_stream_id], client_id. */
		sc_begin(&sw, buf, cap, version, stream ? SC_EMM_STREAM_ERROR : SC_EMM_CHANNEL_ERROR);
		sc_put_u16(&sw, SC_P_DATA_CHANNEL_ID, ch);
		if (stream)
			sc_put_u16(&sw, SC_P_DATA_STREAM_ID, st);
		sc_put_u32(&sw, SC_P_CLIENT_ID, client_id);
	}
	sc_put_u16(&sw, SC_P_ERROR_STATUS, fault->status);
	sc_put_u16(&sw, SC_P_ERROR_INFORMATION, fault->info);
	return sc_finish(&sw, out_len);
}

/* ---- names ---- */

const char *sc_msg_name(enum sc_iface iface, uint16_t type)
{
	const struct sc_mspec *ms = iface_ok(iface) ? find_msg(iface, type) : NULL;

	return ms ? ms->name : "unknown";
}

const char *sc_param_name(enum sc_iface iface, uint16_t ptype)
{
	const struct sc_psize *ps = iface_ok(iface) ? find_size(iface, ptype) : NULL;

	return ps ? ps->name : "unknown";
}

const char *sc_error_name(enum sc_iface iface, uint16_t status)
{
	const struct sc_names *t;
	size_t n;

	if (iface == SC_ECMG_SCS) {
		t = ecm_errors;
		n = sizeof(ecm_errors) / sizeof(ecm_errors[0]);
	} else if (iface == SC_EMMG_MUX) {
		t = emm_errors;
		n = sizeof(emm_errors) / sizeof(emm_errors[0]);
	} else {
		return "unknown";
	}
	for (size_t i = 0; i < n; i++)
		if (t[i].code == status)
			return t[i].name;
	return "unknown";
}
