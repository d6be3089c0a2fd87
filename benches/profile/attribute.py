"""Attributes the login middleware's share of a server worker's CPU samples, by call stack.

Reads `perf script -F comm,ip,sym` output (see profile-middleware.sh) and counts, among the
samples of the worker threads named COMM, those whose stack holds the middleware's `call`
(MIDDLEWARE regex) and, below it, no frame of the inner app's service (INNER regex): the
middleware's own work. Those are then split by what they were doing, from the function names.

    python3 attribute.py SCRIPT_OUTPUT COMM MIDDLEWARE INNER
"""

import collections
import re
import sys


def stacks_of(path, comm):
    """Yields the call stacks (leaf first) of the samples of threads whose name starts with comm."""
    current = None
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if current is not None:
                    yield current
                current = None
            elif not line.startswith("\t"):
                if current is not None:
                    yield current
                current = [] if line.strip().startswith(comm) else None
            elif current is not None:
                current.append(line.strip())
    if current is not None:
        yield current


def has(frames, pattern):
    return any(re.search(pattern, f) for f in frames)


CATEGORIES = [
    (r"decode_with_nonce", r"serde_json|WirePayload", "session.rs decode_with_nonce: serde_json payload"),
    (r"decode_with_nonce", r"base64", "session.rs decode_with_nonce: base64 of the payload"),
    (r"decode_with_nonce", r"sha2|hmac|Hmac|Key::mac|verify", "session.rs SessionKeys::verify: HMAC-SHA256"),
    (r"decode_with_nonce", r"malloc|free|realloc", "session.rs decode_with_nonce: allocations"),
    (r"decode_with_nonce", r"", "session.rs decode_with_nonce: the rest"),
    (r"read_with_nonce", r"", "session.rs read_with_nonce / cookie_values: Cookie header scan"),
    (r"LoginFlow::decide", r"", "login.rs LoginFlow::decide: the rest (clock, paths)"),
    (r"login_parts|request_parts", r"", "actix convert.rs login_parts -> login.rs request_parts"),
    (r"[Ee]xtensions", r"", "extensions insert/remove"),
    (r"drop_in_place", r"", "drops"),
]


def category(frames):
    for outer, inner, name in CATEGORIES:
        if has(frames, outer) and (not inner or has(frames, inner)):
            return name
    return "other middleware frames"


def main():
    path, comm, middleware, inner = sys.argv[1:5]
    total = 0
    own = []
    inner_count = 0
    for stack in stacks_of(path, comm):
        total += 1
        for i, frame in enumerate(stack):
            if re.search(middleware, frame):
                callees = stack[:i]
                if has(callees, inner):
                    inner_count += 1
                else:
                    own.append(stack[: i + 1])
                break
    if total == 0:
        sys.exit(f"no samples of threads named {comm}*")
    print(f"{total} samples of {comm}*: the middleware's own work {100 * len(own) / total:.1f} %, "
          f"the inner service called from it {100 * inner_count / total:.1f} %")
    for name, count in collections.Counter(category(s) for s in own).most_common():
        print(f"{100 * count / total:6.2f} %  {name}")


if __name__ == "__main__":
    main()
