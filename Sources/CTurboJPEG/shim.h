#ifndef TELESTATION_CTURBOJPEG_SHIM_H
#define TELESTATION_CTURBOJPEG_SHIM_H
#include <stddef.h>
#include <turbojpeg.h>
#endif
