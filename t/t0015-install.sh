#!/bin/sh
# make install and install-strip, into a scratch DESTDIR.
. "$(dirname "$0")/lib.sh"

top=$(cd "$T_DIR/.." && pwd)

if command -v readelf >/dev/null 2>&1; then
test_expect_success 'make install keeps the symbols; install-strip leaves them out' '
	make -s -C "$top" install DESTDIR="$TRASH/full" PREFIX=/usr >/dev/null &&
	test -x full/usr/bin/sqcow2 && test -f full/usr/share/man/man1/sqcow2.1 &&
	test_eq "$(stat -c %a full/usr/bin/sqcow2 full/usr/share/man/man1/sqcow2.1 | tr "\n" " ")" "755 644 " &&
	readelf -S full/usr/bin/sqcow2 | grep -q "\.symtab" &&
	make -s -C "$top" install-strip DESTDIR="$TRASH/strip" PREFIX=/usr >/dev/null &&
	! readelf -S strip/usr/bin/sqcow2 | grep -q "\.symtab\|\.debug" &&
	test "$(file_size strip/usr/bin/sqcow2)" -lt "$(file_size full/usr/bin/sqcow2)" &&
	strip/usr/bin/sqcow2 --version | grep -q "^sqcow2 " &&
	make -s -C "$top" uninstall DESTDIR="$TRASH/strip" PREFIX=/usr >/dev/null &&
	test ! -e strip/usr/bin/sqcow2 && test ! -e strip/usr/share/man/man1/sqcow2.1
'
else
	test_skip 'make install keeps the symbols; install-strip leaves them out' 'readelf not found'
fi

test_done
