// StatsCSV: `show stat` and the page's `;csv` in HAProxy 2.6's column layout, so the scripts and
// exporters written for HAProxy read ringproxy unchanged. One FRONTEND row per frontend, then for
// each backend a row per server and its BACKEND row (types 0, 2, 1). Columns ringproxy has no
// value for stay empty, as HAProxy leaves columns empty that do not apply to a row.

public enum StatsCSV {
    /// HAProxy 2.6's columns, in order (its doc/management.txt, "9.1. CSV format"; checked against
    /// a running HAProxy 2.6 in StatsRendererTests).
    public static let columns: [String] = [
        "pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout", "dreq", "dresp",
        "ereq", "econ", "eresp", "wretr", "wredis", "status", "weight", "act", "bck", "chkfail", "chkdown",
        "lastchg", "downtime", "qlimit", "pid", "iid", "sid", "throttle", "lbtot", "tracked", "type", "rate",
        "rate_lim", "rate_max", "check_status", "check_code", "check_duration", "hrsp_1xx", "hrsp_2xx",
        "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "hanafail", "req_rate", "req_rate_max", "req_tot",
        "cli_abrt", "srv_abrt", "comp_in", "comp_out", "comp_byp", "comp_rsp", "lastsess", "last_chk",
        "last_agt", "qtime", "ctime", "rtime", "ttime", "agent_status", "agent_code", "agent_duration",
        "check_desc", "agent_desc", "check_rise", "check_fall", "check_health", "agent_rise", "agent_fall",
        "agent_health", "addr", "cookie", "mode", "algo", "conn_rate", "conn_rate_max", "conn_tot",
        "intercepted", "dcon", "dses", "wrew", "connect", "reuse", "cache_lookups", "cache_hits", "srv_icur",
        "src_ilim", "qtime_max", "ctime_max", "rtime_max", "ttime_max", "eint", "idle_conn_cur",
        "safe_conn_cur", "used_conn_cur", "need_conn_est", "uweight", "agg_server_status",
        "agg_server_check_status", "agg_check_status", "-", "ssl_sess", "ssl_reused_sess",
        "ssl_failed_handshake", "h2_headers_rcvd", "h2_data_rcvd", "h2_settings_rcvd", "h2_rst_stream_rcvd",
        "h2_goaway_rcvd", "h2_detected_conn_protocol_errors", "h2_detected_strm_protocol_errors",
        "h2_rst_stream_resp", "h2_goaway_resp", "h2_open_connections", "h2_backend_open_streams",
        "h2_total_connections", "h2_backend_total_streams", "h1_open_connections", "h1_open_streams",
        "h1_total_connections", "h1_total_streams", "h1_bytes_in", "h1_bytes_out", "h1_spliced_bytes_in",
        "h1_spliced_bytes_out"
    ]

    /// The header line: `# pxname,svname,...,` with HAProxy's trailing comma.
    public static var header: String { "# " + columns.joined(separator: ",") + ",\n" }

    public static func render(_ snapshot: StatsSnapshot, rates: SessionRates = SessionRates()) -> String {
        var out = header
        var iid = 0
        for frontend in snapshot.frontends {
            iid += 1
            out += row(frontendFields(frontend, snapshot: snapshot, iid: iid, rate: rates.frontend(frontend.name)))
        }
        for backend in snapshot.backends {
            iid += 1
            for server in snapshot.servers where server.backend == backend.name {
                out += row(serverFields(server, snapshot: snapshot, iid: iid, rate: rates.server(backend.name, server.name)))
            }
            let servers = snapshot.servers.filter { $0.backend == backend.name }
            out += row(backendFields(backend, servers: servers, snapshot: snapshot, iid: iid, rate: rates.backend(backend.name)))
        }
        return out
    }

    static let columnIndex: [String: Int] = Dictionary(uniqueKeysWithValues: columns.enumerated().map { ($1, $0) })

    static func row(_ fields: [String: String]) -> String {
        var values = [String](repeating: "", count: columns.count)
        for (name, value) in fields {
            guard let index = columnIndex[name] else { preconditionFailure("no CSV column \(name)") }
            values[index] = escape(value)
        }
        return values.joined(separator: ",") + ",\n"
    }

    /// Names with a comma or a quote are quoted (RFC 4180); HAProxy's names never have one.
    static func escape(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return value }
        var quoted = "\""
        for character in value { quoted += character == "\"" ? "\"\"" : String(character) }
        return quoted + "\""
    }

    static func frontendFields(_ f: FrontendSnapshot, snapshot: StatsSnapshot, iid: Int, rate: SessionRate) -> [String: String] {
        [
            "pxname": f.name, "svname": "FRONTEND", "scur": "\(f.sessionsCurrent)", "smax": "\(f.sessionsMax)",
            "slim": f.sessionLimit.map { "\($0)" } ?? "", "stot": "\(f.sessionsTotal)", "bin": "\(f.bytesIn)",
            "bout": "\(f.bytesOut)", "dreq": "0", "dresp": "0", "ereq": "\(f.requestErrors)", "status": "OPEN",
            "pid": "\(snapshot.pid)", "iid": "\(iid)", "sid": "0", "type": "0", "rate": "\(rate.current)", "rate_lim": "0",
            "rate_max": "\(rate.max)", "mode": f.mode, "conn_rate": "\(rate.current)", "conn_rate_max": "\(rate.max)",
            "conn_tot": "\(f.sessionsTotal)", "dcon": "\(f.deniedConnections)", "dses": "0",
        ]
    }

    static func backendFields(_ b: BackendSnapshot, servers: [ServerSnapshot], snapshot: StatsSnapshot, iid: Int, rate: SessionRate) -> [String: String] {
        [
            "pxname": b.name, "svname": "BACKEND", "qcur": "0", "qmax": "0", "scur": "\(b.sessionsCurrent)",
            "smax": "\(b.sessionsMax)", "stot": "\(b.sessionsTotal)", "bin": "\(b.bytesIn)", "bout": "\(b.bytesOut)",
            "dreq": "0", "dresp": "0", "econ": "\(b.connectErrors)", "eresp": "0", "wretr": "\(b.retries)",
            "wredis": "\(b.redispatches)", "status": b.status, "weight": "\(b.weight)", "act": "\(b.activeServers)",
            "bck": "\(b.backupServers)", "chkdown": "\(servers.reduce(0) { $0 + $1.downTransitions })",
            "lastchg": "\(b.lastChangeSeconds)", "downtime": "\(b.downtimeSeconds)", "pid": "\(snapshot.pid)",
            "iid": "\(iid)", "sid": "0", "lbtot": "\(servers.reduce(0) { $0 + $1.selected })", "type": "1",
            "rate": "\(rate.current)", "rate_max": "\(rate.max)",
            "cli_abrt": "\(servers.reduce(0) { $0 + $1.clientAborts })", "srv_abrt": "\(servers.reduce(0) { $0 + $1.serverAborts })",
            "lastsess": servers.compactMap(\.lastSessionSeconds).min().map { "\($0)" } ?? "-1",
            "mode": "tcp", "algo": b.balance, "uweight": "\(servers.reduce(0) { $0 + $1.configuredWeight })",
        ]
    }

    static func serverFields(_ s: ServerSnapshot, snapshot: StatsSnapshot, iid: Int, rate: SessionRate) -> [String: String] {
        var fields: [String: String] = [
            "pxname": s.backend, "svname": s.name, "qcur": "0", "qmax": "0", "scur": "\(s.sessionsCurrent)",
            "smax": "\(s.sessionsMax)", "slim": s.sessionLimit.map { "\($0)" } ?? "", "stot": "\(s.sessionsTotal)",
            "bin": "\(s.bytesIn)", "bout": "\(s.bytesOut)", "dresp": "0", "econ": "\(s.connectErrors)", "eresp": "0",
            "wretr": "\(s.retries)", "wredis": "\(s.redispatches)", "status": s.status, "weight": "\(s.weight)",
            "act": s.backup ? "0" : "1", "bck": s.backup ? "1" : "0", "lastchg": "\(s.lastChangeSeconds)",
            "downtime": "\(s.downtimeSeconds)", "pid": "\(snapshot.pid)", "iid": "\(iid)", "sid": "\(s.id)",
            "lbtot": "\(s.selected)", "type": "2", "rate": "\(rate.current)", "rate_max": "\(rate.max)",
            "cli_abrt": "\(s.clientAborts)", "srv_abrt": "\(s.serverAborts)",
            "lastsess": s.lastSessionSeconds.map { "\($0)" } ?? "-1", "addr": s.address, "mode": "tcp",
            "uweight": "\(s.configuredWeight)",
        ]
        if s.checked {
            fields["chkfail"] = "\(s.checksFailed)"
            fields["chkdown"] = "\(s.downTransitions)"
            fields["check_status"] = s.checkStatus?.rawValue ?? ""
            fields["check_code"] = s.checkCode.map { "\($0)" } ?? ""
            fields["check_duration"] = s.checkDurationMs.map { "\($0)" } ?? ""
            fields["last_chk"] = s.checkDescription
            fields["check_desc"] = s.checkDescription
            fields["check_rise"] = "\(s.rise)"
            fields["check_fall"] = "\(s.fall)"
            fields["check_health"] = s.up ? "\(s.rise + s.fall - 1)" : "0"
        }
        return fields
    }
}
