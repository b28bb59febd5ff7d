# Capture buttons: libgpiod for the GPIO button and LED (Debian 12: libgpiod 1.6).
APT_BUILD += libgpiod-dev
