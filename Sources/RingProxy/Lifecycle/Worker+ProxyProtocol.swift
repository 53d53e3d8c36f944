// Worker+ProxyProtocol: the PROXY protocol on a connection. In: what an accept-proxy header
// carries becomes the client's address (and the address it reached) for everything after. Out:
// the header a `send-proxy(-v2)` server gets, written into an owned buffer at the head of the
// client's pipe when the connect succeeds (so it leaves in the same send as the held bytes,
// once, for the server that answered), and the address it names as the destination. Once per
// connection, never per packet; allocates nothing.
import CTLS
import CUring
import Glibc

extension Worker {
    /// An accepted header: its source replaces the connection's peer, so balancing, the log
    /// and the header sent on all see the client the front balancer saw; its destination is
    /// kept for that header. LOCAL, UNKNOWN and UNSPEC leave the real endpoints in place.
    func adoptProxyHeader(_ slot: Int32, _ info: ProxyHeaderInfo) {
        count(.proxyHeadersReceived)
        guard let addresses = info.addresses else { return }
        let s = Int(slot)
        withUnsafeMutableBytes(of: &conns[s].peer) { Self.store(addresses.source, addresses.family, into: $0) }
        conns[s].peerLength = UInt32(addresses.family == .ipv4 ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
        Self.store(addresses.destination, addresses.family,
                   into: UnsafeMutableRawBufferPointer(start: destinations + s, count: MemoryLayout<sockaddrStorage>.size))
        conns[s].destinationKnown = true
    }

    /// Writes `endpoint` as a sockaddr_in or sockaddr_in6 over `out` (zeroed first).
    static func store(_ endpoint: ProxyEndpoint, _ family: ProxyAddresses.Family, into out: UnsafeMutableRawBufferPointer) {
        memset(out.baseAddress!, 0, out.count)
        out.storeBytes(of: sa_family_t(family == .ipv4 ? AF_INET : AF_INET6), as: sa_family_t.self)
        out.storeBytes(of: endpoint.port.bigEndian, toByteOffset: 2, as: UInt16.self)
        withUnsafeBytes(of: endpoint.address) {
            (out.baseAddress! + (family == .ipv4 ? 4 : 8)).copyMemory(from: $0.baseAddress!, byteCount: family.addressBytes)
        }
    }

    /// Writes the header for `slot`'s client into an owned buffer queued ahead of everything
    /// the client sent. With no owned buffer free the connection is closed (and counted)
    /// rather than sent on without its header. False when it was closed.
    func queueProxyHeader(_ slot: Int32, version: UInt8) -> Bool {
        let s = Int(slot)
        guard let bid = pool.takeOwned() else {
            count(.proxyHeaderNoBuffer)
            warnRateLimited(slot, "no owned buffer free for the PROXY header: closed rather than sent without it")
            closeConnection(slot, reset: false, why: .resourceAtConnect)
            return false
        }
        let addresses = proxyAddresses(slot)
        if addresses == nil { count(.proxyHeadersUnknown) }
        var n = version == 1
            ? ProxyHeader.writeV1(addresses, to: pool.address(bid), capacity: pool.sizeBytes)
            : ProxyHeader.writeV2(addresses, to: pool.address(bid), capacity: pool.sizeBytes)
        let tlvs = serverProxyTLVs[backendServerBase[Int(conns[s].backend)] + Int(conns[s].server)]
        if version == 2 && addresses != nil && !tlvs.isEmpty {
            if conns[s].tls { appendTLSTLVs(slot, tlvs, header: pool.address(bid), length: &n) }
            if tlvs.contains(.uniqueID) { appendUniqueID(slot, header: pool.address(bid), length: &n) }
        }
        pool.length[Int(bid)] = UInt32(n)
        enqueueFront(s * 2, bid)
        // Held bytes replayed after the header (Worker+Redispatch): the header goes before them.
        if conns[s].transform.awaitsServerAnswer { replayProxyHeaderQueued(slot, bytes: n) }
        count(.proxyHeadersSent)
        return true
    }

    /// The client (its address, or the one an accept-proxy header gave) and the address it
    /// connected to: from an accept-proxy header or the wildcard lookup when known, else the
    /// listener's own address unless that is a wildcard. Nil when either is unknown: the
    /// header then says UNKNOWN (v1) or LOCAL (v2), as the specification asks of a sender
    /// that cannot fill it in. A v4/v6 mix is written as IPv6 with the IPv4 address mapped
    /// (::ffff:a.b.c.d), as HAProxy does.
    func proxyAddresses(_ slot: Int32) -> ProxyAddresses? {
        let s = Int(slot)
        let l = Int(conns[s].listener)
        let destination: ProxyEndpoint?
        let destinationIPv6: Bool
        if conns[s].destinationKnown {
            guard let d = Self.endpoint(UnsafeRawPointer(destinations + s)) else { return nil }
            (destinationIPv6, destination) = (d.ipv6, d.endpoint)
        } else if !listenerWildcard[l] {
            guard let d = withUnsafeBytes(of: &listenerAddresses[l].storage, { Self.endpoint($0.baseAddress!) }) else { return nil }
            (destinationIPv6, destination) = (d.ipv6, d.endpoint)
        } else {
            return nil
        }
        guard let source = Self.endpoint(UnsafeRawPointer(conns + s) + Worker.peerOffset), let destination else { return nil }
        if source.ipv6 == destinationIPv6 {
            return ProxyAddresses(family: source.ipv6 ? .ipv6 : .ipv4, source: source.endpoint, destination: destination)
        }
        return ProxyAddresses(family: .ipv6,
                              source: source.ipv6 ? source.endpoint : Self.mapped(source.endpoint),
                              destination: destinationIPv6 ? destination : Self.mapped(destination))
    }

    /// A sockaddr_in or sockaddr_in6 as a header endpoint; nil for another family.
    static func endpoint(_ address: UnsafeRawPointer) -> (ipv6: Bool, endpoint: ProxyEndpoint)? {
        let family = Int32(address.load(as: sa_family_t.self))
        let port = UInt16(bigEndian: address.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        if family == AF_INET { return (false, ProxyEndpoint(address: address + 4, count: 4, port: port)) }
        if family == AF_INET6 { return (true, ProxyEndpoint(address: address + 8, count: 16, port: port)) }
        return nil
    }

    /// An IPv4 endpoint as an IPv4-mapped IPv6 one (RFC 4291 §2.5.5.2).
    static func mapped(_ v4: ProxyEndpoint) -> ProxyEndpoint {
        var v6 = ProxyEndpoint()
        v6.port = v4.port
        withUnsafeMutableBytes(of: &v6.address) { out in
            out[10] = 0xFF
            out[11] = 0xFF
            withUnsafeBytes(of: v4.address) { (out.baseAddress! + 12).copyMemory(from: $0.baseAddress!, byteCount: 4) }
        }
        return v6
    }

    /// Direct descriptors have no fd for getsockname, so where a wildcard bind leaves the
    /// address a client reached unknown, the client socket is installed into the fd table for
    /// one getsockname (IORING_OP_FIXED_FD_INSTALL, linked ahead of the connect so it completes
    /// first) and the fd closed at once; the fixed file stays. Only for a connection to a
    /// server that takes PROXY headers, when nothing gave the address already.
    func lookUpLocalAddressIfNeeded(_ slot: Int32) {
        let s = Int(slot)
        guard !conns[s].destinationKnown, !conns[s].lookupPending, fixedFDInstall,
              listenerWildcard[Int(conns[s].listener)] else { return }
        let sqe = ring.sqe()
        cu_prep_fixed_fd_install(sqe, Int32(s * 2))
        // A failed lookup must not stop the connect: the header then says UNKNOWN or LOCAL.
        cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK)
        io_uring_sqe_set_data64(sqe, UserData(.installClient, slot: slot, generation: conns[s].generation).raw)
        conns[s].pendingOps += 1
        conns[s].lookupPending = true
        count(.localAddressLookups)
    }

    /// The client socket's fd: its local address is the destination of the PROXY header.
    func onClientInstalled(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        conns[s].pendingOps -= 1
        conns[s].lookupPending = false
        if result >= 0 {
            var length = socklen_t(MemoryLayout<sockaddrStorage>.size)
            let rc = (destinations + s).withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(result, $0, &length) }
            if rc == 0 { conns[s].destinationKnown = true }
            close(result)
        }
        if !conns[s].destinationKnown { count(.localAddressFailures) }
        if conns[s].establishWaiting {
            conns[s].establishWaiting = false
            if conns[s].phase == .connecting {
                establish(slot)
                return
            }
        }
        finishIfIdle(slot)
    }

    /// Said once at start-up: where a wildcard bind meets PROXY headers on a kernel without
    /// IORING_OP_FIXED_FD_INSTALL, the headers cannot name the address the client reached.
    func warnIfLocalAddressesUnknown() {
        guard !fixedFDInstall else { return }
        for listener in listeners where listener.address.isWildcard {
            let backend = config.backends[listener.backend]
            guard backend.servers.contains(where: { $0.proxyProtocol != nil }) else { continue }
            log.warning("frontend \(config.frontends[listener.frontend].name) listens on \(listener.address) and backend \(backend.name) "
                        + "sends PROXY headers, but this kernel cannot look up the address a client reached "
                        + "(IORING_OP_FIXED_FD_INSTALL, Linux 6.8+): those headers say UNKNOWN (v1) or LOCAL (v2); "
                        + "bind the specific address to have it named")
        }
    }

    /// The client's TLS session as v2 TLVs (proxy-protocol.txt §2.2.5): PP2_TYPE_AUTHORITY
    /// (the SNI), PP2_TYPE_SSL with its client flags, the verify result and the version, CN
    /// and cipher sub-TLVs. Written from the SSL's facts into the header's buffer; no allocation.
    func appendTLSTLVs(_ slot: Int32, _ tlvs: ProxyV2TLVs, header: UnsafeMutableRawPointer, length: inout Int) {
        guard let ssl = tlsSessions[Int(slot)] else { return }
        let capacity = pool.sizeBytes
        if tlvs.contains(.authority), let sni = ctls_sni(ssl) {
            ProxyHeader.appendV2TLV(header, length: &length, capacity: capacity, type: ProxyHeader.TLV.authority,
                                    value: UnsafeRawBufferPointer(start: sni, count: strlen(sni)))
        }
        guard tlvs.contains(.ssl) else { return }
        // The SSL TLV's value: client (1), verify (4), then sub-TLVs, built after the header
        // and appended as one TLV.
        let start = length + 3
        guard start + 5 + 3 * 300 <= capacity else { return }
        let value = header + start
        let presented = ctls_client_cert_presented(ssl) != 0
        var client = ProxyHeader.TLV.clientSSL
        if presented { client |= ProxyHeader.TLV.clientCertConnection | ProxyHeader.TLV.clientCertSession }
        value.storeBytes(of: client, as: UInt8.self)
        let verified = presented && ctls_verify_result(ssl) == 0
        value.storeBytes(of: UInt32(verified ? 0 : 1).bigEndian, toByteOffset: 1, as: UInt32.self)
        var valueLength = 5
        func sub(_ type: UInt8, _ text: UnsafePointer<CChar>?, _ count: Int) {
            guard let text, count > 0 else { return }
            let n = min(count, 255)
            (value + valueLength).storeBytes(of: type, as: UInt8.self)
            (value + valueLength).storeBytes(of: UInt16(n).bigEndian, toByteOffset: 1, as: UInt16.self)
            (value + valueLength + 3).copyMemory(from: text, byteCount: n)
            valueLength += 3 + n
        }
        let version = ctls_version(ssl)
        sub(ProxyHeader.TLV.sslVersion, version, version.map { strlen($0) } ?? 0)
        if tlvs.contains(.certCN) && presented {
            let buffer = (value + valueLength + 3).assumingMemoryBound(to: CChar.self)
            let n = ctls_client_cn(ssl, buffer, 256)
            if n > 0 {
                (value + valueLength).storeBytes(of: ProxyHeader.TLV.sslCN, as: UInt8.self)
                (value + valueLength).storeBytes(of: UInt16(min(n, 255)).bigEndian, toByteOffset: 1, as: UInt16.self)
                valueLength += 3 + min(n, 255)
            }
        }
        if tlvs.contains(.sslCipher) {
            let cipher = ctls_cipher(ssl)
            sub(ProxyHeader.TLV.sslCipher, cipher, cipher.map { strlen($0) } ?? 0)
        }
        // The value is already in place: write the TLV's type and length in front of it.
        header.storeBytes(of: ProxyHeader.TLV.ssl, toByteOffset: length, as: UInt8.self)
        header.storeBytes(of: UInt16(valueLength).bigEndian, toByteOffset: length + 1, as: UInt16.self)
        length += 3 + valueLength
        let addressLength = UInt16(bigEndian: header.loadUnaligned(fromByteOffset: 14, as: UInt16.self))
        header.storeBytes(of: (addressLength + UInt16(3 + valueLength)).bigEndian, toByteOffset: 14, as: UInt16.self)
    }

    /// PP2_TYPE_UNIQUE_ID (proxy-protocol.txt §2.2.6): the connection's id from its frontend's
    /// `unique-id-format`, at most 128 bytes; none without a format.
    func appendUniqueID(_ slot: Int32, header: UnsafeMutableRawPointer, length: inout Int) {
        let s = Int(slot)
        let f = Int(conns[s].frontend)
        guard let format = frontendUniqueID[f] else { return }
        let capacity = pool.sizeBytes
        guard length + 3 + UniqueIDFormat.bytesMax <= capacity else { return }
        let peer = UnsafeRawPointer(conns + s) + Worker.peerOffset
        let frontend: UnsafeRawPointer? = conns[s].destinationKnown ? UnsafeRawPointer(destinations + s)
            : (listenerWildcard[Int(conns[s].listener)] ? nil : UnsafeRawPointer(listenerAddresses + Int(conns[s].listener)))
        let wallMs = cu_wall_ms() - (nowMs - conns[s].acceptedAtMs)
        let counter = UInt64(conns[s].sequence) &* UInt64(config.workerCount) &+ UInt64(index)
        let n = hostName.withUnsafeBytes { host in
            frontendNames.withName(f) { name in
                format.format(UniqueIDFormat.Facts(client: peer, frontend: frontend, acceptedWallMs: wallMs,
                                                   requestCounter: counter, pid: Int(getpid()), hostname: host, frontendName: name),
                              to: header + length + 3)
            }
        }
        header.storeBytes(of: ProxyHeader.TLV.uniqueID, toByteOffset: length, as: UInt8.self)
        header.storeBytes(of: UInt16(n).bigEndian, toByteOffset: length + 1, as: UInt16.self)
        length += 3 + n
        let addressLength = UInt16(bigEndian: header.loadUnaligned(fromByteOffset: 14, as: UInt16.self))
        header.storeBytes(of: (addressLength + UInt16(3 + n)).bigEndian, toByteOffset: 14, as: UInt16.self)
    }
}
