// SPDX-License-Identifier: Apache-2.0
/* kiln: the daemon's main loop: sample, end a window, symbolize, write, repeat. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/profile/symbol_cache.h"
#include "agent/profile/window_profile.h"
#include "agent/push/curl_api.h"
#include "agent/sampling/cpu_profiler.h"
#include "agent/sampling/features.h"
#include "lib/log.h"
#include "agent/sampling/offcpu_profiler.h"
#include "agent/sampling/sampling.h"
#include "agent/config.h"
#include "agent/http/http_endpoint.h"
#include "agent/http/metrics.h"
#include "agent/http/profile_windows.h"
#include "agent/metadata/kubernetes.h"
#include "agent/metadata/labels.h"
#include "agent/metadata/process_labels.h"
#include "agent/options.h"
#include "agent/output/profile_name.h"
#include "agent/report.h"
#include "agent/output/retention.h"
#include "agent/process/kernel_maps.h"
#include "agent/process/process_capture.h"
#include "agent/process/process_table.h"
#include "agent/unwind/unwind_maps.h"
#include "agent/push/otlp.h"
#include "agent/push/uploader.h"
#include "lib/array.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/hashmap.h"
#include "agent/python/python_code.h"
#include "agent/python/python_process.h"
#include "symbolizer/debug_search.h"
#include "symbolizer/elf_cache.h"
#include "symbolizer/symbolizer.h"

#define POLL_INTERVAL_MS 200
/* At start, how long the first list of the node's pods is waited for. */
#define KUBERNETES_START_WAIT_MS 3000
/* Captures waiting for the main thread, and the files they hold open. */
#define MAX_PENDING_CAPTURES 1024
#define MAX_HELD_FILES 256
/* Hard limit on spool files, whatever --spool-max-bytes allows (inodes, directory size). */
#define SPOOL_MAX_FILES 100000
/* CPU and off-CPU. */
#define MAX_SAMPLERS 2
/* How long reading the running processes may delay the start of sampling. */
#define STARTUP_CAPTURE_NS (10ULL * 1000 * 1000 * 1000)

/*
 * --max-memory's shares, in eighths. DWARF takes half: a distribution's
 * line tables are the largest thing kiln reads (CPython's alone, built
 * with -g, holds 17 MiB when every unit is read). The symbol indexes of
 * the cached ELF files take a quarter (16 bytes a symbol: node's 100k in
 * 1.6 MiB), perf maps the rest (one line's range and name, 60 bytes
 * typically: node's map of a busy script is 6k lines). The default 24 MiB
 * keeps a host with CPython, node, a JVM and coreutils churn under 40 MiB
 * of RSS: kiln's own code and libraries, kallsyms (3 MiB) and libbpf come
 * on top. BPF maps (--max-unwind-memory, stacks) are not in RSS and not
 * in this budget.
 */
#define DWARF_SHARE 4
#define ELF_SYMBOLS_SHARE 2
#define PERF_MAPS_SHARE 2
_Static_assert(DWARF_SHARE + ELF_SYMBOLS_SHARE + PERF_MAPS_SHARE == 8, "shares add up");

static uint64_t memory_share(const struct kiln_options *opts, unsigned int eighths)
{
	return opts->max_memory / 8 * eighths;
}

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested; /* SIGHUP: read --config's rules again */

struct agent {
	struct kiln_options opts;
	size_t heap_free_after_trim; /* mallinfo2's fordblks after the last malloc_trim */
	struct debug_search *debug_search;
	struct elf_cache *elf_files; /* read by the symbolizer and the unwind tables */
	struct symbolizer *symbolizer;
	struct symbol_history *symbol_history; /* names kept from window to window */
	struct process_table *processes;
	struct process_capture *capture;
	struct sampling *sampling; /* the maps and process events the samplers share */
	struct sampler *samplers[MAX_SAMPLERS]; /* the enabled ones: CPU, off-CPU */
	unsigned int sampler_count;
	struct cpu_profiler *profiler; /* NULL: --no-cpu */
	struct unwind_maps *unwind;
	struct python_processes *python; /* NULL: --python=off or --unwind fp */
	struct python_code_cache *python_code;
	struct kernel_maps_sweep replaced_sweep; /* images exec replaced, kept a window */
	struct offcpu_profiler *offcpu; /* NULL: no --off-cpu */
	struct process_labels *labels; /* NULL: no --config, no labels of processes */
	struct host_metadata host;
	struct kubernetes *kubernetes; /* NULL: not in a pod, or --kubernetes=off */
	int proc_fd;
	uint64_t exclusions_failed; /* dropped processes BPF could not be told to skip */
	uint64_t config_reloads, config_reload_failures; /* SIGHUP */
	bool warned_labels_cut; /* labels too many or too long to push: said once */
	struct reporter *reporter; /* the counters' log lines */
	struct metrics *metrics; /* the same counters for /metrics; NULL without the endpoint */
	struct http_endpoint *http; /* NULL: no --http-address, or it could not bind */
	struct profile_windows *windows; /* what the page serves: --output-dir's, or kept here */
	struct uploader *uploader; /* NULL: no --remote-store */
	const struct push_protocol *push_protocol; /* with the uploader */
	struct output_retention *retention; /* NULL: no --output-dir, or no bound on it */
	int retention_error_reported;
	char hostname[256];
	char destination[PATH_MAX]; /* where profiles go, for messages */
	uint64_t windows_written;
};

static void on_signal(int signo)
{
	if (signo == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

/* CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN, in the effective set. */
static bool has_privileges(void)
{
	FILE *status = fopen("/proc/self/status", "re");
	unsigned long long caps = 0;
	char line[256];

	if (!status)
		return geteuid() == 0;
	while (fgets(line, sizeof(line), status))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(status);
	return (caps & (1ULL << 21)) || ((caps & (1ULL << 38)) && (caps & (1ULL << 39)));
}

/* On sampling's events thread (or the main one, when it flushes): reads the process at once. */
static void on_process_event(void *ctx, const struct process_event *event)
{
	struct agent *agent = ctx;

	process_capture__on_event(agent->capture, event);
}

/*
 * A process read at its exec: its files are opened (through the
 * descriptors held for them) and their tables built, so that the kernel
 * fills its mappings at its first sample. It joins the process table when
 * that sample announces it, with its libraries mapped by then.
 */
static void prepare_exec_files(struct agent *agent, struct captured_process *process)
{
	if (!agent->unwind)
		return;
	symbolizer__prepare_process_files(agent->symbolizer, (int)process->pid, &process->maps,
					  process->fds);
	unwind_maps__prepare_files(agent->unwind, process->pid, &process->maps);
}

/*
 * A relabel rule dropped pid: BPF skips its samples from now on. Past the
 * map's bound it is still sampled, and its samples left out of profiles.
 */
static void labels_on_dropped(void *ctx, uint32_t pid)
{
	struct agent *agent = ctx;
	int err = sampling__exclude_process(agent->sampling, pid, true);

	if (!err) {
		log_debug("pid %u: dropped by relabel_configs, no longer sampled", pid);
		return;
	}
	if (!agent->exclusions_failed++)
		log_warn("pid %u: dropped by relabel_configs, but still sampled (its samples "
			 "left out): %s%s",
			 pid, strerror(-err),
			 err == -E2BIG ? ": the excluded-process map is full" : "");
}

/* Kept after all (new rules, or read again): sampled again. */
static void labels_on_undropped(void *ctx, uint32_t pid)
{
	struct agent *agent = ctx;

	sampling__exclude_process(agent->sampling, pid, false);
}

/* The mapping of the file pid runs (its path as /proc/PID/exe reads), or NULL. */
static const struct proc_mapping *executable_mapping(const struct proc_maps *maps,
						     const char *exe_path)
{
	size_t length = strlen(exe_path);
	const size_t deleted = strlen(" (deleted)");

	if (length > deleted && !strcmp(exe_path + length - deleted, " (deleted)"))
		length -= deleted;
	for (size_t i = 0; i < maps->count; i++) {
		const struct proc_mapping *mapping = &maps->mappings[i];

		if (strlen(mapping->path) == length && !memcmp(mapping->path, exe_path, length))
			return mapping;
	}
	return NULL;
}

/* The build id of pid's executable, from the file kiln holds open for it. */
static int add_build_id(struct agent *agent, uint32_t pid, struct label_set *labels)
{
	const char *exe = label_set__get(labels, "__meta_process_executable_path");
	const struct proc_maps *maps = process_table__maps(agent->processes, pid);
	const struct proc_mapping *mapping;
	const char *build_id = "";
	int err;

	if (!exe)
		return 0; /* a kernel thread: nothing to read */
	if (!maps)
		return PROCESS_LABELS_INCOMPLETE; /* its mappings are read later */
	mapping = executable_mapping(maps, exe);
	if (!mapping)
		return 0;
	err = symbolizer__build_id(agent->symbolizer, (int)pid, mapping, &build_id);
	if (err)
		return err;
	return label_set__set(labels, "__meta_process_executable_build_id", build_id);
}

/*
 * What /proc does not say, added to pid's __meta_* labels before the rules
 * run: its executable's build id, and what the Kubernetes API says of its pod.
 */
static int annotate_process(void *ctx, uint32_t pid, struct label_set *labels)
{
	struct agent *agent = ctx;
	int err = add_build_id(agent, pid, labels);
	int pod = agent->kubernetes ? kubernetes__annotate(agent->kubernetes, labels) : 0;

	if (err < 0 || pod < 0)
		return err < 0 ? err : pod;
	return err || pod ? PROCESS_LABELS_INCOMPLETE : 0;
}

/* Reads pid's labels now, while it most likely still lives; BPF skips it if a rule dropped it. */
static void read_labels(struct agent *agent, uint32_t pid)
{
	const struct label_set *labels;

	if (agent->labels)
		process_labels__get(agent->labels, pid, &labels);
}

/* pid's mappings were just read: labels read before them get the build id now. */
static void refresh_labels(struct agent *agent, uint32_t pid)
{
	if (agent->labels)
		process_labels__refresh(agent->labels, pid);
}

static void read_labels_of(void *ctx, uint32_t pid)
{
	read_labels(ctx, pid);
}

/* The settings of two readings of one file are the same, in the same order. */
static bool same_settings(const struct kiln_config *a, const struct kiln_config *b)
{
	if (a->setting_count != b->setting_count)
		return false;
	for (size_t i = 0; i < a->setting_count; i++)
		if (strcmp(a->settings[i].name, b->settings[i].name) ||
		    strcmp(a->settings[i].value, b->settings[i].value))
			return false;
	return true;
}

/*
 * SIGHUP: --config's relabel_configs are read again and run again on every
 * process kiln knows. A file that no longer reads keeps the rules in use.
 * Flags' settings are not applied again: they are in use by then.
 */
static void reload_config(struct agent *agent)
{
	struct kiln_config *config = agent->opts.config, *fresh;
	struct relabel_rules *rules;
	char error[1024];

	reload_requested = 0;
	if (!config) {
		log_warn("SIGHUP: kiln runs without --config, nothing to read again");
		return;
	}
	if (config_load(config->path, &fresh, error, sizeof(error))) {
		agent->config_reload_failures++;
		log_warn("SIGHUP: %s; keeping the rules read before", error);
		return;
	}
	if (!same_settings(config, fresh))
		log_warn("SIGHUP: %s: settings other than relabel_configs changed; they take "
			 "effect when kiln restarts",
			 config->path);
	/* The running config takes the new rules; the old go with fresh. */
	rules = fresh->rules;
	fresh->rules = config->rules;
	config->rules = rules;
	process_labels__set_rules(agent->labels, config->rules);
	config_free(fresh);
	process_table__for_each(agent->processes, read_labels_of, agent);
	agent->config_reloads++;
	log_info("%s: read again, %zu relabel_configs rules", config->path,
		 relabel_rules__count(config->rules));
}

/* A dynamic loader by its file name: glibc's ld-linux*.so*, musl's ld-musl-*.so*. */
static bool is_loader_path(const char *path)
{
	const char *name = strrchr(path, '/');

	name = name ? name + 1 : path;
	return !strncmp(name, "ld-linux", strlen("ld-linux")) ||
	       !strncmp(name, "ld-musl-", strlen("ld-musl-"));
}

/*
 * A process's dynamic loader (a container's own, most often) fills the
 * mappings of the next processes that run it, from their start. Through
 * the file held open for it: its path may name another file in kiln's
 * mount namespace, or none.
 */
static void watch_loaders(struct agent *agent, const struct captured_process *process)
{
	char path[64];

	if (!agent->profiler || !process->fds)
		return;
	for (size_t i = 0; i < process->maps.count && i < process->fd_count; i++) {
		const struct proc_mapping *mapping = &process->maps.mappings[i];

		if (process->fds[i] < 0 || !is_loader_path(mapping->path))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", process->fds[i]);
		if (cpu_profiler__watch_loader(agent->profiler, mapping->dev_major,
					       mapping->dev_minor, mapping->inode,
					       path) == -EOPNOTSUPP)
			return;
	}
}

static void on_captured(void *ctx, struct captured_process *process)
{
	struct agent *agent = ctx;
	int err;

	watch_loaders(agent, process);

	if (process->at_exec) {
		/* Another program now: its labels are read again. */
		if (agent->labels)
			process_labels__forget(agent->labels, process->pid);
		prepare_exec_files(agent, process);
		return;
	}
	err = process_table__insert(agent->processes, process->pid, &process->maps, process->fds);
	if (err)
		log_debug("pid %u: keeping its mappings: %s, ignoring", process->pid,
			  strerror(-err));
	read_labels(agent, process->pid);
	refresh_labels(agent, process->pid);
}

/* Takes what the capture thread read: every process BPF announced so far. */
static void take_captures(struct agent *agent)
{
	process_capture__drain(agent->capture, on_captured, agent);
}

/* Process listeners: the symbolizer opens a process's files and forgets its perf map. */
static void symbolizer_on_mappings_changed(void *ctx, const struct process_change *change)
{
	/* Failures of single files are counted by the symbolizer. */
	symbolizer__prepare_process_files(ctx, (int)change->pid, change->maps, change->fds);
}

static void symbolizer_on_removed(void *ctx, uint32_t pid)
{
	symbolizer__forget_process(ctx, (int)pid);
}

static void labels_on_removed(void *ctx, uint32_t pid)
{
	struct agent *agent = ctx;

	/* Only a dropped process is in BPF's excluded set: no map call for the others. */
	if (process_labels__forget(agent->labels, pid))
		labels_on_undropped(agent, pid);
}

/* A sampled process gone before its maps were read: the kernel's record of them. */
static int read_exited_maps(void *ctx, uint32_t pid, struct proc_maps *ret_maps)
{
	struct agent *agent = ctx;

	if (!agent->sampling)
		return -ENOENT;
	return kernel_maps__read(sampling__process_unwind_fd(agent->sampling), pid, ret_maps);
}

/* The image a process's exec replaced: its samples before the exec are there. */
static int read_replaced_maps(void *ctx, uint32_t pid, struct proc_maps *ret_maps)
{
	struct agent *agent = ctx;

	if (!agent->sampling)
		return -ENOENT;
	return kernel_maps__read(sampling__replaced_images_fd(agent->sampling), pid, ret_maps);
}

/* ... whose files are named by the ones kiln opened with the same device and inode. */
static int find_opened_file(void *ctx, const struct proc_mapping *mapping, const char **ret_path)
{
	struct agent *agent = ctx;

	return elf_cache__find_path(agent->elf_files, mapping->dev_major, mapping->dev_minor,
				    mapping->inode, ret_path);
}

/*
 * Processes went at the window's end: those whose tables waited for room
 * that evicting the departed ones' tables can make are read again, as if
 * BPF had asked, so their tables are built within the next window.
 */
static void retry_deferred_tables(struct agent *agent)
{
	uint32_t pids[64];
	size_t count;

	if (!agent->unwind || !agent->capture)
		return;
	count = unwind_maps__take_waiting(agent->unwind, pids, ARRAY_SIZE(pids));
	for (size_t i = 0; i < count; i++)
		process_capture__on_event(agent->capture,
					  &(struct process_event){
						  .pid = pids[i],
						  .kind = PROCESS_EVENT_MAPPINGS_CHANGED,
					  });
}

/* Sampling forgets it too, so the process's next sample announces it again. */
static void sampling_on_removed(void *ctx, uint32_t pid)
{
	struct agent *agent = ctx;

	if (agent->sampling) /* NULL once sampling stopped, as the table empties */
		sampling__forget_process(agent->sampling, pid);
}

static int add_process_listener(struct agent *agent, const struct process_listener *listener)
{
	int err = process_table__add_listener(agent->processes, listener);

	if (err)
		log_error("listening to the process table: %s", strerror(-err));
	return err;
}

/*
 * The Kubernetes API's pods, for relabeling: in a pod (auto) or when told
 * (on, which fails kiln when it cannot). Needs libcurl.
 */
static int start_kubernetes(struct agent *agent)
{
	const bool required = agent->opts.kubernetes == 1;
	struct kubernetes_opts opts = { .max_pods = KUBERNETES_MAX_PODS };
	char error[PATH_MAX + 256];
	int err;

	if (!agent->labels || agent->opts.kubernetes == 2)
		return 0;
	opts.node_name = agent->opts.node_name ?: getenv("NODE_NAME");
	if (!opts.node_name || !*opts.node_name)
		opts.node_name = agent->hostname;
	err = kubernetes_in_cluster(agent->opts.kubernetes_api, agent->opts.kubernetes_sa_dir,
				    &opts, error, sizeof(error));
	if (err) {
		if (required)
			log_error("--kubernetes=on: %s", error);
		else if (agent->opts.kubernetes_api || getenv("KUBERNETES_SERVICE_HOST"))
			log_warn("kubernetes: %s; no pod metadata", error);
		return required ? err : 0;
	}
	err = curl_api_load(error, sizeof(error));
	if (!err) {
		agent->kubernetes = kubernetes__start(&opts);
		err = agent->kubernetes ? 0 : -errno;
		if (err)
			snprintf(error, sizeof(error), "%s", strerror(-err));
	}
	if (err) {
		if (required)
			log_error("kubernetes: %s", error);
		else
			log_warn("kubernetes: %s; no pod metadata", error);
		return required ? err : 0;
	}
	log_info("kubernetes: watching the pods of node %s at %s", opts.node_name, opts.api_url);
	/* The processes read next are read with their pods, unless the API is slow to answer. */
	if (!kubernetes__wait_listed(agent->kubernetes, KUBERNETES_START_WAIT_MS))
		log_info("kubernetes: no list of the pods after %d ms; their processes' labels are "
			 "completed when it comes",
			 KUBERNETES_START_WAIT_MS);
	return 0;
}

/*
 * CPython's frames: BPF reads them for the processes found running it,
 * the agent names them from their code objects, within a share of
 * --max-memory.
 */
static int start_python(struct agent *agent)
{
	struct process_listener listener;

	agent->python_code = python_code_cache__new(agent->opts.max_memory / 8);
	if (agent->python_code)
		agent->python = python_processes__new(
			sampling__python_processes_fd(agent->sampling), agent->python_code);
	if (!agent->python) {
		log_error("reading CPython processes: %s", strerror(errno));
		return -errno;
	}
	python_processes__process_listener(agent->python, &listener);
	return add_process_listener(agent, &listener);
}

/* The sources of the sampler's counter lines for this window. */
static void report_sampler(struct agent *agent, const char *what,
			   const struct sample_window *window,
			   const struct window_profile_result *result)
{
	const struct sampler *sampler = window->sampler;
	const struct sampler_summary summary = {
		.samples = result->samples,
		.stacks = hashmap__size(window->stacks),
		.processes = process_table__size(agent->processes),
	};
	struct sampler_bpf_stats bpf = {};
	const void *sources[SAMPLER_SOURCE__COUNT] = {
		[SAMPLER_SOURCE_STATS] = window->stats,
		[SAMPLER_SOURCE_SUMMARY] = &summary,
		[SAMPLER_SOURCE_BPF] = &bpf,
	};

	/* Totals since start; the kernel counts only while kernel.bpf_stats_enabled=1. */
	if (!sampler__bpf_run_stats(sampler, &bpf.run_time_ns, &bpf.run_count) && bpf.run_count)
		bpf.ns_per_run = bpf.run_time_ns / bpf.run_count;
	reporter__log_lines(agent->reporter, sampler->counter_lines, sampler->counter_line_count,
			    sources, what);
}

/* A window's counters: its sampler's, then, after CPU windows, the later stages'. */
static void report_window(struct agent *agent, const char *what, const struct sample_window *window,
			  const struct window_profile_result *result)
{
	struct symbolizer_stats symbols;
	struct process_capture_stats captures;
	struct process_table_stats processes;
	struct unwind_maps_stats unwind = {};
	const void *sources[REPORT_SOURCE__COUNT] = {
		[REPORT_SOURCE_PROFILE] = result,    [REPORT_SOURCE_SYMBOLIZER] = &symbols,
		[REPORT_SOURCE_CAPTURE] = &captures, [REPORT_SOURCE_PROCESSES] = &processes,
		[REPORT_SOURCE_UNWIND] = &unwind,
	};

	report_sampler(agent, what, window, result);
	if (window->off_cpu)
		return;
	symbolizer__stats(agent->symbolizer, &symbols);
	process_capture__stats(agent->capture, &captures);
	process_table__stats(agent->processes, &processes);
	reporter__log_lines(agent->reporter, report_window_lines, report_window_line_count, sources,
			    NULL);
	report_damaged_files(agent->elf_files);
	if (agent->unwind) {
		unwind_maps__stats(agent->unwind, &unwind);
		reporter__log(agent->reporter, &report_unwind_tables_line, sources, NULL, NULL);
	}
	if (agent->labels) {
		struct labels_report labels = {
			.config_reloads = agent->config_reloads,
			.config_reload_failures = agent->config_reload_failures,
		};
		const void *labels_sources[REPORT_SOURCE__COUNT] = { [REPORT_SOURCE_LABELS] =
									     &labels };

		process_labels__stats(agent->labels, &labels.cache);
		reporter__log(agent->reporter, &report_labels_line, labels_sources, NULL, NULL);
		if (agent->kubernetes) {
			kubernetes__stats(agent->kubernetes, &labels.kubernetes);
			reporter__log(agent->reporter, &report_kubernetes_line, labels_sources,
				      NULL, NULL);
		}
	}
	if (agent->profiler) {
		struct cpu_profiler_loader_stats loaders;
		const void *loader_sources[] = { &loaders };

		cpu_profiler__loader_stats(agent->profiler, &loaders);
		reporter__log(agent->reporter, &cpu_profiler_loader_counter_line, loader_sources,
			      NULL, NULL);
	}
	if (agent->python_code) {
		struct python_code_stats code;
		const void *code_sources[] = { &code };

		python_code_cache__stats(agent->python_code, &code);
		reporter__log(agent->reporter, &python_code_counter_line, code_sources, NULL, NULL);
	}
}

/* Every window with debuginfod on: what was fetched, and why fetches failed. */
static void report_debuginfod(const struct agent *agent)
{
	struct symbolizer_stats symbols;
	const void *sources[REPORT_SOURCE__COUNT] = { [REPORT_SOURCE_SYMBOLIZER] = &symbols };
	char last_failure[160] = "";

	symbolizer__stats(agent->symbolizer, &symbols);
	if (!symbols.debuginfod_enabled)
		return;
	if (symbols.debuginfod_failed)
		snprintf(last_failure, sizeof(last_failure), "; last failure: %s",
			 symbols.debuginfod_last_error == -ENOENT
				 ? "not on the servers"
				 : strerror(-symbols.debuginfod_last_error));
	reporter__log(agent->reporter, &report_debuginfod_line, sources, NULL, last_failure);
}

/*
 * Profiles deleted from the output directory to stay within its bound since
 * `before` (its counters then), and any error doing so.
 */
static void report_retention(struct agent *agent, const struct output_retention_stats *before)
{
	struct output_retention_stats stats;

	output_retention__stats(agent->retention, &stats);
	if (stats.deleted > before->deleted)
		log_info("%s: deleted the %" PRIu64 " oldest profiles (%" PRIu64
			 " KiB) to stay within --output-max-bytes (%" PRIu64 " KiB); %" PRIu64
			 " since start, %" PRIu64 " profiles (%" PRIu64 " KiB) kept",
			 agent->opts.output_dir, stats.deleted - before->deleted,
			 (stats.deleted_bytes - before->deleted_bytes) >> 10,
			 agent->opts.output_max_bytes >> 10, stats.deleted, stats.files,
			 stats.bytes >> 10);
	if (stats.last_error && stats.last_error != agent->retention_error_reported) {
		log_warn("%s: keeping it within --output-max-bytes: %s", agent->opts.output_dir,
			 strerror(-stats.last_error));
		agent->retention_error_reported = stats.last_error;
	}
}

struct push_context {
	struct agent *agent;
	const struct window_profile_meta *meta;
	struct otlp_window *otlp; /* a protocol of one request a window: the processes go here */
	uint64_t otlp_ns; /* CPU converting the processes' profiles and encoding the request */
	uint64_t spooled;
	int first_error;
	uint64_t errors;
	uint64_t labels_cut; /* past PUSH_RECORD_MAX_LABELS, or values cut to fit */
};

/*
 * The executable of a process the window knows: the path of its lowest
 * file mapping (a program is mapped below its libraries, PIE or not), or
 * NULL when none has a path (read from the kernel's record after it exited).
 */
static const char *process_executable(const struct agent *agent, uint32_t pid)
{
	const struct proc_maps *maps = process_table__maps(agent->processes, pid);

	for (size_t i = 0; maps && i < maps->count; i++)
		if (maps->mappings[i].path[0] == '/')
			return maps->mappings[i].path;
	return NULL;
}

/* The window's OTLP request, spooled as one record of the whole window. */
static int push_otlp_window(struct push_context *push)
{
	struct push_record record = {
		.off_cpu = push->meta->off_cpu,
		.window_request = true,
		.start_ns = push->meta->start_ns,
		.duration_ns = push->meta->duration_ns,
	};
	uint64_t start;
	uint8_t *data;
	size_t size;
	int err;

	if (!otlp_window__count(push->otlp))
		return 0;
	snprintf(record.comm, sizeof(record.comm), "%zu", otlp_window__count(push->otlp));
	snprintf(record.service_name, sizeof(record.service_name), "%s",
		 push->agent->opts.service_name ? push->agent->opts.service_name : "kiln");
	snprintf(record.hostname, sizeof(record.hostname), "%s", push->agent->hostname);
	start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	err = otlp_window__encode(push->otlp, &data, &size);
	push->otlp_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - start;
	if (!err)
		log_debug("%s window: OTLP request of %zu processes, %zu bytes gzip-compressed, "
			  "converted and encoded in %.1f ms of CPU",
			  push->meta->off_cpu ? "off-CPU" : "CPU", otlp_window__count(push->otlp),
			  size, push->otlp_ns / 1e6);
	if (!err) {
		err = uploader__push(push->agent->uploader, &record, data, size);
		free(data);
	}
	if (!err)
		push->spooled += otlp_window__count(push->otlp);
	else if (err != -EFBIG && !push->errors++)
		push->first_error = err;
	return err == -EFBIG ? 0 : err;
}

/* Hands one process's profile to the uploader (its spool, on disk), or to the window's request. */
static int push_process(void *ctx, uint32_t pid, const char *comm, const uint8_t *data, size_t size)
{
	struct push_context *push = ctx;
	const struct kiln_options *opts = &push->agent->opts;
	struct push_record record = {
		.off_cpu = push->meta->off_cpu,
		.pid = pid,
		.start_ns = push->meta->start_ns,
		.duration_ns = push->meta->duration_ns,
	};
	const char *service = opts->service_name ? opts->service_name : comm;
	const struct label_set *labels = NULL;
	int err;

	/* Read when its samples were labelled: no /proc read here. */
	if (push->agent->labels && process_labels__get(push->agent->labels, pid, &labels) == 1) {
		for (size_t i = 0; i < labels->count; i++) {
			err = push_record__add_label(&record, labels->labels[i].name,
						     labels->labels[i].value);
			if (err)
				push->labels_cut++;
		}
		/* A rule's service_name is the process's own: it wins over --service-name. */
		if (label_set__get(labels, "service_name"))
			service = label_set__get(labels, "service_name");
	}
	snprintf(record.comm, sizeof(record.comm), "%s", comm);
	snprintf(record.service_name, sizeof(record.service_name), "%s", service);
	snprintf(record.hostname, sizeof(record.hostname), "%s", push->agent->hostname);
	if (push->otlp) {
		uint64_t start = clock_ns(CLOCK_THREAD_CPUTIME_ID);

		err = otlp_window__add(push->otlp, &record, process_executable(push->agent, pid),
				       data, size);
		push->otlp_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - start;
		/* One profile that does not convert is that process's loss alone. */
		if (err && !push->errors++)
			push->first_error = err;
		return err == -ENOMEM ? err : 0;
	}
	err = uploader__push(push->agent->uploader, &record, data, size);
	if (!err) {
		push->spooled++;
	} else if (err != -EFBIG) {
		/* EFBIG is the spool's bound, counted there; anything else is the disk's. */
		if (!push->errors++)
			push->first_error = err;
	}
	/* Keep going: the other processes may still fit. */
	return 0;
}

/*
 * Writes a drained window into the output directory (named as
 * profile_name.h says) when writing locally, and spools one profile per
 * process when pushing.
 */
static int write_window(struct agent *agent, bool off_cpu, struct sample_window *window,
			int64_t start_ns, int64_t duration_ns)
{
	struct window_profile_result result = {}, push_result = {};
	struct output_retention_stats before;
	struct window_profile *profile;
	char name[PROFILE_NAME_SIZE], path[PATH_MAX] = "", comment[160], what[PATH_MAX + 64];
	const char *kind = off_cpu ? "off-CPU" : "CPU";
	int err;

	profile_name_format(off_cpu ? PROFILE_KIND_OFF_CPU : PROFILE_KIND_CPU, start_ns, name);
	if (agent->opts.output_dir && snprintf(path, sizeof(path), "%s/%s", agent->opts.output_dir,
					       name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (off_cpu)
		snprintf(comment, sizeof(comment),
			 "kiln %s: off-CPU blocks of %" PRIu64 " us or more, user stacks by %s",
			 KILN_VERSION, agent->opts.off_cpu_min_block_us,
			 agent->opts.unwind_fp ? "frame pointers" : "DWARF CFI");
	else
		snprintf(comment, sizeof(comment), "kiln %s: %" PRIu64 " Hz, user stacks by %s",
			 KILN_VERSION, agent->opts.frequency_hz,
			 agent->opts.unwind_fp ? "frame pointers" : "DWARF CFI");
	const struct window_profile_meta meta = {
		.start_ns = start_ns,
		.duration_ns = duration_ns,
		.period_ns = 1000000000ULL / agent->opts.frequency_hz,
		.comment = comment,
		.off_cpu = off_cpu,
	};
	/* Written both locally and pushed: symbolized once, for both. */
	profile = window_profile__new(window, agent->processes, agent->symbolizer,
				      agent->symbol_history, &meta,
				      agent->opts.output_dir && agent->uploader);
	if (!profile) {
		err = -errno;
		log_error("building the %s profile: %s", kind, strerror(-err));
		return err;
	}
	window_profile__set_python(profile, agent->python, agent->python_code);
	window_profile__set_labels(profile, agent->labels);
	if (agent->python_code)
		python_code_cache__begin_window(agent->python_code);
	if (agent->opts.output_dir) {
		err = window_profile__write(profile, path, &result);
		if (err) {
			log_error("writing %s: %s", path, strerror(-err));
			goto cleanup;
		}
		if (agent->retention) {
			output_retention__stats(agent->retention, &before);
			output_retention__added(agent->retention, name);
			report_retention(agent, &before);
		}
	}
	if (!agent->opts.output_dir && agent->http && agent->windows) {
		uint8_t *data;
		size_t size;

		/* No file to serve: the page's window kept in memory, within its bound. */
		err = window_profile__encode_gzip(profile, &data, &size, &result);
		if (err) {
			log_warn("keeping the %s window for the page: %s", kind, strerror(-err));
			err = 0;
		} else {
			profile_windows__add(agent->windows,
					     off_cpu ? PROFILE_KIND_OFF_CPU : PROFILE_KIND_CPU,
					     start_ns, data, size);
		}
	}
	if (agent->uploader) {
		struct push_context push = { .agent = agent, .meta = &meta };

		if (agent->push_protocol->per_window) {
			push.otlp = otlp_window__new(off_cpu);
			if (!push.otlp) {
				err = -ENOMEM;
				goto cleanup;
			}
		}
		/* OTLP reads each process's profile back: not compressed only to be inflated. */
		err = window_profile__for_each_process(profile, !push.otlp, push_process, &push,
						       &push_result);
		if (!err && push.otlp)
			err = push_otlp_window(&push);
		otlp_window__free(push.otlp);
		if (push.errors)
			log_warn("%s window: %" PRIu64 " process profiles could not be spooled: %s",
				 kind, push.errors, strerror(-push.first_error));
		if (push.labels_cut && !agent->warned_labels_cut) {
			log_warn("%s window: %" PRIu64 " labels were cut or left out of pushed "
				 "profiles: at most %d labels of %d bytes each are pushed",
				 kind, push.labels_cut, PUSH_RECORD_MAX_LABELS,
				 PUSH_LABEL_VALUE_SIZE - 1);
			agent->warned_labels_cut = true;
		}
		if (err) {
			log_error("building the %s profiles to push: %s", kind, strerror(-err));
			goto cleanup;
		}
		if (!agent->opts.output_dir)
			result = push_result;
		if (path[0])
			snprintf(what, sizeof(what),
				 "wrote %s, spooled %" PRIu64 " process profiles", path,
				 push.spooled);
		else
			snprintf(what, sizeof(what),
				 "%s window, spooled %" PRIu64 " process profiles", kind,
				 push.spooled);
	} else {
		snprintf(what, sizeof(what), "wrote %s", path);
	}
	report_window(agent, what, window, &result);
cleanup:
	window_profile__free(profile);
	return err;
}

/* Upload counters since start, each window. */
static void report_uploads(struct agent *agent)
{
	struct uploader_stats stats;
	const void *sources[REPORT_SOURCE__COUNT] = { [REPORT_SOURCE_UPLOADER] = &stats };
	char prefix[PATH_MAX + 16];

	uploader__stats(agent->uploader, &stats);
	snprintf(prefix, sizeof(prefix), "uploads to %s", agent->opts.remote_store);
	reporter__log_lines(agent->reporter, report_uploads_lines, report_uploads_line_count,
			    sources, prefix);
}

/*
 * What the heap must have freed since the last trim before it is trimmed
 * again: each range malloc_trim gives back is an madvise, a TLB shootdown
 * on every CPU, and trimming every window was a fifth of kiln's CPU.
 */
#define HEAP_TRIM_MIN_BYTES (1U << 20)

/*
 * Freed in the middle of the heap (a window's profile, a table built) goes
 * back, once there is enough of it to matter.
 */
static void trim_heap(struct agent *agent)
{
	struct mallinfo2 before = mallinfo2();

	if (before.fordblks < agent->heap_free_after_trim + HEAP_TRIM_MIN_BYTES)
		return;
	malloc_trim(0);
	agent->heap_free_after_trim = mallinfo2().fordblks;
}

/*
 * Ends the window that started at start_ns (Unix): swaps every program's
 * buffers first, so the profiles cover the same span, then writes them.
 */
static int end_window(struct agent *agent, int64_t start_ns, int64_t duration_ns)
{
	struct sample_window windows[MAX_SAMPLERS] = {};
	bool drained[MAX_SAMPLERS] = {};
	int err = 0, flush_err;

	for (unsigned int i = 0; i < agent->sampler_count; i++) {
		int drain_err = sampler__end_window(agent->samplers[i], &windows[i]);

		if (drain_err)
			log_error("draining the %s window: %s", sampler__name(agent->samplers[i]),
				  strerror(-drain_err));
		drained[i] = !drain_err;
		err = err ? err : drain_err;
	}
	/* Announcements made before the swap: take them before symbolizing. */
	flush_err = sampling__flush_process_events(agent->sampling);
	if (flush_err && flush_err != -EINTR)
		log_warn("reading process events: %s", strerror(-flush_err));
	take_captures(agent);
	for (unsigned int i = 0; i < agent->sampler_count; i++) {
		if (drained[i]) {
			int write_err;

			/* The process model is brought up to date before the window is read. */
			process_table__sync_window(agent->processes, &windows[i]);
			write_err = write_window(agent, windows[i].off_cpu, &windows[i], start_ns,
						 duration_ns);
			err = err ? err : write_err;
		}
		sample_window__free(&windows[i]);
	}
	report_debuginfod(agent);
	process_table__end_window(agent->processes);
	if (agent->labels)
		process_labels__end_window(agent->labels);
	retry_deferred_tables(agent);
	if (agent->unwind)
		unwind_maps__sweep_exited(agent->unwind);
	if (agent->sampling)
		kernel_maps__sweep(sampling__replaced_images_fd(agent->sampling),
				   &agent->replaced_sweep);
	symbolizer__end_window(agent->symbolizer);
	trim_heap(agent);
	if (agent->uploader)
		report_uploads(agent);
	agent->windows_written += !err;
	return err;
}

/*
 * The endpoint, before the BPF programs load (/healthz says so meanwhile).
 * Failing to bind is no reason to stop profiling: a second kiln on the
 * host, or a port taken, costs the endpoint only.
 */
static void start_http(struct agent *agent)
{
	const char *text = agent->opts.http_address;
	struct http_address address;

	if (!text[0])
		return;
	/* options_parse took only addresses that parse. */
	http_address_parse(text, &address);
	/* Without an output directory, the page's windows are the last ones, kept here. */
	agent->windows = profile_windows__new(agent->opts.output_dir);
	if (!agent->windows)
		log_warn("--http-address %s: no memory for the page's windows: serving /metrics "
			 "and /healthz only",
			 text);
	agent->metrics = metrics__new();
	if (agent->metrics)
		agent->http = http_endpoint__new(&(struct http_endpoint_opts){
			.address = &address,
			.address_text = text,
			.window_ns = agent->opts.duration_s * 1000000000,
			.windows = agent->windows,
		});
	if (!agent->http) {
		log_warn("--http-address %s: %s; profiling without /metrics and /healthz", text,
			 strerror(errno));
		metrics__free(agent->metrics);
		agent->metrics = NULL;
		return;
	}
	reporter__set_metrics(agent->reporter, agent->metrics);
	log_info("serving /metrics and /healthz on http://%s", text);
}

/* After each window: its counters, rendered here on the main thread, go to the endpoint. */
static void publish_window(struct agent *agent, int err)
{
	size_t length = 0;
	char *text;

	if (!agent->http)
		return;
	/* Out of memory: the last text stays, the window still counts. */
	text = metrics__render(agent->metrics, &length);
	http_endpoint__window_ended(agent->http, err, text, length);
}

static int run(struct agent *agent)
{
	const int64_t window_ns = (int64_t)agent->opts.duration_s * 1000000000;
	/* Each window starts where the last ended: writing one takes time from the next. */
	int64_t start_mono = (int64_t)clock_ns(CLOCK_MONOTONIC);
	int64_t start_real = (int64_t)clock_ns(CLOCK_REALTIME);

	for (uint64_t i = 0; !agent->opts.iterations || i < agent->opts.iterations; i++) {
		int64_t elapsed = (int64_t)clock_ns(CLOCK_MONOTONIC) - start_mono;
		int err;

		while (!stop_requested && elapsed < window_ns) {
			int64_t left_ms = (window_ns - elapsed + 999999) / 1000000;

			process_capture__wait(agent->capture, left_ms < POLL_INTERVAL_MS
								      ? (int)left_ms
								      : POLL_INTERVAL_MS);
			take_captures(agent);
			if (reload_requested)
				reload_config(agent);
			elapsed = (int64_t)clock_ns(CLOCK_MONOTONIC) - start_mono;
		}
		/* A stop mid-window still writes what was sampled so far. */
		err = end_window(agent, start_real, elapsed);
		publish_window(agent, err);
		start_mono += elapsed;
		start_real += elapsed;
		if (err == -ENOSPC || err == -EROFS || err == -EACCES)
			return err;
		if (stop_requested)
			break;
		err = agent->profiler ? cpu_profiler__attach_new_cpus(agent->profiler) : 0;
		if (err > 0)
			log_info("sampling %d more CPUs that came online", err);
	}
	return 0;
}

/*
 * Whole host: the processes running when kiln starts are read before it
 * samples, so that their tables are there for their first samples (the
 * first window's); processes started later are read at their exec. Past
 * STARTUP_CAPTURE_NS the rest are read when first sampled, as before.
 */
static void capture_running_processes(struct agent *agent)
{
	uint64_t start = now_ns(), captured = 0, left = 0;
	DIR *proc = opendir("/proc");
	struct dirent *entry;
	char path[64], target[8];

	if (!proc) {
		log_warn("reading /proc: %s, ignoring", strerror(errno));
		return;
	}
	while ((entry = readdir(proc))) {
		char *end;
		unsigned long pid = strtoul(entry->d_name, &end, 10);

		/* Kernel threads have no executable, and no user stacks. */
		snprintf(path, sizeof(path), "/proc/%lu/exe", pid);
		if (*end || !pid || pid == (unsigned long)getpid() ||
		    readlink(path, target, sizeof(target)) < 0)
			continue;
		read_labels(agent, (uint32_t)pid);
		if (now_ns() - start > STARTUP_CAPTURE_NS)
			left++;
		else if (!process_table__capture(agent->processes, (uint32_t)pid))
			captured++;
		refresh_labels(agent, (uint32_t)pid);
	}
	closedir(proc);
	log_info("read %" PRIu64 " running processes and built their unwind tables in %" PRIu64
		 " ms%s",
		 captured, (now_ns() - start) / 1000000,
		 left ? ", the rest when first sampled" : "");
}

/* Says why loading failed; returns the negative errno. */
static int log_load_error(const char *what)
{
	int err = -errno;

	if (err == -EPERM)
		log_error("loading %s: permission denied (needs root, or CAP_BPF and CAP_PERFMON)",
			  what);
	else
		log_error("loading %s: %s", what, strerror(-err));
	return err;
}

/*
 * Loads the enabled programs, which share sampling's maps, and starts the
 * thread that hands process announcements to the capture. Attaching waits
 * for sampler__start. 0 or a negative errno, logged.
 */
static int start_sampling(struct agent *agent)
{
	const struct kiln_options *opts = &agent->opts;
	const struct sampling_opts sampling_opts = {
		.pids = opts->pids,
		.pid_count = opts->pid_count,
		.max_processes = opts->max_processes,
	};
	int err;

	agent->sampling = sampling__new(&sampling_opts);
	if (!agent->sampling) {
		err = -errno;
		log_error("setting up sampling: %s", strerror(-err));
		return err;
	}
	if (!opts->no_cpu) {
		const struct cpu_profiler_opts cpu_opts = {
			.sampling = agent->sampling,
			.frequency_hz = opts->frequency_hz,
			.max_stacks = opts->max_stacks,
			.max_sample_keys = opts->max_sample_keys,
			.dwarf_unwinding = !opts->unwind_fp,
			.kernel_fill = !opts->no_kernel_fill,
			.python_frames = !opts->unwind_fp && !opts->python_off,
		};

		agent->profiler = cpu_profiler__new(&cpu_opts);
		if (!agent->profiler)
			return log_load_error("the BPF programs");
		agent->samplers[agent->sampler_count++] = cpu_profiler__sampler(agent->profiler);
	}
	if (opts->off_cpu) {
		const struct offcpu_profiler_opts offcpu_opts = {
			.sampling = agent->sampling,
			.dwarf_unwinding = !opts->unwind_fp,
			.min_block_ns = opts->off_cpu_min_block_us * 1000,
			.state_mask = opts->off_cpu_states,
			.max_stacks = opts->max_stacks,
			.max_sample_keys = opts->max_sample_keys,
			.hooks = opts->off_cpu_hooks == OFF_CPU_HOOKS_AUTO
					 ? -1
					 : (int)opts->off_cpu_hooks - OFF_CPU_HOOKS_TASK_WORK,
		};

		agent->offcpu = offcpu_profiler__new(&offcpu_opts);
		if (!agent->offcpu)
			return log_load_error("the off-CPU program");
		agent->samplers[agent->sampler_count++] = offcpu_profiler__sampler(agent->offcpu);
	}
	sampling__set_process_listener(agent->sampling, on_process_event, agent);
	err = sampling__start_events(agent->sampling);
	if (err)
		log_error("starting the process events thread: %s", strerror(-err));
	return err;
}

/* --probe-kernel: one line per feature, "yes" or "no (why)"; 0 even when some are missing. */
static int probe_kernel(void)
{
	for (int feature = 0; feature < FEATURE__COUNT; feature++) {
		const char *reason = "";
		int err = features__probe(feature, &reason);

		printf("%s: %s%s%s\n", features__name(feature), err ? "no (" : "yes", reason,
		       err ? ")" : "");
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction action = { .sa_handler = on_signal };
	struct agent agent = {};
	int err, exit_code = 1;

	switch (options_parse(argc, argv, &agent.opts)) {
	case OPTIONS_EXIT_OK:
		return 0;
	case OPTIONS_EXIT_USAGE:
		return 2;
	case OPTIONS_RUN:
		break;
	}
	log_set_level(agent.opts.verbose ? LOG_DEBUG : LOG_INFO);
	if (agent.opts.probe_kernel)
		return probe_kernel();
	if (!has_privileges()) {
		log_error("kiln needs root, or the capabilities CAP_BPF and CAP_PERFMON "
			  "(and CAP_SYS_PTRACE to read other processes' mappings)");
		return 1;
	}
	agent.reporter = reporter__new();
	if (!agent.reporter) {
		log_error("creating the reporter: %s", strerror(errno));
		return 1;
	}
	if (agent.opts.output_dir) {
		err = fs_make_dirs(agent.opts.output_dir);
		if (err) {
			log_error("output directory %s: %s", agent.opts.output_dir, strerror(-err));
			return 1;
		}
	}
	if (agent.opts.output_dir && agent.opts.output_max_bytes) {
		agent.retention =
			output_retention__open(agent.opts.output_dir, agent.opts.output_max_bytes);
		if (!agent.retention) {
			log_error("output directory %s: %s", agent.opts.output_dir,
				  strerror(errno));
			return 1;
		}
		report_retention(&agent, &(struct output_retention_stats){});
	}
	snprintf(agent.destination, sizeof(agent.destination), "%s%s%s",
		 agent.opts.output_dir ? agent.opts.output_dir : "",
		 agent.opts.output_dir && agent.opts.remote_store ? " and " : "",
		 agent.opts.remote_store ? agent.opts.remote_store : "");
	if (gethostname(agent.hostname, sizeof(agent.hostname) - 1))
		snprintf(agent.hostname, sizeof(agent.hostname), "unknown");

	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGHUP, &action, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Before any other thread exists: the debug search may set DEBUGINFOD_URLS. */
	struct debug_search_opts search_opts = {
		.debuginfod_urls = agent.opts.debuginfod_urls ? agent.opts.debuginfod_urls
							      : getenv("DEBUGINFOD_URLS"),
	};
	agent.debug_search = debug_search__new(&search_opts);
	if (!agent.debug_search && errno == ENOENT && search_opts.debuginfod_urls) {
		/* DEBUGINFOD_URLS set by a login profile must not stop a host without the library. */
		log_warn("debuginfod: cannot load libdebuginfod.so.1 (install libdebuginfod1), "
			 "continuing without fetching debug files");
		search_opts.debuginfod_urls = NULL;
		agent.debug_search = debug_search__new(&search_opts);
	}
	if (!agent.debug_search) {
		log_error("creating the debug file search: %s", strerror(errno));
		goto cleanup;
	}
	start_http(&agent);
	if (search_opts.debuginfod_urls &&
	    search_opts.debuginfod_urls[strspn(search_opts.debuginfod_urls, " ")])
		log_info("debuginfod: missing debug files are fetched in the background from %s",
			 search_opts.debuginfod_urls);
	agent.elf_files = elf_cache__new(&(struct elf_cache_opts){
		.debug_search = agent.debug_search,
		.max_bytes = memory_share(&agent.opts, ELF_SYMBOLS_SHARE),
	});
	if (!agent.elf_files) {
		log_error("creating the ELF file cache: %s", strerror(errno));
		goto cleanup;
	}
	agent.symbolizer = symbolizer__new(&(struct symbolizer_opts){
		.elf_cache = agent.elf_files,
		.max_dwarf_memory =
			agent.opts.max_dwarf_memory ?: memory_share(&agent.opts, DWARF_SHARE),
		.max_perf_map_memory = memory_share(&agent.opts, PERF_MAPS_SHARE),
	});
	if (!agent.symbolizer) {
		log_error("creating the symbolizer: %s", strerror(errno));
		goto cleanup;
	}
	/*
	 * Every window samples mostly the addresses the last one did: 1 MiB a
	 * generation holds a busy host's recurring frames (a few thousand).
	 */
	agent.symbol_history = symbol_history__new(1 << 20);
	if (!agent.symbol_history) {
		log_error("creating the symbol history: %s", strerror(errno));
		goto cleanup;
	}
	agent.processes = process_table__new(agent.opts.max_processes);
	if (!agent.processes) {
		log_error("creating the process table: %s", strerror(errno));
		goto cleanup;
	}
	if (agent.opts.config) {
		agent.proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		host_metadata_read(&agent.host);
		agent.labels = process_labels__new(&(struct process_labels_opts){
			.max_processes = agent.opts.max_processes,
			.proc_fd = agent.proc_fd,
			.host = &agent.host,
			.rules = agent.opts.config->rules,
			.annotate = annotate_process,
			.dropped = labels_on_dropped,
			.undropped = labels_on_undropped,
			.ctx = &agent,
		});
		if (agent.proc_fd < 0 || !agent.labels) {
			log_error("reading processes' labels: %s", strerror(errno));
			goto cleanup;
		}
		if (add_process_listener(&agent, &(struct process_listener){
							 .on_removed = labels_on_removed,
							 .ctx = &agent,
						 }))
			goto cleanup;
		log_info("%s: %zu relabel_configs rules, run once per process (SIGHUP reads them "
			 "again)",
			 agent.opts.config->path, relabel_rules__count(agent.opts.config->rules));
	}
	/* First: the unwinder reads the files the symbolizer opens. */
	if (add_process_listener(&agent,
				 &(struct process_listener){
					 .on_mappings_changed = symbolizer_on_mappings_changed,
					 .on_removed = symbolizer_on_removed,
					 .ctx = agent.symbolizer,
				 }))
		goto cleanup;
	const struct process_capture_opts capture_opts = {
		.max_pending = MAX_PENDING_CAPTURES,
		.max_held_files = MAX_HELD_FILES,
	};

	agent.capture = process_capture__new(&capture_opts);
	if (!agent.capture) {
		log_error("creating the process capture: %s", strerror(errno));
		goto cleanup;
	}
	err = start_sampling(&agent);
	if (err)
		goto cleanup;
	process_table__set_exited_reader(agent.processes,
					 &(struct process_exited_reader){
						 .read_maps = read_exited_maps,
						 .find_path = find_opened_file,
						 .read_replaced_maps = read_replaced_maps,
						 .ctx = &agent,
					 });
	if (!agent.opts.unwind_fp) {
		const struct unwind_maps_opts unwind_opts = {
			.tables_fd = sampling__unwind_tables_fd(agent.sampling),
			.processes_fd = sampling__process_unwind_fd(agent.sampling),
			.files_fd = sampling__unwind_files_fd(agent.sampling),
			.exited_fd = sampling__exited_processes_fd(agent.sampling),
			.max_bytes = agent.opts.max_unwind_memory,
			.elf_cache = agent.elf_files,
		};

		agent.unwind = unwind_maps__new(&unwind_opts);
		if (!agent.unwind) {
			log_error("creating the unwind tables: %s", strerror(errno));
			goto cleanup;
		}
		struct process_listener unwind_listener;

		unwind_maps__process_listener(agent.unwind, &unwind_listener);
		if (add_process_listener(&agent, &unwind_listener))
			goto cleanup;
	}
	if (!agent.opts.unwind_fp && !agent.opts.python_off && start_python(&agent))
		goto cleanup;
	if (add_process_listener(&agent, &(struct process_listener){
						 .on_removed = sampling_on_removed,
						 .ctx = &agent,
					 }))
		goto cleanup;
	if (start_kubernetes(&agent))
		goto cleanup;
	/* Processes named on the command line get their tables before the first sample. */
	for (size_t i = 0; i < agent.opts.pid_count; i++) {
		read_labels(&agent, agent.opts.pids[i]);
		err = process_table__capture(agent.processes, agent.opts.pids[i]);
		if (err)
			log_warn("pid %u: reading its mappings: %s, ignoring", agent.opts.pids[i],
				 strerror(-err));
		refresh_labels(&agent, agent.opts.pids[i]);
	}
	if (!agent.opts.pid_count && agent.unwind)
		capture_running_processes(&agent);
	/*
	 * After the BPF programs are loaded, so that libcurl's and the TLS
	 * library's start-up memory does not add to libbpf's (kernel BTF) at
	 * the peak; before any thread, as curl_global_init wants.
	 */
	if (agent.opts.remote_store) {
		char curl_error[256];

		err = curl_api_load(curl_error, sizeof(curl_error));
		if (err) {
			log_error("loading libcurl, needed by --remote-store: %s (Debian: apt-get "
				  "install libcurl4)",
				  curl_error);
			goto cleanup;
		}
		const struct http_opts http_opts = {
			.url = agent.opts.remote_store,
			.bearer_token_file = agent.opts.bearer_token_file,
			.basic_auth_file = agent.opts.basic_auth_file,
			.headers = agent.opts.headers,
			.header_count = agent.opts.header_count,
			.tls_ca = agent.opts.tls_ca,
			.tls_cert = agent.opts.tls_cert,
			.tls_key = agent.opts.tls_key,
			.tls_insecure_skip_verify = agent.opts.tls_insecure_skip_verify,
			.connect_timeout_ms = agent.opts.remote_connect_timeout_s * 1000,
			.timeout_ms = agent.opts.remote_timeout_s * 1000,
		};
		/* options_parse took only names in the table. */
		const struct push_protocol *protocol =
			agent.opts.remote_protocol ? push_protocol_find(agent.opts.remote_protocol)
						   : push_protocols[0];

		if (agent.opts.otlp_transport && protocol->grpc)
			protocol = protocol->grpc;
		agent.push_protocol = protocol;
		const struct uploader_opts uploader_opts = {
			.http = &http_opts,
			.protocol = protocol,
			.spool_dir = agent.opts.spool_dir,
			.spool_max_bytes = agent.opts.spool_max_bytes,
			.spool_max_files = SPOOL_MAX_FILES,
		};
		struct uploader_stats stats;

		agent.uploader = uploader__new(&uploader_opts);
		if (!agent.uploader) {
			if (errno == EBUSY)
				log_error("spool %s: in use by another kiln", agent.opts.spool_dir);
			else
				log_error("starting the uploader (spool %s): %s",
					  agent.opts.spool_dir, strerror(errno));
			goto cleanup;
		}
		uploader__stats(agent.uploader, &stats);
		log_info("pushing to %s (%s), spooling in %s (at most %" PRIu64 " bytes)",
			 agent.opts.remote_store, protocol->title, agent.opts.spool_dir,
			 agent.opts.spool_max_bytes);
		if (stats.recovered)
			log_info("%" PRIu64 " profiles (%" PRIu64
				 " bytes) from an earlier run wait "
				 "in the spool",
				 stats.recovered, stats.pending_bytes);
		/* Profiles dropped before this run are not news. */
		for (unsigned int i = 0; i < report_uploads_line_count; i++)
			reporter__mark_reported(agent.reporter, &report_uploads_lines[i],
						(const void *[REPORT_SOURCE__COUNT]){
							[REPORT_SOURCE_UPLOADER] = &stats });
	}
	for (unsigned int i = 0; i < agent.sampler_count; i++) {
		err = sampler__start(agent.samplers[i]);
		if (err) {
			log_error("starting the %s sampler: %s", sampler__name(agent.samplers[i]),
				  strerror(-err));
			goto cleanup;
		}
	}
	if (agent.http)
		http_endpoint__set_attached(agent.http);
	if (agent.profiler)
		log_info("sampling %u CPUs at %" PRIu64 " Hz, %" PRIu64 " s windows, into %s",
			 cpu_profiler__cpu_count(agent.profiler), agent.opts.frequency_hz,
			 agent.opts.duration_s, agent.destination);
	if (agent.offcpu)
		log_info("measuring off-CPU time, blocks of %" PRIu64 " us or more with stacks, "
			 "%" PRIu64 " s windows, into %s (%s)",
			 agent.opts.off_cpu_min_block_us, agent.opts.duration_s, agent.destination,
			 offcpu_hooks__name(offcpu_profiler__hooks(agent.offcpu)));

	err = run(&agent);
	exit_code = err ? 1 : 0;
	log_info("stopping after %" PRIu64 " windows", agent.windows_written);
cleanup:
	/* No answers past the last window: /healthz goes quiet rather than stale. */
	http_endpoint__free(agent.http);
	profile_windows__free(agent.windows);
	/* Sampling's events thread hands announcements to the capture: it stops first. */
	sampling__free(agent.sampling);
	agent.sampling = NULL;
	process_capture__free(agent.capture);
	for (unsigned int i = 0; i < agent.sampler_count; i++)
		sampler__free(agent.samplers[i]);
	unwind_maps__free(agent.unwind);
	process_table__free(agent.processes);
	python_processes__free(agent.python);
	python_code_cache__free(agent.python_code);
	kubernetes__free(agent.kubernetes);
	process_labels__free(agent.labels);
	if (agent.proc_fd > 0)
		close(agent.proc_fd);
	symbol_history__free(agent.symbol_history);
	symbolizer__free(agent.symbolizer);
	elf_cache__free(agent.elf_files);
	kernel_maps__sweep_free(&agent.replaced_sweep);
	debug_search__free(agent.debug_search);
	/* Sampling has stopped: what is spooled gets a bounded time to leave. */
	if (agent.uploader) {
		uploader__stop(agent.uploader, agent.opts.remote_drain_timeout_s * 1000);
		report_uploads(&agent);
	}
	uploader__free(agent.uploader);
	curl_api_unload();
	output_retention__free(agent.retention);
	reporter__free(agent.reporter);
	metrics__free(agent.metrics);
	return exit_code;
}
