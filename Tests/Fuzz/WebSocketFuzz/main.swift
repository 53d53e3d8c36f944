// libFuzzer target for the WebSocket front stage, built by scripts/fuzz-websocket.sh together
// with the stage files it needs (one module, -sanitize=fuzzer,address). Every input goes to the
// upgrade request parser (two policies), the frame reader (at the start, and after a head when
// one is accepted) and the parser of a server's answer. Besides crashes and out-of-bounds reads
// (libFuzzer hands over an exactly sized heap copy), it checks the verdicts' bounds, that
// prefixes never contradict the whole, that a frame reading resumed after any split ends as one
// reading at once, and that the 101 written for an accepted request reads back as accepted.
// The same inputs go to the CONNACK verdict (ConnackResponse), plain and in a frame.

import Glibc

let path: StaticString = "/mqtt"
let policies = [
    WebSocketUpgradePolicy(),
    WebSocketUpgradePolicy(path: UnsafeRawBufferPointer(start: path.utf8Start, count: path.utf8CodeUnitCount), requiresMQTTSubprotocol: true),
]
let outCapacity = 1024
let out = UnsafeMutableRawPointer.allocate(byteCount: outCapacity, alignment: 16)
let outAgain = UnsafeMutableRawPointer.allocate(byteCount: outCapacity, alignment: 16)
let written = UnsafeMutableRawPointer.allocate(byteCount: WebSocketUpgrade.writtenMaxBytes, alignment: 16)

@_cdecl("LLVMFuzzerTestOneInput")
public func webSocketFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    for policy in policies {
        let whole = WebSocketUpgrade.parse(input, policy: policy)
        checkRequest(whole, input: input, policy: policy)
        for length in [size - 1, size / 2, size / 3, 24, 4] where length >= 0 && length < size {
            checkPrefix(WebSocketUpgrade.parse(UnsafeRawBufferPointer(rebasing: input[0..<length]), policy: policy), length: length, whole: whole)
        }
        if case .complete(let consumed, _) = whole { checkFrames(input, start: consumed) }
    }
    checkFrames(input, start: 0)
    checkResponse(input)
    for level: UInt8 in [4, 5] {
        checkConnack(input, level: level, framed: false)
        checkConnack(input, level: level, framed: true)
    }
    return 0
}

/// The CONNACK verdict (option mqtt-connack-redispatch): a reference lies inside the input and
/// is at most what a string can hold; a prefix never contradicts the whole.
func checkConnack(_ input: UnsafeRawBufferPointer, level: UInt8, framed: Bool) {
    func read(_ bytes: UnsafeRawBufferPointer) -> ConnackVerdict {
        framed ? ConnackResponse.readFramed(bytes, protocolLevel: level, packetMaxBytes: 4096)
            : ConnackResponse.read(bytes, protocolLevel: level, packetMaxBytes: 4096)
    }
    let verdict = read(input)
    if case .tryElsewhere(_, _, let reference?) = verdict {
        precondition(reference.lowerBound >= 0 && reference.upperBound <= input.count && reference.count <= 65_535)
        precondition(level == 5, "a Server Reference for MQTT \(level)")
    }
    for length in [input.count / 2, 3, 1] where length < input.count {
        let prefix = read(UnsafeRawBufferPointer(rebasing: input[0..<length]))
        precondition(prefix == .needMore || prefix == verdict, "a prefix of the CONNACK reads \(prefix), the whole \(verdict)")
    }
}

func checkRequest(_ verdict: StageVerdict<WebSocketUpgradeRequest>, input: UnsafeRawBufferPointer, policy: WebSocketUpgradePolicy) {
    switch verdict {
    case .needMore:
        precondition(input.count < policy.headerMaxBytes, "needMore after \(input.count) bytes")
    case .reject(let rejection):
        precondition(rejection.stage == .webSocketUpgrade)
        guard let reason = WebSocketRejection(rawValue: rejection.code) else { preconditionFailure("unknown reason \(rejection.code)") }
        let n = WebSocketUpgrade.writeError(status: reason.httpStatus, to: written, capacity: WebSocketUpgrade.writtenMaxBytes)
        precondition(n <= WebSocketUpgrade.writtenMaxBytes)
    case .complete(let consumed, let request):
        precondition(consumed <= input.count && consumed <= policy.headerMaxBytes, "consumed past the input or the limit")
        precondition(consumed >= 4 && input[consumed - 4] == 0x0D && input[consumed - 3] == 0x0A && input[consumed - 2] == 0x0D && input[consumed - 1] == 0x0A)
        precondition(request.keyOffset + WebSocketUpgrade.keyLengthBytes <= consumed && request.targetOffset + request.targetLength <= consumed)
        precondition(input[request.targetOffset] == 0x2F)
        if policy.requiresMQTTSubprotocol { precondition(request.subprotocol != .none) }
        // The 101 for it reads back as a 101 that completes the handshake.
        let n = WebSocketUpgrade.write101(key: input.baseAddress! + request.keyOffset, subprotocol: request.subprotocol,
                                          to: written, capacity: WebSocketUpgrade.writtenMaxBytes)
        WebSocketUpgrade.acceptValue(key: input.baseAddress! + request.keyOffset, to: out)
        let answer = WebSocketUpgradeResponse.parse(UnsafeRawBufferPointer(start: written, count: n), expectedAccept: out)
        precondition(answer == .accepted(headLength: n), "the 101 written reads back as \(answer)")
    }
}

func checkPrefix(_ verdict: StageVerdict<WebSocketUpgradeRequest>, length: Int, whole: StageVerdict<WebSocketUpgradeRequest>) {
    switch (verdict, whole) {
    case (.needMore, _):
        break
    case (.reject(let a), .reject(let b)):
        precondition(a == b, "prefix \(length) refused for \(a.code), the whole for \(b.code)")
    case (.complete(let a, let x), .complete(let b, let y)):
        precondition(a == b && x == y, "prefix \(length) completed at \(a), the whole at \(b)")
    default:
        preconditionFailure("prefix \(length) contradicts the whole")
    }
}

/// Reading all at once, and reading a prefix then resuming with the whole, end the same.
func checkFrames(_ input: UnsafeRawBufferPointer, start: Int) {
    var cursor = WebSocketFrameCursor(start: start)
    let whole = WebSocketFrames.read(input, cursor: &cursor, into: out, capacity: outCapacity)
    precondition(cursor.framesEnd <= input.count && cursor.payloadLength <= outCapacity && cursor.framesEnd >= start)
    switch whole {
    case .needMore(let atLeast): precondition(atLeast > input.count, "needMore(\(atLeast)) with \(input.count) held")
    case .payload(let length, let end, _): precondition(length == cursor.payloadLength && end == cursor.framesEnd)
    case .reject: break
    }
    let split = start + (input.count - start) / 2
    guard split < input.count else { return }
    var resumed = WebSocketFrameCursor(start: start)
    let first = WebSocketFrames.read(UnsafeRawBufferPointer(rebasing: input[0..<split]), cursor: &resumed, into: outAgain, capacity: outCapacity)
    switch (first, whole) {
    case (.reject(let a), .reject(let b)): precondition(a == b, "a prefix refused for \(a), the whole for \(b)"); return
    case (.reject, _): preconditionFailure("a prefix refused, the whole not")
    case (.payload(_, _, true), _):
        // The message ended within the prefix: reading the whole stopped at the same frame.
        precondition(first == whole && resumed == cursor, "a prefix ended the message as \(first), the whole as \(whole)")
        return
    default: break
    }
    let again = WebSocketFrames.read(input, cursor: &resumed, into: outAgain, capacity: outCapacity)
    switch (again, whole) {
    case (.reject(let a), .reject(let b)): precondition(a == b)
    case (.payload, .payload), (.needMore, .needMore), (.needMore, .payload(_, _, false)):
        precondition(resumed == cursor, "resumed reading stands at \(resumed), one reading at \(cursor)")
        precondition(memcmp(out, outAgain, cursor.payloadLength) == 0, "resumed reading unmasked other bytes")
    default: preconditionFailure("resumed reading gave \(again), one reading \(whole)")
    }
}

func checkResponse(_ input: UnsafeRawBufferPointer) {
    let verdict = WebSocketUpgradeResponse.parse(input, expectedAccept: nil)
    switch verdict {
    case .needMore: precondition(input.count < WebSocketUpgradeResponse.headMaxBytes)
    case .accepted(let n): precondition(n <= input.count && n <= WebSocketUpgradeResponse.headMaxBytes)
    case .refused(let status): precondition(status >= 0 && status <= 999 && status != 101)
    case .invalid: break
    }
    if input.count > 1 {
        let prefix = WebSocketUpgradeResponse.parse(UnsafeRawBufferPointer(rebasing: input[0..<(input.count / 2)]), expectedAccept: nil)
        precondition(prefix == .needMore || prefix == verdict, "a prefix of the answer reads \(prefix), the whole \(verdict)")
    }
}
