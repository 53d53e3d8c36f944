// The per-address table on its own, with the clock in the test's hands: counting, HAProxy's
// sliding rate, the bound (busy addresses never give way), expiry, the key of each address
// family, and how reject rules read the counters.
import Glibc
import XCTest
@testable import RingProxy

final class AddressTableTests: XCTestCase {
    private let a = AddressKey(high: 0, low: 1)
    private let b = AddressKey(high: 0, low: 2)
    private let c = AddressKey(high: 0, low: 3)

    private func table(entries: Int = 100, expireMs: Int? = 30_000, ratePeriodMs: Int? = 1_000, purges: Bool = true) -> AddressTable {
        AddressTable(config: AddressTableConfig(name: "t", entriesMax: entries, expireMs: expireMs, ratePeriodMs: ratePeriodMs, purges: purges))
    }

    func testTrackingCountsTheConnectionAndReleasingUncountsIt() {
        let t = table()
        XCTAssertEqual(t.track(a, nowMs: 10), AddressCounters(connCur: 1, connCnt: 1, connRate: 1))
        XCTAssertEqual(t.track(a, nowMs: 20), AddressCounters(connCur: 2, connCnt: 2, connRate: 2))
        XCTAssertEqual(t.track(b, nowMs: 20), AddressCounters(connCur: 1, connCnt: 1, connRate: 1), "each address counts apart")
        t.release(a, nowMs: 30)
        XCTAssertEqual(t.counters(a, nowMs: 30), AddressCounters(connCur: 1, connCnt: 2, connRate: 2))
        t.release(a, nowMs: 40)
        XCTAssertEqual(t.counters(a, nowMs: 40)?.connCur, 0, "an idle address keeps its history until it expires")
        XCTAssertEqual(t.usage().entries, 2)
    }

    func testTheRateIsHAProxysSlidingWindowOverTwoPeriods() {
        let t = table(ratePeriodMs: 1_000)
        for _ in 0..<6 { _ = t.track(a, nowMs: 0) }
        XCTAssertEqual(t.counters(a, nowMs: 999)?.connRate, 6)
        // The period is over: its 6 weigh by the part of the next period still to run.
        XCTAssertEqual(t.counters(a, nowMs: 1_500)?.connRate, 3)
        XCTAssertEqual(t.counters(a, nowMs: 1_900)?.connRate, 0, "6 x 100/1000, rounded down")
        XCTAssertEqual(t.track(a, nowMs: 1_500)?.connRate, 4, "1 now + 6 x 500/1000")
        XCTAssertEqual(t.counters(a, nowMs: 3_100)?.connRate, 0, "two periods without an event")
        XCTAssertEqual(t.track(a, nowMs: 3_100)?.connRate, 1)
        // HAProxy reports a lone event as 1 through the next period, not as a fraction.
        XCTAssertEqual(t.counters(a, nowMs: 4_900)?.connRate, 1)
        XCTAssertNil(table(ratePeriodMs: nil).track(a, nowMs: 0)?.connRate, "no conn_rate stored: no rate")
    }

    func testBusyAddressesNeverGiveWayAndIdleOnesGoLeastRecentFirst() {
        let t = table(entries: 2)
        XCTAssertEqual(t.capacity, 2, "a small table is one shard")
        _ = t.track(a, nowMs: 0)
        _ = t.track(b, nowMs: 0)
        XCTAssertNil(t.track(c, nowMs: 1), "both entries have connections open: no room, c is not tracked")
        t.release(a, nowMs: 2)
        XCTAssertEqual(t.track(c, nowMs: 3)?.connCur, 1, "a was idle, so it gave way")
        XCTAssertNil(t.counters(a, nowMs: 3))
        XCTAssertEqual(t.counters(b, nowMs: 3)?.connCur, 1)
        XCTAssertEqual(t.usage().evictions, 1)
        t.release(b, nowMs: 4)
        t.release(c, nowMs: 5)
        _ = t.track(a, nowMs: 6)
        XCTAssertNil(t.counters(b, nowMs: 6), "b was idle longest")
        XCTAssertNotNil(t.counters(c, nowMs: 6))
    }

    func testNopurgeRefusesNewAddressesUntilAnIdleOneExpires() {
        let t = table(entries: 1, expireMs: 100, purges: false)
        _ = t.track(a, nowMs: 0)
        t.release(a, nowMs: 10)
        XCTAssertNil(t.track(b, nowMs: 50), "the table is full and nopurge keeps a until it expires")
        XCTAssertEqual(t.track(b, nowMs: 110)?.connCur, 1)
    }

    func testAnExpiredAddressStartsAgainFromNothing() {
        let t = table(expireMs: 100)
        _ = t.track(a, nowMs: 0)
        _ = t.track(a, nowMs: 0)
        t.release(a, nowMs: 0)
        XCTAssertEqual(t.counters(a, nowMs: 500)?.connCur, 1, "a connection still open: the entry never expires")
        t.release(a, nowMs: 500)
        XCTAssertNil(t.counters(a, nowMs: 600))
        XCTAssertEqual(t.track(a, nowMs: 600), AddressCounters(connCur: 1, connCnt: 1, connRate: 1))
    }

    func testIPv4AndMappedIPv6AreOneAddressAndATypeIPTableSkipsOtherIPv6() throws {
        func key(_ text: String, _ family: AddressTableConfig.Family) throws -> AddressKey? {
            var storage = try SocketAddress.parse(text).storage
            return withUnsafeBytes(of: &storage) { AddressKey(sockaddr: $0.baseAddress!, family: family) }
        }
        let v4 = try XCTUnwrap(try key("192.0.2.7:1883", .ipv4))
        XCTAssertEqual(try key("[::ffff:192.0.2.7]:1883", .ipv4), v4)
        XCTAssertEqual(try key("[::ffff:192.0.2.7]:1883", .ipv6), v4)
        XCTAssertNotEqual(try key("192.0.2.8:1883", .ipv4), v4)
        XCTAssertNil(try key("[2001:db8::7]:1883", .ipv4), "type ip holds IPv4 only, as in HAProxy")
        XCTAssertNotNil(try key("[2001:db8::7]:1883", .ipv6))
    }

    func testRejectRulesReadTheCountersAsHAProxyConditionsDo() {
        let counters = AddressCounters(connCur: 11, connCnt: 50, connRate: 3)
        let limit = AddressLimitConfig(table: AddressTableConfig(name: "t"), rejectRules: [
            AddressRejectRule(alternatives: [[AddressComparison(.connRate, .ge, 100)], [AddressComparison(.connCur, .gt, 10)]]),
        ])
        XCTAssertEqual(limit.rejectingRule(counters), 0, "conn_cur 11 > 10 (this connection counts)")
        XCTAssertNil(limit.rejectingRule(AddressCounters(connCur: 10, connCnt: 50, connRate: 3)), "the tenth connection is admitted")

        let both = AddressRejectRule(alternatives: [[AddressComparison(.connCur, .gt, 10), AddressComparison(.connCnt, .lt, 10, negated: true)]])
        XCTAssertTrue(both.rejects(counters), "a and !b")
        XCTAssertFalse(AddressRejectRule(unless: true, alternatives: both.alternatives).rejects(counters))
        XCTAssertTrue(AddressRejectRule(alternatives: [[AddressComparison(.connCnt, .eq, 50)]]).rejects(counters))
        XCTAssertFalse(AddressRejectRule(alternatives: [[AddressComparison(.connCur, .le, 10)], [AddressComparison(.connRate, .lt, 3)]]).rejects(counters))

        // An untracked address: the fetch finds nothing, the term is false, `!` makes it true,
        // and an `unless` rule applies, as in HAProxy.
        XCTAssertFalse(AddressRejectRule(alternatives: [[AddressComparison(.connCur, .gt, 10)]]).rejects(nil))
        XCTAssertTrue(AddressRejectRule(alternatives: [[AddressComparison(.connCur, .gt, 10, negated: true)]]).rejects(nil))
        XCTAssertTrue(AddressRejectRule(unless: true, alternatives: [[AddressComparison(.connCur, .le, 10)]]).rejects(nil))
        XCTAssertFalse(AddressRejectRule(alternatives: [[AddressComparison(.connRate, .gt, 1)]])
            .rejects(AddressCounters(connCur: 1, connCnt: 1, connRate: nil)), "no rate measured: the term is false")
    }

    func testAThousandAddressesFromTwoThreadsCountExactly() {
        let t = table(entries: 4_096)
        XCTAssertEqual(t.shardCount, 64)
        XCTAssertEqual(t.capacity, 4_096)
        let keys = (0..<1_000).map { AddressKey(high: UInt64($0) << 32, low: UInt64($0) &* 0x9E37_79B9) }
        concurrently(2) { _ in
            for key in keys { _ = t.track(key, nowMs: 0) }
        }
        XCTAssertEqual(t.usage().entries, 1_000)
        XCTAssertTrue(keys.allSatisfy { t.counters($0, nowMs: 0)?.connCur == 2 })
        concurrently(2) { _ in
            for key in keys { t.release(key, nowMs: 1) }
        }
        XCTAssertTrue(keys.allSatisfy { t.counters($0, nowMs: 1)?.connCur == 0 })
    }
}
