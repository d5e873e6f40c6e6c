/* SPDX-License-Identifier: Apache-2.0 */
/* Fixed arrays' element counts, and arrays that grow by doubling. */
#ifndef KILN_ARRAY_H
#define KILN_ARRAY_H

#include <errno.h>
#include <stdlib.h>

/*
 * Element count of a fixed array. Given a pointer instead, -Wsizeof-pointer-div
 * (in -Wall, an error with -Werror) stops the build.
 */
#define ARRAY_SIZE(array) (sizeof(array) / sizeof((array)[0]))

/*
 * Makes room for one more element in array, which holds count of capacity
 * (both lvalues), doubling it from first elements: 0, or -ENOMEM with
 * array unchanged.
 */
#define ARRAY_RESERVE_ONE(array, count, capacity, first)                                           \
	({                                                                                         \
		int _err = 0;                                                                      \
		if ((count) == (capacity)) {                                                       \
			size_t _capacity = (capacity) ? 2 * (capacity) : (first);                  \
			typeof(array) _grown = reallocarray((array), _capacity, sizeof(*(array))); \
			if (_grown) {                                                              \
				(array) = _grown;                                                  \
				(capacity) = _capacity;                                            \
			} else {                                                                   \
				_err = -ENOMEM;                                                    \
			}                                                                          \
		}                                                                                  \
		_err;                                                                              \
	})

#endif /* KILN_ARRAY_H */
