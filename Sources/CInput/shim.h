#ifndef TELESTATION_CINPUT_SHIM_H
#define TELESTATION_CINPUT_SHIM_H
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/input.h>

/* The EVIOC* request numbers are built by _IOR/_IOC macros, some taking a
 * length, which Swift cannot import. */
static inline int ts_evdev_name(int fd, char *out, unsigned int len) { return ioctl(fd, EVIOCGNAME(len), out); }
static inline int ts_evdev_key_bits(int fd, unsigned char *out, unsigned int len) { return ioctl(fd, EVIOCGBIT(EV_KEY, len), out); }

/* struct input_event has time fields whose names depend on the word size;
 * the station needs only type, code and value. */
static inline unsigned int ts_input_event_size(void) { return (unsigned int)sizeof(struct input_event); }
static inline void ts_input_event_fields(const void *raw, unsigned short *type, unsigned short *code, int *value) {
    struct input_event ev;
    memcpy(&ev, raw, sizeof ev);
    *type = ev.type; *code = ev.code; *value = ev.value;
}
static const unsigned short TS_EV_KEY = EV_KEY;
static const unsigned int TS_KEY_MAX = KEY_MAX;
#endif
