// SPDX-License-Identifier: Apache-2.0
/* Loads the CPU sampler, with sampling's shared maps, and attaches it per CPU. */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gelf.h>
#include <libelf.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/sampling/cpu_profiler.h"
#include "agent/sampling/features.h"
#include "agent/sampling/sampler_counters.h"
#include "agent/sampling/sampling.h"
#include "bpf/cpu.skel.h"
#include "lib/array.h"
#include "lib/counters.h"
#include "lib/log.h"

struct cpu_profiler {
	struct sampler sampler;
	struct cpu_bpf *skel;
	struct bpf_link **links; /* one per possible CPU, NULL when not attached */
	int possible_cpus;
	unsigned int attached_cpus;
	uint64_t frequency_hz;
	uint64_t stats_at_window_start[CPU_STAT__COUNT];
	bool loader_fill; /* fill_at_loader is loaded */
	struct loader {
		uint32_t dev_major, dev_minor;
		uint64_t inode;
		struct bpf_link *link; /* NULL: refused, not tried again */
	} loaders[CPU_PROFILER_MAX_LOADERS];
	size_t loader_count;
	struct cpu_profiler_loader_stats loader_stats;
};

static int read_online_cpus(bool *online, int possible)
{
	FILE *file = fopen("/sys/devices/system/cpu/online", "re");
	char list[4096];
	char *cursor;
	int err = 0;

	if (!file)
		return -errno;
	if (!fgets(list, sizeof(list), file)) {
		err = -EIO;
		goto cleanup;
	}
	for (cursor = list; *cursor && *cursor != '\n';) {
		char *end;
		long first = strtol(cursor, &end, 10), last = first;

		if (end == cursor) {
			err = -EINVAL;
			goto cleanup;
		}
		if (*end == '-')
			last = strtol(end + 1, &end, 10);
		for (long cpu = first; cpu <= last && cpu < possible; cpu++)
			online[cpu] = true;
		cursor = *end == ',' ? end + 1 : end;
	}
cleanup:
	fclose(file);
	return err;
}

static int attach_cpu(struct cpu_profiler *profiler, int cpu)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = profiler->frequency_hz,
	};
	struct bpf_link *link;
	int fd, err;

	fd = syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	link = bpf_program__attach_perf_event(profiler->skel->progs.sample_cpu, fd);
	if (!link) {
		err = -errno;
		close(fd);
		return err;
	}
	/* The link owns fd from here on: bpf_link__destroy closes it. */
	profiler->links[cpu] = link;
	profiler->attached_cpus++;
	return 0;
}

static struct cpu_profiler *profiler_of(const struct sampler *sampler)
{
	return (struct cpu_profiler *)((char *)sampler - offsetof(struct cpu_profiler, sampler));
}

static struct window_buffers buffers_of(struct cpu_profiler *profiler)
{
	return WINDOW_BUFFERS_OF(profiler->skel, CPU_STAT__COUNT, profiler->stats_at_window_start);
}

/*
 * Where the loader's r_state is, from _dl_debug_state's own address: the
 * distance from that function to glibc's _r_debug (both in ld.so's
 * dynamic symbols) plus r_state's offset in it, the cookie fill_at_loader
 * reads it by. 0, and every call fills, when the file has no such pair
 * (musl's loader, a stripped copy).
 */
static int64_t loader_state_cookie(const char *path)
{
	uint64_t hook = 0, debug = 0;
	Elf_Scn *scn = NULL;
	int64_t cookie = 0;
	Elf *elf;
	int fd;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	while (elf && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_DYNSYM || !shdr.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < shdr.sh_size / shdr.sh_entsize; i++) {
			const char *name;
			GElf_Sym sym;

			if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(elf, shdr.sh_link, sym.st_name);
			if (!name)
				continue;
			if (!strcmp(name, "_dl_debug_state") &&
			    GELF_ST_TYPE(sym.st_info) == STT_FUNC)
				hook = sym.st_value;
			else if (!strcmp(name, "_r_debug") &&
				 GELF_ST_TYPE(sym.st_info) == STT_OBJECT &&
				 sym.st_size >= LOADER_R_STATE_OFFSET + sizeof(uint32_t))
				debug = sym.st_value;
		}
		break;
	}
	/* A hostile file's values only misplace a read of its own processes' memory. */
	if (hook && debug)
		cookie = (int64_t)(debug + LOADER_R_STATE_OFFSET - hook);
	elf_end(elf);
	close(fd);
	return cookie;
}

int cpu_profiler__watch_loader(struct cpu_profiler *profiler, uint32_t dev_major,
			       uint32_t dev_minor, uint64_t inode, const char *path)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = "_dl_debug_state");
	struct loader *loader;
	int err;

	if (!profiler->loader_fill)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < profiler->loader_count; i++) {
		loader = &profiler->loaders[i];
		if (loader->dev_major == dev_major && loader->dev_minor == dev_minor &&
		    loader->inode == inode)
			return loader->link ? 0 : -ENOENT;
	}
	if (profiler->loader_count == CPU_PROFILER_MAX_LOADERS) {
		if (!profiler->loader_stats.over_limit++)
			log_warn("%s: more than %d dynamic loaders: processes of this one and "
				 "later ones are unwound by frame pointers until their mappings "
				 "are read",
				 path, CPU_PROFILER_MAX_LOADERS);
		return -ENOSPC;
	}
	loader = &profiler->loaders[profiler->loader_count++];
	*loader = (struct loader){ .dev_major = dev_major, .dev_minor = dev_minor, .inode = inode };
	/*
	 * With task works, a sample before the list is consistent fills its
	 * process itself, and the hook's first call (RT_ADD) is skipped; without
	 * them, that fill is what unwinds the loader's own relocation work.
	 */
	if (profiler->skel->rodata->fill_in_kernel)
		opts.bpf_cookie = (uint64_t)loader_state_cookie(path);
	loader->link = bpf_program__attach_uprobe_opts(profiler->skel->progs.fill_at_loader, -1,
						       path, 0, &opts);
	if (!loader->link) {
		err = -errno;
		profiler->loader_stats.refused++;
		log_debug("%s: no uprobe on its _dl_debug_state: %s, ignoring", path,
			  strerror(-err));
		return err;
	}
	profiler->loader_stats.watched++;
	log_debug("%s (%u:%u inode %" PRIu64 "): new processes filled at its _dl_debug_state%s",
		  path, dev_major, dev_minor, inode,
		  opts.bpf_cookie ? ", when consistent" : ", at every call");
	return 0;
}

void cpu_profiler__loader_stats(const struct cpu_profiler *profiler,
				struct cpu_profiler_loader_stats *ret_stats)
{
	*ret_stats = profiler->loader_stats;
}

#define LOADER_STATS(field) COUNTER_FIELD(0, struct cpu_profiler_loader_stats, field)

static const struct counter loader_counters[] = {
	{ .name = "kiln_unwind_loaders_watched",
	  .help = "Dynamic loader files whose _dl_debug_state fills new processes' mappings",
	  LOADER_STATS(watched),
	  .kind = COUNTER_GAUGE,
	  .text = "% watched" },
	{ .name = "kiln_unwind_loaders_refused_total",
	  .help = "Dynamic loader files without a uprobe: no _dl_debug_state, or refused",
	  LOADER_STATS(refused),
	  .text = "% refused" },
	{ .name = "kiln_unwind_loaders_over_limit_total",
	  .help = "Dynamic loader files not watched: more than CPU_PROFILER_MAX_LOADERS",
	  LOADER_STATS(over_limit),
	  .text = "% over the limit",
	  .alarm = true },
};

const struct counter_line cpu_profiler_loader_counter_line = {
	.prefix = "dynamic loaders",
	.counters = loader_counters,
	.count = COUNTER_COUNT_OF(loader_counters),
	.level = LOG_DEBUG,
};

static int find_own_loader(struct dl_phdr_info *info, size_t size, void *ctx)
{
	const char **ret_path = ctx;

	(void)size;
	if (info->dlpi_addr != getauxval(AT_BASE) || !info->dlpi_name[0])
		return 0;
	*ret_path = info->dlpi_name;
	return 1;
}

/* kiln's own dynamic loader: the host's, most processes' first. */
static void watch_own_loader(struct cpu_profiler *profiler)
{
	const char *path = NULL;
	struct stat st;

	if (!getauxval(AT_BASE) || !dl_iterate_phdr(find_own_loader, &path) || !path)
		return; /* linked statically */
	if (stat(path, &st)) {
		log_debug("%s: %s, ignoring", path, strerror(errno));
		return;
	}
	cpu_profiler__watch_loader(profiler, major(st.st_dev), minor(st.st_dev), st.st_ino, path);
}

static int start(struct sampler *sampler)
{
	struct cpu_profiler *profiler = profiler_of(sampler);
	int err;

	if (profiler->loader_fill)
		watch_own_loader(profiler);
	err = cpu_profiler__attach_new_cpus(profiler);
	if (err < 0)
		return err;
	return profiler->attached_cpus ? 0 : -ENODEV;
}

int cpu_profiler__attach_new_cpus(struct cpu_profiler *profiler)
{
	bool *online = calloc(profiler->possible_cpus, sizeof(*online));
	int attached = 0, err;

	if (!online)
		return -ENOMEM;
	err = read_online_cpus(online, profiler->possible_cpus);
	if (err)
		goto cleanup;
	for (int cpu = 0; cpu < profiler->possible_cpus; cpu++) {
		if (!online[cpu] || profiler->links[cpu])
			continue;
		err = attach_cpu(profiler, cpu);
		if (err == -ENODEV) {
			/* Went offline between reading the list and opening the event. */
			err = 0;
			continue;
		}
		if (err == -EINVAL && attached == 0 && profiler->attached_cpus == 0) {
			log_error("cpu %d: perf_event_open refused %" PRIu64
				  " Hz: above kernel.perf_event_max_sample_rate?",
				  cpu, profiler->frequency_hz);
			goto cleanup;
		}
		if (err) {
			log_error("cpu %d: attaching the sampler: %s", cpu, strerror(-err));
			goto cleanup;
		}
		attached++;
	}
	err = attached;
cleanup:
	free(online);
	return err;
}
static int end_window(struct sampler *sampler, struct sample_window *ret_window)
{
	const struct window_buffers buffers = buffers_of(profiler_of(sampler));

	return window_buffers__end_window(&buffers, ret_window);
}

static int bpf_run_stats(const struct sampler *sampler, uint64_t *ret_run_time_ns,
			 uint64_t *ret_run_count)
{
	return bpf_program_run_stats(profiler_of(sampler)->skel->progs.sample_cpu, ret_run_time_ns,
				     ret_run_count);
}

static void profiler_free(struct cpu_profiler *profiler)
{
	if (!profiler)
		return;
	for (int cpu = 0; profiler->links && cpu < profiler->possible_cpus; cpu++)
		bpf_link__destroy(profiler->links[cpu]);
	for (size_t i = 0; i < profiler->loader_count; i++)
		bpf_link__destroy(profiler->loaders[i].link);
	free(profiler->links);
	cpu_bpf__destroy(profiler->skel);
	free(profiler);
}

static void sampler_free(struct sampler *sampler)
{
	profiler_free(profiler_of(sampler));
}

static const struct sampler_ops cpu_sampler_ops = {
	.name = "CPU",
	.start = start,
	.end_window = end_window,
	.bpf_run_stats = bpf_run_stats,
	.free = sampler_free,
};

/* How new processes' first samples are unwound, said once at start. */
static void log_fill_mode(const struct cpu_profiler *profiler, const struct cpu_profiler_opts *opts,
			  const char *no_fill_reason, const char *no_loader_reason)
{
	const struct cpu_bpf *skel = profiler->skel;

	/* Task works fill every process; the loader's hook only spares them some. */
	if (!opts->dwarf_unwinding || skel->rodata->fill_in_kernel)
		return;
	if (!opts->kernel_fill) {
		log_info("new processes are unwound with frame pointers until their mappings are "
			 "read: --no-kernel-fill");
		return;
	}
	if (profiler->loader_fill) {
		log_info("new processes' mappings are filled at their dynamic loader's hook only "
			 "(static binaries and samples taken before it are unwound with frame "
			 "pointers until their mappings are read): the kernel refuses a BPF task "
			 "work in a perf-event program: %s",
			 no_fill_reason);
		return;
	}
	log_info("new processes are unwound with frame pointers until their mappings are read: "
		 "no task work in a perf-event program: %s; no fill at the dynamic loader: %s",
		 no_fill_reason, no_loader_reason);
}

struct cpu_profiler *cpu_profiler__new(const struct cpu_profiler_opts *opts)
{
	struct cpu_profiler *profiler;
	struct shared_maps shared;
	struct window_buffers buffers;
	const char *no_fill_reason = "--no-kernel-fill", *no_loader_reason = "--no-kernel-fill";
	struct cpu_bpf *skel;
	int err;

	profiler = calloc(1, sizeof(*profiler));
	if (!profiler)
		return NULL;
	profiler->sampler.ops = &cpu_sampler_ops;
	profiler->sampler.counter_lines = cpu_counter_lines;
	profiler->sampler.counter_line_count = cpu_counter_line_count - (!opts->dwarf_unwinding ? 3
									 : opts->python_frames	? 0
											       : 1);
	profiler->frequency_hz = opts->frequency_hz;
	profiler->possible_cpus = libbpf_num_possible_cpus();
	if (profiler->possible_cpus <= 0) {
		err = profiler->possible_cpus ? profiler->possible_cpus : -EINVAL;
		goto fail;
	}
	profiler->links = calloc(profiler->possible_cpus, sizeof(*profiler->links));
	if (!profiler->links) {
		err = -ENOMEM;
		goto fail;
	}

	skel = profiler->skel = cpu_bpf__open();
	if (!skel) {
		err = -errno;
		goto fail;
	}
	skel->rodata->filter_pids = sampling__filters_pids(opts->sampling);
	skel->rodata->dwarf_unwinding = opts->dwarf_unwinding;
	if (opts->dwarf_unwinding && opts->kernel_fill) {
		skel->rodata->fill_in_kernel =
			!features__probe(FEATURE_TASK_WORK_IN_PERF_EVENT, &no_fill_reason);
		profiler->loader_fill =
			!features__probe(FEATURE_VMAS_IN_SLEEPABLE_UPROBE, &no_loader_reason);
	}
	bpf_program__set_autoload(skel->progs.fill_at_loader, profiler->loader_fill);
	log_fill_mode(profiler, opts, no_fill_reason, no_loader_reason);
	buffers = buffers_of(profiler);
	window_buffers__set_sizes(&buffers, opts->max_stacks, opts->max_sample_keys);
	shared = SHARED_MAPS_OF(skel);
	err = sampling__load_program(opts->sampling, skel->skeleton, &shared);
	if (err)
		goto fail;
	window_buffers__start(&buffers);
	return profiler;
fail:
	profiler_free(profiler);
	errno = -err;
	return NULL;
}

struct sampler *cpu_profiler__sampler(struct cpu_profiler *profiler)
{
	return &profiler->sampler;
}

unsigned int cpu_profiler__cpu_count(const struct cpu_profiler *profiler)
{
	return profiler->attached_cpus;
}
