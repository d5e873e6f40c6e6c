/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Display names for mangled symbols: C++ (Itanium ABI) and Rust (legacy and
 * v0), through libiberty's demanglers, the ones binutils, gdb and perf use.
 */
#ifndef KILN_DEMANGLE_H
#define KILN_DEMANGLE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Longer mangled names are not demangled. libiberty's own limit for C++
 * is 1024 characters, which template-heavy code exceeds; its stack use
 * grows with the length (arrays of components, recursion while printing),
 * to some hundreds of KiB at 4096.
 */
#define DEMANGLE_MAX_MANGLED 4096

/* Whether name looks mangled: C++ and legacy Rust ("_Z"), Rust v0 ("_R"). */
bool demangle__is_mangled(const char *name);

/*
 * Writes the demangled form of name into buffer (size > 4), NUL-terminated;
 * a longer result is cut at a character boundary and ends in "...", and
 * *ret_truncated (may be NULL) says so. Returns 0, -EINVAL when name is not
 * a mangled name the demanglers accept (buffer then holds ""), or -E2BIG
 * when it is longer than DEMANGLE_MAX_MANGLED.
 */
int demangle__name(const char *name, char *buffer, size_t size, bool *ret_truncated);

#endif /* KILN_DEMANGLE_H */
