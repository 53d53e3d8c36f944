// Where a configuration problem is and how it reads: one line per problem, in the form
// `FILE:LINE: 'keyword': message (hint)`. This file only formats; deciding what is wrong is the
// parser's and the checker's job.
import Foundation

/// A place in a configuration file. `line` starts at 1; 0 means "the file as a whole".
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// One problem (or warning) found in a configuration.
///
/// `keyword` is the directive the problem is about, as operators write it (`server`,
/// `timeout client`, `stick on`). It is empty when the problem is not about a known directive: an
/// unknown keyword, a quoting mistake, a file that cannot be read.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var keyword: String
    public var message: String
    public var hint: String?

    public init(file: String, line: Int, keyword: String, message: String, hint: String? = nil) {
        self.file = file
        self.line = line
        self.keyword = keyword
        self.message = message
        self.hint = hint
    }

    public var location: SourceLocation { SourceLocation(file: file, line: line) }

    /// `haproxy.cfg:12: 'server': missing address (expected ...)`, or without the quoted keyword
    /// when there is none: `haproxy.cfg:12: unknown keyword 'balanse' in backend section (...)`.
    /// Each part is cut to a readable length: a diagnostic about a huge token quotes its start.
    public var description: String {
        var text = location.description + ": "
        if !keyword.isEmpty { text += "'\(Self.shortened(keyword, 64))': " }
        text += Self.shortened(message, 400)
        if let hint, !hint.isEmpty { text += " (\(Self.shortened(hint, 400)))" }
        return text
    }

    static func shortened(_ text: String, _ length: Int) -> String {
        text.unicodeScalars.count <= length ? text : String(text.unicodeScalars.prefix(length)) + "…"
    }
}

/// Every error found in one configuration (parsing goes on after the first), plus the warnings
/// found on the way. Its description lists the errors, one per line, in file order.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    public var diagnostics: [ConfigDiagnostic]
    public var warnings: [ConfigDiagnostic]

    public init(diagnostics: [ConfigDiagnostic], warnings: [ConfigDiagnostic] = []) {
        self.diagnostics = diagnostics
        self.warnings = warnings
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }

    public var errorDescription: String? { description }
}
