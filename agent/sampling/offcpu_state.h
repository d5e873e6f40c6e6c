/* SPDX-License-Identifier: Apache-2.0 */
/* Names of the off-CPU task states (enum offcpu_state), as users read and write them. */
#ifndef KILN_OFFCPU_STATE_H
#define KILN_OFFCPU_STATE_H

#include <linux/types.h>
#include <stdint.h>

#include "bpf/cpu.h"

/*
 * One word per enum offcpu_state, NULL-terminated: what --off-cpu-states
 * takes and what the off-CPU profile's "state" label holds.
 */
extern const char *const offcpu_state_names[OFFCPU_STATE__COUNT + 1];

/* The name of state; "unknown" for a value past the enum. */
const char *offcpu_state_name(uint32_t state);

#endif /* KILN_OFFCPU_STATE_H */
