// Hashing for balancing: a 64-bit hash of byte strings (client ids, addresses) and the
// rendezvous (highest random weight) choice that `source` and `hash-clientid` use. Rendezvous
// moves only the keys of a server that is added or removed (about 1/N), honours weights, and
// needs no shared state: two ringproxy instances with the same server names agree.
import Glibc

enum Hashing {
    /// 64-bit FNV-1a over the bytes, finished with a splitmix64 round for avalanche.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return mix(h)
    }

    static func hash(_ text: String) -> UInt64 {
        var copy = text
        return copy.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// splitmix64's finaliser.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E3779B97F4A7C15
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }

    /// Weighted rendezvous: the server with the highest -weight / ln(u), u uniform in (0,1)
    /// from hash(key, server). `seeds` are per-server hashes of their names; weight 0 never wins.
    /// Servers `isUp` refuses are skipped: their keys go where they would go without them.
    @inline(__always)
    static func rendezvous(_ key: UInt64, seeds: UnsafePointer<UInt64>, weights: UnsafePointer<Int32>, count: Int,
                           isUp: (Int) -> Bool = { _ in true }) -> Int {
        var best = -1
        var bestScore = -Double.infinity
        var i = 0
        while i < count {
            let w = weights[i]
            if w > 0 && isUp(i) {
                let h = mix(key ^ seeds[i])
                // 53 random bits -> u in (0, 1).
                let u = (Double(h >> 11) + 0.5) * (1.0 / 9007199254740992.0)
                let score = -Double(w) / Glibc.log(u)
                if score > bestScore { bestScore = score; best = i }
            }
            i += 1
        }
        return best
    }
}

