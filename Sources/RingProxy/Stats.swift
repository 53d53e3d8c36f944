// Statistics: counters each worker keeps for itself (plain stores, no atomics on the hot
// path) and the engine sums on demand. A reader on another thread may see a value a few
// increments old; that is the price of not synchronising the data path.

public struct WorkerStatistics: Sendable, Equatable {
    public var accepted: UInt64 = 0
    public var acceptErrors: UInt64 = 0
    /// Accepted and closed at once because the global maxconn was reached.
    public var refusedMaxconn: UInt64 = 0
    /// Times a listener stopped accepting because this worker's table was full.
    public var acceptPaused: UInt64 = 0
    public var closed: UInt64 = 0
    public var active: Int = 0
    public var connectAttempts: UInt64 = 0
    public var connectFailures: UInt64 = 0
    public var connectTimeouts: UInt64 = 0
    /// Clients closed because no server could be reached after the retries.
    public var connectGiveUps: UInt64 = 0
    public var clientTimeouts: UInt64 = 0
    public var serverTimeouts: UInt64 = 0
    public var resets: UInt64 = 0
    public var bytesFromClients: UInt64 = 0
    public var bytesFromServers: UInt64 = 0
    public var recvCompletions: UInt64 = 0
    public var sendCompletions: UInt64 = 0
    public var shortSends: UInt64 = 0
    /// Sends that carried several queued buffers in one sendmsg.
    public var gatheredSends: UInt64 = 0
    /// Recvs re-armed when their cancellation completed after the queue had already drained.
    public var recvResumesAfterCancel: UInt64 = 0
    /// Closing: pending recvs cancelled by their user_data, or everything pending by file.
    public var cancelsByUserData: UInt64 = 0
    public var cancelsByFile: UInt64 = 0
    public var recvPauses: UInt64 = 0
    public var noBuffers: UInt64 = 0
    public var buffersInUse: Int = 0
    public var buffersInUseMax: Int = 0
    /// Deepest queue any one pipe reached (buffers one direction held at once).
    public var pipeBuffersMax: Int = 0
    public var loopTurns: UInt64 = 0
    public var completions: UInt64 = 0
    public var staleCompletions: UInt64 = 0
    /// MQTT: CONNECTs accepted, connections rejected as not MQTT (by reason), connections that
    /// did not complete their CONNECT within the inspect delay or closed before it.
    public var mqttConnects: UInt64 = 0
    public var mqttRejected: UInt64 = 0
    public var mqttRejectedByReason: [UInt64] = Array(repeating: 0, count: 32)
    public var inspectTimeouts: UInt64 = 0
    public var inspectAborts: UInt64 = 0
    /// Stick table: client ids found (and their server usable) / not found.
    public var stickHits: UInt64 = 0
    public var stickMisses: UInt64 = 0
    /// Bytes the worker thread has allocated since it started (jemalloc's thread.allocated);
    /// -1 when the allocator is not jemalloc. Flat while forwarding: nothing allocates there.
    public var threadAllocatedBytes: Int64 = -1

    public init() {}

    public static func + (a: WorkerStatistics, b: WorkerStatistics) -> WorkerStatistics {
        var s = WorkerStatistics()
        s.accepted = a.accepted + b.accepted
        s.acceptErrors = a.acceptErrors + b.acceptErrors
        s.refusedMaxconn = a.refusedMaxconn + b.refusedMaxconn
        s.acceptPaused = a.acceptPaused + b.acceptPaused
        s.closed = a.closed + b.closed
        s.active = a.active + b.active
        s.connectAttempts = a.connectAttempts + b.connectAttempts
        s.connectFailures = a.connectFailures + b.connectFailures
        s.connectTimeouts = a.connectTimeouts + b.connectTimeouts
        s.connectGiveUps = a.connectGiveUps + b.connectGiveUps
        s.clientTimeouts = a.clientTimeouts + b.clientTimeouts
        s.serverTimeouts = a.serverTimeouts + b.serverTimeouts
        s.resets = a.resets + b.resets
        s.bytesFromClients = a.bytesFromClients + b.bytesFromClients
        s.bytesFromServers = a.bytesFromServers + b.bytesFromServers
        s.recvCompletions = a.recvCompletions + b.recvCompletions
        s.sendCompletions = a.sendCompletions + b.sendCompletions
        s.shortSends = a.shortSends + b.shortSends
        s.gatheredSends = a.gatheredSends + b.gatheredSends
        s.recvResumesAfterCancel = a.recvResumesAfterCancel + b.recvResumesAfterCancel
        s.cancelsByUserData = a.cancelsByUserData + b.cancelsByUserData
        s.cancelsByFile = a.cancelsByFile + b.cancelsByFile
        s.recvPauses = a.recvPauses + b.recvPauses
        s.noBuffers = a.noBuffers + b.noBuffers
        s.buffersInUse = a.buffersInUse + b.buffersInUse
        s.buffersInUseMax = max(a.buffersInUseMax, b.buffersInUseMax)
        s.pipeBuffersMax = max(a.pipeBuffersMax, b.pipeBuffersMax)
        s.loopTurns = a.loopTurns + b.loopTurns
        s.completions = a.completions + b.completions
        s.staleCompletions = a.staleCompletions + b.staleCompletions
        s.mqttConnects = a.mqttConnects + b.mqttConnects
        s.mqttRejected = a.mqttRejected + b.mqttRejected
        s.mqttRejectedByReason = zip(a.mqttRejectedByReason, b.mqttRejectedByReason).map { $0 + $1 }
        s.inspectTimeouts = a.inspectTimeouts + b.inspectTimeouts
        s.inspectAborts = a.inspectAborts + b.inspectAborts
        s.stickHits = a.stickHits + b.stickHits
        s.stickMisses = a.stickMisses + b.stickMisses
        s.threadAllocatedBytes = a.threadAllocatedBytes < 0 || b.threadAllocatedBytes < 0
            ? max(a.threadAllocatedBytes, b.threadAllocatedBytes)
            : a.threadAllocatedBytes + b.threadAllocatedBytes
        return s
    }
}

public struct EngineStatistics: Sendable {
    public var workers: [WorkerStatistics]
    /// Connections per server, engine-wide: [backend][server].
    public var serverActive: [[Int]]
    public var serverTotal: [[Int]]
    public var total: WorkerStatistics { workers.reduce(WorkerStatistics(), +) }
}
