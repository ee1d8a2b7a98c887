# sqcow2: raw disk image to qcow2 in one forward pass.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANPREFIX ?= $(PREFIX)/share/man

CFLAGS ?= -O2 -g
WARNFLAGS = -Wall -Wextra -Wpedantic
SQ_CPPFLAGS = -D_FILE_OFFSET_BITS=64
SQ_CFLAGS = -std=c11 $(WARNFLAGS) $(SQ_CPPFLAGS) $(CPPFLAGS)
# The test build turns warnings into errors and adds the sanitizers.
TEST_CFLAGS = $(SQ_CFLAGS) -Werror -O2 -g
SAN_CFLAGS = $(SQ_CFLAGS) -Werror -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all

# libFuzzer comes with clang; without it, check still replays the corpus.
CLANG ?= clang
HAVE_CLANG := $(shell command -v $(CLANG) 2>/dev/null)
FUZZ_CFLAGS = $(SQ_CFLAGS) -Werror -O1 -g -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all
FUZZ_SECONDS ?= 60

SRC = sqcow2.c layout.c ranges.c
CORE = layout.c ranges.c image.c
HDR = layout.h ranges.h image.h
FUZZ_SRC = t/fuzz/fuzz.h t/fuzz/replay.c
FUZZERS = t/bin/fuzz-ranges t/bin/fuzz-layout t/bin/fuzz-image
TEST_BIN = t/bin/sqcow2 t/bin/unit t/bin/readback t/bin/fault.so \
	t/bin/replay-ranges t/bin/replay-layout \
	t/bin/asan/sqcow2 t/bin/asan/unit \
	t/bin/asan/replay-ranges t/bin/asan/replay-layout \
	t/bin/imgcat t/bin/asan/imgcat t/bin/unit-image t/bin/asan/unit-image \
	t/bin/replay-image t/bin/asan/replay-image \
	$(if $(HAVE_CLANG),$(FUZZERS))

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

t/bin/unit: t/unit.c $(CORE) $(HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/unit.c $(CORE)

t/bin/asan/unit: t/unit.c $(CORE) $(HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/unit.c $(CORE)

t/bin/unit-image: t/unit_image.c image.c image.h | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/unit_image.c image.c

t/bin/asan/unit-image: t/unit_image.c image.c image.h | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/unit_image.c image.c

# A test driver of image.c: a qcow2 image in, the raw disk out.
t/bin/imgcat: t/imgcat.c image.c image.h | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/imgcat.c image.c

t/bin/asan/imgcat: t/imgcat.c image.c image.h | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/imgcat.c image.c

t/bin/readback: t/readback.c | t/bin
	$(CC) $(TEST_CFLAGS) -o $@ t/readback.c

t/bin/replay-%: t/fuzz/fuzz_%.c $(FUZZ_SRC) $(CORE) $(HDR) | t/bin
	$(CC) $(TEST_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_$*.c $(CORE)

t/bin/asan/replay-%: t/fuzz/fuzz_%.c $(FUZZ_SRC) $(CORE) $(HDR) | t/bin/asan
	$(CC) $(SAN_CFLAGS) -I. -o $@ t/fuzz/replay.c t/fuzz/fuzz_$*.c $(CORE)

t/bin/fuzz-%: t/fuzz/fuzz_%.c t/fuzz/fuzz.h $(CORE) $(HDR) | t/bin
	$(CLANG) $(FUZZ_CFLAGS) -I. -o $@ t/fuzz/fuzz_$*.c $(CORE)

t/bin/fault.so: t/fault.c | t/bin
	$(CC) $(TEST_CFLAGS) -fPIC -shared -o $@ t/fault.c -ldl

# The whole suite twice: as built, and under ASan and UBSan.
check: $(TEST_BIN)
	t/run plain:t/bin/sqcow2:t/bin/unit asan:t/bin/asan/sqcow2:t/bin/asan/unit

# Each fuzzer for FUZZ_SECONDS, from a scratch copy of the kept corpus.
fuzz: $(FUZZERS)
	for h in ranges layout image; do \
		case $$h in image) len=131072;; *) len=4096;; esac; \
		rm -rf t/bin/corpus-$$h && cp -r t/fuzz/corpus/$$h t/bin/corpus-$$h && \
		t/bin/fuzz-$$h -max_total_time=$(FUZZ_SECONDS) -max_len=$$len \
			t/bin/corpus-$$h || exit 1; \
	done

# Timings against cat and qemu-img convert; never part of check.
bench: sqcow2
	sh t/bench.sh ./sqcow2

# The end-to-end suite with sqcow2 under valgrind's memcheck: slow, so
# not part of check.  Any finding fails a test and stays in t/valgrind-logs.
check-valgrind: t/bin/sqcow2 t/bin/unit t/bin/readback t/bin/fault.so
	rm -rf t/valgrind-logs && mkdir -p t/valgrind-logs
	VALGRIND_LOGS=$$PWD/t/valgrind-logs t/run valgrind:t/valgrind.sh:t/bin/unit
	@if [ -n "$$(cat t/valgrind-logs/* 2>/dev/null)" ]; then \
		echo "memcheck found something:"; cat t/valgrind-logs/*; exit 1; fi
	@echo "memcheck: no errors, no leaks"

# A sample disk with three pieces of data, made here, converted through a pipe.
demo: sqcow2
	sh t/demo.sh ./sqcow2

install: sqcow2
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANPREFIX)/man1
	cp -f sqcow2 $(DESTDIR)$(BINDIR)/sqcow2
	chmod 755 $(DESTDIR)$(BINDIR)/sqcow2
	cp -f man/sqcow2.1 $(DESTDIR)$(MANPREFIX)/man1/sqcow2.1
	chmod 644 $(DESTDIR)$(MANPREFIX)/man1/sqcow2.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sqcow2 $(DESTDIR)$(MANPREFIX)/man1/sqcow2.1

clean:
	rm -rf sqcow2 t/bin t/valgrind-logs demo.raw demo.ranges demo.qcow2

.PHONY: all check check-valgrind fuzz bench demo install uninstall clean
