// StatsPageHandler: one parsed request on a stats frontend -> one response. Routing
// (`<uri>`, `<uri>;csv`, `<uri>;json`, `/metrics`), `stats auth` (Basic, RFC 7617), the methods
// allowed, and the admin form's POST (`stats admin if ...`). Runs on the admin thread only.

public enum StatsPageHandler {
    public static let allowedMethods = ["GET", "HEAD", "POST"]
    /// Largest admin form body accepted.
    public static let bodyBytesMax = 4 * 1024

    /// `peer` is the client's raw address (4 or 16 bytes), for `stats admin if { src ... }`.
    public static func respond(to request: HTTPRequest, page: StatsPageConfig, peer: [UInt8], control: AdminControl,
                               rates: SessionRates) -> HTTPResponse {
        guard allowedMethods.contains(request.method) else {
            return .error(405, headers: [("Allow", allowedMethods.joined(separator: ", "))])
        }
        guard let route = route(request.target, uri: page.uri) else { return .error(404) }
        if !page.credentials.isEmpty && !authorized(request.header("authorization"), page.credentials) {
            return .error(401, headers: [("WWW-Authenticate", "Basic realm=\"\(page.realm.filter { $0 != "\"" && $0 != "\\" })\"")])
        }
        if request.method == "POST" {
            guard route.format == .html else { return .error(405, headers: [("Allow", "GET, HEAD")]) }
            guard page.admin.allows(peer) else { return .error(403) }
            return adminAction(request.body, page: page, control: control)
        }
        let snapshot = control.snapshot()
        switch route.format {
        case .csv:
            return HTTPResponse(status: 200, contentType: "text/csv; charset=utf-8", body: StatsCSV.render(snapshot, rates: rates))
        case .json:
            return HTTPResponse(status: 200, contentType: "application/json", body: StatsJSON.render(snapshot, rates: rates, hideVersion: page.hideVersion))
        case .metrics:
            return HTTPResponse(status: 200, contentType: PrometheusText.contentType,
                                body: PrometheusText.render(snapshot, rates: rates, hideVersion: page.hideVersion))
        case .html:
            let options = StatsHTMLOptions(uri: page.uri, refreshMs: route.noRefresh ? nil : page.refreshMs, hideVersion: page.hideVersion,
                                           adminAllowed: page.admin.allows(peer), status: route.status)
            return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: StatsHTML.render(snapshot, rates: rates, options: options))
        }
    }

    enum Format { case html, csv, json, metrics }

    struct Route: Equatable {
        var format: Format
        var noRefresh = false
        var status: String?
    }

    /// `<uri>[;csv|;json|;norefresh|;st=X]...[?query]` or `/metrics`; nil: not a stats path.
    static func route(_ target: String, uri: String) -> Route? {
        if target == "/metrics" || target.hasPrefix("/metrics?") { return Route(format: .metrics) }
        guard target.hasPrefix(uri) else { return nil }
        var rest = Substring(target.dropFirst(uri.count))
        if let question = rest.firstIndex(of: "?") { rest = rest[..<question] }
        var route = Route(format: .html)
        guard rest.isEmpty || rest.hasPrefix(";") else { return nil }
        for option in rest.split(separator: ";") {
            switch option {
            case "csv": route.format = .csv
            case "json": route.format = .json
            case "norefresh": route.noRefresh = true
            default:
                guard option.hasPrefix("st=") else { return nil }
                route.status = String(option.dropFirst(3).filter { $0.isLetter || $0.isNumber })
            }
        }
        return route
    }

    /// `Authorization: Basic base64(user:password)` against the `stats auth` lines.
    static func authorized(_ header: String?, _ credentials: [StatsCredential]) -> Bool {
        guard let header, header.count > 6, header.prefix(6).lowercased() == "basic " else { return false }
        guard let decoded = base64Decode(header.dropFirst(6).trimmingSpaces()),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return false }
        let user = String(decoding: decoded[..<colon], as: UTF8.self)
        let password = String(decoding: decoded[(colon + 1)...], as: UTF8.self)
        return credentials.contains { $0.user == user && $0.password == password }
    }

    /// RFC 4648 §4 base64 (padding optional); nil on any other character.
    static func base64Decode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out
    }

    /// The admin form: `b=<backend>&s=<server>&action=ready|drain|maint|hrunn|hdown`
    /// (HAProxy's action names), answered with a redirect to the page and its outcome.
    static func adminAction(_ body: [UInt8], page: StatsPageConfig, control: AdminControl) -> HTTPResponse {
        var fields: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            fields[percentDecode(parts[0])] = percentDecode(parts[1])
        }
        var status = "OK"
        if let backend = fields["b"], let server = fields["s"], let action = fields["action"] {
            do {
                switch action {
                case "ready": try control.setServerState(backend: backend, server: server, state: .ready)
                case "drain": try control.setServerState(backend: backend, server: server, state: .drain)
                case "maint": try control.setServerState(backend: backend, server: server, state: .maint)
                case "hrunn": try control.setServerHealth(backend: backend, server: server, up: true)
                case "hdown": try control.setServerHealth(backend: backend, server: server, up: false)
                default: status = "UNKNOWNACTION"
                }
            } catch {
                status = "ERR"
            }
        } else {
            status = "MISSINGFIELD"
        }
        return HTTPResponse(status: 303, body: "", headers: [("Location", "\(page.uri);st=\(status)")])
    }

    /// application/x-www-form-urlencoded: `+` is a space, `%XX` a byte.
    static func percentDecode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
