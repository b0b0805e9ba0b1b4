// FerryCaffe: the Caffe importer and exporter live here (open issues); for now the module holds the generated caffe.pb.swift.
