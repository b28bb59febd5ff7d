"""How a helper server started by a test lives and dies."""
import os
import signal
import threading
import time


def exit_with_parent():
    """Ends this process when the test process that started it goes away."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def obey_sigterm():
    """A Swift test process blocks SIGTERM (its services handle signals) and a
    child inherits the mask; the test's terminate() must still end this one."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
