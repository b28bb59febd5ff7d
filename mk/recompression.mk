# JPEG XL transport recompression (Sources/Recompression): libjxl's own
# cjxl and djxl (Debian libjxl-tools) judge the station's streams and make
# streams for the hub's rebuild.
APT_TEST     += libjxl-tools
TEST_MODULES += RecompressionTests
