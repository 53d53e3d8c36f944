// The userspace record path: a BIO over the worker's ctls_io (ciphertext in and out of the
// ring's buffers, no socket in OpenSSL's hands), the connection calls mapped to small result
// codes, and the connection facts for the log. Per record: copies and counters, no allocation.
#define _GNU_SOURCE
#include "internal.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509v3.h>

static __thread char last_error[256];

void ctls_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
}

void ctls_error_reason(char *buf, size_t len) {
    if (len == 0) return;
    snprintf(buf, len, "%s", last_error);
    last_error[0] = 0;
}

// ---- Per-SSL state ---------------------------------------------------------------------------
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int conn_index = -1;
static BIO_METHOD *io_method;

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                      void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    if (ptr == NULL) return;
    OPENSSL_cleanse(ptr, sizeof(ctls_conn));   // the traffic secrets
    free(ptr);
}

// TLS 1.0-1.3 record header (RFC 8446 §5.1): type, legacy version (2), length (2). Counting
// records here is how the hand-off learns sequence numbers: OpenSSL 3.0 has no public getter.
static void stream_pass(ctls_stream *s, const unsigned char *p, size_t n) {
    while (n > 0) {
        if (s->body_left == 0) {
            size_t take = 5 - s->header_have;
            if (take > n) take = n;
            memcpy(s->header + s->header_have, p, take);
            s->header_have += (uint8_t)take;
            p += take;
            n -= take;
            if (s->header_have < 5) return;
            s->header_have = 0;
            s->nonce_have = 0;
            s->body_left = (uint32_t)s->header[3] << 8 | s->header[4];
            // RFC 5246 §7.1: the sequence number is 0 for the first record after a
            // ChangeCipherSpec. TLS 1.3's compatibility CCS comes before the application keys,
            // which reset the count again when they are installed (ctls_keylog).
            if (s->header[0] == 20 && !s->application_keys) s->records = 0;
            else s->records++;
            continue;
        }
        size_t take = s->body_left < n ? s->body_left : n;
        if (s->nonce_have < 8) {
            size_t k = (size_t)(8 - s->nonce_have);
            if (k > take) k = take;
            memcpy(s->nonce + s->nonce_have, p, k);
            s->nonce_have += (uint8_t)k;
        }
        s->body_left -= (uint32_t)take;
        p += take;
        n -= take;
    }
}

static int io_write(BIO *b, const char *data, size_t len, size_t *written) {
    ctls_io *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t room = io->out_cap - io->out_len;
    if (room == 0) {
        BIO_set_retry_write(b);
        *written = 0;
        return 0;
    }
    size_t n = len < room ? len : room;
    memcpy(io->out + io->out_len, data, n);
    io->out_len += n;
    ctls_conn *c = BIO_get_app_data(b);
    if (c) stream_pass(&c->tx, (const unsigned char *)data, n);
    *written = n;
    return 1;
}

static int io_read(BIO *b, char *data, size_t len, size_t *readbytes) {
    ctls_io *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t avail = io->in_len - io->in_used;
    if (avail == 0) {
        if (!io->in_eof) BIO_set_retry_read(b);
        *readbytes = 0;
        return 0;
    }
    size_t n = len < avail ? len : avail;
    memcpy(data, io->in + io->in_used, n);
    ctls_conn *c = BIO_get_app_data(b);
    if (c) stream_pass(&c->rx, io->in + io->in_used, n);
    io->in_used += n;
    *readbytes = n;
    return 1;
}

static long io_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)ptr;
    ctls_io *io = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;                 // `out` is the worker's to send
    case BIO_CTRL_PENDING: return io ? (long)(io->in_len - io->in_used) : 0;
    case BIO_CTRL_WPENDING: return io ? (long)io->out_len : 0;
    case BIO_CTRL_EOF: return io && io->in_eof && io->in_used == io->in_len;
    case BIO_CTRL_GET_CLOSE: return BIO_get_shutdown(b);
    case BIO_CTRL_SET_CLOSE: BIO_set_shutdown(b, (int)num); return 1;
    default: return 0;                             // no kTLS via BIO, no push/pop, no dgram
    }
}

static int io_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

static int io_destroy(BIO *b) {
    BIO_set_data(b, NULL);   // the ctls_io belongs to the worker
    return 1;
}

static void init_once(void) {
    conn_index = SSL_get_ex_new_index(0, "ctls_conn", NULL, NULL, conn_free);
    io_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ctls_io");
    BIO_meth_set_write_ex(io_method, io_write);
    BIO_meth_set_read_ex(io_method, io_read);
    BIO_meth_set_ctrl(io_method, io_ctrl);
    BIO_meth_set_create(io_method, io_create);
    BIO_meth_set_destroy(io_method, io_destroy);
}

int ctls_conn_index(void) {
    pthread_once(&once, init_once);
    return conn_index;
}

ctls_conn *ctls_conn_of(const SSL *ssl) { return SSL_get_ex_data(ssl, ctls_conn_index()); }

// ---- Connections -----------------------------------------------------------------------------
int ctls_conn_worker(const SSL *ssl) {
    ctls_conn *c = ctls_conn_of(ssl);
    return c ? c->worker : -1;
}

// An SSL whose records pass through `io`, with its ctls_conn (record counters, secrets).
static SSL *new_ssl(SSL_CTX *ctx, ctls_io *io, int worker) {
    pthread_once(&once, init_once);
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) return NULL;
    ctls_conn *c = calloc(1, sizeof(*c));
    BIO *b = BIO_new(io_method);
    if (c == NULL || b == NULL || !SSL_set_ex_data(ssl, conn_index, c)) {
        free(c);
        BIO_free(b);
        SSL_free(ssl);
        return NULL;
    }
    c->worker = worker;
    BIO_set_data(b, io);
    BIO_set_app_data(b, c);
    SSL_set_bio(ssl, b, b);   // one BIO both ways: one reference handed over
    return ssl;
}

SSL *ctls_server_new(SSL_CTX *ctx, ctls_io *io) {
    SSL *ssl = new_ssl(ctx, io, -1);
    if (ssl) SSL_set_accept_state(ssl);
    return ssl;
}

SSL *ctls_client_new(SSL_CTX *ctx, ctls_io *io, const char *sni, const char *verify_host,
                     int worker) {
    SSL *ssl = new_ssl(ctx, io, worker);
    if (ssl == NULL) return NULL;
    if ((sni && !SSL_set_tlsext_host_name(ssl, sni))
        || (verify_host && !SSL_set1_host(ssl, verify_host))) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    SSL_SESSION *resume = ctls_client_cached_session(ctx, worker);
    if (resume) SSL_set_session(ssl, resume);
    SSL_set_connect_state(ssl);
    return ssl;
}

void ctls_free(SSL *ssl) { SSL_free(ssl); }

// The reason OpenSSL gives, with the verify error when certificate checks failed:
// "certificate verify failed: certificate has expired".
static void record_error(SSL *ssl, int ssl_error) {
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason == NULL && ssl_error == SSL_ERROR_SYSCALL)
        reason = "connection closed before close_notify";
    if (reason == NULL) reason = "unknown error";
    long verify = SSL_get_verify_result(ssl);
    if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK)
        ctls_set_error("%s: %s", reason, X509_verify_cert_error_string(verify));
    else
        ctls_set_error("%s", reason);
    ERR_clear_error();   // the queue is per thread: the next SSL on it must start clean
}

static int result_of(SSL *ssl, int ret) {
    int e = SSL_get_error(ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ: return CTLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return CTLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return CTLS_CLOSED;
    default: record_error(ssl, e); return CTLS_ERROR;
    }
}

int ctls_handshake(SSL *ssl) {
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl);
    return ret == 1 ? CTLS_DONE : result_of(ssl, ret);
}

// One SSL_read per record (read-ahead stays off, so OpenSSL reads a header, then its body, and
// never more from `in` than the record it works on): plaintext written so far never passes
// the ciphertext consumed, which is what makes decrypting into the same buffer safe.
int ctls_read(SSL *ssl, unsigned char *dst, size_t cap, size_t *n) {
    size_t total = 0;
    while (total < cap) {
        size_t got = 0;
        if (SSL_read_ex(ssl, dst + total, cap - total, &got)) {
            total += got;
            continue;
        }
        int r = result_of(ssl, 0);
        *n = total;
        if (total > 0 && r != CTLS_ERROR) return CTLS_OK;   // the rest shows on the next call
        return r;
    }
    *n = total;
    return CTLS_OK;
}

// SSL_MODE_ENABLE_PARTIAL_WRITE: each record counts once it is in `out`; a record sealed but
// not yet in `out` stays in OpenSSL's buffer (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the retry
// come from another address) and goes out first on the next call.
int ctls_write(SSL *ssl, const unsigned char *src, size_t len, size_t *n) {
    size_t total = 0;
    while (total < len) {
        size_t w = 0;
        if (SSL_write_ex(ssl, src + total, len - total, &w)) {
            total += w;
            continue;
        }
        *n = total;
        return result_of(ssl, 0);
    }
    *n = total;
    return CTLS_OK;
}

int ctls_shutdown(SSL *ssl) {
    int ret = SSL_shutdown(ssl);
    return ret >= 0 ? CTLS_OK : result_of(ssl, ret);
}

// ---- Connection facts ------------------------------------------------------------------------
const char *ctls_version(const SSL *ssl) { return SSL_get_version(ssl); }

const char *ctls_cipher(const SSL *ssl) { return SSL_get_cipher_name(ssl); }

size_t ctls_alpn(const SSL *ssl, char *buf, size_t len) {
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    if (len == 0) return 0;
    if (n >= len) n = (unsigned int)len - 1;
    if (n) memcpy(buf, p, n);
    buf[n] = 0;
    return n;
}

const char *ctls_sni(const SSL *ssl) {
    return SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
}

int ctls_client_cert_presented(const SSL *ssl) { return SSL_get0_peer_certificate(ssl) != NULL; }

// HAProxy's ssl_c_s_dn: "/C=FR/O=Org/CN=name", the order of the certificate.
size_t ctls_client_subject(const SSL *ssl, char *buf, size_t len) {
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x == NULL || len == 0) return 0;
    X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len);
    return strlen(buf);
}

size_t ctls_client_cn(const SSL *ssl, char *buf, size_t len) {
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x == NULL || len == 0) return 0;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len);
    if (n < 0) { buf[0] = 0; return 0; }
    return (size_t)n;
}

long ctls_verify_result(const SSL *ssl) { return SSL_get_verify_result(ssl); }

const char *ctls_verify_reason(long result) { return X509_verify_cert_error_string(result); }

int ctls_session_reused(const SSL *ssl) { return SSL_session_reused(ssl); }

uint64_t ctls_record_sequence(const SSL *ssl, int tx) {
    ctls_conn *c = ctls_conn_of(ssl);
    return c ? (tx ? c->tx.records : c->rx.records) : 0;
}
