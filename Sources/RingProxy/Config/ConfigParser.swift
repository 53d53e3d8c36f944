// The entry point: text (or a file) in, a ConfigFile or every error out. This file owns the walk
// over lines and sections; keywords are read in the ConfigParser+*.swift extensions and the
// whole-file checks in ConfigParser+Checks.swift. It never stops at the first error.
import Foundation

public enum ConfigParser {
    /// Parses a configuration. `file` is only used in diagnostics. `environment` supplies the
    /// variables that `"${NAME}"` expands to.
    public static func parse(
        text: String, file: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Result<ConfigFile, ConfigError> {
        var state = State(file: file, environment: environment)
        state.parse(text)
        return state.finish()
    }

    /// Reads and parses the file at `path`; a file that cannot be read is a ConfigError too.
    public static func parse(
        contentsOf path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> ConfigFile {
        let text = try readFile(path)
        return try parse(text: text, file: path, environment: environment).get()
    }

    private static func readFile(_ path: String) throws(ConfigError) -> String {
        func failure(_ message: String) -> ConfigError {
            ConfigError(diagnostics: [ConfigDiagnostic(file: path, line: 0, keyword: "", message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw failure("cannot read the configuration: no such file")
        }
        guard !isDirectory.boolValue else {
            throw failure("cannot read the configuration: it is a directory")
        }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > ConfigLimits.fileBytesMax {
            throw failure("the configuration is \(size) bytes, more than the \(ConfigLimits.fileBytesMax) a configuration file may have")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = String(cString: strerror(errno))
            throw failure("cannot read the configuration: \(reason)")
        }
        // Bytes that are not UTF-8 (a Latin-1 comment, say) become U+FFFD rather than failing.
        return String(decoding: data, as: UTF8.self)
    }
}

extension ConfigParser {
    /// What the line being read belongs to.
    enum OpenSection {
        case none
        case global
        /// A HAProxy section ringproxy does not read (peers, userlist, ...).
        case ignored(String)
        /// A defaults/frontend/backend/listen section, being filled in `State.draft`.
        case proxy
    }

    /// A proxy section while its lines are read; becomes DefaultsSection/Frontend/Backend when
    /// the next section starts.
    struct ProxyDraft {
        var kind: SectionKind
        /// Empty for an anonymous defaults section, or a proxy whose name was missing.
        var name: String
        var location: SourceLocation
        var defaultsIndex: Int?
        var settings = ProxySettings()
        var binds: [FrontendBind] = []
        var servers: [BackendServer] = []
        var useBackendRules: [UseBackendRule] = []
        var tcpRequestRules: [TCPRequestRule] = []
        var acls: [ACLDefinition] = []
        var stickTable: StickTableSettings?
        var stickRules: [StickRule] = []
        /// A `bind` line was seen, even one with errors (so "no bind line" is not reported too).
        var hasBindLine = false
    }

    /// A name written in one place that must exist elsewhere, checked once the file is read.
    struct BackendReference {
        var backend: String
        var keyword: String
        var location: SourceLocation
        /// The frontend the reference is in; nil in a defaults section.
        var frontend: String?
    }

    struct State {
        let file: String
        var environment: [String: String]
        var errors: [ConfigDiagnostic] = []
        var warnings: [ConfigDiagnostic] = []
        var config = ConfigFile()
        var section = OpenSection.none
        var draft: ProxyDraft?
        var lastDefaultsIndex: Int?
        var backendReferences: [BackendReference] = []
        var stickTableReferences: [BackendReference] = []
        /// The line being read (diagnostics default to it).
        var line = 0

        init(file: String, environment: [String: String]) {
            self.file = file
            self.environment = environment
        }

        var location: SourceLocation { SourceLocation(file: file, line: line) }

        mutating func error(_ keyword: String, _ message: String, hint: String? = nil, line: Int? = nil) {
            errors.append(ConfigDiagnostic(file: file, line: line ?? self.line, keyword: keyword, message: message, hint: hint))
        }

        mutating func error(_ keyword: String, _ problem: ConfigValueError, line: Int? = nil) {
            error(keyword, problem.message, hint: problem.hint, line: line)
        }

        mutating func warning(_ keyword: String, _ message: String, hint: String? = nil, line: Int? = nil) {
            warnings.append(ConfigDiagnostic(file: file, line: line ?? self.line, keyword: keyword, message: message, hint: hint))
        }

        // MARK: lines

        mutating func parse(_ text: String) {
            for (index, rawLine) in Self.lines(of: text).enumerated() {
                line = index + 1
                let bytes = rawLine.utf8.count
                guard bytes <= ConfigLimits.lineBytesMax else {
                    error("", "line longer than the \(ConfigLimits.lineBytesMax) bytes a line may have",
                          hint: "it starts with \(ConfigLimits.quotedPrefix(rawLine))")
                    continue
                }
                let lexed = ConfigLexer.words(
                    in: rawLine, environment: environment,
                    context: ConfigLexer.Context(file: file, line: line, section: sectionName))
                for problem in lexed.errors { error("", problem.message, hint: problem.hint) }
                for problem in lexed.warnings { warning("", problem.message, hint: problem.hint) }
                // A line with a quoting mistake cannot be split reliably: report it once, skip it.
                guard lexed.errors.isEmpty, !lexed.words.isEmpty else { continue }
                guard lexed.words.count <= ConfigLimits.wordsMax else {
                    error(lexed.words[0].count <= 64 ? lexed.words[0] : "", "\(lexed.words.count) words on one line, more than the \(ConfigLimits.wordsMax) HAProxy reads",
                          hint: "split it (several 'bind' or 'acl' lines add up)")
                    continue
                }
                if let long = lexed.words.first(where: { $0.utf8.count > ConfigLimits.wordBytesMax }) {
                    error("", "a word of \(long.utf8.count) bytes, more than the \(ConfigLimits.wordBytesMax) a word may have",
                          hint: "it starts with \(ConfigLimits.quotedPrefix(long))")
                    continue
                }
                read(lexed.words)
            }
            closeSection()
        }

        /// Lines without their terminators; "\r\n" and "\n" both end a line. A line longer than
        /// ConfigLimits.lineBytesMax keeps only its first scalars past the limit (it is refused
        /// as too long; there is no need to hold a huge one).
        static func lines(of text: String) -> [String] {
            var lines: [String] = []
            var current = String.UnicodeScalarView()
            var length = 0
            for scalar in text.unicodeScalars {
                if scalar == "\n" {
                    if current.last == "\r" { current.removeLast() }
                    lines.append(String(current))
                    current = String.UnicodeScalarView()
                    length = 0
                } else if length <= ConfigLimits.lineBytesMax {
                    current.append(scalar)
                    length += 1
                }
            }
            if current.last == "\r" { current.removeLast() }
            if !current.isEmpty { lines.append(String(current)) }
            return lines
        }

        var sectionName: String {
            switch section {
            case .none: return ""
            case .global: return "global"
            case .ignored(let kind): return kind
            case .proxy:
                guard let draft else { return "" }
                return draft.name.isEmpty ? draft.kind.rawValue : draft.name
            }
        }

        mutating func read(_ words: [String]) {
            let keyword = words[0]
            if keyword.hasPrefix("."), readDirective(words) { return }
            if ConfigKeywords.sections.contains(keyword) {
                openSection(words)
                return
            }
            if ConfigKeywords.ignoredSections.contains(keyword) {
                closeSection()
                section = .ignored(keyword)
                warning(keyword, "section ignored: not implemented by ringproxy")
                return
            }
            switch section {
            case .none:
                error(keyword, "appears before any section",
                      hint: "start a 'global', 'defaults', 'frontend', 'backend' or 'listen' section first")
            case .ignored:
                return
            case .global:
                readGlobal(words)
            case .proxy:
                readProxy(words)
            }
        }

        /// `.if`, `.notice "text"`, ...; returns false for an unknown directive.
        mutating func readDirective(_ words: [String]) -> Bool {
            let message = words.dropFirst().joined(separator: " ")
            switch words[0] {
            case ".if":
                error(".if", "conditional blocks are not supported by ringproxy",
                      hint: "keep the lines you want and remove the .if/.elif/.else/.endif lines")
            case ".elif", ".else", ".endif", ".diag":
                break
            case ".notice", ".warning":
                warning(words[0], message)
            case ".alert":
                error(words[0], message)
            default:
                return false
            }
            return true
        }

        // MARK: sections

        mutating func openSection(_ words: [String]) {
            closeSection()
            let keyword = words[0]
            guard let kind = SectionKind(rawValue: keyword) else { return }
            if kind == .global {
                section = .global
                if config.global.location == nil { config.global.location = location }
                if words.count > 1 { error("global", "takes no arguments", hint: "remove '\(words[1])'") }
                return
            }
            section = .proxy
            var name = ""
            var rest = words.dropFirst()
            if let first = rest.first, first != "from" {
                name = first
                rest = rest.dropFirst()
                // Defaults names get HAProxy's "very permissive check"; proxy names the strict one.
                if kind != .defaults, let bad = name.unicodeScalars.first(where: { !Self.isProxyNameScalar($0) }) {
                    error(keyword, "invalid character '\(bad)' in \(keyword) name '\(name)'",
                          hint: "names may contain letters, digits, '-', '_', '.' and ':'")
                }
            } else if kind != .defaults {
                error(keyword, "missing \(keyword) name", hint: "e.g. '\(keyword) mqtt_\(kind == .backend ? "servers" : "in")'")
            }
            var defaultsIndex = lastDefaultsIndex
            if let from = rest.first {
                if from == "from", rest.count == 2 {
                    defaultsIndex = lookUpDefaults(named: rest[rest.startIndex + 1], keyword: keyword)
                } else if from == "from" {
                    error(keyword, "expected one defaults section name after 'from'")
                } else {
                    error(keyword, "unexpected '\(from)' after the \(keyword) name", hint: "the form is '\(keyword) <name> [from <defaults>]'")
                }
            } else if kind == .defaults {
                // A defaults section without `from` resets everything (configuration.txt §4).
                defaultsIndex = nil
            }
            draft = ProxyDraft(kind: kind, name: name, location: location, defaultsIndex: defaultsIndex)
        }

        mutating func lookUpDefaults(named name: String, keyword: String) -> Int? {
            let matches = config.defaults.indices.filter { config.defaults[$0].name == name }
            guard let match = matches.last else {
                let names = config.defaults.compactMap(\.name)
                let hint = ConfigKeywords.suggestion(for: name, among: names).map { "did you mean '\($0)'?" }
                    ?? "a 'from' must name a defaults section declared above"
                error(keyword, "no defaults section named '\(name)'", hint: hint)
                return nil
            }
            if matches.count > 1 {
                error(keyword, "defaults section name '\(name)' is not unique",
                      hint: "rename one of the defaults sections declared at lines "
                        + matches.map { String(config.defaults[$0].location.line) }.joined(separator: ", "))
            }
            return match
        }

        static func isProxyNameScalar(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", ":": return true
            default: return false
            }
        }

        /// Turns the open proxy draft into model values.
        mutating func closeSection() {
            defer {
                draft = nil
                section = .none
            }
            guard let draft else { return }
            switch draft.kind {
            case .global:
                return
            case .defaults:
                config.defaults.append(DefaultsSection(
                    name: draft.name.isEmpty ? nil : draft.name, location: draft.location,
                    parentIndex: draft.defaultsIndex, settings: draft.settings))
                lastDefaultsIndex = config.defaults.count - 1
            case .frontend, .backend, .listen:
                guard !draft.name.isEmpty else { return }
                commitProxy(draft)
            }
        }

        mutating func commitProxy(_ draft: ProxyDraft) {
            let kind = draft.kind
            let keyword = kind.rawValue
            let hasFrontend = kind == .frontend || kind == .listen
            let hasBackend = kind == .backend || kind == .listen
            if hasFrontend, let other = config.frontends.first(where: { $0.name == draft.name }) {
                error(keyword, "name '\(draft.name)' is already used by the \(other.isListen ? "listen" : "frontend") declared at \(other.location)",
                      line: draft.location.line)
            } else if hasBackend, let other = config.backends.first(where: { $0.name == draft.name }) {
                error(keyword, "name '\(draft.name)' is already used by the \(other.isListen ? "listen" : "backend") declared at \(other.location)",
                      line: draft.location.line)
            }
            if hasFrontend, !draft.hasBindLine {
                error(keyword, "\(keyword) '\(draft.name)' has no 'bind' line",
                      hint: "add one such as 'bind *:1883'" + (kind == .frontend ? ", or make it a backend if it only holds servers" : ""),
                      line: draft.location.line)
            }
            if hasBackend {
                for rule in draft.stickRules where rule.table == nil && draft.stickTable == nil {
                    error(rule.kind.keyword, "\(keyword) '\(draft.name)' has no 'stick-table'",
                          hint: "add one such as 'stick-table type string len 32 size 100k expire 30m', or name another backend's with 'table <backend>'",
                          line: rule.location.line)
                }
            }
            if hasFrontend {
                var settings = draft.settings
                if kind == .listen, settings.defaultBackend == nil {
                    settings.defaultBackend = draft.name
                }
                config.frontends.append(Frontend(
                    name: draft.name, location: draft.location, isListen: kind == .listen,
                    defaultsIndex: draft.defaultsIndex, settings: settings, binds: draft.binds,
                    useBackendRules: draft.useBackendRules, tcpRequestRules: draft.tcpRequestRules,
                    acls: draft.acls, stickTable: draft.stickTable))
            }
            if hasBackend {
                config.backends.append(Backend(
                    name: draft.name, location: draft.location, isListen: kind == .listen,
                    defaultsIndex: draft.defaultsIndex, settings: draft.settings, servers: draft.servers,
                    stickTable: draft.stickTable, stickRules: draft.stickRules,
                    tcpRequestRules: kind == .listen ? [] : draft.tcpRequestRules, acls: draft.acls))
            }
        }

        // MARK: result

        mutating func finish() -> Result<ConfigFile, ConfigError> {
            runChecks()
            let order: (ConfigDiagnostic, ConfigDiagnostic) -> Bool = { $0.line < $1.line }
            let sortedErrors = Self.stableSorted(errors, by: order)
            let sortedWarnings = Self.stableSorted(warnings, by: order)
            guard sortedErrors.isEmpty else {
                return .failure(ConfigError(diagnostics: sortedErrors, warnings: sortedWarnings))
            }
            config.warnings = sortedWarnings
            return .success(config)
        }

        static func stableSorted<T>(_ items: [T], by less: (T, T) -> Bool) -> [T] {
            items.enumerated().sorted { lhs, rhs in
                if less(lhs.element, rhs.element) { return true }
                if less(rhs.element, lhs.element) { return false }
                return lhs.offset < rhs.offset
            }.map(\.element)
        }

        // MARK: shared helpers for keyword readers

        /// Reports a wrong argument count; returns true when the count is right.
        mutating func expect(_ words: [String], arguments count: Int, keyword: String, usage: String) -> Bool {
            let given = words.count - keyword.split(separator: " ").count
            if given < count {
                error(keyword, given == 0 ? "missing argument" : "missing argument after '\(words.last!)'", hint: "expected '\(usage)'")
                return false
            }
            if given > count {
                error(keyword, "unexpected '\(words[words.count - given + count])'", hint: "expected '\(usage)'")
                return false
            }
            return true
        }

        mutating func milliseconds(_ text: String, keyword: String, what: String? = nil) -> Int? {
            switch ConfigUnits.milliseconds(text, for: what) {
            case .success(let value): return value
            case .failure(let problem):
                error(keyword, problem)
                return nil
            }
        }

        mutating func integer(_ text: String, in range: ClosedRange<Int>, keyword: String, what: String) -> Int? {
            switch ConfigUnits.integer(text, in: range, what: what) {
            case .success(let value): return value
            case .failure(let problem):
                error(keyword, problem)
                return nil
            }
        }

        /// An unknown keyword, with the closest valid one in this section as a hint.
        mutating func unknownKeyword(_ keyword: String, in kind: SectionKind) {
            let candidates = ConfigKeywords.keywords(validIn: kind)
            let hint = ConfigKeywords.suggestion(for: keyword, among: candidates).map { "did you mean '\($0)'?" }
            error("", "unknown keyword '\(keyword)' in \(kind.rawValue) section", hint: hint)
        }
    }
}
