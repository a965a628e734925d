/*
 * err.h - the one list of Castellan error codes.
 *
 * Every function that can fail returns int: 0 on success, a negative CE_*
 * code on failure. err_str() gives the human text. The list is an X-macro so
 * that the enum and the strings can never drift apart.
 */
#ifndef CASTELLAN_ERR_H
#define CASTELLAN_ERR_H

#define CE_LIST(X) \
	X(CE_INTERNAL,     -1, "internal error") \
	X(CE_NOMEM,        -2, "out of memory") \
	X(CE_ARG,          -3, "invalid argument") \
	X(CE_TRUNCATED,    -4, "input truncated") \
	X(CE_FORMAT,       -5, "invalid format") \
	X(CE_TRAILING,     -6, "unexpected trailing bytes") \
	X(CE_RANGE,        -7, "value out of range") \
	X(CE_OVERFLOW,     -8, "output buffer too small") \
	X(CE_CRC,          -9, "CRC mismatch") \
	X(CE_MAC,         -10, "authentication failed") \
	X(CE_REPLAY,      -11, "replayed or stale message") \
	X(CE_NOT_ENTITLED,-12, "not entitled") \
	X(CE_EXPIRED,     -13, "entitlement expired or not yet valid") \
	X(CE_NO_KEY,      -14, "no key for this epoch") \
	X(CE_IO,          -15, "I/O error") \
	X(CE_NOT_FOUND,   -16, "not found") \
	X(CE_PROTO,       -17, "protocol error") \
	X(CE_UNSUPPORTED, -18, "unsupported") \
	X(CE_CRYPTO,      -19, "crypto library error") \
	X(CE_TIMEOUT,     -20, "timed out") \
	X(CE_CLOSED,      -21, "connection closed") \
	X(CE_BLOCKED,     -22, "blocked") \
	X(CE_LIMIT,       -23, "limit exceeded") \
	X(CE_STATE,       -24, "not allowed in this state") \
	X(CE_EXISTS,      -25, "already exists") \
	X(CE_PASSPHRASE,  -26, "wrong passphrase or corrupt key file")

enum err_code {
	CE_OK = 0,
#define CE_ENUM(name, value, text) name = value,
	CE_LIST(CE_ENUM)
#undef CE_ENUM
};

/* Human-readable text for an error code (never NULL; "unknown error" for
 * codes outside the list). */
const char *err_str(int code);

#if defined(__GNUC__)
#define WARN_UNUSED __attribute__((warn_unused_result))
#else
#define WARN_UNUSED
#endif

#endif
