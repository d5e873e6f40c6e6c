/* SPDX-License-Identifier: Apache-2.0 */
/* Binary search in arrays sorted by one field, as the symbolizer's address tables are. */
#ifndef KILN_SORTED_H
#define KILN_SORTED_H

#include <stddef.h>

/*
 * The index of the first of count elements of array whose field is greater
 * than key (count when none is): the element before it, if any, is the last
 * one starting at or below key.
 */
#define SORTED_UPPER_BOUND(array, count, field, key)                                               \
	({                                                                                         \
		size_t _low = 0, _high = (count);                                                  \
		while (_low < _high) {                                                             \
			size_t _mid = _low + (_high - _low) / 2;                                   \
			if ((array)[_mid].field <= (key))                                          \
				_low = _mid + 1;                                                   \
			else                                                                       \
				_high = _mid;                                                      \
		}                                                                                  \
		_low;                                                                              \
	})

#endif /* KILN_SORTED_H */
