// UserData: what one io_uring completion is about, packed into the 64-bit user_data:
// operation (8 bits) | buffer id (16) | slot generation (16) | slot (24). Decoding it is the
// first step of every completion; a stale generation means the slot was reused meanwhile.

/// Every operation the engine submits. One case per kind of SQE; one switch handles them.
public enum Operation: UInt8 {
    case accept = 1
    case connect
    case linkTimeout
    /// Multishot recv on the client (pipe 0) or server (pipe 1) socket.
    case recvClient
    case recvServer
    /// Send of one queued buffer to the server (pipe 0) or the client (pipe 1).
    case sendServer
    case sendClient
    case close
    /// shutdown(SHUT_WR) after a FIN. Counted as pending: the kernel runs it from a worker
    /// thread, and the slot's fixed files must not be reused before it has run.
    case shutdown
    /// Submitted with CQE_SKIP_SUCCESS or whose outcome does not matter (socket, setsockopt,
    /// shutdown, cancel); a completion, if any, is only counted.
    case ignore
}

@frozen
public struct UserData: Equatable {
    public var raw: UInt64

    @inline(__always)
    public init(raw: UInt64) { self.raw = raw }

    @inline(__always)
    public init(_ operation: Operation, slot: Int32, generation: UInt16, bufferID: UInt16 = 0) {
        assert(slot >= 0 && slot < (1 << 24))
        raw = UInt64(operation.rawValue)
            | UInt64(bufferID) << 8
            | UInt64(generation) << 24
            | UInt64(UInt32(bitPattern: slot)) << 40
    }

    @inline(__always) public var operation: Operation? { Operation(rawValue: UInt8(truncatingIfNeeded: raw)) }
    @inline(__always) public var bufferID: UInt16 { UInt16(truncatingIfNeeded: raw >> 8) }
    @inline(__always) public var generation: UInt16 { UInt16(truncatingIfNeeded: raw >> 24) }
    @inline(__always) public var slot: Int32 { Int32(truncatingIfNeeded: raw >> 40) }
}
