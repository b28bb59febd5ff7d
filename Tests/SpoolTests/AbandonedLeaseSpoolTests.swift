import Foundation
import Testing
@testable import Spool

/// `releaseAbandonedLeases` on a real spool: the items of a claimant judged
/// gone go back to the queue with their upload URL and offset, others stay.
@Suite struct AbandonedLeaseSpoolTests {
    @Test func releasesOnlyTheGoneClaimantsItemsKeepingTheirProgress() throws {
        let s = Scratch()
        defer { s.cleanUp() }
        let spool = try s.open()
        for i in 0..<3 {
            _ = try spool.enqueue(imageData: bytes(1000 + i, seed: UInt8(i)), preview: nil, metadata: meta("C-\(i)"))
        }
        let dead = try #require(try spool.claimNext(owner: "host/111", leaseSeconds: 300))
        try spool.recordUploadURL(id: dead.id, url: "http://hub/files/abc", owner: "host/111")
        try spool.recordOffset(id: dead.id, offset: 500, owner: "host/111")
        let live = try #require(try spool.claimNext(owner: "host/222", leaseSeconds: 300))

        let released = try spool.releaseAbandonedLeases { $0 == "host/111" }
        #expect(released == [dead.id])
        let back = try #require(try spool.item(id: dead.id))
        #expect(back.state == .queued)
        #expect(back.uploadURL == "http://hub/files/abc")
        #expect(back.ackedOffset == 500)
        #expect(try spool.item(id: live.id)?.state == .uploading)
        // Claimed again at once, not when the 300 s lease would have run out.
        let again = try #require(try spool.claimNext(owner: "host/333", leaseSeconds: 300))
        #expect(again.id == dead.id)
        #expect(try spool.releaseAbandonedLeases { _ in false }.isEmpty)
        #expect(try spool.history(id: dead.id).contains { $0.detail.contains("given back unfinished by host/111") })
    }
}
