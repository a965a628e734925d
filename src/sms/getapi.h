/*
 * getapi.h - the free CAS's GET API (`GET /api.php?...`), drop-in: query
 * parsing, validation and the answer, without any HTTP (http.h serves it).
 * docs/api-get.md is the operator's reference; DESIGN.md section 5 the
 * contract:
 *
 *   api_key=K & serial_no=S [& set[name]=.. & set[info]=.. & set[pair]=0|1
 *   & set[start]=UNIX10 & set[finish]=UNIX10 & set[access_criteria]=8 hex]
 *
 * Answer: 200 and {"serial_no","name","info","access_criteria","pair",
 * "start","finish"} (all string values, PHP json_encode escaping), or 400
 * and one error word as the whole body. Checks run in the free CAS's order:
 * the key, then the card, then each set[] parameter in query order; all of
 * them pass before anything is written, so a refused request changes
 * nothing.
 *
 * The query is untrusted: at most GETAPI_QUERY_MAX bytes and
 * GETAPI_PARAMS_MAX parameters; %XX and '+' are decoded in names and values
 * (an invalid escape stays literal, as PHP's urldecode leaves it). A %00
 * in api_key or serial_no makes it invalid; in a set[] value it answers
 * that field's error word (NAME_ERROR for set[name], ...).
 */
#ifndef CASTELLAN_SMS_GETAPI_H
#define CASTELLAN_SMS_GETAPI_H

#include <stdbool.h>
#include <stddef.h>
#include "sms/store.h"

/* Room for a whole SMS_INFO_MAX info percent-encoded (3 bytes a byte) and
 * the other parameters, so a too-long info answers INFO_ERROR, not
 * BAD_REQUEST. (The free CAS behind Apache took 8,190 bytes of request
 * line; a billing system never needed more.) */
#define GETAPI_QUERY_MAX (3 * SMS_INFO_MAX + 4096)
#define GETAPI_PARAMS_MAX 32
/* The longest card JSON: json_encode writes at most 3 bytes per byte of
 * text (\uXXXX for 2 bytes, a surrogate pair for 4, \/ for 1). */
#define GETAPI_BODY_MAX (3 * (SMS_NAME_MAX + SMS_INFO_MAX) + 512)

/* Error words (the body of a 400 answer). The first seven are the free
 * CAS's; NAME_ERROR and INFO_ERROR (too long, not UTF-8, control bytes) and
 * BAD_REQUEST (query over the limits) are Castellan's, for input the free
 * CAS would have stored mangled. SMARTCARD_BLACKLISTED (Castellan's too): the
 * card or its box is blacklisted and the set[] would grant, activate or pair
 * it (the store refuses: CE_BLOCKED); nothing is written. */
#define GETAPI_ERRORS(X) \
	X(GETAPI_OK, "") \
	X(GETAPI_NOT_VALID_API_KEY, "NOT_VALID_API_KEY") \
	X(GETAPI_SMARDCARD_NOT_FOUND, "SMARDCARD_NOT_FOUND") \
	X(GETAPI_UNKNOWN_SET_PARAMETER, "UNKNOWN_SET_PARAMETER") \
	X(GETAPI_ACCESS_CRITERIA_ERROR, "ACCESS_CRITERIA_ERROR") \
	X(GETAPI_PAIR_ERROR, "PAIR_ERROR") \
	X(GETAPI_START_ERROR, "START_ERROR") \
	X(GETAPI_FINISH_ERROR, "FINISH_ERROR") \
	X(GETAPI_NAME_ERROR, "NAME_ERROR") \
	X(GETAPI_INFO_ERROR, "INFO_ERROR") \
	X(GETAPI_BAD_REQUEST, "BAD_REQUEST") \
	X(GETAPI_SMARTCARD_BLACKLISTED, "SMARTCARD_BLACKLISTED")

enum getapi_word {
#define GW_ENUM(name, text) name,
	GETAPI_ERRORS(GW_ENUM)
#undef GW_ENUM
	GETAPI_NWORDS
};

const char *getapi_word_str(enum getapi_word w);

/* One parsed request: values decoded, not yet validated. A value that
 * decoded to a NUL byte (%00) is flagged, never cut short: validation
 * refuses it with its field's word. */
struct getapi_req {
	bool has_key, has_serial;
	char api_key[257];
	char serial_no[32];
	size_t nset;
	struct getapi_set {
		char name[32];      /* inside set[...] */
		const char *value;  /* NUL-terminated, in text[] */
		bool has_nul;       /* the value held %00 */
	} set[GETAPI_PARAMS_MAX];
	size_t text_len;
	char text[GETAPI_QUERY_MAX + GETAPI_PARAMS_MAX]; /* decoded set[] values (never longer than encoded) */
};

/* Parse a query string (the part after '?', not NUL-terminated). 0 or
 * CE_LIMIT (over the limits: answer BAD_REQUEST). Never fails otherwise:
 * unknown parameters are ignored, like PHP does. */
int getapi_parse(const char *query, size_t len, struct getapi_req *out) WARN_UNUSED;

/* Validate the set[] parameters into a change, in query order (the first
 * failing one's word is returned; GETAPI_OK if all pass). */
enum getapi_word getapi_validate(const struct getapi_req *req, struct sms_card_change *ch);

/* Render a card as the free CAS's JSON into body (cap bytes); *len set.
 * CE_OVERFLOW if it does not fit. */
int getapi_card_json(const struct sms_card *c, char *body, size_t cap, size_t *len) WARN_UNUSED;

/* The whole request: parse, check the key and its scope (READ; WRITE when
 * set[] is present), look the card up, validate, apply, answer. *status is
 * 200 or 400 (or 500 for a database failure, body "INTERNAL_ERROR"); body
 * gets the answer (GETAPI_BODY_MAX bytes). *word says which error word was
 * answered (GETAPI_OK for 200), for counters. */
void getapi_handle(struct sms_store *st, const char *query, size_t len, int *status, char *body,
		   size_t *body_len, enum getapi_word *word);

#endif
