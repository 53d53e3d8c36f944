// StatsPresentation: the small judgements every renderer shares (a server's state word, uptime
// text, HTML escaping), so the page, the CSV, the metrics and the socket never disagree.

enum StatsPresentation {
    /// The states ringproxy_server_status reports, as HAProxy's exporter names them.
    static let serverStates = ["UP", "DOWN", "MAINT", "DRAIN"]

    /// MAINT and DRAIN (the operator's word) first, then what the checks say.
    static func state(of server: ServerSnapshot) -> String {
        switch server.adminState {
        case .maint: return "MAINT"
        case .drain: return "DRAIN"
        case .ready: return server.up ? "UP" : "DOWN"
        }
    }

    /// `0d 1h02m03s`, as HAProxy's `show info` prints Uptime.
    static func uptime(_ seconds: Int) -> String {
        let s = max(seconds, 0)
        return "\(s / 86400)d \((s % 86400) / 3600)h\(twoDigits((s % 3600) / 60))m\(twoDigits(s % 60))s"
    }

    /// `1h02m`, `3m05s`, `12s`: the page's "since" column.
    static func duration(_ seconds: Int) -> String {
        let s = max(seconds, 0)
        if s >= 86400 { return "\(s / 86400)d\(twoDigits((s % 86400) / 3600))h" }
        if s >= 3600 { return "\(s / 3600)h\(twoDigits((s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(twoDigits(s % 60))s" }
        return "\(s)s"
    }

    static func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// `text` with the scalars `replacement` names replaced (the one escaping loop of every format).
    static func escape(_ text: String, _ replacement: (Unicode.Scalar) -> String?) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if let replaced = replacement(scalar) { out += replaced } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    static let htmlEntities: [Unicode.Scalar: String] = ["&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"]

    /// Text safe inside HTML elements and attribute values.
    static func html(_ text: String) -> String { escape(text) { htmlEntities[$0] } }

    static let jsonEscapes: [Unicode.Scalar: String] = ["\"": "\\\"", "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"]

    /// A JSON string literal (RFC 8259 §7: quote, backslash and control characters escaped).
    static func json(_ text: String) -> String {
        "\"" + escape(text) { scalar in
            if let escaped = jsonEscapes[scalar] { return escaped }
            guard scalar.value < 0x20 else { return nil }
            let hex = String(scalar.value, radix: 16)
            return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } + "\""
    }
}
