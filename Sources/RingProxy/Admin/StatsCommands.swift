// StatsCommands: the stats socket's line commands as HAProxy operators type them with socat
// (`show stat`, `set server B/S state drain` ...), each answered like HAProxy: the answer, then
// an empty line. One line in, text out; the socket itself is AdminServer's. Commands that change
// servers need `level admin`, the stick table `level operator`, as in HAProxy.

/// One socket connection's state between lines.
public struct StatsCLISession: Sendable {
    public var level: StatsSocketLevel
    /// `prompt`: interactive mode, a `> ` after each answer and the connection stays open.
    public var interactive = false
    /// `quit`, or a one-shot (non-interactive) line was answered.
    public var finished = false

    public init(level: StatsSocketLevel) { self.level = level }
}

public enum StatsCommands {
    static let help: [(String, String)] = [
        ("help", "this list"),
        ("prompt", "toggle interactive mode with a prompt"),
        ("quit", "leave the session"),
        ("show info", "report information about the running process"),
        ("show stat", "report counters for each proxy and server (HAProxy's CSV)"),
        ("show servers state [<bk>]", "dump the servers' state (HAProxy's server-state format)"),
        ("show table [<table>]", "report the stick tables, or one table's entries (operator)"),
        ("clear table <table>", "remove every entry of a stick table (operator)"),
        ("show cli level", "display the level of this session"),
        ("set server <bk>/<srv> state ready|drain|maint", "change a server's admin state (admin)"),
        ("set server <bk>/<srv> weight <w>", "change a server's weight, 0 to 256 (admin)"),
        ("set server <bk>/<srv> health up|down", "force a server's health until the next check (admin)"),
        ("set weight <bk>/<srv> <w>", "the same as set server ... weight (admin)"),
        ("disable server <bk>/<srv>", "put a server in maintenance (admin)"),
        ("enable server <bk>/<srv>", "take a server out of maintenance (admin)"),
    ]

    static var helpText: String {
        help.map { "  " + $0.0 + String(repeating: " ", count: max(0, 48 - $0.0.count)) + ": " + $0.1 + "\n" }.joined()
    }

    /// Runs one input line (several commands may be separated by `;`) and returns what to send.
    public static func execute(_ line: String, session: inout StatsCLISession, control: AdminControl, rates: SessionRates = SessionRates()) -> String {
        var out = ""
        for command in line.split(separator: ";", omittingEmptySubsequences: true) {
            let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard !words.isEmpty else { continue }
            if words == ["quit"] {
                session.finished = true
                return out
            }
            if words == ["prompt"] {
                session.interactive.toggle()
                continue
            }
            out += answer(words, session: session, control: control, rates: rates) + "\n"
        }
        if session.interactive { out += "> " } else { session.finished = true }
        return out
    }

    static func answer(_ words: [String], session: StatsCLISession, control: AdminControl, rates: SessionRates) -> String {
        let denied = "Permission denied\n"
        switch (words[0], words.count > 1 ? words[1] : "") {
        case ("help", _):
            return "The following commands are valid at this level:\n" + helpText
        case ("show", "info"):
            return showInfo(control.snapshot(), rates: rates)
        case ("show", "stat"):
            return StatsCSV.render(control.snapshot(), rates: rates)
        case ("show", "cli") where words.count == 3 && words[2] == "level":
            return session.level.rawValue + "\n"
        case ("show", "servers") where words.count >= 3 && words[2] == "state":
            return showServersState(control.snapshot(), backend: words.count > 3 ? words[3] : nil)
        case ("show", "table"):
            guard session.level >= .operator else { return denied }
            return showTable(words.count > 2 ? words[2] : nil, control: control)
        case ("clear", "table"):
            guard session.level >= .operator else { return denied }
            guard words.count == 3 else { return "Optional table name expected\n" }
            do {
                _ = try control.clearStickTable(backend: words[2])
                return ""
            } catch { return error.description + "\n" }
        case ("set", "server"), ("set", "weight"), ("disable", "server"), ("enable", "server"):
            guard session.level >= .admin else { return denied }
            return changeServer(words, control: control)
        default:
            return "Unknown command: '\(words.joined(separator: " "))'. Please enter one of the following commands only:\n" + helpText
        }
    }

    static func changeServer(_ words: [String], control: AdminControl) -> String {
        guard words.count >= 3 else { return "Require 'backend/server'.\n" }
        let parts = words[2].split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return "Require 'backend/server'.\n" }
        let backend = String(parts[0]), server = String(parts[1])
        do {
            switch (words[0], words[1]) {
            case ("disable", _):
                try control.setServerState(backend: backend, server: server, state: .maint)
            case ("enable", _):
                try control.setServerState(backend: backend, server: server, state: .ready)
            case ("set", "weight"):
                guard words.count == 4 else { return "Require a weight.\n" }
                return try setWeight(words[3], backend: backend, server: server, control: control)
            default:
                guard words.count == 5 else { return "'set server <srv>' only supports 'state', 'weight' and 'health'.\n" }
                switch words[3] {
                case "state":
                    guard let state = ServerAdminState(rawValue: words[4]) else {
                        return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
                    }
                    try control.setServerState(backend: backend, server: server, state: state)
                case "weight":
                    return try setWeight(words[4], backend: backend, server: server, control: control)
                case "health":
                    guard words[4] == "up" || words[4] == "down" else { return "'set server <srv> health' expects 'up' or 'down'.\n" }
                    try control.setServerHealth(backend: backend, server: server, up: words[4] == "up")
                default:
                    return "'set server <srv>' only supports 'state', 'weight' and 'health'.\n"
                }
            }
        } catch {
            return error.description + "\n"
        }
        return ""
    }

    static func setWeight(_ text: String, backend: String, server: String, control: AdminControl) throws(AdminError) -> String {
        guard let weight = Int(text), (0...256).contains(weight) else { return "Weight must be an integer between 0 and 256.\n" }
        try control.setServerWeight(backend: backend, server: server, weight: weight)
        return ""
    }

    /// HAProxy's `show info` lines that mean something here, plus ringproxy's `Generation`.
    static func showInfo(_ s: StatsSnapshot, rates: SessionRates) -> String {
        let rate = s.frontends.reduce(UInt64(0)) { $0 + rates.frontend($1.name).current }
        let maxRate = s.frontends.reduce(UInt64(0)) { $0 + rates.frontend($1.name).max }
        let lines: [(String, String)] = [
            ("Name", "ringproxy"), ("Version", s.version), ("Nbthread", "\(s.workers.count)"), ("Process_num", "1"),
            ("Pid", "\(s.pid)"), ("Uptime", StatsPresentation.uptime(s.uptimeSeconds)), ("Uptime_sec", "\(s.uptimeSeconds)"),
            ("Maxconn", "\(s.maxConnections)"), ("CurrConns", "\(s.currentConnections)"), ("CumConns", "\(s.counters[.accepted])"),
            ("SessRate", "\(rate)"), ("MaxSessRate", "\(maxRate)"), ("Stopping", "0"),
            ("Listeners", "\(s.frontends.reduce(0) { $0 + $1.binds.count })"),
            ("TotalBytesOut", "\(s.counters[.bytesFromServers])"), ("Start_time_sec", "\(s.startedAtSeconds)"),
            ("Generation", "\(s.generation)"),
        ]
        return lines.map { "\($0.0): \($0.1)\n" }.joined()
    }

    /// HAProxy's `show servers state` (format 1): the columns a server-state file holds.
    static func showServersState(_ s: StatsSnapshot, backend: String?) -> String {
        if let backend, !s.backends.contains(where: { $0.name == backend }) { return "Can't find backend.\n" }
        var out = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
            + "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state "
            + "bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
        for (index, b) in s.backends.enumerated() where backend == nil || b.name == backend {
            let beID = s.frontends.count + index + 1
            for server in s.servers where server.backend == b.name {
                let (host, port) = splitAddress(server.address)
                // SRV_ST_STOPPED 0 / SRV_ST_RUNNING 2; SRV_ADMF_FMAINT 0x01, SRV_ADMF_FDRAIN 0x08;
                // CHK_RES_FAILED 2 / CHK_RES_PASSED 3; CHK_ST_CONFIGURED|CHK_ST_ENABLED 6.
                let adminBits = server.adminState == .maint ? 1 : server.adminState == .drain ? 8 : 0
                let columns: [String] = [
                    "\(beID)", b.name, "\(server.id)", server.name, host, server.up ? "2" : "0", "\(adminBits)",
                    "\(server.weight)", "\(server.configuredWeight)", "\(server.lastChangeSeconds)", "1",
                    server.checked ? (server.up ? "3" : "2") : "0", server.up ? "\(server.rise + server.fall - 1)" : "0",
                    server.checked ? "6" : "0", "0", "0", "0", "-", port, "-", "0", "0", "-", "-", "0",
                ]
                out += columns.joined(separator: " ") + "\n"
            }
        }
        return out
    }

    static func splitAddress(_ address: String) -> (String, String) {
        guard let colon = address.lastIndex(of: ":") else { return (address, "0") }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, String(address[address.index(after: colon)...]))
    }

    /// `show table`: one line per stick table; with a name, its entries (keys are kept as hashes).
    static func showTable(_ name: String?, control: AdminControl) -> String {
        let snapshot = control.snapshot()
        let tables = snapshot.backends.filter { $0.stickSize != nil && (name == nil || $0.name == name) }
        if let name, tables.isEmpty { return "No such table: \(name)\n" }
        var out = ""
        for table in tables {
            out += "# table: \(table.name), type: string, size:\(table.stickSize ?? 0), used:\(table.stickEntries ?? 0)\n"
            guard name != nil else { continue }
            do {
                for entry in try control.stickTableEntries(backend: table.name, limit: 100_000) {
                    let hex = String(entry.keyHash, radix: 16)
                    out += "0x\(hex): key=\(hex) use=0 exp=\(entry.expiresInMs) server_name=\(entry.server)\n"
                }
            } catch {
                out += error.description + "\n"
            }
        }
        return out
    }
}
