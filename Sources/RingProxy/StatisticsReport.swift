// StatisticsReport: the operator's text view of EngineStatistics (SIGUSR1, shutdown).
public struct StatisticsReport {
    public let text: String

    public init(_ stats: EngineStatistics, config: EngineConfig) {
        var lines: [String] = []
        let t = stats.total
        lines.append("stats: active=\(t.active) accepted=\(t.accepted) closed=\(t.closed) refused_maxconn=\(t.refusedMaxconn) "
                     + "connect_failures=\(t.connectFailures) connect_timeouts=\(t.connectTimeouts) give_ups=\(t.connectGiveUps) "
                     + "resets=\(t.resets) client_timeouts=\(t.clientTimeouts) server_timeouts=\(t.serverTimeouts) "
                     + "bytes_in=\(t.bytesFromClients) bytes_out=\(t.bytesFromServers) buffers_in_use=\(t.buffersInUse) "
                     + "buffers_in_use_max=\(t.buffersInUseMax) pipe_buffers_max=\(t.pipeBuffersMax) no_buffers=\(t.noBuffers) "
                     + "sends=\(t.sendCompletions) gathered_sends=\(t.gatheredSends) short_sends=\(t.shortSends) "
                     + "close_cancels=\(t.cancelsByUserData)/\(t.cancelsByFile) (by user_data/by file)")
        lines.append("  mqtt: connects=\(t.mqttConnects) rejected=\(t.mqttRejected) inspect_timeouts=\(t.inspectTimeouts) "
                     + "inspect_aborts=\(t.inspectAborts) stick_hits=\(t.stickHits) stick_misses=\(t.stickMisses)")
        for (i, w) in stats.workers.enumerated() {
            lines.append("  worker \(i): active=\(w.active) accepted=\(w.accepted) loop_turns=\(w.loopTurns) completions=\(w.completions)")
        }
        for (b, backend) in config.backends.enumerated() {
            for (s, server) in backend.servers.enumerated() {
                lines.append("  \(backend.name)/\(server.name) \(server.address): active=\(stats.serverActive[b][s]) total=\(stats.serverTotal[b][s])")
            }
        }
        text = lines.joined(separator: "\n")
    }
}
