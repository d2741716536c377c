# ferry build.  Modules are discovered by folder: every common/*.c goes into libcommon.a,
# bridge/*.c into libbridge.a, guest/*.c (but main.c) into libguest.a, host/*.c (but the
# *_main.c files) into libhost.a.  Tests: tests/{unit,integration}/test_*.c each become a
# binary; tests/bench/*.c benchmark programs; tests/fuzz/fuzz_*.c libFuzzer harnesses.
#
#   make deps      install the Debian packages everything needs (idempotent)
#   make           build everything (gcc, gnu11, -Werror)
#   make test      deps + build + run unit and integration tests
#   make SAN=1 test   the same under ASan+UBSan, in build-san/
#   make demo      deps + build + run the demonstration
#   make bench     build and run the benchmarks
#   make fuzz      run every fuzz harness for FUZZ_SECONDS each (clang/libFuzzer)
#   make format / format-check / lint

CC ?= gcc
SAN ?=
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT = -O1
else
BUILD ?= build
SANFLAGS =
OPT = -O2
endif

WARN = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes -Wno-format-nonliteral
CFLAGS ?= $(OPT) -g
ALL_CFLAGS = -std=gnu11 $(WARN) -D_GNU_SOURCE -ffunction-sections -fdata-sections -I. -I$(BUILD)/gen $(SANFLAGS) $(CFLAGS) -MMD -MP
LDLIBS = -lev -ljansson -lprotobuf-c -lutil -lm
TEST_LDLIBS = -lcmocka

# protoc-c output goes to the build directory, never to git.
PROTO_SRC := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(BUILD)/gen/proto/%.pb-c.c,$(PROTO_SRC))
PROTO_H := $(PROTO_C:.c=.h)

COMMON_SRC := $(wildcard common/*.c)
BRIDGE_SRC := $(wildcard bridge/*.c)
GUEST_SRC := $(filter-out guest/main.c,$(wildcard guest/*.c))
HOST_SRC := $(filter-out %_main.c,$(wildcard host/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIBCOMMON := $(BUILD)/libcommon.a
LIBBRIDGE := $(BUILD)/libbridge.a
LIBGUEST := $(BUILD)/libguest.a
LIBHOST := $(BUILD)/libhost.a
LIBPROTO := $(BUILD)/libproto.a
LIBS := $(LIBHOST) $(LIBGUEST) $(LIBBRIDGE) $(LIBPROTO) $(LIBCOMMON)

BINS :=
ifneq ($(wildcard guest/main.c),)
BINS += $(BUILD)/ferry-gcs
endif
ifneq ($(wildcard host/shim_main.c),)
BINS += $(BUILD)/ferry-shim
endif
ifneq ($(wildcard host/ctl_main.c),)
BINS += $(BUILD)/ferryctl
endif

UNIT_SRC := $(wildcard tests/unit/test_*.c)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
BENCH_SRC := $(filter-out tests/bench/bench_util.c,$(wildcard tests/bench/*.c))
TESTLIB_SRC := $(wildcard tests/lib/*.c)
UNIT_BINS := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))
INTEG_BINS := $(patsubst %.c,$(BUILD)/%,$(INTEG_SRC))
BENCH_BINS := $(patsubst %.c,$(BUILD)/%,$(BENCH_SRC))
LIBTEST := $(BUILD)/libtest.a

# Keep test objects (otherwise make deletes them as intermediates and rebuilds later).
.SECONDARY:
V ?=
Q = $(if $(V),,@)

.PHONY: all deps test unit integration demo bench fuzz format format-check lint clean rootfs
all: $(BINS) $(UNIT_BINS) $(INTEG_BINS) $(BENCH_BINS)

DEB_PACKAGES = build-essential pkg-config libev-dev libjansson-dev libcmocka-dev \
	protobuf-c-compiler libprotobuf-c-dev protobuf-compiler busybox-static crun \
	clang libclang-rt-14-dev clang-format clang-tidy cppcheck iproute2 util-linux procps file
deps:
	@sh tests/scripts/deps.sh $(DEB_PACKAGES)

$(BUILD)/gen/proto/%.pb-c.c $(BUILD)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen/proto
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen/proto $<

$(BUILD)/obj/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBBRIDGE): $(call obj,$(BRIDGE_SRC))
$(LIBGUEST): $(call obj,$(GUEST_SRC))
$(LIBHOST): $(call obj,$(HOST_SRC))
$(LIBPROTO): $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/$(BUILD)/gen/%.o,$(PROTO_C))
$(LIBTEST): $(call obj,$(TESTLIB_SRC))
$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)ar rcs $@ $^

# ferry-gcs is linked statically: it goes into the guest's initramfs as a single file.
GCS_STATIC ?= $(if $(SAN),,-static -Wl,--gc-sections)
$(BUILD)/ferry-gcs: $(call obj,guest/main.c) $(LIBS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) $(GCS_STATIC) -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/ferry-shim: $(call obj,host/shim_main.c) $(LIBS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/ferryctl: $(call obj,host/ctl_main.c) $(LIBS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIBTEST) $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $< $(LIBTEST) $(LIBS) $(LDLIBS) $(TEST_LDLIBS)

unit: $(UNIT_BINS)
integration: $(INTEG_BINS) $(BINS)

# The README's test command.  Runs every unit and integration test binary and prints one
# closing line "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/scripts/run-tests.sh $(UNIT_BINS) $(INTEG_BINS)

bench: all
	@for b in $(BENCH_BINS); do echo "== $$b"; BUILD=$(BUILD) $$b || exit 1; done

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/scripts/demo.sh

FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(COMMON_SRC) $(BRIDGE_SRC) $(HOST_SRC)
build-fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) | $(PROTO_H)
	@mkdir -p build-fuzz
	clang -std=gnu11 -g -O1 -Wno-unknown-warning-option -D_GNU_SOURCE -I. -I$(BUILD)/gen -fsanitize=fuzzer,address,undefined \
		-o $@ $< $(FUZZ_LIB_SRC) $(PROTO_C) $(LDLIBS)
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
		n=$$(basename $$f); mkdir -p build-fuzz/corpus-$$n; \
		echo "== $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=70000 build-fuzz/corpus-$$n tests/fuzz/seeds/$$n 2>&1 | tail -3 || exit 1; \
	done

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	@clang-format --dry-run --Werror $(C_FILES) && echo "format: ok"
lint:
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
		--suppress=missingIncludeSystem --std=c11 -D_GNU_SOURCE -I. $(C_FILES) && echo "cppcheck: ok"

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
