// UserData: what one io_uring completion is about, packed into the 64-bit user_data:
// operation (8 bits) | buffer id (16) | generation (16) | slot (22) | owner (2). Decoding it is
// the first step of every completion; the owner says whose table the slot indexes (a
// connection's, a health check's, the worker's own), a stale generation that the slot was
// reused meanwhile.

/// Every operation the engine submits. One case per kind of SQE; one switch handles them.
public enum Operation: UInt8 {
    case accept = 1
    case connect
    case linkTimeout
    /// Multishot recv on the client (pipe 0) or server (pipe 1) socket.
    case recvClient
    case recvServer
    /// Send of queued buffers to the server (pipe 0) or the client (pipe 1).
    case sendServer
    case sendClient
    case close
    /// shutdown(SHUT_WR) after a FIN. Counted as pending: the kernel runs it from a worker
    /// thread, and the slot's fixed files must not be reused before it has run.
    case shutdown
    /// Poll for an error or hang-up on the client (pipe 0's source) or server socket while it
    /// is not being read.
    case watchClient
    case watchServer
    /// IORING_OP_FIXED_FD_INSTALL of the client socket, for getsockname: the address a client
    /// reached on a wildcard bind, for a PROXY header (once per connection, only then).
    case installClient
    /// The switch of a TLS client's socket to kTLS, three linked uring_cmd setsockopts on its
    /// fixed file: TCP_ULP "tls", then TLS_TX's keys, then TLS_RX's (Worker+KernelTLS).
    case attachTLSULP
    case setTLSTransmitKeys
    case setTLSReceiveKeys
    /// A close_notify alert to a kTLS client before its FIN; pending like a shutdown.
    case sendCloseNotify
    /// IORING_OP_BIND of a server socket to its source-pool address.
    case sourceBind
    /// Submitted with CQE_SKIP_SUCCESS or whose outcome does not matter (socket, setsockopt,
    /// shutdown, cancel); a completion, if any, is only counted.
    case ignore
}

/// Who an operation belongs to: the table its slot indexes.
public enum Owner: UInt8 {
    /// A client connection: `Worker.conns[slot]`.
    case connection = 0
    /// The worker itself (listener cancels, timers): the slot is the worker's own id.
    case worker = 1
    /// A health check (its slot in the worker's check table).
    case check = 2
}

@frozen
public struct UserData: Equatable {
    public var raw: UInt64

    static let slotBits: UInt64 = 22
    public static let slotMax: Int32 = 1 << 22

    @inline(__always)
    public init(raw: UInt64) { self.raw = raw }

    @inline(__always)
    public init(_ operation: Operation, owner: Owner = .connection, slot: Int32, generation: UInt16, bufferID: UInt16 = 0) {
        assert(slot >= 0 && slot < Self.slotMax)
        raw = UInt64(operation.rawValue)
            | UInt64(bufferID) << 8
            | UInt64(generation) << 24
            | UInt64(UInt32(bitPattern: slot)) << 40
            | UInt64(owner.rawValue) << 62
    }

    @inline(__always) public var operation: Operation? { Operation(rawValue: UInt8(truncatingIfNeeded: raw)) }
    @inline(__always) public var bufferID: UInt16 { UInt16(truncatingIfNeeded: raw >> 8) }
    @inline(__always) public var generation: UInt16 { UInt16(truncatingIfNeeded: raw >> 24) }
    @inline(__always) public var slot: Int32 { Int32(truncatingIfNeeded: (raw >> 40) & ((1 << Self.slotBits) - 1)) }
    @inline(__always) public var owner: Owner? { Owner(rawValue: UInt8(truncatingIfNeeded: raw >> 62)) }
}
