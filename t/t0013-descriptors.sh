#!/bin/sh
# Standard descriptors closed at the start: a file opened later must never
# take the place of stderr, and a closed stdin or stdout that is needed is
# an error, never a silent /dev/null.
. "$(dirname "$0")/lib.sh"

# The console form of -p, where stderr is a terminal: t/fault.c says so.
FAULT_SO=${FAULT_SO:-$(dirname "$READBACK")/fault.so}
export ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}

test_expect_success 'setup' '
	make_raw disk.raw 8M && put_data disk.raw 0 8388608 &&
	echo "0 8388608" >all.ranges &&
	"$SQCOW2" <disk.raw >base.qcow2
'

# run_closed CLOSED IN OUT ARGS...: sqcow2 with the descriptors in CLOSED
# (some of 0, 1, 2) closed; the others read IN, write OUT and stderr to err.
run_closed() {
	closed=$1 in=$2 out=$3
	shift 3
	r0="<$in" r1=">$out" r2="2>err"
	case $closed in *0*) r0="<&-" ;; esac
	case $closed in *1*) r1=">&-" ;; esac
	case $closed in *2*) r2="2>&-" ;; esac
	eval "${RUN_ENV:-} \"\$SQCOW2\" \"\$@\" $r0 $r1 $r2"
}

# check_case CLOSED FORM: run one form with CLOSED and check its outcome.
# A form that needs a closed stdin or stdout must fail; any other must
# write the disk exactly, whatever stderr is.
check_case() {
	closed=$1 form=$2
	rm -f img.qcow2 out err
	case $form in
	plain)	run_closed "$closed" disk.raw img.qcow2 ;;
	i)	run_closed "$closed" /dev/null img.qcow2 -i disk.raw ;;
	o)	run_closed "$closed" disk.raw out -o img.qcow2 ;;
	io)	run_closed "$closed" /dev/null out -i disk.raw -o img.qcow2 ;;
	b)	run_closed "$closed" /dev/null out -r all.ranges -b base.qcow2 \
			-F qcow2 -i disk.raw -o img.qcow2 ;;
	p)	RUN_ENV="FAULTS=\"console clock=300\" LD_PRELOAD=\$FAULT_SO" \
			run_closed "$closed" /dev/null out -p \
			-r all.ranges -b base.qcow2 -F qcow2 -i disk.raw -o img.qcow2 ;;
	v)	run_closed "$closed" /dev/null out -v -i disk.raw -o img.qcow2 ;;
	esac
	status=$?
	# Which closed descriptor this form needs: stdin, stdout or both.
	case $form in plain) needs="0 1" ;; i) needs=1 ;; o) needs=0 ;; *) needs="" ;; esac
	for fd in $needs; do
		case $closed in *$fd*)
			test_eq "$status" 1 || return 1
			[ ! -s img.qcow2 ] || { echo "an image with $fd closed"; return 1; }
			return 0
		esac
	done
	test_eq "$status" 0 || return 1
	case $form in
	b|p)	verify_overlay img.qcow2 disk.raw ;;
	*)	verify img.qcow2 disk.raw ;;
	esac || return 1
	case $closed in *2*) ;; *)
		case $form in
		p) grep -q "100.0%" err || { echo "no progress shown"; return 1; } ;;
		v) grep -q "^sqcow2: read " err || { echo "no statistics"; return 1; } ;;
		esac
	esac
}

for closed in none 0 1 2 01 02 12 012; do
	test_expect_success "descriptors closed: $closed" '
		for form in plain i o io b p v; do
			check_case "$closed" $form ||
				{ echo "form $form, closed $closed"; exit 1; }
		done
	'
done

test_expect_success 'the adversarial run: -p, -b and -o with stderr closed' '
	cat disk.raw | FAULTS=clock=1500 LD_PRELOAD=$FAULT_SO \
		"$SQCOW2" -p -s 8M -r all.ranges -b base.qcow2 -F qcow2 -o ov.qcow2 2>&- &&
	verify_overlay ov.qcow2 disk.raw
'

test_expect_success 'a closed descriptor named by its path is an error, not /dev/null' '
	test_fails_with 1 "sqcow2: /dev/stdout: Bad file descriptor" \
		sh -c "\"\$SQCOW2\" disk.raw -o /dev/stdout >&-" &&
	test_fails_with 1 "sqcow2: /proc/self/fd/1: Bad file descriptor" \
		sh -c "\"\$SQCOW2\" disk.raw -o /proc/self/fd/1 >&-" &&
	test_expect_code 1 "$SQCOW2" disk.raw -o /dev/stderr 2>&- &&
	test_fails_with 1 "sqcow2: /dev/stdin: Bad file descriptor" \
		sh -c "\"\$SQCOW2\" -i disk.raw -r /dev/stdin -b base.qcow2 >ov.qcow2 <&-" &&
	test_fails_with 1 "sqcow2: /dev/stdin: Bad file descriptor" \
		sh -c "\"\$SQCOW2\" -i /dev/stdin >x.qcow2 <&-"
'

test_expect_success 'stderr that is the output (2>&1) is refused with -p and -v' '
	echo "sqcow2: stderr is the output: -p and -v would write into the image" >want &&
	test_expect_code 2 "$SQCOW2" -p disk.raw >same.qcow2 2>&1 &&
	test_cmp want same.qcow2 &&
	save_status status "$SQCOW2" -v disk.raw 2>&1 | cat >piped.qcow2 &&
	test_eq "$(cat status)" 2 && test_cmp want piped.qcow2 &&
	"$SQCOW2" disk.raw >quiet.qcow2 2>&1 && verify quiet.qcow2 disk.raw
'

test_expect_success 'a closed stdout fails for --print-size, --map and --help' '
	test_fails_with 1 "sqcow2: stdout: Bad file descriptor" \
		sh -c "\"\$SQCOW2\" --print-size <disk.raw >&-" &&
	test_fails_with 1 "sqcow2: stdout: Bad file descriptor" \
		sh -c "\"\$SQCOW2\" --map disk.raw >&-" &&
	test_fails_with 1 "sqcow2: stdout: Bad file descriptor" \
		sh -c "\"\$SQCOW2\" --help >&-"
'

test_expect_success 'a closed stdin fails for --map, but not for a --print-size that needs none' '
	test_fails_with 1 "sqcow2: stdin: Bad file descriptor" \
		sh -c "\"\$SQCOW2\" --map <&-" &&
	"$SQCOW2" -s 8M -r all.ranges --print-size <&- >size &&
	test_eq "$(cat size)" "$(file_size base.qcow2)"
'

test_done
