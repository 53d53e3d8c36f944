// StatsJSON: the page's `;json`, in ringproxy's own schema (not HAProxy's typed JSON, which
// spends an object per field): one object with the process, the workers, every engine counter
// by its Counter name, and the frontends and backends, each server inside its backend. Field
// names are HAProxy's CSV column names where one exists (scur, stot, bin, econ ...).
// Schema "ringproxy-stats/1"; documented in the README.

public enum StatsJSON {
    public static let schema = "ringproxy-stats/1"

    public static func render(_ snapshot: StatsSnapshot, rates: SessionRates = SessionRates(), hideVersion: Bool = false) -> String {
        typealias J = StatsPresentation
        func object(_ fields: [(String, String)]) -> String {
            "{" + fields.map { "\(J.json($0.0)):\($0.1)" }.joined(separator: ",") + "}"
        }
        func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }
        func optional(_ value: Int?) -> String { value.map { "\($0)" } ?? "null" }

        let workers = snapshot.workers.map { w in
            object([("index", "\(w.index)"), ("cpu", optional(w.cpu)), ("active", "\(w.active)"), ("accepted", "\(w.accepted)"),
                    ("loop_turns", "\(w.loopTurns)"), ("completions", "\(w.completions)")])
        }
        let counters = object(Counter.allCases.map { ($0.info.name, "\(snapshot.counters[$0])") })
        let frontends = snapshot.frontends.map { f in
            let rate = rates.frontend(f.name)
            return object([
                ("pxname", J.json(f.name)), ("mode", J.json(f.mode)), ("binds", array(f.binds.map(J.json))),
                ("scur", "\(f.sessionsCurrent)"), ("smax", "\(f.sessionsMax)"), ("slim", optional(f.sessionLimit)),
                ("stot", "\(f.sessionsTotal)"), ("rate", "\(rate.current)"), ("rate_max", "\(rate.max)"),
                ("bin", "\(f.bytesIn)"), ("bout", "\(f.bytesOut)"), ("dcon", "\(f.deniedConnections)"), ("ereq", "\(f.requestErrors)"),
                ("mqtt_rejected", object(f.mqttRejectedByReason.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") })),
            ])
        }
        let backends = snapshot.backends.map { b in
            let rate = rates.backend(b.name)
            let servers = snapshot.servers.filter { $0.backend == b.name }.map { s in
                let serverRate = rates.server(b.name, s.name)
                return object([
                    ("svname", J.json(s.name)), ("sid", "\(s.id)"), ("addr", J.json(s.address)), ("status", J.json(s.status)),
                    ("state", J.json(StatsPresentation.state(of: s))), ("admin_state", J.json(s.adminState.rawValue)),
                    ("weight", "\(s.weight)"), ("uweight", "\(s.configuredWeight)"), ("backup", s.backup ? "true" : "false"),
                    ("checked", s.checked ? "true" : "false"), ("check_status", s.checkStatus.map { J.json($0.rawValue) } ?? "null"),
                    ("check_code", optional(s.checkCode)), ("check_duration", optional(s.checkDurationMs)),
                    ("check_desc", J.json(s.checkDescription)), ("last_chk", optional(s.lastCheckSeconds)),
                    ("chkfail", "\(s.checksFailed)"), ("chkdown", "\(s.downTransitions)"),
                    ("lastchg", "\(s.lastChangeSeconds)"), ("downtime", "\(s.downtimeSeconds)"),
                    ("scur", "\(s.sessionsCurrent)"), ("smax", "\(s.sessionsMax)"), ("slim", optional(s.sessionLimit)),
                    ("stot", "\(s.sessionsTotal)"), ("rate", "\(serverRate.current)"), ("rate_max", "\(serverRate.max)"),
                    ("bin", "\(s.bytesIn)"), ("bout", "\(s.bytesOut)"), ("econ", "\(s.connectErrors)"), ("wretr", "\(s.retries)"),
                    ("wredis", "\(s.redispatches)"), ("cli_abrt", "\(s.clientAborts)"), ("srv_abrt", "\(s.serverAborts)"),
                    ("lbtot", "\(s.selected)"), ("lastsess", optional(s.lastSessionSeconds)),
                    ("src_exhausted", "\(s.sourceExhausted)"),
                ])
            }
            return object([
                ("pxname", J.json(b.name)), ("algo", J.json(b.balance)), ("status", J.json(b.status)),
                ("scur", "\(b.sessionsCurrent)"), ("smax", "\(b.sessionsMax)"), ("stot", "\(b.sessionsTotal)"),
                ("rate", "\(rate.current)"), ("rate_max", "\(rate.max)"), ("bin", "\(b.bytesIn)"), ("bout", "\(b.bytesOut)"),
                ("econ", "\(b.connectErrors)"), ("wretr", "\(b.retries)"), ("wredis", "\(b.redispatches)"),
                ("weight", "\(b.weight)"), ("act", "\(b.activeServers)"), ("bck", "\(b.backupServers)"),
                ("lastchg", "\(b.lastChangeSeconds)"), ("downtime", "\(b.downtimeSeconds)"),
                ("stick_entries", optional(b.stickEntries)), ("stick_size", optional(b.stickSize)),
                ("servers", array(servers)),
            ])
        }
        return object([
            ("schema", J.json(schema)), ("version", hideVersion ? "null" : J.json(snapshot.version)), ("pid", "\(snapshot.pid)"),
            ("started_at", "\(snapshot.startedAtSeconds)"), ("uptime_seconds", "\(snapshot.uptimeSeconds)"),
            ("maxconn", "\(snapshot.maxConnections)"), ("current_connections", "\(snapshot.currentConnections)"),
            ("generation", "\(snapshot.generation)"), ("workers", array(workers)), ("counters", counters),
            ("frontends", array(frontends)), ("backends", array(backends)),
        ]) + "\n"
    }
}
