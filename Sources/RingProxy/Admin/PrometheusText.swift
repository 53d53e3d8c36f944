// PrometheusText: the stats as Prometheus text exposition (format 0.0.4) for `/metrics` on a
// stats frontend. Names follow HAProxy's built-in exporter with a `ringproxy_` prefix
// (`ringproxy_frontend_current_sessions{proxy="mqtt"}`); every engine Counter follows as
// `ringproxy_engine_<name>` with its help text. Counters end in `_total`. Pure: a snapshot in, text out.

public enum PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// One metric family being written: its HELP/TYPE lines once, then samples.
    struct Family {
        var name: String
        var type: String
        var help: String
        var samples: [(labels: [(String, String)], value: String)] = []
    }

    public static func render(_ snapshot: StatsSnapshot, rates: SessionRates = SessionRates(), hideVersion: Bool = false) -> String {
        var families: [Family] = []
        func add(_ name: String, _ type: String, _ help: String, _ labels: [(String, String)], _ value: some BinaryInteger) {
            if let index = families.firstIndex(where: { $0.name == name }) {
                families[index].samples.append((labels, "\(value)"))
            } else {
                families.append(Family(name: name, type: type, help: help, samples: [(labels, "\(value)")]))
            }
        }
        let gauge = "gauge", counter = "counter"
        add("ringproxy_process_build_info", gauge, "ringproxy's version (hidden with 'stats hide-version')",
            hideVersion ? [] : [("version", snapshot.version)], 1)
        add("ringproxy_process_start_time_seconds", gauge, "Unix time the process started", [], snapshot.startedAtSeconds)
        add("ringproxy_process_uptime_seconds", gauge, "seconds since the process started", [], snapshot.uptimeSeconds)
        add("ringproxy_process_max_connections", gauge, "global maxconn in force", [], snapshot.maxConnections)
        add("ringproxy_process_current_connections", gauge, "connections open, all proxies", [], snapshot.currentConnections)
        add("ringproxy_process_generation", gauge, "configuration generation serving (1, then +1 per reload)", [], snapshot.generation)
        for w in snapshot.workers {
            let labels = [("worker", "\(w.index)")]
            add("ringproxy_worker_current_connections", gauge, "connections open on the worker (core)", labels, w.active)
            add("ringproxy_worker_accepted_total", counter, "connections the worker accepted", labels, w.accepted)
            add("ringproxy_worker_loop_turns_total", counter, "event loop turns of the worker", labels, w.loopTurns)
            add("ringproxy_worker_completions_total", counter, "io_uring completions the worker handled", labels, w.completions)
        }
        for f in snapshot.frontends {
            let labels = [("proxy", f.name)]
            let rate = rates.frontend(f.name)
            add("ringproxy_frontend_current_sessions", gauge, "current sessions (scur)", labels, f.sessionsCurrent)
            add("ringproxy_frontend_max_sessions", gauge, "most sessions at once (smax)", labels, f.sessionsMax)
            if let limit = f.sessionLimit { add("ringproxy_frontend_limit_sessions", gauge, "maxconn of the frontend (slim)", labels, limit) }
            add("ringproxy_frontend_sessions_total", counter, "sessions (stot)", labels, f.sessionsTotal)
            add("ringproxy_frontend_current_session_rate", gauge, "sessions per second over the last second (rate)", labels, rate.current)
            add("ringproxy_frontend_max_session_rate", gauge, "highest session rate seen (rate_max)", labels, rate.max)
            add("ringproxy_frontend_bytes_in_total", counter, "bytes from clients (bin)", labels, f.bytesIn)
            add("ringproxy_frontend_bytes_out_total", counter, "bytes to clients (bout)", labels, f.bytesOut)
            add("ringproxy_frontend_denied_connections_total", counter, "connections denied by rules or maxconn (dcon)", labels, f.deniedConnections)
            add("ringproxy_frontend_request_errors_total", counter, "connections closed before reaching a server: not MQTT, bad PROXY header, incomplete preamble (ereq)", labels, f.requestErrors)
            for (reason, count) in f.mqttRejectedByReason.sorted(by: { $0.key < $1.key }) {
                add("ringproxy_frontend_mqtt_rejected_total", counter, "connections rejected as not MQTT, by reason", labels + [("reason", reason)], count)
            }
        }
        for b in snapshot.backends {
            let labels = [("proxy", b.name)]
            let rate = rates.backend(b.name)
            add("ringproxy_backend_status", gauge, "1 when at least one server takes connections", labels, b.status == "UP" ? 1 : 0)
            add("ringproxy_backend_current_sessions", gauge, "current sessions (scur)", labels, b.sessionsCurrent)
            add("ringproxy_backend_max_sessions", gauge, "most sessions at once (smax)", labels, b.sessionsMax)
            add("ringproxy_backend_sessions_total", counter, "sessions (stot)", labels, b.sessionsTotal)
            add("ringproxy_backend_current_session_rate", gauge, "sessions per second over the last second (rate)", labels, rate.current)
            add("ringproxy_backend_max_session_rate", gauge, "highest session rate seen (rate_max)", labels, rate.max)
            add("ringproxy_backend_bytes_in_total", counter, "bytes from clients (bin)", labels, b.bytesIn)
            add("ringproxy_backend_bytes_out_total", counter, "bytes to clients (bout)", labels, b.bytesOut)
            add("ringproxy_backend_connection_errors_total", counter, "failed connection attempts to servers (econ)", labels, b.connectErrors)
            add("ringproxy_backend_retry_warnings_total", counter, "connection retries (wretr)", labels, b.retries)
            add("ringproxy_backend_redispatch_warnings_total", counter, "redispatches to another server (wredis)", labels, b.redispatches)
            add("ringproxy_backend_weight", gauge, "total weight of the servers taking connections", labels, b.weight)
            add("ringproxy_backend_active_servers", gauge, "active servers taking connections (act)", labels, b.activeServers)
            add("ringproxy_backend_backup_servers", gauge, "backup servers taking connections (bck)", labels, b.backupServers)
            add("ringproxy_backend_last_change_seconds", gauge, "seconds since the last UP/DOWN change (lastchg)", labels, b.lastChangeSeconds)
            add("ringproxy_backend_downtime_seconds_total", counter, "seconds spent DOWN (downtime)", labels, b.downtimeSeconds)
            if let entries = b.stickEntries {
                add("ringproxy_backend_stick_table_entries", gauge, "stick-table entries in use", labels, entries)
            }
            if let size = b.stickSize { add("ringproxy_backend_stick_table_size", gauge, "stick-table size", labels, size) }
        }
        for s in snapshot.servers {
            let labels = [("proxy", s.backend), ("server", s.name)]
            let rate = rates.server(s.backend, s.name)
            let state = StatsPresentation.state(of: s)
            for candidate in StatsPresentation.serverStates {
                add("ringproxy_server_status", gauge, "the server's state: 1 for the one it is in", labels + [("state", candidate)], candidate == state ? 1 : 0)
            }
            add("ringproxy_server_current_sessions", gauge, "current sessions (scur)", labels, s.sessionsCurrent)
            add("ringproxy_server_max_sessions", gauge, "most sessions at once (smax)", labels, s.sessionsMax)
            add("ringproxy_server_sessions_total", counter, "sessions (stot)", labels, s.sessionsTotal)
            add("ringproxy_server_current_session_rate", gauge, "sessions per second over the last second (rate)", labels, rate.current)
            add("ringproxy_server_max_session_rate", gauge, "highest session rate seen (rate_max)", labels, rate.max)
            add("ringproxy_server_bytes_in_total", counter, "bytes from clients (bin)", labels, s.bytesIn)
            add("ringproxy_server_bytes_out_total", counter, "bytes to clients (bout)", labels, s.bytesOut)
            add("ringproxy_server_connection_errors_total", counter, "failed connection attempts (econ)", labels, s.connectErrors)
            add("ringproxy_server_retry_warnings_total", counter, "connection retries (wretr)", labels, s.retries)
            add("ringproxy_server_redispatch_warnings_total", counter, "redispatches away from it (wredis)", labels, s.redispatches)
            add("ringproxy_server_client_aborts_total", counter, "sessions the client aborted (cli_abrt)", labels, s.clientAborts)
            add("ringproxy_server_server_aborts_total", counter, "sessions the server aborted (srv_abrt)", labels, s.serverAborts)
            add("ringproxy_server_loadbalanced_total", counter, "times the balancer chose it (lbtot)", labels, s.selected)
            add("ringproxy_server_source_exhausted_total", counter, "connection attempts that found no free address and port in its source pool", labels, s.sourceExhausted)
            add("ringproxy_server_weight", gauge, "weight in force", labels, s.weight)
            add("ringproxy_server_last_change_seconds", gauge, "seconds since the last state change (lastchg)", labels, s.lastChangeSeconds)
            add("ringproxy_server_downtime_seconds_total", counter, "seconds spent DOWN (downtime)", labels, s.downtimeSeconds)
            add("ringproxy_server_check_failures_total", counter, "failed health checks (chkfail)", labels, s.checksFailed)
            add("ringproxy_server_check_up_down_total", counter, "UP to DOWN transitions (chkdown)", labels, s.downTransitions)
            if let duration = s.checkDurationMs {
                add("ringproxy_server_check_last_duration_milliseconds", gauge, "duration of the last health check", labels, duration)
            }
        }
        for c in Counter.allCases {
            let info = c.info
            let isCounter = info.kind == .counter
            add("ringproxy_engine_\(info.name)\(isCounter ? "_total" : "")", isCounter ? counter : gauge, info.help, [], snapshot.counters[c])
        }
        var out = ""
        for family in families {
            out += "# HELP \(family.name) \(escapeHelp(family.help))\n# TYPE \(family.name) \(family.type)\n"
            for sample in family.samples {
                out += family.name
                if !sample.labels.isEmpty {
                    out += "{" + sample.labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
                }
                out += " \(sample.value)\n"
            }
        }
        return out
    }

    /// Label values escape backslash, double quote and line feed; HELP text the same but the quote.
    static func escapeLabel(_ value: String) -> String {
        StatsPresentation.escape(value) { ["\\": "\\\\", "\"": "\\\"", "\n": "\\n"][$0] }
    }

    static func escapeHelp(_ text: String) -> String {
        StatsPresentation.escape(text) { ["\\": "\\\\", "\n": "\\n"][$0] }
    }
}
