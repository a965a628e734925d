/*
 * psi.h - PSI/SI sections and the tables Castellan reads and writes:
 * PAT, PMT, CAT (ISO/IEC 13818-1, 2.4.4) and the CA_descriptor (2.6.16);
 * section reassembly from TS packets; CRC-32/MPEG-2.
 *
 * Parsers take one whole section, check section_length against the buffer,
 * the CRC, and every loop bound (descriptor loops through bounded child
 * views); leftover bytes are an error. Builders write a fresh section with a
 * correct CRC into a caller buffer (at most PSI_MAX_SECTION bytes).
 */
#ifndef CASTELLAN_PSI_H
#define CASTELLAN_PSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "ts/ts.h"

#define PSI_MAX_SECTION 4096      /* private sections may be 4096 bytes */
#define PSI_MAX_PSI_SECTION 1024  /* PAT/PMT/CAT are limited to 1024 */
#define PAT_MAX_PROGRAMS 256
#define PMT_MAX_ES 64
#define PSI_MAX_DESC_BYTES 1024
#define PSI_MAX_CA 16

#define TID_PAT 0x00
#define TID_CAT 0x01
#define TID_PMT 0x02
#define DESC_CA 0x09

uint32_t crc32_mpeg(const uint8_t *buf, size_t len);

/* Common header of a long-form section (section_syntax_indicator = 1). */
struct psi_long_hdr {
	uint8_t table_id;
	uint16_t section_length;
	uint16_t id_ext;      /* transport_stream_id / program_number / ... */
	uint8_t version;
	bool current_next;
	uint8_t section_number;
	uint8_t last_section_number;
};
/* Check a long section: length fields, CRC. 0, CE_TRUNCATED, CE_FORMAT,
 * CE_CRC. */
int psi_check_long(const uint8_t *sec, size_t len, struct psi_long_hdr *h) WARN_UNUSED;

struct pat {
	uint16_t tsid;
	uint8_t version;
	size_t nprog;
	struct { uint16_t program; uint16_t pid; } prog[PAT_MAX_PROGRAMS]; /* program 0 = NIT */
};
int pat_parse(const uint8_t *sec, size_t len, struct pat *pat) WARN_UNUSED;
int pat_build(const struct pat *pat, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;

struct ca_desc {
	uint16_t ca_system_id;
	uint16_t ca_pid;
	uint8_t priv_len;
	uint8_t priv[32];
};

struct pmt_es {
	uint8_t stream_type;
	uint16_t pid;
	uint16_t info_len;
	uint8_t info[PSI_MAX_DESC_BYTES]; /* raw ES_info descriptors */
};

struct pmt {
	uint16_t program;
	uint8_t version;
	uint16_t pcr_pid;
	uint16_t info_len;
	uint8_t info[PSI_MAX_DESC_BYTES]; /* raw program_info descriptors */
	size_t nes;
	struct pmt_es es[PMT_MAX_ES];
};
/* struct pmt is large (~70 KB): allocate it, don't put it on a small stack. */
int pmt_parse(const uint8_t *sec, size_t len, struct pmt *pmt) WARN_UNUSED;
int pmt_build(const struct pmt *pmt, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;

struct cat {
	uint8_t version;
	uint16_t info_len;
	uint8_t info[PSI_MAX_DESC_BYTES]; /* raw descriptors */
};
int cat_parse(const uint8_t *sec, size_t len, struct cat *cat) WARN_UNUSED;
int cat_build(const struct cat *cat, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;

/* Walk a descriptor loop: returns up to max CA descriptors found in
 * desc[0..len) into out, count in *n. Bounded; a descriptor running past the
 * loop is CE_FORMAT. */
int ca_desc_find(const uint8_t *desc, size_t len, struct ca_desc *out, size_t max, size_t *n) WARN_UNUSED;
/* Append one CA descriptor to a descriptor loop buffer of capacity cap,
 * *len updated. */
int ca_desc_append(uint8_t *desc, size_t cap, uint16_t *len, const struct ca_desc *ca) WARN_UNUSED;
/* Remove every CA descriptor with this CA_system_id from a loop. */
void ca_desc_remove(uint8_t *desc, uint16_t *len, uint16_t ca_system_id);

/*
 * Section reassembly on one PID. Feed each packet of the PID; for every
 * complete section (whose length passed the basic bounds check; CRC is the
 * table parser's job) the callback runs with the section bytes. Handles
 * pointer_field, sections spanning packets, several sections per packet,
 * stuffing, CC discontinuities (drops the partial section) and TEI.
 * Returns 0, or the first non-zero callback return.
 */
typedef int (*psi_section_cb)(void *ctx, uint16_t pid, const uint8_t *sec, size_t len);
struct psi_asm {
	uint16_t pid;
	int last_cc;     /* -1 before the first packet */
	size_t have;     /* bytes collected */
	size_t need;     /* total section length once known, else 0 */
	uint32_t errors; /* malformed/discontinuous sections dropped */
	uint8_t buf[PSI_MAX_SECTION + TS_PACKET_BYTES];
};
void psi_asm_init(struct psi_asm *a, uint16_t pid);
int psi_asm_push(struct psi_asm *a, const uint8_t pkt[TS_PACKET_BYTES], const struct ts_hdr *h,
	psi_section_cb cb, void *ctx);

#endif
