// Damaged versions of the seed files (a word dropped, a line cut short, a character changed):
// the parser must never crash, must point every diagnostic at a real line, in order, and must
// reject damage that breaks a keyword it reads.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class ConfigMutationTests: XCTestCase {
    /// Every variant of `lines` with one line changed by `mutate`.
    private func variants(of lines: [String], _ mutate: (String) -> [String]) -> [[String]] {
        var result: [[String]] = []
        for (index, line) in lines.enumerated() {
            for replacement in mutate(line) {
                var copy = lines
                copy[index] = replacement
                result.append(copy)
            }
        }
        return result
    }

    private func damagedSeeds() throws -> [(name: String, lines: [String])] {
        var damaged: [(String, [String])] = []
        for name in ConfigFixtures.seedFileNames {
            let text = try String(contentsOfFile: ConfigFixtures.seedPath(name), encoding: .utf8)
            let lines = ConfigParser.State.lines(of: text)
            let mutations: [(String) -> [String]] = [
                { line in
                    let words = line.split(separator: " ")
                    return words.indices.map { index in
                        var copy = words
                        copy.remove(at: index)
                        return "  " + copy.joined(separator: " ")
                    }
                },
                { line in [String(line.prefix(line.count / 2))] },
                { line in ["\(line) \"", "\(line) {", "\(line) }", "\(line)(", "x\(line)", "\(line)x"] },
            ]
            for mutate in mutations {
                for variant in variants(of: lines, mutate) { damaged.append((name, variant)) }
            }
        }
        return damaged
    }

    func testDamagedSeedsNeverCrashAndEveryDiagnosticPointsAtARealLineInOrder() throws {
        let damaged = try damagedSeeds()
        XCTAssertGreaterThan(damaged.count, 1000)
        var failures = 0
        for (name, lines) in damaged {
            let result = ConfigParser.parse(text: lines.joined(separator: "\n"), file: name, environment: [:])
            let diagnostics: [ConfigDiagnostic]
            switch result {
            case .success(let config): diagnostics = config.warnings
            case .failure(let error):
                failures += 1
                XCTAssertFalse(error.diagnostics.isEmpty, name)
                diagnostics = error.diagnostics
                XCTAssertEqual(error.diagnostics.map(\.line), error.diagnostics.map(\.line).sorted(), name)
            }
            for diagnostic in diagnostics {
                XCTAssertTrue((1...lines.count).contains(diagnostic.line), "\(diagnostic) in \(name)")
                XCTAssertEqual(diagnostic.file, name)
                XCTAssertFalse(diagnostic.message.isEmpty)
            }
        }
        XCTAssertGreaterThan(failures, damaged.count / 2, "most damage must be caught")
    }

    func testAppendingGarbageToAnyKeywordLineIsAnError() throws {
        let text = try String(contentsOfFile: ConfigFixtures.seedPath("seed-full.cfg"), encoding: .utf8)
        let lines = ConfigParser.State.lines(of: text)
        for (index, line) in lines.enumerated() {
            let words = line.split(separator: " ")
            // `defaults <word>` is a valid name; every other line has all the words it can take.
            guard let first = words.first, !first.hasPrefix("#"), first != "defaults" else { continue }
            var copy = lines
            copy[index] = line + " bogus-extra-word"
            let result = ConfigParser.parse(text: copy.joined(separator: "\n"), file: "seed-full.cfg", environment: [:])
            guard case .failure(let error) = result else {
                XCTFail("line \(index + 1) '\(line)' accepted a trailing 'bogus-extra-word'")
                continue
            }
            XCTAssertTrue(error.diagnostics.contains { $0.line == index + 1 }, "\(error)")
        }
    }
}
