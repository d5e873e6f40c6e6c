/* SPDX-License-Identifier: Apache-2.0 */
/* Retry delays: exponential backoff with jitter, and a small random source for it. */
#ifndef KILN_BACKOFF_H
#define KILN_BACKOFF_H

#include <stdint.h>

struct backoff_policy {
	uint64_t initial_ms; /* the delay before the first retry, before jitter */
	uint64_t max_ms; /* no delay exceeds this */
};

/*
 * The delay before retry number attempt (1 for the first): initial_ms
 * doubled per attempt up to max_ms, then jittered down by up to half from
 * random ("equal jitter"), so agents that failed together do not retry
 * together yet never retry sooner than half the backoff.
 */
uint64_t backoff_delay_ms(const struct backoff_policy *policy, unsigned int attempt,
			  uint64_t random);

/* xorshift64*: seeded once from getrandom(), not for secrets. */
uint64_t backoff_random(uint64_t *state);

#endif /* KILN_BACKOFF_H */
