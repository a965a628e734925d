/*
 * simulcrypt.h - DVB SimulCrypt message codec (ETSI TS 103 197) for the
 * ECMG<=>SCS and EMMG/PDG<=>MUX interfaces.
 *
 * Owns: the generic message layout (5-byte header + TLV parameters), the
 * message and parameter code tables of both interfaces, the per-message
 * schema (parameter cardinality, parameter sizes), and the mapping of parse
 * faults to each interface's error_status codes. It does no I/O and holds no
 * session state: the ECMG (src/headend/ecmg.c), the SCS client
 * (src/scrambler/scs.c) and the MUX (src/scrambler/mux.c) hold the state
 * machines.
 *
 * Decoding never copies: struct sc_msg points into the caller's buffer, so
 * the buffer must outlive the message. Encoding writes into a caller buffer
 * through struct wbuf (fixed capacity, back-patched length).
 *
 * Reference: ETSI TS 103 197; the facts used are in tests/data/simulcrypt/FACTS.md.
 */
#ifndef CASTELLAN_SIMULCRYPT_H
#define CASTELLAN_SIMULCRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/cursor.h"

#define SC_HEADER_BYTES 5
#define SC_MAX_MSG_BYTES (SC_HEADER_BYTES + 65535)
/* Most parameters a decoded message may hold; more is inv_message. */
#define SC_MAX_PARAMS 128

enum sc_iface { SC_ECMG_SCS = 0, SC_EMMG_MUX = 1 };

/* ECMG<=>SCS message types. */
enum {
	SC_ECM_CHANNEL_SETUP = 0x0001,
	SC_ECM_CHANNEL_TEST = 0x0002,
	SC_ECM_CHANNEL_STATUS = 0x0003,
	SC_ECM_CHANNEL_CLOSE = 0x0004,
	SC_ECM_CHANNEL_ERROR = 0x0005,
	SC_ECM_STREAM_SETUP = 0x0101,
	SC_ECM_STREAM_TEST = 0x0102,
	SC_ECM_STREAM_STATUS = 0x0103,
	SC_ECM_STREAM_CLOSE_REQUEST = 0x0104,
	SC_ECM_STREAM_CLOSE_RESPONSE = 0x0105,
	SC_ECM_STREAM_ERROR = 0x0106,
	SC_ECM_CW_PROVISION = 0x0201,
	SC_ECM_ECM_RESPONSE = 0x0202,
};

/* ECMG<=>SCS parameter types. */
enum {
	SC_P_SUPER_CAS_ID = 0x0001,
	SC_P_SECTION_TSPKT_FLAG = 0x0002,
	SC_P_DELAY_START = 0x0003,
	SC_P_DELAY_STOP = 0x0004,
	SC_P_TRANSITION_DELAY_START = 0x0005,
	SC_P_TRANSITION_DELAY_STOP = 0x0006,
	SC_P_ECM_REP_PERIOD = 0x0007,
	SC_P_MAX_STREAMS = 0x0008,
	SC_P_MIN_CP_DURATION = 0x0009,
	SC_P_LEAD_CW = 0x000A,
	SC_P_CW_PER_MSG = 0x000B,
	SC_P_MAX_COMP_TIME = 0x000C,
	SC_P_ACCESS_CRITERIA = 0x000D,
	SC_P_ECM_CHANNEL_ID = 0x000E,
	SC_P_ECM_STREAM_ID = 0x000F,
	SC_P_NOMINAL_CP_DURATION = 0x0010,
	SC_P_AC_TRANSFER_MODE = 0x0011,
	SC_P_CP_NUMBER = 0x0012,
	SC_P_CP_DURATION = 0x0013,
	SC_P_CP_CW_COMBINATION = 0x0014,
	SC_P_ECM_DATAGRAM = 0x0015,
	SC_P_AC_DELAY_START = 0x0016,
	SC_P_AC_DELAY_STOP = 0x0017,
	SC_P_CW_ENCRYPTION = 0x0018,
	SC_P_ECM_ID = 0x0019,
	SC_P_ERROR_STATUS = 0x7000,
	SC_P_ERROR_INFORMATION = 0x7001,
};

/* EMMG/PDG<=>MUX message types. */
enum {
	SC_EMM_CHANNEL_SETUP = 0x0011,
	SC_EMM_CHANNEL_TEST = 0x0012,
	SC_EMM_CHANNEL_STATUS = 0x0013,
	SC_EMM_CHANNEL_CLOSE = 0x0014,
	SC_EMM_CHANNEL_ERROR = 0x0015,
	SC_EMM_STREAM_SETUP = 0x0111,
	SC_EMM_STREAM_TEST = 0x0112,
	SC_EMM_STREAM_STATUS = 0x0113,
	SC_EMM_STREAM_CLOSE_REQUEST = 0x0114,
	SC_EMM_STREAM_CLOSE_RESPONSE = 0x0115,
	SC_EMM_STREAM_ERROR = 0x0116,
	SC_EMM_STREAM_BW_REQUEST = 0x0117,
	SC_EMM_STREAM_BW_ALLOCATION = 0x0118,
	SC_EMM_DATA_PROVISION = 0x0211,
};

/* EMMG/PDG<=>MUX parameter types (error_status/information shared above). */
enum {
	SC_P_CLIENT_ID = 0x0001,
	/* 0x0002 section_TSpkt_flag: same code as SC_P_SECTION_TSPKT_FLAG */
	SC_P_DATA_CHANNEL_ID = 0x0003,
	SC_P_DATA_STREAM_ID = 0x0004,
	SC_P_DATAGRAM = 0x0005,
	SC_P_BANDWIDTH = 0x0006,
	SC_P_DATA_TYPE = 0x0007,
	SC_P_DATA_ID = 0x0008,
};

/* ECMG<=>SCS error_status values. */
enum {
	SC_ECM_ERR_INV_MESSAGE = 0x0001,
	SC_ECM_ERR_INV_PROTO_VERSION = 0x0002,
	SC_ECM_ERR_INV_MESSAGE_TYPE = 0x0003,
	SC_ECM_ERR_MESSAGE_TOO_LONG = 0x0004,
	SC_ECM_ERR_INV_SUPER_CAS_ID = 0x0005,
	SC_ECM_ERR_INV_CHANNEL_ID = 0x0006,
	SC_ECM_ERR_INV_STREAM_ID = 0x0007,
	SC_ECM_ERR_TOO_MANY_CHANNELS = 0x0008,
	SC_ECM_ERR_TOO_MANY_STM_CHAN = 0x0009,
	SC_ECM_ERR_TOO_MANY_STM_ECMG = 0x000A,
	SC_ECM_ERR_NOT_ENOUGH_CW = 0x000B,
	SC_ECM_ERR_OUT_OF_STORAGE = 0x000C,
	SC_ECM_ERR_OUT_OF_COMPUTE = 0x000D,
	SC_ECM_ERR_INV_PARAM_TYPE = 0x000E,
	SC_ECM_ERR_INV_PARAM_LENGTH = 0x000F,
	SC_ECM_ERR_MISSING_PARAM = 0x0010,
	SC_ECM_ERR_INV_PARAM_VALUE = 0x0011,
	SC_ECM_ERR_INV_ECM_ID = 0x0012,
	SC_ECM_ERR_CHANNEL_ID_IN_USE = 0x0013,
	SC_ECM_ERR_STREAM_ID_IN_USE = 0x0014,
	SC_ECM_ERR_ECM_ID_IN_USE = 0x0015,
	SC_ECM_ERR_UNKNOWN = 0x7000,
	SC_ECM_ERR_UNRECOVERABLE = 0x7001,
};

/* EMMG/PDG<=>MUX error_status values. */
enum {
	SC_EMM_ERR_INV_MESSAGE = 0x0001,
	SC_EMM_ERR_INV_PROTO_VERSION = 0x0002,
	SC_EMM_ERR_INV_MESSAGE_TYPE = 0x0003,
	SC_EMM_ERR_MESSAGE_TOO_LONG = 0x0004,
	SC_EMM_ERR_INV_DATA_STREAM_ID = 0x0005,
	SC_EMM_ERR_INV_DATA_CHANNEL_ID = 0x0006,
	SC_EMM_ERR_TOO_MANY_CHANNELS = 0x0007,
	SC_EMM_ERR_TOO_MANY_STM_CHAN = 0x0008,
	SC_EMM_ERR_TOO_MANY_STM_MUX = 0x0009,
	SC_EMM_ERR_INV_PARAM_TYPE = 0x000A,
	SC_EMM_ERR_INV_PARAM_LENGTH = 0x000B,
	SC_EMM_ERR_MISSING_PARAM = 0x000C,
	SC_EMM_ERR_INV_PARAM_VALUE = 0x000D,
	SC_EMM_ERR_INV_CLIENT_ID = 0x000E,
	SC_EMM_ERR_EXCEEDED_BW = 0x000F,
	SC_EMM_ERR_INV_DATA_ID = 0x0010,
	SC_EMM_ERR_CHANNEL_ID_IN_USE = 0x0011,
	SC_EMM_ERR_STREAM_ID_IN_USE = 0x0012,
	SC_EMM_ERR_DATA_ID_IN_USE = 0x0013,
	SC_EMM_ERR_CLIENT_ID_IN_USE = 0x0014,
	SC_EMM_ERR_UNKNOWN = 0x7000,
	SC_EMM_ERR_UNRECOVERABLE = 0x7001,
};

/* One decoded parameter: points into the decoded buffer. */
struct sc_param {
	uint16_t type;
	uint16_t len;
	const uint8_t *val;
};

/* A decoded message; parameters in wire order. */
struct sc_msg {
	uint8_t version;
	uint16_t type;
	size_t nparams;
	struct sc_param params[SC_MAX_PARAMS];
};

/* Why a message was rejected, ready to be sent back as channel_error /
 * stream_error: error_status uses the codes of the interface decoded for;
 * error_information is the byte offset of the fault (format errors) or the
 * offending parameter type (missing/duplicated/unknown parameter), as TSDuck
 * does. has_channel/has_stream say whether the ids below were readable. */
struct sc_fault {
	uint16_t status;
	uint16_t info;
	bool has_channel;
	uint16_t channel_id;
	bool has_stream;
	uint16_t stream_id;
	int err; /* the CE_* code behind it */
	/* Added: the message type when the header was readable (has_type), so
	 * sc_build_error can tell a stream-level message; and on EMMG<=>MUX the
	 * client_id when readable (sc_build_error still takes the caller's). */
	bool has_type;
	uint16_t msg_type;
	bool has_client;
	uint32_t client_id;
};

/* Total length of the message whose first 5 bytes are hdr (5 + length
 * field). For framing a TCP stream. */
size_t sc_frame_len(const uint8_t hdr[SC_HEADER_BYTES]);

/*
 * Decode and validate one whole message (buf holds exactly one message).
 * expect_version: the version this endpoint is configured with; a
 * different header version is rejected with inv_proto_version.
 * Validates: header length vs buffer, every TLV bound, message type known
 * for the interface, every parameter known for that message type, each
 * parameter's size, each parameter's count (min..max).
 * Returns 0, or a negative CE_* with *fault filled (fault may be NULL).
 * expect_version is only compared for equality (check the configured
 * version once with sc_version_ok). On failure msg->nparams is 0 and
 * msg->version/type hold what the header said, if it was readable.
 * The fault-to-error_status table is in docs/simulcrypt.md.
 */
int sc_decode(enum sc_iface iface, uint8_t expect_version, const uint8_t *buf, size_t len,
	struct sc_msg *msg, struct sc_fault *fault) WARN_UNUSED;

/* Accessors. Each returns 0, or CE_NOT_FOUND if absent, CE_FORMAT if the
 * size is not the one asked for. "nth" counts occurrences from 0. */
int sc_get_u8(const struct sc_msg *m, uint16_t ptype, uint8_t *v) WARN_UNUSED;
int sc_get_u16(const struct sc_msg *m, uint16_t ptype, uint16_t *v) WARN_UNUSED;
int sc_get_u32(const struct sc_msg *m, uint16_t ptype, uint32_t *v) WARN_UNUSED;
const struct sc_param *sc_get_nth(const struct sc_msg *m, uint16_t ptype, size_t nth);
size_t sc_count(const struct sc_msg *m, uint16_t ptype);

/* Encoder. sc_begin writes the header with a reserved length; the put
 * functions append TLVs; sc_finish back-patches message_length and returns
 * 0 or CE_OVERFLOW / CE_RANGE (message over 65535 bytes of parameters). */
struct sc_writer {
	struct wbuf w;
	size_t len_at;
};
void sc_begin(struct sc_writer *sw, void *buf, size_t cap, uint8_t version, uint16_t type);
void sc_put_u8(struct sc_writer *sw, uint16_t ptype, uint8_t v);
void sc_put_u16(struct sc_writer *sw, uint16_t ptype, uint16_t v);
void sc_put_u32(struct sc_writer *sw, uint16_t ptype, uint32_t v);
void sc_put_bytes(struct sc_writer *sw, uint16_t ptype, const void *val, size_t len);
int sc_finish(struct sc_writer *sw, size_t *out_len) WARN_UNUSED;

/* Re-encode a decoded message exactly (same parameter order). */
int sc_encode_msg(const struct sc_msg *m, void *buf, size_t cap, size_t *out_len) WARN_UNUSED;

/* Build the channel_error / stream_error answering *fault on iface (picks
 * stream_error when the faulty message carried a stream id and the message
 * type is a stream-level one). For EMMG<=>MUX, client_id must be given. */
int sc_build_error(enum sc_iface iface, uint8_t version, const struct sc_fault *fault,
	uint32_t client_id, void *buf, size_t cap, size_t *out_len) WARN_UNUSED;

/* Names for logs and docs ("CW_provision", "ECM_channel_id"); "unknown" if
 * not in the table. */
const char *sc_msg_name(enum sc_iface iface, uint16_t type);
const char *sc_param_name(enum sc_iface iface, uint16_t ptype);
const char *sc_error_name(enum sc_iface iface, uint16_t status);

/* true if version is accepted for the interface (ECMG<=>SCS: 2..3,
 * EMMG<=>MUX: 1..5). */
bool sc_version_ok(enum sc_iface iface, uint8_t version);

#endif
