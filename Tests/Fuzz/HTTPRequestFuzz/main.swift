// libFuzzer target for HTTPRequestParser.parse (the stats page's request parser), built by
// scripts/fuzz-httprequest.sh with the parser alone (one module, -sanitize=fuzzer,address).
// Besides crashes and out-of-bounds reads, it checks that a verdict stays within the input and
// the limits, that no prefix of a complete request is anything but "need more", and that the
// request alone reads back the same.

let headBytesMax = 512
let bodyBytesMax = 256

@_cdecl("LLVMFuzzerTestOneInput")
public func httpRequestFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let whole = HTTPRequestParser.parse(input, headBytesMax: headBytesMax, bodyBytesMax: bodyBytesMax)
    switch whole {
    case .needMore:
        precondition(size <= headBytesMax + 2 + bodyBytesMax, "needMore after \(size) bytes")
    case .error(let status):
        precondition([400, 413, 431, 501, 505].contains(status), "unexpected status \(status)")
    case .complete(let request, let consumed):
        precondition(consumed <= size && consumed > 0, "consumed \(consumed) of \(size)")
        precondition(request.body.count <= bodyBytesMax)
        precondition(request.target.hasPrefix("/") || request.target == "*")
        precondition(request.minorVersion == 0 || request.minorVersion == 1)
        for length in [consumed - 1, consumed / 2, consumed / 3, 1] where length >= 0 && length < consumed {
            let verdict = HTTPRequestParser.parse(UnsafeRawBufferPointer(rebasing: input[0..<length]),
                                                  headBytesMax: headBytesMax, bodyBytesMax: bodyBytesMax)
            precondition(verdict == .needMore, "prefix \(length) of a complete request: \(verdict)")
        }
        let alone = HTTPRequestParser.parse(UnsafeRawBufferPointer(rebasing: input[0..<consumed]),
                                            headBytesMax: headBytesMax, bodyBytesMax: bodyBytesMax)
        precondition(alone == .complete(request, consumed: consumed), "the request alone reads differently")
    }
    return 0
}
