/* jwt.c: RS256 JSON Web Tokens (sign, verify, key loading, key fingerprints) with OpenSSL. */
#include "source/jwt.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64_enc(struct strbuf *sb, const unsigned char *p, size_t n, const char *alpha, bool pad)
{
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		strbuf_addch(sb, alpha[v >> 18 & 63]);
		strbuf_addch(sb, alpha[v >> 12 & 63]);
		strbuf_addch(sb, alpha[v >> 6 & 63]);
		strbuf_addch(sb, alpha[v & 63]);
	}
	if (n - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		strbuf_addch(sb, alpha[v >> 18 & 63]);
		strbuf_addch(sb, alpha[v >> 12 & 63]);
		if (pad)
			strbuf_addstr(sb, "==");
	} else if (n - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		strbuf_addch(sb, alpha[v >> 18 & 63]);
		strbuf_addch(sb, alpha[v >> 12 & 63]);
		strbuf_addch(sb, alpha[v >> 6 & 63]);
		if (pad)
			strbuf_addch(sb, '=');
	}
}

void jwt_b64url(struct strbuf *sb, const void *p, size_t n)
{
	b64_enc(sb, p, n, b64_url, false);
}

void jwt_b64(struct strbuf *sb, const void *p, size_t n)
{
	b64_enc(sb, p, n, b64_std, true);
}

bool jwt_b64url_decode(const char *s, size_t n, struct strbuf *out)
{
	unsigned v = 0;
	int bits = 0;
	strbuf_reset(out);
	while (n && s[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		const char *c = strchr(b64_url, s[i]);
		if (!c || !s[i])
			return false;
		v = v << 6 | (unsigned)(c - b64_url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			strbuf_addch(out, (int)(v >> bits & 0xff));
		}
	}
	return bits < 6; /* a lone sextet is not a whole byte */
}

enum jerr jwt_load_private_key(const char *pem, const char *passphrase, const char *what, EVP_PKEY **out,
			       struct jerror *err)
{
	struct strbuf text = STRBUF_INIT;
	EVP_PKEY *key = NULL;
	BIO *bio;
	enum jerr rc = JERR_OK;

	*out = NULL;
	for (const char *s = pem ? pem : ""; *s; s++) {
		if (s[0] == '\\' && s[1] == 'n') {
			strbuf_addch(&text, '\n');
			s++;
		} else {
			strbuf_addch(&text, *s);
		}
	}
	if (!strstr(text.buf, "-----BEGIN")) {
		rc = jerror_set(err, JERR_CONFIG, "%s is not a PEM private key", what);
		jerror_detail(err, "a PEM key starts with \"-----BEGIN PRIVATE KEY-----\" (or ENCRYPTED PRIVATE KEY, "
				   "RSA PRIVATE KEY)");
		jerror_hint(err, "paste the whole key file, with its BEGIN and END lines (newlines may be written as \\n)");
		goto out;
	}
	bio = BIO_new_mem_buf(text.buf, (int)text.len);
	/* "" rather than NULL: OpenSSL must not prompt on a terminal for an encrypted key */
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(passphrase ? passphrase : ""));
	BIO_free(bio);
	if (!key) {
		unsigned long e = ERR_peek_last_error();
		int reason = ERR_GET_REASON(e);
		bool encrypted = strstr(text.buf, "ENCRYPTED") || strstr(text.buf, "Proc-Type: 4,ENCRYPTED");
		ERR_clear_error();
		if (encrypted && !passphrase) {
			rc = jerror_set(err, JERR_CONFIG, "%s is encrypted and no passphrase is configured", what);
			jerror_hint(err, "set options.private_key_passphrase (a secret: \"${NAME}\" reads it from the "
					 "environment)");
		} else if (encrypted) {
			rc = jerror_set(err, JERR_CONFIG, "%s cannot be decrypted: the passphrase is wrong", what);
			jerror_hint(err, "check options.private_key_passphrase");
		} else {
			rc = jerror_set(err, JERR_CONFIG, "%s cannot be read as a PEM private key", what);
			jerror_detail(err, "OpenSSL: %s", ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?");
			jerror_hint(err, "paste the whole key file, with its BEGIN and END lines");
		}
		(void)reason;
		goto out;
	}
	if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
		rc = jerror_set(err, JERR_CONFIG, "%s is not an RSA key", what);
		jerror_hint(err, "key-pair authentication needs an RSA key: openssl genrsa 2048 | openssl pkcs8 -topk8 "
				 "-nocrypt");
		goto out;
	}
	if (EVP_PKEY_get_bits(key) < 2048) {
		rc = jerror_set(err, JERR_CONFIG, "%s has %d bits; at least 2048 are needed", what,
				EVP_PKEY_get_bits(key));
		goto out;
	}
	*out = key;
	key = NULL;
out:
	EVP_PKEY_free(key);
	/* the key text is wiped before it goes back to the allocator */
	OPENSSL_cleanse(text.buf, text.len);
	strbuf_release(&text);
	return rc;
}

EVP_PKEY *jwt_load_public_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return key;
}

void jwt_fingerprint(EVP_PKEY *key, struct strbuf *out)
{
	unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
	int n = i2d_PUBKEY(key, &der);
	if (n <= 0)
		return;
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	strbuf_addstr(out, "SHA256:");
	jwt_b64(out, md, sizeof(md));
}

enum jerr jwt_sign_rs256(EVP_PKEY *key, const char *claims, struct strbuf *out, struct jerror *err)
{
	static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t start = out->len, siglen = 0;
	unsigned char *sig = NULL;
	enum jerr rc = JERR_OK;

	jwt_b64url(out, header, sizeof(header) - 1);
	strbuf_addch(out, '.');
	jwt_b64url(out, claims, strlen(claims));
	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSignUpdate(ctx, out->buf + start, out->len - start) != 1 ||
	    EVP_DigestSignFinal(ctx, NULL, &siglen) != 1 || !(sig = OPENSSL_malloc(siglen)) ||
	    EVP_DigestSignFinal(ctx, sig, &siglen) != 1) {
		rc = jerror_set(err, JERR_INTERNAL, "cannot sign a JWT");
		jerror_detail(err, "OpenSSL: %s", ERR_reason_error_string(ERR_peek_last_error())
							 ? ERR_reason_error_string(ERR_peek_last_error())
							 : "?");
		ERR_clear_error();
		strbuf_setlen(out, start);
		goto out;
	}
	strbuf_addch(out, '.');
	jwt_b64url(out, sig, siglen);
out:
	OPENSSL_free(sig);
	EVP_MD_CTX_free(ctx);
	return rc;
}

json_t *jwt_verify_rs256(EVP_PKEY *pub, const char *token, const char **why)
{
	const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	struct strbuf part = STRBUF_INIT, sig = STRBUF_INIT;
	json_t *hdr = NULL, *claims = NULL;
	EVP_MD_CTX *ctx = NULL;

	*why = "not a JWT (three base64url parts separated by dots)";
	if (!d1 || !d2 || strchr(d2 + 1, '.'))
		goto out;
	if (!jwt_b64url_decode(token, (size_t)(d1 - token), &part) ||
	    !(hdr = json_loadb(part.buf, part.len, 0, NULL)))
		goto out;
	*why = "the JWT header does not say \"alg\": \"RS256\"";
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	if (!alg || strcmp(alg, "RS256"))
		goto out;
	*why = "the JWT signature is not base64url";
	if (!jwt_b64url_decode(d2 + 1, strlen(d2 + 1), &sig))
		goto out;
	*why = "the JWT signature does not match the public key";
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) != 1 ||
	    EVP_DigestVerifyUpdate(ctx, token, (size_t)(d2 - token)) != 1 ||
	    EVP_DigestVerifyFinal(ctx, (const unsigned char *)sig.buf, sig.len) != 1) {
		ERR_clear_error();
		goto out;
	}
	*why = "the JWT claims are not a JSON object";
	if (!jwt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &part))
		goto out;
	claims = json_loadb(part.buf, part.len, 0, NULL);
	if (claims && !json_is_object(claims)) {
		json_decref(claims);
		claims = NULL;
	}
	if (claims)
		*why = NULL;
out:
	EVP_MD_CTX_free(ctx);
	json_decref(hdr);
	strbuf_release(&part);
	strbuf_release(&sig);
	return claims;
}
