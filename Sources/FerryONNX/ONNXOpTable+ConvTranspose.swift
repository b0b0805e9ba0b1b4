import FerryIR

extension ONNXOpTable {
    /// Padding from `pads`, `auto_pad` or `output_shape`. An output_shape (or SAME padding,
    /// whose output is input * stride) fixes the total padding as the ONNX documentation
    /// gives it: total = stride (in - 1) + output_padding + (kernel - 1) dilation + 1 - out,
    /// split with the odd cell at the end for SAME_UPPER, at the beginning otherwise; a
    /// negative total (the output is larger than the scattered one) becomes output padding.
    static func ConvTranspose(_ n: ONNXNode) throws {
        let x = try n.input(0), w = try n.input(1)
        let xt = try n.inputType(0), wt = try n.inputType(1)
        guard wt.shape.rank >= 3, xt.shape.rank == wt.shape.rank else {
            throw FerryError("ConvTranspose input \(xt.shape) and weight \(wt.shape) ranks do not fit")
        }
        let spatial = wt.shape.rank - 2
        let kernel = try n.ints("kernel_shape") ?? wt.shape.dims.dropFirst(2).map { d in
            guard let v = d.value else { throw FerryError("ConvTranspose weight \(wt.shape) needs known kernel sizes") }
            return v
        }
        let strides = try n.ints("strides") ?? Array(repeating: 1, count: spatial)
        let dilations = try n.ints("dilations") ?? Array(repeating: 1, count: spatial)
        var outputPadding = try n.ints("output_padding") ?? Array(repeating: 0, count: spatial)
        guard kernel.count == spatial, strides.count == spatial, dilations.count == spatial, outputPadding.count == spatial else {
            throw FerryError("ConvTranspose kernel_shape \(kernel), strides \(strides), dilations \(dilations) and "
                             + "output_padding \(outputPadding) should each have \(spatial) values")
        }
        let autoPad = try n.string("auto_pad", "NOTSET")
        guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else {
            throw FerryError("ConvTranspose auto_pad '\(autoPad)' is not an ONNX value")
        }
        var pads = autoPad == "NOTSET" ? try n.ints("pads") ?? Array(repeating: 0, count: 2 * spatial)
                                       : Array(repeating: 0, count: 2 * spatial)
        guard pads.count == 2 * spatial else { throw FerryError("ConvTranspose pads \(pads) should have \(2 * spatial) values") }
        func inputSize(_ i: Int) throws -> Int {
            guard let size = xt.shape[i + 2].value else {
                throw FerryError("ConvTranspose with output_shape or auto_pad \(autoPad) needs known spatial sizes, input is \(xt.shape)")
            }
            return size
        }
        var wanted = try n.ints("output_shape")
        if wanted == nil, autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            wanted = try (0..<spatial).map { try inputSize($0) * strides[$0] }
        }
        if var wanted {
            if wanted.count == spatial + 2 { wanted = Array(wanted.dropFirst(2)) }
            guard wanted.count == spatial else {
                throw FerryError("ConvTranspose output_shape \(wanted) does not match \(spatial) spatial dimensions")
            }
            pads = Array(repeating: 0, count: 2 * spatial)
            for i in 0..<spatial {
                let total = strides[i] * (try inputSize(i) - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1 - wanted[i]
                if total < 0 {
                    outputPadding[i] -= total
                } else if autoPad == "SAME_UPPER" {
                    pads[i] = total / 2
                    pads[i + spatial] = total - total / 2
                } else {
                    pads[i] = total - total / 2
                    pads[i + spatial] = total / 2
                }
            }
        }
        let attributes = ConvTransposeAttributes(kernelShape: kernel, strides: strides, pads: pads, dilations: dilations,
                                                 group: try n.int("group", 1), outputPadding: outputPadding)
        try n.emit(.convTranspose(attributes), [x, w] + (n.optionalInput(2).map { [$0] } ?? []))
    }
}
