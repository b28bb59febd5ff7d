# DICOM objects (Sources/Dicom, Tests/DicomTests): the field's own tools judge
# what the station writes — dciodvfy (dicom3tools) for the IOD rules, dcmdump
# (dcmtk) and pydicom as readers.
APT_TEST     += dicom3tools dcmtk
PIP_TEST     += pydicom
TEST_MODULES += DicomTests
