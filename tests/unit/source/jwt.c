/* jwt.c: tests for src/source/jwt.c (RS256 signing and checking, key loading, fingerprints). */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "source/jwt.h"

static char *dir;

/* Run cmd in the test's directory; its output (malloc'd). */
static char *sh(const char *cmd, const char *in)
{
	struct strbuf sb = STRBUF_INIT;
	char *out = NULL;
	strbuf_addf(&sb, "cd '%s' && %s", in, cmd);
	assert_int_equal(tu_run(sb.buf, &out), 0);
	strbuf_release(&sb);
	return out;
}

static int setup(void **state)
{
	(void)state;
	dir = tu_mkdtemp();
	free(sh("openssl genrsa -out k.pem 2048 2>/dev/null && openssl rsa -in k.pem -pubout -out pub.pem "
		"2>/dev/null && openssl pkcs8 -topk8 -in k.pem -out enc.pem -passout pass:s3cret -v2 aes-256-cbc "
		"2>/dev/null && openssl genrsa -out small.pem 1024 2>/dev/null && openssl ecparam -name prime256v1 "
		"-genkey -noout -out ec.pem 2>/dev/null && openssl genrsa -out other.pem 2048 2>/dev/null",
		dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	return 0;
}

static char *file(const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	char *t = tu_read(p);
	assert_non_null(t);
	return t;
}

static void test_base64url(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT, back = STRBUF_INIT;
	const unsigned char bytes[] = { 0xfb, 0xff, 0x00, 'a' };
	for (size_t n = 0; n <= sizeof(bytes); n++) {
		strbuf_reset(&sb);
		jwt_b64url(&sb, bytes, n);
		assert_null(strpbrk(sb.buf, "+/="));
		assert_true(jwt_b64url_decode(sb.buf, sb.len, &back));
		assert_int_equal(back.len, n);
		assert_memory_equal(back.buf, bytes, n);
	}
	strbuf_reset(&sb);
	jwt_b64(&sb, "ab", 2);
	assert_string_equal(sb.buf, "YWI=");
	assert_false(jwt_b64url_decode("a", 1, &back));   /* a lone sextet */
	assert_false(jwt_b64url_decode("a+b/", 4, &back)); /* not the url alphabet */
	strbuf_release(&sb);
	strbuf_release(&back);
}

static void test_sign_and_verify(void **state)
{
	(void)state;
	char *pem = file("k.pem"), *pub = file("pub.pem"), *other = file("other.pem");
	struct jerror err = JERROR_INIT;
	EVP_PKEY *key = NULL, *okey = NULL, *pk = jwt_load_public_key(pub);
	assert_non_null(pk);
	assert_int_equal(jwt_load_private_key(pem, NULL, "key", &key, &err), JERR_OK);
	struct strbuf tok = STRBUF_INIT;
	assert_int_equal(jwt_sign_rs256(key, "{\"iss\":\"A.U.SHA256:x\",\"sub\":\"A.U\",\"iat\":1,\"exp\":2}", &tok, &err),
			 JERR_OK);
	/* header is {"alg":"RS256","typ":"JWT"} */
	assert_true(!strncmp(tok.buf, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 37));
	const char *why;
	json_t *claims = jwt_verify_rs256(pk, tok.buf, &why);
	assert_non_null(claims);
	assert_string_equal(json_string_value(json_object_get(claims, "sub")), "A.U");
	json_decref(claims);
	/* a flipped signature byte, another key, a broken shape: refused with a reason */
	struct strbuf bad = STRBUF_INIT;
	strbuf_addstr(&bad, tok.buf);
	bad.buf[bad.len - 5] = bad.buf[bad.len - 5] == 'A' ? 'B' : 'A';
	assert_null(jwt_verify_rs256(pk, bad.buf, &why));
	assert_non_null(strstr(why, "signature"));
	assert_int_equal(jwt_load_private_key(other, NULL, "key", &okey, &err), JERR_OK);
	strbuf_reset(&bad);
	assert_int_equal(jwt_sign_rs256(okey, "{\"sub\":\"A.U\"}", &bad, &err), JERR_OK);
	assert_null(jwt_verify_rs256(pk, bad.buf, &why));
	assert_null(jwt_verify_rs256(pk, "a.b", &why));
	/* alg none is never accepted */
	strbuf_reset(&bad);
	jwt_b64url(&bad, "{\"alg\":\"none\"}", 14);
	strbuf_addstr(&bad, ".e30.");
	assert_null(jwt_verify_rs256(pk, bad.buf, &why));
	assert_non_null(strstr(why, "RS256"));
	strbuf_release(&bad);
	strbuf_release(&tok);
	EVP_PKEY_free(key);
	EVP_PKEY_free(okey);
	EVP_PKEY_free(pk);
	free(pem);
	free(pub);
	free(other);
	jerror_release(&err);
}

/* The fingerprint is what Snowflake shows as RSA_PUBLIC_KEY_FP (openssl's own computation). */
static void test_fingerprint(void **state)
{
	(void)state;
	char *pem = file("k.pem");
	char *want = sh("openssl rsa -in k.pem -pubout -outform DER 2>/dev/null | openssl dgst -sha256 -binary "
			"| openssl enc -base64",
			dir);
	struct jerror err = JERROR_INIT;
	EVP_PKEY *key = NULL;
	struct strbuf fp = STRBUF_INIT;
	assert_int_equal(jwt_load_private_key(pem, NULL, "key", &key, &err), JERR_OK);
	jwt_fingerprint(key, &fp);
	want[strcspn(want, "\n")] = '\0';
	assert_true(!strncmp(fp.buf, "SHA256:", 7));
	assert_string_equal(fp.buf + 7, want);
	strbuf_release(&fp);
	EVP_PKEY_free(key);
	free(want);
	free(pem);
}

static void test_key_loading(void **state)
{
	(void)state;
	struct jerror err = JERROR_INIT;
	EVP_PKEY *key = NULL;
	char *pem = file("k.pem"), *enc = file("enc.pem"), *small = file("small.pem"), *ec = file("ec.pem");

	/* one line with literal \n, as Grouparoo's README shows */
	struct strbuf one = STRBUF_INIT;
	for (const char *s = pem; *s; s++) {
		if (*s == '\n')
			strbuf_addstr(&one, "\\n");
		else
			strbuf_addch(&one, *s);
	}
	assert_int_equal(jwt_load_private_key(one.buf, NULL, "app \"sf\": options.private_key", &key, &err), JERR_OK);
	EVP_PKEY_free(key);

	assert_int_equal(jwt_load_private_key(enc, "s3cret", "k", &key, &err), JERR_OK);
	EVP_PKEY_free(key);
	assert_int_equal(jwt_load_private_key(enc, NULL, "k", &key, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "no passphrase"));
	jerror_release(&err);
	assert_int_equal(jwt_load_private_key(enc, "wrong", "k", &key, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "passphrase is wrong"));
	assert_null(strstr(err.msg.buf, "wrong\"")); /* never the passphrase itself */
	jerror_release(&err);
	assert_int_equal(jwt_load_private_key(small, NULL, "k", &key, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "1024 bits"));
	jerror_release(&err);
	assert_int_equal(jwt_load_private_key(ec, NULL, "k", &key, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "not an RSA key"));
	jerror_release(&err);
	assert_int_equal(jwt_load_private_key("MIIEvQIBADANBgkq", NULL, "k", &key, &err), JERR_CONFIG);
	assert_non_null(strstr(err.msg.buf, "not a PEM private key"));
	assert_null(strstr(err.msg.buf, "MIIE"));
	jerror_release(&err);
	/* a damaged body: named, never quoted */
	char *cut = strdup(pem);
	memcpy(strstr(cut, "\n") + 10, "!!!!", 4);
	assert_int_equal(jwt_load_private_key(cut, NULL, "k", &key, &err), JERR_CONFIG);
	assert_null(strstr(err.msg.buf, "!!!!"));
	assert_null(strstr(err.detail.buf, "!!!!"));
	assert_null(key);
	jerror_release(&err);
	free(cut);
	strbuf_release(&one);
	free(pem);
	free(enc);
	free(small);
	free(ec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64url),
		cmocka_unit_test(test_sign_and_verify),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_key_loading),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
