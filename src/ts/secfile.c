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
 * 0 and the section in sec[0..*n), or CE_FORMAT. Leading blanks and
 * trailing blanks or CRs are dropped. */
static int parse_line(struct cur *line, char *hex, size_t hex_cap, uint8_t sec[PSI_MAX_SECTION], size_t *n)
{
	struct cur first;
	uint8_t b0 = 0;
	uint16_t sl = 0;

	*n = 0;
	cur_trim(line, " \t", " \t\r");
	first = *line;
	if (cur_left(line) == 0 || (cur_u8(&first, &b0) == 0 && b0 == '#'))
		return 0;
	/* one whole section: table_id, 12-bit section_length, that many bytes */
	if (cur_text(line, hex, hex_cap) != 0 || hex_decode_var(hex, sec, PSI_MAX_SECTION, n) != 0 ||
	    cur_u16_at(sec, *n, 1, &sl) != 0 || (size_t)(sl & 0x0FFF) + 3 != *n) {
		*n = 0;
		return CE_FORMAT;
	}
	return 0;
}

int secfile_parse(const uint8_t *buf, size_t len, size_t max, struct secfile *out, size_t *bad_line)
{
	uint8_t *sec = malloc(PSI_MAX_SECTION);
	char *hex = malloc(2 * PSI_MAX_SECTION + 1);
	size_t cap = 0, lineno = 0;
	struct cur c;
	int r = CE_NOMEM;

	memset(out, 0, sizeof(*out));
	*bad_line = 0;
	if (!sec || !hex)
		goto fail;
	cur_init(&c, buf, len);
	while (cur_left(&c)) {
		struct cur line;
		size_t n = 0;

		lineno++;
		if (cur_line(&c, &line) != 0 || parse_line(&line, hex, 2 * PSI_MAX_SECTION + 1, sec, &n) != 0) {
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
	free(hex);
	if (out->n == 0) {
		secfile_free(out);
		return CE_FORMAT;
	}
	return 0;
fail:
	free(sec);
	free(hex);
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
