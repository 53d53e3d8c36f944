// Connection and Pipe: the per-connection state, stored by value in the worker's preallocated
// table. A connection has two pipes (0: client -> server, 1: server -> client); pipe p reads
// fixed file p and writes fixed file p ^ 1, where the client socket is 2*slot and the server
// socket 2*slot+1. Queued buffers are linked through the BufferPool, so a pipe costs no
// memory per queued buffer and an idle connection holds none.

/// Where a connection is in its life. Which side may be sent to follows from it: the client
/// from `preamble` on (a stage may answer it before any server exists), the server only once
/// `established`.
enum Phase: UInt8 {
    case free
    /// An accept is armed into this slot.
    case accepting
    /// Client accepted; its listener's front stages run over the held bytes (no server chosen
    /// yet; the server never sees a byte a stage rejects).
    case preamble
    /// Server chosen; connect in progress (client bytes may already be queued).
    case connecting
    case established
    /// Sockets are being cancelled and closed; the slot is freed when no op is pending.
    case closing

    /// Whether the client socket is open and the connection still moving.
    @inline(__always) var isLive: Bool { self == .preamble || self == .connecting || self == .established }
}

/// What established traffic passes through between the pipes: nothing for plain TCP (one
/// branch), TLS records decrypted/encrypted in userspace, or the kernel's TLS.
enum Transform: UInt8 {
    case none
    case userspaceTLS
    case kernelTLS
    /// MQTT-aware WebSocket: the server's 101 to the replayed upgrade is read and dropped
    /// (once; then `.none`, or `.connackResponse`). The held bytes are kept for a redispatch
    /// until it is accepted (Worker+Redispatch).
    case webSocketUpgradeResponse
    /// `option mqtt-connack-redispatch`: the held CONNECT is kept until the server's CONNACK
    /// says it accepted it (then `.none`); one that says "try another server" redispatches.
    case connackResponse

    /// Whether the server's first answer is awaited: sends to it replay the held bytes, which
    /// stay held (Worker+Redispatch).
    @inline(__always) var awaitsServerAnswer: Bool { self == .webSocketUpgradeResponse || self == .connackResponse }
}

/// Where the client side's switch to kernel TLS stands (Worker+KernelTLS). `quiescing` and
/// `submitted` hold both recvs back: no record may be opened or sealed in userspace between
/// the moment the keys are taken and the kernel's answer.
enum KernelTLSSwitch: UInt8 {
    /// Not tried (plain TCP, a server-side-only TLS connection, kTLS off).
    case none
    /// Tried once, whatever came of it (`transform` says whether the kernel has the records).
    case done
    /// Waiting for both directions to fall quiet at a record boundary.
    case quiescing
    /// The keys are taken; TCP_ULP, TLS_TX and TLS_RX are on the ring.
    case submitted

    /// Whether a recv may not be armed now (one comparison: armRecv pays it per re-arm).
    @inline(__always) var holdsRecvs: Bool { rawValue >= KernelTLSSwitch.quiescing.rawValue }
}

struct Pipe {
    /// Queue of received buffers not yet fully sent (linked through BufferPool.next).
    var head: UInt16 = BufferPool.none
    var tail: UInt16 = BufferPool.none
    var count: UInt16 = 0
    /// Bytes of the head buffer already sent (after a short send).
    var sentOffset: UInt32 = 0
    var recvArmed = false
    var cancelRequested = false
    var sendInFlight = false
    /// The source sent FIN.
    var eof = false
    /// shutdown(SHUT_WR) was issued on the destination.
    var shutdownSent = false
    /// A poll watches the source socket for an abort (armed while it is not read).
    var abortWatched = false
    /// The source hung up in order (both directions closed): not watched again.
    var hangupSeen = false
    /// Bytes received from the source.
    var bytes: UInt64 = 0
    /// Deepest the queue has been (buffer accounting, checked by tests).
    var countMax: UInt16 = 0
}

struct Connection {
    var generation: UInt16 = 0
    var phase: Phase = .free
    /// Front stages still to run (FrontStages raw value), and the established-traffic transform.
    var stagesLeft = FrontStages()
    /// Held bytes the current front stage needs before it can decide (its last needMore).
    var preambleBytesNeeded: UInt32 = 0
    var transform = Transform.none
    var clientOpen = false
    var serverOpen = false
    /// Counted in the engine-wide connection count (and its server's).
    var counted = false
    /// Counted on its server (connected at least once).
    var serverCounted = false
    /// Counted in its frontend's address table (track-sc0): released exactly once, at close.
    var tracked = false
    /// Its frontend's `use_backend` rules were evaluated (once: `backend` is final).
    var routed = false
    /// The client id's stick-table key hash is in `stickHash`.
    var sticky = false
    /// `Worker.destinations[slot]` holds the address the client connected to (from an
    /// accept-proxy header, or looked up for a wildcard bind), for a PROXY header sent on.
    var destinationKnown = false
    /// That lookup is in flight; the connect succeeded before it completed.
    var lookupPending = false
    var establishWaiting = false
    /// A last answer (HTTP error, WebSocket close) is queued to the client: close once sent.
    var closeAfterAnswer = false
    /// TLS is terminated on the client side (Worker+TLS; the SSL is Worker.tlsSessions[slot]).
    var tls = false
    /// Counted in the worker's handshakes in flight (until tlsHandshakeEnded).
    var tlsHandshaking = false
    /// The server side is TLS (Worker+ServerTLS; the SSL is Worker.serverTLSSessions[slot]),
    /// and its handshake is still running (the client's bytes wait in serverTLSHeld[slot]).
    var serverTLS = false
    var serverHandshaking = false
    /// A retry went to another server than the one before (HAProxy's '+' before %rc).
    var redispatched = false
    /// The switch to kTLS: its state, the setsockopt steps still to complete, whether the ULP
    /// attached (then a later failure leaves the socket in an unknown state), and the first
    /// step's error (Operation raw value, negated errno).
    var kernelTLSSwitch = KernelTLSSwitch.none
    var kernelTLSStepsLeft: UInt8 = 0
    var kernelTLSAttached = false
    var kernelTLSFailedStep: UInt8 = 0
    var kernelTLSError: Int32 = 0
    var stickHash: UInt64 = 0
    var attempts: UInt8 = 0
    /// errno of a failed source bind in this connect attempt (Worker+Source), 0: none.
    var sourceError: UInt8 = 0
    /// The CONNECT's keepalive in seconds, when `option mqtt-keepalive-timeout` applies to it:
    /// the client timeout is then 1.5 times it (Worker+Timeouts); 0: `timeout client`.
    var keepAliveS: UInt16 = 0
    var pendingOps: Int32 = 0
    var nextFree: Int32 = -1
    var listener: UInt16 = 0
    var backend: UInt16 = 0
    var server: Int32 = -1
    var frontend: UInt16 = 0
    /// Why it ended (Termination raw value; the first cause wins).
    var termination: UInt8 = 0
    var clientIDLength: UInt8 = 0
    /// HAProxy's %rt for `unique-id-format`: the worker's accept count at accept, made unique in
    /// the process by interleaving workers.
    var sequence: UInt32 = 0
    var acceptedAtMs: Int = 0
    var connectStartMs: Int = 0
    var connectedAtMs: Int = 0
    var lastClientMs: Int = 0
    var lastServerMs: Int = 0
    var peerLength: UInt32 = 0
    var peer: sockaddrStorage = (0, 0, 0, 0)
    /// The MQTT client id's first bytes, for the connection log.
    var clientID: clientIDStorage = (0, 0, 0, 0, 0, 0)
}

/// Buffers set aside in order, linked through BufferPool.next like a pipe's queue.
struct HeldChain {
    var head: UInt16 = BufferPool.none
    var tail: UInt16 = BufferPool.none
    var count: UInt16 = 0
}

/// Room for the first 48 bytes of a client id (the log shows no more).
typealias clientIDStorage = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

/// Room for a sockaddr_in6 (28 bytes), the largest address accept(2) fills here.
typealias sockaddrStorage = (UInt64, UInt64, UInt64, UInt32)
