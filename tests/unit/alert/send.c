/* Tests for src/alert/send.c: the email body's lines. */
#include "support/testutil.h"

#include <string.h>

#include "alert/send.h"

/* the length of the longest line of s (lines end with CRLF) */
static size_t longest_line(const char *s)
{
	size_t best = 0;
	while (*s) {
		const char *e = strstr(s, "\r\n");
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n > best)
			best = n;
		s += n + (e ? 2 : 0);
	}
	return best;
}

static void test_crlf(void **st)
{
	(void)st;
	struct strbuf sb = STRBUF_INIT;
	alert_email_text(&sb, "a\nb\r\nc\r");
	assert_string_equal(sb.buf, "a\r\nb\r\nc");
	strbuf_release(&sb);
}

/* a run error of 3000 bytes: before, one body line of 3000 octets, which SMTP refuses past 998 */
static void test_long_line_is_broken(void **st)
{
	(void)st;
	struct strbuf sb = STRBUF_INIT, in = STRBUF_INIT;
	strbuf_addstr(&in, "error: ");
	for (int i = 0; i < 1000; i++)
		strbuf_addstr(&in, "é"); /* two bytes each: a break must not split one */
	strbuf_addstr(&in, "\nshort\n");
	for (int i = 0; i < 3000; i++)
		strbuf_addch(&in, 'x');
	alert_email_text(&sb, in.buf);
	assert_true(longest_line(sb.buf) <= 998);
	assert_true(longest_line(sb.buf) >= ALERT_EMAIL_LINE_MAX);
	/* nothing lost: without the breaks, the text is the input's */
	struct strbuf back = STRBUF_INIT;
	for (const char *p = sb.buf; *p; p++) {
		if (!strncmp(p, "\r\n", 2)) {
			p++;
			continue;
		}
		strbuf_addch(&back, *p);
	}
	struct strbuf want = STRBUF_INIT;
	for (const char *p = in.buf; *p; p++)
		if (*p != '\n')
			strbuf_addch(&want, *p);
	assert_string_equal(back.buf, want.buf);
	/* every line is valid UTF-8 on its own: no line starts with a continuation byte */
	for (const char *p = sb.buf; (p = strstr(p, "\r\n")); p += 2)
		assert_true(((unsigned char)p[2] & 0xC0) != 0x80);
	assert_non_null(strstr(sb.buf, "\r\nshort\r\n"));
	strbuf_release(&sb);
	strbuf_release(&in);
	strbuf_release(&back);
	strbuf_release(&want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_long_line_is_broken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
