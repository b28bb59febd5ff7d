import Config
import ConfigFile
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Testing
@testable import Station
import StationDemo

@Suite struct KioskAccessRuleTests {
    let token = "k1-5ecret-Token+/="

    @Test func credentialsThatPassAndThatDoNot() {
        func v(_ a: String?, _ c: String?, _ q: String?) -> KioskAccess.Verdict {
            KioskAccess.verdict(token: token, authorization: a, cookie: c, queryToken: q)
        }
        #expect(v("Bearer \(token)", nil, nil) == .allowed)
        #expect(v("Bearer \(token)x", nil, nil) == .refused)
        #expect(v("Bearer " + token.dropLast(), nil, nil) == .refused)
        #expect(v("Basic \(token)", nil, nil) == .refused)
        #expect(v(nil, token, nil) == .allowed)
        #expect(v(nil, "nope", nil) == .refused)
        #expect(v(nil, "", nil) == .refused)
        #expect(v(nil, nil, token) == .allowedSettingCookie)
        #expect(v(nil, nil, "") == .refused)
        #expect(v(nil, nil, nil) == .refused)
        #expect(!KioskAccess.sameBytes("", ""), "an empty token never matches")
    }

    @Test func aNetworkAddressNeedsAToken() throws {
        for listen in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.0.0.2:80"] {
            try KioskAccess.check(listen: listen, token: nil, configPath: "s.toml")
        }
        for listen in ["0.0.0.0:8080", "192.168.1.20:8080", "[::]:8080"] {
            #expect(throws: ConfigError.self, "\(listen)") { try KioskAccess.check(listen: listen, token: nil, configPath: "s.toml") }
            try KioskAccess.check(listen: listen, token: token, configPath: "s.toml")
        }
        do {
            try KioskAccess.check(listen: "0.0.0.0:8080", token: nil, configPath: "/etc/telestation/station.toml")
        } catch {
            #expect(error.key == "kiosk.listen")
            #expect(error.message.contains("needs an access token"))
            #expect(error.nextStep?.contains("kiosk.token_file") == true)
        }
    }
}

/// The real daemon (demo backend) with a kiosk token, over real HTTP.
@Suite(.timeLimit(.minutes(3))) struct KioskAccessHTTPTests {
    let token = "k1-5ecret-Token"

    /// A session that neither stores nor sends cookies by itself.
    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.httpShouldSetCookies = false
        c.httpCookieAcceptPolicy = .never
        return URLSession(configuration: c)
    }()

    func get(_ base: URL, _ path: String, _ headers: [String: String] = [:], method: String = "GET", json: String? = nil) async throws -> (Int, [String: String], Data) {
        var r = URLRequest(url: URL(string: base.absoluteString + path)!)
        r.httpMethod = method
        if let json { r.httpBody = Data(json.utf8); r.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        for (k, v) in headers { r.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await Self.session.data(for: r)
        let http = response as! HTTPURLResponse
        var h: [String: String] = [:]
        for (k, v) in http.allHeaderFields { h[String(describing: k).lowercased()] = String(describing: v) }
        return (http.statusCode, h, data)
    }

    @Test func everyRequestNeedsTheToken() async throws {
        var config = StationConfig()
        config.kiosk.listen = "127.0.0.1:0"
        let monitor = LoopMonitor()
        let backend = DemoBackend(monitor: monitor, simulatedRate: 200_000)
        var daemon = StationDaemon(config: config, backend: backend, monitor: monitor,
                                   services: backend.services(roundInterval: .milliseconds(50)),
                                   notifier: SystemdNotifier(environment: NotifyEnvironment(socketPath: nil, watchdogInterval: nil)),
                                   logger: Logger(label: "test"))
        daemon.accessToken = token
        try await serve(daemon) { base in
            for path in ["/", "/api/v1/status", "/api/v1/queue", "/api/v1/preview.jpg"] {
                let (status, headers, body) = try await get(base, path)
                #expect(status == 401, "\(path) without the token")
                #expect(headers["www-authenticate"] == "Bearer")
                #expect(String(decoding: body, as: UTF8.self).contains("\"unauthorized\""))
            }
            #expect(try await get(base, "/api/v1/status", ["Authorization": "Bearer wrong"]).0 == 401)
            #expect(try await get(base, "/api/v1/status", ["Authorization": "Bearer \(token)"]).0 == 200)
            let captured = try await get(base, "/api/v1/captures", ["Authorization": "Bearer \(token)"], method: "POST",
                                         json: #"{"case_id":"45871236","site":"face"}"#)
            #expect(captured.0 == 201, "the API works behind the token")

            // A browser on another device: the token once in the address, then the cookie.
            let (status, headers, page) = try await get(base, "/?token=\(token)")
            #expect(status == 200)
            #expect(String(decoding: page, as: UTF8.self).contains("<html"))
            let cookie = try #require(headers["set-cookie"])
            #expect(cookie.hasPrefix("telestation_kiosk=\(token);") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
            #expect(try await get(base, "/api/v1/status", ["Cookie": "a=1; telestation_kiosk=\(token); b=2"]).0 == 200)
            #expect(try await get(base, "/?token=wrong").0 == 401)

            // The CLI's client sends the token from kiosk.token_file.
            let port = try #require(base.port)
            #expect(await (try ControlClient(listen: "127.0.0.1:\(port)", token: token)).status() != nil)
            #expect(await (try ControlClient(listen: "127.0.0.1:\(port)")).status() == nil, "no token: the daemon does not answer it")
        }
    }
}
