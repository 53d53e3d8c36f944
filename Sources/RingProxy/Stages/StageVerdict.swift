// StageVerdict: what a front stage says about the bytes a connection has sent so far. Every
// stage (PROXY header in, TLS handshake, WebSocket upgrade, MQTT CONNECT) is a pure parser
// over the held bytes that returns one of these; the worker's preamble step acts on it.

/// Which stage refused a connection, and why (the stage's own reason code), so that rejections
/// are counted and logged per stage and reason.
struct StageRejection: Equatable {
    var stage: FrontStages
    var code: UInt8
}

enum StageVerdict<Output> {
    /// The bytes so far are a valid beginning; wait for more (bounded by the stage's limit and
    /// the inspect delay). `atLeast`: the held bytes below which the stage cannot decide (0:
    /// unknown), so that a message dribbled in small segments is gathered and parsed once it
    /// is all there, not once per segment.
    case needMore(atLeast: Int = 0)
    /// Not what this listener accepts: the connection is closed, nothing is forwarded.
    case reject(StageRejection)
    /// The stage is done. Its first `consumedBytes` bytes are its own and are not forwarded
    /// (a PROXY header in, a WebSocket upgrade request); the rest stays held for the next stage
    /// and, in the end, the server.
    case complete(consumedBytes: Int, Output)
}
