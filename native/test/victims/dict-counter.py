"""A real python3 program as a victim (same protocol as victim.h): `python3 dict-counter.py <workdir>`.

Every 50 ms it adds d[i] = i * i to a dict and appends "<len(d)> <sum of values>" to <workdir>/log,
a file it opened (line-buffered, O_APPEND) before the loop, and prints the same line on stdout. When <workdir>/check appears it verifies the
dict (keys 0..n-1 in order, values k*k, and a few other objects it made at start) and writes PASS or
FAIL: <reason> to <workdir>/result.
"""
import os
import random
import sys
import time

workdir = sys.argv[1]
os.closerange(3, 1 << 16)  # fds the test runner leaked to us (see victim.h)


def put(name, text):
    tmp = os.path.join(workdir, "." + name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(workdir, name))


log = open(os.path.join(workdir, "log"), "a", buffering=1)
check = os.path.join(workdir, "check")
d = {}
rng = random.Random(1234)
draws = []
greeting = "größe ✓ " * 100
closure_base = 7


def scaled(x):
    return x * closure_base


put("ready", "%d\n" % os.getpid())
i = 0
while not os.path.exists(check):
    d[i] = i * i
    draws.append(rng.random())
    i += 1
    log.write("%d %d\n" % (len(d), sum(d.values())))
    print("%d %d" % (len(d), sum(d.values())), flush=True)
    time.sleep(0.05)

errors = []
if len(d) != i:
    errors.append("len(d) is %d, expected %d" % (len(d), i))
if list(d) != list(range(i)):
    errors.append("dict keys are not 0..%d in insertion order" % (i - 1))
bad = [k for k, v in d.items() if v != k * k]
if bad:
    errors.append("%d wrong values, first d[%d] = %r" % (len(bad), bad[0], d[bad[0]]))
ref = random.Random(1234)
if draws != [ref.random() for _ in range(i)] or rng.random() != ref.random():
    errors.append("random.Random state diverged")
if greeting != "größe ✓ " * 100 or scaled(6) != 42:
    errors.append("string or closure changed")
log.write("check %d\n" % len(d))
put("result", "PASS\n" if not errors else "FAIL: " + "; ".join(errors) + "\n")
sys.exit(0 if not errors else 1)
