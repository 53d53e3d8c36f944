// Worker+Relay: the per-packet path. Two pipes per connection move received buffers to the
// peer as they are: a multishot recv fills provided buffers, one send per direction is in
// flight (several queued buffers leave in one sendmsg), the buffer returns to the pool when the
// send completes, and a FIN becomes shutdown(SHUT_WR) once everything before it was sent. No
// allocation, no retain/release, no locks: state is reached through raw table pointers by slot.
import CUring
import Glibc

extension Worker {
    @inline(__always)
    func armRecv(_ p: Int) {
        if conns[p >> 1].kernelTLSSwitch.holdsRecvs {
            // The switch to kTLS holds both recvs (Worker+KernelTLS): a direction fell quiet.
            continueKernelTLSSwitch(Int32(p >> 1))
            return
        }
        stalledPipes.remove(p)
        let sqe = ring.sqe()
        // A client's first recv, and every recv of its preamble, is single-shot: a multishot
        // recv armed on a just-accepted socket sometimes never completes when the client resets
        // at once (measured: 57-75 of 100,000 connect-send-7-bytes-reset clients were only
        // closed by the inspect deadline; 0 with single-shot, and 0 with a poll beside it).
        // Server bytes for a TLS client are received a record overhead short of a buffer, so
        // that they seal into the same buffer (Worker+TLS): single-shot, with a length.
        let sealed = p & 1 == 1 ? conns[p >> 1].tls : conns[p >> 1].serverTLS
        let multishot = !sealed && (p & 1 == 1 || (conns[p >> 1].phase != .preamble && pipes[p].bytes > 0))
        if multishot {
            io_uring_prep_recv_multishot(sqe, Int32(p), nil, 0, 0)
        } else {
            // At most one buffer (and, sealed, room for the records' overhead).
            io_uring_prep_recv(sqe, Int32(p), nil, sealed ? config.bufferSizeBytes - Self.tlsRecordOverheadBytes : 0, 0)
        }
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE | CU_IOSQE_BUFFER_SELECT)
        cu_sqe_set_buf_group(sqe, BufferPool.group)
        if recvLimit && multishot {
            // End this multishot once it has filled the buffers the pipe may still queue, so a
            // burst never overshoots the bound: full buffers reach the cap exactly at the limit.
            let room = max(1, pipeLimit(p >> 1) - Int(pipes[p].count))
            cu_sqe_set_recv_limit(sqe, UInt32((room - 1) * config.bufferSizeBytes + 1))
        }
        io_uring_sqe_set_data64(sqe, recvUserData(p))
        pipes[p].recvArmed = true
        pipes[p].cancelRequested = false
        conns[p >> 1].pendingOps += 1
    }

    @inline(__always)
    func recvUserData(_ p: Int) -> UInt64 {
        UserData(p & 1 == 0 ? .recvClient : .recvServer, slot: Int32(p >> 1), generation: conns[p >> 1].generation).raw
    }

    @inline(__always)
    func onRecv(_ slot: Int32, pipe p: Int, result: Int32, flags: UInt32) {
        let s = Int(slot)
        let more = flags & CU_CQE_F_MORE != 0
        if !more {
            pipes[p].recvArmed = false
            conns[s].pendingOps -= 1
        }
        count(.recvCompletions)
        if result > 0 {
            let bid = UInt16(truncatingIfNeeded: flags >> CU_CQE_BUFFER_SHIFT)
            pool.taken(bid, bytes: result)
            let phase = conns[s].phase
            guard phase.isLive else {
                pool.give(bid)
                finishIfIdle(slot)
                return
            }
            var length = Int(result)
            if conns[s].tls || conns[s].serverTLS {
                // Records opened in place from a TLS source, plaintext sealed in place for a TLS
                // destination (Worker+TLS); what is queued then moves like a plain buffer.
                length = relayTLS(slot, pipe: p, bid: bid, length: length, more: more)
                if length <= 0 {
                    if length == 0 && conns[s].phase.isLive { onTLSBufferConsumed(slot, pipe: p, more: more) }
                    return
                }
            } else {
                enqueue(p, bid)
            }
            pipes[p].bytes &+= UInt64(length)
            if p & 1 == 0 {
                count(.bytesFromClients, UInt64(length))
                conns[s].lastClientMs = nowMs
            } else {
                count(.bytesFromServers, UInt64(length))
                conns[s].lastServerMs = nowMs
            }
            if phase == .preamble && p & 1 == 0 {
                preambleHolders.append(s, nowMs: nowMs)
                packTail(p)
                runPreamble(slot)
                guard conns[s].phase != .closing else { return }
            } else if conns[s].transform == .none {
                issueSend(p)
            } else {
                onTransformedRecv(slot, pipe: p)
                // A refusing server is being retired (or the connection closed): its recv is not re-armed.
                if p & 1 == 1 && conns[s].phase != .established { return }
            }
            if Int(pipes[p].count) >= pipeLimit(s) {
                pauseRecv(p, more: more)
            } else if !more {
                armRecv(p)
            }
            if conns[s].tls || conns[s].serverTLS { afterTLSRecv(slot, pipe: p) }
            return
        }
        // The server ended before its answer: a refusal (Worker+Redispatch).
        if p & 1 == 1 && conns[s].transform.awaitsServerAnswer && onServerRecvEndedBeforeAnswer(slot, result: result) { return }
        if result == 0 {
            if p & 1 == 1 && conns[s].serverHandshaking {
                // The broker closed before the handshake was done: a failed connect (SC).
                failServerTLS(slot, during: "handshake (the server closed)")
                return
            }
            if conns[s].tls || conns[s].serverTLS { queueCloseNotify(slot, pipe: p) }
            pipes[p].eof = true
            if conns[s].phase == .preamble && p & 1 == 0 {
                // The client left before its front stages were done.
                count(.inspectAborts)
                if conns[s].stagesLeft.contains(.proxyHeader) && pipes[p].head != BufferPool.none {
                    count(.proxyRejectedTruncated)
                    warnRateLimited(slot, "rejected: PROXY header cut short (the client closed)")
                }
                closeConnection(slot, reset: false, why: .inspectAbort)
                return
            }
            maybeShutdown(p)
            continueKernelTLSSwitch(slot)
            return
        }
        if result == -ENOBUFS {
            // The pool is empty: wait for buffers to come back, never fail the connection.
            count(.noBuffers)
            if conns[s].phase.isLive { addBufferWaiter(p) }
            continueKernelTLSSwitch(slot)
            return
        }
        if result == -ECANCELED {
            if conns[s].kernelTLSSwitch == .quiescing && conns[s].phase == .established {
                // Cancelled by the switch to kTLS, which re-arms it when it ends.
                continueKernelTLSSwitch(slot)
                return
            }
            // Paused by backpressure, or closing. The sends may have drained the queue before
            // this completion arrived (they saw the recv still armed and left it): then re-arm
            // here, or the direction would stall.
            if !more && conns[s].phase == .established && resumeRecvIfDrained(p) {
                count(.recvResumesAfterCancel)
                return
            }
            finishIfIdle(slot)
            return
        }
        // ECONNRESET and friends: the peer aborted; abort the other side too (once: a
        // connection already closing only finishes).
        guard conns[s].phase.isLive else {
            finishIfIdle(slot)
            return
        }
        if result == -EIO && p & 1 == 0 && conns[s].transform == .kernelTLS {
            onKernelTLSControlRecord(slot)
            return
        }
        count(.resets)
        closeConnection(slot, reset: true, why: p & 1 == 0 ? .clientAbort : .serverAbort)
    }

    /// Drops the first `bytes` bytes queued on pipe p (sent, or consumed by a front stage):
    /// whole buffers go back to the pool, a partly covered head keeps its offset. True when
    /// the bytes ended inside a buffer.
    @inline(__always) @discardableResult
    func retireHeld(_ p: Int, bytes: Int) -> Bool {
        var remaining = bytes
        var partial = false
        while remaining > 0 && pipes[p].head != BufferPool.none {
            let head = pipes[p].head
            let left = Int(pool.length[Int(head)]) - Int(pipes[p].sentOffset)
            if remaining < left {
                pipes[p].sentOffset += UInt32(remaining)
                partial = true
                break
            }
            remaining -= left
            pipes[p].sentOffset = 0
            pipes[p].head = pool.next[Int(head)]
            pipes[p].count -= 1
            pool.give(head)
        }
        if pipes[p].head == BufferPool.none { pipes[p].tail = BufferPool.none }
        return partial
    }

    /// Whether pipe p may send now: to the client once accepted (a front stage may answer
    /// before any server exists), to the server once connected.
    @inline(__always)
    func canSend(_ p: Int) -> Bool {
        p & 1 == 1 ? conns[p >> 1].phase.isLive : conns[p >> 1].phase == .established
    }

    @inline(__always)
    func enqueue(_ p: Int, _ bid: UInt16) {
        if pipes[p].tail == BufferPool.none {
            pipes[p].head = bid
        } else {
            pool.next[Int(pipes[p].tail)] = bid
        }
        pipes[p].tail = bid
        pipes[p].count += 1
        if pipes[p].count > pipes[p].countMax {
            pipes[p].countMax = pipes[p].count
            raise(.pipeBuffersMax, to: Int(pipes[p].count))
        }
    }

    /// Moves the rest of a partly sent or consumed head to the start of its buffer (sent offset 0).
    func compactHead(_ p: Int) {
        let head = pipes[p].head
        guard head != BufferPool.none && pipes[p].sentOffset > 0 else { return }
        let offset = Int(pipes[p].sentOffset)
        let left = Int(pool.length[Int(head)]) - offset
        memmove(pool.address(head), pool.address(head) + offset, left)
        pool.length[Int(head)] = UInt32(left)
        pipes[p].sentOffset = 0
    }

    /// Queues `bid` (an owned buffer the proxy wrote) ahead of everything on pipe p, so that it
    /// leaves first and in the same send as what was held. Only before the pipe's first send.
    /// A head a front stage partly consumed has its rest moved to the start of its buffer,
    /// since the sent offset belongs to whichever buffer is the head (at most one buffer's
    /// copy, once per connection, and only when a stage consumed bytes).
    func enqueueFront(_ p: Int, _ bid: UInt16) {
        assert(!pipes[p].sendInFlight)
        compactHead(p)
        let head = pipes[p].head
        pool.next[Int(bid)] = head
        pipes[p].head = bid
        if head == BufferPool.none { pipes[p].tail = bid }
        pipes[p].count += 1
        if pipes[p].count > pipes[p].countMax {
            pipes[p].countMax = pipes[p].count
            raise(.pipeBuffersMax, to: Int(pipes[p].count))
        }
    }

    /// Sends pipe p's queued buffers (from the head's sent offset) to the peer: one send in
    /// flight per direction keeps the byte order. A single buffer goes as a plain send; when
    /// several are queued (the peer was slower than the source) they go together in one
    /// sendmsg, so the kernel builds fewer, larger segments and wakes the reader once.
    @inline(__always)
    func issueSend(_ p: Int) {
        let s = p >> 1
        guard !pipes[p].sendInFlight, pipes[p].head != BufferPool.none, canSend(p) else { return }
        let bid = pipes[p].head
        let offset = Int(pipes[p].sentOffset)
        if p & 1 == 0 && conns[s].transform.awaitsServerAnswer {
            // Until the server's answer, its bytes are replayed from a cursor and stay held.
            issueReplaySend(p)
            return
        }
        let sqe = ring.sqe()
        if pipes[p].count > 1 && gatherSends {
            let vectors = gatherVectors + p * Self.gatherMax
            var n = 0
            var b = bid
            var skip = offset
            while b != BufferPool.none && n < Self.gatherMax {
                vectors[n] = iovec(iov_base: pool.address(b) + skip, iov_len: Int(pool.length[Int(b)]) - skip)
                skip = 0
                n += 1
                b = pool.next[Int(b)]
            }
            let header = gatherHeaders + p
            header.pointee = msghdr()
            header.pointee.msg_iov = vectors
            header.pointee.msg_iovlen = n
            io_uring_prep_sendmsg(sqe, Int32(p ^ 1), header, UInt32(Int32(MSG_WAITALL) | Int32(MSG_NOSIGNAL)))
            count(.gatheredSends)
        } else {
            let length = Int(pool.length[Int(bid)]) - offset
            io_uring_prep_send(sqe, Int32(p ^ 1), pool.address(bid) + offset, length, Int32(MSG_WAITALL) | Int32(MSG_NOSIGNAL))
        }
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE)
        io_uring_sqe_set_data64(sqe, sendUserData(p))
        pipes[p].sendInFlight = true
        conns[s].pendingOps += 1
    }

    /// The user_data of pipe p's send: it carries the head buffer, which stays the head while
    /// the send is in flight.
    @inline(__always)
    func sendUserData(_ p: Int) -> UInt64 {
        UserData(p & 1 == 0 ? .sendServer : .sendClient, slot: Int32(p >> 1), generation: conns[p >> 1].generation,
                 bufferID: pipes[p].head).raw
    }

    @inline(__always)
    func onSend(_ slot: Int32, pipe p: Int, bufferID bid: UInt16, result: Int32) {
        let s = Int(slot)
        conns[s].pendingOps -= 1
        pipes[p].sendInFlight = false
        count(.sendCompletions)
        assert(pipes[p].head == bid)
        guard conns[s].phase.isLive else {
            finishIfIdle(slot)
            return
        }
        if result < 0 {
            if p & 1 == 0 && conns[s].transform.awaitsServerAnswer && onReplaySendFailed(slot, result: result) { return }
            count(.resets)
            closeConnection(slot, reset: true, why: p & 1 == 0 ? .serverAbort : .clientAbort)
            return
        }
        if p & 1 == 0 { conns[s].lastServerMs = nowMs } else { conns[s].lastClientMs = nowMs }
        if p & 1 == 0 && conns[s].transform.awaitsServerAnswer {
            onReplaySent(slot, result: result)
            return
        }
        // Retire every buffer the send covered (one, or several for a gathered send); a short
        // send leaves the rest of the head buffer for the next one.
        if retireHeld(p, bytes: Int(result)) { count(.shortSends) }
        if pipes[p].head == BufferPool.none { stalledPipes.remove(p) }   // it holds nothing any more
        if conns[s].closeAfterAnswer && p & 1 == 1 && pipes[p].head == BufferPool.none {
            closeConnection(slot, reset: false, why: .rejected)
            return
        }
        if pipes[p].head != BufferPool.none {
            issueSend(p)
        } else if pipes[p].eof {
            maybeShutdown(p)
            return
        }
        // Before the server is connected, pipe 1 carries only the proxy's own answers.
        if conns[s].phase == .established { resumeRecvIfDrained(p) }
    }

    /// A received buffer on a connection whose traffic passes through a transform.
    func onTransformedRecv(_ slot: Int32, pipe p: Int) {
        switch conns[Int(slot)].transform {
        case .webSocketUpgradeResponse, .connackResponse:
            if p & 1 == 1 { onServerAnswer(slot) } else { issueSend(p) }
        case .none, .userspaceTLS, .kernelTLS:
            issueSend(p)
        }
    }

    /// After the source's FIN and once everything before it was sent: FIN the destination.
    /// When both directions are done, the connection closes.
    func maybeShutdown(_ p: Int) {
        let s = p >> 1
        guard pipes[p].eof, pipes[p].head == BufferPool.none, !pipes[p].shutdownSent,
              conns[s].phase == .established, !(p & 1 == 0 && conns[s].serverHandshaking) else { return }
        pipes[p].shutdownSent = true
        let closeNotify = p & 1 == 1 && conns[s].transform == .kernelTLS
        if pipes[p ^ 1].shutdownSent {
            // Both directions done: close(2) sends the last FIN itself.
            if closeNotify { sendKernelTLSCloseNotify(Int32(s), linked: false) }
            closeConnection(Int32(s), reset: false)
            return
        }
        if closeNotify { sendKernelTLSCloseNotify(Int32(s), linked: true) }
        let sqe = ring.sqe()
        io_uring_prep_shutdown(sqe, Int32(p ^ 1), Int32(SHUT_WR))
        cu_sqe_add_flags(sqe, CU_IOSQE_FIXED_FILE)
        io_uring_sqe_set_data64(sqe, UserData(.shutdown, slot: Int32(s), generation: conns[s].generation).raw)
        conns[s].pendingOps += 1
    }


    /// A TLS buffer left no plaintext to queue (a handshake step, a partial record, a ticket):
    /// the preamble goes on if the handshake just finished, the recv is re-armed.
    func onTLSBufferConsumed(_ slot: Int32, pipe p: Int, more: Bool) {
        let s = Int(slot)
        if conns[s].phase == .preamble && p & 1 == 0 && !conns[s].stagesLeft.contains(.tlsHandshake) && !conns[s].closeAfterAnswer {
            runPreamble(slot)
            guard conns[s].phase.isLive else { return }
        }
        if pipes[p].eof {
            // A close_notify alone in its segment: the destination gets its own, then the FIN.
            queueCloseNotify(slot, pipe: p)
            maybeShutdown(p)
        }
        if !more && !pipes[p].recvArmed && !pipes[p].eof && conns[s].phase.isLive { armRecv(p) }
    }
}
