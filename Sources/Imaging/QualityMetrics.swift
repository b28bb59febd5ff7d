import Foundation

/// Simple exposure and focus measures of a still, so the kiosk can suggest
/// a retake before the patient leaves.
public struct QualityMetrics: Sendable, Equatable, Codable {
    public enum Flag: String, Sendable, Equatable, Codable, CaseIterable {
        case tooDark, overexposed, blurred
    }

    /// Thresholds, on an 8-bit luma scale and an analysis image about
    /// `analysisWidth` pixels wide (sharpness depends on scale).
    public struct Thresholds: Sendable, Equatable {
        public var darkMean = 40.0
        public var brightMean = 215.0
        /// Fraction of pixels at ≥ 250 above which highlights are blown.
        public var brightClipped = 0.25
        /// Fraction of pixels at ≤ 5 above which the shot counts as too dark.
        public var darkClipped = 0.5
        /// Variance of the Laplacian below which the shot counts as blurred.
        public var sharpness = 20.0
        public init() {}
    }

    public static let analysisWidth = 640

    /// Mean luma, 0...255.
    public var meanLuminance: Double
    /// Fraction of pixels at ≤ 5 (crushed shadows).
    public var darkClippedFraction: Double
    /// Fraction of pixels at ≥ 250 (blown highlights).
    public var brightClippedFraction: Double
    /// Variance of the 4-neighbour Laplacian; low means little fine detail.
    public var laplacianVariance: Double
    public var flags: [Flag]

    /// Both ends together.
    public var clippedFraction: Double { darkClippedFraction + brightClippedFraction }

    /// Measures a greyscale image with rows `stride` bytes apart.
    public static func measure(luma: UnsafeBufferPointer<UInt8>, width: Int, height: Int, stride: Int? = nil,
                               thresholds: Thresholds = Thresholds()) -> QualityMetrics {
        let stride = stride ?? width
        precondition(luma.count >= stride * (height - 1) + width, "luma buffer smaller than its geometry")
        var sum = 0, dark = 0, bright = 0
        for y in 0..<height {
            let row = y * stride
            for x in 0..<width {
                let v = luma[row + x]
                sum += Int(v)
                if v <= 5 { dark += 1 } else if v >= 250 { bright += 1 }
            }
        }
        let n = Double(max(1, width * height))
        // Welford-free two-moment variance in integers: exact and fast enough
        // on a ~640-pixel-wide analysis image.
        var lapSum = 0, lapSq = 0, lapN = 0
        if width >= 3, height >= 3 {
            for y in 1..<(height - 1) {
                let row = y * stride
                for x in 1..<(width - 1) {
                    let c = Int(luma[row + x])
                    let l = Int(luma[row + x - 1]) + Int(luma[row + x + 1]) + Int(luma[row - stride + x]) + Int(luma[row + stride + x]) - 4 * c
                    lapSum += l
                    lapSq += l * l
                    lapN += 1
                }
            }
        }
        var variance = 0.0
        if lapN > 0 {
            let mean = Double(lapSum) / Double(lapN)
            variance = Double(lapSq) / Double(lapN) - mean * mean
        }
        var m = QualityMetrics(meanLuminance: Double(sum) / n, darkClippedFraction: Double(dark) / n,
                               brightClippedFraction: Double(bright) / n, laplacianVariance: max(0, variance), flags: [])
        m.flags = m.evaluate(thresholds)
        return m
    }

    /// Measures a decoded image (greyscale or RGB, using BT.601 luma).
    public static func measure(_ image: DecodedImage, thresholds: Thresholds = Thresholds()) -> QualityMetrics {
        if image.channels == 1 {
            return image.pixels.withUnsafeBufferPointer { measure(luma: $0, width: image.width, height: image.height, thresholds: thresholds) }
        }
        var luma = [UInt8](repeating: 0, count: image.width * image.height)
        for i in 0..<luma.count {
            let r = Int(image.pixels[3 * i]), g = Int(image.pixels[3 * i + 1]), b = Int(image.pixels[3 * i + 2])
            luma[i] = UInt8((299 * r + 587 * g + 114 * b + 500) / 1000)
        }
        return luma.withUnsafeBufferPointer { measure(luma: $0, width: image.width, height: image.height, thresholds: thresholds) }
    }

    /// The flags these measures raise under `thresholds`.
    public func evaluate(_ t: Thresholds) -> [Flag] {
        var flags: [Flag] = []
        if meanLuminance < t.darkMean || darkClippedFraction > t.darkClipped { flags.append(.tooDark) }
        if meanLuminance > t.brightMean || brightClippedFraction > t.brightClipped { flags.append(.overexposed) }
        if laplacianVariance < t.sharpness { flags.append(.blurred) }
        return flags
    }
}

/// The floor teledermatology practice sets for a diagnostic image.
public struct QualityFloor: Sendable, Equatable {
    public var minimumWidth = 800
    public var minimumHeight = 600
    public var minimumBitsPerPixel = 24
    /// Largest acceptable ratio of raw 24-bit size to JPEG size.
    public var maximumCompressionRatio = 20.0

    public init() {}

    public struct Warning: Sendable, Equatable, Codable, CustomStringConvertible {
        public enum Code: String, Sendable, Equatable, Codable { case resolution, colourDepth, compression }
        public var code: Code
        public var message: String
        public var description: String { message }
    }

    /// Warnings for a still of this size, colour depth and file size.
    /// Accepts either orientation for the size (600×800 passes). Pass
    /// `jpegBytes` for JPEGs the camera compressed itself; for frames the
    /// station encodes, `camera.jpeg_quality` decides and a flat scene
    /// legitimately compresses far beyond 20:1, so the ratio says nothing.
    public func check(width: Int, height: Int, bitsPerPixel: Int, jpegBytes: Int?) -> [Warning] {
        var out: [Warning] = []
        let (long, short) = (max(width, height), min(width, height))
        if long < max(minimumWidth, minimumHeight) || short < min(minimumWidth, minimumHeight) {
            out.append(Warning(code: .resolution, message: "image is \(width)×\(height), below the \(minimumWidth)×\(minimumHeight) minimum for diagnosis; choose a larger camera.width/height or a better camera"))
        }
        if bitsPerPixel < minimumBitsPerPixel {
            out.append(Warning(code: .colourDepth, message: "image has \(bitsPerPixel)-bit pixels, below the \(minimumBitsPerPixel)-bit colour minimum; the camera delivers greyscale"))
        }
        if let jpegBytes, jpegBytes > 0 {
            let ratio = Double(width * height * 3) / Double(jpegBytes)
            if ratio > maximumCompressionRatio {
                out.append(Warning(code: .compression, message: String(format: "image is compressed %.1f:1, stronger than the %.0f:1 maximum; raise camera.jpeg_quality or use a raw format (yuyv)", ratio, maximumCompressionRatio)))
            }
        }
        return out
    }
}
