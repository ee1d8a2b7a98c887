#!/bin/sh
# The &&-chains of every test body are whole (t/chainlint.c), so that no
# step's failure is lost: a planted broken chain of each kind is found on
# its line, and chains that are whole pass.
. "$(dirname "$0")/lib.sh"

chainlint=$(dirname "$SQCOW2")/chainlint

test_expect_success 'every test script has its chains whole' '
	"$chainlint" "$T_DIR"/t[0-9]*.sh >lint.tap ||
		{ grep -v "^ok" lint.tap; exit 1; }
'

test_expect_success 'each planted broken chain is found, on its line' '
	test_expect_code 1 "$chainlint" "$T_DIR/chainlint/bad.sh" >bad.tap &&
	sed -n "s/^# bad.sh:\([0-9]*\): .*/\1/p" bad.tap >got &&
	grep -n "# <-" "$T_DIR/chainlint/bad.sh" | cut -d: -f1 >want &&
	test_cmp want got &&
	grep -q "^# bad.sh:[0-9]*: loop (line [0-9]*) does not end its body with" bad.tap
'

test_expect_success 'whole chains of every shape pass' '
	"$chainlint" "$T_DIR/chainlint/good.sh" >good.tap &&
	grep -q "^ok 1 - good.sh: 3 bodies" good.tap
'

test_done
