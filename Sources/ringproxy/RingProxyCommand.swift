// The ringproxy executable: command line -> EngineConfig -> Engine. Nothing else lives here.
import ArgumentParser
import CUring
import Glibc
import RingProxy

@main
struct RingProxyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringproxy",
        abstract: "An MQTT edge load balancer on io_uring: one pinned thread per core, shared-nothing.",
        discussion: """
            Quick mode, without a configuration file:
              ringproxy --listen 127.0.0.1:1883 --backend 127.0.0.1:18831 --backend 127.0.0.1:18832 --backend 127.0.0.1:18833

            Signals: SIGTERM/SIGINT stop accepting, let connections drain for --grace, then exit 0;
            SIGUSR1 prints statistics to stderr.
            """
    )

    @Option(name: [.customShort("f"), .long], help: "HAProxy-dialect configuration file (an existing haproxy.cfg for MQTT).")
    var file: String?

    @Flag(name: [.customShort("c"), .long], help: "Check the configuration and exit.")
    var check = false

    @Option(name: .long, help: "Address to accept clients on, host:port ([v6]:port, *:port). Repeatable.")
    var listen: [String] = []

    @Option(name: .long, help: "Server to forward to, host:port. Repeatable; order matters for round robin.")
    var backend: [String] = []

    @Option(name: .long, help: "Worker threads, one per CPU (default: every CPU this process may use).")
    var cores: Int?

    @Option(name: .long, help: "Balance algorithm: \(BalanceAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")).")
    var balance: String = "roundrobin"

    @Option(name: .long, help: "Weight of each --backend, in the same order (default 1 each; 0 takes no new connections).")
    var weight: [Int] = []

    @Flag(name: .long, help: "Require MQTT: a connection whose first packet is not a valid CONNECT (3.1, 3.1.1, 5.0) is closed before any server sees it.")
    var mqtt = false

    @Flag(name: .long, help: "Sticky sessions on the MQTT client id (a stick table shared by all cores); implies reading the CONNECT.")
    var sticky = false

    @Option(name: .customLong("stick-size"), help: "Stick table entries (least recently used ones go first).")
    var stickSize: Int = 100_000

    @Option(name: .customLong("stick-expire"), help: "Stick table entry lifetime after last use, ms.")
    var stickExpire: Int = 30 * 60 * 1000

    @Option(name: .customLong("stick-len"), help: "Longest client id kept as a key; longer ones are truncated.")
    var stickLen: Int = 32

    @Option(name: .customLong("inspect-delay"), help: "How long a client may take to send its CONNECT, ms (default: --timeout-client).")
    var inspectDelay: Int?

    @Option(name: .customLong("connect-max"), help: "Largest CONNECT accepted while inspecting, bytes.")
    var connectMax: Int = FrontendConfig.connectMaxBytesDefault

    @Option(name: .long, help: "Global limit of proxied connections; excess ones are accepted and closed, and counted (default: what the rings can hold).")
    var maxconn: Int?

    @Option(name: .customLong("timeout-connect"), help: "Server connect timeout, ms; on expiry the next server is tried.")
    var timeoutConnect: Int = 5_000

    @Option(name: .customLong("timeout-client"), help: "Client inactivity timeout, ms (0: none).")
    var timeoutClient: Int = 240_000

    @Option(name: .customLong("timeout-server"), help: "Server inactivity timeout, ms (0: none).")
    var timeoutServer: Int = 240_000

    @Option(name: .long, help: "Connection attempts after the first failure, each to the next server.")
    var retries: Int = 3

    @Option(name: .customLong("buffer-size"), help: "Bytes per provided buffer (with -f too).")
    var bufferSize: Int = 64 * 1024

    @Option(name: .long, help: "Provided buffers per worker (power of two, at most 32768; with -f too).")
    var buffers: Int = 1024

    @Option(name: .customLong("pipe-buffers"), help: "Buffers one direction of a connection may hold before reading pauses (with -f too).")
    var pipeBuffers: Int = 4

    @Option(name: .long, help: "Drain grace period on SIGTERM/SIGINT, ms (default 5000; with -f, overrides the file's 'hard-stop-after').")
    var grace: Int?

    @Option(name: .customLong("log"), help: "Connection log (one tcplog line per connection): stderr, stdout, none, or udp:HOST:PORT for syslog (RFC 3164, local3.info).")
    var logTarget: String = "stderr"

    @Flag(name: .customLong("no-pin"), help: "Do not pin worker threads to CPUs (with -f too).")
    var noPin = false

    /// Quick-mode options that a configuration file says itself, with the file's words: given
    /// with -f they would be ignored without a word, so they are refused.
    static let optionsTheFileSays: [(option: String, inFile: String)] = [
        ("--balance", "balance"), ("--weight", "server ... weight"),
        ("--mqtt", "tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }"),
        ("--sticky", "stick-table type string ... and stick on"), ("--stick-size", "stick-table ... size"),
        ("--stick-expire", "stick-table ... expire"), ("--stick-len", "stick-table type string len"),
        ("--inspect-delay", "tcp-request inspect-delay"), ("--connect-max", "tune.bufsize"), ("--maxconn", "maxconn"),
        ("--timeout-connect", "timeout connect"), ("--timeout-client", "timeout client"),
        ("--timeout-server", "timeout server"), ("--retries", "retries"), ("--log", "log"),
    ]

    /// Whether `option` is on the command line (as `--x v` or `--x=v`).
    static func given(_ option: String, in arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Bool {
        arguments.contains { $0 == option || $0.hasPrefix(option + "=") }
    }

    func validate() throws {
        if file != nil {
            if !listen.isEmpty || !backend.isEmpty { throw ValidationError("-f and --listen/--backend exclude each other") }
            for (option, inFile) in Self.optionsTheFileSays where Self.given(option) {
                throw ValidationError("\(option) is for the quick mode; with -f the file says it: '\(inFile)'")
            }
        } else {
            if check { throw ValidationError("-c checks a configuration file: give it with -f FILE") }
            if listen.isEmpty { throw ValidationError("give at least one --listen address (or a configuration file with -f)") }
            if backend.isEmpty { throw ValidationError("give at least one --backend server") }
        }
        if BalanceAlgorithm(rawValue: balance) == nil {
            throw ValidationError("unknown --balance '\(balance)'; known: \(BalanceAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let cores, cores < 1 || cores > 1024 { throw ValidationError("--cores must be between 1 and 1024") }
        if buffers < 1 || buffers > 32768 || buffers & (buffers - 1) != 0 {
            throw ValidationError("--buffers must be a power of two between 1 and 32768")
        }
        if bufferSize < 512 || bufferSize > 1 << 20 { throw ValidationError("--buffer-size must be between 512 and 1048576") }
        if pipeBuffers < 1 || pipeBuffers > 1024 { throw ValidationError("--pipe-buffers must be between 1 and 1024") }
        if !weight.isEmpty && weight.count != backend.count {
            throw ValidationError("give one --weight per --backend (\(backend.count)), or none")
        }
        if let bad = weight.first(where: { $0 < 0 || $0 > 256 }) { throw ValidationError("--weight \(bad): weights go from 0 to 256") }
        if stickSize < 1 || stickLen < 1 || stickExpire < 1 { throw ValidationError("--stick-size, --stick-len and --stick-expire must be positive") }
        if connectMax < 16 || connectMax > 16 << 20 { throw ValidationError("--connect-max must be between 16 and 16777216") }
        if let maxconn, maxconn < 1 { throw ValidationError("--maxconn must be at least 1") }
        if let grace, grace < 0 { throw ValidationError("--grace must be at least 0") }
    }

    func engineConfig() throws -> EngineConfig {
        let binds = try listen.map { text -> SocketAddress in
            do { return try SocketAddress.parse(text) } catch { throw ValidationError("--listen: \(error)") }
        }
        let servers = try backend.enumerated().map { i, text -> ServerConfig in
            do { return ServerConfig(name: "srv\(i + 1)", address: try SocketAddress.parse(text), weight: weight.isEmpty ? 1 : weight[i]) }
            catch { throw ValidationError("--backend: \(error)") }
        }
        var frontend = FrontendConfig(name: "quick", binds: binds, backendIndex: 0, requireMQTT: mqtt)
        frontend.inspectTimeoutMs = inspectDelay
        frontend.connectMaxBytes = connectMax
        let stickTable = sticky ? StickTableConfig(keyLengthMax: stickLen, entriesMax: stickSize, expireMs: stickExpire) : nil
        var config = EngineConfig(
            frontends: [frontend],
            backends: [BackendConfig(name: "servers", balance: BalanceAlgorithm(rawValue: balance)!, servers: servers,
                                     stickTable: stickTable)]
        )
        config.cores = cores
        config.maxConnections = maxconn
        config.connectTimeoutMs = timeoutConnect
        config.clientTimeoutMs = timeoutClient
        config.serverTimeoutMs = timeoutServer
        config.retries = retries
        config.bufferSizeBytes = bufferSize
        config.buffersPerWorker = buffers
        config.pipeBuffersMax = pipeBuffers
        if let grace { config.drainGraceMs = grace }
        config.pinThreads = !noPin
        switch logTarget {
        case "stderr": config.log = LogConfig(destination: .stderr)
        case "stdout": config.log = LogConfig(destination: .stdout)
        case "none": config.log = nil
        default:
            guard logTarget.hasPrefix("udp:") else { throw ValidationError("--log: stderr, stdout, none or udp:HOST:PORT") }
            do { config.log = LogConfig(destination: .syslog(try SocketAddress.parse(String(logTarget.dropFirst(4))))) }
            catch { throw ValidationError("--log: \(error)") }
        }
        return config
    }

    /// The configuration file, parsed and mapped; every problem printed as FILE:LINE lines.
    func fileConfig(_ path: String, log: Log) throws -> EngineConfig {
        let loaded: LoadedConfiguration
        do {
            loaded = try EngineConfig.load(try ConfigParser.parse(contentsOf: path))
        } catch {
            for warning in error.warnings { log.warning("\(warning)") }
            for line in error.description.split(separator: "\n") { log.error(String(line)) }
            log.error("configuration file \(path) has \(error.diagnostics.count) error(s)")
            throw ExitCode(1)
        }
        for note in loaded.notes { log.warning(note) }
        var config = loaded.engine
        if let cores { config.cores = cores }
        if let grace { config.drainGraceMs = grace }
        // What HAProxy's dialect has no words for: the rings' buffers and pinning.
        config.bufferSizeBytes = bufferSize
        config.buffersPerWorker = buffers
        config.pipeBuffersMax = pipeBuffers
        config.pinThreads = !noPin
        return config
    }

    func run() throws {
        // The main thread waits for the control signals (below): blocked before any thread
        // (engine workers, the admin server) starts, so they all inherit the mask.
        cu_block_control_signals(1)
        let log = Log()
        let config = try file.map { try fileConfig($0, log: log) } ?? engineConfig()
        if check {
            // Certificates and keys are read as a start would read them.
            var failed = false
            for frontend in config.frontends {
                guard let tls = frontend.tls else { continue }
                do {
                    let context = try TLSContext(tls)
                    for warning in context.warnings { log.warning("\(frontend.tlsSource ?? frontend.name): \(warning)") }
                } catch {
                    log.error("\(frontend.tlsSource ?? frontend.name): frontend '\(frontend.name)': \(error)")
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
            print("Configuration file is valid")
            return
        }
        let engine = Engine(config: config, log: log)
        do {
            try engine.start()
        } catch {
            log.error("\(error)")
            throw ExitCode(1)
        }
        // The stats pages and socket: a thread of their own, off the workers' rings.
        let control: AdminControl = engine
        let admin = AdminServer(control: control, log: log)
        do {
            try admin.start(pages: config.statsPages, socket: config.statsSocket)
        } catch {
            log.error("\(error)")
            engine.stop()
            engine.wait()
            throw ExitCode(1)
        }
        while true {
            let signal = cu_wait_control_signal()
            if signal == SIGUSR1 {
                log.info(StatisticsReport(engine.statistics()).text)
                continue
            }
            if signal == SIGHUP {
                guard let file else {
                    log.warning("SIGHUP: reload needs a configuration file (-f); nothing to reload")
                    continue
                }
                // A file that fails the check leaves the running configuration in place.
                do {
                    let next = try fileConfig(file, log: log)
                    try engine.reload(next)
                    try admin.reconfigure(pages: next.statsPages, socket: next.statsSocket)
                } catch let error as AdminServerError {
                    log.error("reload: the stats pages keep their previous configuration: \(error)")
                } catch let error as EngineError {
                    log.error("reload failed, keeping the running configuration: \(error)")
                } catch {
                    log.error("reload failed, keeping the running configuration (see the errors above)")
                }
                continue
            }
            log.info("signal \(signal): stopping")
            admin.stop()
            engine.stop()
            engine.wait()
            let total = engine.statistics().total
            log.info("stopped: \(total[.accepted]) connection(s) served, \(total[.bytesFromClients] + total[.bytesFromServers]) bytes forwarded")
            return
        }
    }
}
