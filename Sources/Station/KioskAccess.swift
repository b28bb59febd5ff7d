import Basics
import Config
import Foundation
import Hummingbird

/// Access to the kiosk page and control API with `kiosk.token_file` set:
/// every request must carry the token, as `Authorization: Bearer TOKEN`, as
/// the cookie the page sets, or once as `?token=TOKEN` in the kiosk URL
/// (which sets that cookie, so a browser on another device opens the page
/// with the token in its address once). The token is required when
/// `kiosk.listen` reaches beyond loopback and optional on loopback, where
/// whoever can connect is already on the station.
public struct KioskAccess: RouterMiddleware {
    public typealias Context = BasicRequestContext
    let token: String

    static let cookieName = "telestation_kiosk"

    enum Verdict: Equatable {
        case allowed
        /// Allowed by `?token=`; the response sets the cookie.
        case allowedSettingCookie
        case refused
    }

    /// Whether a request with these credentials may pass.
    /// `cookie` is the value of the kiosk's cookie as Hummingbird parsed it.
    static func verdict(token: String, authorization: String?, cookie: String?, queryToken: String?) -> Verdict {
        if let authorization, authorization.hasPrefix("Bearer "),
           sameBytes(String(authorization.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces), token) {
            return .allowed
        }
        if let cookie, sameBytes(cookie, token) { return .allowed }
        if let queryToken, sameBytes(queryToken, token) { return .allowedSettingCookie }
        return .refused
    }

    /// Compares without stopping at the first difference, so response time
    /// does not tell how much of a guess was right.
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        !b.isEmpty && Digest.constantTimeEquals(a, b)
    }

    /// A control API reachable from the network needs a token; on loopback it is optional.
    public static func check(listen: String, token: String?, configPath: String) throws(ConfigError) {
        guard token == nil, let (host, _) = HostPort.split(listen), !isLoopback(host) else { return }
        throw ConfigError(file: configPath, key: "kiosk.listen",
                          message: "\(listen) is reachable from the network, and the control API can capture and read patient images: it needs an access token",
                          nextStep: "set kiosk.token_file to a 0600 file holding a long random token (head -c 24 /dev/urandom | base64), or listen on 127.0.0.1")
    }

    public static func isLoopback(_ host: String) -> Bool {
        let h = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let query = request.uri.queryParameters["token"].map(String.init)
        switch Self.verdict(token: token, authorization: request.headers[.authorization],
                                  cookie: request.cookies[Self.cookieName]?.value, queryToken: query) {
        case .allowed:
            return try await next(request, context)
        case .allowedSettingCookie:
            var response = try await next(request, context)
            response.setCookie(Cookie(name: Self.cookieName, value: token, path: "/", httpOnly: true, sameSite: .strict))
            return response
        case .refused:
            let body = #"{"error":{"code":"unauthorized","message":"this station's kiosk needs its access token","fix":"open the kiosk as http://STATION:PORT/?token=TOKEN (kiosk.token_file) or send Authorization: Bearer TOKEN"}}"#
            return Response(status: .unauthorized,
                            headers: [.contentType: "application/json", .wwwAuthenticate: "Bearer"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
    }
}
