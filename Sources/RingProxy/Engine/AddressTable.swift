// AddressTable: HAProxy's `stick-table type ip|ipv6 ... store conn_cur,conn_cnt,conn_rate(P)` as
// `tcp-request connection track-sc0 src` uses it: per client address, the connections open now,
// those ever made and their rate over P. Shared by every worker (and by the next generation
// after a reload that leaves it unchanged): sharded by address hash, one mutex per shard,
// touched twice per connection (track at accept, release at close), never per packet.
// Bounded at `size` entries. An entry with connections open is never evicted nor expired, so the
// release at close always finds it; idle entries expire `expire` after their last use, and the
// least recently used idle one gives way when its shard is full (unless `nopurge`). A shard
// holding only busy entries tracks no new address, as HAProxy does when it cannot get an entry:
// that connection's sc0 fetches find nothing.
import Glibc

public struct AddressTableConfig: Sendable, Equatable {
    public enum Family: String, Sendable {
        /// `type ip`: IPv4 clients (and IPv4-mapped IPv6 ones); other IPv6 clients are not
        /// tracked, as in HAProxy.
        case ipv4 = "ip"
        /// `type ipv6`: every client, IPv4 ones as ::ffff:a.b.c.d.
        case ipv6
    }

    /// The proxy that declares the table (HAProxy names a table after its proxy).
    public var name: String
    public var family: Family
    /// `size`.
    public var entriesMax: Int
    /// `expire`, after an entry's last use; nil: idle entries stay until their room is needed.
    public var expireMs: Int?
    /// `store conn_rate(<period>)`; nil: the rate is not measured.
    public var ratePeriodMs: Int?
    /// false with `nopurge`: a full shard refuses new addresses instead of evicting idle ones.
    public var purges: Bool

    public init(name: String, family: Family = .ipv6, entriesMax: Int = 100_000, expireMs: Int? = 30_000,
                ratePeriodMs: Int? = 10_000, purges: Bool = true) {
        self.name = name
        self.family = family
        self.entriesMax = entriesMax
        self.expireMs = expireMs
        self.ratePeriodMs = ratePeriodMs
        self.purges = purges
    }
}

/// A client address as the table keys it: the 16 bytes of an IPv6 address, an IPv4 one as
/// ::ffff:a.b.c.d, so that a client reaching a dual-stack listener counts as itself.
struct AddressKey: Equatable {
    var high: UInt64
    var low: UInt64

    /// The key of the sockaddr at `raw` (as accept(2) filled it) in a table of `family`; nil
    /// when that table cannot hold it (an IPv6 client and `type ip`).
    init?(sockaddr raw: UnsafeRawPointer, family: AddressTableConfig.Family) {
        var bytes: (UInt64, UInt64) = (0, 0)
        let isIPv4: Bool
        switch Int32(raw.load(as: sa_family_t.self)) {
        case AF_INET:
            // sockaddr_in: the address at 4..<8.
            withUnsafeMutableBytes(of: &bytes) { key in
                key[10] = 0xFF
                key[11] = 0xFF
                (key.baseAddress! + 12).copyMemory(from: raw + 4, byteCount: 4)
            }
            isIPv4 = true
        case AF_INET6:
            // sockaddr_in6: the address at 8..<24.
            isIPv4 = withUnsafeMutableBytes(of: &bytes) { key in
                key.baseAddress!.copyMemory(from: raw + 8, byteCount: 16)
                return key[0..<10].allSatisfy { $0 == 0 } && key[10] == 0xFF && key[11] == 0xFF
            }
        default:
            return nil
        }
        guard isIPv4 || family == .ipv6 else { return nil }
        high = bytes.0
        low = bytes.1
    }

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    var hash: UInt64 { Hashing.mix(high ^ Hashing.mix(low)) }
}

/// HAProxy's frequency counter over a period (freq_ctr): the events of the current period and
/// of the previous one. The rate is the current count plus the previous one weighted by the
/// part of the period still to run: a sliding window with no per-event history.
struct FrequencyCounter {
    var periodStartMs: Int
    var current: UInt32 = 0
    var previous: UInt32 = 0

    init(nowMs: Int) {
        periodStartMs = nowMs
    }

    mutating func add(nowMs: Int, periodMs: Int) {
        if nowMs - periodStartMs >= periodMs {
            previous = current
            current = 0
            periodStartMs += periodMs
            if nowMs - periodStartMs >= periodMs {
                // Two periods or more went by without an event.
                previous = 0
                periodStartMs = nowMs
            }
        }
        current &+= 1
    }

    func rate(nowMs: Int, periodMs: Int) -> Int {
        var current = UInt64(self.current)
        var previous = UInt64(self.previous)
        var remainMs = min(periodMs, periodStartMs + periodMs - nowMs)
        if remainMs < 0 {
            // The current period is over: it is the previous one now, if that is recent enough.
            remainMs += periodMs
            previous = remainMs >= 0 ? current : 0
            current = 0
        }
        // HAProxy reports a lone event as 1 for the whole next period rather than a fraction.
        if current == 0 && previous <= 1 { return Int(previous) }
        return Int((previous * UInt64(max(0, remainMs)) + current * UInt64(periodMs)) / UInt64(periodMs))
    }
}

final class AddressTable: @unchecked Sendable {
    let config: AddressTableConfig
    let shardCount: Int
    private let shards: UnsafeMutablePointer<Shard>

    struct Entry {
        var key: AddressKey
        var connCur: Int32
        var connCnt: UInt32
        var rate: FrequencyCounter
        var expiresMs: Int
        /// Bucket chain, or the free list.
        var next: Int32
        /// The idle list (connCur == 0), most recent first; busy entries are not on it.
        var idlePrev: Int32
        var idleNext: Int32
    }

    struct Shard {
        var lock = pthread_mutex_t()
        var entries: UnsafeMutablePointer<Entry>
        var buckets: UnsafeMutablePointer<Int32>
        var bucketMask: Int
        var capacity: Int32
        /// Entries below this index were used at least once (the rest are untouched memory).
        var fresh: Int32 = 0
        var freeHead: Int32 = -1
        var inUse: Int32 = 0
        var idleHead: Int32 = -1
        var idleTail: Int32 = -1
        var evictions: UInt64 = 0
    }

    /// Shards of at least 64 entries each, up to 64 shards: a small table is one shard, so
    /// its room is not split into slivers that fill while the others are empty.
    static func shardCount(entriesMax: Int) -> Int {
        var n = 1
        while n < 64 && n * 2 * 64 <= entriesMax { n *= 2 }
        return n
    }

    init(config: AddressTableConfig) {
        precondition(config.entriesMax > 0, "an address table needs room")
        self.config = config
        shardCount = Self.shardCount(entriesMax: config.entriesMax)
        shards = .allocate(capacity: shardCount)
        let perShard = (config.entriesMax + shardCount - 1) / shardCount
        var bucketCount = 1
        while bucketCount < perShard * 2 { bucketCount <<= 1 }
        for s in 0..<shardCount {
            // Entries are written when first used, so a large table costs resident memory only
            // for the addresses it has seen; the buckets are set up front.
            let buckets = UnsafeMutablePointer<Int32>.allocate(capacity: bucketCount)
            buckets.initialize(repeating: -1, count: bucketCount)
            (shards + s).initialize(to: Shard(entries: .allocate(capacity: perShard), buckets: buckets,
                                              bucketMask: bucketCount - 1, capacity: Int32(perShard)))
            pthread_mutex_init(&shards[s].lock, nil)
        }
    }

    deinit {
        for s in 0..<shardCount {
            shards[s].entries.deallocate()
            shards[s].buckets.deallocate()
            pthread_mutex_destroy(&shards[s].lock)
        }
        shards.deallocate()
    }

    /// Starts tracking one connection of `key`: conn_cur, conn_cnt and conn_rate go up and the
    /// entry's expiry is pushed back, as HAProxy's track-sc does. Returns the counters with this
    /// connection counted, or nil when no entry could be had (then call no release).
    func track(_ key: AddressKey, nowMs: Int) -> AddressCounters? {
        let shard = shards + Int(key.hash & UInt64(shardCount - 1))
        pthread_mutex_lock(&shard.pointee.lock)
        defer { pthread_mutex_unlock(&shard.pointee.lock) }
        var e = find(shard, key)
        if let found = e, shard.pointee.entries[Int(found)].connCur == 0 {
            unlinkIdle(shard, found)
            if shard.pointee.entries[Int(found)].expiresMs <= nowMs {
                // Expired: HAProxy would have purged it; the address starts again from nothing.
                remove(shard, found)
                e = nil
            }
        }
        if e == nil {
            guard let fresh = insert(shard, key, nowMs: nowMs) else { return nil }
            e = fresh
        }
        let entry = shard.pointee.entries + Int(e!)
        entry.pointee.connCur += 1
        entry.pointee.connCnt &+= 1
        if let period = config.ratePeriodMs { entry.pointee.rate.add(nowMs: nowMs, periodMs: period) }
        entry.pointee.expiresMs = expiry(nowMs)
        return counters(entry.pointee, nowMs: nowMs)
    }

    /// Ends tracking one connection of `key` (exactly once per successful track): conn_cur goes
    /// down and the expiry is pushed back. Its entry cannot have gone: busy entries stay.
    func release(_ key: AddressKey, nowMs: Int) {
        let shard = shards + Int(key.hash & UInt64(shardCount - 1))
        pthread_mutex_lock(&shard.pointee.lock)
        defer { pthread_mutex_unlock(&shard.pointee.lock) }
        guard let e = find(shard, key), shard.pointee.entries[Int(e)].connCur > 0 else {
            assertionFailure("released an address that is not tracked")
            return
        }
        let entry = shard.pointee.entries + Int(e)
        entry.pointee.connCur -= 1
        entry.pointee.expiresMs = expiry(nowMs)
        if entry.pointee.connCur == 0 { linkIdle(shard, e) }
    }

    /// The counters of `key` as they stand, without tracking it (nil: no live entry).
    func counters(_ key: AddressKey, nowMs: Int) -> AddressCounters? {
        let shard = shards + Int(key.hash & UInt64(shardCount - 1))
        pthread_mutex_lock(&shard.pointee.lock)
        defer { pthread_mutex_unlock(&shard.pointee.lock) }
        guard let e = find(shard, key) else { return nil }
        let entry = shard.pointee.entries[Int(e)]
        guard entry.connCur > 0 || entry.expiresMs > nowMs else { return nil }
        return counters(entry, nowMs: nowMs)
    }

    /// Entries in use and idle entries evicted for room so far, over all shards.
    func usage() -> (entries: Int, evictions: UInt64) {
        var entries = 0
        var evictions: UInt64 = 0
        for s in 0..<shardCount {
            pthread_mutex_lock(&shards[s].lock)
            entries += Int(shards[s].inUse)
            evictions += shards[s].evictions
            pthread_mutex_unlock(&shards[s].lock)
        }
        return (entries, evictions)
    }

    var capacity: Int { Int(shards[0].capacity) * shardCount }

    // MARK: Shard internals (the shard's lock held)

    private func counters(_ entry: Entry, nowMs: Int) -> AddressCounters {
        AddressCounters(connCur: Int(entry.connCur), connCnt: Int(entry.connCnt),
                        connRate: config.ratePeriodMs.map { entry.rate.rate(nowMs: nowMs, periodMs: $0) })
    }

    @inline(__always)
    private func expiry(_ nowMs: Int) -> Int {
        config.expireMs.map { nowMs + $0 } ?? Int.max
    }

    /// The bucket of a key in its shard: bits above those that chose the shard.
    @inline(__always)
    private static func bucket(_ key: AddressKey, _ shard: UnsafeMutablePointer<Shard>) -> Int {
        Int(truncatingIfNeeded: key.hash >> 16) & shard.pointee.bucketMask
    }

    private func find(_ shard: UnsafeMutablePointer<Shard>, _ key: AddressKey) -> Int32? {
        var e = shard.pointee.buckets[Self.bucket(key, shard)]
        while e >= 0 {
            if shard.pointee.entries[Int(e)].key == key { return e }
            e = shard.pointee.entries[Int(e)].next
        }
        return nil
    }

    /// A new busy-to-be entry for `key`: a free one, else the least recently used idle one
    /// (with `nopurge`, only if it has expired); nil when the shard has no room.
    private func insert(_ shard: UnsafeMutablePointer<Shard>, _ key: AddressKey, nowMs: Int) -> Int32? {
        let e: Int32
        if shard.pointee.freeHead >= 0 {
            e = shard.pointee.freeHead
            shard.pointee.freeHead = shard.pointee.entries[Int(e)].next
        } else if shard.pointee.fresh < shard.pointee.capacity {
            e = shard.pointee.fresh
            shard.pointee.fresh += 1
        } else {
            let victim = shard.pointee.idleTail
            guard victim >= 0, config.purges || shard.pointee.entries[Int(victim)].expiresMs <= nowMs else { return nil }
            unlinkIdle(shard, victim)
            remove(shard, victim)
            shard.pointee.evictions &+= 1
            e = shard.pointee.freeHead
            shard.pointee.freeHead = shard.pointee.entries[Int(e)].next
        }
        let b = Self.bucket(key, shard)
        (shard.pointee.entries + Int(e)).initialize(to: Entry(
            key: key, connCur: 0, connCnt: 0, rate: FrequencyCounter(nowMs: nowMs), expiresMs: expiry(nowMs),
            next: shard.pointee.buckets[b], idlePrev: -1, idleNext: -1))
        shard.pointee.buckets[b] = e
        shard.pointee.inUse += 1
        return e
    }

    /// Takes an entry out of its bucket onto the free list (it must be off the idle list).
    private func remove(_ shard: UnsafeMutablePointer<Shard>, _ e: Int32) {
        let b = Self.bucket(shard.pointee.entries[Int(e)].key, shard)
        var cursor = shard.pointee.buckets[b]
        var previous: Int32 = -1
        while cursor >= 0 && cursor != e {
            previous = cursor
            cursor = shard.pointee.entries[Int(cursor)].next
        }
        assert(cursor == e, "entry missing from its bucket")
        let next = shard.pointee.entries[Int(e)].next
        if previous >= 0 { shard.pointee.entries[Int(previous)].next = next } else { shard.pointee.buckets[b] = next }
        shard.pointee.entries[Int(e)].next = shard.pointee.freeHead
        shard.pointee.freeHead = e
        shard.pointee.inUse -= 1
    }

    private func linkIdle(_ shard: UnsafeMutablePointer<Shard>, _ e: Int32) {
        shard.pointee.entries[Int(e)].idlePrev = -1
        shard.pointee.entries[Int(e)].idleNext = shard.pointee.idleHead
        if shard.pointee.idleHead >= 0 { shard.pointee.entries[Int(shard.pointee.idleHead)].idlePrev = e }
        shard.pointee.idleHead = e
        if shard.pointee.idleTail < 0 { shard.pointee.idleTail = e }
    }

    private func unlinkIdle(_ shard: UnsafeMutablePointer<Shard>, _ e: Int32) {
        let prev = shard.pointee.entries[Int(e)].idlePrev
        let next = shard.pointee.entries[Int(e)].idleNext
        if prev >= 0 { shard.pointee.entries[Int(prev)].idleNext = next } else { shard.pointee.idleHead = next }
        if next >= 0 { shard.pointee.entries[Int(next)].idlePrev = prev } else { shard.pointee.idleTail = prev }
        shard.pointee.entries[Int(e)].idlePrev = -1
        shard.pointee.entries[Int(e)].idleNext = -1
    }
}
