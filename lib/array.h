/* SPDX-License-Identifier: Apache-2.0 */
/* Arrays that grow by doubling, as the symbolizer's and unwinder's tables do. */
#ifndef KILN_ARRAY_H
#define KILN_ARRAY_H

#include <errno.h>
#include <stdlib.h>

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
