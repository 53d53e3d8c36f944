// Worker+KernelTLS: an established TLS client handed to the kernel's TLS (kTLS). Both
// directions fall quiet at a record boundary (no recv armed, nothing sealed left to send), the
// TX and RX keys are taken from the session (CTLS), and TCP_ULP "tls", TLS_TX and TLS_RX go on
// the ring as three linked setsockopts on the fixed file; the relay then moves the client's
// plaintext like plain TCP. Runs once per connection, never per packet. Where the kernel
// refuses the ULP (no CONFIG_TLS: ENOENT) the connection resumes in userspace, nothing lost.
import CTLS
import CUring
import Glibc

extension Worker {
    /// Both sides are established (the server's handshake, if any, done; no WebSocket answer
    /// pending): the client's switch begins, if this worker attempts it. Neither side is read
    /// until it ends: client records must stop where OpenSSL stopped, and no server bytes may
    /// be sealed in userspace once the TX keys are taken.
    func beginKernelTLSSwitch(_ slot: Int32) {
        let s = Int(slot)
        guard kernelTLSSwitchEnabled, conns[s].tls, conns[s].kernelTLSSwitch == .none,
              conns[s].phase == .established, !conns[s].serverHandshaking, conns[s].transform == .none else { return }
        conns[s].kernelTLSSwitch = .quiescing
        count(.ktlsAttempts)
        cancelRecv(s * 2)
        cancelRecv(s * 2 + 1)
        continueKernelTLSSwitch(slot)
    }

    /// Called where a direction may have fallen quiet during the switch (a recv completed, a
    /// recv armRecv held back, the client's queue sent): once both are, the keys are taken and
    /// the setsockopts submitted. A side that closed meanwhile ends the switch in userspace.
    func continueKernelTLSSwitch(_ slot: Int32) {
        let s = Int(slot)
        guard conns[s].kernelTLSSwitch == .quiescing, conns[s].phase == .established else { return }
        let fromClient = s * 2
        let toClient = s * 2 + 1
        if pipes[fromClient].eof || pipes[toClient].eof || conns[s].closeAfterAnswer {
            // Its close_notify and FIN take the userspace way, as before the switch began.
            count(.ktlsAbandoned)
            endKernelTLSSwitch(slot)
            return
        }
        guard !pipes[fromClient].recvArmed, !pipes[toClient].recvArmed, !pipes[toClient].sendInFlight,
              pipes[toClient].head == BufferPool.none, let ssl = tlsSessions[s] else { return }
        let keys = kernelTLSKeys + s * 2
        let transmitLength = ctls_ktls_crypto_info(ssl, 1, keys)
        let receiveLength = transmitLength > 0 ? ctls_ktls_crypto_info(ssl, 0, keys + 1) : 0
        guard transmitLength > 0, receiveLength > 0 else {
            count(.ktlsKeysUnavailable)
            warnRateLimited(slot, "kTLS: staying in userspace, no keys to hand over: \(TLSSession.lastErrorReason())")
            clearKernelTLSKeys(s)
            endKernelTLSSwitch(slot)
            return
        }
        guard uringSetsockopt else {
            count(.ktlsRefused)
            warnRateLimited(slot, "kTLS: staying in userspace, the kernel has no SOCKET_URING_OP_SETSOCKOPT")
            clearKernelTLSKeys(s)
            endKernelTLSSwitch(slot)
            return
        }
        // Linked: TLS_TX needs the ULP, and a failed step cancels the rest (-ECANCELED), so
        // all three complete and the last one decides. The name and keys stay put until then.
        submitKernelTLSStep(slot, .attachTLSULP, level: CTLS_SOL_TCP, name: CTLS_TCP_ULP,
                            value: kernelTLSULPName, length: 4, linked: true)
        submitKernelTLSStep(slot, .setTLSTransmitKeys, level: CTLS_SOL_TLS, name: CTLS_TLS_TX,
                            value: keys, length: transmitLength, linked: true)
        submitKernelTLSStep(slot, .setTLSReceiveKeys, level: CTLS_SOL_TLS, name: CTLS_TLS_RX,
                            value: keys + 1, length: receiveLength, linked: false)
        conns[s].kernelTLSSwitch = .submitted
        conns[s].kernelTLSStepsLeft = 3
    }

    private func submitKernelTLSStep(_ slot: Int32, _ step: Operation, level: Int32, name: Int32,
                                     value: UnsafeMutableRawPointer, length: Int, linked: Bool) {
        let s = Int(slot)
        let sqe = ring.sqe()
        cu_prep_setsockopt_fixed(sqe, Int32(s * 2), level, name, value, Int32(length))
        if linked { cu_sqe_add_flags(sqe, CU_IOSQE_IO_LINK) }
        io_uring_sqe_set_data64(sqe, UserData(step, slot: slot, generation: conns[s].generation).raw)
        conns[s].pendingOps += 1
    }

    /// One of the three setsockopts completed. After the last: switched, or back in userspace
    /// where the ULP did not attach (the socket is as it was), or closed where it attached and
    /// the keys were refused (what the socket does with records then is unknown).
    func onKernelTLSStep(_ slot: Int32, _ step: Operation, result: Int32) {
        let s = Int(slot)
        conns[s].pendingOps -= 1
        assert(conns[s].kernelTLSStepsLeft > 0)
        conns[s].kernelTLSStepsLeft -= 1
        if step == .attachTLSULP && result == 0 { conns[s].kernelTLSAttached = true }
        if result < 0 && conns[s].kernelTLSError == 0 {
            conns[s].kernelTLSError = result
            conns[s].kernelTLSFailedStep = step.rawValue
        }
        guard conns[s].kernelTLSStepsLeft == 0 else { return }
        clearKernelTLSKeys(s)
        guard conns[s].phase == .established else {
            conns[s].kernelTLSSwitch = .done
            finishIfIdle(slot)
            return
        }
        if conns[s].kernelTLSError == 0 {
            // The SSL stays until the close, for the log's version, cipher and client subject;
            // the relay no longer opens or seals anything for this client.
            conns[s].transform = .kernelTLS
            conns[s].tls = false
            count(.ktlsSwitched)
            endKernelTLSSwitch(slot)
            return
        }
        let failed = Operation(rawValue: conns[s].kernelTLSFailedStep)
        let what = failed == .attachTLSULP ? "TCP_ULP tls" : failed == .setTLSTransmitKeys ? "TLS_TX" : "TLS_RX"
        let reason = String(cString: strerror(-conns[s].kernelTLSError))
        guard conns[s].kernelTLSAttached else {
            count(.ktlsRefused)
            warnRateLimited(slot, "kTLS: staying in userspace, the kernel refused \(what): \(reason)")
            endKernelTLSSwitch(slot)
            return
        }
        count(.ktlsFailed)
        warnRateLimited(slot, "kTLS: closing, the ULP attached but the kernel refused \(what): \(reason)")
        conns[s].kernelTLSSwitch = .done
        closeConnection(slot, reset: true, why: .clientAbort)
    }

    /// The switch is over, either way: both recvs run again (the client's multishot now where
    /// the kernel has the records).
    private func endKernelTLSSwitch(_ slot: Int32) {
        let s = Int(slot)
        conns[s].kernelTLSSwitch = .done
        resumeRecvIfDrained(s * 2)
        resumeRecvIfDrained(s * 2 + 1)
    }

    /// The keys leave memory once the kernel has read them (or will not).
    private func clearKernelTLSKeys(_ s: Int) {
        explicit_bzero(kernelTLSKeys + s * 2, 2 * MemoryLayout<ctls_crypto_info>.stride)
    }

    /// A recv from a kTLS client gave EIO: a record that is not data (a close_notify, another
    /// alert, a KeyUpdate), which plain recv never returns. Nothing of it is passed on: the
    /// client's side ends here, the server gets its FIN after what was relayed before, and the
    /// connection ends when the server closes.
    func onKernelTLSControlRecord(_ slot: Int32) {
        let s = Int(slot)
        count(.ktlsControlRecords)
        warnRateLimited(slot, "kTLS: the client sent a record that is not data (close_notify, another alert or a KeyUpdate): ending its side")
        pipes[s * 2].eof = true
        queueCloseNotify(slot, pipe: s * 2)   // a TLS server gets its own before the FIN
        maybeShutdown(s * 2)
    }

    /// The server closed a kTLS client's direction: a close_notify alert record (the kernel
    /// seals it, TLS_SET_RECORD_TYPE 21) goes before the FIN, hard-linked to it when `linked`.
    func sendKernelTLSCloseNotify(_ slot: Int32, linked: Bool) {
        let s = Int(slot)
        let sqe = ring.sqe()
        // The message is the struct's first field (CTLS.h).
        let message = UnsafeRawPointer(kernelTLSAlert).assumingMemoryBound(to: msghdr.self)
        // MSG_DONTWAIT: a client whose window is closed loses the alert rather than keeping
        // the slot (this send is not a pipe's, so closeConnection would not cancel it).
        io_uring_prep_sendmsg(sqe, Int32(s * 2), message, UInt32(Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)))
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE | (linked ? CU_IOSQE_IO_HARDLINK : 0))
        io_uring_sqe_set_data64(sqe, UserData(.sendCloseNotify, slot: slot, generation: conns[s].generation).raw)
        conns[s].pendingOps += 1
    }
}
