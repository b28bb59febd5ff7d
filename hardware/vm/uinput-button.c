/* A virtual button for the VM tests: a uinput device that sends one key
 * (KEY_CAMERA by default), driven by commands on stdin, one per line:
 *   press    press and release
 *   bounce   press, release, press, release within 10 ms (a bouncing contact)
 *   hold     press, 20 autorepeats 30 ms apart, release
 *   unplug   destroy the device, as pulling the USB cable does
 *   plug     create it again
 *   quit
 * After each create it prints the device's event node ("/dev/input/event5")
 * on stdout, and "ok" after every other command.
 *
 * usage: uinput-button NAME [KEYCODE]   (build: cc -O2 -o uinput-button uinput-button.c)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/uinput.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fd = -1;
static const char *name;
static int key = KEY_CAMERA;

static void emit(int type, int code, int value) {
    struct input_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type; ev.code = code; ev.value = value;
    if (write(fd, &ev, sizeof ev) != sizeof ev) { perror("uinput write"); exit(1); }
}
static void key_event(int value) { emit(EV_KEY, key, value); emit(EV_SYN, SYN_REPORT, 0); }

static void create(void) {
    fd = open("/dev/uinput", O_WRONLY | O_NONBLOCK);
    if (fd < 0) { perror("open /dev/uinput"); exit(1); }
    ioctl(fd, UI_SET_EVBIT, EV_KEY);
    ioctl(fd, UI_SET_EVBIT, EV_REP);
    ioctl(fd, UI_SET_KEYBIT, key);
    struct uinput_setup setup;
    memset(&setup, 0, sizeof setup);
    setup.id.bustype = BUS_USB; setup.id.vendor = 0x1209; setup.id.product = 0x0001;
    snprintf(setup.name, UINPUT_MAX_NAME_SIZE, "%s", name);
    if (ioctl(fd, UI_DEV_SETUP, &setup) < 0 || ioctl(fd, UI_DEV_CREATE) < 0) { perror("uinput create"); exit(1); }
    char sys[64] = "", path[128];
    if (ioctl(fd, UI_GET_SYSNAME(sizeof sys), sys) < 0) { perror("UI_GET_SYSNAME"); exit(1); }
    snprintf(path, sizeof path, "/sys/devices/virtual/input/%s", sys);
    /* The event node appears a moment after the device. */
    for (int tries = 0; tries < 200; tries++) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strncmp(e->d_name, "event", 5) == 0) {
                char node[300];
                snprintf(node, sizeof node, "/dev/input/%s", e->d_name);
                for (int w = 0; w < 200 && access(node, F_OK) != 0; w++) usleep(10000);
                printf("%s\n", node); fflush(stdout);
                closedir(d);
                return;
            }
        }
        if (d) closedir(d);
        usleep(10000);
    }
    fprintf(stderr, "no event node under %s\n", path);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s NAME [KEYCODE]\n", argv[0]); return 2; }
    name = argv[1];
    if (argc > 2) key = atoi(argv[2]);
    create();
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "press", 5) == 0) { key_event(1); usleep(50000); key_event(0); }
        else if (strncmp(line, "bounce", 6) == 0) { key_event(1); usleep(3000); key_event(0); usleep(3000); key_event(1); usleep(3000); key_event(0); }
        else if (strncmp(line, "hold", 4) == 0) { key_event(1); for (int i = 0; i < 20; i++) { usleep(30000); key_event(2); } key_event(0); }
        else if (strncmp(line, "unplug", 6) == 0) { ioctl(fd, UI_DEV_DESTROY); close(fd); fd = -1; }
        else if (strncmp(line, "plug", 4) == 0) { create(); continue; }
        else if (strncmp(line, "quit", 4) == 0) break;
        printf("ok\n"); fflush(stdout);
    }
    if (fd >= 0) { ioctl(fd, UI_DEV_DESTROY); close(fd); }
    return 0;
}
