import Foundation
#if canImport(CryptoKit)
import CryptoKit
#else
import Crypto  // swift-crypto: CryptoKit's API where CryptoKit is missing (Linux)
#endif

/// SHA-256 hex digests, as the manifest records them (`mobile_sdk.manifest.sha256_file`), computed
/// by CryptoKit (swift-crypto where CryptoKit is missing).
public enum Checksum {
    /// Lower-case hex of a digest.
    public static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// sha256 hex of bytes.
    public static func sha256Hex(of data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    /// sha256 hex of bytes.
    public static func sha256Hex(of bytes: [UInt8]) -> String {
        hex(SHA256.hash(data: Data(bytes)))
    }

    /// sha256 hex of a file, or of a folder (an .mlpackage) as `mobile_sdk.manifest.sha256_file`
    /// hashes it: its files in sorted order (Python 3.11 sorts `Path`s by their parts), each
    /// relative path's UTF-8 bytes followed by the file's bytes.
    public static func sha256Hex(ofFileAt url: URL) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SDKError(.modelFile, "cannot hash \(url.path): it does not exist")
        }
        var h = SHA256()
        do {
            if !isDir.boolValue {
                h.update(data: try Data(contentsOf: url))
                return hex(h.finalize())
            }
            var files: [[String]] = []
            collect(url, [], &files)
            files.sort { lessByParts($0, $1) }
            for parts in files {
                let rel = parts.joined(separator: "/")
                h.update(data: Data(rel.utf8))
                h.update(data: try Data(contentsOf: url.appendingPathComponent(rel)))
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
