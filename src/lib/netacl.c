/*
 * netacl.c - peer address allow-lists (netacl.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include "lib/netacl.h"
#include "lib/util.h"

/* Does addr have a 1 bit at or after bit 'prefix' (of bits total)? */
static bool host_bits_set(const uint8_t *addr, unsigned prefix, unsigned bits)
{
	for (unsigned b = prefix; b < bits; b++)
		if (addr[b / 8] & (0x80u >> (b % 8)))
			return true;
	return false;
}

static int parse_item(const char *s, size_t len, struct netacl_net *out)
{
	char buf[64], *slash;
	uint64_t prefix = 0;
	unsigned bits;

	while (len && *s == ' ')
		s++, len--;
	while (len && s[len - 1] == ' ')
		len--;
	if (len == 0 || len >= sizeof(buf))
		return CE_ARG;
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = 4;
		bits = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = 6;
		bits = 128;
	} else {
		return CE_ARG;
	}
	prefix = bits;
	/* decimal digits only, 1..3 of them */
	if (slash && (slash[1] == '\0' || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
		      strlen(slash + 1) > 3 || parse_u64(slash + 1, bits, &prefix) != 0))
		return CE_ARG;
	out->prefix = (uint8_t)prefix;
	if (host_bits_set(out->addr, out->prefix, bits))
		return CE_ARG;
	return 0;
}

int netacl_parse(const char *text, struct netacl *out)
{
	size_t len;
	const char *p;
	int r;

	memset(out, 0, sizeof(*out));
	if (!text)
		return 0;
	len = strnlen(text, NETACL_MAX_TEXT + 1);
	if (len > NETACL_MAX_TEXT)
		return CE_RANGE;
	p = text;
	for (;;) {
		const char *comma = memchr(p, ',', len - (size_t)(p - text));
		size_t ilen = comma ? (size_t)(comma - p) : len - (size_t)(p - text);

		if (out->n == NETACL_MAX) {
			r = CE_RANGE;
			goto fail;
		}
		if ((r = parse_item(p, ilen, &out->net[out->n])) != 0)
			goto fail;
		out->n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

bool netacl_peer_key(const struct sockaddr *sa, socklen_t len, uint8_t *family, uint8_t addr[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };

	memset(addr, 0, 16);
	*family = 0;
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family = 4;
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memcpy(addr, a + 12, 4);
			*family = 4;
		} else {
			memcpy(addr, a, 16);
			*family = 6;
		}
		return true;
	}
	return false;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest) {
		uint8_t m = (uint8_t)(0xFFu << (8 - rest));

		return (a[full] & m) == (b[full] & m);
	}
	return true;
}

bool netacl_allows(const struct netacl *acl, const struct sockaddr *sa, socklen_t len)
{
	uint8_t fam, addr[16];

	if (!acl || acl->n == 0)
		return true;
	if (!netacl_peer_key(sa, len, &fam, addr))
		return false;
	for (size_t i = 0; i < acl->n; i++)
		if (acl->net[i].family == fam && prefix_equal(addr, acl->net[i].addr, acl->net[i].prefix))
			return true;
	return false;
}
