// SPDX-License-Identifier: Apache-2.0
/* kiln: the daemon's main loop: sample, end a window, symbolize, write, repeat. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/cpu_profile.h"
#include "agent/cpu_profiler.h"
#include "agent/log.h"
#include "agent/offcpu_profiler.h"
#include "agent/options.h"
#include "agent/process_table.h"
#include "agent/unwind_maps.h"
#include "lib/clock.h"
#include "lib/hashmap.h"
#include "symbolizer/symbolizer.h"

#define POLL_INTERVAL_MS 200

static volatile sig_atomic_t stop_requested;

struct agent {
	struct kiln_options opts;
	struct symbolizer *symbolizer;
	struct process_table *processes;
	struct cpu_profiler *profiler;
	struct unwind_maps *unwind;
	struct offcpu_profiler *offcpu;
	uint64_t tables_evicted_reported;
	uint64_t process_evictions_reported;
	uint64_t windows_written;
};

static void on_signal(int signo)
{
	(void)signo;
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

static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return access(buf, W_OK) ? -errno : 0;
}

static void on_process_event(void *ctx, const struct process_event *event)
{
	struct agent *agent = ctx;
	int err = process_table__capture(agent->processes, event->pid);

	if (err)
		log_debug("pid %u: reading its mappings: %s, ignoring", event->pid, strerror(-err));
}

static void forget_process(void *ctx, uint32_t pid)
{
	struct agent *agent = ctx;

	if (agent->profiler)
		cpu_profiler__forget_process(agent->profiler, pid);
}

static void report_window(struct agent *agent, const char *path,
			  const struct cpu_window *window, const struct cpu_profile_result *result)
{
	const uint64_t *stats = window->stats;
	struct symbolizer_stats sym;
	struct unwind_maps_stats unwind = {};
	struct process_table_stats procs;
	uint64_t bpf_ns, bpf_runs;

	symbolizer__stats(agent->symbolizer, &sym);
	if (agent->unwind)
		unwind_maps__stats(agent->unwind, &unwind);
	log_info("wrote %s: %" PRIu64 " samples, %zu stacks, %zu processes tracked", path,
		 result->samples, hashmap__size(window->stacks),
		 process_table__size(agent->processes));
	if (stats[CPU_STAT_COUNTS_MAP_FULL] || stats[CPU_STAT_STACK_MAP_FULL] ||
	    stats[CPU_STAT_STACK_COLLISION] || stats[CPU_STAT_PROCESS_EVENTS_LOST])
		log_warn("window lost data: %" PRIu64 " samples (counts map full, raise "
			 "--max-sample-keys), %" PRIu64 " stacks (stacks map full, raise "
			 "--max-stacks), %" PRIu64 " stack hash collisions, %" PRIu64
			 " process events",
			 stats[CPU_STAT_COUNTS_MAP_FULL], stats[CPU_STAT_STACK_MAP_FULL],
			 stats[CPU_STAT_STACK_COLLISION], stats[CPU_STAT_PROCESS_EVENTS_LOST]);
	log_debug("window counters: %" PRIu64 " events, %" PRIu64 " idle, %" PRIu64
		  " filtered, %" PRIu64 " recorded, stack capture failures %" PRIu64
		  " kernel / %" PRIu64 " user, %" PRIu64 " truncated, %" PRIu64
		  " new processes, %" PRIu64 " execs",
		  stats[CPU_STAT_SAMPLES], stats[CPU_STAT_IDLE], stats[CPU_STAT_FILTERED],
		  stats[CPU_STAT_RECORDED], stats[CPU_STAT_KERNEL_STACK_FAILED],
		  stats[CPU_STAT_USER_STACK_FAILED], stats[CPU_STAT_STACK_TRUNCATED],
		  stats[CPU_STAT_PROCESS_EVENTS], stats[CPU_STAT_EXECS]);
	log_debug("symbols: %" PRIu64 " frames, %" PRIu64 " without mapping, %" PRIu64
		  " without symbol; ELF files %" PRIu64 " opened, %" PRIu64 " evicted, %" PRIu64
		  " unreadable; debug files %" PRIu64 " by build id, %" PRIu64 " by debuglink, %" PRIu64
		  " MiniDebugInfo, %" PRIu64 " from debuginfod",
		  result->frames, result->frames_without_mapping, result->frames_without_symbol,
		  sym.elf_files_opened, sym.elf_files_evicted, sym.elf_open_errors,
		  sym.debug_files_build_id, sym.debug_files_debuglink, sym.debug_files_minidebuginfo,
		  sym.debug_files_debuginfod);
	process_table__stats(agent->processes, &procs);
	/* A full table drops live processes: worth a warning, as their frames go unnamed. */
	log_message(procs.evictions > agent->process_evictions_reported ? LOG_WARN : LOG_DEBUG,
		    "processes: %" PRIu64 " mappings read, %" PRIu64 " gone before they could be, %" PRIu64
		    " re-read, %" PRIu64 " exited, %" PRIu64 " dropped with the table full (raise "
		    "--max-processes)",
		    procs.captures, procs.capture_failures, procs.refreshes, procs.exited,
		    procs.evictions);
	agent->process_evictions_reported = procs.evictions;
	if (agent->unwind) {
		/* Every window: how many user stacks were complete, and why the others were cut. */
		log_info("unwind: %" PRIu64 " user stacks from CFI, %" PRIu64 " complete, %" PRIu64
			  " before tables were ready, %" PRIu64 " frames by frame pointer, %" PRIu64
			  " table misses; cut by depth %" PRIu64 ", unknown mapping %" PRIu64
			  ", no CFI %" PRIu64 ", unsupported CFI %" PRIu64 ", bad read %" PRIu64
			  ", lost rbp %" PRIu64,
			  stats[CPU_STAT_UNWIND_SAMPLES], stats[CPU_STAT_UNWIND_COMPLETE],
			  stats[CPU_STAT_UNWIND_NOT_READY], stats[CPU_STAT_UNWIND_FP_FRAMES],
			  stats[CPU_STAT_UNWIND_TABLE_MISSING], stats[CPU_STAT_UNWIND_END_DEPTH],
			  stats[CPU_STAT_UNWIND_END_NO_MAPPING], stats[CPU_STAT_UNWIND_END_NO_CFI],
			  stats[CPU_STAT_UNWIND_END_UNSUPPORTED], stats[CPU_STAT_UNWIND_END_BAD_READ],
			  stats[CPU_STAT_UNWIND_END_NO_RBP]);
		/* Tables evicted in this window mean the budget is too small: say so. */
		log_message(unwind.tables_evicted > agent->tables_evicted_reported ? LOG_WARN
										   : LOG_DEBUG,
			    "unwind tables: %" PRIu64 " loaded, %" PRIu64 " rows in %" PRIu64
			  " bytes of BPF maps, %" PRIu64 " built in %" PRIu64 " ms, %" PRIu64
			  " without usable CFI, %" PRIu64 " evicted (%" PRIu64 " in use), %" PRIu64
			  " deferred for room, %" PRIu64 " processes",
			  unwind.tables, unwind.table_rows, unwind.table_bytes, unwind.tables_built,
			  unwind.build_ns / 1000000, unwind.tables_failed, unwind.tables_evicted,
			  unwind.tables_evicted_in_use, unwind.tables_deferred,
			  unwind.processes);
		if (unwind.tables_evicted > agent->tables_evicted_reported)
			log_warn("unwind tables over --max-unwind-memory: least used tables evicted, "
				 "their frames fall back to frame pointers");
		agent->tables_evicted_reported = unwind.tables_evicted;
	}
	/* Totals since start; the kernel counts only while kernel.bpf_stats_enabled=1. */
	if (!cpu_profiler__bpf_run_stats(agent->profiler, &bpf_ns, &bpf_runs) && bpf_runs)
		log_debug("bpf: sampler ran %" PRIu64 " times, %" PRIu64 " ns in all, %" PRIu64
			  " ns per run",
			  bpf_runs, bpf_ns, bpf_ns / bpf_runs);
}

/* Every window with debuginfod on: what was fetched, and why fetches failed. */
static void report_debuginfod(const struct agent *agent)
{
	struct symbolizer_stats sym;
	const char *reason;

	symbolizer__stats(agent->symbolizer, &sym);
	if (!sym.debuginfod_enabled)
		return;
	reason = sym.debuginfod_last_error == -ENOENT ? "not on the servers"
						      : strerror(-sym.debuginfod_last_error);
	log_info("debuginfod: %" PRIu64 " fetches requested, %" PRIu64 " succeeded, %" PRIu64
		 " failed, %" PRIu64 " dropped with the queue full, %" PRIu64 " under way, %" PRIu64
		 " forgotten%s%s",
		 sym.debuginfod_requested, sym.debuginfod_succeeded, sym.debuginfod_failed,
		 sym.debuginfod_queue_full, sym.debuginfod_pending, sym.debuginfod_forgotten,
		 sym.debuginfod_failed ? "; last failure: " : "",
		 sym.debuginfod_failed ? reason : "");
}

/* Drains the window that started at start_ns (Unix) and writes it. */
static void report_off_cpu_window(const struct agent *agent, const char *path,
				  const struct cpu_window *window,
				  const struct cpu_profile_result *result)
{
	const uint64_t *stats = window->stats;
	uint64_t bpf_ns, bpf_runs;

	log_info("wrote %s: %" PRIu64 " blocks with stacks; all blocks: %" PRIu64 " (%.3f s), "
		 "%" PRIu64 " shorter than --off-cpu-min-block (%.3f s, counted without stacks)",
		 path, result->samples, stats[OFFCPU_STAT_BLOCKS],
		 stats[OFFCPU_STAT_BLOCKED_NS] / 1e9, stats[OFFCPU_STAT_SHORT_BLOCKS],
		 stats[OFFCPU_STAT_SHORT_NS] / 1e9);
	if (stats[OFFCPU_STAT_COUNTS_MAP_FULL] || stats[OFFCPU_STAT_STORAGE_FAILED] ||
	    stats[CPU_STAT_STACK_MAP_FULL])
		log_warn("off-CPU window lost data: %" PRIu64 " blocks (counts map full, raise "
			 "--max-sample-keys), %" PRIu64 " stacks (stacks map full, raise "
			 "--max-stacks), %" PRIu64 " threads without task storage",
			 stats[OFFCPU_STAT_COUNTS_MAP_FULL], stats[CPU_STAT_STACK_MAP_FULL],
			 stats[OFFCPU_STAT_STORAGE_FAILED]);
	log_debug("off-CPU counters: %" PRIu64 " switches, %" PRIu64 " recorded, %" PRIu64
		  " stacks from the previous window, %" PRIu64 " user stacks unknown (not "
		  "blocked in a syscall), %.3f s of blocks before the window not charged",
		  stats[OFFCPU_STAT_SWITCHES], stats[OFFCPU_STAT_RECORDED],
		  stats[OFFCPU_STAT_WINDOW_ENDED], stats[OFFCPU_STAT_USER_STACK_UNKNOWN],
		  stats[OFFCPU_STAT_EARLIER_NS] / 1e9);
	if (!offcpu_profiler__bpf_run_stats(agent->offcpu, &bpf_ns, &bpf_runs) && bpf_runs)
		log_debug("bpf: off-CPU program ran %" PRIu64 " times, %" PRIu64 " ns in all, %" PRIu64
			  " ns per run",
			  bpf_runs, bpf_ns, bpf_ns / bpf_runs);
}

/* Drains one kind of window and writes it as PREFIX-<UTC start>.pb.gz. */
static int write_window(struct agent *agent, bool off_cpu, const char *stamp, int64_t start_ns,
			int64_t duration_ns)
{
	struct cpu_profile_result result = {};
	struct cpu_window window = {};
	char path[PATH_MAX], comment[160];
	int err;

	if (snprintf(path, sizeof(path), "%s/%s-%s.pb.gz", agent->opts.output_dir,
		     off_cpu ? "offcpu" : "cpu", stamp) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	err = off_cpu ? offcpu_profiler__end_window(agent->offcpu, &window)
		      : cpu_profiler__end_window(agent->profiler, &window);
	if (err) {
		log_error("draining the %s window: %s", off_cpu ? "off-CPU" : "CPU", strerror(-err));
		return err;
	}
	/* Announcements made before the swap: capture them before symbolizing. */
	cpu_profiler__poll(agent->profiler, 0);
	if (off_cpu)
		snprintf(comment, sizeof(comment),
			 "kiln %s: off-CPU blocks of %" PRIu64 " us or more, user stacks by %s",
			 KILN_VERSION, agent->opts.off_cpu_min_block_us,
			 agent->opts.unwind_fp ? "frame pointers" : "DWARF CFI");
	else
		snprintf(comment, sizeof(comment), "kiln %s: %" PRIu64 " Hz, user stacks by %s",
			 KILN_VERSION, agent->opts.frequency_hz,
			 agent->opts.unwind_fp ? "frame pointers" : "DWARF CFI");
	const struct cpu_profile_meta meta = {
		.start_ns = start_ns,
		.duration_ns = duration_ns,
		.period_ns = 1000000000ULL / agent->opts.frequency_hz,
		.path = path,
		.comment = comment,
		.off_cpu = off_cpu,
	};
	err = cpu_profile__write(&window, agent->processes, agent->symbolizer, &meta, &result);
	if (err)
		log_error("writing %s: %s", path, strerror(-err));
	else if (off_cpu)
		report_off_cpu_window(agent, path, &window, &result);
	else
		report_window(agent, path, &window, &result);
	cpu_window__free(&window);
	return err;
}

/* Ends the window that started at start_ns (Unix): writes each enabled profile. */
static int end_window(struct agent *agent, int64_t start_ns, int64_t duration_ns)
{
	time_t start_s = start_ns / 1000000000;
	char stamp[32];
	struct tm tm;
	int err = 0, off_cpu_err = 0;

	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&start_s, &tm));
	if (!agent->opts.no_cpu)
		err = write_window(agent, false, stamp, start_ns, duration_ns);
	if (agent->offcpu)
		off_cpu_err = write_window(agent, true, stamp, start_ns, duration_ns);
	report_debuginfod(agent);
	process_table__end_window(agent->processes);
	err = err ? err : off_cpu_err;
	agent->windows_written += !err;
	return err;
}

static int run(struct agent *agent)
{
	const int64_t window_ns = (int64_t)agent->opts.duration_s * 1000000000;

	for (uint64_t i = 0; !agent->opts.iterations || i < agent->opts.iterations; i++) {
		int64_t start_mono = (int64_t)clock_ns(CLOCK_MONOTONIC);
		int64_t start_real = (int64_t)clock_ns(CLOCK_REALTIME);
		int64_t elapsed = 0;
		int err;

		while (!stop_requested && elapsed < window_ns) {
			int64_t left_ms = (window_ns - elapsed + 999999) / 1000000;

			err = cpu_profiler__poll(agent->profiler, left_ms < POLL_INTERVAL_MS
									  ? (int)left_ms
									  : POLL_INTERVAL_MS);
			if (err && err != -EINTR)
				log_warn("polling process events: %s", strerror(-err));
			elapsed = (int64_t)clock_ns(CLOCK_MONOTONIC) - start_mono;
		}
		/* A stop mid-window still writes what was sampled so far. */
		err = end_window(agent, start_real, elapsed);
		if (err == -ENOSPC || err == -EROFS || err == -EACCES)
			return err;
		if (stop_requested)
			break;
		err = agent->opts.no_cpu ? 0 : cpu_profiler__attach_new_cpus(agent->profiler);
		if (err > 0)
			log_info("sampling %d more CPUs that came online", err);
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
	if (!has_privileges()) {
		log_error("kiln needs root, or the capabilities CAP_BPF and CAP_PERFMON "
			  "(and CAP_SYS_PTRACE to read other processes' mappings)");
		return 1;
	}
	err = make_dirs(agent.opts.output_dir);
	if (err) {
		log_error("output directory %s: %s", agent.opts.output_dir, strerror(-err));
		return 1;
	}

	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Before any other thread exists: the symbolizer may set DEBUGINFOD_URLS. */
	const struct symbolizer_opts symbolizer_opts = {
		.debuginfod_urls = agent.opts.debuginfod_urls ? agent.opts.debuginfod_urls
							      : getenv("DEBUGINFOD_URLS"),
	};
	agent.symbolizer = symbolizer__new(&symbolizer_opts);
	if (!agent.symbolizer) {
		log_error("creating the symbolizer: %s", strerror(errno));
		goto cleanup;
	}
	if (symbolizer_opts.debuginfod_urls &&
	    symbolizer_opts.debuginfod_urls[strspn(symbolizer_opts.debuginfod_urls, " ")])
		log_info("debuginfod: missing debug files are fetched in the background from %s",
			 symbolizer_opts.debuginfod_urls);
	agent.processes = process_table__new(agent.opts.max_processes, agent.symbolizer,
					     forget_process, &agent);
	if (!agent.processes) {
		log_error("creating the process table: %s", strerror(errno));
		goto cleanup;
	}
	const struct cpu_profiler_opts profiler_opts = {
		.frequency_hz = agent.opts.frequency_hz,
		.pids = agent.opts.pids,
		.pid_count = agent.opts.pid_count,
		.max_stacks = agent.opts.max_stacks,
		.max_sample_keys = agent.opts.max_sample_keys,
		.max_processes = agent.opts.max_processes,
		.dwarf_unwinding = !agent.opts.unwind_fp,
		.on_process_event = on_process_event,
		.ctx = &agent,
	};
	agent.profiler = cpu_profiler__new(&profiler_opts);
	if (!agent.profiler) {
		if (errno == EPERM)
			log_error("loading the BPF programs: permission denied (needs root, or "
				  "CAP_BPF and CAP_PERFMON)");
		else
			log_error("loading the BPF programs: %s", strerror(errno));
		goto cleanup;
	}
	if (!agent.opts.unwind_fp) {
		struct cpu_profiler_shared_fds fds;

		cpu_profiler__shared_fds(agent.profiler, &fds);
		const struct unwind_maps_opts unwind_opts = {
			.tables_fd = fds.unwind_tables,
			.processes_fd = fds.process_unwind,
			.max_bytes = agent.opts.max_unwind_memory,
			.symbolizer = agent.symbolizer,
		};

		agent.unwind = unwind_maps__new(&unwind_opts);
		if (!agent.unwind) {
			log_error("creating the unwind tables: %s", strerror(errno));
			goto cleanup;
		}
		process_table__set_unwind_maps(agent.processes, agent.unwind);
	}
	/* Processes named on the command line get their tables before the first sample. */
	for (size_t i = 0; i < agent.opts.pid_count; i++) {
		err = process_table__capture(agent.processes, agent.opts.pids[i]);
		if (err)
			log_warn("pid %u: reading its mappings: %s, ignoring", agent.opts.pids[i],
				 strerror(-err));
	}
	if (agent.opts.off_cpu) {
		const struct offcpu_profiler_opts offcpu_opts = {
			.cpu = agent.profiler,
			.filter_pids = agent.opts.pid_count > 0,
			.dwarf_unwinding = !agent.opts.unwind_fp,
			.min_block_ns = agent.opts.off_cpu_min_block_us * 1000,
			.state_mask = agent.opts.off_cpu_states,
			.max_stacks = agent.opts.max_stacks,
			.max_sample_keys = agent.opts.max_sample_keys,
		};

		agent.offcpu = offcpu_profiler__new(&offcpu_opts);
		if (!agent.offcpu) {
			log_error("loading the off-CPU program: %s", strerror(errno));
			goto cleanup;
		}
	}
	if (!agent.opts.no_cpu) {
		err = cpu_profiler__start(agent.profiler);
		if (err) {
			log_error("attaching to the CPUs: %s", strerror(-err));
			goto cleanup;
		}
	}
	if (!agent.opts.no_cpu)
		log_info("sampling %u CPUs at %" PRIu64 " Hz, %" PRIu64 " s windows, into %s",
			 cpu_profiler__cpu_count(agent.profiler), agent.opts.frequency_hz,
			 agent.opts.duration_s, agent.opts.output_dir);
	if (agent.offcpu)
		log_info("measuring off-CPU time, blocks of %" PRIu64 " us or more with stacks, "
			 "%" PRIu64 " s windows, into %s",
			 agent.opts.off_cpu_min_block_us, agent.opts.duration_s, agent.opts.output_dir);

	err = run(&agent);
	exit_code = err ? 1 : 0;
	log_info("stopping after %" PRIu64 " windows", agent.windows_written);
cleanup:
	offcpu_profiler__free(agent.offcpu);
	cpu_profiler__free(agent.profiler);
	agent.profiler = NULL;
	if (agent.processes)
		process_table__set_unwind_maps(agent.processes, NULL);
	unwind_maps__free(agent.unwind);
	process_table__free(agent.processes);
	symbolizer__free(agent.symbolizer);
	return exit_code;
}
