// StatsHTML: the stats page in the spirit of HAProxy's: a table per frontend and per backend,
// server states colour-coded, then what only ringproxy has (not-MQTT rejections by reason,
// stick-table use, per-core load). Pure: snapshot and options in, HTML out; every name escaped.

public struct StatsHTMLOptions: Sendable {
    /// The page's own URI (links to ;csv and ;json, the admin form's target).
    public var uri: String
    public var refreshMs: Int?
    public var hideVersion: Bool
    /// Whether this client may use the admin form (`stats admin if ...`).
    public var adminAllowed: Bool
    /// The outcome of the last admin action (`;st=OK|ERR`), shown as a banner.
    public var status: String?

    public init(uri: String, refreshMs: Int? = nil, hideVersion: Bool = false, adminAllowed: Bool = false, status: String? = nil) {
        self.uri = uri
        self.refreshMs = refreshMs
        self.hideVersion = hideVersion
        self.adminAllowed = adminAllowed
        self.status = status
    }
}

public enum StatsHTML {
    static let style = """
        body{font-family:sans-serif;font-size:12px;margin:1em}
        table{border-collapse:collapse;margin:0 0 1.2em 0}
        th,td{border:1px solid #999;padding:2px 5px;text-align:right;white-space:nowrap}
        th{background:#20a0ff;color:#fff}
        td.name{text-align:left;font-weight:bold}
        caption{text-align:left;font-weight:bold;font-size:14px;padding:4px 0}
        tr.frontend td,tr.backend td{background:#e8e8f8;font-weight:bold}
        tr.UP td{background:#c0ffc0} tr.DOWN td{background:#ff9090} tr.MAINT td{background:#c8a0ff}
        tr.DRAIN td{background:#a0d0ff} tr.going td{background:#ffffa0}
        .banner{padding:4px;border:1px solid #080;background:#dfd;display:inline-block}
        .banner.ERR{border-color:#800;background:#fdd}
        """

    public static func render(_ snapshot: StatsSnapshot, rates: SessionRates = SessionRates(), options: StatsHTMLOptions) -> String {
        let h = StatsPresentation.html
        var out = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        if let refresh = options.refreshMs {
            out += "<meta http-equiv=\"refresh\" content=\"\(max(1, (refresh + 999) / 1000))\">"
        }
        out += "<title>Statistics Report for ringproxy</title><style>\(style)</style></head><body>\n"
        out += "<h1>ringproxy statistics</h1>\n<p>"
        if !options.hideVersion { out += "version \(h(snapshot.version)), " }
        out += "pid \(snapshot.pid), uptime \(StatsPresentation.uptime(snapshot.uptimeSeconds)), configuration generation \(snapshot.generation); "
        out += "connections \(snapshot.currentConnections) of maxconn \(snapshot.maxConnections). "
        out += "<a href=\"\(h(options.uri));csv\">CSV</a> <a href=\"\(h(options.uri));json\">JSON</a> <a href=\"/metrics\">Prometheus</a></p>\n"
        if let status = options.status {
            let failed = status != "OK"
            out += "<p class=\"banner\(failed ? " ERR" : "")\">\(failed ? "The action failed: \(h(status))" : "Action done.")</p>\n"
        }
        for f in snapshot.frontends { out += frontendTable(f, rate: rates.frontend(f.name)) }
        for b in snapshot.backends {
            out += backendTable(b, servers: snapshot.servers.filter { $0.backend == b.name }, rates: rates, options: options)
        }
        out += workerTable(snapshot.workers)
        out += "</body></html>\n"
        return out
    }

    static let sessionHeader = "<th>cur</th><th>max</th><th>limit</th><th>total</th><th>rate</th><th>rate max</th><th>bytes in</th><th>bytes out</th>"

    static func frontendTable(_ f: FrontendSnapshot, rate: SessionRate) -> String {
        let h = StatsPresentation.html
        var out = "<table><caption>frontend \(h(f.name)) (\(h(f.mode)); \(h(f.binds.joined(separator: ", "))))</caption>\n"
        out += "<tr><th></th>\(sessionHeader)<th>denied</th><th>errors</th><th>status</th></tr>\n"
        out += "<tr class=\"frontend\"><td class=\"name\">Frontend</td><td>\(f.sessionsCurrent)</td><td>\(f.sessionsMax)</td>"
        out += "<td>\(f.sessionLimit.map { "\($0)" } ?? "")</td><td>\(f.sessionsTotal)</td><td>\(rate.current)</td><td>\(rate.max)</td>"
        out += "<td>\(f.bytesIn)</td><td>\(f.bytesOut)</td><td>\(f.deniedConnections)</td><td>\(f.requestErrors)</td><td>OPEN</td></tr>\n"
        out += "</table>\n"
        if !f.mqttRejectedByReason.isEmpty {
            out += "<table><caption>frontend \(h(f.name)): rejected as not MQTT</caption><tr><th>reason</th><th>connections</th></tr>\n"
            for (reason, count) in f.mqttRejectedByReason.sorted(by: { $0.key < $1.key }) {
                out += "<tr><td class=\"name\">\(h(reason))</td><td>\(count)</td></tr>\n"
            }
            out += "</table>\n"
        }
        return out
    }

    static func backendTable(_ b: BackendSnapshot, servers: [ServerSnapshot], rates: SessionRates, options: StatsHTMLOptions) -> String {
        let h = StatsPresentation.html
        var out = "<table><caption>backend \(h(b.name)) (balance \(h(b.balance))"
        if let entries = b.stickEntries { out += "; stick table \(entries) of \(b.stickSize.map { "\($0)" } ?? "?") entries" }
        out += ")</caption>\n<tr><th>server</th><th>address</th>\(sessionHeader)<th>conn errors</th><th>retries</th><th>redispatches</th>"
        out += "<th>status</th><th>since</th><th>last check</th><th>weight</th><th>act</th><th>bck</th><th>chkfail</th><th>chkdown</th><th>downtime</th></tr>\n"
        for s in servers {
            let rate = rates.server(b.name, s.name)
            let state = StatsPresentation.state(of: s)
            let going = s.status.contains("/")   // "UP 1/3": going down, "DOWN 1/2": going up
            out += "<tr class=\"\(going ? "going" : state)\"><td class=\"name\">\(h(s.name))</td><td>\(h(s.address))</td>"
            out += "<td>\(s.sessionsCurrent)</td><td>\(s.sessionsMax)</td><td>\(s.sessionLimit.map { "\($0)" } ?? "")</td><td>\(s.sessionsTotal)</td>"
            out += "<td>\(rate.current)</td><td>\(rate.max)</td><td>\(s.bytesIn)</td><td>\(s.bytesOut)</td>"
            out += "<td>\(s.connectErrors)</td><td>\(s.retries)</td><td>\(s.redispatches)</td>"
            // data-state: the settled state even while the row shows "going" (read by scripts/browser-stats-test.py).
            out += "<td class=\"status\" data-state=\"\(state)\">\(h(s.status))</td><td>\(StatsPresentation.duration(s.lastChangeSeconds))</td><td>\(checkText(s))</td>"
            out += "<td>\(s.weight)/\(s.configuredWeight)</td><td>\(s.backup ? "" : "Y")</td><td>\(s.backup ? "Y" : "")</td>"
            out += "<td>\(s.checked ? "\(s.checksFailed)" : "")</td><td>\(s.checked ? "\(s.downTransitions)" : "")</td>"
            out += "<td>\(StatsPresentation.duration(s.downtimeSeconds))</td></tr>\n"
        }
        let rate = rates.backend(b.name)
        out += "<tr class=\"backend\"><td class=\"name\">Backend</td><td></td><td>\(b.sessionsCurrent)</td><td>\(b.sessionsMax)</td><td></td>"
        out += "<td>\(b.sessionsTotal)</td><td>\(rate.current)</td><td>\(rate.max)</td><td>\(b.bytesIn)</td><td>\(b.bytesOut)</td>"
        out += "<td>\(b.connectErrors)</td><td>\(b.retries)</td><td>\(b.redispatches)</td><td>\(h(b.status))</td>"
        out += "<td>\(StatsPresentation.duration(b.lastChangeSeconds))</td><td></td><td>\(b.weight)</td><td>\(b.activeServers)</td>"
        out += "<td>\(b.backupServers)</td><td></td><td></td><td>\(StatsPresentation.duration(b.downtimeSeconds))</td></tr>\n</table>\n"
        if options.adminAllowed && !servers.isEmpty {
            out += "<form method=\"post\" action=\"\(h(options.uri))\"><input type=\"hidden\" name=\"b\" value=\"\(h(b.name))\">"
            out += "Server: <select name=\"s\">" + servers.map { "<option value=\"\(h($0.name))\">\(h($0.name))</option>" }.joined()
            out += "</select> <select name=\"action\"><option value=\"ready\">Set state to READY</option>"
            out += "<option value=\"drain\">Set state to DRAIN</option><option value=\"maint\">Set state to MAINT</option>"
            out += "<option value=\"hrunn\">Health: force UP</option><option value=\"hdown\">Health: force DOWN</option></select> "
            out += "<input type=\"submit\" value=\"Apply\"></form>\n"
        }
        return out
    }

    /// `L4OK in 1ms`, `* L4CON` while it counts towards a change, empty without checks.
    static func checkText(_ s: ServerSnapshot) -> String {
        guard s.checked, let status = s.checkStatus else { return "" }
        var text = status.rawValue
        if let code = s.checkCode { text += "/\(code)" }
        if let duration = s.checkDurationMs { text += " in \(duration)ms" }
        if !s.checkDescription.isEmpty { text += " (\(StatsPresentation.html(s.checkDescription)))" }
        return text
    }

    static func workerTable(_ workers: [WorkerLoad]) -> String {
        var out = "<table><caption>per-core load</caption><tr><th>worker</th><th>cpu</th><th>connections</th><th>accepted</th><th>loop turns</th><th>completions</th></tr>\n"
        for w in workers {
            out += "<tr><td class=\"name\">\(w.index)</td><td>\(w.cpu.map { "\($0)" } ?? "-")</td><td>\(w.active)</td><td>\(w.accepted)</td>"
            out += "<td>\(w.loopTurns)</td><td>\(w.completions)</td></tr>\n"
        }
        return out + "</table>\n"
    }
}
