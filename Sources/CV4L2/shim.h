#ifndef TELESTATION_CV4L2_SHIM_H
#define TELESTATION_CV4L2_SHIM_H
#include <stddef.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <linux/videodev2.h>
#include <libv4l2.h>

/* v4l2_ioctl is variadic; every V4L2 request takes one pointer argument. */
static inline int ts_v4l2_ioctl(int fd, unsigned long request, void *arg) { return v4l2_ioctl(fd, request, arg); }
static inline int ts_v4l2_open(const char *path, int flags) { return v4l2_open(path, flags); }
/* Plain kernel calls, for listing devices without libv4l2's emulated formats. */
static inline int ts_sys_ioctl(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
static inline int ts_sys_open(const char *path, int flags) { return open(path, flags); }

/* The VIDIOC_* request numbers are built by _IOWR(...sizeof...) macros that
 * Swift cannot import. */
static const unsigned long TS_VIDIOC_QUERYCAP = VIDIOC_QUERYCAP;
static const unsigned long TS_VIDIOC_ENUM_FMT = VIDIOC_ENUM_FMT;
static const unsigned long TS_VIDIOC_ENUM_FRAMESIZES = VIDIOC_ENUM_FRAMESIZES;
static const unsigned long TS_VIDIOC_ENUM_FRAMEINTERVALS = VIDIOC_ENUM_FRAMEINTERVALS;
static const unsigned long TS_VIDIOC_G_FMT = VIDIOC_G_FMT;
static const unsigned long TS_VIDIOC_S_FMT = VIDIOC_S_FMT;
static const unsigned long TS_VIDIOC_TRY_FMT = VIDIOC_TRY_FMT;
static const unsigned long TS_VIDIOC_REQBUFS = VIDIOC_REQBUFS;
static const unsigned long TS_VIDIOC_QUERYBUF = VIDIOC_QUERYBUF;
static const unsigned long TS_VIDIOC_QBUF = VIDIOC_QBUF;
static const unsigned long TS_VIDIOC_DQBUF = VIDIOC_DQBUF;
static const unsigned long TS_VIDIOC_STREAMON = VIDIOC_STREAMON;
static const unsigned long TS_VIDIOC_STREAMOFF = VIDIOC_STREAMOFF;
static const unsigned long TS_VIDIOC_QUERYCTRL = VIDIOC_QUERYCTRL;
static const unsigned long TS_VIDIOC_QUERY_EXT_CTRL = VIDIOC_QUERY_EXT_CTRL;
static const unsigned long TS_VIDIOC_QUERYMENU = VIDIOC_QUERYMENU;
static const unsigned long TS_VIDIOC_G_CTRL = VIDIOC_G_CTRL;
static const unsigned long TS_VIDIOC_S_CTRL = VIDIOC_S_CTRL;
static const unsigned long TS_VIDIOC_S_PARM = VIDIOC_S_PARM;
static const unsigned long TS_VIDIOC_G_PARM = VIDIOC_G_PARM;
static const unsigned long TS_VIDIOC_G_EXT_CTRLS = VIDIOC_G_EXT_CTRLS;
static const unsigned long TS_VIDIOC_G_INPUT = VIDIOC_G_INPUT;
static const unsigned long TS_VIDIOC_S_INPUT = VIDIOC_S_INPUT;

static const unsigned int TS_V4L2_CTRL_FLAG_NEXT_CTRL = V4L2_CTRL_FLAG_NEXT_CTRL;
static const unsigned int TS_V4L2_CTRL_FLAG_NEXT_COMPOUND = V4L2_CTRL_FLAG_NEXT_COMPOUND;

/* Anonymous unions in v4l2 structs import awkwardly; small accessors. */
static inline unsigned int ts_fmt_pix_width(const struct v4l2_format *f) { return f->fmt.pix.width; }
static inline unsigned int ts_fmt_pix_height(const struct v4l2_format *f) { return f->fmt.pix.height; }
static inline unsigned int ts_fmt_pix_pixelformat(const struct v4l2_format *f) { return f->fmt.pix.pixelformat; }
static inline unsigned int ts_fmt_pix_bytesperline(const struct v4l2_format *f) { return f->fmt.pix.bytesperline; }
static inline unsigned int ts_fmt_pix_colorspace(const struct v4l2_format *f) { return f->fmt.pix.colorspace; }
static inline unsigned int ts_fmt_pix_quantization(const struct v4l2_format *f) { return f->fmt.pix.quantization; }
static inline void ts_fmt_set_pix(struct v4l2_format *f, unsigned int w, unsigned int h, unsigned int fourcc) {
    f->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    f->fmt.pix.width = w; f->fmt.pix.height = h;
    f->fmt.pix.pixelformat = fourcc; f->fmt.pix.field = V4L2_FIELD_ANY;
}
static inline unsigned int ts_buf_offset(const struct v4l2_buffer *b) { return b->m.offset; }
/* v4l2_querymenu is packed; copy out rather than take member addresses. */
static inline void ts_querymenu_name(const struct v4l2_querymenu *m, char out[33]) { memcpy(out, m->name, 32); out[32] = 0; }
static inline long long ts_querymenu_value(const struct v4l2_querymenu *m) { long long v; memcpy(&v, &m->value, sizeof v); return v; }
static inline double ts_buf_timestamp(const struct v4l2_buffer *b) { return (double)b->timestamp.tv_sec + (double)b->timestamp.tv_usec / 1e6; }
#endif
