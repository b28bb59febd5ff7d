import Foundation

/// What an image is in a teledermatology case: the region seen from a
/// distance, the lesion close up, or through the dermatoscope.
public enum ImageRole: String, Sendable, Codable, CaseIterable {
    case overview
    case closeUp = "close_up"
    case dermoscopic
}

/// Which side of the body map the site was picked on.
public enum BodyAspect: String, Sendable, Codable, CaseIterable {
    case front, back
}

/// The history a dermatologist asks for first, entered once per case.
/// Every field is optional: staff answer what they know.
public struct CaseHistory: Sendable, Equatable, Codable {
    /// How long the lesion has been there, as staff wrote it ("3 meses").
    public var duration: String?
    public var itching: Bool?
    public var bleeding: Bool?
    /// Changed in size or colour.
    public var changed: Bool?
    /// Treatment tried before, as staff wrote it.
    public var treatment: String?

    public init(duration: String? = nil, itching: Bool? = nil, bleeding: Bool? = nil, changed: Bool? = nil, treatment: String? = nil) {
        self.duration = duration
        self.itching = itching
        self.bleeding = bleeding
        self.changed = changed
        self.treatment = treatment
    }

    public var isEmpty: Bool { self == CaseHistory() }

    /// Compact JSON with sorted keys, as it travels in upload metadata.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// The patient as staff entered them for a case, and how the kiosk echoes
/// them back before capture.
public struct PatientEntry: Sendable, Equatable, Codable {
    /// Apellidos, as on the DNI: "MAMANI QUISPE".
    public var surnames: String
    /// Nombres: "Rosa".
    public var givenNames: String
    /// "F" or "M" (as on the DNI); "O" when staff chose neither.
    public var sex: String
    /// Age in whole years.
    public var age: Int

    public init(surnames: String, givenNames: String, sex: String, age: Int) {
        self.surnames = surnames
        self.givenNames = givenNames
        self.sex = sex
        self.age = age
    }

    enum CodingKeys: String, CodingKey {
        case surnames, givenNames = "given_names", sex, age
    }

    /// DICOM Person Name form: `SURNAMES^Given names`.
    public var dicomName: String { "\(surnames)^\(givenNames)" }
    /// DICOM Age String: `054Y`.
    public var dicomAge: String { String(format: "%03dY", max(0, min(age, 999))) }
}
