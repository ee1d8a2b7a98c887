# sqcow2: raw disk image to qcow2 in one forward pass.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANPREFIX ?= $(PREFIX)/share/man

CFLAGS ?= -O2 -g
WARNFLAGS = -Wall -Wextra -Wpedantic
SQ_CPPFLAGS = -D_FILE_OFFSET_BITS=64
# Compressed clusters are inflated on threads: pthreads are part of libc.
SQ_CFLAGS = -std=c11 $(WARNFLAGS) $(SQ_CPPFLAGS) $(CPPFLAGS) -pthread
# The test build turns warnings into errors and adds the sanitizers.
TEST_CFLAGS = $(SQ_CFLAGS) -Werror -O2 -g
SAN_CFLAGS = $(SQ_CFLAGS) -Werror -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all

# libFuzzer comes with clang: make fuzz needs it; check only replays the
# kept corpus, with the harnesses built without libFuzzer.
CLANG ?= clang
FUZZ_CFLAGS = $(SQ_CFLAGS) -Werror -O1 -g -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all
FUZZ_SECONDS ?= 60

# The range files read, and the core of sqcow2 -d: each file built on
# the ones before it.
RANGES = range_list.c range_entry.c range_json.c ranges.c
RANGES_HDR = range_list.h range_entry.h range_json.h ranges.h
DECODER = decoder_header.c decoder_tables.c decoder_runs.c decoder_stream.c decoder.c
DECODER_HDR = decoder_header.h decoder_tables.h decoder_runs.h decoder_stream.h decoder.h
SRC = sqcow2.c encode.c decode.c stream.c seekable.c sieve.c copier.c io.c files.c \
	backing.c base.c report.c range_print.c sizes.c layout.c meta.c unpack.c packed.c \
	codec.c inflate.c zstd_decode.c deflate.c $(RANGES) $(DECODER)
CORE = layout.c meta.c $(RANGES) $(DECODER)
HDR = options.h encode.h decode.h stream.h seekable.h sieve.h copier.h io.h files.h \
	backing.h base.h report.h range_print.h sizes.h layout.h meta.h qcow2.h util.h \
	unpack.h codec.h inflate.h zstd_decode.h deflate.h packed.h $(RANGES_HDR) $(DECODER_HDR)
# The one model of the layout that the unit tests and the fuzzers check against.
MODEL = t/model.c
MODEL_HDR = t/model.h
FUZZ_SRC = t/fuzz/fuzz.h t/fuzz/replay.c
FUZZERS = t/bin/fuzz-ranges t/bin/fuzz-layout t/bin/fuzz-image
TEST_BIN = t/bin/sqcow2 t/bin/unit t/bin/readback t/bin/fault.so \
	t/bin/chainlint t/bin/asan/chainlint \
	t/bin/replay-ranges t/bin/replay-layout t/bin/mkimage \
	t/bin/asan/sqcow2 t/bin/asan/unit t/bin/asan/mkimage \
	t/bin/asan/replay-ranges t/bin/asan/replay-layout \
	t/bin/imgcat t/bin/asan/imgcat t/bin/unit-image t/bin/asan/unit-image \
	t/bin/replay-image t/bin/asan/replay-image

all: sqcow2

sqcow2: $(SRC) $(HDR)
	$(CC) $(SQ_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(SRC)

t/bin t/bin/asan:
	mkdir -p $@

t/bin/sqcow2: $(SRC) $(HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -o $@ $(SRC)

# Same names under asan/, so that messages still begin "sqcow2:".
t/bin/asan/sqcow2: $(SRC) $(HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -o $@ $(SRC)

t/bin/unit: t/unit.c t/tap.h $(CORE) $(HDR) $(MODEL) $(MODEL_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/unit.c $(MODEL) $(CORE)

t/bin/asan/unit: t/unit.c t/tap.h $(CORE) $(HDR) $(MODEL) $(MODEL_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/unit.c $(MODEL) $(CORE)

t/bin/unit-image: t/unit_image.c t/tap.h $(DECODER) $(DECODER_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/unit_image.c $(DECODER)

t/bin/asan/unit-image: t/unit_image.c t/tap.h $(DECODER) $(DECODER_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/unit_image.c $(DECODER)

# A test driver of the decoder's core: a qcow2 image in, the raw disk out.
CODECS = codec.c inflate.c zstd_decode.c
CODECS_HDR = codec.h inflate.h zstd_decode.h

t/bin/imgcat: t/imgcat.c $(DECODER) $(DECODER_HDR) $(CODECS) $(CODECS_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/imgcat.c $(DECODER) $(CODECS)

t/bin/asan/imgcat: t/imgcat.c $(DECODER) $(DECODER_HDR) $(CODECS) $(CODECS_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/imgcat.c $(DECODER) $(CODECS)

t/bin/readback: t/readback.c | t/bin
	$(CC) $(TEST_CFLAGS) -o $@ t/readback.c

# The suite's own &&-chains, checked by t0000.
t/bin/chainlint: t/chainlint.c | t/bin
	$(CC) $(TEST_CFLAGS) -o $@ t/chainlint.c

t/bin/asan/chainlint: t/chainlint.c | t/bin/asan
	$(CC) $(SAN_CFLAGS) -o $@ t/chainlint.c

# Images made by the layout alone, for QEMU and 7-Zip to judge.
t/bin/mkimage: t/mkimage.c $(CORE) $(HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/mkimage.c $(CORE)

t/bin/asan/mkimage: t/mkimage.c $(CORE) $(HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/mkimage.c $(CORE)

# Every harness links the model; only fuzz_layout.c calls it.
t/bin/replay-%: t/fuzz/fuzz_%.c $(FUZZ_SRC) $(CORE) $(HDR) $(MODEL) $(MODEL_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_$*.c $(MODEL) $(CORE)

t/bin/asan/replay-%: t/fuzz/fuzz_%.c $(FUZZ_SRC) $(CORE) $(HDR) $(MODEL) $(MODEL_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_$*.c $(MODEL) $(CORE)

t/bin/fuzz-%: t/fuzz/fuzz_%.c t/fuzz/fuzz.h $(CORE) $(HDR) $(MODEL) $(MODEL_HDR) | t/bin
	$(CLANG) $(FUZZ_CFLAGS) -I. -o $@ t/fuzz/fuzz_$*.c $(MODEL) $(CORE)

t/bin/fault.so: t/fault.c | t/bin
	$(CC) $(TEST_CFLAGS) -fPIC -shared -o $@ t/fault.c -ldl

# --- inflate: raw deflate of compressed clusters (inflate.h) ----------
# Its tests link zlib as the oracle (t/zlib_qemu.h); sqcow2 never does.
INFLATE = inflate.c
INFLATE_HDR = inflate.h t/zlib_qemu.h t/tap.h
FUZZERS += t/bin/fuzz-inflate
TEST_BIN += t/bin/unit-inflate t/bin/asan/unit-inflate t/bin/replay-inflate \
	t/bin/asan/replay-inflate t/bin/bench-inflate

t/bin/unit-inflate: t/unit_inflate.c $(INFLATE) $(INFLATE_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/unit_inflate.c $(INFLATE) -lz

t/bin/asan/unit-inflate: t/unit_inflate.c $(INFLATE) $(INFLATE_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/unit_inflate.c $(INFLATE) -lz

t/bin/replay-inflate: t/fuzz/fuzz_inflate.c $(FUZZ_SRC) $(INFLATE) $(INFLATE_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_inflate.c $(INFLATE) -lz

t/bin/asan/replay-inflate: t/fuzz/fuzz_inflate.c $(FUZZ_SRC) $(INFLATE) $(INFLATE_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_inflate.c $(INFLATE) -lz

t/bin/fuzz-inflate: t/fuzz/fuzz_inflate.c t/fuzz/fuzz.h $(INFLATE) $(INFLATE_HDR) | t/bin
	$(CLANG) $(FUZZ_CFLAGS) -I. -o $@ t/fuzz/fuzz_inflate.c $(INFLATE) -lz

# Ours against zlib on the clusters of a file: t/bin/bench-inflate [-c SIZE] FILE.
t/bin/bench-inflate: t/bench-inflate.c t/bench_util.h $(INFLATE) $(INFLATE_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/bench-inflate.c $(INFLATE) -lz
# --- end of inflate -----------------------------------------------------

# --- deflate: raw deflate of compressed clusters (deflate.h) ----------
# Its tests link zlib as the oracle and inflate.c as a second decoder.
DEFLATE = deflate.c
DEFLATE_HDR = deflate.h inflate.h t/zlib_qemu.h t/tap.h
FUZZERS += t/bin/fuzz-deflate
TEST_BIN += t/bin/unit-deflate t/bin/asan/unit-deflate t/bin/replay-deflate \
	t/bin/asan/replay-deflate t/bin/bench-deflate

t/bin/unit-deflate: t/unit_deflate.c $(DEFLATE) $(INFLATE) $(DEFLATE_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/unit_deflate.c $(DEFLATE) $(INFLATE) -lz

t/bin/asan/unit-deflate: t/unit_deflate.c $(DEFLATE) $(INFLATE) $(DEFLATE_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/unit_deflate.c $(DEFLATE) $(INFLATE) -lz

t/bin/replay-deflate: t/fuzz/fuzz_deflate.c $(FUZZ_SRC) $(DEFLATE) $(INFLATE) $(DEFLATE_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_deflate.c $(DEFLATE) \
		$(INFLATE) -lz

t/bin/asan/replay-deflate: t/fuzz/fuzz_deflate.c $(FUZZ_SRC) $(DEFLATE) $(INFLATE) $(DEFLATE_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_deflate.c $(DEFLATE) \
		$(INFLATE) -lz

t/bin/fuzz-deflate: t/fuzz/fuzz_deflate.c t/fuzz/fuzz.h $(DEFLATE) $(INFLATE) $(DEFLATE_HDR) | t/bin
	$(CLANG) $(FUZZ_CFLAGS) -I. -o $@ t/fuzz/fuzz_deflate.c $(DEFLATE) $(INFLATE) -lz

# Ours against zlib on the clusters of a file: t/bin/bench-deflate [-c SIZE] FILE.
t/bin/bench-deflate: t/bench-deflate.c t/bench_util.h $(DEFLATE) $(DEFLATE_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/bench-deflate.c $(DEFLATE) -lz
# --- end of deflate -----------------------------------------------------

# --- zstd: zstd frames of compressed clusters (zstd_decode.h) ---------
# Its tests link libzstd as the oracle (t/zstd_qemu.h); sqcow2 never does.
# Without libzstd's header (Debian: libzstd-dev) they are not built, and
# t0022 and t0010 say so.
ZSTD = zstd_decode.c
ZSTD_HDR = zstd_decode.h t/zstd_qemu.h t/tap.h
HAVE_LIBZSTD := $(shell printf '\043include <zstd.h>\n' | $(CC) -E - >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_LIBZSTD),1)
FUZZERS += t/bin/fuzz-zstd
TEST_BIN += t/bin/unit-zstd t/bin/asan/unit-zstd t/bin/replay-zstd \
	t/bin/asan/replay-zstd t/bin/bench-zstd
BENCH_ZSTD = t/bin/bench-zstd
endif

t/bin/unit-zstd: t/unit_zstd.c $(ZSTD) $(ZSTD_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/unit_zstd.c $(ZSTD) -lzstd

t/bin/asan/unit-zstd: t/unit_zstd.c $(ZSTD) $(ZSTD_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/unit_zstd.c $(ZSTD) -lzstd

t/bin/replay-zstd: t/fuzz/fuzz_zstd.c $(FUZZ_SRC) $(ZSTD) $(ZSTD_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_zstd.c $(ZSTD) -lzstd

t/bin/asan/replay-zstd: t/fuzz/fuzz_zstd.c $(FUZZ_SRC) $(ZSTD) $(ZSTD_HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_zstd.c $(ZSTD) -lzstd

t/bin/fuzz-zstd: t/fuzz/fuzz_zstd.c t/fuzz/fuzz.h $(ZSTD) $(ZSTD_HDR) | t/bin
	$(CLANG) $(FUZZ_CFLAGS) -I. -o $@ t/fuzz/fuzz_zstd.c $(ZSTD) -lzstd

# Ours against libzstd on the clusters of a file: t/bin/bench-zstd [-c SIZE] FILE.
t/bin/bench-zstd: t/bench-zstd.c t/bench_util.h $(ZSTD) $(ZSTD_HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/bench-zstd.c $(ZSTD) -lzstd
# --- end of zstd --------------------------------------------------------

# The whole suite twice: as built, and under ASan and UBSan.  Each test
# script, in each variant, is a target of its own, so that make -j2 check
# runs them side by side; the longest go first.
SLOW_TESTS = t0003-random t0020-docs t0008-faults t0010-fuzz t0006-paths
TESTS = $(SLOW_TESTS) \
	$(filter-out $(SLOW_TESTS),$(notdir $(basename $(wildcard t/t[0-9]*.sh)))) unit
RESULTS = $(foreach t,$(TESTS),$(foreach v,plain asan,t/results/$(v)/$(t)))

check: $(RESULTS)
	@t/run --summary plain asan

$(RESULTS): $(TEST_BIN)
	@t/run $(@:t/results/%=%)

# Each fuzzer for FUZZ_SECONDS, from a scratch copy of the kept corpus;
# every harness runs, and what fails is kept in t/bin/fuzz-found/ and
# named at the end.  Images with extended L2 entries need 16 KiB
# clusters; range files up to 8 KiB, past the 4096 bytes a line may hold.
fuzz: $(FUZZERS)
	@rm -rf t/bin/fuzz-found && mkdir -p t/bin/fuzz-found; \
	for h in ranges layout image inflate deflate zstd; do \
		case $$h in image) len=131072;; ranges) len=8192;; inflate) len=16384;; \
		deflate) len=65536;; zstd) len=16384;; \
		*) len=4096;; esac; \
		[ -x t/bin/fuzz-$$h ] || { echo "fuzz-$$h: not built (its oracle library is missing)"; continue; }; \
		rm -rf t/bin/corpus-$$h && cp -r t/fuzz/corpus/$$h t/bin/corpus-$$h && \
		t/bin/fuzz-$$h -max_total_time=$(FUZZ_SECONDS) -max_len=$$len \
			-artifact_prefix=t/bin/fuzz-found/$$h- t/bin/corpus-$$h \
			>t/bin/fuzz-$$h.log 2>&1; \
		echo "fuzz-$$h: $$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' \
			t/bin/fuzz-$$h.log)"; \
	done; \
	if [ -n "$$(ls t/bin/fuzz-found)" ]; then \
		echo "fuzz: failing inputs found (logs in t/bin/fuzz-*.log):"; \
		ls t/bin/fuzz-found/* ; exit 1; \
	fi; echo "fuzz: nothing found"

# Line and branch coverage of the program by the suite, with gcov: a
# summary per file, and each file annotated in t/bin/cov/*.gcov, where
# "#####" marks a line that no test reached.
t/bin/cov/sqcow2: $(SRC) $(HDR)
	mkdir -p t/bin/cov && rm -f t/bin/cov/*.gcda
	$(CC) $(SQ_CFLAGS) -O0 -g --coverage -o $@ $(SRC)

coverage: t/bin/cov/sqcow2 t/bin/unit t/bin/readback t/bin/fault.so t/bin/mkimage
	rm -rf t/results t/bin/cov/*.gcda t/bin/cov/*.gcov
	$(MAKE) --no-print-directory $(TESTS:%=t/results/cov/%)
	@t/run --summary cov
	@for f in $(SRC); do \
		gcov -b -o t/bin/cov/sqcow2-$${f%.c}.gcno $$f | \
			sed -n "/^File '$$f'/,/^Calls/p"; done; mv *.gcov t/bin/cov/

t/results/cov/%: FORCE
	@t/run cov/$*

FORCE:

# Timings against cat and qemu-img convert; never part of check.
bench: sqcow2 t/bin/fault.so t/bin/bench-inflate t/bin/bench-deflate $(BENCH_ZSTD)
	sh t/bench.sh ./sqcow2 t/bin/fault.so

# The end-to-end suite with sqcow2 under valgrind's memcheck: slow, so
# not part of check.  Any finding fails a test and stays in t/valgrind-logs.
check-valgrind: t/bin/sqcow2 t/bin/unit t/bin/readback t/bin/fault.so t/bin/mkimage
	rm -rf t/valgrind-logs t/results && mkdir -p t/valgrind-logs
	for t in $(TESTS); do \
		VALGRIND_LOGS=$$PWD/t/valgrind-logs t/run valgrind/$$t; done
	@t/run --summary valgrind
	@if [ -n "$$(cat t/valgrind-logs/* 2>/dev/null)" ]; then \
		echo "memcheck found something:"; cat t/valgrind-logs/*; exit 1; fi
	@echo "memcheck: no errors, no leaks"

# A sample disk with three pieces of data, made here, converted through a pipe.
demo: sqcow2
	sh t/demo.sh ./sqcow2

# install-strip installs the binary without its debugging symbols, as
# packagers expect; install keeps them, like the build.
install: sqcow2
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANPREFIX)/man1
	install -m 755 $(INSTALL_STRIP) sqcow2 $(DESTDIR)$(BINDIR)/sqcow2
	install -m 644 man/sqcow2.1 $(DESTDIR)$(MANPREFIX)/man1/sqcow2.1

install-strip:
	$(MAKE) INSTALL_STRIP=-s install

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sqcow2 $(DESTDIR)$(MANPREFIX)/man1/sqcow2.1

clean:
	rm -rf sqcow2 t/bin t/results t/valgrind-logs demo.raw demo.ranges demo.qcow2

.PHONY: all check check-valgrind coverage fuzz bench demo install install-strip uninstall clean $(RESULTS)
