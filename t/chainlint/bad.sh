# Planted broken chains: t0000 checks that t/chainlint finds each, on
# the line marked "<-", and nothing else.  Never run.

test_expect_success 'a semicolon mid-chain' '
	false; true	# <- broken
'

test_expect_success 'a newline mid-chain' '
	make x &&
	cmp x y
	test_eq 1 1	# <- broken
'

test_expect_success 'a status taken by ; test $? =' '
	cmd 2>err; test $? = 1 && grep -q x err	# <- broken
'

test_expect_success 'a loop a chain runs into, ended without &&' '
	for at in 1 2; do
		cmp -i $at a b || exit 1
	done
	cmp a c		# <- broken
'

test_expect_success 'a loop whose body does not fail the loop' '
	for f in a b; do
		cmp $f c	# <- loop
	done
'

test_expect_success 'inside a loop, inside an if, inside a group' '
	while read x; do
		if test -n "$x"; then
			echo a
			echo b	# <- broken
		fi || exit 1
	done <f &&
	{ echo c; echo d; } &&	# <- broken
	( cd sub; make )	# <- broken
'

test_expect_success 'a case arm' '
	case $x in
	a) echo one
	   echo two ;;	# <- broken
	esac
'

test_expect_success 'a step after a here-document' '
	cat >want <<-EOF &&
	line; with a semicolon
	EOF
	cat want
	test_cmp want got	# <- broken
'
