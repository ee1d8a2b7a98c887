/*
 * t/chainlint.c: the &&-chains of the suite's test bodies, checked before
 * a test runs, as git's t/chainlint does for its own suite.
 *
 *	chainlint SCRIPT...
 *
 * A test body (the second argument of test_expect_success, a single-quoted
 * string) passes only if its status is that of every step: each list of
 * commands in it, at its top and inside every if, loop, case arm, { } and
 * ( ), is one chain joined by && or || (a step after "&" is a background
 * job, and joins too).  Two more rules catch what a chain cannot show:
 * a loop's body must end "|| exit N" or "|| return N" (else a failed
 * iteration before the last is lost), and the { } or ( ) that follows a
 * "||" is a failure handler, whose steps may be separated by ";".
 *
 * Prints TAP, one line per script, with a comment for each broken chain
 * naming its line in the script; exits 1 if any was found.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS	65536
#define MAX_HEREDOCS	16
#define WORD_MAX	256

enum token_kind {
	T_WORD, T_NEWLINE, T_SEMI, T_AMP, T_AND, T_OR, T_PIPE, T_DSEMI,
	T_LPAREN, T_RPAREN, T_END
};

struct token {
	enum token_kind kind;
	int line;			/* in the script */
	char text[WORD_MAX];		/* a word, cut to WORD_MAX - 1 bytes */
};

/* One body being read: its tokens, where they stand, what was found. */
struct body {
	struct token *tokens;
	size_t ntokens, at;
	const char *script;
	int errors;
};

static void
complain(struct body *b, int line, const char *fmt, ...)
{
	va_list ap;

	printf("# %s:%d: ", b->script, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	b->errors++;
}

/* Reading the body's text into tokens */

struct scanner {
	const char *p;
	int line;
	char heredoc[MAX_HEREDOCS][WORD_MAX];	/* delimiters awaiting their lines */
	int strip_tabs[MAX_HEREDOCS];
	int nheredocs;
};

/* Past a quoted or nested part of a word: '...', "...", `...`, $(...), ${...}. */
static void
skip_nested(struct scanner *s, char close)
{
	int depth = 1;

	while (*s->p != '\0' && depth > 0) {
		char c = *s->p++;

		if (c == '\n')
			s->line++;
		if (c == '\\' && *s->p != '\0' && close != '\'') {
			if (*s->p++ == '\n')
				s->line++;
		} else if (c == close && (close != ')' || --depth == 0)) {
			depth = 0;
		} else if (close == ')' && c == '(') {
			depth++;
		} else if (close != '\'' && c == '"' && close != '"') {
			skip_nested(s, '"');
		} else if (close != '\'' && close != '"' && c == '\'') {
			skip_nested(s, '\'');
		} else if (close != '\'' && c == '$' && (*s->p == '(' || *s->p == '{')) {
			skip_nested(s, *s->p++ == '(' ? ')' : '}');
		} else if (close != '\'' && c == '`' && close != '`') {
			skip_nested(s, '`');
		}
	}
}

static int
is_operator_char(char c)
{
	return c == ';' || c == '&' || c == '|' || c == '(' || c == ')' ||
	    c == '<' || c == '>';
}

/* A word, quotes and substitutions included, copied (cut) into text. */
static void
scan_word(struct scanner *s, char *text)
{
	const char *start = s->p;
	size_t len;

	while (*s->p != '\0' && !isspace((unsigned char)*s->p) &&
	    !is_operator_char(*s->p)) {
		char c = *s->p++;

		if (c == '\\' && *s->p != '\0') {
			if (*s->p++ == '\n')
				s->line++;
		} else if (c == '\'' || c == '"' || c == '`') {
			skip_nested(s, c);
		} else if (c == '$' && (*s->p == '(' || *s->p == '{')) {
			skip_nested(s, *s->p++ == '(' ? ')' : '}');
		}
	}
	len = (size_t)(s->p - start) < WORD_MAX - 1 ? (size_t)(s->p - start) : WORD_MAX - 1;
	memcpy(text, start, len);
	text[len] = '\0';
}

/* The delimiter of a here-document, its quotes removed. */
static void
note_heredoc(struct scanner *s, const char *word, int strip_tabs)
{
	char *d;

	if (s->nheredocs == MAX_HEREDOCS)
		return;
	d = s->heredoc[s->nheredocs];
	for (; *word != '\0'; word++)
		if (*word != '\'' && *word != '"' && *word != '\\')
			*d++ = *word;
	*d = '\0';
	s->strip_tabs[s->nheredocs++] = strip_tabs;
}

/* After a newline: the lines of the pending here-documents. */
static void
skip_heredocs(struct scanner *s)
{
	for (int i = 0; i < s->nheredocs; i++) {
		for (;;) {
			const char *line = s->p, *end = strchr(line, '\n');
			size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

			if (s->strip_tabs[i])
				while (*line == '\t' && len > 0)
					line++, len--;
			s->p = end != NULL ? end + 1 : line + len;
			s->line++;
			if ((len == strlen(s->heredoc[i]) &&
			    strncmp(line, s->heredoc[i], len) == 0) || end == NULL)
				break;
		}
	}
	s->nheredocs = 0;
}

static int
add_token(struct body *b, enum token_kind kind, int line, const char *text)
{
	struct token *t;

	if (b->ntokens == MAX_TOKENS) {
		complain(b, line, "body too long to check");
		return -1;
	}
	t = &b->tokens[b->ntokens++];
	t->kind = kind;
	t->line = line;
	snprintf(t->text, sizeof(t->text), "%s", text);
	return 0;
}

/* Redirections are part of their command: only << matters, for its lines. */
static void
scan_redirection(struct scanner *s)
{
	int heredoc = s->p[0] == '<' && s->p[1] == '<';
	int strip_tabs = heredoc && s->p[2] == '-';
	char word[WORD_MAX];

	s->p += heredoc ? 2 + strip_tabs : 1;
	while (*s->p == '>' || *s->p == '<' || *s->p == '&' || *s->p == '|')
		s->p++;
	while (*s->p == ' ' || *s->p == '\t')
		s->p++;
	scan_word(s, word);
	if (heredoc)
		note_heredoc(s, word, strip_tabs);
}

static int
tokenize(struct body *b, const char *text, int first_line)
{
	struct scanner s = { .p = text, .line = first_line };
	char word[WORD_MAX];

	while (*s.p != '\0') {
		const char *p = s.p;
		int line = s.line;
		enum token_kind kind = T_WORD;

		if (*p == ' ' || *p == '\t' || (p[0] == '\\' && p[1] == '\n')) {
			s.line += *p == '\\';
			s.p += *p == '\\' ? 2 : 1;
			continue;
		}
		if (*p == '#') {
			while (*s.p != '\0' && *s.p != '\n')
				s.p++;
			continue;
		}
		if (*p == '<' || *p == '>' || (isdigit((unsigned char)*p) &&
		    (p[1] == '<' || p[1] == '>'))) {
			s.p += *p != '<' && *p != '>';
			scan_redirection(&s);
			continue;
		}
		if (*p == '\n') {
			s.p++;
			s.line++;
			skip_heredocs(&s);
			kind = T_NEWLINE;
		} else if (p[0] == '&' && p[1] == '&') {
			s.p += 2, kind = T_AND;
		} else if (p[0] == '|' && p[1] == '|') {
			s.p += 2, kind = T_OR;
		} else if (p[0] == ';' && p[1] == ';') {
			s.p += 2, kind = T_DSEMI;
		} else if (*p == ';' || *p == '&' || *p == '|' || *p == '(' || *p == ')') {
			s.p++;
			kind = *p == ';' ? T_SEMI : *p == '&' ? T_AMP : *p == '|' ? T_PIPE :
			    *p == '(' ? T_LPAREN : T_RPAREN;
		} else {
			scan_word(&s, word);
		}
		if (add_token(b, kind, line, kind == T_WORD ? word : "") == -1)
			return -1;
	}
	return add_token(b, T_END, s.line, "");
}

/* Parsing the tokens, the chains checked as they are met */

static const struct token *
peek(const struct body *b)
{
	return &b->tokens[b->at];
}

static int
is_word(const struct token *t, const char *word)
{
	return t->kind == T_WORD && strcmp(t->text, word) == 0;
}

static int
is_reserved(const struct token *t)
{
	static const char *const closers[] = {
		"then", "elif", "else", "fi", "do", "done", "esac", "}", NULL
	};

	for (int i = 0; closers[i] != NULL; i++)
		if (is_word(t, closers[i]))
			return 1;
	return 0;
}

static void
skip_newlines(struct body *b)
{
	while (peek(b)->kind == T_NEWLINE)
		b->at++;
}

static void
expect_word(struct body *b, const char *word)
{
	if (is_word(peek(b), word))
		b->at++;
	else
		complain(b, peek(b)->line, "expected '%s'", word);
}

/* How a list of commands ends, for the rule on loop bodies and handlers. */
struct list_end {
	int steps;		/* and-or chains in the list */
	int line;		/* of its last token */
	int exits;		/* its last step is exit N or return N */
	int or_exits;		/* its last chain ends "|| exit N" or "|| handler" */
};

static void parse_list(struct body *b, int handler, struct list_end *end);

/* The words of a simple command; returns whether it is exit or return. */
static int
parse_simple(struct body *b)
{
	int exits = is_word(peek(b), "exit") || is_word(peek(b), "return");
	struct list_end inner;

	while (peek(b)->kind == T_WORD)
		b->at++;
	/* A function definition: NAME () { ... } */
	if (peek(b)->kind == T_LPAREN && b->tokens[b->at + 1].kind == T_RPAREN) {
		b->at += 2;
		skip_newlines(b);
		expect_word(b, "{");
		parse_list(b, 0, &inner);
		expect_word(b, "}");
		return 0;
	}
	return exits;
}

static void
parse_loop(struct body *b, int line)
{
	struct list_end body;

	expect_word(b, "do");
	parse_list(b, 0, &body);
	expect_word(b, "done");
	if (body.steps > 0 && !body.or_exits)
		complain(b, body.line, "loop (line %d) does not end its body with "
		    "'|| exit 1' or '|| return 1': a failed pass before the last "
		    "is lost", line);
}

static void
parse_case(struct body *b)
{
	struct list_end arm;

	b->at += 2;	/* case WORD */
	skip_newlines(b);
	expect_word(b, "in");
	skip_newlines(b);
	while (peek(b)->kind != T_END && !is_word(peek(b), "esac")) {
		while (peek(b)->kind != T_RPAREN && peek(b)->kind != T_END)
			b->at++;
		b->at++;
		parse_list(b, 0, &arm);
		if (peek(b)->kind == T_DSEMI)
			b->at++;
		skip_newlines(b);
	}
	expect_word(b, "esac");
}

static void
parse_if(struct body *b)
{
	struct list_end part;

	do {
		b->at++;	/* if, elif */
		parse_list(b, 0, &part);
		expect_word(b, "then");
		parse_list(b, 0, &part);
	} while (is_word(peek(b), "elif"));
	if (is_word(peek(b), "else")) {
		b->at++;
		parse_list(b, 0, &part);
	}
	expect_word(b, "fi");
}

/*
 * A compound command, if one starts here: 1 if it did, and *exits says
 * whether it is a group whose last step exits; else 0.  handler: a group
 * here follows "||".
 */
static int
parse_compound(struct body *b, int handler, int *exits)
{
	const struct token *t = peek(b);
	int line = t->line, group = is_word(t, "{") || t->kind == T_LPAREN;
	struct list_end inner = { 0, 0, 0, 0 };

	if (is_word(t, "if")) {
		parse_if(b);
	} else if (is_word(t, "for")) {
		b->at += 2;	/* for NAME */
		while (peek(b)->kind == T_WORD && !is_word(peek(b), "do"))
			b->at++;
		if (peek(b)->kind == T_SEMI)
			b->at++;
		skip_newlines(b);
		parse_loop(b, line);
	} else if (is_word(t, "while") || is_word(t, "until")) {
		b->at++;
		parse_list(b, 0, &inner);
		parse_loop(b, line);
	} else if (is_word(t, "case")) {
		parse_case(b);
	} else if (group) {
		b->at++;
		parse_list(b, handler, &inner);
		if (t->kind == T_LPAREN && peek(b)->kind == T_RPAREN)
			b->at++;
		else
			expect_word(b, t->kind == T_LPAREN ? ")" : "}");
	} else {
		return 0;
	}
	*exits = group && inner.exits;
	return 1;
}

/* A pipeline; returns whether it is exit, return, or a group that ends so. */
static int
parse_pipeline(struct body *b, int handler)
{
	int exits = 0, commands = 0;

	if (is_word(peek(b), "!"))
		b->at++;
	for (;;) {
		if (!parse_compound(b, handler, &exits))
			exits = parse_simple(b);
		commands++;
		if (peek(b)->kind != T_PIPE)
			return commands == 1 && exits;
		b->at++;
		skip_newlines(b);
	}
}

/* An and-or chain, into *end: whether its last step exits, and after "||". */
static void
parse_and_or(struct body *b, struct list_end *end)
{
	int after_or = 0;

	for (;;) {
		end->exits = parse_pipeline(b, after_or);
		end->or_exits = after_or && end->exits;
		if (peek(b)->kind != T_AND && peek(b)->kind != T_OR)
			return;
		after_or = peek(b)->kind == T_OR;
		b->at++;
		skip_newlines(b);
	}
}

static int
ends_list(const struct token *t)
{
	return t->kind == T_END || t->kind == T_RPAREN || t->kind == T_DSEMI ||
	    is_reserved(t);
}

static const char *
token_text(const struct token *t)
{
	return t->kind == T_WORD ? t->text : t->kind == T_LPAREN ? "(" : "?";
}

/*
 * A list of and-or chains up to a token that ends it.  More than one
 * chain joined by ";" or a newline is a broken chain, but in a handler,
 * or after "&" (a background job's status is not the step's).
 */
static void
parse_list(struct body *b, int handler, struct list_end *end)
{
	int after_amp = 0;

	memset(end, 0, sizeof(*end));
	skip_newlines(b);
	while (!ends_list(peek(b))) {
		const struct token *start = peek(b);
		size_t before = b->at;

		if (end->steps > 0 && !handler && !after_amp)
			complain(b, start->line, "broken &&-chain: '%s' does not follow "
			    "'&&'", token_text(start));
		parse_and_or(b, end);
		end->steps++;
		end->line = b->tokens[b->at - 1].line;
		after_amp = peek(b)->kind == T_AMP;
		if (peek(b)->kind == T_SEMI || peek(b)->kind == T_AMP)
			b->at++;
		skip_newlines(b);
		if (b->at == before) {
			complain(b, start->line, "cannot parse '%s'", token_text(start));
			b->at++;
		}
	}
}

static int
lint_body(const char *script, const char *text, int first_line)
{
	struct body b = { .script = script };
	struct list_end end;

	if ((b.tokens = malloc(MAX_TOKENS * sizeof(*b.tokens))) == NULL) {
		perror("chainlint");
		exit(2);
	}
	if (tokenize(&b, text, first_line) == 0) {
		parse_list(&b, 0, &end);
		if (peek(&b)->kind != T_END)
			complain(&b, peek(&b)->line, "unexpected '%s'", peek(&b)->text);
	}
	free(b.tokens);
	return b.errors;
}

/* Finding the bodies in a script */

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t len = 0, cap = 65536;
	char *text = malloc(cap);

	if (f == NULL || text == NULL) {
		perror(path);
		exit(2);
	}
	for (size_t got; (got = fread(text + len, 1, cap - len - 1, f)) > 0; ) {
		len += got;
		if (len + 1 == cap && (text = realloc(text, cap *= 2)) == NULL) {
			perror(path);
			exit(2);
		}
	}
	fclose(f);
	text[len] = '\0';
	return text;
}

/*
 * One shell word of the script at *p, its quotes removed, into out (a
 * body is a few kilobytes at most); *line follows the newlines.
 */
static void
unquote_word(const char **p, int *line, char *out, size_t room)
{
	size_t n = 0;

	while (**p != '\0' && !isspace((unsigned char)**p)) {
		char quote = *(*p)++;

		if (quote == '\\' && **p != '\0') {
			quote = *(*p)++;
			if (n + 1 < room)
				out[n++] = quote;
			continue;
		}
		if (quote != '\'' && quote != '"') {
			if (n + 1 < room)
				out[n++] = quote;
			continue;
		}
		while (**p != '\0' && **p != quote) {
			if (quote == '"' && **p == '\\' && (*p)[1] != '\0')
				(*p)++;
			*line += **p == '\n';
			if (n + 1 < room)
				out[n++] = **p;
			(*p)++;
		}
		if (**p == quote)
			(*p)++;
	}
	out[n] = '\0';
}

static int
lint_script(const char *path, int number)
{
	static char body[1 << 20];
	char *text = read_file(path), title[1024];
	const char *p = text, *name = strrchr(path, '/');
	int line = 1, errors = 0, bodies = 0;

	name = name != NULL ? name + 1 : path;
	while (*p != '\0') {
		p += strspn(p, " \t");
		if (strncmp(p, "test_expect_success ", 20) == 0) {
			p += 20 + strspn(p + 20, " ");
			unquote_word(&p, &line, title, sizeof(title));
			p += strspn(p, " ");
			if (*p == '\'') {
				int body_line = line;

				unquote_word(&p, &line, body, sizeof(body));
				errors += lint_body(name, body, body_line);
				bodies++;
			}
		}
		while (*p != '\0' && *p != '\n')
			p++;
		if (*p == '\n')
			p++, line++;
	}
	free(text);
	printf("%sok %d - %s: %d bodies, chains whole\n", errors ? "not " : "",
	    number, name, bodies);
	return errors;
}

int
main(int argc, char **argv)
{
	int failed = 0;

	for (int i = 1; i < argc; i++)
		failed += lint_script(argv[i], i) != 0;
	printf("1..%d\n", argc - 1);
	return failed != 0;
}
