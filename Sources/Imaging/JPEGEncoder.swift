import CPixelKernels
import CTurboJPEG
import Foundation

/// Compresses raw camera frames to JPEG with libjpeg-turbo's TurboJPEG API.
///
/// One encoder keeps its TurboJPEG handle, its chroma planes and its output
/// buffer between frames so that streaming does not allocate per frame. It
/// is not thread-safe; use one per thread (the capture thread owns one).
public final class JPEGEncoder {
    public let quality: Int
    private let handle: tjhandle
    private var uPlane: [UInt8] = []
    private var vPlane: [UInt8] = []
    private var yPlane: [UInt8] = []
    private var output: UnsafeMutablePointer<UInt8>?
    private var outputCapacity = 0

    /// Calls `tjInitCompress`.
    public init(quality: Int) throws(ImagingError) {
        guard (1...100).contains(quality) else {
            throw ImagingError(.encodeFailed, "JPEG quality \(quality) is outside 1...100", nextStep: "set camera.jpeg_quality between 1 and 100")
        }
        guard let h = tjInitCompress() else {
            throw ImagingError(.encodeFailed, "tjInitCompress failed: \(String(cString: tjGetErrorStr2(nil)))")
        }
        self.quality = quality
        self.handle = h
    }

    deinit {
        tjDestroy(handle)
        if let output { tjFree(output) }
    }

    /// Encodes `frame` and returns the JPEG file bytes. YUYV becomes 4:2:2,
    /// NV12 and YU12 4:2:0, RGB 4:2:0, so no chroma resolution the camera
    /// delivered is thrown away and none is invented.
    /// Calls `tjCompressFromYUVPlanes` (YUV input) or `tjCompress2` (RGB).
    public func encode(_ frame: RawFrameView) throws(ImagingError) -> Data {
        try frame.check()
        let w = frame.width, h = frame.height, bpl = frame.bytesPerLine
        let subsamp: TJSAMP = frame.format == .yuyv ? TJSAMP_422 : TJSAMP_420
        try reserveOutput(width: w, height: h, subsamp: subsamp)
        var size = UInt(outputCapacity)
        var out: UnsafeMutablePointer<UInt8>? = output
        let flags = TJFLAG_NOREALLOC
        let base = frame.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var rc: Int32

        switch frame.format {
        case .rgb24:
            rc = tjCompress2(handle, base, Int32(w), Int32(bpl), Int32(h), Int32(TJPF_RGB.rawValue),
                             &out, &size, Int32(TJSAMP_420.rawValue), Int32(quality), flags)
        case .yu12 where frame.range == .limited:
            let cStride = (bpl + 1) / 2, cw = (w + 1) / 2, ch = (h + 1) / 2
            resize(&yPlane, w * h); resize(&uPlane, cw * ch); resize(&vPlane, cw * ch)
            yPlane.withUnsafeMutableBufferPointer { y in
                uPlane.withUnsafeMutableBufferPointer { u in
                    vPlane.withUnsafeMutableBufferPointer { v in
                        Deinterleave.expand(base, stride: bpl, width: w, height: h, lut: RangeExpansion.luma, into: y.baseAddress!)
                        Deinterleave.expand(base + bpl * h, stride: cStride, width: cw, height: ch, lut: RangeExpansion.chroma, into: u.baseAddress!)
                        Deinterleave.expand(base + bpl * h + cStride * ch, stride: cStride, width: cw, height: ch,
                                            lut: RangeExpansion.chroma, into: v.baseAddress!)
                    }
                }
            }
            rc = compressOwnPlanes(strides: (w, cw, cw), width: w, height: h, subsamp: subsamp, out: &out, size: &size)
        case .yu12:
            // Already the planar layout TurboJPEG wants: no copy at all.
            let cStride = (bpl + 1) / 2
            let u = base + bpl * h
            let v = u + cStride * ((h + 1) / 2)
            rc = compressPlanes(UnsafePointer(base), UnsafePointer(u), UnsafePointer(v),
                                strides: (bpl, cStride, cStride), width: w, height: h, subsamp: subsamp, out: &out, size: &size)
        case .nv12:
            let cw = w / 2, ch = (h + 1) / 2
            resize(&uPlane, cw * ch); resize(&vPlane, cw * ch)
            let uv = base + bpl * h
            let limited = frame.range == .limited
            uPlane.withUnsafeMutableBufferPointer { u in
                vPlane.withUnsafeMutableBufferPointer { v in
                    Deinterleave.nv12Chroma(uv, stride: bpl, width: cw, height: ch, u: u.baseAddress!, v: v.baseAddress!,
                                            lut: limited ? RangeExpansion.chroma : nil)
                }
            }
            if limited {
                resize(&yPlane, w * h)
                yPlane.withUnsafeMutableBufferPointer {
                    Deinterleave.expand(base, stride: bpl, width: w, height: h, lut: RangeExpansion.luma, into: $0.baseAddress!)
                }
                rc = compressOwnPlanes(strides: (w, cw, cw), width: w, height: h, subsamp: subsamp, out: &out, size: &size)
            } else {
            rc = uPlane.withUnsafeBufferPointer { u in
                vPlane.withUnsafeBufferPointer { v in
                    compressPlanes(UnsafePointer(base), u.baseAddress!, v.baseAddress!, strides: (bpl, cw, cw),
                                   width: w, height: h, subsamp: subsamp, out: &out, size: &size)
                }
            }
            }
        case .yuyv:
            // TurboJPEG has no packed-YUV input; split into planes once.
            let cw = w / 2
            resize(&yPlane, w * h); resize(&uPlane, cw * h); resize(&vPlane, cw * h)
            yPlane.withUnsafeMutableBufferPointer { y in
                uPlane.withUnsafeMutableBufferPointer { u in
                    vPlane.withUnsafeMutableBufferPointer { v in
                        if frame.range == .limited {
                            Deinterleave.yuyvExpanding(base, stride: bpl, width: w, height: h,
                                                       y: y.baseAddress!, u: u.baseAddress!, v: v.baseAddress!)
                        } else {
                            Deinterleave.yuyv(base, stride: bpl, width: w, height: h,
                                              y: y.baseAddress!, u: u.baseAddress!, v: v.baseAddress!)
                        }
                    }
                }
            }
            rc = compressOwnPlanes(strides: (w, cw, cw), width: w, height: h, subsamp: subsamp, out: &out, size: &size)
        }
        guard rc == 0, let out else {
            throw ImagingError(.encodeFailed, "TurboJPEG could not compress a \(w)×\(h) \(frame.format.rawValue) frame: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return Data(bytes: out, count: Int(size))
    }

    private func compressPlanes(_ y: UnsafePointer<UInt8>, _ u: UnsafePointer<UInt8>, _ v: UnsafePointer<UInt8>,
                                strides: (Int, Int, Int), width: Int, height: Int, subsamp: TJSAMP,
                                out: inout UnsafeMutablePointer<UInt8>?, size: inout UInt) -> Int32 {
        var planes: [UnsafePointer<UInt8>?] = [y, u, v]
        var s: [Int32] = [Int32(strides.0), Int32(strides.1), Int32(strides.2)]
        return planes.withUnsafeMutableBufferPointer { p in
            s.withUnsafeMutableBufferPointer { st in
                tjCompressFromYUVPlanes(handle, p.baseAddress, Int32(width), st.baseAddress, Int32(height),
                                        Int32(subsamp.rawValue), &out, &size, Int32(quality), TJFLAG_NOREALLOC)
            }
        }
    }

    /// Compresses the encoder's own Y, U and V planes.
    private func compressOwnPlanes(strides: (Int, Int, Int), width: Int, height: Int, subsamp: TJSAMP,
                                   out: inout UnsafeMutablePointer<UInt8>?, size: inout UInt) -> Int32 {
        yPlane.withUnsafeBufferPointer { y in
            uPlane.withUnsafeBufferPointer { u in
                vPlane.withUnsafeBufferPointer { v in
                    compressPlanes(y.baseAddress!, u.baseAddress!, v.baseAddress!, strides: strides,
                                   width: width, height: height, subsamp: subsamp, out: &out, size: &size)
                }
            }
        }
    }

    private func reserveOutput(width: Int, height: Int, subsamp: TJSAMP) throws(ImagingError) {
        let need = Int(tjBufSize(Int32(width), Int32(height), Int32(subsamp.rawValue)))
        guard need > 0, need != Int(UInt32.max) else {
            throw ImagingError(.encodeFailed, "TurboJPEG cannot size a buffer for \(width)×\(height)")
        }
        if need <= outputCapacity { return }
        if let output { tjFree(output) }
        output = tjAlloc(Int32(need))
        guard output != nil else { throw ImagingError(.encodeFailed, "tjAlloc of \(need) bytes failed") }
        outputCapacity = need
    }

    private func resize(_ a: inout [UInt8], _ count: Int) {
        if a.count < count { a = [UInt8](repeating: 0, count: count) }
    }
}

/// The tight loops that split interleaved YUV into planes.
enum Deinterleave {
    static func yuyv(_ src: UnsafePointer<UInt8>, stride: Int, width: Int, height: Int,
                     y: UnsafeMutablePointer<UInt8>, u: UnsafeMutablePointer<UInt8>, v: UnsafeMutablePointer<UInt8>) {
        let cw = width / 2
        for row in 0..<height {
            let s = UnsafeRawPointer(src + row * stride)
            let yd = UnsafeMutableRawPointer(y + row * width)
            let ud = UnsafeMutableRawPointer(u + row * cw)
            let vd = UnsafeMutableRawPointer(v + row * cw)
            // This pass is the only work the library does not do, so it is
            // vectorised: 16 pixels per step, read as 16-bit lanes
            // (little-endian: Y in the low byte, U or V in the high byte);
            // narrowing the lanes gives the Y plane, narrowing them shifted
            // gives U V U V…, which splits the same way once more.
            var done = 0
            #if _endian(little)
            done = width / 16
            for i in 0..<done {
                let q = s.loadUnaligned(fromByteOffset: i * 32, as: SIMD16<UInt16>.self)
                let c = unsafeBitCast(SIMD16<UInt8>(truncatingIfNeeded: q &>> 8), to: SIMD8<UInt16>.self)
                yd.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: q), toByteOffset: i * 16, as: SIMD16<UInt8>.self)
                ud.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: c), toByteOffset: i * 8, as: SIMD8<UInt8>.self)
                vd.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: c &>> 8), toByteOffset: i * 8, as: SIMD8<UInt8>.self)
            }
            #endif
            // The rest of the row: two pixel pairs per 64-bit load
            // (Y0 U0 Y1 V0 Y2 U1 Y3 V1, little-endian).
            for i in (done * 4)..<(cw / 2) {
                let q = s.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
                let ys = UInt32(truncatingIfNeeded: q & 0xFF) | UInt32(truncatingIfNeeded: (q >> 8) & 0xFF00)
                    | UInt32(truncatingIfNeeded: (q >> 16) & 0xFF_0000) | UInt32(truncatingIfNeeded: (q >> 24) & 0xFF00_0000)
                let us = UInt16(truncatingIfNeeded: (q >> 8) & 0xFF) | UInt16(truncatingIfNeeded: (q >> 32) & 0xFF00)
                let vs = UInt16(truncatingIfNeeded: (q >> 24) & 0xFF) | UInt16(truncatingIfNeeded: (q >> 48) & 0xFF00)
                yd.storeBytes(of: ys, toByteOffset: i * 4, as: UInt32.self)
                ud.storeBytes(of: us, toByteOffset: i * 2, as: UInt16.self)
                vd.storeBytes(of: vs, toByteOffset: i * 2, as: UInt16.self)
            }
            if cw % 2 == 1 {
                let p = src + row * stride + (cw - 1) * 4
                y[row * width + width - 2] = p[0]; u[row * cw + cw - 1] = p[1]
                y[row * width + width - 1] = p[2]; v[row * cw + cw - 1] = p[3]
            }
        }
    }

    /// As `yuyv`, stretching limited range to full range on the way (the
    /// path of vivid and of most UVC cameras, which flag their YUYV as
    /// limited range). The row loop is C with SSE2 or NEON intrinsics
    /// (`ts_yuyv_expand_row`): Swift's generic SIMD min and max on byte
    /// lanes compile to scalar loops here. Same formula as `RangeExpansion`.
    static func yuyvExpanding(_ src: UnsafePointer<UInt8>, stride: Int, width: Int, height: Int,
                              y: UnsafeMutablePointer<UInt8>, u: UnsafeMutablePointer<UInt8>, v: UnsafeMutablePointer<UInt8>) {
        let cw = width / 2
        for row in 0..<height {
            ts_yuyv_expand_row(src + row * stride, cw, y + row * width, u + row * cw, v + row * cw)
        }
    }

    static func nv12Chroma(_ uv: UnsafePointer<UInt8>, stride: Int, width: Int, height: Int,
                           u: UnsafeMutablePointer<UInt8>, v: UnsafeMutablePointer<UInt8>, lut: [UInt8]? = nil) {
        let table = lut ?? RangeExpansion.identity
        table.withUnsafeBufferPointer { l in
            for row in 0..<height {
                var s = uv + row * stride
                var ud = u + row * width
                var vd = v + row * width
                for _ in 0..<width {
                    ud[0] = l[Int(s[0])]; vd[0] = l[Int(s[1])]
                    s += 2; ud += 1; vd += 1
                }
            }
        }
    }

    /// Copies a plane through a lookup table into a tightly packed one.
    static func expand(_ src: UnsafePointer<UInt8>, stride: Int, width: Int, height: Int, lut: [UInt8],
                       into dst: UnsafeMutablePointer<UInt8>) {
        lut.withUnsafeBufferPointer { l in
            for row in 0..<height {
                var s = src + row * stride
                var d = dst + row * width
                for _ in 0..<width {
                    d[0] = l[Int(s[0])]
                    s += 1; d += 1
                }
            }
        }
    }
}

extension JPEGEncoder {
    /// Encodes a decoded RGB or greyscale image (previews).
    public func encode(_ image: DecodedImage) throws(ImagingError) -> Data {
        let result: Result<Data, ImagingError> = image.pixels.withUnsafeBytes { raw in
            if image.channels == 3 {
                return Result { () throws(ImagingError) in
                    try encode(RawFrameView(format: .rgb24, width: image.width, height: image.height, bytes: raw))
                }
            }
            // Grey to RGB: previews are small, so the copy costs nothing.
            var rgb = [UInt8](repeating: 0, count: image.width * image.height * 3)
            for i in 0..<(image.width * image.height) { rgb[3 * i] = raw[i]; rgb[3 * i + 1] = raw[i]; rgb[3 * i + 2] = raw[i] }
            return rgb.withUnsafeBytes { r in
                Result { () throws(ImagingError) in
                    try encode(RawFrameView(format: .rgb24, width: image.width, height: image.height, bytes: r))
                }
            }
        }
        return try result.get()
    }
}

/// Limited (studio) to full (JFIF) range, in 8.8 fixed point so that the
/// vector loop (`ts_yuyv_expand_row`) and the tables give the same bytes: Y 16...235 → 0...255
/// (× 298/256 ≈ 255/219, rounded), Cb/Cr 16...240 → 0...255 (× 292/256 ≈
/// 255/224, neutral 128 stays 128). Within 1.2 of the exact value.
enum RangeExpansion {
    static let lumaFactor = 298, lumaRound = 128, chromaFactor = 292, chromaRound = 64

    static let luma: [UInt8] = (0..<256).map { UInt8(((min(max($0, 16), 235) - 16) * lumaFactor + lumaRound) >> 8) }
    static let chroma: [UInt8] = (0..<256).map { UInt8(((min(max($0, 16), 240) - 16) * chromaFactor + chromaRound) >> 8) }

    static let identity: [UInt8] = (0..<256).map { UInt8($0) }
}
