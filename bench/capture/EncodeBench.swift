// Benchmarks the station's still path on one frame: YUYV → JPEG (the
// TurboJPEG encoder with its plane split), and the whole shutter-to-disk
// work (encode, preview, metrics, write, fsync). Built with -O by run.sh
// together with the Imaging sources.
import Foundation
import Imaging
import Recompression

func readPPM(_ path: String) -> (Int, Int, [UInt8]) {
    let data = [UInt8](FileManager.default.contents(atPath: path)!)
    var fields: [String] = []
    var i = 0
    while fields.count < 4 {
        while data[i] == 0x20 || data[i] == 0x0A { i += 1 }
        var s = ""
        while data[i] != 0x20 && data[i] != 0x0A { s.append(Character(UnicodeScalar(data[i]))); i += 1 }
        fields.append(s)
    }
    i += 1
    return (Int(fields[1])!, Int(fields[2])!, Array(data[i...]))
}

/// Full-range BT.601 conversion to YUYV 4:2:2, as a camera would deliver it.
func toYUYV(_ rgb: [UInt8], _ w: Int, _ h: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: w * h * 2)
    for y in 0..<h {
        for x in stride(from: 0, to: w, by: 2) {
            var ys = [0.0, 0.0], cb = 0.0, cr = 0.0
            for k in 0..<2 {
                let p = (y * w + x + k) * 3
                let r = Double(rgb[p]), g = Double(rgb[p + 1]), b = Double(rgb[p + 2])
                ys[k] = 0.299 * r + 0.587 * g + 0.114 * b
                cb += (128 - 0.168736 * r - 0.331264 * g + 0.5 * b) / 2
                cr += (128 + 0.5 * r - 0.418688 * g - 0.081312 * b) / 2
            }
            let o = (y * w + x) * 2
            out[o] = UInt8(max(0, min(255, ys[0].rounded()))); out[o + 1] = UInt8(max(0, min(255, cb.rounded())))
            out[o + 2] = UInt8(max(0, min(255, ys[1].rounded()))); out[o + 3] = UInt8(max(0, min(255, cr.rounded())))
        }
    }
    return out
}

/// The same frame flagged limited range (BT.601 studio swing: Y 16...235,
/// Cb/Cr 16...240), as vivid and most UVC cameras send YUYV.
func toLimited(_ yuyv: [UInt8]) -> [UInt8] {
    yuyv.enumerated().map { i, v in
        i % 2 == 0 ? UInt8((16 + Double(v) * 219 / 255).rounded()) : UInt8((128 + (Double(v) - 128) * 224 / 255).rounded())
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

let args = CommandLine.arguments

// `recompress FILE.jpg [N]`: the station's transport recompression of a
// camera JPEG (`RecompressedFile.make`: libjxl encode and the station's own
// rebuild check), then the hub's rebuild, N times each.
if args.count > 2, args[1] == "recompress" {
    let jpeg = [UInt8](FileManager.default.contents(atPath: args[2])!)
    let n = args.count > 3 ? Int(args[3])! : 1
    let info = try JPEG.validate(Data(jpeg))
    var body: [UInt8] = []
    let t0 = now()
    for _ in 0..<n { body = try RecompressedFile.make(file: jpeg, jpegRange: 0..<jpeg.count, minSaving: 0)!.encoded() }
    let t1 = now()
    for _ in 0..<n {
        let rebuilt = try RecompressedFile.parse(body).rebuild(length: jpeg.count)
        precondition(rebuilt == jpeg, "the rebuild differs from the original")
    }
    let t2 = now()
    print(String(format: "recompress %dx%d: %d → %d bytes (%.1f %%), make %.1f ms, rebuild %.1f ms (mean of %d)",
                 info.width, info.height, jpeg.count, body.count, Double(body.count) * 100 / Double(jpeg.count),
                 (t1 - t0) * 1000 / Double(n), (t2 - t1) * 1000 / Double(n), n))
    exit(0)
}

// `preview FILE.jpg`: the enqueue path's preview (decode, resample, encode).
if args.count > 2, args[1] == "preview" {
    let jpeg = FileManager.default.contents(atPath: args[2])!
    let preview = try Preview.make(fromJPEG: jpeg, width: 480)
    print("preview: \(jpeg.count) → \(preview.count) bytes")
    exit(0)
}
let (w, h, rgb) = readPPM(args[1])
let quality = Int(args[2])!
let seconds = Double(args[3])!
let outDir = args[4]
// BENCH_RANGE=limited: the limited-range path (`Deinterleave.yuyvExpanding`).
let range: YCbCrRange = ProcessInfo.processInfo.environment["BENCH_RANGE"] == "limited" ? .limited : .full
let yuyv = range == .limited ? toLimited(toYUYV(rgb, w, h)) : toYUYV(rgb, w, h)

let encoder = try JPEGEncoder(quality: quality)
var jpegSize = 0
// Warm up caches and the encoder's buffers, as tjbench does.
for _ in 0..<3 { jpegSize = try yuyv.withUnsafeBytes { try encoder.encode(RawFrameView(format: .yuyv, width: w, height: h, range: range, bytes: $0)) }.count }
var times: [Double] = []
let end = now() + seconds
while now() < end {
    let t0 = now()
    _ = try yuyv.withUnsafeBytes { try encoder.encode(RawFrameView(format: .yuyv, width: w, height: h, range: range, bytes: $0)) }
    times.append(now() - t0)
}
// tjbench reports total time over iterations (a mean); give the mean too.
let mean = times.reduce(0, +) / Double(times.count)
let mp = Double(w * h) / 1e6
print(String(format: "encode_yuyv(\(range)) %dx%d q%d: %d runs, mean %.2f ms = %.1f MP/s, median %.2f ms = %.1f MP/s, best %.2f ms = %.1f MP/s, %d bytes",
             w, h, quality, times.count, mean * 1000, mp / mean, median(times) * 1000, mp / median(times),
             times.min()! * 1000, mp / times.min()!, jpegSize))

if args.count > 5, args[5] == "encode-only" { exit(0) }

// Shutter-to-disk: everything between the frame arriving and the JPEG and
// its preview being durable.
let processor = try StillProcessor(jpegQuality: quality, previewWidth: 480)
var s2d: [Double] = []
for i in 0..<15 {
    let t0 = now()
    let still = try yuyv.withUnsafeBytes { try processor.process(RawFrameView(format: .yuyv, width: w, height: h, range: range, bytes: $0)) }
    for (name, data) in [("still", still.jpeg), ("preview", still.preview)] {
        let path = "\(outDir)/\(name)-\(i).jpg"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
    }
    let dir = open(outDir, O_RDONLY)
    fsync(dir)
    close(dir)
    s2d.append(now() - t0)
}
print(String(format: "shutter_to_disk %dx%d: median %.1f ms, max %.1f ms over %d stills (encode + preview + metrics + write + fsync)",
             w, h, median(s2d) * 1000, s2d.max()! * 1000, s2d.count))
