// ringbench: the load generator of ringproxy's benchmarks. Each thread owns an io_uring and a
// fixed-file table, so one process goes past the open-files limit, and binds its connections
// to many 127.x.y.z source addresses, so it goes past 64 k ports per destination. Workloads:
//   pingpong  N connections, each keeping W small PUBLISH messages in flight; latency per message
//   conn      connection set-up: socket -> connect -> CONNECT -> CONNACK -> DISCONNECT -> close,
//             one linked chain per session, C sessions in flight per thread
//   idle      open N connections (CONNECT/CONNACK each, up to --opening per thread at once, at
//             --rate per second if given), print a "ready" line once every thread has opened,
//             then hold them for the duration, with a PINGREQ on each every --keepalive seconds
//             (spread over the interval); latency per PINGREQ -> PINGRESP
//   bulk      N raw TCP connections to an echo server, each with one --chunk send always in
//             flight and a recv always armed; bytes received back per second
//   reconnect N MQTT sessions with fixed client ids, dropped all at once (close_direct) and
//             reopened all at once, round after round: the reconnect storm; latency per
//             reconnection from its round's start, and the median round time
// Each run prints one JSON line of results (idle a "ready" line before it). Loops are bounded
// by --seconds; opening a session is given up after 5 s.
import ArgumentParser
import CUring
import Glibc
import Histogram

@main
struct RingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringbench",
        abstract: "io_uring MQTT load generator for ringproxy's benchmarks (prints one JSON line).")

    @Argument(help: "Workload: pingpong, conn, idle, bulk, reconnect.")
    var workload: String

    @Option(help: "host:port to load (IPv4).")
    var target: String

    @Option(help: "Connections (pingpong, idle, bulk, reconnect) or sessions in flight (conn), over all threads.")
    var connections: Int = 100

    @Option(help: "Messages in flight per connection (pingpong).")
    var window: Int = 16

    @Option(help: "Bytes per PUBLISH message (pingpong), at least 8, at most 129.")
    var size: Int = 64

    @Option(help: "Duration of the measured phase, seconds.")
    var seconds: Double = 5

    @Option(help: "Threads, each with its own io_uring.")
    var threads: Int = 1

    @Option(help: "Source addresses to bind, 127.0.0.A-127.0.0.B or a.b.c.d-a.b.c.e (last octet range).")
    var sources: String = "127.0.0.1-127.0.0.1"

    @Option(help: "Client ids to cycle through (conn).")
    var ids: Int = 10_000

    @Option(help: "Connections opened per second over all threads (idle; 0: as fast as possible).")
    var rate: Double = 0

    @Option(help: "Connections being opened at once per thread (idle, reconnect's first opening).")
    var opening: Int = 256

    @Option(help: "Seconds between PINGREQs on each held connection (idle; 0: none).")
    var keepalive: Double = 0

    @Option(help: "Seconds the idle workload waits, once its pings stop, for the PINGRESPs still owed (those still missing are counted unanswered).")
    var answerGrace: Double = 5

    @Option(help: "Keep Alive announced in each CONNECT, seconds (a proxy or broker closes a client silent for 1.5 times it; idle pings start only once every connection is open).")
    var connectKeepalive: Int = 60

    @Option(help: "Seconds the idle workload's opening may take beyond its --rate pacing before the rest is given up.")
    var openSeconds: Double = 60

    @Option(help: "Bytes per send and per receive buffer (bulk).")
    var chunk: Int = 65536

    @Flag(help: "Start each pingpong connection with CONNECT/CONNACK (for an MQTT backend behind an MQTT-checking proxy).")
    var mqtt = false

    func run() throws {
        guard ["pingpong", "conn", "idle", "bulk", "reconnect"].contains(workload) else {
            throw ValidationError("unknown workload '\(workload)'")
        }
        guard size >= 8 && size <= 129 else { throw ValidationError("--size must be 8...129") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard rate >= 0, keepalive >= 0, seconds >= 0, answerGrace >= 0 else { throw ValidationError("--rate, --keepalive, --seconds and --answer-grace must not be negative") }
        guard opening >= 1 else { throw ValidationError("--opening must be at least 1") }
        guard connectKeepalive >= 0 && connectKeepalive <= 65535 else { throw ValidationError("--connect-keepalive must be 0...65535") }
        connectKeepAliveSeconds = UInt16(connectKeepalive)
        guard chunk >= 1 && chunk <= 16 << 20 else { throw ValidationError("--chunk must be 1...16777216") }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let settings = Settings(workload: workload, target: try Address(target), sources: try SourceRange(sources),
                                window: window, size: size, seconds: seconds, ids: ids,
                                mqtt: workload == "bulk" ? false : mqtt || workload == "idle" || workload == "reconnect",
                                fileLimit: Int(limit.rlim_cur), threads: threads, rate: rate, opening: opening,
                                keepalive: keepalive, chunk: chunk, openSeconds: openSeconds, answerGrace: answerGrace)
        let rendezvous = Rendezvous(parties: threads) { [seconds] r in
            let now = nowNs()
            if r.deadline == 0 { r.deadline = now + UInt64(seconds * 1e9) }   // the first meeting starts the clock
            return now < r.deadline
        }
        if workload == "idle" { rendezvous.onAll = announceReady }
        let perThread = (0..<threads).map { connections / threads + ($0 < connections % threads ? 1 : 0) }
        var results: [ThreadResult] = Array(repeating: ThreadResult(), count: threads)
        results.withUnsafeMutableBufferPointer { out in
            var handles: [pthread_t] = []
            for t in 0..<threads {
                let job = Job(index: t, count: perThread[t], settings: settings, rendezvous: rendezvous, out: out.baseAddress! + t)
                var handle = pthread_t()
                pthread_create(&handle, nil, { raw in
                    let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                    job.out.pointee = ClientThread(job).run()
                    return nil
                }, Unmanaged.passRetained(job).toOpaque())
                handles.append(handle)
            }
            for h in handles { pthread_join(h, nil) }
        }
        var total = ThreadResult()
        for r in results { total.merge(r) }
        let elapsed = max(total.elapsed, 1e-9)
        let p = { (q: Double) in Double(total.latency.valueAtPercentile(q)) / 1000.0 }
        print("{\"workload\":\"\(workload)\",\"connections\":\(total.connections),\"operations\":\(total.operations),"
              + "\"failed\":\(total.failed),\"seconds\":\(fmt(elapsed)),\"per_second\":\(fmt(Double(total.operations) / elapsed)),"
              + "\"p50_us\":\(fmt(p(50))),\"p99_us\":\(fmt(p(99))),\"p999_us\":\(fmt(p(99.9))),\"threads\":\(threads)"
              + extraFields(total, elapsed: elapsed) + "}")
    }

    /// The fields of the newer workloads, after the common ones (pingpong and conn have none).
    func extraFields(_ total: ThreadResult, elapsed: Double) -> String {
        switch workload {
        case "idle":
            return ",\"pings_sent\":\(total.pings),\"pings_unanswered\":\(total.unanswered),"
                + "\"ping_max_us\":\(fmt(Double(total.latency.max) / 1000.0))" + causesField(total)
        case "bulk":
            return ",\"bytes\":\(total.bytes),\"mb_per_second\":\(fmt(Double(total.bytes) / 1e6 / elapsed)),\"chunk\":\(chunk)"
        case "reconnect":
            let rounds = total.rounds.sorted()
            let median = rounds.isEmpty ? 0 : Double(rounds[rounds.count / 2]) / 1e6
            return ",\"rounds\":\(rounds.count),\"round_ms_median\":\(fmt(median)),"
                + "\"round_ms_max\":\(fmt(Double(rounds.last ?? 0) / 1e6))" + causesField(total)
        default:
            return ""
        }
    }
}

/// Why sessions failed, by cause: `,"failure_causes":{"connect: Connection refused":3}`.
func causesField(_ total: ThreadResult) -> String {
    ",\"failure_causes\":{" + total.causes.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
}

/// The idle workload's "ready" line, printed (and flushed) by the last thread to finish opening.
func announceReady(_ r: Rendezvous) -> Bool {
    let seconds = max(Double(nowNs() - r.startNs) / 1e9, 1e-9)
    print("{\"phase\":\"ready\",\"connections\":\(r.opened),\"failed\":\(r.failed),"
          + "\"open_seconds\":\(fmt(seconds)),\"open_per_second\":\(fmt(Double(r.opened) / seconds))}")
    fflush(stdout)
    return true
}

func fmt(_ v: Double) -> String {
    let scaled = (v * 1000).rounded() / 1000
    return "\(scaled)"
}

struct Address {
    var ip: UInt32   // host order
    var port: UInt16
    init(_ text: String) throws {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("--target host:port") }
        var a = in_addr()
        guard inet_pton(AF_INET, String(parts[0]), &a) == 1 else { throw ValidationError("--target needs an IPv4 address") }
        ip = UInt32(bigEndian: a.s_addr)
        self.port = port
    }
    func sockaddr(port override: UInt16? = nil) -> sockaddr_in {
        var s = sockaddr_in()
        s.sin_family = sa_family_t(AF_INET)
        s.sin_port = (override ?? port).bigEndian
        s.sin_addr.s_addr = ip.bigEndian
        return s
    }
}

struct SourceRange {
    var first: UInt32
    var count: Int
    init(_ text: String) throws {
        let ends = text.split(separator: "-").map(String.init)
        var a = in_addr(), b = in_addr()
        guard ends.count == 2, inet_pton(AF_INET, ends[0], &a) == 1, inet_pton(AF_INET, ends[1], &b) == 1 else {
            throw ValidationError("--sources like 127.0.0.1-127.0.0.50")
        }
        first = UInt32(bigEndian: a.s_addr)
        let last = UInt32(bigEndian: b.s_addr)
        guard last >= first else { throw ValidationError("--sources: the range is empty") }
        count = Int(last - first) + 1
    }
}

struct Settings {
    var workload: String
    var target: Address
    var sources: SourceRange
    var window: Int
    var size: Int
    var seconds: Double
    var ids: Int
    var mqtt: Bool
    var fileLimit: Int
    var threads: Int
    var rate: Double
    var opening: Int
    var keepalive: Double
    var chunk: Int
    var openSeconds: Double
    var answerGrace: Double
}

struct ThreadResult {
    var connections = 0
    var operations = 0
    var failed = 0
    var elapsed: Double = 0
    var bytes = 0          // bulk: bytes received back
    var pings = 0          // idle: PINGREQs sent
    var unanswered = 0     // idle: PINGREQs whose PINGRESP did not come back
    var rounds: [UInt64] = []   // reconnect: each round's duration, ns
    var causes: [String: Int] = [:]   // idle, reconnect: why sessions failed, by cause
    var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)

    mutating func merge(_ other: ThreadResult) {
        connections += other.connections
        operations += other.operations
        failed += other.failed
        elapsed = max(elapsed, other.elapsed)
        bytes += other.bytes
        pings += other.pings
        unanswered += other.unanswered
        // Rounds run on all threads together: a round lasts until its slowest thread is done.
        for (r, d) in other.rounds.enumerated() {
            if r < rounds.count { rounds[r] = max(rounds[r], d) } else { rounds.append(d) }
        }
        latency.add(other.latency)
        causes.merge(other.causes, uniquingKeysWith: +)
    }
}

final class Job {
    let index: Int
    let count: Int
    let settings: Settings
    let rendezvous: Rendezvous
    let out: UnsafeMutablePointer<ThreadResult>
    init(index: Int, count: Int, settings: Settings, rendezvous: Rendezvous, out: UnsafeMutablePointer<ThreadResult>) {
        self.index = index
        self.count = count
        self.settings = settings
        self.rendezvous = rendezvous
        self.out = out
    }
}

/// Where the threads of a run meet: idle's, once all have opened their connections (the last to
/// arrive prints the "ready" line); reconnect's, at the start of each round, so that every thread
/// drops its connections together. The last thread to arrive runs `onAll` and its answer goes
/// to all. A thread leaves when it ends (or fails to start), so the others never wait for it.
final class Rendezvous {
    let startNs = nowNs()
    var opened = 0                 // summed over the threads' arrivals
    var failed = 0
    var deadline: UInt64 = 0       // for onAll's use
    var onAll: (Rendezvous) -> Bool
    private var parties: Int
    private var arrived = 0
    private var generation = 0
    private var answer = false
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(parties: Int, onAll: @escaping (Rendezvous) -> Bool) {
        self.parties = parties
        self.onAll = onAll
        pthread_mutex_init(lock, nil)
        pthread_cond_init(cond, nil)
    }

    /// Waits for every thread still in the run; returns the last one's `onAll` answer.
    func meet(opened: Int = 0, failed: Int = 0) -> Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        self.opened += opened
        self.failed += failed
        arrived += 1
        if arrived >= parties {
            release()
        } else {
            let waitingFor = generation
            while generation == waitingFor { pthread_cond_wait(cond, lock) }
        }
        return answer
    }

    /// The calling thread takes no further part; `failed` counts its connections that never opened.
    func leave(failed: Int) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        parties -= 1
        self.failed += failed
        if arrived > 0 && arrived >= parties { release() }
    }

    private func release() {
        answer = onAll(self)
        arrived = 0
        generation += 1
        pthread_cond_broadcast(cond)
    }
}

@inline(__always) func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// MQTT 3.1.1 CONNECT for `id` (clean session, keepalive 60 s).
/// The Keep Alive every CONNECT announces (--connect-keepalive; set once before threads start).
nonisolated(unsafe) var connectKeepAliveSeconds: UInt16 = 60

func connectPacket(_ id: String) -> [UInt8] {
    let bytes = Array(id.utf8)
    let k = connectKeepAliveSeconds
    return [0x10, UInt8(12 + bytes.count), 0, 4] + Array("MQTT".utf8)
        + [4, 2, UInt8(k >> 8), UInt8(k & 0xff), UInt8(bytes.count >> 8), UInt8(bytes.count & 0xff)] + bytes
}
