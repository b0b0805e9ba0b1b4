/// Vectorized Add and Mul: same shape, and an NCHW tensor with a per-channel operand ([C] or
/// [C, 1, 1] broadcast over each plane), plus the per-channel scale-and-shift of an inference
/// BatchNormalization.

protocol VectorBinary {
    func callAsFunction(_ a: FloatVector, _ b: FloatVector) -> FloatVector
}

struct AddOperation: VectorBinary {
    @inline(__always) func callAsFunction(_ a: FloatVector, _ b: FloatVector) -> FloatVector { a + b }
}

struct MultiplyOperation: VectorBinary {
    @inline(__always) func callAsFunction(_ a: FloatVector, _ b: FloatVector) -> FloatVector { a * b }
}

@inline(__always)
func zipFloats<F: VectorBinary>(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                _ count: Int, _ f: F) {
    var i = 0
    while i + lanes <= count {
        y.store(f(a.vector(at: i), b.vector(at: i)), at: i)
        i += lanes
    }
    if i < count { storePartial(f(loadPartial(a + i, count - i), loadPartial(b + i, count - i)), y + i, count - i) }
}

@inline(__always)
func planesWithScalar<F: VectorBinary>(_ x: UnsafePointer<Float>, _ perChannel: UnsafePointer<Float>,
                                       _ y: UnsafeMutablePointer<Float>, _ channels: Range<Int>, _ planeSize: Int, _ f: F) {
    for c in channels {
        let s = splat(perChannel[c])
        let xp = x + c * planeSize, yp = y + c * planeSize
        var i = 0
        while i + lanes <= planeSize {
            yp.store(f(xp.vector(at: i), s), at: i)
            i += lanes
        }
        if i < planeSize { storePartial(f(loadPartial(xp + i, planeSize - i), s), yp + i, planeSize - i) }
    }
}

extension Kernels {
    /// y[i] = a[i] + b[i] for i < count. y may be a or b (in place); otherwise no overlap.
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        zipFloats(a, b, y, count, AddOperation())
    }

    /// y[i] = a[i] · b[i] for i < count. y may be a or b (in place); otherwise no overlap.
    public static func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        zipFloats(a, b, y, count, MultiplyOperation())
    }

    /// y[c, i] = x[c, i] + perChannel[c] over planes of `planeSize` floats, for c in `channels`
    /// (x and y point at channel 0 of one image; y may be x).
    public static func addPerChannel(_ x: UnsafePointer<Float>, _ perChannel: UnsafePointer<Float>,
                                     _ y: UnsafeMutablePointer<Float>, channels: Range<Int>, planeSize: Int) {
        planesWithScalar(x, perChannel, y, channels, planeSize, AddOperation())
    }

    /// y[c, i] = x[c, i] · perChannel[c]; layout as `addPerChannel`.
    public static func multiplyPerChannel(_ x: UnsafePointer<Float>, _ perChannel: UnsafePointer<Float>,
                                          _ y: UnsafeMutablePointer<Float>, channels: Range<Int>, planeSize: Int) {
        planesWithScalar(x, perChannel, y, channels, planeSize, MultiplyOperation())
    }

    /// y[c, i] = x[c, i] · scale[c] + shift[c] (BatchNormalization folded to an affine map);
    /// layout as `addPerChannel`.
    public static func scaleShiftPerChannel(_ x: UnsafePointer<Float>, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                                            _ y: UnsafeMutablePointer<Float>, channels: Range<Int>, planeSize: Int) {
        for c in channels {
            let s = splat(scale[c]), t = splat(shift[c])
            let xp = x + c * planeSize, yp = y + c * planeSize
            var i = 0
            while i + lanes <= planeSize {
                yp.store(t.addingProduct(xp.vector(at: i), s), at: i)
                i += lanes
            }
            if i < planeSize {
                storePartial(t.addingProduct(loadPartial(xp + i, planeSize - i), s), yp + i, planeSize - i)
            }
        }
    }
}

extension Kernels {
    /// The sum of x[0..<count], in four vectors of partial sums added at the end (a scalar loop
    /// waits out the add latency on every element: EfficientNet's squeeze-and-excitation means
    /// took 0.8 ms that way).
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var a0 = FloatVector(), a1 = FloatVector(), a2 = FloatVector(), a3 = FloatVector()
        var i = 0
        while i &+ 4 &* lanes <= count {
            a0 += x.vector(at: i)
            a1 += x.vector(at: i &+ lanes)
            a2 += x.vector(at: i &+ 2 &* lanes)
            a3 += x.vector(at: i &+ 3 &* lanes)
            i &+= 4 &* lanes
        }
        while i &+ lanes <= count {
            a0 += x.vector(at: i)
            i &+= lanes
        }
        if i < count { a1 += loadPartial(x + i, count &- i) }
        return ((a0 + a1) + (a2 + a3)).sum()
    }
}
