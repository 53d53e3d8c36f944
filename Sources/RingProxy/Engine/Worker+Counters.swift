// Worker+Counters: the worker's own counters (one word per Counter, bumped in place on the
// loop's thread), the gauges the loop publishes once a turn, and the snapshot statistics()
// takes of them from another thread. Every word has one writer (the loop) and is written and
// read with relaxed atomic stores and loads (plain movs on x86; a defined race for TSan).
import CUring

extension Worker {
    @inline(__always)
    func count(_ counter: Counter, _ n: UInt64 = 1) { cu_word_add(counters + counter.rawValue, n) }

    /// A gauge going down.
    @inline(__always)
    func uncount(_ counter: Counter) { cu_word_add(counters + counter.rawValue, UInt64.max) }

    @inline(__always)
    func raise(_ counter: Counter, to value: Int) {
        if UInt64(value) > cu_word_load(counters + counter.rawValue) { cu_word_store(counters + counter.rawValue, UInt64(value)) }
    }

    /// The loop's own reading of a counter.
    @inline(__always)
    func counted(_ counter: Counter) -> UInt64 { cu_word_load(counters + counter.rawValue) }

    /// A not-MQTT rejection of frontend `f` for MQTTPeek.InvalidReason `code`.
    @inline(__always)
    func countRejection(frontend f: Int, code: Int) { cu_word_add(rejectCounts + f * 32 + code & 31, 1) }

    /// Once a loop turn, before the wait, and when the loop ends: the buffer pool's gauges and
    /// jemalloc's count of this thread's allocations, copied into words other threads may read.
    /// They never read the pool or the allocator's per-thread counter themselves (that counter
    /// dies with the thread; its last value stays published).
    func publishGauges() {
        cu_word_store(counters + Counter.buffersInUse.rawValue, UInt64(pool.inUse))
        cu_word_store(counters + Counter.buffersInUseMax.rawValue, UInt64(pool.inUseMax))
        cu_word_store(counters + Counter.ownedBuffersInUse.rawValue, UInt64(pool.ownedInUse))
        if let allocated = allocatedCounter { cu_word_store(counters + Self.allocatedWord, allocated.pointee) }
    }

    /// The word after the Counters: jemalloc's thread.allocated as published (UInt64.max: none).
    /// A stored constant: `allCases` builds an array each time it is read.
    static let allocatedWord = Counter.allCases.count

    func statistics() -> WorkerStatistics {
        var s = WorkerStatistics()
        s.counters = CounterValues(copying: counters)
        s.mqttRejectedByReason = (0..<32).map { reason in (0..<max(1, frontendCount)).reduce(0) { $0 &+ cu_word_load(rejectCounts + $1 * 32 + reason) } }
        s.threadAllocatedBytes = Int64(bitPattern: cu_word_load(counters + Self.allocatedWord))
        return s
    }

    /// Not-MQTT rejections of frontend `f` per MQTTPeek.InvalidReason raw value.
    func mqttRejections(frontend f: Int) -> [UInt64] {
        (0..<32).map { cu_word_load(rejectCounts + f * 32 + $0) }
    }
}
