/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What /proc says about a process, as the __meta_* labels relabeling reads
 * (relabel.h), read once per process:
 *
 *   __meta_process_pid, __meta_process_ppid, __meta_process_comm
 *   __meta_process_executable_path, __meta_process_executable_name
 *   __meta_process_cmdline         arguments joined by spaces, bounded
 *   __meta_process_cgroup          the unified (v2) path, or v1's
 *   __meta_systemd_unit, __meta_systemd_slice
 *   __meta_container_id, __meta_container_runtime
 *   __meta_kubernetes_pod_uid, __meta_kubernetes_pod_qos_class
 *   __meta_hostname, __meta_kernel_release
 *
 * Every one of those files is the process's to shape (its command line,
 * its name, the cgroup it moved into): each read is bounded, a value is
 * cut at PROCESS_METADATA_VALUE_MAX bytes and what is not printable ASCII
 * becomes '_', so a label never carries a newline or a NUL into a
 * profile or a push protocol. Nothing is followed: the executable's path
 * is readlink's text, not a file kiln opens.
 */
#ifndef KILN_PROCESS_METADATA_H
#define KILN_PROCESS_METADATA_H

#include <stdint.h>

#include "agent/metadata/labels.h"

/* A label value's bound: a command line is cut there. */
#define PROCESS_METADATA_VALUE_MAX 1024

/* The host's part, read once: uname's node name and release. */
struct host_metadata {
	char hostname[256];
	char kernel_release[65];
};

/* Fills host from uname(2). */
void host_metadata_read(struct host_metadata *host);

/*
 * Reads pid's labels from proc_fd (a descriptor of /proc, or of a
 * directory laid out as it is) into labels, which are cleared first; host
 * may be NULL. Returns 0; -ENOENT (or another negative errno) when the
 * process is gone, its stat unreadable: labels are then empty. A file
 * other than stat that cannot be read leaves its labels out.
 */
int process_metadata_read(int proc_fd, uint32_t pid, const struct host_metadata *host,
			  struct label_set *labels);

#endif /* KILN_PROCESS_METADATA_H */
