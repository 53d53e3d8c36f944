// One `server ... ssl` line's client SSL_CTX: built at start-up or reload from a ServerTLSConfig,
// shared by the generation's workers, each of which keeps its own last session with the server
// in it (resumption without a lock). Freed when the last connection made from it is gone.
import CTLS
import Glibc

public final class ServerTLSContext {
    public let config: ServerTLSConfig
    /// The SSL_CTX.
    let handle: OpaquePointer

    public init(_ config: ServerTLSConfig, workers: Int) throws(TLSError) {
        var errorText = [CChar](repeating: 0, count: 512)
        let made: OpaquePointer? = withOptional(config.caFile) { ca in
            withOptional(config.crlFile) { crl in
            withOptional(config.certificate) { certificate in
            withOptional(config.ciphers) { ciphers in
            withOptional(config.ciphersuites) { suites in
            withOptional(config.alpn.isEmpty ? nil : config.alpn.joined(separator: ",")) { alpn in
                var o = ctls_client_options()
                o.ca_file = ca
                o.crl_file = crl
                o.cert_file = certificate
                o.verify = config.verify == .required ? Int32(CTLS_VERIFY_REQUIRED) : Int32(CTLS_VERIFY_NONE)
                o.min_version = config.minVersion?.wireValue ?? 0
                o.max_version = config.maxVersion?.wireValue ?? 0
                o.ciphers = ciphers
                o.ciphersuites = suites
                o.alpn = alpn
                o.workers = Int32(workers)
                o.reuse_sessions = config.reusesSessions ? 1 : 0
                return ctls_client_ctx_new(&o, &errorText, errorText.count)
            }}}}}
        }
        guard let made else { throw TLSError(String(cString: errorText)) }
        if !config.tickets { ctls_ctx_disable_tickets(made) }
        self.handle = made
        self.config = config
    }

    deinit { ctls_ctx_free(handle) }
}

private func withOptional<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}
