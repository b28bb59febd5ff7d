import Foundation
import Testing
@testable import Basics

@Suite struct BlockingTests {
    /// A shutdown cancels the tasks that record an upload's end; their
    /// writes must still run (NIO's runIfActive would drop them).
    @Test func workOfACancelledTaskStillRuns() async throws {
        let ran = Locked(false)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await Blocking.run { () -> Bool in
                ran.withLock { $0 = true }
                return true
            }
        }
        #expect(await task.value)
        #expect(ran.withLock { $0 })
    }

    @Test func typedErrorsComeBackUnchanged() async {
        struct Boom: Error, Equatable { var n: Int }
        do {
            _ = try await Blocking.run { () throws(Boom) -> Int in throw Boom(n: 7) }
            Issue.record("no error")
        } catch {
            #expect(error == Boom(n: 7))
        }
    }

    @Test func theWorkRunsOffTheCallersThread() async {
        let name = await Blocking.run { Thread.current.name ?? "" }
        #expect(name.contains("TP-"), "pool thread, got \(name)")
    }
}

@Suite struct SyscallTests {
    @Test func aFailedCallNamesFunctionPathAndErrno() {
        do {
            try Syscall.call("open", "/nonexistent/x") { open("/nonexistent/x", O_RDONLY) }
            Issue.record("opened a missing file")
        } catch {
            #expect(error.function == "open")
            #expect(error.errno == .noSuchFileOrDirectory)
            #expect(error.description == "open(/nonexistent/x) failed: No such file or directory")
        }
    }

    @Test func failuresCarryTheStepForAPerson() {
        enum Code: String, FailureCode { case disk }
        let e = Failure<Code>(.disk, "the disk is full", nextStep: "free space", function: "write", errno: ENOSPC, path: "/x")
        #expect(e.description == "the disk is full — free space")
        #expect(e.errno == ENOSPC)
        #expect(e.cause?.description == "write(/x) failed: No space left on device")
    }
}

@Suite struct WireTests {
    @Test func hexAndConstantTimeCompare() {
        #expect([0x00, 0x0f, 0xa5, 0xff].hex == "000fa5ff")
        #expect(Digest.constantTimeEquals("secret", "secret"))
        #expect(!Digest.constantTimeEquals("secret", "secreT"))
        #expect(!Digest.constantTimeEquals("secret", "secret2"))
    }

    @Test func metadataRoundTripsAndRefusesBrokenHeaders() throws {
        let pairs = [("filename", "lesión 1.jpg"), ("case", "40123456"), ("empty", "")]
        let header = TusWire.encodeMetadata(pairs)
        #expect(header.hasPrefix("filename bGVzacOzbiAxLmpwZw==,case "))
        #expect(try TusWire.parseMetadata(header).get() == Dictionary(uniqueKeysWithValues: pairs))
        guard case .failure = TusWire.parseMetadata("a YQ==,a Yg==") else { Issue.record("accepted a repeated key"); return }
    }

    @Test func httpDatesBothWays() {
        let d = Date(timeIntervalSince1970: 784_111_777)
        #expect(HTTPDate.format(d) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == d)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT\u{301}") == nil, "non-ASCII is refused before DateFormatter")
    }

    @Test func exitStatusesAreSysexits() {
        #expect(ExitStatus.usage.rawValue == 64)
        #expect(ExitStatus.temporaryFailure.rawValue == 75)
        #expect(ExitStatus.configuration.rawValue == 78)
    }
}
