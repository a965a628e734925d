/*
 * secfile.c - a file of PSI sections in hex, one a line (secfile.h).
 */
#include <stdlib.h>
#include <string.h>
#include "lib/cursor.h"
#include "lib/util.h"
#include "ts/psi.h"
#include "ts/secfile.h"

void secfile_free(struct secfile *s)
{
	for (size_t i = 0; s->sec && i < s->n; i++)
		free(s->sec[i]);
	free(s->sec);
	free(s->len);
	memset(s, 0, sizeof(*s));
}

/* One line (without its '\n'): 0 and *n = 0 for a blank or comment line,
 * 0 and the section in sec[0..*n), or CE_FORMAT. */
static int parse_line(struct cur *line, uint8_t sec[PSI_MAX_SECTION], size_t *n)
{
	size_t len = cur_left(line);
	const uint8_t *p = cur_ptr(line, len);
	size_t i = 0, k = 0;

	*n = 0;
	if (len && p[len - 1] == '\r')
		len--;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i == len || p[i] == '#')
		return 0;
	if ((len - i) % 2 != 0 || (len - i) / 2 > PSI_MAX_SECTION)
		return CE_FORMAT;
	for (; i < len; i += 2) {
		int hi = hex_digit((char)p[i]), lo = hex_digit((char)p[i + 1]);

		if (hi < 0 || lo < 0)
			return CE_FORMAT;
		sec[k++] = (uint8_t)(hi << 4 | lo);
	}
	/* one whole section: table_id, 12-bit section_length, that many bytes */
	{
		uint16_t sl = 0;

		if (cur_u16_at(sec, k, 1, &sl) != 0 || (size_t)(sl & 0x0FFF) + 3 != k)
			return CE_FORMAT;
	}
	*n = k;
	return 0;
}

int secfile_parse(const uint8_t *buf, size_t len, size_t max, struct secfile *out, size_t *bad_line)
{
	uint8_t *sec = malloc(PSI_MAX_SECTION);
	size_t cap = 0, lineno = 0;
	struct cur c;
	int r = CE_NOMEM;

	memset(out, 0, sizeof(*out));
	*bad_line = 0;
	if (!sec)
		return r;
	cur_init(&c, buf, len);
	while (cur_left(&c)) {
		size_t n = 0;
		struct cur line;

		lineno++;
		if (cur_line(&c, &line) != 0) {
			r = CE_FORMAT;
			goto fail;
		}
		if (parse_line(&line, sec, &n) != 0) {
			*bad_line = lineno;
			r = CE_FORMAT;
			goto fail;
		}
		if (n == 0)
			continue;
		if (out->n == max) {
			r = CE_LIMIT;
			goto fail;
		}
		if (out->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint8_t **ns = realloc(out->sec, nc * sizeof(*ns));
			size_t *nlen;

			if (!ns)
				goto fail;
			out->sec = ns;
			if (!(nlen = realloc(out->len, nc * sizeof(*nlen))))
				goto fail;
			out->len = nlen;
			cap = nc;
		}
		if (!(out->sec[out->n] = malloc(n)))
			goto fail;
		memcpy(out->sec[out->n], sec, n);
		out->len[out->n++] = n;
	}
	free(sec);
	if (out->n == 0) {
		secfile_free(out);
		return CE_FORMAT;
	}
	return 0;
fail:
	free(sec);
	secfile_free(out);
	return r;
}

int secfile_load(const char *path, size_t max, struct secfile *out, size_t *bad_line)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	*bad_line = 0;
	if ((r = file_read_all(path, SECFILE_MAX_BYTES, &buf, &len)) != 0)
		return r;
	r = secfile_parse(buf, len, max, out, bad_line);
	free(buf);
	return r;
}
