/* vkeys.c - a vendor's opened key file, parsed on the cursor (vkeys.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cas/vkeys.h"
#include "lib/cursor.h"
#include "lib/util.h"

static int vkey_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct vkey *)a)->chip, y = ((const struct vkey *)b)->chip;

	return x < y ? -1 : x > y;
}

/* One line (without its end): 0 with *v, 1 to skip (blank or comment),
 * CE_FORMAT. */
static int parse_line(struct cur *line, struct vkey *v)
{
	char id[VKEYS_LINE_MAX + 1], hex[33];
	size_t n = cur_left(line), comma;
	const uint8_t *p;

	if (n && line->buf[line->off + n - 1] == '\r')
		n--;
	p = cur_ptr(line, n);
	if (n == 0 || p[0] == '#')
		return 1;
	for (comma = 0; comma < n && p[comma] != ','; comma++)
		;
	if (comma == 0 || comma == n || n - comma - 1 != 32)
		return CE_FORMAT;
	memcpy(id, p, comma);
	id[comma] = '\0';
	memcpy(hex, p + comma + 1, 32);
	hex[32] = '\0';
	if (memchr(id, '\0', comma) || parse_u64(id, UINT64_MAX, &v->chip) != 0 || hex_decode(hex, v->kv, 16) != 0) {
		secret_wipe(hex, sizeof(hex));
		secret_wipe(v, sizeof(*v));
		return CE_FORMAT;
	}
	secret_wipe(hex, sizeof(hex));
	return 0;
}

/* The header line `castellan kms vendor open --out` writes first. */
static bool is_header(const struct cur *line)
{
	static const char hdr[] = "chip_id,key"; /* VKEYS_HEADER without its '\n' */
	struct cur t = *line; /* a copy: the caller's line is not consumed */
	size_t n = cur_left(&t);
	const uint8_t *p = cur_ptr(&t, n);

	if (n && p[n - 1] == '\r') /* one CR: a CRLF line end */
		n--;
	return n == sizeof(hdr) - 1 && memcmp(p, hdr, n) == 0;
}

int vkeys_parse(const uint8_t *buf, size_t len, size_t max, struct vkey **out, size_t *n, size_t *bad_line)
{
	struct vkey *v = NULL, *nv;
	size_t cap = 0, cnt = 0, lineno = 0;
	struct cur c;
	int r = 0;

	*out = NULL;
	*n = 0;
	*bad_line = 0;
	if (!buf && len)
		return CE_ARG;
	cur_init(&c, buf, len);
	while (r == 0 && cur_left(&c)) {
		const uint8_t *nl = memchr(buf + c.off, '\n', cur_left(&c));
		size_t ll = nl ? (size_t)(nl - (buf + c.off)) : cur_left(&c);
		struct cur line;

		lineno++;
		if (ll > VKEYS_LINE_MAX + 1 || (ll == VKEYS_LINE_MAX + 1 && buf[c.off + ll - 1] != '\r')) {
			r = CE_FORMAT;
			break;
		}
		if (cur_view(&c, ll, &line) != 0 || (nl && cur_skip(&c, 1) != 0)) {
			r = CE_FORMAT;
			break;
		}
		if (lineno == 1 && is_header(&line))
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;

			if (cnt == max) {
				/* only an entry line counts: look before refusing */
				struct vkey tmp;
				int k = parse_line(&line, &tmp);

				secret_wipe(&tmp, sizeof(tmp));
				if (k == 1)
					continue;
				r = k == 0 ? CE_LIMIT : CE_FORMAT;
				break;
			}
			if (ncap > max)
				ncap = max;
			if (!(nv = calloc(ncap, sizeof(*nv)))) {
				r = CE_NOMEM;
				break;
			}
			if (v) {
				memcpy(nv, v, cnt * sizeof(*nv));
				secret_free(v, cap * sizeof(*v));
			}
			v = nv;
			cap = ncap;
		}
		r = parse_line(&line, &v[cnt]);
		if (r == 1) {
			r = 0;
			continue;
		}
		if (r == 0)
			cnt++;
	}
	if (r == 0 && cnt) {
		qsort(v, cnt, sizeof(*v), vkey_cmp);
		for (size_t i = 1; i < cnt; i++)
			if (v[i].chip == v[i - 1].chip) {
				lineno = 0;
				r = CE_FORMAT; /* a chip twice: which key? */
				break;
			}
	}
	if (r != 0) {
		if (v)
			secret_free(v, cap * sizeof(*v));
		*bad_line = lineno;
		return r;
	}
	if (cnt == 0 && v) { /* only comments: nothing to hand out */
		secret_free(v, cap * sizeof(*v));
		v = NULL;
	}
	*out = v;
	*n = cnt;
	return 0;
}

#define VKEYS_HEADER "chip_id,key\n"
#define VKEYS_LINE_BYTES 52 /* "0x" 16 hex "," 32 hex "\n" */

int vkeys_format(const struct vkey *v, size_t n, char **out, size_t *len)
{
	size_t cap, used = sizeof(VKEYS_HEADER) - 1;
	char *p;

	*out = NULL;
	*len = 0;
	if (n > VKEYS_MAX)
		return CE_LIMIT;
	cap = used + VKEYS_LINE_BYTES * n + 1;
	if (!(p = malloc(cap)))
		return CE_NOMEM;
	memcpy(p, VKEYS_HEADER, used);
	for (size_t i = 0; i < n; i++) {
		char k[33];

		hex_encode(v[i].kv, 16, k);
		used += (size_t)snprintf(p + used, cap - used, "0x%016llx,%s\n", (unsigned long long)v[i].chip, k);
		secret_wipe(k, sizeof(k));
	}
	*out = p;
	*len = used;
	return 0;
}

int vkeys_load(const char *path, size_t max, struct vkey **out, size_t *n, size_t *bad_line)
{
	uint8_t *buf = NULL;
	size_t len = 0, limit = max > ((size_t)1 << 40) ? (size_t)1 << 46 : max * 64 + ((size_t)1 << 20);
	int r;

	*out = NULL;
	*n = 0;
	*bad_line = 0;
	if ((r = file_read_all(path, limit, &buf, &len)) != 0)
		return r == CE_NOT_FOUND ? CE_IO : r;
	r = vkeys_parse(buf, len, max, out, n, bad_line);
	secret_free(buf, len);
	return r;
}

const struct vkey *vkeys_find(const struct vkey *v, size_t n, uint64_t chip)
{
	struct vkey k;

	if (!v || !n)
		return NULL;
	k.chip = chip;
	return bsearch(&k, v, n, sizeof(k), vkey_cmp);
}

void vkeys_free(struct vkey *v, size_t n)
{
	if (v)
		secret_free(v, n * sizeof(*v));
}
