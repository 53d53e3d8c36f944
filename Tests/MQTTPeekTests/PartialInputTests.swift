// Bytes arrive in pieces: every prefix of a valid CONNECT must ask for more (never refuse), the
// request must be exact once the fixed header is in, and bytes after the packet are not read.

import MQTTPeek
import Testing

@Suite("Partial input")
struct PartialInputTests {
    @Test("every prefix of a valid CONNECT needs more, exactly the packet length once the header is in",
        arguments: Vectors.valid)
    func everyPrefixNeedsMore(_ vector: ValidVector) {
        let bytes = vector.bytes
        let header = headerLength(of: bytes)
        let whole = parseExact(bytes)
        for length in 0..<bytes.count {
            let verdict = parseExact(bytes.prefix(length))
            guard case .needMore(let atLeast) = verdict else {
                Issue.record("prefix of \(length) bytes gave \(verdict)")
                return
            }
            #expect(atLeast > length)
            #expect(atLeast <= bytes.count)
            if length >= header {
                #expect(atLeast == bytes.count, "prefix \(length): header complete, must ask for the packet length")
            }
            expectPrefixConsistent(verdict, prefixLength: length, whole: whole)
        }
        #expect(parseExact(bytes) == whole)
        #expect(whole.isConnect)
    }

    @Test("bytes after the CONNECT do not change the verdict", arguments: Vectors.valid)
    func bytesAfterThePacketAreNotRead(_ vector: ValidVector) {
        let whole = parseExact(vector.bytes)
        let followers: [[UInt8]] = [
            [0xC0, 0x00],  // PINGREQ
            [0x30, 0x07, 0x00, 0x03] + Array("a/b".utf8) + [0x68, 0x69],  // PUBLISH
            [0x10],  // a second CONNECT, cut
            Array(repeating: 0xFF, count: 9),
            Array(repeating: 0x00, count: 3),
        ]
        for follower in followers {
            #expect(parseExact(vector.bytes + follower) == whole)
        }
    }

    @Test("before the fixed header is complete, needMore gives the smallest possible packet")
    func needMoreBeforeTheHeaderIsComplete() {
        #expect(parseExact([]) == .needMore(atLeast: 2))
        #expect(parseExact([0x10]) == .needMore(atLeast: 2))
        #expect(parseExact([0x10, 0x80]) == .needMore(atLeast: 1 + 2 + 128))
        #expect(parseExact([0x10, 0x80, 0x80]) == .needMore(atLeast: 1 + 3 + 16384))
        #expect(parseExact([0x10, 0x80, 0x80, 0x80], connectMaxBytes: .max) == .needMore(atLeast: 1 + 4 + 2_097_152))
        #expect(parseExact([0x10, 0x17]) == .needMore(atLeast: 25))
        #expect(parseExact([0x10, 0x86, 0x01]) == .needMore(atLeast: 137))
    }

    @Test("an empty buffer with no base address needs more")
    func emptyBufferNeedsMore() {
        #expect(MQTTPeek.parseConnect(UnsafeRawBufferPointer(start: nil, count: 0)) == .needMore(atLeast: 2))
    }

    @Test("a CONNECT split across two arrivals parses once the second arrives")
    func splitConnectParsesOnSecondArrival() {
        let bytes = Vectors.mosquitto5Properties.bytes
        let first = Array(bytes.prefix(60))
        #expect(parseExact(first) == .needMore(atLeast: bytes.count))
        guard case .connect(let packet) = parseExact(first + bytes.dropFirst(60)) else {
            Issue.record("joined bytes must parse")
            return
        }
        #expect(packet.packetLength == bytes.count)
    }
}

/// Length of the fixed header of a complete CONNECT in `bytes`: type byte + remaining length.
func headerLength(of bytes: [UInt8]) -> Int {
    var index = 1
    while bytes[index] & 0x80 != 0 { index += 1 }
    return index + 1
}
