// MQTTConnectStage: the last front stage. The held bytes must start with a complete, valid
// MQTT CONNECT (3.1, 3.1.1, 5.0), parsed by MQTTPeek (zero allocation; fuzzed in
// Tests/Fuzz); its client id then routes the connection. The CONNECT itself is forwarded as
// received, so the stage consumes nothing.
import MQTTPeek

enum MQTTConnectStage {
    @inline(__always)
    static func evaluate(_ bytes: UnsafeRawBufferPointer, connectMaxBytes: Int) -> StageVerdict<ConnectPacket> {
        switch MQTTPeek.parseConnect(bytes, connectMaxBytes: connectMaxBytes) {
        case .needMore(let atLeast): return .needMore(atLeast: atLeast)
        case .invalid(let reason): return .reject(StageRejection(stage: .mqttConnect, code: reason.rawValue))
        case .connect(let packet): return .complete(consumedBytes: 0, packet)
        }
    }
}
