/*
 * netacl.h - which peers may connect: a list of IPv4/IPv6 networks given as
 * `--allow CIDR[,CIDR...]` (e.g. "10.1.0.0/16,192.0.2.7,fd00::/8"). The
 * ECMG, the scrambler's MUX listener and the head-end check a peer's address
 * against it on accept, before reading a byte (docs/security.md, "network
 * design"). An empty list allows every peer; an IPv4-mapped IPv6 peer
 * (::ffff:a.b.c.d) is matched as IPv4; a peer of another family (a Unix
 * socket) is refused by a non-empty list. No global state.
 */
#ifndef CASTELLAN_NETACL_H
#define CASTELLAN_NETACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "err.h"

#define NETACL_MAX 32           /* networks in one list */
#define NETACL_MAX_TEXT 2048    /* longest list accepted */

struct netacl_net {
	uint8_t family;  /* 4 or 6 */
	uint8_t prefix;  /* 0..32 / 0..128 */
	uint8_t addr[16];
};

struct netacl {
	size_t n;
	struct netacl_net net[NETACL_MAX];
};

/* Parse "CIDR[,CIDR...]": each an IPv4 or IPv6 address, optionally /prefix
 * (none = one host); spaces around items allowed; host bits past the prefix
 * must be zero (a typo guard: "10.0.0.1/8" is refused). NULL gives the
 * empty list (everyone). 0, CE_ARG (an empty item, a bad address or
 * prefix, set host bits), CE_RANGE (more than NETACL_MAX items or a text
 * longer than NETACL_MAX_TEXT). *out is the empty list on failure. */
int netacl_parse(const char *text, struct netacl *out) WARN_UNUSED;

/* Whether the peer at sa may connect (see above). */
bool netacl_allows(const struct netacl *acl, const struct sockaddr *sa, socklen_t len);

/* One peer's address as a key for per-peer quotas: family 4/6 and the
 * 16-byte address (IPv4 in the first 4 bytes, IPv4-mapped IPv6 as IPv4).
 * false for another family. */
bool netacl_peer_key(const struct sockaddr *sa, socklen_t len, uint8_t *family, uint8_t addr[16]);

#endif
