import FerryIR
@testable import FerryRuntime
import Testing

/// float64, int16 and the unsigned types through the generic kernels: values that a path
/// through float32 or Int64 would get wrong.
@Suite struct WideElementTypeTests {
    func tensor(_ storage: TensorStorage) throws -> Tensor { try Tensor(shape: [storage.count], storage: storage) }

    @Test func doubleToHalfRoundsOnce() throws {
        // 1 + 2^-11 + 2^-40 lies just above the tie between halves 1 and 1 + 2^-10; rounding to
        // float32 first would land on the tie and then round down to 1.
        let x = try tensor(.float64([1 + 0x1p-11 + 0x1p-40, 1 + 0x1p-11, -2.5]))
        #expect(try ReferenceKernels.cast(x, to: .float16).storage == .float16([0x3C01, 0x3C00, 0xC100]))
        #expect(try ReferenceKernels.cast(x, to: .float32).storage == .float32([Float(1 + 0x1p-11), Float(1 + 0x1p-11), -2.5]))
    }

    @Test func uint64BeyondInt64() throws {
        let big = try tensor(.uint64([UInt64.max, 1 << 63, 7]))
        let small = try tensor(.uint64([5, 2, 9]))
        #expect(try ReferenceKernels.maximum([big, small]).storage == .uint64([UInt64.max, 1 << 63, 9]))
        #expect(try ReferenceKernels.minimum([big, small]).storage == .uint64([5, 2, 7]))
        #expect(try ReferenceKernels.div(big, small).storage == .uint64([UInt64.max / 5, 1 << 62, 0]))
        #expect(try ReferenceKernels.cast(big, to: .float64).storage == .float64([0x1p64, 0x1p63, 7]))
        #expect(try ReferenceKernels.cast(try tensor(.float64([0x1p63, -1])), to: .uint64).storage
                == .uint64([1 << 63, UInt64.max]))
        #expect(big.int64s == nil)
    }

    @Test func int16AndUInt16WrapAtTheirWidth() throws {
        #expect(try ReferenceKernels.add(try tensor(.int16([32767, -3])), try tensor(.int16([1, 1]))).storage == .int16([-32768, -2]))
        #expect(try ReferenceKernels.sub(try tensor(.uint16([0, 9])), try tensor(.uint16([1, 4]))).storage == .uint16([65535, 5]))
        #expect(try ReferenceKernels.maximum([try tensor(.uint32([4_000_000_000, 1]))]).storage == .uint32([4_000_000_000, 1]))
    }

    @Test func float64ArithmeticAndLogSumExpStayInDouble() throws {
        let a = try Tensor(shape: [2, 1], storage: .float64([1e-300, 2]))
        let b = try Tensor(shape: [2], storage: .float64([1e-300, 0.1]))
        let sum = try ReferenceKernels.add(a, b)
        #expect(sum.shape == [2, 2])
        #expect(sum.storage == .float64([2e-300, 1e-300 + 0.1, 2 + 1e-300, 2.1]))
        let x = try Tensor(shape: [2], storage: .float64([1000, 1000]))
        let lse = try ReferenceKernels.reduce(x, .logSumExp, axes: nil, keepDims: false)
        #expect(lse.storage == .float64([1000 + 0.6931471805599453]))
        #expect(ReferenceKernels.supports(.reduce(.logSumExp, axes: nil, keepDims: false), inputTypes: [.float64]))
        #expect(!ReferenceKernels.supports(.conv(ConvAttributes(kernelShape: [1, 1])), inputTypes: [.float64, .float64]))
    }

    @Test func mixedElementTypesAreRefused() throws {
        #expect(throws: FerryError.self) { try ReferenceKernels.add(try tensor(.float64([1])), try tensor(.float32([1]))) }
        #expect(throws: FerryError.self) { try ReferenceKernels.maximum([try tensor(.bool([true]))]) }
        #expect(throws: FerryError.self) { try ReferenceKernels.div(try tensor(.uint64([1])), try tensor(.uint64([0]))) }
    }
}
