import Spool
import Testing
@testable import Station

/// Which items are recompressed for the link: a plain decision, alone.
@Suite struct UploadPreparationPolicyTests {
    let on = UploadPreparation.Policy(enabled: true)

    func decide(_ p: UploadPreparation.Policy, kind: ItemKind = .image, size: Int64 = 500_000, hub: Bool = true,
                failed: Bool = false, resuming: Int64? = nil, plain: Int64 = 500_000) -> Bool {
        p.recompresses(kind: kind, size: size, hubRebuilds: hub, failedBefore: failed, resumingLength: resuming, plainLength: plain)
    }

    @Test func anImageToAHubThatRebuilds() {
        #expect(decide(on))
        #expect(!decide(UploadPreparation.Policy(enabled: false)), "uplink.recompress = false")
        #expect(!decide(on, hub: false), "a plain tus server")
    }

    @Test func previewsHealthReportsAndSmallFilesGoAsTheyAre() {
        #expect(!decide(on, kind: .preview))
        #expect(!decide(on, kind: .health))
        #expect(!decide(on, size: on.minSize - 1, plain: on.minSize - 1))
        #expect(!decide(on, size: Int64(on.limits.maxBytes) + 1), "beyond the memory bound")
    }

    /// An upload resumes as it began: the hub's upload length tells which.
    @Test func aResumedUploadKeepsItsForm() {
        #expect(!decide(on, resuming: 500_000, plain: 500_000), "begun as the file itself")
        #expect(decide(on, resuming: 410_000, plain: 500_000), "begun recompressed")
        // After a restart the process does not know the hub yet; the upload
        // the hub holds is still the recompressed body (the VM power-cut
        // campaign found a second copy on the hub without this).
        #expect(decide(on, hub: false, resuming: 410_000, plain: 500_000))
        #expect(decide(UploadPreparation.Policy(enabled: false), hub: false, resuming: 410_000, plain: 500_000))
        #expect(!decide(on, hub: true, resuming: 500_000, plain: 500_000))
    }

    /// A recompressed upload the hub discarded goes as it is next time.
    @Test func afterTheHubDiscardedOneTheFileGoesAsItIs() {
        #expect(!decide(on, failed: true))
    }
}
