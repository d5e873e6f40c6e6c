// SPDX-License-Identifier: Apache-2.0
/* gzip in memory through zlib. */
#define ZLIB_CONST
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

#include "lib/gzip.h"

int gzip_compress(const uint8_t *data, size_t size, uint8_t **ret_data, size_t *ret_size)
{
	z_stream stream = { 0 };
	uint8_t *out = NULL;
	uLong bound;
	int err;

	if (size > UINT_MAX)
		return -EFBIG;
	/* 15 + 16: gzip's header and trailer, not zlib's. */
	if (deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	bound = deflateBound(&stream, size);
	if (bound > UINT_MAX) {
		err = -EFBIG;
		goto cleanup;
	}
	out = malloc(bound);
	if (!out) {
		err = -ENOMEM;
		goto cleanup;
	}
	stream.next_in = data;
	stream.avail_in = size;
	stream.next_out = out;
	stream.avail_out = bound;
	/* deflateBound's room lets one Z_FINISH call complete. */
	if (deflate(&stream, Z_FINISH) != Z_STREAM_END) {
		err = -EIO;
		goto cleanup;
	}
	*ret_data = out;
	*ret_size = stream.total_out;
	out = NULL;
	err = 0;

cleanup:
	deflateEnd(&stream);
	free(out);
	return err;
}

int gzip_decompress(const uint8_t *data, size_t size, size_t max_size, uint8_t **ret_data,
		    size_t *ret_size)
{
	z_stream stream = { 0 };
	size_t capacity = size < 1024 ? 4096 : size * 4, allocated = 0;
	uint8_t *out = NULL, *grown;
	int err, ret;

	if (size > UINT_MAX || max_size > UINT_MAX)
		return -EFBIG;
	if (capacity > max_size)
		capacity = max_size;
	/* 15 + 16: gzip only, so a zlib or raw stream is refused. */
	if (inflateInit2(&stream, 15 + 16) != Z_OK)
		return -ENOMEM;
	stream.next_in = data;
	stream.avail_in = size;
	for (;;) {
		if (stream.total_out == capacity) {
			if (capacity >= max_size) {
				/* Input left: more output; none: cut short. */
				err = stream.avail_in ? -EFBIG : -EINVAL;
				goto cleanup;
			}
			capacity = capacity > max_size / 2 ? max_size : capacity * 2;
		}
		if (capacity > allocated) {
			grown = realloc(out, capacity);
			if (!grown) {
				err = -ENOMEM;
				goto cleanup;
			}
			out = grown;
			allocated = capacity;
		}
		stream.next_out = out + stream.total_out;
		stream.avail_out = capacity - stream.total_out;
		ret = inflate(&stream, Z_NO_FLUSH);
		if (ret == Z_STREAM_END)
			break;
		if (ret == Z_MEM_ERROR) {
			err = -ENOMEM;
			goto cleanup;
		}
		/* Damaged, or cut short: no input left and room to spare. */
		if ((ret != Z_OK && ret != Z_BUF_ERROR) ||
		    (stream.avail_in == 0 && stream.avail_out != 0)) {
			err = -EINVAL;
			goto cleanup;
		}
	}
	*ret_data = out;
	*ret_size = stream.total_out;
	out = NULL;
	err = 0;

cleanup:
	inflateEnd(&stream);
	free(out);
	return err;
}
