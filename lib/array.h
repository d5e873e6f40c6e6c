/* SPDX-License-Identifier: Apache-2.0 */
/* Fixed arrays' element counts, and arrays that grow by doubling. */
#ifndef KILN_ARRAY_H
#define KILN_ARRAY_H

#include <errno.h>
#include <stdint.h>
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

/*
 * Makes *array (of *capacity elements of size bytes) hold at least needed,
 * doubling from 16: 0, or -ENOMEM with the array unchanged.
 */
static inline int array_grow(void **array, size_t *capacity, size_t needed, size_t size)
{
	size_t new_capacity = *capacity ? *capacity : 16;
	void *grown;

	if (needed <= *capacity)
		return 0;
	while (new_capacity < needed) {
		if (new_capacity > SIZE_MAX / 2)
			return -ENOMEM;
		new_capacity *= 2;
	}
	grown = reallocarray(*array, new_capacity, size);
	if (!grown)
		return -ENOMEM;
	*array = grown;
	*capacity = new_capacity;
	return 0;
}

/* array_grow for an array lvalue and its capacity (size_t lvalue). */
#define ARRAY_GROW(array, capacity, needed)                                                        \
	({                                                                                         \
		void *_array = (array);                                                            \
		int _err = array_grow(&_array, &(capacity), (needed), sizeof(*(array)));           \
		(array) = _array;                                                                  \
		_err;                                                                              \
	})

#endif /* KILN_ARRAY_H */
