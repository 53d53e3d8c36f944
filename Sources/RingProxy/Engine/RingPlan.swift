// RingPlan: how many rings (worker threads, each with its io_uring and fixed-file table) a
// configuration gets, and how many connection slots each has. One ring per CPU unless maxconn
// needs more than that many fixed-file tables hold: a table may be as large as RLIMIT_NOFILE
// (20,000 on the development machine, unraisable), two entries per proxied connection, so a
// million connections need ~128 rings. The extra rings are threads pinned over the same CPUs
// (`--cores`/`nbthread` stays the number of CPUs used); their provided buffers are the CPUs'
// share divided among them, so memory in flight stays what one ring per CPU would have.
import Glibc

public struct RingPlan: Sendable, Equatable {
    /// More rings than this are not made (maxconn is then capped, with a warning).
    public static let ringsMax = 512
    /// The fewest provided buffers a ring gets when buffers are divided among extra rings.
    public static let buffersMin = 64

    public let cpus: Int
    public let rings: Int
    public let slotsPerRing: Int
    public let acceptSlots: Int
    /// Slots one ring's fixed-file table allows (two files per connection).
    public let slotsPerRingMax: Int
    /// Connections the rings hold (their slots minus those kept for armed accepts).
    public var capacity: Int { (slotsPerRing - acceptSlots) * rings }

    public init(cpus: Int, fileLimit: Int, acceptSlots: Int, maxConnections: Int?) {
        self.cpus = max(1, cpus)
        self.acceptSlots = acceptSlots
        let perRingMax = max(16 + acceptSlots, (fileLimit - 16) / 2)
        slotsPerRingMax = perRingMax
        // SO_REUSEPORT spreads connections by hash, not evenly: a ring sized for exactly its
        // share fills up first (measured: 100,000 over 12 rings put 8,170-8,428 on each, and
        // every connection beyond a full ring's share waited in its backlog until the client
        // gave up). Each ring gets a quarter more than its share, an eighth when maxconn needs
        // more rings than CPUs (still eight times the spread measured; the slack is memory:
        // 288 bytes a slot); maxconn stays global.
        let wanted = { (rings: Int, maxconn: Int, slackDivisor: Int) -> Int in
            let share = (maxconn + rings - 1) / rings
            return share + share / slackDivisor + 64 + acceptSlots
        }
        var rings = max(1, cpus)
        var slackDivisor = 4
        if let maxConnections, wanted(rings, maxConnections, slackDivisor) > perRingMax {
            slackDivisor = 8
            while rings < Self.ringsMax && wanted(rings, maxConnections, slackDivisor) > perRingMax { rings += 1 }
        }
        self.rings = rings
        slotsPerRing = maxConnections.map { min(wanted(rings, $0, slackDivisor), perRingMax) } ?? perRingMax
    }

    /// Ticks of the 250 ms timeout scan over which each ring covers its table once: with more
    /// rings than CPUs (a million connections), a quarter per tick, so the scan visits each
    /// slot once a second instead of four times (measured: the full scan of 127 rings' 1.26
    /// million slots four times a second took ~0.5 CPU-seconds per second); timeouts then fire
    /// up to a second late instead of 250 ms.
    public var scanSlices: Int { rings > cpus ? 4 : 1 }

    /// Provided buffers per ring: `configured` when there is one ring per CPU; else the CPUs'
    /// buffers shared among the rings (a power of two, at least buffersMin and at most configured).
    public func buffersPerRing(configured: Int) -> Int {
        guard rings > cpus else { return configured }
        let share = max(Self.buffersMin, configured * cpus / rings)
        var p = 1
        while p * 2 <= share { p *= 2 }
        return min(configured, p)
    }
}
