/*
 * ota.c - the OTA module carousel (ota.h): sections, TS packetization,
 * PSI announcement, and the box's bounded collector.
 * Normative references: ISO/IEC 13818-1 2.4.4 (private sections, PAT/PMT),
 * 2.6.8 (registration_descriptor); ETSI EN 300 468 (PSI usage).
 */
#include <stdlib.h>
#include <string.h>
#include "ts/ota.h"
#include "lib/cursor.h"
#include "ts/psi.h"
#include "ts/ts.h"

static size_t nblocks(size_t len)
{
	return (len + OTA_BLOCK_BYTES - 1) / OTA_BLOCK_BYTES;
}

int ota_section_build(const struct ota_params *p, const uint8_t *mod, size_t len, unsigned k, uint8_t *out,
	size_t cap, size_t *out_len)
{
	size_t nb = nblocks(len), off, n;
	struct wbuf w;
	size_t at;
	int r;

	*out_len = 0;
	if (!p || !mod || len == 0 || len > OTA_MAX_MODULE || nb > 256 || k >= nb || p->version > 31)
		return CE_ARG;
	off = (size_t)k * OTA_BLOCK_BYTES;
	n = len - off < OTA_BLOCK_BYTES ? len - off : OTA_BLOCK_BYTES;
	wbuf_init(&w, out, cap);
	wbuf_u8(&w, OTA_TABLE_ID);
	at = wbuf_reserve(&w, 2);
	wbuf_u16(&w, p->carousel_id);
	wbuf_u8(&w, (uint8_t)(0xC0 | (p->version << 1) | 1));
	wbuf_u8(&w, (uint8_t)k);
	wbuf_u8(&w, (uint8_t)(nb - 1));
	wbuf_u32(&w, p->vendor_id);
	wbuf_u32(&w, (uint32_t)len);
	wbuf_bytes(&w, mod + off, n);
	if ((r = wbuf_status(&w)) != 0)
		return r;
	wbuf_patch_u16(&w, at, (uint16_t)(0xF000 | (w.len + 4 - 3)));
	wbuf_u32(&w, crc32_mpeg(out, w.len));
	if ((r = wbuf_status(&w)) != 0)
		return r;
	*out_len = w.len;
	return 0;
}

int ota_carousel_build(const struct ota_params *p, const uint8_t *mod, size_t len, uint8_t *cc, uint8_t **pkts,
	size_t *npkts)
{
	uint8_t sec[PSI_MAX_SECTION];
	size_t nb = nblocks(len), total = 0, used = 0;
	uint8_t *out;
	int r;

	*pkts = NULL;
	*npkts = 0;
	if (!p || !mod || !cc || len == 0 || len > OTA_MAX_MODULE || nb > 256)
		return CE_ARG;
	total = nb * ts_packets_for(OTA_BLOCK_BYTES + 20);
	if (!(out = malloc(total * TS_PACKET_BYTES)))
		return CE_NOMEM;
	for (unsigned k = 0; k < nb; k++) {
		size_t sl = 0, np = 0;

		if ((r = ota_section_build(p, mod, len, k, sec, sizeof(sec), &sl)) != 0 ||
		    (r = ts_packetize(sec, sl, p->pid, cc, out + used * TS_PACKET_BYTES, total - used, &np)) != 0) {
			free(out);
			return r;
		}
		used += np;
	}
	*pkts = out;
	*npkts = used;
	return 0;
}

int ota_psi_build(uint16_t tsid, uint16_t program, uint16_t pmt_pid, uint16_t ota_pid, uint8_t out[376])
{
	struct pat pat;
	struct pmt *pmt = calloc(1, sizeof(*pmt));
	uint8_t sec[PSI_MAX_PSI_SECTION];
	size_t sl = 0, np = 0;
	uint8_t cc0 = 15, cc1 = 15;
	int r;

	if (!pmt)
		return CE_NOMEM;
	memset(&pat, 0, sizeof(pat));
	pat.tsid = tsid;
	pat.nprog = 1;
	pat.prog[0].program = program;
	pat.prog[0].pid = pmt_pid;
	pmt->program = program;
	pmt->pcr_pid = 0x1FFF;
	pmt->nes = 1;
	pmt->es[0].stream_type = OTA_STREAM_TYPE;
	pmt->es[0].pid = ota_pid;
	pmt->es[0].info_len = 6;
	memcpy(pmt->es[0].info, "\x05\x04" OTA_FORMAT_ID, 6);
	if ((r = pat_build(&pat, sec, sizeof(sec), &sl)) == 0 && (r = ts_packetize(sec, sl, 0, &cc0, out, 1, &np)) == 0 &&
	    (r = pmt_build(pmt, sec, sizeof(sec), &sl)) == 0)
		r = ts_packetize(sec, sl, pmt_pid, &cc1, out + TS_PACKET_BYTES, 1, &np);
	free(pmt);
	return r;
}

int ota_section_parse(const uint8_t *sec, size_t len, struct ota_section *o)
{
	struct psi_long_hdr h;
	struct cur c;
	size_t want;
	int r;

	memset(o, 0, sizeof(*o));
	if ((r = psi_check_long(sec, len, &h)) != 0)
		return r;
	if (h.table_id != OTA_TABLE_ID || !h.current_next)
		return CE_FORMAT;
	cur_init(&c, sec, len - 4);
	(void)cur_skip(&c, 8);
	(void)cur_u32(&c, &o->vendor_id);
	(void)cur_u32(&c, &o->module_len);
	if ((r = c.err) != 0)
		goto fail;
	r = CE_RANGE;
	if (o->module_len == 0 || o->module_len > OTA_MAX_MODULE || nblocks(o->module_len) != (size_t)h.last_section_number + 1)
		goto fail;
	want = o->module_len - (size_t)h.section_number * OTA_BLOCK_BYTES;
	if (want > OTA_BLOCK_BYTES)
		want = OTA_BLOCK_BYTES;
	o->data_len = want;
	o->data = cur_ptr(&c, want);
	if ((r = cur_end(&c)) != 0)
		goto fail;
	o->carousel_id = h.id_ext;
	o->version = h.version;
	o->block = h.section_number;
	o->last_block = h.last_section_number;
	return 0;
fail:
	memset(o, 0, sizeof(*o));
	return r;
}

/* ---- the collector ---- */

struct ota_rx {
	struct psi_asm pat_asm;
	size_t npmt;
	uint16_t pmt_pids[OTA_MAX_PMTS];
	struct psi_asm *pmt_asm;     /* OTA_MAX_PMTS */
	struct pmt *pmt;             /* scratch */
	uint16_t pid;                /* carousel PID, 0x1FFF unknown */
	struct psi_asm ota_asm;
	/* collection in progress */
	bool collecting;
	uint16_t carousel_id;
	uint8_t version, last_block;
	uint32_t vendor_id, module_len;
	uint8_t have[32];            /* block bitmap */
	size_t nhave;
	uint8_t *buf;                /* OTA_MAX_MODULE */
	/* done */
	bool done_taken;
	bool done_valid;
	uint8_t done_version;
	uint16_t done_carousel;
	struct ota_rx_stats st;
	uint8_t *ready;
	size_t ready_len;
	uint32_t ready_vendor;
};

int ota_rx_new(struct ota_rx **out)
{
	struct ota_rx *rx = calloc(1, sizeof(*rx));

	*out = NULL;
	if (!rx)
		return CE_NOMEM;
	rx->pmt_asm = calloc(OTA_MAX_PMTS, sizeof(*rx->pmt_asm));
	rx->pmt = calloc(1, sizeof(*rx->pmt));
	rx->buf = malloc(OTA_MAX_MODULE);
	if (!rx->pmt_asm || !rx->pmt || !rx->buf) {
		ota_rx_free(rx);
		return CE_NOMEM;
	}
	psi_asm_init(&rx->pat_asm, 0);
	rx->pid = 0x1FFF;
	rx->st.pid = 0x1FFF;
	*out = rx;
	return 0;
}

void ota_rx_free(struct ota_rx *rx)
{
	if (!rx)
		return;
	free(rx->pmt_asm);
	free(rx->pmt);
	free(rx->buf);
	free(rx->ready);
	free(rx);
}

static void on_pat(struct ota_rx *rx, const uint8_t *sec, size_t len)
{
	struct pat pat;

	if (pat_parse(sec, len, &pat) != 0) {
		rx->st.sections_bad++;
		return;
	}
	rx->npmt = 0;
	for (size_t i = 0; i < pat.nprog && rx->npmt < OTA_MAX_PMTS; i++) {
		if (pat.prog[i].program == 0)
			continue;
		if (rx->pmt_asm[rx->npmt].pid != pat.prog[i].pid || rx->pmt_pids[rx->npmt] != pat.prog[i].pid)
			psi_asm_init(&rx->pmt_asm[rx->npmt], pat.prog[i].pid);
		rx->pmt_pids[rx->npmt] = pat.prog[i].pid;
		rx->npmt++;
	}
}

/* Does this ES carry the CSOT registration descriptor? */
static bool es_is_ota(const struct pmt_es *es)
{
	struct cur c;

	if (es->stream_type != OTA_STREAM_TYPE)
		return false;
	cur_init(&c, es->info, es->info_len);
	while (cur_left(&c) >= 2) {
		uint8_t tag = 0, l = 0;
		const uint8_t *d;

		(void)cur_u8(&c, &tag);
		(void)cur_u8(&c, &l);
		d = cur_ptr(&c, l);
		if (!d)
			return false;
		if (tag == 0x05 && l >= 4 && memcmp(d, OTA_FORMAT_ID, 4) == 0)
			return true;
	}
	return false;
}

static void on_pmt(struct ota_rx *rx, const uint8_t *sec, size_t len)
{
	if (pmt_parse(sec, len, rx->pmt) != 0) {
		rx->st.sections_bad++;
		return;
	}
	for (size_t i = 0; i < rx->pmt->nes; i++) {
		if (es_is_ota(&rx->pmt->es[i]) && rx->pid != rx->pmt->es[i].pid) {
			rx->pid = rx->pmt->es[i].pid;
			rx->st.pid = rx->pid;
			psi_asm_init(&rx->ota_asm, rx->pid);
			rx->collecting = false;
		}
	}
}

static void on_ota(struct ota_rx *rx, const uint8_t *sec, size_t len)
{
	struct ota_section s;
	uint8_t *copy;

	if (ota_section_parse(sec, len, &s) != 0) {
		rx->st.sections_bad++;
		return;
	}
	rx->st.sections_ok++;
	if (rx->done_valid && s.carousel_id == rx->done_carousel && s.version == rx->done_version)
		return; /* already delivered this version */
	if (!rx->collecting || s.carousel_id != rx->carousel_id || s.version != rx->version) {
		rx->collecting = true;
		rx->carousel_id = s.carousel_id;
		rx->version = s.version;
		rx->vendor_id = s.vendor_id;
		rx->module_len = s.module_len;
		rx->last_block = s.last_block;
		memset(rx->have, 0, sizeof(rx->have));
		rx->nhave = 0;
	}
	if (s.vendor_id != rx->vendor_id || s.module_len != rx->module_len || s.last_block != rx->last_block) {
		rx->st.sections_bad++; /* disagrees with its version's other blocks */
		return;
	}
	if (rx->have[s.block / 8] & (1u << (s.block % 8)))
		return;
	memcpy(rx->buf + (size_t)s.block * OTA_BLOCK_BYTES, s.data, s.data_len);
	rx->have[s.block / 8] |= (uint8_t)(1u << (s.block % 8));
	if (++rx->nhave < (size_t)rx->last_block + 1)
		return;
	copy = malloc(rx->module_len);
	if (!copy)
		return; /* try again next cycle */
	memcpy(copy, rx->buf, rx->module_len);
	free(rx->ready);
	rx->ready = copy;
	rx->ready_len = rx->module_len;
	rx->ready_vendor = rx->vendor_id;
	rx->done_valid = true;
	rx->done_carousel = rx->carousel_id;
	rx->done_version = rx->version;
	rx->collecting = false;
	rx->st.modules_complete++;
}

static int on_section(void *ctx, uint16_t pid, const uint8_t *sec, size_t len)
{
	struct ota_rx *rx = ctx;

	if (pid == 0)
		on_pat(rx, sec, len);
	else if (pid == rx->pid)
		on_ota(rx, sec, len);
	else
		on_pmt(rx, sec, len);
	return 0;
}

int ota_rx_feed(struct ota_rx *rx, const uint8_t *pkts, size_t npkts)
{
	if (!rx || (!pkts && npkts))
		return CE_ARG;
	for (size_t i = 0; i < npkts; i++) {
		const uint8_t *p = pkts + i * TS_PACKET_BYTES;
		struct ts_hdr h;

		if (ts_parse(p, &h) != 0)
			continue;
		if (h.pid == 0) {
			(void)psi_asm_push(&rx->pat_asm, p, &h, on_section, rx);
		} else if (h.pid == rx->pid) {
			(void)psi_asm_push(&rx->ota_asm, p, &h, on_section, rx);
		} else {
			for (size_t k = 0; k < rx->npmt; k++)
				if (rx->pmt_pids[k] == h.pid)
					(void)psi_asm_push(&rx->pmt_asm[k], p, &h, on_section, rx);
		}
	}
	return 0;
}

int ota_rx_take(struct ota_rx *rx, uint8_t **mod, size_t *len, uint32_t *vendor_id)
{
	*mod = NULL;
	*len = 0;
	if (vendor_id)
		*vendor_id = 0;
	if (!rx || !rx->ready)
		return CE_NOT_FOUND;
	*mod = rx->ready;
	*len = rx->ready_len;
	if (vendor_id)
		*vendor_id = rx->ready_vendor;
	rx->ready = NULL;
	rx->ready_len = 0;
	return 0;
}

void ota_rx_stats(const struct ota_rx *rx, struct ota_rx_stats *out)
{
	*out = rx->st;
}
