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
    # Full verification of a value the cache does not hold (a new or rotated cookie).
    (r"SessionCookie::verify", r"serde_json|WirePayload", "session.rs verify: serde_json payload"),
    (r"SessionCookie::verify", r"base64", "session.rs verify: base64 of the payload"),
    (r"SessionCookie::verify", r"sha2|hmac|Hmac|Key::mac", "session.rs verify: HMAC-SHA256"),
    (r"SessionCookie::verify", r"", "session.rs verify: the rest"),
    (r"VerifiedCache::insert", r"", "session/cache.rs VerifiedCache::insert"),
    # The cached path.
    (r"VerifiedCache::get", r"SessionUser.*[Cc]lone|String.*[Cc]lone|malloc|memcpy", "session/cache.rs: cloning the cached SessionUser"),
    (r"VerifiedCache::get", r"", "session/cache.rs VerifiedCache::get: slot, lock, compare"),
    (r"SessionCookie::(read|decode)|cookie_values", r"memchr|memmem|cookie_values_in|from_utf8", "session.rs: finding the cookie in the Cookie header"),
    (r"SessionCookie::(read|decode)|cookie_values", r"get_all|HeaderMap", "session.rs: Cookie header lookup in the HeaderMap"),
    (r"SessionCookie::(read|decode)|cookie_values", r"", "session.rs read/decode: the rest"),
    (r"LoginFlow::(decide|fast_proceed)", r"SystemTime|clock_gettime|vdso|Timespec", "login.rs: the clock (SystemTime::now)"),
    (r"LoginFlow::(decide|fast_proceed)", r"drop_in_place|free", "login.rs: drops"),
    (r"LoginFlow::(decide|fast_proceed)", r"", "login.rs LoginFlow::decide / fast_proceed: the rest (paths, moves)"),
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
    others = collections.Counter(
        s[0] for s in own if category(s) == "other middleware frames"
    ).most_common(5)
    if others:
        print("        leaf functions of the other frames: " + "; ".join(
            f"{100 * count / total:.2f} % {re.sub(r'^[0-9a-f]+ ', '', leaf)[:80]}"
            for leaf, count in others))


if __name__ == "__main__":
    main()
