#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what kiln needs to build, run and test on Debian 12 / Ubuntu,
# through apt. Quick and silent when everything is already there.
#   scripts/install-deps.sh          build, run and test dependencies
#   scripts/install-deps.sh --bench  also what bench/ compares against
set -euo pipefail

packages=(
	make gcc clang pkg-config
	libclang-rt-dev    # clang's -fsanitize=fuzzer runtime: make check replays the fuzz corpus
	clang-format       # make check: the tree keeps .clang-format's layout
	libbpf-dev libelf-dev libdw-dev zlib1g-dev
	libiberty-dev      # the C++ and Rust demanglers binutils and gdb use
	liblzma-dev        # MiniDebugInfo (.gnu_debugdata) is xz-compressed
	libdebuginfod-dev  # debug files fetched from debuginfod servers
	protobuf-c-compiler libprotobuf-c-dev
	libcurl4-openssl-dev  # pushing profiles (HTTP/1.1, HTTP/2 with nghttp2, TLS)
	libpcre2-dev       # relabel_configs' regexes
	libmd-dev          # MD5 for relabeling's hashmod, as Prometheus hashes
	libyaml-dev        # the config file (--config)
	libmicrohttpd-dev  # the /metrics and /healthz endpoint (--http-address)
	libjson-c-dev      # the Kubernetes API's pods (--kubernetes)
	bpftool
	golang-go          # go tool pprof: the independent reader in tests
	binutils           # readelf/objcopy for test fixtures
	xz-utils           # MiniDebugInfo test fixtures
	debuginfod         # the real server the debuginfod tests fetch from
	g++                # the C++ ground-truth program
	elfutils           # eu-stack: the reference unwinder in tests
	llvm               # llvm-symbolizer: the reference symbolizer in tests
	procps             # pgrep/ps in tests
	python3            # the integration tests
	util-linux         # setpriv: the unprivileged test
	python3-grpcio     # the gRPC servers standing in for Parca and an OTLP receiver in tests
	python3-protobuf protobuf-compiler  # the OTLP receiver decodes with classes from kiln's .proto
	python3-h2         # the raw HTTP/2 server sending malformed gRPC trailers in tests
	python3-yaml       # reading the DaemonSet manifest in tests
	openssl            # certificates for the TLS push tests
	systemd            # systemd-analyze: checks the service unit in tests
	prometheus         # the real server that scrapes /metrics in tests
	chromium           # the headless browser that loads the flame graph page in tests
)
# npm installs the page's viewer (speedscope) and the tests' browser driver;
# any working npm will do (Node.js may come from elsewhere than Debian).
command -v npm >/dev/null 2>&1 || packages+=(npm)
# libc6-dbg: glibc's DWARF, for the symbolization bench.
[ "${1:-}" = "--bench" ] && packages+=(linux-perf time libbpf-tools util-linux libc6-dbg)

missing=()
for p in "${packages[@]}"; do
	# Ubuntu ships bpftool inside linux-tools; accept any working bpftool.
	if [ "$p" = bpftool ] && command -v bpftool >/dev/null 2>&1; then
		continue
	fi
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
# The page's npm packages, at the versions agent/http/ui/package-lock.json
# pins: again only when the lock file is newer than what is installed.
install_ui() {
	local ui
	ui="$(dirname "$0")/../agent/http/ui"
	if [ -f "$ui/node_modules/.package-lock.json" ] &&
		[ ! "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]; then
		return 0
	fi
	echo "install-deps: installing the page's viewer and test driver (npm ci in agent/http/ui)"
	npm ci --prefix "$ui" --no-audit --no-fund --loglevel=error >/dev/null
}

if [ ${#missing[@]} -eq 0 ]; then
	install_ui
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
	# Ubuntu: bpftool comes with the kernel's tools package.
	if printf '%s\n' "${missing[@]}" | grep -qx bpftool; then
		rest=()
		for p in "${missing[@]}"; do [ "$p" = bpftool ] || rest+=("$p"); done
		apt-get install -y -q --no-install-recommends "${rest[@]}" \
			"linux-tools-$(uname -r)" linux-tools-common >/dev/null
	else
		exit 1
	fi
fi
install_ui
