# mailfleet: one Makefile for the whole tree.
#
#   make            build libshared, the services, the CLI and the unit tests
#   make run        install what is missing, build, start the embedded default
#   make test       install, build, run unit and integration tests
#   make fuzz       build the libFuzzer targets (clang) and run each briefly
#   make bench      compare with Postfix and Dovecot on this machine (root)
#   make check-banned  fail if a banned libc function appears
#
# Knobs: SANITIZE=address,undefined   WERROR=1 (set by CI)   RUN_DIR=./run

CC       ?= cc
BUILD    ?= build
RUN_DIR  ?= ./run
SANITIZE ?=
WERROR   ?=

# libunbound is linked by name: its .pc file names libevent as a private
# requirement, which would make pkg-config fail without libevent-dev.
PKGS := libnats hiredis libmicrohttpd libcjson libprotobuf-c openssl libidn2

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wvla -Wno-unused-parameter
ifneq ($(WERROR),)
WARN += -Werror
endif

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g -O2 -pthread $(WARN) \
               -I. -Ilibshared -I$(BUILD)/proto \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lunbound -lunistring -lsqlite3 -pthread

ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LIBS += -fsanitize=$(SANITIZE)
endif

ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)

PROTOS     := $(wildcard proto/*.proto)
PROTO_C    := $(patsubst proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(PROTOS))
PROTO_H    := $(PROTO_C:.c=.h)
PROTO_O    := $(PROTO_C:.c=.o)

SHARED_SRC := $(wildcard libshared/*.c)
SHARED_O   := $(patsubst %.c,$(BUILD)/%.o,$(SHARED_SRC))
SHARED_LIB := $(BUILD)/libmfshared.a

SERVICES   := smtp-in submission imap queue delivery dnsauth reports web
SERVICE_BINS := $(patsubst %,$(BUILD)/bin/mailfleet-%,$(SERVICES))
CLI_BIN    := $(BUILD)/bin/mailfleet

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))

FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

.PHONY: all deps deps-run deps-test run test unit integration fuzz \
        check-banned clean compose-test helm-check bench
.SECONDARY:

all: check-banned $(SERVICE_BINS) $(CLI_BIN) $(UNIT_BINS) $(TOOL_BINS)

deps:
	@ci/deps.sh build
deps-run:
	@ci/deps.sh run
deps-test:
	@ci/deps.sh test

# --- protobuf ---------------------------------------------------------------
$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/proto
	protoc-c --proto_path=proto --c_out=$(BUILD)/proto $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	$(CC) $(CFLAGS_BASE) -Wno-missing-prototypes -c -o $@ $<

# --- objects ----------------------------------------------------------------
# Every object depends on the generated proto headers so that a fresh tree
# builds in one pass; -MMD keeps header dependencies exact afterwards.
$(BUILD)/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(SHARED_LIB): $(SHARED_O) $(PROTO_O)
	@rm -f $@
	ar rcs $@ $^

# --- services and CLI -------------------------------------------------------
.SECONDEXPANSION:
service_objs = $(patsubst %.c,$(BUILD)/%.o,$(wildcard services/$(1)/*.c))
$(BUILD)/bin/mailfleet-%: $$(call service_objs,$$*) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LIBS)

$(CLI_BIN): $(call service_objs,cli) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LIBS)

# --- unit tests -------------------------------------------------------------
# A test may list extra linker flags (e.g. -Wl,--wrap=fsync) in test_x.ldflags,
# and service sources it tests (e.g. services/imap/store.c) in test_x.srcs.
extra_srcs = $(shell cat $(1) 2>/dev/null)
# (A function, because a literal % in a pattern rule's prerequisites would
# be replaced by the stem.)
extra_objs = $(patsubst %.c,$(BUILD)/%.o,$(call extra_srcs,$(1)))
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $$(call extra_objs,tests/unit/$$*.srcs) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(filter %.o,$^) $(SHARED_LIB) $(shell cat tests/unit/$*.ldflags 2>/dev/null) $(LIBS) -lcmocka

# --- test tools (small clients used by integration tests) -------------------
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $$(call extra_objs,tests/tools/$$*.srcs) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(filter %.o,$^) $(SHARED_LIB) $(LIBS)

# --- checks -----------------------------------------------------------------
check-banned:
	@ci/check-banned.sh

# --- run and test -----------------------------------------------------------
run: deps-run
	@$(MAKE) --no-print-directory all
	@RUN_DIR=$(RUN_DIR) BUILD=$(BUILD) deploy/local/run.sh

unit: $(UNIT_BINS)
	@ci/run-unit.sh $(UNIT_BINS)

integration: all
	@BUILD=$(BUILD) ci/run-integration.sh

# Fuzz targets run briefly in make test: enough to catch a target that no
# longer builds or crashes at once; `make fuzz FUZZ_TIME=600` for real runs.
test: deps-test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=5 >$(BUILD)/fuzz.out 2>&1 || \
		{ tail -40 $(BUILD)/fuzz.out; exit 1; }
	@grep '^fuzz:' $(BUILD)/fuzz.out
	@BUILD=$(BUILD) ci/run-tests.sh $(UNIT_BINS)
	@BUILD=$(BUILD) ci/helm-check.sh
	@ci/compose-test-if-possible.sh

# Performance comparisons with real peers (Postfix, Dovecot, OpenDKIM) on this machine:
# figures side by side with the ratio; fails only when something broke.
# BENCH_QUICK=1 for a short run; BENCH_SETTLE=SECS for the pause before
# file-heavy runs (BENCHMARKING.md).
bench: deps-test
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) ci/run-bench.sh

# Containers end to end with podman (ci/podman-setup.sh installs podman and
# makes the base image on first use; needs root).
compose-test:
	@ci/compose-test.sh

# The Helm chart, rendered and checked without helm (there is none in Debian).
helm-check: $(CLI_BIN)
	@BUILD=$(BUILD) ci/helm-check.sh

# --- fuzzing ----------------------------------------------------------------
FUZZ_CC     ?= clang-14
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
               -I. -Ilibshared -I$(BUILD)/proto $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_TIME   ?= 20

FUZZ_O   := $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(SHARED_SRC) $(PROTO_C))
FUZZ_LIB := $(BUILD)/fuzzobj/libmfshared-fuzz.a

$(BUILD)/fuzzobj/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fno-sanitize=fuzzer -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_O)
	@rm -f $@
	ar rcs $@ $^

# A fuzz target may list service sources it needs in fuzz_x.srcs.
$(BUILD)/fuzz/%: tests/fuzz/%.c $$(call extra_srcs,tests/fuzz/$$*.srcs) $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(call extra_srcs,tests/fuzz/$*.srcs) $(FUZZ_LIB) $(LIBS)

fuzz: deps-test $(PROTO_H) $(FUZZ_BINS)
	@ci/run-fuzz.sh $(FUZZ_TIME) $(FUZZ_BINS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
