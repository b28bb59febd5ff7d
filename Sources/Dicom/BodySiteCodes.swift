/// The kiosk's body sites (`BodySite` in Station's request validation; the
/// raw strings, so this module does not depend on the daemon) as DICOM
/// Anatomic Region Sequence codes: SNOMED CT concepts from PS3.16 CID 4029
/// "Dermatology Anatomic Site" — the skin of a region rather than the region
/// (CID 4031), because what the station photographs is skin — with the code
/// meanings exactly as CID 4029 gives them, and left/right as an Anatomic
/// Region Modifier from CID 244 "Laterality".
struct BodySiteCode: Sendable, Equatable {
    var value: String
    var meaning: String
    /// "R", "L", or nil for an unpaired site.
    var laterality: String?

    static let scheme = "SCT"

    static let table: [String: BodySiteCode] = [
        "face": .init(value: "73897004", meaning: "Skin of face"),
        "scalp": .init(value: "43067004", meaning: "Skin of scalp"),
        "neck": .init(value: "43081002", meaning: "Skin of neck"),
        "chest": .init(value: "244106003", meaning: "Skin of anterior surface of thorax"),
        "abdomen": .init(value: "75093004", meaning: "Skin of abdomen"),
        "back": .init(value: "66643007", meaning: "Skin of back"),
        "arm_left": .init(value: "371311000", meaning: "Skin of upper extremity", laterality: "L"),
        "arm_right": .init(value: "371311000", meaning: "Skin of upper extremity", laterality: "R"),
        "hand_left": .init(value: "33712006", meaning: "Skin of hand", laterality: "L"),
        "hand_right": .init(value: "33712006", meaning: "Skin of hand", laterality: "R"),
        "leg_left": .init(value: "371304004", meaning: "Skin of lower extremity", laterality: "L"),
        "leg_right": .init(value: "371304004", meaning: "Skin of lower extremity", laterality: "R"),
        "foot_left": .init(value: "60496002", meaning: "Skin of foot", laterality: "L"),
        "foot_right": .init(value: "60496002", meaning: "Skin of foot", laterality: "R"),
        "genital": .init(value: "60944009", meaning: "Skin of external genitalia"),
        "mouth": .init(value: "113277000", meaning: "Oral mucosa"),
        "eye": .init(value: "362916000", meaning: "Skin of eye region"),
        "other": .init(value: "39937001", meaning: "Skin"),
    ]

    /// CID 244 codes for the Anatomic Region Modifier Sequence.
    static let lateralityCodes: [String: (value: String, meaning: String)] = [
        "R": ("24028007", "Right"), "L": ("7771000", "Left"),
    ]

    static func lookup(_ site: String) throws(DicomError) -> BodySiteCode {
        guard let code = table[site] else {
            throw DicomError(.invalidContext, "the body site \"\(site)\" is not one the kiosk offers",
                             nextStep: "use one of: " + table.keys.sorted().joined(separator: ", "))
        }
        return code
    }
}
