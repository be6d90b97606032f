# vmpoold: one non-recursive GNU Makefile.
#   make            programs in bin/
#   make asan       the same programs built with AddressSanitizer + UBSan in bin-asan/
#   make test       install what is missing, build, run unit, stage and e2e tests
#   make image     the container image as an OCI archive, build/vmpoold-image.oci.tar
#   make run        the local demo: control plane, simulator, vmpoold, the example pool
#   make format     clang-format in place; make check-format fails on a difference
#   make check      the tests that need no root and no network: unit, stage, packaging,
#                   and the fuzz targets for 5 s each where clang is installed (libcurl:
#                   the cached build, which needs apt-get source once, or CURL=system)
#   make tls-test   what the lean OpenSSL must keep, against openssl s_server (tests/tls)
#   make install    programs, man pages and the systemd unit under DESTDIR + PREFIX
#                   (bindir, mandir, unitdir); make uninstall removes exactly those
#   make bench      benchmarks on the local control plane (tests/bench/run.sh)
#   make bench-scale  1,000 pools x 10 VMs: peak RSS, time to ready, planner resync
# libcurl is Debian's curl source built once per machine as a static library with only what
# vmpoold uses (scripts/build-curl.sh; DESIGN.md, "Which libcurl"), in ~/.cache/vmpoold;
# CURL=system links the distribution's shared libcurl instead (pkg-config libcurl:
# libcurl4-openssl-dev). The programs are linked with packed relative relocations where the
# linker has them (binutils >= 2.38, glibc >= 2.36 to run): a static libcrypto's 470 KB of
# relocations, read at every start, become 1 KB.
# CC, CFLAGS, CPPFLAGS and LDFLAGS are honoured everywhere (distribution hardening flags);
# -Werror only with WERROR=1, which make test (CI) sets.

.DEFAULT_GOAL := all

MSGPACK_PC := $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKGS := libevent libevent_pthreads json-c yaml-0.1 $(MSGPACK_PC)
CURL ?= lean
CURL_TLS ?= openssl
# OPENSSL=lean (the default): our libcurl links scripts/build-openssl.sh's static OpenSSL, built
# from Debian's source for a TLS client only, a section per function (DESIGN.md, "Which
# libcurl"); OPENSSL=debian links Debian's libssl.a and libcrypto.a
OPENSSL ?= lean
ifeq ($(CURL),system)
PKGS += libcurl
CURL_STAMP :=
CURL_CFLAGS :=
CURL_LIBS :=
else
CURL_DIR := $(shell CURL_TLS=$(CURL_TLS) OPENSSL=$(OPENSSL) bash scripts/build-curl.sh dir)
ifeq ($(CURL_DIR),)
$(error scripts/build-curl.sh dir failed (CURL_TLS=$(CURL_TLS) OPENSSL=$(OPENSSL)))
endif
CURL_STAMP := $(CURL_DIR)/.built
CURL_CFLAGS := -I$(CURL_DIR)/include -DCURL_STATICLIB
# read when the first program is linked, after $(CURL_STAMP) was made, and kept from then on
# (not run again for each of the ~70 links)
CURL_LIBS = $(eval CURL_LIBS := $$(shell CURL_TLS=$(CURL_TLS) OPENSSL=$(OPENSSL) bash scripts/build-curl.sh libs))$(CURL_LIBS)
endif
# which libcurl the programs were linked with: a change relinks them (as build/revision)
CURL_REF := build/curl-ref $(CURL_STAMP)
PKG_CFLAGS := $(CURL_CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(CURL_LIBS) $(PKG_LIBS_SYS)
PKG_LIBS_SYS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

CC ?= cc
CFLAGS ?= -O2 -g
CPPFLAGS ?=
LDFLAGS ?=
WERROR ?= 0
WARN := -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -Wno-unused-parameter -Wshadow -Wformat=2
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) -Icommon $(PKG_CFLAGS)

# make install: the GNU directory variables
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
exec_prefix ?= $(prefix)
bindir ?= $(exec_prefix)/bin
datarootdir ?= $(prefix)/share
mandir ?= $(datarootdir)/man
man8dir ?= $(mandir)/man8
unitdir ?= $(prefix)/lib/systemd/system
INSTALL ?= install
# what is installed: the supervisor finds its stages in its own directory
INSTALL_PROGRAMS := vmpoold vmpool-watcher vmpool-planner vmpool-actuator vmpool-status vmpoolctl
MAN8 := $(addprefix doc/,$(addsuffix .8,$(INSTALL_PROGRAMS)))
UNIT := deploy/systemd/vmpoold.service
RELR_LDFLAGS := $(shell echo 'int main(void) { return 0; }' | $(CC) -x c - -Wl,--fatal-warnings -Wl,-z,pack-relative-relocs -o /dev/null 2>/dev/null && echo -Wl,-z,pack-relative-relocs)
# LINK=static (the default with our libcurl, where the toolchain and libc.a allow it): the
# programs in bin/ are static PIEs, libc and every library in them (DESIGN.md, "Which
# libcurl"); LINK=dynamic links libc, libevent, json-c, libyaml and msgpack-c as shared
# libraries (always so with CURL=system, and for bin-asan, the tests and the fuzz targets).
# glibc's linker warnings that getaddrinfo and the other NSS lookups load glibc's NSS modules
# at run time are left out of the output (scripts/static-ld.awk); any other message shows.
ifeq ($(CURL),system)
LINK ?= dynamic
else
LINK ?= $(shell echo 'int main(void) { return 0; }' | $(CC) -x c - -static-pie -o /dev/null 2>/dev/null && echo static || echo dynamic)
endif
ifeq ($(LINK),static)
# --gc-sections: the programs keep only the functions they reach (our code, libcurl and the
# lean OpenSSL have a section for each; 0.4 MB less text). With lld (LLD=yes, the default
# where the toolchain has it) the functions vmpoold's processes run come first, in the order
# of supervisor/vmpoold.order (scripts/hot-order.sh writes it), so that each process maps
# fewer of the file's pages (DESIGN.md, "Hot code first"); LLD=no links with the default
# linker in the archives' order.
REL_CFLAGS := -ffunction-sections -fdata-sections
HOT_ORDER := supervisor/vmpoold.order
LLD ?= $(shell echo 'int main(void) { return 0; }' | $(CC) -x c - -fuse-ld=lld -static-pie -o /dev/null 2>/dev/null && echo yes || echo no)
ifeq ($(LLD),yes)
PROG_LDFLAGS := -static-pie -fuse-ld=lld -Wl,--gc-sections -Wl,--pack-dyn-relocs=relr \
	-Wl,--symbol-ordering-file=$(HOT_ORDER) -Wl,--no-warn-symbol-ordering
PROG_RELR :=
bin/vmpoold bin/vmpoolctl bin/vmpool-sim build/rel/tests/tools/vmpool-tlsclient: $(HOT_ORDER)
else
PROG_LDFLAGS := -static-pie -Wl,--gc-sections
PROG_RELR = $(RELR_LDFLAGS)
endif
PROG_LDQUIET = 2>$$@.ld-err; s=$$$$?; awk -f scripts/static-ld.awk $$@.ld-err >&2; rm -f $$@.ld-err; exit $$$$s
else ifeq ($(LINK),dynamic)
REL_CFLAGS :=
PROG_LDFLAGS :=
PROG_RELR = $(RELR_LDFLAGS)
PROG_LDQUIET :=
else
$(error LINK=$(LINK): static or dynamic)
endif
# the programs' packed relative relocations, by variant (lld 14 spells them its own way)
RELR_rel = $(PROG_RELR)
RELR_asan = $(RELR_LDFLAGS)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# a stage directory holds main.c plus modules; modules also go into lib<dir>.a for tests
STAGES := watcher planner actuator status supervisor tools
COMMON_SRC := $(wildcard common/*.c)

# program name: directory + main file. vmpoold is one executable with the supervisor and the
# four stages (supervisor/multicall.c runs the one argv[0] names); the stages are symbolic
# links to it in bin/ and bin-asan/, as make install and the image install them
# (DESIGN.md, "Processes"): the five processes share the file's pages.
STAGE_PROGRAMS := vmpool-watcher vmpool-planner vmpool-actuator vmpool-status
PROGRAMS := vmpoold vmpoolctl vmpool-sim
main_vmpoold := supervisor/multicall.c
main_vmpoolctl := tools/vmpoolctl.c
main_vmpool-sim := tools/vmsim.c
dir_vmpoold := supervisor
dir_vmpoolctl := tools
dir_vmpool-sim := tools
# what vmpoold links besides multicall.c: each program's main and its stage's library
MULTICALL_MAINS := supervisor/vmpoold.c watcher/main.c planner/main.c actuator/main.c status/main.c
MULTICALL_LIBS := supervisor watcher planner actuator status
MAINS := $(foreach p,$(PROGRAMS),$(main_$(p))) $(MULTICALL_MAINS)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
STAGE_C_SRC := $(wildcard tests/stage/test_*.c) $(wildcard tests/stage/fake_*.c)

# $(1) = variant (rel|asan), $(2) = object dir, $(3) = bin dir, $(4) = extra flags,
# $(5) = the programs' extra link flags, $(6) = what follows their link command
define variant
$(2)/%.o: %.c | $(CURL_STAMP)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) $$(BASE_CFLAGS) $(4) -MMD -MP -c $$< -o $$@

$(2)/libcommon.a: $$(patsubst %.c,$(2)/%.o,$$(COMMON_SRC))
	@rm -f $$@; ar rcs $$@ $$^

$(foreach s,$(STAGES),
$(2)/lib$(s).a: $$(patsubst %.c,$(2)/%.o,$$(filter-out $$(MAINS),$$(wildcard $(s)/*.c))) $(2)/empty.o
	@rm -f $$@; ar rcs $$@ $$^
)

$(2)/empty.o:
	@mkdir -p $$(dir $$@); echo 'typedef int vmpool_empty_unit;' | $$(CC) $$(CPPFLAGS) $$(CFLAGS) -x c -c - -o $$@

$(2)/STAGELIBS := $(foreach s,$(STAGES),$(2)/lib$(s).a)

$(2)/MULTICALL_OBJS := $$(patsubst %.c,$(2)/%.o,$$(MULTICALL_MAINS)) $$(foreach s,$$(MULTICALL_LIBS),$(2)/lib$$(s).a)
extra_$(3)/vmpoold = $$($(2)/MULTICALL_OBJS)
$(foreach p,$(PROGRAMS),
$(3)/$(p): $(2)/$$(basename $$(main_$(p))).o $$(extra_$(3)/$(p)) $(2)/lib$$(dir_$(p)).a $(2)/libcommon.a $(CURL_REF)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $(4) $$(LDFLAGS) $(5) $$(RELR_$(1)) -o $$@ $$< $$(extra_$(3)/$(p)) $(2)/lib$$(dir_$(p)).a $(2)/libcommon.a $$(PKG_LIBS) -Wl,--as-needed -lm $(6)
)
$(foreach p,$(STAGE_PROGRAMS),
$(3)/$(p): $(3)/vmpoold
	ln -sf vmpoold $$@
)

# the TLS test's client (tests/tls/test_tls.sh): linked as the programs are, so that it
# carries the very libcurl and OpenSSL they do (static, --gc-sections in the rel variant)
$(2)/tests/tools/vmpool-tlsclient: $(2)/tests/tools/tlsclient.o $(CURL_REF)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $(4) $$(LDFLAGS) $(5) $$(RELR_$(1)) -o $$@ $$< $$(PKG_LIBS) -Wl,--as-needed -lm $(6)

# test support code (tests/support/*.c), linked into test programs only
$(2)/libtestkit.a: $$(patsubst %.c,$(2)/%.o,$$(wildcard tests/support/*.c)) $(2)/empty.o
	@rm -f $$@; ar rcs $$@ $$^

# unit and stage test programs
$(2)/tests/%: $(2)/tests/%.o $(2)/libtestkit.a $$($(2)/STAGELIBS) $(2)/libcommon.a $(CURL_REF)
	$$(CC) $$(CFLAGS) $(4) $$(LDFLAGS) -o $$@ $$< $(2)/libtestkit.a $$($(2)/STAGELIBS) $(2)/libcommon.a $$(PKG_LIBS) $$(CMOCKA_LIBS) -lm
endef

$(eval $(call variant,rel,build/rel,bin,$(REL_CFLAGS),$(PROG_LDFLAGS),$(PROG_LDQUIET)))
$(eval $(call variant,asan,build/asan,bin-asan,$(SAN_FLAGS),,))

# the revision label of vmpoold_build_info (common/metrics_std.c), as the image's labels
# have it; metrics_std.o is rebuilt when it changes ("unknown" outside a git checkout)
REVISION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
build/revision: FORCE
	@mkdir -p build; [ "$$(cat $@ 2>/dev/null)" = '$(REVISION)' ] || echo '$(REVISION)' >$@
build/rel/common/metrics_std.o build/asan/common/metrics_std.o: build/revision
build/rel/common/metrics_std.o build/asan/common/metrics_std.o: BASE_CFLAGS += -DVMPOOL_REVISION='"$(REVISION)"'
.PHONY: FORCE
FORCE:
build/curl-ref: FORCE
	@mkdir -p build; [ "$$(cat $@ 2>/dev/null)" = '$(or $(CURL_DIR),system)' ] || echo '$(or $(CURL_DIR),system)' >$@

# fuzz targets (libFuzzer, clang): the modules they reach, built with coverage, ASan, UBSan.
# -Werror stays off here: clang warns about other things than gcc, and a fuzz build is not
# the place to fail on that.
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_TARGETS := frame watch selector kubeconfig plan project
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g $(filter-out -Werror,$(BASE_CFLAGS)) $(FUZZ_SAN)
FUZZ_MOD_SRC := $(COMMON_SRC) $(filter-out planner/main.c,$(wildcard planner/*.c))
FUZZ_OBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(FUZZ_MOD_SRC))
FUZZ_BINS := $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_TARGETS))

build/fuzz/obj/%.o: %.c | $(CURL_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

build/fuzz/fuzz_%: build/fuzz/obj/tests/fuzz/fuzz_%.o $(FUZZ_OBJS) $(CURL_REF)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $(LDFLAGS) -o $@ $(filter %.o,$^) $(PKG_LIBS) -lm

# what the lean OpenSSL must keep (tests/tls/test_tls.sh, make tls-test): TLS 1.2/1.3, RSA,
# ECDSA and Ed25519 keys, X25519/P-256, AES-GCM and ChaCha20, client certificates
TLSCLIENT := build/rel/tests/tools/vmpool-tlsclient

# the fault-injecting proxy of the e2e fault cases (issue 12): a test tool, not in bin/
FPROXY := build/rel/tests/tools/vmpool-faultproxy
FPROXY_LIBS := $(shell pkg-config --libs libevent_openssl openssl 2>/dev/null)
$(FPROXY): build/rel/tests/tools/faultproxy.o build/rel/libcommon.a $(CURL_REF)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter-out $(CURL_REF),$^) $(FPROXY_LIBS) $(PKG_LIBS) -lm
# the same under ASan/UBSan (FPROXY_BIN=build/asan/tests/tools/vmpool-faultproxy tests/e2e/run.sh)
build/asan/tests/tools/vmpool-faultproxy: build/asan/tests/tools/faultproxy.o build/asan/libcommon.a $(CURL_REF)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(LDFLAGS) -o $@ $(filter-out $(CURL_REF),$^) $(FPROXY_LIBS) $(PKG_LIBS) -lm

ifneq ($(CURL_STAMP),)
$(CURL_STAMP):
	@CURL_TLS=$(CURL_TLS) OPENSSL=$(OPENSSL) bash scripts/build-curl.sh build
endif

UNIT_BINS = $(patsubst %.c,build/asan/%,$(UNIT_SRC))
STAGE_BINS = $(patsubst %.c,build/asan/%,$(wildcard tests/stage/test_*.c))

.PHONY: all asan deps test unit stage e2e run format check-format clean bench bench-scale image image-test fuzz fuzz-build faultproxy check install uninstall install-test tls-test
all: $(addprefix bin/,$(PROGRAMS) $(STAGE_PROGRAMS))
asan: $(addprefix bin-asan/,$(PROGRAMS) $(STAGE_PROGRAMS))

deps:
	@bash scripts/install-deps.sh

# tests that need glibc's allocator (ASan replaces it) also run from the release build
UNIT_REL_BINS = build/rel/tests/unit/test_memtrim build/rel/tests/unit/test_events

unit: asan $(UNIT_BINS) $(UNIT_REL_BINS)
	@bash tests/run-unit.sh $(UNIT_BINS) $(UNIT_REL_BINS)

stage: asan $(STAGE_BINS)
	@VMPOOL_BIN=bin-asan bash tests/run-stage.sh $(STAGE_BINS)

image: all
	@bash scripts/build-image.sh build/vmpoold-image.oci.tar

image-test: image
	@bash tests/image/test_image.sh build/vmpoold-image.oci.tar

faultproxy: $(FPROXY)

tls-test: $(TLSCLIENT)
	@bash tests/tls/test_tls.sh

e2e: all $(FPROXY)
	@bash tests/e2e/run.sh

# CI: -Werror on (WERROR=1); the objects are rebuilt so that none escapes it
test: deps
	@$(MAKE) --no-print-directory check-format
	@$(MAKE) --no-print-directory -B WERROR=1 all asan $(UNIT_BINS) $(UNIT_REL_BINS) $(STAGE_BINS) \
	    $(TLSCLIENT)
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@$(MAKE) --no-print-directory image
	@UNIT_REL_BINS="$(UNIT_REL_BINS)" bash tests/run-all.sh

# for packagers: no root, no network, no apt-get; the fuzz targets briefly where clang is
CHECK_FUZZ_TIME ?= 5
check: asan $(UNIT_BINS) $(UNIT_REL_BINS) $(STAGE_BINS)
	@bash tests/run-unit.sh $(UNIT_BINS) $(UNIT_REL_BINS)
	@VMPOOL_BIN=bin-asan bash tests/run-stage.sh $(STAGE_BINS)
	@bash tests/packaging/test_install.sh
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory fuzz-build && \
		FUZZ_TIME=$(CHECK_FUZZ_TIME) bash tests/run-fuzz.sh $(FUZZ_TARGETS); \
	else echo "check: no $(FUZZ_CC): fuzz smoke skipped"; fi

install-test: all
	@bash tests/packaging/test_install.sh

install: all
	$(INSTALL) -d $(DESTDIR)$(bindir) $(DESTDIR)$(man8dir) $(DESTDIR)$(unitdir)
	$(INSTALL) -m 0755 $(addprefix bin/,$(filter-out $(STAGE_PROGRAMS),$(INSTALL_PROGRAMS))) $(DESTDIR)$(bindir)/
	for p in $(STAGE_PROGRAMS); do ln -sf vmpoold $(DESTDIR)$(bindir)/$$p || exit 1; done
	$(INSTALL) -m 0644 $(MAN8) $(DESTDIR)$(man8dir)/
	sed 's|@bindir@|$(bindir)|g' $(UNIT) >$(DESTDIR)$(unitdir)/vmpoold.service.tmp
	chmod 0644 $(DESTDIR)$(unitdir)/vmpoold.service.tmp
	mv $(DESTDIR)$(unitdir)/vmpoold.service.tmp $(DESTDIR)$(unitdir)/vmpoold.service

uninstall:
	rm -f $(addprefix $(DESTDIR)$(bindir)/,$(INSTALL_PROGRAMS))
	rm -f $(addprefix $(DESTDIR)$(man8dir)/,$(notdir $(MAN8)))
	rm -f $(DESTDIR)$(unitdir)/vmpoold.service

# make fuzz FUZZ_TIME=SECONDS: every target for that long, from its seed corpus
fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	@FUZZ_TIME=$(FUZZ_TIME) bash tests/run-fuzz.sh $(FUZZ_TARGETS)

run: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

bench: all
	@bash tests/bench/run.sh

# issue 9: 1000 pools x 10 VMs on the local control plane (BENCH_POOLS, BENCH_VMS to change)
bench-scale: all
	@bash tests/bench/bench_scale.sh

FORMAT_SRC = $(wildcard common/*.[ch] $(addsuffix /*.[ch],$(STAGES)) tests/unit/*.[ch] tests/stage/*.[ch] tests/support/*.[ch] tests/bench/*.[ch] tests/e2e/*.[ch] tests/fuzz/*.[ch] tests/tools/*.[ch])
format:
	clang-format -i $(FORMAT_SRC)
check-format:
	@bash scripts/check-format.sh $(FORMAT_SRC)

clean:
	rm -rf build bin bin-asan

-include $(shell find build -name '*.d' 2>/dev/null)
