// Splits one configuration line into words the way HAProxy does (configuration.txt §2.2, §2.3):
// spaces and tabs separate words, `#` starts a comment unless quoted or escaped, backslash
// escapes, "weak" double quotes that expand environment variables, 'strong' single quotes that
// expand nothing. It knows nothing about keywords.

enum ConfigLexer {
    /// A problem found while splitting a line.
    struct Issue: Equatable {
        var message: String
        var hint: String?
    }

    struct Output: Equatable {
        var words: [String] = []
        var errors: [Issue] = []
        var warnings: [Issue] = []
    }

    /// Values for the pseudo-variables `${.FILE}`, `${.LINE}` and `${.SECTION}`.
    struct Context {
        var file: String
        var line: Int
        var section: String
    }

    private enum Quote {
        case none
        case single
        case double
    }

    /// The words of `line` (which must not contain its line terminator).
    static func words(in line: String, environment: [String: String], context: Context) -> Output {
        var state = State(environment: environment, context: context)
        let scalars = Array(line.unicodeScalars)
        var quote = Quote.none
        var index = 0
        scan: while index < scalars.count {
            let scalar = scalars[index]
            switch quote {
            case .single:
                if scalar == "'" { quote = .none } else { state.append(scalar) }
                index += 1
            case .double:
                if scalar == "\"" {
                    quote = .none
                    index += 1
                } else if scalar == "\\" {
                    index = state.escape(scalars, at: index)
                } else if scalar == "$" {
                    index = state.expandVariable(scalars, at: index)
                } else {
                    state.append(scalar)
                    index += 1
                }
            case .none:
                switch scalar {
                case " ", "\t":
                    state.endWord()
                    index += 1
                case "#":
                    break scan
                case "'":
                    quote = .single
                    state.startWord()
                    index += 1
                case "\"":
                    quote = .double
                    state.startWord()
                    index += 1
                case "\\":
                    index = state.escape(scalars, at: index)
                default:
                    state.append(scalar)
                    index += 1
                }
            }
        }
        switch quote {
        case .none: break
        case .single:
            state.output.errors.append(Issue(message: "unmatched single quote", hint: "close the quote before the end of the line"))
        case .double:
            state.output.errors.append(Issue(message: "unmatched double quote", hint: "close the quote before the end of the line"))
        }
        state.endWord()
        return state.output
    }

    private struct State {
        let environment: [String: String]
        let context: Context
        var output = Output()
        var word = String.UnicodeScalarView()
        var inWord = false

        init(environment: [String: String], context: Context) {
            self.environment = environment
            self.context = context
        }

        mutating func startWord() { inWord = true }

        mutating func append(_ scalar: Unicode.Scalar) {
            word.append(scalar)
            inWord = true
        }

        mutating func endWord() {
            guard inWord else { return }
            output.words.append(String(word))
            word = String.UnicodeScalarView()
            inWord = false
        }

        /// Handles the backslash at `index`; returns the index after the escape. Unknown escapes
        /// keep their backslash (so `\1` reaches a regex as written), as HAProxy does.
        mutating func escape(_ scalars: [Unicode.Scalar], at index: Int) -> Int {
            inWord = true
            guard index + 1 < scalars.count else {
                word.append("\\")
                return index + 1
            }
            let next = scalars[index + 1]
            switch next {
            case " ", "\t", "#", "\\", "'", "\"", "$":
                word.append(next)
            case "n":
                word.append("\n")
            case "r":
                word.append("\r")
            case "t":
                word.append("\t")
            case "x":
                let digits = scalars.dropFirst(index + 2).prefix(2)
                if digits.count == 2, digits.allSatisfy({ $0.properties.isASCIIHexDigit }),
                   let value = UInt8(String(String.UnicodeScalarView(digits)), radix: 16) {
                    word.append(Unicode.Scalar(value))
                    return index + 4
                }
                output.errors.append(Issue(message: "invalid '\\x' escape", hint: "expected two hexadecimal digits, e.g. \\x23"))
                return index + 2
            default:
                word.append("\\")
                word.append(next)
            }
            return index + 2
        }

        /// Expands `$NAME`, `${NAME}`, `${NAME-default}` or `${NAME[*]}` (one word per
        /// space-separated value) at `index` inside double quotes; returns the index after it.
        mutating func expandVariable(_ scalars: [Unicode.Scalar], at index: Int) -> Int {
            inWord = true
            var cursor = index + 1
            var name = ""
            var fallback: String?
            var splitWords = false
            if cursor < scalars.count, scalars[cursor] == "{" {
                guard let close = scalars[cursor...].firstIndex(of: "}") else {
                    output.errors.append(Issue(message: "missing '}' after '${'", hint: "write ${NAME}"))
                    return scalars.count
                }
                var inner = String(String.UnicodeScalarView(scalars[(cursor + 1)..<close]))
                cursor = close + 1
                if inner.hasSuffix("[*]") {
                    splitWords = true
                    inner.removeLast(3)
                }
                if let dash = inner.firstIndex(of: "-") {
                    fallback = String(inner[inner.index(after: dash)...])
                    inner = String(inner[..<dash])
                }
                name = inner
                guard Self.isVariableName(name) || name.hasPrefix(".") else {
                    output.errors.append(Issue(
                        message: "invalid environment variable name '\(name)'",
                        hint: "names are letters, digits and '_', not starting with a digit"))
                    return cursor
                }
            } else {
                while cursor < scalars.count, Self.isNameScalar(scalars[cursor], first: name.isEmpty) {
                    name.unicodeScalars.append(scalars[cursor])
                    cursor += 1
                }
                if name.isEmpty {
                    word.append("$")
                    return index + 1
                }
            }
            let value: String
            switch name {
            case ".FILE": value = context.file
            case ".LINE": value = String(context.line)
            case ".SECTION": value = context.section
            default:
                if let found = environment[name] {
                    value = found
                } else if let fallback {
                    value = fallback
                } else {
                    if name.hasPrefix(".") {
                        output.errors.append(Issue(
                            message: "unknown pseudo-variable '\(name)'", hint: "known: .FILE, .LINE, .SECTION"))
                    } else {
                        output.warnings.append(Issue(
                            message: "environment variable '\(name)' is not set; it expands to an empty string",
                            hint: "set it, or give a default with ${\(name)-value}"))
                    }
                    value = ""
                }
            }
            if splitWords {
                let pieces = value.split(separator: " ", omittingEmptySubsequences: true)
                for (offset, piece) in pieces.enumerated() {
                    if offset > 0 {
                        endWord()
                        inWord = true
                    }
                    word.append(contentsOf: piece.unicodeScalars)
                }
            } else {
                word.append(contentsOf: value.unicodeScalars)
            }
            return cursor
        }

        static func isNameScalar(_ scalar: Unicode.Scalar, first: Bool) -> Bool {
            switch scalar {
            case "A"..."Z", "a"..."z", "_": return true
            case "0"..."9": return !first
            default: return false
            }
        }

        static func isVariableName(_ name: String) -> Bool {
            guard !name.isEmpty else { return false }
            var first = true
            for scalar in name.unicodeScalars {
                guard isNameScalar(scalar, first: first) else { return false }
                first = false
            }
            return true
        }
    }
}
