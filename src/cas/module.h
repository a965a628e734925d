/*
 * module.h - signed CAS client modules: the format, operator signing and
 * verification against a box's trust root (docs/modules.md has the table).
 *
 * A module is what the loader (src/client/loader.h) runs: a manifest (vendor
 * id, version, anti-rollback counter, SHA-256 of the payload), the payload
 * (which built-in client to run with which parameters), the trust
 * authority's public key (its SHA-256 must equal the OTP trust-root hash),
 * the operator's certificate issued by that TA (src/cas/cert.h), and the
 * operator's Ed25519 signature over everything before it. Big-endian:
 *
 *   off  len  field
 *     0    8  magic "CSTLMOD1"
 *     8    1  format version (1)
 *     9    4  vendor_id              \
 *    13    4  version                 | manifest
 *    17    4  rollback counter        |
 *    21   32  SHA-256(payload)       /
 *    53    4  payload length P (1..MODULE_MAX_PAYLOAD)
 *    57    P  payload
 *   57+P  32  TA root Ed25519 public key
 *   89+P   2  certificate length C (1..CERT_MAX_BYTES)
 *   91+P   C  operator certificate (cert.h)
 *   91+P+C 64 Ed25519 signature by the certificate's subject of bytes
 *             0 .. 90+P+C
 *
 * Payload v1 (a built-in client and its parameters; no code is loaded):
 *     0  1  kind (MODULE_KIND_LADDER = 1: the ladder client, chip.h)
 *     1  4  vendor_id (must equal the manifest's)
 *     5  2  CA_system_id
 *     7  1  keys file name length L (1..MODULE_MAX_NAME)
 *     8  L  keys file name: [A-Za-z0-9._-], not starting with '.', read
 *           from the box's state directory
 *
 * Every parser here is bounded and refuses trailing bytes.
 */
#ifndef CASTELLAN_KMS_MODULE_H
#define CASTELLAN_KMS_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define MODULE_MAGIC "CSTLMOD1"
#define MODULE_FORMAT 1
#define MODULE_MAX_PAYLOAD 65536
#define MODULE_MAX_BYTES (MODULE_MAX_PAYLOAD + 1024)
#define MODULE_MAX_NAME 128
#define MODULE_KIND_LADDER 1

struct module_manifest {
	uint32_t vendor_id;
	uint32_t version;
	uint32_t rollback;           /* anti-rollback counter */
	uint8_t payload_sha256[32];  /* set by module_sign */
};

struct module_payload {
	uint8_t kind;
	uint32_t vendor_id;
	uint16_t ca_system_id;
	char keys_file[MODULE_MAX_NAME + 1];
};

/* A parsed module: pointers into the caller's buffer. */
struct module_view {
	struct module_manifest m;
	const uint8_t *payload;
	size_t payload_len;
	const uint8_t *ta_pub;       /* 32 bytes */
	const uint8_t *cert;
	size_t cert_len;
	const uint8_t *sig;          /* 64 bytes */
	size_t signed_len;           /* bytes covered by sig */
};

/* Structural parse, no crypto. 0, CE_TRUNCATED, CE_FORMAT, CE_RANGE,
 * CE_TRAILING, CE_UNSUPPORTED (other format version). */
int module_parse(const uint8_t *buf, size_t len, struct module_view *v) WARN_UNUSED;

int module_payload_encode(const struct module_payload *p, uint8_t *out, size_t cap, size_t *out_len) WARN_UNUSED;
/* The ladder client's payload (MODULE_KIND_LADDER) for vendor, CA_system_id
 * and the box's keys file name: module_payload_encode's result; CE_ARG when
 * keys_file is not 1..MODULE_MAX_NAME of [A-Za-z0-9._-] (no leading '.'). */
int module_ladder_payload(uint32_t vendor, uint16_t ca_system_id, const char *keys_file, uint8_t *out, size_t cap,
	size_t *out_len) WARN_UNUSED;
int module_payload_parse(const uint8_t *buf, size_t len, struct module_payload *p) WARN_UNUSED;

/* Operator side: build and sign a module (m->payload_sha256 is computed).
 * cert: the operator's certificate; op_priv: its Ed25519 private key.
 * *out malloc'ed, caller frees. 0, CE_ARG, CE_RANGE, CE_CRYPTO, CE_NOMEM. */
int module_sign(const struct module_manifest *m, const uint8_t *payload, size_t payload_len,
	const uint8_t ta_pub[32], const uint8_t *cert, size_t cert_len, const uint8_t op_priv[32], uint8_t **out,
	size_t *out_len) WARN_UNUSED;

/* Box side: everything but rollback (the loader's state).
 *  - parse                                         -> its code
 *  - SHA-256(ta_pub) == trust_root_hash            -> CE_MAC ("untrusted root")
 *  - operator cert: TA signature, validity at now_s, role operator, not in
 *    crl (may be NULL)                             -> CE_MAC / CE_EXPIRED / CE_BLOCKED
 *  - module signature by the cert's subject        -> CE_MAC
 *  - SHA-256(payload) == manifest hash             -> CE_MAC
 *  - payload parses, its vendor_id = manifest's    -> CE_FORMAT
 * On success *v and *p are filled (p may be NULL). */
int module_verify(const uint8_t *buf, size_t len, const uint8_t trust_root_hash[32], uint64_t now_s,
	const uint8_t *crl, size_t crl_len, struct module_view *v, struct module_payload *p) WARN_UNUSED;

#endif
