// SPDX-License-Identifier: Apache-2.0
/* HOST:PORT and [IPv6]:PORT to a socket address, numerically. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "agent/http/http_address.h"

/* Decimal, 1 to 65535, nothing after it. */
static int parse_port(const char *text, in_port_t *ret_port)
{
	unsigned int port = 0;

	if (!*text || strlen(text) > 5)
		return -EINVAL;
	for (const char *c = text; *c; c++) {
		if (*c < '0' || *c > '9')
			return -EINVAL;
		port = port * 10 + (unsigned int)(*c - '0');
	}
	if (!port || port > 65535)
		return -EINVAL;
	*ret_port = htons((in_port_t)port);
	return 0;
}

int http_address_parse(const char *text, struct http_address *ret_address)
{
	struct http_address address = {};
	char host[INET6_ADDRSTRLEN];
	const char *port, *host_end;
	in_port_t port_number;
	bool ipv6 = text[0] == '[';

	if (ipv6) {
		host_end = strchr(text, ']');
		if (!host_end || host_end[1] != ':')
			return -EINVAL;
		text++;
		port = host_end + 2;
	} else {
		host_end = strrchr(text, ':');
		if (!host_end)
			return -EINVAL;
		port = host_end + 1;
	}
	if (host_end == text || (size_t)(host_end - text) >= sizeof(host) ||
	    parse_port(port, &port_number))
		return -EINVAL;
	memcpy(host, text, host_end - text);
	host[host_end - text] = '\0';
	if (ipv6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&address.storage;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = port_number;
		address.length = sizeof(*in6);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&address.storage;

		/* inet_pton takes only dotted quads: no "1", no hex, no names. */
		if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
			return -EINVAL;
		in4->sin_family = AF_INET;
		in4->sin_port = port_number;
		address.length = sizeof(*in4);
	}
	*ret_address = address;
	return 0;
}
