// Reads the `stats` lines of the `global` section: `stats socket <path> [mode <octal>]
// [level user|operator|admin]` (the runtime API, served by Admin/AdminServer) and `stats timeout`.
// Other global `stats` lines fall through to the ignored-keyword warning.

extension ConfigParser.State {
    /// Returns false when `words` is a global `stats` line this does not read.
    mutating func readGlobalStats(_ words: [String]) -> Bool {
        guard words.count >= 2 else { return false }
        let keyword = "stats \(words[1])"
        switch words[1] {
        case "socket":
            readStatsSocket(words, keyword: keyword)
        case "timeout":
            guard expect(words, arguments: 1, keyword: keyword, usage: "stats timeout <time>") else { return true }
            if let value = milliseconds(words[2], keyword: keyword), value > 0 { config.global.statsTimeoutMs = value }
        default:
            return false
        }
        return true
    }

    private mutating func readStatsSocket(_ words: [String], keyword: String) {
        let usage = "stats socket <path> [mode <octal>] [level user|operator|admin]"
        guard words.count >= 3 else {
            error(keyword, "missing socket path", hint: "expected '\(usage)'")
            return
        }
        if let previous = config.global.statsSocketLocation {
            error(keyword, "a second stats socket is not supported", hint: "ringproxy serves one; the first is at line \(previous.line)")
            return
        }
        var path = words[2]
        if path.hasPrefix("unix@") { path = String(path.dropFirst(5)) }
        guard path.hasPrefix("/") else {
            error(keyword, "'\(words[2])' is not a UNIX socket path; only a UNIX stats socket is implemented", hint: "stats socket /run/ringproxy/admin.sock mode 600 level admin")
            return
        }
        var socket = StatsSocketConfig(path: path)
        var index = 3
        while index < words.count {
            let option = words[index]
            guard index + 1 < words.count || option == "expose-fd" else {
                error(keyword, "missing value after '\(option)'", hint: "expected '\(usage)'")
                return
            }
            let value = index + 1 < words.count ? words[index + 1] : ""
            switch option {
            case "mode":
                guard let mode = UInt32(value, radix: 8), mode <= 0o777 else {
                    error(keyword, "invalid mode '\(value)'", hint: "an octal permission such as 600 or 660")
                    return
                }
                socket.mode = mode
            case "level":
                guard let level = StatsSocketLevel(rawValue: value) else {
                    error(keyword, "unknown level '\(value)'", hint: "user, operator or admin")
                    return
                }
                socket.level = level
            case "expose-fd", "user", "group", "uid", "gid", "process", "thread":
                warning(keyword, "'\(option) \(value)' ignored: not implemented by ringproxy")
            default:
                error(keyword, "'\(option)' is not supported on the stats socket", hint: "expected '\(usage)'")
                return
            }
            index += 2
        }
        config.global.statsSocket = socket
        config.global.statsSocketLocation = location
    }
}
