// `balance <algorithm> [arguments]`: which algorithm a backend uses to pick a server, and its
// arguments as written. Choosing servers is the engine's job (one file per algorithm there).

/// A backend's load-balancing algorithm and its arguments.
public struct Balance: Sendable, Equatable {
    /// HAProxy's algorithm names.
    public enum Algorithm: String, Sendable, CaseIterable {
        case roundrobin
        case staticRoundRobin = "static-rr"
        case leastconn
        case first
        case source
        case random
        /// `hash <sample expression>`; the expression is in `sample`.
        case hash
        case uri
        case urlParam = "url_param"
        /// `hdr(<name>)`; the header name is the first argument.
        case header = "hdr"
        /// `rdp-cookie[(<name>)]`.
        case rdpCookie = "rdp-cookie"
    }

    /// HAProxy's default when a backend says nothing.
    public static let `default` = Balance(algorithm: .roundrobin, arguments: [], location: nil)

    public var algorithm: Algorithm
    /// Everything after the algorithm name, split into words; a parenthesised argument
    /// (`hdr(Host)`, `random(2)`) comes first.
    public var arguments: [String]
    /// For `hash`: the parsed sample expression.
    public var sample: SampleExpression?
    /// Where the `balance` line is; nil for the built-in default.
    public var location: SourceLocation?
    /// The ringproxy extension the line was written with (`clientid-hash`), if any: it is read
    /// as the HAProxy form it stands for, kept only so `-c` can say so.
    public var writtenAs: String?

    /// `balance clientid-hash`, a ringproxy extension (HAProxy refuses it), stands for this
    /// `balance hash` sample: the MQTT CONNECT's client identifier.
    public static let clientIDHashExtension = "clientid-hash"
    public static let clientIDSample = "req.payload(0,0),mqtt_field_value(connect,client_identifier)"

    public init(algorithm: Algorithm, arguments: [String] = [], sample: SampleExpression? = nil, location: SourceLocation?) {
        self.algorithm = algorithm
        self.arguments = arguments
        self.sample = sample
        self.location = location
    }
}
