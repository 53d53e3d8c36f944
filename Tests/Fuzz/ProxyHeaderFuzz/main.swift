// libFuzzer target for ProxyHeader.parse, built by scripts/fuzz-proxyheader.sh together with
// the stage files it needs (one module, -sanitize=fuzzer,address). Besides crashes and
// out-of-bounds reads (libFuzzer hands over an exactly sized heap copy), it checks the
// verdict's bounds, that prefixes never contradict the whole, that bytes after a header change
// nothing, and that what the writer makes of an accepted header reads back the same.

@_cdecl("LLVMFuzzerTestOneInput")
public func proxyHeaderFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let whole = ProxyHeader.parse(input)
    checkBounds(whole, input: input)
    for length in [size - 1, size / 2, size / 3, 16, 13, 6] where length >= 0 && length < size {
        let verdict = ProxyHeader.parse(UnsafeRawBufferPointer(rebasing: input[0..<length]))
        checkPrefix(verdict, length: length, whole: whole)
    }
    if case .complete(let consumed, let info) = whole {
        // The header alone gives the same verdict as the header and what follows it.
        guard case .complete(consumed, info) = ProxyHeader.parse(UnsafeRawBufferPointer(rebasing: input[0..<consumed])) else {
            preconditionFailure("the header alone reads differently")
        }
        checkRoundTrip(info)
    }
    return 0
}

func checkBounds(_ verdict: StageVerdict<ProxyHeaderInfo>, input: UnsafeRawBufferPointer) {
    switch verdict {
    case .needMore:
        // A v1 line is decided within 107 bytes, a v2 block within 16 + its bounded length.
        precondition(input.count < ProxyHeader.v2FixedBytes + ProxyHeader.v2PayloadMaxBytes, "needMore after \(input.count) bytes")
        if input.first == 0x50 { precondition(input.count < ProxyHeader.v1LineMaxBytes, "v1 undecided after \(input.count) bytes") }
    case .reject(let rejection):
        precondition(rejection.stage == .proxyHeader)
        precondition(ProxyHeaderRejection(rawValue: rejection.code) != nil, "unknown reason \(rejection.code)")
    case .complete(let consumed, let info):
        precondition(consumed <= input.count, "consumed past the input")
        if info.version == 1 {
            precondition(input.first == 0x50 && consumed >= 15 && consumed <= ProxyHeader.v1LineMaxBytes)
            precondition(input[consumed - 2] == 0x0D && input[consumed - 1] == 0x0A, "a v1 line ends with CRLF")
        } else {
            precondition(info.version == 2 && input.first == 0x0D)
            precondition(consumed >= ProxyHeader.v2FixedBytes && consumed <= ProxyHeader.v2FixedBytes + ProxyHeader.v2PayloadMaxBytes)
        }
    }
}

func checkPrefix(_ verdict: StageVerdict<ProxyHeaderInfo>, length: Int, whole: StageVerdict<ProxyHeaderInfo>) {
    switch (verdict, whole) {
    case (.needMore, _):
        break
    case (.reject(let a), .reject(let b)):
        precondition(a == b, "prefix \(length) refused for \(a.code), the whole for \(b.code)")
    case (.complete(let a, _), .complete(let b, _)):
        precondition(a == b, "prefix \(length) completed at \(a), the whole at \(b)")
    default:
        preconditionFailure("prefix \(length) contradicts the whole")
    }
}

/// Both writers' output for the addresses read reads back to the same addresses.
func checkRoundTrip(_ info: ProxyHeaderInfo) {
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    defer { out.deallocate() }
    for version in 1...2 {
        let n = version == 1
            ? ProxyHeader.writeV1(info.addresses, to: out.baseAddress!, capacity: out.count)
            : ProxyHeader.writeV2(info.addresses, to: out.baseAddress!, capacity: out.count)
        precondition(n <= ProxyHeader.writtenMaxBytes)
        guard case .complete(let consumed, let again) = ProxyHeader.parse(UnsafeRawBufferPointer(rebasing: out[0..<n])) else {
            preconditionFailure("v\(version) writer output does not read back")
        }
        precondition(consumed == n && again.addresses == info.addresses, "v\(version) round trip changed the addresses")
    }
}
