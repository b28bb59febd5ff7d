import Foundation
import Testing
@testable import Uplink

private let hub = "https://hub.example.org/files/"
private let upload = "https://hub.example.org/files/abc"

private func verdict(_ kind: TusRequestKind, _ status: Int, _ headers: [String: String] = [:], body: String = "") -> TusVerdict {
    TusRules.verdict(for: kind, response: TusResponse(status: status, headers: headers, body: Array(body.utf8)),
                     requestURL: kind.isCreate ? hub : upload, hubURL: hub, now: Date(timeIntervalSince1970: 1_700_000_000))
}

extension TusRequestKind {
    var isCreate: Bool { if case .create = self { true } else { false } }
}

private let patch = TusRequestKind.patch(from: 100, sent: 50, length: 1000)
private let head = TusRequestKind.head(length: 1000, acknowledged: 100)
private let create = TusRequestKind.create(length: 1000, sent: 0)

@Suite struct TusRulesTests {
    @Test func headerLinesKeepOnlyTheFinalResponse() {
        let lines = ["HTTP/1.1 100 Continue\r\n", "X-Old: 1\r\n", "\r\n", "HTTP/1.1 204 No Content\r\n",
                     "Upload-Offset: 150\r\n", "tus-resumable:1.0.0\r\n", "\r\n"]
        let h = TusResponse.headers(fromLines: lines)
        #expect(h == ["upload-offset": "150", "tus-resumable": "1.0.0"])
    }

    @Test func capabilitiesFromOptions() throws {
        let r = TusResponse(status: 204, headers: ["Tus-Version": "1.0.0,0.2.2", "Tus-Extension": "creation, creation-with-upload,checksum",
                                                   "Tus-Max-Size": "1073741824", "Tus-Checksum-Algorithm": "md5,sha1"])
        let caps = try TusCapabilities.parse(r).get()
        #expect(caps.supportsCreationWithUpload)
        #expect(caps.maxSize == 1_073_741_824)
        #expect(caps.checksumAlgorithm == "sha1")
        let noChecksum = try TusCapabilities.parse(TusResponse(status: 204, headers: ["Tus-Version": "1.0.0", "Tus-Extension": "creation",
                                                                                      "Tus-Checksum-Algorithm": "sha256"])).get()
        #expect(noChecksum.checksumAlgorithm == nil, "an algorithm list without the checksum extension is not an offer")
    }

    @Test func capabilitiesRejectOtherVersionsAndMissingCreation() {
        guard case let .failure(e) = TusCapabilities.parse(TusResponse(status: 204, headers: ["Tus-Version": "0.2.2", "Tus-Extension": "creation"])) else {
            Issue.record("accepted a server without 1.0.0"); return
        }
        #expect(e.code == .configuration)
        guard case let .failure(e2) = TusCapabilities.parse(TusResponse(status: 204, headers: ["Tus-Version": "1.0.0"])) else {
            Issue.record("accepted a server without creation"); return
        }
        #expect(e2.message.contains("creation"))
        guard case let .failure(e3) = TusCapabilities.parse(TusResponse(status: 204, headers: ["Tus-Version": "1.0.0", "Tus-Extension": "creation", "Tus-Max-Size": "-5"])) else {
            Issue.record("accepted a negative Tus-Max-Size"); return
        }
        #expect(e3.code == .protocolViolation)
    }

    @Test func createResolvesRelativeLocation() {
        #expect(verdict(create, 201, ["Location": "/files/xyz", "Upload-Offset": "0"]) == .created(url: "https://hub.example.org/files/xyz", offset: 0))
        #expect(verdict(create, 201, ["Location": "xyz"]) == .created(url: "https://hub.example.org/files/xyz", offset: 0))
        #expect(verdict(.create(length: 1000, sent: 300), 201, ["Location": "/files/q", "Upload-Offset": "300"]) == .created(url: "https://hub.example.org/files/q", offset: 300))
    }

    @Test func createRefusesLocationOnAnotherHost() {
        guard case let .hold(reason) = verdict(create, 201, ["Location": "https://evil.example.com/files/xyz"]) else {
            Issue.record("followed a Location to another host"); return
        }
        #expect(reason.contains("evil.example.com"))
        guard case .hold = verdict(create, 201, ["Location": "http://hub.example.org/files/xyz"]) else {
            Issue.record("accepted a downgrade from https to http"); return
        }
    }

    @Test func createWithoutLocationOrWithOverclaimedOffsetIsAViolation() {
        guard case .violation = verdict(create, 201) else { Issue.record("accepted 201 without Location"); return }
        guard case .violation = verdict(.create(length: 1000, sent: 10), 201, ["Location": "/files/a", "Upload-Offset": "11"]) else {
            Issue.record("accepted more bytes than sent"); return
        }
        guard case .violation = verdict(create, 201, ["Location": "/files/a b"]) else { Issue.record("accepted a Location with a space"); return }
    }

    @Test func patchOffsetMustLieBetweenAcknowledgedAndSent() {
        #expect(verdict(patch, 204, ["Upload-Offset": "150"]) == .offset(150))
        #expect(verdict(patch, 204, ["Upload-Offset": "120"]) == .offset(120), "a hub may keep part of a chunk")
        guard case let .violation(m1) = verdict(patch, 204, ["Upload-Offset": "151"]) else { Issue.record("accepted offset past what was sent"); return }
        #expect(m1.contains("151"))
        guard case let .violation(m2) = verdict(patch, 204, ["Upload-Offset": "99"]) else { Issue.record("accepted offset below acknowledged"); return }
        #expect(m2.contains("99"))
        guard case .violation = verdict(patch, 204) else { Issue.record("accepted PATCH without offset"); return }
        guard case .violation = verdict(patch, 204, ["Upload-Offset": "+150"]) else { Issue.record("accepted a signed offset"); return }
        guard case .violation = verdict(patch, 204, ["Upload-Offset": "99999999999999999999999"]) else { Issue.record("accepted an overflowing offset"); return }
    }

    @Test func headOffsetChecks() {
        #expect(verdict(head, 200, ["Upload-Offset": "40", "Upload-Length": "1000"]) == .offset(40))
        #expect(verdict(head, 200, ["Upload-Offset": "40", "Upload-Length": "999"]) == .gone, "the URL belongs to another upload")
        guard case .violation = verdict(head, 200, ["Upload-Offset": "1001"]) else { Issue.record("accepted offset beyond length"); return }
    }

    @Test func everyStatusClass() {
        #expect(verdict(patch, 409) == .conflict)
        #expect(verdict(patch, 404) == .gone)
        #expect(verdict(patch, 410) == .gone)
        #expect(verdict(head, 404) == .gone)
        #expect(verdict(patch, 460) == .checksumMismatch)
        for status in [412, 413, 415] {
            guard case .hold = verdict(patch, status) else { Issue.record("\(status) did not hold"); continue }
        }
        guard case .hold = verdict(create, 404) else { Issue.record("404 on the creation endpoint is a configuration problem"); return }
        guard case .hold = verdict(create, 409) else { Issue.record("409 on create must not loop"); return }
        for status in [401, 403] {
            guard case .authFailed(status, _) = verdict(patch, status) else { Issue.record("\(status) not auth"); continue }
        }
        for status in [423, 429, 500, 502, 503] {
            guard case .retry = verdict(patch, status) else { Issue.record("\(status) not retried"); continue }
        }
        guard case let .hold(r) = verdict(patch, 307, ["Location": "https://other/"]) else { Issue.record("redirect followed"); return }
        #expect(r.contains("redirected"))
        guard case .hold = verdict(patch, 400, body: "bad") else { Issue.record("400 retried"); return }
    }

    @Test func retryAfterSecondsDatesAndNonsense() {
        #expect(verdict(patch, 503, ["Retry-After": "7"]) == .retry(retryAfter: 7, "the hub answered 503"))
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(TusRules.parseRetryAfter("Tue, 14 Nov 2023 22:15:20 GMT", now: now) == 120)
        #expect(TusRules.parseRetryAfter("Tue, 14 Nov 2023 22:00:00 GMT", now: now) == 0, "a date in the past means now")
        #expect(TusRules.parseRetryAfter("99999999", now: now) == TusRules.maxRetryAfter)
        #expect(TusRules.parseRetryAfter("soon", now: now) == nil)
        #expect(TusRules.parseRetryAfter("-3", now: now) == nil)
        #expect(TusRules.parseRetryAfter(String(repeating: "9", count: 200), now: now) == nil)
    }

    @Test func bodySnippetIsShortAndPrintable() {
        let r = TusResponse(status: 500, body: Array("oops\u{7}\nline".utf8) + [UInt8](repeating: 65, count: 500))
        #expect(r.bodySnippet.count <= 200)
        #expect(r.bodySnippet.hasPrefix("oops? line"))
    }
}
