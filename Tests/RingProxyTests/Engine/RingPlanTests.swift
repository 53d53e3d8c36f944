// RingPlan: one ring per CPU until maxconn needs more fixed-file tables than that; then enough
// rings (pinned over the same CPUs) for each to hold its share plus an eighth, and the CPUs'
// provided buffers divided among them.
import XCTest
@testable import RingProxy

final class RingPlanTests: XCTestCase {
    func testOneRingPerCPUWhenTheTablesHoldMaxconn() {
        let plan = RingPlan(cpus: 2, fileLimit: 20_000, acceptSlots: 8, maxConnections: 10_000)
        XCTAssertEqual(plan.rings, 2)
        XCTAssertEqual(plan.slotsPerRingMax, 9_992)
        XCTAssertEqual(plan.slotsPerRing, 5_000 + 1_250 + 64 + 8)
        XCTAssertGreaterThanOrEqual(plan.capacity, 10_000)
        XCTAssertEqual(plan.buffersPerRing(configured: 1024), 1024)
    }

    func testWithoutMaxconnEachRingTakesAWholeTable() {
        let plan = RingPlan(cpus: 2, fileLimit: 20_000, acceptSlots: 8, maxConnections: nil)
        XCTAssertEqual(plan.rings, 2)
        XCTAssertEqual(plan.slotsPerRing, 9_992)
        XCTAssertEqual(plan.capacity, 2 * 9_984)
    }

    func testAMillionGetsMoreRingsThanCPUsAndEachHoldsItsShareWithSlack() {
        let plan = RingPlan(cpus: 2, fileLimit: 20_000, acceptSlots: 8, maxConnections: 1_024_000)
        XCTAssertGreaterThan(plan.rings, 2)
        XCTAssertLessThanOrEqual(plan.slotsPerRing, plan.slotsPerRingMax, "a table never exceeds RLIMIT_NOFILE")
        let share = (1_024_000 + plan.rings - 1) / plan.rings
        XCTAssertGreaterThanOrEqual(plan.slotsPerRing - plan.acceptSlots, share + share / 8, "an eighth more than its share")
        // The fewest rings that do it: one ring less would not hold its share plus an eighth.
        let fewer = plan.rings - 1
        let fewerShare = (1_024_000 + fewer - 1) / fewer
        XCTAssertGreaterThan(fewerShare + fewerShare / 8 + 64 + 8, plan.slotsPerRingMax)
        XCTAssertEqual(plan.rings, 117)
        XCTAssertEqual(plan.scanSlices, 4, "the timeout scan covers each table over four ticks")
        XCTAssertEqual(RingPlan(cpus: 2, fileLimit: 20_000, acceptSlots: 8, maxConnections: 10_000).scanSlices, 1)
        // The two CPUs' 2 x 1024 buffers shared among the rings, a power of two, at least 64.
        XCTAssertEqual(plan.buffersPerRing(configured: 1024), 64)
        XCTAssertEqual(RingPlan(cpus: 2, fileLimit: 20_000, acceptSlots: 8, maxConnections: 50_000).buffersPerRing(configured: 1024), 256)
    }

    func testPastTheRingLimitCapacityIsCappedNotGrown() {
        let plan = RingPlan(cpus: 1, fileLimit: 1_024, acceptSlots: 8, maxConnections: 10_000_000)
        XCTAssertEqual(plan.rings, RingPlan.ringsMax)
        XCTAssertEqual(plan.slotsPerRing, plan.slotsPerRingMax)
        XCTAssertLessThan(plan.capacity, 10_000_000)
    }
}
