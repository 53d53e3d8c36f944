// libFuzzer target for MQTTPeek.parseConnect, built by scripts/fuzz-mqttpeek.sh together with
// Sources/MQTTPeek (one module, -sanitize=fuzzer,address). Besides crashes and out-of-bounds
// reads (libFuzzer hands over an exactly sized heap copy), it checks the verdict's invariants
// and that prefixes of the input never contradict the whole.

@_cdecl("LLVMFuzzerTestOneInput")
public func mqttPeekFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    // The default limit, one derived from the input so that tooLarge is reached, and no limit.
    let derivedLimit = size == 0 ? 0 : 2 + Int(input[size - 1]) * 4
    for limit in [65536, derivedLimit, Int.max] {
        let whole = MQTTPeek.parseConnect(input, connectMaxBytes: limit)
        checkInvariants(whole, input: input, limit: limit)
        var prefixLengths = (size - 1, size / 2, size / 3)
        if case .connect(let packet) = whole { prefixLengths.2 = packet.packetLength }
        for length in [prefixLengths.0, prefixLengths.1, prefixLengths.2] where length >= 0 && length <= size {
            let prefix = UnsafeRawBufferPointer(rebasing: input[0..<length])
            let verdict = MQTTPeek.parseConnect(prefix, connectMaxBytes: limit)
            checkInvariants(verdict, input: prefix, limit: limit)
            checkPrefix(verdict, length: length, whole: whole)
        }
    }
    return 0
}

func checkInvariants(_ verdict: ConnectVerdict, input: UnsafeRawBufferPointer, limit: Int) {
    switch verdict {
    case .needMore(let atLeast):
        precondition(atLeast > input.count, "needMore(\(atLeast)) with \(input.count) bytes")
    case .invalid:
        break
    case .connect(let packet):
        precondition(packet.packetLength <= input.count, "packet longer than the input")
        precondition(packet.packetLength <= limit, "packet over connectMaxBytes")
        precondition((3...5).contains(packet.protocolLevel))
        precondition(packet.willQoS < 3)
        precondition(packet.hasWill == (packet.willTopic != nil) && packet.hasWill == (packet.willPayload != nil))
        precondition(packet.hasUsername == (packet.username != nil))
        precondition(packet.hasPassword == (packet.password != nil))
        var previousEnd = 0
        for case let range? in [
            packet.properties, packet.clientIdentifier, packet.willProperties, packet.willTopic,
            packet.willPayload, packet.username, packet.password,
        ] {
            precondition(range.lowerBound >= previousEnd, "fields overlap or are out of order")
            precondition(range.upperBound <= packet.packetLength, "field past the packet")
            previousEnd = range.upperBound
        }
        for case let range? in [packet.clientIdentifier, packet.willTopic, packet.username] {
            precondition(isMQTTString(UnsafeRawBufferPointer(rebasing: input[range])), "accepted a bad string")
        }
    }
}

/// Same rules as the unit tests' expectPrefixConsistent.
func checkPrefix(_ verdict: ConnectVerdict, length: Int, whole: ConnectVerdict) {
    switch (whole, verdict) {
    case (.connect(let packet), _) where length >= packet.packetLength:
        precondition(verdict == whole, "a prefix holding the whole packet parsed differently")
    case (.connect(let packet), .needMore(let atLeast)):
        precondition(atLeast > length && atLeast <= packet.packetLength)
    case (.needMore(let wholeAtLeast), .needMore(let atLeast)):
        precondition(atLeast <= wholeAtLeast)
    case (.invalid, .needMore):
        break
    case (.invalid(let reason), .invalid(let prefixReason)):
        precondition(reason == prefixReason, "prefix said \(prefixReason), whole says \(reason)")
    default:
        preconditionFailure("prefix of \(length) gave \(verdict), whole gave \(whole)")
    }
}

/// Well-formed UTF-8 without U+0000, by the standard library's decoder (no allocation).
func isMQTTString(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var iterator = bytes.makeIterator()
    var decoder = Unicode.UTF8()
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar): if scalar.value == 0 { return false }
        case .emptyInput: return true
        case .error: return false
        }
    }
}
