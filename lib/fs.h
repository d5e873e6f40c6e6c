/* SPDX-License-Identifier: Apache-2.0 */
/* Small file-system helpers shared by the agent's writers. */
#ifndef KILN_FS_H
#define KILN_FS_H

/* mkdir -p, then checks the directory is writable. Returns 0 or a negative errno. */
int fs_make_dirs(const char *path);

#endif /* KILN_FS_H */
