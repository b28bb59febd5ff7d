"""What the VM's daemon checks accept as evidence, kept apart from the checks
so it is tested on the host without a VM (Tests/Scripts/test_vm_evidence.py).
"""
import time


def settled(read, quiet, limit, sleep=time.sleep, clock=time.monotonic):
    """Reads a count until two reads a quiet window apart agree, so events
    still on their way are counted too. Returns (count, True) once settled,
    or (last count, False) if it kept changing for `limit` seconds."""
    last = read()
    end = clock() + limit
    while clock() < end:
        sleep(quiet)
        now = read()
        if now == last:
            return now, True
        last = now
    return last, False


# The engine's own losses (a slow frame, a buffer returned late) happen
# without any fault: a fault's rise must stand clearly above them.
def frame_loss_evidence(counter, before, baseline, after):
    """Whether a counter in the daemon's status (`frames_dropped`,
    `frames_damaged`) shows that an injected fault reached the engine.
    `baseline` is its rise over a window as long as the fault's without the
    fault; `before`/`after` are its values around the fault.
    Returns (ok, text for the verdict)."""
    if before is None or after is None or baseline is None:
        return False, f"the status has no {counter} count (before {before}, after {after})"
    rise = after - before
    if counter == "frames_dropped":
        # vivid drops half the frames: at 25-30 fps, dozens in a few seconds.
        need = 2 * baseline + 5
    else:
        # vivid flags exactly one buffer; on its own it flags none.
        if baseline:
            return False, f"{counter} rose by {baseline} without any fault, so a rise cannot be told from the fault's"
        need = 1
    text = f"{counter} rose by {rise} during the fault ({baseline} in as long without it; at least {need} needed)"
    return rise >= need, text
