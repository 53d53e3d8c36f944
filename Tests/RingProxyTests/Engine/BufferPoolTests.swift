// The buffer pool's owned buffers: room for bytes the proxy writes itself, beside the
// provided buffers the kernel fills, bounded, and never handed to the kernel.
import Glibc
import XCTest
@testable import RingProxy

final class BufferPoolTests: XCTestCase {
    func testOwnedBuffersAreBoundedDistinctFromProvidedOnesAndReusable() throws {
        let ring = try Ring(entries: 8) { _ in }
        defer { ring.destroy() }
        var pool = try BufferPool(ring: ring, count: 4, ownedCount: 2, sizeBytes: 4096)
        defer { pool.release() }
        let a = try XCTUnwrap(pool.takeOwned())
        let b = try XCTUnwrap(pool.takeOwned())
        XCTAssertNil(pool.takeOwned(), "the third owned buffer of two")
        XCTAssertNotEqual(a, b)
        XCTAssertTrue(pool.isOwned(a) && pool.isOwned(b))
        XCTAssertFalse(pool.isOwned(3))
        XCTAssertEqual(pool.ownedInUse, 2)
        XCTAssertEqual(pool.inUse, 0, "owned buffers are not counted as taken from the kernel")
        // Their memory is their own: writing one touches neither the other nor a provided one.
        memset(pool.address(a), 0xAA, 4096)
        memset(pool.address(b), 0xBB, 4096)
        memset(pool.address(3), 0xCC, 4096)
        XCTAssertEqual(pool.address(a).load(fromByteOffset: 4095, as: UInt8.self), 0xAA)
        XCTAssertEqual(pool.address(b).load(as: UInt8.self), 0xBB)
        pool.give(a)
        XCTAssertEqual(pool.ownedInUse, 1)
        XCTAssertEqual(pool.available, 4, "giving an owned buffer back adds nothing to the kernel's side")
        XCTAssertEqual(pool.takeOwned(), a)
        XCTAssertEqual(pool.length[Int(a)], 0, "a buffer taken again starts empty")
    }
}
