// SPDX-License-Identifier: Apache-2.0
/* Off-CPU task states by name. */
#include <stddef.h>

#include "agent/sampling/offcpu_state.h"

const char *const offcpu_state_names[OFFCPU_STATE__COUNT + 1] = {
	[OFFCPU_STATE_SLEEPING] = "sleeping",
	[OFFCPU_STATE_UNINTERRUPTIBLE] = "uninterruptible",
	[OFFCPU_STATE_PREEMPTED] = "preempted",
	[OFFCPU_STATE__COUNT] = NULL,
};

const char *offcpu_state_name(uint32_t state)
{
	return state < OFFCPU_STATE__COUNT ? offcpu_state_names[state] : "unknown";
}
