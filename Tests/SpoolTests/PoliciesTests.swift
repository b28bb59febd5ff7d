import Foundation
import Testing
@testable import Spool

@Suite struct DiskGuardTests {
    let g = DiskGuard(minFree: 200)

    @Test func acceptsWhenEnoughIsLeft() {
        #expect(g.check(available: 1000, needed: 800) == .accept)
    }

    @Test func refusesWithTheShortfall() {
        #expect(g.check(available: 1000, needed: 801) == .refuse(shortBy: 1))
        #expect(g.check(available: 100, needed: 500) == .refuse(shortBy: 600))
    }

    @Test func refusalMessageNamesTheSettingAndSaysNothingWasWritten() {
        let e = DiskGuard(minFree: 200 << 20).refusal(available: 210 << 20, needed: 20 << 20, directory: "/var/lib/t/spool")
        #expect(e.code == .insufficientSpace)
        #expect(e.message.contains("spool.min_free") && e.message.contains("200.0 MiB") && e.message.contains("/var/lib/t/spool"))
        #expect(e.nextStep?.contains("nothing was written") == true)
    }
}

@Suite struct RetentionPlannerTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let day = 86400.0

    func c(_ id: Int64, daysAgo: Double, size: Int64 = 100) -> RetentionPlanner.Candidate {
        .init(id: id, size: size, uploadedAt: now.addingTimeInterval(-daysAgo * day))
    }

    @Test func deletesOnlyWhatIsPastTheKeepTime() {
        let p = RetentionPlanner(keepUploaded: 7 * day)
        #expect(p.plan([c(1, daysAgo: 8), c(2, daysAgo: 6.9), c(3, daysAgo: 7)], now: now) == [1, 3])
    }

    @Test func deletesOldestFirstWhenSpaceIsNeeded() {
        let p = RetentionPlanner(keepUploaded: 7 * day)
        let cs = [c(1, daysAgo: 1), c(2, daysAgo: 3), c(3, daysAgo: 2), c(4, daysAgo: 0.1)]
        #expect(p.plan(cs, now: now, bytesToFree: 150) == [2, 3])
        #expect(p.plan(cs, now: now, bytesToFree: 10_000) == [2, 3, 1, 4])
        #expect(p.plan(cs, now: now, bytesToFree: 0) == [])
    }
}
