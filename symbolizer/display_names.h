/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The names people read for symbols (internal to the symbolizer):
 * demangled (C++, Rust), without a symbol version, cut at
 * SYMBOLIZER_MAX_NAME. They are written into one buffer whose room is
 * taken again for each location.
 */
#ifndef KILN_DISPLAY_NAMES_H
#define KILN_DISPLAY_NAMES_H

#include <stdint.h>

struct display_names;

/* NULL with errno set. */
struct display_names *display_names__new(void);
void display_names__free(struct display_names *names);

/* Forgets every name handed out: their room is the next location's. */
void display_names__reset(struct display_names *names);

/*
 * The name people read for raw: demangled, without a symbol version
 * ("__libc_start_main@@GLIBC_2.34" reads as "__libc_start_main"). raw
 * itself when nothing changes, else a string valid until the next reset.
 */
const char *display_names__name(struct display_names *names, const char *raw);

/*
 * The same for a local C++ symbol, named for its function as DWARF would,
 * without the suffix GCC gives the parts it splits off or specializes:
 * "_ZN1f1gEv.isra.0" as f::g().
 */
const char *display_names__unsplit(struct display_names *names, const char *symbol);

/* Names cut at SYMBOLIZER_MAX_NAME so far. */
uint64_t display_names__truncated(const struct display_names *names);

#endif /* KILN_DISPLAY_NAMES_H */
