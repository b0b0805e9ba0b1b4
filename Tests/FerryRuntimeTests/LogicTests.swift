import FerryIR
@testable import FerryRuntime
import Testing

/// numpy broadcasting of any element type by explicit multi-indexing.
func naiveBroadcast<T, R>(_ a: [T], _ aShape: [Int], _ b: [T], _ bShape: [Int], _ f: (T, T) -> R) -> (values: [R], shape: [Int]) {
    let r = max(aShape.count, bShape.count)
    let pa = Array(repeating: 1, count: r - aShape.count) + aShape
    let pb = Array(repeating: 1, count: r - bShape.count) + bShape
    let shape = zip(pa, pb).map { $0 == 1 ? $1 : $0 }
    let values = (0..<shape.reduce(1, *)).map { flat -> R in
        let idx = unravel(flat, shape)
        return f(a[ravel(zip(idx, pa).map { $1 == 1 ? 0 : $0 }, pa)], b[ravel(zip(idx, pb).map { $1 == 1 ? 0 : $0 }, pb)])
    }
    return (values, shape)
}

func boolTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SplitMix64(seed: seed)
    return try! Tensor(shape: shape, storage: .bool((0..<shape.reduce(1, *)).map { _ in rng.next() % 2 == 0 }))
}

@Suite struct LogicTests {
    static let comparisons: [(Op, @Sendable (Float, Float) -> Bool)] = [
        (.equal, { $0 == $1 }), (.greater, { $0 > $1 }), (.less, { $0 < $1 }),
        (.greaterOrEqual, { $0 >= $1 }), (.lessOrEqual, { $0 <= $1 }),
    ]

    @Test(arguments: ElementwiseTests.shapes)
    func comparisons(_ aShape: [Int], _ bShape: [Int]) throws {
        // Few distinct values so that equality happens.
        let a = randomTensor(aShape, seed: 110, range: 0...3), b = randomTensor(bShape, seed: 111, range: 0...3)
        let fa = a.floats.map { $0.rounded(.down) }, fb = b.floats.map { $0.rounded(.down) }
        for (op, f) in Self.comparisons {
            let expected = naiveBroadcast(fa, aShape, fb, bShape, f)
            let y = try ReferenceKernels.compare(op, Tensor(shape: aShape, floats: fa), Tensor(shape: bShape, floats: fb))
            #expect(y == (try Tensor(shape: expected.shape, storage: .bool(expected.values))), "\(op.name)")
            // The same on int64 and int32.
            let ia = fa.map { Int64($0) }, ib = fb.map { Int64($0) }
            let yi = try ReferenceKernels.compare(op, Tensor(shape: aShape, int64s: ia), Tensor(shape: bShape, int64s: ib))
            #expect(yi == y)
            let y32 = try ReferenceKernels.compare(op, try Tensor(shape: aShape, storage: .int32(ia.map { Int32($0) })),
                                                   try Tensor(shape: bShape, storage: .int32(ib.map { Int32($0) })))
            #expect(y32 == y)
        }
    }

    @Test func equalOfBoolsAndNaN() throws {
        let a = boolTensor([2, 3], seed: 1), b = boolTensor([3], seed: 2)
        let expected = naiveBroadcast(try ReferenceKernels.bools(a, "", ""), [2, 3], try ReferenceKernels.bools(b, "", ""), [3], ==)
        #expect(try ReferenceKernels.compare(.equal, a, b) == (try Tensor(shape: [2, 3], storage: .bool(expected.values))))
        #expect(throws: FerryError.self) { try ReferenceKernels.compare(.greater, a, b) }
        #expect(throws: FerryError.self) { try ReferenceKernels.compare(.less, Tensor(shape: [1], floats: [1]), Tensor(shape: [1], int64s: [1])) }
        let nan = Tensor(shape: [1], floats: [.nan])
        for (op, _) in Self.comparisons { #expect(try ReferenceKernels.compare(op, nan, nan).storage == .bool([false])) }
    }

    @Test func logic() throws {
        let a = boolTensor([2, 1, 4], seed: 3), b = boolTensor([3, 1], seed: 4)
        let x = try ReferenceKernels.bools(a, "", ""), y = try ReferenceKernels.bools(b, "", "")
        let and = naiveBroadcast(x, [2, 1, 4], y, [3, 1]) { $0 && $1 }, or = naiveBroadcast(x, [2, 1, 4], y, [3, 1]) { $0 || $1 }
        #expect(try ReferenceKernels.logical(a, b, conjunction: true) == (try Tensor(shape: and.shape, storage: .bool(and.values))))
        #expect(try ReferenceKernels.logical(a, b, conjunction: false) == (try Tensor(shape: or.shape, storage: .bool(or.values))))
        #expect(try ReferenceKernels.not(a).storage == .bool(x.map { !$0 }))
        #expect(throws: FerryError.self) { try ReferenceKernels.not(Tensor(shape: [1], floats: [1])) }
    }

    @Test(arguments: [([2, 3, 4], [4], [3, 1]), ([3, 1], [2, 1, 4], [1]), ([4], [4], [4]), ([], [2, 2], [2, 1])] as [([Int], [Int], [Int])])
    func whereBroadcasts(_ cShape: [Int], _ xShape: [Int], _ yShape: [Int]) throws {
        let c = boolTensor(cShape, seed: 5), x = randomTensor(xShape, seed: 6), y = randomTensor(yShape, seed: 7)
        let conditions = try ReferenceKernels.bools(c, "", "")
        // Three-way broadcasting by explicit multi-indexing.
        let r = [cShape.count, xShape.count, yShape.count].max()!
        let padded = [cShape, xShape, yShape].map { Array(repeating: 1, count: r - $0.count) + $0 }
        let shape = (0..<r).map { i in padded.map { $0[i] }.max()! }
        let values = (0..<shape.reduce(1, *)).map { flat -> Float in
            let idx = unravel(flat, shape)
            let at = padded.map { p in ravel(zip(idx, p).map { $1 == 1 ? 0 : $0 }, p) }
            return conditions[at[0]] ? x.floats[at[1]] : y.floats[at[2]]
        }
        let both = (shape: shape, values: values)
        let result = try ReferenceKernels.select(c, x, y)
        #expect(result == Tensor(shape: both.shape, floats: values))
        // Any element type: int64 and bool pick the same positions.
        let xi = Tensor(shape: xShape, int64s: x.floats.map { Int64($0 * 1000) })
        let yi = Tensor(shape: yShape, int64s: y.floats.map { Int64($0 * 1000) })
        #expect(try ReferenceKernels.select(c, xi, yi).int64s! == values.map { Int64($0 * 1000) })
        #expect(throws: FerryError.self) { try ReferenceKernels.select(x, x, y) }
        #expect(throws: FerryError.self) { try ReferenceKernels.select(c, x, yi) }
    }

    @Test func castTables() throws {
        let floats = Tensor(shape: [8], floats: [-2.7, -0.5, 0, 0.5, 1.99, 300.7, -129.2, .nan])
        #expect(try ReferenceKernels.cast(floats, to: .int64).int64s!.prefix(7) == [-2, 0, 0, 0, 1, 300, -129])
        #expect(try ReferenceKernels.cast(floats, to: .int32).storage == .int32([-2, 0, 0, 0, 1, 300, -129, 0]))
        // Integers wrap to narrower types.
        #expect(try ReferenceKernels.cast(Tensor(shape: [4], int64s: [300, -129, 255, 127]), to: .int8).storage == .int8([44, 127, -1, 127]))
        #expect(try ReferenceKernels.cast(Tensor(shape: [3], int64s: [300, -1, 7]), to: .uint8).storage == .uint8([44, 255, 7]))
        // Nonzero (and NaN) is true; true is 1.
        #expect(try ReferenceKernels.cast(floats, to: .bool).storage == .bool([true, true, false, true, true, true, true, true]))
        let flags = try Tensor(shape: [2], storage: .bool([true, false]))
        #expect(try ReferenceKernels.cast(flags, to: .float32).floats == [1, 0])
        #expect(try ReferenceKernels.cast(flags, to: .int64).int64s! == [1, 0])
        // float16 rounds to nearest even and back exactly; int64 to float32 rounds to nearest.
        let halves = try ReferenceKernels.cast(Tensor(shape: [4], floats: [1.0004883, 1.0014648, 65520, 0.1]), to: .float16)
        #expect(halves.storage == .float16([0x3C00, 0x3C02, 0x7C00, 0x2E66]))
        #expect(try ReferenceKernels.cast(halves, to: .float32).floats == [1, 1.001953125, .infinity, 0.0999755859375])
        #expect(try ReferenceKernels.cast(halves, to: .int64).int64s!.prefix(1) == [1])
        #expect(try ReferenceKernels.cast(Tensor(shape: [1], int64s: [16_777_217]), to: .float32).floats == [16_777_216])
        // Same type: unchanged.
        #expect(try ReferenceKernels.cast(floats, to: .float32).floats.prefix(7) == floats.floats.prefix(7))
    }

    @Test func runtimeRunsBoolAndIntegerGraphs() throws {
        var b = GraphBuilder(name: "logic")
        let x = b.addInput("x", TensorType(.float32, Shape([.symbolic("N"), .fixed(3)])))
        let zero = b.addInitializer("zero", Tensor(shape: [], floats: [0]))
        let positive = b.add(.greater, inputs: [x, zero], output: "positive", origin: nil)
        let index = b.add(.cast(to: .int64), inputs: [positive], output: "index", origin: nil)
        let negated = b.add(.neg, inputs: [x], output: "negated", origin: nil)
        let magnitude = b.add(.where, inputs: [positive, x, negated], output: "magnitude", origin: nil)
        b.addOutput(index)
        b.addOutput(magnitude)
        let graph = try b.finish()
        let out = try ReferenceRuntime(graph: graph).run(["x": Tensor(shape: [2, 3], floats: [1, -2, 0, -0.5, 3, -4])])
        #expect(out["index"] == Tensor(shape: [2, 3], int64s: [1, 0, 0, 0, 1, 0]))
        #expect(out["magnitude"] == Tensor(shape: [2, 3], floats: [1, 2, -0.0, 0.5, 3, 4]))
    }
}

/// int64 and int32 arithmetic, as the ONNX importer folds shape computations with it.
@Suite struct IntegerArithmeticTests {
    static func ints(_ shape: [Int], seed: UInt64) -> [Int64] {
        var rng = SplitMix64(seed: seed)
        return (0..<shape.reduce(1, *)).map { _ in Int64(rng.next() % 41) - 20 }
    }

    @Test(arguments: ElementwiseTests.shapes)
    func binary(_ aShape: [Int], _ bShape: [Int]) throws {
        let x = Self.ints(aShape, seed: 120), y = Self.ints(bShape, seed: 121).map { $0 == 0 ? 7 : $0 }
        let cases: [(Op, (Int64, Int64) -> Int64)] = [(.add, +), (.sub, -), (.mul, *), (.div, /), (.max, { max($0, $1) }), (.min, { min($0, $1) })]
        for (op, f) in cases {
            let expected = naiveBroadcast(x, aShape, y, bShape, f)
            let y64 = try ReferenceKernels.evaluate(op, [Tensor(shape: aShape, int64s: x), Tensor(shape: bShape, int64s: y)])[0]
            #expect(y64 == Tensor(shape: expected.shape, int64s: expected.values), "\(op.name)")
            let y32 = try ReferenceKernels.evaluate(op, [try Tensor(shape: aShape, storage: .int32(x.map { Int32($0) })),
                                                         try Tensor(shape: bShape, storage: .int32(y.map { Int32($0) }))])[0]
            #expect(y32.storage == .int32(expected.values.map { Int32($0) }), "\(op.name)")
        }
        // Integer division truncates toward zero; by zero is an error, not a crash.
        #expect(try ReferenceKernels.div(Tensor(shape: [2], int64s: [-7, 7]), Tensor(shape: [1], int64s: [2])).int64s! == [-3, 3])
        #expect(throws: FerryError.self) { try ReferenceKernels.div(Tensor(shape: [1], int64s: [1]), Tensor(shape: [1], int64s: [0])) }
        #expect(try ReferenceKernels.div(Tensor(shape: [1], int64s: [.min]), Tensor(shape: [1], int64s: [-1])).int64s! == [.min])
        // Mixed element types are refused.
        #expect(throws: FerryError.self) { try ReferenceKernels.add(Tensor(shape: [1], int64s: [1]), Tensor(shape: [1], floats: [1])) }
    }

    @Test func unaryAndReductions() throws {
        let x = Tensor(shape: [2, 3], int64s: [-3, 0, 5, .min, 2, -1])
        #expect(try ReferenceKernels.unaryMath(.abs, x).int64s! == [3, 0, 5, .min, 2, 1])
        #expect(try ReferenceKernels.unaryMath(.neg, x).int64s! == [3, 0, -5, .min, -2, 1])
        let small = Tensor(shape: [2, 3], int64s: [-3, 0, 5, 4, 2, -1])
        #expect(try ReferenceKernels.reduce(small, .sum, axes: [1], keepDims: false).int64s! == [2, 5])
        #expect(try ReferenceKernels.reduce(small, .prod, axes: nil, keepDims: false).int64s! == [0])
        #expect(try ReferenceKernels.reduce(small, .prod, axes: [0], keepDims: true) == Tensor(shape: [1, 3], int64s: [-12, 0, -5]))
        #expect(try ReferenceKernels.reduce(small, .max, axes: [0], keepDims: false).int64s! == [4, 2, 5])
        #expect(try ReferenceKernels.reduce(small, .min, axes: [1], keepDims: false).int64s! == [-3, -1])
        let narrow = try Tensor(shape: [3], storage: .int32([2, 3, 4]))
        #expect(try ReferenceKernels.reduce(narrow, .prod, axes: nil, keepDims: false).storage == .int32([24]))
        #expect(try ReferenceKernels.argExtreme(small, largest: true, axis: 1, keepDims: false, selectLastIndex: false).int64s! == [2, 0])
        #expect(throws: FerryError.self) { try ReferenceKernels.reduce(small, .mean, axes: nil, keepDims: false) }
        #expect(ReferenceKernels.supports(.reduce(.prod, axes: nil, keepDims: false), inputTypes: [.int64]))
        #expect(!ReferenceKernels.supports(.reduce(.l2, axes: nil, keepDims: false), inputTypes: [.int64]))
        #expect(!ReferenceKernels.supports(.add, inputTypes: [.int64, .int32]))
    }
}
