/* fuzz_search.c - the text search's query building (store_search.c) on
 * arbitrary text against a small in-memory SQLite store: any text is
 * refused (CE_RANGE: not valid text or too long; CE_ARG: too short for the
 * field) or answered; it never reaches FTS5 or LIKE as syntax (a malformed
 * MATCH would be CE_IO), and every card answered does contain the text. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sms/store.h"

static struct sms_store *st;

static bool has_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle), h = strlen(hay);

	for (size_t i = 0; n <= h && i <= h - n; i++) {
		size_t k = 0;

		while (k < n && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k]))
			k++;
		if (k == n)
			return true;
	}
	return false;
}

struct fctx {
	const char *text;
	enum sms_search_field f;
	bool short_text;
};

static int check(void *ctx, const struct sms_card *c)
{
	const struct fctx *x = ctx;
	bool ok;

	if (x->short_text)
		ok = strlen(c->name) == strlen(x->text) && has_ci(c->name, x->text);
	else
		ok = (x->f != SMS_SEARCH_INFO && has_ci(c->name, x->text)) ||
		     (x->f != SMS_SEARCH_NAME && has_ci(c->info, x->text));
	if (!ok)
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "Ann \"q\" Smith", "50% Off_Ltd", "NEAR(a b)", "li", "Zoë {x} -y ^z*" };
	char text[SMS_SEARCH_TEXT_MAX + 2];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1, chars = 0;

	if (!st) {
		if (sms_store_open(":memory:", &st) != 0)
			__builtin_trap();
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			struct sms_card c = { .serial = 2100000000u + i };

			snprintf(c.name, sizeof(c.name), "%s", names[i]);
			snprintf(c.info, sizeof(c.info), "%s", "Rua \"A\" 1%_2 \\ 'x' :col: AND OR NOT");
			if (sms_card_add(st, &c, "fuzz") != 0)
				__builtin_trap();
		}
	}
	memcpy(text, data, n);
	text[n] = '\0';
	for (size_t i = 0; text[i]; i++)
		chars += ((unsigned char)text[i] & 0xC0) != 0x80;
	for (int f = SMS_SEARCH_ANY; f <= SMS_SEARCH_INFO; f++) {
		struct sms_card_filter flt = { .state = -1 };
		struct fctx x = { text, (enum sms_search_field)f, chars < SMS_SEARCH_MIN_CHARS };
		size_t cnt = 0;
		int r = sms_card_search(st, &flt, (enum sms_search_field)f, text, 0, 10, check, &x, &cnt);

		if (r != 0 && r != CE_RANGE && r != CE_ARG)
			__builtin_trap(); /* the text reached the database as syntax */
		if (r == 0 && (!*text || (f == SMS_SEARCH_INFO && chars < SMS_SEARCH_MIN_CHARS)))
			__builtin_trap();
		if (r != 0 && sms_text_valid(text) && strlen(text) <= SMS_SEARCH_TEXT_MAX && *text &&
		    !(f == SMS_SEARCH_INFO && chars < SMS_SEARCH_MIN_CHARS))
			__builtin_trap(); /* valid text is answered */
	}
	return 0;
}
