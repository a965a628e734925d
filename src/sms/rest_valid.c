/*
 * rest_valid.c - the REST API's JSON value validators (rest_int.h): each
 * j_* takes one member of a body and answers whether it is a well-formed
 * value of its kind (serial, text, time, mask, bounded integer, hex id,
 * card state), writing it out only then.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/rest_int.h"
#include "lib/util.h"

/* ---- JSON values ------------------------------------------------------- */

bool j_serial(json_t *v, uint64_t *out)
{
	*out = 0;
	if (json_is_string(v))
		return id_parse(json_string_value(v), INT64_MAX, out) && *out != 0;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = (uint64_t)json_integer_value(v);
		return true;
	}
	return false;
}

bool j_text(json_t *v, char *dst, size_t cap)
{
	const char *s;

	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || strlen(s) >= cap || !sms_text_valid(s))
		return false;
	memcpy(dst, s, strlen(s) + 1);
	return true;
}

bool j_time(json_t *v, int64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 99999999999LL)
		return false;
	*out = json_integer_value(v);
	return true;
}

bool j_mask(json_t *v, uint32_t *out)
{
	const char *s;
	uint32_t m = 0;

	if (!json_is_string(v) || strlen(s = json_string_value(v)) != 8)
		return false;
	for (size_t i = 0; i < 8; i++) {
		if (hex_digit(s[i]) < 0)
			return false;
		m = m << 4 | (uint32_t)hex_digit(s[i]);
	}
	*out = m;
	return true;
}

bool j_uint(json_t *v, uint64_t max, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0 && (uint64_t)json_integer_value(v) <= max) {
		*out = (uint64_t)json_integer_value(v);
		return true;
	}
	if (json_is_string(v))
		return id_parse(json_string_value(v), max, out);
	return false;
}

/* "0x4ADC": a CA_system_id as operators write it (2 to 4 hex digits). */
bool j_hex16(json_t *v, uint64_t *out)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	uint64_t u = 0;
	size_t n;

	if (!s || (strncmp(s, "0x", 2) != 0 && strncmp(s, "0X", 2) != 0))
		return false;
	for (n = 2; s[n]; n++) {
		int d = hex_digit(s[n]);

		if (d < 0 || n >= 6)
			return false;
		u = u << 4 | (uint64_t)d;
	}
	if (n == 2)
		return false;
	*out = u;
	return true;
}


bool j_state(json_t *v, enum sms_card_state *out)
{
	for (int i = 0; i < 3; i++) {
		if (json_is_string(v) && strcmp(json_string_value(v), state_names[i]) == 0) {
			*out = (enum sms_card_state)i;
			return true;
		}
	}
	return false;
}

