#!/bin/sh
# t/valgrind.sh: t/bin/sqcow2 under memcheck, for make check-valgrind.
# Whatever memcheck finds goes to VALGRIND_LOGS and makes the exit status
# 99, which no test expects.
exec valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect \
	--log-file="${VALGRIND_LOGS:?}/vg.%p" \
	"$(dirname "$(readlink -f "$0")")/bin/sqcow2" "$@"
