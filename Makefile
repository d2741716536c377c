# ferry build.  Libraries are discovered by folder, one per folder: common/, bridge/, ttrpc/,
# guest/, host/gcs/, host/ctrl/, host/vmm/ (recursive), host/shim/, host/ctl/ (main.c files
# excluded); proto/**.proto are compiled by protoc-c into $(BUILD)/gen/proto.  Binaries:
# ferry-gcs (guest/main.c), ferry-shim (host/shim/main.c), ferryctl (host/ctl/main.c).
# Tests: tests/{unit,integration}/test_*.c each become a binary; tests/bench/*.c benchmark
# programs; tests/fuzz/fuzz_*.c libFuzzer harnesses.
#
#   make deps      install the Debian packages everything needs (idempotent)
#   make           build everything (gcc, gnu11, -Werror)
#   make test      deps + build + run unit and integration tests
#   make SAN=1 test   the same under ASan+UBSan, in build-san/
#   make demo      deps + build + run the demonstration
#   make bench     build and run the benchmarks
#   make fuzz      run every fuzz harness for FUZZ_SECONDS each (clang/libFuzzer)
#   make vm-image  build the guest image (kernel + initramfs) under $(BUILD)/vm-image
#   make e2e       deps + guest image + the VM end-to-end tests (tests/e2e, as root; not in `test`)
#   make format / format-check / lint
#   make windows       cross-build the Windows parts with mingw-w64 (docs/windows.md)
#   make windows-test  run them under wine, against the stand-in computecore.dll

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
ALL_CFLAGS = -std=gnu11 $(WARN) -D_GNU_SOURCE -ffunction-sections -fdata-sections -I. -I$(BUILD)/gen/proto $(SANFLAGS) $(CFLAGS) -MMD -MP
LDLIBS = -lev -ljansson -lprotobuf-c -lutil -lm
TEST_LDLIBS = -lcmocka

# protoc-c output goes to the build directory, never to git.  Our .proto sources live under
# proto/ in folders named after their package; the well-known types they import are generated
# from Debian's libprotobuf-dev sources ($(PROTO_INC)/google/protobuf).  Generated headers are
# included by their import path ("google/protobuf/any.pb-c.h").
PROTO_INC ?= /usr/include
GEN := $(BUILD)/gen/proto
WKT := google/protobuf/any.proto google/protobuf/duration.proto \
	google/protobuf/timestamp.proto google/protobuf/empty.proto
PROTO_OWN := $(patsubst proto/%,%,$(shell find proto -name '*.proto' 2>/dev/null | sort))
PROTO_C := $(patsubst %.proto,$(GEN)/%.pb-c.c,$(PROTO_OWN) $(if $(PROTO_OWN),$(WKT)))
PROTO_H := $(PROTO_C:.c=.h)

# Libraries, one per folder (see ARCHITECTURE.md).  Each binary links only the ones it uses;
# a folder that does not exist yet gives an empty library.  Files under a win/ folder are
# Windows-only (cross-built by `make windows`).
srcs = $(filter-out %/main.c %_main.c,$(shell find $(1) -name '*.c' -not -path '*/win/*' 2>/dev/null | sort))
COMMON_SRC := $(call srcs,common)
BRIDGE_SRC := $(call srcs,bridge)
TTRPC_SRC := $(call srcs,ttrpc)
GUEST_SRC := $(call srcs,guest)
# host/*.c: today's GCS client and ferryctl, until they move into host/gcs/ and host/ctl/.
HOSTGCS_SRC := $(call srcs,host/gcs) $(filter-out %_main.c,$(wildcard host/*.c))
CTRL_SRC := $(call srcs,host/ctrl)
VMM_SRC := $(call srcs,host/vmm)
SHIM_SRC := $(call srcs,host/shim)
CTL_SRC := $(call srcs,host/ctl)
LIB_SRC := $(COMMON_SRC) $(BRIDGE_SRC) $(TTRPC_SRC) $(HOSTGCS_SRC) $(CTRL_SRC) $(VMM_SRC) \
	$(SHIM_SRC) $(CTL_SRC)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIBCOMMON := $(BUILD)/libcommon.a
LIBBRIDGE := $(BUILD)/libbridge.a
LIBTTRPC := $(BUILD)/libttrpc.a
LIBGUEST := $(BUILD)/libguest.a
LIBHOSTGCS := $(BUILD)/libhostgcs.a
LIBCTRL := $(BUILD)/libctrl.a
LIBVMM := $(BUILD)/libvmm.a
LIBSHIM := $(BUILD)/libshim.a
LIBCTL := $(BUILD)/libctl.a
LIBPROTO := $(BUILD)/libproto.a
# Link order: users before what they use (shim -> ctrl -> {gcs, vmm} -> {bridge, ttrpc} -> common).
GUEST_LIBS := $(LIBGUEST) $(LIBBRIDGE) $(LIBCOMMON)
HOST_LIBS := $(LIBCTL) $(LIBSHIM) $(LIBCTRL) $(LIBVMM) $(LIBHOSTGCS) $(LIBBRIDGE) $(LIBTTRPC) \
	$(LIBPROTO) $(LIBCOMMON)
LIBS := $(LIBCTL) $(LIBSHIM) $(LIBCTRL) $(LIBVMM) $(LIBHOSTGCS) $(LIBGUEST) $(LIBBRIDGE) \
	$(LIBTTRPC) $(LIBPROTO) $(LIBCOMMON)

# Binaries: guest/main.c, host/shim/main.c, host/ctl/main.c (host/ctl_main.c until the move).
GCS_MAIN := $(wildcard guest/main.c)
SHIM_MAIN := $(wildcard host/shim/main.c)
CTL_MAIN := $(firstword $(wildcard host/ctl/main.c host/ctl_main.c))
BINS := $(if $(GCS_MAIN),$(BUILD)/ferry-gcs) $(if $(SHIM_MAIN),$(BUILD)/ferry-shim) \
	$(if $(CTL_MAIN),$(BUILD)/ferryctl)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
BENCH_SRC := $(wildcard tests/bench/*.c)
TESTLIB_SRC := $(wildcard tests/lib/*.c)
E2E_SRC := $(wildcard tests/e2e/test_*.c)
UNIT_BINS := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))
E2E_BINS := $(patsubst %.c,$(BUILD)/%,$(E2E_SRC))
INTEG_BINS := $(patsubst %.c,$(BUILD)/%,$(INTEG_SRC))
BENCH_BINS := $(patsubst %.c,$(BUILD)/%,$(BENCH_SRC))
LIBTEST := $(BUILD)/libtest.a

# Keep test objects (otherwise make deletes them as intermediates and rebuilds later).
.SECONDARY: $(call obj,$(UNIT_SRC) $(INTEG_SRC) $(BENCH_SRC) $(E2E_SRC)) $(PROTO_C) $(PROTO_H)
V ?=
Q = $(if $(V),,@)

.PHONY: all deps test unit integration demo bench fuzz format format-check lint clean rootfs go-peers e2e
all: $(BINS) $(UNIT_BINS) $(INTEG_BINS) $(BENCH_BINS) $(E2E_BINS)

DEB_PACKAGES = build-essential pkg-config libev-dev libjansson-dev libcmocka-dev \
	protobuf-c-compiler libprotobuf-c-dev protobuf-compiler busybox-static crun \
	clang libclang-rt-14-dev clang-format clang-tidy cppcheck iproute2 util-linux procps file \
	libprotobuf-dev golang-go golang-github-containerd-ttrpc-dev qemu-system-x86 qemu-utils kmod \
	cpio xz-utils e2fsprogs binutils containerd runc
deps:
	@sh tests/scripts/deps.sh $(DEB_PACKAGES)

$(GEN)/google/protobuf/%.pb-c.c $(GEN)/google/protobuf/%.pb-c.h: $(PROTO_INC)/google/protobuf/%.proto
	@mkdir -p $(GEN)
	$(Q)protoc-c --proto_path=$(PROTO_INC) --c_out=$(GEN) google/protobuf/$*.proto
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	$(Q)protoc-c --proto_path=proto --proto_path=$(PROTO_INC) --c_out=$(GEN) $*.proto

$(BUILD)/obj/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBBRIDGE): $(call obj,$(BRIDGE_SRC))
$(LIBTTRPC): $(call obj,$(TTRPC_SRC))
$(LIBGUEST): $(call obj,$(GUEST_SRC))
$(LIBHOSTGCS): $(call obj,$(HOSTGCS_SRC))
$(LIBCTRL): $(call obj,$(CTRL_SRC))
$(LIBVMM): $(call obj,$(VMM_SRC))
$(LIBSHIM): $(call obj,$(SHIM_SRC))
$(LIBCTL): $(call obj,$(CTL_SRC))
$(LIBPROTO): $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/$(BUILD)/gen/%.o,$(PROTO_C))
$(LIBTEST): $(call obj,$(TESTLIB_SRC))
$(LIBS) $(LIBTEST): $(BUILD)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)ar rcs $@ $^

# ferry-gcs is linked statically: it goes into the guest's initramfs as a single file.  It
# links only guest, bridge and common code.
GCS_STATIC ?= $(if $(SAN),,-static -Wl,--gc-sections)
$(BUILD)/ferry-gcs: $(call obj,$(GCS_MAIN)) $(GUEST_LIBS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) $(GCS_STATIC) -o $@ $< $(GUEST_LIBS) -lev -ljansson -lutil -lm

$(BUILD)/ferry-shim: $(call obj,$(SHIM_MAIN)) $(HOST_LIBS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $< $(HOST_LIBS) $(LDLIBS)

$(BUILD)/ferryctl: $(call obj,$(CTL_MAIN)) $(HOST_LIBS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $< $(HOST_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(LIBTEST) $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $< $(LIBTEST) $(LIBS) $(LDLIBS) $(TEST_LDLIBS)

unit: $(UNIT_BINS)
integration: $(INTEG_BINS) $(BINS) go-peers

# The Go interoperability peers (tests/interop/<name>/), built offline in GOPATH mode against
# Debian's Go packages (golang-github-containerd-ttrpc-dev and its dependencies under
# /usr/share/gocode); the caches stay in the build directory.
GO_PEER_DIRS := $(wildcard tests/interop/*/)
GO_PEERS := $(patsubst tests/interop/%/,$(BUILD)/go/%,$(GO_PEER_DIRS))
GO_ENV = GO111MODULE=off GOPROXY=off GOFLAGS= GOENV=off GOPATH=$(abspath $(BUILD)/go/path):/usr/share/gocode \
	GOCACHE=$(abspath $(BUILD)/go/cache)
go-peers: $(GO_PEERS)
define go_peer
$(BUILD)/go/$(1): $(wildcard tests/interop/$(1)/*.go)
	@mkdir -p $(BUILD)/go/path
	@$$(if $$(V),,echo "  GO      $$@")
	$$(Q)cd tests/interop/$(1) && $$(GO_ENV) go build -o $$(abspath $$@) .
endef
$(foreach p,$(patsubst tests/interop/%/,%,$(GO_PEER_DIRS)),$(eval $(call go_peer,$(p))))

# The README's test command.  Runs every unit and integration test binary and prints one
# closing line "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all go-peers
	@BUILD=$(BUILD) sh tests/scripts/run-tests.sh $(UNIT_BINS) $(INTEG_BINS)

# The VM end-to-end tests (real QEMU guests, network namespaces: root).  Not part of `test`.
e2e: deps
	@$(MAKE) --no-print-directory all vm-image
	@rm -f $(BUILD)/e2e-figures.txt
	@BUILD=$(BUILD) TEST_TIMEOUT=$${TEST_TIMEOUT:-900} sh tests/scripts/run-tests.sh $(E2E_BINS); \
		rc=$$?; [ -f $(BUILD)/e2e-figures.txt ] && echo "e2e figures:" && \
		cat $(BUILD)/e2e-figures.txt; exit $$rc

include vm-images/vm-images.mk

bench: all go-peers
	@for b in $(BENCH_BINS); do echo "== $$b"; BUILD=$(BUILD) $$b || exit 1; done

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh tests/scripts/demo.sh

FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(LIB_SRC)
FUZZ_CC := clang -std=gnu11 -g -O1 -Wno-unknown-warning-option -D_GNU_SOURCE -I. -I$(BUILD)/gen/proto
FUZZ_SAN := -fsanitize=address,undefined
# Every library source is compiled once (instrumented for coverage), then each harness links it.
FUZZ_OBJS := $(patsubst %.c,build-fuzz/obj/%.o,$(FUZZ_LIB_SRC) $(PROTO_C))
build-fuzz/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@
build-fuzz/libfuzzlib.a: $(FUZZ_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libfuzzlib.a | $(PROTO_H)
	@$(if $(V),,echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< build-fuzz/libfuzzlib.a $(LDLIBS)
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

# ---- Windows: cross-built with mingw-w64, tested under wine (docs/windows.md) ----------------
# The dependencies (jansson, protobuf-c runtime, cmocka; libev's source for embedding) are
# cross-built once from Debian source packages into $(WIN_DEPS) (a stamp per dependency).  What
# builds today: the parts of common/ the HCS backend and the Migration service need, libev
# (common/win/libev.c), the generated protobuf code, host/vmm/hcs/ with its win/ folder, the
# stand-in computecore.dll and the tests.  The Linux build never needs any of this.
WIN_BUILD ?= build-win
WIN_HOST ?= x86_64-w64-mingw32
WIN_CC ?= $(WIN_HOST)-gcc
WINE ?= $(firstword $(wildcard /usr/bin/wine64 /usr/lib/wine/wine64) wine64)
WIN_DEB_PACKAGES = mingw-w64 wine64 cmake dpkg-dev xz-utils
WIN_DEPS := $(WIN_BUILD)/deps
WIN_PREFIX := $(WIN_DEPS)/prefix
WIN_STAMPS := $(addprefix $(WIN_DEPS)/stamp/,jansson protobuf-c cmocka libev)
# Format strings are checked by the Linux build: mingw's `printf` archetype is Microsoft's,
# which knows no %zu, while the code runs with mingw's C99 printf (__USE_MINGW_ANSI_STDIO).
WIN_CFLAGS = -std=gnu11 $(WARN) -Wno-format -D_GNU_SOURCE -D__USE_MINGW_ANSI_STDIO=1 \
	-D_WIN32_WINNT=0x0A00 -I. -I$(BUILD)/gen/proto -isystem $(WIN_PREFIX)/include \
	-isystem $(WIN_DEPS)/src/libev -O2 -g -MMD -MP
WIN_LDFLAGS = -static
WIN_LDLIBS = $(WIN_PREFIX)/lib/libjansson.a $(WIN_PREFIX)/lib/libprotobuf-c.a -lws2_32 \
	-lwinpthread
WIN_TEST_LDLIBS = $(WIN_PREFIX)/lib/libcmocka-static.a

wobj = $(patsubst %.c,$(WIN_BUILD)/obj/%.o,$(1))
WIN_COMMON_SRC := common/err.c common/log.c common/buf.c common/xalloc.c common/guid.c common/hex.c \
	common/sha256.c common/vsock_addr.c $(sort $(wildcard common/win/*.c))
WIN_VMM_SRC := $(shell find host/vmm/hcs -name '*.c' 2>/dev/null | sort)
WIN_LIBCOMMON := $(WIN_BUILD)/libcommon.a
WIN_LIBVMM := $(WIN_BUILD)/libvmm.a
WIN_LIBPROTO := $(WIN_BUILD)/libproto.a
WIN_LIBTEST := $(WIN_BUILD)/libtest.a
WIN_LIBS := $(WIN_LIBVMM) $(WIN_LIBPROTO) $(WIN_LIBCOMMON)
# Unit tests that are portable run under wine too; tests/windows/ holds the Windows-only ones.
WIN_UNIT_SRC := $(sort $(wildcard tests/unit/test_hcs*.c)) tests/unit/test_guid.c \
	tests/unit/test_sha256.c
WIN_TEST_SRC := $(sort $(wildcard tests/windows/test_*.c))
WIN_TESTLIB_SRC := $(sort $(wildcard tests/windows/lib/*.c))
WIN_TESTS := $(patsubst %.c,$(WIN_BUILD)/%.exe,$(WIN_UNIT_SRC) $(WIN_TEST_SRC))
WIN_STANDIN_SRC := $(sort $(wildcard tests/windows/computecore/*.c))
WIN_STANDIN := $(WIN_BUILD)/computecore.dll
.SECONDARY: $(call wobj,$(WIN_UNIT_SRC) $(WIN_TEST_SRC))

.PHONY: windows windows-deps windows-test windows-clean
windows: windows-deps
	@$(MAKE) --no-print-directory $(WIN_DEPS)/stamp/all
	@$(MAKE) --no-print-directory windows-all

windows-deps:
	@sh tests/scripts/deps.sh $(WIN_DEB_PACKAGES)

$(WIN_DEPS)/stamp/all: tests/scripts/win-deps.sh
	@MINGW_HOST=$(WIN_HOST) sh tests/scripts/win-deps.sh $(WIN_DEPS)
	@touch $@

.PHONY: windows-all
windows-all: $(WIN_LIBS) $(WIN_TESTS) $(if $(WIN_STANDIN_SRC),$(WIN_STANDIN))

$(WIN_BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  WINCC   $<")
	$(Q)$(WIN_CC) $(WIN_CFLAGS) -c $< -o $@
# libev's own source is not ours to warn about
$(WIN_BUILD)/obj/common/win/libev.o: WIN_CFLAGS += -w
$(WIN_BUILD)/obj/$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(Q)$(WIN_CC) $(WIN_CFLAGS) -Wno-missing-prototypes -c $< -o $@

$(WIN_LIBCOMMON): $(call wobj,$(WIN_COMMON_SRC))
$(WIN_LIBVMM): $(call wobj,$(WIN_VMM_SRC))
$(WIN_LIBPROTO): $(patsubst $(BUILD)/gen/%.c,$(WIN_BUILD)/obj/$(BUILD)/gen/%.o,$(PROTO_C))
$(WIN_LIBTEST): $(call wobj,$(WIN_TESTLIB_SRC))
$(WIN_LIBS) $(WIN_LIBTEST): $(WIN_BUILD)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)$(WIN_HOST)-ar rcs $@ $^

$(WIN_BUILD)/tests/%.exe: $(WIN_BUILD)/obj/tests/%.o $(WIN_LIBTEST) $(WIN_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  WINLD   $@")
	$(Q)$(WIN_CC) $(WIN_LDFLAGS) -o $@ $< $(WIN_LIBTEST) $(WIN_LIBS) $(WIN_TEST_LDLIBS) $(WIN_LDLIBS)

# The stand-in computecore.dll (tests/windows/computecore/): exports what the real one does,
# records every call and the documents it receives.
$(WIN_STANDIN): $(call wobj,$(WIN_STANDIN_SRC)) tests/windows/computecore/computecore.def \
		$(WIN_LIBVMM) $(WIN_LIBCOMMON)
	@$(if $(V),,echo "  WINDLL  $@")
	$(Q)$(WIN_CC) -shared $(WIN_LDFLAGS) -o $@ $(call wobj,$(WIN_STANDIN_SRC)) \
		tests/windows/computecore/computecore.def $(WIN_LIBVMM) $(WIN_LIBCOMMON) $(WIN_LDLIBS)

windows-test: windows
	@WINE="$(WINE)" WIN_BUILD=$(WIN_BUILD) sh tests/scripts/win-test.sh $(WIN_TESTS)

windows-clean:
	rm -rf $(WIN_BUILD)/obj $(WIN_BUILD)/tests $(WIN_BUILD)/*.a $(WIN_BUILD)/*.dll

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(WIN_BUILD)/obj -name '*.d' 2>/dev/null)
