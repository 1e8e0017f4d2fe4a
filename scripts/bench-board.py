#!/usr/bin/env python3
"""Opening a big board: how fast `pm board` is usable on a large project, and how much it keeps.

    scripts/bench-board.py --server http://127.0.0.1:PORT --pm target/release/pm \
        --items 50000 --keys-items 5000 --runs 3 [--json board.json]

Against a running pm-server (a fresh one: the script creates two projects), it
  1. creates a project of --items work items and one of --keys-items, each with ONE sync import
     (`pm sync import`, the fastest way in: one transaction on the server);
  2. starts the real `pm board --project KEY` in a detached tmux session of 200x50 and reads the
     screen with `tmux capture-pane` until a card of the project shows: the time from starting
     the process to that screen is the start-up time; then VmHWM (peak) and VmRSS (now, once
     the board has settled) of the board's process from /proc;
  3. on the --keys-items project: sends keys with `tmux send-keys` and polls the screen until its
     lanes change: `j` / `k` in turn (the next card and back), and `L` / `H` in turn (the selected card to the next
     lane and back; the board shows it there at once, before the server answers).
Each figure is the median of --runs runs (a fresh board each run). The polling costs a few
milliseconds (one tmux process per look): the same keys on a project of 20 cards give that floor,
printed beside. Writes a pm-bench style JSON (scenario "board") with --json, for
`pm-bench summarize` (scripts/bench.sh runs this script).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

SOCKET = "pm-bench-board-%d" % os.getpid()
LANES = ["backlog", "todo", "in_progress", "review", "done"]
PRIORITIES = ["low", "medium", "high", "critical"]
TYPES = ["task", "story", "task", "task"]


def tmux(*argv, check=True):
    out = subprocess.run(
        ["tmux", "-L", SOCKET] + list(argv),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=20,
    )
    if check and out.returncode != 0:
        raise SystemExit("tmux %s failed: %s" % (argv[0], out.stderr.decode(errors="replace")))
    return out.stdout.decode("utf-8", "replace")


def screen():
    # -e: with the attributes, so a moved selection (reversed video) is a change.
    return tmux("capture-pane", "-p", "-e", "-t", "board")


def document(key, n, user):
    """An ExportData document: one project and n work items spread over the five lanes."""
    now = int(time.time())
    project = str(uuid.uuid4())
    items = []
    for i in range(1, n + 1):
        items.append(
            {
                "id": str(uuid.uuid4()),
                "item_type": TYPES[i % len(TYPES)],
                "title": "Card number %d of the big board" % i,
                "description": None,
                "status": LANES[i % len(LANES)],
                "priority": PRIORITIES[i % len(PRIORITIES)],
                "parent_id": None,
                "project_id": project,
                "assignee_id": None,
                "sprint_id": None,
                "story_points": i % 8,
                "item_number": i,
                "position": i,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "created_by": user,
                "updated_by": user,
            }
        )
    return {
        "schema_version": 1,
        "projects": [
            {
                "id": project,
                "key": key,
                "title": "Big board %s" % key,
                "description": None,
                "status": "active",
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "created_by": user,
                "updated_by": user,
                "next_work_item_number": n + 1,
            }
        ],
        "work_items": items,
    }


def seed(args, key, n, env):
    doc = document(key, n, env["PM_USER_ID"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
        path = f.name
    started = time.monotonic()
    out = subprocess.run(
        [args.pm, "--server", args.server, "sync", "import", "--strict", "-f", path],
        capture_output=True,
        env=env,
    )
    os.unlink(path)
    if out.returncode != 0:
        raise SystemExit("import of %s failed: %s" % (key, out.stderr.decode(errors="replace")))
    say("seeded %s: %d items in %.1f s" % (key, n, time.monotonic() - started))


def say(text):
    print("bench-board: " + text, file=sys.stderr)


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def start_board(args, key, env):
    """Starts the board; returns (seconds to the first screen with a card, pid)."""
    command = "exec env %s %s --server %s board --project %s" % (
        " ".join("%s=%s" % kv for kv in env.items() if kv[0].startswith("PM_")),
        args.pm,
        args.server,
        key,
    )
    started = time.monotonic()
    tmux("new-session", "-d", "-s", "board", "-x", "200", "-y", "50", command)
    pid = int(tmux("display-message", "-p", "-t", "board", "#{pane_pid}").strip())
    deadline = started + 60
    while time.monotonic() < deadline:
        text = screen()
        # A card's key ("BIG-1 ") in a lane, not just the header's project key.
        if ("%s-" % key) in text:
            return time.monotonic() - started, pid
        time.sleep(0.002)
    raise SystemExit("the board showed no card of %s within 60 s:\n%s" % (key, screen()))


def stop_board():
    tmux("kill-server", check=False)
    # The next session must not meet this tmux server on its way out.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = subprocess.run(["tmux", "-L", SOCKET, "has-session"], capture_output=True)
        if alive.returncode != 0:
            break
        time.sleep(0.05)
    time.sleep(0.3)


def lanes():
    """The header and the lanes, without the activity strip and the status bar below them (whose
    clock changes by itself)."""
    return screen().split("\n")[:-4]


def wait_change(before, timeout=10.0):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        now = lanes()
        if now != before:
            return now
    raise SystemExit("the lanes did not change within %.0f s" % timeout)


def key_latency(keys, presses):
    """Median seconds from sending a key to the changed lanes, over `presses` presses taking
    `keys` in turn (j then k, L then H: there and back, so every press changes them)."""
    times = []
    for i in range(presses):
        before = lanes()
        sent = time.monotonic()
        tmux("send-keys", "-t", "board", keys[i % len(keys)])
        wait_change(before)
        times.append(time.monotonic() - sent)
        # Let the server's answer land before the next press.
        time.sleep(0.15)
    return statistics.median(times)


def whole_loaded(trace):
    """Seconds from the board's start until its last snapshot was loaded (PM_BOARD_TRACE); None
    from a board that writes no trace."""
    try:
        with open(trace) as f:
            lines = [l.split(" ", 1) for l in f.read().splitlines()]
    except OSError:
        return None
    loaded = [float(t) for t, what in lines if what == "project snapshot loaded"]
    return loaded[-1] / 1000.0 if loaded else None


def settle(pid, seconds):
    time.sleep(seconds)
    return status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS")


def ms(s):
    return round(s * 1000.0, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", required=True)
    p.add_argument("--pm", default="target/release/pm")
    p.add_argument("--items", type=int, default=50000)
    p.add_argument("--keys-items", type=int, default=5000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--presses", type=int, default=10)
    p.add_argument("--json")
    args = p.parse_args()
    args.pm = os.path.abspath(args.pm)
    env = dict(os.environ)
    env["PM_USER_ID"] = "6f1c2a5e-0000-4000-8000-00000000b0a7"
    env["PM_USER_NAME"] = "bench"
    board_env = {"PM_USER_ID": env["PM_USER_ID"], "PM_USER_NAME": "bench"}

    suffix = uuid.uuid4().hex[:4].upper()
    big, keys, small = "BIG" + suffix, "KEYS" + suffix, "TINY" + suffix
    seed(args, big, args.items, env)
    seed(args, keys, args.keys_items, env)
    seed(args, small, 20, env)

    start, whole, hwm, rss = [], [], [], []
    trace = os.path.join(tempfile.mkdtemp(), "trace")
    try:
        for run in range(args.runs):
            if os.path.exists(trace):
                os.unlink(trace)
            secs, pid = start_board(args, big, dict(board_env, PM_BOARD_TRACE=trace))
            # Long enough for the whole project to load after the first screen.
            peak, now = settle(pid, 4.0)
            stop_board()
            loaded = whole_loaded(trace)
            say("run %d: %d items on screen in %.0f ms (the whole project loaded at %s); "
                "VmHWM %d KiB, VmRSS %d KiB"
                % (run + 1, args.items, secs * 1000,
                   "%.0f ms" % (loaded * 1000) if loaded else "?", peak, now))
            start.append(secs)
            whole.append(loaded if loaded else secs)
            hwm.append(peak)
            rss.append(now)
        lat = {}
        for project, n in ((keys, args.keys_items), (small, 20)):
            nexts, moves = [], []
            for run in range(args.runs):
                start_board(args, project, board_env)
                time.sleep(1.0)
                nexts.append(key_latency(["j", "k"], args.presses))
                moves.append(key_latency(["L", "H"], args.presses))
                stop_board()
                say("run %d, %d cards: j/k %.1f ms, L/H %.1f ms"
                    % (run + 1, n, nexts[-1] * 1000, moves[-1] * 1000))
            lat[n] = (statistics.median(nexts), statistics.median(moves))
    finally:
        stop_board()

    results = {
        "items": args.items,
        "start_to_first_screen_ms": ms(statistics.median(start)),
        "start_runs_ms": [ms(s) for s in start],
        "whole_loaded_ms": ms(statistics.median(whole)),
        "vm_hwm_mib": round(statistics.median(hwm) / 1024.0, 1),
        "vm_rss_mib": round(statistics.median(rss) / 1024.0, 1),
        "keys_items": args.keys_items,
        "next_card_ms": ms(lat[args.keys_items][0]),
        "move_card_ms": ms(lat[args.keys_items][1]),
        "floor_next_card_ms": ms(lat[20][0]),
        "floor_move_card_ms": ms(lat[20][1]),
    }
    table = [
        ("%d items: start to first screen" % args.items,
         "%.0f ms (median of %d; runs %s)" % (results["start_to_first_screen_ms"], args.runs,
                                             ", ".join("%.0f" % s for s in results["start_runs_ms"]))),
        ("%d items: whole project loaded" % args.items,
         "%.0f ms after the board started (median; PM_BOARD_TRACE)" % results["whole_loaded_ms"]),
        ("%d items: memory" % args.items,
         "VmHWM %.1f MiB, VmRSS %.1f MiB" % (results["vm_hwm_mib"], results["vm_rss_mib"])),
        ("%d cards: j / k (next / previous card) to screen" % args.keys_items,
         "%.1f ms (20 cards: %.1f ms)" % (results["next_card_ms"], results["floor_next_card_ms"])),
        ("%d cards: L / H (card to the next / previous lane) to screen" % args.keys_items,
         "%.1f ms (20 cards: %.1f ms)" % (results["move_card_ms"], results["floor_move_card_ms"])),
    ]
    report = {
        "scenario": "board",
        "command": "scripts/bench-board.py --server http://127.0.0.1:$PORT --pm pm --items %d "
                   "--keys-items %d --runs %d --presses %d"
                   % (args.items, args.keys_items, args.runs, args.presses),
        "params": {"items": args.items, "keys_items": args.keys_items, "runs": args.runs,
                   "presses": args.presses},
        "results": results,
        "table": table,
    }
    for k, v in table:
        print("  %-45s %s" % (k, v))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
