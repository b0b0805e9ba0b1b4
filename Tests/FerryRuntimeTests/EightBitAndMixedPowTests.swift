import FerryIR
@testable import FerryRuntime
import Testing

/// Arithmetic on int8 / uint8 wraps at the type's width (numpy's and onnxruntime's rule); Clip
/// takes integer inputs; Pow takes an exponent of another number type and keeps X's type.
@Suite struct EightBitAndMixedPowTests {
    func u8(_ v: [UInt8]) throws -> Tensor { try Tensor(shape: [v.count], storage: .uint8(v)) }
    func i8(_ v: [Int8]) throws -> Tensor { try Tensor(shape: [v.count], storage: .int8(v)) }

    @Test func uint8ArithmeticWraps() throws {
        #expect(try ReferenceKernels.add(try u8([250, 1]), try u8([10, 2])).storage == .uint8([4, 3]))
        #expect(try ReferenceKernels.sub(try u8([3, 9]), try u8([5, 2])).storage == .uint8([254, 7]))
        #expect(try ReferenceKernels.mul(try u8([16, 3]), try u8([17, 5])).storage == .uint8([16, 15]))
        #expect(try ReferenceKernels.div(try u8([200, 7]), try u8([3, 2])).storage == .uint8([66, 3]))
    }

    @Test func int8MaxMinAndNegation() throws {
        #expect(try ReferenceKernels.maximum([try i8([-5, 7]), try i8([3, -128])]).storage == .int8([3, 7]))
        #expect(try ReferenceKernels.minimum([try i8([-5, 7]), try i8([3, -128])]).storage == .int8([-5, -128]))
        #expect(try ReferenceKernels.unaryMath(.neg, try i8([-128, 5])).storage == .int8([-128, -5]))
    }

    @Test func clipOfIntegers() throws {
        #expect(try ReferenceKernels.clip(try i8([-100, 0, 100]), min: -5, max: 5).storage == .int8([-5, 0, 5]))
        #expect(try ReferenceKernels.clip(try i8([-100, 100]), min: nil, max: 3).storage == .int8([-100, 3]))
        #expect(try Op.clip(min: 0, max: 1).inferOutputTypes([TensorType(.int8, Shape([2]))]) == [TensorType(.int8, Shape([2]))])
    }

    @Test func powWithMixedTypes() throws {
        let base = Tensor(shape: [3], floats: [2, 3, 0.5])
        let exponent = Tensor(shape: [3], int64s: [3, 2, 2])
        #expect(try ReferenceKernels.power(base, exponent).floats == [8, 9, 0.25])
        let integers = Tensor(shape: [3], int64s: [2, -3, 5])
        #expect(try ReferenceKernels.power(integers, Tensor(shape: [1], floats: [2])).int64s == [4, 9, 25])
        let types = try Op.pow.inferOutputTypes([TensorType(.int32, Shape([3])), TensorType(.float32, Shape([1]))])
        #expect(types == [TensorType(.int32, Shape([3]))])
    }
}
