/*
 * ranges.c: read the list of data ranges.
 */
#define _POSIX_C_SOURCE 200809L	/* getline */

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ranges.h"

int
parse_number(const char *s, char **end, uint64_t *value)
{
	unsigned long long v;

	/* strtoull would skip spaces and take a sign: refuse both. */
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	/* Base 16 only after 0x: base 0 would read a zero-padded 010 as octal. */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!isxdigit((unsigned char)s[2]))
			return -1;
		v = strtoull(s + 2, end, 16);
	} else {
		v = strtoull(s, end, 10);
	}
	if (errno == ERANGE)
		return -1;
	*value = v;
	return 0;
}

int
ranges_add(struct range_list *list, uint64_t offset, uint64_t length)
{
	if (list->n == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 64;
		struct range *v;

		if (cap > SIZE_MAX / sizeof(*v) ||
		    (v = realloc(list->v, cap * sizeof(*v))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		list->v = v;
		list->cap = cap;
	}
	list->v[list->n].offset = offset;
	list->v[list->n].length = length;
	list->n++;
	return 0;
}

void
ranges_free(struct range_list *list)
{
	free(list->v);
	list->v = NULL;
	list->n = list->cap = 0;
}

static const char *
skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Blank lines and lines that are a comment carry no range. */
static int
is_blank(const char *s)
{
	s = skip_space(s);
	return *s == '\0' || *s == '#';
}

/*
 * The maps of nbdinfo --map: base:allocation, qemu:dirty-bitmap:NAME and
 * qemu:allocation-depth.
 */
enum nbd_map { MAP_UNKNOWN, MAP_ALLOCATION, MAP_DIRTY, MAP_DEPTH };

/* What reading a range file needs, and where it puts what it finds. */
struct reader {
	uint64_t size;			/* of the disk */
	int overlay;			/* the image is an overlay (-b) */
	enum nbd_map map;		/* of the first nbdinfo extent */
	struct range_list *list;
	struct ranges_error *error;
};

/* An entry of a range file. */
struct extent {
	struct range r;
	int data;
	int sectors;	/* from a map of QEMU's, which runs to whole sectors */
};

/*
 * The end of the disk an extent may reach: its size, or for a map of
 * QEMU's, which rounds a disk up to whole 512-byte sectors, the size so
 * rounded (past 64 bits, as far as they go).
 */
static uint64_t
extent_limit(uint64_t size, int sectors)
{
	if (!sectors || size % 512 == 0)
		return size;
	if (size - size % 512 > UINT64_MAX - 512)
		return UINT64_MAX;
	return size - size % 512 + 512;
}

/*
 * Check that an extent lies inside the disk, cut it at its size, and
 * append it if it is data and a byte of it is left.  Returns why not, or
 * NULL.
 */
static const char *
keep(struct reader *rd, struct extent *e)
{
	uint64_t limit = extent_limit(rd->size, e->sectors);
	struct range *r = &e->r;

	if (r->length == 0)
		return "zero length";
	if (r->offset >= limit)
		return "offset beyond --size";
	if (r->length > limit - r->offset)
		return "range ends beyond --size";
	if (r->offset >= rd->size)
		return NULL;
	if (r->length > rd->size - r->offset)
		r->length = rd->size - r->offset;
	if (e->data && ranges_add(rd->list, r->offset, r->length) == -1)
		return "out of memory";
	return NULL;
}

/* Whether c ends a line: LF, CR, and CRLF once (last is the one before c). */
static int
ends_line(int last, int c)
{
	return c == '\r' || (c == '\n' && last != '\r');
}

/* One line of a file, without its end. */
struct line {
	char *text;
	size_t len;
	size_t cap;
};

/*
 * Read the next line into l.  A line ends at LF, CRLF or a lone CR (the
 * line end of old Mac files), or at the end of the file.  Returns 1, 0 at
 * the end of the file, or -1 if the line cannot grow.
 */
static int
read_line(FILE *in, struct line *l)
{
	int c;

	l->len = 0;
	while ((c = getc(in)) != EOF && c != '\n' && c != '\r') {
		if (l->len + 1 >= l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 128;
			char *text;

			if (cap < l->cap || (text = realloc(l->text, cap)) == NULL)
				return -1;
			l->text = text;
			l->cap = cap;
		}
		l->text[l->len++] = (char)c;
	}
	if (c == EOF && l->len == 0)
		return 0;
	if (c == '\r' && (c = getc(in)) != '\n' && c != EOF)
		ungetc(c, in);
	if (l->cap == 0 && (l->text = malloc(l->cap = 128)) == NULL)
		return -1;
	l->text[l->len] = '\0';
	return 1;
}

/* The line formats: ours, and the columns of `nbdinfo --map`. */
enum line_format { FORMAT_UNKNOWN, FORMAT_PLAIN, FORMAT_NBDINFO };

/*
 * The format that what follows OFFSET LENGTH belongs to: nothing or a
 * comment is plain; a type, blanks and a word that begins with a letter
 * are nbdinfo; anything else is neither, FORMAT_UNKNOWN.
 */
static enum line_format
rest_format(const char *rest)
{
	uint64_t type;
	char *end;

	if (is_blank(rest))
		return FORMAT_PLAIN;
	if (parse_number(rest, &end, &type) == 0 && end != skip_space(end) &&
	    isalpha((unsigned char)*skip_space(end)))
		return FORMAT_NBDINFO;
	return FORMAT_UNKNOWN;
}

/* What an nbdinfo extent holds: nothing, data, or data of a backing layer. */
enum holds { HOLDS_NOTHING, HOLDS_DATA, HOLDS_BACKING };

struct description {
	const char *text;
	enum nbd_map map;
	uint64_t type;
	enum holds holds;
};

/*
 * The descriptions nbdinfo prints for each type of each map (libnbd's
 * info/map.c), and "backing depth N" for N > 1.  For an overlay, what a
 * backing layer holds is no change: only "local" is.
 */
static const struct description descriptions[] = {
	{ "data", MAP_ALLOCATION, 0, HOLDS_DATA },
	{ "hole", MAP_ALLOCATION, 1, HOLDS_NOTHING },
	{ "zero", MAP_ALLOCATION, 2, HOLDS_NOTHING },
	{ "hole,zero", MAP_ALLOCATION, 3, HOLDS_NOTHING },
	{ "clean", MAP_DIRTY, 0, HOLDS_NOTHING },
	{ "dirty", MAP_DIRTY, 1, HOLDS_DATA },
	{ "absent", MAP_DEPTH, 0, HOLDS_NOTHING },
	{ "local", MAP_DEPTH, 1, HOLDS_DATA },
};

#define BACKING_DEPTH	"backing depth "

/* The description of len bytes at text; returns 0, or -1 if unknown. */
static int
find_description(const char *text, size_t len, struct description *d)
{
	size_t n = sizeof(descriptions) / sizeof(descriptions[0]);
	size_t prefix = strlen(BACKING_DEPTH);
	char *end;

	for (size_t i = 0; i < n; i++) {
		if (strlen(descriptions[i].text) == len &&
		    memcmp(descriptions[i].text, text, len) == 0) {
			*d = descriptions[i];
			return 0;
		}
	}
	if (len <= prefix || memcmp(text, BACKING_DEPTH, prefix) != 0 ||
	    text[prefix] == '0' ||
	    parse_number(text + prefix, &end, &d->type) == -1 ||
	    end != text + len || d->type < 2)
		return -1;
	d->text = BACKING_DEPTH;
	d->map = MAP_DEPTH;
	d->holds = HOLDS_BACKING;
	return 0;
}

/*
 * Whether an nbdinfo extent of this type and description is data.  The
 * description must be one nbdinfo prints, agree with the type, and be of
 * the map of the first extent.  Fills e; returns why not, or NULL.
 */
static const char *
nbdinfo_extent(struct reader *rd, uint64_t type, const char *text, size_t len,
    struct extent *e)
{
	struct description d;

	if (find_description(text, len, &d) == -1)
		return "unknown nbdinfo description";
	if (d.type != type)
		return "type does not match description";
	if (rd->map != MAP_UNKNOWN && rd->map != d.map)
		return "description from another map";
	rd->map = d.map;
	e->data = d.holds == HOLDS_DATA ||
	    (d.holds == HOLDS_BACKING && !rd->overlay);
	e->sectors = 1;
	return NULL;
}

/* The TYPE DESCRIPTION of an nbdinfo line. */
static const char *
parse_nbdinfo(struct reader *rd, const char *s, struct extent *e)
{
	uint64_t type;
	char *end;
	size_t len;

	if (parse_number(s, &end, &type) == -1)
		return "bad nbdinfo type";
	if (end == skip_space(end) || is_blank(end))
		return "expected nbdinfo description";
	s = skip_space(end);
	for (len = strlen(s); s[len - 1] == ' ' || s[len - 1] == '\t'; len--)
		;
	return nbdinfo_extent(rd, type, s, len, e);
}

/*
 * "OFFSET LENGTH [# comment]", or "OFFSET LENGTH TYPE DESCRIPTION" as
 * nbdinfo --map prints it.  The first line that is one of the two sets
 * the format of the file, and every line after must be of it: a guess
 * from two numbers more or less would drop ranges without a word.  Fills
 * e; returns the reason the line is bad, or NULL.
 */
static const char *
parse_line(struct reader *rd, const char *line, enum line_format *format,
    struct extent *e)
{
	const char *s = skip_space(line);
	enum line_format rest;
	char *end;

	if (parse_number(s, &end, &e->r.offset) == -1)
		return "bad offset";
	s = skip_space(end);
	if (is_blank(s))
		return "expected OFFSET LENGTH";
	if (s == end)
		return "bad offset";
	if (parse_number(s, &end, &e->r.length) == -1)
		return "bad length";
	s = skip_space(end);
	rest = rest_format(s);
	if (*format == FORMAT_UNKNOWN)
		*format = rest == FORMAT_NBDINFO ? FORMAT_NBDINFO : FORMAT_PLAIN;
	if (*format == FORMAT_NBDINFO)
		return rest == FORMAT_PLAIN ? "plain line in an nbdinfo map" :
		    parse_nbdinfo(rd, s, e);
	if (rest == FORMAT_NBDINFO)
		return "nbdinfo line in a plain range file";
	if (rest != FORMAT_PLAIN)
		return "junk after length";
	e->data = 1;
	e->sectors = 0;
	return NULL;
}

/* A range file of lines, plain or from nbdinfo. */
static int
read_lines(FILE *in, struct reader *rd)
{
	enum line_format format = FORMAT_UNKNOWN;
	struct ranges_error *error = rd->error;
	struct line l = { NULL, 0, 0 };
	int got;

	while ((got = read_line(in, &l)) == 1) {
		struct extent e;

		error->line++;
		if (strlen(l.text) != l.len)
			error->why = "NUL byte in line";
		else if (is_blank(l.text))
			continue;
		else if ((error->why = parse_line(rd, l.text, &format, &e)) == NULL)
			error->why = keep(rd, &e);
		if (error->why != NULL)
			break;
	}
	if (got == -1)
		error->why = "out of memory";
	free(l.text);
	return error->why != NULL ? -1 : 0;
}

/*
 * JSON, read a character at a time so that a listing of millions of
 * entries costs no more memory than its ranges.  Three formats are taken,
 * each an array of flat objects, all of one format:
 *   qemu-img map --output=json: {"start": N, "length": N, "data": BOOL, ...}
 *   nbdinfo --map --json:       {"offset": N, "length": N, "type": N,
 *                                "description": "..."}
 *   a plain layout:             {"offset": N, "length": N}
 * In the first, "offset" is where the data lies in the mapped file, not on
 * the disk, so "start" wins when both are there.
 */
enum json_format { JSON_UNKNOWN, JSON_QEMU_IMG, JSON_NBDINFO, JSON_LAYOUT };

struct json {
	FILE *in;
	struct reader *rd;
	struct ranges_error *error;
	int c;			/* the next character, or EOF */
	int last;		/* the one before, to count CRLF as one line end */
	enum json_format format;	/* of the first entry */
};

#define JSON_TOKEN	64	/* longer keys and numbers mean nothing to us */

struct json_entry {
	uint64_t start, offset, length, type;
	int has_start, has_offset, has_length, has_data, has_type, has_description;
	int data;
	char description[JSON_TOKEN];
};

static void
json_advance(struct json *j)
{
	j->error->line += ends_line(j->last, j->c);
	j->last = j->c;
	j->c = getc(j->in);
}

static void
json_skip_space(struct json *j)
{
	while (j->c == ' ' || j->c == '\t' || j->c == '\r' || j->c == '\n')
		json_advance(j);
}

/* Fail with why, unless an error was already set. */
static int
json_fail(struct json *j, const char *why)
{
	if (j->error->why == NULL)
		j->error->why = why;
	return -1;
}

static int
json_expect(struct json *j, int c)
{
	json_skip_space(j);
	if (j->c != c)
		return json_fail(j, c == ':' ? "expected ':'" : c == '{' ?
		    "expected '{'" : "bad JSON");
	json_advance(j);
	return 0;
}

/*
 * A string, kept in buf; escapes pass as is.  One too long for buf is
 * kept as "": no key or description we know is that long.
 */
static int
json_string(struct json *j, char *buf, size_t cap)
{
	size_t n = 0;

	if (json_expect(j, '"') == -1)
		return -1;
	while (j->c != '"') {
		if (j->c == EOF || j->c == '\n' || j->c == '\r')
			return json_fail(j, "unterminated string");
		if (j->c == '\\')
			json_advance(j);
		if (n < cap)
			buf[n++] = (char)j->c;
		json_advance(j);
	}
	json_advance(j);
	buf[n < cap ? n : 0] = '\0';
	return 0;
}

/* A bare word: a number, true, false or null. */
static int
json_word(struct json *j, char *buf, size_t cap)
{
	size_t n = 0;

	json_skip_space(j);
	while (j->c != EOF && (isalnum(j->c) || j->c == '-' || j->c == '+' ||
	    j->c == '.')) {
		if (n + 1 == cap)
			return json_fail(j, "JSON value too long");
		buf[n++] = (char)j->c;
		json_advance(j);
	}
	buf[n] = '\0';
	return n == 0 ? json_fail(j, "bad JSON value") : 0;
}

static int
json_number(struct json *j, uint64_t *value)
{
	char word[JSON_TOKEN];
	char *end;

	if (json_word(j, word, sizeof(word)) == -1)
		return -1;
	if (parse_number(word, &end, value) == -1 || *end != '\0')
		return json_fail(j, "expected a non-negative integer");
	return 0;
}

static int
json_bool(struct json *j, int *value)
{
	char word[JSON_TOKEN];

	if (json_word(j, word, sizeof(word)) == -1)
		return -1;
	if (strcmp(word, "true") != 0 && strcmp(word, "false") != 0)
		return json_fail(j, "expected true or false");
	*value = word[0] == 't';
	return 0;
}

/* A value whose key means nothing to us: a string or a bare word. */
static int
json_skip_value(struct json *j)
{
	char word[JSON_TOKEN];

	json_skip_space(j);
	if (j->c == '"')
		return json_string(j, word, sizeof(word));
	if (j->c == '{' || j->c == '[')
		return json_fail(j, "unexpected nested JSON");
	return json_word(j, word, sizeof(word));
}

static int
json_member(struct json *j, struct json_entry *e)
{
	char key[JSON_TOKEN];

	if (json_string(j, key, sizeof(key)) == -1 || json_expect(j, ':') == -1)
		return -1;
	if (strcmp(key, "start") == 0) {
		e->has_start = 1;
		return json_number(j, &e->start);
	}
	if (strcmp(key, "offset") == 0) {
		e->has_offset = 1;
		return json_number(j, &e->offset);
	}
	if (strcmp(key, "length") == 0) {
		e->has_length = 1;
		return json_number(j, &e->length);
	}
	if (strcmp(key, "data") == 0) {
		e->has_data = 1;
		return json_bool(j, &e->data);
	}
	if (strcmp(key, "type") == 0) {
		e->has_type = 1;
		return json_number(j, &e->type);
	}
	if (strcmp(key, "description") == 0) {
		e->has_description = 1;
		json_skip_space(j);
		if (j->c != '"')
			return json_fail(j, "expected a string");
		return json_string(j, e->description, sizeof(e->description));
	}
	return json_skip_value(j);
}

static int
json_object(struct json *j, struct json_entry *e)
{
	memset(e, 0, sizeof(*e));
	if (json_expect(j, '{') == -1)
		return -1;
	json_skip_space(j);
	if (j->c != '}') {
		for (;;) {
			if (json_member(j, e) == -1)
				return -1;
			json_skip_space(j);
			if (j->c == '}')
				break;
			if (j->c != ',')
				return json_fail(j, "expected ',' or '}'");
			json_advance(j);
		}
	}
	json_advance(j);
	return 0;
}

/* The format of an entry, by its keys; JSON_UNKNOWN for keys of two. */
static enum json_format
entry_format(const struct json_entry *je)
{
	int nbdinfo = je->has_type || je->has_description;

	if (je->has_start)
		return nbdinfo ? JSON_UNKNOWN : JSON_QEMU_IMG;
	if (nbdinfo)
		return je->has_data ? JSON_UNKNOWN : JSON_NBDINFO;
	return JSON_LAYOUT;
}

/* The extent an nbdinfo entry gives; returns why it is bad, or NULL. */
static const char *
nbdinfo_entry(struct reader *rd, const struct json_entry *je, struct extent *e)
{
	if (!je->has_offset)
		return "entry without \"offset\"";
	if (!je->has_type)
		return "entry without \"type\"";
	if (!je->has_description)
		return "entry without \"description\"";
	e->r.offset = je->offset;
	return nbdinfo_extent(rd, je->type, je->description,
	    strlen(je->description), e);
}

/*
 * The extent an entry gives, which must be of the format of the first;
 * returns why it is bad, or NULL.
 */
static const char *
json_extent(struct json *j, const struct json_entry *je, struct extent *e)
{
	enum json_format format = entry_format(je);

	if (format == JSON_UNKNOWN)
		return "entry with keys of two formats";
	if (j->format != JSON_UNKNOWN && format != j->format)
		return "entry of another format than the first";
	j->format = format;
	if (!je->has_length)
		return "entry without \"length\"";
	e->r.length = je->length;
	if (format == JSON_NBDINFO)
		return nbdinfo_entry(j->rd, je, e);
	if (format == JSON_QEMU_IMG) {
		if (!je->has_data)
			return "entry without \"data\"";
		e->r.offset = je->start;
		e->data = je->data;
		e->sectors = 1;
		return NULL;
	}
	if (!je->has_offset)
		return "entry without \"start\" or \"offset\"";
	e->r.offset = je->offset;
	e->data = !je->has_data || je->data;
	e->sectors = 0;
	return NULL;
}

static int
read_json(FILE *in, struct reader *rd)
{
	struct ranges_error *error = rd->error;
	struct json j = { in, rd, error, getc(in), '\0', JSON_UNKNOWN };
	struct json_entry je;
	struct extent e;

	error->line = 1;
	if (json_expect(&j, '[') == -1)
		return -1;
	json_skip_space(&j);
	if (j.c == ']')
		json_advance(&j);
	else for (;;) {
		if (json_object(&j, &je) == -1)
			return -1;
		if ((error->why = json_extent(&j, &je, &e)) != NULL ||
		    (error->why = keep(rd, &e)) != NULL)
			return -1;
		json_skip_space(&j);
		if (j.c == ']') {
			json_advance(&j);
			break;
		}
		if (j.c != ',')
			return json_fail(&j, "expected ',' or ']'");
		json_advance(&j);
	}
	json_skip_space(&j);
	return j.c == EOF ? 0 : json_fail(&j, "junk after JSON");
}

/* Which format a file is in shows in its first character that is not space. */
static int
starts_with_bracket(FILE *in, unsigned long *newlines)
{
	int c, last = '\0';

	while ((c = getc(in)) == ' ' || c == '\t' || c == '\r' || c == '\n') {
		*newlines += ends_line(last, c);
		last = c;
	}
	if (c != EOF)
		ungetc(c, in);
	return c == '[';
}

int
ranges_read(FILE *in, uint64_t size, int overlay, struct range_list *list,
    struct ranges_error *error)
{
	struct reader rd = { size, overlay, MAP_UNKNOWN, list, error };
	unsigned long skipped_lines = 0;
	int status;

	error->line = 0;
	error->why = NULL;
	if (starts_with_bracket(in, &skipped_lines)) {
		status = read_json(in, &rd);
		error->line += skipped_lines;
	} else {
		error->line = skipped_lines;
		status = read_lines(in, &rd);
	}
	/* A read error cut the file short: what it made of the rest is moot. */
	if (ferror(in)) {
		error->line = 0;
		error->why = "read error";
		status = -1;
	}
	return status;
}

/* Move v[root] down the max-heap of the first n ranges, by offset. */
static void
sift_down(struct range *v, size_t root, size_t n)
{
	struct range top = v[root];
	size_t child;

	while ((child = 2 * root + 1) < n) {
		if (child + 1 < n && v[child + 1].offset > v[child].offset)
			child++;
		if (v[child].offset <= top.offset)
			break;
		v[root] = v[child];
		root = child;
	}
	v[root] = top;
}

/*
 * Heapsort: in place and O(n log n) at worst.  glibc's qsort allocates a
 * copy of the whole array for a merge sort, which for a million ranges
 * was half as much memory again.
 */
static void
sort_by_offset(struct range *v, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(v, i, n);
	while (n-- > 1) {
		struct range first = v[0];

		v[0] = v[n];
		v[n] = first;
		sift_down(v, 0, n);
	}
}

void
ranges_merge(struct range_list *list)
{
	size_t kept = 0;

	if (list->n == 0)
		return;
	sort_by_offset(list->v, list->n);
	for (size_t i = 1; i < list->n; i++) {
		struct range *last = &list->v[kept];
		const struct range *r = &list->v[i];
		uint64_t last_end = last->offset + last->length;

		if (r->offset <= last_end) {
			if (r->offset + r->length > last_end)
				last->length = r->offset + r->length - last->offset;
		} else {
			list->v[++kept] = *r;
		}
	}
	list->n = kept + 1;
}
