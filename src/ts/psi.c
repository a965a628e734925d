/*
 * psi.c - PSI sections: CRC-32/MPEG-2, long-section header check, PAT, PMT
 * and CAT parsers and builders, CA_descriptor helpers, and section
 * reassembly from TS packets.
 *
 * Normative references: ISO/IEC 13818-1, 2.4.4 (PSI: pointer_field 2.4.4.2,
 * PAT 2.4.4.3, CAT 2.4.4.6, PMT 2.4.4.8, private sections 2.4.4.10),
 * 2.6.16 (CA_descriptor), Annex A (CRC-32 decoder model); ETSI EN 300 468
 * (descriptor loop shape).
 *
 * Long section (section_syntax_indicator = 1):
 *   0     table_id
 *   1..2  syntax(1) private(1) reserved(2) section_length(12)
 *   3..4  table_id_extension (TSID / program_number / 0xFFFF)
 *   5     reserved(2) version(5) current_next(1)
 *   6     section_number
 *   7     last_section_number
 *   8..   table body
 *   -4    CRC_32 over the whole section (remainder 0 when correct)
 *
 * Every loop is read through a bounded child view (struct cur); leftover
 * bytes are errors. Builders write reserved bits as 1 and current_next = 1.
 */
#include <string.h>
#include "lib/bytes.h"
#include "lib/cursor.h"
#include "ts/psi.h"

/* ---- CRC-32/MPEG-2: poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no final
 * xor. Running it over a whole section including its CRC_32 field gives 0.
 * Table: crc_table[i] = CRC register after shifting byte i through. */
static const uint32_t crc_table[256] = {
	0x00000000, 0x04c11db7, 0x09823b6e, 0x0d4326d9, 0x130476dc, 0x17c56b6b,
	0x1a864db2, 0x1e475005, 0x2608edb8, 0x22c9f00f, 0x2f8ad6d6, 0x2b4bcb61,
	0x350c9b64, 0x31cd86d3, 0x3c8ea00a, 0x384fbdbd, 0x4c11db70, 0x48d0c6c7,
	0x4593e01e, 0x4152fda9, 0x5f15adac, 0x5bd4b01b, 0x569796c2, 0x52568b75,
	0x6a1936c8, 0x6ed82b7f, 0x639b0da6, 0x675a1011, 0x791d4014, 0x7ddc5da3,
	0x709f7b7a, 0x745e66cd, 0x9823b6e0, 0x9ce2ab57, 0x91a18d8e, 0x95609039,
	0x8b27c03c, 0x8fe6dd8b, 0x82a5fb52, 0x8664e6e5, 0xbe2b5b58, 0xbaea46ef,
	0xb7a96036, 0xb3687d81, 0xad2f2d84, 0xa9ee3033, 0xa4ad16ea, 0xa06c0b5d,
	0xd4326d90, 0xd0f37027, 0xddb056fe, 0xd9714b49, 0xc7361b4c, 0xc3f706fb,
	0xceb42022, 0xca753d95, 0xf23a8028, 0xf6fb9d9f, 0xfbb8bb46, 0xff79a6f1,
	0xe13ef6f4, 0xe5ffeb43, 0xe8bccd9a, 0xec7dd02d, 0x34867077, 0x30476dc0,
	0x3d044b19, 0x39c556ae, 0x278206ab, 0x23431b1c, 0x2e003dc5, 0x2ac12072,
	0x128e9dcf, 0x164f8078, 0x1b0ca6a1, 0x1fcdbb16, 0x018aeb13, 0x054bf6a4,
	0x0808d07d, 0x0cc9cdca, 0x7897ab07, 0x7c56b6b0, 0x71159069, 0x75d48dde,
	0x6b93dddb, 0x6f52c06c, 0x6211e6b5, 0x66d0fb02, 0x5e9f46bf, 0x5a5e5b08,
	0x571d7dd1, 0x53dc6066, 0x4d9b3063, 0x495a2dd4, 0x44190b0d, 0x40d816ba,
	0xaca5c697, 0xa864db20, 0xa527fdf9, 0xa1e6e04e, 0xbfa1b04b, 0xbb60adfc,
	0xb6238b25, 0xb2e29692, 0x8aad2b2f, 0x8e6c3698, 0x832f1041, 0x87ee0df6,
	0x99a95df3, 0x9d684044, 0x902b669d, 0x94ea7b2a, 0xe0b41de7, 0xe4750050,
	0xe9362689, 0xedf73b3e, 0xf3b06b3b, 0xf771768c, 0xfa325055, 0xfef34de2,
	0xc6bcf05f, 0xc27dede8, 0xcf3ecb31, 0xcbffd686, 0xd5b88683, 0xd1799b34,
	0xdc3abded, 0xd8fba05a, 0x690ce0ee, 0x6dcdfd59, 0x608edb80, 0x644fc637,
	0x7a089632, 0x7ec98b85, 0x738aad5c, 0x774bb0eb, 0x4f040d56, 0x4bc510e1,
	0x46863638, 0x42472b8f, 0x5c007b8a, 0x58c1663d, 0x558240e4, 0x51435d53,
	0x251d3b9e, 0x21dc2629, 0x2c9f00f0, 0x285e1d47, 0x36194d42, 0x32d850f5,
	0x3f9b762c, 0x3b5a6b9b, 0x0315d626, 0x07d4cb91, 0x0a97ed48, 0x0e56f0ff,
	0x1011a0fa, 0x14d0bd4d, 0x19939b94, 0x1d528623, 0xf12f560e, 0xf5ee4bb9,
	0xf8ad6d60, 0xfc6c70d7, 0xe22b20d2, 0xe6ea3d65, 0xeba91bbc, 0xef68060b,
	0xd727bbb6, 0xd3e6a601, 0xdea580d8, 0xda649d6f, 0xc423cd6a, 0xc0e2d0dd,
	0xcda1f604, 0xc960ebb3, 0xbd3e8d7e, 0xb9ff90c9, 0xb4bcb610, 0xb07daba7,
	0xae3afba2, 0xaafbe615, 0xa7b8c0cc, 0xa379dd7b, 0x9b3660c6, 0x9ff77d71,
	0x92b45ba8, 0x9675461f, 0x8832161a, 0x8cf30bad, 0x81b02d74, 0x857130c3,
	0x5d8a9099, 0x594b8d2e, 0x5408abf7, 0x50c9b640, 0x4e8ee645, 0x4a4ffbf2,
	0x470cdd2b, 0x43cdc09c, 0x7b827d21, 0x7f436096, 0x7200464f, 0x76c15bf8,
	0x68860bfd, 0x6c47164a, 0x61043093, 0x65c52d24, 0x119b4be9, 0x155a565e,
	0x18197087, 0x1cd86d30, 0x029f3d35, 0x065e2082, 0x0b1d065b, 0x0fdc1bec,
	0x3793a651, 0x3352bbe6, 0x3e119d3f, 0x3ad08088, 0x2497d08d, 0x2056cd3a,
	0x2d15ebe3, 0x29d4f654, 0xc5a92679, 0xc1683bce, 0xcc2b1d17, 0xc8ea00a0,
	0xd6ad50a5, 0xd26c4d12, 0xdf2f6bcb, 0xdbee767c, 0xe3a1cbc1, 0xe760d676,
	0xea23f0af, 0xeee2ed18, 0xf0a5bd1d, 0xf464a0aa, 0xf9278673, 0xfde69bc4,
	0x89b8fd09, 0x8d79e0be, 0x803ac667, 0x84fbdbd0, 0x9abc8bd5, 0x9e7d9662,
	0x933eb0bb, 0x97ffad0c, 0xafb010b1, 0xab710d06, 0xa6322bdf, 0xa2f33668,
	0xbcb4666d, 0xb8757bda, 0xb5365d03, 0xb1f740b4,
};

uint32_t crc32_mpeg(const uint8_t *buf, size_t len)
{
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < len; i++)
		crc = (crc << 8) ^ crc_table[((crc >> 24) ^ buf[i]) & 0xFF];
	return crc;
}

/* ---- long section header ---- */

int psi_check_long(const uint8_t *sec, size_t len, struct psi_long_hdr *h)
{
	uint16_t w, sl;
	uint8_t vb;
	struct cur c;

	memset(h, 0, sizeof(*h));
	if (!sec || len < 3)
		return CE_TRUNCATED;
	cur_init(&c, sec, len);
	(void)cur_u8(&c, &h->table_id);
	(void)cur_u16(&c, &w); /* syntax indicator, '0', reserved, section_length */
	if (!(w & 0x8000)) {
		h->table_id = 0;
		return CE_FORMAT; /* short section */
	}
	sl = w & 0x0FFF;
	if (sl > PSI_MAX_SECTION - 3 || (size_t)sl > cur_left(&c) || (size_t)sl < cur_left(&c) || sl < 9 ||
	    crc32_mpeg(sec, len) != 0) {
		int r = sl > PSI_MAX_SECTION - 3 ? CE_FORMAT
			: (size_t)sl > cur_left(&c) ? CE_TRUNCATED
			: (size_t)sl < cur_left(&c) ? CE_TRAILING
			: sl < 9 ? CE_FORMAT /* 5 header bytes + CRC */
			: CE_CRC;

		h->table_id = 0;
		return r;
	}
	h->section_length = sl;
	(void)cur_u16(&c, &h->id_ext);
	(void)cur_u8(&c, &vb);
	h->version = (uint8_t)((vb >> 1) & 0x1F);
	h->current_next = (vb & 1) != 0;
	(void)cur_u8(&c, &h->section_number);
	(void)cur_u8(&c, &h->last_section_number);
	if (c.err != 0 || h->section_number > h->last_section_number) {
		memset(h, 0, sizeof(*h));
		return CE_FORMAT;
	}
	return 0;
}

/* Check the common part and return a view on the body (between byte 8 and
 * the CRC). PSI tables (PAT/PMT/CAT) are limited to 1024 bytes. */
static int psi_body(const uint8_t *sec, size_t len, uint8_t table_id,
	struct psi_long_hdr *h, struct cur *body)
{
	int r = psi_check_long(sec, len, h);

	if (r != 0)
		return r;
	if (h->table_id != table_id || len > PSI_MAX_PSI_SECTION)
		return CE_FORMAT;
	/* section_length's two top bits are '00' for PSI tables */
	if (h->section_length & 0x0C00)
		return CE_FORMAT;
	{
		struct cur all; /* header (8) | body | CRC (4); len >= 12 checked */

		cur_init(&all, sec, len);
		cur_skip(&all, 8);
		return cur_view(&all, len >= 12 ? len - 12 : SIZE_MAX, body) != 0 ? CE_FORMAT : 0;
	}
}

/* Check that buf[0..len) is a well-formed descriptor loop. */
static int desc_loop_check(const uint8_t *buf, size_t len)
{
	struct cur c;

	cur_init(&c, buf, len);
	while (cur_left(&c) > 0) {
		uint8_t tag, dl;

		cur_u8(&c, &tag);
		cur_u8(&c, &dl);
		cur_skip(&c, dl);
	}
	return c.err ? CE_FORMAT : cur_end(&c);
}

/* Read a reserved(4) length(12) field, the length limited to 10 bits (the
 * top two bits are '00' in PAT/PMT/CAT), then the descriptor loop into dst. */
static int read_desc_loop(struct cur *c, uint8_t *dst, uint16_t *dst_len)
{
	uint16_t v;
	size_t n;
	const uint8_t *p;

	*dst_len = 0;
	if (cur_u16(c, &v) != 0)
		return c->err;
	if (v & 0x0C00)
		return cur_fail(c, CE_FORMAT);
	n = v & 0x03FF;
	if (n > PSI_MAX_DESC_BYTES)
		return cur_fail(c, CE_FORMAT);
	if (n > cur_left(c))
		return cur_fail(c, CE_FORMAT); /* loop runs past the section */
	p = cur_ptr(c, n);
	if (!p)
		return c->err;
	if (desc_loop_check(p, n) != 0)
		return cur_fail(c, CE_FORMAT);
	memcpy(dst, p, n);
	*dst_len = (uint16_t)n;
	return 0;
}

/* Write the long-section header; returns the offset of section_length. */
static void psi_put_hdr(struct wbuf *w, uint8_t tid, uint16_t id_ext, uint8_t version)
{
	wbuf_u8(w, tid);
	wbuf_u16(w, 0xB000); /* syntax 1, '0', reserved 11, length patched */
	wbuf_u16(w, id_ext);
	wbuf_u8(w, (uint8_t)(0xC0 | ((version & 0x1F) << 1) | 1));
	wbuf_u8(w, 0);
	wbuf_u8(w, 0);
}

/* Patch section_length, append the CRC, check the size limit. */
static int psi_finish(struct wbuf *w, size_t *out_len)
{
	int r;
	size_t total = w->len + 4;

	if ((r = wbuf_status(w)) != 0)
		return r;
	if (total > PSI_MAX_PSI_SECTION)
		return CE_OVERFLOW;
	wbuf_patch_u16(w, 1, (uint16_t)(0xB000 | (total - 3)));
	wbuf_u32(w, crc32_mpeg(w->buf, w->len));
	if ((r = wbuf_status(w)) != 0)
		return r;
	*out_len = w->len;
	return 0;
}

/* ---- PAT ---- */

int pat_parse(const uint8_t *sec, size_t len, struct pat *pat)
{
	struct psi_long_hdr h;
	struct cur body;
	size_t n;
	int r;

	memset(pat, 0, sizeof(*pat));
	if ((r = psi_body(sec, len, TID_PAT, &h, &body)) != 0)
		return r;
	if (cur_left(&body) % 4 != 0)
		return CE_FORMAT;
	n = cur_left(&body) / 4;
	if (n > PAT_MAX_PROGRAMS)
		return CE_LIMIT;
	pat->tsid = h.id_ext;
	pat->version = h.version;
	for (size_t i = 0; i < n; i++) {
		uint16_t prog, pid;

		cur_u16(&body, &prog);
		cur_u16(&body, &pid);
		pat->prog[i].program = prog;
		pat->prog[i].pid = pid & TS_PID_MAX;
	}
	if ((r = cur_end(&body)) != 0) {
		memset(pat, 0, sizeof(*pat));
		return r;
	}
	pat->nprog = n;
	return 0;
}

int pat_build(const struct pat *pat, uint8_t *out, size_t cap, size_t *out_len)
{
	struct wbuf w;

	if (out_len)
		*out_len = 0;
	if (!pat || !out || !out_len || pat->nprog > PAT_MAX_PROGRAMS)
		return CE_ARG;
	wbuf_init(&w, out, cap);
	psi_put_hdr(&w, TID_PAT, pat->tsid, pat->version);
	for (size_t i = 0; i < pat->nprog; i++) {
		wbuf_u16(&w, pat->prog[i].program);
		wbuf_u16(&w, (uint16_t)(0xE000 | (pat->prog[i].pid & TS_PID_MAX)));
	}
	return psi_finish(&w, out_len);
}

/* ---- PMT ---- */

int pmt_parse(const uint8_t *sec, size_t len, struct pmt *pmt)
{
	struct psi_long_hdr h;
	struct cur body;
	uint16_t v;
	int r;

	memset(pmt, 0, sizeof(*pmt));
	if ((r = psi_body(sec, len, TID_PMT, &h, &body)) != 0)
		return r;
	pmt->program = h.id_ext;
	pmt->version = h.version;
	cur_u16(&body, &v);
	pmt->pcr_pid = v & TS_PID_MAX;
	if ((r = read_desc_loop(&body, pmt->info, &pmt->info_len)) != 0)
		goto fail;
	while (cur_left(&body) > 0) {
		struct pmt_es *es;
		uint8_t st;

		if (pmt->nes == PMT_MAX_ES) {
			r = CE_LIMIT;
			goto fail;
		}
		es = &pmt->es[pmt->nes];
		cur_u8(&body, &st);
		cur_u16(&body, &v);
		es->stream_type = st;
		es->pid = v & TS_PID_MAX;
		if ((r = read_desc_loop(&body, es->info, &es->info_len)) != 0)
			goto fail;
		pmt->nes++;
	}
	if ((r = cur_end(&body)) != 0)
		goto fail;
	return 0;
fail:
	memset(pmt, 0, sizeof(*pmt));
	return r == CE_TRUNCATED ? CE_FORMAT : r;
}

int pmt_build(const struct pmt *pmt, uint8_t *out, size_t cap, size_t *out_len)
{
	struct wbuf w;

	if (out_len)
		*out_len = 0;
	if (!pmt || !out || !out_len || pmt->nes > PMT_MAX_ES ||
	    pmt->info_len > PSI_MAX_DESC_BYTES || pmt->info_len > 0x3FF)
		return CE_ARG;
	wbuf_init(&w, out, cap);
	psi_put_hdr(&w, TID_PMT, pmt->program, pmt->version);
	wbuf_u16(&w, (uint16_t)(0xE000 | (pmt->pcr_pid & TS_PID_MAX)));
	wbuf_u16(&w, (uint16_t)(0xF000 | pmt->info_len));
	wbuf_bytes(&w, pmt->info, pmt->info_len);
	for (size_t i = 0; i < pmt->nes; i++) {
		const struct pmt_es *es = &pmt->es[i];

		if (es->info_len > PSI_MAX_DESC_BYTES || es->info_len > 0x3FF)
			return CE_ARG;
		wbuf_u8(&w, es->stream_type);
		wbuf_u16(&w, (uint16_t)(0xE000 | (es->pid & TS_PID_MAX)));
		wbuf_u16(&w, (uint16_t)(0xF000 | es->info_len));
		wbuf_bytes(&w, es->info, es->info_len);
	}
	return psi_finish(&w, out_len);
}

/* ---- CAT ---- */

int cat_parse(const uint8_t *sec, size_t len, struct cat *cat)
{
	struct psi_long_hdr h;
	struct cur body;
	size_t n;
	int r;

	memset(cat, 0, sizeof(*cat));
	if ((r = psi_body(sec, len, TID_CAT, &h, &body)) != 0)
		return r;
	n = cur_left(&body);
	if (n > PSI_MAX_DESC_BYTES)
		return CE_FORMAT;
	if (desc_loop_check(body.buf, n) != 0)
		return CE_FORMAT;
	memcpy(cat->info, body.buf, n);
	cat->info_len = (uint16_t)n;
	cat->version = h.version;
	return 0;
}

int cat_build(const struct cat *cat, uint8_t *out, size_t cap, size_t *out_len)
{
	struct wbuf w;

	if (out_len)
		*out_len = 0;
	if (!cat || !out || !out_len || cat->info_len > PSI_MAX_DESC_BYTES)
		return CE_ARG;
	wbuf_init(&w, out, cap);
	psi_put_hdr(&w, TID_CAT, 0xFFFF, cat->version);
	wbuf_bytes(&w, cat->info, cat->info_len);
	return psi_finish(&w, out_len);
}

/* ---- CA descriptor (ISO/IEC 13818-1 2.6.16):
 *   tag 0x09, length, CA_system_ID(16), reserved(3) CA_PID(13), private[]
 */

int ca_desc_find(const uint8_t *desc, size_t len, struct ca_desc *out, size_t max, size_t *n)
{
	struct cur c;
	size_t found = 0;

	if (n)
		*n = 0;
	if (!n || (!desc && len) || (!out && max))
		return CE_ARG;
	cur_init(&c, desc, len);
	while (cur_left(&c) > 0) {
		uint8_t tag, dl;
		struct cur d;

		cur_u8(&c, &tag);
		cur_u8(&c, &dl);
		if (cur_view(&c, dl, &d) != 0)
			return CE_FORMAT;
		if (tag != DESC_CA)
			continue;
		if (dl < 4)
			return CE_FORMAT;
		if (found < max) {
			struct ca_desc *ca = &out[found];
			uint16_t pid;
			size_t pl;

			memset(ca, 0, sizeof(*ca));
			cur_u16(&d, &ca->ca_system_id);
			cur_u16(&d, &pid);
			ca->ca_pid = pid & TS_PID_MAX;
			/* private data beyond 32 bytes is not kept */
			pl = cur_left(&d) < sizeof(ca->priv) ? cur_left(&d) : sizeof(ca->priv);
			cur_bytes(&d, ca->priv, pl);
			ca->priv_len = (uint8_t)pl;
			found++;
		}
	}
	if (c.err)
		return CE_FORMAT;
	*n = found;
	return 0;
}

int ca_desc_append(uint8_t *desc, size_t cap, uint16_t *len, const struct ca_desc *ca)
{
	size_t need;
	uint8_t *p;

	if (!desc || !len || !ca || ca->priv_len > sizeof(ca->priv) || ca->ca_pid > TS_PID_MAX)
		return CE_ARG;
	need = 6u + ca->priv_len;
	if (*len > cap || need > cap - *len || *len + need > 0xFFFF)
		return CE_OVERFLOW;
	p = desc + *len;
	p[0] = DESC_CA;
	p[1] = (uint8_t)(4 + ca->priv_len);
	put_be16(p + 2, ca->ca_system_id);
	put_be16(p + 4, (uint16_t)(0xE000 | ca->ca_pid));
	memcpy(p + 6, ca->priv, ca->priv_len);
	*len = (uint16_t)(*len + need);
	return 0;
}

void ca_desc_remove(uint8_t *desc, uint16_t *len, uint16_t ca_system_id)
{
	size_t rd, wr = 0, n;
	struct cur c;

	if (!desc || !len)
		return;
	n = *len;
	cur_init(&c, desc, n);
	for (rd = 0; cur_left(&c) >= 2; rd = c.off) {
		uint8_t tag, dl;
		uint16_t cas = 0;
		struct cur d;

		(void)cur_u8(&c, &tag);
		(void)cur_u8(&c, &dl);
		if (cur_view(&c, dl, &d) != 0)
			break; /* malformed tail: keep it as is */
		if (tag == DESC_CA && dl >= 2)
			(void)cur_u16(&d, &cas);
		/* writes stay behind the cursor: wr <= rd */
		if (!(tag == DESC_CA && dl >= 2 && cas == ca_system_id)) {
			if (wr != rd)
				memmove(desc + wr, desc + rd, (size_t)dl + 2);
			wr += (size_t)dl + 2;
		}
	}
	if (rd < n) {
		memmove(desc + wr, desc + rd, n - rd);
		wr += n - rd;
	}
	*len = (uint16_t)wr;
}

/* ---- section reassembly ---- */

void psi_asm_init(struct psi_asm *a, uint16_t pid)
{
	memset(a, 0, sizeof(*a));
	a->pid = pid;
	a->last_cc = -1;
}

static void asm_drop(struct psi_asm *a)
{
	if (a->have > 0)
		a->errors++;
	a->have = 0;
	a->need = 0;
}

/*
 * Append up to n bytes of p to the section in progress; *used gets the bytes
 * consumed. When the section completes, the callback runs (*r its result)
 * and the state resets. Sections longer than PSI_MAX_SECTION are dropped.
 */
static void asm_feed(struct psi_asm *a, const uint8_t *p, size_t n, size_t *used,
	psi_section_cb cb, void *ctx, int *r)
{
	size_t u = 0;

	*used = 0;
	*r = 0;
	if (a->have < 3) {
		size_t k = 3 - a->have < n ? 3 - a->have : n;

		memcpy(a->buf + a->have, p, k);
		a->have += k;
		u += k;
		if (a->have < 3) {
			*used = u;
			return;
		}
		{
			uint16_t w = 0;

			(void)cur_u16_at(a->buf, a->have, 1, &w);
			a->need = 3 + (size_t)(w & 0x0FFF);
		}
		if (a->need > PSI_MAX_SECTION) {
			asm_drop(a);
			*used = n; /* the rest of this packet is garbage */
			return;
		}
	}
	{
		size_t k = a->need - a->have < n - u ? a->need - a->have : n - u;

		memcpy(a->buf + a->have, p + u, k);
		a->have += k;
		u += k;
	}
	*used = u;
	if (a->have == a->need) {
		size_t len = a->need;

		a->have = 0;
		a->need = 0;
		if (cb)
			*r = cb(ctx, a->pid, a->buf, len);
	}
}

/* The unread bytes of a view (*n of them), without consuming them. */
static const uint8_t *rest(const struct cur *c, size_t *n)
{
	struct cur t = *c;

	*n = cur_left(&t);
	return cur_ptr(&t, *n);
}

int psi_asm_push(struct psi_asm *a, const uint8_t pkt[TS_PACKET_BYTES], const struct ts_hdr *h,
	psi_section_cb cb, void *ctx)
{
	const uint8_t *p;
	struct cur c, pl;
	size_t n = 0, used;
	int r = 0;

	if (!a || !pkt || !h)
		return CE_ARG;
	if (h->pid != a->pid)
		return CE_ARG;
	if (h->tei)
		return 0; /* corrupt: ignore, keep CC state */
	if (!h->has_payload || h->payload_len == 0)
		return 0; /* CC does not advance without payload */
	if (a->last_cc >= 0) {
		if (h->cc == a->last_cc && !h->discontinuity)
			return 0; /* duplicate packet */
		if (h->cc != ((a->last_cc + 1) & 0x0F))
			asm_drop(a);
	}
	a->last_cc = h->cc;
	if (h->scrambling != TS_SC_CLEAR) {
		asm_drop(a);
		return 0;
	}
	/* payload_off/payload_len come from ts_parse; bounded again here */
	cur_init(&c, pkt, TS_PACKET_BYTES);
	cur_skip(&c, h->payload_off);
	if (cur_view(&c, h->payload_len, &pl) != 0)
		return CE_ARG;
	if (!h->pusi) {
		if (a->have > 0) {
			p = rest(&pl, &n);
			asm_feed(a, p, n, &used, cb, ctx, &r);
		}
		return r; /* no section starts in a packet without PUSI */
	}
	{
		uint8_t ptr = 0;

		cur_u8(&pl, &ptr); /* pointer_field */
		if (ptr > cur_left(&pl)) {
			asm_drop(a);
			a->errors++;
			return 0;
		}
		p = cur_ptr(&pl, ptr);
		if (a->have > 0) {
			asm_feed(a, p, ptr, &used, cb, ctx, &r);
			if (a->have > 0)
				asm_drop(a); /* the new section starts before this one ended */
			if (r != 0)
				return r;
		}
	}
	while (cur_left(&pl) > 0) {
		p = rest(&pl, &n);
		if (p[0] == 0xFF)
			break; /* stuffing to the end of the packet */
		a->have = 0;
		a->need = 0;
		asm_feed(a, p, n, &used, cb, ctx, &r);
		cur_skip(&pl, used);
		if (r != 0)
			return r;
	}
	return 0;
}
