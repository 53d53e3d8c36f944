// What an idle TLS connection holds and what a record costs, with and without
// SSL_MODE_RELEASE_BUFFERS, measured with jemalloc's per-thread counters (the test process's
// allocator). The numbers are printed for the README; the assertions hold the shape.
import CTLS
import XCTest
@testable import RingProxy

final class TLSMemoryTests: XCTestCase {
    private func idleBytesPerConnection(releasesBuffers: Bool) throws -> Int {
        var config = TLSBindConfig.testServer()
        config.releasesBuffers = releasesBuffers
        let context = try TLSContext(config)
        let connections = 40
        let pairs = (0..<connections).map { _ in TLSLoopback(context: context) }
        for pair in pairs {
            XCTAssertEqual(pair.handshake(), .ok)
            pair.clientWrite(Array("PINGREQ".utf8))
            XCTAssertEqual(pair.serverReadInPlace().plain, Array("PINGREQ".utf8))
            pair.serverWrite(Array("PINGRESP".utf8))
            XCTAssertEqual(pair.clientRead(), Array("PINGRESP".utf8))
        }
        let before = ctls_test_thread_bytes_net()
        for pair in pairs { pair.freeServer() }
        let after = ctls_test_thread_bytes_net()
        return Int(before - after) / connections
    }

    /// Bytes allocated per record read and per record written by the server, steady state.
    private func allocatedBytesPerRecord(releasesBuffers: Bool) throws -> (read: Int, write: Int) {
        var config = TLSBindConfig.testServer()
        config.releasesBuffers = releasesBuffers
        let pair = TLSLoopback(context: try TLSContext(config))
        XCTAssertEqual(pair.handshake(), .ok)
        let records = 100
        for _ in 0..<records { pair.clientWrite(Array("PUBLISH a/b 42".utf8)) }
        let received = pair.toServer
        pair.toServer.removeAll()
        received.withUnsafeBytes { pair.inbound.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let message = Array("PUBLISH c/d 43".utf8)
        let plain = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { plain.deallocate() }

        // No XCTAssert inside the measured loops: its autoclosures allocate.
        var failures = 0
        let readStart = ctls_test_thread_bytes_allocated()
        TLSRecordIO.setInput(pair.io, pair.inbound, count: received.count)
        TLSRecordIO.setOutput(pair.io, pair.outbound, capacity: TLSLoopback.bufferBytes)
        for _ in 0..<records {
            var n = 0
            if pair.server.read(into: plain, capacity: 14, count: &n) != .ok || n != 14 { failures += 1 }
        }
        let readBytes = ctls_test_thread_bytes_allocated() - readStart
        let writeStart = ctls_test_thread_bytes_allocated()
        message.withUnsafeBytes { raw in
            for _ in 0..<records {
                TLSRecordIO.setOutput(pair.io, pair.outbound, capacity: TLSLoopback.bufferBytes)
                var n = 0
                if pair.server.write(from: raw.baseAddress!, count: raw.count, written: &n) != .ok { failures += 1 }
            }
        }
        let writeBytes = ctls_test_thread_bytes_allocated() - writeStart
        XCTAssertEqual(failures, 0)
        return (Int(readBytes) / records, Int(writeBytes) / records)
    }

    func testReleasingBuffersShrinksAnIdleConnectionAtACostPerRecord() throws {
        guard ctls_test_thread_bytes_net() >= 0 else { throw XCTSkip("jemalloc is not the allocator") }
        let released = try idleBytesPerConnection(releasesBuffers: true)
        let kept = try idleBytesPerConnection(releasesBuffers: false)
        let releasedCost = try allocatedBytesPerRecord(releasesBuffers: true)
        let keptCost = try allocatedBytesPerRecord(releasesBuffers: false)
        print("TLS idle connection: \(released) bytes with SSL_MODE_RELEASE_BUFFERS, \(kept) without; "
              + "allocated per record read/write: \(releasedCost.read)/\(releasedCost.write) bytes with, "
              + "\(keptCost.read)/\(keptCost.write) without")
        XCTAssertLessThan(released + 30_000, kept, "the two record buffers (16 KiB+ each) are given back")
        // With the buffers kept, what is left is OpenSSL 3.0's own bookkeeping: each WPACKET it
        // builds a record with allocates a 40-byte WPACKET_SUB (crypto/packet.c), three per
        // TLS 1.3 record written and one per TLS 1.3 record read (two per TLS 1.2 record
        // written, none read). Small, fixed, served by jemalloc's thread cache; not ours to remove.
        XCTAssertLessThanOrEqual(keptCost.read, 48, "at most one WPACKET_SUB per record read")
        XCTAssertLessThanOrEqual(keptCost.write, 144, "at most three WPACKET_SUBs per record written")
        XCTAssertGreaterThan(releasedCost.read, 16_000, "a released read buffer comes back per record")
    }
}
