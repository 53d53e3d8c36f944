// Worker+Counters: the worker's own counters (one word per Counter, bumped in place on the
// loop's thread) and the snapshot statistics() takes of them from another thread.

extension Worker {
    @inline(__always)
    func count(_ counter: Counter, _ n: UInt64 = 1) { counters[counter.rawValue] &+= n }

    /// A gauge going down.
    @inline(__always)
    func uncount(_ counter: Counter) { counters[counter.rawValue] &-= 1 }

    @inline(__always)
    func raise(_ counter: Counter, to value: Int) {
        if UInt64(value) > counters[counter.rawValue] { counters[counter.rawValue] = UInt64(value) }
    }

    func statistics() -> WorkerStatistics {
        var s = WorkerStatistics()
        s.counters = CounterValues(copying: counters)
        if let pool {
            s.counters[.buffersInUse] = UInt64(pool.inUse)
            s.counters[.buffersInUseMax] = UInt64(pool.inUseMax)
            s.counters[.ownedBuffersInUse] = UInt64(pool.ownedInUse)
        }
        s.mqttRejectedByReason = (0..<32).map { reason in (0..<max(1, frontendCount)).reduce(0) { $0 &+ rejectCounts[$1 * 32 + reason] } }
        s.threadAllocatedBytes = allocatedCounter.map { Int64(bitPattern: $0.pointee) } ?? -1
        return s
    }

    /// Not-MQTT rejections of frontend `f` per MQTTPeek.InvalidReason raw value.
    func mqttRejections(frontend f: Int) -> [UInt64] {
        (0..<32).map { rejectCounts[f * 32 + $0] }
    }
}
