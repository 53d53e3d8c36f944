// Statistics: every counter a worker keeps is one case of `Counter`, defined once with its
// operator name, kind and help text; reports, merging and (later) metrics read that one list.
// Workers bump words in their own table with relaxed loads and stores (no read-modify-write
// atomics on the hot path); a reader on another thread may see a value a few increments old.

import CUring

/// How values of one counter combine across workers and generations.
public enum CounterKind: Sendable {
    /// Only grows; summed; kept across reloads.
    case counter
    /// A level (connections open, buffers out); summed over what is running now.
    case gauge
    /// A high-water mark; the largest wins.
    case maximum
}

public enum Counter: Int, CaseIterable, Sendable {
    case accepted, acceptErrors, refusedMaxconn, deniedConnections, untrackedAddresses, acceptPaused, closed, active
    case connectAttempts, connectFailures, connectTimeouts, connectGiveUps, sourceExhausted
    case clientTimeouts, keepAliveTimeouts, serverTimeouts, resets
    case bytesFromClients, bytesFromServers
    case recvCompletions, sendCompletions, shortSends, gatheredSends, recvResumesAfterCancel
    case cancelsByUserData, cancelsByFile, recvPauses, noBuffers, abortsWhileWaiting, evictions
    case buffersInUse, buffersInUseMax, ownedBuffersInUse, pipeBuffersMax
    case loopTurns, completions, staleCompletions, timersFired
    case mqttConnects, mqttRejected, inspectTimeouts, inspectAborts
    case stickHits, stickMisses
    case proxyHeadersSent, proxyHeadersUnknown, proxyHeaderNoBuffer, localAddressLookups, localAddressFailures
    case proxyHeadersReceived, proxyRejectedSignature, proxyRejectedV1Malformed, proxyRejectedV1TooLong
    case proxyRejectedV2Command, proxyRejectedV2Family, proxyRejectedV2TooLong, proxyRejectedV2ShortAddresses
    case proxyRejectedTruncated
    case checksStarted, checksPassed, checksFailed, observedErrorLimits, serverShutdownSessions
    case webSocketUpgrades, webSocketRejectedRequests, webSocketRejectedFrames, webSocketServerRefused
    case tlsHandshakes, tlsResumedHandshakes, tlsHandshakeFailures, tlsRecordErrors, tlsNoBuffer, tlsAcceptsHeld
    case tlsHandshakesEvicted
    case serverTLSHandshakes, serverTLSResumedHandshakes, serverTLSHandshakeFailures, serverTLSRecordErrors
    case redispatchUpgradeRefused, redispatchServerClosed, redispatchServerUnavailable, redispatchServerBusy
    case redispatchConnectionRate, redispatchUseAnotherServer, redispatchReferences, connackRefusalsPassed
    case ktlsAttempts, ktlsSwitched, ktlsKeysUnavailable, ktlsRefused, ktlsAbandoned, ktlsFailed, ktlsControlRecords

    /// The operator's name (snake_case, as in the SIGUSR1 report and metrics), kind and help.
    public var info: (name: String, kind: CounterKind, help: String) {
        switch self {
        case .accepted: return ("accepted", .counter, "connections accepted and counted")
        case .acceptErrors: return ("accept_errors", .counter, "accepts that failed")
        case .refusedMaxconn: return ("refused_maxconn", .counter, "connections closed at once because maxconn was reached")
        case .deniedConnections: return ("denied_conn", .counter, "connections closed at once by a 'tcp-request connection reject' rule (HAProxy's dcon)")
        case .untrackedAddresses: return ("untracked", .counter, "connections 'track-sc0' could not track: the address table was full of busy addresses, or an IPv6 client met a 'type ip' table")
        case .acceptPaused: return ("accept_paused", .counter, "times a listener paused because the worker's table was full")
        case .closed: return ("closed", .counter, "connections closed")
        case .active: return ("active", .gauge, "connections open")
        case .connectAttempts: return ("connect_attempts", .counter, "server connection attempts")
        case .connectFailures: return ("connect_failures", .counter, "server connection attempts that failed")
        case .connectTimeouts: return ("connect_timeouts", .counter, "server connection attempts that timed out")
        case .connectGiveUps: return ("give_ups", .counter, "clients closed because no server answered within the retries")
        case .sourceExhausted: return ("source_exhausted", .counter, "server connection attempts that found no free address and port in the server's source pool")
        case .keepAliveTimeouts: return ("keepalive_timeouts", .counter, "MQTT connections closed after 1.5 times their CONNECT keepalive without a byte (option mqtt-keepalive-timeout)")
        case .clientTimeouts: return ("client_timeouts", .counter, "connections closed by timeout client")
        case .serverTimeouts: return ("server_timeouts", .counter, "connections closed by timeout server")
        case .resets: return ("resets", .counter, "connections aborted by a reset on either side")
        case .bytesFromClients: return ("bytes_in", .counter, "bytes received from clients")
        case .bytesFromServers: return ("bytes_out", .counter, "bytes received from servers")
        case .recvCompletions: return ("recvs", .counter, "recv completions")
        case .sendCompletions: return ("sends", .counter, "send completions")
        case .shortSends: return ("short_sends", .counter, "sends that sent less than asked")
        case .gatheredSends: return ("gathered_sends", .counter, "sends that carried several queued buffers in one sendmsg")
        case .recvResumesAfterCancel: return ("recv_resumes_after_cancel", .counter, "recvs re-armed when their cancel completed after the queue had drained")
        case .cancelsByUserData: return ("close_cancels_by_user_data", .counter, "pending ops cancelled by user_data at close")
        case .cancelsByFile: return ("close_cancels_by_file", .counter, "pending ops cancelled by file at close")
        case .recvPauses: return ("recv_pauses", .counter, "recvs paused by backpressure")
        case .noBuffers: return ("no_buffers", .counter, "recvs that found the buffer pool empty")
        case .abortsWhileWaiting: return ("aborts_while_waiting", .counter, "resets noticed on sockets not being read (paused or waiting for buffers)")
        case .evictions: return ("evictions", .counter, "connections closed to give buffers back when the pool ran low")
        case .buffersInUse: return ("buffers_in_use", .gauge, "provided buffers held by the proxy")
        case .buffersInUseMax: return ("buffers_in_use_max", .maximum, "most provided buffers held at once by one worker")
        case .ownedBuffersInUse: return ("owned_buffers_in_use", .gauge, "owned buffers (bytes the proxy writes) held")
        case .pipeBuffersMax: return ("pipe_buffers_max", .maximum, "most buffers one direction of a connection held")
        case .loopTurns: return ("loop_turns", .counter, "event loop turns")
        case .completions: return ("completions", .counter, "io_uring completions handled")
        case .staleCompletions: return ("stale_completions", .counter, "completions for slots reused meanwhile")
        case .timersFired: return ("timers_fired", .counter, "worker timers that expired")
        case .mqttConnects: return ("mqtt_connects", .counter, "valid MQTT CONNECTs inspected")
        case .mqttRejected: return ("mqtt_rejected", .counter, "connections rejected as not MQTT")
        case .inspectTimeouts: return ("inspect_timeouts", .counter, "connections closed for not completing their preamble in time")
        case .inspectAborts: return ("inspect_aborts", .counter, "clients that left during their preamble")
        case .stickHits: return ("stick_hits", .counter, "client ids found in the stick table")
        case .stickMisses: return ("stick_misses", .counter, "client ids not found in the stick table")
        case .proxyHeadersSent: return ("proxy_headers_sent", .counter, "PROXY protocol headers sent to servers (send-proxy, send-proxy-v2)")
        case .proxyHeadersUnknown: return ("proxy_headers_unknown", .counter, "PROXY headers sent as UNKNOWN (v1) or LOCAL (v2): the address the client reached was not known")
        case .proxyHeaderNoBuffer: return ("proxy_header_no_buffer", .counter, "connections closed because no owned buffer was free for their PROXY header")
        case .localAddressLookups: return ("local_address_lookups", .counter, "client sockets installed for getsockname: the address reached on a wildcard bind, for a PROXY header")
        case .localAddressFailures: return ("local_address_failures", .counter, "of those, lookups that failed (the header then says UNKNOWN or LOCAL)")
        case .proxyHeadersReceived: return ("proxy_headers_received", .counter, "valid PROXY protocol headers read on accept-proxy listeners")
        case .proxyRejectedSignature: return ("proxy_rejected_signature", .counter, "accept-proxy connections closed: no PROXY header (neither signature)")
        case .proxyRejectedV1Malformed: return ("proxy_rejected_v1_malformed", .counter, "accept-proxy connections closed: a malformed v1 line")
        case .proxyRejectedV1TooLong: return ("proxy_rejected_v1_too_long", .counter, "accept-proxy connections closed: no CRLF within 107 bytes")
        case .proxyRejectedV2Command: return ("proxy_rejected_v2_command", .counter, "accept-proxy connections closed: a v2 version or command other than 2 and LOCAL/PROXY")
        case .proxyRejectedV2Family: return ("proxy_rejected_v2_family", .counter, "accept-proxy connections closed: a v2 family other than TCP over IPv4/IPv6 or UNSPEC")
        case .proxyRejectedV2TooLong: return ("proxy_rejected_v2_too_long", .counter, "accept-proxy connections closed: a v2 length over 536 bytes")
        case .proxyRejectedV2ShortAddresses: return ("proxy_rejected_v2_short_addresses", .counter, "accept-proxy connections closed: a v2 length too short for its addresses")
        case .proxyRejectedTruncated: return ("proxy_rejected_truncated", .counter, "accept-proxy connections that closed or ran out of inspect delay inside their PROXY header")
        case .checksStarted: return ("checks_started", .counter, "health checks started")
        case .checksPassed: return ("checks_passed", .counter, "health checks that passed")
        case .checksFailed: return ("checks_failed", .counter, "health checks that failed")
        case .observedErrorLimits: return ("observe_error_limits", .counter, "times 'observe layer4' saw error-limit failed connections in a row and ran its on-error action")
        case .webSocketUpgrades: return ("websocket_upgrades", .counter, "WebSocket upgrades answered with 101 (option mqtt-websocket)")
        case .webSocketRejectedRequests: return ("websocket_rejected_requests", .counter, "WebSocket upgrade requests refused with an HTTP error (400, 404, 405, 426, 431, 505)")
        case .webSocketRejectedFrames: return ("websocket_rejected_frames", .counter, "WebSocket clients closed for a frame that is not a binary MQTT message (text, unmasked, too big, close)")
        case .webSocketServerRefused: return ("websocket_server_refused", .counter, "WebSocket clients closed with 1011 because no server (within the retries) answered the replayed upgrade with a valid 101")
        case .redispatchUpgradeRefused: return ("redispatch_upgrade_refused", .counter, "redispatches: the server answered the replayed WebSocket upgrade with no valid 101")
        case .redispatchServerClosed: return ("redispatch_server_closed", .counter, "redispatches: the server closed or reset before answering the replayed upgrade or the held CONNECT")
        case .redispatchServerUnavailable: return ("redispatch_server_unavailable", .counter, "redispatches: CONNACK server unavailable (3.1.1 0x03, 5.0 0x88; option mqtt-connack-redispatch)")
        case .redispatchServerBusy: return ("redispatch_server_busy", .counter, "redispatches: CONNACK 0x89 server busy (option mqtt-connack-redispatch)")
        case .redispatchConnectionRate: return ("redispatch_connection_rate", .counter, "redispatches: CONNACK 0x9F connection rate exceeded (option mqtt-connack-redispatch)")
        case .redispatchUseAnotherServer: return ("redispatch_use_another_server", .counter, "redispatches: CONNACK 0x9C use another server / 0x9D server moved (option mqtt-connack-redispatch)")
        case .redispatchReferences: return ("redispatch_references", .counter, "of those, to the configured server their Server Reference named")
        case .connackRefusalsPassed: return ("connack_refusals_passed", .counter, "'try another server' CONNACKs handed to the client because the retries were spent")
        case .tlsHandshakes: return ("tls_handshakes", .counter, "TLS handshakes completed with clients")
        case .tlsResumedHandshakes: return ("tls_resumed_handshakes", .counter, "of those, resumed sessions (ticket or cache)")
        case .tlsHandshakeFailures: return ("tls_handshake_failures", .counter, "TLS handshakes that failed (not TLS, no shared cipher or version, a refused client certificate ...)")
        case .tlsRecordErrors: return ("tls_record_errors", .counter, "established TLS connections closed on a record error or fatal alert")
        case .tlsAcceptsHeld: return ("tls_accepts_held", .counter, "times TLS listeners stopped accepting: handshakes in flight at their bound, or maxsslrate's share spent this second")
        case .tlsHandshakesEvicted: return ("tls_handshakes_evicted", .counter, "TLS handshakes closed at the bound of handshakes in flight to make room for a new client, the most idle first")
        case .serverTLSHandshakes: return ("server_tls_handshakes", .counter, "TLS handshakes completed with servers ('server ... ssl')")
        case .serverTLSResumedHandshakes: return ("server_tls_resumed_handshakes", .counter, "of those, resumed (each worker keeps its last session per server)")
        case .serverTLSHandshakeFailures: return ("server_tls_handshake_failures", .counter, "TLS handshakes with servers that failed (certificate not verified, no shared version or cipher ...)")
        case .serverTLSRecordErrors: return ("server_tls_record_errors", .counter, "connections closed on a record error or fatal alert from a TLS server")
        case .ktlsAttempts: return ("ktls_attempts", .counter, "TLS client connections that began the switch to kernel TLS (both directions quiesced)")
        case .ktlsSwitched: return ("ktls_switched", .counter, "of those, switched: the kernel seals and opens their records")
        case .ktlsKeysUnavailable: return ("ktls_keys_unavailable", .counter, "of those, kept in userspace: no keys to hand over (a record half read or waiting, a KeyUpdate, a cipher the kernel lacks)")
        case .ktlsRefused: return ("ktls_refused", .counter, "of those, kept in userspace: the kernel refused TCP_ULP tls (ENOENT without CONFIG_TLS)")
        case .ktlsAbandoned: return ("ktls_abandoned", .counter, "of those, kept in userspace: a side closed while the switch waited")
        case .ktlsFailed: return ("ktls_failed", .counter, "of those, closed: the ULP attached but the kernel refused the keys (socket state unknown)")
        case .ktlsControlRecords: return ("ktls_control_records", .counter, "kTLS connections closed on a non-data record from the client (alert, KeyUpdate: recv gave EIO)")
        case .tlsNoBuffer: return ("tls_no_buffer", .counter, "TLS calls that found no owned buffer for their output")
        case .serverShutdownSessions: return ("server_shutdown_sessions", .counter, "sessions closed because their server went DOWN (shutdown-sessions) or an active server came back (shutdown-backup-sessions)")
        }
    }
}

extension Counter {
    /// The counter of a refused PROXY header's reason.
    static func proxyRejected(_ reason: ProxyHeaderRejection) -> Counter {
        switch reason {
        case .notProxyProtocol: return .proxyRejectedSignature
        case .v1Malformed: return .proxyRejectedV1Malformed
        case .v1TooLong: return .proxyRejectedV1TooLong
        case .v2BadVersionOrCommand: return .proxyRejectedV2Command
        case .v2UnsupportedFamily: return .proxyRejectedV2Family
        case .v2TooLong: return .proxyRejectedV2TooLong
        case .v2ShortAddresses: return .proxyRejectedV2ShortAddresses
        }
    }
}

/// A snapshot of every counter, merged by each counter's kind.
public struct CounterValues: Sendable, Equatable {
    public private(set) var values: [UInt64]

    public init() { values = Array(repeating: 0, count: Counter.allCases.count) }

    /// Words another thread writes (relaxed loads).
    init(copying words: UnsafeMutablePointer<UInt64>) {
        values = (0..<Counter.allCases.count).map { cu_word_load(words + $0) }
    }

    public subscript(_ counter: Counter) -> UInt64 {
        get { values[counter.rawValue] }
        set { values[counter.rawValue] = newValue }
    }

    /// Adds `other` in, each counter by its kind.
    public mutating func merge(_ other: CounterValues) {
        for c in Counter.allCases {
            switch c.info.kind {
            case .counter, .gauge: values[c.rawValue] &+= other.values[c.rawValue]
            case .maximum: values[c.rawValue] = max(values[c.rawValue], other.values[c.rawValue])
            }
        }
    }

    /// What a finished generation leaves behind: its counts and high-water marks, not levels.
    public var withoutGauges: CounterValues {
        var copy = self
        for c in Counter.allCases where c.info.kind == .gauge { copy.values[c.rawValue] = 0 }
        return copy
    }
}

public struct WorkerStatistics: Sendable, Equatable {
    public var counters = CounterValues()
    /// MQTT rejections per MQTTPeek.InvalidReason raw value.
    public var mqttRejectedByReason: [UInt64] = Array(repeating: 0, count: 32)
    /// Bytes the worker thread has allocated since it started (jemalloc's thread.allocated);
    /// -1 when the allocator is not jemalloc. Flat while forwarding: nothing allocates there.
    public var threadAllocatedBytes: Int64 = -1

    public init() {}

    public subscript(_ counter: Counter) -> UInt64 { counters[counter] }

    public static func + (a: WorkerStatistics, b: WorkerStatistics) -> WorkerStatistics {
        var s = a
        s.counters.merge(b.counters)
        s.mqttRejectedByReason = zip(a.mqttRejectedByReason, b.mqttRejectedByReason).map { $0 &+ $1 }
        s.threadAllocatedBytes = a.threadAllocatedBytes < 0 || b.threadAllocatedBytes < 0
            ? max(a.threadAllocatedBytes, b.threadAllocatedBytes)
            : a.threadAllocatedBytes + b.threadAllocatedBytes
        return s
    }

    /// What a finished generation leaves behind (see CounterValues.withoutGauges).
    var finished: WorkerStatistics {
        var s = self
        s.counters = counters.withoutGauges
        return s
    }
}

/// One server's line in the statistics, named so that a report needs no configuration.
public struct ServerStatistics: Sendable {
    public var backend: String
    public var server: String
    public var address: SocketAddress
    public var active: Int
    public var total: Int
}

public struct EngineStatistics: Sendable {
    /// The workers of the configuration serving now.
    public var workers: [WorkerStatistics]
    /// Everything configurations replaced by reloads counted (those still finishing their
    /// connections and those gone), so that counters never go back on a reload.
    public var previous: WorkerStatistics
    /// Per server of the configuration serving now.
    public var servers: [ServerStatistics]
    public var total: WorkerStatistics { workers.reduce(previous, +) }
}
