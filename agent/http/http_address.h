/* SPDX-License-Identifier: Apache-2.0 */
/* --http-address: HOST:PORT, an IPv4 address or [IPv6]:PORT, as a socket address. */
#ifndef KILN_HTTP_ADDRESS_H
#define KILN_HTTP_ADDRESS_H

#include <sys/socket.h>

struct http_address {
	struct sockaddr_storage storage;
	socklen_t length;
};

/*
 * "127.0.0.1:7071", "[::1]:7071", "0.0.0.0:7071": numeric only, so that
 * parsing needs no resolver and means the same at every start. Port 1 to
 * 65535. 0 or -EINVAL; ret_address untouched on failure.
 */
int http_address_parse(const char *text, struct http_address *ret_address);

#endif /* KILN_HTTP_ADDRESS_H */
