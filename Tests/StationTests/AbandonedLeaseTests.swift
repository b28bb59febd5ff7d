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

    /// After a reboot pids repeat: the claimant of an earlier boot is gone
    /// even when its pid now runs (the VM power-cut campaign saw the new
    /// daemon get its predecessor's pid and wait out the 300 s lease).
    @Test func aClaimantOfAnEarlierBootIsGoneWhateverRunsUnderItsPid() {
        let alive = { (_: Int32) in true }
        #expect(UploadWorker.ownerIsGone("station-1/100@boot-a", host: "station-1", bootID: "boot-b", isRunning: alive))
        #expect(!UploadWorker.ownerIsGone("station-1/100@boot-b", host: "station-1", bootID: "boot-b", isRunning: alive))
        #expect(UploadWorker.ownerIsGone("station-1/100@boot-b", host: "station-1", bootID: "boot-b", isRunning: { _ in false }))
        #expect(!UploadWorker.ownerIsGone("laptop/100@boot-a", host: "station-1", bootID: "boot-b", isRunning: alive),
                "another host's claimant waits for its lease")
        #expect(!UploadWorker.ownerIsGone("station-1/100@boot-a", host: "station-1", bootID: nil, isRunning: alive),
                "without a boot id of its own the pid decides")
        #expect(!UploadWorker.ownerIsGone("station-1/100", host: "station-1", bootID: "boot-b", isRunning: alive),
                "an owner written before boot ids were recorded is judged by its pid")
        #expect(!UploadWorker.ownerIsGone("station-1/x@boot-a", host: "station-1", bootID: "boot-b", isRunning: alive))
    }

    @Test func theDefaultOwnerNamesThisBoot() throws {
        let boot = try #require(UploadWorker.currentBootID(), "Linux has /proc/sys/kernel/random/boot_id")
        let owner = UploadWorker.defaultOwner()
        #expect(owner.hasSuffix("/\(getpid())@\(boot)"))
        #expect(!UploadWorker.ownerIsGone(owner, host: ProcessInfo.processInfo.hostName, isRunning: UploadWorker.processRuns))
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
