/* SPDX-License-Identifier: Apache-2.0 */
/* The reason in a BPF verifier log, for a one-line message. */
#ifndef KILN_VERIFIER_LOG_H
#define KILN_VERIFIER_LOG_H

#include <stddef.h>

/*
 * Writes into reason (size bytes, always terminated) the line the verifier
 * gave as its reason: the one after the last instruction it printed
 * ("27: (85) call bpf_...\nsleepable callback in ..."), else the log's
 * first line; "" for an empty log.
 */
void verifier_log__reason(const char *log, char *reason, size_t size);

#endif /* KILN_VERIFIER_LOG_H */
