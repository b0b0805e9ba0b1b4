import Foundation
import Testing
import FerryIR
@testable import FerryKeras

/// A Keras-like .h5 written by the test: model_config, layer_names and per-layer weights.
struct SyntheticFile {
    var config: [String: Any]
    /// Per layer: weight names and (shape, values), in weight_names order.
    var weights: [(layer: String, names: [String], arrays: [([Int], [Float])])] = []
    var fixedLengthStrings = false
    var writeConfig = true
    /// layer_names split into this many chunks (layer_names0, layer_names1, ...); 0 = one attribute.
    var layerNameChunks = 0

    func write() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("ferry-keras-\(UUID().uuidString).h5").path
        try HDF5.withLibrary {
            let w = try H5Writer(path: path)
            let variable = !fixedLengthStrings
            try w.setStrings("keras_version", ["2.13.1"], variableLength: variable, scalar: true)
            try w.setStrings("backend", ["tensorflow"], variableLength: variable, scalar: true)
            if writeConfig {
                let json = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
                try w.setStrings("model_config", [json], variableLength: variable, scalar: true)
            }
            try w.group("model_weights")
            let names = weights.map(\.layer)
            if layerNameChunks == 0 {
                try w.setStrings("layer_names", names, on: "model_weights", variableLength: variable)
            } else {
                let per = (names.count + layerNameChunks - 1) / layerNameChunks
                for c in 0..<layerNameChunks {
                    let part = Array(names.dropFirst(c * per).prefix(per))
                    try w.setStrings("layer_names\(c)", part, on: "model_weights", variableLength: variable)
                }
            }
            for l in weights {
                let group = "model_weights/" + l.layer
                try w.group(group)
                try w.setStrings("weight_names", l.names, on: group, variableLength: variable)
                for (name, (shape, values)) in zip(l.names, l.arrays) {
                    try w.writeFloats(group + "/" + name, shape: shape, values)
                }
            }
        }
        return path
    }
}

/// Keras 2 style config pieces.
func functional(_ layers: [[String: Any]], inputs: [String], outputs: [Any]) -> [String: Any] {
    ["class_name": "Functional", "config": [
        "name": "m", "layers": layers,
        "input_layers": inputs.map { [$0, 0, 0] },
        "output_layers": outputs,
    ] as [String: Any]]
}

func layer(_ className: String, _ name: String, _ config: [String: Any], _ inbound: [String]) -> [String: Any] {
    var c = config
    c["name"] = name
    return ["class_name": className, "name": name, "config": c,
            "inbound_nodes": inbound.isEmpty ? [] : [inbound.map { [$0, 0, 0, [String: Any]()] as [Any] }]]
}

func input(_ name: String, _ shape: [Any]) -> [String: Any] {
    layer("InputLayer", name, ["batch_input_shape": [NSNull()] + shape, "dtype": "float32"], [])
}

func ramp(_ n: Int, scale: Float = 0.01) -> [Float] { (0..<n).map { Float($0) * scale } }

@Suite struct SyntheticFileTests {
    /// Keras 2.2-era file: fixed-length strings everywhere, Sequential without an InputLayer
    /// (batch_input_shape on the first layer), layer_names split in chunks.
    @Test func fixedLengthStringsAndSequentialWithoutInputLayer() throws {
        let config: [String: Any] = ["class_name": "Sequential", "config": ["name": "seq", "layers": [
            ["class_name": "Dense", "config": ["name": "d1", "units": 3, "activation": "relu", "use_bias": true,
                                               "batch_input_shape": [NSNull(), 4]]],
            ["class_name": "Dense", "config": ["name": "d2", "units": 2, "activation": "softmax"]],
        ]] as [String: Any]]
        var file = SyntheticFile(config: config, weights: [
            ("d1", ["d1/kernel:0", "d1/bias:0"], [([4, 3], ramp(12)), ([3], ramp(3))]),
            ("d2", ["d2/kernel:0", "d2/bias:0"], [([3, 2], ramp(6)), ([2], ramp(2))]),
        ])
        file.fixedLengthStrings = true
        file.layerNameChunks = 2
        let g = try KerasImporter.load(path: try file.write())
        #expect(g.inputs.map(\.name) == ["d1_input"])
        #expect(g.inputs[0].type.shape == Shape([.symbolic("N"), .fixed(4)]))
        #expect(g.outputs.map(\.name) == ["d2"])
        #expect(g.metadata["keras_version"] == "2.13.1")
        #expect(g.initializers["d1/kernel"]?.floats == ramp(12))
    }

    /// Keras 2 layer names with '/' are nested groups; weight_names are followed, not the
    /// alphabetical order of the group.
    @Test func slashInLayerNameAndWeightNamesOrder() throws {
        let config = functional([
            input("x", [4]),
            layer("Dense", "block/fc", ["units": 2, "use_bias": true], ["x"]),
        ], inputs: ["x"], outputs: [["block/fc", 0, 0]])
        // "bias" sorts before "kernel"; weight_names says kernel first.
        let file = SyntheticFile(config: config, weights: [
            ("x", [], []),
            ("block/fc", ["block/fc/kernel:0", "block/fc/bias:0"], [([4, 2], ramp(8)), ([2], [7, 8])]),
        ])
        let g = try KerasImporter.load(path: try file.write())
        #expect(g.initializers["block/fc/kernel"]?.shape == [4, 2])
        #expect(g.initializers["block/fc/bias"]?.floats == [7, 8])
        #expect(g.outputs.map(\.name) == ["block/fc"])
    }

    @Test func kernelShapeMismatchNamesTheLayer() throws {
        let config = functional([
            input("x", [4]),
            layer("Dense", "fc", ["units": 2], ["x"]),
        ], inputs: ["x"], outputs: [["fc", 0, 0]])
        let path = try SyntheticFile(config: config, weights: [
            ("fc", ["fc/kernel:0", "fc/bias:0"], [([5, 2], ramp(10)), ([2], [0, 0])]),
        ]).write()
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e?.file == path && e?.layer == "fc" && e?.layerType == "Dense")
        #expect(e?.message.contains("[5, 2]") == true)
    }

    @Test func missingBiasIsAnError() throws {
        let config = functional([
            input("x", [4]),
            layer("Dense", "fc", ["units": 2, "use_bias": true], ["x"]),
        ], inputs: ["x"], outputs: [["fc", 0, 0]])
        let path = try SyntheticFile(config: config, weights: [
            ("fc", ["fc/kernel:0"], [([4, 2], ramp(8))]),
        ]).write()
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e?.layer == "fc")
        #expect(e?.message.contains("1 weights") == true)
    }

    @Test func missingWeightsGroupIsAnError() throws {
        let config = functional([
            input("x", [4]),
            layer("Dense", "fc", ["units": 2], ["x"]),
        ], inputs: ["x"], outputs: [["fc", 0, 0]])
        let path = try SyntheticFile(config: config, weights: []).write()
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e?.layer == "fc" && e?.file == path)
    }

    @Test func unsupportedActivationAndDataFormat() throws {
        for (config, message) in [
            (["units": 2, "activation": "swishy"], "activation 'swishy' is not supported"),
            (["units": "two"], "config field 'units' should be an integer, is a string"),
        ] as [([String: Any], String)] {
            let path = try SyntheticFile(config: functional([
                input("x", [4]), layer("Dense", "fc", config, ["x"]),
            ], inputs: ["x"], outputs: [["fc", 0, 0]])).write()
            let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
            #expect(e?.layer == "fc" && e?.layerType == "Dense" && e?.message == message)
        }
        let path = try SyntheticFile(config: functional([
            input("x", [3, 8, 8]),
            layer("MaxPooling2D", "pool", ["pool_size": [2, 2], "data_format": "channels_first"], ["x"]),
        ], inputs: ["x"], outputs: [["pool", 0, 0]])).write()
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e?.layer == "pool" && e?.message.contains("channels_first") == true)
    }

    @Test func notAModelFile() throws {
        let missing = "/nonexistent/model.h5"
        #expect(throws: FerryError.self) { try KerasImporter.load(path: missing) }
        let text = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(UUID().uuidString).h5").path
        try Data("not hdf5".utf8).write(to: URL(fileURLWithPath: text))
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: text) }
        #expect(e?.file == text && e?.message == "not an HDF5 file")
        var weightsOnly = SyntheticFile(config: [:])
        weightsOnly.writeConfig = false
        let path = try weightsOnly.write()
        let e2 = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e2?.message.contains("model_config") == true)
        let bad = try SyntheticFile(config: ["class_name": "Functional", "config": ["layers": 3]]).write()
        #expect(throws: FerryError.self) { try KerasImporter.load(path: bad) }
    }

    /// One layer listed twice as an output, and an InputLayer as an output: unique names.
    @Test func repeatedOutputsGetUniqueNames() throws {
        let config = functional([
            input("x", [4]),
            layer("Dense", "fc", ["units": 2], ["x"]),
        ], inputs: ["x"], outputs: [["fc", 0, 0], ["fc", 0, 0], ["x", 0, 0]])
        let g = try KerasImporter.load(path: try SyntheticFile(config: config, weights: [
            ("fc", ["fc/kernel:0", "fc/bias:0"], [([4, 2], ramp(8)), ([2], [0, 0])]),
        ]).write())
        #expect(g.outputs.map(\.name) == ["fc", "fc_1", "x_1"])
        #expect(g.node(producing: "fc")?.op.name == "Gemm")
        #expect(g.node(producing: "fc_1")?.op == .identity)
    }

    /// Grouped, dilated, strided 'same' convolution; GlobalMaxPooling with keepdims.
    @Test func groupedDilatedConvolution() throws {
        let config = functional([
            input("img", [9, 10, 4]),
            layer("Conv2D", "conv", ["filters": 6, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
                                     "dilation_rate": 1, "groups": 2, "use_bias": false,
                                     "data_format": "channels_last", "activation": "tanh"], ["img"]),
            layer("Conv2D", "dil", ["filters": 2, "kernel_size": 3, "padding": "same", "dilation_rate": [2, 2],
                                    "use_bias": true, "activation": "linear"], ["conv"]),
            layer("GlobalMaxPooling2D", "gmp", ["keepdims": true], ["dil"]),
        ], inputs: ["img"], outputs: [["gmp", 0, 0]])
        let kernel = ramp(3 * 3 * 2 * 6)
        let g = try KerasImporter.load(path: try SyntheticFile(config: config, weights: [
            ("conv", ["conv/kernel:0"], [([3, 3, 2, 6], kernel)]),
            ("dil", ["dil/kernel:0", "dil/bias:0"], [([3, 3, 6, 2], ramp(108)), ([2], [1, 2])]),
        ]).write())
        let conv = try #require(g.nodes("Conv").first)
        guard case .conv(let a) = conv.op else { return }
        // 9x10, stride 2: outputs 5x5, totals 2 and 1 (the odd cell at the end).
        #expect(a.group == 2 && a.pads == [1, 0, 1, 1])
        let w = try #require(g.initializers["conv/kernel"])
        #expect(w.shape == [6, 2, 3, 3])
        // W[o=5, i=1, y=2, x=0] = K[2, 0, 1, 5]
        let irIndex: Int = ((5 * 2 + 1) * 3 + 2) * 3 + 0
        let kerasIndex: Int = ((2 * 3 + 0) * 2 + 1) * 6 + 5
        #expect(w.floats[irIndex] == kernel[kerasIndex])
        guard case .conv(let d) = g.nodes("Conv")[1].op else { return }
        #expect(d.dilations == [2, 2] && d.pads == [2, 2, 2, 2])
        #expect(g.outputs[0].type.shape == Shape([.symbolic("N"), .fixed(1), .fixed(1), .fixed(2)]))
    }

    @Test func denseOnImagesWithoutItsWeightsIsRefusedClearly() throws {
        let config = functional([
            input("img", [4, 4, 3]),
            layer("Dense", "fc", ["units": 2], ["img"]),
        ], inputs: ["img"], outputs: [["fc", 0, 0]])
        let path = try SyntheticFile(config: config).write()
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e?.layer == "fc" && e?.message.contains("no weights") == true, "\(String(describing: e))")
    }

    @Test func integerWeightsAreRefused() throws {
        let config = functional([
            input("x", [2]),
            layer("Dense", "fc", ["units": 1, "use_bias": false], ["x"]),
        ], inputs: ["x"], outputs: [["fc", 0, 0]])
        let file = SyntheticFile(config: config, weights: [("fc", [], [])])
        let path = try file.write()
        try HDF5.withLibrary {
            // Rewrite with an int8 kernel.
            let w = try H5Writer(path: path)
            try w.setStrings("model_config", [String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)],
                             variableLength: true, scalar: true)
            try w.setStrings("layer_names", ["fc"], on: "model_weights", variableLength: true)
            try w.setStrings("weight_names", ["fc/kernel:0"], on: "model_weights/fc", variableLength: true)
            try w.writeInt8("model_weights/fc/fc/kernel:0", shape: [2, 1], [1, 2])
        }
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e?.layer == "fc" && e?.message.contains("floating-point") == true)
    }
}

/// model_config parsing without files.
@Suite struct ModelConfigTests {
    @Test func keras3SingleTriplesAndCallArguments() throws {
        let json = """
        {"class_name": "Functional", "config": {"name": "f", "layers": [
          {"class_name": "InputLayer", "name": "a", "config": {"name": "a", "batch_shape": [null, 3]}, "inbound_nodes": []},
          {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2,
            "activation": {"module": "keras.activations", "class_name": "function", "config": "relu"}},
           "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
              "config": {"shape": [null, 3], "keras_history": ["a", 0, 0]}}], "kwargs": {"training": false}}]}],
          "input_layers": ["a", 0, 0], "output_layers": ["d", 0, 0]}}
        """
        let m = try ModelConfig.parse(json: json, kerasMajor: 3)
        #expect(m.inputs == [TensorRef(layer: "a", node: 0, tensor: 0)])
        #expect(m.outputs == [TensorRef(layer: "d", node: 0, tensor: 0)])
        #expect(m.layers[1].calls.map(\.all) == [[TensorRef(layer: "a", node: 0, tensor: 0)]])
        #expect((m.layers[1].spec as? DenseSpec)?.activation == .relu)
    }

    @Test func lambdaIsRefusedBeforeItsConfigIsRead() throws {
        // The function field is garbage on purpose: it must never be looked at.
        let json = """
        {"class_name": "Sequential", "config": {"name": "s", "layers": [
          {"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [null, 3]}},
          {"class_name": "Lambda", "config": {"name": "double", "function": 12}}]}}
        """
        let e = #expect(throws: FerryError.self) { try ModelConfig.parse(json: json, kerasMajor: 3) }
        #expect(e?.layer == "double" && e?.layerType == "Lambda")
    }

    @Test func malformedConfigsThrow() {
        for json in ["", "[]", "{}", #"{"class_name": "Sequential"}"#, #"{"class_name": "Sequential", "config": {"layers": [1]}}"#,
                     #"{"class_name": "Functional", "config": {"layers": [], "input_layers": [["a"]], "output_layers": []}}"#,
                     #"{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {"name": "d", "units": 2.5}}], "input_layers": [], "output_layers": []}}"#,
                     #"{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {"name": "d", "units": true}}], "input_layers": [], "output_layers": []}}"#,
                     #"{"class_name": "Subclassed", "config": {}}"#,
                     #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [null, 4611686018427387904, 4]}}, {"class_name": "Flatten", "config": {"name": "f"}}]}}"#,
                     #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [null, 8, 8, 3]}}, {"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": 4611686018427387904, "dilation_rate": 9}}]}}"#,
                     #"{"class_name": "Sequential", "config": {"layers": [{"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [null, 8, 8, 3]}}, {"class_name": "MaxPooling2D", "config": {"name": "p", "pool_size": [2, -1]}}]}}"#] {
            #expect(throws: FerryError.self, "\(json)") { try ModelConfig.parse(json: json, kerasMajor: 3) }
        }
    }

    /// A tf_keras functional model with one layer after the input `x` (4 features).
    func keras2Model(_ layer: String) -> String {
        """
        {"class_name": "Functional", "config": {"name": "f", "layers": [
          {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_input_shape": [null, 4]}, "inbound_nodes": []},
          \(layer)],
          "input_layers": [["x", 0, 0]], "output_layers": [["op", 0, 0]]}}
        """
    }

    @Test func tfOpLambdaMapsOnlyListedFunctionsByName() throws {
        let add = #"{"class_name": "TFOpLambda", "name": "op", "config": {"name": "op", "function": "__operators__.add"}, "inbound_nodes": [["x", 0, 0, {"y": 3.0, "name": null}]]}"#
        let m = try ModelConfig.parse(json: keras2Model(add), kerasMajor: 2)
        #expect((m.layers[1].spec as? TFOpLambdaSpec)?.function == .operatorAdd)
        #expect(m.layers[1].calls.first?.numbers == ["y": 3.0])
        #expect(m.layers[1].calls.first?.keywords == ["y"])
        for function in ["nn.relu6", "compat.v1.py_func", "__operators__.add.__code__"] {
            let other = add.replacingOccurrences(of: "__operators__.add", with: function)
            let e = #expect(throws: FerryError.self) { try ModelConfig.parse(json: keras2Model(other), kerasMajor: 2) }
            #expect(e?.layer == "op" && e?.message.contains("'\(function)'") == true)
        }
    }

    @Test func customScaleLayerOnlyWithTheApplicationsFields() throws {
        let layer = #"{"class_name": "Custom>CustomScaleLayer", "name": "op", "config": {"name": "op", "trainable": true, "dtype": "float32", "scale": 0.17}, "inbound_nodes": [[["x", 0, 0, {}], ["x", 0, 0, {}]]]}"#
        let m = try ModelConfig.parse(json: keras2Model(layer), kerasMajor: 2)
        #expect((m.layers[1].spec as? CustomScaleLayerSpec)?.scale == 0.17)
        // The same registered name with other fields is someone else's class.
        let other = layer.replacingOccurrences(of: #""scale": 0.17"#, with: #""scale": 0.17, "power": 2"#)
        let e = #expect(throws: FerryError.self) { try ModelConfig.parse(json: keras2Model(other), kerasMajor: 2) }
        #expect(e?.layer == "op" && e?.message.contains("not InceptionResNetV2's scaling layer") == true)
    }

    @Test func keras3CustomScaleLayerHasItsBareClassName() throws {
        let layer = #"{"class_name": "CustomScaleLayer", "name": "op", "config": {"name": "op", "trainable": true, "dtype": "float32", "scale": 0.1}, "inbound_nodes": [[["x", 0, 0, {}], ["x", 0, 0, {}]]]}"#
        let m = try ModelConfig.parse(json: keras2Model(layer), kerasMajor: 3)
        #expect((m.layers[1].spec as? CustomScaleLayerSpec)?.scale == 0.1)
    }

    @Test func layerScaleOnlyWithTheApplicationsFields() throws {
        let layer = #"{"class_name": "LayerScale", "name": "op", "config": {"name": "op", "trainable": true, "dtype": "float32", "init_values": 1e-06, "projection_dim": 4}, "inbound_nodes": [[["x", 0, 0, {}]]]}"#
        let m = try ModelConfig.parse(json: keras2Model(layer), kerasMajor: 2)
        #expect((m.layers[1].spec as? LayerScaleSpec)?.projectionDim == 4)
        let other = layer.replacingOccurrences(of: #""projection_dim": 4"#, with: #""projection_dim": 4, "axis": 1"#)
        let e = #expect(throws: FerryError.self) { try ModelConfig.parse(json: keras2Model(other), kerasMajor: 2) }
        #expect(e?.layer == "op" && e?.message.contains("not ConvNeXt's layer scale") == true)
        // A registered class of the same name is someone else's.
        let registered = layer.replacingOccurrences(of: #""class_name": "LayerScale""#, with: #""class_name": "my_package>LayerScale""#)
        #expect(throws: FerryError.self) { try ModelConfig.parse(json: keras2Model(registered), kerasMajor: 2) }
    }

    /// A Keras 3 call of `op` on x and a number: `.keras` files name the operation's module,
    /// legacy `.h5` files leave it out and keep only the name in the config.
    func keras3Operation(_ className: String, config: String, module: Bool, numberFirst: Bool = false,
                         moduleName: String = "keras.src.ops.numpy", tensorOnly: Bool = false) -> String {
        let tensor = #"{"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "keras_history": ["x", 0, 0]}}"#
        let args = tensorOnly ? "[\(tensor)]" : numberFirst ? "[2.0, \(tensor)]" : "[\(tensor), 3.0]"
        return #"{"# + (module ? #""module": "\#(moduleName)", "# : "")
            + #""class_name": "\#(className)", "name": "op", "config": \#(config), "inbound_nodes": [{"args": \#(args), "kwargs": {}}]}"#
    }

    @Test func keras3OperationsAreToldFromLayers() throws {
        for module in [true, false] {
            for (name, op) in [("Add", KerasOperationSpec.Operation.add), ("Subtract", .subtract), ("Multiply", .multiply),
                               ("TrueDivide", .trueDivide)] {
                let json = keras2Model(keras3Operation(name, config: #"{"name": "op"}"#, module: module, numberFirst: name == "Subtract"))
                let m = try ModelConfig.parse(json: json, kerasMajor: 3)
                let spec = try #require(m.layers[1].spec as? KerasOperationSpec, "\(name) module \(module)")
                #expect(spec.operation == op)
                #expect(m.layers[1].calls.first?.positionalArguments == (name == "Subtract" ? [2.0, nil] : [nil, 3.0]))
            }
        }
        // The merging layer Add: its config has more than a name.
        let layer = keras3Operation("Add", config: #"{"name": "op", "trainable": true, "dtype": "float32"}"#, module: false)
        let m = try ModelConfig.parse(json: keras2Model(layer), kerasMajor: 3)
        #expect(m.layers[1].spec is ElementwiseMergeSpec<AddMerge>)
        let other = keras3Operation("Power", config: #"{"name": "op"}"#, module: true)
        let e = #expect(throws: FerryError.self) { try ModelConfig.parse(json: keras2Model(other), kerasMajor: 3) }
        #expect(e?.layer == "op" && e?.message.contains("Power") == true)
    }

    @Test func keras3GeluOperationKeepsItsFlag() throws {
        for module in [true, false] {
            for flag in [true, false] {
                let layer = keras3Operation("Gelu", config: #"{"name": "op", "approximate": \#(flag)}"#, module: module,
                                            moduleName: "keras.src.ops.nn", tensorOnly: true)
                let m = try ModelConfig.parse(json: keras2Model(layer), kerasMajor: 3)
                let spec = try #require(m.layers[1].spec as? KerasOperationSpec, "module \(module)")
                #expect(spec.operation == .gelu && spec.approximate == flag)
            }
        }
        // A flag that is not a boolean, and Gelu under another module, are refused.
        for (config, moduleName) in [(#"{"name": "op", "approximate": 1}"#, "keras.src.ops.nn"),
                                     (#"{"name": "op", "approximate": true}"#, "keras.src.ops.numpy")] {
            let layer = keras3Operation("Gelu", config: config, module: true, moduleName: moduleName, tensorOnly: true)
            let e = #expect(throws: FerryError.self) { try ModelConfig.parse(json: keras2Model(layer), kerasMajor: 3) }
            #expect(e?.layer == "op")
        }
    }

    @Test func aNumberPassedToALayerIsRefusedNotDropped() throws {
        // A merging layer called on (x, 3.0) would otherwise add nothing.
        let layer = keras3Operation("Add", config: #"{"name": "op", "trainable": true, "dtype": "float32"}"#, module: false)
        let config = try JSONSerialization.jsonObject(with: Data(keras2Model(layer).utf8)) as! [String: Any]
        let path = try SyntheticFile(config: config).write()
        let e = #expect(throws: FerryError.self) { try KerasImporter.load(path: path) }
        #expect(e?.layer == "op" && e?.message.contains("positional argument 2") == true)
    }

    @Test func rnnCellsAreReadByClassAndStacksNumberTheirCells() throws {
        func rnn(_ cell: String) -> String {
            #"{"class_name": "RNN", "name": "op", "config": {"name": "op", "return_sequences": true, "cell": \#(cell)}, "inbound_nodes": [[["x", 0, 0, {}]]]}"#
        }
        let lstm = #"{"class_name": "LSTMCell", "config": {"name": "c", "units": 3}}"#
        let gru = #"{"class_name": "GRUCell", "config": {"name": "g", "units": 2}}"#
        let stack = #"{"class_name": "StackedRNNCells", "config": {"cells": [\#(lstm), \#(lstm), \#(gru)]}}"#
        let m = try ModelConfig.parse(json: keras2Model(rnn(stack)), kerasMajor: 2)
        let spec = try #require(m.layers[1].spec as? GenericRNNSpec)
        #expect(spec.cells.map(\.units) == [3, 3, 2] && spec.returnSequences)
        #expect(spec.weightGroups == [["cell", "cells", "lstm_cell"], ["cell", "cells", "lstm_cell_1"], ["cell", "cells", "gru_cell"]])
        let custom = #"{"class_name": "my_package>PeepholeCell", "config": {"units": 3}}"#
        let e = #expect(throws: FerryError.self) { try ModelConfig.parse(json: keras2Model(rnn(custom)), kerasMajor: 2) }
        #expect(e?.layer == "op" && e?.message.contains("PeepholeCell is not supported") == true)
    }

    @Test func resizingOptionsKerasRejectsAreRefused() throws {
        func resizing(_ fields: String) -> String {
            #"{"class_name": "Resizing", "name": "op", "config": {"name": "op", "height": 4, "width": 4, \#(fields)}, "inbound_nodes": [[["x", 0, 0, {}]]]}"#
        }
        for (fields, message) in [(#""interpolation": "cubic""#, "interpolation 'cubic' is not supported"),
                                  (#""fill_mode": "reflect""#, "fill_mode 'reflect' is not supported"),
                                  (#""crop_to_aspect_ratio": true, "pad_to_aspect_ratio": true"#, "are both set")] {
            let e = #expect(throws: FerryError.self) { try ModelConfig.parse(json: keras2Model(resizing(fields)), kerasMajor: 3) }
            #expect(e?.layer == "op" && e?.message.contains(message) == true, "\(fields)")
        }
    }

    @Test func bicubicWeightsAreTensorFlowsTableNotExactKeys() {
        // 7 -> 5 cells: output 1 samples input 1.6 (half-pixel, scale 1.4): fraction 0.6, which
        // TensorFlow rounds to table entry 614 of 1024; all four taps lie inside the image.
        let w = ResamplingFilter.bicubicTable.weights(from: 7, to: 5)
        let row = Array(w[7..<14])
        #expect(abs(row.reduce(0, +) - 1) < 1e-6)
        #expect(row[0] != 0 && row[3] != 0 && row[4] == 0, "\(row)")
        #expect(abs(row[1] - SamplingKernel.keysCubic(614.0 / 1024)) < 1e-6, "\(row)")
        #expect(abs(row[1] - SamplingKernel.keysCubic(0.6)) > 1e-4, "\(row)")
    }

    @Test func permutedMatchesNumpyTranspose() {
        let t = Tensor(shape: [2, 3, 4], floats: ramp(24, scale: 1))
        let p = permuted(t, [2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        // p[k, i, j] = t[i, j, k]
        #expect(p.floats[(3 * 2 + 1) * 3 + 2] == t.floats[(1 * 3 + 2) * 4 + 3])
    }
}
