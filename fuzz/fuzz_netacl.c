/* fuzz_netacl.c - netacl_parse (the --allow lists) on arbitrary text, then
 * netacl_allows with an IPv4 and an IPv6 peer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/netacl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct netacl acl;
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (netacl_parse(s, &acl) == 0) {
		a4.sin_addr.s_addr = htonl(0x0A010203u);
		(void)netacl_allows(&acl, (struct sockaddr *)&a4, sizeof(a4));
		a6.sin6_addr.s6_addr[0] = 0xfd;
		(void)netacl_allows(&acl, (struct sockaddr *)&a6, sizeof(a6));
	} else if (acl.n != 0) {
		__builtin_trap(); /* a failed parse leaves the empty list */
	}
	free(s);
	return 0;
}
