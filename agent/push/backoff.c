// SPDX-License-Identifier: Apache-2.0
/* Exponential backoff with equal jitter for upload retries. */
#include "agent/push/backoff.h"

uint64_t backoff_delay_ms(const struct backoff_policy *policy, unsigned int attempt,
			  uint64_t random)
{
	uint64_t delay = policy->initial_ms ? policy->initial_ms : 1;
	uint64_t half;

	for (unsigned int i = 1; i < attempt && delay < policy->max_ms; i++)
		delay *= 2;
	if (delay > policy->max_ms)
		delay = policy->max_ms;
	half = delay / 2;
	return delay - half + random % (half + 1);
}

uint64_t backoff_random(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}
