// One `bind ... ssl` line's SSL_CTX: built from a TLSBindConfig at start-up or reload, shared by
// the workers (its ticket keys and session cache are then common to all cores), freed when the
// last connection made from it is gone. Building it is the only place TLS reads files.
import CTLS
import Glibc

/// Why a TLS context could not be made, in the operator's terms: "server.pem: no private key".
public struct TLSError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public final class TLSContext {
    public let config: TLSBindConfig
    /// Problems that do not stop the context: "server.pem: certificate has expired".
    public let warnings: [String]
    /// The SSL_CTX.
    let handle: OpaquePointer

    public init(_ config: TLSBindConfig) throws(TLSError) {
        let files = try TLSContext.certificateFiles(config.certificatePaths)
        var errorText = [CChar](repeating: 0, count: 512)
        let made: OpaquePointer? = withCStrings(files) { paths in
            withOptionalCString(config.caFile) { ca in
            withOptionalCString(config.crlFile) { crl in
            withOptionalCString(config.ciphers) { ciphers in
            withOptionalCString(config.ciphersuites) { suites in
            withOptionalCString(config.curves) { curves in
            withOptionalCString(config.alpn.isEmpty ? nil : config.alpn.joined(separator: ",")) { alpn in
            withOptionalCString(config.sigalgs) { sigalgs in
            withOptionalCString(config.clientSigalgs) { clientSigalgs in
                var o = ctls_server_options()
                o.cert_files = paths.baseAddress
                o.cert_count = paths.count
                o.ca_file = ca
                o.crl_file = crl
                o.verify = config.verify.code
                o.min_version = config.minVersion?.wireValue ?? 0
                o.max_version = config.maxVersion?.wireValue ?? 0
                o.ciphers = ciphers
                o.ciphersuites = suites
                o.curves = curves
                o.alpn = alpn
                o.session_cache_size = config.sessionCacheEntriesMax
                o.session_timeout_s = config.sessionLifetimeS
                o.tickets = config.tickets ? 1 : 0
                o.release_buffers = config.releasesBuffers ? 1 : 0
                o.keep_traffic_secrets = config.keepsTrafficSecrets ? 1 : 0
                o.prefer_client_ciphers = config.preferClientCiphers ? 1 : 0
                o.strict_sni = config.strictSNI ? 1 : 0
                o.sigalgs = sigalgs
                o.client_sigalgs = clientSigalgs
                return ctls_server_ctx_new(&o, &errorText, errorText.count)
            }}}}}}}}
        }
        let text = String(cString: errorText)
        guard let made else { throw TLSError(text) }
        self.handle = made
        self.config = config
        self.warnings = text.isEmpty ? [] : text.components(separatedBy: "; ")
    }

    deinit { ctls_ctx_free(handle) }

    /// A server connection whose records pass through `io` (the worker's, shared by all its
    /// connections). Allocates (OpenSSL's SSL, one BIO, the record counters): once per accept.
    public func makeSession(io: UnsafeMutablePointer<ctls_io>) -> TLSSession? {
        guard let ssl = ctls_server_new(handle, io) else { return nil }
        return TLSSession(ssl: ssl)
    }

    /// `crt` entries with directories expanded (HAProxy loads every file of a `crt` directory
    /// except its .key/.ocsp/.issuer/.sctl companions), in name order.
    static func certificateFiles(_ paths: [String]) throws(TLSError) -> [String] {
        var files: [String] = []
        for path in paths {
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw TLSError("\(path): \(String(cString: strerror(errno)))")
            }
            guard (st.st_mode & S_IFMT) == S_IFDIR else { files.append(path); continue }
            guard let dir = opendir(path) else {
                throw TLSError("\(path): \(String(cString: strerror(errno)))")
            }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name.hasPrefix(".") { continue }
                if [".key", ".ocsp", ".issuer", ".sctl"].contains(where: { name.hasSuffix($0) }) { continue }
                names.append(name)
            }
            closedir(dir)
            guard !names.isEmpty else { throw TLSError("\(path): no certificate in directory") }
            files += names.sorted().map { path.hasSuffix("/") ? path + $0 : path + "/" + $0 }
        }
        guard !files.isEmpty else { throw TLSError("crt: no certificate given") }
        return files
    }
}

extension TLSVerify {
    var code: Int32 {
        switch self {
        case .none: return Int32(CTLS_VERIFY_NONE)
        case .optional: return Int32(CTLS_VERIFY_OPTIONAL)
        case .required: return Int32(CTLS_VERIFY_REQUIRED)
        }
    }
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

/// The strings as a C array of `const char *`, alive for the call.
private func withCStrings<R>(_ strings: [String],
                             _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0) }
}
