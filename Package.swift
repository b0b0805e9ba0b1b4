// swift-tools-version: 6.0
import Foundation
import PackageDescription

// Ferry: importers -> typed IR -> optimizer -> runtime / exporters.
// Dependencies run one way (see ../shared/DESIGN.md): formats and runtime depend on FerryIR only;
// the facade `Ferry` ties them together and the `ferry` tool talks only to the facade.
// The SIMD kernels (FerryKernels) are compiled for a named x86_64 CPU: Swift otherwise targets
// baseline x86-64 (SSE2), where SIMD8<Float> arithmetic and fma become per-lane code.
// - skylake-avx512 (AVX-512 F/CD/BW/DQ/VL) when the building machine has it: the same 8-lane
//   code runs about 20% faster there than compiled for AVX2 (masked blends, 32 registers; the
//   sigmoid epilogue 4.56 -> 3.68 ns per vector on this machine's EPYC);
// - haswell (AVX2 + FMA) otherwise;
// - FERRY_KERNELS_CPU=<cpu> names another (e.g. haswell, for a binary to copy to AVX2 machines);
// - FERRY_PORTABLE=1 builds them for the generic target (slower, runs on any x86-64).
// CFerryCPU is always compiled for the generic target, so the runtime can check the CPU with it
// before calling a kernel (see `ferry_kernels_unsupported_cpu`), and falls back to the scalar
// kernels on a CPU without the instructions the kernels were compiled for.
#if arch(x86_64)
let hostHasAVX512: Bool = {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
    let have = Set(flags.split(separator: " ").map(String.init))
    return ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "fma"].allSatisfy(have.contains)
}()
let kernelsTargetCPU: String? = Context.environment["FERRY_PORTABLE"] == "1"
    ? nil : Context.environment["FERRY_KERNELS_CPU"] ?? (hostHasAVX512 ? "skylake-avx512" : "haswell")
#else
let kernelsTargetCPU: String? = nil
#endif
// FERRY_AVX512 lets a kernel use 16-lane registers where they pay (the wide GEMM tile): the
// 8-lane code is kept for haswell, which has 16 vector registers, not 32.
let kernelsSwiftSettings: [SwiftSetting] = (kernelsTargetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? [])
    + (kernelsTargetCPU == "skylake-avx512" ? [.define("FERRY_AVX512")] : [])
// The CPU check's defines: AVX2 + FMA for every named CPU, AVX-512 as well for skylake-avx512.
let cpuCheckCSettings: [CSetting] = (kernelsTargetCPU == nil ? [] : [.define("FERRY_KERNELS_NEED_AVX2_FMA")])
    + (kernelsTargetCPU == "skylake-avx512" ? [.define("FERRY_KERNELS_NEED_AVX512")] : [])

let package = Package(
    name: "Ferry",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Ferry", targets: ["Ferry"]),
        .executable(name: "ferry", targets: ["ferry"]),
        .executable(name: "ferry-conformance", targets: ["ferry-conformance"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", exact: "0.9.20"),
    ],
    targets: [
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "FerryIR"),
        .target(name: "FerryKeras", dependencies: ["FerryIR", "CHDF5", "ZIPFoundation", "CFerryCPU"]),
        .target(name: "FerryCaffe", dependencies: [
            "FerryIR", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .target(name: "FerryONNX", dependencies: [
            "FerryIR", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .target(name: "CFerryCPU", cSettings: cpuCheckCSettings),
        .target(name: "FerryKernels", dependencies: ["FerryIR", "COpenBLAS"], swiftSettings: kernelsSwiftSettings),
        // The plan runtime's fork-join pool (persistent workers, futex sleep).
        .target(name: "CFerryThreads"),
        .target(name: "FerryRuntime", dependencies: ["FerryIR", "COpenBLAS", "FerryKernels", "CFerryCPU", "CFerryThreads"]),
        .target(name: "FerryOptimizer", dependencies: ["FerryIR", "FerryRuntime"]),
        .target(name: "Ferry", dependencies: [
            "FerryIR", "FerryKeras", "FerryCaffe", "FerryONNX", "FerryOptimizer", "FerryRuntime", "CFerryCPU", "ZIPFoundation",
        ]),
        .executableTarget(name: "ferry", dependencies: [
            "Ferry", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The ONNX backend node tests as a conformance suite (see Tests/FerryONNXTests/conformance.txt).
        .target(name: "FerryConformance", dependencies: ["FerryIR", "FerryONNX", "FerryRuntime"]),
        .executableTarget(name: "ferry-conformance", dependencies: ["FerryConformance"]),
        // Kernel micro-benchmarks against the im2col + sgemm path (tools/bench_kernels.py adds onnxruntime).
        .executableTarget(name: "ferry-bench-kernels", dependencies: ["FerryKernels", "CFerryCPU", "FerryRuntime", "FerryIR", "COpenBLAS"]),
        .testTarget(name: "FerryIRTests", dependencies: ["FerryIR"]),
        .testTarget(name: "FerryKerasTests", dependencies: ["FerryKeras", "FerryIR", "ZIPFoundation"]),
        .testTarget(name: "FerryCaffeTests", dependencies: ["FerryCaffe", "FerryIR"]),
        .testTarget(name: "FerryRuntimeTests", dependencies: ["FerryRuntime", "FerryIR"]),
        .testTarget(name: "FerryKernelsTests", dependencies: ["FerryKernels", "CFerryCPU", "FerryRuntime", "FerryIR"]),
        .testTarget(name: "FerryOptimizerTests", dependencies: ["FerryOptimizer", "FerryRuntime", "FerryIR"]),
        .testTarget(name: "FerryONNXTests", dependencies: ["FerryONNX", "FerryIR", "FerryConformance", "FerryRuntime"],
                    exclude: ["conformance.txt"]),
        .testTarget(name: "FerryTests", dependencies: ["Ferry"]),
    ],
    swiftLanguageModes: [.v6]
)
