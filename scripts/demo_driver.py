#!/usr/bin/env python3
"""The two-board demo's driver: `scripts/demo.sh --tour` and `scripts/demo.sh --check`.

Both modes perform the same operations: a work item is created, moved between lanes, edited,
commented on and deleted, each by the CLI (carol), by board A (alice) and by board B (bob). Board
operations are keystrokes sent to the board panes with `tmux send-keys`; every change is then looked
for on BOTH boards by reading the panes with `tmux capture-pane -p`.

- tour: narrated in the demo's shell pane, with pauses, so a viewer sees each change land.
- check: headless and fast; every change must show on both boards within a deadline, else the
  panes are printed and the exit status is 1.

Standard library only. Started by scripts/demo.sh, which passes the panes and the server.
"""
import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

LANES = ["Backlog", "To Do", "In Progress", "Review", "Done"]
STATUSES = ["backlog", "todo", "in_progress", "review", "done"]
# The vertical borders of the lane blocks (focused lane: heavy, the others: light).
BORDER = re.compile("[│┃]")
CARD_KEY = re.compile(r"^([A-Z][A-Z0-9]*-\d+) ")
# A card's last row starts with its type.
CARD_FOOTER = re.compile(r"^(EPIC|STORY|TASK)( |$)")
DETAIL_KEY = re.compile(r"([A-Z][A-Z0-9]*-\d+)  \S")


class Failure(Exception):
    """A step did not do what it should; the message says what was expected."""


def shown_arg(arg):
    """A command-line argument as a person would type it."""
    if re.fullmatch(r"[\w@%+=:,./-]+", arg):
        return arg
    if not re.search(r'["$`\\!]', arg):
        return '"%s"' % arg
    return shlex.quote(arg)


def cut(text, width):
    """The board's truncate(): at most `width` columns, ending in `…` when anything was cut."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…" if width > 0 else ""


def shown(title, width):
    """The title's lines as a card `width` columns wide shows them (the board's wrap_two()): one
    line when it fits, else broken after the last word that fits and the rest cut."""
    if len(title) <= width or width == 0:
        return [cut(title, width)]
    if title[width:].startswith(" "):
        at = width
    else:
        space = title.rfind(" ", 0, width)
        at = space if space > 0 and title[:space].rstrip() else width
    first, rest = title[:at].rstrip(), title[at:].lstrip()
    return [first, cut(rest, width)] if rest else [first]


class Card:
    def __init__(self, key, lane, row, title, footer, width):
        self.key, self.lane, self.row = key, lane, row
        self.title, self.footer, self.width = title, footer, width

    def shows_title(self, title):
        return self.title == shown(title, self.width)


class Board:
    """What one board pane shows, parsed from `capture-pane -p` text.

    The lane header row holds the five lane names; each row below it, down to the bottom border,
    splits on the vertical borders into the five lanes' text. A card is three or four rows:
    `PM-12 ↑ 3p`, its title (on two rows when it does not fit on one, the second cut with `…`), and
    its type with `@assignee` / `—` / `✎ <who changed it>`."""

    def __init__(self, lines):
        self.lines = lines
        self.text = "\n".join(lines)
        self.cards = {}
        self.lanes_seen = False
        self.covered = False  # a popup hides part of the lanes
        header = next(
            (i for i, line in enumerate(lines) if "Backlog" in line and "Review" in line), None
        )
        if header is None:
            return
        rows = []
        for line in lines[header + 1 :]:
            if line[:1] in ("┗", "╰"):
                break
            parts = BORDER.split(line)
            if len(parts) == 2 * len(LANES) + 1:
                rows.append(parts[1::2])
            else:
                rows.append(None)
                self.covered = True
        self.lanes_seen = bool(rows)
        in_lane = [0] * len(LANES)
        for r, segs in enumerate(rows):
            if segs is None:
                continue
            for lane, seg in enumerate(segs):
                m = CARD_KEY.match(seg)
                if not m:
                    continue

                def below(k):
                    nxt = rows[r + k] if r + k < len(rows) else None
                    return nxt[lane].rstrip() if nxt else None

                # The title's rows run down to the row that starts with the card's type.
                title = [below(1)]
                footer = below(2)
                if footer is not None and not CARD_FOOTER.match(footer) and below(3) is not None:
                    title.append(footer)
                    footer = below(3)
                self.cards[m.group(1)] = Card(
                    m.group(1), lane, in_lane[lane], title, footer, len(seg)
                )
                in_lane[lane] += 1

    @property
    def connected(self):
        return "● connected" in self.text

    @property
    def clear(self):
        """Lanes drawn and nothing in front of them: absence of a card means something."""
        return self.lanes_seen and not self.covered

    def with_title(self, title, lane):
        found = [c for c in self.cards.values() if c.lane == lane and c.shows_title(title)]
        return max(found, key=lambda c: int(c.key.rsplit("-", 1)[1]), default=None)


class Demo:
    def __init__(self, args):
        self.args = args
        self.tour = args.mode == "tour"
        self.tmux = ["tmux"] + (["-L", args.socket] if args.socket else [])
        self.boards = {"alice": args.pane_a, "bob": args.pane_b}
        self.deadline = args.deadline
        self.steps = 0
        self.failed = 0

    # ---- tmux ----------------------------------------------------------------------------

    def tmux_run(self, *argv):
        out = subprocess.run(
            self.tmux + list(argv),
            capture_output=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
        if out.returncode != 0:
            raise Failure(
                "tmux %s failed: %s" % (argv[0], out.stderr.decode("utf-8", "replace").strip())
            )
        return out.stdout.decode("utf-8", "replace")

    def capture(self, pane):
        return self.tmux_run("capture-pane", "-p", "-t", pane).rstrip("\n").split("\n")

    def board(self, who):
        return Board(self.capture(self.boards[who]))

    def keys(self, pane, *keys):
        """Named keys (Enter, Escape, C-u) or single characters, one after the other."""
        if self.tour:
            for k in keys:
                self.tmux_run("send-keys", "-t", pane, k)
                time.sleep(0.12)
        else:
            self.tmux_run("send-keys", "-t", pane, *keys)

    def type(self, pane, text):
        if self.tour:
            for ch in text:
                self.tmux_run("send-keys", "-t", pane, "-l", ch)
                time.sleep(0.05)
        else:
            self.tmux_run("send-keys", "-t", pane, "-l", text)

    # ---- the CLI -------------------------------------------------------------------------

    def pm(self, *argv, show=True):
        if self.tour and show:
            line = " ".join(
                '"$PM_PROJECT"' if a == self.args.project_id else shown_arg(a) for a in argv
            )
            self.say("\033[1m$ pm %s\033[0m" % line)
        env = dict(os.environ, PM_SERVER=self.args.server, PM_USER_ID=self.args.cli_user)
        out = subprocess.run(
            [self.args.pm] + list(argv),
            capture_output=True,
            timeout=30,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        if out.returncode != 0:
            raise Failure(
                "pm %s failed (exit %d): %s"
                % (" ".join(argv), out.returncode, out.stderr.decode("utf-8", "replace").strip())
            )
        body = json.loads(out.stdout.decode("utf-8"))
        if self.tour and show:
            w = body.get("work_item") if isinstance(body, dict) else None
            if w:
                self.say(
                    "  → %s \"%s\" %s, version %s"
                    % (w.get("display_key"), w.get("title"), w.get("status"), w.get("version"))
                )
            elif isinstance(body, dict) and "comment" in body:
                self.say("  → comment added")
            elif isinstance(body, dict) and "deleted_id" in body:
                self.say("  → deleted")
        return body

    def version_of(self, key):
        return self.pm("work-item", "get", key, show=False)["work_item"]["version"]

    # ---- waiting -------------------------------------------------------------------------

    def say(self, text):
        print(text, flush=True)

    def wait_both(self, what, test, actor=None, key=None):
        """Polls both boards until `test(board)` holds on each; returns the elapsed seconds and
        the boards that showed the card as changed by `actor` (its `✎ <name>` line; a soft
        check, not asserted: the highlight of an earlier change may still be showing)."""
        started = time.monotonic()
        pending = set(self.boards)
        marks = {}
        while True:
            for who in sorted(pending):
                b = self.board(who)
                if test(b):
                    pending.discard(who)
                footer = b.cards[key].footer if key and key in b.cards else None
                if actor and footer and footer.startswith("✎") and footer[1:].strip() == actor:
                    marks[who] = actor
            elapsed = time.monotonic() - started
            if not pending:
                return elapsed, marks
            if elapsed > self.deadline:
                raise Failure(
                    "%s: not seen on %s within %.0f s"
                    % (what, " and ".join("%s's board" % w for w in sorted(pending)), self.deadline)
                )
            time.sleep(0.05)

    def wait_pane(self, pane, what, test, timeout=5.0):
        started = time.monotonic()
        while True:
            lines = self.capture(pane)
            if test("\n".join(lines)):
                return lines
            if time.monotonic() - started > timeout:
                raise Failure("%s: not seen within %.0f s" % (what, timeout))
            time.sleep(0.05)

    def card_on(self, who, key):
        card = self.board(who).cards.get(key)
        if card is None:
            raise Failure("%s is not on %s's board" % (key, who))
        return card

    @staticmethod
    def name(actor):
        return "carol" if actor == "cli" else actor

    # ---- board operations ----------------------------------------------------------------

    def go_to_lane(self, who, lane):
        pane = self.boards[who]
        self.keys(pane, *(["h"] * (len(LANES) - 1) + ["l"] * lane))

    def select(self, who, key, keep_detail=False):
        """Moves the board's selection onto `key` and proves it by opening the card's details
        (their first line is `KEY  title`)."""
        pane = self.boards[who]
        card = self.card_on(who, key)
        moves = ["h"] * (len(LANES) - 1) + ["l"] * card.lane + ["k"] * 30 + ["j"] * card.row
        if self.tour:
            # Fast: the pauses are for the changes, not for the cursor.
            self.tmux_run("send-keys", "-t", pane, *moves)
        else:
            self.keys(pane, *moves)
        self.keys(pane, "Enter")
        lines = self.wait_pane(
            pane, "%s's details of %s" % (who, key), lambda t: DETAIL_KEY.search(t) is not None
        )
        opened = DETAIL_KEY.search("\n".join(lines)).group(1)
        if opened != key:
            self.keys(pane, "Escape")
            raise Failure("%s's board selected %s instead of %s" % (who, opened, key))
        if self.tour:
            time.sleep(0.8)
        if not keep_detail:
            self.close_popup(who)

    def close_popup(self, who):
        self.keys(self.boards[who], "Escape")
        self.wait_pane(
            self.boards[who],
            "%s's board without a popup" % who,
            lambda t: Board(t.split("\n")).clear,
        )

    # ---- the steps -----------------------------------------------------------------------

    def step(self, actor, action, title, run, story):
        """One change. `title` is the check's terse label, `story` the tour's sentence."""
        self.steps += 1
        if self.tour:
            self.say("")
            self.say("\033[1;36m── %d/15  %s\033[0m" % (self.steps, story))
        try:
            result, (elapsed, marks) = run()
        except Failure as e:
            if not self.tour:
                raise Failure("step %d (%s %s): %s" % (self.steps, actor, action, e))
            self.failed += 1
            self.say("\033[31m  ✗ %s\033[0m" % e)
            try:
                for who in self.boards:
                    self.keys(self.boards[who], "Escape")
            except Failure:
                pass
            return None
        seen = ", ".join("✎ %s on %s's board" % (m, w) for w, m in sorted(marks.items()))
        if self.tour:
            self.say(
                "\033[32m  ✓ on alice's and bob's boards in %.2f s\033[0m%s"
                % (elapsed, ("  (" + seen + ")") if seen else "")
            )
            time.sleep(self.args.pause)
        else:
            self.say(
                "  ok  %-6s %-8s %-44s both boards in %.2f s%s"
                % (actor, action, title, elapsed, ("  [" + seen + "]") if seen else "")
            )
        return result

    def create(self, actor, title, lane):
        def run():
            if actor == "cli":
                argv = ["work-item", "create", "--project-id", self.args.project_id,
                        "--type", "task", "--title", title, "--status", STATUSES[lane]]
                if self.args.pane_shell and not self.tour:
                    # Typed into the demo's shell pane, as a visitor would: this also proves
                    # that pm is on its PATH and PM_SERVER / PM_PROJECT are set there.
                    cmd = ("pm work-item create --project-id \"$PM_PROJECT\" --type task "
                           "--title %s --status %s" % (shlex.quote(title), STATUSES[lane]))
                    self.type(self.args.pane_shell, cmd)
                    self.keys(self.args.pane_shell, "Enter")
                else:
                    self.pm(*argv)
            else:
                pane = self.boards[actor]
                self.go_to_lane(actor, lane)
                self.keys(pane, "n")
                self.wait_pane(pane, "%s's new-card input" % actor, lambda t: "New Task in" in t)
                self.type(pane, title)
                self.keys(pane, "Enter")
            found = {}

            def test(b):
                c = b.with_title(title, lane)
                if c:
                    found[id(b)] = c.key
                    found["last"] = c.key
                return c is not None

            waited = self.wait_both("new card \"%s\" in %s" % (title, LANES[lane]), test)
            key = found["last"]
            for who in self.boards:
                if self.card_on(who, key).lane != lane:
                    raise Failure("%s is not in %s on %s's board" % (key, LANES[lane], who))
            return key, waited

        story = (
            "carol creates a task in %s with the CLI" % LANES[lane] if actor == "cli" else
            "%s picks the %s lane, presses n, types \"%s\" and Enter" % (actor, LANES[lane], title)
        )
        return self.step(actor, "create", "\"%s\" in %s" % (title, LANES[lane]), run, story)

    def move(self, actor, key, lane):
        if key is None:
            return
        def run():
            if actor == "cli":
                self.pm("work-item", "update", key, "--status", STATUSES[lane],
                        "--expected-version", str(self.version_of(key)))
            else:
                current = self.card_on(actor, key).lane
                if abs(current - lane) != 1:
                    raise Failure("%s is in %s, not next to %s" % (key, LANES[current], LANES[lane]))
                self.select(actor, key)
                self.keys(self.boards[actor], "L" if lane > current else "H")
            return key, self.wait_both(
                "%s in %s" % (key, LANES[lane]),
                lambda b: key in b.cards and b.cards[key].lane == lane,
                self.name(actor), key,
            )

        if actor == "cli":
            story = "carol moves %s to %s with the CLI" % (key, LANES[lane])
        else:
            card = self.board(actor).cards.get(key)
            left = card is not None and lane < card.lane
            story = "%s selects %s and presses %s: to %s" % (
                actor, key, "H" if left else "L", LANES[lane])
        return self.step(actor, "move", "%s to %s" % (key, LANES[lane]), run, story)

    def edit(self, actor, key, title):
        if key is None:
            return
        def run():
            if actor == "cli":
                self.pm("work-item", "update", key, "--title", title,
                        "--expected-version", str(self.version_of(key)))
            else:
                pane = self.boards[actor]
                self.select(actor, key)
                self.keys(pane, "e")
                self.wait_pane(pane, "%s's title input" % actor, lambda t: "Edit title" in t)
                self.keys(pane, "C-u")
                self.type(pane, title)
                self.keys(pane, "Enter")
            return key, self.wait_both(
                "%s titled \"%s\"" % (key, title),
                lambda b: key in b.cards and b.cards[key].shows_title(title),
                self.name(actor), key,
            )

        story = (
            "carol renames %s with the CLI" % key if actor == "cli" else
            "%s selects %s, presses e, clears the title (Ctrl-U), types \"%s\" and Enter"
            % (actor, key, title)
        )
        return self.step(actor, "edit", "%s to \"%s\"" % (key, title), run, story)

    def comment(self, actor, key, text):
        if key is None:
            return
        # The activity strip under the lanes shows it on every board.
        line = "commented on %s: \"%s" % (key, text)

        def run():
            if actor == "cli":
                self.pm("comment", "create", "--work-item-id", key, "--content", text)
            else:
                pane = self.boards[actor]
                self.select(actor, key, keep_detail=True)
                self.keys(pane, "c")
                self.type(pane, text)
                self.keys(pane, "Enter")
                # The details list the new comment as it lands.
                self.wait_pane(pane, "the comment in %s's details" % actor,
                               lambda t: (": " + text) in t)
                if self.tour:
                    time.sleep(1.0)
                self.close_popup(actor)
            return key, self.wait_both(
                "comment \"%s\" on %s" % (text, key), lambda b: line in b.text, self.name(actor), key
            )

        story = (
            "carol comments on %s with the CLI (see the activity line under the lanes)" % key
            if actor == "cli" else
            "%s opens %s (Enter), presses c, types \"%s\", Enter, then Esc" % (actor, key, text)
        )
        return self.step(actor, "comment", "on %s: \"%s\"" % (key, text), run, story)

    def delete(self, actor, key):
        if key is None:
            return
        def run():
            if actor == "cli":
                self.pm("work-item", "delete", key)
            else:
                pane = self.boards[actor]
                self.select(actor, key)
                self.keys(pane, "d")
                self.wait_pane(pane, "%s's delete confirmation" % actor,
                               lambda t: ("Delete %s " % key) in t)
                if self.tour:
                    time.sleep(0.8)
                self.keys(pane, "y")
            return key, self.wait_both(
                "%s gone" % key, lambda b: b.clear and key not in b.cards
            )

        story = (
            "carol deletes %s with the CLI" % key if actor == "cli" else
            "%s selects %s, presses d, then y" % (actor, key)
        )
        return self.step(actor, "delete", key, run, story)

    # ---- the whole walk ------------------------------------------------------------------

    def wait_ready(self):
        started = time.monotonic()
        want = self.args.expect_cards
        while True:
            boards = {who: self.board(who) for who in self.boards}
            if all(b.connected and b.clear and (len(b.cards) >= want if want else b.cards)
                   for b in boards.values()):
                break
            if time.monotonic() - started > self.args.ready_timeout:
                raise Failure(
                    "the boards did not show the project (%s cards each) within %.0f s"
                    % (want or "some", self.args.ready_timeout)
                )
            time.sleep(0.1)
        if self.args.pane_shell and not self.tour:
            self.wait_pane(self.args.pane_shell, "the demo shell's hint",
                           lambda t: "pm-demo shell" in t, timeout=self.args.ready_timeout)
        counts = {who: len(b.cards) for who, b in boards.items()}
        if not self.tour:
            self.say("  ok  boards connected, project shown (%s cards on alice's, %s on bob's) in %.1f s"
                     % (counts["alice"], counts["bob"], time.monotonic() - started))

    def walk(self):
        self.wait_ready()
        if self.tour:
            self.say("")
            self.say("\033[1mThe tour: carol (this shell, the CLI), alice (left board) and bob (right "
                     "board) each create, move, edit, comment on and delete a card. Watch both boards.\033[0m")
            time.sleep(self.args.pause)
        # Create: one card each, in different lanes.
        c = self.create("cli", "Hello from CLI", 1)
        a = self.create("alice", "Alice's idea", 2)
        b = self.create("bob", "Bob's idea", 0)
        # Move: each moves someone else's card.
        self.move("cli", a, 3)
        self.move("alice", b, 1)
        self.move("bob", c, 2)
        # Edit.
        self.edit("cli", b, "Bob's idea v2")
        self.edit("alice", c, "Hello, Alice")
        self.edit("bob", a, "Alice's idea 2")
        # Comment.
        self.comment("cli", a, "Looks good to me")
        self.comment("alice", b, "Alice was here")
        self.comment("bob", c, "Bob approves")
        # Delete.
        self.delete("cli", b)
        self.delete("alice", c)
        self.delete("bob", a)
        if not self.tour:
            self.converged()

    def converged(self):
        """Both boards show the same cards in the same lanes as the server has."""
        alice, bob = self.board("alice"), self.board("bob")
        view = lambda b: {k: (c.lane, c.title) for k, c in b.cards.items()}
        if view(alice) != view(bob):
            raise Failure("the boards differ: alice %s, bob %s" % (view(alice), view(bob)))
        body = self.pm("work-item", "list", self.args.project_id, "--include-done", show=False)
        items = body.get("work_items", []) if isinstance(body, dict) else body
        server = {w["display_key"]: STATUSES.index(w["status"]) for w in items}
        boards = {k: lane for k, (lane, _) in view(alice).items()}
        if server != boards:
            raise Failure("the boards %s differ from the server %s" % (boards, server))
        self.say("  ok  both boards show the server's %d cards in the same lanes" % len(server))

    def dump(self):
        panes = [("alice's board", self.args.pane_a), ("bob's board", self.args.pane_b)]
        if self.args.pane_shell:
            panes.append(("the shell", self.args.pane_shell))
        for name, pane in panes:
            self.say("---- %s (pane %s) ----" % (name, pane))
            try:
                self.say("\n".join(self.capture(pane)))
            except Exception as e:  # noqa: BLE001 - best effort while reporting a failure
                self.say("(cannot capture: %s)" % e)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["tour", "check"], required=True)
    p.add_argument("--socket", help="tmux -L socket name (default: the current tmux server)")
    p.add_argument("--pane-a", required=True, help="alice's board pane id")
    p.add_argument("--pane-b", required=True, help="bob's board pane id")
    p.add_argument("--pane-shell", help="the demo shell pane id")
    p.add_argument("--pm", required=True, help="the pm binary")
    p.add_argument("--server", required=True, help="the server URL")
    p.add_argument("--project-id", required=True)
    p.add_argument("--cli-user", required=True, help="the CLI's user id (carol)")
    p.add_argument("--expect-cards", type=int, default=0)
    p.add_argument("--deadline", type=float, default=5.0, help="seconds for each change")
    p.add_argument("--ready-timeout", type=float, default=30.0)
    p.add_argument("--pause", type=float, default=2.5, help="tour: seconds between steps")
    p.add_argument("--timeout", type=float, default=120.0, help="the whole run, in seconds")
    args = p.parse_args()
    demo = Demo(args)

    def too_long(*_):
        raise Failure("the %s took longer than %.0f s" % (args.mode, args.timeout))

    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(int(args.timeout))
    started = time.monotonic()
    try:
        demo.walk()
    except (Failure, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        signal.alarm(0)
        if demo.tour:
            demo.say("\033[31mThe tour stopped: %s\033[0m" % e)
            return 1
        demo.say("FAIL: %s" % e)
        demo.dump()
        return 1
    signal.alarm(0)
    if demo.tour:
        demo.say("")
        if demo.failed:
            demo.say("\033[33mThe tour is over (%d step(s) did not show as expected).\033[0m" % demo.failed)
        else:
            demo.say("\033[1;32mThe tour is over: every change showed on both boards.\033[0m")
        demo.say("Your turn: type pm commands here, or use the boards (click a pane or Ctrl-b + arrow).")
        return 0
    demo.say("  ok  15 changes (create, move, edit, comment, delete × CLI, alice's board, bob's "
             "board), each on both boards, in %.1f s" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
