// Server contexts from plain options: certificates (HAProxy `crt` files, SNI among several),
// client verification with CA and CRL files, protocol bounds, ciphers (and whose order wins),
// groups, signature algorithms, ALPN, session cache and tickets. Runs at start-up and reload only; errors name the file and the reason.
#define _GNU_SOURCE
#include "internal.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509v3.h>

// One certificate with its chain and key, as loaded from a `crt` file.
typedef struct ctls_cert {
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) *chain;
} ctls_cert;

// What a context keeps besides OpenSSL's own state: the certificates SNI chooses among and
// ALPN's protocol list in wire format.
typedef struct ctls_ctx_data {
    size_t cert_count;
    int strict_sni;
    unsigned char alpn[256];
    unsigned alpn_len;
    ctls_cert certs[];
} ctls_ctx_data;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int ctx_index = -1;

static void ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    ctls_ctx_data *d = ptr;
    if (d == NULL) return;
    for (size_t i = 0; i < d->cert_count; i++) {
        X509_free(d->certs[i].cert);
        EVP_PKEY_free(d->certs[i].key);
        sk_X509_pop_free(d->certs[i].chain, X509_free);
    }
    free(d);
}

static void init_once(void) {
    ctx_index = SSL_CTX_get_ex_new_index(0, "ctls_ctx_data", NULL, NULL, ctx_data_free);
}

// The last OpenSSL reason on the queue, or fallback; clears the queue.
static const char *openssl_reason(const char *fallback) {
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : fallback;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void append(char *buf, size_t len, const char *fmt, const char *a, const char *b) {
    size_t used = strlen(buf);
    if (used + 1 >= len) return;
    snprintf(buf + used, len - used, fmt, a, b);
}

// A HAProxy `crt` file: the certificate first, then its chain, and the private key, in any
// order of PEM blocks (PEM_read_bio_* skip blocks of other types).
static int load_cert_file(const char *path, ctls_cert *out, char *err, size_t err_len,
                          char *warn, size_t warn_len) {
    const char *name = base_name(path);
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        snprintf(err, err_len, "%s: %s", name, openssl_reason("cannot open"));
        return 0;
    }
    out->cert = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
    if (out->cert == NULL) {
        ERR_clear_error();
        snprintf(err, err_len, "%s: no certificate", name);
        BIO_free(bio);
        return 0;
    }
    out->chain = sk_X509_new_null();
    X509 *ca;
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) sk_X509_push(out->chain, ca);
    ERR_clear_error();   // the end of the certificates is "no start line"
    BIO_reset(bio);
    out->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (out->key == NULL) {
        ERR_clear_error();
        snprintf(err, err_len, "%s: no private key", name);
        return 0;
    }
    if (!X509_check_private_key(out->cert, out->key)) {
        ERR_clear_error();
        snprintf(err, err_len, "%s: key does not match certificate", name);
        return 0;
    }
    // An expired certificate still serves (as HAProxy does); the operator hears about it.
    if (X509_cmp_current_time(X509_get0_notAfter(out->cert)) < 0)
        append(warn, warn_len, "%s%s: certificate has expired", warn[0] ? "; " : "", name);
    else if (X509_cmp_current_time(X509_get0_notBefore(out->cert)) > 0)
        append(warn, warn_len, "%s%s: certificate is not yet valid", warn[0] ? "; " : "", name);
    return 1;
}

// SNI (RFC 6066 §3): the certificate whose SAN dNSName or CN matches the name exactly, else one
// whose wildcard covers it (one label deep: *.example.com covers a.example.com only), else the
// default already on the SSL. With strict_sni (HAProxy's strict-sni) no default: a ClientHello
// without SNI or with a name no certificate covers gets a fatal unrecognized_name alert.
static int pick_certificate(SSL *ssl, int *alert, void *arg) {
    const ctls_ctx_data *d = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!d->strict_sni && (name == NULL || d->cert_count < 2)) return SSL_TLSEXT_ERR_OK;
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    if (name == NULL) return SSL_TLSEXT_ERR_ALERT_FATAL;
    const unsigned int passes[2] = {
        X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT | X509_CHECK_FLAG_NO_WILDCARDS,
        X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
    };
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < d->cert_count; i++) {
            if (X509_check_host(d->certs[i].cert, name, 0, passes[pass], NULL) != 1) continue;
            if (i > 0) {
                const ctls_cert *c = &d->certs[i];
                SSL_use_cert_and_key(ssl, c->cert, c->key, c->chain, 1);
            }
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return d->strict_sni ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_OK;
}

// ALPN (RFC 7301 §3.2): the first of our protocols the client offers; none in common means no
// ALPN extension in the answer (as HAProxy), not a failed handshake.
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    const ctls_ctx_data *d = arg;
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, d->alpn, d->alpn_len, in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

// "mqtt,x-amzn-mqtt-ca" -> "\x04mqtt\x0fx-amzn-mqtt-ca"
static int alpn_wire(const char *list, unsigned char *wire, unsigned *wire_len) {
    size_t n = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > 255 || n + 1 + len > 255) return 0;
        wire[n++] = (unsigned char)len;
        memcpy(wire + n, p, len);
        n += len;
        p += len + (comma ? 1 : 0);
    }
    *wire_len = (unsigned)n;
    return n > 0;
}

static SSL_CTX *fail(SSL_CTX *ctx, char *err, size_t err_len, const char *what,
                     const char *reason) {
    snprintf(err, err_len, "%s: %s", what, reason);
    SSL_CTX_free(ctx);   // frees the ctls_ctx_data through its ex_data callback
    return NULL;
}

// What server and client contexts set alike. Each returns 0 after `fail` (context freed).
static int load_crl(SSL_CTX *ctx, const char *crl_file, char *err, size_t err_len) {
    if (crl_file == NULL) return 1;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == NULL || X509_load_crl_file(lookup, crl_file, X509_FILETYPE_PEM) <= 0) {
        fail(ctx, err, err_len, base_name(crl_file), openssl_reason("no CRL"));
        return 0;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return 1;
}

static int set_versions_and_ciphers(SSL_CTX *ctx, int min_version, int max_version,
                                    const char *ciphers, const char *ciphersuites,
                                    char *err, size_t err_len) {
    const char *what = NULL, *reason = NULL;
    if (min_version && !SSL_CTX_set_min_proto_version(ctx, min_version))
        what = "ssl-min-ver", reason = "unsupported";
    else if (max_version && !SSL_CTX_set_max_proto_version(ctx, max_version))
        what = "ssl-max-ver", reason = "unsupported";
    else if (ciphers && !SSL_CTX_set_cipher_list(ctx, ciphers))
        what = "ciphers", reason = "no cipher match";
    else if (ciphersuites && !SSL_CTX_set_ciphersuites(ctx, ciphersuites))
        what = "ciphersuites", reason = "no cipher match";
    if (what == NULL) return 1;
    fail(ctx, err, err_len, what, openssl_reason(reason));
    return 0;
}

SSL_CTX *ctls_server_ctx_new(const ctls_server_options *o, char *err, size_t err_len) {
    pthread_once(&once, init_once);
    char warn[512] = "";
    if (err_len) err[0] = 0;
    ERR_clear_error();
    if (o->cert_count == 0) {
        snprintf(err, err_len, "no certificate given");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, err_len, "SSL_CTX_new: %s", openssl_reason("out of memory"));
        return NULL;
    }
    ctls_ctx_data *d = calloc(1, sizeof(*d) + o->cert_count * sizeof(ctls_cert));
    if (d == NULL || !SSL_CTX_set_ex_data(ctx, ctx_index, d)) {
        free(d);
        return fail(ctx, err, err_len, "ctx", "out of memory");
    }

    for (size_t i = 0; i < o->cert_count; i++) {
        d->cert_count = i + 1;   // freed from here on, whatever happens next
        if (!load_cert_file(o->cert_files[i], &d->certs[i], err, err_len, warn, sizeof(warn))) {
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    const ctls_cert *first = &d->certs[0];
    if (!SSL_CTX_use_cert_and_key(ctx, first->cert, first->key, first->chain, 1))
        return fail(ctx, err, err_len, base_name(o->cert_files[0]), openssl_reason("unusable"));
    d->strict_sni = o->strict_sni;
    if (o->cert_count > 1 || o->strict_sni) {
        SSL_CTX_set_tlsext_servername_callback(ctx, pick_certificate);
        SSL_CTX_set_tlsext_servername_arg(ctx, d);
    }

    // Client certificates. HAProxy: `verify optional` asks for one and checks what comes;
    // `required` refuses a handshake without one.
    if (o->verify != CTLS_VERIFY_NONE) {
        if (o->ca_file == NULL)
            return fail(ctx, err, err_len, "verify", "needs a ca-file");
        int mode = SSL_VERIFY_PEER;
        if (o->verify == CTLS_VERIFY_REQUIRED) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
    }
    if (o->ca_file) {
        if (!SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL))
            return fail(ctx, err, err_len, base_name(o->ca_file), openssl_reason("unreadable"));
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
        if (names == NULL)
            return fail(ctx, err, err_len, base_name(o->ca_file), openssl_reason("no CA"));
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (!load_crl(ctx, o->crl_file, err, err_len)) return NULL;

    if (!set_versions_and_ciphers(ctx, o->min_version, o->max_version, o->ciphers, o->ciphersuites, err, err_len))
        return NULL;
    if (o->curves && !SSL_CTX_set1_groups_list(ctx, o->curves))
        return fail(ctx, err, err_len, "curves", openssl_reason("unknown group"));
    if (o->sigalgs && !SSL_CTX_set1_sigalgs_list(ctx, o->sigalgs))
        return fail(ctx, err, err_len, "sigalgs", openssl_reason("unknown signature algorithm"));
    if (o->client_sigalgs && !SSL_CTX_set1_client_sigalgs_list(ctx, o->client_sigalgs))
        return fail(ctx, err, err_len, "client-sigalgs", openssl_reason("unknown signature algorithm"));
    if (o->alpn) {
        if (!alpn_wire(o->alpn, d->alpn, &d->alpn_len))
            return fail(ctx, err, err_len, "alpn", "empty or too long protocol name");
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, d);
    }

    // Sessions: a bounded cache per context, and tickets whose keys OpenSSL draws at random
    // when the context is made. They are never reused by another context, so a reload (a new
    // context) rotates them; tickets live session_timeout_s. TLS 1.3 with tickets off falls
    // back to stateful tickets from the cache (OpenSSL's SSL_OP_NO_TICKET, as HAProxy).
    static const unsigned char session_context[] = "ringproxy";
    SSL_CTX_set_session_id_context(ctx, session_context, sizeof(session_context) - 1);
    if (o->session_cache_size > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, o->session_cache_size);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    SSL_CTX_set_timeout(ctx, o->session_timeout_s > 0 ? o->session_timeout_s : 300);

    uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
    if (!o->prefer_client_ciphers) options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!o->tickets) options |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, options);
    long mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
    if (o->release_buffers) mode |= SSL_MODE_RELEASE_BUFFERS;
    SSL_CTX_set_mode(ctx, mode);

    if (o->keep_traffic_secrets) {
        SSL_CTX_set_keylog_callback(ctx, ctls_keylog);
        SSL_CTX_set_msg_callback(ctx, ctls_message_seen);
    }
    snprintf(err, err_len, "%s", warn);
    return ctx;
}

void ctls_ctx_free(SSL_CTX *ctx) { SSL_CTX_free(ctx); }

// ---- Client contexts (TLS towards the brokers) --------------------------------------------------
// Each worker resumes its own last session with a server: one cell per worker, kept in the
// context and written only by that worker's thread (its SSLs carry the worker's index), so no
// lock is taken. The cells are freed with the context, after its last SSL.
typedef struct ctls_client_data {
    int workers;
    SSL_SESSION *cells[];
} ctls_client_data;

static pthread_once_t client_once = PTHREAD_ONCE_INIT;
static int client_index = -1;

static void client_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    ctls_client_data *d = ptr;
    if (d == NULL) return;
    for (int i = 0; i < d->workers; i++) SSL_SESSION_free(d->cells[i]);
    free(d);
}

static void client_init_once(void) {
    client_index = SSL_CTX_get_ex_new_index(0, "ctls_client_data", NULL, NULL, client_data_free);
}

int ctls_client_data_index(void) {
    pthread_once(&client_once, client_init_once);
    return client_index;
}

// A resumable session arrived (TLS 1.2: at the end of the handshake; TLS 1.3: with each
// NewSessionTicket): it replaces the worker's cell. Returning 1 keeps the reference.
static int client_new_session(SSL *ssl, SSL_SESSION *session) {
    ctls_client_data *d = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctls_client_data_index());
    int w = ctls_conn_worker(ssl);
    if (d == NULL || w < 0 || w >= d->workers) return 0;
    SSL_SESSION_free(d->cells[w]);
    d->cells[w] = session;
    return 1;
}

SSL_SESSION *ctls_client_cached_session(SSL_CTX *ctx, int worker) {
    ctls_client_data *d = SSL_CTX_get_ex_data(ctx, ctls_client_data_index());
    if (d == NULL || worker < 0 || worker >= d->workers) return NULL;
    SSL_SESSION *s = d->cells[worker];
    if (s && !SSL_SESSION_is_resumable(s)) return NULL;
    return s;
}

void ctls_client_forget_session(SSL_CTX *ctx, int worker) {
    ctls_client_data *d = SSL_CTX_get_ex_data(ctx, ctls_client_data_index());
    if (d == NULL || worker < 0 || worker >= d->workers) return;
    SSL_SESSION_free(d->cells[worker]);
    d->cells[worker] = NULL;
}

SSL_CTX *ctls_client_ctx_new(const ctls_client_options *o, char *err, size_t err_len) {
    if (err_len) err[0] = 0;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, err_len, "SSL_CTX_new: %s", openssl_reason("out of memory"));
        return NULL;
    }
    int workers = o->workers > 0 ? o->workers : 1;
    ctls_client_data *d = calloc(1, sizeof(*d) + (size_t)workers * sizeof(SSL_SESSION *));
    if (d == NULL || !SSL_CTX_set_ex_data(ctx, ctls_client_data_index(), d)) {
        free(d);
        return fail(ctx, err, err_len, "ctx", "out of memory");
    }
    d->workers = workers;

    // The broker's certificate: `verify required` checks it against ca-file (and the name,
    // per connection: ctls_client_new); `verify none` takes any.
    if (o->verify == CTLS_VERIFY_REQUIRED) {
        if (o->ca_file == NULL)
            return fail(ctx, err, err_len, "verify", "needs a ca-file");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (o->ca_file && !SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL))
        return fail(ctx, err, err_len, base_name(o->ca_file), openssl_reason("unreadable"));
    if (!load_crl(ctx, o->crl_file, err, err_len)) return NULL;
    // A client certificate for brokers that ask for one (HAProxy's server `crt`).
    if (o->cert_file) {
        char warn[256] = "";
        ctls_cert c = {0};
        if (!load_cert_file(o->cert_file, &c, err, err_len, warn, sizeof(warn))) {
            X509_free(c.cert);
            EVP_PKEY_free(c.key);
            sk_X509_pop_free(c.chain, X509_free);
            SSL_CTX_free(ctx);
            return NULL;
        }
        int ok = SSL_CTX_use_cert_and_key(ctx, c.cert, c.key, c.chain, 1);
        X509_free(c.cert);
        EVP_PKEY_free(c.key);
        sk_X509_pop_free(c.chain, X509_free);
        if (!ok) return fail(ctx, err, err_len, base_name(o->cert_file), openssl_reason("unusable"));
    }
    if (!set_versions_and_ciphers(ctx, o->min_version, o->max_version, o->ciphers, o->ciphersuites, err, err_len))
        return NULL;
    if (o->alpn) {
        unsigned char wire[256];
        unsigned wire_len = 0;
        if (!alpn_wire(o->alpn, wire, &wire_len))
            return fail(ctx, err, err_len, "alpn", "empty or too long protocol name");
        if (SSL_CTX_set_alpn_protos(ctx, wire, wire_len) != 0)
            return fail(ctx, err, err_len, "alpn", openssl_reason("refused"));
    }
    if (o->reuse_sessions) {
        // The sessions live in the cells only: OpenSSL's own client cache is never searched.
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, client_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

void ctls_ctx_disable_tickets(SSL_CTX *ctx) { SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); }
