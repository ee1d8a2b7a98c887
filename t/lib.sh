# t/lib.sh: sourced by every t/tNNNN-*.sh.  Prints TAP.
#
# Each test is a shell snippet whose steps are chained with &&, run in a
# subshell in a scratch directory; its output is shown only when it fails.
# SQCOW2 and READBACK name the binaries under test (t/run sets them).

: "${SQCOW2:?SQCOW2 must name the sqcow2 binary}"
: "${READBACK:?READBACK must name t/bin/readback}"

test_count=0
test_failed=0
T_DIR=$(cd "$(dirname "$0")" && pwd)
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/sqcow2-test.XXXXXX") || exit 1
trap 'stop_httpd; rm -rf "$TRASH"' EXIT
cd "$TRASH" || exit 1
# The commands of the README and the man page call sqcow2 by name.
mkdir .bin && ln -s "$SQCOW2" .bin/sqcow2 || exit 1
PATH=$TRASH/.bin:$PATH

# qemu-img is the oracle.  Without it the project's own reader still runs;
# under CI=true its absence is a failure, not a skip.
if command -v qemu-img >/dev/null 2>&1; then
	HAVE_QEMU=1
elif [ "${CI:-}" = true ]; then
	echo "Bail out! qemu-img is missing and CI=true (.ci/run installs qemu-utils)"
	exit 1
else
	HAVE_QEMU=0
	echo "# qemu-img not found: oracle checks skipped, own reader only"
fi

# Each body runs with fd 7 on its log, where the helpers below say why they
# failed even when the body sends the command's stderr elsewhere.
test_expect_success() {
	test_count=$((test_count + 1))
	if (test_cleanup=:; trap 'eval "$test_cleanup"' EXIT; eval "$2") \
	    >"$TRASH/.log" 2>&1 7>&1; then
		echo "ok $test_count - $1"
	else
		test_failed=$((test_failed + 1))
		echo "not ok $test_count - $1"
		sed 's/^/#   /' "$TRASH/.log" | tail -n 30
	fi
}

# test_when_finished COMMAND: run COMMAND when the test body ends, passed
# or failed (an unmount, say); call it at the top level of the body.
test_when_finished() {
	test_cleanup="$*; $test_cleanup"
}

# A test left out by design (a variant that cannot run it).
test_skip() {
	test_count=$((test_count + 1))
	echo "ok $test_count - $1 # SKIP $2"
}

# A test left out for want of a tool, root or a device: under CI=true,
# where .ci/run installs every tool and runs as root, that ends the run.
test_skip_missing() {
	if [ "${CI:-}" = true ]; then
		echo "Bail out! $1: $2, and CI=true (.ci/run installs every tool, as root)"
		exit 1
	fi
	test_skip "$@"
}

test_done() {
	echo "1..$test_count"
	[ "$test_failed" -eq 0 ]
	exit
}

# Fail showing both files when they differ.
test_cmp() {
	diff -u "$1" "$2"
}

# Fail showing both values when they differ: test_eq GOT WANT.
test_eq() {
	[ "$1" = "$2" ] && return 0
	echo "got: '$1'"
	echo "want: '$2'"
	return 1
}

# test_expect_code STATUS COMMAND...: COMMAND exits with STATUS.  Put it
# on the last command of a pipeline; it keeps the command's redirections.
test_expect_code() {
	want_code=$1
	shift
	"$@"
	got_code=$?
	[ "$got_code" = "$want_code" ] && return 0
	echo "test_expect_code: exit status $got_code, want $want_code: $*" >&7
	return 1
}

# test_must_fail COMMAND...: COMMAND fails as a program should, with a
# status from 1 to 125, not by a signal or a sanitizer's abort.
test_must_fail() {
	"$@"
	got_code=$?
	[ "$got_code" -ge 1 ] && [ "$got_code" -le 125 ] && return 0
	echo "test_must_fail: exit status $got_code: $*" >&7
	return 1
}

# save_status FILE COMMAND...: run COMMAND and write its exit status to
# FILE; succeeds, so that a chain goes on (for a command in a pipeline
# whose status the pipeline drops).
save_status() {
	status_file=$1
	shift
	"$@"
	echo $? >"$status_file"
}

# wait_for COMMAND...: wait until COMMAND succeeds: an event, such as a
# file appearing, not a length of time; fails after a minute.
wait_for() {
	waited=0
	until "$@"; do
		waited=$((waited + 1))
		[ $waited -le 600 ] || { echo "wait_for: timed out on: $*" >&7; return 1; }
		sleep 0.1
	done
}

# run_bg VAR COMMAND...: start COMMAND in the background, with the
# redirections of this call; VAR gets its process id.  A background job
# of a script reads /dev/null unless told otherwise, hence fd 8; and it
# ignores SIGINT, which env --default-signal=INT undoes.
run_bg() {
	run_bg_var=$1
	shift
	{ "$@" <&8 8<&- & } 8<&0
	eval "$run_bg_var=\$!"
}

# feed FILE BYTES FIFO: a producer that stalls: open FIFO, write the first
# BYTES of FILE into it, say so (FIFO.fed appears), and write the rest
# only once told to (FIFO.go appears), or die after a minute.  A run
# reading the FIFO is then mid-way, waiting for more.  Start it with
# run_bg before the run, which opens the other end.
feed() {
	exec >"$3" && head -c "$2" "$1" && : >"$3.fed" &&
	wait_for test -e "$3.go" && tail -c +$(($2 + 1)) "$1"
}

# A single quote, for here-documents inside the single-quoted test bodies.
SQ="'"

# Run a command that must fail with the given exit status and stderr line:
# test_fails_with STATUS LINE COMMAND..., or with LINE "-" the lines of
# standard input (a here-document).
test_fails_with() {
	want_status=$1 want_stderr=$2
	shift 2
	if [ "$want_stderr" = - ]; then
		cat >"$TRASH/.want"
	else
		printf '%s\n' "$want_stderr" >"$TRASH/.want"
	fi
	"$@" >"$TRASH/.out" 2>"$TRASH/.err" </dev/null
	status=$?
	if [ "$status" -ne "$want_status" ]; then
		echo "exit status $status, want $want_status"
		cat "$TRASH/.err"
		return 1
	fi
	test_cmp "$TRASH/.want" "$TRASH/.err"
}

# A sparse raw file of SIZE bytes (truncate's syntax).
# make_luks IMAGE: a LUKS-encrypted qcow2 image of 1 MiB.  qemu-img times
# its key derivation first, which fails now and then on a loaded machine
# ("Unable to get accurate CPU usage"): it is asked again, a few times.
make_luks() {
	for try in 1 2 3 4 5; do
		qemu-img create -q --object secret,id=sec0,data=123456 -f qcow2 \
			-o encrypt.format=luks,encrypt.key-secret=sec0 "$1" 1M 2>"$1.err" &&
			return 0
		grep -q "accurate CPU usage" "$1.err" || break
	done
	cat "$1.err" >&2
	return 1
}

make_raw() {
	rm -f "$1" && truncate -s "$2" "$1"
}

# Write LENGTH random bytes at OFFSET of FILE, never starting with zero
# (so a dropped first byte is noticed).
put_data() {
	{ printf '\001'; head -c $(($3 - 1)) /dev/urandom; } |
		dd of="$1" bs=64k seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# Convert RAW through a pipe: convert RAW IMAGE [sqcow2 options].
convert() {
	raw=$1 image=$2
	shift 2
	cat "$raw" | "$SQCOW2" "$@" >"$image"
}

# The image is valid and reads back as RAW: own reader always, qemu-img
# when present (check exit 0 means no errors and no leaks).
verify() {
	"$READBACK" compare "$1" "$2" || return 1
	[ "$HAVE_QEMU" = 1 ] || return 0
	qemu-img check -q -f qcow2 "$1" || { echo "qemu-img check failed: $1"; return 1; }
	qemu-img compare -q -f qcow2 -F raw "$1" "$2" ||
		{ echo "qemu-img compare: $1 differs from $2"; return 1; }
}

# An overlay is valid and, over its backing file, reads back as RAW: own
# reader's checks always, qemu-img's compare when present.
verify_overlay() {
	"$READBACK" check "$1" || return 1
	[ "$HAVE_QEMU" = 1 ] || return 0
	qemu-img check -q -f qcow2 "$1" || { echo "qemu-img check failed: $1"; return 1; }
	qemu-img compare -q -f qcow2 -F raw "$1" "$2" ||
		{ echo "qemu-img compare: $1 differs from $2"; return 1; }
}

# pipe_decodes IMAGE RAW: IMAGE decodes from a pipe with nothing held
# (-w 0) to RAW, then zeros to the end of its last sector, as QEMU reads it.
pipe_decodes() {
	cat "$1" | "$SQCOW2" -d -w 0 >piped.raw ||
		{ echo "sqcow2 -d -w 0 from a pipe: $1"; return 1; }
	cmp -n "$(file_size "$2")" piped.raw "$2" ||
		{ echo "sqcow2 -d -w 0 from a pipe: $1 differs from $2"; return 1; }
	test_eq "$(file_size piped.raw)" $((($(file_size "$2") + 511) / 512 * 512)) &&
	test_eq "$(tail -c +$(($(file_size "$2") + 1)) piped.raw | tr -d '\000' | wc -c)" 0 &&
	rm piped.raw
}

# The file's size in bytes.
file_size() {
	stat -c %s "$1"
}

# A key of `readback info`.
info() {
	"$READBACK" info "$1" | sed -n "s/^$2=//p"
}

# start_httpd DIR: the loopback HTTP server of t/httpd.py, storing what is
# PUT under DIR; sets URL to its http://127.0.0.1:PORT.
start_httpd() {
	mkdir -p "$1" && rm -f "$TRASH/.httpd.port" || return 1
	python3 "$T_DIR/httpd.py" "$1" "$TRASH/.httpd.port" &
	HTTPD_PID=$!
	for i in $(seq 50); do
		[ -s "$TRASH/.httpd.port" ] && break
		sleep 0.1
	done
	[ -s "$TRASH/.httpd.port" ] || { echo "the HTTP server did not start"; return 1; }
	URL=http://127.0.0.1:$(cat "$TRASH/.httpd.port")
}

stop_httpd() {
	[ -z "${HTTPD_PID:-}" ] || kill "$HTTPD_PID" 2>/dev/null
	HTTPD_PID=
}

# Whether this run may mount a tmpfs (as root, outside a locked-down
# container): the tests of a full or small file system need one.
can_mount_tmpfs() {
	mkdir -p "$TRASH/.probe" &&
	mount -t tmpfs -o size=64k tmpfs "$TRASH/.probe" 2>/dev/null &&
	umount "$TRASH/.probe"
}

# man_example TEXT: the literal block of man/sqcow2.1 that follows the line
# holding TEXT, as a shell reads it.
man_example() {
	sed -n "/$1/,/^\.Ed/p" "$T_DIR/../man/sqcow2.1" |
		sed -n '/^\.Bd -literal/,/^\.Ed/p' | sed '1d;$d' |
		sed 's/\\e/\\/g; s/\\&//g'
}

# readme_example TEXT: the indented block of the README after the line
# holding TEXT.
readme_example() {
	awk -v text="$1" 'index($0, text) { found = 1; next }
		found && /^    / { print substr($0, 5); block = 1; next }
		found && block { exit }' "$T_DIR/../README"
}

# run_example FILE: run the example in FILE as a user would paste it, the
# loopback server standing for example.com.
run_example() {
	[ -s "$1" ] || { echo "no such example in the docs"; return 1; }
	sed "s|https://example.com|$URL|g" "$1" >"$1.sh" && sh -e "$1.sh"
}
