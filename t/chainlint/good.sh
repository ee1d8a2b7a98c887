# Chains that are whole: t0000 checks that t/chainlint finds nothing here.
# Never run.

test_expect_success 'pipes, lines continued, and substitutions' '
	a=$(echo "x; y" | tr ";" ,) &&
	b=`echo z; echo w` &&
	cat f |
		sort \
		-u >g &&
	test "$(cat g; echo)" = "$a" &&
	echo "${a#x;}" $((1 + 2))
'

test_expect_success 'handlers after ||, a background job, loops that fail' '
	make || { echo "make failed"; exit 1; } &&
	sleep 1 &
	pid=$! &&
	for i in 1 2; do
		test $i -gt 0 || { echo "$i"; exit 1; }
	done &&
	while read x; do
		echo "$x" || return 1
	done <f &&
	if test -e a; then
		echo a
	elif test -e b; then
		echo b
	else
		echo c
	fi &&
	case $x in a|b) echo ab ;; *) echo other ;; esac &&
	f() { echo in f && return 0; } &&
	f && ! false
'

test_expect_success 'a here-document whose lines look like broken chains' '
	cat >want <<-\EOF &&
	one; two
	three
	EOF
	cat <<EOF >other &&
four ; five
EOF
	test_cmp want other
'
