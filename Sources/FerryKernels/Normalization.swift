import Foundation

/// LRN across channels (AlexNet, GoogLeNet): y = x / (bias + alpha/size · Σ x²)^beta, the sum
/// over the window of `size` channels around each one (ONNX: floor((size-1)/2) before, the rest
/// after), vectorized over the positions of a plane.
extension Kernels {
    /// LRN of one image (`channels` planes of `plane` floats at `x`), positions `positions` of
    /// every plane. The window's squares are summed in channel order for each output (as the
    /// reference does), not kept as a running sum whose rounding would drift. beta 0.75 (the
    /// common value) and 0.5, 1 are vector code; other betas raise lane by lane.
    public static func localResponseNormalization(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, channels: Int,
                                                  plane: Int, positions: Range<Int>, size: Int, alpha: Float, beta: Float,
                                                  bias: Float) {
        let before = (size - 1) / 2, after = size - 1 - before
        let scale = alpha / Float(size)
        var i = positions.lowerBound
        while i < positions.upperBound {
            let n = Swift.min(lanes, positions.upperBound &- i)
            for c in 0..<channels {
                let lo = Swift.max(0, c - before), hi = Swift.min(channels - 1, c + after)
                var squares = FloatVector()
                for k in lo...hi {
                    let v = n == lanes ? (x + k &* plane).vector(at: i) : loadPartial(x + k &* plane + i, n)
                    squares = squares.addingProduct(v, v)
                }
                let base = splat(bias).addingProduct(squares, scale)
                let denominator: FloatVector
                switch beta {
                case 0.75:
                    let root = base.squareRoot()
                    denominator = root * root.squareRoot()
                case 0.5: denominator = base.squareRoot()
                case 1: denominator = base
                default:
                    var d = base
                    for l in 0..<lanes { d[l] = Foundation.pow(base[l], beta) }
                    denominator = d
                }
                let at = c &* plane &+ i
                let v = n == lanes ? x.vector(at: at) : loadPartial(x + at, n)
                if n == lanes { y.store(v / denominator, at: at) } else { storePartial(v / denominator, y + at, n) }
            }
            i &+= n
        }
    }
}
