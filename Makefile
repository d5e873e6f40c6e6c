# SPDX-License-Identifier: Apache-2.0
# kiln: build, test, run and benchmark. `make V=1` shows full commands.

# `make SANITIZE=address,undefined` (any -fsanitize= list) builds into a
# directory of its own (build-sanitize-address-undefined), so objects built
# with other flags never mix, and runs the tests that build serves.
SANITIZE ?=
comma := ,
BUILD ?= $(if $(SANITIZE),build-sanitize-$(subst $(comma),-,$(SANITIZE)),build)
CC ?= cc
CLANG ?= clang
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
PROTOC_C ?= protoc-c

# The target architecture, in the kernel's spelling (bpf/x86/vmlinux.h,
# __TARGET_ARCH_x86), as libbpf-tools names it. The BPF unwinder and the
# unwind tables follow x86-64's registers (rip, rsp, rbp): x86 is the only
# one kiln handles. The goals that build nothing work anywhere.
ARCH ?= $(shell uname -m)
override ARCH := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(ARCH)))
SUPPORTED_ARCHS := x86
ifeq ($(filter $(ARCH),$(SUPPORTED_ARCHS)),)
ifneq ($(filter-out clean format format-check deps,$(or $(MAKECMDGOALS),all)),)
$(error kiln builds for x86_64 only (ARCH=$(ARCH)): its BPF unwinder reads x86-64 registers)
endif
endif

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKGS := libbpf libelf libdw libprotobuf-c zlib liblzma libdebuginfod libcurl libpcre2-8 libmd yaml-0.1 \
	libmicrohttpd json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl and libdebuginfod: headers only; kiln dlopen()s them when pushing
# (agent/push/curl_api.c) or fetching debug files (symbolizer/debuginfod_fetcher.c).
PKG_LIBS := $(filter-out -lcurl -ldebuginfod,$(shell pkg-config --libs $(PKGS) 2>/dev/null || \
	    echo -lbpf -lelf -ldw -lprotobuf-c -lz -llzma -lpcre2-8 -lmd -lyaml -lmicrohttpd -ljson-c))

# What kiln needs to build at all, kept apart from the users' CFLAGS,
# EXTRA_CFLAGS, LDFLAGS and LDLIBS (after kiln's, so they win), as
# libbpf-tools does: `make CFLAGS=-O0` changes the optimisation only.
CFLAGS ?= -O2 -g
KILN_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers -D_GNU_SOURCE
# Sanitized builds (SANITIZE, or FUZZ for the libFuzzer targets, which
# are always built with ASan and UBSan): user-space code only, the BPF
# objects are the same. Any report aborts, so a test cannot pass over one.
ifneq ($(FUZZ),)
override SANITIZE := address,undefined
endif
ifneq ($(SANITIZE),)
SANITIZE_FLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
KILN_CFLAGS += $(SANITIZE_FLAGS) $(if $(FUZZ),-fsanitize=fuzzer-no-link)
KILN_LDFLAGS := $(SANITIZE_FLAGS)
endif
INCLUDES := -I. -I$(BUILD) $(PKG_CFLAGS)
ALL_CFLAGS = $(KILN_CFLAGS) $(INCLUDES) $(CFLAGS) $(EXTRA_CFLAGS)
# libiberty (static only): the C++ and Rust demanglers binutils and gdb use.
# libcurl is dlopen()ed, only when pushing (agent/push/curl_api.c).
KILN_LDLIBS := $(PKG_LIBS) -liberty -lpthread -ldl

# The kernel's types for CO-RE, committed per architecture (libbpf-tools'
# $(ARCH)/vmlinux.h) so that kiln builds on a host whose kernel is older or
# has no BTF; kiln probes the running kernel's features at load time.
# `make vmlinux` regenerates it from VMLINUX_BTF.
VMLINUX_H := bpf/$(ARCH)/vmlinux.h
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) \
	      -I$(dir $(VMLINUX_H)) -I.

BPF_PROGS := cpu offcpu features
BPF_SKELS := $(patsubst %,$(BUILD)/bpf/%.skel.h,$(BPF_PROGS))
PROTO_GEN := $(patsubst proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(wildcard proto/*.proto))

# The loaders in agent/sampling/ that include a BPF skeleton: they wait
# for the skeletons, and only kiln links them.
SKEL_SRCS := $(shell grep -l '\.skel\.h"' $(wildcard agent/sampling/*.c) /dev/null)
SKEL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(SKEL_SRCS))
# kiln's library part: everything but main.c and those loaders. Unit tests
# and test tools link it as an archive, taking only the members they use,
# so they build without the BPF toolchain (clang -target bpf, bpftool).
LIB_SRCS := $(wildcard lib/*.c) $(wildcard proto/*.c) $(wildcard symbolizer/*.c) \
	    $(filter-out agent/main.c $(SKEL_SRCS),$(wildcard agent/*.c agent/*/*.c))
# The flame graph page (agent/http/ui/), embedded in kiln: its own files,
# and speedscope's static build when `npm ci` put it there
# (scripts/install-deps.sh); kiln builds without it, and says so on the page.
UI_DIR := agent/http/ui
UI_OWN := index.html kiln.js kiln.css
UI_VIEWER_DIR := $(UI_DIR)/node_modules/speedscope/dist/release
UI_VIEWER := $(notdir $(wildcard $(addprefix $(UI_VIEWER_DIR)/,index.html *.js *.css *.png *.ico \
	*.woff2 *.LICENSE.md)))
UI_ASSET_ARGS := $(foreach f,$(UI_OWN),ui/$(f) $(UI_DIR)/$(f)) \
	$(foreach f,$(UI_VIEWER),viewer/$(f) $(UI_VIEWER_DIR)/$(f))
UI_ASSETS_OBJ := $(BUILD)/agent/http/ui_assets.o
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS)) $(PROTO_GEN:.c=.o) $(UI_ASSETS_OBJ)
LIB := $(BUILD)/libkiln.a
KILN := $(BUILD)/kiln

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/*/test_*.c))
# Test-only drivers of library parts (the symbolizer alone), for tests and bench/.
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
# Every ground-truth program twice: with frame pointers, and as distributions
# build code (gcc -O2, no frame pointers) for the DWARF unwinder: NAME_nofp.
PROG_SRCS := $(wildcard tests/progs/*.c tests/progs/*.cc)
PROG_NAMES := $(basename $(notdir $(PROG_SRCS)))
TEST_PROGS := $(patsubst %,$(BUILD)/tests/progs/%,$(PROG_NAMES)) \
	      $(patsubst %,$(BUILD)/tests/progs/%_nofp,$(PROG_NAMES)) \
	      $(patsubst tests/progs/lib/%.c,$(BUILD)/tests/progs/lib%_nofp.so,$(wildcard tests/progs/lib/*.c))

.PHONY: all deps vmlinux test test-build check check-headers format-check unit-test run bench \
	clean format install fuzz fuzz-build fuzz-targets sanitize-build sanitize-test \
	sanitize-test-build FORCE
.DELETE_ON_ERROR:
.SECONDARY:

all: $(KILN)

deps:
	$(Q)scripts/install-deps.sh

# Dumped into BUILD first: a failed dump leaves the committed header whole.
vmlinux:
	$(call msg,GEN,$(VMLINUX_H))
	$(Q)mkdir -p $(BUILD) $(dir $(VMLINUX_H))
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c >$(BUILD)/vmlinux.h.tmp
	$(Q)mv $(BUILD)/vmlinux.h.tmp $(VMLINUX_H)

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(VMLINUX_H)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The list of embedded files, rewritten only when it changes: the viewer
# installed or removed rebuilds the assets.
$(BUILD)/agent/http/ui_assets.list: FORCE
	$(Q)mkdir -p $(@D)
	$(Q)echo '$(UI_ASSET_ARGS)' | cmp -s - $@ || echo '$(UI_ASSET_ARGS)' >$@

$(BUILD)/agent/http/ui_assets.S: scripts/embed-assets.sh $(BUILD)/agent/http/ui_assets.list \
		$(filter-out ui/% viewer/%,$(UI_ASSET_ARGS))
	$(call msg,EMBED,$@)
	$(Q)scripts/embed-assets.sh $@ $(UI_ASSET_ARGS)

$(UI_ASSETS_OBJ): $(BUILD)/agent/http/ui_assets.S
	$(call msg,AS,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

FORCE:

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(BUILD)/proto
	$(Q)$(PROTOC_C) --c_out=$(BUILD) $<

# Generated headers must exist before any object that may include them:
# the protobuf ones for all, the skeletons only for the objects that
# include them, and main.o (which kiln alone links) to be safe.
$(BUILD)/%.o: %.c | $(PROTO_GEN)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@
$(SKEL_OBJS) $(BUILD)/agent/main.o: | $(BPF_SKELS)

# One schema imports another: every generated header first.
$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c | $(PROTO_GEN)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(KILN): $(BUILD)/agent/main.o $(SKEL_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(KILN_LDFLAGS) $(LDFLAGS) $^ $(KILN_LDLIBS) $(LDLIBS) -o $@

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(KILN_LDFLAGS) $(LDFLAGS) $^ $(KILN_LDLIBS) $(LDLIBS) -o $@

$(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(KILN_LDFLAGS) $(LDFLAGS) $^ $(KILN_LDLIBS) $(LDLIBS) -o $@

$(BUILD)/tests/unit/%.o: KILN_CFLAGS += -DFIXTURE_DIR='"$(abspath $(BUILD))/tests/fixtures"' \
	-DFIXTURE_SOURCE_DIR='"$(abspath tests/fixtures)"'

# Ground-truth programs for the integration tests, with frame pointers in
# every function: clang keeps them in leaf functions too, gcc 12 does not.
PROG_CFLAGS := -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer
NOFP_CFLAGS := -O2 -g -fomit-frame-pointer
$(BUILD)/tests/progs/lib%_nofp.so: tests/progs/lib/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(NOFP_CFLAGS) -shared -fPIC -o $@ $<
$(BUILD)/tests/progs/%_nofp: tests/progs/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(NOFP_CFLAGS) -o $@ $< -lpthread
$(BUILD)/tests/progs/%_nofp: tests/progs/%.cc
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(NOFP_CFLAGS) -o $@ $<
$(BUILD)/tests/progs/%: tests/progs/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(PROG_CFLAGS) -o $@ $< -lpthread
$(BUILD)/tests/progs/%: tests/progs/%.cc
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG)++ $(PROG_CFLAGS) -o $@ $<

# libFuzzer targets (tests/fuzz/fuzz_*.c), built by clang with ASan and
# UBSan into FUZZ_BUILD over a library built the same way there.
# `make fuzz` runs each for FUZZ_SECONDS and keeps what finds new paths in
# tests/fuzz/corpus/; `make check` replays that corpus, without mutating it.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

$(BUILD)/tests/fuzz/%: $(BUILD)/tests/fuzz/%.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(KILN_LDFLAGS) -fsanitize=fuzzer $(LDFLAGS) $^ $(KILN_LDLIBS) $(LDLIBS) -o $@

fuzz-targets: $(FUZZ_TARGETS)

fuzz-build:
	$(Q)$(MAKE) --no-print-directory FUZZ=1 BUILD=$(FUZZ_BUILD) CC=$(CLANG) fuzz-targets

fuzz: fuzz-build
	$(Q)FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/fuzz.sh run

# kiln, the unit tests and the test tools with ASan and UBSan, for `make
# check` to run their unit tests and one integration file (tests/run.sh).
SANITIZE_BUILD ?= build-sanitize-address-undefined
# The ground-truth programs are not sanitized: only the two the sanitized
# run profiles (tests/integration/sanitized_run.py) are built there.
SANITIZE_TEST_BUILD = $(KILN) $(UNIT_TESTS) $(TEST_TOOLS) $(BUILD)/tests/progs/inline_hot_nofp \
		      $(BUILD)/tests/progs/jit_loop
sanitize-build:
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined BUILD=$(SANITIZE_BUILD) \
		sanitize-test-build
sanitize-test-build: $(SANITIZE_TEST_BUILD)

# What `make SANITIZE=...` does: build everything sanitized, run it.
ifneq ($(SANITIZE),)
ifeq ($(FUZZ),)
.DEFAULT_GOAL := sanitize-test
endif
endif
sanitize-test: $(SANITIZE_TEST_BUILD)
	$(Q)BUILD=$(BUILD) tests/run.sh --sanitized

# Every header compiles on its own (systemd's rule): user-space headers as
# user code, the headers bpf/ shares with the agent also for the BPF target,
# after vmlinux.h as the .bpf.c files include them. One stamp per header.
USER_HEADERS := $(wildcard agent/*.h agent/*/*.h lib/*.h symbolizer/*.h proto/*.h)
SHARED_BPF_HEADERS := $(filter-out %.bpf.h,$(wildcard bpf/*.h))
HEADER_CHECKS := $(patsubst %,$(BUILD)/headers/%.ok,$(USER_HEADERS) $(SHARED_BPF_HEADERS)) \
		 $(patsubst %,$(BUILD)/headers/%.bpf.ok,$(SHARED_BPF_HEADERS))

$(BUILD)/headers/%.h.ok: %.h | $(PROTO_GEN)
	$(call msg,HDR,$<)
	$(Q)mkdir -p $(@D)
	$(Q)printf '#include "%s"\n' $< | \
		$(CC) $(ALL_CFLAGS) -fsyntax-only -MMD -MP -MF $@.d -MT $@ -x c -
	$(Q)touch $@

$(BUILD)/headers/%.h.bpf.ok: %.h $(VMLINUX_H)
	$(call msg,HDR-BPF,$<)
	$(Q)mkdir -p $(@D)
	$(Q)printf '#include "vmlinux.h"\n#include "%s"\n' $< | \
		$(CLANG) $(BPF_CFLAGS) -fsyntax-only -MMD -MP -MF $@.d -MT $@ -x c -
	$(Q)touch $@

check-headers: $(HEADER_CHECKS)

# `make test` and `make run` first install whatever a fresh machine lacks,
# then build in a sub-make so pkg-config sees the installed libraries.
test:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory check

# Everything the tests run, built without running them.
test-build: $(KILN) $(UNIT_TESTS) $(TEST_TOOLS) $(TEST_PROGS)

check: format-check check-headers test-build fuzz-build sanitize-build
	$(Q)BUILD=$(BUILD) FUZZ_BUILD=$(FUZZ_BUILD) SANITIZE_BUILD=$(SANITIZE_BUILD) tests/run.sh

unit-test: $(UNIT_TESTS) $(TEST_TOOLS)
	$(Q)BUILD=$(BUILD) tests/run.sh --unit-only

run:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory $(KILN)
	$(KILN) --output-dir profiles $(ARGS)

bench:
	$(Q)scripts/install-deps.sh --bench
	$(Q)$(MAKE) --no-print-directory $(KILN)
	$(Q)BUILD=$(BUILD) bench/run.sh

# kiln, its systemd unit (scripts/kiln.service, ExecStart under PREFIX) and the README.
PREFIX ?= /usr/local
install: $(KILN)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX)/bin/kiln)
	$(Q)install -D -m 0755 $(KILN) $(DESTDIR)$(PREFIX)/bin/kiln
	$(Q)install -d $(DESTDIR)/etc/systemd/system $(DESTDIR)$(PREFIX)/share/doc/kiln
	$(Q)sed 's|/usr/local/|$(PREFIX)/|g' scripts/kiln.service \
		>$(DESTDIR)/etc/systemd/system/kiln.service
	$(Q)install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/kiln/README.md

clean:
	$(call msg,CLEAN,$(BUILD) $(FUZZ_BUILD) $(SANITIZE_BUILD))
	$(Q)rm -rf $(BUILD) $(FUZZ_BUILD) $(SANITIZE_BUILD)

# Every C source and header, generated ones (vmlinux.h) aside: .clang-format's kernel style.
FORMAT_SRCS = $(filter-out %/vmlinux.h,$(shell git ls-files '*.c' '*.h' 2>/dev/null))
format:
	$(Q)clang-format -i $(FORMAT_SRCS)

format-check:
	$(call msg,FORMAT,check)
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
