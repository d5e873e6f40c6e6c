// SPDX-License-Identifier: Apache-2.0
/*
 * symbolizer: runs the fixture programs (tests/fixtures/build.sh), which
 * print their functions' runtime addresses, and resolves those addresses
 * back to names. Build ids and symbol values are checked against readelf
 * and nm, read independently.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/array.h"
#include "symbolizer/symbolizer.h"
#include "tests/unit/symbolizer/fixture_process.h"
#include "tests/unit/symbolizer/symbolizer_stack.h"
#include "tests/unit/testing.h"

/* Resolves addr and returns the function name, or NULL for no symbol or an error. */
static const char *resolve(struct symbolizer *symbolizer, int pid, const struct proc_maps *maps,
			   uint64_t addr, bool is_return_address)
{
	const struct proc_mapping *mapping = procmaps__find(maps, addr);
	struct symbolized_location location = {};
	const struct symbolized_frame *frame;

	if (!mapping || symbolizer__resolve_user(symbolizer, pid, mapping, addr, is_return_address,
						 &location) < 0)
		return NULL;
	if (location.frame_count == 0)
		return NULL;
	frame = &location.frames[location.frame_count - 1];
	/* C names: nothing to demangle, so the display name is the raw one. */
	CHECK_STR(frame->system_name, frame->function);
	return frame->function;
}

/* Every printed function resolves at its start, inside, and as a return address. */
static void check_functions(struct symbolizer *symbolizer, const struct fixture_process *process,
			    size_t expected_count)
{
	const char *name;

	CHECK(process->function_count == expected_count);
	for (size_t i = 0; i < process->function_count; i++) {
		const struct fixture_function *function = &process->functions[i];

		CHECK_STR(resolve(symbolizer, process->pid, &process->maps, function->addr, false),
			  function->name);
		CHECK_STR(resolve(symbolizer, process->pid, &process->maps, function->addr + 5,
				  false),
			  function->name);
		CHECK_STR(
			resolve(symbolizer, process->pid, &process->maps, function->addr + 1, true),
			function->name);
		/* A return address at the very start belongs to the code before it. */
		name = resolve(symbolizer, process->pid, &process->maps, function->addr, true);
		CHECK(!name || strcmp(name, function->name) != 0);
	}
}

/* nm's values and the runtime addresses differ by one load bias per file. */
static void check_against_nm(const struct fixture_process *process, const char *path,
			     const char *prefix, bool expect_zero_bias)
{
	uint64_t bias = 0, value;
	size_t checked = 0;

	for (size_t i = 0; i < process->function_count; i++) {
		const struct fixture_function *function = &process->functions[i];

		/* "fixture_" alone means the program's, not also the library's. */
		if (strncmp(function->name, prefix, strlen(prefix)) != 0 ||
		    (strcmp(prefix, "fixture_") == 0 &&
		     strncmp(function->name, "fixture_lib_", 12) == 0))
			continue;
		CHECK(nm_address(path, function->name, &value) == 0);
		if (checked++ == 0)
			bias = function->addr - value;
		CHECK(function->addr - value == bias);
	}
	CHECK(checked == 3);
	CHECK(expect_zero_bias ? bias == 0 : bias != 0);
}

static void check_build_id(struct symbolizer *symbolizer, const struct fixture_process *process,
			   uint64_t addr, const char *path)
{
	const struct proc_mapping *mapping = procmaps__find(&process->maps, addr);
	const char *build_id = NULL;
	char expected[256];

	CHECK(readelf_build_id(path, expected, sizeof(expected)) == 0);
	CHECK(strlen(expected) == 40);
	CHECK(mapping != NULL);
	if (!mapping)
		return;
	CHECK(symbolizer__build_id(symbolizer, process->pid, mapping, &build_id) == 0);
	CHECK_STR(build_id, expected);
}

static void check_program(const char *name, bool expect_zero_bias)
{
	char path[512];
	struct fixture_process process;
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct symbolizer_stats before, after;
	int pid;

	snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
	CHECK(symbolizer != NULL);
	CHECK(start_fixture(path, &process) == 0);
	if (!symbolizer || !process.function_count)
		goto cleanup;
	CHECK(symbolizer__prepare_process(symbolizer, process.pid, &process.maps) == 0);
	check_functions(symbolizer, &process, 3);
	check_against_nm(&process, path, "fixture_", expect_zero_bias);
	check_build_id(symbolizer, &process, process.functions[0].addr, path);

	/* Gone, but its files are cached. */
	pid = process.pid;
	symbolizer__stats(symbolizer, &before);
	kill(process.pid, SIGKILL);
	waitpid(process.pid, NULL, 0);
	CHECK(kill(pid, 0) < 0 && errno == ESRCH);
	check_functions(symbolizer, &process, 3);
	check_build_id(symbolizer, &process, process.functions[0].addr, path);
	symbolizer__stats(symbolizer, &after);
	CHECK(after.elf_files_opened == before.elf_files_opened);
	CHECK(after.elf_open_errors == 0);
	CHECK(after.user_lookups > before.user_lookups);
	CHECK(symbolizer__prepare_process(symbolizer, pid, &process.maps) == -ESRCH);
cleanup:
	stop_fixture(&process);
	symbolizer__free(symbolizer);
}

static void test_pie(void)
{
	check_program("fixture_pie", false);
}

static void test_non_pie(void)
{
	check_program("fixture_nopie", true);
}

static void test_shared_library(void)
{
	char program[512], library[512];
	struct fixture_process process;
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	const struct proc_mapping *mapping;
	size_t library_functions = 0;

	snprintf(program, sizeof(program), "%s/fixture_uselib", FIXTURE_DIR);
	snprintf(library, sizeof(library), "%s/libfixture.so", FIXTURE_DIR);
	CHECK(start_fixture(program, &process) == 0);
	if (!symbolizer || !process.function_count)
		goto cleanup;
	CHECK(symbolizer__prepare_process(symbolizer, process.pid, &process.maps) == 0);
	check_functions(symbolizer, &process, 6);
	for (size_t i = 0; i < process.function_count; i++) {
		if (strncmp(process.functions[i].name, "fixture_lib_", 12) != 0)
			continue;
		library_functions++;
		mapping = procmaps__find(&process.maps, process.functions[i].addr);
		CHECK(mapping && strcmp(mapping->path, library) == 0);
		/* The library's code does not start at file offset 0. */
		CHECK(mapping && mapping->offset != 0);
		check_build_id(symbolizer, &process, process.functions[i].addr, library);
	}
	CHECK(library_functions == 3);
	check_against_nm(&process, library, "fixture_lib_", false);
	check_against_nm(&process, program, "fixture_", false);
cleanup:
	stop_fixture(&process);
	symbolizer__free(symbolizer);
}

static void test_debuglink(void)
{
	char path[512];
	struct fixture_process process;
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	uint64_t value;

	snprintf(path, sizeof(path), "%s/fixture_debuglink", FIXTURE_DIR);
	/* Stripped: the names exist only in .debug/fixture_debuglink.debug. */
	CHECK(nm_address(path, "fixture_alpha", &value) == -ENOENT);
	CHECK(start_fixture(path, &process) == 0);
	if (symbolizer && process.function_count) {
		CHECK(symbolizer__prepare_process(symbolizer, process.pid, &process.maps) == 0);
		check_functions(symbolizer, &process, 3);
		check_build_id(symbolizer, &process, process.functions[0].addr, path);
	}
	stop_fixture(&process);
	symbolizer__free(symbolizer);
}

/* Resolves fixture_buildid's functions with debug_dir set; returns how many resolved. */
static size_t resolve_with_debug_dir(const char *debug_dir)
{
	const struct debug_search_opts opts = { .debug_dir = debug_dir };
	struct symbolizer_stack stack;
	struct symbolizer *symbolizer = symbolizer_stack__new(&stack, &opts, 0, NULL);
	char path[512];
	struct fixture_process process;
	size_t resolved = 0;

	snprintf(path, sizeof(path), "%s/fixture_buildid", FIXTURE_DIR);
	CHECK(start_fixture(path, &process) == 0);
	CHECK(process.function_count == 3);
	for (size_t i = 0; symbolizer && i < process.function_count; i++) {
		const char *name = resolve(symbolizer, process.pid, &process.maps,
					   process.functions[i].addr + 3, false);

		if (name && strcmp(name, process.functions[i].name) == 0)
			resolved++;
	}
	stop_fixture(&process);
	symbolizer_stack__free(&stack);
	return resolved;
}

static void test_build_id_debug_dir(void)
{
	char dir[] = "/tmp/kiln-test-debug-XXXXXX";
	char path[512], build_id[256], subdir[600], debug_file[1024], source[512];
	uint64_t value;

	snprintf(path, sizeof(path), "%s/fixture_buildid", FIXTURE_DIR);
	snprintf(source, sizeof(source), "%s/buildid-debug/fixture_buildid.debug", FIXTURE_DIR);
	CHECK(nm_address(path, "fixture_alpha", &value) == -ENOENT);
	CHECK(readelf_build_id(path, build_id, sizeof(build_id)) == 0 && strlen(build_id) == 40);
	CHECK(mkdtemp(dir) != NULL);

	/* Without the debug file, the stripped binary has no names for its own functions. */
	CHECK(resolve_with_debug_dir(dir) == 0);

	snprintf(subdir, sizeof(subdir), "%s/.build-id", dir);
	CHECK(mkdir(subdir, 0755) == 0);
	snprintf(subdir, sizeof(subdir), "%s/.build-id/%.2s", dir, build_id);
	CHECK(mkdir(subdir, 0755) == 0);
	snprintf(debug_file, sizeof(debug_file), "%s/%s.debug", subdir, build_id + 2);
	CHECK(copy_file(source, debug_file, 0644) == 0);
	CHECK(resolve_with_debug_dir(dir) == 3);

	unlink(debug_file);
	rmdir(subdir);
	snprintf(subdir, sizeof(subdir), "%s/.build-id", dir);
	rmdir(subdir);
	CHECK(rmdir(dir) == 0);
}

static void test_deleted_binary(void)
{
	char source[512], copy[] = "/tmp/kiln-test-deleted-XXXXXX";
	struct fixture_process process;
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	const struct proc_mapping *mapping;
	int fd;

	snprintf(source, sizeof(source), "%s/fixture_pie", FIXTURE_DIR);
	fd = mkstemp(copy);
	CHECK(fd >= 0);
	close(fd);
	CHECK(copy_file(source, copy, 0755) == 0 && chmod(copy, 0755) == 0);
	CHECK(start_fixture(copy, &process) == 0);
	/* Its path now names nothing: only /proc/PID/map_files reaches the file. */
	CHECK(unlink(copy) == 0);
	procmaps__free(&process.maps);
	CHECK(procmaps__read(process.pid, true, &process.maps) == 0);
	mapping = process.function_count ? procmaps__find(&process.maps, process.functions[0].addr)
					 : NULL;
	CHECK(mapping && mapping->deleted && strcmp(mapping->path, copy) == 0);
	if (symbolizer && mapping)
		check_functions(symbolizer, &process, 3);
	stop_fixture(&process);
	symbolizer__free(symbolizer);
}

/* This process's libc, with .dynsym only on Debian: exported names, aliases resolved. */
static void test_own_libc(void)
{
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	/* libc's own printf and fflush: under ASan the plain names are its interceptors. */
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	uint64_t addr = (uint64_t)(uintptr_t)(libc ? dlsym(libc, "printf") : NULL);
	uint64_t fflush_addr = (uint64_t)(uintptr_t)(libc ? dlsym(libc, "fflush") : NULL);
	struct proc_maps maps = {};
	const struct proc_mapping *mapping;

	CHECK(symbolizer && procmaps__read(getpid(), true, &maps) == 0);
	mapping = procmaps__find(&maps, addr);
	CHECK(mapping && strstr(mapping->path, "libc.so"));
	if (symbolizer && mapping) {
		CHECK_STR(resolve(symbolizer, getpid(), &maps, addr, false), "printf");
		CHECK_STR(resolve(symbolizer, getpid(), &maps, fflush_addr + 3, false), "fflush");
	}
	procmaps__free(&maps);
	symbolizer__free(symbolizer);
	if (libc)
		dlclose(libc);
}

/*
 * ld.so has no symbol for its entry point (its _start, where the kernel
 * starts every dynamically linked program, and the outermost frame while a
 * process is still in the loader): it is named _start all the same, the
 * return address of its call to _dl_start included.
 */
static void test_loader_entry_named(void)
{
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	const Elf64_Ehdr *loader = (const Elf64_Ehdr *)getauxval(AT_BASE);
	struct proc_maps maps = {};
	uint64_t entry;

	CHECK(symbolizer && loader && procmaps__read(getpid(), true, &maps) == 0);
	if (!symbolizer || !loader)
		goto cleanup;
	/* ld.so's first segment is at vaddr 0: its base is its load bias. */
	entry = (uint64_t)(uintptr_t)loader + loader->e_entry;
	CHECK(procmaps__find(&maps, entry) && strstr(procmaps__find(&maps, entry)->path, "ld-"));
	CHECK_STR(resolve(symbolizer, getpid(), &maps, entry, false), "_start");
	CHECK_STR(resolve(symbolizer, getpid(), &maps, entry + 8, true), "_start");
cleanup:
	procmaps__free(&maps);
	symbolizer__free(symbolizer);
}

/*
 * Held open while it lived, a deleted binary of a process that exited since
 * is still read: the capture thread's descriptors stand in for map_files.
 */
static void test_exited_deleted_with_fds(void)
{
	char source[512], copy[] = "/tmp/kiln-test-held-XXXXXX", path[128];
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct fixture_process process;
	struct symbolizer_stats stats;
	bool reaped = false;
	int fds[64], fd;

	snprintf(source, sizeof(source), "%s/fixture_pie", FIXTURE_DIR);
	fd = mkstemp(copy);
	CHECK(fd >= 0);
	close(fd);
	CHECK(copy_file(source, copy, 0755) == 0 && chmod(copy, 0755) == 0);
	CHECK(start_fixture(copy, &process) == 0);
	CHECK(symbolizer && process.function_count == 3 && process.maps.count <= 64);
	if (!symbolizer || process.function_count != 3 || process.maps.count > 64)
		goto cleanup;
	for (size_t i = 0; i < process.maps.count; i++) {
		const struct proc_mapping *mapping = &process.maps.mappings[i];

		snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, process.pid,
			 mapping->start, mapping->end);
		fds[i] = strcmp(mapping->path, copy) == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	}
	CHECK(unlink(copy) == 0);
	kill(process.pid, SIGKILL);
	waitpid(process.pid, NULL, 0);
	reaped = true;
	/* Without the descriptors nothing reaches the file any more. */
	CHECK(symbolizer__prepare_process(symbolizer, process.pid, &process.maps) == -ESRCH);
	CHECK(symbolizer__prepare_process_files(symbolizer, process.pid, &process.maps, fds) == 0);
	for (size_t i = 0; i < process.maps.count; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	check_functions(symbolizer, &process, 3);
	/* Its libraries are still there, by path. */
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.elf_open_errors == 0);
cleanup:
	if (reaped) {
		close(process.stdin_fd);
		process.pid = 0;
	}
	stop_fixture(&process);
	symbolizer__free(symbolizer);
	unlink(copy);
}

static void test_corrupt_files(void)
{
	static const char *const names[] = { "fixture_truncated", "fixture_garbage",
					     "fixture_garbage_ident" };
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct symbolizer_stats stats;

	CHECK(symbolizer != NULL);
	if (!symbolizer)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct symbolized_location location = { .frame_count = 99 };
		struct proc_mapping mapping;
		const char *build_id = "untouched";
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, names[i]);
		CHECK(fake_mapping(path, &mapping) == 0);
		CHECK(symbolizer__resolve_user(symbolizer, getpid(), &mapping, 0x10010, false,
					       &location) == -EINVAL);
		CHECK(location.frame_count == 99);
		symbolizer__stats(symbolizer, &stats);
		CHECK(stats.elf_open_errors == i + 1);
		/* Remembered: no second attempt, no second count. */
		CHECK(symbolizer__build_id(symbolizer, getpid(), &mapping, &build_id) == -EINVAL);
		CHECK_STR(build_id, "untouched");
		symbolizer__stats(symbolizer, &stats);
		CHECK(stats.elf_open_errors == i + 1);
		CHECK(stats.elf_files_opened == 0);
	}
	symbolizer__free(symbolizer);
}

/* Resolves a mapping without a file: a miss, not an error, and no build id. */
static void check_no_file(struct symbolizer *symbolizer, const struct proc_mapping *mapping)
{
	struct symbolized_location location = { .frame_count = 99 };
	const char *build_id = NULL;

	CHECK(symbolizer__resolve_user(symbolizer, getpid(), mapping, mapping->start + 16, false,
				       &location) == 0);
	CHECK(location.frame_count == 0);
	CHECK(symbolizer__build_id(symbolizer, getpid(), mapping, &build_id) == 0);
	CHECK_STR(build_id, "");
}

static void test_no_file(void)
{
	/* Valgrind hides the real vdso, so one stands in. */
	struct proc_mapping vdso = {
		.start = 0x7ffd10000000,
		.end = 0x7ffd10002000,
		.perms = PROC_MAP_READ | PROC_MAP_EXEC,
		.path = "[vdso]",
	};
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct symbolizer_stats stats;
	struct proc_maps maps = {};
	size_t anonymous = 0;

	CHECK(symbolizer && procmaps__read(getpid(), false, &maps) == 0);
	if (!symbolizer)
		goto cleanup;
	check_no_file(symbolizer, &vdso);
	for (size_t i = 0; i < maps.count; i++) {
		if (maps.mappings[i].path[0] == '\0' || maps.mappings[i].path[0] == '[') {
			check_no_file(symbolizer, &maps.mappings[i]);
			anonymous++;
		}
	}
	CHECK(anonymous > 0);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.elf_files_opened == 0 && stats.elf_open_errors == 0);
	CHECK(stats.user_misses == stats.user_lookups && stats.user_lookups == anonymous + 1);
cleanup:
	procmaps__free(&maps);
	symbolizer__free(symbolizer);
}

static void test_kernel(void)
{
	char path[] = "/tmp/kiln-test-kallsyms-XXXXXX";
	static const char text[] = "ffffffff81000000 T _text\n"
				   "ffffffff81000100 T kfunc_one\n"
				   "ffffffff81000200 t kfunc_two\n"
				   "ffffffff81000300 D kdata\n"
				   "ffffffffc0a01000 t mfunc\t[mod]\n";
	struct symbolizer_opts opts = { .kallsyms_path = path };
	struct symbolized_location location = {};
	struct symbolizer *symbolizer;
	struct symbolizer_stats stats;
	int fd = mkstemp(path);

	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	symbolizer = symbolizer__new(&opts);
	CHECK(symbolizer != NULL);
	if (!symbolizer)
		goto cleanup;
	CHECK(symbolizer__resolve_kernel(symbolizer, 0xffffffff81000150, false, &location) == 0);
	CHECK(location.frame_count == 1);
	CHECK_STR(location.frames[0].function, "kfunc_one");
	CHECK_STR(location.frames[0].system_name, "kfunc_one");
	/* A return address right after kfunc_one's last byte is still kfunc_one's call. */
	CHECK(symbolizer__resolve_kernel(symbolizer, 0xffffffff81000200, true, &location) == 0);
	CHECK_STR(location.frames[0].function, "kfunc_one");
	CHECK(symbolizer__resolve_kernel(symbolizer, 0xffffffff81000200, false, &location) == 0);
	CHECK_STR(location.frames[0].function, "kfunc_two");
	CHECK(symbolizer__resolve_kernel(symbolizer, 0xffffffffc0a01010, false, &location) == 0);
	CHECK_STR(location.frames[0].function, "mfunc");
	CHECK(location.frames[0].file == NULL);
	CHECK(symbolizer__resolve_kernel(symbolizer, 0xffffffff81000310, false, &location) == 0);
	CHECK(location.frame_count == 0);
	symbolizer__stats(symbolizer, &stats);
	CHECK(stats.kernel_lookups == 5 && stats.kernel_misses == 1);
	/* A miss rereads kallsyms at most once a minute. */
	CHECK(stats.kallsyms_reloads == 0);
	symbolizer__free(symbolizer);

	/* A kallsyms that cannot be read is an error, not a miss. */
	opts.kallsyms_path = "/nonexistent/kallsyms";
	symbolizer = symbolizer__new(&opts);
	location.frame_count = 99;
	CHECK(symbolizer && symbolizer__resolve_kernel(symbolizer, 0xffffffff81000150, false,
						       &location) == -ENOENT);
	CHECK(location.frame_count == 99);
cleanup:
	symbolizer__free(symbolizer);
	unlink(path);
}

static void test_kernel_real(void)
{
	struct symbolizer *symbolizer = symbolizer__new(NULL);
	struct symbolized_location location = {};
	char line[512];
	uint64_t addr = 0;
	FILE *file = fopen("/proc/kallsyms", "r");

	/* The address kallsyms lists for schedule, read independently. */
	while (file && fgets(line, sizeof(line), file)) {
		if (strstr(line, " T schedule\n")) {
			addr = strtoull(line, NULL, 16);
			break;
		}
	}
	if (file)
		fclose(file);
	CHECK(addr != 0 && symbolizer != NULL);
	if (symbolizer && addr) {
		CHECK(symbolizer__resolve_kernel(symbolizer, addr + 4, false, &location) == 0);
		CHECK(location.frame_count == 1);
		CHECK_STR(location.frames[0].function, "schedule");
	}
	symbolizer__free(symbolizer);
}

TEST_MAIN("symbolizer", TEST(test_pie), TEST(test_non_pie), TEST(test_shared_library),
	  TEST(test_debuglink), TEST(test_build_id_debug_dir),
	  TEST_ROOT(test_deleted_binary, "a deleted file is reached through /proc/PID/map_files"),
	  TEST_ROOT(test_exited_deleted_with_fds, "/proc/PID/map_files"), TEST(test_own_libc),
	  TEST(test_loader_entry_named), TEST(test_corrupt_files), TEST(test_no_file),
	  TEST(test_kernel),
	  TEST_ROOT(test_kernel_real, "kallsyms shows addresses only with CAP_SYSLOG"))
