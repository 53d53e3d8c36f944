// Property-style tests: seeded random mutations of the valid vectors, and random bytes, must never
// crash or read past the input (each parse gets a heap buffer of exactly the input's size, so
// `swift test --sanitize=address` catches an over-read), and every verdict keeps the invariants.

import MQTTPeek
import Testing

/// SplitMix64: small, fast, and the same sequence on every run and platform.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Mutator {
    static let interesting: [UInt8] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x7F, 0x80, 0xFF, 0x10, 0x11, 0x15, 0x16, 0x26, 0xC0]

    /// Applies one to four random edits; half of the time the remaining length is then re-encoded
    /// to fit, so that the mutation reaches the fields instead of only the fixed header.
    static func mutate(_ bytes: inout [UInt8], using generator: inout SplitMix64) {
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            let index = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
            switch Int.random(in: 0..<8, using: &generator) {
            case 0 where !bytes.isEmpty: bytes[index] = UInt8.random(in: 0...255, using: &generator)
            case 1 where !bytes.isEmpty: bytes[index] ^= 1 << UInt8.random(in: 0...7, using: &generator)
            case 2: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: index)
            case 3 where !bytes.isEmpty: bytes.remove(at: index)
            case 4: bytes.removeLast(Int.random(in: 0...bytes.count, using: &generator) / 4)
            case 5 where !bytes.isEmpty: bytes[index] = interesting.randomElement(using: &generator)!
            case 6: bytes += (0..<Int.random(in: 1...8, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 7 where bytes.count > index + 1:
                bytes[index] = 0xFF
                bytes[index + 1] = 0xFF
            default: break
            }
        }
        if Bool.random(using: &generator), bytes.count >= 2, bytes[0] == 0x10 {
            bytes = refitRemainingLength(bytes)
        }
    }

    /// Re-encodes the remaining length so that it covers everything after the fixed header.
    static func refitRemainingLength(_ bytes: [UInt8]) -> [UInt8] {
        var index = 1
        while index < bytes.count && index < 5 && bytes[index] & 0x80 != 0 { index += 1 }
        let body = bytes.dropFirst(min(index + 1, bytes.count))
        return [0x10] + ConnectBuilder.vbi(body.count) + body
    }
}

@Suite("Random mutations")
struct MutationTests {
    static let limits = [16, 64, 200, 65536, Int.max]

    @Test("mutated CONNECTs never crash, stay in bounds, and their prefixes never contradict them",
        arguments: Vectors.valid)
    func mutatedConnectsKeepTheInvariants(_ vector: ValidVector) {
        var generator = SplitMix64(seed: UInt64(vector.bytes.count) &* 0x9E37_79B9 &+ UInt64(vector.name.utf8.count))
        let large = vector.bytes.count > 1000
        var accepted = 0
        for iteration in 0..<(large ? 300 : 3000) {
            var bytes = vector.bytes
            Mutator.mutate(&bytes, using: &generator)
            let limit = Self.limits.randomElement(using: &generator)!
            let whole = parseExact(bytes, connectMaxBytes: limit)
            expectInvariants(whole, input: bytes, connectMaxBytes: limit)
            if whole.isConnect { accepted += 1 }

            let prefixLengths: [Int] =
                iteration % 50 == 0 && !large
                ? Array(0...bytes.count)
                : (0..<3).map { _ in Int.random(in: 0...bytes.count, using: &generator) }
            for length in prefixLengths {
                let verdict = parseExact(bytes.prefix(length), connectMaxBytes: limit)
                expectInvariants(verdict, input: Array(bytes.prefix(length)), connectMaxBytes: limit)
                expectPrefixConsistent(verdict, prefixLength: length, whole: whole)
            }
        }
        // Some mutations (a changed client id letter, keep alive) leave a valid CONNECT: the
        // test must reach the accepting path, not only the refusals.
        #expect(accepted > 0)
    }

    @Test("random bytes after a CONNECT header never crash and keep the invariants")
    func randomBytesKeepTheInvariants() {
        var generator = SplitMix64(seed: 42)
        let headers: [[UInt8]] = [
            [], [0x10], [0x10, 0x04, 0x00, 0x04] + Array("MQTT".utf8) + [0x05],
            [0x00, 0x04] + Array("MQTT".utf8) + [0x05, 0xC6, 0x00, 0x3C],
            [0x00, 0x04] + Array("MQTT".utf8) + [0x04, 0xEE, 0x00, 0x3C],
            [0x00, 0x06] + Array("MQIsdp".utf8) + [0x03, 0xC2, 0x00, 0x3C],
        ]
        for _ in 0..<30_000 {
            let header = headers.randomElement(using: &generator)!
            let tail = (0..<Int.random(in: 0...48, using: &generator)).map { _ in
                Mutator.interesting.randomElement(using: &generator)!
            }
            var bytes = header + tail
            if header.first != 0x10 { bytes = [0x10] + ConnectBuilder.vbi(bytes.count) + bytes }
            let limit = Self.limits.randomElement(using: &generator)!
            let whole = parseExact(bytes, connectMaxBytes: limit)
            expectInvariants(whole, input: bytes, connectMaxBytes: limit)
            let length = Int.random(in: 0...bytes.count, using: &generator)
            expectPrefixConsistent(
                parseExact(bytes.prefix(length), connectMaxBytes: limit), prefixLength: length, whole: whole)
        }
    }
}
