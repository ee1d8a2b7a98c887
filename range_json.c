/*
 * range_json.c: range files in JSON (see range_json.h), read a character
 * at a time so that a listing of millions of entries costs no more memory
 * than its ranges.  Three formats are taken, each an array of flat
 * objects, all of one format:
 *   qemu-img map --output=json: {"start": N, "length": N, "data": BOOL, ...}
 *   nbdinfo --map --json:       {"offset": N, "length": N, "type": N,
 *                                "description": "..."}
 *   a plain layout:             {"offset": N, "length": N}
 * In the first, "offset" is where the data lies in the mapped file, not on
 * the disk, so "start" wins when both are there.  Keys not named here are
 * skipped with their values; nested values are refused.
 */
#include <ctype.h>
#include <string.h>

#include "range_json.h"

enum json_format { JSON_UNKNOWN, JSON_QEMU_IMG, JSON_NBDINFO, JSON_LAYOUT };

struct json {
	FILE *in;
	struct range_reader *rd;
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
	j->error->line += range_ends_line(j->last, j->c);
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
nbdinfo_entry(struct range_reader *rd, const struct json_entry *je,
    struct range_extent *e)
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
json_extent(struct json *j, const struct json_entry *je, struct range_extent *e)
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
		if (j->rd->overlay)
			return ALLOCATION_OVER_BACKING;
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

int
range_json_read(FILE *in, struct range_reader *rd)
{
	struct ranges_error *error = rd->error;
	struct json j = { in, rd, error, getc(in), '\0', JSON_UNKNOWN };
	struct json_entry je;
	struct range_extent e;

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
		    (error->why = range_keep(rd, &e)) != NULL)
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
	if (j.c != EOF)
		return json_fail(&j, "junk after JSON");
	/*
	 * The line end of the last line starts no line after it: a map that
	 * stops short is then said to stop on its last line, as in a file
	 * of lines.
	 */
	if (j.last == '\n' || j.last == '\r')
		error->line--;
	return 0;
}
