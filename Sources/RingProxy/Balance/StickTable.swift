// StickTable: HAProxy's `stick-table type string len L size S expire T` with `stick on` the
// MQTT client identifier. Shared by every worker so that a client landing on another core
// reaches the same server: sharded by key hash, one mutex per shard, touched once per new
// connection (never per packet). Bounded: at `size` entries the least recently used entry of
// the shard goes; entries expire `expire` after their last use. Keys longer than `len` are
// truncated to `len` bytes, as HAProxy does. Entries are keyed by the 64-bit hash of the
// truncated key rather than its bytes: 8 bytes an entry instead of `len`, and at 100,000
// entries the chance that two client ids share a hash is about 3e-10.
import Glibc

public struct StickTableConfig: Sendable, Equatable {
    /// Longest key kept (HAProxy `len`); longer client ids are truncated.
    public var keyLengthMax: Int = 32
    /// Entries kept (HAProxy `size`).
    public var entriesMax: Int = 100_000
    /// Lifetime of an entry after its last use (HAProxy `expire`), ms.
    public var expireMs: Int = 30 * 60 * 1000

    public init(keyLengthMax: Int = 32, entriesMax: Int = 100_000, expireMs: Int = 30 * 60 * 1000) {
        self.keyLengthMax = keyLengthMax
        self.entriesMax = entriesMax
        self.expireMs = expireMs
    }
}

final class StickTable: @unchecked Sendable {
    static let shardCount = 64
    let config: StickTableConfig
    private let shards: UnsafeMutablePointer<Shard>

    struct Shard {
        var lock = pthread_mutex_t()
        var entries: Int32 = 0
        var capacity: Int32 = 0
        var bucketMask: Int = 0
        var buckets: UnsafeMutablePointer<Int32>! = nil
        var next: UnsafeMutablePointer<Int32>! = nil       // bucket chain / free list
        var lruPrev: UnsafeMutablePointer<Int32>! = nil
        var lruNext: UnsafeMutablePointer<Int32>! = nil
        var hashes: UnsafeMutablePointer<UInt64>! = nil
        var servers: UnsafeMutablePointer<Int32>! = nil
        var expires: UnsafeMutablePointer<Int>! = nil
        var freeHead: Int32 = -1
        var lruHead: Int32 = -1   // most recent
        var lruTail: Int32 = -1   // least recent
        var evictions: UInt64 = 0
    }

    init(config: StickTableConfig) {
        self.config = config
        shards = .allocate(capacity: Self.shardCount)
        let perShard = max(1, (config.entriesMax + Self.shardCount - 1) / Self.shardCount)
        var bucketCount = 1
        while bucketCount < perShard * 2 { bucketCount <<= 1 }
        for s in 0..<Self.shardCount {
            var shard = Shard()
            shard.capacity = Int32(perShard)
            shard.bucketMask = bucketCount - 1
            shard.buckets = .allocate(capacity: bucketCount)
            shard.buckets.initialize(repeating: -1, count: bucketCount)
            shard.next = .allocate(capacity: perShard)
            shard.lruPrev = .allocate(capacity: perShard)
            shard.lruNext = .allocate(capacity: perShard)
            shard.hashes = .allocate(capacity: perShard)
            shard.servers = .allocate(capacity: perShard)
            shard.expires = .allocate(capacity: perShard)
            for i in 0..<perShard { shard.next[i] = Int32(i + 1 < perShard ? i + 1 : -1) }
            shard.freeHead = 0
            (shards + s).initialize(to: shard)
            pthread_mutex_init(&shards[s].lock, nil)
        }
    }

    deinit {
        for s in 0..<Self.shardCount {
            let shard = shards[s]
            shard.buckets.deallocate()
            shard.next.deallocate()
            shard.lruPrev.deallocate()
            shard.lruNext.deallocate()
            shard.hashes.deallocate()
            shard.servers.deallocate()
            shard.expires.deallocate()
            pthread_mutex_destroy(&shards[s].lock)
        }
        shards.deallocate()
    }

    /// The key's hash as the table uses it: HAProxy truncates string keys to `len` bytes.
    func keyHash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        Hashing.hash(key.count <= config.keyLengthMax ? key : UnsafeRawBufferPointer(rebasing: key[0..<config.keyLengthMax]))
    }

    /// The server stuck to the key, if an unexpired entry exists; refreshes its expiry and LRU.
    func lookup(_ h: UInt64, nowMs: Int) -> Int? {
        let shard = shards + Int(h % UInt64(Self.shardCount))
        pthread_mutex_lock(&shard.pointee.lock)
        defer { pthread_mutex_unlock(&shard.pointee.lock) }
        guard let e = find(shard, h) else { return nil }
        if shard.pointee.expires[Int(e)] <= nowMs {
            remove(shard, e)
            return nil
        }
        shard.pointee.expires[Int(e)] = nowMs + config.expireMs
        touch(shard, e)
        return Int(shard.pointee.servers[Int(e)])
    }

    /// Sticks `key` to `server` (insert or update), evicting the shard's LRU entry when full.
    func store(_ h: UInt64, server: Int, nowMs: Int) {
        let shard = shards + Int(h % UInt64(Self.shardCount))
        pthread_mutex_lock(&shard.pointee.lock)
        defer { pthread_mutex_unlock(&shard.pointee.lock) }
        if let e = find(shard, h) {
            shard.pointee.servers[Int(e)] = Int32(server)
            shard.pointee.expires[Int(e)] = nowMs + config.expireMs
            touch(shard, e)
            return
        }
        if shard.pointee.freeHead < 0 {
            let victim = shard.pointee.lruTail
            precondition(victim >= 0)
            remove(shard, victim)
            shard.pointee.evictions &+= 1
        }
        let e = shard.pointee.freeHead
        shard.pointee.freeHead = shard.pointee.next[Int(e)]
        let i = Int(e)
        shard.pointee.hashes[i] = h
        shard.pointee.servers[i] = Int32(server)
        shard.pointee.expires[i] = nowMs + config.expireMs
        let b = Self.bucket(h, shard)
        shard.pointee.next[i] = shard.pointee.buckets[b]
        shard.pointee.buckets[b] = e
        shard.pointee.lruPrev[i] = -1
        shard.pointee.lruNext[i] = shard.pointee.lruHead
        if shard.pointee.lruHead >= 0 { shard.pointee.lruPrev[Int(shard.pointee.lruHead)] = e }
        shard.pointee.lruHead = e
        if shard.pointee.lruTail < 0 { shard.pointee.lruTail = e }
        shard.pointee.entries += 1
    }

    /// Entries in use and evictions so far, over all shards.
    func usage() -> (entries: Int, evictions: UInt64) {
        var entries = 0
        var evictions: UInt64 = 0
        for s in 0..<Self.shardCount {
            pthread_mutex_lock(&shards[s].lock)
            entries += Int(shards[s].entries)
            evictions += shards[s].evictions
            pthread_mutex_unlock(&shards[s].lock)
        }
        return (entries, evictions)
    }

    var capacity: Int { Int(shards[0].capacity) * Self.shardCount }

    /// Up to `limit` live entries, most recently used first within each shard (`show table`).
    func entries(limit: Int, nowMs: Int) -> [(hash: UInt64, server: Int, expiresInMs: Int)] {
        var result: [(hash: UInt64, server: Int, expiresInMs: Int)] = []
        for s in 0..<Self.shardCount where result.count < limit {
            pthread_mutex_lock(&shards[s].lock)
            var e = shards[s].lruHead
            while e >= 0 && result.count < limit {
                let i = Int(e)
                if shards[s].expires[i] > nowMs {
                    result.append((shards[s].hashes[i], Int(shards[s].servers[i]), shards[s].expires[i] - nowMs))
                }
                e = shards[s].lruNext[i]
            }
            pthread_mutex_unlock(&shards[s].lock)
        }
        return result
    }

    /// Removes every entry (`clear table`); returns how many there were.
    func clear() -> Int {
        var cleared = 0
        for s in 0..<Self.shardCount {
            let shard = shards + s
            pthread_mutex_lock(&shard.pointee.lock)
            while shard.pointee.lruTail >= 0 {
                remove(shard, shard.pointee.lruTail)
                cleared += 1
            }
            pthread_mutex_unlock(&shard.pointee.lock)
        }
        return cleared
    }

    /// The longest bucket chain of any shard: what a lookup may have to walk.
    func longestChain() -> Int {
        var longest = 0
        for s in 0..<Self.shardCount {
            pthread_mutex_lock(&shards[s].lock)
            for b in 0...shards[s].bucketMask {
                var length = 0
                var e = shards[s].buckets[b]
                while e >= 0 { length += 1; e = shards[s].next[Int(e)] }
                longest = max(longest, length)
            }
            pthread_mutex_unlock(&shards[s].lock)
        }
        return longest
    }

    /// The bucket of hash h in its shard. The shard was chosen by h's low bits (h % 64), so the
    /// bucket takes bits above them: with the low bits, every key of a shard would share 1/64
    /// of its buckets and chains would be 64 times longer.
    @inline(__always)
    private static func bucket(_ h: UInt64, _ shard: UnsafeMutablePointer<Shard>) -> Int {
        Int(truncatingIfNeeded: h >> 16) & shard.pointee.bucketMask
    }

    private func find(_ shard: UnsafeMutablePointer<Shard>, _ h: UInt64) -> Int32? {
        var e = shard.pointee.buckets[Self.bucket(h, shard)]
        while e >= 0 {
            let i = Int(e)
            if shard.pointee.hashes[i] == h { return e }
            e = shard.pointee.next[i]
        }
        return nil
    }

    private func touch(_ shard: UnsafeMutablePointer<Shard>, _ e: Int32) {
        guard shard.pointee.lruHead != e else { return }
        unlinkLRU(shard, e)
        shard.pointee.lruPrev[Int(e)] = -1
        shard.pointee.lruNext[Int(e)] = shard.pointee.lruHead
        if shard.pointee.lruHead >= 0 { shard.pointee.lruPrev[Int(shard.pointee.lruHead)] = e }
        shard.pointee.lruHead = e
        if shard.pointee.lruTail < 0 { shard.pointee.lruTail = e }
    }

    private func unlinkLRU(_ shard: UnsafeMutablePointer<Shard>, _ e: Int32) {
        let prev = shard.pointee.lruPrev[Int(e)]
        let next = shard.pointee.lruNext[Int(e)]
        if prev >= 0 { shard.pointee.lruNext[Int(prev)] = next } else { shard.pointee.lruHead = next }
        if next >= 0 { shard.pointee.lruPrev[Int(next)] = prev } else { shard.pointee.lruTail = prev }
    }

    private func remove(_ shard: UnsafeMutablePointer<Shard>, _ e: Int32) {
        let i = Int(e)
        unlinkLRU(shard, e)
        let b = Self.bucket(shard.pointee.hashes[i], shard)
        var cursor = shard.pointee.buckets[b]
        var previous: Int32 = -1
        while cursor >= 0 && cursor != e {
            previous = cursor
            cursor = shard.pointee.next[Int(cursor)]
        }
        if previous >= 0 { shard.pointee.next[Int(previous)] = shard.pointee.next[i] } else { shard.pointee.buckets[b] = shard.pointee.next[i] }
        shard.pointee.next[i] = shard.pointee.freeHead
        shard.pointee.freeHead = e
        shard.pointee.entries -= 1
    }
}
