// The kernel TLS hand-off without socket BIOs: the probe for TCP_ULP "tls", the traffic
// secrets kept from the keylog callback (TLS 1.3), and the key, IV/salt and record sequence
// each direction would give setsockopt(SOL_TLS, TLS_TX/TLS_RX). Runs once per connection.
#define _GNU_SOURCE
#include "internal.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

// ---- The probe -------------------------------------------------------------------------------
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_supported;
static char probe_reason[160];

static void probe(void) {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int server = -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    if (listener < 0 || client < 0
        || bind(listener, (struct sockaddr *)&a, sizeof(a)) != 0
        || listen(listener, 1) != 0
        || getsockname(listener, (struct sockaddr *)&a, &alen) != 0
        || connect(client, (struct sockaddr *)&a, sizeof(a)) != 0
        || (server = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        snprintf(probe_reason, sizeof(probe_reason), "loopback TCP pair: %s", strerror(errno));
    } else if (setsockopt(server, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
        int e = errno;
        snprintf(probe_reason, sizeof(probe_reason), "setsockopt(TCP_ULP, \"tls\"): %s%s",
                 strerror(e), e == ENOENT ? " (kernel without CONFIG_TLS)" : "");
    } else {
        probe_supported = 1;
        snprintf(probe_reason, sizeof(probe_reason), "TCP_ULP tls available");
    }
    // Closed with a reset (linger 0): no TIME_WAIT keeps the pair's two ephemeral ports from
    // the connects that follow (a small ip_local_port_range, a source pool).
    struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
    if (server >= 0) {
        setsockopt(server, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
        close(server);
    }
    if (client >= 0) {
        setsockopt(client, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
        close(client);
    }
    if (listener >= 0) close(listener);
}

int ctls_ktls_supported(char *reason, size_t len) {
    pthread_once(&probe_once, probe);
    if (reason && len) snprintf(reason, len, "%s", probe_reason);
    return probe_supported;
}

// ---- Secrets and key changes seen during the handshake ---------------------------------------
static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// NSS key log format: "<LABEL> <client random hex> <secret hex>".
static uint8_t parse_secret(const char *line, uint8_t *secret) {
    const char *hex = strrchr(line, ' ');
    if (hex == NULL) return 0;
    hex++;
    size_t n = strlen(hex) / 2;
    if (n > EVP_MAX_MD_SIZE) return 0;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return 0;
        secret[i] = (uint8_t)(hi << 4 | lo);
    }
    return (uint8_t)n;
}

static int has_label(const char *line, const char *label) {
    size_t n = strlen(label);
    return strncmp(line, label, n) == 0 && line[n] == ' ';
}

// OpenSSL logs a traffic secret as it installs the keys (RFC 8446 §7.1): the server's after its
// Finished is in the BIO, the client's after the client's Finished was read. Both directions
// are then at a record boundary, and the first record under the new keys has sequence 0.
void ctls_keylog(const SSL *ssl, const char *line) {
    ctls_conn *c = ctls_conn_of(ssl);
    if (c == NULL) return;
    if (has_label(line, "SERVER_TRAFFIC_SECRET_0")) {
        c->server_secret_len = parse_secret(line, c->server_secret);
        c->tx.records = 0;
        c->tx.application_keys = 1;
    } else if (has_label(line, "CLIENT_TRAFFIC_SECRET_0")) {
        c->client_secret_len = parse_secret(line, c->client_secret);
        c->rx.records = 0;
        c->rx.application_keys = 1;
    }
}

// A KeyUpdate (RFC 8446 §4.6.3) moves a direction to secret N+1, which this hand-off does not
// follow: the direction is marked and ctls_ktls_crypto_info refuses it.
void ctls_message_seen(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg) {
    (void)version; (void)arg;
    if (content_type != SSL3_RT_HANDSHAKE || len < 1) return;
    if (((const unsigned char *)buf)[0] != SSL3_MT_KEY_UPDATE) return;
    ctls_conn *c = ctls_conn_of(ssl);
    if (c == NULL) return;
    if (write_p) c->tx.key_updated = 1;
    else c->rx.key_updated = 1;
}

// ---- Key derivation --------------------------------------------------------------------------
// RFC 8446 §7.1 HKDF-Expand-Label(secret, label, "", length), HkdfLabel built here and
// expanded with the cipher's hash by OpenSSL's HKDF in expand-only mode.
static int expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len,
                        const char *label, uint8_t *out, size_t out_len) {
    uint8_t info[2 + 1 + 255 + 1];
    size_t label_len = strlen(label);
    size_t n = 0;
    info[n++] = (uint8_t)(out_len >> 8);
    info[n++] = (uint8_t)out_len;
    info[n++] = (uint8_t)(6 + label_len);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, label_len);
    n += label_len;
    info[n++] = 0;   // empty context
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = kctx && EVP_KDF_derive(kctx, out, out_len, params) > 0;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return ok;
}

// RFC 5246 §6.3: key_block = PRF(master_secret, "key expansion", server_random + client_random),
// the PRF with the cipher suite's hash.
static int key_block(SSL *ssl, const EVP_MD *md, uint8_t *out, size_t out_len) {
    uint8_t master[SSL_MAX_MASTER_KEY_LENGTH];
    size_t master_len = SSL_SESSION_get_master_key(SSL_get_session(ssl), master, sizeof(master));
    uint8_t seed[13 + 2 * SSL3_RANDOM_SIZE];
    memcpy(seed, "key expansion", 13);
    SSL_get_server_random(ssl, seed + 13, SSL3_RANDOM_SIZE);
    SSL_get_client_random(ssl, seed + 13 + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master, master_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed)),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = master_len > 0 && kctx && EVP_KDF_derive(kctx, out, out_len, params) > 0;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    OPENSSL_cleanse(master, sizeof(master));
    return ok;
}

static void put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

static void increment_be64(unsigned char *p) {
    for (int i = 7; i >= 0; i--)
        if (++p[i] != 0) break;
}

size_t ctls_ktls_crypto_info(SSL *ssl, int tx, ctls_crypto_info *ci) {
    ctls_conn *c = ctls_conn_of(ssl);
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    if (c == NULL || cipher == NULL || !SSL_is_init_finished(ssl)) {
        ctls_set_error("handshake not finished");
        return 0;
    }
    ctls_stream *s = tx ? &c->tx : &c->rx;
    if (s->key_updated) {
        ctls_set_error("a KeyUpdate changed the %s keys", tx ? "TX" : "RX");
        return 0;
    }
    // The kernel starts at a record boundary: nothing half in `out` or sealed and waiting
    // (TX), nothing half read or decrypted and not yet taken (RX).
    if (s->body_left != 0 || s->header_have != 0) {
        ctls_set_error("%s is in the middle of a record", tx ? "TX" : "RX");
        return 0;
    }
    if (tx ? SSL_want_write(ssl) : SSL_has_pending(ssl)) {
        ctls_set_error("%s", tx ? "a record is waiting to be written" : "received data is waiting to be read");
        return 0;
    }
    int nid = SSL_CIPHER_get_cipher_nid(cipher);
    size_t key_len;
    int gcm = 1;
    uint16_t cipher_type;
    switch (nid) {
    case NID_aes_128_gcm: key_len = 16; cipher_type = TLS_CIPHER_AES_GCM_128; break;
    case NID_aes_256_gcm: key_len = 32; cipher_type = TLS_CIPHER_AES_GCM_256; break;
    case NID_chacha20_poly1305:
        key_len = 32; gcm = 0; cipher_type = TLS_CIPHER_CHACHA20_POLY1305; break;
    default:
        ctls_set_error("%s: no kernel TLS cipher", SSL_CIPHER_get_name(cipher));
        return 0;
    }
    const EVP_MD *md = SSL_CIPHER_get_handshake_digest(cipher);
    int version = SSL_version(ssl);
    uint8_t key[32], iv[12];   // iv: the 12-byte nonce base; TLS 1.2 GCM uses its first 4
    if (version == TLS1_3_VERSION) {
        const uint8_t *secret = tx ? c->server_secret : c->client_secret;
        size_t secret_len = tx ? c->server_secret_len : c->client_secret_len;
        if (secret_len == 0) {
            ctls_set_error("no TLS 1.3 traffic secret kept (keep_traffic_secrets off)");
            return 0;
        }
        if (!expand_label(md, secret, secret_len, "key", key, key_len)
            || !expand_label(md, secret, secret_len, "iv", iv, 12)) {
            ctls_set_error("HKDF-Expand-Label failed");
            return 0;
        }
    } else if (version == TLS1_2_VERSION) {
        // AEAD key block (RFC 5288 §3, RFC 7905 §2): client key, server key, client IV,
        // server IV; no MAC keys. The IV is the 4-byte salt for GCM, 12 bytes for ChaCha20.
        size_t iv_len = gcm ? 4 : 12;
        uint8_t block[2 * 32 + 2 * 12];
        if (!key_block(ssl, md, block, 2 * key_len + 2 * iv_len)) {
            ctls_set_error("TLS 1.2 key block derivation failed");
            return 0;
        }
        memcpy(key, block + (tx ? key_len : 0), key_len);
        memcpy(iv, block + 2 * key_len + (tx ? iv_len : 0), iv_len);
        OPENSSL_cleanse(block, sizeof(block));
    } else {
        ctls_set_error("%s: no kernel TLS", SSL_get_version(ssl));
        return 0;
    }

    memset(ci, 0, sizeof(*ci));
    ci->info.version = version == TLS1_3_VERSION ? TLS_1_3_VERSION : TLS_1_2_VERSION;
    ci->info.cipher_type = cipher_type;
    unsigned char seq[8];
    put_be64(seq, s->records);
    // The kernel's 8-byte `iv` for GCM: in TLS 1.3 the nonce base after the salt; in TLS 1.2
    // the explicit nonce of the next record (RFC 5288 §3). OpenSSL counts that nonce up from
    // a random start, so the next one is the last record's plus one.
    unsigned char explicit_nonce[8];
    memcpy(explicit_nonce, s->nonce, 8);
    increment_be64(explicit_nonce);
    const unsigned char *gcm_iv = version == TLS1_3_VERSION ? iv + 4 : explicit_nonce;
    size_t len;
    switch (cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
        memcpy(ci->aes_gcm_128.key, key, 16);
        memcpy(ci->aes_gcm_128.salt, iv, 4);
        memcpy(ci->aes_gcm_128.iv, gcm_iv, 8);
        memcpy(ci->aes_gcm_128.rec_seq, seq, 8);
        len = sizeof(ci->aes_gcm_128);
        break;
    case TLS_CIPHER_AES_GCM_256:
        memcpy(ci->aes_gcm_256.key, key, 32);
        memcpy(ci->aes_gcm_256.salt, iv, 4);
        memcpy(ci->aes_gcm_256.iv, gcm_iv, 8);
        memcpy(ci->aes_gcm_256.rec_seq, seq, 8);
        len = sizeof(ci->aes_gcm_256);
        break;
    default:
        memcpy(ci->chacha20_poly1305.key, key, 32);
        memcpy(ci->chacha20_poly1305.iv, iv, 12);
        memcpy(ci->chacha20_poly1305.rec_seq, seq, 8);
        len = sizeof(ci->chacha20_poly1305);
        break;
    }
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(iv, sizeof(iv));
    return len;
}

// ---- close_notify on a kTLS socket -------------------------------------------------------------
void ctls_ktls_alert_init(ctls_ktls_alert *a) {
    memset(a, 0, sizeof(*a));
    a->payload[0] = 1;   // warning (RFC 8446 §6: close_notify is sent as a warning alert)
    a->payload[1] = 0;   // close_notify
    a->iov.iov_base = a->payload;
    a->iov.iov_len = sizeof(a->payload);
    a->msg.msg_iov = &a->iov;
    a->msg.msg_iovlen = 1;
    a->msg.msg_control = a->control.bytes;
    a->msg.msg_controllen = sizeof(a->control.bytes);
    struct cmsghdr *c = CMSG_FIRSTHDR(&a->msg);
    c->cmsg_level = SOL_TLS;
    c->cmsg_type = TLS_SET_RECORD_TYPE;
    c->cmsg_len = CMSG_LEN(1);
    *CMSG_DATA(c) = 21;   // content type alert (RFC 8446 §5.1)
}
