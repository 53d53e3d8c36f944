// Worker+Routing: a connection's backend, chosen once by its frontend's `use_backend` rules
// before a server is picked: when the CONNECT is known on frontends that read it, else when
// the preamble ends (or at accept, for a frontend with no front stage). The rules themselves
// live in Balance/RouteTable; this only gathers what they read. Never allocates.
import Glibc
import MQTTPeek

extension Worker {
    /// Sets `conns[slot].backend` from the first rule that applies (the listener's default
    /// backend stays otherwise). `connect`/`packet`: the CONNECT, when there is one.
    func route(_ slot: Int32, connect: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
               packet: ConnectPacket? = nil) {
        let s = Int(slot)
        guard !conns[s].routed else { return }
        conns[s].routed = true
        let f = Int(conns[s].frontend)
        guard routeTable.hasRoutes(f) else { return }
        let input = RouteInput(peer: UnsafeRawPointer(conns + s) + Worker.peerOffset, destinationPort: destinationPort(slot),
                               connect: connect, packet: packet)
        let b = routeTable.backend(frontend: f, input)
        if b >= 0 { conns[s].backend = UInt16(b) }
    }

    /// The port the client connected to: the PROXY header's when one said so, else the
    /// listener's (the same for a wildcard bind).
    private func destinationPort(_ slot: Int32) -> Int64 {
        let s = Int(slot)
        if conns[s].destinationKnown {
            // sockaddr_in and sockaddr_in6 both keep the port at bytes 2..<4, big-endian.
            let port = UnsafeRawPointer(destinations + s).loadUnaligned(fromByteOffset: 2, as: UInt16.self)
            return Int64(UInt16(bigEndian: port))
        }
        return Int64(listenerAddresses[Int(conns[s].listener)].port)
    }
}
