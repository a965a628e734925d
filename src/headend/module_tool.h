/*
 * module_tool.h - the work behind `castellan module sign | verify | inspect |
 * carousel | collect`: files in, files out, a result struct back. The command
 * (src/cli/cmd_module.c) parses options and prints; these read keys,
 * certificate, CRL and trust root, sign, verify, build and collect the OTA
 * carousel. docs/modules.md, docs/ota.md.
 */
#ifndef CASTELLAN_HEADEND_MODULE_TOOL_H
#define CASTELLAN_HEADEND_MODULE_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cas/module.h"
#include "headend/ota_ts.h"
#include "lib/err.h"

/* Which step failed, so the caller can word its message. */
enum module_step {
	MODULE_STEP_NONE = 0,
	MODULE_STEP_ARG,     /* a parameter is malformed (e.g. keys_file name) */
	MODULE_STEP_READ,    /* an input file (module, keys, certificate, CRL, TS) */
	MODULE_STEP_TRUST,   /* the trust root (--ta-pub file or hash) or the CRL */
	MODULE_STEP_WORK,    /* signing / building / writing the output */
	MODULE_STEP_REFUSED, /* verify: the chain was refused */
	MODULE_STEP_MISSING, /* collect: no complete module in the stream */
};

struct module_sign_req {
	uint32_t vendor, version, rollback;
	uint16_t ca_system_id;
	const char *keys_file;               /* the box's protected keys file name */
	const char *ta_pub, *cert, *key;     /* files: trust anchor public key, operator cert and key */
	const char *out;                     /* the signed module written there (0644) */
};

/* A module file read into memory with its parsed view (pointers into buf). */
struct module_file {
	uint8_t *buf;
	size_t len;
	struct module_view v;
	struct module_payload p;
	bool has_payload; /* p parsed */
};

struct module_carousel_req {
	struct ota_ts_params p;  /* car.vendor_id is taken from the module; in/nin from into */
	const char *module, *into, *out;
};
struct module_carousel_res {
	size_t nin, n, ncar;     /* input packets, packets written, one carousel cycle's */
};

struct module_collect_res {
	size_t len;
	uint32_t vendor_id;
	uint16_t pid;
	uint64_t sections_ok, sections_bad;
};

/* Build the ladder payload, read keys and certificate, sign, write q->out;
 * *mod_len the bytes written. 0 or CE_*, *step saying where. */
int module_tool_sign(const struct module_sign_req *q, size_t *mod_len, enum module_step *step) WARN_UNUSED;

/* Read and structurally parse path (no crypto) into f. 0 or CE_*. */
int module_tool_inspect(const char *path, struct module_file *f) WARN_UNUSED;

/* Read path and verify it against the trust root: the public key file ta_pub
 * or else the 64-hex hash; crl (optional) a revocation list file; now in
 * Unix seconds. 0 or CE_*, *step saying where (MODULE_STEP_REFUSED: the
 * chain's verdict). f is filled as far as it got: module_file_free it. */
int module_tool_verify(const char *path, const char *ta_pub, const char *hash, const char *crl, uint64_t now,
	struct module_file *f, enum module_step *step) WARN_UNUSED;

void module_file_free(struct module_file *f);

/* Read the module (and q->into), build its carousel TS and write q->out.
 * 0 or CE_*; on a read error *failed_path names the file, else NULL. */
int module_tool_carousel(const struct module_carousel_req *q, struct module_carousel_res *res,
	const char **failed_path) WARN_UNUSED;

/* The box side: collect the module from the TS file ts_path into out.
 * 0 or CE_*, *step saying where (MODULE_STEP_MISSING: res has the counts). */
int module_tool_collect(const char *ts_path, const char *out, struct module_collect_res *res,
	enum module_step *step) WARN_UNUSED;

#endif
