/*
 * store_util.c - the row helpers the SMS store's files share (store_int.h):
 * a text column to a bounded string or an integer, the one-integer row
 * callback, and the callback that hands listed cards to the caller's.
 */
#include <stdlib.h>
#include <string.h>
#include "sms/store_int.h"
#include "lib/util.h"

void store_copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

int64_t store_col_i64(const char *s)
{
	int64_t v = 0;

	/* a column the store wrote itself: anything but an integer is 0 */
	if (s && parse_s64(s, INT64_MIN, INT64_MAX, &v) != 0)
		v = 0;
	return v;
}

int store_row_int(void *ctx, int n, const char *const *cols)
{
	*(int64_t *)ctx = (n > 0 && cols[0]) ? store_col_i64(cols[0]) : 0;
	return 0;
}

int store_row_card_list(void *ctx, int n, const char *const *cols)
{
	struct store_card_list *l = ctx;
	struct sms_card c;

	if (n < 10)
		return CE_INTERNAL;
	store_card_from_cols(&c, cols);
	l->count++;
	return l->fn ? l->fn(l->ctx, &c) : 0;
}
