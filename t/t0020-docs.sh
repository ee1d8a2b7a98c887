#!/bin/sh
# Every command block of the README (its indented blocks) and of the man
# page (.Dl, .D1 and .Bd -literal) runs here as printed, or is named as
# run by another test, or is listed as not a command: a block that is
# none of these, new or changed past its entry, fails the test.
#
# Each block runs with sh -e in a fresh directory holding the files the
# examples name (sparse disks: 20 GiB where the block says 20G, 64 MiB
# elsewhere), and then what it made is checked: each image against the
# disk it came from, each decoded disk with cmp, each upload against the
# stream form, each printed line against what it should say.  A file
# the block wrote that its case does not check is a failure too.  The
# README's first block, three commands that need nothing of each other,
# runs a line at a time, each checked; the man page's copy of its first
# line is not run twice.  Only the plain build streams the 20 GiB disks
# and runs make demo: the sanitizer build would spend a minute on
# zeros, and make demo builds a sqcow2 of its own.
#
# What is remote is here, and these are the only rewrites:
#   ssh HOST CMD          .bin/ssh runs CMD with sh -c in the current
#                         directory (it is both hosts), after rewriting
#                         one path: /dev/vg/vm1 -> vm1.lv, a sparse file
#   https://example.com   the loopback server of t/httpd.py (run_example)
#   nbd://host            nbd://127.0.0.1:PORT, served by qemu-nbd (a
#                         dirty bitmap) or nbdkit (a file)
#   /dev/vdb              vdb, a file here
# Any other /dev path in a block is refused rather than written.
#
# In the README's "make -j2 check", the command that runs this script is
# not run again.
DOCS=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/lib.sh"

BLOCKS=$TRASH/blocks RUNS=$TRASH/runs CASES=$TRASH/cases STORE=$TRASH/store
mkdir "$BLOCKS" "$RUNS" "$CASES" || exit 1
: >"$BLOCKS/list"

# What each block is, by a string that it alone holds in its document:
#   DOC run CASE STRING        run here by case_CASE
#   DOC elsewhere TEST STRING  run as printed by t/TEST.sh
#   DOC same CASE STRING       a line of the block of case_CASE, which
#                              runs that block line by line
#   DOC not KIND STRING        not a command
cat >"$TRASH/table" <<'EOF'
README run intro sqcow2 < disk.raw > disk.qcow2     # size and ranges
README run demo make demo
README not synopsis sqcow2 [-pv] [-s SIZE] [-r FILE]
README elsewhere t0011-range-maps qemu-img bitmap --add vm.qcow2 b0
README elsewhere t0011-range-maps nbdinfo --map=qemu:dirty-bitmap:b0 "$uri" > changed.map
README run overlay sqcow2 -r changed.ranges -b monday.qcow2 -F qcow2 < tuesday.raw
README run overlay sqcow2 --diff monday.qcow2 -b monday.qcow2 -F qcow2 tuesday.raw
README run nested sqcow2 -f raw nested.raw > nested.qcow2
README run compress sqcow2 -z -o disk.qcow2 disk.raw
README run unsafe sqcow2 -u -r changed.ranges -b monday.qcow2 -F qcow2 -o outbox/tuesday.qcow2
README not range-file # OFFSET     LENGTH
README run ssh_map ssh host sqcow2 --map disk.raw > disk.ranges
README elsewhere t0014-http sqcow2 --expect-size "$size" disk.raw | curl -T -
README elsewhere t0014-http size=$(sqcow2 -z --print-size disk.raw)
README elsewhere t0017-slice seq 0 3 | xargs -P4
README elsewhere t0017-slice -H "Content-Range: bytes $have-$((size - 1))/$size"
README run decode curl -s https://example.com/vm1.qcow2 | sqcow2 -d > /dev/vdb   # restore
README not benchmark case                                    sqcow2   reference
README not layout header | L1 table | refcount table | refcount blocks | L2 tables | data
README not layout header | L1 table | refcount table | refcount blocks | L2 tables | gap
README not file-list sqcow2.c          the options: parsed
README not file-list stream.c          the stream form, whole
README not file-list files.c           the ends opened and closed
README not file-list qcow2.h           the format, once
README not file-list t*.sh             end to end
sqcow2.1 not range-file # OFFSET     LENGTH
sqcow2.1 not range-file 524288       65536    1  dirty
sqcow2.1 not range-file [{"offset": 0, "length": 1048576},
sqcow2.1 run image sqcow2 < disk.raw > disk.qcow2
sqcow2.1 run ssh_map ssh host sqcow2 --map disk.raw > disk.ranges
sqcow2.1 run image sqcow2 -o disk.qcow2 --fsync < disk.raw
sqcow2.1 run overlay qemu-img compare tuesday.qcow2 tuesday.raw
sqcow2.1 run bitmap nbdinfo --map=qemu:dirty-bitmap:b0 nbd://host > changed.map
sqcow2.1 elsewhere t0014-http sqcow2 --sparsify --expect-size "$size" disk.raw |
sqcow2.1 run image sqcow2 -p --compat 0.10 -s 20G -r disk.ranges
sqcow2.1 run nbd nbdcopy nbd://host/disk - |
sqcow2.1 same intro cat disk.raw | sqcow2 --size 20G --ranges disk.ranges > disk.qcow2
sqcow2.1 run upload ssh host 'cat /dev/vg/vm1' | sqcow2 -s 20G -r vm1.ranges -c 4k |
sqcow2.1 run decode curl -s https://example.com/vm1.qcow2 | sqcow2 -d > /dev/vdb
sqcow2.1 run decode ssh host 'cat vm1.qcow2' | sqcow2 -d -o vm1.raw
sqcow2.1 run decode sqcow2 -d < vm1.qcow2 | sha256sum
sqcow2.1 run check qemu-img check disk.qcow2 && qemu-img compare disk.qcow2 disk.raw
EOF

# The README's code blocks, as CommonMark finds them: lines indented four
# columns more than the text around them (a list item's text included),
# after a blank line, with blank lines inside; the indent is taken off.
expand "$DOCS/README" | awk -v out="$BLOCKS" '
function flush(   i) {
	if (!n)
		return
	f = out "/README-" start
	for (i = 1; i <= n; i++)
		print substr(lines[i], cut + 1) >f
	close(f)
	print "README-" start >>(out "/list")
	n = 0
}
BEGIN { blank = 1 }
/^ *$/ { if (n) pend++; blank = 1; next }
{
	match($0, /^ */)
	ind = RLENGTH
	if (n && ind >= need) {
		for (; pend; pend--)
			lines[++n] = ""
		lines[++n] = $0
		if (ind < cut)
			cut = ind
		blank = 0
		next
	}
	flush()
	pend = 0
	want = inlist ? listcol + 4 : 4
	if (blank && ind >= want) {
		n = 1; lines[1] = $0; cut = ind; need = want; start = NR; blank = 0
		next
	}
	if (match($0, /^ *([-*+]|[0-9]+[.)]) +/)) {
		inlist = 1
		listcol = RLENGTH
	} else if (inlist && blank && ind < listcol)
		inlist = 0
	blank = 0
}
END { flush() }'

# The man page's displays: each .Dl or .D1 line, and each .Bd -literal
# block, with the escapes undone as roff undoes them.  An escape this
# does not know, or a request inside a block, is an error, not a guess.
awk -v out="$BLOCKS" '
function put(text) { print text >f }
/^\.Bd -literal/ { f = out "/sqcow2.1-" NR; print "sqcow2.1-" NR >>(out "/list"); inblock = 1; next }
inblock && /^\.Ed/ { close(f); inblock = 0; next }
inblock && /^\./ { print FILENAME ":" NR ": a request inside a literal block" >>(out "/errors") }
inblock { put($0); next }
/^\.D[l1] / {
	f = out "/sqcow2.1-" NR
	print "sqcow2.1-" NR >>(out "/list")
	put(substr($0, 5))
	close(f)
}' "$DOCS/man/sqcow2.1"
for id in $(grep '^sqcow2.1-' "$BLOCKS/list"); do
	sed 's/\\e/\x01/g; s/\\&//g; s/\\-/-/g; s/\\(aq/'"'"'/g; s/\\(dq/"/g' "$BLOCKS/$id" >"$BLOCKS/$id.tmp"
	if grep -q '\\' "$BLOCKS/$id.tmp"; then
		echo "man/sqcow2.1 line ${id#*-}: an escape this test does not undo" >>"$BLOCKS/errors"
	fi
	tr '\001' '\\' <"$BLOCKS/$id.tmp" >"$BLOCKS/$id" && rm "$BLOCKS/$id.tmp"
done

# Each block's class, in BLOCKS/ID.class: the one entry of the table for
# its document whose string it holds.  Any block with none or more than
# one, and any entry with no block or more than one, is a problem.
: >"$BLOCKS/problems"
n=0
while read -r doc action arg string; do
	n=$((n + 1))
	hits=0
	for id in $(grep "^$doc-" "$BLOCKS/list"); do
		text=$(cat "$BLOCKS/$id")
		case $text in
		*"$string"*)
			hits=$((hits + 1))
			echo "$action $arg" >>"$BLOCKS/$id.class" ;;
		esac
	done
	[ $hits -eq 1 ] ||
		echo "the entry \"$doc $action $arg $string\" is in $hits blocks, not one" >>"$BLOCKS/problems"
done <"$TRASH/table"
for id in $(cat "$BLOCKS/list"); do
	where="${id%-*} line ${id##*-}"
	if [ ! -s "$BLOCKS/$id.class" ]; then
		{
			echo "$where: a block this test neither runs nor knows:"
			sed 's/^/    /' "$BLOCKS/$id"
			echo "  run it here (a case), name the test that runs it, or list it as not a command"
		} >>"$BLOCKS/problems"
	elif [ "$(wc -l <"$BLOCKS/$id.class")" -gt 1 ]; then
		echo "$where: a block of $(wc -l <"$BLOCKS/$id.class") entries: $(tr '\n' ';' <"$BLOCKS/$id.class")" >>"$BLOCKS/problems"
	fi
done

test_expect_success 'the README and the man page have their blocks found' '
	readme=$(grep -c "^README-" "$BLOCKS/list") man=$(grep -c "^sqcow2.1-" "$BLOCKS/list") &&
	echo "README: $readme blocks, man page: $man" &&
	test "$readme" -gt 0 && test "$man" -gt 0 &&
	test ! -e "$BLOCKS/errors"
'

test_expect_success 'every block is run here, run by a test it names, or not a command' '
	cat "$BLOCKS/problems" && test ! -s "$BLOCKS/problems"
'

# The options --help lists are those the man page describes, and the
# man page is clean by mandoc's lint.
test_expect_success '--help and the man page give the same options' '
	"$SQCOW2" --help | grep -o "^ *\(-[a-zA-Z], \)\?--[a-z-]*" |
		sed "s/.*--//" | sort -u >help-options &&
	sed -n "s/^\.It Fl \(. , \)\?Fl -\([a-z-]*\).*/\2/p; s/^\.It Fl -\([a-z-]*\).*/\1/p" \
		"$DOCS/man/sqcow2.1" | sort -u >man-options &&
	test_cmp help-options man-options &&
	test "$(wc -l <man-options)" -ge 20
'

if command -v mandoc >/dev/null 2>&1; then
test_expect_success 'mandoc -Tlint finds nothing in the man page' '
	mandoc -Tlint -W warning "$DOCS/man/sqcow2.1" >lint 2>&1 || true &&
	grep -v "outdated mandoc.db" lint >findings || true &&
	test_cmp /dev/null findings
'
else
	test_skip_missing 'mandoc -Tlint finds nothing in the man page' 'mandoc not found'
fi

# The man page shows each block as this test runs it: every line is a
# line of the page that mandoc renders, so no escape was undone wrongly.
if command -v mandoc >/dev/null 2>&1; then
test_expect_success 'the man page renders each block as it is run' '
	mandoc -Tascii "$DOCS/man/sqcow2.1" | sed "s/.\x08//g" | expand | sed "s/^ *//" >rendered &&
	for id in $(grep "^sqcow2.1-" "$BLOCKS/list"); do
		sed "s/^ *//" "$BLOCKS/$id" | while IFS= read -r line; do
			grep -qxF -- "$line" rendered ||
				{ echo "line ${id#*-}: not on the rendered page: $line"; exit 1; }
		done || exit 1
	done
'
else
	test_skip_missing 'the man page renders each block as it is run' 'mandoc not found'
fi

# block_run_there ID: a block named as run elsewhere is run there: that
# test extracts it by readme_example or man_example, or holds the whole
# of it, line after line, as the text of its commands.
block_run_there() {
	read -r action test <"$BLOCKS/$1.class" || return 1
	[ "$action" = elsewhere ] || return 0
	file=$T_DIR/$test.sh
	where="${1%-*} line ${1##*-}"
	test -f "$file" || { echo "$where: no test $test"; return 1; }
	for fn in readme_example man_example; do
		sed -n "s/.*$fn \"\\([^\"]*\\)\".*/\\1/p" "$file" >keys
		while IFS= read -r key; do
			$fn "$key" | cmp -s - "$BLOCKS/$1" && return 0
		done <keys
	done
	python3 -c "import sys
block = open(sys.argv[1]).read().rstrip(\"\\n\")
sys.exit(block not in open(sys.argv[2]).read())" "$BLOCKS/$1" "$file" ||
		{ echo "$where: not in $test, whole:"; cat "$BLOCKS/$1"; return 1; }
}

# block_in_other ID: a block that is a line of another, run line by line,
# is a line of that one.
block_in_other() {
	read -r action name <"$BLOCKS/$1.class" || return 1
	[ "$action" = same ] || return 0
	test_eq "$(wc -l <"$BLOCKS/$1")" 1 &&
	line=$(cat "$BLOCKS/$1") &&
	grep -lx "run $name" "$BLOCKS"/*.class >classes &&
	test_eq "$(wc -l <classes)" 1 &&
	other=$(cat classes) &&
	grep -qxF -- "$line" "${other%.class}" ||
		{ echo "${1%-*} line ${1##*-}: not a line of the block of case $name: $line"; return 1; }
}

test_expect_success 'the blocks run by other tests are in those tests' '
	for id in $(cd "$BLOCKS" && ls -- *.class | sed "s/\.class$//"); do
		block_run_there "$id" || exit 1
	done
'

test_expect_success 'the blocks that are a line of another are in it' '
	for id in $(cd "$BLOCKS" && ls -- *.class | sed "s/\.class$//"); do
		block_in_other "$id" || exit 1
	done
'

# The ssh of the examples: HOST is this machine, the current directory
# its home.
cat >"$TRASH/.bin/ssh" <<'EOF'
#!/bin/sh
# ssh HOST COMMAND...: COMMAND run here as sshd runs it there, by sh -c,
# with /dev/vg/vm1 rewritten to vm1.lv, a file in the current directory.
[ $# -ge 2 ] || { echo "ssh (stand-in): usage: ssh HOST COMMAND" >&2; exit 255; }
shift
cmd=$(printf '%s\n' "$*" | sed 's|/dev/vg/vm1|vm1.lv|g')
case $cmd in
*/dev/*) echo "ssh (stand-in): refusing a device path: $cmd" >&2; exit 255 ;;
esac
exec sh -c "$cmd"
EOF
chmod +x "$TRASH/.bin/ssh" || exit 1

# fixtures BLOCK: in the current directory, the files that the examples
# name: disk.raw and its ranges, vm1.lv (/dev/vg/vm1) with its ranges and
# its image, monday.raw and tuesday.raw with the changed ranges and
# Monday's image, and vm1.qcow2 on the server.  The disks are sparse, 20
# GiB when BLOCK says 20G, else 64 MiB; the data is some hundred KiB.
fixtures() {
	if grep -q 20G "$1"; then size=20G; else size=64M; fi
	make_raw disk.raw $size && put_data disk.raw 0 300000 &&
	head -c 8M /dev/zero | dd of=disk.raw bs=1M seek=8 conv=notrunc status=none &&
	put_data disk.raw 40000000 70000 &&
	end=$(($(file_size disk.raw) - 4096)) && put_data disk.raw $end 4096 &&
	printf '0 300000\n40000000 70000\n%s 4096\n' $end >disk.ranges &&
	make_raw vm1.lv $size && put_data vm1.lv 1048576 200000 && put_data vm1.lv 7000000 5000 &&
	printf '1048576 200000\n7000000 5000\n' >vm1.ranges &&
	"$SQCOW2" vm1.lv >vm1.qcow2 &&
	rm -rf "$STORE" && mkdir "$STORE" && cp vm1.qcow2 "$STORE/vm1.qcow2" &&
	make_raw monday.raw 64M && put_data monday.raw 0 1048576 &&
	put_data monday.raw 10485760 65536 && cp monday.raw tuesday.raw &&
	head -c 65536 /dev/zero | dd of=tuesday.raw conv=notrunc status=none &&
	put_data tuesday.raw 20971520 100000 &&
	printf '0 65536\n20971520 100000\n' >changed.ranges &&
	"$SQCOW2" monday.raw >monday.qcow2 && cp monday.qcow2 nested.raw && mkdir outbox
}

# fixtures_done: date every file here and on the server in 2000, so that
# made tells what the block wrote.
fixtures_done() {
	find . "$STORE" -type f -exec touch -d @946684800 {} + &&
	touch -d @946684801 .fixtures &&
	: >.checked
}

# made FILE...: the block wrote each FILE, which the caller checks.
made() {
	for f; do
		[ "$f" -nt .fixtures ] || { echo "the block did not write $f"; return 1; }
		realpath "$f" >>.checked
	done
}

# all_checked: no file the block wrote went unchecked.
all_checked() {
	find "$PWD" "$STORE" -type f -newer .fixtures ! -name '.*' | sort >.written &&
	sort .checked | comm -23 .written - >.unchecked &&
	{ [ ! -s .unchecked ] || { echo "written and not checked:"; cat .unchecked; return 1; }; }
}

# run_block ID [TEXT]: run the block (or TEXT, a file) in the current
# directory with sh -e, as a user pastes it, the stand-ins above in
# place; its output in RUNS/ID.out and RUNS/ID.err.
run_block() {
	cp "${2:-$BLOCKS/$1}" "$RUNS/$1" &&
	sed -i "s|nbd://host|nbd://127.0.0.1:${NBD_PORT:-0}|g; s|/dev/vdb|vdb|g" "$RUNS/$1" &&
	if grep -o "/dev/[^ ${SQ}\"]*" "$RUNS/$1" | grep -vqx /dev/vg/vm1; then
		echo "refusing a device path left in the block:"; cat "$RUNS/$1"; return 1
	fi &&
	echo "\$ sh -e <<EOF" && cat "$RUNS/$1" && echo "EOF" &&
	if run_example "$RUNS/$1" >"$RUNS/$1.out" 2>"$RUNS/$1.err"; then
		cat "$RUNS/$1.err"
	else
		echo "the block failed:"; cat "$RUNS/$1.out" "$RUNS/$1.err"; return 1
	fi
}

# The block's text, and whether it holds a string.
block() { cat "$BLOCKS/$ID"; }
says() { grep -qF -- "$1" "$BLOCKS/$ID"; }

# stream IMAGE RAW OPTIONS...: IMAGE is byte for byte the stream form of
# RAW that a pipe gives with OPTIONS, and reads back as RAW.
stream() {
	image=$1 raw=$2
	shift 2
	"$SQCOW2" --no-sparsify "$@" "$raw" >"$RUNS/$ID.want" &&
	cmp "$RUNS/$ID.want" "$image" && verify "$image" "$raw"
}

# clusters IMAGE DATA ZERO: how many data and zero clusters IMAGE holds.
clusters() {
	test_eq "$(info "$1" data_clusters) $(info "$1" zero_clusters)" "$2 $3"
}

# free_port: a TCP port of 127.0.0.1 that nothing listens on just now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve COMMAND...: start an NBD server that forks and writes nbd.pid,
# with @PORT@ in its arguments a free port, which NBD_PORT then holds; a
# port taken meanwhile is tried again.
serve() {
	for try in 1 2 3; do
		NBD_PORT=$(free_port) && rm -f nbd.pid || return 1
		(for arg; do shift; set -- "$@" "$(echo "$arg" | sed "s/@PORT@/$NBD_PORT/")"; done
		exec "$@") || continue
		for i in $(seq 50); do
			[ -s nbd.pid ] && return 0
			sleep 0.1
		done
	done
	echo "no NBD server: $*"
	return 1
}

# unserve: end the server that serve started, if it still runs.
unserve() {
	pid=$(cat nbd.pid 2>/dev/null) || return 0
	case $(cat "/proc/$pid/comm" 2>/dev/null) in
	qemu-nbd|nbdkit) kill "$pid" ;;
	esac
	rm -f nbd.pid
}

# The cases: each runs block ID in its own directory after fixtures and
# checks what it made.

# README's first block: three commands on their own, a pipe, an upload
# from another host's volume, a file.  No line needs another, so each
# runs as a block of its own and is checked before the next.
case_intro() {
	i=0
	while IFS= read -r line; do
		i=$((i + 1))
		printf '%s\n' "$line" >"$RUNS/$ID.$i" &&
		fixtures_done && run_block $ID "$RUNS/$ID.$i" &&
		case $line in
		*"| curl"*)
			made "$STORE/vm1.qcow2" &&
			stream "$STORE/vm1.qcow2" vm1.lv -s 20G -r vm1.ranges ;;
		*"> disk.qcow2"*)
			made disk.qcow2 && verify disk.qcow2 disk.raw && clusters disk.qcow2 8 0 ;;
		*)
			echo "a line this case does not know: $line"; false ;;
		esac &&
		all_checked || return 1
	done <"$BLOCKS/$ID"
}

# make demo, in a copy of the source tree; "make -j2 check" is what runs
# this script.
case_demo() {
	mkdir src src/t src/man && cp "$DOCS"/*.c "$DOCS"/*.h "$DOCS"/Makefile src/ &&
	cp "$T_DIR/demo.sh" src/t/ && cp "$DOCS/man/sqcow2.1" src/man/ && cd src &&
	fixtures_done &&
	grep -q '^make \(-j[0-9]* \)*check ' "$BLOCKS/$ID" &&
	grep -v '^make \(-j[0-9]* \)*check ' "$BLOCKS/$ID" >"$RUNS/$ID.demo" &&
	(unset MAKEFLAGS MFLAGS MAKELEVEL; run_block $ID "$RUNS/$ID.demo") &&
	made sqcow2 demo.raw demo.ranges demo.qcow2 && ./sqcow2 --version &&
	verify demo.qcow2 demo.raw &&
	{ [ "$HAVE_QEMU" = 0 ] || grep -q "^Images are identical" "$RUNS/$ID.out"; }
}

# An overlay of Tuesday's disk over Monday's image: Tuesday zeroed the
# first cluster (a zero cluster hides Monday's data) and wrote two new
# ones.
case_overlay() {
	run_block $ID &&
	if says "> monday.qcow2"; then made monday.qcow2 && verify monday.qcow2 monday.raw; fi &&
	made tuesday.qcow2 && verify_overlay tuesday.qcow2 tuesday.raw &&
	test_eq "$(info tuesday.qcow2 backing_file) $(info tuesday.qcow2 backing_format)" \
		"monday.qcow2 qcow2" &&
	clusters tuesday.qcow2 2 1 &&
	if says "qemu-img compare"; then
		grep -q "^Images are identical" "$RUNS/$ID.out"
	else
		test ! -s "$RUNS/$ID.out"
	fi
}

# data_of FILE: the data extents of FILE, as SEEK_DATA and SEEK_HOLE
# tell them to another program than sqcow2.
data_of() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off, end = 0, os.fstat(fd).st_size
while off < end:
    try:
        data = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    off = os.lseek(fd, data, os.SEEK_HOLE)
    print(data, off - data)' "$1"
}

# The range list made on the host, the disk streamed from there.
case_ssh_map() {
	run_block $ID &&
	made disk.ranges && data_of disk.raw >"$RUNS/$ID.want" &&
	grep -v "^#" disk.ranges | test_cmp "$RUNS/$ID.want" - &&
	made disk.qcow2 && verify disk.qcow2 disk.raw
}

# A raw disk that holds an image, taken as a disk by -f raw.
case_nested() {
	run_block $ID &&
	made nested.qcow2 && verify nested.qcow2 nested.raw
}

# A compressed image of disk.raw: valid, the same disk, decoded back.
case_compress() {
	run_block $ID &&
	made disk.qcow2 &&
	"$SQCOW2" -d disk.qcow2 | cmp - disk.raw &&
	if [ "$HAVE_QEMU" = 1 ]; then
		qemu-img check -q -f qcow2 disk.qcow2 &&
		qemu-img compare -q -f qcow2 -F raw disk.qcow2 disk.raw
	fi
}

# An overlay whose backing file will be beside it only later: written
# with -u, and whole once Monday's image joins it.
case_unsafe() {
	run_block $ID &&
	made outbox/tuesday.qcow2 && "$READBACK" check outbox/tuesday.qcow2 &&
	test_eq "$(info outbox/tuesday.qcow2 backing_file)" monday.qcow2 &&
	cp monday.qcow2 outbox/ && realpath outbox/monday.qcow2 >>.checked &&
	verify_overlay outbox/tuesday.qcow2 tuesday.raw
}

# disk.qcow2 from disk.raw, by a file, -o, or a pipe with its ranges:
# eight clusters hold data, and none of the 8 MiB of zeros written is
# stored.  -o replaces an older copy, whose mode stays.
case_image() {
	if says "-o disk.qcow2"; then
		"$SQCOW2" monday.raw >disk.qcow2 && chmod 640 disk.qcow2 && fixtures_done
	fi &&
	run_block $ID &&
	made disk.qcow2 && verify disk.qcow2 disk.raw && clusters disk.qcow2 8 0 &&
	if says "-o disk.qcow2"; then test_eq "$(stat -c %a disk.qcow2)" 640; fi &&
	if says "--compat 0.10"; then test_eq "$(info disk.qcow2 version)" 2; fi &&
	if says " -p "; then grep -q "100.0%" "$RUNS/$ID.err"; fi
}

# The dirty bitmap of a VM's disk, served by qemu-nbd -t -B b0 as the
# man page says, with Monday's image made when the bitmap was added.
case_bitmap() {
	test_when_finished unserve &&
	qemu-img create -q -f qcow2 vm.qcow2 64M &&
	qemu-io -c "write -P 0x11 0 1M" -c "write -P 0x12 10M 64k" vm.qcow2 >/dev/null &&
	qemu-img bitmap --add vm.qcow2 b0 &&
	qemu-img convert -O raw vm.qcow2 monday.raw && "$SQCOW2" <monday.raw >monday.qcow2 &&
	qemu-io -c "write -P 0x5a 5M 64k" -c "write -z 10M 4k" -c "write -P 0x5b 63M 1M" \
		vm.qcow2 >/dev/null &&
	qemu-img convert -O raw vm.qcow2 tuesday.raw &&
	serve qemu-nbd -r -t -B b0 -f qcow2 -b 127.0.0.1 -p @PORT@ --pid-file="$PWD/nbd.pid" \
		--fork vm.qcow2 &&
	fixtures_done &&
	run_block $ID &&
	made changed.map && grep -q "  dirty$" changed.map &&
	made tuesday.qcow2 && verify_overlay tuesday.qcow2 tuesday.raw &&
	clusters tuesday.qcow2 18 0
}

# A disk served over NBD by nbdkit (qemu-nbd without it), by the export
# name of the URI.
case_nbd() {
	test_when_finished unserve &&
	if command -v nbdkit >/dev/null 2>&1; then
		serve nbdkit -r -i 127.0.0.1 -p @PORT@ -P "$PWD/nbd.pid" file disk.raw
	else
		serve qemu-nbd -r -t -x disk -f raw -b 127.0.0.1 -p @PORT@ \
			--pid-file="$PWD/nbd.pid" --fork disk.raw
	fi &&
	fixtures_done &&
	run_block $ID &&
	made disk.map && grep -q " data$" disk.map &&
	made disk.qcow2 && verify disk.qcow2 disk.raw
}

# A volume of another host uploaded as it streams, its size sent first.
case_upload() {
	run_block $ID &&
	made "$STORE/vm1.qcow2" &&
	test_eq "$(file_size "$STORE/vm1.qcow2")" \
		"$("$SQCOW2" -s 20G -r vm1.ranges -c 4k --print-size)" &&
	stream "$STORE/vm1.qcow2" vm1.lv -s 20G -r vm1.ranges -c 4k
}

# vm1.qcow2 decoded: to a device, a file, a checksum, its size, its
# ranges, each checked against vm1.lv, the disk it was made from.
case_decode() {
	run_block $ID &&
	if says /dev/vdb; then made vdb && cmp vdb vm1.lv; fi &&
	if says "-o vm1.raw"; then made vm1.raw && cmp vm1.raw vm1.lv; fi &&
	if says "> vm1.ranges"; then
		made vm1.ranges &&
		"$SQCOW2" -r vm1.ranges vm1.lv >"$RUNS/$ID.remade" &&
		verify "$RUNS/$ID.remade" vm1.lv &&
		test_eq "$(awk '/^[0-9]/ { n += $2 } END { print n }' vm1.ranges)" \
			$(($(info vm1.qcow2 data_clusters) * 65536))
	fi &&
	block | while IFS= read -r line; do
		case $line in
		*sha256sum*) sha256sum <vm1.lv ;;
		*--print-size*) file_size vm1.lv ;;
		esac
	done >"$RUNS/$ID.want" &&
	test_cmp "$RUNS/$ID.want" "$RUNS/$ID.out"
}

# qemu-img's judgement of an image of disk.raw.
case_check() {
	"$SQCOW2" disk.raw >disk.qcow2 && fixtures_done &&
	run_block $ID &&
	grep -q "^No errors were found" "$RUNS/$ID.out" &&
	grep -q "^Images are identical" "$RUNS/$ID.out"
}

# What a block needs beyond sqcow2, ssh's stand-in and python3: the
# commands it names, what serves nbd://host, and the tools of the case.
needs() {
	for tool in qemu-img nbdinfo nbdcopy curl make cc; do
		grep -qw -- "$tool" "$BLOCKS/$1" && echo $tool
	done
	case $2 in
	bitmap) echo qemu-img qemu-io qemu-nbd ;;
	nbd) command -v nbdkit >/dev/null 2>&1 || echo qemu-nbd ;;
	demo) echo make cc ;;
	esac
}

start_httpd "$STORE" || exit 1

for ID in $(cat "$BLOCKS/list"); do
	[ -s "$BLOCKS/$ID.class" ] && [ "$(wc -l <"$BLOCKS/$ID.class")" = 1 ] || continue
	read -r action name <"$BLOCKS/$ID.class"
	[ "$action" = run ] || continue
	where="${ID%-*} line ${ID##*-}"
	missing=
	for tool in $(needs $ID $name | sort -u); do
		command -v $tool >/dev/null 2>&1 || missing="$missing $tool"
	done
	title="$where ($name) runs as printed"
	if [ -n "$missing" ]; then
		test_skip_missing "$title" "missing:$missing"
	elif [ "$name" = demo ] && [ "${VARIANT:-plain}" != plain ]; then
		test_skip "$title" "make demo builds and runs its own sqcow2, not this one: the plain run runs it"
	elif grep -q 20G "$BLOCKS/$ID" && [ "${VARIANT:-plain}" != plain ]; then
		test_skip "$title" "20 GiB of zeros through a pipe, some 15 s: the plain run runs it"
	else
		test_expect_success "$title" '
			mkdir "$CASES/$ID" && cd "$CASES/$ID" &&
			fixtures "$BLOCKS/$ID" && fixtures_done &&
			case_$name && all_checked
		'
		rm -rf "$CASES/$ID"
	fi
done

test_done
