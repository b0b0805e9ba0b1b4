// FerryCaffe: the Caffe importer (CaffeImporter.swift; one builder per layer type in Layers/,
// registered in LayerTable.swift) and the generated caffe.pb.swift.
