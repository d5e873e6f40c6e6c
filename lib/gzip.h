/* SPDX-License-Identifier: Apache-2.0 */
/* gzip (RFC 1952) in memory, through zlib: what pprof files and push bodies are. */
#ifndef KILN_GZIP_H
#define KILN_GZIP_H

#include <stddef.h>
#include <stdint.h>

/*
 * data gzip-compressed at zlib's level 1, into a malloc'd buffer. Level 1:
 * on a window of a busy host (200 KiB of protobuf: sample labels and
 * varint ids, which compress 2.5:1 at any level) it takes half the time of
 * zlib's default 6 for 8% more bytes, and compressing is a steady cost
 * paid every window. Returns 0, -EFBIG past 4 GiB, -ENOMEM or -EIO.
 */
int gzip_compress(const uint8_t *data, size_t size, uint8_t **ret_data, size_t *ret_size);

/*
 * One gzip member inflated into a malloc'd buffer of at most max_size
 * bytes. Returns 0, -EFBIG when it inflates past max_size, -EINVAL when
 * data is not whole gzip (bad header, checksum, cut short), or -ENOMEM.
 */
int gzip_decompress(const uint8_t *data, size_t size, size_t max_size, uint8_t **ret_data,
		    size_t *ret_size);

#endif /* KILN_GZIP_H */
