import Basics
import Foundation
@testable import Hub
import Testing

/// The hub's view of cases: a kiosk case's images together, in the
/// station's order, whatever order they arrived in; images sent one by one
/// grouped by case id; previews, health reports and second copies left out.
@Suite struct CasesTests {
    func upload(_ id: String, station: String = "ps-a", case caseID: String, uid: String? = nil, index: Int? = nil,
                role: String? = nil, kind: String = "image", completed: Double, duplicateOf: String? = nil,
                extra: [String: String] = [:]) -> UploadInfo {
        var m = ["station": station, "case": caseID, "kind": kind, "site": "arm_left", "filename": "\(id).jpg",
                 "captured_at": "2026-12-01T07:00:0\(index ?? 0)Z"]
        if let uid { m["case_uid"] = uid; m["images_in_case"] = "3" }
        if let index { m["image_index"] = String(index) }
        if let role { m["role"] = role }
        m.merge(extra) { _, b in b }
        var info = UploadInfo(id: id, length: 10, metadata: m, createdAt: Date(timeIntervalSince1970: completed),
                              expiresAt: Date(timeIntervalSince1970: completed + 86400))
        info.storedAs = "\(id)-\(id).jpg"
        info.sha256 = String(repeating: "a", count: 64)
        info.completedAt = Date(timeIntervalSince1970: completed)
        info.duplicateOf = duplicateOf
        return info
    }

    @Test func aKioskCaseIsOneCaseInTheStationsOrder() throws {
        let uid = "4b8c84c6-31eb-480e-b912-1f91dcd92140"
        let history = #"{"bleeding":false,"duration":"3 meses","itching":true}"#
        let records = [
            upload("c3", case: "40123456", uid: uid, index: 3, role: "dermoscopic", completed: 100),
            upload("c1", case: "40123456", uid: uid, index: 1, role: "overview", completed: 120,
                   extra: ["patient_name": "MAMANI QUISPE^Rosa", "patient_sex": "F", "patient_age": "054Y", "history": history,
                           "consent": "El paciente acepta.", "note": "8 mm", "priority": "urgent"]),
            upload("p1", case: "40123456", uid: uid, kind: "preview", completed: 121),
            upload("c2", case: "40123456", uid: uid, index: 2, role: "close_up", completed: 130),
            upload("c2b", case: "40123456", uid: uid, index: 2, role: "close_up", completed: 140, duplicateOf: "c2"),
            // The same patient's next visit is another case.
            upload("v2", case: "40123456", uid: "578d726e-1fec-4650-a276-513f2a5998a9", index: 1, role: "overview", completed: 90),
            // Images enqueued one by one: grouped by case id.
            upload("s1", case: "HC-1", completed: 50), upload("s2", case: "HC-1", completed: 60),
            upload("h1", case: "", kind: "health", completed: 70),
            upload("o1", station: "ps-b", case: "40123456", uid: uid, index: 1, completed: 80),
        ]
        let cases = HubCase.group(records, station: "ps-a")
        #expect(cases.map(\.caseUID) == [uid, "578d726e-1fec-4650-a276-513f2a5998a9", nil])
        let c = cases[0]
        #expect(c.images.map(\.storedAs) == ["c1-c1.jpg", "c2-c2.jpg", "c3-c3.jpg"])
        #expect(c.images.map(\.role) == ["overview", "close_up", "dermoscopic"])
        #expect(c.complete && c.imagesExpected == 3)
        #expect(c.patientName == "MAMANI QUISPE^Rosa" && c.patientAge == "054Y" && c.consent == "El paciente acepta.")
        #expect(c.history == CaseHistory(duration: "3 meses", itching: true, bleeding: false))
        #expect(c.note == "8 mm" && c.priority == "urgent")
        #expect(!cases[1].complete, "one image of three is not a complete case")
        #expect(cases[2].caseID == "HC-1" && cases[2].images.count == 2 && cases[2].imagesExpected == nil && cases[2].complete)
        // Every station's, without a filter.
        #expect(HubCase.group(records).count == 4)
        // What goes on the wire says whether the case is whole.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(c)) as? [String: Any]
        #expect(json?["complete"] as? Bool == true && json?["case_uid"] as? String == uid)
    }

    @Test func operatorsListCasesStationsMayNot() async throws {
        let dir = try TempDir()
        let store = try HubStore(directory: dir.path)
        let registry = StationRegistry(directory: dir.path)
        let a = try registry.enroll("ps-a")
        let hub = try await HubServer(store: store, token: "operators-secret").start()
        defer { Task { await hub.stop() } }
        let ok = try await raw(hub.port, "GET", "/cases?station=ps-a", headers: ["Authorization": "Bearer operators-secret"])
        #expect(ok.status == 200 && ok.body.contains(#""cases":[]"#), "\(ok.body)")
        let refused = try await raw(hub.port, "GET", "/cases", headers: ["Authorization": "Bearer \(a)"])
        #expect(refused.status == 403 && refused.body.contains("operators"), "\(refused.body)")
        #expect(try await raw(hub.port, "GET", "/cases?station=../x", headers: ["Authorization": "Bearer operators-secret"]).status == 400)
        #expect(try await raw(hub.port, "POST", "/cases", headers: ["Authorization": "Bearer operators-secret"]).status == 405)
    }
}
