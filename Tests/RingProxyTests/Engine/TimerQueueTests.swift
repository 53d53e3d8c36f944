// The worker's timer queue: deadlines come out in order, only once due, and the queue says
// no at its bound instead of growing.
import XCTest
@testable import RingProxy

final class TimerQueueTests: XCTestCase {
    func testDeadlinesComeOutInOrderOnlyWhenDue() {
        var q = TimerQueue(capacity: 64)
        defer { q.deallocate() }
        var rng = SystemRandomNumberGenerator()
        let dues = (0..<50).map { _ in Int.random(in: 0..<1_000, using: &rng) }
        for (i, due) in dues.enumerated() { XCTAssertTrue(q.schedule(id: UInt32(i), atMs: due)) }
        XCTAssertEqual(q.nextDueMs, dues.min())
        XCTAssertNil(q.popDue(nowMs: dues.min()! - 1), "nothing is due before the earliest deadline")
        var fired: [Int] = []
        var now = 0
        while now < 1_000 + 7 {
            while let e = q.popDue(nowMs: now) {
                XCTAssertLessThanOrEqual(e.dueMs, now)
                XCTAssertEqual(dues[Int(e.id)], e.dueMs, "an entry keeps its id")
                fired.append(e.dueMs)
            }
            now += 7
        }
        XCTAssertEqual(fired, dues.sorted())
        XCTAssertEqual(q.count, 0)
        XCTAssertNil(q.nextDueMs)
    }

    func testAFullQueueRefusesInsteadOfGrowing() {
        var q = TimerQueue(capacity: 3)
        defer { q.deallocate() }
        XCTAssertTrue(q.schedule(id: 1, atMs: 30))
        XCTAssertTrue(q.schedule(id: 2, atMs: 10))
        XCTAssertTrue(q.schedule(id: 3, atMs: 20))
        XCTAssertFalse(q.schedule(id: 4, atMs: 5))
        XCTAssertEqual(q.popDue(nowMs: 100)?.id, 2)
        XCTAssertTrue(q.schedule(id: 4, atMs: 5))
        XCTAssertEqual([q.popDue(nowMs: 100)?.id, q.popDue(nowMs: 100)?.id, q.popDue(nowMs: 100)?.id], [4, 3, 1])
    }
}
