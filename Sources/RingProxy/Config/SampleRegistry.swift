// The sample fetches, converters and predefined ACLs ringproxy can evaluate, with their argument
// rules and output types, and the check of a parsed expression against them. A name missing here
// is an error in the configuration: the engine would have nothing to run for it. Adding a fetch
// means adding it here and teaching the engine to evaluate it.

/// The type of a sample, as HAProxy types them.
enum SampleType: String {
    case boolean
    case integer
    case ip
    case string
    case binary

    /// Types an ACL can match without `-m`: HAProxy requires `-m` for the others
    /// (configuration.txt §7.3).
    var hasDefaultMatch: Bool { self == .boolean || self == .integer || self == .ip }
}

enum SampleRegistry {
    private enum Arguments {
        case none
        /// `(<offset>,<length>)`, both non-negative integers; length 0 means "to the end".
        case offsetAndLength
        /// `(<packet type>,<field name or property id>)`.
        case mqttField
        /// `([<table>])`: an optional stick-table name (`sc0_conn_cur(per_ip)`).
        case optionalTable
        /// `(<counter>[,<table>])`: a stick counter number, then an optional stick-table name
        /// (`sc_conn_cur(0,per_ip)`).
        case counterAndOptionalTable
    }

    private struct Function {
        var output: SampleType
        var arguments: Arguments
        /// Input types a converter accepts; empty for fetches.
        var inputs: Set<SampleType> = []
    }

    private static let fetches: [String: Function] = [
        "req.payload": Function(output: .binary, arguments: .offsetAndLength),
        "req.len": Function(output: .integer, arguments: .none),
        "src": Function(output: .ip, arguments: .none),
        "dst_port": Function(output: .integer, arguments: .none),
        // Counters of the address tracked by `tcp-request connection track-sc0`.
        "sc0_conn_cur": Function(output: .integer, arguments: .optionalTable),
        "sc0_conn_cnt": Function(output: .integer, arguments: .optionalTable),
        "sc0_conn_rate": Function(output: .integer, arguments: .optionalTable),
        "sc_conn_cur": Function(output: .integer, arguments: .counterAndOptionalTable),
        "sc_conn_cnt": Function(output: .integer, arguments: .counterAndOptionalTable),
        "sc_conn_rate": Function(output: .integer, arguments: .counterAndOptionalTable),
    ]

    /// HAProxy fetches of the same family that ringproxy does not evaluate, refused with the
    /// reason and what to write instead.
    private static let unsupportedFetches: [String: ConfigValueError] = {
        var table: [String: ConfigValueError] = [:]
        for counter in StickCounter.allCases {
            let name = counter.rawValue
            for other in ["sc1", "sc2"] {
                table["\(other)_\(name)"] = ConfigValueError(
                    message: "fetch '\(other)_\(name)' reads stick counter \(other.dropFirst(2)); ringproxy tracks sc0 only",
                    hint: "track with 'tcp-request connection track-sc0 src' and read 'sc0_\(name)'")
            }
            table["src_\(name)"] = ConfigValueError(
                message: "fetch 'src_\(name)' looks the address up without tracking it, which ringproxy does not do",
                hint: "track it with 'tcp-request connection track-sc0 src' and read 'sc0_\(name)', which counts the connection being checked too")
        }
        return table
    }()

    /// The stick-counter fetches ringproxy evaluates, for messages.
    static let stickCounterFetchesText = "sc0_conn_cur, sc0_conn_rate, sc0_conn_cnt, or sc_conn_cur(0), sc_conn_rate(0), sc_conn_cnt(0)"

    private static let converters: [String: Function] = [
        "mqtt_is_valid": Function(output: .boolean, arguments: .none, inputs: [.binary, .string]),
        "mqtt_field_value": Function(output: .string, arguments: .mqttField, inputs: [.binary, .string]),
    ]

    /// Fetches whose ACL form matches without `-m` even though they return bytes (HAProxy's
    /// `req.payload` ACL matches hexadecimal patterns by default).
    private static let fetchesWithDefaultACLMatch: Set<String> = ["req.payload"]

    /// HAProxy's predefined ACLs (configuration.txt §7.4) that ringproxy evaluates.
    static let predefinedACLs: Set<String> = ["TRUE", "FALSE", "LOCALHOST", "REQ_CONTENT"]

    /// `-m` methods HAProxy has.
    static let matchMethods: Set<String> = [
        "found", "bool", "int", "ip", "bin", "len", "str", "sub", "reg", "beg", "end", "dir", "dom",
    ]

    static var fetchNames: [String] { fetches.keys.sorted() }
    static var converterNames: [String] { converters.keys.sorted() }

    /// Checks names, arguments and types; returns the expression's output type.
    static func check(_ expression: SampleExpression) -> Result<SampleType, ConfigValueError> {
        let fetchName = expression.fetch.name
        if let refusal = unsupportedFetches[fetchName] { return .failure(refusal) }
        guard let fetch = fetches[fetchName] else {
            return .failure(unknown("fetch", fetchName, among: fetchNames))
        }
        if let problem = checkArguments(expression.fetch, fetch.arguments) { return .failure(problem) }
        var type = fetch.output
        var producer = fetchName
        for converter in expression.converters {
            guard let function = converters[converter.name] else {
                return .failure(unknown("converter", converter.name, among: converterNames))
            }
            guard function.inputs.contains(type) else {
                return .failure(ConfigValueError(
                    message: "converter '\(converter.name)' cannot take the \(type.rawValue) output of '\(producer)'",
                    hint: "give it the request bytes, e.g. req.payload(0,0),\(converter.name)"))
            }
            if let problem = checkArguments(converter, function.arguments) { return .failure(problem) }
            type = function.output
            producer = converter.name
        }
        return .success(type)
    }

    /// Whether an ACL on this expression may omit `-m`.
    static func hasDefaultACLMatch(_ expression: SampleExpression, type: SampleType) -> Bool {
        type.hasDefaultMatch || (expression.converters.isEmpty && fetchesWithDefaultACLMatch.contains(expression.fetch.name))
    }

    private static func unknown(_ what: String, _ name: String, among names: [String]) -> ConfigValueError {
        if let guess = ConfigKeywords.suggestion(for: name, among: names) {
            return ConfigValueError(message: "unknown \(what) '\(name)'", hint: "did you mean '\(guess)'?")
        }
        if what == "fetch", ["sc0_", "sc1_", "sc2_", "sc_", "src_"].contains(where: name.hasPrefix) {
            return ConfigValueError(
                message: "stick-counter fetch '\(name)' is not supported by ringproxy",
                hint: "ringproxy reads \(stickCounterFetchesText)")
        }
        return ConfigValueError(message: "unknown \(what) '\(name)'", hint: "ringproxy knows: " + names.joined(separator: ", "))
    }

    private static func checkArguments(_ call: SampleCall, _ rule: Arguments) -> ConfigValueError? {
        switch rule {
        case .none:
            guard call.arguments.isEmpty else {
                return ConfigValueError(message: "'\(call.name)' takes no arguments", hint: "write '\(call.name)'")
            }
            return nil
        case .offsetAndLength:
            guard call.arguments.count == 2 else {
                return ConfigValueError(
                    message: "'\(call.name)' needs two arguments, an offset and a length",
                    hint: "e.g. \(call.name)(0,0) for all the bytes received")
            }
            for (label, text) in zip(["offset", "length"], call.arguments) where ConfigUnits.integer(text) == nil {
                return ConfigValueError(
                    message: "'\(call.name)' \(label) '\(text)' is not a non-negative number", hint: nil)
            }
            return nil
        case .mqttField:
            return checkMQTTField(call)
        case .optionalTable:
            guard call.arguments.count <= 1, call.arguments.allSatisfy({ !$0.isEmpty }) else {
                return ConfigValueError(
                    message: "'\(call.name)' takes at most one argument, a stick-table name",
                    hint: "e.g. \(call.name) or \(call.name)(per_ip)")
            }
            return nil
        case .counterAndOptionalTable:
            return checkStickCounter(call)
        }
    }

    /// `sc_conn_cur(<counter>[,<table>])`: HAProxy numbers its stick counters 0 to 2; ringproxy
    /// tracks the first.
    private static func checkStickCounter(_ call: SampleCall) -> ConfigValueError? {
        guard (1...2).contains(call.arguments.count), call.arguments.allSatisfy({ !$0.isEmpty }) else {
            return ConfigValueError(
                message: "'\(call.name)' needs a stick counter number and optionally a stick-table name",
                hint: "e.g. \(call.name)(0) or \(call.name)(0,per_ip)")
        }
        guard let counter = ConfigUnits.integer(call.arguments[0]), counter <= 2 else {
            return ConfigValueError(
                message: "'\(call.name)' stick counter '\(call.arguments[0])' does not exist", hint: "HAProxy has counters 0, 1 and 2")
        }
        guard counter == 0 else {
            return ConfigValueError(
                message: "'\(call.name)(\(counter))' reads stick counter \(counter); ringproxy tracks sc0 only",
                hint: "track with 'tcp-request connection track-sc0 src' and read '\(call.name)(0)'")
        }
        return nil
    }

    /// What a stick-counter fetch reads: a counter of the address tracked as sc0, in the table
    /// the fetch names (nil: the one sc0 tracks in). Nil for other samples.
    static func stickCounterRead(_ sample: SampleExpression) -> StickCounterRead? {
        guard sample.converters.isEmpty, fetches[sample.fetch.name] != nil else { return nil }
        let name = sample.fetch.name
        let arguments = sample.fetch.arguments
        if name.hasPrefix("sc0_"), let counter = StickCounter(rawValue: String(name.dropFirst(4))) {
            return StickCounterRead(counter: counter, table: arguments.first)
        }
        if name.hasPrefix("sc_"), let counter = StickCounter(rawValue: String(name.dropFirst(3))) {
            return StickCounterRead(counter: counter, table: arguments.count == 2 ? arguments[1] : nil)
        }
        return nil
    }

    // MQTT packet types by control packet number (MQTT 3.1.1 §2.2.1, MQTT 5.0 §2.1.2).
    private static let mqttPacketTypes = [
        "connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe",
        "suback", "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect", "auth",
    ]

    // Fields HAProxy's mqtt_field_value reads (configuration.txt, "mqtt_field_value"): names, or
    // MQTT 5.0 property identifiers (MQTT 5.0 §2.2.2.2) for the properties it supports.
    private static let mqttConnectFields = [
        "flags", "protocol_name", "protocol_version", "client_identifier", "will_topic",
        "will_payload", "username", "password", "keepalive",
    ]
    // The will delay interval is property 24 (§3.1.3.2.2): HAProxy's documentation lists it as
    // 18, which HAProxy 2.6 refuses in a CONNECT and reads under 24.
    private static let mqttConnectProperties: Set<Int> = [17, 33, 39, 34, 25, 23, 21, 22, 24, 1, 2, 3, 8, 9]
    private static let mqttConnackFields = ["flags", "protocol_version", "reason_code"]
    private static let mqttConnackProperties: Set<Int> = [17, 33, 36, 37, 39, 18, 34, 31, 40, 41, 42, 19, 26, 28, 21, 22]

    private static func checkMQTTField(_ call: SampleCall) -> ConfigValueError? {
        guard call.arguments.count == 2 else {
            return ConfigValueError(
                message: "'\(call.name)' needs two arguments, a packet type and a field",
                hint: "e.g. \(call.name)(connect,client_identifier)")
        }
        let typeText = call.arguments[0].lowercased()
        let packetNumber: Int
        if let number = ConfigUnits.integer(typeText) {
            guard (1...mqttPacketTypes.count).contains(number) else {
                return ConfigValueError(message: "unknown MQTT packet type '\(call.arguments[0])'", hint: "use connect (1) or connack (2)")
            }
            packetNumber = number
        } else if let index = mqttPacketTypes.firstIndex(of: typeText) {
            packetNumber = index + 1
        } else {
            let guess = ConfigKeywords.suggestion(for: typeText, among: ["connect", "connack"])
            return ConfigValueError(
                message: "unknown MQTT packet type '\(call.arguments[0])'",
                hint: guess.map { "did you mean '\($0)'?" } ?? "use connect or connack")
        }
        let fields: [String]
        let properties: Set<Int>
        let packetName: String
        switch packetNumber {
        case 1: (fields, properties, packetName) = (mqttConnectFields, mqttConnectProperties, "CONNECT")
        case 2: (fields, properties, packetName) = (mqttConnackFields, mqttConnackProperties, "CONNACK")
        default:
            return ConfigValueError(
                message: "MQTT \(mqttPacketTypes[packetNumber - 1].uppercased()) packets cannot be read",
                hint: "only the first packet each way is inspected: connect (from the client) and connack (from the server)")
        }
        let field = call.arguments[1].lowercased()
        if let property = ConfigUnits.integer(field) {
            guard properties.contains(property) else {
                if packetNumber == 1 && property == 18 {
                    return ConfigValueError(
                        message: "MQTT 5.0 property 18 is not a CONNECT property; the will delay interval is 24",
                        hint: "write mqtt_field_value(connect,24); HAProxy refuses 18 too")
                }
                return ConfigValueError(
                    message: "MQTT 5.0 property \(property) cannot be read from a \(packetName) packet",
                    hint: "readable: " + properties.sorted().map { String($0) }.joined(separator: ", "))
            }
            return nil
        }
        guard fields.contains(field) else {
            let guess = ConfigKeywords.suggestion(for: field, among: fields)
            return ConfigValueError(
                message: "unknown \(packetName) field '\(call.arguments[1])'",
                hint: guess.map { "did you mean '\($0)'?" } ?? "known: " + fields.joined(separator: ", "))
        }
        return nil
    }
}

/// A read of one counter of the address tracked as sc0 (`sc0_conn_rate`, `sc_conn_cur(0,per_ip)`).
struct StickCounterRead: Equatable {
    var counter: StickCounter
    /// The stick-table the fetch names; nil reads the table sc0 tracks in.
    var table: String?
}
