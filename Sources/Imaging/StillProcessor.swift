import Foundation

/// A still ready to store: the full JPEG, its preview and what was measured.
public struct ProcessedStill: Sendable {
    public var jpeg: Data
    public var preview: Data
    public var info: JPEGInfo
    public var metrics: QualityMetrics
    public var warnings: [QualityFloor.Warning]
    /// True when `jpeg` holds the camera's own bytes (MJPEG, not re-encoded).
    public var cameraEncoded: Bool
}

/// Turns a captured frame into a `ProcessedStill`: MJPEG frames are kept
/// as the camera made them (validated, Huffman tables added when missing),
/// raw frames are encoded at the configured quality. Holds its TurboJPEG
/// handles and buffers across stills; use it from one thread.
public final class StillProcessor {
    public let previewWidth: Int
    public var floor = QualityFloor()
    public var thresholds = QualityMetrics.Thresholds()
    private let encoder: JPEGEncoder
    private let previewEncoder: JPEGEncoder
    var previewEncoderForLive: JPEGEncoder { previewEncoder }
    private let decoder: JPEGDecoder

    public init(jpegQuality: Int, previewWidth: Int) throws(ImagingError) {
        encoder = try JPEGEncoder(quality: jpegQuality)
        previewEncoder = try JPEGEncoder(quality: Preview.defaultQuality)
        decoder = try JPEGDecoder()
        self.previewWidth = previewWidth
    }

    /// Encodes a raw frame with TurboJPEG.
    public func process(_ frame: RawFrameView) throws(ImagingError) -> ProcessedStill {
        let jpeg = try encoder.encode(frame)
        return try finish(jpeg, info: try JPEG.validate(jpeg), cameraEncoded: false)
    }

    /// Keeps a camera-compressed frame after validation.
    public func process(mjpeg frame: Data) throws(ImagingError) -> ProcessedStill {
        let (jpeg, info) = try MJPEG.prepare(frame)
        return try finish(jpeg, info: info, cameraEncoded: true)
    }

    /// Only encodes a preview, for live view.
    public func preview(ofJPEG jpeg: Data) throws(ImagingError) -> Data {
        try Preview.make(fromJPEG: jpeg, width: previewWidth, decoder: decoder, encoder: previewEncoder)
    }

    private func finish(_ jpeg: Data, info: JPEGInfo, cameraEncoded: Bool) throws(ImagingError) -> ProcessedStill {
        // One decode serves both the metrics and the preview; also proves
        // the stored bytes decode, which catches corrupt MJPEG frames.
        let analysis = try decoder.decode(jpeg, as: .rgb, minimumWidth: max(previewWidth, QualityMetrics.analysisWidth))
        let metrics = QualityMetrics.measure(Preview.resample(analysis, width: min(analysis.width, QualityMetrics.analysisWidth)),
                                             thresholds: thresholds)
        let small = Preview.resample(analysis, width: min(previewWidth, analysis.width))
        let preview = try previewEncoder.encode(small)
        let warnings = floor.check(width: info.width, height: info.height, bitsPerPixel: info.bitsPerPixel,
                                   jpegBytes: cameraEncoded ? jpeg.count : nil)
        return ProcessedStill(jpeg: jpeg, preview: preview, info: info, metrics: metrics, warnings: warnings, cameraEncoded: cameraEncoded)
    }
}

extension StillProcessor {
    /// A live-view image of a raw frame, without encoding the full frame.
    public func preview(ofRaw frame: RawFrameView) throws(ImagingError) -> Data {
        let small = try Preview.thumbnail(of: frame, width: previewWidth)
        return try previewEncoderForLive.encode(small)
    }
}
