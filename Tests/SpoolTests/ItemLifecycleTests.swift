import Foundation
import Testing
@testable import Spool

/// Every command from every state: the allowed ones and what they change,
/// and the refused ones, which must leave the item untouched.
@Suite struct ItemLifecycleTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func item(_ state: ItemState, owner: String? = nil, expires: Date? = nil, retryAt: Date? = nil) -> ItemLifecycle {
        ItemLifecycle(state: state, size: 1000, ackedOffset: 0, attempts: 1, retryAt: retryAt,
                      leaseOwner: owner, leaseExpires: expires)
    }

    func expectRefused(_ start: ItemLifecycle, _ command: ItemLifecycle.Command,
                       _ code: SpoolError.Code = .invalidTransition) {
        var l = start
        #expect(throws: SpoolError.self) { try l.apply(command) }
        do {
            try l.apply(command)
        } catch {
            #expect(error.code == code, "\(command) from \(start.state)")
        }
        #expect(l == start, "a refused command must not change the item")
    }

    // MARK: claim

    @Test func claimQueued() throws {
        var l = item(.queued)
        let until = now.addingTimeInterval(60)
        let o = try l.apply(.claim(owner: "daemon", until: until, now: now))
        #expect(o.from == .queued && o.to == .uploading && o.recordsEvent)
        #expect(l.state == .uploading && l.leaseOwner == "daemon" && l.leaseExpires == until && l.attempts == 2)
    }

    @Test func claimFailedWhenRetryIsDue() throws {
        var l = item(.failed, retryAt: now)
        try l.apply(.claim(owner: "sync", until: now.addingTimeInterval(5), now: now))
        #expect(l.state == .uploading && l.retryAt == nil && l.leaseOwner == "sync")
    }

    @Test func claimFailedBeforeRetryIsRefused() {
        expectRefused(item(.failed, retryAt: now.addingTimeInterval(1)), .claim(owner: "a", until: now, now: now))
    }

    @Test func claimFailedWithoutRetryIsRefused() {
        expectRefused(item(.failed), .claim(owner: "a", until: now, now: now))
    }

    @Test func claimUploadingWithLiveLeaseIsRefused() {
        expectRefused(item(.uploading, owner: "a", expires: now.addingTimeInterval(1)),
                      .claim(owner: "b", until: now.addingTimeInterval(60), now: now), .leaseLost)
    }

    @Test func claimUploadingWithExpiredLeaseTakesOver() throws {
        var l = item(.uploading, owner: "dead", expires: now.addingTimeInterval(-1))
        let o = try l.apply(.claim(owner: "b", until: now.addingTimeInterval(60), now: now))
        #expect(l.leaseOwner == "b" && l.attempts == 2)
        #expect(o.detail.contains("dead"))
    }

    @Test(arguments: [ItemState.uploaded, .held])
    func claimTerminalOrHeldIsRefused(_ state: ItemState) {
        expectRefused(item(state), .claim(owner: "a", until: now, now: now))
    }

    // MARK: lease-bound updates

    @Test func renewExtendsOnlyTheOwnersLease() throws {
        var l = item(.uploading, owner: "a", expires: now)
        let o = try l.apply(.renew(owner: "a", until: now.addingTimeInterval(30)))
        #expect(l.leaseExpires == now.addingTimeInterval(30) && !o.recordsEvent)
        expectRefused(l, .renew(owner: "b", until: now), .leaseLost)
        expectRefused(item(.queued), .renew(owner: "a", until: now))
    }

    @Test func uploadURLResetsOffset() throws {
        var l = item(.uploading, owner: "a")
        l.ackedOffset = 400
        try l.apply(.uploadURL("https://hub/files/1", owner: "a"))
        #expect(l.uploadURL == "https://hub/files/1" && l.ackedOffset == 0)
        try l.apply(.uploadURL(nil, owner: nil))
        #expect(l.uploadURL == nil)
        expectRefused(l, .uploadURL("x", owner: "b"), .leaseLost)
        for state in [ItemState.queued, .uploaded, .failed, .held] {
            expectRefused(item(state), .uploadURL("x", owner: nil))
        }
    }

    /// A DICOM object is longer than the JPEG it wraps: offsets count in
    /// the upload's length, and forgetting the URL forgets the length.
    @Test func anUploadLongerThanTheFileCountsInItsOwnLength() throws {
        var l = item(.uploading, owner: "a", expires: now)
        expectRefused(l, .progress(offset: 1500, owner: "a"), .invalidInput)
        try l.apply(.uploadURL("https://hub/files/1", owner: "a", length: 1600))
        #expect(l.uploadLength == 1600 && l.uploadSize == 1600)
        try l.apply(.progress(offset: 1500, owner: "a"))
        expectRefused(l, .progress(offset: 1601, owner: "a"), .invalidInput)
        try l.apply(.uploaded(owner: "a", awaitingReceipt: true))
        #expect(l.ackedOffset == 1600)
        try l.apply(.resend(reason: "lost"))
        #expect(l.uploadLength == nil && l.ackedOffset == 0)
        var same = item(.uploading, owner: "a", expires: now)
        try same.apply(.uploadURL("u", owner: "a", length: 1000))
        #expect(same.uploadLength == nil, "the file's own length is not stored twice")
    }

    @Test func progressWithinSize() throws {
        var l = item(.uploading, owner: "a")
        let o = try l.apply(.progress(offset: 1000, owner: "a"))
        #expect(l.ackedOffset == 1000 && !o.recordsEvent && l.state == .uploading)
        expectRefused(l, .progress(offset: 1001, owner: "a"), .invalidInput)
        expectRefused(l, .progress(offset: -1, owner: "a"), .invalidInput)
        expectRefused(l, .progress(offset: 10, owner: "b"), .leaseLost)
        for state in [ItemState.queued, .uploaded, .failed, .held] {
            expectRefused(item(state), .progress(offset: 0, owner: nil))
        }
    }

    @Test func uploadedCompletesAndClearsLease() throws {
        var l = item(.uploading, owner: "a", expires: now)
        l.lastError = "earlier timeout"
        try l.apply(.uploaded(owner: "a", awaitingReceipt: false))
        #expect(l.state == .uploaded && l.ackedOffset == 1000 && l.leaseOwner == nil && l.lastError == nil)
        #expect(!l.awaitingReceipt)
        expectRefused(item(.uploading, owner: "a"), .uploaded(owner: "b", awaitingReceipt: false), .leaseLost)
        for state in [ItemState.queued, .uploaded, .received, .failed, .held] {
            expectRefused(item(state), .uploaded(owner: nil, awaitingReceipt: true))
        }
    }

    // MARK: receipts

    func awaiting() throws -> ItemLifecycle {
        var l = item(.uploading, owner: "a", expires: now)
        l.uploadURL = "http://hub/files/1"
        try l.apply(.uploaded(owner: "a", awaitingReceipt: true))
        #expect(l.state == .uploaded && l.awaitingReceipt)
        return l
    }

    @Test func receiptMakesAnAwaitingItemReceived() throws {
        var l = try awaiting()
        let o = try l.apply(.received(detail: "filed in the PACS"))
        #expect(l.state == .received && !l.awaitingReceipt && o.detail.contains("PACS"))
        // Terminal: nothing moves it on.
        for command: ItemLifecycle.Command in [.claim(owner: "a", until: now, now: now), .received(detail: "again"),
                                               .resend(reason: "x"), .hold(reason: "x"), .release(owner: nil),
                                               .fail(error: "x", retryAt: nil, owner: nil), .fileMissing] {
            expectRefused(l, command)
        }
    }

    @Test func onlyAnItemWaitingForItsReceiptIsReceivedOrResent() throws {
        // Sent to a hub that gives no receipts: terminal as `uploaded`.
        var plain = item(.uploading, owner: "a", expires: now)
        try plain.apply(.uploaded(owner: "a", awaitingReceipt: false))
        expectRefused(plain, .received(detail: "x"))
        expectRefused(plain, .resend(reason: "x"))
        expectRefused(plain, .hold(reason: "x"))
        for state in [ItemState.queued, .uploading, .failed, .held] {
            expectRefused(item(state, owner: "a"), .received(detail: "x"))
            expectRefused(item(state, owner: "a"), .resend(reason: "x"))
        }
    }

    @Test func aReceiptByStickEndsTheItemWhateverItWasDoing() throws {
        for state in [ItemState.queued, .uploading, .failed, .held] {
            var l = item(state, owner: "a", expires: now)
            let o = try l.apply(.receivedElsewhere(detail: "receipt on USB stick"))
            #expect(l.state == .received && o.from == state && o.detail.contains("USB stick"))
            #expect(l.leaseOwner == nil && l.retryAt == nil && !l.awaitingReceipt)
            // An uploader that still thinks it holds the item is stopped.
            expectRefused(l, .progress(offset: 1, owner: "a"))
        }
        var uploaded = try awaiting()
        try uploaded.apply(.receivedElsewhere(detail: "stick"))
        #expect(uploaded.state == .received)
        // Already received: refused, so a second import of the same receipts changes nothing.
        expectRefused(uploaded, .receivedElsewhere(detail: "again"))
    }

    @Test func aLostUploadIsSentAgainFromScratch() throws {
        var l = try awaiting()
        try l.apply(.resend(reason: "the hub lost it"))
        #expect(l.state == .queued && l.uploadURL == nil && l.ackedOffset == 0 && !l.awaitingReceipt)
        #expect(l.lastError == "the hub lost it")
        try l.apply(.claim(owner: "b", until: now.addingTimeInterval(60), now: now))
        #expect(l.state == .uploading)
    }

    @Test func aRefusedUploadIsHeldAndItsReleaseStartsANewUpload() throws {
        var l = try awaiting()
        try l.apply(.hold(reason: "the hub refused to file it"))
        #expect(l.state == .held && l.uploadURL == nil && !l.awaitingReceipt)
        try l.apply(.release(owner: nil))
        #expect(l.state == .queued && l.uploadURL == nil)
    }

    // MARK: fail, hold, release, missing file

    @Test func failFromUploadingAndQueued() throws {
        var l = item(.uploading, owner: "a", expires: now)
        try l.apply(.fail(error: "timeout", retryAt: now, owner: "a"))
        #expect(l.state == .failed && l.lastError == "timeout" && l.retryAt == now && l.leaseOwner == nil)
        var q = item(.queued)
        try q.apply(.fail(error: "unreadable", retryAt: nil, owner: nil))
        #expect(q.state == .failed && q.retryAt == nil)
        expectRefused(item(.uploading, owner: "a"), .fail(error: "x", retryAt: nil, owner: "b"), .leaseLost)
        for state in [ItemState.uploaded, .failed, .held] {
            expectRefused(item(state), .fail(error: "x", retryAt: nil, owner: nil))
        }
    }

    @Test(arguments: [ItemState.queued, .uploading, .failed])
    func holdFromPendingStates(_ state: ItemState) throws {
        var l = item(state, owner: state == .uploading ? "a" : nil, retryAt: state == .failed ? now : nil)
        try l.apply(.hold(reason: "hub answered 413"))
        #expect(l.state == .held && l.lastError == "hub answered 413" && l.leaseOwner == nil && l.retryAt == nil)
    }

    @Test(arguments: [ItemState.uploaded, .received, .held])
    func holdRefused(_ state: ItemState) {
        expectRefused(item(state), .hold(reason: "x"))
    }

    @Test(arguments: [ItemState.held, .failed])
    func releaseBackToQueue(_ state: ItemState) throws {
        var l = item(state, retryAt: state == .failed ? now.addingTimeInterval(600) : nil)
        try l.apply(.release(owner: nil))
        #expect(l.state == .queued && l.retryAt == nil)
    }

    @Test func releaseUploadingNeedsTheOwner() throws {
        var l = item(.uploading, owner: "a", expires: now)
        expectRefused(l, .release(owner: "b"), .leaseLost)
        try l.apply(.release(owner: "a"))
        #expect(l.state == .queued && l.leaseOwner == nil && l.attempts == 1)
    }

    @Test(arguments: [ItemState.queued, .uploaded, .received])
    func releaseRefused(_ state: ItemState) {
        expectRefused(item(state), .release(owner: nil))
    }

    @Test(arguments: [ItemState.queued, .uploading, .failed, .held])
    func fileMissingFailsWithoutRetry(_ state: ItemState) throws {
        var l = item(state, owner: state == .uploading ? "a" : nil, retryAt: now)
        let o = try l.apply(.fileMissing)
        #expect(l.state == .failed && l.retryAt == nil && l.leaseOwner == nil)
        #expect(o.detail.contains("MISSING"))
        // Not claimable until a person releases it.
        expectRefused(l, .claim(owner: "a", until: now, now: now.addingTimeInterval(86400)))
    }

    @Test func fileMissingAfterUploadIsRefused() {
        expectRefused(item(.uploaded), .fileMissing)
        expectRefused(item(.received), .fileMissing)
    }
}
