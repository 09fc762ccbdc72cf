# SPDX-License-Identifier: GPL-2.0-only
#
# make [KVER=<release>|KDIR=<build tree>]   build the modules (W=1)
# make check                               what CI runs: the suite on 6.1,
#                                          ours and in-tree, its core tests
#                                          on 5.10 (ours); the host checks
#                                          (lint, kconfig-check among them)
# make check KVER=<release>                suite on ours, then on in-tree
# make check-debug                         same on a KASAN/kmemleak/lockdep
#                                          6.1 kernel, then a scan of its log
# make check-matrix                        suite on every supported kernel
# make check-nointree                      suite on a 6.1 kernel built
#                                          without the in-tree tproxy/socket
# make check-noipv6                        netlink fuzzer on that kernel
#                                          built without IPv6 too
# make check-nosockcg                      suite on that kernel with sockets
#                                          that carry no cgroup
# make kconfig-check                       build against trees without the
#                                          in-tree modules, IPv6, cgroups,
#                                          conntrack (no kernel built)
# make lint                                shellcheck, checkpatch, kernel-doc
# make coverage                            suite on a gcov 6.1 kernel, then
#                                          the modules' line coverage
# make fuzz                                a million netlink cases, then a
#                                          million crafted packets (ours)
# make bench                               kernel instructions per proxied
#                                          datagram/connection, each setup
#                                          against direct delivery
# make demo                                a proxied connection, shown
# make userspace                           the patched libnftnl and nft,
#                                          into build/userspace/prefix
# make install / make uninstall            modules into (out of) updates/dkms,
#                                          depmod; refused if DKMS owns them;
#                                          and install-tools/uninstall-tools
# make install-tools [PREFIX=/usr/local]   nftp-diagnose and its manual page
#
# KVER defaults to the newest kernel whose headers are installed (never
# `uname -r`: the host may be a kernel without modules, as ours is).

# KDIR given: the installed release whose headers it is, else the tree's
# own release (a distribution's headers may say the upstream one there)
ifneq ($(origin KDIR), undefined)
KVER ?= $(firstword $(foreach d,$(wildcard /lib/modules/*/build),\
	$(if $(filter $(realpath $(d)),$(realpath $(KDIR))),\
		$(patsubst /lib/modules/%/build,%,$(d)))) \
	$(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null))
endif
KVER ?= $(shell scripts/kver.sh 2>/dev/null)
# Kbuild takes M=<dir> apart at spaces ("building multiple external
# modules is not supported"): say so in our words
ifneq ($(word 2,$(CURDIR)),)
$(error the checkout's path has a space, which the kernel's build cannot take: $(CURDIR))
endif
KDIR ?= /lib/modules/$(KVER)/build
# One build directory per kernel tree, not per release: two trees of one
# release (the distribution's headers, a tree configured differently)
# must not share probe results or modules.  The installed headers of a
# release keep build/<release>, which DKMS and the VM harness use.
ifeq ($(realpath $(KDIR)),$(realpath /lib/modules/$(KVER)/build))
B := build/$(KVER)
else
B := build/$(KVER)-$(shell realpath $(KDIR) | sha256sum | cut -c1-8)
endif

.PHONY: all modules deps builddir check check-matrix check-debug coverage check-nointree \
	check-noipv6 check-nosockcg kconfig-check lint userspace tools load demo install uninstall \
	install-tools uninstall-tools clean fuzz-tool fuzz fuzz-netlink fuzz-packets bench

all: modules

# A kernel of scripts/newest-kernel.sh has its headers, and the newer gcc
# they need, only in its chroot: the build runs there, the tree
# bind-mounted at the same path so that M=, build/ and the probes' paths
# are the same.  build-modules.sh itself builds against the KDIR it is
# given.  (Expanded only when the modules recipe runs.)
TOP := $(realpath $(CURDIR))
KCHROOT = $(if $(wildcard $(KDIR)/Makefile),,$(shell scripts/newest-kernel.sh --root $(KVER) 2>/dev/null))

modules:
	@[ -n "$(KVER)" ] || { echo "no kernel headers found: run scripts/deps.sh or set KVER=/KDIR="; exit 1; }
	$(if $(KCHROOT),scripts/newest-kernel.sh --run $(KVER) --bind $(TOP) -- $(TOP)/)scripts/build-modules.sh $(KDIR) $(if $(KCHROOT),$(TOP)/)$(B)

deps:
	scripts/deps.sh

# the build directory of KVER/KDIR, for scripts (vm-run's NFTP_BUILD)
builddir:
	@echo $(B)

# The CI set: the whole matrix does not fit CI's 90 minutes on 2 cores.
# The distribution's kernel runs the whole suite, ours and the in-tree
# reference; the oldest runs the scripts of the kernel paths whose API
# moved since 5.10 (lookups, TIME_WAIT, routes, defrag, ICMP, socket
# keys, faults and the fuzzers).  The newest kernel, and the rest of the
# suite on 5.10, are make check-matrix: a suite of 25 scripts runs
# 25-30 minutes a kernel here, and a slow day adds half again.
CHECK_KERNELS ?= 5.10 6.1
CHECK_REF ?= 6.1
CHECK_CORE ?= 5.10
CHECK_CORE_TESTS ?= nft_faults.sh nft_fuzz_netlink.sh nft_fuzz_packets.sh \
	nft_socket_icmp.sh nft_socket_keys.sh nft_tproxy_localout.sh \
	nft_tproxy_localroute.sh nft_tproxy_tcp.sh nft_tproxy_timewait.sh \
	nft_tproxy_udp.sh

check:
ifneq ($(filter command line environment,$(origin KVER)),)
	scripts/check.sh --kver $(KVER)
else
	scripts/check-matrix.sh --kernels "$(CHECK_KERNELS)" --ref "$(CHECK_REF)" \
		--core "$(CHECK_CORE)" --core-tests "$(CHECK_CORE_TESTS)"
endif

check-matrix:
	scripts/check-matrix.sh

check-debug:
	scripts/check-debug.sh

# the suite on a 6.1 kernel with gcov (scripts/debug-kernel.sh --flavour
# gcov: no detectors, stock speed), then the coverage of kmod/ and
# nft-expr/; scripts/check-debug.sh --coverage-debug: on the debug kernel
coverage:
	scripts/check-debug.sh --coverage

# the suite on a 6.1 kernel built without the in-tree tproxy/socket
# (scripts/debug-kernel.sh --flavour no-intree: ~10 min to build, once)
check-nointree:
	scripts/debug-kernel.sh --flavour no-intree
	scripts/check.sh --kernel-dir build/kernel-no-intree

# the netlink fuzzer on that kernel without IPv6: no inet or ip6 tables,
# which the fuzzer's model probes (the rest of the suite needs IPv6)
check-noipv6:
	scripts/debug-kernel.sh --flavour no-ipv6
	scripts/check.sh --kernel-dir build/kernel-no-ipv6 nft_fuzz_netlink.sh

# the suite on that kernel without socket cgroup data (no cgroup BPF,
# net_prio or net_cls): socket cgroupv2 is refused, the rest works
check-nosockcg:
	scripts/debug-kernel.sh --flavour no-sockcg
	scripts/check.sh --kernel-dir build/kernel-no-sockcg

# the modules against 6.1 trees configured without the in-tree
# tproxy/socket, IPv6, cgroups, socket cgroup data, conntrack
kconfig-check:
	scripts/kconfig-check.sh

# shellcheck, checkpatch and kernel-doc over what we write
lint:
	scripts/lint.sh

# nft-tproxy's patched libnftnl and nft (scripts/build-userspace.sh; the
# release tarballs from ../shared/upstream, $NFTP_UPSTREAM or
# USERSPACE_TARBALLS=DIR)
userspace:
	scripts/build-userspace.sh $(if $(USERSPACE_TARBALLS),--tarballs $(USERSPACE_TARBALLS))

# userspace test tools (tools/*/), into build/tools/
tools:
	@$(MAKE) -s -C tools/tpload O=$(CURDIR)/build/tools
	@$(MAKE) -s -C tools/nfnl-fuzz O=$(CURDIR)/build/tools
	@$(MAKE) -s -C tools/bench O=$(CURDIR)/build/tools/bench

# guest kernel instructions per unit, ours and in-tree boots alternately
# (scripts/bench.sh; docs/PERF.md); not part of make check
bench:
	scripts/bench.sh $(if $(filter command line environment,$(origin KVER)),--kver $(KVER)) $(BENCH_ARGS)

# nft_load.sh at its full figures in the VM, ours then in-tree (scripts/load.sh)
load:
	scripts/load.sh $(if $(filter command line environment,$(origin KVER)),--kver $(KVER))

demo:
	scripts/demo.sh $(if $(filter command line environment,$(origin KVER)),--kver $(KVER))

# into /lib/modules/$(KVER)/updates/dkms, where DKMS puts them too
install: modules install-tools
	DESTDIR=$(DESTDIR) scripts/install-modules.sh install $(KVER) $(B)

uninstall: uninstall-tools
	DESTDIR=$(DESTDIR) scripts/install-modules.sh uninstall $(KVER) $(B)

# nftp-diagnose and its manual page, for every kernel at once
PREFIX ?= /usr/local
install-tools:
	install -D -m 755 scripts/nftp-diagnose $(DESTDIR)$(PREFIX)/sbin/nftp-diagnose
	install -D -m 644 man/nftp-diagnose.8 $(DESTDIR)$(PREFIX)/share/man/man8/nftp-diagnose.8

uninstall-tools:
	rm -f $(DESTDIR)$(PREFIX)/sbin/nftp-diagnose $(DESTDIR)$(PREFIX)/share/man/man8/nftp-diagnose.8

clean:
	rm -rf build

# nfnl-fuzz, the netlink fuzzer of the tproxy/socket expressions
# (tools/nfnl-fuzz): `make fuzz-tool` builds build/tools/nfnl-fuzz;
# `make fuzz` runs FUZZ_CASES cases (seed FUZZ_SEED) in the VM on our
# modules, split over FUZZ_JOBS processes; each process's report (and a
# progress line every 5 minutes) in build/logs/fuzz-<kver>/fuzz.N.out, kept
# even when the run is cut by FUZZ_TIMEOUT.  Then it sends PKTFUZZ_COUNT
# crafted packets (seed PKTFUZZ_SEED) through selftests/nft_fuzz_packets.sh
# on our modules, its output in build/logs/fuzz-<kver>/packets-ours.log.
# `make fuzz-netlink` and `make fuzz-packets` run one of the two.
FUZZ_CASES ?= 1000000
FUZZ_SEED ?= 1
FUZZ_JOBS ?= 1
FUZZ_TIMEOUT ?= 86400
PKTFUZZ_COUNT ?= 1000000
PKTFUZZ_SEED ?= 1

fuzz-tool:
	$(MAKE) -C tools/nfnl-fuzz O=$(CURDIR)/build/tools

fuzz: fuzz-netlink fuzz-packets

fuzz-netlink: fuzz-tool modules
	scripts/vm-run --kver $(KVER) --timeout $(FUZZ_TIMEOUT) \
		--out build/logs/fuzz-$(KVER) -- \
		tools/nfnl-fuzz/fuzz-parallel.sh build/tools/nfnl-fuzz \
		$(FUZZ_SEED) $(FUZZ_CASES) $(FUZZ_JOBS)

fuzz-packets:
	PKTFUZZ_COUNT=$(PKTFUZZ_COUNT) PKTFUZZ_SEED=$(PKTFUZZ_SEED) \
	NFTP_TEST_TIMEOUT=$(FUZZ_TIMEOUT) \
		scripts/check.sh --kver $(KVER) --ours-only \
		--log fuzz-$(KVER)/packets nft_fuzz_packets.sh
