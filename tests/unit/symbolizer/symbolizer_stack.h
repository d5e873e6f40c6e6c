/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For the symbolizer's tests: a symbolizer over an ELF cache and a debug
 * search made with the test's options, as the agent's main.c builds them.
 */
#ifndef KILN_TEST_SYMBOLIZER_STACK_H
#define KILN_TEST_SYMBOLIZER_STACK_H

#include <stddef.h>

#include "symbolizer/debug_search.h"
#include "symbolizer/elf_cache.h"
#include "symbolizer/symbolizer.h"

struct symbolizer_stack {
	struct debug_search *debug_search;
	struct elf_cache *files;
	struct symbolizer *symbolizer;
};

static inline void symbolizer_stack__free(struct symbolizer_stack *stack)
{
	symbolizer__free(stack->symbolizer);
	elf_cache__free(stack->files);
	debug_search__free(stack->debug_search);
	*stack = (struct symbolizer_stack){};
}

/*
 * The three, from search_opts and opts (either may be NULL) and at most
 * max_files cached files (0: the default). Returns the symbolizer, or NULL
 * with what was made freed.
 */
static inline struct symbolizer *symbolizer_stack__new(struct symbolizer_stack *stack,
						       const struct debug_search_opts *search_opts,
						       size_t max_files,
						       const struct symbolizer_opts *opts)
{
	struct symbolizer_opts symbolizer_opts = {};
	struct elf_cache_opts cache_opts = { .max_files = max_files };

	*stack = (struct symbolizer_stack){};
	if (opts)
		symbolizer_opts = *opts;
	stack->debug_search = debug_search__new(search_opts);
	cache_opts.debug_search = stack->debug_search;
	if (stack->debug_search)
		stack->files = elf_cache__new(&cache_opts);
	symbolizer_opts.elf_cache = stack->files;
	if (stack->files)
		stack->symbolizer = symbolizer__new(&symbolizer_opts);
	if (!stack->symbolizer)
		symbolizer_stack__free(stack);
	return stack->symbolizer;
}

#endif /* KILN_TEST_SYMBOLIZER_STACK_H */
