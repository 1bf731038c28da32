/* Hashes, MACs, encodings and random bytes over OpenSSL libcrypto. */
#ifndef FIELDSYNC_BASE_CRYPTO_H
#define FIELDSYNC_BASE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN 32

void crypto_sha256(const void *data, size_t len,
                   uint8_t out[CRYPTO_SHA256_LEN]);
void crypto_hmac_sha256(const void *key, size_t key_len, const void *data,
                        size_t len, uint8_t out[CRYPTO_SHA256_LEN]);
/* Lowercase hex of the bytes; the caller frees. */
char *crypto_hex(const uint8_t *data, size_t len);
/* Standard (padded) base64 of the bytes; the caller frees. */
char *crypto_base64(const uint8_t *data, size_t len);
/* Compares in time that depends only on the lengths, never on content. */
bool crypto_equal(const void *a, size_t a_len, const void *b, size_t b_len);
/* Fills with cryptographically strong random bytes (aborts on failure). */
void crypto_random(void *out, size_t len);
/* A fresh random token of the given byte count, as hex; the caller frees. */
char *crypto_random_hex(size_t bytes);

#endif
