import CFerryCPU
import Foundation

/// `FERRY_TRACE_MEMORY=1`: after each phase of `ferry run` (import, optimization, reading inputs,
/// planning, running, writing outputs) one line on stderr with the process's resident memory
/// now and at its highest since the previous line, split into private pages (heap, mappings,
/// written library data) and file-backed ones (code), and the resident pages of malloc's main
/// heap (small blocks; larger ones have mappings of their own, see `returnLargeBuffersWhenFreed`).
///
/// The high-water mark is reset after each line (Linux's /proc/self/clear_refs), so that each
/// line's peak is its own phase's; the peak of a traced run as a whole (GNU time's) is then no
/// longer reliable: measure peaks with the trace off.
public enum MemoryTrace {
    static let enabled = ProcessInfo.processInfo.environment["FERRY_TRACE_MEMORY"].map { !$0.isEmpty && $0 != "0" } ?? false

    public static func mark(_ phase: String) {
        guard enabled else { return }
        var kilobytes: [String: Int] = [:]
        for line in procFile("status").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, ["VmRSS", "VmHWM", "RssAnon", "RssFile"].contains(String(parts[0])) else { continue }
            kilobytes[String(parts[0])] = parts[1].split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) }
        }
        // The heap's mapping is named [heap]; its Rss line follows a few lines below.
        let smaps = procFile("smaps").split(separator: "\n")
        if let start = smaps.firstIndex(where: { $0.hasSuffix("[heap]") }),
           let rss = smaps[(start + 1)...].prefix(8).first(where: { $0.hasPrefix("Rss:") }) {
            kilobytes["heap"] = rss.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { Int($0) }
        }
        func mb(_ key: String) -> Double { Double(kilobytes[key] ?? 0) * 1024 / 1e6 }
        var inUse = 0, free = 0, mapped = 0
        ferry_heap_blocks(&inUse, &free, &mapped)
        let line = "memory: " + phase.padding(toLength: 16, withPad: " ", startingAt: 0)
            + String(format: " resident %7.1f MB (private %7.1f, files %5.1f, heap %5.1f: blocks %5.1f, free %5.1f; mapped buffers %6.1f), highest since the last line %7.1f MB\n",
                     mb("VmRSS"), mb("RssAnon"), mb("RssFile"), mb("heap"), Double(inUse) / 1e6, Double(free) / 1e6,
                     Double(mapped) / 1e6, mb("VmHWM"))
        FileHandle.standardError.write(Data(line.utf8))
        // "5" resets the peak resident set size to the current one (Linux 4.0 and later).
        if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            handle.write(Data("5".utf8))
            try? handle.close()
        }
    }

    /// A /proc/self file read to its end (they report a size of 0, so read until nothing comes).
    private static func procFile(_ name: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/" + name) else { return "" }
        defer { try? handle.close() }
        var data = Data()
        while case let chunk = handle.readData(ofLength: 1 << 16), !chunk.isEmpty { data.append(chunk) }
        return String(decoding: data, as: UTF8.self)
    }
}
