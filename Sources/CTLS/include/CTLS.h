// CTLS: the OpenSSL call sequences ringproxy's TLS needs, kept in C where they read better
// than from Swift: a BIO over caller-owned buffers (no socket ever reaches OpenSSL), server
// contexts built from plain options, and the kTLS key hand-off derived from the session.
// Nothing here allocates per record (OpenSSL 3.0 itself does, 40-byte WPACKET_SUBs, and ~20 KiB
// per record with release_buffers: README); contexts and SSL objects allocate once each.
#ifndef CTLS_H
#define CTLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <openssl/ssl.h>
#include <openssl/err.h>

// ---- The BIO: one ctls_io per worker, bound to every SSL of that worker -------------------
// Before each ctls_* call the worker points `in` at received ciphertext (in_used = 0, or where
// it left off) and `out` at room for records to send (out_len = 0, or what is already there).
// After the call: in[0..<in_used] was consumed; out[0..<out_len] must be sent.
typedef struct ctls_io {
    const unsigned char *in;
    size_t in_len;
    size_t in_used;
    unsigned char *out;
    size_t out_cap;
    size_t out_len;
    int in_eof;        // the peer closed its side: BIO reads return 0 once `in` is used up
} ctls_io;

// What a ctls_* call ended with.
enum {
    CTLS_OK = 0,            // handshake done / bytes moved (CTLS_DONE is the same value)
    CTLS_DONE = 0,
    CTLS_WANT_READ = 1,     // `in` is used up: receive more, call again
    CTLS_WANT_WRITE = 2,    // `out` is full: send out[0..<out_len], reset out_len, call again
    CTLS_CLOSED = 3,        // the peer's close_notify arrived
    CTLS_ERROR = 4,         // fatal: ctls_error_reason() says why; free the SSL
};

// ---- Server contexts -------------------------------------------------------------------------
enum { CTLS_VERIFY_NONE = 0, CTLS_VERIFY_OPTIONAL = 1, CTLS_VERIFY_REQUIRED = 2 };

typedef struct ctls_server_options {
    const char *const *cert_files;   // PEM: certificate, chain, private key (HAProxy `crt`)
    size_t cert_count;               // >= 1; the first is the default for SNI
    const char *ca_file;             // client certificates' CAs, or NULL
    const char *crl_file;            // or NULL; enables X509_V_FLAG_CRL_CHECK
    int verify;                      // CTLS_VERIFY_*
    int min_version;                 // TLS1_2_VERSION..., 0 = OpenSSL's default
    int max_version;                 // 0 = highest
    const char *ciphers;             // TLS <= 1.2 cipher list, or NULL
    const char *ciphersuites;        // TLS 1.3 suites, or NULL
    const char *curves;              // groups ("X25519:P-256"), or NULL
    const char *alpn;                // "mqtt,x-amzn-mqtt-ca": server preference order, or NULL
    long session_cache_size;         // sessions kept per context; 0 = no server-side cache
    long session_timeout_s;          // session and ticket lifetime; 0 = 300
    int tickets;                     // 1 = session tickets (RFC 5077 / TLS 1.3 stateless)
    int release_buffers;             // 1 = SSL_MODE_RELEASE_BUFFERS
    int keep_traffic_secrets;        // 1 = keylog callback keeps secrets for kTLS
    int prefer_client_ciphers;       // 1 = no SSL_OP_CIPHER_SERVER_PREFERENCE
    int strict_sni;                  // 1 = refuse a ClientHello whose SNI matches no certificate
    const char *sigalgs;             // signature algorithms we sign with, or NULL
    const char *client_sigalgs;      // signature algorithms asked of client certificates, or NULL
} ctls_server_options;

// A context, or NULL with err = "file: reason". On success err holds warnings ("" if none),
// e.g. "server.pem: certificate has expired".
SSL_CTX *ctls_server_ctx_new(const ctls_server_options *o, char *err, size_t err_len);
void ctls_ctx_free(SSL_CTX *ctx);

// ---- Client contexts (TLS towards the brokers: `server ... ssl`) ---------------------------------
typedef struct ctls_client_options {
    const char *ca_file;             // the brokers' CAs (verify required), or NULL
    const char *crl_file;            // or NULL
    const char *cert_file;           // a client certificate with its key (server `crt`), or NULL
    int verify;                      // CTLS_VERIFY_NONE or CTLS_VERIFY_REQUIRED
    int min_version, max_version;    // 0 = OpenSSL's bounds
    const char *ciphers;             // or NULL
    const char *ciphersuites;        // or NULL
    const char *alpn;                // "mqtt", or NULL
    int workers;                     // one resumption cell per worker
    int reuse_sessions;              // 1 = resume the worker's last session (no `no-ssl-reuse`)
} ctls_client_options;

SSL_CTX *ctls_client_ctx_new(const ctls_client_options *o, char *err, size_t err_len);
// A client SSL for worker `worker` (its resumption cell): SNI `sni` (or none), the
// certificate's name checked against `verify_host` when verification is on (or not at all).
SSL *ctls_client_new(SSL_CTX *ctx, ctls_io *io, const char *sni, const char *verify_host,
                     int worker);
// The worker's last resumable session with this context's server (no reference taken), and
// forgetting it (after a failed resumption).
SSL_SESSION *ctls_client_cached_session(SSL_CTX *ctx, int worker);
void ctls_client_forget_session(SSL_CTX *ctx, int worker);
// `no-tls-tickets` on a client context: resume by session id only.
void ctls_ctx_disable_tickets(SSL_CTX *ctx);

// ---- Connections -----------------------------------------------------------------------------
SSL *ctls_server_new(SSL_CTX *ctx, ctls_io *io);
void ctls_free(SSL *ssl);

int ctls_handshake(SSL *ssl);
// Plaintext into dst (which may be the buffer `in` points into, at or before in + in_used:
// OpenSSL copies each record into its own buffer before writing plaintext, and plaintext is
// shorter than its record). *n = bytes written; CTLS_OK when n > 0.
int ctls_read(SSL *ssl, unsigned char *dst, size_t cap, size_t *n);
// Plaintext from src into records in `out`. *n = bytes of src taken. On CTLS_WANT_WRITE the
// record for src[n...] may be sealed and waiting: send `out`, then call again with src + n.
int ctls_write(SSL *ssl, const unsigned char *src, size_t len, size_t *n);
// close_notify into `out`.
int ctls_shutdown(SSL *ssl);
// The reason for the last CTLS_ERROR on this thread (OpenSSL's text), cleared by reading.
void ctls_error_reason(char *buf, size_t len);

// ---- Connection facts (log, PROXY v2 TLVs) ---------------------------------------------------
const char *ctls_version(const SSL *ssl);      // "TLSv1.3"
const char *ctls_cipher(const SSL *ssl);       // "TLS_AES_128_GCM_SHA256"
// ALPN into buf (NUL-terminated); returns its length, 0 if none.
size_t ctls_alpn(const SSL *ssl, char *buf, size_t len);
const char *ctls_sni(const SSL *ssl);          // NULL if the client sent none
int ctls_client_cert_presented(const SSL *ssl);
// The client certificate's subject as HAProxy's ssl_c_s_dn ("/C=FR/O=Org/CN=name"), its CN;
// lengths returned, 0 if there is no certificate.
size_t ctls_client_subject(const SSL *ssl, char *buf, size_t len);
size_t ctls_client_cn(const SSL *ssl, char *buf, size_t len);
long ctls_verify_result(const SSL *ssl);       // X509_V_OK (0) or the X509_V_ERR_* code
const char *ctls_verify_reason(long result);
int ctls_session_reused(const SSL *ssl);

// ---- kTLS ------------------------------------------------------------------------------------
// 1 if the kernel takes TCP_ULP "tls" (probed once on a loopback TCP pair). On 0, reason holds
// why ("TCP_ULP tls: No such file or directory (kernel without CONFIG_TLS)").
int ctls_ktls_supported(char *reason, size_t len);

// What setsockopt(SOL_TLS, TLS_TX / TLS_RX) takes, for the three ciphers the kernel has.
typedef union ctls_crypto_info {
    struct tls_crypto_info info;
    struct tls12_crypto_info_aes_gcm_128 aes_gcm_128;
    struct tls12_crypto_info_aes_gcm_256 aes_gcm_256;
    struct tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
} ctls_crypto_info;

// linux/tls.h's version numbers are token-pasting macros, which Swift does not expand.
static const unsigned short CTLS_KTLS_TLS_1_2 = TLS_1_2_VERSION;
static const unsigned short CTLS_KTLS_TLS_1_3 = TLS_1_3_VERSION;

// Key, IV/salt and record sequence for the server's TX (tx = 1) or RX (tx = 0) direction, as
// of now: call after the handshake with `out` sent and `in` used up. Needs
// keep_traffic_secrets for TLS 1.3. Returns the length to pass to setsockopt, or 0 with the
// reason in ctls_error_reason (no secret kept, a cipher the kernel lacks, a KeyUpdate seen,
// a direction in the middle of a record or with bytes waiting inside OpenSSL).
size_t ctls_ktls_crypto_info(SSL *ssl, int tx, ctls_crypto_info *ci);
// Records counted in a direction under its current keys (the sequence number of the next).
uint64_t ctls_record_sequence(const SSL *ssl, int tx);

// setsockopt levels and names of the switch (netinet/tcp.h's and linux/tls.h's macros, which
// Swift does not import as constants everywhere).
static const int CTLS_SOL_TCP = 6;
static const int CTLS_TCP_ULP = 31;
static const int CTLS_SOL_TLS = 282;
static const int CTLS_TLS_TX = TLS_TX;
static const int CTLS_TLS_RX = TLS_RX;

// A close_notify alert (RFC 8446 §6.1) for a kTLS TX socket: a sendmsg whose control message
// TLS_SET_RECORD_TYPE 21 makes the kernel seal the payload as an alert record. Constant, one
// per worker, read by the kernel at each send; ctls_ktls_alert_init fills it once.
typedef struct ctls_ktls_alert {
    struct msghdr msg;
    struct iovec iov;
    unsigned char payload[2];
    union {
        char bytes[CMSG_SPACE(1)];
        struct cmsghdr align;
    } control;
} ctls_ktls_alert;
void ctls_ktls_alert_init(ctls_ktls_alert *alert);

// ---- Tests only: a standard OpenSSL client over memory BIOs, and an AEAD opener ---------------
SSL_CTX *ctls_test_client_ctx_new(const char *ca_file, const char *cert_file, int min_version,
                                  int max_version, const char *ciphers, const char *ciphersuites,
                                  const char *alpn);
SSL *ctls_test_client_new(SSL_CTX *ctx, const char *sni, SSL_SESSION *resume);
// Feeds bytes the server sent; drains what the client wants to send (returns the count).
void ctls_test_client_feed(SSL *ssl, const unsigned char *bytes, size_t len);
size_t ctls_test_client_drain(SSL *ssl, unsigned char *buf, size_t cap);
// SSL_do_handshake / SSL_read / SSL_write on the client: 1 ok, 0 want, -1 error.
int ctls_test_client_step(SSL *ssl);
int ctls_test_client_read(SSL *ssl, unsigned char *buf, size_t cap, size_t *n);
int ctls_test_client_write(SSL *ssl, const unsigned char *buf, size_t len);
int ctls_test_client_key_update(SSL *ssl);
SSL_SESSION *ctls_test_client_session(SSL *ssl);   // SSL_get1_session
void ctls_test_session_free(SSL_SESSION *s);
void ctls_test_client_ctx_free(SSL_CTX *ctx);
// EVP AEAD open: nid NID_aes_128_gcm / NID_aes_256_gcm / NID_chacha20_poly1305; tag is the
// last 16 bytes of ct. Returns the plaintext length, or -1 if authentication fails.
long ctls_test_aead_open(int nid, const unsigned char *key, const unsigned char *nonce,
                         const unsigned char *aad, size_t aad_len,
                         const unsigned char *ct, size_t ct_len, unsigned char *out);
// jemalloc's thread.allocated - thread.deallocated for the calling thread (-1 without jemalloc),
// and thread.allocated alone: to measure what an idle connection holds and what a record costs.
long long ctls_test_thread_bytes_net(void);
long long ctls_test_thread_bytes_allocated(void);

static const int CTLS_NID_AES_128_GCM = NID_aes_128_gcm;
static const int CTLS_NID_AES_256_GCM = NID_aes_256_gcm;
static const int CTLS_NID_CHACHA20_POLY1305 = NID_chacha20_poly1305;

#endif
