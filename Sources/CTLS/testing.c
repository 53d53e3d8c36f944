// For the tests only (ctls_test_*): a standard OpenSSL client over memory BIOs to talk to the
// server path, an EVP AEAD opener to check the kTLS hand-off against real records, and
// jemalloc's per-thread counters. Never called by the engine.
#define _GNU_SOURCE
#include "internal.h"
#include <dlfcn.h>
#include <string.h>

static int alpn_wire(const char *list, unsigned char *wire, unsigned *wire_len) {
    size_t n = 0;
    while (*list) {
        const char *comma = strchr(list, ',');
        size_t len = comma ? (size_t)(comma - list) : strlen(list);
        if (len == 0 || n + 1 + len > 255) return 0;
        wire[n++] = (unsigned char)len;
        memcpy(wire + n, list, len);
        n += len;
        list += len + (comma ? 1 : 0);
    }
    *wire_len = (unsigned)n;
    return 1;
}

SSL_CTX *ctls_test_client_ctx_new(const char *ca_file, const char *cert_file, int min_version,
                                  int max_version, const char *ciphers, const char *ciphersuites,
                                  const char *alpn) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) return NULL;
    int ok = 1;
    if (ca_file) {
        ok &= SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (cert_file) {
        ok &= SSL_CTX_use_certificate_chain_file(ctx, cert_file);
        ok &= SSL_CTX_use_PrivateKey_file(ctx, cert_file, SSL_FILETYPE_PEM);
    }
    // The test client may go below the server's floor; OpenSSL's default floor is TLS 1.0
    // only at security level 0.
    if (min_version && min_version < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);
    if (min_version) ok &= SSL_CTX_set_min_proto_version(ctx, min_version);
    if (max_version) ok &= SSL_CTX_set_max_proto_version(ctx, max_version);
    if (ciphers) ok &= SSL_CTX_set_cipher_list(ctx, ciphers);
    if (ciphersuites) ok &= SSL_CTX_set_ciphersuites(ctx, ciphersuites);
    if (alpn) {
        unsigned char wire[256];
        unsigned wire_len = 0;
        ok &= alpn_wire(alpn, wire, &wire_len);
        ok &= SSL_CTX_set_alpn_protos(ctx, wire, wire_len) == 0;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    if (!ok) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void ctls_test_client_ctx_free(SSL_CTX *ctx) { SSL_CTX_free(ctx); }

SSL *ctls_test_client_new(SSL_CTX *ctx, const char *sni, SSL_SESSION *resume) {
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return NULL;
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(ssl);
    if (sni) SSL_set_tlsext_host_name(ssl, sni);
    if (resume) SSL_set_session(ssl, resume);
    return ssl;
}

void ctls_test_client_feed(SSL *ssl, const unsigned char *bytes, size_t len) {
    if (len) BIO_write(SSL_get_rbio(ssl), bytes, (int)len);
}

size_t ctls_test_client_drain(SSL *ssl, unsigned char *buf, size_t cap) {
    int n = BIO_read(SSL_get_wbio(ssl), buf, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

static int client_result(SSL *ssl, int ret) {
    int e = SSL_get_error(ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    ERR_clear_error();
    return -1;
}

int ctls_test_client_step(SSL *ssl) {
    int ret = SSL_do_handshake(ssl);
    return ret == 1 ? 1 : client_result(ssl, ret);
}

int ctls_test_client_read(SSL *ssl, unsigned char *buf, size_t cap, size_t *n) {
    *n = 0;
    if (SSL_read_ex(ssl, buf, cap, n)) return 1;
    return client_result(ssl, 0);
}

int ctls_test_client_write(SSL *ssl, const unsigned char *buf, size_t len) {
    size_t n = 0;
    if (SSL_write_ex(ssl, buf, len, &n)) return 1;
    return client_result(ssl, 0);
}

int ctls_test_client_key_update(SSL *ssl) { return SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED); }

SSL_SESSION *ctls_test_client_session(SSL *ssl) { return SSL_get1_session(ssl); }

void ctls_test_session_free(SSL_SESSION *s) { SSL_SESSION_free(s); }

long ctls_test_aead_open(int nid, const unsigned char *key, const unsigned char *nonce,
                         const unsigned char *aad, size_t aad_len,
                         const unsigned char *ct, size_t ct_len, unsigned char *out) {
    const EVP_CIPHER *cipher = nid == NID_aes_128_gcm ? EVP_aes_128_gcm()
                             : nid == NID_aes_256_gcm ? EVP_aes_256_gcm()
                             : nid == NID_chacha20_poly1305 ? EVP_chacha20_poly1305() : NULL;
    if (cipher == NULL || ct_len < 16) return -1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok = c != NULL;
    long total = 0;
    ok = ok && EVP_DecryptInit_ex(c, cipher, NULL, NULL, NULL);
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL);
    ok = ok && EVP_DecryptInit_ex(c, NULL, NULL, key, nonce);
    ok = ok && EVP_DecryptUpdate(c, NULL, &len, aad, (int)aad_len);
    ok = ok && EVP_DecryptUpdate(c, out, &len, ct, (int)(ct_len - 16));
    total = len;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, (void *)(ct + ct_len - 16));
    ok = ok && EVP_DecryptFinal_ex(c, out + total, &len) > 0;
    total += len;
    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();
    return ok ? total : -1;
}

static long long jemalloc_counter(const char *name) {
    typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
    mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
    uint64_t v = 0;
    size_t size = sizeof(v);
    if (mallctl == NULL || mallctl(name, &v, &size, NULL, 0) != 0) return -1;
    return (long long)v;
}

long long ctls_test_thread_bytes_allocated(void) { return jemalloc_counter("thread.allocated"); }

long long ctls_test_thread_bytes_net(void) {
    long long a = jemalloc_counter("thread.allocated");
    long long d = jemalloc_counter("thread.deallocated");
    return a < 0 || d < 0 ? -1 : a - d;
}
