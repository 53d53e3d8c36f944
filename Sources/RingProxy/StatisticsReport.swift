// StatisticsReport: the operator's text view of EngineStatistics (SIGUSR1, shutdown). Every
// counter appears under its operator name, from the one list in Stats.swift.
import MQTTPeek

public struct StatisticsReport {
    public let text: String

    public init(_ stats: EngineStatistics) {
        var lines: [String] = []
        let t = stats.total
        lines.append("stats: " + Counter.allCases.map { "\($0.info.name)=\(t[$0])" }.joined(separator: " "))
        let reasons = t.mqttRejectedByReason.enumerated().filter { $0.element > 0 }
        if !reasons.isEmpty {
            lines.append("  mqtt rejections by reason: " + reasons.map { "\(InvalidReason(rawValue: UInt8($0.offset)).map { "\($0)" } ?? "\($0.offset)")=\($0.element)" }.joined(separator: " "))
        }
        for (i, w) in stats.workers.enumerated() {
            lines.append("  worker \(i): active=\(w[.active]) accepted=\(w[.accepted]) loop_turns=\(w[.loopTurns]) completions=\(w[.completions])")
        }
        for server in stats.servers {
            lines.append("  \(server.backend)/\(server.server) \(server.address): active=\(server.active) total=\(server.total)")
        }
        text = lines.joined(separator: "\n")
    }
}
