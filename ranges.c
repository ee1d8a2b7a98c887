/*
 * ranges.c: ranges_read (see ranges.h): a range file's format told by its
 * first character that is not space, JSON handed to range_json.c, and the
 * line formats read here: "OFFSET LENGTH" lines, and the lines of
 * nbdinfo --map.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "range_entry.h"
#include "range_json.h"
#include "ranges.h"

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

/* One line of a file, without its end. */
struct line {
	char *text;
	size_t len;
	size_t cap;
};

/*
 * No line of a range file needs more: two 20-digit numbers, a type and a
 * description, or a comment a person wrote.  A longer one is no range
 * file's, and is not held in memory.
 */
#define MAX_LINE	4096

/*
 * Read the next line into l.  A line ends at LF, CRLF or a lone CR (the
 * line end of old Mac files), or at the end of the file.  Returns 1, 0 at
 * the end of the file, -1 if the line cannot grow, or -2 if it is longer
 * than MAX_LINE.
 */
static int
read_line(FILE *in, struct line *l)
{
	int c;

	l->len = 0;
	while ((c = getc(in)) != EOF && c != '\n' && c != '\r') {
		if (l->len == MAX_LINE)
			return -2;
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

/* The TYPE DESCRIPTION of an nbdinfo line. */
static const char *
parse_nbdinfo(struct range_reader *rd, const char *s, struct range_extent *e)
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
parse_line(struct range_reader *rd, const char *line, enum line_format *format,
    struct range_extent *e)
{
	const char *s = skip_space(line);
	enum line_format rest;
	char *end;

	/* qemu-img map prints this for people, JSON for programs. */
	if (strncmp(s, "Offset ", 7) == 0 && strstr(s, "Mapped to") != NULL)
		return "the map qemu-img prints for people: give it --output=json";
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
read_lines(FILE *in, struct range_reader *rd)
{
	enum line_format format = FORMAT_UNKNOWN;
	struct ranges_error *error = rd->error;
	struct line l = { NULL, 0, 0 };
	int got, first = 1;

	/* The first line is the first that is not blank: first_char passed those. */
	for (; (got = read_line(in, &l)) == 1; first = 0) {
		struct range_extent e;

		error->line++;
		if (strlen(l.text) != l.len)
			error->why = "NUL byte in line";
		else if (first && rd->overlay && strncmp(skip_space(l.text),
		    RANGES_MAP_HEADER, strlen(RANGES_MAP_HEADER)) == 0)
			error->why = RANGES_MAP_OVERLAY;
		else if (is_blank(l.text))
			continue;
		else if ((error->why = parse_line(rd, l.text, &format, &e)) == NULL)
			error->why = range_keep(rd, &e);
		if (error->why != NULL)
			break;
	}
	if (got == -1)
		error->why = "out of memory";
	if (got == -2) {
		error->line++;
		error->why = "line longer than 4096 bytes";
	}
	free(l.text);
	return error->why != NULL ? -1 : 0;
}

/*
 * Which format a file is in shows in its first character that is not
 * space, returned (or EOF) and left to be read.
 */
static int
first_char(FILE *in, unsigned long *newlines)
{
	int c, last = '\0';

	while ((c = getc(in)) == ' ' || c == '\t' || c == '\r' || c == '\n') {
		*newlines += range_ends_line(last, c);
		last = c;
	}
	if (c != EOF)
		ungetc(c, in);
	return c;
}

int
ranges_read(FILE *in, uint64_t size, int overlay, struct range_list *list,
    struct ranges_error *error)
{
	struct range_reader rd = { size, overlay, MAP_UNKNOWN, 0, 0, list, error };
	unsigned long skipped_lines = 0;
	int first, status;

	error->line = 0;
	error->why = NULL;
	first = first_char(in, &skipped_lines);
	if (first == EOF && overlay && !ferror(in)) {
		error->why = RANGES_EMPTY_OVERLAY;
		return -1;
	}
	if (first == '[') {
		status = range_json_read(in, &rd);
		error->line += skipped_lines;
	} else {
		error->line = skipped_lines;
		status = read_lines(in, &rd);
	}
	if (status == 0 && (error->why = range_finish(&rd)) != NULL)
		status = -1;
	/* A read error cut the file short: what it made of the rest is moot. */
	if (ferror(in)) {
		error->line = 0;
		error->why = "read error";
		status = -1;
	}
	return status;
}
