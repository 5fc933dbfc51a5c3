/*
 * jwt.h: RS256 JSON Web Tokens for the warehouse connectors (Snowflake key-pair
 * authentication, Google service-account assertions) and for the fakes that check them.
 *
 *   EVP_PKEY *key;
 *   rc = jwt_load_private_key(pem, passphrase, "app \"sf\": options.private_key", &key, &err);
 *   jwt_sign_rs256(key, claims_json, &token);      -- header {"alg":"RS256","typ":"JWT"}
 *   EVP_PKEY_free(key);
 *
 * Keys are OpenSSL EVP_PKEY objects owned by the caller. No function here ever puts key
 * material or a passphrase into an error message.
 */
#ifndef JOEY_SOURCE_JWT_H
#define JOEY_SOURCE_JWT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "base/compat.h"
#include "base/error.h"
#include "base/strbuf.h"

/* Append base64url (no padding) of n bytes. */
void jwt_b64url(struct strbuf *sb, const void *p, size_t n);
/* Decode base64url (padding optional) into out (reset first); false if malformed. */
bool jwt_b64url_decode(const char *s, size_t n, struct strbuf *out);
/* Append standard base64 with padding. */
void jwt_b64(struct strbuf *sb, const void *p, size_t n);

/*
 * Read a PEM private key (PKCS#8, encrypted PKCS#8 or PKCS#1 RSA; the two-character
 * sequence \n is turned into a newline first, as Grouparoo did, so a one-line value
 * works). passphrase may be NULL. what (borrowed) names the option in messages. The key
 * must be RSA of at least 2048 bits. On success *out is the caller's; on failure NULL and
 * err (JERR_CONFIG) says what is wrong in plain words, never quoting the key.
 */
enum jerr jwt_load_private_key(const char *pem, const char *passphrase, const char *what, EVP_PKEY **out,
			       struct jerror *err) JOEY_WUR;
/* A PEM public key (SubjectPublicKeyInfo), or NULL. */
EVP_PKEY *jwt_load_public_key(const char *pem);

/* "SHA256:<base64 of SHA-256 of the DER SubjectPublicKeyInfo>" of key, appended. */
void jwt_fingerprint(EVP_PKEY *key, struct strbuf *out);

/* Sign claims (a JSON object text, borrowed) into a compact RS256 JWT appended to out. */
enum jerr jwt_sign_rs256(EVP_PKEY *key, const char *claims, struct strbuf *out, struct jerror *err) JOEY_WUR;

/*
 * Verify a compact JWT's RS256 signature with pub. Returns the decoded claims (caller
 * decrefs) or NULL, with *why (static text) saying what is wrong.
 */
json_t *jwt_verify_rs256(EVP_PKEY *pub, const char *token, const char **why);

#endif
