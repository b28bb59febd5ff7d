#ifndef TELESTATION_CJXL_SHIM_H
#define TELESTATION_CJXL_SHIM_H
#include <stddef.h>
#include <jxl/decode.h>
#include <jxl/encode.h>
#endif
