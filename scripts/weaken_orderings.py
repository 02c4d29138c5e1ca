#!/usr/bin/python3
"""Weakens one memory ordering of the ring or the offloader's doorbell, runs
the tests that should notice, and restores the source.

The simulator's atomics are sequentially consistent, so it cannot see an
ordering bug; ThreadSanitizer (and a weakly ordered CPU) can. This script is
the method behind docs/SIMULATOR.md, "Weak memory: what the simulator cannot
see": each step names one ordering-sensitive line and its weakened form.

Usage:
  scripts/weaken_orderings.py --list
  scripts/weaken_orderings.py STEP [--tsan] [--release] [--repeat N] [--filter REGEX]
    (neither --tsan nor --release: both; --filter replaces the ctest -R regex)
  e.g. scripts/weaken_orderings.py release_fence --release --filter SameMoment --repeat 5

Exit status: 0 when some test caught the weakening, 1 when none did.

It builds only the targets it runs (-j 2): under the tsan preset
ring_buffer_stress_test ring_buffer_test offloader_test, run with the
Makefile's TSAN_OPTIONS and the RingBuffer|Offloader. tests; under the
release preset ring_buffer_test ring_buffer_stress_test
ring_buffer_model_test, run with -R ^RingBuffer. Steps in offloader.hpp skip
the release ring tests (they do not include it). The edited file is restored
from a copy on every exit (normal, error, Ctrl-C, SIGTERM), and the script
refuses to start if the file has uncommitted changes.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RING = "src/aegis/ring_buffer.hpp"
OFF = "src/aegis/offloader.hpp"
FENCE = "std::atomic_thread_fence(std::memory_order_seq_cst);"

# step -> (file, function, exact text (must occur once), weakened text)
STEPS = {
    "sp_publish": (RING, "try_claim_and_construct (single_producer)",
                   "      write_.store(w + 1, std::memory_order_relaxed);\n"
                   "      stamps_[w & mask_].store(w + 1, std::memory_order_release);",
                   "      write_.store(w + 1, std::memory_order_relaxed);\n"
                   "      stamps_[w & mask_].store(w + 1, std::memory_order_relaxed);"),
    "mp_publish": (RING, "try_claim_and_construct (multi_producer)",
                   "      std::construct_at(slot(w), std::forward<Args>(args)...);\n"
                   "      stamps_[w & mask_].store(w + 1, std::memory_order_release);\n    } else {",
                   "      std::construct_at(slot(w), std::forward<Args>(args)...);\n"
                   "      stamps_[w & mask_].store(w + 1, std::memory_order_relaxed);\n    } else {"),
    "sp_claim_load": (RING, "try_claim_and_construct (single_producer)",
                      "release_cache_ = release_.load(std::memory_order_acquire);",
                      "release_cache_ = release_.load(std::memory_order_relaxed);"),
    "mp_claim_load": (RING, "try_claim_and_construct (multi_producer)",
                      "if (w - release_.load(std::memory_order_acquire) >= full_at()) return false;",
                      "if (w - release_.load(std::memory_order_relaxed) >= full_at()) return false;"),
    "has_space_load": (RING, "has_space_seq_cst",
                       "release_.load(std::memory_order_acquire) < capacity_;",
                       "release_.load(std::memory_order_relaxed) < capacity_;"),
    "consumer_release": (RING, "release",
                         "release_.store(upto, std::memory_order_release);",
                         "release_.store(upto, std::memory_order_relaxed);"),
    "mp_stamp_load": (RING, "published_limit (multi_producer)",
                      "while (r < end && stamps_[r & mask_].load(std::memory_order_acquire) == r + 1) ++r;",
                      "while (r < end && stamps_[r & mask_].load(std::memory_order_relaxed) == r + 1) ++r;"),
    "sp_line_stamp_load": (RING, "published_limit (single_producer, last stamp of a line)",
                           "if (stamps_[(line_end - 1) & mask_].load(std::memory_order_acquire) == line_end) {",
                           "if (stamps_[(line_end - 1) & mask_].load(std::memory_order_relaxed) == line_end) {"),
    "sp_entry_stamp_load": (RING, "published_limit (single_producer, stamp by stamp)",
                            "stamps_[limit & mask_].load(std::memory_order_acquire) == limit + 1) ++limit;",
                            "stamps_[limit & mask_].load(std::memory_order_relaxed) == limit + 1) ++limit;"),
    "has_readable_load": (RING, "has_readable",
                          "return stamps_[r & mask_].load(std::memory_order_acquire) == r + 1;",
                          "return stamps_[r & mask_].load(std::memory_order_relaxed) == r + 1;"),
    "read_cursor_store": (RING, "read",
                          "if (limit != r) read_.store(limit, std::memory_order_release);",
                          "if (limit != r) read_.store(limit, std::memory_order_relaxed);"),
    "release_fence": (RING, "release (Dekker with push_slow)",
                      "    " + FENCE + "\n    if (space_waiters_.load(",
                      "    if (space_waiters_.load("),
    "has_space_fence": (RING, "has_space_seq_cst (Dekker with release)",
                        "    " + FENCE + "\n    return write_.load(",
                        "    return write_.load("),
    "waiter_register": (RING, "push_slow",
                        "space_waiters_.fetch_add(1, std::memory_order_seq_cst);",
                        "space_waiters_.fetch_add(1, std::memory_order_relaxed);"),
    "space_notify": (RING, "release",
                     "space_word_.fetch_add(1, std::memory_order_release);",
                     "space_word_.fetch_add(1, std::memory_order_relaxed);"),
    "consumer_waiting_store": (RING, "wait_readable",
                               "consumer_waiting_.store(1, std::memory_order_seq_cst);",
                               "consumer_waiting_.store(1, std::memory_order_relaxed);"),
    "data_notify": (RING, "try_claim_and_construct",
                    "    if (consumer_waiting_.load(std::memory_order_relaxed) != 0) [[unlikely]] {\n"
                    "      data_word_.fetch_add(1, std::memory_order_release);",
                    "    if (consumer_waiting_.load(std::memory_order_relaxed) != 0) [[unlikely]] {\n"
                    "      data_word_.fetch_add(1, std::memory_order_relaxed);"),
    "wake_pump_fence": (OFF, "wake_pump (Dekker with idle)",
                        "    " + FENCE + "\n    if (sleeping_.load(",
                        "    if (sleeping_.load("),
    "pump_sleep_fence": (OFF, "idle (Dekker with wake_pump)",
                         "    sleeping_.store(1, std::memory_order_relaxed);\n    " + FENCE + "\n",
                         "    sleeping_.store(1, std::memory_order_relaxed);\n"),
    "progress_notify": (OFF, "notify_progress",
                        "progress_word_.fetch_add(1, std::memory_order_release);",
                        "progress_word_.fetch_add(1, std::memory_order_relaxed);"),
}

TSAN_TARGETS = ["ring_buffer_stress_test", "ring_buffer_test", "offloader_test"]
TSAN_TESTS = r"^(RingBuffer|Offloader\.)"
RELEASE_TARGETS = ["ring_buffer_test", "ring_buffer_stress_test", "ring_buffer_model_test"]
RELEASE_TESTS = r"^RingBuffer"


CHILD = None  # The build or test command running now; stopped with us.


def run(cmd, env=None, log=None):
    global CHILD
    CHILD = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    out, _ = CHILD.communicate()
    rc, CHILD = CHILD.returncode, None
    if log is not None:
        with open(log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + out)
    return rc, out


def build(preset, targets, log):
    run(["cmake", "--preset", preset], log=log)
    rc, out = run(["cmake", "--build", "--preset", preset, "-j", "2", "--target", *targets], log=log)
    if rc != 0:
        sys.exit(f"build failed under {preset}; see {log}")


def failed_tests(out):
    # ctest's summary lists "  42 - Suite.Name (Failed)" lines.
    return sorted(set(re.findall(r"^\s*\d+ - (\S+) \((?:Failed|Timeout|Subprocess aborted|SEGFAULT)", out, re.M)))


def ctest(preset, regex, env, log):
    start = time.monotonic()
    rc, out = run(["ctest", "--preset", preset, "-R", regex, "--timeout", "600"], env=env, log=log)
    return rc, failed_tests(out), time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", nargs="?", choices=sorted(STEPS))
    ap.add_argument("--list", action="store_true", help="list the steps and exit")
    ap.add_argument("--tsan", action="store_true", help="run the tsan preset's tests")
    ap.add_argument("--release", action="store_true", help="run the release preset's ring tests")
    ap.add_argument("--repeat", type=int, default=1, help="run the tests N times")
    ap.add_argument("--filter", default=None, help="ctest -R regex instead of the default ones")
    args = ap.parse_args()
    if args.list or args.step is None:
        for name, (path, fn, _, _) in STEPS.items():
            print(f"{name:24} {path}:{fn}")
        return 0
    path, fn, old, new = STEPS[args.step]
    full = os.path.join(ROOT, path)
    if subprocess.run(["git", "diff", "--quiet", "--", path], cwd=ROOT).returncode != 0:
        sys.exit(f"{path} has uncommitted changes; commit or stash them first")
    text = open(full).read()
    if text.count(old) != 1:
        sys.exit(f"step {args.step}: the text to weaken occurs {text.count(old)} times in {path}, not once")

    backup = tempfile.NamedTemporaryFile(delete=False, prefix="weaken-", suffix=".orig")
    backup.close()
    shutil.copyfile(full, backup.name)

    def restore():
        # copyfile, not copy2: the restored file must be newer than the
        # weakened build, or the build tools would keep the weakened objects.
        if os.path.exists(backup.name):
            shutil.copyfile(backup.name, full)
            os.unlink(backup.name)

    def on_signal(signum, _frame):
        if CHILD is not None:
            os.killpg(CHILD.pid, signal.SIGTERM)  # Its own session: the build and its compilers only.
        restore()
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    log = os.path.join(tempfile.gettempdir(), f"weaken-{args.step}.log")
    open(log, "w").close()
    both = not args.tsan and not args.release
    caught = []
    try:
        with open(full, "w") as f:
            f.write(text.replace(old, new))
        print(f"step {args.step}: {path}:{fn} weakened; log {log}")
        if args.tsan or both:
            build("tsan", TSAN_TARGETS, log)
            env = dict(os.environ)
            env["TSAN_OPTIONS"] = f"halt_on_error=1 second_deadlock_stack=1 suppressions={ROOT}/scripts/tsan.supp"
            for i in range(args.repeat):
                rc, failed, secs = ctest("tsan", args.filter or TSAN_TESTS, env, log)
                print(f"  tsan    run {i + 1}: {'caught by ' + ', '.join(failed) if failed else 'not caught'}"
                      f" ({secs:.0f} s)")
                caught += failed
        if (args.release or both) and path == RING:
            build("release", RELEASE_TARGETS, log)
            for i in range(args.repeat):
                rc, failed, secs = ctest("release", args.filter or RELEASE_TESTS, dict(os.environ), log)
                print(f"  release run {i + 1}: {'caught by ' + ', '.join(failed) if failed else 'not caught'}"
                      f" ({secs:.0f} s)")
                caught += failed
        elif args.release or both:
            print("  release: skipped (the ring's tests do not include " + path + ")")
    finally:
        restore()
    # Exit 0 when something caught the weakening, 1 when nothing did.
    return 0 if caught else 1


if __name__ == "__main__":
    sys.exit(main())
