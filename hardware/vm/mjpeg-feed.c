/* Feeds recorded MJPEG frames into a v4l2loopback device, as a UVC camera
 * would send them, for the VM tests: sets the output format to MJPEG at
 * WIDTHxHEIGHT and writes the given JPEG files over and over at about
 * 15 frames per second until killed.
 *
 * usage: mjpeg-feed /dev/videoN WIDTH HEIGHT FRAME.jpg [FRAME.jpg...]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s DEVICE WIDTH HEIGHT FRAME.jpg...\n", argv[0]); return 2; }
    int n = argc - 4;
    unsigned char **frames = calloc(n, sizeof *frames);
    size_t *sizes = calloc(n, sizeof *sizes), largest = 0;
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(argv[4 + i], "rb");
        if (!f) { perror(argv[4 + i]); return 1; }
        fseek(f, 0, SEEK_END); sizes[i] = ftell(f); fseek(f, 0, SEEK_SET);
        frames[i] = malloc(sizes[i]);
        if (fread(frames[i], 1, sizes[i], f) != sizes[i]) { perror("read"); return 1; }
        fclose(f);
        if (sizes[i] > largest) largest = sizes[i];
    }
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) { perror(argv[1]); return 1; }
    struct v4l2_format fmt;
    memset(&fmt, 0, sizeof fmt);
    fmt.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
    fmt.fmt.pix.width = atoi(argv[2]);
    fmt.fmt.pix.height = atoi(argv[3]);
    fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_MJPEG;
    fmt.fmt.pix.field = V4L2_FIELD_NONE;
    fmt.fmt.pix.sizeimage = largest;
    if (ioctl(fd, VIDIOC_S_FMT, &fmt) < 0) { perror("VIDIOC_S_FMT (output, MJPEG)"); return 1; }
    printf("feeding %d frame(s) of up to %zu bytes as MJPEG %ux%u\n", n, largest, fmt.fmt.pix.width, fmt.fmt.pix.height);
    fflush(stdout);
    for (unsigned long k = 0;; k++) {
        int i = k % n;
        if (write(fd, frames[i], sizes[i]) < 0 && errno != EAGAIN) { perror("write"); return 1; }
        usleep(66000);
    }
}
