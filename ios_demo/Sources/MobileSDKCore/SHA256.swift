import Foundation

/// SHA-256 (FIPS 180-4) in plain Swift, so the core needs Foundation only (CryptoKit is not on
/// every platform the core builds on). Used for the manifest's `sha256` / `vocab_sha256` checks
/// and by the golden tests (`pixels_sha256`).
public struct SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    private var state: [UInt32] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]
    private var pending: [UInt8] = []
    private var length: UInt64 = 0
    private var w = [UInt32](repeating: 0, count: 64)

    public init() {}

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update(buffer: $0) }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update(buffer: $0) }
    }

    public mutating func update(buffer raw: UnsafeRawBufferPointer) {
        length &+= UInt64(raw.count)
        var i = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, raw.count)
            pending.append(contentsOf: raw[0..<take])
            i = take
            if pending.count == 64 {
                let block = pending
                block.withUnsafeBytes { compress($0, 0) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        while raw.count - i >= 64 {
            compress(raw, i)
            i += 64
        }
        if i < raw.count {
            pending.append(contentsOf: raw[i..<raw.count])
        }
    }

    /// The 32-byte digest; the hasher must not be used afterwards.
    public mutating func finalize() -> [UInt8] {
        let bits = length &* 8
        var tail: [UInt8] = [0x80]
        let used = (pending.count + 1) % 64
        let zeros = used <= 56 ? 56 - used : 120 - used
        tail += [UInt8](repeating: 0, count: zeros)
        for i in (0..<8).reversed() {
            tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(8 * i)))
        }
        update(tail)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for v in state {
            out += [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16),
                    UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        }
        return out
    }

    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 {
        (x >> n) | (x << (32 - n))
    }

    private mutating func compress(_ p: UnsafeRawBufferPointer, _ o: Int) {
        for t in 0..<16 {
            let b = o + 4 * t
            let b0 = UInt32(p[b]) << 24
            let b1 = UInt32(p[b + 1]) << 16
            let b2 = UInt32(p[b + 2]) << 8
            w[t] = b0 | b1 | b2 | UInt32(p[b + 3])
        }
        for t in 16..<64 {
            let x = w[t - 15], y = w[t - 2]
            let s0 = SHA256.rotr(x, 7) ^ SHA256.rotr(x, 18) ^ (x >> 3)
            let s1 = SHA256.rotr(y, 17) ^ SHA256.rotr(y, 19) ^ (y >> 10)
            w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
        }
        var a = state[0], b = state[1], c = state[2], d = state[3]
        var e = state[4], f = state[5], g = state[6], h = state[7]
        for t in 0..<64 {
            let bigS1 = SHA256.rotr(e, 6) ^ SHA256.rotr(e, 11) ^ SHA256.rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = h &+ bigS1 &+ ch &+ SHA256.k[t] &+ w[t]
            let bigS0 = SHA256.rotr(a, 2) ^ SHA256.rotr(a, 13) ^ SHA256.rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = bigS0 &+ maj
            h = g
            g = f
            f = e
            e = d &+ t1
            d = c
            c = b
            b = a
            a = t1 &+ t2
        }
        state[0] = state[0] &+ a
        state[1] = state[1] &+ b
        state[2] = state[2] &+ c
        state[3] = state[3] &+ d
        state[4] = state[4] &+ e
        state[5] = state[5] &+ f
        state[6] = state[6] &+ g
        state[7] = state[7] &+ h
    }

    /// Lower-case hex of a digest.
    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(digest.count * 2)
        for byte in digest {
            s.append(digits[Int(byte >> 4)])
            s.append(digits[Int(byte & 15)])
        }
        return s
    }

    /// sha256 hex of bytes.
    public static func hex(of data: Data) -> String {
        var h = SHA256()
        h.update(data)
        return hex(h.finalize())
    }

    /// sha256 hex of bytes.
    public static func hex(of bytes: [UInt8]) -> String {
        var h = SHA256()
        h.update(bytes)
        return hex(h.finalize())
    }

    /// sha256 hex of a file, or of a folder (an .mlpackage) as `mobile_sdk.manifest.sha256_file`
    /// hashes it: its files in sorted order (Python 3.11 sorts `Path`s by their parts), each
    /// relative path's UTF-8 bytes followed by the file's bytes.
    public static func hex(ofFileAt url: URL) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SDKError(.modelFile, "cannot hash \(url.path): it does not exist")
        }
        var h = SHA256()
        do {
            if !isDir.boolValue {
                h.update(try Data(contentsOf: url))
                return hex(h.finalize())
            }
            var files: [[String]] = []
            collect(url, [], &files)
            files.sort { lessByParts($0, $1) }
            for parts in files {
                let rel = parts.joined(separator: "/")
                h.update(Array(rel.utf8))
                h.update(try Data(contentsOf: url.appendingPathComponent(rel)))
            }
        } catch let e as SDKError {
            throw e
        } catch {
            throw SDKError(.modelFile, "cannot read \(url.path): \(error.localizedDescription)")
        }
        return hex(h.finalize())
    }

    private static func collect(_ dir: URL, _ prefix: [String], _ out: inout [[String]]) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: dir.path) else { return }
        for name in names {
            let child = dir.appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: child.path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                collect(child, prefix + [name], &out)
            } else {
                out.append(prefix + [name])
            }
        }
    }

    /// Python's ordering of path parts: lexicographic over parts, each compared by code points
    /// (UTF-8 byte order is code point order).
    private static func lessByParts(_ a: [String], _ b: [String]) -> Bool {
        for (x, y) in zip(a, b) {
            let xb = Array(x.utf8), yb = Array(y.utf8)
            if xb != yb {
                return xb.lexicographicallyPrecedes(yb)
            }
        }
        return a.count < b.count
    }
}
