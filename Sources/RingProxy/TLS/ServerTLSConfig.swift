// What a `server ... ssl` line asks of TLS towards a broker, as plain values in HAProxy's words
// (server options over `default-server`, the global `ssl-server-verify` and
// `ssl-default-server-*`). Nothing here touches OpenSSL or a file: ServerTLSContext does.

/// Where the SNI sent to a server comes from (HAProxy's `sni <expression>`).
public enum ServerSNI: Equatable, Sendable {
    /// `sni str(mqtt.example.com)`: always this name.
    case fixed(String)
    /// `sni ssl_fc_sni`: the name the TLS client sent ringproxy, none when it sent none.
    case clientSNI

    /// `sni` as ringproxy takes it: `str(<name>)` or `ssl_fc_sni`; nil for other expressions.
    public init?(expression text: String) {
        if text == "ssl_fc_sni" {
            self = .clientSNI
            return
        }
        guard text.hasPrefix("str("), text.hasSuffix(")"), text.count > 5 else { return nil }
        self = .fixed(String(text.dropFirst(4).dropLast()))
    }
}

/// The TLS settings of one server.
public struct ServerTLSConfig: Equatable, Sendable {
    /// `verify required` (HAProxy's default, `ssl-server-verify`): the broker's certificate
    /// must chain to `ca-file` and, when a name is known (`verifyhost`, else the SNI), carry it.
    public var verify: TLSVerify = .required
    public var caFile: String?
    public var crlFile: String?
    /// `crt`: a client certificate (with its key) for brokers that ask for one.
    public var certificate: String?
    public var sni: ServerSNI?
    /// `verifyhost`: the name the certificate must carry (else the fixed SNI, if any).
    public var verifyHost: String?
    public var alpn: [String] = []
    public var minVersion: TLSProtocolVersion? = .tls12
    public var maxVersion: TLSProtocolVersion?
    public var ciphers: String?
    public var ciphersuites: String?
    /// Each worker resumes its last session with the server (`no-ssl-reuse` turns it off).
    public var reusesSessions = true
    /// `no-tls-tickets`: resume by session id only.
    public var tickets = true

    public init() {}

    /// The name checked against the broker's certificate, when there is one to check.
    public var nameToVerify: String? {
        guard verify == .required else { return nil }
        if let verifyHost { return verifyHost }
        if case .fixed(let name)? = sni { return name }
        return nil
    }
}
