// libFuzzer target for the HAProxy-dialect config parser (lexer, sections, keywords, sample
// expressions and conditions, inheritance), built by scripts/fuzz-config.sh with the Config
// files alone (one module, -sanitize=fuzzer,address). Besides crashes it checks that every
// error and warning names a line of the input and says something, that a file that parses
// yields the effective view of each proxy, and that parsing is deterministic.

@_cdecl("LLVMFuzzerTestOneInput")
public func configFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    // Line count as the parser counts lines: a diagnostic may name the line after the last
    // (an unterminated section), never one further.
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
    let environment = ["HOME": "/root", "BROKER": "127.0.0.1:1883"]
    let first = ConfigParser.parse(text: text, file: "fuzz.cfg", environment: environment)
    switch first {
    case .success(let config):
        for diagnostic in config.warnings { check(diagnostic, lines: lines) }
        for frontend in config.effectiveFrontends { precondition(!frontend.name.isEmpty) }
        for backend in config.effectiveBackends {
            precondition(!backend.name.isEmpty)
            for server in backend.servers where server.ssl { precondition(server.tls != nil) }
        }
    case .failure(let error):
        precondition(!error.diagnostics.isEmpty, "a failure without a reason")
        for diagnostic in error.diagnostics + error.warnings { check(diagnostic, lines: lines) }
    }
    let second = ConfigParser.parse(text: text, file: "fuzz.cfg", environment: environment)
    switch (first, second) {
    case (.success(let a), .success(let b)): precondition(a == b, "two parses differ")
    case (.failure(let a), .failure(let b)): precondition(a == b, "two parses fail differently")
    default: preconditionFailure("two parses disagree")
    }
    return 0
}

func check(_ diagnostic: ConfigDiagnostic, lines: Int) {
    precondition(diagnostic.line >= 0 && diagnostic.line <= lines + 1, "line \(diagnostic.line) of \(lines): \(diagnostic)")
    precondition(!diagnostic.message.isEmpty, "an empty message: \(diagnostic)")
    precondition(diagnostic.file == "fuzz.cfg")
}
