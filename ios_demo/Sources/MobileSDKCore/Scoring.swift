import Foundation

/// Scoring of `mobile_sdk/golden.py` (android_demo `Scoring`): both embeddings normalized in
/// float64, score = logit_scale * cosine; softmax over a row; ranking = indices by descending
/// score, ties to the lower index (numpy's stable argsort of -score).
public enum Scoring {
    /// a / ||a|| in float64. A zero vector stays zero (its scores are 0, not NaN).
    public static func normalize(_ a: [Double]) -> [Double] {
        var ss = 0.0
        for v in a {
            ss += v * v
        }
        let norm = ss.squareRoot()
        if norm == 0 {
            return [Double](repeating: 0, count: a.count)
        }
        return a.map { $0 / norm }
    }

    public static func toDouble(_ a: [Float]) -> [Double] {
        a.map { Double($0) }
    }

    /// logit_scale * cosine(a, b).
    public static func score(_ a: [Double], _ b: [Double], logitScale: Double) throws -> Double {
        try scores([a], [b], logitScale: logitScale)[0][0]
    }

    /// (rows, cols) = logit_scale * cosine of every row of `a` with every row of `b`.
    public static func scores(_ a: [[Double]], _ b: [[Double]], logitScale: Double) throws -> [[Double]] {
        let na = a.map(normalize), nb = b.map(normalize)
        var out: [[Double]] = []
        out.reserveCapacity(na.count)
        for x in na {
            var line: [Double] = []
            line.reserveCapacity(nb.count)
            for y in nb {
                guard x.count == y.count else {
                    throw SDKError(.invalidArgument, "embeddings differ in size: \(x.count) vs \(y.count)")
                }
                var dot = 0.0
                for k in 0..<x.count {
                    dot += x[k] * y[k]
                }
                line.append(logitScale * dot)
            }
            out.append(line)
        }
        return out
    }

    /// Softmax of one row, in float64 (max subtracted first).
    public static func softmax(_ row: [Double]) -> [Double] {
        guard let top = row.max() else { return [] }
        let e = row.map { exp($0 - top) }
        var sum = 0.0
        for v in e {
            sum += v
        }
        return e.map { $0 / sum }
    }

    /// Indices by descending score; equal scores keep the lower index first; NaN goes last.
    public static func ranking(_ row: [Double]) -> [Int] {
        Array(row.indices).sorted { p, q in
            let a = row[p], b = row[q]
            if a.isNaN || b.isNaN {
                return a.isNaN == b.isNaN ? p < q : b.isNaN
            }
            return a > b || (a == b && p < q)  // -0.0 == 0.0, as in numpy
        }
    }

    /// Transpose of a rectangular matrix (search ranks images per text: scores(images, texts)ᵀ).
    public static func transpose(_ m: [[Double]]) -> [[Double]] {
        guard let cols = m.first?.count else { return [] }
        return (0..<cols).map { j in m.map { $0[j] } }
    }
}
