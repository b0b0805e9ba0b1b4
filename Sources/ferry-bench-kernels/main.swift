// ferry-bench-kernels: times FerryKernels against the reference im2col + sgemm convolution on
// ResNet50 / MobileNetV2 layer shapes, one JSON line per case (tools/bench_kernels.py adds
// onnxruntime on the same shapes and prints the table). Not a test: it never fails on speed.
//
// usage: ferry-bench-kernels [--threads N] [--runs N] [--case NAME] [--min]
// --min reports each case's fastest run instead of the median: on a loaded machine the median
// measures the load, the fastest run still the kernel.
import CFerryCPU
import COpenBLAS
import Dispatch
import FerryIR
import FerryKernels
import FerryRuntime
import Foundation

struct Case {
    var name: String
    var kind: String  // "winograd", "depthwise", "direct" (winograd shape timed by im2col only)
    var channels: Int, outChannels: Int, height: Int, width: Int
    var stride = 1
    var activation: FusedActivation = .relu
}

let cases: [Case] = [
    Case(name: "conv3x3_64_56", kind: "winograd", channels: 64, outChannels: 64, height: 56, width: 56),
    Case(name: "conv3x3_128_28", kind: "winograd", channels: 128, outChannels: 128, height: 28, width: 28),
    Case(name: "conv3x3_256_14", kind: "winograd", channels: 256, outChannels: 256, height: 14, width: 14),
    Case(name: "conv3x3_512_7", kind: "winograd", channels: 512, outChannels: 512, height: 7, width: 7),
    Case(name: "dw3x3_144_56_s1", kind: "depthwise", channels: 144, outChannels: 144, height: 56, width: 56),
    Case(name: "dw3x3_144_56_s2", kind: "depthwise", channels: 144, outChannels: 144, height: 56, width: 56, stride: 2),
    Case(name: "dw3x3_32_112_s1", kind: "depthwise", channels: 32, outChannels: 32, height: 112, width: 112),
    Case(name: "dw3x3_96_112_s2", kind: "depthwise", channels: 96, outChannels: 96, height: 112, width: 112, stride: 2),
    Case(name: "dw3x3_192_28_s1", kind: "depthwise", channels: 192, outChannels: 192, height: 28, width: 28),
    Case(name: "dw3x3_384_14_s1", kind: "depthwise", channels: 384, outChannels: 384, height: 14, width: 14),
    Case(name: "dw3x3_576_14_s2", kind: "depthwise", channels: 576, outChannels: 576, height: 14, width: 14, stride: 2),
    Case(name: "dw3x3_960_7_s1", kind: "depthwise", channels: 960, outChannels: 960, height: 7, width: 7),
    Case(name: "dw3x3_576_3_s1", kind: "depthwise", channels: 576, outChannels: 576, height: 3, width: 3),
    // EfficientNet's Swish epilogue (16-lane code with AVX-512).
    Case(name: "dw3x3_144_56_s1_swish", kind: "depthwise", channels: 144, outChannels: 144, height: 56, width: 56,
         activation: .swish(beta: 1)),
    Case(name: "dw3x3_480_14_s1_swish", kind: "depthwise", channels: 480, outChannels: 480, height: 14, width: 14,
         activation: .swish(beta: 1)),
]

/// Matrix products of ResNet50 layers at batch 1 (M output channels, N pixels, K inputs):
/// PackedGemm (A packed once, outside the timing) against cblas_sgemm on the same operands.
let gemmCases: [(name: String, m: Int, n: Int, k: Int)] = [
    ("gemm_1x1_64_3136_256", 64, 3136, 256), ("gemm_1x1_256_784_512", 256, 784, 512),
    ("gemm_1x1_1024_196_256", 1024, 196, 256), ("gemm_1x1_2048_49_512", 2048, 49, 512),
    ("gemm_1x1_512_49_2048", 512, 49, 2048), ("gemm_3x3_512_49_4608", 512, 49, 4608),
    ("gemm_3x3_64_3136_576", 64, 3136, 576), ("gemm_1x1_512_9_2048", 512, 9, 2048),
    ("gemm_1x1_256_196_1024", 256, 196, 1024), ("gemm_1x1_1024_49_256", 1024, 49, 256),
    ("gemm_1x1_96_784_24", 96, 784, 24), ("gemm_1x1_512_25_256", 512, 25, 256), ("gemm_3x3_64_20_144", 64, 20, 144),
    // MobileNetV2 / EfficientNetB0 at 224x224: shallow expansions on large planes, thin projections, the stem.
    ("gemm_1x1_96_12544_16", 96, 12544, 16), ("gemm_1x1_144_3136_24", 144, 3136, 24),
    ("gemm_1x1_24_3136_144", 24, 3136, 144), ("gemm_1x1_192_784_32", 192, 784, 32),
    ("gemm_1x1_32_784_192", 32, 784, 192), ("gemm_1x1_384_196_64", 384, 196, 64),
    ("gemm_1x1_64_196_384", 64, 196, 384), ("gemm_1x1_960_49_160", 960, 49, 160),
    ("gemm_1x1_1280_49_320", 1280, 49, 320), ("gemm_stem_32_12544_27", 32, 12544, 27),
    // MobileNetV2's 7x7 projections (the narrow products of its profile).
    ("gemm_1x1_160_49_576", 160, 49, 576), ("gemm_1x1_160_49_960", 160, 49, 960),
    ("gemm_1x1_320_49_960", 320, 49, 960),
]

/// Activations over 64 Ki floats (L2-resident, as an epilogue sees them): Kernels.activate.
let activationCases: [(name: String, activation: FusedActivation)] = [
    ("act_sigmoid", .sigmoid), ("act_swish", .swish(beta: 1)), ("act_relu", .relu), ("act_tanh", .tanh),
    ("act_gelu", .gelu(approximate: false)), ("act_elu", .elu(alpha: 1)), ("act_hardswish", .hardSwish),
]

/// Batch-1 classifiers (one row times the weights): Kernels.rowTimesMatrix split by columns
/// between threads against cblas_sgemm with m = 1 (ResNet50's, MobileNetV2's, VGG16's fc1).
let rowCases: [(name: String, n: Int, k: Int)] = [
    ("row_2048_1000", 1000, 2048), ("row_1280_1000", 1000, 1280), ("row_25088_4096", 4096, 25088),
]

struct Options: Sendable {
    var threads = 1, runs = 30
    var only: String?
}
var options = Options()
var argv = CommandLine.arguments.dropFirst().makeIterator()
while let arg = argv.next() {
    switch arg {
    case "--threads": options.threads = Int(argv.next() ?? "") ?? 1
    case "--runs": options.runs = Int(argv.next() ?? "") ?? 30
    case "--case": options.only = argv.next()
    case "--min": reportFastest = true
    case "--list":
        for c in cases { print(c.name) }
        for c in gemmCases { print(c.name) }
        for c in rowCases { print(c.name) }
        for c in activationCases { print(c.name) }
        exit(0)
    default: FileHandle.standardError.write("unknown argument \(arg)\n".data(using: .utf8)!); exit(2)
    }
}
if let problem = ferry_kernels_unsupported_cpu() {
    FileHandle.standardError.write("error: \(String(cString: problem))\n".data(using: .utf8)!)
    exit(2)
}

/// Set once from --min before any timing.
nonisolated(unsafe) var reportFastest = false

/// Median (with --min: fastest) milliseconds of `runs` calls after two warm-up calls.
func timeMedian(runs: Int, _ body: () -> Void) -> Double {
    body(); body()
    var times: [Double] = []
    for _ in 0..<runs {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    times.sort()
    return reportFastest ? times[0] : times[times.count / 2]
}

func random(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
    }
}

/// Splits 0..<count into `threads` ranges run concurrently (the body gets the range and the
/// thread's index).
func runParallel(_ count: Int, threads: Int, _ body: (Range<Int>, Int) -> Void) {
    if threads == 1 { body(0..<count, 0); return }
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let work = body
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            work((count * t / threads)..<(count * (t + 1) / threads), t)
        }
    }
}

func bench(_ c: Case, threads: Int, runs: Int) {
    func medianMilliseconds(_ body: () -> Void) -> Double { timeMedian(runs: runs, body) }
    func parallel(_ count: Int, _ body: (Range<Int>, Int) -> Void) { runParallel(count, threads: threads, body) }
    let group = c.kind == "depthwise" ? c.channels : 1
    let attributes = ConvAttributes(kernelShape: [3, 3], strides: [c.stride, c.stride], pads: [1, 1, 1, 1],
                                    group: group, activation: c.activation)
    let x = Tensor(shape: [1, c.channels, c.height, c.width], floats: random(c.channels * c.height * c.width, seed: 1))
    let w = Tensor(shape: [c.outChannels, c.channels / group, 3, 3], floats: random(c.outChannels * c.channels / group * 9, seed: 2))
    let b = Tensor(shape: [c.outChannels], floats: random(c.outChannels, seed: 3))
    // The current path: the reference runtime's Conv (im2col + sgemm, bias, then the activation).
    openblas_set_num_threads(Int32(threads))
    var expected: [Float] = []
    let reference = medianMilliseconds { expected = try! ReferenceKernels.evaluate(.conv(attributes), [x, w, b])[0].floats }
    let geometry = Conv2DGeometry(inHeight: c.height, inWidth: c.width, attributes)!
    var out = [Float](repeating: 0, count: c.outChannels * geometry.outPlane)
    var kernel = 0.0, interleavedMs = Double.nan, interleavedOut: [Float] = [], otherWayMs = Double.nan, transformMs = Double.nan
    x.floats.withUnsafeBufferPointer { xp in
        w.floats.withUnsafeBufferPointer { wp in
            b.floats.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { op in
                    let epilogue = Epilogue(bias: bp.baseAddress, activation: c.activation)
                    let (input, weights, output) = (xp.baseAddress!, wp.baseAddress!, op.baseAddress!)
                    if c.kind == "depthwise" {
                        let perThread = Kernels.depthwiseScratchCount(geometry)
                        var scratch = [Float](repeating: 0, count: threads * perThread)
                        scratch.withUnsafeMutableBufferPointer { sp in
                            let scratch = sp.baseAddress!
                            kernel = medianMilliseconds {
                                parallel(c.outChannels) { range, t in
                                    Kernels.depthwiseConv2D(input: input, weights: weights, output: output, multiplier: 1,
                                                            outputChannels: range, geometry: geometry, epilogue: epilogue,
                                                            scratch: scratch + t * perThread)
                                }
                            }
                        }
                        // The 8-channels-at-a-time kernel on the same case (its own output, checked below).
                        let packed = Kernels.depthwiseInterleavedWeights(weights, channels: c.channels, taps: 9)
                        let perThreadInterleaved = Kernels.depthwiseInterleavedScratchCount(geometry)
                        var interleavedScratch = [Float](repeating: 0, count: threads * perThreadInterleaved)
                        interleavedOut = [Float](repeating: .nan, count: c.outChannels * geometry.outPlane)
                        let blocks = (c.channels + 7) / 8
                        packed.withUnsafeBufferPointer { pp in
                            interleavedScratch.withUnsafeMutableBufferPointer { sp in
                                interleavedOut.withUnsafeMutableBufferPointer { iop in
                                    interleavedMs = medianMilliseconds {
                                        parallel(blocks) { range, t in
                                            Kernels.depthwiseConv2DInterleaved(
                                                input: input, packedWeights: pp.baseAddress!, output: iop.baseAddress!,
                                                channels: c.channels, blocks: range, geometry: geometry, bias: bp.baseAddress,
                                                activation: c.activation, scratch: sp.baseAddress! + t * perThreadInterleaved)
                                        }
                                    }
                                }
                            }
                        }

                    } else {
                        // The plan's way: the weights transformed on every run, in each of the two ways
                        // (the output of the way the plan would pick is the one checked below).
                        openblas_set_num_threads(1)
                        var taps = [Float](repeating: 0, count: 9 * c.channels * c.outChannels)
                        taps.withUnsafeMutableBufferPointer {
                            Winograd3x3.tapMajor(weights, pairs: 0..<(c.channels * c.outChannels), of: c.channels * c.outChannels,
                                                 into: $0.baseAddress!)
                        }
                        // What a run spends transforming the weights (one thread, a chunk of output
                        // channels at a time into one buffer, as `.outputChunks` does).
                        let chunk = WinogradSchedule(batch: 1, inputChannels: c.channels, outputChannels: c.outChannels,
                                                     inHeight: c.height, inWidth: c.width, attributes, threads: 1,
                                                     mode: .outputChunks)!.chunk
                        var u = [Float](repeating: 0, count: Winograd3x3.transformedWeightCount(inputChannels: c.channels,
                                                                                                 outputChannels: chunk))
                        u.withUnsafeMutableBufferPointer { up in
                            taps.withUnsafeBufferPointer { tp in
                                transformMs = medianMilliseconds {
                                    for first in stride(from: 0, to: c.outChannels, by: chunk) {
                                        let held = first..<min(first + chunk, c.outChannels)
                                        Winograd3x3.transformWeights(taps: tp.baseAddress!, inputChannels: c.channels,
                                                                     outputChannels: held, of: c.outChannels,
                                                                     chunk: held, into: up.baseAddress!)
                                    }
                                }
                            }
                        }
                        let chosen = WinogradSchedule(batch: 1, inputChannels: c.channels, outputChannels: c.outChannels,
                                                      inHeight: c.height, inWidth: c.width, attributes, threads: threads)!.mode
                        for mode in [WinogradSchedule.Mode.tileBlocks, .outputChunks] {
                            let schedule = WinogradSchedule(batch: 1, inputChannels: c.channels, outputChannels: c.outChannels,
                                                            inHeight: c.height, inWidth: c.width, attributes, threads: threads,
                                                            mode: mode)!
                            var scratch = [Float](repeating: 0, count: schedule.scratchCount)
                            var modeOut = [Float](repeating: .nan, count: c.outChannels * geometry.outPlane)
                            scratch.withUnsafeMutableBufferPointer { sp in
                                modeOut.withUnsafeMutableBufferPointer { mp in
                                  taps.withUnsafeBufferPointer { tp in
                                    let ms = medianMilliseconds {
                                        schedule.run(input: input, taps: tp.baseAddress!, output: mp.baseAddress!, epilogue: epilogue,
                                                     scratch: sp.baseAddress!) { count, body in
                                            parallel(count) { range, t in body(t, range) }
                                        }
                                    }
                                    if mode == chosen { kernel = ms } else { otherWayMs = ms }
                                  }
                                }
                            }
                            if mode == chosen { output.update(from: modeOut, count: modeOut.count) }
                        }
                    }
                }
            }
        }
    }
    let scale = expected.map(abs).max() ?? 1
    let interleavedError = zip(interleavedOut, out).map { abs($0 - $1) }.max() ?? 0
    let maxError = zip(out, expected).map { abs($0 - $1) }.max() ?? 0
    let macs = Double(c.outChannels * geometry.outPlane * (c.channels / group) * 9)
    let recommended = c.kind == "depthwise" || Winograd3x3(inputChannels: c.channels, outputChannels: c.outChannels,
                                                           inHeight: c.height, inWidth: c.width, attributes)!.isRecommended
    print("{\"case\": \"\(c.name)\", \"kind\": \"\(c.kind)\", \"recommended\": \(recommended), \"threads\": \(threads), \"kernel_ms\": \(kernel), "
        + (interleavedMs.isNaN ? "" : "\"interleaved_ms\": \(interleavedMs), \"interleaved_vs_plane_max_difference\": \(interleavedError), ")
        + (otherWayMs.isNaN ? "" : "\"winograd_other_way_ms\": \(otherWayMs), ")
        + (transformMs.isNaN ? "" : "\"winograd_weight_transform_ms\": \(transformMs), ")
        + "\"im2col_sgemm_ms\": \(reference), \"gmacs_per_s\": \(macs / kernel / 1e6), "
        + "\"max_error_over_scale\": \(maxError / scale), \"shape\": [\(c.channels), \(c.outChannels), \(c.height), \(c.width), \(c.stride)]}")
}


func benchGemm(_ c: (name: String, m: Int, n: Int, k: Int), threads: Int, runs: Int) {
    let a = random(c.m * c.k, seed: 1), b = random(c.k * c.n, seed: 2)
    var packed = [Float](repeating: 0, count: PackedGemm.packedCount(rows: c.m, depth: c.k))
    var scratch = [Float](repeating: 0, count: PackedGemm.scratchCount * threads)
    var mine = [Float](repeating: 0, count: c.m * c.n), theirs = mine
    var packedMs = 0.0, blasMs = 0.0, narrowMs = Double.nan
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            packed.withUnsafeMutableBufferPointer { pp in
                PackedGemm.packA(ap.baseAddress!, rows: c.m, depth: c.k, lda: c.k, into: pp.baseAddress!)
                let (pa, pb) = (UnsafePointer(pp.baseAddress!), bp.baseAddress!)
                scratch.withUnsafeMutableBufferPointer { sp in
                    mine.withUnsafeMutableBufferPointer { op in
                        let (s, out) = (sp.baseAddress!, op.baseAddress!)
                        let panels = PackedGemm.panelCount(rows: c.m)
                        // Wide products split columns between threads, narrow ones row panels.
                        let byColumns = c.n >= 64 * threads
                        packedMs = timeMedian(runs: runs) {
                            runParallel(byColumns ? c.n / 16 : panels, threads: threads) { r, t in
                                let cols = byColumns ? (r.lowerBound * 16)..<(r.upperBound == c.n / 16 ? c.n : r.upperBound * 16) : 0..<c.n
                                PackedGemm.multiply(packedA: pa, rows: c.m, depth: c.k, panels: byColumns ? 0..<panels : r,
                                                    b: pb, ldb: c.n, columns: cols, c: out, ldc: c.n,
                                                    scratch: s + t * PackedGemm.scratchCount)
                            }
                        }
                    }
                }
                // The few-columns layout on the same product (row panels split between threads).
                if c.k * PackedGemm.narrowColumnsPerPanel <= PackedGemm.scratchCount {
                    var narrowPacked = [Float](repeating: 0, count: PackedGemm.narrowPackedCount(rows: c.m, depth: c.k))
                    var narrowOut = [Float](repeating: 0, count: c.m * c.n)
                    narrowPacked.withUnsafeMutableBufferPointer { np in
                        PackedGemm.packNarrowA(ap.baseAddress!, rows: c.m, depth: c.k, lda: c.k, into: np.baseAddress!)
                        let pn = UnsafePointer(np.baseAddress!)
                        scratch.withUnsafeMutableBufferPointer { sp in
                            narrowOut.withUnsafeMutableBufferPointer { op in
                                let (s, out) = (sp.baseAddress!, op.baseAddress!)
                                narrowMs = timeMedian(runs: runs) {
                                    runParallel(PackedGemm.narrowPanelCount(rows: c.m), threads: threads) { r, t in
                                        PackedGemm.multiplyNarrow(packedA: pn, rows: c.m, depth: c.k, panels: r, b: pb, ldb: c.n,
                                                                  columns: 0..<c.n, c: out, ldc: c.n,
                                                                  scratch: s + t * PackedGemm.scratchCount)
                                    }
                                }
                            }
                        }
                    }
                }
                theirs.withUnsafeMutableBufferPointer { tp in
                    openblas_set_num_threads(Int32(threads))
                    blasMs = timeMedian(runs: runs) {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(c.m), blasint(c.n), blasint(c.k), 1,
                                    ap.baseAddress!, blasint(c.k), bp.baseAddress!, blasint(c.n), 0, tp.baseAddress!, blasint(c.n))
                    }
                }
            }
        }
    }
    let maxError = zip(mine, theirs).map { abs($0 - $1) }.max() ?? 0
    let flops = 2.0 * Double(c.m * c.n * c.k)
    print("{\"case\": \"\(c.name)\", \"kind\": \"gemm\", \"threads\": \(threads), \"packed_ms\": \(packedMs), "
        + "\"sgemm_ms\": \(blasMs), \"ratio\": \(packedMs / blasMs), \"packed_gflops\": \(flops / packedMs / 1e6), "
        + "\"narrow_ms\": \(narrowMs.isNaN ? "null" : String(narrowMs)), "
        + "\"max_abs_difference\": \(maxError)}")
}

func benchRow(_ c: (name: String, n: Int, k: Int), threads: Int, runs: Int) {
    let x = random(c.k, seed: 4), w = random(c.k * c.n, seed: 5)
    var mine = [Float](repeating: 0, count: c.n), theirs = mine
    var rowMs = 0.0, blasMs = 0.0
    x.withUnsafeBufferPointer { xp in
        w.withUnsafeBufferPointer { wp in
            let (xs, ws) = (xp.baseAddress!, wp.baseAddress!)
            mine.withUnsafeMutableBufferPointer { op in
                let out = op.baseAddress!
                rowMs = timeMedian(runs: runs) {
                    runParallel(c.n, threads: threads) { r, _ in
                        Kernels.rowTimesMatrix(xs, ws, ldb: c.n, depth: c.k, columns: r, out)
                    }
                }
            }
            theirs.withUnsafeMutableBufferPointer { tp in
                openblas_set_num_threads(Int32(threads))
                blasMs = timeMedian(runs: runs) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, blasint(c.n), blasint(c.k), 1,
                                xs, blasint(c.k), ws, blasint(c.n), 0, tp.baseAddress!, blasint(c.n))
                }
            }
        }
    }
    let maxError = zip(mine, theirs).map { abs($0 - $1) }.max() ?? 0
    let bytes = 4.0 * Double(c.n * c.k)
    print("{\"case\": \"\(c.name)\", \"kind\": \"row\", \"threads\": \(threads), \"row_ms\": \(rowMs), "
        + "\"sgemm_ms\": \(blasMs), \"ratio\": \(rowMs / blasMs), \"row_gb_per_s\": \(bytes / rowMs / 1e6), "
        + "\"max_abs_difference\": \(maxError)}")
}

for c in cases where options.only == nil || options.only == c.name {
    bench(c, threads: options.threads, runs: options.runs)
}
for c in gemmCases where options.only == nil || options.only == c.name {
    benchGemm(c, threads: options.threads, runs: options.runs)
}
for c in rowCases where options.only == nil || options.only == c.name {
    benchRow(c, threads: options.threads, runs: options.runs)
}
for c in activationCases where options.only == nil || options.only == c.name {
    let x = random(65536, seed: 6).map { $0 * 8 }
    var y = [Float](repeating: 0, count: x.count)
    let ms = x.withUnsafeBufferPointer { xp in
        y.withUnsafeMutableBufferPointer { yp in
            timeMedian(runs: options.runs) { Kernels.activate(xp.baseAddress!, yp.baseAddress!, count: x.count, c.activation) }
        }
    }
    print("{\"case\": \"\(c.name)\", \"kind\": \"activation\", \"kernel_ms\": \(ms), \"ns_per_vector\": \(ms * 1e6 / 8192)}")
}
