import Dicom
import Station
import Testing

/// Every site the kiosk offers has a DICOM body site code, and no other.
struct DicomSiteTests {
    @Test func everyKioskSiteHasAnAnatomicRegionCode() {
        #expect(BodySite.allCases.map(\.rawValue).sorted() == DicomObject.bodySites)
    }
}
