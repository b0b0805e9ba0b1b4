import FerryConformance
import Foundation

// ferry-conformance: runs the ONNX backend node tests and compares with the manifest.
//
//   swift run ferry-conformance [--manifest FILE] [--update] [--only SUBSTRING]
//
// Prints passing / total per category, the cases that pass but are not listed in the manifest,
// and listed cases that fail. --update rewrites the manifest: every passing case under [pass],
// every other case under [fail] with its one-line reason. Cases run in child processes (in
// chunks), so that a kernel that traps fails its case instead of the run. Exit status 1 when a
// listed case fails.

let arguments = Array(CommandLine.arguments.dropFirst())

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(2)
}

guard let root = Conformance.dataRoot() else {
    fail("no ONNX test data: install libonnx-testdata (tools/setup.sh) or set FERRY_ONNX_TESTDATA")
}

// Child mode: run the named cases, one result line each, flushed as it goes.
if arguments.first == "--run-cases" {
    // Unbuffered, so that the parent knows which case a crash happened in.
    func report(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
    for id in arguments.dropFirst() {
        guard let c = Conformance.findCase(id, root: root) else { report("FAIL\t\(id)\tno such case"); continue }
        if let reason = Conformance.run(c) { report("FAIL\t\(id)\t\(reason)") } else { report("PASS\t\(id)") }
    }
    exit(0)
}

var manifestPath = "Tests/FerryONNXTests/conformance.txt"
var update = false
var only: String?
var iterator = arguments.makeIterator()
while let a = iterator.next() {
    switch a {
    case "--manifest":
        guard let v = iterator.next() else { fail("--manifest needs a file") }
        manifestPath = v
    case "--update": update = true
    case "--only":
        guard let v = iterator.next() else { fail("--only needs a substring") }
        only = v
    default: fail("unknown argument '\(a)' (--manifest FILE, --update, --only SUBSTRING)")
    }
}

let manifest: ConformanceManifest
if let text = try? String(contentsOfFile: manifestPath, encoding: .utf8) {
    do { manifest = try ConformanceManifest(text: text) } catch { fail("\(manifestPath): \(error)") }
} else {
    manifest = ConformanceManifest()
}

var cases = Conformance.cases(root: root)
if let only { cases = cases.filter { $0.id.contains(only) } }

/// Runs cases in child processes; a child that dies fails the case it was on.
func runIsolated(_ ids: [String]) -> [String: String?] {
    var results: [String: String?] = [:]
    var pending = ids[...]
    let me = URL(fileURLWithPath: CommandLine.arguments[0]).path
    while !pending.isEmpty {
        let chunk = Array(pending.prefix(64))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: me)
        process.arguments = ["--run-cases"] + chunk
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { fail("cannot start \(me): \(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var done = 0
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
            guard fields.count >= 2 else { continue }
            results[fields[1]] = fields[0] == "PASS" ? .some(nil) : .some(fields.count > 2 ? fields[2] : "failed")
            done += 1
        }
        if done < chunk.count {
            // The child died on chunk[done].
            results[chunk[done]] = .some("crashed (status \(process.terminationStatus)) while running the case")
            done += 1
        }
        pending = pending.dropFirst(done)
    }
    return results
}

let start = Date()
let results = runIsolated(cases.map(\.id))
let listed = Set(manifest.passing)

var lines: [String] = []
var totalPass = 0
for category in Conformance.categories {
    let inCategory = cases.filter { $0.category == category }
    let passing = inCategory.filter { results[$0.id] ?? nil == nil }.count
    totalPass += passing
    lines.append("| \(category) | \(passing) / \(inCategory.count) |")
}
print("| category | passing / total |\n|---|---|")
print(lines.joined(separator: "\n"))
print("| all | \(totalPass) / \(cases.count) |")
print(String(format: "(%.1f s)", Date().timeIntervalSince(start)))

let newlyPassing = cases.filter { results[$0.id] ?? nil == nil && !listed.contains($0.id) }.map(\.id)
let broken = cases.filter { listed.contains($0.id) && (results[$0.id] ?? nil) != nil }
if !newlyPassing.isEmpty {
    print("\npassing but not in \(manifestPath) (\(newlyPassing.count)):")
    for id in newlyPassing { print("  \(id)") }
}
if !broken.isEmpty {
    print("\nlisted in \(manifestPath) but failing (\(broken.count)):")
    for c in broken { print("  \(c.id): \((results[c.id] ?? nil) ?? "")") }
}

if update {
    var updated = ConformanceManifest()
    // Cases outside --only keep their entries.
    let ran = Set(cases.map(\.id))
    let all = Conformance.cases(root: root)
    var old: [String: String] = [:]
    for e in manifest.excluded { old[e.id] = e.reason }
    for c in all {
        if ran.contains(c.id) {
            if let reason = results[c.id] ?? nil {
                updated.excluded.append((c.id, Conformance.explained[c.id] ?? reason))
            } else {
                updated.passing.append(c.id)
            }
        } else if listed.contains(c.id) {
            updated.passing.append(c.id)
        } else {
            updated.excluded.append((c.id, old[c.id] ?? "not run yet"))
        }
    }
    do { try updated.text.write(toFile: manifestPath, atomically: true, encoding: .utf8) } catch { fail("cannot write \(manifestPath): \(error)") }
    print("\nwrote \(manifestPath): \(updated.passing.count) passing, \(updated.excluded.count) left out with reasons")
}
exit(broken.isEmpty ? 0 : 1)
