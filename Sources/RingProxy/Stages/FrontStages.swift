// FrontStages: which front stages a listener runs before a server is chosen, and which a
// connection still has to run. Kept apart from the engine's types so that the stages' pure
// parsers (and their fuzz targets) build without the engine.

/// The front stages a listener runs before a server is chosen, in this order. Each is a pure
/// parser over the held bytes (Stages/); a connection keeps the set still to run.
struct FrontStages: OptionSet {
    let rawValue: UInt8
    /// PROXY protocol header in (`accept-proxy`).
    static let proxyHeader = FrontStages(rawValue: 1 << 0)
    /// TLS handshake (`bind ... ssl`).
    static let tlsHandshake = FrontStages(rawValue: 1 << 1)
    /// WebSocket upgrade (HTTP/1.1 request, 101 answer).
    static let webSocketUpgrade = FrontStages(rawValue: 1 << 2)
    /// The first MQTT packet: a valid CONNECT, its client id for routing.
    static let mqttConnect = FrontStages(rawValue: 1 << 3)
}
