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

#include "agent/profile/window_profile.h"
#include "agent/push/curl_api.h"
#include "agent/sampling/cpu_profiler.h"
#include "lib/log.h"
#include "agent/sampling/offcpu_profiler.h"
#include "agent/options.h"
#include "agent/output/retention.h"
#include "agent/process/process_capture.h"
#include "agent/process/process_table.h"
#include "agent/unwind/unwind_maps.h"
#include "agent/push/uploader.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/hashmap.h"
#include "symbolizer/symbolizer.h"

#define POLL_INTERVAL_MS 200
/* Captures waiting for the main thread, and the files they hold open. */
#define MAX_PENDING_CAPTURES 1024
#define MAX_HELD_FILES 256
/* Hard limit on spool files, whatever --spool-max-bytes allows (inodes, directory size). */
#define SPOOL_MAX_FILES 100000

static volatile sig_atomic_t stop_requested;

struct agent {
	struct kiln_options opts;
	struct symbolizer *symbolizer;
	struct process_table *processes;
	struct process_capture *capture;
	struct cpu_profiler *profiler;
	struct unwind_maps *unwind;
	struct offcpu_profiler *offcpu;
	struct uploader *uploader; /* NULL: no --remote-store */
	struct output_retention *retention; /* NULL: no --output-dir, or no bound on it */
	int retention_error_reported;
	char hostname[256];
	char destination[PATH_MAX]; /* where profiles go, for messages */
	uint64_t uploads_dropped_reported;
	uint64_t tables_evicted_reported;
	uint64_t dwarf_evictions_reported;
	uint64_t process_evictions_reported;
	uint64_t perf_map_losses_reported;
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

/* On the capture thread (or the main one, when it drains): reads the process at once. */
static void on_process_event(void *ctx, const struct process_event *event)
{
	struct agent *agent = ctx;

	process_capture__on_event(agent->capture, event);
}

static void on_captured(void *ctx, struct captured_process *process)
{
	struct agent *agent = ctx;
	int err =
		process_table__insert(agent->processes, process->pid, &process->maps, process->fds);

	if (err)
		log_debug("pid %u: keeping its mappings: %s, ignoring", process->pid,
			  strerror(-err));
}

/* Takes what the capture thread read: every process BPF announced so far. */
static void take_captures(struct agent *agent)
{
	int err = process_capture__drain(agent->capture, on_captured, agent);

	if (err && err != -EINTR)
		log_warn("reading process events: %s", strerror(-err));
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

/* The sampler forgets it too, so the process's next sample announces it again. */
static void sampler_on_removed(void *ctx, uint32_t pid)
{
	cpu_profiler__forget_process(ctx, pid);
}

static int add_process_listener(struct agent *agent, const struct process_listener *listener)
{
	int err = process_table__add_listener(agent->processes, listener);

	if (err)
		log_error("listening to the process table: %s", strerror(-err));
	return err;
}

static void report_window(struct agent *agent, const char *what, const struct cpu_window *window,
			  const struct window_profile_result *result)
{
	const uint64_t *stats = window->stats;
	struct symbolizer_stats sym;
	struct unwind_maps_stats unwind = {};
	struct process_table_stats procs;
	struct process_capture_stats captures;
	uint64_t bpf_ns, bpf_runs;

	symbolizer__stats(agent->symbolizer, &sym);
	if (agent->unwind)
		unwind_maps__stats(agent->unwind, &unwind);
	log_info("%s: %" PRIu64 " samples, %zu stacks, %zu processes tracked", what,
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
		  " without symbol; ELF files %" PRIu64 " opened, %" PRIu64
		  " shared by build id, %" PRIu64 " evicted, %" PRIu64 " unreadable",
		  result->frames, result->frames_without_mapping, result->frames_without_symbol,
		  sym.elf_files_opened, sym.elf_files_shared, sym.elf_files_evicted,
		  sym.elf_open_errors);
	/* Lines dropped at the limits leave JIT frames unnamed: say so once they happen. */
	uint64_t perf_map_losses = sym.perf_maps.entries_dropped + sym.perf_maps.maps_evicted;
	log_message(perf_map_losses > agent->perf_map_losses_reported ? LOG_WARN : LOG_DEBUG,
		    "perf maps (JIT): %" PRIu64 " reads, %" PRIu64 " lines, %" PRIu64
		    " lines dropped (malformed or over the limit), %" PRIu64
		    " maps evicted; %" PRIu64 " lookups, %" PRIu64 " unnamed",
		    sym.perf_maps.reads, sym.perf_maps.entries_read, sym.perf_maps.entries_dropped,
		    sym.perf_maps.maps_evicted, sym.perf_maps.lookups, sym.perf_maps.misses);
	agent->perf_map_losses_reported = perf_map_losses;
	process_capture__stats(agent->capture, &captures);
	/* Dropped captures mean the main thread fell behind: short-lived processes go unnamed. */
	log_message(captures.dropped ? LOG_WARN : LOG_DEBUG,
		    "process capture: %" PRIu64 " read when announced, %" PRIu64
		    " gone before, %" PRIu64 " dropped with the queue full, %" PRIu64
		    " files held open, %" PRIu64 " not (limit)",
		    captures.captures, captures.gone, captures.dropped, captures.files_held,
		    captures.files_not_held);
	/* Limits here cost time (files read again) or detail (lines only), never samples. */
	log_debug("DWARF: %" PRIu64 " files read, %" PRIu64
		  " closed at the open-file limit, %" PRIu64 " at --max-dwarf-memory, %" PRIu64
		  " unreadable; %" PRIu64 " MiB held; %" PRIu64 " lookups; index %" PRIu64
		  " ranges, %" PRIu64 " resets, %" PRIu64 " units too large; %" PRIu64
		  " inline chains and %" PRIu64 " names cut",
		  sym.dwarf_files_opened, sym.dwarf_files_evicted, sym.dwarf_memory_evictions,
		  sym.dwarf_errors, sym.dwarf_memory >> 20, sym.dwarf_lookups, sym.dwarf_index_rows,
		  sym.dwarf_index_resets, sym.dwarf_units_not_indexed, sym.inline_chains_truncated,
		  sym.names_truncated);
	/* Files read again each window cost CPU: say so, once per window it happens in. */
	if (sym.dwarf_memory_evictions > agent->dwarf_evictions_reported)
		log_warn("DWARF: %" PRIu64 " files closed this window to stay within "
			 "--max-dwarf-memory (%" PRIu64 " MiB), to be read again when needed",
			 sym.dwarf_memory_evictions - agent->dwarf_evictions_reported,
			 agent->opts.max_dwarf_memory >> 20);
	agent->dwarf_evictions_reported = sym.dwarf_memory_evictions;
	log_debug("debug files: %" PRIu64 " by build id, %" PRIu64 " by debuglink, %" PRIu64
		  " MiniDebugInfo, %" PRIu64 " from debuginfod",
		  sym.debug_files_build_id, sym.debug_files_debuglink,
		  sym.debug_files_minidebuginfo, sym.debug_files_debuginfod);
	process_table__stats(agent->processes, &procs);
	/* A full table drops live processes: worth a warning, as their frames go unnamed. */
	log_message(procs.evictions > agent->process_evictions_reported ? LOG_WARN : LOG_DEBUG,
		    "processes: %" PRIu64 " mappings read, %" PRIu64
		    " gone before they could be, %" PRIu64 " re-read, %" PRIu64 " exited, %" PRIu64
		    " dropped with the table full (raise "
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
			 stats[CPU_STAT_UNWIND_END_UNSUPPORTED],
			 stats[CPU_STAT_UNWIND_END_BAD_READ], stats[CPU_STAT_UNWIND_END_NO_RBP]);
		/* Tables evicted in this window mean the budget is too small: say so. */
		log_message(unwind.tables_evicted > agent->tables_evicted_reported ? LOG_WARN
										   : LOG_DEBUG,
			    "unwind tables: %" PRIu64 " loaded, %" PRIu64 " rows in %" PRIu64
			    " bytes of BPF maps, %" PRIu64 " built in %" PRIu64 " ms, %" PRIu64
			    " without usable CFI, %" PRIu64 " evicted (%" PRIu64
			    " in use), %" PRIu64 " deferred for room, %" PRIu64 " processes",
			    unwind.tables, unwind.table_rows, unwind.table_bytes,
			    unwind.tables_built, unwind.build_ns / 1000000, unwind.tables_failed,
			    unwind.tables_evicted, unwind.tables_evicted_in_use,
			    unwind.tables_deferred, unwind.processes);
		if (unwind.tables_evicted > agent->tables_evicted_reported)
			log_warn(
				"unwind tables over --max-unwind-memory: least used tables evicted, "
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
static void report_off_cpu_window(const struct agent *agent, const char *what,
				  const struct cpu_window *window,
				  const struct window_profile_result *result)
{
	const uint64_t *stats = window->stats;
	uint64_t bpf_ns, bpf_runs;

	log_info("%s: %" PRIu64 " blocks with stacks; all blocks: %" PRIu64 " (%.3f s), "
		 "%" PRIu64 " shorter than --off-cpu-min-block (%.3f s, counted without stacks)",
		 what, result->samples, stats[OFFCPU_STAT_BLOCKS],
		 stats[OFFCPU_STAT_BLOCKED_NS] / 1e9, stats[OFFCPU_STAT_SHORT_BLOCKS],
		 stats[OFFCPU_STAT_SHORT_NS] / 1e9);
	if (stats[OFFCPU_STAT_STILL_BLOCKED])
		log_info("off-CPU: %" PRIu64 " threads still blocked at the window's end, charged "
			 "their time so far",
			 stats[OFFCPU_STAT_STILL_BLOCKED]);
	if (stats[OFFCPU_STAT_COUNTS_MAP_FULL] || stats[OFFCPU_STAT_STORAGE_FAILED] ||
	    stats[CPU_STAT_STACK_MAP_FULL] || stats[OFFCPU_STAT_BLOCKS_MAP_FULL])
		log_warn("off-CPU window lost data: %" PRIu64 " blocks (counts map full, raise "
			 "--max-sample-keys), %" PRIu64 " stacks (stacks map full, raise "
			 "--max-stacks), %" PRIu64 " threads without block storage (%" PRIu64
			 " of them: %d threads by id already)",
			 stats[OFFCPU_STAT_COUNTS_MAP_FULL], stats[CPU_STAT_STACK_MAP_FULL],
			 stats[OFFCPU_STAT_STORAGE_FAILED], stats[OFFCPU_STAT_BLOCKS_MAP_FULL],
			 OFFCPU_MAX_THREADS);
	if (stats[OFFCPU_STAT_REQUESTS_FULL] || stats[OFFCPU_STAT_TASK_WORK_FAILED])
		log_warn("off-CPU user stacks not taken: %" PRIu64 " blocks (%d threads awaiting "
			 "one already), %" PRIu64 " refused by the kernel's task work",
			 stats[OFFCPU_STAT_REQUESTS_FULL], OFFCPU_MAX_THREADS,
			 stats[OFFCPU_STAT_TASK_WORK_FAILED]);
	log_debug("off-CPU counters: %" PRIu64 " switches, %" PRIu64 " recorded, %" PRIu64
		  " stacks from the previous window, %" PRIu64 " user stacks unknown (not "
		  "blocked in a syscall), %.3f s of blocks before the window not charged",
		  stats[OFFCPU_STAT_SWITCHES], stats[OFFCPU_STAT_RECORDED],
		  stats[OFFCPU_STAT_WINDOW_ENDED], stats[OFFCPU_STAT_USER_STACK_UNKNOWN],
		  stats[OFFCPU_STAT_EARLIER_NS] / 1e9);
	if (!offcpu_profiler__bpf_run_stats(agent->offcpu, &bpf_ns, &bpf_runs) && bpf_runs)
		log_debug("bpf: off-CPU program ran %" PRIu64 " times, %" PRIu64
			  " ns in all, %" PRIu64 " ns per run",
			  bpf_runs, bpf_ns, bpf_ns / bpf_runs);
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
	uint64_t spooled;
	int first_error;
	uint64_t errors;
};

/* Hands one process's profile to the uploader (its spool, on disk). */
static int push_process(void *ctx, uint32_t pid, const char *comm, const uint8_t *data, size_t size)
{
	struct push_context *push = ctx;
	const struct kiln_options *opts = &push->agent->opts;
	struct remote_profile profile = {
		.off_cpu = push->meta->off_cpu,
		.pid = pid,
		.start_ns = push->meta->start_ns,
		.duration_ns = push->meta->duration_ns,
	};
	int err;

	snprintf(profile.comm, sizeof(profile.comm), "%s", comm);
	snprintf(profile.service_name, sizeof(profile.service_name), "%s",
		 opts->service_name ? opts->service_name : comm);
	snprintf(profile.hostname, sizeof(profile.hostname), "%s", push->agent->hostname);
	err = uploader__push(push->agent->uploader, &profile, data, size);
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
 * Writes a drained window as PREFIX-<UTC start>.pb.gz when writing locally,
 * and spools one profile per process when pushing.
 */
static int write_window(struct agent *agent, bool off_cpu, struct cpu_window *window,
			const char *stamp, int64_t start_ns, int64_t duration_ns)
{
	struct window_profile_result result = {}, push_result = {};
	struct output_retention_stats before;
	struct window_profile *profile;
	char path[PATH_MAX] = "", comment[160], what[PATH_MAX + 64];
	const char *kind = off_cpu ? "off-CPU" : "CPU";
	int err;

	if (agent->opts.output_dir &&
	    snprintf(path, sizeof(path), "%s/%s-%s.pb.gz", agent->opts.output_dir,
		     off_cpu ? "offcpu" : "cpu", stamp) >= (int)sizeof(path))
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
	profile = window_profile__new(window, agent->processes, agent->symbolizer, &meta,
				      agent->opts.output_dir && agent->uploader);
	if (!profile) {
		err = -errno;
		log_error("building the %s profile: %s", kind, strerror(-err));
		return err;
	}
	if (agent->opts.output_dir) {
		err = window_profile__write(profile, path, &result);
		if (err) {
			log_error("writing %s: %s", path, strerror(-err));
			goto cleanup;
		}
		if (agent->retention) {
			output_retention__stats(agent->retention, &before);
			output_retention__added(agent->retention, strrchr(path, '/') + 1);
			report_retention(agent, &before);
		}
	}
	if (agent->uploader) {
		struct push_context push = { .agent = agent, .meta = &meta };

		err = window_profile__for_each_process(profile, push_process, &push, &push_result);
		if (push.errors)
			log_warn("%s window: %" PRIu64 " process profiles could not be spooled: %s",
				 kind, push.errors, strerror(-push.first_error));
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
	if (off_cpu)
		report_off_cpu_window(agent, what, window, &result);
	else
		report_window(agent, what, window, &result);
cleanup:
	window_profile__free(profile);
	return err;
}

/* Upload counters since start, each window. */
static void report_uploads(struct agent *agent)
{
	struct uploader_stats stats;

	uploader__stats(agent->uploader, &stats);
	log_info("uploads to %s: %" PRIu64 " sent (%" PRIu64 " bytes), %" PRIu64 " failed, %" PRIu64
		 " retried, %" PRIu64 " dropped; %" PRIu64 " waiting in the spool (%" PRIu64
		 " bytes)",
		 agent->opts.remote_store, stats.sent, stats.sent_bytes, stats.failed,
		 stats.retried, stats.dropped, stats.pending, stats.pending_bytes);
	if (stats.dropped > agent->uploads_dropped_reported)
		log_warn("spool full (--spool-max-bytes): %" PRIu64 " oldest profiles dropped "
			 "unsent (%" PRIu64 " since start, %" PRIu64 " bytes)",
			 stats.dropped - agent->uploads_dropped_reported, stats.dropped,
			 stats.dropped_bytes);
	if (stats.corrupt)
		log_debug("spool: %" PRIu64 " damaged files removed", stats.corrupt);
	agent->uploads_dropped_reported = stats.dropped;
}

/*
 * Ends the window that started at start_ns (Unix): swaps every program's
 * buffers first, so the profiles cover the same span, then writes them.
 */
static int end_window(struct agent *agent, int64_t start_ns, int64_t duration_ns)
{
	struct cpu_window windows[2] = {};
	bool drained[2] = {};
	time_t start_s = start_ns / 1000000000;
	char stamp[32];
	struct tm tm;
	int err = 0;

	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&start_s, &tm));
	for (int off_cpu = 0; off_cpu < 2; off_cpu++) {
		int drain_err;

		if (off_cpu ? !agent->offcpu : agent->opts.no_cpu)
			continue;
		drain_err = off_cpu ? offcpu_profiler__end_window(agent->offcpu, &windows[off_cpu])
				    : cpu_profiler__end_window(agent->profiler, &windows[off_cpu]);
		if (drain_err)
			log_error("draining the %s window: %s", off_cpu ? "off-CPU" : "CPU",
				  strerror(-drain_err));
		drained[off_cpu] = !drain_err;
		err = err ? err : drain_err;
	}
	/* Announcements made before the swap: take them before symbolizing. */
	take_captures(agent);
	for (int off_cpu = 0; off_cpu < 2; off_cpu++) {
		if (drained[off_cpu]) {
			int write_err;

			/* The process model is brought up to date before the window is read. */
			process_table__sync_window(agent->processes, &windows[off_cpu]);
			write_err = write_window(agent, off_cpu, &windows[off_cpu], stamp, start_ns,
						 duration_ns);
			err = err ? err : write_err;
		}
		cpu_window__free(&windows[off_cpu]);
	}
	report_debuginfod(agent);
	process_table__end_window(agent->processes);
	if (agent->uploader)
		report_uploads(agent);
	agent->windows_written += !err;
	return err;
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
			elapsed = (int64_t)clock_ns(CLOCK_MONOTONIC) - start_mono;
		}
		/* A stop mid-window still writes what was sampled so far. */
		err = end_window(agent, start_real, elapsed);
		start_mono += elapsed;
		start_real += elapsed;
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
	signal(SIGPIPE, SIG_IGN);

	/* Before any other thread exists: the symbolizer may set DEBUGINFOD_URLS. */
	struct symbolizer_opts symbolizer_opts = {
		.max_dwarf_memory = agent.opts.max_dwarf_memory,
		.debuginfod_urls = agent.opts.debuginfod_urls ? agent.opts.debuginfod_urls
							      : getenv("DEBUGINFOD_URLS"),
	};
	agent.symbolizer = symbolizer__new(&symbolizer_opts);
	if (!agent.symbolizer && errno == ENOENT && symbolizer_opts.debuginfod_urls) {
		/* DEBUGINFOD_URLS set by a login profile must not stop a host without the library. */
		log_warn("debuginfod: cannot load libdebuginfod.so.1 (install libdebuginfod1), "
			 "continuing without fetching debug files");
		symbolizer_opts.debuginfod_urls = NULL;
		agent.symbolizer = symbolizer__new(&symbolizer_opts);
	}
	if (!agent.symbolizer) {
		log_error("creating the symbolizer: %s", strerror(errno));
		goto cleanup;
	}
	if (symbolizer_opts.debuginfod_urls &&
	    symbolizer_opts.debuginfod_urls[strspn(symbolizer_opts.debuginfod_urls, " ")])
		log_info("debuginfod: missing debug files are fetched in the background from %s",
			 symbolizer_opts.debuginfod_urls);
	agent.processes = process_table__new(agent.opts.max_processes);
	if (!agent.processes) {
		log_error("creating the process table: %s", strerror(errno));
		goto cleanup;
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
	err = process_capture__start(agent.capture, agent.profiler);
	if (err) {
		log_error("starting the process capture thread: %s", strerror(-err));
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
		struct process_listener unwind_listener;

		unwind_maps__process_listener(agent.unwind, &unwind_listener);
		if (add_process_listener(&agent, &unwind_listener))
			goto cleanup;
	}
	if (add_process_listener(&agent, &(struct process_listener){
						 .on_removed = sampler_on_removed,
						 .ctx = agent.profiler,
					 }))
		goto cleanup;
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
			.hooks = agent.opts.off_cpu_hooks == OFF_CPU_HOOKS_AUTO
					 ? -1
					 : (int)agent.opts.off_cpu_hooks - OFF_CPU_HOOKS_TASK_WORK,
		};

		agent.offcpu = offcpu_profiler__new(&offcpu_opts);
		if (!agent.offcpu) {
			log_error("loading the off-CPU program: %s", strerror(errno));
			goto cleanup;
		}
	}
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
		const struct remote_opts remote_opts = {
			.url = agent.opts.remote_store,
			.protocol = agent.opts.remote_parca ? REMOTE_PARCA : REMOTE_PYROSCOPE,
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
		const struct uploader_opts uploader_opts = {
			.remote = &remote_opts,
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
			 agent.opts.remote_store, agent.opts.remote_parca ? "Parca" : "Pyroscope",
			 agent.opts.spool_dir, agent.opts.spool_max_bytes);
		if (stats.recovered)
			log_info("%" PRIu64 " profiles (%" PRIu64
				 " bytes) from an earlier run wait "
				 "in the spool",
				 stats.recovered, stats.pending_bytes);
		agent.uploads_dropped_reported = stats.dropped;
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
	/* The capture thread consumes the profiler's events: it stops first. */
	process_capture__free(agent.capture);
	offcpu_profiler__free(agent.offcpu);
	cpu_profiler__free(agent.profiler);
	agent.profiler = NULL;
	unwind_maps__free(agent.unwind);
	process_table__free(agent.processes);
	symbolizer__free(agent.symbolizer);
	/* Sampling has stopped: what is spooled gets a bounded time to leave. */
	if (agent.uploader) {
		uploader__stop(agent.uploader, agent.opts.remote_drain_timeout_s * 1000);
		report_uploads(&agent);
	}
	uploader__free(agent.uploader);
	curl_api_unload();
	output_retention__free(agent.retention);
	return exit_code;
}
