// EngineConfig+HealthCheck: a server's `check` and its backend's check settings -> the
// engine's HealthCheckConfig: where to connect (`addr`, `port`, `tcp-check connect port`),
// the intervals, the timeouts as HAProxy derives them, the steps (layer 4, tcp-check rules,
// or ringproxy's mqtt-check), and whether the check sends a PROXY header.

extension EngineConfig {
    /// nil when the server is not checked or a setting was refused (reported through `refuse`).
    static func healthCheck(_ server: EffectiveServer, address: SocketAddress, in backend: EffectiveBackend,
                            connectTimeoutDefaultMs: Int, refuse: Refusal) -> HealthCheckConfig? {
        guard server.check else { return nil }
        var steps: [CheckStep] = []
        var connectPort: Int?
        var connectSendProxy = false
        var kind = "layer 4"
        switch backend.healthCheck ?? .layer4 {
        case .layer4:
            break
        case .mqttCheck:
            steps = HealthCheckConfig.mqttSteps
            kind = "mqtt"
        case .tcpCheck:
            kind = backend.tcpCheckRules.isEmpty ? "layer 4" : "tcp-check"
            for rule in backend.tcpCheckRules {
                switch rule.action {
                case .connect(let port, let sendProxy):
                    connectPort = port
                    connectSendProxy = sendProxy
                case .send(let bytes): steps.append(.send(bytes))
                case .expect(let bytes): steps.append(.expect(bytes))
                case .comment: break
                }
            }
        }
        var target = address
        if let host = server.checkAddress {
            do {
                target = try SocketAddress.parse("\(host.contains(":") ? "[\(host)]" : host):\(address.port)")
            } catch {
                refuse(server.location, "addr", "\(error)", "give an IP address")
                return nil
            }
        }
        if let port = connectPort ?? server.checkPort { target = target.withPort(UInt16(port)) }
        // HAProxy runs the checks of an `ssl` server over TLS unless they go elsewhere
        // (`port`/`addr`); a layer-4 check sends nothing, so only checks with steps care.
        if server.tls != nil && !steps.isEmpty && server.checkPort == nil && server.checkAddress == nil && connectPort == nil {
            refuse(server.location, "check", "\(kind) checks over TLS are not implemented yet",
                   "check with a layer-4 connect ('option tcp-check' without rules), or give the check a plain listener with 'port'")
            return nil
        }
        // HAProxy sends the PROXY header on checks with `check-send-proxy`, or by default when
        // the server takes one and the check goes to the service itself (no `port`/`addr`).
        let sendsProxy = server.checkSendProxy || connectSendProxy
            || (server.sendProxy != nil && server.checkPort == nil && server.checkAddress == nil && connectPort == nil)
        // configuration.txt, `timeout check`: with it, the connect is bounded by
        // min(timeout connect, inter) and the rest by `timeout check`; without it, inter bounds both.
        let inter = server.interMs
        let connectTimeoutMs = backend.timeouts.checkMs.map { _ in min(backend.timeouts.connectMs ?? connectTimeoutDefaultMs, inter) } ?? inter
        return HealthCheckConfig(
            address: target, interMs: inter, fastinterMs: server.fastinterMs, downinterMs: server.downinterMs,
            rise: server.rise, fall: server.fall, connectTimeoutMs: connectTimeoutMs,
            readTimeoutMs: backend.timeouts.checkMs ?? inter, steps: steps,
            sendProxy: sendsProxy ? (server.sendProxy ?? .v1) : nil, kind: kind)
    }
}
