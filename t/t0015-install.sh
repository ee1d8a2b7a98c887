#!/bin/sh
# make install and install-strip, into a scratch DESTDIR, of the binary
# under test: copied, newer, into a copy of the tree, so that make builds
# nothing and nothing in the real tree is touched (tests run side by side).
# Once, in the plain run.
. "$(dirname "$0")/lib.sh"

top=$(cd "$T_DIR/.." && pwd)

if [ "${VARIANT:-plain}" != plain ]; then
	test_skip 'make install keeps the symbols; install-strip leaves them out' \
		'the plain run installs its binary; installing is the same for this one'
elif command -v readelf >/dev/null 2>&1; then
test_expect_success 'make install keeps the symbols; install-strip leaves them out' '
	mkdir -p tree/man && cp "$top/Makefile" "$top"/*.[ch] tree/ &&
	cp "$top/man/sqcow2.1" tree/man/ && cp "$SQCOW2" tree/sqcow2 && touch tree/sqcow2 &&
	make -s -C tree install DESTDIR="$TRASH/full" PREFIX=/usr >/dev/null &&
	cmp tree/sqcow2 full/usr/bin/sqcow2 && test -f full/usr/share/man/man1/sqcow2.1 &&
	test_eq "$(stat -c %a full/usr/bin/sqcow2 full/usr/share/man/man1/sqcow2.1 | tr "\n" " ")" "755 644 " &&
	readelf -S full/usr/bin/sqcow2 | grep -q "\.symtab" &&
	make -s -C tree install-strip DESTDIR="$TRASH/strip" PREFIX=/usr >/dev/null &&
	! readelf -S strip/usr/bin/sqcow2 | grep -q "\.symtab\|\.debug" &&
	test "$(file_size strip/usr/bin/sqcow2)" -lt "$(file_size full/usr/bin/sqcow2)" &&
	strip/usr/bin/sqcow2 --version | grep -q "^sqcow2 " &&
	make -s -C tree uninstall DESTDIR="$TRASH/strip" PREFIX=/usr >/dev/null &&
	test ! -e strip/usr/bin/sqcow2 && test ! -e strip/usr/share/man/man1/sqcow2.1 &&
	cmp tree/sqcow2 "$SQCOW2"
'
else
	test_skip_missing 'make install keeps the symbols; install-strip leaves them out' 'readelf not found'
fi

test_done
