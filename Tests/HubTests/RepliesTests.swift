import Foundation
import Hub
import Testing

/// Replies about cases over real HTTP: posted by the operators (never by a
/// station), fetched by each station for itself only, after the last it has.
@Suite struct RepliesTests {
    func post(_ port: Int, _ body: String, token: String? = nil) async throws -> RawResponse {
        var h = ["Content-Type": "application/json"]
        if let token { h["Authorization"] = "Bearer \(token)" }
        return try await raw(port, "POST", "/replies", headers: h, body: Array(body.utf8))
    }

    func get(_ port: Int, _ query: String, token: String? = nil) async throws -> RawResponse {
        try await raw(port, "GET", "/replies?" + query, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }

    @Test func stationsFetchTheirOwnRepliesOnly() async throws {
        let dir = try TempDir()
        let store = try HubStore(directory: dir.path)
        let registry = StationRegistry(directory: dir.path)
        let a = try registry.enroll("ps-a"), b = try registry.enroll("ps-b")
        try "operators-secret".write(toFile: dir.file("token"), atomically: true, encoding: .utf8)
        let hub = try await HubServer(store: store, token: "operators-secret").start()
        defer { Task { await hub.stop() } }

        // The operators post; a station may not.
        let ok = try await post(hub.port, #"{"station":"ps-a","case":"40123456","kind":"note","text":"Control en 3 meses."}"#, token: "operators-secret")
        #expect(ok.status == 201, "\(ok.body)")
        #expect(try await post(hub.port, #"{"station":"ps-a","case":"40123456","kind":"retake","image":2,"text":""}"#, token: "operators-secret").status == 201)
        #expect(try await post(hub.port, #"{"station":"ps-b","case":"HC-1","kind":"received","text":""}"#, token: "operators-secret").status == 201)
        #expect(try await post(hub.port, #"{"station":"ps-a","case":"x","kind":"note","text":"forged"}"#, token: a).status == 403)
        // What is wrong with a reply is said.
        let noImage = try await post(hub.port, #"{"station":"ps-a","case":"40123456","kind":"retake","text":""}"#, token: "operators-secret")
        #expect(noImage.status == 400 && noImage.body.contains("names the image"))
        #expect(try await post(hub.port, #"{"station":"ps-a","case":"1","kind":"praise","text":"x"}"#, token: "operators-secret").body.contains("kind must be one of"))
        #expect(try await post(hub.port, "not json", token: "operators-secret").status == 400)

        // Each station sees its own, after the last it has.
        let mine = try await get(hub.port, "station=ps-a&since=0", token: a)
        #expect(mine.status == 200)
        let decoded = try JSONSerialization.jsonObject(with: Data(mine.body.utf8)) as? [String: [[String: Any]]]
        let list = try #require(decoded?["replies"])
        #expect(list.map { $0["kind"] as? String } == ["note", "retake"])
        #expect(list.last?["image"] as? Int == 2)
        let later = try await get(hub.port, "station=ps-a&since=\(list[0]["id"] as! Int)", token: a)
        #expect(later.body.contains("retake") && !later.body.contains("Control en 3 meses"))
        // ps-b asking for ps-a's replies is refused, and sees only its own without naming one.
        #expect(try await get(hub.port, "station=ps-a&since=0", token: b).status == 403)
        let theirs = try await get(hub.port, "since=0", token: b)
        #expect(theirs.body.contains("HC-1") && !theirs.body.contains("40123456"))
        // The OPTIONS answer says where replies are.
        let options = try await raw(hub.port, "OPTIONS", "/files/", headers: ["Tus-Resumable": "1.0.0"])
        #expect(options["telestation-replies"] == "/replies")
    }
}
