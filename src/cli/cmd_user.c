/*
 * cmd_user.c: `joey user add|list|remove|passwd|role|token`: the accounts of
 * `joey serve` (state/accounts.h), kept in accounts.db beside the state store. Every
 * change is written to the audit log as "cli:<login name>".
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cli/cli.h"
#include "state/accounts.h"

static void usage(FILE *out)
{
	fputs("usage: joey user add NAME --role admin|editor|viewer [--password-stdin]\n"
	      "       joey user list [--json]\n"
	      "       joey user remove NAME\n"
	      "       joey user passwd NAME [--password-stdin]\n"
	      "       joey user role NAME admin|editor|viewer\n"
	      "       joey user token NAME --label LABEL [--role ROLE]\n\n"
	      "The people and programs allowed into 'joey serve'. Roles: admin (apps and keys,\n"
	      "accounts, the audit log), editor (models, sources, properties, groups, destinations,\n"
	      "schedules, runs), viewer (reads). Passwords (at least 10 characters) are asked for on\n"
	      "the terminal, or read from the first line of standard input with --password-stdin;\n"
	      "they are stored as Argon2id hashes. 'token' prints a personal API token once.\n"
	      "The accounts live in accounts.db beside the state store (JOEY_ACCOUNTS overrides);\n"
	      "--state and --config pick it as for the other commands.\n",
	      out);
}

/* Read a password: the first line of stdin, or twice from the terminal without echo. */
static char *read_password(bool from_stdin, const char *name)
{
	char buf[ACCT_PASSWORD_MAX + 4];
	if (from_stdin) {
		if (!fgets(buf, sizeof(buf), stdin)) {
			fprintf(stderr, "joey: error: no password on standard input\n");
			return NULL;
		}
		buf[strcspn(buf, "\r\n")] = 0;
		char *p = xstrdup(buf);
		sodium_memzero(buf, sizeof(buf));
		return p;
	}
	FILE *tty = fopen("/dev/tty", "r+");
	if (!tty) {
		fprintf(stderr, "joey: error: no terminal to ask for the password of \"%s\"\n", name);
		fprintf(stderr, "hint: give it on standard input with --password-stdin\n");
		return NULL;
	}
	struct termios old, quiet;
	bool restore = tcgetattr(fileno(tty), &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	}
	char again[sizeof(buf)];
	fprintf(tty, "Password for %s: ", name);
	fflush(tty);
	bool ok = fgets(buf, sizeof(buf), tty) != NULL;
	fprintf(tty, "\nAgain: ");
	fflush(tty);
	ok = ok && fgets(again, sizeof(again), tty) != NULL;
	fputc('\n', tty);
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fclose(tty);
	char *p = NULL;
	if (!ok) {
		fprintf(stderr, "joey: error: no password given\n");
	} else {
		buf[strcspn(buf, "\r\n")] = 0;
		again[strcspn(again, "\r\n")] = 0;
		if (strcmp(buf, again))
			fprintf(stderr, "joey: error: the two passwords differ\n");
		else
			p = xstrdup(buf);
	}
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(again, sizeof(again));
	return p;
}

static void free_password(char *p)
{
	if (p) {
		sodium_memzero(p, strlen(p));
		free(p);
	}
}

static void fmt_time(json_t *v, char *out, size_t n)
{
	if (!json_is_integer(v)) {
		snprintf(out, n, "-");
		return;
	}
	time_t t = (time_t)(json_integer_value(v) / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static int list_users(struct accounts *a, bool json)
{
	json_t *users = NULL;
	struct jerror err = JERROR_INIT;
	if (accounts_user_list(a, &users, &err)) {
		jerror_print(stderr, &err);
		jerror_release(&err);
		return 1;
	}
	if (json) {
		char *s = json_dumps(users, JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (!json_array_size(users)) {
		printf("no users yet (joey user add NAME --role admin)\n");
	} else {
		size_t i;
		json_t *u;
		printf("%-24s %-7s %-21s %s\n", "NAME", "ROLE", "LAST SIGN-IN", "CREATED");
		json_array_foreach(users, i, u)
		{
			char last[32], created[32];
			fmt_time(json_object_get(u, "last_login_at"), last, sizeof(last));
			fmt_time(json_object_get(u, "created_at"), created, sizeof(created));
			printf("%-24s %-7s %-21s %s\n", json_string_value(json_object_get(u, "name")),
			       json_string_value(json_object_get(u, "role")), last, created);
		}
	}
	json_decref(users);
	return 0;
}

/* What the command line asks for (pointers into argv). */
struct user_args {
	const char *verb, *name, *role, *label;
	enum acct_role ro; /* role parsed, ROLE_NONE without one */
	bool pw_stdin;
};

/* The command line into u: CLI_OPT_TAKEN when it is complete, else the exit code (usage printed). */
static int user_parse(struct cli_common *c, int argc, char **argv, struct user_args *u)
{
	const char *args[3] = { 0 };
	size_t n_args = 0;
	const struct cli_flag flags[] = { { "--password-stdin", &u->pw_stdin }, { NULL, NULL } };
	int r;

	for (int i = 0; (r = cli_opt_next(c, argc, argv, &i, usage, flags)) == CLI_OPT_NOT;) {
		bool missing = false;
		const char *v;
		if ((v = cli_opt_value("--role", argc, argv, &i, &missing))) {
			u->role = v;
			continue;
		}
		if (!missing && (v = cli_opt_value("--label", argc, argv, &i, &missing))) {
			u->label = v;
			continue;
		}
		if (missing) {
			fprintf(stderr, "joey: error: %s needs a value\n", argv[i]);
			return EXIT_USAGE;
		}
		if (argv[i][0] == '-' || n_args >= 3) {
			fprintf(stderr, "joey: error: unexpected argument \"%s\" for user\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
		args[n_args++] = argv[i];
	}
	if (r != CLI_OPT_DONE)
		return r;
	const char *verb = n_args ? args[0] : NULL;
	size_t want = !verb ? 0 : !strcmp(verb, "list") ? 1 : !strcmp(verb, "role") ? 3 : 2;
	if (!verb || (strcmp(verb, "add") && strcmp(verb, "list") && strcmp(verb, "remove") && strcmp(verb, "passwd") &&
		      strcmp(verb, "role") && strcmp(verb, "token"))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (n_args != want) {
		fprintf(stderr, "joey: error: 'joey user %s' takes %s\n", verb,
			want == 1 ? "no name" : want == 3 ? "a name and a role" : "one user name");
		usage(stderr);
		return EXIT_USAGE;
	}
	/* an option the verb does not take is a mistake, not something to ignore */
	const char *stray = u->role && strcmp(verb, "add") && strcmp(verb, "token") ? "--role"
			    : u->label && strcmp(verb, "token")			     ? "--label"
			    : u->pw_stdin && strcmp(verb, "add") && strcmp(verb, "passwd") ? "--password-stdin"
											    : NULL;
	if (stray) {
		fprintf(stderr, "joey: error: 'joey user %s' does not take %s\n", verb, stray);
		if (!strcmp(verb, "role") && !strcmp(stray, "--role"))
			fprintf(stderr, "hint: joey user role NAME admin|editor|viewer\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	u->verb = verb;
	u->name = n_args > 1 ? args[1] : NULL;
	if (!strcmp(verb, "role"))
		u->role = args[2];
	u->ro = u->role ? acct_role_parse(u->role) : ROLE_NONE;
	if (u->role && u->ro == ROLE_NONE) {
		fprintf(stderr, "joey: error: unknown role \"%s\"\nhint: admin, editor or viewer\n", u->role);
		return EXIT_USAGE;
	}
	if (!strcmp(verb, "add") && !u->role) {
		fprintf(stderr, "joey: error: 'joey user add' needs --role admin|editor|viewer\n");
		return EXIT_USAGE;
	}
	if (!strcmp(verb, "token") && !u->label) {
		fprintf(stderr, "joey: error: 'joey user token' needs --label (what the token is for)\n");
		return EXIT_USAGE;
	}
	return CLI_OPT_TAKEN;
}

/* 'joey user add' / 'joey user passwd' (the password already read into p). */
static enum jerr user_set_password(struct accounts *a, const struct acct_principal *me, const struct user_args *u,
				   const char *p, struct jerror *err)
{
	const char *verb = u->verb, *name = u->name;
	enum acct_role ro = u->ro;
	enum jerr rc = !strcmp(verb, "add") ? accounts_user_add(a, name, ro, p, err) : accounts_user_passwd(a, name, p, err);
	if (!rc) {
		json_t *after = json_pack("{s:s}", "role", acct_role_name(ro));
		rc = accounts_audit_add(a, me, NULL, !strcmp(verb, "add") ? "user.add" : "user.passwd", "user", name, NULL,
					!strcmp(verb, "add") ? after : NULL, err);
		json_decref(after);
		if (!rc)
			printf(!strcmp(verb, "add") ? "added %s (%s)\n" : "password of %s changed%s\n", name,
			       !strcmp(verb, "add") ? acct_role_name(ro) : "; their sessions have ended");
	}
	return rc;
}

/* 'joey user remove NAME'. */
static enum jerr user_remove(struct accounts *a, const struct acct_principal *me, const char *name,
			     struct jerror *err)
{
	enum acct_role before = ROLE_NONE;
	enum jerr rc;
	if (!(rc = accounts_user_get(a, name, &before, err)) && !(rc = accounts_user_remove(a, name, err))) {
		json_t *b = json_pack("{s:s}", "role", acct_role_name(before));
		rc = accounts_audit_add(a, me, NULL, "user.remove", "user", name, b, NULL, err);
		json_decref(b);
		if (!rc)
			printf("removed %s, with their sessions and tokens\n", name);
	}
	return rc;
}

/* 'joey user role NAME ROLE'. */
static enum jerr user_role(struct accounts *a, const struct acct_principal *me, const char *name, enum acct_role ro,
			   struct jerror *err)
{
	enum acct_role before = ROLE_NONE;
	enum jerr rc;
	if (!(rc = accounts_user_get(a, name, &before, err)) && !(rc = accounts_user_role(a, name, ro, err))) {
		json_t *b = json_pack("{s:s}", "role", acct_role_name(before));
		json_t *f = json_pack("{s:s}", "role", acct_role_name(ro));
		rc = accounts_audit_add(a, me, NULL, "user.update", "user", name, b, f, err);
		json_decref(b);
		json_decref(f);
		if (!rc)
			printf("%s is now %s\n", name, acct_role_name(ro));
	}
	return rc;
}

/* 'joey user token NAME --label L [--role R]': the token on stdout, once. */
static enum jerr user_token(struct accounts *a, const struct acct_principal *me, const struct user_args *u,
			    struct jerror *err)
{
	const char *name = u->name, *label = u->label, *role = u->role;
	enum acct_role ro = u->ro, owner = ROLE_NONE;
	char tok[ACCT_TOKEN_LEN + 1];
	int64_t id = 0;
	enum jerr rc;
	if (!(rc = accounts_user_get(a, name, &owner, err)) && owner == ROLE_NONE)
		rc = jerror_set(err, JERR_USAGE, "no user \"%s\"", name);
	if (!rc && !(rc = accounts_token_create(a, name, label, role ? ro : owner, tok, &id, err))) {
		char ids[32];
		snprintf(ids, sizeof(ids), "%lld", (long long)id);
		json_t *f = json_pack("{s:s,s:s}", "label", label, "role", acct_role_name(role ? ro : owner));
		rc = accounts_audit_add(a, me, NULL, "token.create", "token", ids, NULL, f, err);
		json_decref(f);
		if (!rc) {
			printf("%s\n", tok);
			fprintf(stderr, "token %s of %s (%s), shown once: keep it in your secret store\n", ids, name,
				acct_role_name(role ? ro : owner));
		}
		sodium_memzero(tok, sizeof(tok));
	}
	return rc;
}

int cmd_user(int argc, char **argv)
{
	struct cli_common c = { 0 };
	struct user_args u = { 0 };
	int ret = 1;

	if ((ret = user_parse(&c, argc, argv, &u)) != CLI_OPT_TAKEN)
		return ret;
	ret = 1;
	const char *verb = u.verb, *name = u.name;

	cli_common_finish(&c);
	char *secrets = cli_secrets_path(&c);
	char *path = accounts_path_for(secrets ? secrets : c.state_path);
	free(secrets);
	struct accounts *a = NULL;
	struct jerror err = JERROR_INIT;
	bool creates = !strcmp(verb, "add");
	if (accounts_open(path, creates, &a, &err)) {
		jerror_print(stderr, &err);
		jerror_release(&err);
		free(path);
		cli_common_release(&c);
		return 1;
	}

	struct acct_principal me = { .role = ROLE_ADMIN, .via = "cli" };
	struct passwd *pw = getpwuid(getuid());
	snprintf(me.user, sizeof(me.user), "cli:%.56s", pw && pw->pw_name ? pw->pw_name : "?");
	enum jerr rc = JERR_OK;
	if (!strcmp(verb, "list")) {
		ret = list_users(a, c.json);
		goto out;
	}
	if (!strcmp(verb, "add") || !strcmp(verb, "passwd")) {
		char *p = read_password(u.pw_stdin, name);
		if (!p)
			goto out;
		rc = user_set_password(a, &me, &u, p, &err);
		free_password(p);
	} else if (!strcmp(verb, "remove")) {
		rc = user_remove(a, &me, name, &err);
	} else if (!strcmp(verb, "role")) {
		rc = user_role(a, &me, name, u.ro, &err);
	} else { /* token */
		rc = user_token(a, &me, &u, &err);
	}
	if (rc) {
		jerror_print(stderr, &err);
		jerror_release(&err);
		ret = 1;
	} else {
		ret = 0;
	}
out:
	accounts_close(a);
	free(path);
	cli_common_release(&c);
	return ret;
}
