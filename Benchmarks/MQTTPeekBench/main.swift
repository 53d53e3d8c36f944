// Micro-benchmark of MQTTPeek.parseConnect, built by scripts/bench-mqttpeek.sh with `swiftc -O`
// in one module with Sources/MQTTPeek (as the engine gets it through @inlinable). Prints one JSON
// line and one human line. Usage: mqttpeek-bench [iterations [case]]  (default 10,000,000 per
// case, all cases; naming one case, e.g. v311_short, is for profiling it alone)

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let iterations = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 10_000_000 : 10_000_000
let onlyCase = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : nil
let variantCount = 16  // inputs rotate so the optimiser cannot hoist the parse out of the loop

func hex(_ string: String) -> [UInt8] {
    let digits = Array(string.utf8)
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

// mosquitto_pub 2.0.11 captures (see Tests/MQTTPeekTests/Support/Vectors.swift).
let v311Short = hex("101700044d5154540402003c000b72696e6770726f78792d31")
let v5Properties = hex(
    "10860100044d51545405d6003c261100000e10260006726567696f6e000765752d776573742100142700100000"
        + "22000a17011900000c63352d72696e6770726f78792f180000000a03000a746578742f706c61696e0101020000"
        + "003c080006726573702f74090003616263260001610001620006772f676f6e650004676f6e650003626f6200027077")

/// `variantCount` heap copies of `bytes` (each exactly sized) differing in the keep-alive low byte.
func variants(of bytes: [UInt8], keepAliveLowByteAt offset: Int) -> UnsafeMutablePointer<UnsafeRawBufferPointer> {
    let inputs = UnsafeMutablePointer<UnsafeRawBufferPointer>.allocate(capacity: variantCount)
    for index in 0..<variantCount {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        buffer.copyBytes(from: bytes)
        buffer[offset] = UInt8(truncatingIfNeeded: 0x30 + index)
        inputs[index] = UnsafeRawBufferPointer(buffer)
    }
    return inputs
}

@inline(never)
func timeParse(_ inputs: UnsafePointer<UnsafeRawBufferPointer>, iterations: Int) -> (nanoseconds: Double, checksum: Int) {
    var checksum = 0
    let start = ContinuousClock.now
    for index in 0..<iterations {
        switch MQTTPeek.parseConnect(inputs[index & (variantCount - 1)]) {
        case .connect(let packet): checksum &+= packet.packetLength &+ packet.clientIdentifier.upperBound &+ Int(packet.keepAliveSeconds)
        case .needMore(let atLeast): checksum &+= atLeast
        case .invalid(let reason): checksum &+= Int(reason.rawValue)
        }
    }
    return (nanoseconds(ContinuousClock.now - start), checksum)
}

/// Peer for scale: reading every byte of the input once (a sum), nothing else.
@inline(never)
func timeByteSum(_ inputs: UnsafePointer<UnsafeRawBufferPointer>, iterations: Int) -> (nanoseconds: Double, checksum: Int) {
    var checksum = 0
    let start = ContinuousClock.now
    for index in 0..<iterations {
        for byte in inputs[index & (variantCount - 1)] { checksum &+= Int(byte) }
    }
    return (nanoseconds(ContinuousClock.now - start), checksum)
}

func nanoseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
}

/// Median of 5 timed runs after a warm-up, in ns per call.
func measure(
    _ inputs: UnsafePointer<UnsafeRawBufferPointer>,
    _ body: (UnsafePointer<UnsafeRawBufferPointer>, Int) -> (nanoseconds: Double, checksum: Int)
) -> (nsPerCall: Double, checksum: Int) {
    var checksum = body(inputs, iterations / 10).checksum
    var samples: [Double] = []
    for _ in 0..<5 {
        let run = body(inputs, iterations)
        samples.append(run.nanoseconds / Double(iterations))
        checksum &+= run.checksum
    }
    samples.sort()
    return (samples[2], checksum)
}

// The split case: the first 60 bytes of the 5.0 CONNECT (cut inside the client identifier).
let split = Array(v5Properties.prefix(60))
precondition(MQTTPeek.parseConnect(split) == .needMore(atLeast: v5Properties.count))
guard case .connect = MQTTPeek.parseConnect(v311Short), case .connect = MQTTPeek.parseConnect(v5Properties) else {
    fatalError("benchmark inputs must parse")
}

let cases: [(key: String, label: String, inputs: UnsafeMutablePointer<UnsafeRawBufferPointer>)] = [
    ("v311_short", "3.1.1 short (\(v311Short.count) B)", variants(of: v311Short, keepAliveLowByteAt: 11)),
    ("v5_properties", "5.0 with properties + will (\(v5Properties.count) B)", variants(of: v5Properties, keepAliveLowByteAt: 12)),
    ("v5_split_need_more", "5.0 first \(split.count) B -> needMore", variants(of: split, keepAliveLowByteAt: 12)),
]

var checksum = 0
var json: [String] = []
var human: [String] = []
for entry in cases where onlyCase == nil || onlyCase == entry.key {
    let result = measure(entry.inputs, timeParse)
    checksum &+= result.checksum
    json.append("\"\(entry.key)\":\(formatted(result.nsPerCall))")
    human.append("\(entry.label): \(formatted(result.nsPerCall)) ns")
}
let peer = onlyCase == nil ? measure(cases[1].inputs, timeByteSum) : (nsPerCall: 0, checksum: 0)
checksum &+= peer.checksum
json.append("\"peer_sum_bytes_v5_properties\":\(formatted(peer.nsPerCall))")

func formatted(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

func jsonEscaped(_ string: String) -> String {
    var out = ""
    for character in string {
        if character == "\\" || character == "\"" { out.append("\\") }
        out.append(character)
    }
    return out
}

let machine = getenv("BENCH_MACHINE").map { String(cString: $0) } ?? "unknown"
print(
    "{\"benchmark\":\"mqttpeek_parse_connect\",\"unit\":\"ns_per_connect\",\"iterations\":\(iterations),"
        + json.joined(separator: ",") + ",\"machine\":\"\(jsonEscaped(machine))\",\"checksum\":\(checksum)}")
print(
    "MQTTPeek.parseConnect, median of 5 x \(iterations) calls: " + human.joined(separator: "; ")
        + "; reading the 5.0 packet's bytes once: \(formatted(peer.nsPerCall)) ns")
