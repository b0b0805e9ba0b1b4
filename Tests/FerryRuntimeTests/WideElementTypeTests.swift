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

    @Test func floatToBFloat16RoundsToNearestEven() throws {
        // 1 + 2^-8 is a tie between bfloat16 1 and 1 + 2^-7 (even: down); 1 + 3 * 2^-8 a tie
        // between 1 + 2^-7 and 1 + 2^-6 (even: up); just above a tie rounds up; overflow past
        // the largest bfloat16 is infinity; a NaN whose payload lies in the low bits stays NaN.
        let x = try tensor(.float32([1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-20, Float.greatestFiniteMagnitude,
                                     Float(bitPattern: 0x7F80_0001), -0.0]))
        let b = try ReferenceKernels.cast(x, to: .bfloat16)
        #expect(b.storage == .bfloat16([0x3F80, 0x3F82, 0x3F81, 0x7F80, 0x7FC0, 0x8000]))
        #expect(try ReferenceKernels.cast(b, to: .float32).floats.map(\.bitPattern)
                == [1, 1 + 0x1p-6, 1 + 0x1p-7, .infinity, Float(bitPattern: 0x7FC0_0000), -0.0].map(\.bitPattern))
        // Arithmetic widens to float32 and rounds back: 1 + 2^-8 is again a tie, to even.
        let one = try tensor(.bfloat16([0x3F80]))
        #expect(try ReferenceKernels.add(one, try ReferenceKernels.cast(try tensor(.float32([0x1p-8])), to: .bfloat16)).storage
                == .bfloat16([0x3F80]))
    }

    @Test func stringsCastBothWays() throws {
        let x = try tensor(.float32([0.1, 1e6, 999_999.94, -0.0, .nan, -.infinity, 1e-5, 16_777_216]))
        let text = try ReferenceKernels.cast(x, to: .string)
        #expect(text.storage == .string(["0.1", "1e+06", "999999.94", "-0.0", "nan", "-inf", "1e-05", "1.6777216e+07"]))
        let back = try ReferenceKernels.cast(text, to: .float32).floats
        #expect(back[0] == 0.1 && back[1] == 1e6 && back[3].sign == .minus && back[4].isNaN && back[5] == -.infinity)
        let special = try ReferenceKernels.cast(try tensor(.string(["+INF", "inf", "-Inf", "nan", " 2.5", "1E8"])), to: .float64)
        guard case .float64(let d) = special.storage else { Issue.record("not float64"); return }
        #expect(d[0] == .infinity && d[1] == .infinity && d[2] == -.infinity && d[3].isNaN && d[4] == 2.5 && d[5] == 1e8)
        #expect(try ReferenceKernels.cast(try tensor(.string(["9223372036854775807", "-3", "7.9"])), to: .int64).storage
                == .int64([Int64.max, -3, 7]))
        #expect(try ReferenceKernels.cast(try tensor(.string(["True", "false", "0", "2"])), to: .bool).storage
                == .bool([true, false, false, true]))
        #expect(try ReferenceKernels.cast(try tensor(.int8([-128, 5])), to: .string).storage == .string(["-128", "5"]))
        #expect(try ReferenceKernels.cast(try tensor(.float16([0x7BFF, 0x3555])), to: .string).storage == .string(["6.55e+04", "0.3333"]))
        #expect(throws: FerryError.self) { try ReferenceKernels.cast(try tensor(.string(["Hello World!"])), to: .float32) }
        #expect(throws: FerryError.self) { try ReferenceKernels.cast(try tensor(.string(["0x1p3"])), to: .float32) }
        #expect(throws: FerryError.self) { try ReferenceKernels.add(try tensor(.string(["1"])), try tensor(.string(["2"]))) }
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
