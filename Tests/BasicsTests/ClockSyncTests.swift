import Foundation
import Testing
@testable import Basics

/// `ClockSync` against the kernel itself, asked by a small C program
/// compiled here with the system's compiler (`<sys/timex.h>`, the real
/// `struct timex`), so the raw-buffer call cannot drift from what the
/// kernel says.
@Suite struct ClockSyncTests {
    @Test func agreesWithTheKernelsOwnAnswer() throws {
        let dir = NSTemporaryDirectory() + "clocksync-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = dir + "/t.c", binary = dir + "/t"
        try """
            #include <stdio.h>
            #include <sys/timex.h>
            int main(void) {
                struct timex tx = {0};
                int state = adjtimex(&tx);
                if (state < 0) return 2;
                printf("%d %d\\n", state, (tx.status & STA_UNSYNC) != 0);
                return 0;
            }
            """.write(toFile: source, atomically: true, encoding: .utf8)
        let cc = try run("/usr/bin/env", ["cc", "-o", binary, source])
        try #require(cc.status == 0, "cc is needed (`make deps-test` installs gcc): \(cc.output)")
        let answer = try run(binary, [])
        let fields = answer.output.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(answer.status == 0 && fields.count == 2, "adjtimex failed: \(answer.output)")
        let kernelSynchronized = fields[0] != 5 && fields[1] == 0
        #expect(ClockSync.isSynchronized() == kernelSynchronized)
    }

    func run(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
