// Reads sample expressions (`req.payload(0,0),mqtt_field_value(connect,client_identifier)`),
// ACL bodies (`<sample> [flags] [patterns]`) and conditions (`if|unless` terms, `!`, `or`/`||`,
// `{ anonymous ACLs }`) into structured values, checked against SampleRegistry. Words come in
// already split by ConfigLexer; this file handles the second-level syntax inside one word
// (parentheses, commas, nested quotes; configuration.txt §2.2).

enum ConditionParser {
    /// Parses one word as a sample expression and checks it against the registry.
    static func sample(_ text: String) -> Result<(SampleExpression, SampleType), ConfigValueError> {
        let expression: SampleExpression
        switch parseSampleSyntax(text) {
        case .success(let parsed): expression = parsed
        case .failure(let error): return .failure(error)
        }
        return SampleRegistry.check(expression).map { (expression, $0) }
    }

    /// The syntax only: splits `fetch(args),conv(args),...` without checking names.
    static func parseSampleSyntax(_ text: String) -> Result<SampleExpression, ConfigValueError> {
        let characters = Array(text)
        var calls: [SampleCall] = []
        var index = 0
        guard !characters.isEmpty else {
            return .failure(ConfigValueError(message: "missing sample expression", hint: "e.g. req.payload(0,0),mqtt_is_valid"))
        }
        while true {
            let start = index
            while index < characters.count, characters[index] != "(", characters[index] != "," {
                index += 1
            }
            let name = String(characters[start..<index])
            guard !name.isEmpty else {
                return .failure(ConfigValueError(message: "missing fetch or converter name in '\(text)'", hint: nil))
            }
            guard name.unicodeScalars.allSatisfy(isNameScalar) else {
                let hint = name.contains("{") || name.contains("}")
                    ? "braces must be separate words: '{ \(text.filter { $0 != "{" && $0 != "}" }) }'"
                    : nil
                return .failure(ConfigValueError(message: "invalid name '\(name)' in sample '\(text)'", hint: hint))
            }
            var arguments: [String] = []
            if index < characters.count, characters[index] == "(" {
                switch parseArguments(characters, from: index + 1) {
                case .success(let (parsed, next)):
                    arguments = parsed
                    index = next
                case .failure:
                    return .failure(ConfigValueError(message: "missing ')' in '\(text)'", hint: nil))
                }
                if index < characters.count, characters[index] != "," {
                    return .failure(ConfigValueError(
                        message: "unexpected '\(characters[index])' after ')' in '\(text)'", hint: "separate converters with commas"))
                }
            }
            calls.append(SampleCall(name: name, arguments: arguments))
            if index >= characters.count { break }
            index += 1  // the comma
            if index >= characters.count {
                return .failure(ConfigValueError(message: "trailing ',' in '\(text)'", hint: "a converter name must follow the comma"))
            }
        }
        return .success(SampleExpression(fetch: calls[0], converters: Array(calls.dropFirst()), text: text))
    }

    private struct Unclosed: Error {}

    /// Arguments after an opening parenthesis, up to its closing one: split on commas at depth
    /// zero, with quotes and backslashes resolved (the second level of quoting).
    private static func parseArguments(_ characters: [Character], from start: Int) -> Result<([String], Int), Unclosed> {
        var arguments: [String] = []
        var current = ""
        var depth = 0
        var quote: Character?
        var index = start
        while index < characters.count {
            let character = characters[index]
            if let open = quote {
                if character == open {
                    quote = nil
                } else if character == "\\", open == "\"", index + 1 < characters.count {
                    index += 1
                    current.append(characters[index])
                } else {
                    current.append(character)
                }
                index += 1
                continue
            }
            switch character {
            case "'", "\"":
                quote = character
            case "\\":
                if index + 1 < characters.count {
                    index += 1
                    current.append(characters[index])
                }
            case "(":
                depth += 1
                current.append(character)
            case ")":
                if depth == 0 {
                    arguments.append(current)
                    if arguments == [""] { arguments = [] }
                    return .success((arguments, index + 1))
                }
                depth -= 1
                current.append(character)
            case ",":
                if depth == 0 {
                    arguments.append(current)
                    current = ""
                } else {
                    current.append(character)
                }
            default:
                current.append(character)
            }
            index += 1
        }
        return .failure(Unclosed())
    }

    private static func isNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": return true
        default: return false
        }
    }

    /// `<sample> [-i] [-m method] [--] [patterns...]`: the body of an `acl` line or of braces.
    static func aclExpression(_ words: ArraySlice<String>) -> Result<ACLExpression, ConfigValueError> {
        guard let first = words.first else {
            return .failure(ConfigValueError(message: "missing ACL criterion", hint: "e.g. req.len gt 0"))
        }
        let expression: SampleExpression
        let type: SampleType
        switch sample(first) {
        case .success(let (parsed, parsedType)): (expression, type) = (parsed, parsedType)
        case .failure(let error): return .failure(error)
        }
        var matchMethod: String?
        var flags: [String] = []
        var patternFiles: [String] = []
        var index = words.index(after: words.startIndex)
        flagLoop: while index < words.endIndex, words[index].hasPrefix("-"), words[index].count > 1 {
            let flag = words[index]
            switch flag {
            case "--":
                index += 1
                break flagLoop
            case "-i", "-n":
                flags.append(flag)
                index += 1
            case "-m", "-u":
                guard index + 1 < words.endIndex else {
                    return .failure(ConfigValueError(message: "missing value after '\(flag)'", hint: nil))
                }
                let value = words[index + 1]
                if flag == "-m" {
                    guard SampleRegistry.matchMethods.contains(value) else {
                        return .failure(ConfigValueError(
                            message: "unknown match method '\(value)'",
                            hint: "known: " + SampleRegistry.matchMethods.sorted().joined(separator: ", ")))
                    }
                    matchMethod = value
                } else {
                    flags += [flag, value]
                }
                index += 2
            case "-f":
                guard index + 1 < words.endIndex else {
                    return .failure(ConfigValueError(message: "missing file name after '-f'", hint: nil))
                }
                patternFiles.append(words[index + 1])
                index += 2
            case "-M":
                return .failure(ConfigValueError(
                    message: "map files ('-M') are not supported by ringproxy", hint: "use '-f <file>' for a list of patterns"))
            default:
                // Anything else that looks like a flag is a pattern such as a negative number.
                if flag.dropFirst().allSatisfy({ $0.isNumber }) { break flagLoop }
                return .failure(ConfigValueError(message: "unknown ACL flag '\(flag)'", hint: "known: -f, -i, -m, -n, -u, --"))
            }
        }
        let patterns = Array(words[index...])
        if matchMethod == nil, !SampleRegistry.hasDefaultACLMatch(expression, type: type) {
            return .failure(ConfigValueError(
                message: "matching the \(type.rawValue) sample '\(expression.text)' needs '-m <method>'",
                hint: "e.g. '\(expression.text) -m str value'; HAProxy requires it too"))
        }
        return .success(ACLExpression(sample: expression, matchMethod: matchMethod, flags: flags, patterns: patterns,
                                      patternFiles: patternFiles))
    }

    /// The words after `if`/`unless`. `knownACLs` are the names declared so far in the proxy.
    static func condition(
        _ words: ArraySlice<String>, polarity: RuleCondition.Polarity, knownACLs: [String]
    ) -> Result<RuleCondition, ConfigValueError> {
        guard !words.isEmpty else {
            return .failure(ConfigValueError(message: "missing condition after '\(polarity.rawValue)'", hint: nil))
        }
        var alternatives: [[ConditionTerm]] = [[]]
        var negate = false
        var index = words.startIndex
        while index < words.endIndex {
            var word = words[index]
            if word == "or" || word == "||" {
                guard !alternatives[alternatives.count - 1].isEmpty, !negate else {
                    return .failure(ConfigValueError(message: "'\(word)' has no condition before it", hint: nil))
                }
                alternatives.append([])
                index += 1
                continue
            }
            if word == "!" {
                negate.toggle()
                index += 1
                continue
            }
            var negated = negate
            negate = false
            if word.hasPrefix("!") {
                negated.toggle()
                word.removeFirst()
            }
            if word == "{" {
                guard let close = words[index...].firstIndex(of: "}") else {
                    return .failure(ConfigValueError(message: "missing '}' to close '{'", hint: "braces must be separate words: { req.len gt 0 }"))
                }
                let body = words[(index + 1)..<close]
                guard !body.isEmpty else {
                    return .failure(ConfigValueError(message: "empty '{ }' in condition", hint: nil))
                }
                switch aclExpression(body) {
                case .success(let expression):
                    alternatives[alternatives.count - 1].append(ConditionTerm(negated: negated, kind: .anonymous(expression)))
                case .failure(let error):
                    return .failure(error)
                }
                index = close + 1
                continue
            }
            if word.hasPrefix("{") || word.hasSuffix("}") {
                let inner = word.filter { $0 != "{" && $0 != "}" }
                return .failure(ConfigValueError(
                    message: "braces must be separate words in '\(words[index])'", hint: "write '{ \(inner) }'"))
            }
            guard knownACLs.contains(word) || SampleRegistry.predefinedACLs.contains(word) else {
                let candidates = knownACLs + SampleRegistry.predefinedACLs.sorted()
                if let guess = ConfigKeywords.suggestion(for: word, among: candidates) {
                    return .failure(ConfigValueError(message: "unknown ACL '\(word)'", hint: "did you mean '\(guess)'?"))
                }
                return .failure(ConfigValueError(
                    message: "unknown ACL '\(word)'", hint: "declare it with 'acl \(word) ...' above this line"))
            }
            alternatives[alternatives.count - 1].append(ConditionTerm(negated: negated, kind: .named(word)))
            index += 1
        }
        if negate {
            return .failure(ConfigValueError(message: "'!' has no condition after it", hint: nil))
        }
        if alternatives[alternatives.count - 1].isEmpty {
            return .failure(ConfigValueError(message: "condition ends with '\(words.last!)'", hint: "add a condition after it"))
        }
        return .success(RuleCondition(polarity: polarity, alternatives: alternatives, text: words.joined(separator: " ")))
    }
}
