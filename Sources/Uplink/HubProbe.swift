import Foundation

/// One plain request to the hub outside the upload flow, for `diagnose`.
public struct HubProbeResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    /// Seconds from sending the request to the end of the answer.
    public var seconds: Double
    /// Seconds to set up the connection (TCP and TLS).
    public var connectSeconds: Double
}

extension TusClient {
    /// `OPTIONS` on the creation endpoint, with the station's credentials.
    public func probeOptions() async -> Result<HubProbeResponse, UplinkError> {
        await probe(CurlRequest(method: .options, url: hubURL, headers: baseHeaders(), body: nil))
    }

    /// `DELETE` of an upload (the termination extension), to remove a probe upload.
    public func terminate(url: String) async -> Result<HubProbeResponse, UplinkError> {
        await probe(CurlRequest(method: .delete, url: url, headers: baseHeaders(), body: nil))
    }

    private func probe(_ request: CurlRequest) async -> Result<HubProbeResponse, UplinkError> {
        switch await worker.perform(request, maxRate: 0, control: TransferControl()) {
        case let .response(response, timings):
            return .success(HubProbeResponse(status: response.status, headers: response.headers,
                                             seconds: timings.total, connectSeconds: timings.pretransfer))
        case let .failed(error, _, _):
            return .failure(error)
        }
    }
}
