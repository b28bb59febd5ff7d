import Foundation
import Testing
@testable import Station

/// After a power cut the item that was uploading is leased to a process that
/// no longer exists; the next process takes it back at once.
@Suite struct AbandonedLeaseTests {
    @Test func onlyDeadProcessesOfThisHostLoseTheirLease() {
        let running: Set<Int32> = [100]
        let alive = { (pid: Int32) in running.contains(pid) }
        #expect(UploadWorker.ownerIsGone("station-1/4242", host: "station-1", isRunning: alive))
        #expect(!UploadWorker.ownerIsGone("station-1/100", host: "station-1", isRunning: alive))
        #expect(!UploadWorker.ownerIsGone("laptop/4242", host: "station-1", isRunning: alive), "another host's claimant waits for its lease")
        #expect(!UploadWorker.ownerIsGone("station-1/x", host: "station-1", isRunning: alive))
        #expect(!UploadWorker.ownerIsGone("station-1", host: "station-1", isRunning: alive))
        #expect(!UploadWorker.ownerIsGone("station-1/0", host: "station-1", isRunning: alive))
        #expect(UploadWorker.ownerIsGone("a/b/77", host: "a/b", isRunning: alive), "the pid follows the last slash")
    }

    @Test func processRunsAsksTheKernel() {
        #expect(UploadWorker.processRuns(getpid()))
        // A child that has exited and been reaped no longer runs.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try? p.run()
        p.waitUntilExit()
        #expect(!UploadWorker.processRuns(p.processIdentifier))
    }
}
