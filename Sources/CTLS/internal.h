// What the CTLS files share and Swift never sees: the per-SSL state (record counters and the
// kept traffic secrets) and the ex_data indexes that attach it.
#ifndef CTLS_INTERNAL_H
#define CTLS_INTERNAL_H
#include "CTLS.h"

// Record boundaries in one direction of the byte stream the BIO passes, so the kTLS hand-off
// knows the sequence number of the next record under the current keys.
typedef struct ctls_stream {
    uint64_t records;          // records started under the current keys
    uint32_t body_left;        // bytes of the current record's body still to pass
    uint8_t header[5];
    uint8_t header_have;
    uint8_t nonce[8];          // TLS 1.2 AES-GCM: the explicit nonce of the last record
    uint8_t nonce_have;
    uint8_t application_keys;  // TLS 1.3 application keys are in use: a CCS no longer resets
    uint8_t key_updated;       // a KeyUpdate changed this direction's keys: no hand-off
} ctls_stream;

typedef struct ctls_conn {
    ctls_stream tx, rx;
    uint8_t client_secret[EVP_MAX_MD_SIZE];   // TLS 1.3 CLIENT_TRAFFIC_SECRET_0
    uint8_t server_secret[EVP_MAX_MD_SIZE];   // TLS 1.3 SERVER_TRAFFIC_SECRET_0
    uint8_t client_secret_len, server_secret_len;
    int worker;                               // a client SSL's worker (its resumption cell)
} ctls_conn;

int ctls_conn_index(void);                   // SSL ex_data index of the ctls_conn
ctls_conn *ctls_conn_of(const SSL *ssl);
int ctls_conn_worker(const SSL *ssl);        // -1 for server SSLs
int ctls_client_data_index(void);            // SSL_CTX ex_data index of a client context's cells
void ctls_set_error(const char *fmt, ...);   // the text ctls_error_reason() returns

// ctx side (context.c)
void ctls_keylog(const SSL *ssl, const char *line);
void ctls_message_seen(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg);
#endif
