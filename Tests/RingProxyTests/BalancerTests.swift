// Balance algorithms and the stick table, each tested for the distribution it promises.
import XCTest
@testable import RingProxy

final class BalancerTests: XCTestCase {
    private func backend(_ weights: [Int], _ balance: BalanceAlgorithm) -> BackendConfig {
        BackendConfig(name: "b", balance: balance, servers: weights.enumerated().map {
            ServerConfig(name: "emqx\($0.offset + 1)", address: SocketAddress(ipv4: 127, 0, 0, 1, port: UInt16(18831 + $0.offset)), weight: $0.element)
        })
    }

    func testWeightedRoundRobinInterleavesSmoothly() {
        var b = Balancer(backend: backend([5, 2, 3], .roundrobin), globalBase: 0, workerIndex: 0)
        defer { b.deallocate() }
        let shared = SharedState(backends: [backend([5, 2, 3], .roundrobin)])
        let picks = (0..<100).map { _ in b.pick(shared: shared, key: UnsafeRawBufferPointer(start: nil, count: 0)) }
        XCTAssertEqual(picks.filter { $0 == 0 }.count, 50)
        XCTAssertEqual(picks.filter { $0 == 1 }.count, 20)
        XCTAssertEqual(picks.filter { $0 == 2 }.count, 30)
        // Smooth: the heaviest server never gets more than two in a row (a burst would be 5).
        var run = 1
        var longest = 1
        for i in 1..<picks.count {
            run = picks[i] == picks[i - 1] ? run + 1 : 1
            longest = max(longest, run)
        }
        XCTAssertLessThanOrEqual(longest, 2, "\(picks.prefix(10))")
        // Every window of 10 picks holds each server in proportion (5/2/3, give or take one).
        for start in stride(from: 0, to: 90, by: 10) {
            let window = picks[start..<(start + 10)]
            XCTAssertEqual(window.filter { $0 == 0 }.count, 5)
        }
    }

    func testWeightZeroServerGetsNoNewConnections() {
        var b = Balancer(backend: backend([1, 0, 1], .roundrobin), globalBase: 0, workerIndex: 0)
        defer { b.deallocate() }
        let shared = SharedState(backends: [backend([1, 0, 1], .roundrobin)])
        let picks = (0..<20).map { _ in b.pick(shared: shared, key: UnsafeRawBufferPointer(start: nil, count: 0)) }
        XCTAssertFalse(picks.contains(1))
    }

    private func owners(_ weights: [Int], names: [String]? = nil, keys: Int) -> [Int] {
        var config = backend(weights, .source)
        if let names { for i in names.indices { config.servers[i].name = names[i] } }
        var b = Balancer(backend: config, globalBase: 0, workerIndex: 0)
        defer { b.deallocate() }
        let shared = SharedState(backends: [config])
        return (0..<keys).map { k in
            var address = UInt32(0x0A00_0000 + k).bigEndian
            return withUnsafeBytes(of: &address) { b.pick(shared: shared, key: $0) }
        }
    }

    func testSourceHashIsConsistentWhenAServerIsRemovedOrAdded() {
        let keys = 20_000
        let four = owners([1, 1, 1, 1], names: ["a", "b", "c", "d"], keys: keys)
        // Remove "d": only d's clients move.
        let three = owners([1, 1, 1], names: ["a", "b", "c"], keys: keys)
        for k in 0..<keys where four[k] != 3 { XCTAssertEqual(three[k], four[k], "client \(k) moved though its server stayed") }
        // Add "e": about 1/5 of clients move, all of them to e.
        let five = owners([1, 1, 1, 1, 1], names: ["a", "b", "c", "d", "e"], keys: keys)
        var moved = 0
        for k in 0..<keys where five[k] != four[k] {
            moved += 1
            XCTAssertEqual(five[k], 4)
        }
        XCTAssertEqual(Double(moved) / Double(keys), 0.2, accuracy: 0.02)
        // And the spread over four is even.
        for s in 0..<4 { XCTAssertEqual(Double(four.filter { $0 == s }.count) / Double(keys), 0.25, accuracy: 0.02) }
    }

    func testHashRespectsWeights() {
        let picks = owners([5, 2, 3], keys: 30_000)
        XCTAssertEqual(Double(picks.filter { $0 == 0 }.count) / 30_000, 0.5, accuracy: 0.02)
        XCTAssertEqual(Double(picks.filter { $0 == 1 }.count) / 30_000, 0.2, accuracy: 0.02)
    }

    func testLeastconnCountsConnectionsOfEveryCore() {
        let config = backend([1, 1, 1], .leastconn)
        let shared = SharedState(backends: [config])
        var cores = [Balancer(backend: config, globalBase: 0, workerIndex: 0), Balancer(backend: config, globalBase: 0, workerIndex: 1)]
        defer { cores.forEach { $0.deallocate() } }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        // Core 0 has two connections on server 0 and one on server 1: core 1 must pick server 2.
        shared.serverConnected(0); shared.serverConnected(0); shared.serverConnected(1)
        XCTAssertEqual(cores[1].pick(shared: shared, key: empty), 2)
        shared.serverConnected(2)
        // From then on, whichever core picks, every pick is a least loaded server.
        for i in 0..<60 {
            let loads = (0..<3).map { shared.serverActive($0) }
            let pick = cores[i % 2].pick(shared: shared, key: empty)
            XCTAssertEqual(loads[pick], loads.min(), "pick \(i): \(pick) with loads \(loads)")
            shared.serverConnected(pick)
        }
        let final = (0..<3).map { shared.serverActive($0) }
        XCTAssertEqual(final.reduce(0, +), 64)
        XCTAssertLessThanOrEqual(final.max()! - final.min()!, 1, "\(final)")
    }

    func testStickTableEvictsTheLeastRecentlyUsedAtItsSize() {
        let table = StickTable(config: StickTableConfig(keyLengthMax: 32, entriesMax: 64 * 4, expireMs: 60_000))
        // Fill well past the size; the most recent entries survive, the oldest go.
        for i in 0..<2_000 { table.store(UInt64(i) &* 0x9E3779B97F4A7C15, server: i % 3, nowMs: 0) }
        let usage = table.usage()
        XCTAssertLessThanOrEqual(usage.entries, table.capacity)
        XCTAssertGreaterThan(usage.evictions, 0)
        XCTAssertNil(table.lookup(UInt64(0), nowMs: 1))
        XCTAssertEqual(table.lookup(UInt64(1_999) &* 0x9E3779B97F4A7C15, nowMs: 1), 1_999 % 3)
        // A looked-up entry becomes recent and survives the next wave.
        let kept = UInt64(1_990) &* 0x9E3779B97F4A7C15
        for round in 0..<20 {
            XCTAssertNotNil(table.lookup(kept, nowMs: 2), "round \(round)")
            for i in 0..<20 { table.store(UInt64(10_000 + round * 20 + i) &* 0x9E3779B97F4A7C15, server: 0, nowMs: 2) }
        }
    }

    func testStickTableChainsStayShortWhenFull() {
        // 100k client ids (HAProxy's `size 100k`): a lookup walks a few entries, not dozens.
        let table = StickTable(config: StickTableConfig(keyLengthMax: 32, entriesMax: 100_000, expireMs: 60_000))
        for i in 0..<100_000 {
            let id = Array("device-\(i)".utf8)
            table.store(id.withUnsafeBytes { table.keyHash($0) }, server: i % 3, nowMs: 0)
        }
        // Each of the 64 shards holds 1/64 of the size, so the fullest shards evict a little early.
        XCTAssertGreaterThan(table.usage().entries, 98_000)
        XCTAssertLessThanOrEqual(table.longestChain(), 12, "buckets are not spread over the shard's table")
        let probe = Array("device-99999".utf8)
        XCTAssertEqual(table.lookup(probe.withUnsafeBytes { table.keyHash($0) }, nowMs: 1), 99_999 % 3)
    }

    func testStickTableEntriesExpireAfterTheirLastUse() {
        let table = StickTable(config: StickTableConfig(keyLengthMax: 32, entriesMax: 1000, expireMs: 100))
        table.store(42, server: 2, nowMs: 1_000)
        XCTAssertEqual(table.lookup(42, nowMs: 1_050), 2)     // refreshed: now lives until 1_150
        XCTAssertEqual(table.lookup(42, nowMs: 1_140), 2)
        XCTAssertNil(table.lookup(42, nowMs: 1_300))
        XCTAssertEqual(table.usage().entries, 0)
    }

    func testStickTableTruncatesKeysLongerThanLen() {
        let table = StickTable(config: StickTableConfig(keyLengthMax: 8, entriesMax: 1000, expireMs: 1000))
        let a = Array("12345678-first".utf8)
        let b = Array("12345678-second".utf8)
        let c = Array("1234567".utf8)
        let ha = a.withUnsafeBytes { table.keyHash($0) }
        XCTAssertEqual(ha, b.withUnsafeBytes { table.keyHash($0) }, "only the first 8 bytes count")
        XCTAssertNotEqual(ha, c.withUnsafeBytes { table.keyHash($0) })
    }
}

/// Servers that are down, or at weight 0, get no new connection from any algorithm, and a
/// redispatch skips them.
final class BalancerServerStateTests: XCTestCase {
    private func setup(_ weights: [Int], _ balance: BalanceAlgorithm) -> (Balancer, SharedState) {
        let config = BackendConfig(name: "b", balance: balance, servers: weights.enumerated().map {
            ServerConfig(name: "emqx\($0.offset + 1)", address: SocketAddress(ipv4: 127, 0, 0, 1, port: UInt16(18831 + $0.offset)), weight: $0.element)
        })
        return (Balancer(backend: config, globalBase: 0, workerIndex: 0), SharedState(backends: [config]))
    }

    private func picks(_ b: inout Balancer, _ shared: SharedState, _ n: Int) -> [Int] {
        (0..<n).map { k in
            var key = UInt32(0x0A00_0000 + k).bigEndian
            return withUnsafeBytes(of: &key) { b.pick(shared: shared, key: $0) }
        }
    }

    func testEveryAlgorithmSkipsADownServerAndComesBackToIt() {
        for algorithm in BalanceAlgorithm.allCases {
            var (b, shared) = setup([1, 1, 1], algorithm)
            defer { b.deallocate() }
            shared.setServer(1, up: false)
            let down = picks(&b, shared, 300)
            XCTAssertFalse(down.contains(1), "\(algorithm) chose a down server")
            XCTAssertEqual(Set(down), [0, 2], "\(algorithm) must still use both others")
            shared.setServer(1, up: true)
            XCTAssertTrue(picks(&b, shared, 300).contains(1), "\(algorithm) never came back to the server")
        }
    }

    func testHashedClientsOfAHealthyServerDoNotMoveWhenAnotherGoesDown() {
        var (b, shared) = setup([1, 1, 1], .source)
        defer { b.deallocate() }
        let before = picks(&b, shared, 3_000)
        shared.setServer(2, up: false)
        let after = picks(&b, shared, 3_000)
        for k in before.indices where before[k] != 2 { XCTAssertEqual(after[k], before[k], "client \(k) moved") }
    }

    func testNoUsableServerMeansNoChoice() {
        for algorithm in BalanceAlgorithm.allCases {
            var (b, shared) = setup([1, 0], algorithm)
            defer { b.deallocate() }
            shared.setServer(0, up: false)
            XCTAssertEqual(picks(&b, shared, 5), [-1, -1, -1, -1, -1], "\(algorithm)")
            XCTAssertEqual(b.next(after: 0, shared: shared), -1)
        }
    }

    func testRedispatchSkipsWeightZeroAndDownServers() {
        let (b, shared) = setup([1, 0, 1, 1], .roundrobin)
        defer { b.deallocate() }
        XCTAssertEqual(b.next(after: 0, shared: shared), 2, "weight 0 is never a retry target")
        shared.setServer(2, up: false)
        XCTAssertEqual(b.next(after: 0, shared: shared), 3)
        XCTAssertEqual(b.next(after: 3, shared: shared), 0)
        shared.setServer(0, up: false)
        shared.setServer(3, up: false)
        XCTAssertEqual(b.next(after: 3, shared: shared), -1)
    }
}
