/* Thin wrappers over libcrypto so the rest of fieldsync names no OpenSSL. */
#include "base/crypto.h"

#include "base/alloc.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>

void crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
    unsigned int out_len = CRYPTO_SHA256_LEN;
    EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL);
}

void crypto_hmac_sha256(const void *key, size_t key_len, const void *data,
                        size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
    unsigned int out_len = CRYPTO_SHA256_LEN;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len);
}

char *crypto_hex(const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = xmalloc(len * 2 + 1);

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[len * 2] = '\0';
    return out;
}

char *crypto_base64(const uint8_t *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

bool crypto_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    return CRYPTO_memcmp(a, b, a_len) == 0;
}

void crypto_random(void *out, size_t len)
{
    if (RAND_bytes(out, (int)len) != 1)
        abort();
}

char *crypto_random_hex(size_t bytes)
{
    uint8_t *raw = xmalloc(bytes);
    crypto_random(raw, bytes);
    char *hex = crypto_hex(raw, bytes);
    free(raw);
    return hex;
}
